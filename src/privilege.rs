//! The capability check made before any raw socket is opened.
//!
//! Linux gives raw sockets only to processes with `CAP_NET_RAW` (root has
//! it; a service gets it from systemd's `AmbientCapabilities=CAP_NET_RAW`).
//! Checking up front turns a confusing socket error deep inside a trace into
//! one clear line at start.

/// Bit of `CAP_NET_RAW` in the capability sets (linux/capability.h).
const CAP_NET_RAW: u32 = 13;

/// Why the capabilities could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CapabilityError {
    /// `/proc/self/status` cannot be read.
    #[error("/proc/self/status: {0}")]
    Read(#[from] std::io::Error),
    /// It has no effective set.
    #[error("/proc/self/status has no CapEff line")]
    NoEffectiveSet,
    /// The effective set is not hexadecimal.
    #[error("CapEff `{text}`: {source}")]
    EffectiveSet {
        /// The value as written.
        text: String,
        /// Why it does not parse.
        source: std::num::ParseIntError,
    },
}

/// Whether the process may open raw sockets.
///
/// # Errors
/// When `/proc/self/status` cannot be read or has no `CapEff` line.
pub fn has_net_raw() -> Result<bool, CapabilityError> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    effective_has(&status, CAP_NET_RAW)
}

fn effective_has(status: &str, bit: u32) -> Result<bool, CapabilityError> {
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(str::trim)
        .ok_or(CapabilityError::NoEffectiveSet)?;
    let caps = u64::from_str_radix(hex, 16).map_err(|source| CapabilityError::EffectiveSet {
        text: hex.to_string(),
        source,
    })?;
    Ok(caps & (1 << bit) != 0)
}

/// The one-line message shown when the capability is missing.
#[must_use]
pub fn missing_message() -> &'static str {
    "transitwatch needs CAP_NET_RAW to send raw probes: run it as root, \
     `setcap cap_net_raw+ep` the binary, or use the systemd unit \
     (AmbientCapabilities=CAP_NET_RAW)"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_effective_set() {
        let with = "Name:\tx\nCapEff:\t0000000000002000\n";
        let without = "CapEff:\t0000000000001000\n";
        assert!(matches!(effective_has(with, CAP_NET_RAW), Ok(true)));
        assert!(matches!(effective_has(without, CAP_NET_RAW), Ok(false)));
        assert!(effective_has("Name: x\n", CAP_NET_RAW).is_err());
        assert!(has_net_raw().is_ok());
    }
}

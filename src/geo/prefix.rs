//! IP prefixes (`198.51.100.0/24`, `2001:db8::/32`) as overrides and the
//! reserved-range table use them.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An IP network: an address whose bits past `len` are zero, and a length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpPrefix {
    addr: IpAddr,
    len: u8,
}

/// Why a string is not a prefix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not an IP prefix: {reason}")]
pub struct InvalidPrefix {
    /// The text given.
    pub input: String,
    /// What is wrong with it.
    pub reason: String,
}

impl IpPrefix {
    /// A prefix from its network address and length. `None` when the length
    /// is longer than the family allows or bits past it are set.
    #[must_use]
    pub fn new(addr: IpAddr, len: u8) -> Option<Self> {
        let prefix = Self { addr, len };
        match addr {
            IpAddr::V4(a) if len <= 32 => (u32::from(a) & !mask_v4(len) == 0).then_some(prefix),
            IpAddr::V6(a) if len <= 128 => (u128::from(a) & !mask_v6(len) == 0).then_some(prefix),
            _ => None,
        }
    }

    /// The prefix `addr/len` with the bits past `len` cleared. `len` is
    /// clamped to the family's width.
    #[must_use]
    pub fn truncating(addr: IpAddr, len: u8) -> Self {
        match addr {
            IpAddr::V4(a) => {
                let len = len.min(32);
                Self {
                    addr: IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask_v4(len))),
                    len,
                }
            }
            IpAddr::V6(a) => {
                let len = len.min(128);
                Self {
                    addr: IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask_v6(len))),
                    len,
                }
            }
        }
    }

    /// The network address.
    #[must_use]
    pub const fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length in bits.
    #[must_use]
    pub const fn prefix_len(&self) -> u8 {
        self.len
    }

    /// Whether `addr` is inside this prefix (an IPv4 address is never inside
    /// an IPv6 prefix, nor the reverse).
    #[must_use]
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self.addr, addr) {
            (IpAddr::V4(net), IpAddr::V4(a)) => u32::from(a) & mask_v4(self.len) == u32::from(net),
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                u128::from(a) & mask_v6(self.len) == u128::from(net)
            }
            _ => false,
        }
    }
}

/// The netmask of an IPv4 prefix length (`len` ≤ 32).
pub(crate) const fn mask_v4(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - len as u32)
    }
}

/// The netmask of an IPv6 prefix length (`len` ≤ 128).
pub(crate) const fn mask_v6(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - len as u32)
    }
}

impl fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for IpPrefix {
    type Err = InvalidPrefix;

    /// Parses `addr/len`, or a bare address as a host prefix (/32, /128).
    /// An IPv4-mapped IPv6 prefix (`::ffff:192.0.2.0/120`) becomes the IPv4
    /// prefix it maps, as addresses are looked up in their IPv4 form.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| InvalidPrefix {
            input: s.to_string(),
            reason,
        };
        let (addr_text, len_text) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = addr_text
            .parse()
            .map_err(|_| err(format!("`{addr_text}` is not an IPv4 or IPv6 address")))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = match len_text {
            None => max,
            Some(l) => match l.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(err(format!("prefix length must be 0 to {max}, not `{l}`"))),
            },
        };
        let (addr, len) = match addr {
            IpAddr::V6(v6) if len >= 96 => match v6.to_ipv4_mapped() {
                Some(v4) => (IpAddr::V4(v4), len - 96),
                None => (addr, len),
            },
            _ => (addr, len),
        };
        Self::new(addr, len).ok_or_else(|| {
            err(format!(
                "bits are set past the prefix length (did you mean {}?)",
                Self::truncating(addr, len)
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> IpPrefix {
        s.parse().unwrap()
    }

    #[test]
    fn parses_cidrs_and_bare_addresses() {
        assert_eq!(p("10.0.0.0/8").prefix_len(), 8);
        assert_eq!(p("192.0.2.7").prefix_len(), 32);
        assert_eq!(p("2001:db8::1").prefix_len(), 128);
        assert_eq!(p("2001:db8::/32").to_string(), "2001:db8::/32");
        assert_eq!(p("0.0.0.0/0").prefix_len(), 0);
        assert_eq!(p("::ffff:192.0.2.0/120").to_string(), "192.0.2.0/24");
    }

    #[test]
    fn rejects_bad_lengths_addresses_and_host_bits() {
        for bad in [
            "10.0.0.0/33",
            "10.0.0.0/-1",
            "10.0.0/8",
            "example",
            "",
            "2001:db8::/129",
        ] {
            assert!(bad.parse::<IpPrefix>().is_err(), "{bad}");
        }
        let e = "10.0.0.1/8".parse::<IpPrefix>().unwrap_err();
        assert!(e.to_string().contains("did you mean 10.0.0.0/8"), "{e}");
    }

    #[test]
    fn containment_respects_family_and_length() {
        let v4 = p("198.51.100.0/24");
        assert!(v4.contains("198.51.100.255".parse().unwrap()));
        assert!(!v4.contains("198.51.101.0".parse().unwrap()));
        assert!(!v4.contains("::1".parse().unwrap()));
        assert!(p("::/0").contains("2001:db8::1".parse().unwrap()));
        assert!(p("0.0.0.0/0").contains("1.2.3.4".parse().unwrap()));
    }
}

//! The `[probe]` table: protocol, TTL range, packet size, the waits of one
//! trace ([`ProbeSettings`]), and the schedule (interval, jitter,
//! concurrency).

use super::value::{
    validate_duration, validate_family, validate_int, validate_port, validate_protocol,
};
use crate::config::position::Source;
use crate::config::raw::RawProbe;
use crate::config::{ConfigError, ProbeConfig};
use crate::probe::ProbeSettings;
use crate::units::format_duration;
use std::time::Duration;
use toml::Spanned;

/// The `[probe]` table: how traces are probed, the defaults targets inherit,
/// and the schedule.
pub(super) fn validate_probe(raw: &RawProbe, src: &Source<'_>) -> Result<ProbeConfig, ConfigError> {
    let defaults = ProbeConfig::default();
    let protocol = match &raw.protocol {
        Some(p) => validate_protocol(p, "probe.protocol", src)?,
        None => defaults.settings.protocol,
    };
    let port = raw
        .port
        .as_ref()
        .map(|p| validate_port(p, "probe.port", src))
        .transpose()?;
    let family = match &raw.family {
        Some(f) => validate_family(f, "probe.family", src)?,
        None => defaults.family,
    };
    let (interval, jitter) = validate_probe_schedule(raw, &defaults, src)?;
    let (first_ttl, max_ttl) = validate_probe_ttls(raw, &defaults.settings, src)?;
    let (grace, deadline) = validate_probe_waits(raw, &defaults.settings, src)?;
    let concurrency = validate_int(
        raw.concurrency.as_ref(),
        "probe.concurrency",
        defaults.concurrency,
        (1, 200),
        src,
    )?;
    let probes_per_hop = validate_int(
        raw.probes_per_hop.as_ref(),
        "probe.probes_per_hop",
        defaults.settings.probes_per_hop,
        (1, 16),
        src,
    )?;
    let packet_size = validate_int(
        raw.packet_size.as_ref(),
        "probe.packet_size",
        defaults.settings.packet_size,
        (48, 1024),
        src,
    )?;
    let multipath = validate_multipath_interval(
        raw.multipath_interval.as_ref(),
        "probe.multipath_interval",
        None,
        src,
    )?;
    Ok(ProbeConfig {
        settings: ProbeSettings {
            protocol,
            port,
            probes_per_hop,
            first_ttl,
            max_ttl,
            packet_size,
            grace,
            deadline,
        },
        family,
        interval,
        jitter,
        concurrency,
        multipath,
    })
}

/// A `multipath_interval`: a duration of 1s..=30d, or `"off"` (`None`);
/// absent: `default`.
pub(super) fn validate_multipath_interval(
    value: Option<&Spanned<String>>,
    field: &str,
    default: Option<Duration>,
    src: &Source<'_>,
) -> Result<Option<Duration>, ConfigError> {
    match value {
        Some(v) if v.get_ref().trim() == "off" => Ok(None),
        Some(v) => validate_duration(
            Some(v),
            field,
            Duration::ZERO,
            (Duration::from_secs(1), Duration::from_secs(30 * 24 * 3600)),
            src,
        )
        .map(Some),
        None => Ok(default),
    }
}

/// `probe.interval` and `probe.jitter`: jitter must stay below the interval.
fn validate_probe_schedule(
    raw: &RawProbe,
    defaults: &ProbeConfig,
    src: &Source<'_>,
) -> Result<(Duration, Duration), ConfigError> {
    let interval = validate_duration(
        raw.interval.as_ref(),
        "probe.interval",
        defaults.interval,
        (Duration::from_secs(1), Duration::from_secs(7 * 24 * 3600)),
        src,
    )?;
    let jitter = validate_duration(
        raw.jitter.as_ref(),
        "probe.jitter",
        defaults.jitter,
        (Duration::ZERO, Duration::MAX),
        src,
    )?;
    if jitter >= interval {
        // Point at jitter when it is written, else at interval.
        let span = raw
            .jitter
            .as_ref()
            .or(raw.interval.as_ref())
            .map(Spanned::span);
        return Err(src.invalid(
            span,
            "probe.jitter",
            format!(
                "jitter ({}) must be shorter than interval ({})",
                format_duration(jitter),
                format_duration(interval)
            ),
        ));
    }
    Ok((interval, jitter))
}

/// `probe.first_ttl` and `probe.max_ttl`: a non-empty TTL range within 1..=64.
fn validate_probe_ttls(
    raw: &RawProbe,
    defaults: &ProbeSettings,
    src: &Source<'_>,
) -> Result<(u8, u8), ConfigError> {
    let first_ttl = validate_int(
        raw.first_ttl.as_ref(),
        "probe.first_ttl",
        defaults.first_ttl,
        (1, 64),
        src,
    )?;
    let max_ttl = validate_int(
        raw.max_ttl.as_ref(),
        "probe.max_ttl",
        defaults.max_ttl,
        (1, 64),
        src,
    )?;
    if max_ttl < first_ttl {
        let span = raw
            .max_ttl
            .as_ref()
            .or(raw.first_ttl.as_ref())
            .map(Spanned::span);
        return Err(src.invalid(
            span,
            "probe.max_ttl",
            format!("max_ttl ({max_ttl}) must not be below first_ttl ({first_ttl})"),
        ));
    }
    Ok((first_ttl, max_ttl))
}

/// `probe.grace` and `probe.deadline`: the deadline is never shorter than the grace.
fn validate_probe_waits(
    raw: &RawProbe,
    defaults: &ProbeSettings,
    src: &Source<'_>,
) -> Result<(Duration, Duration), ConfigError> {
    let grace = validate_duration(
        raw.grace.as_ref(),
        "probe.grace",
        defaults.grace,
        (Duration::from_millis(1), Duration::from_secs(5)),
        src,
    )?;
    let deadline = validate_duration(
        raw.deadline.as_ref(),
        "probe.deadline",
        defaults.deadline,
        (Duration::from_millis(100), Duration::from_secs(60)),
        src,
    )?;
    if deadline < grace {
        let span = raw
            .deadline
            .as_ref()
            .or(raw.grace.as_ref())
            .map(Spanned::span);
        return Err(src.invalid(
            span,
            "probe.deadline",
            format!(
                "deadline ({}) must not be shorter than grace ({})",
                format_duration(deadline),
                format_duration(grace)
            ),
        ));
    }
    Ok((grace, deadline))
}

//! `transitwatch trace`: plan a trace from the options and the config,
//! resolve the target, run it through the [`Pipeline`] and print each
//! record as a table or a JSON line.

use super::{load_config, write_err, CliError};
use crate::analysis::Policy;
use crate::config::{Config, RdnsConfig};
use crate::model::{Coordinates, CountryCode, Family, Protocol, TraceRecord, VantageRef};
use crate::pipeline::Pipeline;
use crate::probe::{ProbeSettings, ProbeTarget, TraceRequest, TrippyProber};
use crate::render;
use crate::resolve;
use crate::reverse_dns::{RdnsMetrics, ReverseDns};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Options of `transitwatch trace`, as parsed from the command line.
#[derive(Debug, Clone, Default)]
pub struct TraceOptions {
    /// A configured target name, a host name or an address.
    pub target: String,
    /// Configuration file for vantage, policy and probe defaults.
    pub config: Option<PathBuf>,
    /// MMDB files (replace the config's `[geoip] files` when given).
    pub geoip: Vec<PathBuf>,
    /// Overrides CSV (replaces the config's `[geoip] overrides`).
    pub overrides: Option<PathBuf>,
    /// Home country (overrides the config).
    pub home: Option<CountryCode>,
    /// Probe protocol (overrides target and config).
    pub protocol: Option<Protocol>,
    /// Destination port for UDP/TCP.
    pub port: Option<u16>,
    /// Address family selection.
    pub family: Option<Family>,
    /// Probes per TTL.
    pub probes: Option<u8>,
    /// First TTL.
    pub first_ttl: Option<u8>,
    /// Last TTL.
    pub max_ttl: Option<u8>,
    /// Probe size in bytes.
    pub packet_size: Option<u16>,
    /// Ceiling of the grace period.
    pub grace: Option<Duration>,
    /// Bound on a trace whose destination never answers.
    pub deadline: Option<Duration>,
    /// Write trace records as JSON lines instead of tables.
    pub json: bool,
    /// Do not look up the hops' names.
    pub no_dns: bool,
    /// The DNS server asked for the hops' names (replaces the config's).
    pub dns_server: Option<SocketAddr>,
}

/// Everything a trace needs once the options and config are merged.
struct TracePlan {
    name: String,
    host: String,
    family: Family,
    vantage: VantageRef,
    vantage_at: Option<Coordinates>,
    policy: Policy,
    settings: ProbeSettings,
}

fn plan_trace(opts: &TraceOptions, config: Option<&Config>) -> Result<TracePlan, CliError> {
    let mut settings = ProbeSettings::default();
    let mut family = Family::Auto;
    let mut vantage = VantageRef {
        name: "local".to_string(),
        country: None,
    };
    let mut policy = Policy::default();
    let mut vantage_at = None;
    let mut name = opts.target.clone();
    let mut host = opts.target.clone();
    if let Some(cfg) = config {
        let p = &cfg.probe;
        settings = p.settings.clone();
        family = p.family;
        vantage = VantageRef {
            name: cfg.vantage.name.clone(),
            country: Some(cfg.vantage.country),
        };
        policy.home = Some(cfg.policy.home);
        policy.min_confidence = cfg.policy.min_confidence;
        if let (Some(lat), Some(lon)) = (cfg.vantage.latitude, cfg.vantage.longitude) {
            vantage_at = Some(Coordinates { lat, lon });
        }
        if let Some(t) = cfg.targets.iter().find(|t| t.name == opts.target) {
            name.clone_from(&t.name);
            host.clone_from(&t.host);
            settings.protocol = t.protocol;
            settings.port = t.port;
            family = t.family;
            policy.allowed.clone_from(&t.allowed_countries);
        }
    }
    if host.trim().is_empty() {
        return Err(CliError::Usage("the target must not be empty".into()));
    }
    if let Some(home) = opts.home {
        policy.home = Some(home);
        vantage.country.get_or_insert(home);
    }
    settings.protocol = opts.protocol.unwrap_or(settings.protocol);
    if let Some(port) = opts.port {
        if port == 0 {
            return Err(CliError::Usage(
                "invalid --port 0: ports are 1 to 65535".into(),
            ));
        }
        if settings.protocol == Protocol::Icmp {
            return Err(CliError::Usage(
                "--port applies to udp and tcp probes only; add --protocol udp or --protocol tcp"
                    .into(),
            ));
        }
        settings.port = Some(port);
    }
    family = opts.family.unwrap_or(family);
    settings.probes_per_hop = opts.probes.unwrap_or(settings.probes_per_hop);
    settings.first_ttl = opts.first_ttl.unwrap_or(settings.first_ttl);
    settings.max_ttl = opts.max_ttl.unwrap_or(settings.max_ttl);
    settings.packet_size = opts.packet_size.unwrap_or(settings.packet_size);
    settings.grace = opts.grace.unwrap_or(settings.grace);
    settings.deadline = opts.deadline.unwrap_or(settings.deadline);
    check_settings(&settings)?;
    Ok(TracePlan {
        name,
        host,
        family,
        vantage,
        vantage_at,
        policy,
        settings,
    })
}

fn check_settings(s: &ProbeSettings) -> Result<(), CliError> {
    let usage = |m: String| Err(CliError::Usage(m));
    if !(1..=16).contains(&s.probes_per_hop) {
        return usage(format!("--probes {} is outside 1..=16", s.probes_per_hop));
    }
    if s.first_ttl == 0 || s.max_ttl > 64 || s.first_ttl > s.max_ttl {
        return usage(format!(
            "TTLs must satisfy 1 <= first ({}) <= max ({}) <= 64",
            s.first_ttl, s.max_ttl
        ));
    }
    if !(48..=1024).contains(&s.packet_size) {
        return usage(format!(
            "--packet-size {} is outside 48..=1024",
            s.packet_size
        ));
    }
    if s.deadline < s.grace || s.deadline.is_zero() {
        return usage(format!(
            "--deadline {:?} must be positive and at least the grace {:?}",
            s.deadline, s.grace
        ));
    }
    Ok(())
}

/// The resolver of the hops' names: `[rdns]` of the config (or its
/// defaults), the server of `--dns-server` instead of the configured ones;
/// none with `-n` or `enabled = false` (unless `--dns-server` is given).
/// A resolver that cannot be set up is a warning: the trace goes on
/// without names.
fn reverse_dns(opts: &TraceOptions, config: Option<&Config>) -> Option<ReverseDns> {
    let mut rdns = config.map_or_else(RdnsConfig::default, |c| c.rdns.clone());
    if let Some(server) = opts.dns_server {
        rdns.servers = vec![server];
        rdns.enabled = true;
    }
    if opts.no_dns || !rdns.enabled {
        return None;
    }
    ReverseDns::new(&rdns, RdnsMetrics::default())
        .inspect_err(|e| tracing::warn!(error = %e, "hop names are not looked up"))
        .ok()
}

/// `transitwatch trace`: trace one target and print the result. Returns
/// the records it printed.
///
/// # Errors
/// Usage, configuration and runtime failures, as [`CliError`].
pub async fn run(opts: &TraceOptions, out: &mut impl Write) -> Result<Vec<TraceRecord>, CliError> {
    let config = load_config(opts.config.as_ref())?;
    let plan = plan_trace(opts, config.as_ref())?;
    let pipeline = Pipeline::open(config.as_ref(), &opts.geoip, opts.overrides.as_deref())?
        .with_vantage_at(plan.vantage_at)
        .with_reverse_dns(reverse_dns(opts, config.as_ref()));
    let addrs = resolve::resolve(&plan.host, plan.family)
        .await
        .map_err(|e| CliError::Runtime(e.to_string()))?;
    let prober = TrippyProber::default();
    let mut records = Vec::new();
    let mut unreached = Vec::new();
    for addr in addrs {
        let request = TraceRequest {
            target: ProbeTarget {
                name: plan.name.clone(),
                host: plan.host.clone(),
                addr,
            },
            vantage: plan.vantage.clone(),
            settings: plan.settings.clone(),
            hint: None,
        };
        let record = pipeline.trace(&prober, request, &plan.policy).await?;
        if !record.trace.reached {
            unreached.push(addr);
        }
        let text = if opts.json {
            let mut line = serde_json::to_string(&record)
                .map_err(|e| CliError::Runtime(format!("cannot encode the record: {e}")))?;
            line.push('\n');
            line
        } else {
            render::table(&record)
        };
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(write_err)?;
        records.push(record);
    }
    if !unreached.is_empty() {
        let list: Vec<String> = unreached.iter().map(ToString::to_string).collect();
        return Err(CliError::Runtime(format!(
            "{} ({}) did not answer within the deadline of {:?}",
            plan.host,
            list.join(", "),
            plan.settings.deadline
        )));
    }
    Ok(records)
}

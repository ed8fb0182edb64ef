//! `transitwatch dns NAME...`: what each name depends on in DNS
//! ([`crate::dependency::dns`]): its CNAME chain, addresses, zone and name
//! servers (and the alias target's), and what could not be established;
//! as text or one JSON object per name (`schemas/dns.schema.json`).
//!
//! Exit 0 when every name came to at least one address, 1 when problems
//! left a name without any, 2 for a name that is no host name.

use super::{write_err, CliError};
use crate::dependency::dns::{
    resolve, valid_name, DnsDependencies, DnsResolver, DnsSettings, Zone, DNS_SCHEMA,
};
use serde::Serialize;
use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

/// Options of `transitwatch dns`.
#[derive(Debug, Clone)]
pub struct DnsOptions {
    /// The service names.
    pub names: Vec<String>,
    /// Recursive servers asked; empty: the system's.
    pub servers: Vec<SocketAddr>,
    /// The longest one query may take.
    pub timeout: Duration,
    /// The longest one name's resolution may take.
    pub deadline: Duration,
    /// One JSON object per name per line.
    pub json: bool,
}

/// One JSON line.
#[derive(Serialize)]
struct Line<'a> {
    schema: &'static str,
    #[serde(flatten)]
    deps: &'a DnsDependencies,
}

/// Resolve every name of `opts` in turn and write what each depends on.
/// Returns whether every name came to an address.
///
/// # Errors
/// A name that is no host name (usage); no system servers when none are
/// given, or a failed write (runtime).
pub async fn run(opts: &DnsOptions, out: &mut impl Write) -> Result<bool, CliError> {
    if let Some(bad) = opts.names.iter().find(|n| valid_name(n.trim()).is_none()) {
        return Err(CliError::Usage(format!(
            "`{bad}` is not a host name (letters, digits, `-` and `_` in labels of 1 to 63)"
        )));
    }
    let settings = DnsSettings {
        servers: opts.servers.clone(),
        timeout: opts.timeout,
    };
    let resolver = DnsResolver::new(&settings).map_err(|e| CliError::Runtime(e.to_string()))?;
    let mut all = true;
    for name in &opts.names {
        let deadline = tokio::time::Instant::now() + opts.deadline;
        let deps = resolve(name, &resolver, deadline).await;
        all &= deps.resolved();
        if opts.json {
            let line = serde_json::to_string(&Line {
                schema: DNS_SCHEMA,
                deps: &deps,
            })
            .map_err(|e| CliError::Runtime(format!("cannot write the result: {e}")))?;
            writeln!(out, "{line}").map_err(write_err)?;
        } else {
            write_text(&deps, out).map_err(write_err)?;
        }
    }
    out.flush().map_err(write_err)?;
    Ok(all)
}

fn write_text(d: &DnsDependencies, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(out, "{}", d.name)?;
    for step in &d.cname_chain {
        writeln!(out, "  cname {} -> {}", step.name, step.target)?;
    }
    match &d.canonical {
        Some(c) if !d.cname_chain.is_empty() => writeln!(out, "  canonical {c}")?,
        _ => {}
    }
    let addrs: Vec<String> = d.addresses.iter().map(ToString::to_string).collect();
    writeln!(
        out,
        "  addresses {}",
        if addrs.is_empty() {
            "(none)".to_string()
        } else {
            addrs.join(" ")
        }
    )?;
    write_zone(out, "zone", d.zone.as_ref())?;
    if !d.cname_chain.is_empty() {
        write_zone(out, "target zone", d.target_zone.as_ref())?;
    }
    for p in &d.problems {
        match &p.kind {
            crate::dependency::dns::ProblemKind::Other(detail) => writeln!(
                out,
                "  problem {}: {} {} ({detail})",
                p.kind.label(),
                p.query.label(),
                p.name
            )?,
            kind => writeln!(
                out,
                "  problem {}: {} {}",
                kind.label(),
                p.query.label(),
                p.name
            )?,
        }
    }
    Ok(())
}

fn write_zone(out: &mut impl Write, label: &str, zone: Option<&Zone>) -> std::io::Result<()> {
    let Some(zone) = zone else {
        return writeln!(out, "  {label} (unknown)");
    };
    writeln!(out, "  {label} {}", zone.name)?;
    for ns in &zone.nameservers {
        let addrs: Vec<String> = ns.addresses.iter().map(ToString::to_string).collect();
        if addrs.is_empty() {
            writeln!(out, "    {} (no address)", ns.name)?;
        } else {
            writeln!(out, "    {} {}", ns.name, addrs.join(" "))?;
        }
    }
    Ok(())
}

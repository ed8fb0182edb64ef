//! `transitwatch geo`: what every geolocation source says about an
//! address (`lookup`: every evidence item, the exchange LAN, each source's
//! own answer), the location hints of host names (`hint`), and overrides
//! turned into a shareable MMDB (`build`).

use super::{load_config, write_err, CliError};
use crate::geo;
use crate::pipeline::Pipeline;
use std::io::Write;
use std::path::PathBuf;

/// Options of `transitwatch geo lookup`.
#[derive(Debug, Clone, Default)]
pub struct GeoLookupOptions {
    /// Addresses to look up.
    pub addrs: Vec<std::net::IpAddr>,
    /// Configuration file (its `[geoip]` table).
    pub config: Option<PathBuf>,
    /// MMDB files (replace the config's).
    pub geoip: Vec<PathBuf>,
    /// Overrides CSV (replaces the config's).
    pub overrides: Option<PathBuf>,
    /// JSON lines instead of text.
    pub json: bool,
    /// A host name given for every address (its hints become evidence).
    pub hostname: Option<String>,
    /// A DNS server to look each address's name up at (reverse DNS).
    pub dns_server: Option<std::net::SocketAddr>,
}

/// Each address's host name: the one given, or the PTR name the server
/// answers within two query timeouts (none when it has none or is silent).
///
/// # Errors
/// The resolver or its runtime cannot be set up.
fn host_names(opts: &GeoLookupOptions) -> Result<Vec<Option<String>>, CliError> {
    let Some(server) = opts.dns_server else {
        return Ok(vec![opts.hostname.clone(); opts.addrs.len()]);
    };
    let config = crate::config::RdnsConfig {
        enabled: true,
        servers: vec![server],
        ..crate::config::RdnsConfig::default()
    };
    let resolver =
        crate::reverse_dns::ReverseDns::new(&config, crate::reverse_dns::RdnsMetrics::default())
            .map_err(|e| CliError::Runtime(format!("cannot ask {server} for names: {e}")))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Runtime(format!("cannot start the runtime: {e}")))?;
    Ok(runtime.block_on(async {
        let deadline = tokio::time::Instant::now() + config.timeout * 2;
        resolver.names(&opts.addrs, deadline).await
    }))
}

/// `transitwatch geo lookup`: what every source says about each address,
/// and which answer wins. Text: the answer, one line per source, then the
/// exchange (when the address is on an exchange LAN) and the evidence
/// items, strongest first (kind, source, country, city, what it said).
/// JSON: one object per address with `addr`, `geo`, `ixp`, `evidence`
/// and `sources`.
///
/// # Errors
/// Configuration and database errors.
pub fn lookup(opts: &GeoLookupOptions, out: &mut impl Write) -> Result<(), CliError> {
    let config = load_config(opts.config.as_ref())?;
    let pipeline = Pipeline::open(config.as_ref(), &opts.geoip, opts.overrides.as_deref())?;
    let db = pipeline.geo();
    let names = host_names(opts)?;
    let mut text = String::new();
    for (&addr, hostname) in opts.addrs.iter().zip(names) {
        let answers = db.lookup_all(addr);
        let decided = decide_alone(db, addr, hostname.clone());
        let evidence = if decided.evidence.is_empty() {
            db.evidence(addr)
        } else {
            decided.evidence.clone()
        };
        let ixp = db.ixp(addr);
        if opts.json {
            let line = serde_json::json!({
                "addr": addr,
                "hostname": hostname,
                "geo": decided,
                "ixp": ixp,
                "evidence": evidence,
                "sources": answers.iter().map(|a| serde_json::json!({
                    "source": a.source,
                    "database": a.database,
                    "geo": a.geo,
                    "note": a.note,
                })).collect::<Vec<_>>(),
            });
            text.push_str(&line.to_string());
            text.push('\n');
        } else {
            let named = hostname
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default();
            let sure = decided
                .confidence
                .map(|c| format!(" [confidence {c}]"))
                .unwrap_or_default();
            text.push_str(&format!("{addr}{named}: {}{sure}\n", describe(&decided)));
            for a in &answers {
                let said = a
                    .geo
                    .as_ref()
                    .map_or_else(|| "nothing".to_string(), describe);
                let note = a
                    .note
                    .as_deref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default();
                text.push_str(&format!("  {} [{}]: {said}{note}\n", a.source, a.database));
            }
            if let Some(x) = &ixp {
                let city = x
                    .city
                    .as_deref()
                    .map(|c| format!(", {c}"))
                    .unwrap_or_default();
                text.push_str(&format!(
                    "  exchange: {} (PeeringDB ix {}){city}, {}\n",
                    x.name, x.id, x.country
                ));
            }
            if evidence.is_empty() {
                text.push_str("  evidence: none\n");
            } else {
                text.push_str("  evidence:\n");
            }
            for e in &evidence {
                let or_dash = |s: Option<String>| s.unwrap_or_else(|| "-".to_string());
                let status = if decided.evidence.is_empty() {
                    String::new()
                } else {
                    format!("{:<9} ", e.status.as_str())
                };
                text.push_str(&format!(
                    "    {status}{:<12} {:<24} {:<2} {:<16} {}\n",
                    e.kind.as_str(),
                    e.source,
                    or_dash(e.country.map(|c| c.to_string())),
                    or_dash(e.city.clone()),
                    e.detail.as_deref().unwrap_or_default()
                ));
            }
        }
    }
    out.write_all(text.as_bytes()).map_err(write_err)
}

fn describe(g: &crate::model::HopGeo) -> String {
    if g.country.is_none() && g.asn.is_none() {
        return "not located".to_string();
    }
    let mut parts = Vec::new();
    if let Some(c) = g.country {
        parts.push(c.to_string());
    }
    if let Some(city) = &g.city {
        parts.push(city.clone());
    }
    if let (Some(lat), Some(lon)) = (g.lat, g.lon) {
        let radius = g
            .accuracy_km
            .map(|r| format!(" ±{r} km"))
            .unwrap_or_default();
        parts.push(format!("{lat:.4},{lon:.4}{radius}"));
    }
    if let Some(asn) = g.asn {
        let org = g
            .as_org
            .as_deref()
            .map(|o| format!(" {o}"))
            .unwrap_or_default();
        parts.push(format!("AS{asn}{org}"));
    }
    let by = g
        .database
        .as_deref()
        .map(|d| format!(" (from {d})"))
        .unwrap_or_default();
    format!("{}{by}", parts.join(", "))
}

/// Where `addr` is, decided as a trace's hop would be (without a
/// round-trip time): every source's item and the name's hints, each with
/// what the decision made of it.
fn decide_alone(
    db: &geo::GeoDb,
    addr: std::net::IpAddr,
    hostname: Option<String>,
) -> crate::model::HopGeo {
    let mut one = crate::model::Trace {
        target: crate::model::TargetRef {
            name: addr.to_string(),
            host: addr.to_string(),
            addr: Some(addr),
        },
        vantage: crate::model::VantageRef {
            name: String::new(),
            country: None,
        },
        protocol: crate::model::Protocol::Icmp,
        port: None,
        started_at: crate::units::Timestamp::now(),
        reached: false,
        hops: vec![crate::model::Hop {
            ttl: 1,
            addr: Some(addr),
            addrs: vec![addr],
            sent: 0,
            received: 0,
            rtt_ms: None,
            geo: crate::model::HopGeo::default(),
            hostname,
            mpls: Vec::new(),
        }],
    };
    geo::enrich(&mut one, db, None);
    one.hops.remove(0).geo
}

/// `transitwatch geo hint`: the location hints each host name carries, best
/// first, without any lookup. Text: a table, one row per hint (the name on
/// its best hint's row, `-` where a name carries none). `--json`: one object per name per
/// line, `country`/`city`/`code`/`kind`/`lat`/`lon` of the best hint (null
/// where the name carries none) and every hint under `hints`.
///
/// # Errors
/// The rules file is wrong, or the output cannot be written.
pub fn hint(
    names: &[String],
    rules: Option<&std::path::Path>,
    json: bool,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let loaded;
    let hints_of = match rules {
        Some(path) => {
            loaded = geo::HintTable::with_rules(path)?;
            &loaded
        }
        None => geo::HintTable::builtin(),
    };
    let mut text = String::new();
    let mut rows: Vec<[String; 6]> = Vec::new();
    for name in names {
        let hints = hints_of.hints(name);
        if json {
            let best = hints.first();
            let line = serde_json::json!({
                "name": name,
                "country": best.map(|h| h.country),
                "city": best.and_then(|h| h.city.clone()),
                "code": best.map(|h| h.code.clone()),
                "kind": best.map(|h| h.kind.as_str()),
                "lat": best.and_then(|h| h.coords).map(|c| c.lat),
                "lon": best.and_then(|h| h.coords).map(|c| c.lon),
                "rule": best.and_then(|h| h.rule.clone()),
                "hints": hints.iter().map(|h| serde_json::json!({
                    "country": h.country,
                    "city": h.city,
                    "code": h.code,
                    "kind": h.kind.as_str(),
                    "lat": h.coords.map(|c| c.lat),
                    "lon": h.coords.map(|c| c.lon),
                    "rule": h.rule,
                })).collect::<Vec<_>>(),
            });
            text.push_str(&line.to_string());
            text.push('\n');
            continue;
        }
        if hints.is_empty() {
            rows.push([
                name.clone(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
            ]);
        }
        for (i, h) in hints.iter().enumerate() {
            let shown = if i == 0 { name.clone() } else { String::new() };
            let kind = match &h.rule {
                Some(r) => format!("rule {r}"),
                None => h.kind.to_string(),
            };
            rows.push([
                shown,
                h.country.to_string(),
                h.city.clone().unwrap_or_else(|| "-".into()),
                kind,
                h.code.clone(),
                h.coords
                    .map_or_else(|| "-".into(), |c| format!("{:.4},{:.4}", c.lat, c.lon)),
            ]);
        }
    }
    if !json {
        text.push_str(&table(&rows));
    }
    out.write_all(text.as_bytes()).map_err(write_err)
}

/// Rows under the header `NAME COUNTRY CITY KIND CODE LAT,LON`, aligned.
fn table(rows: &[[String; 6]]) -> String {
    let header = ["NAME", "COUNTRY", "CITY", "KIND", "CODE", "LAT,LON"].map(String::from);
    let mut widths = [0usize; 6];
    for row in std::iter::once(&header).chain(rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, (w, cell)) in widths.iter().zip(row).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            let pad = w - cell.chars().count();
            line.extend(std::iter::repeat_n(' ', pad));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `transitwatch geo build`: turn an overrides CSV into an MMDB of
/// `database_type` ([`geo::BUILD_DATABASE_TYPE`] for the operator's
/// overrides, any other, not a public vendor's, for an ordinary database).
///
/// # Errors
/// The CSV or the output cannot be used, or the type is refused.
pub fn build(
    csv: &std::path::Path,
    output: &std::path::Path,
    database_type: &str,
) -> Result<String, CliError> {
    let report = geo::build_with_type(csv, output, database_type)?;
    Ok(format!(
        "{}: {} prefixes from {} (database type {})",
        output.display(),
        report.prefixes,
        csv.display(),
        database_type.trim()
    ))
}

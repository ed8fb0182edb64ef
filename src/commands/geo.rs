//! `transitwatch geo`: what every geolocation source says about an
//! address (`lookup`: every evidence item, the exchange LAN, each source's
//! own answer), and overrides turned into a shareable MMDB (`build`).

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
    let mut text = String::new();
    for &addr in &opts.addrs {
        let decided = db.locate(addr);
        let answers = db.lookup_all(addr);
        let evidence = db.evidence(addr);
        let ixp = db.ixp(addr);
        if opts.json {
            let line = serde_json::json!({
                "addr": addr,
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
            text.push_str(&format!("{addr}: {}\n", describe(&decided)));
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
                text.push_str(&format!(
                    "    {:<12} {:<24} {:<2} {:<16} {}\n",
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

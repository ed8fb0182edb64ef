//! Verdicts on the namespace lab: the vantage is in Lesotho; the lab's
//! overrides (`tests/lab/lab-geo.csv`) place the ZA routers in Johannesburg
//! and the foreign service in Dublin.

use crate::support;

use serde_json::Value;
use std::io::Write;
use std::path::Path;
use support::{root, text, Lab};

/// A Lesotho vantage. The lab's domestic links have no length, so a
/// Maseru router answers in microseconds; only the plausibility test gives
/// the vantage's coordinates.
fn config(dir: &Path, coordinates: bool, geoip: &str) -> std::path::PathBuf {
    let path = dir.join("transitwatch.toml");
    let mut f = std::fs::File::create(&path).unwrap();
    writeln!(f, "[vantage]\nname = \"maseru-lab\"\ncountry = \"LS\"").unwrap();
    if coordinates {
        writeln!(f, "latitude = -29.31\nlongitude = 27.48").unwrap();
    }
    writeln!(f, "[policy]\nhome = \"LS\"\n{geoip}").unwrap();
    path
}

fn record(lab: &Lab, args: &[&str]) -> Value {
    let out = lab.transitwatch(args);
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).expect("one JSON record")
}

fn codes(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn verdicts_follow_the_route_and_the_host() {
    let Some(lab) = Lab::up("verdicts_follow_the_route_and_the_host") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let overrides = root().join("tests/lab/lab-geo.csv");
    let cfg = config(
        dir.path(),
        false,
        &format!("[geoip]\noverrides = {:?}", overrides.to_str().unwrap()),
    );
    let cfg = cfg.to_str().unwrap();

    for target in [lab.addr("DOMESTIC_V4"), lab.addr("DOMESTIC_V6")] {
        let r = record(&lab, &["trace", target, "--config", cfg, "--json"]);
        assert_eq!(r["verdict"]["class"], "domestic", "{r}");
        assert_eq!(codes(&r["verdict"]["countries"]), ["LS"]);
        assert_eq!(r["verdict"]["violation"], false);
        for hop in r["hops"].as_array().unwrap() {
            assert_eq!(hop["geo"]["source"], "override", "{hop}");
            assert!(hop["geo"]["plausible"].is_null(), "{hop}");
        }
    }

    let r = record(
        &lab,
        &["trace", lab.addr("FOREIGN_V4"), "--config", cfg, "--json"],
    );
    assert_eq!(r["verdict"]["class"], "foreign_destination", "{r}");
    assert_eq!(codes(&r["verdict"]["countries"]), ["LS", "IE"]);

    lab.route("za");
    for target in [lab.addr("DOMESTIC_V4"), lab.addr("DOMESTIC_V6")] {
        let r = record(&lab, &["trace", target, "--config", cfg, "--json"]);
        let v = &r["verdict"];
        assert_eq!(v["class"], "foreign_transit", "{r}");
        assert_eq!(codes(&v["countries"]), ["LS", "ZA", "LS"]);
        assert_eq!(codes(&v["foreign_countries"]), ["ZA"]);
        assert_eq!(v["foreign_asns"], serde_json::json!([64510]));
        assert_eq!(v["violation"], true);
        let why = v["explanation"].as_str().unwrap();
        assert!(
            why.contains("hops 2-3 are located in South Africa"),
            "{why}"
        );
        assert!(why.contains("AS64510"), "{why}");
    }

    // The same trace as a table ends with the plain-language sentence.
    let out = lab.transitwatch(&["trace", lab.addr("DOMESTIC_V4"), "--config", cfg]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("verdict: foreign_transit"), "{table}");
    assert!(table.contains(" ZA      AS64510"), "{table}");
}

#[test]
fn a_router_placed_9000_km_away_that_answers_in_microseconds_is_implausible() {
    let Some(lab) = Lab::up("a_router_placed_9000_km_away_is_implausible") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // A city database (built the way sites share overlays) that puts the
    // domestic core router ls2 in Dublin, about 9,700 km from Maseru.
    let csv = dir.path().join("city.csv");
    std::fs::write(
        &csv,
        "198.18.2.0/24,IE,Dublin,53.35,-6.26,64520,misplaced router\n\
         198.18.1.0/24,LS,Maseru,-29.31,27.48,64500,\n\
         198.18.3.0/24,LS,Maseru,-29.31,27.48,64501,\n\
         198.51.100.0/24,LS,Maseru,-29.31,27.48,64501,\n",
    )
    .unwrap();
    let mmdb = dir.path().join("city.mmdb");
    let out = std::process::Command::new(support::bin())
        .args(["geo", "build", "--csv"])
        .arg(&csv)
        .arg("--output")
        .arg(&mmdb)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));

    let cfg = config(
        dir.path(),
        true,
        &format!("[geoip]\nfiles = [{:?}]", mmdb.to_str().unwrap()),
    );
    let r = record(
        &lab,
        &[
            "trace",
            lab.addr("DOMESTIC_V4"),
            "--config",
            cfg.to_str().unwrap(),
            "--json",
        ],
    );
    let ls2 = &r["hops"][1];
    assert_eq!(ls2["addr"], lab.addr("LS2_V4"));
    assert_eq!(ls2["geo"]["country"], "IE");
    assert_eq!(ls2["geo"]["plausible"], false, "{ls2}");
    assert!(ls2["rtt_ms"]["best"].as_f64().unwrap() < 1.0);
    assert_eq!(r["hops"][0]["geo"]["plausible"], true);
    let v = &r["verdict"];
    // The implausible hop is no evidence: the path stays domestic.
    assert_eq!(v["class"], "domestic", "{r}");
    assert_eq!(codes(&v["foreign_countries"]), Vec::<String>::new());
    assert_eq!(v["suspect_countries"][0]["country"], "IE", "{r}");
    assert_eq!(v["suspect_countries"][0]["ttls"], serde_json::json!([2]));
}

//! Evidence-based geolocation on the namespace lab: the vantage in Maseru
//! with its coordinates, no operator overrides, and the sources a real
//! operator would have: the lab's DNS server with the routers' PTR names, a
//! third-party city database that is wrong for two routers
//! (`tests/lab/lab-geo-db.csv`), the domestic network's geofeed
//! (`lab-geofeed.csv`) and a PeeringDB dump with a national exchange LAN on
//! link 3 and a South African one on link 5 (`lab-peeringdb.json`). The
//! lab's foreign links carry real delay, so the round-trip times bound
//! where each hop can be with realistic numbers.

use crate::support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use support::{lab_geo_database, root, text, Lab};

/// The configuration of an operator in Maseru with these sources.
fn config(dir: &Path, dns: &str) -> PathBuf {
    let db = lab_geo_database(dir);
    let geofeed = root().join("tests/lab/lab-geofeed.csv");
    let peeringdb = root().join("tests/lab/lab-peeringdb.json");
    let path = dir.join("transitwatch.toml");
    let cfg = format!(
        r#"
[vantage]
name = "maseru-lab"
country = "LS"
latitude = -29.31
longitude = 27.48

[policy]
home = "LS"

[geoip]
files = [{db:?}]
geofeeds = [{geofeed:?}]
peeringdb = {peeringdb:?}

[rdns]
servers = [{dns:?}]
"#,
        db = db.to_str().expect("UTF-8 path"),
        geofeed = geofeed.to_str().expect("UTF-8 path"),
        peeringdb = peeringdb.to_str().expect("UTF-8 path"),
    );
    std::fs::write(&path, cfg).unwrap();
    path
}

/// A lab with its DNS server and that configuration, or `None` (skipped).
fn setup(test: &str) -> Option<(Lab, tempfile::TempDir, PathBuf)> {
    let lab = Lab::up(test)?;
    let dns = lab.dns_server(test)?;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &dns);
    Some((lab, dir, cfg))
}

/// `transitwatch trace TARGET --config CFG --json` at the vantage.
fn trace(lab: &Lab, cfg: &Path, target: &str) -> Value {
    let out = lab.transitwatch(&["trace", target, "--config", cfg.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).expect("one JSON record")
}

/// The hop that answered from `addr`.
fn hop<'r>(record: &'r Value, addr: &str) -> &'r Value {
    record["hops"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["addr"] == addr)
        .unwrap_or_else(|| panic!("no hop {addr} in {record}"))
}

/// The evidence items of `kind` of a hop.
fn items<'h>(hop: &'h Value, kind: &str) -> Vec<&'h Value> {
    hop["geo"]["evidence"]
        .as_array()
        .map(|e| e.iter().filter(|i| i["kind"] == kind).collect())
        .unwrap_or_default()
}

fn claims(record: &Value) -> Vec<&Value> {
    record["verdict"]["claims"]
        .as_array()
        .map(|c| c.iter().collect())
        .unwrap_or_default()
}

fn exchanges(record: &Value) -> Vec<&Value> {
    record["verdict"]["exchanges"]
        .as_array()
        .map(|c| c.iter().collect())
        .unwrap_or_default()
}

#[test]
fn a_maseru_router_a_database_puts_in_dublin_is_located_by_name_and_rtt() {
    let test = "a_maseru_router_a_database_puts_in_dublin_is_located_by_name_and_rtt";
    let Some((lab, _dir, cfg)) = setup(test) else {
        return;
    };
    for v in ["V4", "V6"] {
        let a = |key: &str| lab.addr(&format!("{key}_{v}")).to_string();
        let r = trace(&lab, &cfg, &a("DOMESTIC"));
        let ls2 = hop(&r, &a("LS2"));
        assert_eq!(ls2["hostname"], lab.addr("LS2_NAME"), "{ls2}");
        assert!(ls2["rtt_ms"]["best"].as_f64().unwrap() < 2.0, "{ls2}");
        let geo = &ls2["geo"];
        assert_eq!(geo["country"], "LS", "{ls2}");
        assert_eq!(geo["confidence"], "high", "{ls2}");
        // The name says Maseru (MSU) and is what the location rests on.
        let names = items(ls2, "hostname");
        assert!(
            names
                .iter()
                .any(|i| i["country"] == "LS" && i["status"] == "chosen"),
            "{ls2}"
        );
        // The database's Dublin is ruled out by the round-trip time, with a
        // reason that says so.
        let db = items(ls2, "database");
        let dublin = db
            .iter()
            .find(|i| i["country"] == "IE")
            .unwrap_or_else(|| panic!("no database item for Dublin: {ls2}"));
        assert_eq!(dublin["status"], "rejected", "{ls2}");
        let why = dublin["reason"].as_str().unwrap_or_default();
        assert!(why.contains("ms"), "{why}");

        // No false alert: the path and the destination are at home.
        let verdict = &r["verdict"];
        assert_eq!(verdict["class"], "domestic", "{r}");
        assert_eq!(verdict["violation"], false, "{r}");
        assert_eq!(verdict["foreign_countries"], serde_json::json!([]), "{r}");
        assert!(claims(&r).iter().all(|c| c["country"] == "LS"), "{r}");
        let dest = hop(&r, &a("DOMESTIC"));
        assert_eq!(dest["geo"]["country"], "LS", "{dest}");
        assert!(!items(dest, "geofeed").is_empty(), "{dest}");

        // `geo lookup` asks the lab's DNS server for ls2's name and weighs
        // its hints the same way (without a round-trip time).
        let dns = lab.dns_server(test).expect("the lab's DNS server");
        let out = lab.transitwatch(&[
            "geo",
            "lookup",
            &a("LS2"),
            "--config",
            cfg.to_str().unwrap(),
            "--dns-server",
            &dns,
            "--json",
        ]);
        assert!(out.status.success(), "{}", text(&out));
        let looked: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(looked["hostname"], lab.addr("LS2_NAME"), "{looked}");
        assert_eq!(looked["geo"]["country"], "LS", "{looked}");
        assert!(
            looked["evidence"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["kind"] == "hostname" && e["status"] == "chosen"),
            "{looked}"
        );
    }
}

#[test]
fn a_router_the_database_calls_lesotho_whose_name_says_johannesburg_is_in_za() {
    let test = "a_router_the_database_calls_lesotho_whose_name_says_johannesburg_is_in_za";
    let Some((lab, _dir, cfg)) = setup(test) else {
        return;
    };
    lab.route("za");
    for v in ["V4", "V6"] {
        let a = |key: &str| lab.addr(&format!("{key}_{v}")).to_string();
        let r = trace(&lab, &cfg, &a("DOMESTIC"));
        let za1 = hop(&r, &a("ZA1"));
        assert_eq!(za1["hostname"], lab.addr("ZA1_NAME"), "{za1}");
        // Johannesburg is 370 km from Maseru: the delay line's 5 ms round
        // trip allows it.
        assert!(za1["rtt_ms"]["best"].as_f64().unwrap() >= 5.0, "{za1}");
        let geo = &za1["geo"];
        assert_eq!(geo["country"], "ZA", "{za1}");
        assert!(
            items(za1, "hostname")
                .iter()
                .any(|i| i["country"] == "ZA" && i["status"] == "chosen"),
            "{za1}"
        );
        // The database's Lesotho is outweighed by the name, not taken.
        assert!(
            items(za1, "database")
                .iter()
                .any(|i| i["country"] == "LS" && i["status"] == "disagrees"),
            "{za1}"
        );

        let verdict = &r["verdict"];
        assert_eq!(verdict["class"], "foreign_transit", "{r}");
        assert_eq!(verdict["violation"], true, "{r}");
        let za_ttl = za1["ttl"].as_u64().unwrap();
        let za = claims(&r)
            .into_iter()
            .find(|c| c["country"] == "ZA")
            .unwrap_or_else(|| panic!("no claim for ZA: {r}"));
        assert_eq!(za["suspected"], false, "{za}");
        assert!(
            za["ttls"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t.as_u64() == Some(za_ttl)),
            "{za}"
        );
        assert!(
            ["medium", "high"].contains(&za["confidence"].as_str().unwrap_or_default()),
            "{za}"
        );
        // The reason names the evidence: the host name's city and the
        // round-trip time.
        let why = za["reason"].as_str().unwrap_or_default();
        assert!(why.contains("Johannesburg"), "{why}");
        assert!(why.contains(" ms"), "{why}");

        // The ZA route crosses the exchange in Johannesburg: a foreign one.
        assert!(
            exchanges(&r)
                .iter()
                .any(|x| x["ixp"]["country"] == "ZA" && x["domestic"] == false),
            "{r}"
        );
    }
}

#[test]
fn a_hop_on_the_national_exchange_lan_marks_the_path_as_exchanging_locally() {
    let test = "a_hop_on_the_national_exchange_lan_marks_the_path_as_exchanging_locally";
    let Some((lab, _dir, cfg)) = setup(test) else {
        return;
    };
    for v in ["V4", "V6"] {
        let a = |key: &str| lab.addr(&format!("{key}_{v}")).to_string();
        let r = trace(&lab, &cfg, &a("DOMESTIC"));
        // gw answers from its address on the exchange LAN (link 3).
        let gw = hop(&r, &a("GW_VIA_LS"));
        assert_eq!(gw["hostname"], lab.addr("GW_VIA_LS_NAME"), "{gw}");
        assert_eq!(gw["geo"]["country"], "LS", "{gw}");
        assert_eq!(gw["geo"]["ixp"]["name"], "LS-IX Maseru", "{gw}");
        assert_eq!(gw["geo"]["ixp"]["country"], "LS", "{gw}");
        assert!(!items(gw, "ixp").is_empty(), "{gw}");

        let crossings = exchanges(&r);
        assert_eq!(crossings.len(), 1, "{r}");
        let x = crossings[0];
        assert_eq!(x["ttl"], gw["ttl"], "{x}");
        assert_eq!(x["ixp"]["id"], 64001, "{x}");
        assert_eq!(x["ixp"]["name"], "LS-IX Maseru", "{x}");
        assert_eq!(x["domestic"], true, "{x}");
        assert_eq!(r["verdict"]["class"], "domestic", "{r}");
    }
}

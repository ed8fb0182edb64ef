//! `transitwatch whatif` over a store with known latest records: a
//! service through South Africa, one moved onto that route after a given
//! moment, a dual-stack service with its IPv4 path via ZA and its IPv6
//! path at home, a service hosted in Ireland, a domestic one whose two
//! traces started the same second. Each question's answer is what the
//! records imply, in JSON (valid under `schemas/whatif.schema.json`) and
//! in text; usage errors exit 2 naming what is wrong.

use crate::support;

use std::path::Path;
use std::process::{Command, Output};
use support::records::{domestic, in_ie, new_trace, via_za};
use transitwatch::model::TraceRecord;
use transitwatch::store::Store;
use transitwatch::units::Timestamp;

/// A day before now, to the minute: every record is in the past.
fn t0() -> i64 {
    let now = Timestamp::now().unix();
    now - 86_400 - now % 60
}

/// The organisations of the lab's networks (the overrides name none).
fn named(mut record: TraceRecord) -> TraceRecord {
    for hop in &mut record.trace.hops {
        hop.geo.as_org = match hop.geo.asn {
            Some(64500 | 64501) => Some("Lesotho Telecom".into()),
            Some(64510) => Some("Cloudy Transit (Pty) Ltd".into()),
            Some(64520) => Some("Emerald Hosting Ltd".into()),
            _ => None,
        };
    }
    record
}

/// The history; the latest record of each path is the one the comment
/// gives.
fn history(path: &Path, t0: i64) {
    let mut store = Store::open(path).unwrap();
    let mut put = |key: &str, record: TraceRecord| {
        store.insert(&new_trace(key, named(record))).unwrap();
    };
    // bank: via ZA (home an hour before).
    put("bank", domestic("bank", t0 - 3600));
    put("bank", via_za("bank", t0));
    // gov: at home until two hours after t0, then via ZA (stored first).
    put("gov", via_za("gov", t0 + 7200));
    put("gov", domestic("gov", t0 - 600));
    // dual: IPv4 via ZA, IPv6 at home.
    put("dual/ipv4", via_za("dual", t0));
    put("dual/ipv6", domestic("dual", t0));
    // shop: hosted in Ireland.
    put("shop", in_ie("shop", t0));
    // home: two traces the same second; the one stored last, at home, wins.
    put("home", via_za("home", t0));
    put("home", domestic("home", t0));
}

fn whatif(db: &Path, args: &[&str]) -> Output {
    Command::new(support::bin())
        .args(["whatif", "--store"])
        .arg(db)
        .args(args)
        .output()
        .unwrap()
}

fn json(db: &Path, args: &[&str]) -> serde_json::Value {
    let mut all = args.to_vec();
    all.extend(["--format", "json"]);
    let out = whatif(db, &all);
    assert!(
        out.status.success(),
        "whatif {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    crate::support::schema::assert_valid("whatif.schema.json", &answer);
    answer
}

/// Service name → effect, in name order.
fn effects(answer: &serde_json::Value) -> Vec<(String, String)> {
    answer["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["effect"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| ((*a).to_string(), (*b).to_string()))
        .collect()
}

fn service<'a>(answer: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    answer["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no service {name}"))
}

fn fixture() -> (tempfile::TempDir, std::path::PathBuf, i64) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("transitwatch.db");
    let t0 = t0();
    history(&db, t0);
    (dir, db, t0)
}

#[test]
fn a_country_fails_the_services_whose_latest_paths_cross_or_end_in_it() {
    let (_dir, db, t0) = fixture();
    let za = json(&db, &["--country", "ZA"]);
    assert_eq!(za["schema"], "transitwatch.whatif/1");
    assert_eq!(za["failure"]["kind"], "country");
    assert_eq!(za["failure"]["country"], "ZA");
    assert_eq!(za["failure"]["description"], "South Africa (ZA)");
    assert_eq!(
        effects(&za),
        pairs(&[
            ("bank", "loses_route"),
            ("dual", "degraded"),
            ("gov", "loses_route"),
            ("home", "unaffected"),
            ("shop", "unaffected"),
        ])
    );
    assert_eq!(
        za["counts"],
        serde_json::json!({
            "services": 5, "paths": 6, "loses_hosting": 0, "loses_route": 2,
            "loses_dns_only": 0, "loses_dns": 0,
            "degraded": 1, "unaffected": 2, "unknown": 0
        })
    );
    assert_eq!(
        za["sentences"][0],
        "If South Africa (ZA) becomes unavailable, 2 of 5 national services lose their route: bank, gov; 1 is degraded: dual."
    );
    assert_eq!(za["sentences"][1], "2 services are unaffected: home, shop.");
    // The evidence: the ZA router at hop 2, accepted by the verdict, with
    // the stored trace it comes from.
    let bank = &service(&za, "bank")["paths"][0];
    assert_eq!(bank["depends"], "route");
    assert_eq!(bank["class"], "foreign_transit");
    assert!(bank["trace_id"].as_i64().unwrap() > 0);
    let hops = bank["hops"].as_array().unwrap();
    assert_eq!(hops.len(), 1, "{bank}");
    assert_eq!(hops[0]["ttl"], 2);
    assert_eq!(hops[0]["addr"], "198.18.4.2");
    assert_eq!(hops[0]["role"], "transit");
    assert_eq!(hops[0]["country"], "ZA");
    assert_eq!(hops[0]["asn"], 64510);
    assert!(hops[0]["confidence"].is_string(), "{}", hops[0]);
    // The dual-stack service: the IPv4 path depends, the IPv6 one does not.
    let dual = service(&za, "dual")["paths"].as_array().unwrap();
    let depends: Vec<(&str, &str)> = dual
        .iter()
        .map(|p| {
            (
                p["path_key"].as_str().unwrap(),
                p["depends"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(depends, [("dual/ipv4", "route"), ("dual/ipv6", "none")]);
    assert_eq!(
        za["networks"],
        serde_json::json!([{
            "asn": 64510, "name": "Cloudy Transit (Pty) Ltd", "services": ["bank", "dual", "gov"]
        }])
    );

    // Before gov moved: its latest path then was at home.
    let at = Timestamp::from_unix(t0 + 60).unwrap().to_string();
    let earlier = json(&db, &["--country", "za", "--at", &at]);
    assert_eq!(earlier["at"], at.as_str());
    assert_eq!(service(&earlier, "gov")["effect"], "unaffected");
    assert_eq!(earlier["counts"]["loses_route"], 1);
    // Before anything was stored: nothing to judge, and no error.
    let before = Timestamp::from_unix(t0 - 7200).unwrap().to_string();
    let empty = json(&db, &["--country", "ZA", "--at", &before]);
    assert_eq!(empty["counts"]["services"], 0);
    assert_eq!(
        empty["sentences"][0],
        format!(
            "No national service has a trace at or before {before}: there is nothing to judge."
        )
    );

    // Ireland: the shop loses its hosting.
    let ie = json(&db, &["--country", "IE"]);
    assert_eq!(ie["failure"]["description"], "Ireland (IE)");
    assert_eq!(service(&ie, "shop")["effect"], "loses_hosting");
    let shop = &service(&ie, "shop")["paths"][0];
    assert_eq!(shop["depends"], "hosting");
    let roles: Vec<(u64, &str)> = shop["hops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["ttl"].as_u64().unwrap(), h["role"].as_str().unwrap()))
        .collect();
    assert_eq!(roles, [(2, "transit"), (3, "destination")]);
    assert_eq!(
        (
            ie["counts"]["loses_hosting"].as_u64(),
            ie["counts"]["unaffected"].as_u64()
        ),
        (Some(1), Some(4))
    );
    assert_eq!(
        ie["sentences"][0],
        "If Ireland (IE) becomes unavailable, 1 of 5 national services loses its hosting: shop."
    );
}

#[test]
fn networks_match_by_as_number_and_organisations_by_name() {
    let (_dir, db, _) = fixture();
    let za = effects(&json(&db, &["--country", "ZA"]));
    // The ZA transit network: the same services as the country.
    let asn = json(&db, &["--asn", "64510"]);
    assert_eq!(effects(&asn), za);
    assert_eq!(asn["failure"]["kind"], "asn");
    assert_eq!(asn["failure"]["asn"], 64510);
    assert_eq!(
        asn["failure"]["description"],
        "AS64510 (Cloudy Transit (Pty) Ltd)"
    );
    assert!(asn["sentences"][0]
        .as_str()
        .unwrap()
        .starts_with("If AS64510 (Cloudy Transit (Pty) Ltd) becomes unavailable, 2 of 5"));
    // The Irish hosting network by its AS.
    let hosting = json(&db, &["--asn", "AS64520"]);
    assert_eq!(service(&hosting, "shop")["effect"], "loses_hosting");
    // The organisation, by part of its name in any case.
    for text in ["cloudy", "CLOUDY TRANSIT", "Transit (Pty)"] {
        let org = json(&db, &["--org", text]);
        assert_eq!(effects(&org), za, "{text}");
        assert_eq!(org["failure"]["kind"], "org");
        assert_eq!(org["failure"]["org"], text);
        assert_eq!(org["networks"][0]["asn"], 64510, "{text}");
        assert_eq!(
            org["sentences"][1],
            format!("`{text}` matches the organisation of AS64510 (Cloudy Transit (Pty) Ltd).")
        );
    }
    let emerald = json(&db, &["--org", "emerald"]);
    assert_eq!(service(&emerald, "shop")["effect"], "loses_hosting");
    // A name no network has: nothing depends on it; not an error.
    let none = json(&db, &["--org", "Nimbus"]);
    assert_eq!(none["counts"]["unaffected"], 5);
    assert_eq!(none["networks"], serde_json::json!([]));
    assert_eq!(
        none["sentences"][1],
        "No hop of the latest paths belongs to a network whose organisation matches `Nimbus`: nothing depends on it."
    );
}

#[test]
fn the_text_form_says_it_in_sentences_and_a_table() {
    let (dir, db, _) = fixture();
    // One fixed moment for both runs: the text says "at or before" it, and
    // "now" would differ between them across a second's boundary.
    let at = "2030-01-01T00:00:00Z";
    let out = whatif(&db, &["--country", "ZA", "--at", at]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with(
            "If South Africa (ZA) becomes unavailable, 2 of 5 national services lose their route: bank, gov; 1 is degraded: dual.\n\
             2 services are unaffected: home, shop.\n"
        ),
        "{text}"
    );
    let row = |start: &str| {
        text.lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no row {start}: {text}"))
            .to_string()
    };
    assert!(row("service").contains("matching hops"));
    let bank = row("bank ");
    assert!(bank.contains("loses route"), "{bank}");
    assert!(bank.contains("2 198.18.4.2 (ZA"), "{bank}");
    assert!(bank.contains("AS64510 Cloudy Transit (Pty) Ltd"), "{bank}");
    assert!(row("dual ").contains("degraded"));
    assert!(text.contains("dual/ipv6"), "{text}");
    assert!(text.contains("6 paths of 5 services"), "{text}");

    // The same store named by a configuration file.
    let config = dir.path().join("tw.toml");
    std::fs::write(
        &config,
        "[vantage]\nname = \"m\"\ncountry = \"LS\"\n[store]\npath = \"transitwatch.db\"\n",
    )
    .unwrap();
    let out = Command::new(support::bin())
        .args(["whatif", "--country", "ZA", "--at", at, "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), text);
}

#[test]
fn the_store_hands_over_the_latest_trace_of_each_path() {
    let (_dir, db, t0) = fixture();
    let store = Store::open_read_only(&db).unwrap();
    let mut seen = Vec::new();
    let n = store
        .latest_per_path(None, |t| {
            let t = t.unwrap();
            seen.push((
                t.path_key,
                t.record.trace.started_at.unix() - t0,
                t.record.verdict.class,
            ));
        })
        .unwrap();
    assert_eq!(n, 6);
    let keys: Vec<(&str, i64, &str)> = seen
        .iter()
        .map(|(k, at, class)| (k.as_str(), *at, class.as_str()))
        .collect();
    assert_eq!(
        keys,
        [
            ("bank", 0, "foreign_transit"),
            ("dual/ipv4", 0, "foreign_transit"),
            ("dual/ipv6", 0, "domestic"),
            ("gov", 7200, "foreign_transit"),
            ("home", 0, "domestic"),
            ("shop", 0, "foreign_destination"),
        ]
    );
    let mut at_t0 = Vec::new();
    store
        .latest_per_path(Some(t0), |t| {
            let t = t.unwrap();
            at_t0.push((t.path_key, t.record.trace.started_at.unix() - t0));
        })
        .unwrap();
    assert!(at_t0.contains(&("gov".to_string(), -600)), "{at_t0:?}");
    assert_eq!(at_t0.len(), 6);
    let mut early = 0;
    store
        .latest_per_path(Some(t0 - 3600), |_| early += 1)
        .unwrap();
    assert_eq!(early, 1, "only the bank's first trace");
}

fn assert_usage(out: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("transitwatch: error: "), "{stderr}");
    for n in needles {
        assert!(stderr.contains(n), "`{n}` missing: {stderr}");
    }
    assert!(out.stdout.is_empty());
}

#[test]
fn usage_errors_exit_2_naming_what_is_wrong() {
    let (_dir, db, _) = fixture();
    assert_usage(&whatif(&db, &[]), &["--country", "--asn", "--org"]);
    assert_usage(
        &whatif(&db, &["--country", "ZA", "--asn", "64510"]),
        &["--country", "--asn"],
    );
    assert_usage(
        &whatif(&db, &["--org", "x", "--country", "ZA"]),
        &["--org", "--country"],
    );
    assert_usage(
        &whatif(&db, &["--country", "XX"]),
        &["--country", "`XX`", "ISO 3166-1"],
    );
    assert_usage(&whatif(&db, &["--country", "ZAF"]), &["`ZAF`"]);
    assert_usage(
        &whatif(&db, &["--asn", "cloudy"]),
        &["--asn", "`cloudy` is not an AS number"],
    );
    assert_usage(&whatif(&db, &["--org", " "]), &["--org", "empty"]);
    assert_usage(
        &whatif(&db, &["--country", "ZA", "--at", "yesterday"]),
        &["--at", "`yesterday` is not a time"],
    );
    assert_usage(
        &whatif(&db, &["--country", "ZA", "--format", "pdf"]),
        &["pdf"],
    );
    let missing = db.with_file_name("nothing-here.db");
    assert_usage(
        &whatif(&missing, &["--country", "ZA"]),
        &["nothing-here.db", "no trace store here"],
    );
    let out = Command::new(support::bin())
        .args(["whatif", "--country", "ZA"])
        .output()
        .unwrap();
    assert_usage(&out, &["--config"]);
}

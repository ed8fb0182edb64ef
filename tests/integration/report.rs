//! `transitwatch report` over a store with a known history: four services
//! (one dual-stack), route changes at known times, a measurement gap. Every
//! figure of the JSON report is checked against values computed here from
//! the history's definition (not from the report's code); the Markdown and
//! HTML forms carry the same numbers.

use crate::support;

use std::path::Path;
use std::process::Command;
use support::records::{domestic, in_ie, new_trace, via_za};
use transitwatch::model::TraceRecord;
use transitwatch::store::Store;

/// 2026-11-26T12:00:00Z.
const T0: i64 = 1_795_694_400;
/// Ten hours.
const PERIOD: i64 = 36_000;
/// A trace every ten minutes...
const STEP: i64 = 600;
/// ...except slots 42..=47 (07:00 to 07:50), when the daemon was stopped.
const STOPPED: std::ops::RangeInclusive<i64> = 42..=47;
/// The gap: the last trace before the stop (06:50) holds for three times
/// the spacing (30 min), to 07:20; the next trace is at 08:00.
const GAP: (i64, i64) = (26_400, 28_800);
/// Slot 30 (05:00): the portal moves onto the South African route, and the
/// dual-stack service's IPv6 path leaves it.
const SWITCH: i64 = 30;

/// The period of the reports made of the history.
pub(crate) const SINCE: &str = "2026-11-26T12:00:00Z";
pub(crate) const UNTIL: &str = "2026-11-26T22:00:00Z";

fn slots() -> impl Iterator<Item = i64> {
    (0..PERIOD / STEP).filter(|k| !STOPPED.contains(k))
}

/// Write the known history to a new store at `path` (also the history of
/// the browser test, `report_browser`).
pub(crate) fn history(path: &Path) {
    let mut store = Store::open(path).unwrap();
    for k in slots() {
        let at = T0 + k * STEP;
        let mut put = |key: &str, record: TraceRecord| {
            store.insert(&new_trace(key, record)).unwrap();
        };
        put(
            "gov",
            if k < SWITCH {
                domestic("gov", at)
            } else {
                via_za("gov", at)
            },
        );
        put("bank", via_za("bank", at));
        put("shop", in_ie("shop", at));
        put("dual/ipv4", domestic("dual", at));
        put(
            "dual/ipv6",
            if k < SWITCH {
                via_za("dual", at)
            } else {
                domestic("dual", at)
            },
        );
    }
}

fn report(db: &Path, format: &str) -> String {
    let out = Command::new(support::bin())
        .args(["report", "--store"])
        .arg(db)
        .args(["--since", SINCE, "--until", UNTIL, "--format", format])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "report --format {format}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn close(actual: &serde_json::Value, expected: f64, what: &str) {
    let a = actual
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: not a number: {actual}"));
    assert!(
        (a - expected).abs() < 1e-9,
        "{what}: {a} (expected {expected})"
    );
}

#[allow(clippy::cast_precision_loss)]
fn f(part: i64, whole: i64) -> f64 {
    part as f64 / whole as f64
}

/// A whole percentage, as a person reads it (independent of the report's).
fn pct(fraction: f64) -> String {
    format!("{:.0}%", fraction * 100.0)
}

#[test]
fn every_figure_of_the_report_matches_the_known_history_in_every_format() {
    // The test's own reading of the records it stores.
    assert_eq!(domestic("x", T0).verdict.class.as_str(), "domestic");
    assert_eq!(via_za("x", T0).verdict.foreign_countries[0].as_str(), "ZA");
    let ie = in_ie("x", T0);
    assert_eq!(ie.verdict.class.as_str(), "foreign_destination");
    assert_eq!(
        ie.verdict
            .foreign_countries
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>(),
        ["IE"]
    );

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("transitwatch.db");
    history(&db);
    let json: serde_json::Value = serde_json::from_str(&report(&db, "json")).unwrap();
    assert_eq!(json["schema"], "transitwatch.report/1");
    assert_eq!(json["period"]["seconds"], PERIOD);
    assert_eq!(json["period"]["start"], "2026-11-26T12:00:00Z");

    // Time each state holds, computed from the slots.
    let traces = slots().count() as i64; // 54 per path
    let gap = GAP.1 - GAP.0;
    let measured = PERIOD - gap;
    let before = SWITCH * STEP; // 18000 s before the switch, no gap in it
    let after = measured - before;
    let trace_count_before = SWITCH;
    let trace_count_after = traces - SWITCH;

    let services = json["services"].as_array().unwrap();
    let names: Vec<&str> = services
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["bank", "dual", "gov", "shop"],
        "services, not paths"
    );
    let svc = |name: &str| services.iter().find(|s| s["name"] == name).unwrap();

    // gov: domestic, then through ZA from the switch.
    let gov = svc("gov");
    close(
        &gov["time_share"]["classes"]["domestic"],
        f(before, PERIOD),
        "gov domestic",
    );
    close(
        &gov["time_share"]["classes"]["foreign_transit"],
        f(after, PERIOD),
        "gov transit",
    );
    close(
        &gov["time_share"]["countries"]["ZA"],
        f(after, PERIOD),
        "gov ZA",
    );
    close(
        &gov["time_share"]["unmeasured"],
        f(gap, PERIOD),
        "gov unmeasured",
    );
    close(
        &gov["trace_share"]["countries"]["ZA"],
        f(trace_count_after, traces),
        "gov ZA by traces",
    );
    close(
        &gov["trace_share"]["classes"]["domestic"],
        f(trace_count_before, traces),
        "gov domestic by traces",
    );
    assert_eq!(gov["traces"], traces);
    assert_eq!(gov["current"]["class"], "foreign_transit");
    assert_eq!(
        gov["current"]["foreign_countries"],
        serde_json::json!(["ZA"])
    );
    assert_eq!(gov["current"]["since"], "2026-11-26T17:00:00Z");
    assert_eq!(gov["change_count"], 1);
    assert_eq!(gov["changes"][0]["at"], "2026-11-26T17:00:00Z");
    assert_eq!(gov["changes"][0]["from_class"], "domestic");
    let hops = gov["evidence"][0]["hops"].as_array().unwrap();
    assert!(
        hops.iter().any(|h| h["country"] == "ZA"),
        "the evidence holds the ZA hops"
    );

    // bank: through ZA all the measured time; the gap does not restart "since".
    let bank = svc("bank");
    close(
        &bank["time_share"]["countries"]["ZA"],
        f(measured, PERIOD),
        "bank ZA",
    );
    close(
        &bank["trace_share"]["countries"]["ZA"],
        1.0,
        "bank ZA by traces",
    );
    assert_eq!(bank["current"]["since"], "2026-11-26T12:00:00Z");
    assert_eq!(bank["change_count"], 0);

    // shop: answers from Ireland.
    let shop = svc("shop");
    close(
        &shop["time_share"]["classes"]["foreign_destination"],
        f(measured, PERIOD),
        "shop abroad",
    );
    close(
        &shop["time_share"]["countries"]["IE"],
        f(measured, PERIOD),
        "shop IE",
    );

    // dual: one service of two paths; ZA while its IPv6 path crossed it.
    let dual = svc("dual");
    assert_eq!(dual["traces"], 2 * traces);
    close(
        &dual["time_share"]["countries"]["ZA"],
        f(before, PERIOD),
        "dual ZA",
    );
    close(
        &dual["time_share"]["classes"]["foreign_transit"],
        f(before, PERIOD),
        "dual transit",
    );
    close(
        &dual["time_share"]["classes"]["domestic"],
        f(after, PERIOD),
        "dual domestic",
    );
    close(
        &dual["trace_share"]["countries"]["ZA"],
        f(trace_count_before, 2 * traces),
        "dual ZA by traces",
    );
    assert_eq!(dual["current"]["class"], "domestic");
    assert_eq!(dual["current"]["since"], "2026-11-26T17:00:00Z");
    let paths: Vec<&str> = dual["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path_key"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["dual/ipv4", "dual/ipv6"]);
    close(
        &dual["paths"][0]["time_share"]["classes"]["domestic"],
        f(measured, PERIOD),
        "dual/ipv4 domestic",
    );
    close(
        &dual["paths"][1]["time_share"]["countries"]["ZA"],
        f(before, PERIOD),
        "dual/ipv6 ZA",
    );
    assert_eq!(dual["change_count"], 1);

    // National figures count services.
    let summary = &json["summary"];
    assert_eq!(summary["services"], 4);
    assert_eq!(summary["services_foreign"], 4);
    let countries = summary["countries"].as_array().unwrap();
    assert_eq!(countries[0]["country"], "ZA", "ranked by services");
    assert_eq!(countries[0]["name"], "South Africa");
    assert_eq!(countries[0]["services_any"], 3);
    assert_eq!(countries[0]["services_all"], 1);
    assert_eq!(
        countries[0]["service_names"],
        serde_json::json!(["bank", "dual", "gov"])
    );
    close(
        &countries[0]["share_of_services"],
        0.75,
        "ZA share of services",
    );
    close(
        &countries[0]["time_share"],
        f(after + measured + before, 4 * PERIOD),
        "ZA service-time",
    );
    assert_eq!(countries[1]["country"], "IE");
    assert_eq!(countries[1]["services_any"], 1);
    assert_eq!(countries[1]["services_all"], 1);
    let za_sentence = "3 of 4 national services (75%) were reached through South Africa for at least part of the period; 1 of them all of the measured time.";
    assert!(
        summary["sentences"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == za_sentence),
        "{}",
        summary["sentences"]
    );
    let networks = summary["networks"].as_array().unwrap();
    let za_net = networks
        .iter()
        .find(|n| n["asn"] == 64510)
        .expect("the ZA network");
    assert_eq!(za_net["countries"], serde_json::json!(["ZA"]));

    // Ireland: the shop, all of its measured time.
    assert!(
        summary["sentences"].as_array().unwrap().iter().any(|s| s
            == "1 of 4 national services (25%) was reached through Ireland all of its measured time."),
        "{}",
        summary["sentences"]
    );

    // The timelines: measured spans only, the gap left out.
    let spans = |name: &str| -> Vec<(i64, i64, String, Vec<String>)> {
        let service = services.iter().find(|s| s["name"] == name).unwrap();
        assert_eq!(
            service["span_count"].as_u64(),
            Some(service["timeline"].as_array().unwrap().len() as u64)
        );
        service["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let at = |k: &str| {
                    time::OffsetDateTime::parse(
                        s[k].as_str().unwrap(),
                        &time::format_description::well_known::Rfc3339,
                    )
                    .unwrap()
                    .unix_timestamp()
                        - T0
                };
                (
                    at("start"),
                    at("end"),
                    s["class"].as_str().unwrap().to_string(),
                    serde_json::from_value(s["foreign_countries"].clone()).unwrap(),
                )
            })
            .collect()
    };
    let za = || vec!["ZA".to_string()];
    assert_eq!(
        spans("gov"),
        [
            (0, before, "domestic".into(), vec![]),
            (before, GAP.0, "foreign_transit".into(), za()),
            (GAP.1, PERIOD, "foreign_transit".into(), za()),
        ]
    );
    assert_eq!(
        spans("shop"),
        [
            (
                0,
                GAP.0,
                "foreign_destination".into(),
                vec!["IE".to_string()]
            ),
            (
                GAP.1,
                PERIOD,
                "foreign_destination".into(),
                vec!["IE".to_string()]
            ),
        ]
    );

    // Routes at the end of the period, from the records' own countries:
    // both of dual's paths are domestic by then (one route), gov has
    // joined bank on the South African route.
    let route = |record: TraceRecord| {
        let mut countries: Vec<String> = record
            .verdict
            .countries
            .iter()
            .map(|c| c.as_str().to_string())
            .collect();
        countries.dedup();
        countries
    };
    let mut expected = vec![
        (route(domestic("x", T0)), "domestic", vec!["dual"]),
        (
            route(via_za("x", T0)),
            "foreign_transit",
            vec!["bank", "gov"],
        ),
        (route(in_ie("x", T0)), "foreign_destination", vec!["shop"]),
    ];
    expected.sort();
    assert_eq!(expected[2].0, ["LS", "ZA", "LS"]);
    let mut routes: Vec<(Vec<String>, &str, Vec<&str>)> = summary["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                serde_json::from_value(r["countries"].clone()).unwrap(),
                r["class"].as_str().unwrap(),
                r["service_names"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|n| n.as_str().unwrap())
                    .collect(),
            )
        })
        .collect();
    routes.sort();
    assert_eq!(routes, expected);
    let gov = services.iter().find(|s| s["name"] == "gov").unwrap();
    assert_eq!(gov["evidence"][0]["class"], "foreign_transit");
    assert_eq!(
        gov["evidence"][0]["countries"],
        serde_json::json!(via_za("x", T0)
            .verdict
            .countries
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>())
    );

    // Method: the gap, the traces, the provenance.
    let method = &json["method"];
    assert_eq!(method["traces"], 5 * traces);
    assert_eq!(method["gaps"].as_array().unwrap().len(), 1);
    assert_eq!(method["gaps"][0]["start"], "2026-11-26T19:20:00Z");
    assert_eq!(method["gaps"][0]["seconds"], gap);
    assert_eq!(method["unmeasured_seconds"], gap);
    assert_eq!(method["vantages"], serde_json::json!(["maseru-lab"]));
    assert_eq!(method["provenance"][0]["geoip"][0]["type"], "GeoLite2-City");
    assert_eq!(method["provenance"][0]["traces"], 5 * traces);

    crate::support::schema::assert_valid("report.schema.json", &json);

    // The same numbers in Markdown and HTML.
    let md = report(&db, "md");
    let html = report(&db, "html");
    for (form, text) in [("md", &md), ("html", &html)] {
        assert!(text.contains(za_sentence), "{form}: the ZA sentence");
        for (name, country, share) in [
            ("gov", "ZA", f(after, PERIOD)),
            ("bank", "ZA", f(measured, PERIOD)),
            ("dual", "ZA", f(before, PERIOD)),
            ("shop", "IE", f(measured, PERIOD)),
        ] {
            let section = section(text, form, name);
            let row = section
                .lines()
                .find(|l| l.contains(&format!("({country})")) && l.contains("through"))
                .unwrap_or_else(|| panic!("{form} {name}: no {country} row"));
            assert!(
                row.contains(&pct(share)),
                "{form} {name}: {row} should say {}",
                pct(share)
            );
        }
        assert!(text.contains("2026-11-26T19:20:00Z"), "{form}: the gap");
        assert!(
            text.contains("Lesotho → South Africa → Lesotho"),
            "{form}: the route through South Africa"
        );
        assert!(text.contains("GeoLite2-City"), "{form}: the database");
    }
    // The map: Lesotho as home, South Africa (3 of 4 services) and Ireland
    // (1 of 4) in the shading steps of their shares, the three routes.
    let fill = |code: &str| {
        let at = html
            .find(&format!("<path data-country=\"{code}\""))
            .unwrap_or_else(|| panic!("the map has no {code}"));
        let rest = &html[at..];
        let start = rest.find("fill=\"").unwrap() + 6;
        rest[start..start + rest[start..].find('"').unwrap()].to_string()
    };
    assert_eq!(fill("LS"), "url(#m-home)");
    assert_eq!(fill("ZA"), "url(#m-dep3)");
    assert_eq!(fill("IE"), "url(#m-dep1)");
    assert_eq!(fill("NA"), "#e3e3e3", "a neighbour no path crosses");
    assert_eq!(html.matches("data-route=").count(), 3);
    assert!(html.contains("South Africa: 3 of 4 services (75%)"));
    // HTML stands alone: no script, no external fetch.
    assert!(!html.contains("<script"));
    assert!(
        !html.contains("http://") && !html.contains("https://")
            || html.contains("xmlns=\"http://www.w3.org/2000/svg\"")
    );
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"));
}

/// The part of a rendered report about one service.
fn section<'a>(text: &'a str, form: &str, name: &str) -> &'a str {
    let start = match form {
        "md" => text.find(&format!("### {name} (")),
        _ => text.find(&format!("id=\"service-{name}\"")),
    }
    .unwrap_or_else(|| panic!("{form}: no section for {name}"));
    let rest = &text[start + 1..];
    let end = match form {
        "md" => rest.find("### ").unwrap_or(rest.len()),
        _ => rest.find("</section>").unwrap_or(rest.len()),
    };
    &rest[..end]
}

#[test]
fn report_errors_name_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none.db");
    let out = Command::new(support::bin())
        .args(["report", "--store"])
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("none.db"));
    let db = dir.path().join("t.db");
    history(&db);
    let out = Command::new(support::bin())
        .args(["report", "--store"])
        .arg(&db)
        .args(["--since", "2026-11-27", "--until", "2026-11-26"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--since must be before --until"));
    let out = Command::new(support::bin())
        .args(["report", "--store"])
        .arg(&db)
        .args(["--format", "pdf"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// A lab run located by its overrides file alone, after traces stored
/// before location files were recorded: the method section names the file
/// with the SHA-256 of its bytes (computed here), and the older generation
/// still reports its databases.
#[test]
fn the_method_names_the_overrides_file_and_its_hash_beside_older_traces() {
    use sha2::Digest;
    use std::sync::Arc;
    use support::records::{lab_geo, provenance};
    use transitwatch::store::{LocationFile, Provenance};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let overrides = support::root().join("tests/lab/lab-geo.csv");
    let sha256 = hex::encode(sha2::Sha256::digest(std::fs::read(&overrides).unwrap()));
    let lab = Arc::new(Provenance {
        geoip: Vec::new(),
        location_files: LocationFile::of(lab_geo().location_files()),
        ..(*provenance()).clone()
    });
    let mut store = Store::open(&db).unwrap();
    for k in 0..10 {
        // The first five as stored before files were recorded.
        let mut trace = new_trace("gov", domestic("gov", T0 + k * STEP));
        if k >= 5 {
            trace.provenance = Arc::clone(&lab);
        }
        store.insert(&trace).unwrap();
    }
    drop(store);

    let json: serde_json::Value = serde_json::from_str(&report(&db, "json")).unwrap();
    let generations = &json["method"]["provenance"];
    assert_eq!(generations.as_array().unwrap().len(), 2, "{generations}");
    assert_eq!(generations[0]["geoip"][0]["type"], "GeoLite2-City");
    assert_eq!(generations[0]["location_files"], serde_json::json!([]));
    assert_eq!(generations[1]["geoip"], serde_json::json!([]));
    assert_eq!(
        generations[1]["location_files"],
        serde_json::json!([{"kind": "overrides", "path": overrides.to_str().unwrap(), "sha256": sha256}])
    );
    assert_eq!(generations[1]["traces"], 5);
    crate::support::schema::assert_valid("report.schema.json", &json);

    for format in ["md", "html"] {
        let text = report(&db, format);
        let line = |needle: &str| {
            text.lines()
                .find(|l| l.contains("configuration sha256") && l.contains(needle))
                .unwrap_or_else(|| panic!("{format}: no provenance line with {needle}:\n{text}"))
        };
        let lab = line(&sha256);
        assert!(
            lab.contains("MMDB databases: none; location files: overrides")
                && lab.contains("lab-geo.csv"),
            "{format}: {lab}"
        );
        let older = line("GeoLite2-City");
        assert!(
            older.contains("databases: GeoLite2-City") && !older.contains("location files"),
            "{format}: {older}"
        );
    }
}

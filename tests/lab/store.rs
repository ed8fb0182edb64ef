//! The history round trip on the namespace lab: the daemon traces a
//! domestic service (over IPv4 and IPv6), a bank reached through the "South
//! African" routers and a service hosted in Ireland for a few cycles,
//! storing every record in the default database of its state directory;
//! `/api/v1/traces` streams them while it runs; after SIGTERM, `export
//! --format atlas` read back by `analyze --input-format atlas` gives the
//! same hops and verdicts as the stored records (`export --format jsonl`).

use crate::support;

use serde_json::Value;
use sha2::Digest as _;
use std::path::Path;
use std::process::Command;
use support::daemon::{write_config, LabDaemon};
use support::records::assert_same_hops_and_verdicts;
use support::{analyze_atlas, bin, text, Lab};

/// The targets; the history goes to the default database of the state
/// directory (no `[store]` section).
const TARGETS: &str = r#"
[[target]]
name = "gov-portal"
host = "portal.gov.ls.test"
family = "both"

[[target]]
name = "bank"
host = "bank.ls.test"
family = "ipv4"

[[target]]
name = "shop"
host = "shop.ie.test"
family = "ipv4"
"#;

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

fn run(args: &[&str], extra: &[&Path]) -> String {
    let out = Command::new(bin()).args(args).args(extra).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn daemon_history_round_trips_through_atlas_and_the_api_streams_it() {
    let test = "daemon_history_round_trips_through_atlas_and_the_api_streams_it";
    let Some(lab) = Lab::up(test) else { return };
    if !support::have_all(test, &["curl"]) {
        return;
    }
    lab.route_prefixes("za", &["198.51.100.20/32"]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &[TARGETS]);
    let config_text = std::fs::read_to_string(&config).unwrap();
    let state = dir.path().join("state");
    let daemon = LabDaemon::start(&lab, &config, &state);

    // A few cycles: at least three traces of each of the four paths.
    let m = daemon.wait_metrics("twelve stored traces", |m| {
        m.or_zero("transitwatch_store_writes_total", &[("result", "ok")]) >= 12.0
    });
    let writes = |result| m.get("transitwatch_store_writes_total", &[("result", result)]);
    assert_eq!(writes("error"), Some(0.0), "{m:#?}");
    assert_eq!(writes("dropped"), Some(0.0), "{m:#?}");

    // The API streams the history while the daemon writes it.
    let (code, body) = daemon.get("/api/v1/traces");
    assert_eq!(code, 200, "{body}");
    let live = json_lines(&body);
    assert!(live.len() >= 12, "{}", live.len());
    for line in &live {
        assert_eq!(line["schema"], "transitwatch.trace/1");
        assert!(line["stored"]["id"].as_u64().is_some());
    }
    let (code, body) = daemon.get("/api/v1/traces?target=bank&limit=2");
    assert_eq!(code, 200, "{body}");
    let bank = json_lines(&body);
    assert_eq!(bank.len(), 2);
    for line in &bank {
        assert_eq!(line["target"]["name"], "bank");
        assert_eq!(line["verdict"]["class"], "foreign_transit");
        assert_eq!(
            line["verdict"]["countries"],
            serde_json::json!(["LS", "ZA", "LS"])
        );
    }
    let (code, body) = daemon.get("/api/v1/traces?target=gov-portal%2Fipv6&limit=1");
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        json_lines(&body)[0]["stored"]["path_key"],
        "gov-portal/ipv6"
    );
    let (code, body) = daemon.get("/api/v1/traces?since=last-tuesday");
    assert_eq!(code, 400, "{body}");

    // SIGTERM: the queued records are written before the daemon exits.
    let out = daemon.stop();
    assert!(out.status.success(), "{}", text(&out));

    // Without `[store] path` the history lives in the state directory.
    let db = state.join("transitwatch.db");
    assert!(db.is_file(), "no {}", db.display());
    let stored = json_lines(&run(&["export", "--format", "jsonl", "--store"], &[&db]));
    assert!(
        stored.len() >= live.len(),
        "{} < {}",
        stored.len(),
        live.len()
    );
    // The API gave the same lines as the export, as far as it had them.
    // Matched by id, not position: both list by start time, and a trace
    // that started before the API call but was stored after it (a slower
    // path) falls in among the ones listed then.
    let by_id: std::collections::HashMap<u64, &serde_json::Value> = stored
        .iter()
        .map(|r| (r["stored"]["id"].as_u64().unwrap(), r))
        .collect();
    for api in &live {
        let id = api["stored"]["id"].as_u64().unwrap();
        assert_eq!(Some(&api), by_id.get(&id), "trace {id}");
    }
    let sha = hex::encode(sha2::Sha256::digest(config_text.as_bytes()));
    let mut keys = std::collections::BTreeMap::<String, usize>::new();
    for r in &stored {
        assert_eq!(r["stored"]["config_sha256"], sha);
        assert_eq!(r["stored"]["packet_size"], 64);
        assert!(r["stored"]["duration_ms"].as_u64().is_some());
        assert_eq!(r["vantage"]["name"], "maseru-lab");
        *keys
            .entry(r["stored"]["path_key"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    for key in ["gov-portal/ipv4", "gov-portal/ipv6", "bank", "shop"] {
        assert!(keys.get(key).copied().unwrap_or(0) >= 2, "{key}: {keys:?}");
    }

    // The lab's history as a Parquet dataset: DuckDB, pyarrow and pandas
    // find the JSON Lines export's traces per class, per foreign country,
    // per vantage, and its hops.
    let dataset = dir.path().join("dataset");
    run(
        &["export", "--format", "parquet", "--store"],
        &[&db, Path::new("--output"), &dataset],
    );
    if support::datasets::python_has("duckdb, pyarrow, pandas") {
        let figures = support::datasets::of_parquet(&dataset);
        let expected = support::datasets::of_records(&stored);
        assert!(
            expected["countries"]["ZA"].as_u64() >= Some(2),
            "{expected}"
        );
        for reader in ["duckdb", "pyarrow", "pandas"] {
            assert_eq!(figures[reader], expected, "{reader}");
        }
    } else {
        eprintln!("SKIPPED the lab store's Parquet figures: python3 cannot import duckdb, pyarrow and pandas (scripts/setup.sh installs them)");
    }

    // Atlas export → analyze: the same hops and verdicts.
    let atlas = dir.path().join("atlas.jsonl");
    run(
        &["export", "--format", "atlas", "--store"],
        &[&db, Path::new("--output"), &atlas],
    );
    let analyzed = analyze_atlas(&atlas);
    assert_eq!(analyzed.status.code(), Some(0), "{}", text(&analyzed));
    let analyzed = json_lines(&String::from_utf8(analyzed.stdout).unwrap());
    assert_same_hops_and_verdicts(&stored, &analyzed);
    let class_of = |key: &str| -> Vec<&str> {
        stored
            .iter()
            .zip(&analyzed)
            .filter(|(s, _)| s["stored"]["path_key"] == key)
            .map(|(_, a)| a["verdict"]["class"].as_str().unwrap())
            .collect()
    };
    assert!(class_of("bank").iter().all(|c| *c == "foreign_transit"));
    assert!(class_of("gov-portal/ipv4").iter().all(|c| *c == "domestic"));
    assert!(class_of("gov-portal/ipv6").iter().all(|c| *c == "domestic"));
    assert!(class_of("shop").iter().all(|c| *c == "foreign_destination"));
    let v6 = stored
        .iter()
        .zip(&analyzed)
        .find(|(s, _)| s["stored"]["path_key"] == "gov-portal/ipv6")
        .unwrap();
    assert!(v6.1["target"]["addr"].as_str().unwrap().contains(':'));
}

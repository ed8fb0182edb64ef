//! `transitwatch export`: JSON Lines, per-hop CSV and RIPE Atlas results
//! from a real store; the Atlas export read back by `analyze` (and by RIPE
//! Atlas's own parser, `ripe.atlas.sagan`, when installed) gives the same
//! hops and verdicts; filters; the output file; the progress bar only on a
//! terminal; and errors in one line with the documented exit code.

use crate::support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use support::records::{assert_same_hops_and_verdicts, domestic, in_ie, new_trace, via_za};
use support::{bin, text};
use transitwatch::model::TraceRecord;
use transitwatch::store::Store;

/// 2023-11-14T22:13:20Z: long enough ago for relative times.
const T0: i64 = 1_700_000_000;

/// A store with five traces: gov (IPv4 path, twice), bank via ZA, shop in
/// IE, and one with an awkward name for CSV quoting.
struct Fixture {
    _dir: tempfile::TempDir,
    db: PathBuf,
    records: Vec<TraceRecord>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("transitwatch.db");
    let mut awkward = domestic("x", T0 + 40);
    awkward.trace.target.name = "odd, \"quoted\" name".to_string();
    let traces = vec![
        ("gov/ipv4", domestic("gov", T0)),
        ("bank", via_za("bank", T0 + 10)),
        ("shop", in_ie("shop", T0 + 20)),
        ("gov/ipv4", domestic("gov", T0 + 30)),
        ("odd", awkward),
    ];
    let mut store = Store::open(&db).unwrap();
    let mut records = Vec::new();
    for (key, r) in traces {
        store.insert(&new_trace(key, r.clone())).unwrap();
        records.push(r);
    }
    Fixture {
        _dir: dir,
        db,
        records,
    }
}

fn export(db: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .arg("export")
        .arg("--store")
        .arg(db)
        .args(args)
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(0), "{}", text(out));
    assert!(out.stderr.is_empty(), "{}", text(out));
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

/// Exit `code` with exactly one stderr line containing every needle.
fn assert_fails(out: &Output, code: i32, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{}", text(out));
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", text(out));
    assert!(
        lines[0].starts_with("transitwatch: error: "),
        "{}",
        text(out)
    );
    for n in needles {
        assert!(lines[0].contains(n), "`{n}` missing: {}", text(out));
    }
    assert!(out.stdout.is_empty(), "{}", text(out));
}

#[test]
fn jsonl_is_the_stored_records_with_their_provenance() {
    let f = fixture();
    let lines = json_lines(&ok(&export(&f.db, &["--format", "jsonl"])));
    assert_eq!(lines.len(), 5);
    for (i, (line, record)) in lines.iter().zip(&f.records).enumerate() {
        let mut plain = line.clone();
        let stored = plain.as_object_mut().unwrap().remove("stored").unwrap();
        let back: TraceRecord = serde_json::from_value(plain).unwrap();
        assert_eq!(&back, record, "line {i}");
        assert_eq!(stored["id"], i + 1);
        assert_eq!(stored["duration_ms"], 1500);
        assert_eq!(stored["packet_size"], 64);
        assert_eq!(stored["config_sha256"], "ab".repeat(32));
        assert_eq!(
            stored["geoip"],
            serde_json::json!([{"kind": "city", "type": "GeoLite2-City", "build_epoch": 1_700_000_000}])
        );
        assert_eq!(stored["location_files"], serde_json::json!([]));
        assert_eq!(stored["version"], "0.1.0");
    }
    assert_eq!(lines[0]["stored"]["path_key"], "gov/ipv4");
    assert_eq!(lines[1]["verdict"]["class"], "foreign_transit");
    assert_eq!(lines[2]["verdict"]["class"], "foreign_destination");
    // jsonl is the default format.
    assert_eq!(
        ok(&export(&f.db, &[])),
        ok(&export(&f.db, &["--format", "jsonl"]))
    );
}

#[test]
fn csv_has_one_quoted_row_per_hop_with_the_documented_columns() {
    let f = fixture();
    let out = ok(&export(&f.db, &["--format", "csv"]));
    let mut reader = csv::Reader::from_reader(out.as_bytes());
    // transitwatch.csv/3: version 1's columns in their order, then more.
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        vec![
            "trace_id",
            "time",
            "target",
            "ttl",
            "addr",
            "rtt_ms",
            "country",
            "asn",
            "plausible",
            "class",
            "vantage",
            "target_addr",
            "hostname",
            "city",
            "confidence",
            "source",
            "msm_id",
            "prb_id",
            "mpls"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let hops: usize = f.records.iter().map(|r| r.trace.hops.len()).sum();
    assert_eq!(rows.len(), hops);
    // bank via ZA: trace 2, second hop answered from two routers (the main
    // one is reported), third hop silent.
    let bank: Vec<&csv::StringRecord> = rows.iter().filter(|r| &r[0] == "2").collect();
    assert_eq!(bank.len(), 5);
    assert_eq!(
        bank[1].iter().take(10).collect::<Vec<_>>(),
        vec![
            "2",
            "2023-11-14T22:13:30Z",
            "bank",
            "2",
            "198.18.4.2",
            "0.06",
            "ZA",
            "64510",
            "",
            "foreign_transit"
        ]
    );
    assert_eq!(&bank[1][10], "LS");
    assert_eq!(
        &bank[1][11],
        f.records[1].trace.target.addr.unwrap().to_string()
    );
    assert_eq!(&bank[1][17], "", "no Atlas probe");
    assert_eq!(
        bank[2].iter().take(10).collect::<Vec<_>>(),
        vec![
            "2",
            "2023-11-14T22:13:30Z",
            "bank",
            "3",
            "",
            "",
            "",
            "",
            "",
            "foreign_transit"
        ]
    );
    // RFC 4180: the awkward name survives a round trip and is quoted.
    let odd: Vec<&csv::StringRecord> = rows.iter().filter(|r| &r[0] == "5").collect();
    assert!(odd.iter().all(|r| &r[2] == "odd, \"quoted\" name"));
    assert!(out.contains("\"odd, \"\"quoted\"\" name\""), "{out}");
}

#[test]
fn filters_select_by_time_and_target() {
    let f = fixture();
    let ids = |args: &[&str]| -> Vec<u64> {
        json_lines(&ok(&export(&f.db, args)))
            .iter()
            .map(|l| l["stored"]["id"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(ids(&["--target", "gov"]), vec![1, 4]);
    assert_eq!(ids(&["--target", "gov/ipv4"]), vec![1, 4]);
    assert_eq!(ids(&["--target", "gov/ipv6"]), Vec::<u64>::new());
    assert_eq!(
        ids(&[
            "--since",
            "2023-11-14T22:13:30Z",
            "--until",
            "2023-11-15T00:13:50+02:00"
        ]),
        vec![2, 3]
    );
    assert_eq!(ids(&["--since", "2023-11-14"]), vec![1, 2, 3, 4, 5]);
    assert_eq!(ids(&["--until", "2023-11-14"]), Vec::<u64>::new());
    // Relative: these traces are long past, a day ago excludes them all.
    assert_eq!(ids(&["--since", "24h"]), Vec::<u64>::new());
    assert_eq!(ids(&["--until", "1d", "--target", "shop"]), vec![3]);
}

#[test]
fn atlas_export_reads_back_through_analyze_with_the_same_hops_and_verdicts() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let atlas = dir.path().join("atlas.jsonl");
    let out = export(
        &f.db,
        &["--format", "atlas", "--output", atlas.to_str().unwrap()],
    );
    assert!(ok(&out).is_empty());
    let results = json_lines(&std::fs::read_to_string(&atlas).unwrap());
    assert_eq!(results.len(), 5);
    let bank = &results[1];
    for (key, value) in [
        ("type", serde_json::json!("traceroute")),
        ("af", serde_json::json!(4)),
        ("dst_addr", serde_json::json!("198.51.100.20")),
        ("dst_name", serde_json::json!("bank.ls.test")),
        ("proto", serde_json::json!("ICMP")),
        ("timestamp", serde_json::json!(T0 + 10)),
        ("endtime", serde_json::json!(T0 + 12)),
        ("size", serde_json::json!(64)),
        ("paris_id", serde_json::json!(0)),
    ] {
        assert_eq!(bank[key], value, "{key}");
    }
    assert!(bank["fw"].as_u64().unwrap() >= 4460);
    assert_eq!(bank["transitwatch"]["id"], 2);
    // Both gov traces share a measurement id; every trace the probe id.
    assert_eq!(results[0]["msm_id"], results[3]["msm_id"]);
    assert_ne!(results[0]["msm_id"], results[1]["msm_id"]);
    assert!(results.iter().all(|r| r["prb_id"] == results[0]["prb_id"]));
    // Hop 2 had two responders over three replies, hop 4 a lost probe.
    assert_eq!(
        bank["result"][1],
        serde_json::json!({"hop": 2, "result": [
            {"from": "198.18.4.2", "rtt": 0.06},
            {"from": "198.18.4.2", "rtt": 0.435},
            {"from": "198.18.4.3", "rtt": 1.185}]})
    );
    assert_eq!(
        bank["result"][2]["result"],
        serde_json::json!([{"x": "*"}, {"x": "*"}, {"x": "*"}])
    );
    assert_eq!(
        bank["result"][3]["result"][3],
        serde_json::json!({"x": "*"})
    );

    let analyzed = json_lines(&ok(&support::analyze_atlas(&atlas)));
    let stored = json_lines(&ok(&export(&f.db, &["--format", "jsonl"])));
    assert_same_hops_and_verdicts(&stored, &analyzed);
    let classes: Vec<&str> = analyzed
        .iter()
        .map(|r| r["verdict"]["class"].as_str().unwrap())
        .collect();
    assert_eq!(
        classes,
        [
            "domestic",
            "foreign_transit",
            "foreign_destination",
            "domestic",
            "domestic"
        ]
    );
}

/// Whether `python3` can import RIPE Atlas's result parser.
fn have_sagan() -> bool {
    Command::new("python3")
        .args(["-c", "import ripe.atlas.sagan"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn ripe_atlas_sagan_parses_the_atlas_export() {
    if !have_sagan() {
        eprintln!(
            "SKIPPED ripe_atlas_sagan_parses_the_atlas_export: python3 cannot import ripe.atlas.sagan (pip install ripe.atlas.sagan)"
        );
        return;
    }
    let f = fixture();
    let atlas = ok(&export(&f.db, &["--format", "atlas"]));
    let script = r#"
import json, sys
from ripe.atlas.sagan import Result
for line in sys.stdin:
    r = Result.get(line)
    print(json.dumps({
        "malformed": r.is_malformed, "error": r.is_error, "type": r.type,
        "af": r.af, "dst": r.destination_address, "name": r.destination_name,
        "proto": r.protocol, "created": r.created_timestamp, "end": r.end_time_timestamp,
        "msm": r.measurement_id, "prb": r.probe_id, "paris": r.paris_id, "size": r.size,
        "hops": [h.index for h in r.hops], "ip_path": r.ip_path,
        "responded": r.destination_ip_responded, "last_rtt": r.last_median_rtt,
    }))
"#;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(atlas.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let parsed = json_lines(&ok(&out));
    let results = json_lines(&atlas);
    assert_eq!(parsed.len(), f.records.len());
    for ((p, r), record) in parsed.iter().zip(&results).zip(&f.records) {
        assert_eq!(p["malformed"], false, "{p}");
        assert_eq!(p["error"], false, "{p}");
        assert_eq!(p["type"], "traceroute");
        assert_eq!(p["af"], 4);
        assert_eq!(p["dst"], record.trace.target.addr.unwrap().to_string());
        assert_eq!(p["name"], record.trace.target.host);
        assert_eq!(p["proto"], "ICMP");
        assert_eq!(p["created"], r["timestamp"]);
        assert_eq!(p["end"], r["endtime"]);
        assert_eq!(p["msm"], r["msm_id"]);
        assert_eq!(p["prb"], r["prb_id"]);
        assert_eq!(p["size"], 64);
        let ttls: Vec<u64> = record.trace.hops.iter().map(|h| u64::from(h.ttl)).collect();
        assert_eq!(p["hops"], serde_json::json!(ttls));
        assert_eq!(p["responded"], record.trace.reached);
        // Per hop, the replies' sources: the record's responders and a
        // null per lost probe.
        for (path, hop) in p["ip_path"]
            .as_array()
            .unwrap()
            .iter()
            .zip(&record.trace.hops)
        {
            let from: Vec<&Value> = path.as_array().unwrap().iter().collect();
            let answered: Vec<String> = from
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect();
            let lost = from.iter().filter(|v| v.is_null()).count();
            assert_eq!(lost as u32, hop.sent - hop.received, "{path}");
            let mut distinct = answered.clone();
            distinct.dedup();
            let addrs: Vec<String> = hop.addrs.iter().map(ToString::to_string).collect();
            assert_eq!(distinct, addrs, "{path}");
        }
    }
}

#[test]
fn export_reads_the_store_named_by_a_config_file() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::copy(&f.db, data.join("tw.db")).unwrap();
    let config = dir.path().join("tw.toml");
    std::fs::write(
        &config,
        "[vantage]\nname = \"m\"\ncountry = \"LS\"\n[store]\npath = \"data/tw.db\"\n",
    )
    .unwrap();
    let out = Command::new(bin())
        .args(["export", "--format", "csv", "--target", "shop", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(ok(&out).lines().count(), 1 + 3);
}

#[test]
fn output_files_appear_whole_or_not_at_all() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.csv");
    assert!(ok(&export(
        &f.db,
        &["--format", "csv", "--output", file.to_str().unwrap()]
    ))
    .is_empty());
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        ok(&export(&f.db, &["--format", "csv"]))
    );
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("out.csv")]);

    // A named pipe is written through, not replaced by a renamed file.
    let fifo = dir.path().join("pipe");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    assert!(ok(&export(
        &f.db,
        &["--format", "csv", "--output", fifo.to_str().unwrap()]
    ))
    .is_empty());
    assert_eq!(
        reader.join().unwrap(),
        ok(&export(&f.db, &["--format", "csv"]))
    );
    use std::os::unix::fs::FileTypeExt as _;
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    std::fs::remove_file(&fifo).unwrap();

    let nowhere = dir.path().join("no/such/folder/out.csv");
    let out = export(&f.db, &["--output", nowhere.to_str().unwrap()]);
    assert_fails(&out, 1, &["no/such/folder/out.csv.partial"]);
    assert!(!nowhere.exists());
}

#[test]
fn a_progress_bar_is_drawn_on_a_terminal_only() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.jsonl");
    // Not a terminal: nothing on stderr (checked by `ok`).
    ok(&export(&f.db, &["--output", file.to_str().unwrap()]));
    if !support::have("script") {
        eprintln!("SKIPPED the terminal half: `script` (util-linux) is not installed");
        return;
    }
    // On a terminal (`script` runs the command on a pseudo-terminal).
    let command = format!(
        "{} export --store {} --output {}",
        bin(),
        f.db.display(),
        file.display()
    );
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(screen.contains("5/5 traces"), "{screen:?}");
}

#[test]
fn bad_arguments_and_unusable_stores_are_one_line_errors() {
    let f = fixture();
    assert_fails(
        &export(&f.db, &["--since", "yesterday"]),
        2,
        &["--since", "`yesterday` is not a time", "RFC 3339"],
    );
    assert_fails(
        &export(&f.db, &["--until", "2026-11-26T25:00:00Z"]),
        2,
        &["--until"],
    );
    assert_fails(
        &export(&f.db, &["--since", "2023-11-15", "--until", "2023-11-14"]),
        2,
        &["--since must be before --until"],
    );
    assert_fails(
        &export(&f.db, &["--format", "xml"]),
        2,
        &["xml", "jsonl, csv, atlas or parquet"],
    );

    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing.db");
    assert_fails(
        &export(&missing, &[]),
        2,
        &["nothing.db", "no trace store here"],
    );
    // Not a database: a usage error (exit 2) in one line naming the file.
    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, "not a database at all ".repeat(100)).unwrap();
    assert_fails(
        &export(&garbage, &[]),
        2,
        &["garbage.db", "not an SQLite database"],
    );
    assert_fails(
        &export(Path::new("/etc/passwd"), &[]),
        2,
        &["/etc/passwd: not a transitwatch trace store (it is not an SQLite database)"],
    );
    assert_fails(
        &export(dir.path(), &[]),
        2,
        &[&dir.path().display().to_string(), "not a regular file"],
    );
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, "").unwrap();
    assert_fails(
        &export(&empty, &[]),
        2,
        &["empty.db", "no transitwatch schema"],
    );

    let out = Command::new(bin()).args(["export"]).output().unwrap();
    assert_fails(&out, 2, &["--config"]);
    let out = Command::new(bin())
        .args(["export", "--config", "a.toml", "--store", "b.db"])
        .output()
        .unwrap();
    assert_fails(&out, 2, &["--store"]);
    let out = Command::new(bin())
        .args(["export", "--config"])
        .arg(dir.path().join("none.toml"))
        .output()
        .unwrap();
    assert_fails(&out, 2, &["none.toml"]);
}

#[test]
fn a_damaged_record_is_reported_and_the_rest_exported() {
    let f = fixture();
    rusqlite::Connection::open(&f.db)
        .unwrap()
        .execute("UPDATE traces SET record = 'garbage' WHERE id = 3", [])
        .unwrap();
    let out = export(&f.db, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("trace 3: its record is not readable"),
        "{stderr}"
    );
    assert!(stderr.contains("1 of 5 stored traces"), "{stderr}");
    let ids: Vec<u64> = json_lines(&String::from_utf8_lossy(&out.stdout))
        .iter()
        .map(|l| l["stored"]["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, vec![1, 2, 4, 5]);
}

#[test]
fn a_reader_that_goes_away_early_is_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("transitwatch.db");
    let mut store = Store::open(&db).unwrap();
    // Far more than a pipe holds.
    for i in 0..400 {
        store
            .insert(&new_trace("bank", via_za("bank", T0 + i)))
            .unwrap();
    }
    for format in ["jsonl", "csv", "atlas"] {
        let mut child = Command::new(bin())
            .args(["export", "--format", format, "--store"])
            .arg(&db)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut first,
        )
        .unwrap();
        assert!(!first.is_empty());
        // The reader (and with it the pipe) is gone, as with `| head -1`.
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{format}: {}", text(&out));
        assert!(out.stderr.is_empty(), "{format}: {}", text(&out));
    }
}

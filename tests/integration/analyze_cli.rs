//! `transitwatch analyze`: real RIPE Atlas results, a malformed line, real
//! scamper traces of the lab, M-Lab's scamper files (`tracelb` records
//! among them, which give paths, not "skipped") and a `tracelb` graph of
//! four paths, two through ZA, summed up as "2 of 4 paths crossing ZA",
//! through the same geolocation and analysis as live traces.

use crate::support;

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;
use support::{bin, have, root, skip, text, Lab};

fn shared_data() -> Option<PathBuf> {
    let dir = root().join("../shared/data");
    dir.is_dir().then_some(dir)
}

fn records(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON record per line"))
        .collect()
}

#[test]
fn atlas_results_become_trace_records() {
    let Some(data) = shared_data() else {
        eprintln!("SKIPPED atlas_results_become_trace_records: ../shared/data is absent");
        return;
    };
    let input = data.join("atlas/traceroutes.jsonl");
    let lines = std::fs::read_to_string(&input)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count();
    let out = Command::new(bin())
        .args(["analyze", "--input-format", "atlas", "--json", "--input"])
        .arg(&input)
        .arg("--probes")
        .arg(data.join("atlas/probes_meta.json"))
        .output()
        .unwrap();
    // Every result imports, those whose name never resolved included;
    // the results whose probes the metadata lacks are said, once.
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("transitwatch: note: ")
            && stderr.contains(": 95 result(s) of 24 probe(s) not in the probe metadata (")
            && stderr.contains("no vantage country, so indeterminate"),
        "{stderr}"
    );
    let recs = records(&out.stdout);
    assert_eq!(recs.len(), lines);
    for r in &recs {
        assert_eq!(r["schema"], "transitwatch.trace/1");
        // The result's own ids lead back to its measurement and probe.
        let prb = r["atlas"]["prb_id"]
            .as_u64()
            .unwrap_or_else(|| panic!("no prb_id: {r}"));
        assert_eq!(r["vantage"]["name"], format!("atlas-prb-{prb}"));
        assert!(r["atlas"]["msm_id"].as_u64().is_some(), "{r}");
        assert!(r["verdict"]["class"].is_string());
        let target = r["target"].as_object().unwrap();
        assert!(target.contains_key("addr"), "the field stays: {r}");
    }
    // Results without a destination address: `addr` is null, nothing
    // reached, and the verdict says the address is unknown.
    let unknown: Vec<&Value> = recs
        .iter()
        .filter(|r| r["target"]["addr"].is_null())
        .collect();
    assert_eq!(unknown.len(), 10);
    for r in unknown {
        assert_eq!(r["reached"], false);
        assert_eq!(r["verdict"]["class"], "indeterminate", "{r}");
        assert!(
            r["verdict"]["explanation"]
                .as_str()
                .unwrap()
                .contains("address is unknown"),
            "{r}"
        );
    }
    // The metadata file covers 95 of the results' probes: those results get
    // their vantage country from it.
    let with_country = recs
        .iter()
        .filter(|r| r["vantage"]["country"].is_string())
        .count();
    assert!(with_country >= 80, "{with_country} of {}", recs.len());

    // The summary form counts the same traces, and says why the
    // indeterminate ones are.
    let out = Command::new(bin())
        .args(["analyze", "--input"])
        .arg(&input)
        .output()
        .unwrap();
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.starts_with(&format!("{} traces", recs.len())),
        "{summary}"
    );
    let reasons = summary
        .lines()
        .find_map(|l| l.trim().strip_prefix("indeterminate because: "))
        .unwrap_or_else(|| panic!("no reasons in {summary}"));
    let total: usize = reasons
        .split(", ")
        .map(|r| r.rsplit(' ').next().unwrap().parse::<usize>().unwrap())
        .sum();
    let indeterminate = recs
        .iter()
        .filter(|r| r["verdict"]["class"] == "indeterminate")
        .count();
    // Without --probes or --home no result has a vantage country.
    assert_eq!(total, indeterminate, "{summary}");
    assert!(reasons.contains("no vantage country"), "{summary}");
    // With the metadata and a home for the rest, nobody lacks one.
    let out = Command::new(bin())
        .args(["analyze", "--home", "LS", "--input"])
        .arg(&input)
        .arg("--probes")
        .arg(data.join("atlas/probes_meta.json"))
        .output()
        .unwrap();
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains("95 result(s) of 24 probe(s) not in the probe metadata")
            && summary.contains("judged from the home country given instead")
            && !summary.contains("no vantage country"),
        "{summary}"
    );
}

#[test]
fn mlab_scamper_files_through_the_command() {
    let Some(data) = shared_data() else {
        eprintln!("SKIPPED mlab_scamper_files_through_the_command: ../shared/data is absent");
        return;
    };
    let run = |path: &std::path::Path| {
        Command::new(bin())
            .args(["analyze", "--input-format", "scamper", "--json", "--input"])
            .arg(path)
            .output()
            .unwrap()
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(data.join("scamper/invalid"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 22);
    for path in &files {
        // Every malformed line is named on stderr as FILE:LINE, the run
        // reaches the end of the file and the exit code says lines failed.
        let out = run(path);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}: {}",
            path.display(),
            text(&out)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        let prefix = format!("transitwatch: {}:", path.display());
        let lines: Vec<usize> = stderr
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix))
            .map(|rest| rest.split(':').next().unwrap().parse().unwrap())
            .collect();
        assert!(!lines.is_empty(), "{stderr}");
        assert!(lines.windows(2).all(|w| w[0] < w[1]), "{stderr}");
        assert!(stderr.contains("could not be read"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    // The valid files import cleanly; the scamper2 ones each hold one trace,
    // the scamper1 ones (and triggertrace's) one tracelb record each, whose
    // graph is one path, except `valid-simple`'s, which has no nodes.
    for entry in std::fs::read_dir(data.join("scamper")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !path.is_file() || !name.starts_with("mlab_") {
            continue;
        }
        let out = run(&path);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("skipped"), "{name}: {stderr}");
        let recs = records(&out.stdout);
        let want = usize::from(name != "mlab_scamper1_valid-simple");
        assert_eq!(recs.len(), want, "{name}");
        if name.starts_with("mlab_scamper2_") {
            assert!(recs[0].get("tracelb").is_none(), "{name}");
            continue;
        }
        for r in &recs {
            assert_eq!(r["tracelb"]["record"], 1, "{name}: {r}");
            assert_eq!(r["tracelb"]["line"], 3, "{name}: {r}");
            assert_eq!(r["tracelb"]["paths"], 1, "{name}: {r}");
            // The graphs that reach their destination say so.
            let reached = r["reached"].as_bool().unwrap();
            let end = r["tracelb"]["end"].as_str().unwrap();
            assert_eq!(reached, end == "destination", "{name}: {r}");
            let want_reached =
                name.ends_with("dst-in-hops-v4") || name.starts_with("mlab_triggertrace");
            assert_eq!(reached, want_reached, "{name}: {r}");
        }
        // The summary counts the record and its paths, never "skipped".
        let summary = Command::new(bin())
            .args(["analyze", "--input-format", "scamper", "--input"])
            .arg(&path)
            .output()
            .unwrap();
        let summary = String::from_utf8_lossy(&summary.stdout);
        let line = if want == 0 {
            "  tracelb: 1 record, 0 paths (1 record without nodes: no path)\n"
        } else {
            "  tracelb: 1 record, 1 path\n"
        };
        assert!(
            summary.contains(line) && !summary.contains("skipped"),
            "{name}: {summary}"
        );
    }
}

/// A scamper tracelb record (as `sc_warts2json` writes one) from 192.0.2.1
/// to 203.0.113.9: .1 fans out to .2 (home) and .130 (ZA), both fan out to
/// .3 and .4, both lead to the destination: four paths, two through ZA.
fn tracelb_diamonds() -> String {
    let to = |addr: &str, ttl: u32, rtt: f64| {
        format!(
            r#"{{"addr":"{addr}", "probes":[{{"tx":{{"sec":1700000001, "usec":0}}, "replyc":1, "ttl":{ttl}, "attempt":0, "flowid":1, "replies":[{{"rx":{{"sec":1700000001, "usec":9}}, "ttl":60, "rtt":{rtt:.3}, "ipid":1, "icmp_type":11, "icmp_code":0, "icmp_q_tos":0, "icmp_q_ttl":1}}]}}]}}"#
        )
    };
    let fan = |addr: &str, next: [String; 2]| {
        format!(
            r#"{{"addr":"{addr}", "q_ttl":1, "linkc":2, "links":[[{}]]}}"#,
            next.join(",")
        )
    };
    let one = |addr: &str, next: String| {
        format!(r#"{{"addr":"{addr}", "q_ttl":1, "linkc":1, "links":[[{next}]]}}"#)
    };
    let nodes = [
        fan(
            "198.51.100.1",
            [to("198.51.100.2", 2, 1.5), to("198.51.100.130", 2, 3.5)],
        ),
        fan(
            "198.51.100.2",
            [to("198.51.100.3", 3, 2.5), to("198.51.100.4", 3, 2.5)],
        ),
        fan(
            "198.51.100.130",
            [to("198.51.100.3", 3, 4.5), to("198.51.100.4", 3, 4.5)],
        ),
        one("198.51.100.3", to("203.0.113.9", 4, 5.0)),
        one("198.51.100.4", to("203.0.113.9", 4, 5.0)),
    ];
    format!(
        r#"{{"type":"tracelb", "version":"0.1", "userid":0, "method":"icmp-echo", "src":"192.0.2.1", "dst":"203.0.113.9", "start":{{"sec":1700000000, "usec":0, "ftime":"2023-11-14 22:13:20"}}, "probe_size":60, "firsthop":1, "attempts":3, "confidence":95, "tos":0, "gaplimit":3, "wait_timeout":5, "wait_probe":250, "probec":12, "probec_max":3000, "nodec":5, "linkc":8, "nodes":[{}]}}"#,
        nodes.join(",")
    )
}

#[test]
fn tracelb_paths_are_judged_and_summed_up_per_record() {
    let dir = tempfile::tempdir().unwrap();
    // Home is LS: the lower half of 198.51.100.0/24 is at home, the upper
    // half in ZA; the vantage and the destination are at home.
    let overrides = dir.path().join("overrides.csv");
    std::fs::write(
        &overrides,
        "192.0.2.0/24,LS,Maseru,-29.31,27.48\n198.51.100.0/25,LS,Maseru,-29.31,27.48\n198.51.100.128/25,ZA,Johannesburg,-26.2,28.04\n203.0.113.0/24,LS,Maseru,-29.31,27.48\n",
    )
    .unwrap();
    // A cycle around the record, a second tracelb record of one path at
    // home, and a ping, which is still no path.
    let single = r#"{"type":"tracelb", "method":"icmp-echo", "src":"192.0.2.1", "dst":"203.0.113.10", "start":{"sec":1700000100, "usec":0}, "firsthop":1, "nodes":[{"addr":"198.51.100.1", "q_ttl":1, "linkc":1, "links":[[{"addr":"203.0.113.10", "probes":[{"ttl":2, "replies":[{"rtt":1.0}]}]}]]}]}"#;
    let input = dir.path().join("tracelb.jsonl");
    std::fs::write(
        &input,
        format!(
            "{{\"type\":\"cycle-start\", \"list_name\":\"default\", \"id\":1, \"hostname\":\"v\", \"start_time\":1700000000}}\n{}\n{single}\n{{\"type\":\"ping\"}}\n{{\"type\":\"cycle-stop\", \"list_name\":\"default\", \"id\":1, \"hostname\":\"v\", \"stop_time\":1700000200}}\n",
            tracelb_diamonds()
        ),
    )
    .unwrap();
    let run = |json: bool| {
        let mut command = Command::new(bin());
        command
            .args(["analyze", "--input-format", "scamper", "--home", "LS"])
            .arg("--overrides")
            .arg(&overrides)
            .arg("--input")
            .arg(&input);
        if json {
            command.arg("--json");
        }
        let out = command.output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        out
    };

    let out = run(true);
    let recs = records(&out.stdout);
    assert_eq!(recs.len(), 5, "{}", text(&out));
    let places: Vec<(u64, u64, u64, u64)> = recs
        .iter()
        .map(|r| {
            let t = &r["tracelb"];
            let n = |k: &str| t[k].as_u64().unwrap_or_else(|| panic!("{k} in {r}"));
            (n("record"), n("line"), n("path"), n("paths"))
        })
        .collect();
    assert_eq!(
        places,
        [
            (1, 2, 1, 4),
            (1, 2, 2, 4),
            (1, 2, 3, 4),
            (1, 2, 4, 4),
            (2, 3, 1, 1)
        ]
    );
    // The Parquet traces table keeps which record and path each row is.
    let dataset = dir.path().join("dataset");
    let written = Command::new(bin())
        .args(["analyze", "--input-format", "scamper", "--home", "LS"])
        .arg("--overrides")
        .arg(&overrides)
        .arg("--input")
        .arg(&input)
        .args(["--output-format", "parquet", "--output"])
        .arg(&dataset)
        .output()
        .unwrap();
    assert_eq!(written.status.code(), Some(0), "{}", text(&written));
    let file = std::fs::File::open(dataset.join("traces/part-00000.parquet")).unwrap();
    let mut rows = Vec::new();
    for batch in
        parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(file, 1024).unwrap()
    {
        let batch = batch.unwrap();
        let column = |name: &str| -> Vec<u64> {
            use arrow_array::cast::AsArray;
            let array = batch.column_by_name(name).unwrap();
            match array.data_type() {
                arrow_schema::DataType::UInt64 => array
                    .as_primitive::<arrow_array::types::UInt64Type>()
                    .iter()
                    .map(Option::unwrap)
                    .collect(),
                _ => array
                    .as_primitive::<arrow_array::types::UInt32Type>()
                    .iter()
                    .map(|v| u64::from(v.unwrap()))
                    .collect(),
            }
        };
        let (record, path, paths) = (
            column("tracelb_record"),
            column("tracelb_path"),
            column("tracelb_paths"),
        );
        for i in 0..batch.num_rows() {
            rows.push((record[i], path[i], paths[i]));
        }
    }
    assert_eq!(
        rows,
        places.iter().map(|p| (p.0, p.2, p.3)).collect::<Vec<_>>()
    );
    let hops = |r: &Value| -> Vec<String> {
        r["hops"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["addr"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        hops(&recs[2]),
        [
            "198.51.100.1",
            "198.51.100.130",
            "198.51.100.3",
            "203.0.113.9"
        ]
    );
    let classes: Vec<&str> = recs
        .iter()
        .map(|r| r["verdict"]["class"].as_str().unwrap())
        .collect();
    assert_eq!(
        classes,
        [
            "domestic",
            "domestic",
            "foreign_transit",
            "foreign_transit",
            "domestic"
        ]
    );
    for r in &recs {
        assert_eq!(r["tracelb"]["end"], "destination", "{r}");
        assert_eq!(r["tracelb"]["capped"], false, "{r}");
        assert_eq!(r["reached"], true, "{r}");
        assert_eq!(r["vantage"]["name"], "192.0.2.1", "{r}");
    }
    let hop = &recs[2]["hops"][1];
    assert_eq!(
        (hop["ttl"].as_u64(), hop["sent"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(hop["rtt_ms"]["best"], 3.5);
    assert_eq!(hop["geo"]["country"], "ZA");
    // The ping is still said, and only it.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .trim_end()
            .ends_with("were skipped, not analysed: 1 ping"),
        "{stderr}"
    );

    let out = run(false);
    let summary = String::from_utf8_lossy(&out.stdout);
    for line in [
        "5 traces from ",
        "  tracelb: 2 records, 5 paths\n    1 record has 2 of 4 paths crossing ZA\n",
        "  skipped, not analysed: 1 ping\n",
        "  crosses ZA: 2 traces (40%)\n",
    ] {
        assert!(summary.contains(line), "{line:?} in\n{summary}");
    }
    assert_eq!(summary.matches("crossing").count(), 1, "{summary}");
}

#[test]
fn a_malformed_line_is_reported_with_its_number_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("mixed.jsonl");
    let good = r#"{"type":"trace","method":"icmp-echo-paris","src":"198.18.1.1","dst":"198.51.100.10","stop_reason":"COMPLETED","start":{"sec":1795696731,"usec":0},"hops":[{"addr":"198.18.1.2","probe_ttl":1,"rtt":0.1},{"addr":"198.51.100.10","probe_ttl":2,"rtt":0.2}]}"#;
    std::fs::write(
        &input,
        format!("{good}\n{{\"type\": \"trace\", broken\n{good}\n"),
    )
    .unwrap();
    let out = Command::new(bin())
        .args(["analyze", "--input-format", "scamper", "--json", "--input"])
        .arg(&input)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(records(&out.stdout).len(), 2, "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("mixed.jsonl:2:"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn real_scamper_traces_of_the_lab_get_the_right_verdicts() {
    let test = "real_scamper_traces_of_the_lab_get_the_right_verdicts";
    if !have("scamper") {
        skip(test, "scamper is not installed");
        return;
    }
    let Some(lab) = Lab::up(test) else { return };
    let dir = tempfile::tempdir().unwrap();
    let scamper = |target: &str| -> String {
        let out = lab
            .command("v", "scamper")
            .args(["-O", "json", "-c", "trace -P icmp-paris", "-i", target])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let domestic = scamper(lab.addr("DOMESTIC_V4"));
    let foreign = scamper(lab.addr("FOREIGN_V4"));
    lab.route("za");
    let via_za = scamper(lab.addr("DOMESTIC_V4"));
    let input = dir.path().join("lab.json");
    std::fs::write(&input, format!("{domestic}{foreign}{via_za}")).unwrap();
    let out = Command::new(bin())
        .args([
            "analyze",
            "--input-format",
            "scamper",
            "--json",
            "--home",
            "LS",
            "--overrides",
        ])
        .arg(root().join("tests/lab/lab-geo.csv"))
        .arg("--input")
        .arg(&input)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let recs = records(&out.stdout);
    let classes: Vec<&str> = recs
        .iter()
        .map(|r| r["verdict"]["class"].as_str().unwrap())
        .collect();
    assert_eq!(
        classes,
        ["domestic", "foreign_destination", "foreign_transit"],
        "{recs:?}"
    );
    let countries: Vec<&str> = recs[2]["verdict"]["countries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(countries, ["LS", "ZA", "LS"]);
}

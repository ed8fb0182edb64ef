//! Bad input: every failure is one line on stderr, the documented exit code
//! (2 usage/config, 1 runtime) and never a panic.

use crate::support;

use std::io::Write;
use std::process::{Command, Output};
use support::{bin, text, Lab};

fn run(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .output()
        .expect("run transitwatch")
}

/// Exit code `code`, exactly one line on stderr containing every `needles`,
/// and no panic.
fn assert_fails(out: &Output, code: i32, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{}", text(out));
    assert!(!stderr.contains("panicked"), "{}", text(out));
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line expected: {}", text(out));
    for n in needles {
        assert!(lines[0].contains(n), "`{n}` missing: {}", text(out));
    }
}

fn config_file(body: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    f.write_all(body.as_bytes()).unwrap();
    f
}

const GOOD: &str = "[vantage]\nname = \"maseru-1\"\ncountry = \"LS\"\n";

#[test]
fn invalid_protocol_is_a_usage_error() {
    let out = run(&["trace", "127.0.0.1", "--protocol", "sctp"]);
    assert_fails(&out, 2, &["sctp", "icmp, udp or tcp"]);
}

#[test]
fn invalid_ports_are_usage_errors() {
    assert_fails(
        &run(&["trace", "127.0.0.1", "--protocol", "tcp", "--port", "0"]),
        2,
        &["port 0"],
    );
    assert_fails(
        &run(&["trace", "127.0.0.1", "--port", "70000"]),
        2,
        &["70000"],
    );
    assert_fails(
        &run(&["trace", "127.0.0.1", "--port", "80"]),
        2,
        &["udp", "tcp"],
    );
}

#[test]
fn misspelt_config_key_names_file_line_and_field() {
    let f = config_file(&format!("{GOOD}\n[probe]\nprotocl = \"udp\"\n"));
    let path = f.path().to_str().unwrap();
    for args in [
        vec!["check-config", "--config", path],
        vec!["trace", "127.0.0.1", "--config", path],
    ] {
        assert_fails(&run(&args), 2, &[path, ":6:", "protocl"]);
    }
}

#[test]
fn wrong_type_in_config_names_the_field() {
    let f = config_file(&format!("{GOOD}\n[probe]\nconcurrency = \"many\"\n"));
    let path = f.path().to_str().unwrap();
    assert_fails(
        &run(&["check-config", "--config", path]),
        2,
        &[path, ":6:", "concurrency"],
    );
}

#[test]
fn missing_config_file_is_named() {
    let out = run(&["check-config", "--config", "/nonexistent/transitwatch.toml"]);
    assert_fails(&out, 2, &["/nonexistent/transitwatch.toml"]);
}

#[test]
fn the_sample_config_checks_clean_with_its_geoip_files() {
    // The sample's GeoIP files, stood in for by a database built from the
    // lab's overrides.
    let dir = tempfile::tempdir().unwrap();
    let mmdb = dir.path().join("lab.mmdb");
    let built = run(&[
        "geo",
        "build",
        "--csv",
        support::root()
            .join("tests/lab/lab-geo.csv")
            .to_str()
            .unwrap(),
        "--output",
        mmdb.to_str().unwrap(),
    ]);
    assert!(built.status.success(), "{}", text(&built));
    let sample = std::fs::read_to_string(support::root().join("config/transitwatch.toml")).unwrap();
    let mmdb = mmdb.to_str().unwrap();
    let text_with_files = sample
        .replace("/var/lib/GeoIP/GeoLite2-City.mmdb", mmdb)
        .replace("/var/lib/GeoIP/GeoLite2-ASN.mmdb", mmdb);
    assert_ne!(
        text_with_files, sample,
        "the sample names other GeoIP files"
    );
    let f = config_file(&text_with_files);
    let out = run(&["check-config", "--config", f.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(": ok (") && stdout.contains("2 GeoIP databases"),
        "{stdout}"
    );
}

#[test]
fn missing_capability_is_one_line_at_start() {
    if !support::have("setpriv") {
        support::skip(
            "missing_capability_is_one_line_at_start",
            "setpriv is not installed",
        );
        return;
    }
    // Drop CAP_NET_RAW from the bounding set: even root then lacks it.
    let out = Command::new("setpriv")
        .args([
            "--bounding-set=-net_raw",
            "--inh-caps=-net_raw",
            bin(),
            "trace",
            "127.0.0.1",
        ])
        .output()
        .unwrap();
    assert_fails(&out, 1, &["CAP_NET_RAW"]);
}

#[test]
fn runtime_failures_in_the_lab_are_one_line_exit_1() {
    let Some(lab) = Lab::up("runtime_failures_in_the_lab_are_one_line_exit_1") else {
        return;
    };
    // A name no resolver knows (the lab's resolver is its hosts file).
    assert_fails(
        &lab.transitwatch(&["trace", "nosuch.ls.test"]),
        1,
        &["nosuch.ls.test"],
    );
    // Addresses the vantage has no route to, IPv4 and IPv6.
    for addr in [lab.addr("UNROUTABLE_V4"), lab.addr("UNROUTABLE_V6")] {
        assert_fails(&lab.transitwatch(&["trace", addr]), 1, &[addr, "route"]);
    }
    // A destination that never answers: the routers before it still show,
    // the trace ends at the deadline and says so.
    let silent = lab.addr("UNANSWERED_V4");
    let out = lab.transitwatch(&["trace", silent, "--json", "--deadline", "400ms"]);
    assert_fails(&out, 1, &[silent, "did not answer", "400ms"]);
    let record: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(record["reached"], false);
    let hops = record["hops"].as_array().unwrap();
    assert_eq!(hops[0]["addr"], lab.addr("R1_V4"));
    assert!(hops.last().unwrap()["addr"].is_null(), "{record}");
}

#[test]
fn unusable_geolocation_inputs_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.mmdb");
    let missing = missing.to_str().unwrap();
    assert_fails(
        &run(&["geo", "lookup", "192.0.2.1", "--geoip", missing]),
        2,
        &[missing],
    );
    assert_fails(
        &run(&["trace", "127.0.0.1", "--geoip", missing]),
        2,
        &[missing],
    );

    let text_file = dir.path().join("not.mmdb");
    std::fs::write(&text_file, "this is not a MaxMind database\n".repeat(20)).unwrap();
    let text_file = text_file.to_str().unwrap();
    assert_fails(
        &run(&["geo", "lookup", "192.0.2.1", "--geoip", text_file]),
        2,
        &[text_file],
    );

    let csv = dir.path().join("overrides.csv");
    std::fs::write(
        &csv,
        "prefix,country\n198.51.100.0/24,LS\n198.51.100.0/33,LS\n",
    )
    .unwrap();
    let csv = csv.to_str().unwrap();
    assert_fails(
        &run(&["geo", "lookup", "192.0.2.1", "--overrides", csv]),
        2,
        &[csv, ":3"],
    );
}

#[test]
fn geo_build_and_lookup_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let csv = support::root().join("tests/lab/lab-geo.csv");
    let mmdb = dir.path().join("lab.mmdb");
    let out = Command::new(bin())
        .args(["geo", "build", "--csv", csv.to_str().unwrap(), "--output"])
        .arg(&mmdb)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let out = run(&[
        "geo",
        "lookup",
        "198.18.4.2",
        "2001:db8:113::10",
        "--geoip",
        mmdb.to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["geo"]["country"], "ZA", "{lines:?}");
    assert_eq!(lines[0]["geo"]["asn"], 64510);
    assert_eq!(lines[0]["geo"]["city"], "Johannesburg");
    assert_eq!(lines[1]["geo"]["country"], "IE");
}

//! Reverse DNS names of hops, against real and hostile DNS servers
//! (`support::dns`) on 127.0.0.1 of this host or of the lab's vantage:
//! - the test's unbound serves PTR names of the lab ranges (198.18.0.0/15,
//!   2001:db8::/32) and no name where it has none;
//! - loopback hops are `localhost` without a query (RFC 6761), and have no
//!   name with `-n`;
//! - in the lab, `transitwatch trace` shows the routers' names from the
//!   vantage's unbound (JSON `hostname`, the table's `Name` column);
//! - a server that never answers, or answers garbage (random bytes, wrong
//!   ids, oversized and invalid names, a truncated reply and a broken TCP
//!   answer), costs a trace at most `max_wait`: the record comes without
//!   names;
//! - the daemon names its hops, answers from its cache once the server is
//!   gone (no query, cache hits counted), and goes on tracing when its
//!   server never answers;
//! - `[rdns]` errors name file, line and field.
//!
//! Without `unbound` (scripts/setup.sh installs it), CAP_NET_RAW or the
//! lab the tests that need them print a skip line (and fail under
//! `TRANSITWATCH_REQUIRE_LAB=1`). Waits poll with generous bounds.

use crate::support::daemon::{write_config, LabDaemon, Metrics};
use crate::support::dns::{ptr, serve_from_env, Hostile, Unbound};
use crate::support::{self, bin, text, Lab};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// The query timeout in the hostile cases: far longer than `max_wait`, so
/// a trace that waited for it would show.
const SLOW_QUERY: &str = "30s";

/// A trace's bound in the hostile cases, the query timeout well beyond it:
/// `max_wait` (1 s) and a trace of four lab hops, with room for a loaded
/// machine.
const BOUNDED: Duration = Duration::from_secs(10);

/// The lab routers on the domestic route and their names.
const ROUTERS: [(&str, &str); 3] = [
    ("R1_V4", "ae1-0.cr1.msu.lab.example.net"),
    ("LS2_V4", "xe-0-0-0.cr2.msu.lab.example.net"),
    ("GW_VIA_LS_V4", "gw1.msu.lab.example.net"),
];

/// Tracers to 127.0.0.1 of concurrent processes tell their probes apart
/// by identifiers that rarely, but can, collide: these tests take turns.
static TRACING: Mutex<()> = Mutex::new(());

fn one_tracer_at_a_time() -> MutexGuard<'static, ()> {
    TRACING.lock().unwrap_or_else(PoisonError::into_inner)
}

fn can_trace(test: &str) -> bool {
    const CAP_NET_RAW: u32 = 13;
    support::has_cap(CAP_NET_RAW) || !support::skip(test, "tracing needs CAP_NET_RAW")
}

/// Not a test: the hostile DNS server process `support::dns` starts at
/// the lab's vantage. Does nothing in a plain run.
#[test]
#[ignore = "a server process started by the reverse DNS lab tests"]
fn hostile_dns_server() {
    serve_from_env();
}

/// `DIR/NAME.toml`: a vantage, `[rdns]` as given, and `more`.
fn config(dir: &Path, name: &str, rdns: &str, more: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    let text = format!(
        "[vantage]\nname = \"loopback\"\ncountry = \"LS\"\n\n[probe]\ninterval = \"1s\"\n\
         jitter = \"100ms\"\ndeadline = \"1s\"\nconcurrency = 4\n\n[rdns]\n{rdns}\n{more}"
    );
    std::fs::write(&path, text).expect("write the configuration");
    path
}

fn trace(args: &[&str]) -> Output {
    Command::new(bin())
        .arg("trace")
        .args(args)
        .output()
        .expect("run transitwatch trace")
}

/// The JSON records of a `trace --json` run.
fn records(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The `hostname` of every hop of a record.
fn hostnames(record: &serde_json::Value) -> Vec<Option<String>> {
    record["hops"]
        .as_array()
        .expect("hops")
        .iter()
        .map(|h| h.get("hostname").and_then(|n| n.as_str()).map(String::from))
        .collect()
}

/// The names the lab's unbound serves.
fn router_records(lab: &Lab) -> Vec<(&str, &'static str)> {
    ROUTERS
        .iter()
        .map(|(key, name)| (lab.addr(key), *name))
        .collect()
}

#[test]
fn the_test_server_serves_names_of_the_lab_ranges() {
    let test = "reverse_dns::the_test_server_serves_names_of_the_lab_ranges";
    let Some(server) = Unbound::start(
        test,
        &[
            ("198.18.1.2", "ae1-0.cr1.msu.example.net"),
            ("198.19.255.254", "xe-0-0-1.br2.jnb.example.net"),
            ("2001:db8::1", "core1.dub.example.net"),
        ],
    ) else {
        return;
    };
    let ask = |a: &str| ptr(server.addr(), a.parse().unwrap(), Duration::from_secs(2));
    assert_eq!(
        ask("198.18.1.2").as_deref(),
        Some("ae1-0.cr1.msu.example.net")
    );
    assert_eq!(
        ask("198.19.255.254").as_deref(),
        Some("xe-0-0-1.br2.jnb.example.net")
    );
    assert_eq!(ask("2001:db8::1").as_deref(), Some("core1.dub.example.net"));
    assert_eq!(ask("198.18.1.3"), None);
}

#[test]
fn loopback_hops_are_localhost_without_a_query_and_unnamed_with_no_dns() {
    let test = "reverse_dns::loopback_hops_are_localhost_without_a_query_and_unnamed_with_no_dns";
    if !can_trace(test) {
        return;
    }
    let silent = Hostile::silent();
    let _turn = one_tracer_at_a_time();
    let out = trace(&["127.0.0.1", "--dns-server", &silent.server(), "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        hostnames(&records(&out)[0]),
        vec![Some("localhost".to_string())],
        "{}",
        text(&out)
    );
    assert_eq!(silent.queries(), 0, "loopback names are never asked for");
    let out = trace(&["127.0.0.1", "--dns-server", &silent.server()]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("  1.  localhost  127.0.0.1 "), "{table}");

    let out = trace(&["127.0.0.1", "-n", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("hostname"));
    let out = trace(&["127.0.0.1", "--no-dns"]);
    let table = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[1].starts_with(" TTL  Name       Host "), "{table}");
    assert!(
        lines[2].starts_with("  1.  127.0.0.1  127.0.0.1 "),
        "the address stands in for the name: {table}"
    );
}

#[test]
fn trace_shows_the_lab_routers_names_from_the_dns_server() {
    let test = "reverse_dns::trace_shows_the_lab_routers_names_from_the_dns_server";
    let Some(lab) = Lab::up(test) else { return };
    let Some(server) = Unbound::start_in(&lab, test, &router_records(&lab)) else {
        return;
    };
    let domestic = lab.addr("DOMESTIC_V4");
    let dns = server.server();
    let out = lab.transitwatch(&["trace", domestic, "-4", "--dns-server", &dns, "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let recs = records(&out);
    let want: Vec<Option<String>> = ROUTERS
        .iter()
        .map(|(_, name)| Some((*name).to_string()))
        .chain([None])
        .collect();
    assert_eq!(hostnames(&recs[0]), want, "{}", text(&out));

    let out = lab.transitwatch(&["trace", domestic, "-4", "--dns-server", &dns]);
    assert!(out.status.success(), "{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    let width = "xe-0-0-0.cr2.msu.lab.example.net".len();
    for (hop, (key, name)) in ROUTERS.iter().enumerate() {
        let line = format!("{:>3}.  {name:<width$}  {} ", hop + 1, lab.addr(key));
        assert!(table.contains(&line), "`{line}` missing:\n{table}");
    }
    let line = format!("  4.  {domestic:<width$}  {domestic} ");
    assert!(table.contains(&line), "`{line}` missing:\n{table}");
}

/// A trace at the vantage with `server` as its only DNS server, a 30 s
/// query timeout and `max_wait = "1s"`: it must end well before the query
/// timeout, with its record and no names.
fn assert_bounded(lab: &Lab, dir: &Path, server: &str) {
    let cfg = config(
        dir,
        "hostile",
        &format!("servers = [\"{server}\"]\ntimeout = \"{SLOW_QUERY}\"\nmax_wait = \"1s\"\n"),
        "",
    );
    let domestic = lab.addr("DOMESTIC_V4");
    let started = Instant::now();
    let out = lab.transitwatch(&[
        "trace",
        domestic,
        "-4",
        "--config",
        cfg.to_str().unwrap(),
        "--json",
    ]);
    let took = started.elapsed();
    assert!(out.status.success(), "{}", text(&out));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    let recs = records(&out);
    assert_eq!(recs.len(), 1, "{}", text(&out));
    assert_eq!(hostnames(&recs[0]), vec![None; 4], "{}", text(&out));
    assert!(
        took < BOUNDED,
        "via {server}: {took:?}, bounded by max_wait (1s), not the query timeout"
    );
}

#[test]
fn a_server_that_never_answers_or_answers_garbage_costs_at_most_max_wait() {
    let test = "reverse_dns::a_server_that_never_answers_or_answers_garbage_costs_at_most_max_wait";
    let Some(lab) = Lab::up(test) else { return };
    let dir = tempfile::tempdir().unwrap();
    let silent = Hostile::silent_in(&lab, dir.path());
    assert_bounded(&lab, dir.path(), &silent.server());
    assert!(
        silent.queries() >= 1,
        "the resolver asked the silent server"
    );
    let garbage = Hostile::garbage_in(&lab, dir.path());
    // Four hops a trace, one kind of garbage a query, in turn: two traces
    // meet every kind.
    assert_bounded(&lab, dir.path(), &garbage.server());
    assert_bounded(&lab, dir.path(), &garbage.server());
    assert!(garbage.queries() >= 5, "{} queries", garbage.queries());
}

/// The lab daemon tracing the domestic service every 2 s, `[rdns]` as given.
fn lab_daemon<'l>(lab: &'l Lab, dir: &Path, rdns: &str) -> LabDaemon<'l> {
    let target = format!(
        "\n[[target]]\nname = \"gov\"\nhost = \"{}\"\n",
        lab.addr("DOMESTIC_V4")
    );
    let cfg = write_config(dir, &[&target, &format!("\n[rdns]\n{rdns}\n")]);
    LabDaemon::start(lab, &cfg, &dir.join("state"))
}

/// The latest record of `gov`, once there is one.
fn latest(daemon: &LabDaemon<'_>) -> Option<serde_json::Value> {
    let (code, body) = daemon.get("/api/v1/targets/gov/latest");
    (code == 200).then(|| serde_json::from_str::<serde_json::Value>(&body).ok())?
}

fn lookups(m: &Metrics, result: &str) -> f64 {
    m.or_zero("transitwatch_rdns_lookups_total", &[("result", result)])
}

fn cache_hits(m: &Metrics) -> f64 {
    m.or_zero("transitwatch_rdns_cache_hits_total", &[])
}

#[test]
fn the_daemon_names_hops_and_answers_from_its_cache_once_the_server_is_gone() {
    let test =
        "reverse_dns::the_daemon_names_hops_and_answers_from_its_cache_once_the_server_is_gone";
    let Some(lab) = Lab::up(test) else { return };
    let Some(mut server) = Unbound::start_in(&lab, test, &router_records(&lab)) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let daemon = lab_daemon(
        &lab,
        dir.path(),
        &format!("servers = [\"{}\"]\nmax_wait = \"2s\"\n", server.server()),
    );
    let named = |r: &serde_json::Value| hostnames(&r[0]).iter().flatten().count() == 3;
    let first = crate::support::services::wait_for(
        "a record with the routers' names",
        Duration::from_secs(60),
        || latest(&daemon).filter(named),
        || daemon.log_tail(),
    );
    let m = daemon.metrics();
    assert_eq!(lookups(&m, "name"), 3.0, "one query per router");
    assert_eq!(lookups(&m, "no_name"), 1.0, "and one for the service");
    // The server is gone: the next traces' names can only come from the cache.
    server.kill();
    let before = m.runs("gov", "reached");
    let m = daemon.wait_metrics("two more traces", |m| {
        m.runs("gov", "reached") >= before + 2.0
    });
    assert!(cache_hits(&m) >= 8.0, "cache hits: {}", cache_hits(&m));
    for (result, want) in [
        ("name", 3.0),
        ("no_name", 1.0),
        ("timeout", 0.0),
        ("error", 0.0),
        ("garbage", 0.0),
    ] {
        assert_eq!(
            lookups(&m, result),
            want,
            "{result}: no query after the first trace"
        );
    }
    let last = latest(&daemon).expect("a record");
    assert_ne!(last[0]["started_at"], first[0]["started_at"]);
    assert_eq!(hostnames(&last[0]), hostnames(&first[0]));
}

#[test]
fn the_daemon_goes_on_tracing_when_its_server_never_answers() {
    let test = "reverse_dns::the_daemon_goes_on_tracing_when_its_server_never_answers";
    let Some(lab) = Lab::up(test) else { return };
    let dir = tempfile::tempdir().unwrap();
    let silent = Hostile::silent_in(&lab, dir.path());
    let daemon = lab_daemon(
        &lab,
        dir.path(),
        &format!(
            "servers = [\"{}\"]\ntimeout = \"500ms\"\nmax_wait = \"1s\"\n",
            silent.server()
        ),
    );
    let m = daemon.wait_metrics("three traces and timed-out queries", |m| {
        m.runs("gov", "reached") >= 3.0 && lookups(m, "timeout") >= 4.0
    });
    assert_eq!(lookups(&m, "name"), 0.0);
    let last = latest(&daemon).expect("a record");
    assert_eq!(hostnames(&last[0]), vec![None; 4], "{last}");
    assert!(silent.queries() >= 4);
}

#[test]
fn rdns_config_errors_name_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    for (rdns, line, field) in [
        ("servers = [\"ns1.example\"]", ":12:", "rdns.servers[0]"),
        ("timeout = \"0s\"", ":12:", "rdns.timeout"),
        ("max_wait = \"1h\"", ":12:", "rdns.max_wait"),
        ("cache_size = 2000000", ":12:", "rdns.cache_size"),
        ("resolver = \"x\"", ":12:", "resolver"),
    ] {
        let cfg = config(dir.path(), "bad", rdns, "");
        let path = cfg.to_str().unwrap();
        for args in [
            vec!["check-config", "--config", path],
            vec!["trace", "127.0.0.1", "--config", path],
        ] {
            let out = Command::new(bin()).args(&args).output().expect("run");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{rdns}: {}", text(&out));
            let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
            assert_eq!(lines.len(), 1, "{rdns}: {}", text(&out));
            for needle in [path, line, field] {
                assert!(
                    lines[0].contains(needle),
                    "{rdns}: `{needle}` missing: {stderr}"
                );
            }
        }
    }
    let out = Command::new(bin())
        .args(["trace", "127.0.0.1", "--dns-server", "ns1.example"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a DNS server address"));
}

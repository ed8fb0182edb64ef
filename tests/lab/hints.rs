//! What a path's last trace tells the next: the daemon traces a service in
//! Dublin, 160 ms and 3 hops away, and the vantage's own ICMP counters
//! (`/proc/net/snmp` in its namespace, where nothing else sends echo
//! requests) say what each trace cost on the wire.
//!
//! Without a hint a trace first measures the destination's RTT (one probe)
//! and its first round sends 12 TTLs before any reply comes back from
//! abroad, every one past the third answered by the destination itself.
//! With the hint the last trace left (RTT and destination TTL), kept across
//! a restart in the saved path state, there is no RTT probe and the first
//! round sends up to the destination and two TTLs beyond, plus what the
//! near hops' quick replies let through.

use crate::support;

use support::daemon::{store_section, write_config, LabDaemon};
use support::Lab;

const SHOP: &str = r#"
[[target]]
name = "shop"
host = "shop.ie.test"
category = "commerce"
"#;

/// Echo requests the vantage has sent so far.
fn echo_requests(lab: &Lab) -> u64 {
    let out = lab
        .command("v", "cat")
        .arg("/proc/net/snmp")
        .output()
        .unwrap();
    let snmp = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut icmp = snmp.lines().filter(|l| l.starts_with("Icmp:"));
    let (names, values) = (icmp.next().unwrap(), icmp.next().unwrap());
    let at = names
        .split_whitespace()
        .position(|n| n == "OutEchos")
        .expect("Icmp OutEchos");
    values.split_whitespace().nth(at).unwrap().parse().unwrap()
}

/// Wait until the shop has `n` traces, then the echo requests sent so far.
fn after_traces(lab: &Lab, daemon: &LabDaemon, n: f64) -> u64 {
    daemon.wait_metrics(&format!("{n} traces of the shop"), |m| {
        m.runs("shop", "reached") >= n
    });
    echo_requests(lab)
}

#[test]
fn a_hinted_trace_sends_no_rtt_probe_and_few_probes_past_the_destination() {
    let test = "a_hinted_trace_sends_no_rtt_probe_and_few_probes_past_the_destination";
    let Some(lab) = Lab::up(test) else { return };
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &[&store_section(dir.path()), SHOP]);
    // One trace every 3 s, each well within its deadline at 160 ms.
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("interval = \"2s\"", "interval = \"3s\"")
        .replace("deadline = \"1s\"", "deadline = \"3s\"");
    std::fs::write(&config, text).unwrap();
    let state = dir.path().join("state");

    let start = echo_requests(&lab);
    let daemon = LabDaemon::start(&lab, &config, &state);
    let first = after_traces(&lab, &daemon, 1.0);
    let second = after_traces(&lab, &daemon, 2.0);
    let (_, latest) = daemon.get("/api/v1/targets/shop/latest");
    let out = daemon.stop();
    assert!(out.status.success(), "{}", support::text(&out));

    // After a restart the saved path state gives the hint at once.
    let restarted = echo_requests(&lab);
    let daemon = LabDaemon::start(&lab, &config, &state);
    let after_restart = after_traces(&lab, &daemon, 1.0);
    let out = daemon.stop();
    assert!(out.status.success(), "{}", support::text(&out));

    let cold = first - start;
    let hinted = second - first;
    let warm = after_restart - restarted;
    let record: serde_json::Value = serde_json::from_str(&latest).unwrap();
    let hops = record[0]["hops"].as_array().unwrap().len();
    assert_eq!(hops, 3, "{latest}");
    // Unhinted: the RTT probe, 24 TTLs in the first round, 3 in each of
    // the two others.
    // Unhinted: the RTT probe; a first round of 12 TTLs (one every 10 ms,
    // the longest wait for a reply, all gone before Dublin's replies come
    // back 160 ms later) and a 13th the near router's answer lets go; 3 in
    // each of the two other rounds. At least 9 of the 12 under a slow
    // scheduler.
    eprintln!("echo requests: {cold} {hinted} {warm}");
    assert!(cold >= 1 + 9 + 3 + 3, "first trace: {cold} echo requests");
    // Hinted: the first round sends TTLs 1-5 (the destination's and two
    // beyond) before any reply, the near router's answer lets a sixth go,
    // the Dublin router's (arriving just before the destination's) a
    // seventh, one more at worst; then 3 and 3.
    for (what, sent) in [
        ("second trace", hinted),
        ("first trace after a restart", warm),
    ] {
        assert!(
            (3 + 3 + 3..=8 + 3 + 3).contains(&sent) && sent < cold,
            "{what}: {sent} echo requests (first trace {cold})"
        );
    }
}

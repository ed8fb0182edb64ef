//! `transitwatch trace` on the namespace lab, checked against the real peer
//! tools (scamper, mtr) and against what the lab is known to do: silenced
//! routers, switched routes.

use crate::support;

use serde_json::Value;
use std::collections::BTreeMap;
use support::{have, skip, text, Lab};

/// TTL → responding address.
type HopMap = BTreeMap<u64, String>;

fn transitwatch_hops(lab: &Lab, target: &str, extra: &[&str]) -> (Value, HopMap) {
    let mut args = vec!["trace", target, "--json"];
    args.extend_from_slice(extra);
    let out = lab.transitwatch(&args);
    assert!(out.status.success(), "transitwatch: {}", text(&out));
    let record: Value = serde_json::from_slice(&out.stdout).expect("one JSON record");
    let mut hops = HopMap::new();
    for hop in record["hops"].as_array().expect("hops") {
        if let Some(addr) = hop["addr"].as_str() {
            hops.insert(hop["ttl"].as_u64().unwrap(), addr.to_string());
        }
    }
    (record, hops)
}

fn scamper_hops(lab: &Lab, target: &str, method: &str) -> HopMap {
    let out = lab
        .command("v", "scamper")
        .args([
            "-O",
            "json",
            "-c",
            &format!("trace -P {method} -q 3"),
            "-i",
            target,
        ])
        .output()
        .expect("run scamper");
    assert!(out.status.success(), "scamper: {}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let trace: Value = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["type"] == "trace")
        .unwrap_or_else(|| panic!("no trace object in scamper output: {stdout}"));
    let mut hops = HopMap::new();
    for hop in trace["hops"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let ttl = hop["probe_ttl"].as_u64().unwrap();
        let addr = hop["addr"].as_str().unwrap().to_string();
        hops.entry(ttl).or_insert(addr);
    }
    hops
}

fn mtr_hops(lab: &Lab, target: &str, proto_args: &[&str]) -> HopMap {
    let out = lab
        .command("v", "mtr")
        .args(["-n", "-r", "-c", "3", "-i", "0.1"])
        .args(proto_args)
        .arg(target)
        .output()
        .expect("run mtr");
    assert!(out.status.success(), "mtr: {}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut hops = HopMap::new();
    for line in stdout.lines() {
        // "  1.|-- 198.18.1.2   0.0%  3  0.1 ..."
        let Some((num, rest)) = line.trim_start().split_once(".|--") else {
            continue;
        };
        let addr = rest.split_whitespace().next().unwrap_or("???");
        if addr != "???" {
            hops.insert(num.trim().parse().unwrap(), addr.to_string());
        }
    }
    hops
}

fn agree_with_peers(protocol: &str, scamper_method: &str, mtr_args: &[&str]) {
    let test = format!("trace_agrees_with_scamper_and_mtr_{protocol}");
    if !(have("scamper") && have("mtr")) {
        skip(
            &test,
            "scamper and mtr are not installed (apt-get install scamper mtr-tiny)",
        );
        return;
    }
    let Some(lab) = Lab::up(&test) else { return };
    for target in [lab.addr("DOMESTIC_V4"), lab.addr("DOMESTIC_V6")] {
        let mut extra = vec!["--protocol", protocol];
        if protocol == "tcp" {
            extra.extend_from_slice(&["--port", "443"]);
        }
        // Retried (at most 3 traces) only when a router's reply was lost:
        // under load the lab kernels' ICMP rate limits can still drop one
        // time-exceeded reply, the one flaky part of this comparison.
        let mut attempt = 0;
        let (record, ours) = loop {
            attempt += 1;
            let (record, ours) = transitwatch_hops(&lab, target, &extra);
            if ours.len() == 4 || attempt == 3 {
                break (record, ours);
            }
            eprintln!("{protocol} to {target}: a hop did not answer ({ours:?}); tracing again");
        };
        assert_eq!(record["schema"], "transitwatch.trace/1");
        assert_eq!(record["reached"], true, "{record}");
        assert_eq!(record["protocol"], protocol);
        assert_eq!(ours.values().last().map(String::as_str), Some(target));
        assert_eq!(ours.len(), 4, "four responding hops to {target}: {ours:?}");

        // scamper 20211212 (Debian 12) sends IPv6 udp-paris probes but
        // matches none of the replies (they do arrive); its classic UDP
        // method takes the same single path through the lab.
        let method = if target.contains(':') && scamper_method == "udp-paris" {
            "udp"
        } else {
            scamper_method
        };
        let scamper = scamper_hops(&lab, target, method);
        assert_eq!(
            ours, scamper,
            "{protocol} to {target}: transitwatch vs scamper"
        );
        let mtr = mtr_hops(&lab, target, mtr_args);
        assert_eq!(ours, mtr, "{protocol} to {target}: transitwatch vs mtr");
    }
}

#[test]
fn trace_agrees_with_scamper_and_mtr_icmp() {
    agree_with_peers("icmp", "icmp-paris", &[]);
}

#[test]
fn trace_agrees_with_scamper_and_mtr_udp() {
    agree_with_peers("udp", "udp-paris", &["--udp"]);
}

#[test]
fn trace_agrees_with_scamper_and_mtr_tcp() {
    agree_with_peers("tcp", "tcp -d 443", &["--tcp", "--port", "443"]);
}

#[test]
fn silenced_router_is_a_null_hop_and_the_trace_goes_on() {
    let Some(lab) = Lab::up("silenced_router_is_a_null_hop_and_the_trace_goes_on") else {
        return;
    };
    lab.silence(true);
    for (target, after) in [
        (lab.addr("DOMESTIC_V4"), lab.addr("GW_VIA_LS_V4")),
        (lab.addr("DOMESTIC_V6"), lab.addr("GW_VIA_LS_V6")),
    ] {
        let (record, hops) = transitwatch_hops(&lab, target, &[]);
        assert_eq!(record["reached"], true, "{record}");
        let ttl2 = &record["hops"][1];
        assert_eq!(ttl2["ttl"], 2);
        assert!(ttl2["addr"].is_null(), "TTL 2 must be silent: {ttl2}");
        assert_eq!(ttl2["received"], 0);
        assert_eq!(ttl2["sent"], 3);
        assert_eq!(hops.get(&3).map(String::as_str), Some(after));
        assert_eq!(hops.get(&4).map(String::as_str), Some(target));
    }
    lab.silence(false);
    let (_, hops) = transitwatch_hops(&lab, lab.addr("DOMESTIC_V4"), &[]);
    assert_eq!(hops.get(&2).map(String::as_str), Some(lab.addr("LS2_V4")));
}

#[test]
fn switched_route_shows_in_the_next_trace() {
    let Some(lab) = Lab::up("switched_route_shows_in_the_next_trace") else {
        return;
    };
    let target = lab.addr("DOMESTIC_V4");
    let (before, via_ls) = transitwatch_hops(&lab, target, &[]);
    let expected_ls: HopMap = [
        (1, lab.addr("R1_V4")),
        (2, lab.addr("LS2_V4")),
        (3, lab.addr("GW_VIA_LS_V4")),
        (4, target),
    ]
    .into_iter()
    .map(|(t, a)| (t, a.to_string()))
    .collect();
    assert_eq!(via_ls, expected_ls);

    lab.route("za");
    let (after, via_za) = transitwatch_hops(&lab, target, &[]);
    let expected_za: HopMap = [
        (1, lab.addr("R1_V4")),
        (2, lab.addr("ZA1_V4")),
        (3, lab.addr("ZA2_V4")),
        (4, lab.addr("GW_VIA_ZA_V4")),
        (5, target),
    ]
    .into_iter()
    .map(|(t, a)| (t, a.to_string()))
    .collect();
    assert_eq!(via_za, expected_za);
    assert_ne!(before["verdict"]["path_id"], after["verdict"]["path_id"]);

    // IPv6 follows the same switch.
    let (_, v6) = transitwatch_hops(&lab, lab.addr("DOMESTIC_V6"), &[]);
    assert_eq!(v6.get(&2).map(String::as_str), Some(lab.addr("ZA1_V6")));
}

#[test]
fn names_resolve_and_the_table_reads_like_mtr() {
    let Some(lab) = Lab::up("names_resolve_and_the_table_reads_like_mtr") else {
        return;
    };
    let host = lab.addr("DOMESTIC_HOST");
    let out = lab.transitwatch(&["trace", host, "-4"]);
    assert!(out.status.success(), "{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains(&format!("-> {host} ({})", lab.addr("DOMESTIC_V4"))),
        "{table}"
    );
    assert!(
        table.contains(&format!("  2.  {}", lab.addr("LS2_V4"))),
        "{table}"
    );
    assert!(table.contains("destination reached"), "{table}");

    let out = lab.transitwatch(&["trace", host, "--family", "both", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let records: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let addrs: Vec<&str> = records
        .iter()
        .map(|r| r["target"]["addr"].as_str().unwrap())
        .collect();
    assert_eq!(addrs.len(), 2, "{addrs:?}");
    assert!(addrs.contains(&lab.addr("DOMESTIC_V4")));
    assert!(addrs.contains(&lab.addr("DOMESTIC_V6")));
}

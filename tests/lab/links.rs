//! The lab itself: real delay on the links that leave Maseru (delay lines
//! on TUN devices), the lab's DNS server with the routers' PTR names, and a
//! teardown that leaves no process behind.

use crate::support;

use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};
use support::{root, text, Lab};

/// TTL → (address, best RTT in ms) of a `transitwatch trace --json` record.
fn rtts(lab: &Lab, target: &str) -> BTreeMap<u64, (String, f64)> {
    let out = lab.transitwatch(&["trace", target, "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let record: Value = serde_json::from_slice(&out.stdout).expect("one JSON record");
    assert_eq!(record["reached"], true, "{record}");
    let mut hops = BTreeMap::new();
    for hop in record["hops"].as_array().expect("hops") {
        let (Some(addr), Some(best)) = (hop["addr"].as_str(), hop["rtt_ms"]["best"].as_f64())
        else {
            continue;
        };
        // The delay lines neither lose nor drop: every probe is answered.
        assert_eq!(hop["received"], hop["sent"], "{hop}");
        hops.insert(hop["ttl"].as_u64().unwrap(), (addr.to_string(), best));
    }
    hops
}

fn best(hops: &BTreeMap<u64, (String, f64)>, addr: &str) -> f64 {
    hops.values()
        .find(|(a, _)| a == addr)
        .unwrap_or_else(|| panic!("{addr} is not on the path: {hops:?}"))
        .1
}

#[test]
fn foreign_links_carry_real_delay_and_domestic_links_none() {
    let Some(lab) = Lab::up("foreign_links_carry_real_delay_and_domestic_links_none") else {
        return;
    };
    for v in ["V4", "V6"] {
        let a = |key: &str| lab.addr(&format!("{key}_{v}")).to_string();

        // The LS route: every hop in Maseru answers within 2 ms.
        let ls = rtts(&lab, &a("DOMESTIC"));
        assert_eq!(ls.len(), 4, "{ls:?}");
        for (ttl, (addr, rtt)) in &ls {
            assert!(*rtt < 2.0, "LS hop {ttl} ({addr}) answers in {rtt} ms");
        }
        eprintln!("LS route {v}: {ls:?}");

        // Ireland: beyond the 97.6 ms that light in fibre needs for the
        // 9,750 km between Maseru and Dublin and back.
        let ie = rtts(&lab, &a("FOREIGN"));
        assert!(best(&ie, &a("R1")) < 2.0, "{ie:?}");
        assert!(best(&ie, &a("IE1")) >= 160.0, "{ie:?}");
        assert!(best(&ie, &a("FOREIGN")) >= 160.0, "{ie:?}");
        eprintln!("IE {v}: {ie:?}");

        // The ZA route: every hop behind the Maseru-Johannesburg link is at
        // least 5 ms away (at least 3.7 ms for the 370 km by light in fibre).
        lab.route("za");
        let za = rtts(&lab, &a("DOMESTIC"));
        assert_eq!(za.len(), 5, "{za:?}");
        let r1 = best(&za, &a("R1"));
        assert!(r1 < 2.0, "{za:?}");
        for key in ["ZA1", "ZA2", "GW_VIA_ZA", "DOMESTIC"] {
            let rtt = best(&za, &a(key));
            assert!(rtt >= 5.0, "{key} answers in {rtt} ms: {za:?}");
        }
        assert!(best(&za, &a("ZA1")) - r1 >= 4.5, "{za:?}");
        eprintln!("ZA route {v}: {za:?}");
        lab.route("ls");
    }
}

/// The lab's `ADDRESS NAME` pairs (`lab.sh names`).
fn lab_names() -> Vec<(String, String)> {
    let out = Command::new("bash")
        .arg(root().join("tests/lab/lab.sh"))
        .arg("names")
        .output()
        .expect("run lab.sh names");
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(a, n)| (a.to_string(), n.to_string()))
        .collect()
}

fn dig(lab: &Lab, args: &[&str]) -> String {
    let out = lab
        .command("v", "dig")
        .args(["+time=2", "+tries=1"])
        .args(args)
        .output()
        .expect("run dig");
    assert!(out.status.success(), "dig {args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn lab_dns_answers_the_routers_ptr_names() {
    let test = "lab_dns_answers_the_routers_ptr_names";
    let Some(lab) = Lab::up(test) else { return };
    let Some(_) = lab.dns_server(test) else {
        return;
    };
    let names = lab_names();
    assert!(names.len() >= 40, "{names:?}");
    for server in [lab.addr("DNS_V4"), lab.addr("DNS_V6")] {
        let at = format!("@{server}");
        for (addr, name) in &names {
            let answer = dig(&lab, &[&at, "+short", "-x", addr]);
            assert_eq!(answer, format!("{name}."), "PTR of {addr} from {server}");
        }
    }
    // The names the lab's tests rely on.
    let at = format!("@{}", lab.addr("DNS_V4"));
    for key in ["LS2", "ZA1", "IE1"] {
        for v in ["V4", "V6"] {
            let answer = dig(
                &lab,
                &[&at, "+short", "-x", lab.addr(&format!("{key}_{v}"))],
            );
            assert_eq!(answer, format!("{}.", lab.addr(&format!("{key}_NAME"))));
        }
    }
    // Forward-confirmed: the name resolves back to the address.
    let a = dig(&lab, &[&at, "+short", lab.addr("ZA1_NAME"), "A"]);
    assert!(a.lines().any(|l| l == lab.addr("ZA1_V4")), "{a}");
    // Nothing else: a name outside the lab is refused, never looked up.
    let other = dig(&lab, &[&at, "example.com", "A"]);
    assert!(other.contains("status: REFUSED"), "{other}");
    // An address without a name has none (NXDOMAIN), quickly.
    let none = dig(&lab, &[&at, "-x", "198.18.200.1"]);
    assert!(none.contains("status: NXDOMAIN"), "{none}");
}

/// Whether process `pid` runs (an exited one not yet reaped does not).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(") ")
                .and_then(|(_, rest)| rest.split_whitespace().next().map(str::to_string))
        })
        .is_some_and(|state| state != "Z")
}

#[test]
fn lab_down_stops_its_delay_lines_and_dns_server() {
    let test = "lab_down_stops_its_delay_lines_and_dns_server";
    let Some(lab) = Lab::up(test) else { return };
    let files = lab.pid_files();
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for line in ["delay-l4.pid", "delay-l6.pid", "delay-l8.pid"] {
        assert!(names.iter().any(|n| n == line), "{names:?}");
    }
    if support::have("unbound") {
        assert!(names.iter().any(|n| n == "unbound.pid"), "{names:?}");
    }
    let pids: Vec<u32> = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap().trim().parse().unwrap())
        .collect();
    for pid in &pids {
        assert!(running(*pid), "{pid} of {names:?} is not running");
    }
    let prefix = lab.prefix().to_string();
    drop(lab);
    // Hang guard: lab.sh down waits for them itself.
    let deadline = Instant::now() + Duration::from_secs(10);
    while pids.iter().any(|p| running(*p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    for pid in &pids {
        assert!(!running(*pid), "{pid} still runs after lab.sh down");
    }
    let netns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let left = String::from_utf8_lossy(&netns.stdout);
    assert!(
        !left.lines().any(|l| l.starts_with(&format!("{prefix}-"))),
        "{left}"
    );
    assert!(!std::path::Path::new("/run/transitwatch-lab")
        .join(&prefix)
        .exists());
}

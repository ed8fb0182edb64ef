//! MPLS label stacks (RFC 4950) quoted by routers reach the trace record
//! and the table. The lab's kernels have no `mpls_router`, so the routers
//! of a label-switched path are emulated: `mpls_path.py` answers the probes
//! routed into a TUN device in a namespace of this test's own, as routers
//! 192.0.2.1-3 (2 and 3 inside the LSP, quoting their label stacks in an
//! RFC 4884 extension) and the destination 192.0.2.4, for ICMP and UDP
//! probes, and `traceroute -e` reads the same stacks.

use crate::support;

use serde_json::{json, Value};
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};
use support::{bin, have, root, skip, text};

/// The test's namespace and the responder in it; dropped, both are gone,
/// however the test ended.
struct EmulatedPath {
    netns: String,
    responder: Option<Child>,
}

impl EmulatedPath {
    fn ip(&self, args: &[&str]) {
        let out = Command::new("ip")
            .args(["-n", &self.netns])
            .args(args)
            .output()
            .expect("run ip");
        assert!(out.status.success(), "ip {args:?}: {}", text(&out));
    }

    fn transitwatch(&self, args: &[&str]) -> std::process::Output {
        Command::new("ip")
            .args(["netns", "exec", &self.netns, bin()])
            .args(args)
            .output()
            .expect("run transitwatch")
    }
}

impl Drop for EmulatedPath {
    fn drop(&mut self) {
        if let Some(mut child) = self.responder.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .output();
    }
}

/// Wait for the responder's PID file (its device exists then).
fn wait_for(pidfile: &Path, responder: &mut Child) {
    let give_up = Instant::now() + Duration::from_secs(10);
    while !pidfile.exists() {
        if let Ok(Some(status)) = responder.try_wait() {
            panic!("mpls_path.py ended before its device existed: {status}");
        }
        assert!(
            Instant::now() < give_up,
            "mpls_path.py made no device in 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn labels_quoted_by_routers_of_an_lsp_reach_the_record_and_the_table() {
    let test = "labels_quoted_by_routers_of_an_lsp_reach_the_record_and_the_table";
    const CAP_NET_ADMIN: u32 = 12;
    const CAP_NET_RAW: u32 = 13;
    if !(support::has_cap(CAP_NET_ADMIN) && support::has_cap(CAP_NET_RAW)) {
        skip(test, "needs CAP_NET_ADMIN and CAP_NET_RAW (run as root)");
        return;
    }
    if !(have("ip") && have("python3") && Path::new("/dev/net/tun").exists()) {
        skip(test, "needs ip, python3 and /dev/net/tun");
        return;
    }
    let netns = format!("twmpls{}", std::process::id());
    let out = Command::new("ip")
        .args(["netns", "add", &netns])
        .output()
        .expect("run ip netns add");
    assert!(out.status.success(), "ip netns add: {}", text(&out));
    let mut path = EmulatedPath {
        netns,
        responder: None,
    };
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("mpls_path.pid");
    let child = path.responder.insert(
        Command::new("python3")
            .arg(root().join("tests/lab/mpls_path.py"))
            .args([path.netns.as_str(), "mpls0"])
            .arg(&pidfile)
            .spawn()
            .expect("start mpls_path.py"),
    );
    wait_for(&pidfile, child);
    path.ip(&["link", "set", "lo", "up"]);
    path.ip(&["link", "set", "mpls0", "up"]);
    path.ip(&["addr", "add", "198.18.0.1/32", "dev", "mpls0"]);
    path.ip(&[
        "route",
        "add",
        "192.0.2.0/24",
        "dev",
        "mpls0",
        "src",
        "198.18.0.1",
    ]);

    // An independent reader of the extensions first: traceroute(8) -e.
    if have("traceroute") {
        let out = Command::new("ip")
            .args(["netns", "exec", &path.netns, "traceroute"])
            .args(["-I", "-e", "-n", "-q", "1", "-w", "1", "192.0.2.4"])
            .output()
            .expect("run traceroute");
        let shown = String::from_utf8_lossy(&out.stdout);
        assert!(
            shown.contains("192.0.2.2 <MPLS:L=24001,E=0,S=0,T=1/L=16,E=5,S=1,T=1>")
                && shown.contains("192.0.2.3 <MPLS:L=24002,E=0,S=1,T=1>"),
            "traceroute -e: {}",
            text(&out)
        );
    }

    // Extensions are read whatever the probe: ICMP echo and UDP (Paris).
    for protocol in ["icmp", "udp"] {
        let out =
            path.transitwatch(&["trace", "192.0.2.4", "--json", "-n", "--protocol", protocol]);
        assert!(out.status.success(), "trace --json: {}", text(&out));
        let record: Value = serde_json::from_slice(&out.stdout).expect("one JSON record");
        assert_labelled(&record, protocol);
    }

    let out = path.transitwatch(&["trace", "192.0.2.4", "-n"]);
    assert!(out.status.success(), "trace: {}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = table.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("  2.  192.0.2.2 "))
        .unwrap_or_else(|| panic!("no hop 2 line: {table}"));
    assert_eq!(
        &lines[at + 1..at + 3],
        [
            "      [MPLS: Lbl 24001 TC 0 S 0 TTL 1]",
            "      [MPLS: Lbl 16 TC 5 S 1 TTL 1]"
        ],
        "{table}"
    );
    assert_eq!(
        lines[at + 4],
        "      [MPLS: Lbl 24002 TC 0 S 1 TTL 1]",
        "{table}"
    );
}

/// The record of a trace of the emulated path has the routers' stacks on
/// hops 2 and 3, and no `mpls` elsewhere.
fn assert_labelled(record: &Value, protocol: &str) {
    assert_eq!(record["reached"], true, "{protocol}: {record}");
    assert_eq!(record["protocol"], protocol);
    let hops = record["hops"].as_array().expect("hops");
    let addrs: Vec<&str> = hops.iter().filter_map(|h| h["addr"].as_str()).collect();
    assert_eq!(
        addrs,
        ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"],
        "{record}"
    );
    // An ordinary router and the destination quote no stack: no field.
    assert!(hops[0].get("mpls").is_none(), "{record}");
    assert!(hops[3].get("mpls").is_none(), "{record}");
    assert_eq!(
        hops[1]["mpls"],
        json!([
            {"label": 24001, "tc": 0, "s": false, "ttl": 1},
            {"label": 16, "tc": 5, "s": true, "ttl": 1}
        ]),
        "{record}"
    );
    assert_eq!(
        hops[2]["mpls"],
        json!([{"label": 24002, "tc": 0, "s": true, "ttl": 1}]),
        "{record}"
    );
}

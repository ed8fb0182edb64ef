//! `transitwatch run` on the namespace lab: five targets, the metrics they
//! produce, the API (`/api/v1/whatif` included), a route switch counted
//! once, a restart counted never, a broken reload that keeps the old
//! configuration, and SIGTERM; per-hop metrics equal to the trace
//! records' figures, and a silenced router's loss on its hop alone.
//!
//! The daemon runs at the vantage; the test reads its HTTP endpoint with
//! curl inside the same namespace. Waits poll the endpoint with a generous
//! bound (a hang guard, not a timing assertion).

use crate::support;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::daemon::{store_section, write_config, LabDaemon, LISTEN};
use support::services::{self, label, PromApi};
use support::{text, Lab};

const TARGETS: &str = r#"
[[target]]
name = "gov-portal"
host = "portal.gov.ls.test"
category = "government"

[[target]]
name = "bank"
host = "bank.ls.test"
category = "finance"

[[target]]
name = "shop"
host = "shop.ie.test"
category = "commerce"

[[target]]
name = "silent"
host = "silent.ls.test"
category = "government"

[[target]]
name = "ghost"
host = "nosuch.ls.test"
category = "government"
"#;

#[test]
fn daemon_verdicts_route_changes_restarts_and_reloads() {
    let Some(lab) = Lab::up("daemon_verdicts_route_changes_restarts_and_reloads") else {
        return;
    };
    if !support::have_all("daemon_verdicts", &["curl"]) {
        return;
    }
    // The bank's address alone goes through South Africa.
    lab.route_prefixes("za", &["198.51.100.20/32"]);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let config = write_config(dir.path(), &[&store_section(dir.path()), TARGETS]);
    let daemon = LabDaemon::start(&lab, &config, &state);
    daemon.wait_ready();
    let m = daemon.wait_metrics("a verdict for every reachable target", |m| {
        ["gov-portal", "bank", "shop", "silent"]
            .iter()
            .all(|t| m.verdict(t).is_some())
            && m.runs("ghost", "error") >= 1.0
    });
    assert_eq!(m.verdict("gov-portal"), Some("domestic"));
    assert_eq!(m.verdict("bank"), Some("foreign_transit"));
    assert_eq!(m.verdict("shop"), Some("foreign_destination"));
    assert_eq!(m.verdict("silent"), Some("indeterminate"));
    assert!(m.runs("silent", "unreached") >= 1.0);
    assert_eq!(m.verdict("ghost"), None);
    // One of the four targets with a path crosses ZA.
    assert_eq!(
        m.get(
            "transitwatch_country_dependency_ratio",
            &[("country", "ZA")]
        ),
        Some(0.25)
    );
    assert_eq!(
        m.get(
            "transitwatch_path_transit_country",
            &[("target", "bank"), ("country", "ZA")]
        ),
        Some(2.0)
    );
    assert_eq!(
        m.get(
            "transitwatch_path_changes_total",
            &[("target", "gov-portal")]
        ),
        Some(0.0)
    );

    // The API answers from the same state.
    let (code, body) = daemon.get("/api/v1/targets/bank/latest");
    assert_eq!(code, 200, "{body}");
    let latest: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(latest[0]["verdict"]["class"], "foreign_transit");
    assert_eq!(daemon.get("/api/v1/targets/nobody/latest").0, 404);
    // What fails if South Africa does: the bank loses its route; the
    // silent service's path cannot be judged; ghost has no path.
    let (code, body) = daemon.get("/api/v1/whatif?country=ZA");
    assert_eq!(code, 200, "{body}");
    let whatif: serde_json::Value = serde_json::from_str(&body).unwrap();
    let effects: Vec<(&str, &str)> = whatif["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["effect"].as_str().unwrap()))
        .collect();
    assert_eq!(
        effects,
        [
            ("bank", "loses_route"),
            ("gov-portal", "unaffected"),
            ("shop", "unaffected"),
            ("silent", "unknown"),
        ],
        "{body}"
    );
    assert_eq!(
        whatif["services"][0]["paths"][0]["hops"][0]["country"], "ZA",
        "{body}"
    );
    assert_eq!(daemon.get("/api/v1/whatif?country=XX").0, 400);

    // The portal moves onto the ZA route: its verdict flips, one change.
    lab.route_prefixes("za", &["198.51.100.10/32"]);
    let m = daemon.wait_metrics("gov-portal to flip", |m| {
        m.verdict("gov-portal") == Some("foreign_transit")
    });
    assert_eq!(
        m.get(
            "transitwatch_path_changes_total",
            &[("target", "gov-portal")]
        ),
        Some(1.0)
    );
    assert_eq!(
        m.get(
            "transitwatch_country_dependency_ratio",
            &[("country", "ZA")]
        ),
        Some(0.5)
    );
    // Two more traces of the new route change nothing.
    let seen = m.runs("gov-portal", "reached");
    let m = daemon.wait_metrics("two more portal traces", |m| {
        m.runs("gov-portal", "reached") >= seen + 2.0
    });
    assert_eq!(
        m.get(
            "transitwatch_path_changes_total",
            &[("target", "gov-portal")]
        ),
        Some(1.0)
    );
    assert_eq!(
        m.get("transitwatch_path_changes_total", &[("target", "bank")]),
        Some(0.0)
    );
    // The API says since when each state holds: the portal's since its
    // move, after the bank's first trace; the latest trace is later still.
    let (_, body) = daemon.get("/api/v1/targets");
    let targets: serde_json::Value = serde_json::from_str(&body).unwrap();
    let target = |name: &str| {
        targets
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap()
            .clone()
    };
    let (portal, bank) = (target("gov-portal"), target("bank"));
    let since = |t: &serde_json::Value| t["paths"][0]["since"].as_str().unwrap().to_string();
    assert!(since(&portal) > since(&bank), "{portal} {bank}");
    assert!(portal["paths"][0]["started_at"].as_str().unwrap() > since(&portal).as_str());
    assert_eq!(portal["since"], portal["paths"][0]["since"]);

    // A restart is not a change: the count carries over and stays.
    let out = daemon.stop();
    assert!(out.status.success(), "{}", text(&out));
    let daemon = LabDaemon::start(&lab, &config, &state);
    daemon.wait_ready();
    let m = daemon.wait_metrics("the portal traced after the restart", |m| {
        m.runs("gov-portal", "reached") >= 2.0
    });
    assert_eq!(
        m.get(
            "transitwatch_path_changes_total",
            &[("target", "gov-portal")]
        ),
        Some(1.0)
    );
    assert_eq!(m.verdict("gov-portal"), Some("foreign_transit"));

    // The live report, from the history of both runs.
    let before = stored_changes(&daemon);
    let (code, body) = daemon.get("/report?since=1h&format=json");
    assert_eq!(code, 200, "{body}");
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    let names: Vec<&str> = report["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bank", "gov-portal", "shop", "silent"], "{body}");
    let service = |name: &str| {
        report["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(service("bank")["current"]["class"], "foreign_transit");
    assert_eq!(service("bank")["category"], "finance");
    assert_eq!(
        service("gov-portal")["current"]["foreign_countries"],
        serde_json::json!(["ZA"])
    );
    // The report counts a change wherever consecutive stored traces of a
    // path differ in route or class. The history decides, not the
    // network: a trace cut by the route switch (or a reply lost on a
    // delay line) is a real extra change, so the count is held to the
    // stored traces before and after the report, and to at least the one
    // move made here.
    let after = stored_changes(&daemon);
    let count = service("gov-portal")["change_count"].as_u64().unwrap();
    assert!(
        before >= 1 && before <= count && count <= after,
        "{before} {count} {after}"
    );
    let za = &report["summary"]["countries"][0];
    assert_eq!(
        (za["country"].as_str(), za["services_any"].as_u64()),
        (Some("ZA"), Some(2))
    );
    // Located by the overrides alone: the method names them and their hash.
    let sha256 = {
        use sha2::Digest;
        let csv = support::root().join("tests/lab/lab-geo.csv");
        hex::encode(sha2::Sha256::digest(std::fs::read(csv).unwrap()))
    };
    for generation in report["method"]["provenance"].as_array().unwrap() {
        let file = &generation["location_files"][0];
        assert_eq!(file["kind"], "overrides", "{generation}");
        assert!(file["path"].as_str().unwrap().ends_with("/lab-geo.csv"));
        assert_eq!(file["sha256"], sha256.as_str(), "{generation}");
    }
    let (code, page) = daemon.get("/");
    assert_eq!(code, 200);
    assert!(page.contains("id=\"service-gov-portal\""), "the HTML page");
    assert!(page.contains("South Africa"));
    assert!(page.contains(&sha256), "the overrides' hash on the page");

    // A broken configuration is rejected; the old one keeps serving.
    std::fs::write(
        &config,
        "[vantage]\nname = \"x\"\ncountry = \"LS\"\n[probe]\nprotocl = \"udp\"\n",
    )
    .unwrap();
    daemon.signal("HUP");
    let m = daemon.wait_metrics("the rejected reload", |m| {
        m.get("transitwatch_config_reload_success", &[]) == Some(0.0)
    });
    assert_eq!(m.verdict("bank"), Some("foreign_transit"));
    let seen = m.runs("bank", "reached");
    daemon.wait_metrics("the old configuration still tracing", |m| {
        m.runs("bank", "reached") > seen
    });

    // SIGTERM ends the daemon within its drain period.
    let out = daemon.stop();
    assert!(out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn prometheus_scrapes_the_daemon_and_sigterm_drains_in_flight_traces() {
    let test = "prometheus_scrapes_the_daemon_and_sigterm_drains_in_flight_traces";
    if !support::have_all(test, &["prometheus", "promtool", "curl"]) {
        return;
    }
    let Some(lab) = Lab::up(test) else { return };
    lab.route_prefixes("za", &["198.51.100.20/32"]);
    let dir = tempfile::tempdir().unwrap();
    // The silent target's trace stays in flight for up to a minute.
    let targets = format!("{TARGETS}\n").replace(
        "name = \"silent\"",
        "name = \"silent\"\nprotocol = \"icmp\"",
    );
    // Per-hop metrics for the portal (through ls2) and the bank (through
    // ZA), not for the shop.
    let targets = targets
        .replace(
            "name = \"gov-portal\"",
            "name = \"gov-portal\"\nper_hop = true",
        )
        .replace("name = \"bank\"", "name = \"bank\"\nper_hop = true");
    let config = write_config(dir.path(), &[&store_section(dir.path()), &targets]);
    let text_cfg = std::fs::read_to_string(&config)
        .unwrap()
        .replace("deadline = \"1s\"", "deadline = \"60s\"\ngrace = \"100ms\"");
    std::fs::write(&config, text_cfg).unwrap();
    let state = dir.path().join("state");
    let daemon = LabDaemon::start_with(&lab, &config, &state, &["--drain", "1s"]);
    daemon.wait_metrics("verdicts", |m| {
        m.verdict("bank").is_some()
            && m.verdict("shop").is_some()
            && m.verdict("gov-portal").is_some()
    });

    // The live exposition passes promtool's linter.
    let (_, body) = daemon.get("/metrics");
    let mut lint = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    lint.stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let lint = lint.wait_with_output().unwrap();
    assert!(lint.status.success(), "promtool: {}", text(&lint));
    assert!(
        lint.stdout.is_empty() && lint.stderr.is_empty(),
        "promtool: {}",
        text(&lint)
    );

    // A real Prometheus scrapes it, and PromQL returns the verdicts.
    let prom_dir = dir.path().join("prometheus");
    std::fs::create_dir_all(&prom_dir).unwrap();
    let prom_cfg = prom_dir.join("prometheus.yml");
    std::fs::write(
        &prom_cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: transitwatch\n    static_configs:\n      - targets: ['{LISTEN}']\n"
        ),
    )
    .unwrap();
    let prometheus = services::prometheus(&lab, &prom_cfg, &prom_dir);
    let prom = PromApi::new(&lab);
    let logs = || format!("{}\n{}", daemon.log_tail(), prometheus.log_tail());
    let verdicts = "transitwatch_path_verdict == 1";
    let classes = services::wait_for(
        "verdicts of three targets in Prometheus",
        Duration::from_secs(60),
        || {
            prometheus.assert_running();
            let classes: BTreeMap<String, String> = prom
                .query(verdicts)
                .ok()?
                .iter()
                .map(|s| {
                    let l = |k| label(s, k).unwrap_or_default().to_string();
                    (l("target"), l("class"))
                })
                .collect();
            (classes.len() >= 3).then_some(classes)
        },
        logs,
    );
    let answer = || format!("{:?}\n{}", prom.query(verdicts), logs());
    assert_eq!(
        classes.get("bank").map(String::as_str),
        Some("foreign_transit"),
        "{}",
        answer()
    );
    assert_eq!(
        classes.get("gov-portal").map(String::as_str),
        Some("domestic"),
        "{}",
        answer()
    );
    assert_eq!(
        classes.get("shop").map(String::as_str),
        Some("foreign_destination"),
        "{}",
        answer()
    );
    // Three targets have a path so far (the silent one is still tracing);
    // one of them crosses ZA.
    let ratio = "transitwatch_country_dependency_ratio{country=\"ZA\"}";
    let za = prom.scalar(ratio).unwrap_or(-1.0);
    assert!(
        (za - 1.0 / 3.0).abs() < 1e-9,
        "{za}: {:?}",
        prom.query(ratio)
    );

    // Per-hop metrics are the trace record's figures, for the selected
    // targets only.
    let portal = hops_agree(&daemon, "gov-portal");
    assert_eq!(portal.len(), 4, "{portal:?}");
    assert!(portal.iter().all(|(_, loss)| *loss == 0.0), "{portal:?}");
    assert_eq!(hops_agree(&daemon, "bank").len(), 5);
    let m = daemon.metrics();
    assert_eq!(
        m.count("transitwatch_hop_probes_sent", &[("target", "shop")]),
        0
    );
    assert_eq!(
        m.count(
            "transitwatch_destination_rtt_seconds_count",
            &[("target", "shop")]
        ),
        0
    );
    assert_eq!(
        m.get(
            "transitwatch_destination_rtt_seconds_bucket",
            &[("target", "gov-portal"), ("le", "+Inf")]
        ),
        m.get(
            "transitwatch_destination_rtt_seconds_count",
            &[("target", "gov-portal")]
        )
    );
    // Router ls2 (the portal's TTL 2) stops answering: loss on its hop
    // alone; the bank's path does not cross it.
    lab.silence(true);
    daemon.wait_metrics("the portal's TTL 2 silent", |m| {
        m.get(
            "transitwatch_hop_loss_ratio",
            &[("target", "gov-portal"), ("ttl", "2")],
        ) == Some(1.0)
    });
    let portal = hops_agree(&daemon, "gov-portal");
    assert_eq!(
        portal,
        [(1, 0.0), (2, 1.0), (3, 0.0), (4, 0.0)],
        "loss per TTL of the portal"
    );
    let bank = hops_agree(&daemon, "bank");
    assert!(bank.iter().all(|(_, loss)| *loss < 1.0), "{bank:?}");
    lab.silence(false);

    // SIGTERM while the silent target's 60 s trace is in flight: the daemon
    // drains for 1 s and exits well before that trace could end (the 30 s
    // bound is a hang guard, half the trace's deadline).
    let out = daemon.stop();
    assert!(out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Compare `target`'s per-hop series with its latest trace record (one
/// path, IPv4) from `/api/v1/targets/{target}/latest`: every TTL's probes
/// sent and received, loss ratio and best, mean and worst RTT, and no
/// series for a TTL the record does not have. Returns (TTL, loss ratio)
/// per hop.
///
/// The record and the metrics are read one after the other while the
/// daemon keeps tracing, so they may be of consecutive traces: the figures
/// are read again when the run counter moved between them, or (a few
/// times) when a trace finished between reading the record and the
/// metrics taking it up; a mismatch that persists fails.
fn hops_agree(daemon: &LabDaemon, target: &str) -> Vec<(u64, f64)> {
    let mut mismatches = Vec::new();
    for _ in 0..100 {
        let before = daemon.metrics();
        let (code, body) = daemon.get(&format!("/api/v1/targets/{target}/latest"));
        let m = daemon.metrics();
        let runs =
            |m: &support::daemon::Metrics| m.runs(target, "reached") + m.runs(target, "unreached");
        if code != 200 || runs(&before) != runs(&m) {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        let latest: serde_json::Value = serde_json::from_str(&body).unwrap();
        let hops = latest[0]["hops"].as_array().unwrap();
        match compare_hops(&m, target, hops) {
            Ok(losses) => return losses,
            Err(why) => mismatches.push(why),
        }
        assert!(
            mismatches.len() < 5,
            "{target}: per-hop metrics differ from the latest record:\n{}",
            mismatches.join("\n")
        );
    }
    panic!("{target}: no quiet moment to compare metrics and record: {mismatches:?}");
}

fn compare_hops(
    m: &support::daemon::Metrics,
    target: &str,
    hops: &[serde_json::Value],
) -> Result<Vec<(u64, f64)>, String> {
    let mut losses = Vec::new();
    for hop in hops {
        let ttl = hop["ttl"].as_u64().unwrap();
        let t = ttl.to_string();
        let at = [("target", target), ("ttl", t.as_str())];
        let sent = hop["sent"].as_f64().unwrap();
        let received = hop["received"].as_f64().unwrap();
        let mut want = vec![
            ("transitwatch_hop_probes_sent", None, Some(sent)),
            ("transitwatch_hop_probes_received", None, Some(received)),
            (
                "transitwatch_hop_loss_ratio",
                None,
                Some((sent - received) / sent),
            ),
        ];
        for stat in ["best", "avg", "worst"] {
            let ms = hop["rtt_ms"][stat].as_f64();
            want.push((
                "transitwatch_hop_rtt_seconds",
                Some(stat),
                ms.map(|ms| ms / 1000.0),
            ));
        }
        for (name, stat, value) in want {
            let mut labels = at.to_vec();
            labels.extend(stat.map(|s| ("stat", s)));
            let got = m.get(name, &labels);
            if got != value {
                return Err(format!(
                    "{name}{labels:?}: metrics {got:?}, record {value:?}"
                ));
            }
        }
        losses.push((ttl, (sent - received) / sent));
    }
    let series = m.count("transitwatch_hop_probes_sent", &[("target", target)]);
    if series != hops.len() {
        return Err(format!(
            "{series} TTLs in metrics, {} in the record",
            hops.len()
        ));
    }
    Ok(losses)
}

/// Route or class changes between consecutive stored traces of each of the
/// portal's paths, as `/api/v1/traces` lists them.
fn stored_changes(daemon: &LabDaemon) -> u64 {
    let (code, body) = daemon.get("/api/v1/traces?target=gov-portal");
    assert_eq!(code, 200, "{body}");
    let mut last: std::collections::BTreeMap<String, (String, String)> = Default::default();
    let mut changes = 0;
    for line in body.lines() {
        let r: serde_json::Value = serde_json::from_str(line).unwrap();
        let state = (
            r["verdict"]["path_id"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            r["verdict"]["class"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
        let key = r["stored"]["path_key"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if last
            .insert(key, state.clone())
            .is_some_and(|was| was != state)
        {
            changes += 1;
        }
    }
    changes
}

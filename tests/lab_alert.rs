//! The built-in notifier end to end on the namespace lab: the daemon at the
//! vantage posts to two webhook receivers (`tests/tools/webhook_receiver.py`,
//! one Alertmanager-format and HMAC-signed, one in transitwatch's JSON) that
//! run in the same namespace.
//!
//! The scenario: a domestic path notifies nothing; moved onto the ZA route
//! it fires exactly once within two cycles and never again while it stays;
//! moved back it resolves exactly once; with the receivers down it moves to
//! ZA again, the daemon is restarted in between, and once the receivers are
//! back exactly one firing notification arrives — nothing lost, nothing
//! repeated.
//!
//! Cycles are counted with `transitwatch_trace_runs_total`; waits poll with
//! a generous bound (a hang guard, not a timing assertion).

mod support;

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{bin, root, text, Lab};

const LISTEN: &str = "127.0.0.1:19968";
const SECRET: &str = "lab-hook-secret";
const OPS_PORT: u16 = 9000;
const ARCHIVE_PORT: u16 = 9001;

fn write_config(dir: &Path) -> PathBuf {
    std::fs::write(dir.join("hook.secret"), format!("{SECRET}\n")).unwrap();
    let overrides = root().join("tests/lab/lab-geo.csv");
    let cfg = format!(
        r#"
[vantage]
name = "maseru-lab"
country = "LS"

[geoip]
overrides = {overrides:?}

[probe]
family = "ipv4"
interval = "2s"
jitter = "500ms"
deadline = "1s"
concurrency = 4

[metrics]
listen = "{LISTEN}"

[store]
path = {store:?}

[alert]
retry_initial = "200ms"
retry_max = "1s"
timeout = "2s"
external_url = "http://maseru-lab.example:19968"

[[alert.webhook]]
url = "http://127.0.0.1:{OPS_PORT}/hook"
name = "ops"
secret_file = "hook.secret"

[[alert.webhook]]
url = "http://127.0.0.1:{ARCHIVE_PORT}/archive"
name = "archive"
format = "json"

[[target]]
name = "gov-portal"
host = "portal.gov.ls.test"
category = "government"

[[target]]
name = "silent"
host = "silent.ls.test"
category = "government"
"#,
        overrides = overrides.to_str().unwrap(),
        store = dir.join("transitwatch.db").to_str().unwrap(),
    );
    let path = dir.join("transitwatch.toml");
    std::fs::write(&path, cfg).unwrap();
    path
}

struct Daemon {
    child: Child,
}

impl Daemon {
    fn start(lab: &Lab, config: &Path, state: &Path) -> Daemon {
        let child = lab
            .command("v", bin())
            .args(["run", "--config"])
            .arg(config)
            .arg("--state-dir")
            .arg(state)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the daemon");
        Daemon { child }
    }

    /// SIGTERM, then wait for the exit (hang guard: 30 s).
    fn stop(mut self) -> std::process::Output {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -TERM");
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some() {
                let child =
                    std::mem::replace(&mut self.child, Command::new("true").spawn().unwrap());
                return child.wait_with_output().unwrap();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the daemon did not stop after SIGTERM");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A webhook receiver at the vantage; killed (the receiver "down") on drop.
struct Receiver {
    child: Child,
}

impl Receiver {
    fn start(lab: &Lab, port: u16, out: &Path, secret: Option<&str>) -> Receiver {
        let port_file = out.with_extension(format!("port{port}"));
        let _ = std::fs::remove_file(&port_file);
        let mut cmd = lab.command("v", "python3");
        cmd.arg(root().join("tests/tools/webhook_receiver.py"))
            .args(["--listen", &format!("127.0.0.1:{port}"), "--out"])
            .arg(out)
            .arg("--port-file")
            .arg(&port_file);
        if let Some(secret) = secret {
            cmd.args(["--secret", secret]);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the webhook receiver (python3)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !port_file.exists() {
            assert!(Instant::now() < deadline, "the receiver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Receiver { child }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn posts(file: &Path) -> Vec<Value> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn get(lab: &Lab, path: &str) -> (u16, String) {
    let out = lab
        .command("v", "curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code}", "--max-time", "5"])
        .arg(format!("http://{LISTEN}{path}"))
        .output()
        .unwrap();
    let body = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = body.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

type Series = BTreeMap<String, f64>;

fn metrics(lab: &Lab) -> Series {
    let (code, body) = get(lab, "/metrics");
    if code != 200 {
        return Series::new();
    }
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

fn value(m: &Series, name: &str, labels: &[(&str, &str)]) -> f64 {
    m.iter()
        .find(|(series, _)| {
            (series.as_str() == name || series.starts_with(&format!("{name}{{")))
                && labels
                    .iter()
                    .all(|(k, v)| series.contains(&format!("{k}=\"{v}\"")))
        })
        .map_or(0.0, |(_, v)| *v)
}

fn portal_runs(m: &Series) -> f64 {
    value(
        m,
        "transitwatch_trace_runs_total",
        &[("target", "gov-portal"), ("outcome", "reached")],
    )
}

fn portal_class(m: &Series) -> Option<&'static str> {
    [
        "domestic",
        "foreign_transit",
        "foreign_destination",
        "indeterminate",
    ]
    .into_iter()
    .find(|class| {
        value(
            m,
            "transitwatch_path_verdict",
            &[("target", "gov-portal"), ("class", class)],
        ) == 1.0
    })
}

/// Poll /metrics until `ok` holds (hang guard: 60 s).
fn wait_metrics(lab: &Lab, what: &str, ok: impl Fn(&Series) -> bool) -> Series {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = Series::new();
    while Instant::now() < deadline {
        last = metrics(lab);
        if ok(&last) {
            return last;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}; last metrics: {last:#?}");
}

fn wait_ready(lab: &Lab) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while get(lab, "/readyz").0 != 200 {
        assert!(Instant::now() < deadline, "the daemon never became ready");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Wait until `file` holds `n` posts; returns the portal's reached runs
/// seen at that moment (hang guard: 60 s).
fn wait_posts(lab: &Lab, file: &Path, n: usize) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if posts(file).len() >= n {
            return portal_runs(&metrics(lab));
        }
        assert!(
            Instant::now() < deadline,
            "expected {n} posts in {}, got {:#?}",
            file.display(),
            posts(file)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Let the portal be traced `cycles` more times.
fn wait_cycles(lab: &Lab, cycles: f64) -> Series {
    let seen = portal_runs(&metrics(lab));
    wait_metrics(lab, "more portal traces", |m| {
        portal_runs(m) >= seen + cycles
    })
}

/// The alert fields every Alertmanager-format post must carry.
fn check_alertmanager(post: &Value, status: &str) -> Value {
    assert_eq!(post["signature_valid"], true, "{post}");
    assert_eq!(post["path"], "/hook");
    let body = &post["body"];
    assert_eq!(body["version"], "4", "{body}");
    assert_eq!(body["status"], status);
    assert_eq!(body["receiver"], "ops");
    assert_eq!(body["externalURL"], "http://maseru-lab.example:19968");
    assert_eq!(body["groupLabels"]["alertname"], "ForeignTransitDetected");
    let alerts = body["alerts"].as_array().expect("alerts");
    assert_eq!(alerts.len(), 1);
    let alert = &alerts[0];
    assert_eq!(alert["status"], status);
    let labels = &alert["labels"];
    assert_eq!(labels["alertname"], "ForeignTransitDetected");
    assert_eq!(labels["target"], "gov-portal");
    assert_eq!(labels["path"], "gov-portal");
    assert_eq!(labels["category"], "government");
    assert_eq!(labels["countries"], "ZA");
    assert_eq!(labels["severity"], "critical");
    assert_eq!(labels["vantage"], "maseru-lab");
    assert_eq!(&body["commonLabels"], labels);
    assert!(alert["annotations"]["summary"]
        .as_str()
        .is_some_and(|s| s.contains("gov-portal")));
    assert!(alert["annotations"]["description"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));
    let rfc3339 = &time::format_description::well_known::Rfc3339;
    let starts = time::OffsetDateTime::parse(alert["startsAt"].as_str().unwrap(), rfc3339)
        .expect("startsAt is RFC 3339");
    let ends = time::OffsetDateTime::parse(alert["endsAt"].as_str().unwrap(), rfc3339)
        .expect("endsAt is RFC 3339");
    if status == "firing" {
        assert_eq!(alert["endsAt"], "0001-01-01T00:00:00Z");
    } else {
        assert!(ends > starts, "{alert}");
    }
    assert_eq!(
        alert["generatorURL"],
        "http://maseru-lab.example:19968/api/v1/targets/gov-portal/latest"
    );
    assert_eq!(
        post["headers"]["x-transitwatch-notification-id"],
        Value::String(format!(
            "{}:{status}:{}",
            alert["fingerprint"].as_str().unwrap(),
            alert["startsAt"].as_str().unwrap()
        ))
    );
    alert.clone()
}

fn check_json(post: &Value, status: &str, class: &str) {
    assert_eq!(post["path"], "/archive");
    assert!(post["headers"].get("x-transitwatch-signature").is_none());
    let body = &post["body"];
    assert_eq!(body["schema"], "transitwatch.alert/1", "{body}");
    assert_eq!(body["status"], status);
    assert_eq!(body["alertname"], "ForeignTransitDetected");
    assert_eq!(body["trace"]["target"], "gov-portal");
    assert_eq!(body["trace"]["class"], class);
    assert_eq!(
        body["id"],
        post["headers"]["x-transitwatch-notification-id"]
    );
}

#[test]
fn alerts_fire_and_resolve_once_and_survive_receiver_outages_and_restarts() {
    let test = "alerts_fire_and_resolve_once_and_survive_receiver_outages_and_restarts";
    let Some(lab) = Lab::up(test) else { return };
    for tool in ["curl", "python3"] {
        if !support::have(tool) {
            support::skip(test, &format!("{tool} is not installed"));
            return;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let config = write_config(dir.path());
    let ops_file = dir.path().join("ops.jsonl");
    let archive_file = dir.path().join("archive.jsonl");
    let ops = Receiver::start(&lab, OPS_PORT, &ops_file, Some(SECRET));
    let archive = Receiver::start(&lab, ARCHIVE_PORT, &archive_file, None);

    // Domestic, and a silent (indeterminate) target: no notification.
    let daemon = Daemon::start(&lab, &config, &state);
    wait_ready(&lab);
    let m = wait_metrics(&lab, "two domestic portal traces", |m| {
        portal_runs(m) >= 2.0
            && value(
                m,
                "transitwatch_path_verdict",
                &[("target", "silent"), ("class", "indeterminate")],
            ) == 1.0
    });
    assert_eq!(portal_class(&m), Some("domestic"));
    assert_eq!(value(&m, "transitwatch_alerts_active", &[]), 0.0);
    assert!(posts(&ops_file).is_empty());
    assert!(posts(&archive_file).is_empty());

    // Onto the ZA route: one firing notification within two cycles.
    let before = portal_runs(&metrics(&lab));
    lab.route("za");
    let at = wait_posts(&lab, &ops_file, 1);
    assert!(
        at - before <= 2.0,
        "the firing notification came after {} portal traces",
        at - before
    );
    wait_posts(&lab, &archive_file, 1);
    // It stays on ZA for two more cycles: nothing more.
    let m = wait_cycles(&lab, 2.0);
    assert_eq!(portal_class(&m), Some("foreign_transit"));
    assert_eq!(value(&m, "transitwatch_alerts_active", &[]), 1.0);
    let (o, a) = (posts(&ops_file), posts(&archive_file));
    assert_eq!((o.len(), a.len()), (1, 1), "{o:#?}\n{a:#?}");
    let first = check_alertmanager(&o[0], "firing");
    check_json(&a[0], "firing", "foreign_transit");

    // Back home: one resolved notification within two cycles, then nothing.
    let before = portal_runs(&metrics(&lab));
    lab.route("ls");
    let at = wait_posts(&lab, &ops_file, 2);
    assert!(at - before <= 2.0, "resolved after {} traces", at - before);
    wait_posts(&lab, &archive_file, 2);
    let m = wait_cycles(&lab, 2.0);
    assert_eq!(portal_class(&m), Some("domestic"));
    assert_eq!(value(&m, "transitwatch_alerts_active", &[]), 0.0);
    let (o, a) = (posts(&ops_file), posts(&archive_file));
    assert_eq!((o.len(), a.len()), (2, 2), "{o:#?}\n{a:#?}");
    let resolved = check_alertmanager(&o[1], "resolved");
    assert_eq!(resolved["fingerprint"], first["fingerprint"]);
    assert_eq!(resolved["startsAt"], first["startsAt"]);
    check_json(&a[1], "resolved", "domestic");

    // The receivers go down; the portal moves to ZA again.
    drop(ops);
    drop(archive);
    lab.route("za");
    let m = wait_metrics(&lab, "failed deliveries of the new alert", |m| {
        portal_class(m) == Some("foreign_transit")
            && ["ops", "archive"].iter().all(|hook| {
                value(
                    m,
                    "transitwatch_alert_notifications_total",
                    &[("webhook", hook), ("result", "failed")],
                ) >= 1.0
            })
    });
    assert_eq!(
        value(&m, "transitwatch_alert_queue_length", &[("webhook", "ops")]),
        1.0
    );
    wait_cycles(&lab, 2.0);

    // Restart the daemon while the receivers are still down.
    let out = daemon.stop();
    assert!(out.status.success(), "{}", text(&out));
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("alerts.json")).unwrap()).unwrap();
    let pending: Vec<usize> = saved["webhooks"]
        .as_object()
        .unwrap()
        .values()
        .map(|w| w["pending"].as_array().unwrap().len())
        .collect();
    assert_eq!(pending, [1, 1], "{saved:#}");
    let daemon = Daemon::start(&lab, &config, &state);
    wait_ready(&lab);
    let m = wait_metrics(
        &lab,
        "traces and failed deliveries after the restart",
        |m| {
            portal_runs(m) >= 2.0
                && value(
                    m,
                    "transitwatch_alert_notifications_total",
                    &[("webhook", "ops"), ("result", "failed")],
                ) >= 1.0
        },
    );
    assert_eq!(portal_class(&m), Some("foreign_transit"));
    assert_eq!(
        value(&m, "transitwatch_alert_queue_length", &[("webhook", "ops")]),
        1.0,
        "the restart neither lost nor duplicated the pending notification"
    );
    assert_eq!(value(&m, "transitwatch_alerts_active", &[]), 1.0);
    assert_eq!(posts(&ops_file).len(), 2);

    // The receivers come back: exactly one firing notification each.
    let _ops = Receiver::start(&lab, OPS_PORT, &ops_file, Some(SECRET));
    let _archive = Receiver::start(&lab, ARCHIVE_PORT, &archive_file, None);
    wait_posts(&lab, &ops_file, 3);
    wait_posts(&lab, &archive_file, 3);
    let m = wait_cycles(&lab, 2.0);
    let (o, a) = (posts(&ops_file), posts(&archive_file));
    assert_eq!((o.len(), a.len()), (3, 3), "{o:#?}\n{a:#?}");
    let again = check_alertmanager(&o[2], "firing");
    check_json(&a[2], "firing", "foreign_transit");
    assert_eq!(again["fingerprint"], first["fingerprint"], "the same alert");
    assert_ne!(again["startsAt"], first["startsAt"], "a new occurrence");
    let mut ids: Vec<&str> = o
        .iter()
        .map(|p| {
            p["headers"]["x-transitwatch-notification-id"]
                .as_str()
                .unwrap()
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 3, "no notification repeated");
    assert_eq!(
        value(
            &m,
            "transitwatch_alert_notifications_total",
            &[("webhook", "ops"), ("result", "delivered")]
        ),
        1.0
    );
    assert_eq!(
        value(&m, "transitwatch_alert_queue_length", &[("webhook", "ops")]),
        0.0
    );

    let out = daemon.stop();
    assert!(out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

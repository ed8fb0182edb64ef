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
//! repeated. While the alert fires, a second daemon started on the same
//! state directory exits 2 naming the folder and the first one's pid, and
//! sends nothing.
//!
//! Cycles are counted with `transitwatch_trace_runs_total`; waits poll with
//! a generous bound (a hang guard, not a timing assertion).

use crate::support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::daemon::{store_section, write_config, LabDaemon, Metrics};
use support::services::poll;
use support::webhook::{notification_ids, posts, Receiver};
use support::{text, Lab};

const SECRET: &str = "lab-hook-secret";
const OPS: &str = "127.0.0.1:9000";
const ARCHIVE: &str = "127.0.0.1:9001";

/// The alerting and target sections; the secret beside the configuration.
fn config(dir: &Path) -> PathBuf {
    std::fs::write(dir.join("hook.secret"), format!("{SECRET}\n")).unwrap();
    let sections = format!(
        r#"
[alert]
retry_initial = "200ms"
retry_max = "1s"
timeout = "2s"
external_url = "http://maseru-lab.example:19968"

[[alert.webhook]]
url = "http://{OPS}/hook"
name = "ops"
secret_file = "hook.secret"

[[alert.webhook]]
url = "http://{ARCHIVE}/archive"
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
"#
    );
    write_config(dir, &[&store_section(dir), &sections])
}

/// The signed Alertmanager-format receiver and the JSON one.
fn receivers(lab: &Lab, dir: &Path) -> (Receiver, Receiver) {
    (
        Receiver::in_lab(lab, dir, "ops", OPS, &["--secret", SECRET]),
        Receiver::in_lab(lab, dir, "archive", ARCHIVE, &[]),
    )
}

fn portal_runs(m: &Metrics) -> f64 {
    m.runs("gov-portal", "reached")
}

/// Wait until `file` holds `n` posts; returns the portal's reached runs
/// seen at that moment (hang guard: 60 s).
fn wait_posts(daemon: &LabDaemon, file: &Path, n: usize) -> f64 {
    poll(
        &format!("{n} posts in {}", file.display()),
        Duration::from_secs(60),
        Duration::from_millis(100),
        || (posts(file).len() >= n).then(|| portal_runs(&daemon.metrics())),
        || format!("{:#?}\n{}", posts(file), daemon.log_tail()),
    )
}

/// Let the portal be traced `cycles` more times.
fn wait_cycles(daemon: &LabDaemon, cycles: f64) -> Metrics {
    let seen = portal_runs(&daemon.metrics());
    daemon.wait_metrics("more portal traces", |m| portal_runs(m) >= seen + cycles)
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

/// A child process killed and reaped on drop, also when the test panics.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start a second daemon on `state` at the vantage: it must exit 2 at once
/// (hang guard: 30 s), naming the folder and the running daemon's pid.
fn second_daemon_is_refused(lab: &Lab, config: &Path, state: &Path, dir: &Path) {
    let holder = std::fs::read_to_string(state.join("lock")).expect("the lock file");
    let log = dir.join("second.log");
    let out = std::fs::File::create(&log).unwrap();
    let mut second = lab.command("v", support::bin());
    let mut child = KillOnDrop(
        second
            .arg("run")
            .arg("--config")
            .arg(config)
            .arg("--state-dir")
            .arg(state)
            .stdout(std::process::Stdio::null())
            .stderr(out)
            .spawn()
            .expect("start a second daemon"),
    );
    let status = poll(
        "the second daemon to exit",
        Duration::from_secs(30),
        Duration::from_millis(50),
        || child.0.try_wait().expect("try_wait"),
        || std::fs::read_to_string(&log).unwrap_or_default(),
    );
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(2), "{stderr}");
    let expected = format!(
        "transitwatch: error: state directory {} is in use by another transitwatch (pid {}, holding {})",
        state.display(),
        holder.trim(),
        state.join("lock").display()
    );
    assert!(stderr.trim_end().starts_with(&expected), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}

#[test]
fn alerts_fire_and_resolve_once_and_survive_receiver_outages_and_restarts() {
    let test = "alerts_fire_and_resolve_once_and_survive_receiver_outages_and_restarts";
    let Some(lab) = Lab::up(test) else { return };
    if !support::have_all(test, &["curl", "python3"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let config = config(dir.path());
    let (ops, archive) = receivers(&lab, dir.path());
    let (ops_file, archive_file) = (ops.out().to_path_buf(), archive.out().to_path_buf());

    // Domestic, and a silent (indeterminate) target: no notification.
    let daemon = LabDaemon::start(&lab, &config, &state);
    daemon.wait_ready();
    let m = daemon.wait_metrics("two domestic portal traces", |m| {
        portal_runs(m) >= 2.0
            && m.or_zero(
                "transitwatch_path_verdict",
                &[("target", "silent"), ("class", "indeterminate")],
            ) == 1.0
    });
    assert_eq!(m.verdict("gov-portal"), Some("domestic"));
    assert_eq!(m.or_zero("transitwatch_alerts_active", &[]), 0.0);
    assert!(posts(&ops_file).is_empty());
    assert!(posts(&archive_file).is_empty());

    // Onto the ZA route: one firing notification within two cycles.
    let before = portal_runs(&daemon.metrics());
    lab.route("za");
    let at = wait_posts(&daemon, &ops_file, 1);
    assert!(
        at - before <= 2.0,
        "the firing notification came after {} portal traces",
        at - before
    );
    wait_posts(&daemon, &archive_file, 1);
    second_daemon_is_refused(&lab, &config, &state, dir.path());
    // It stays on ZA for two more cycles: nothing more.
    let m = wait_cycles(&daemon, 2.0);
    assert_eq!(m.verdict("gov-portal"), Some("foreign_transit"));
    assert_eq!(m.or_zero("transitwatch_alerts_active", &[]), 1.0);
    let (o, a) = (posts(&ops_file), posts(&archive_file));
    assert_eq!((o.len(), a.len()), (1, 1), "{o:#?}\n{a:#?}");
    let first = check_alertmanager(&o[0], "firing");
    check_json(&a[0], "firing", "foreign_transit");

    // Back home: one resolved notification within two cycles, then nothing.
    let before = portal_runs(&daemon.metrics());
    lab.route("ls");
    let at = wait_posts(&daemon, &ops_file, 2);
    assert!(at - before <= 2.0, "resolved after {} traces", at - before);
    wait_posts(&daemon, &archive_file, 2);
    let m = wait_cycles(&daemon, 2.0);
    assert_eq!(m.verdict("gov-portal"), Some("domestic"));
    assert_eq!(m.or_zero("transitwatch_alerts_active", &[]), 0.0);
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
    let m = daemon.wait_metrics("failed deliveries of the new alert", |m| {
        m.verdict("gov-portal") == Some("foreign_transit")
            && ["ops", "archive"].iter().all(|hook| {
                m.or_zero(
                    "transitwatch_alert_notifications_total",
                    &[("webhook", hook), ("result", "failed")],
                ) >= 1.0
            })
    });
    assert_eq!(
        m.or_zero("transitwatch_alert_queue_length", &[("webhook", "ops")]),
        1.0
    );
    wait_cycles(&daemon, 2.0);

    // Restart the daemon while the receivers are still down.
    let out = daemon.stop();
    assert!(out.status.success(), "{}", text(&out));
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("alerts.json")).unwrap()).unwrap();
    let pending: Vec<usize> = saved["state"]["webhooks"]
        .as_object()
        .unwrap()
        .values()
        .map(|w| w["pending"].as_array().unwrap().len())
        .collect();
    assert_eq!(pending, [1, 1], "{saved:#}");
    let daemon = LabDaemon::start(&lab, &config, &state);
    daemon.wait_ready();
    let m = daemon.wait_metrics("traces and failed deliveries after the restart", |m| {
        portal_runs(m) >= 2.0
            && m.or_zero(
                "transitwatch_alert_notifications_total",
                &[("webhook", "ops"), ("result", "failed")],
            ) >= 1.0
    });
    assert_eq!(m.verdict("gov-portal"), Some("foreign_transit"));
    assert_eq!(
        m.or_zero("transitwatch_alert_queue_length", &[("webhook", "ops")]),
        1.0,
        "the restart neither lost nor duplicated the pending notification"
    );
    assert_eq!(m.or_zero("transitwatch_alerts_active", &[]), 1.0);
    assert_eq!(posts(&ops_file).len(), 2);

    // The receivers come back: exactly one firing notification each.
    let (_ops, _archive) = receivers(&lab, dir.path());
    wait_posts(&daemon, &ops_file, 3);
    wait_posts(&daemon, &archive_file, 3);
    let m = wait_cycles(&daemon, 2.0);
    let (o, a) = (posts(&ops_file), posts(&archive_file));
    assert_eq!((o.len(), a.len()), (3, 3), "{o:#?}\n{a:#?}");
    let again = check_alertmanager(&o[2], "firing");
    check_json(&a[2], "firing", "foreign_transit");
    assert_eq!(again["fingerprint"], first["fingerprint"], "the same alert");
    assert_ne!(again["startsAt"], first["startsAt"], "a new occurrence");
    let mut ids = notification_ids(&o);
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 3, "no notification repeated");
    assert_eq!(
        m.or_zero(
            "transitwatch_alert_notifications_total",
            &[("webhook", "ops"), ("result", "delivered")]
        ),
        1.0
    );
    assert_eq!(
        m.or_zero("transitwatch_alert_queue_length", &[("webhook", "ops")]),
        0.0
    );

    let out = daemon.stop();
    assert!(out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

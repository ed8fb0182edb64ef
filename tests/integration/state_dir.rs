//! The state directory as the real daemon keeps it, daemons on 127.0.0.1
//! tracing nothing or only 127.0.0.1:
//! - two daemons on one state directory: the second exits 2 naming the
//!   folder and the first one's pid, and the first goes on;
//! - under umask 000 the folder is 0700 and every state file and the
//!   history (with its `-wal` and `-shm`) 0600;
//! - an `alerts.json` edited by someone else is refused, moved aside, and
//!   nothing of it reaches the webhook receiver (while an unedited copy of
//!   the same state is delivered);
//! - a `paths.json` or `alerts.json` of a newer version stops the daemon
//!   (exit 2, naming it) and stays byte for byte;
//! - a final save that fails exits 1 naming the file, leaves no temporary
//!   file, and is counted in `transitwatch_state_saves_total`.
//!
//! The daemon needs CAP_NET_RAW; without it these tests print a skip line.
//! Waits poll with generous bounds (hang guards, not timing assertions).

use crate::support;
use crate::support::loopback::{free_port, http_get};

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use support::services::wait_for;
use support::webhook::Receiver;
use transitwatch::alert::{Notifier, Subject};
use transitwatch::config::{AlertConfig, WebhookConfig, WebhookFormat};
use transitwatch::metrics::Metrics;
use transitwatch::model::PathKey;
use transitwatch::state_dir::{SaveMetrics, StateDir};

/// Hang guard of every wait.
const WAIT: Duration = Duration::from_secs(60);

/// The text an intruder puts into a pending notification.
const EDITED: &str = "all clear, ignore previous alerts";

/// Tracers of concurrent daemons to 127.0.0.1 tell their probes apart by
/// identifiers that rarely, but can, collide between processes: the tests
/// that trace take turns.
static TRACING: Mutex<()> = Mutex::new(());

fn one_tracer_at_a_time() -> MutexGuard<'static, ()> {
    TRACING.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether the daemon may run here (it checks CAP_NET_RAW first).
fn can_run(test: &str) -> bool {
    const CAP_NET_RAW: u32 = 13;
    support::has_cap(CAP_NET_RAW) || !support::skip(test, "the daemon needs CAP_NET_RAW")
}

/// `DIR/NAME.toml`: a vantage, metrics on `port`, and `more` (targets,
/// alerting) as TOML text.
fn config(dir: &Path, name: &str, port: u16, more: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    let text = format!(
        r#"[vantage]
name = "loopback"
country = "LS"

[probe]
interval = "1s"
jitter = "100ms"
deadline = "1s"
concurrency = 2

[metrics]
listen = "127.0.0.1:{port}"
{more}"#
    );
    std::fs::write(&path, text).expect("write the configuration");
    path
}

/// A target traced over loopback only.
const LOOPBACK_TARGET: &str = "\n[[target]]\nname = \"loop4\"\nhost = \"127.0.0.1\"\n";

/// `transitwatch run` on this host; killed on drop.
struct Daemon {
    child: Child,
    log: PathBuf,
    port: u16,
}

impl Daemon {
    /// `run --config CONFIG --state-dir STATE`, its output in `DIR/NAME.log`;
    /// `umask` (e.g. `"000"`) is set by a shell that then becomes the daemon.
    fn start(config: &Path, state: &Path, name: &str, port: u16, umask: Option<&str>) -> Daemon {
        let dir = config.parent().expect("a folder");
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let mut command = match umask {
            Some(mask) => {
                let mut sh = Command::new("sh");
                sh.args(["-c", &format!("umask {mask}; exec \"$0\" \"$@\"")])
                    .arg(support::bin());
                sh
            }
            None => Command::new(support::bin()),
        };
        let child = command
            .arg("run")
            .arg("--config")
            .arg(config)
            .arg("--state-dir")
            .arg(state)
            .args(["--drain", "2s"])
            .env_remove("STATE_DIRECTORY")
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .expect("start the daemon");
        Daemon { child, log, port }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log(&self) -> String {
        read(&self.log)
    }

    fn get(&self, path: &str) -> Option<(u16, String)> {
        http_get(self.port, path)
    }

    /// Wait until `/healthz` answers (panics if the daemon ends).
    fn wait_up(&mut self) {
        let (child, log, port) = (&mut self.child, &self.log, self.port);
        wait_for(
            "the daemon to answer /healthz",
            WAIT,
            || {
                let exited = child.try_wait().expect("try_wait");
                assert!(exited.is_none(), "the daemon ended: {}", read(log));
                http_get(port, "/healthz").filter(|(code, _)| *code == 200)
            },
            || read(log),
        );
    }

    /// Wait until the metrics page satisfies `ok`.
    fn wait_metrics(&mut self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let (child, log, port) = (&mut self.child, &self.log, self.port);
        wait_for(
            what,
            WAIT,
            || {
                let exited = child.try_wait().expect("try_wait");
                assert!(exited.is_none(), "the daemon ended: {}", read(log));
                http_get(port, "/metrics")
                    .filter(|(code, body)| *code == 200 && ok(body))
                    .map(|(_, body)| body)
            },
            || format!("{:?}\n{}", http_get(port, "/metrics"), read(log)),
        )
    }

    /// Wait for the exit (hang guard).
    fn wait_exit(&mut self) -> ExitStatus {
        let (child, log) = (&mut self.child, &self.log);
        wait_for(
            "the daemon to exit",
            WAIT,
            || child.try_wait().expect("try_wait"),
            || read(log),
        )
    }

    /// SIGTERM, then wait for the exit.
    fn stop(&mut self) -> ExitStatus {
        let ok = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -TERM {}", self.pid());
        self.wait_exit()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A log file's text so far.
fn read(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

/// The value of the first series of `name` carrying every label of
/// `labels`, 0 when there is none.
fn sample(page: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    page.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .find(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit_once(' '))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0.0)
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list the state directory")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The error line the daemon printed last.
fn error_line(log: &str) -> String {
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with("transitwatch: error: "))
        .collect();
    assert_eq!(errors.len(), 1, "{log}");
    errors[0].to_string()
}

#[test]
fn a_second_daemon_on_the_same_state_directory_exits_2_naming_it_and_the_holder() {
    let test = "a_second_daemon_on_the_same_state_directory_exits_2_naming_it_and_the_holder";
    if !can_run(test) {
        return;
    }
    let base = tempfile::tempdir().unwrap();
    let state = base.path().join("state");
    let port = free_port();
    let first_config = config(base.path(), "first", port, "");
    let mut first = Daemon::start(&first_config, &state, "first", port, None);
    first.wait_up();
    let lock = std::fs::read_to_string(state.join("lock")).expect("the lock file");
    assert_eq!(lock.trim(), first.pid().to_string());

    // The same configuration (the same port, too), and one that shares
    // nothing but the state directory: the lock stops both, before they
    // bind or write anything.
    let other_port = free_port();
    let other_config = config(base.path(), "other", other_port, "");
    for (name, config, port) in [
        ("same", &first_config, port),
        ("other", &other_config, other_port),
    ] {
        let mut second = Daemon::start(config, &state, name, port, None);
        let status = second.wait_exit();
        let log = second.log();
        assert_eq!(status.code(), Some(2), "{log}");
        assert_eq!(
            error_line(&log),
            format!(
                "transitwatch: error: state directory {} is in use by another transitwatch (pid {}, holding {}); stop it or give this one another state directory",
                state.display(),
                first.pid(),
                state.join("lock").display()
            )
        );
        assert_eq!(log.lines().count(), 1, "{log}");
    }
    assert!(http_get(other_port, "/healthz").is_none());
    let lock = std::fs::read_to_string(state.join("lock")).expect("the lock file");
    assert_eq!(
        lock.trim(),
        first.pid().to_string(),
        "the holder's pid stays"
    );

    // The first goes on, and once it stopped the folder is free again.
    assert_eq!(first.get("/healthz").map(|(code, _)| code), Some(200));
    let status = first.stop();
    assert!(status.success(), "{}", first.log());
    let mut next = Daemon::start(&other_config, &state, "next", other_port, None);
    next.wait_up();
    let status = next.stop();
    assert!(status.success(), "{}", next.log());
}

#[test]
fn state_files_and_the_history_are_private_under_umask_000() {
    let test = "state_files_and_the_history_are_private_under_umask_000";
    if !can_run(test) {
        return;
    }
    let base = tempfile::tempdir().unwrap();
    // The shell's umask 000 reaches what it starts: a new file is 0666.
    let control = base.path().join("control");
    let status = Command::new("sh")
        .args(["-c", "umask 000; exec touch \"$0\""])
        .arg(&control)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(mode(&control), 0o666, "umask 000 did not apply");

    let state = base.path().join("var/state");
    let port = free_port();
    let hook = format!(
        "\n[alert]\n[[alert.webhook]]\nurl = \"http://127.0.0.1:{}/hook\"\nname = \"ops\"\n",
        free_port()
    );
    let config = config(
        base.path(),
        "umask",
        port,
        &format!("{LOOPBACK_TARGET}{hook}"),
    );
    let _turn = one_tracer_at_a_time();
    let mut daemon = Daemon::start(&config, &state, "umask", port, Some("000"));
    daemon.wait_metrics("traces of 127.0.0.1 and a saved paths.json", |page| {
        sample(
            page,
            "transitwatch_state_saves_total",
            &[("file", "paths.json"), ("result", "ok")],
        ) >= 1.0
            && sample(page, "transitwatch_store_writes_total", &[("result", "ok")]) >= 1.0
    });
    let expected = [
        "alerts.json",
        "lock",
        "paths.json",
        "state.key",
        "transitwatch.db",
        "transitwatch.db-shm",
        "transitwatch.db-wal",
    ];
    let check = |when: &str, expected: &[&str]| {
        assert_eq!(mode(&state), 0o700, "{when}: the state folder");
        let present = names(&state);
        for name in expected {
            assert!(
                present.iter().any(|p| p == name),
                "{when}: no {name}: {present:?}"
            );
        }
        for name in &present {
            assert_eq!(mode(&state.join(name)), 0o600, "{when}: {name}");
        }
    };
    check("while running", &expected);
    let status = daemon.stop();
    assert!(status.success(), "{}", daemon.log());
    // The -wal and -shm files go with the last connection.
    check("after the stop", &expected[..5]);
}

#[test]
fn an_edited_alerts_json_is_refused_moved_aside_and_nothing_of_it_is_sent() {
    let test = "an_edited_alerts_json_is_refused_moved_aside_and_nothing_of_it_is_sent";
    if !can_run(test) || !support::have_all(test, &["python3"]) {
        return;
    }
    let base = tempfile::tempdir().unwrap();
    // Two state directories with the same pending firing notification, each
    // for its own webhook URL (a port nothing listens on yet): `control`
    // stays as the daemon wrote it, `edited` is changed by someone else.
    let (control_hook, edited_hook) = (free_port(), free_port());
    let control = base.path().join("control");
    let edited = base.path().join("edited");
    let mut original = String::new();
    for (state, hook) in [(&control, control_hook), (&edited, edited_hook)] {
        original = pending_notification(state, &format!("http://127.0.0.1:{hook}/hook"));
    }
    let path = edited.join("alerts.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let quoted = serde_json::to_string(&original).unwrap();
    assert!(text.contains(&quoted), "{text}");
    let forged = text.replace(&quoted, &serde_json::to_string(EDITED).unwrap());
    std::fs::write(&path, &forged).unwrap();

    let control_receiver = Receiver::local(
        base.path(),
        "control-hook",
        &format!("127.0.0.1:{control_hook}"),
        &[],
    );
    let edited_receiver = Receiver::local(
        base.path(),
        "edited-hook",
        &format!("127.0.0.1:{edited_hook}"),
        &[],
    );
    let alerting = |hook: u16| {
        format!(
            "\n[alert]\nretry_initial = \"200ms\"\nretry_max = \"1s\"\ntimeout = \"2s\"\n\n[[alert.webhook]]\nurl = \"http://127.0.0.1:{hook}/hook\"\nname = \"ops\"\n"
        )
    };

    // The edited state first: refused, moved aside, nothing queued.
    let port = free_port();
    let config_edited = config(base.path(), "edited", port, &alerting(edited_hook));
    let mut daemon = Daemon::start(&config_edited, &edited, "edited", port, None);
    let page = daemon.wait_metrics("the notifier's metrics", |page| {
        page.contains("transitwatch_alert_queue_length{webhook=\"ops\"}")
    });
    assert_eq!(
        sample(
            &page,
            "transitwatch_alert_queue_length",
            &[("webhook", "ops")]
        ),
        0.0
    );
    assert_eq!(sample(&page, "transitwatch_alerts_active", &[]), 0.0);
    assert_eq!(
        std::fs::read_to_string(edited.join("alerts.json.refused")).unwrap(),
        forged
    );
    let log = daemon.log();
    let refusal = log
        .lines()
        .find(|l| l.contains("its seal does not match its content"))
        .unwrap_or_else(|| panic!("no refusal logged: {log}"));
    assert!(refusal.contains(&path.display().to_string()), "{refusal}");
    assert!(!refusal.contains(EDITED), "{refusal}");

    // The untouched copy, started after it, is delivered: the same setup
    // sends what the daemon itself saved.
    let port = free_port();
    let config_control = config(base.path(), "control", port, &alerting(control_hook));
    let mut control_daemon = Daemon::start(&config_control, &control, "control", port, None);
    let posts = wait_for(
        "the control's pending notification",
        WAIT,
        || {
            let posts = control_receiver.posts();
            (!posts.is_empty()).then_some(posts)
        },
        || control_daemon.log(),
    );
    let first = &posts[0]["body"]["alerts"][0];
    assert_eq!(first["status"], "firing", "{first}");
    assert_eq!(first["annotations"]["summary"], original.as_str());

    // Meanwhile the daemon of the edited state sent nothing at all.
    assert!(
        edited_receiver.posts().is_empty(),
        "{:#?}",
        edited_receiver.posts()
    );
    for post in control_receiver.posts() {
        assert!(!post.to_string().contains(EDITED), "{post}");
    }
    for d in [&mut daemon, &mut control_daemon] {
        let status = d.stop();
        assert!(status.success(), "{}", d.log());
    }
    assert!(edited_receiver.posts().is_empty());
}

/// A state directory at `state` holding one pending firing notification
/// for the webhook at `url` (nothing listens there: it stays pending), as
/// the notifier saved it; returns its summary.
fn pending_notification(state: &Path, url: &str) -> String {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = StateDir::open(state, SaveMetrics::default()).unwrap();
        let settings = AlertConfig {
            webhooks: vec![WebhookConfig {
                url: url.to_string(),
                format: WebhookFormat::Alertmanager,
                name: "ops".into(),
                secret: None,
                ca: None,
            }],
            retry_initial: Duration::from_secs(30),
            retry_max: Duration::from_secs(30),
            ..AlertConfig::default()
        };
        let metrics = Metrics::new("test");
        let notifier = Notifier::start(dir.files(), &settings, metrics.alerts()).unwrap();
        let key = PathKey::whole("gov-portal");
        let subject = Subject {
            key: &key,
            category: "government",
        };
        notifier.observe(
            subject,
            &support::records::via_za("gov-portal", 1_767_225_600),
        );
        assert_eq!(notifier.pending()["ops"], 1);
        notifier.stop(Duration::from_secs(1)).await.unwrap();
        let saved: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(state.join("alerts.json")).unwrap())
                .unwrap();
        let pending = saved["state"]["webhooks"]
            .as_object()
            .unwrap()
            .values()
            .next()
            .unwrap()["pending"]
            .clone();
        assert_eq!(pending.as_array().map(Vec::len), Some(1), "{saved:#}");
        pending[0]["alert"]["annotations"]["summary"]
            .as_str()
            .unwrap()
            .to_string()
    })
}

#[test]
fn a_newer_state_file_stops_the_daemon_and_stays_as_it_is() {
    let test = "a_newer_state_file_stops_the_daemon_and_stays_as_it_is";
    if !can_run(test) {
        return;
    }
    for file in ["paths.json", "alerts.json"] {
        let base = tempfile::tempdir().unwrap();
        let state = base.path().join("state");
        std::fs::create_dir(&state).unwrap();
        let future = r#"{"version":7,"mac":"hmac-sha256:00","state":{"paths":{},"book":{}},"added_later":{"kept":true}}"#;
        let path = state.join(file);
        std::fs::write(&path, future).unwrap();
        let port = free_port();
        let config = config(base.path(), "future", port, "");
        let mut daemon = Daemon::start(&config, &state, "future", port, None);
        let status = daemon.wait_exit();
        let log = daemon.log();
        assert_eq!(status.code(), Some(2), "{file}: {log}");
        assert_eq!(
            error_line(&log),
            format!(
                "transitwatch: error: {}: version 7 is newer than this transitwatch writes (2); it is left as it is: upgrade transitwatch, or move the file away to start without it",
                path.display()
            )
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), future, "{file}");
        let written: Vec<String> = names(&state)
            .into_iter()
            .filter(|n| n.ends_with(".json") || n.contains(".json."))
            .collect();
        assert_eq!(written, [file], "nothing else saved, nothing moved aside");
        assert!(http_get(port, "/healthz").is_none());
    }
}

#[test]
fn a_failed_final_save_exits_1_naming_the_file_and_leaves_no_temporary_file() {
    let test = "a_failed_final_save_exits_1_naming_the_file_and_leaves_no_temporary_file";
    if !can_run(test) {
        return;
    }
    let base = tempfile::tempdir().unwrap();
    let state = base.path().join("state");
    let port = free_port();
    let config = config(base.path(), "save", port, LOOPBACK_TARGET);
    let _turn = one_tracer_at_a_time();
    let mut daemon = Daemon::start(&config, &state, "save", port, None);
    daemon.wait_metrics("a saved paths.json", |page| {
        sample(
            page,
            "transitwatch_state_saves_total",
            &[("file", "paths.json"), ("result", "ok")],
        ) >= 1.0
    });
    // Root may write anywhere, so the save is made to fail another way:
    // a folder (not empty) where paths.json was cannot be renamed over.
    let paths = state.join("paths.json");
    std::fs::remove_file(&paths).unwrap();
    std::fs::create_dir(&paths).unwrap();
    std::fs::write(paths.join("in-the-way"), "x").unwrap();
    let page = daemon.wait_metrics("a failed save of paths.json", |page| {
        sample(
            page,
            "transitwatch_state_saves_total",
            &[("file", "paths.json"), ("result", "error")],
        ) >= 1.0
    });
    assert_eq!(
        sample(
            &page,
            "transitwatch_state_saves_total",
            &[("file", "alerts.json"), ("result", "error")],
        ),
        0.0
    );

    let status = daemon.stop();
    let log = daemon.log();
    assert_eq!(status.code(), Some(1), "{log}");
    let line = error_line(&log);
    let prefix = format!(
        "transitwatch: error: the state was not saved at stop: {}: renaming the temporary file over it (",
        paths.display()
    );
    assert!(line.starts_with(&prefix), "{line}");
    assert!(!log.contains("transitwatch stopped"), "{log}");
    let left: Vec<String> = names(&state)
        .into_iter()
        .filter(|n| n.contains(".partial."))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
    assert!(paths.join("in-the-way").exists());
}

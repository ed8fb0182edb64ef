//! The daemon under test at the lab's vantage: its configuration, the
//! running process and its metrics.
//!
//! `write_config` writes the lab's daemon configuration (the vantage in
//! Lesotho, the lab's geolocation overrides, a trace of every target every
//! 2 s, metrics on `LISTEN`) followed by the sections a test adds (targets,
//! alerting, `store_section`). `LabDaemon` runs `transitwatch run` at the
//! vantage as a `Service` (killed on drop, also when the test panics) and
//! reads its HTTP endpoint with curl inside the namespace; `Metrics` is its
//! parsed `/metrics` exposition. Waits poll with generous bounds (hang
//! guards, not timing assertions) and fail with the daemon's log.

use super::services::{http_get, poll, Service};
use super::{bin, root, Lab};
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

/// Where the daemon serves metrics and the API inside the vantage namespace.
pub const LISTEN: &str = "127.0.0.1:19968";

/// Hang guard of the daemon's waits.
const WAIT: Duration = Duration::from_secs(60);

/// How often the waits look.
const POLL: Duration = Duration::from_millis(100);

/// Hang guard of the exit after SIGTERM.
const STOP: Duration = Duration::from_secs(30);

/// Write `DIR/transitwatch.toml`: the lab's daemon configuration followed
/// by `sections` (targets, `[alert]`, `store_section`), each as TOML text.
pub fn write_config(dir: &Path, sections: &[&str]) -> PathBuf {
    let overrides = root().join("tests/lab/lab-geo.csv");
    let mut cfg = format!(
        r#"
[vantage]
name = "maseru-lab"
country = "LS"

[policy]
home = "LS"

[geoip]
overrides = {overrides:?}

[probe]
family = "ipv4"
interval = "2s"
jitter = "500ms"
deadline = "1s"
concurrency = 8

[metrics]
listen = "{LISTEN}"
"#,
        overrides = overrides.to_str().expect("UTF-8 path"),
    );
    for section in sections {
        cfg.push_str(section);
        cfg.push('\n');
    }
    let path = dir.join("transitwatch.toml");
    std::fs::write(&path, cfg).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    path
}

/// A `[store]` section keeping the history in `DIR/transitwatch.db`.
pub fn store_section(dir: &Path) -> String {
    let db = dir.join("transitwatch.db");
    format!("\n[store]\npath = {:?}\n", db.to_str().expect("UTF-8 path"))
}

/// `transitwatch run` at the vantage; killed on drop.
pub struct LabDaemon<'l> {
    lab: &'l Lab,
    service: Service,
}

impl<'l> LabDaemon<'l> {
    /// `transitwatch run --config CONFIG --state-dir STATE` at the vantage,
    /// logging to `transitwatch.log` beside the state directory.
    pub fn start(lab: &'l Lab, config: &Path, state: &Path) -> Self {
        Self::start_with(lab, config, state, &[])
    }

    /// `start` with more arguments to `run` (e.g. `--drain 1s`).
    pub fn start_with(lab: &'l Lab, config: &Path, state: &Path, extra: &[&str]) -> Self {
        let mut command = lab.command("v", bin());
        command
            .args([
                OsStr::new("run"),
                OsStr::new("--config"),
                config.as_os_str(),
            ])
            .args([OsStr::new("--state-dir"), state.as_os_str()])
            .args(extra);
        let dir = state.parent().unwrap_or(state);
        LabDaemon {
            lab,
            service: Service::spawn("transitwatch", command, dir),
        }
    }

    /// Send `sig` (`"HUP"`, `"TERM"`, ...) to the daemon.
    pub fn signal(&self, sig: &str) {
        self.service.signal(sig);
    }

    /// SIGTERM, then wait for the exit (hang guard: 30 s); the daemon's log
    /// is the output's stderr.
    pub fn stop(self) -> Output {
        self.service.stop(STOP)
    }

    /// Panic (with the log) if the daemon has exited.
    pub fn assert_running(&self) {
        self.service.assert_running();
    }

    /// The last lines of the daemon's log, for failure messages.
    pub fn log_tail(&self) -> String {
        self.service.log_tail()
    }

    /// GET `path` from the daemon: (status, body); status 0 if nothing
    /// answered.
    pub fn get(&self, path: &str) -> (u16, String) {
        http_get(self.lab, &format!("http://{LISTEN}{path}"))
    }

    /// The current metrics; empty if `/metrics` did not answer 200.
    pub fn metrics(&self) -> Metrics {
        match self.get("/metrics") {
            (200, body) => Metrics::parse(&body),
            _ => Metrics::default(),
        }
    }

    /// Wait until `/readyz` answers 200 (hang guard: 60 s).
    pub fn wait_ready(&self) {
        poll(
            "the daemon to become ready",
            WAIT,
            POLL,
            || {
                self.assert_running();
                (self.get("/readyz").0 == 200).then_some(())
            },
            || self.log_tail(),
        );
    }

    /// Poll `/metrics` until `ok` holds (hang guard: 60 s); on timeout
    /// panic with `what`, the last metrics and the log.
    pub fn wait_metrics(&self, what: &str, ok: impl Fn(&Metrics) -> bool) -> Metrics {
        let last = std::cell::RefCell::new(Metrics::default());
        poll(
            what,
            WAIT,
            POLL,
            || {
                self.assert_running();
                let m = self.metrics();
                let found = ok(&m).then(|| m.clone());
                *last.borrow_mut() = m;
                found
            },
            || format!("last metrics: {:#?}\n{}", last.borrow(), self.log_tail()),
        )
    }
}

/// A Prometheus text exposition: series (name with labels) → value.
#[derive(Debug, Default, Clone)]
pub struct Metrics(BTreeMap<String, f64>);

/// The verdict classes of `transitwatch_path_verdict`.
const CLASSES: [&str; 4] = [
    "domestic",
    "foreign_transit",
    "foreign_destination",
    "indeterminate",
];

impl Metrics {
    /// Parse the exposition: every sample line `series value`.
    pub fn parse(text: &str) -> Metrics {
        Metrics(
            text.lines()
                .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
                .filter_map(|l| {
                    let (series, value) = l.rsplit_once(' ')?;
                    Some((series.to_string(), value.parse().ok()?))
                })
                .collect(),
        )
    }

    /// Whether no series was parsed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value of the first series of family `name` that carries every
    /// label of `labels`.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let prefix = format!("{name}{{");
        self.0
            .iter()
            .find(|(series, _)| {
                (series.as_str() == name || series.starts_with(&prefix))
                    && labels
                        .iter()
                        .all(|(k, v)| series.contains(&format!("{k}=\"{v}\"")))
            })
            .map(|(_, v)| *v)
    }

    /// How many series of family `name` carry every label of `labels`.
    pub fn count(&self, name: &str, labels: &[(&str, &str)]) -> usize {
        let prefix = format!("{name}{{");
        self.0
            .keys()
            .filter(|series| {
                (series.as_str() == name || series.starts_with(&prefix))
                    && labels
                        .iter()
                        .all(|(k, v)| series.contains(&format!("{k}=\"{v}\"")))
            })
            .count()
    }

    /// `get`, with 0 for a series not (yet) exported.
    pub fn or_zero(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels).unwrap_or(0.0)
    }

    /// `transitwatch_trace_runs_total` of `target` with `outcome`.
    pub fn runs(&self, target: &str, outcome: &str) -> f64 {
        self.or_zero(
            "transitwatch_trace_runs_total",
            &[("target", target), ("outcome", outcome)],
        )
    }

    /// The current verdict class of `target`, if it has one.
    pub fn verdict(&self, target: &str) -> Option<&'static str> {
        CLASSES.into_iter().find(|class| {
            self.get(
                "transitwatch_path_verdict",
                &[("target", target), ("class", class)],
            ) == Some(1.0)
        })
    }
}

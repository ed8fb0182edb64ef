//! Services a test runs beside the code under test: `Service` (any child
//! process, at the lab's vantage or on this host; the daemon of `daemon` and
//! the receiver of `webhook` are ones), a real Prometheus and a real
//! Alertmanager at the vantage, and the HTTP helpers and waits they share.
//!
//! Each is a child process of the test (`ip netns exec` replaces itself with
//! the program, so the child is the service) that is killed on drop, also
//! when the test panics; its stdout and stderr go to a log file whose tail
//! failure messages quote. HTTP goes through curl inside the vantage's
//! namespace, where the services listen on 127.0.0.1.

use super::Lab;
use serde_json::Value;
use std::cell::RefCell;
use std::ffi::OsStr;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A running service; killed and reaped on drop.
pub struct Service {
    name: String,
    // A RefCell (single-threaded, not a lock): checking whether the child
    // has exited needs `&mut Child`, while failure-message closures hold
    // shared references to the service at the same time.
    child: RefCell<Child>,
    log: PathBuf,
}

impl Service {
    /// Start `program args` at the vantage, logging to `DIR/NAME.log`.
    pub fn start<S: AsRef<OsStr>>(
        lab: &Lab,
        name: &str,
        program: impl AsRef<Path>,
        args: &[S],
        dir: &Path,
    ) -> Service {
        let mut command = lab.command("v", program);
        command.args(args);
        Service::spawn(name, command, dir)
    }

    /// Start `command` (on this host, or at a lab node through
    /// `Lab::command`), its stdout and stderr going to `DIR/NAME.log`.
    pub fn spawn(name: &str, mut command: Command, dir: &Path) -> Service {
        let log = dir.join(format!("{name}.log"));
        let file = File::create(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        let err = file.try_clone().expect("clone the log file handle");
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::from(file))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Service {
            name: name.to_string(),
            child: RefCell::new(child),
            log,
        }
    }

    /// Everything the service wrote so far (stdout and stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last lines of the service's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = self.log();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        format!("--- {} log ({})\n{tail}", self.name, self.log.display())
    }

    /// Panic (with the log) if the service has exited.
    pub fn assert_running(&self) {
        let exited = self.child.borrow_mut().try_wait();
        if let Ok(Some(status)) = exited {
            panic!("{} exited ({status})\n{}", self.name, self.log_tail());
        }
    }

    /// Send signal `sig` (`"HUP"`, `"TERM"`, ...) to the service.
    pub fn signal(&self, sig: &str) {
        let pid = self.child.borrow().id();
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &pid.to_string()])
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -{sig} {} ({pid})", self.name);
    }

    /// SIGTERM, then wait for the exit (hang guard: `limit`; on timeout the
    /// service is killed by drop). The log is the output's stderr (stdout
    /// goes to the same file), the output's stdout is empty.
    pub fn stop(self, limit: Duration) -> Output {
        self.signal("TERM");
        let status = poll(
            &format!("{} to stop after SIGTERM", self.name),
            limit,
            Duration::from_millis(50),
            || {
                self.child
                    .borrow_mut()
                    .try_wait()
                    .expect("wait for the service")
            },
            || self.log_tail(),
        );
        Output {
            status,
            stdout: Vec::new(),
            stderr: self.log().into_bytes(),
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let child = self.child.get_mut();
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Prometheus on 127.0.0.1:9090 at the vantage, with its TSDB in
/// `DIR/prometheus-data`.
pub fn prometheus(lab: &Lab, config: &Path, dir: &Path) -> Service {
    let args = [
        format!("--config.file={}", config.display()),
        format!(
            "--storage.tsdb.path={}",
            dir.join("prometheus-data").display()
        ),
        format!("--web.listen-address={PROMETHEUS}"),
        "--log.level=warn".to_string(),
    ];
    Service::start(lab, "prometheus", "prometheus", &args, dir)
}

/// Alertmanager (Debian's `prometheus-alertmanager`) on 127.0.0.1:9093 at
/// the vantage: storage in `DIR/alertmanager-data`, clustering off.
pub fn alertmanager(lab: &Lab, config: &Path, dir: &Path) -> Service {
    let args = [
        format!("--config.file={}", config.display()),
        format!("--storage.path={}", dir.join("alertmanager-data").display()),
        format!("--web.listen-address={ALERTMANAGER}"),
        // An empty address turns the gossip cluster off.
        "--cluster.listen-address=".to_string(),
        "--log.level=warn".to_string(),
    ];
    Service::start(lab, "alertmanager", "prometheus-alertmanager", &args, dir)
}

/// Where Prometheus listens inside the vantage namespace.
pub const PROMETHEUS: &str = "127.0.0.1:9090";
/// Where Alertmanager listens inside the vantage namespace.
pub const ALERTMANAGER: &str = "127.0.0.1:9093";
/// Where the webhook receiver listens (the host and port of the receiver URL
/// of `config/prometheus/alertmanager.yml`, path `/alertmanager`).
pub const WEBHOOK: &str = "127.0.0.1:9001";

/// GET `url` from the vantage: (status, body); status 0 if nothing answered.
pub fn http_get(lab: &Lab, url: &str) -> (u16, String) {
    curl(lab, &[url])
}

/// POST the form `fields` (URL-encoded) to `url` from the vantage.
pub fn http_post_form(lab: &Lab, url: &str, fields: &[(&str, &str)]) -> (u16, String) {
    let mut args = vec![url.to_string()];
    for (key, value) in fields {
        args.push("--data-urlencode".to_string());
        args.push(format!("{key}={value}"));
    }
    curl(lab, &args)
}

fn curl<S: AsRef<OsStr>>(lab: &Lab, args: &[S]) -> (u16, String) {
    let out = lab
        .command("v", "curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code}", "--max-time", "10"])
        .args(args)
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// Poll `probe` every 250 ms until it returns `Some` (hang guard: `limit`);
/// on timeout panic with `what` and `context()`.
pub fn wait_for<T>(
    what: &str,
    limit: Duration,
    probe: impl FnMut() -> Option<T>,
    context: impl Fn() -> String,
) -> T {
    poll(what, limit, Duration::from_millis(250), probe, context)
}

/// `wait_for`, polling every `every`.
pub fn poll<T>(
    what: &str,
    limit: Duration,
    every: Duration,
    mut probe: impl FnMut() -> Option<T>,
    context: impl Fn() -> String,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}\n{}",
            context()
        );
        std::thread::sleep(every);
    }
}

/// Prometheus' HTTP API at `PROMETHEUS`, queried from the vantage with POST
/// forms as Grafana's data source does (`httpMethod: POST`).
pub struct PromApi<'a> {
    lab: &'a Lab,
}

impl<'a> PromApi<'a> {
    pub fn new(lab: &'a Lab) -> Self {
        Self { lab }
    }

    /// `data` of a successful answer, or the error Prometheus (or the
    /// transport) gave.
    fn call(&self, path: &str, fields: &[(&str, &str)]) -> Result<Value, String> {
        let url = format!("http://{PROMETHEUS}{path}");
        let (code, body) = http_post_form(self.lab, &url, fields);
        let answer: Value = serde_json::from_str(&body)
            .map_err(|e| format!("HTTP {code} from {path}, not JSON ({e}): {body}"))?;
        if answer["status"] == "success" {
            Ok(answer["data"].clone())
        } else {
            Err(format!(
                "HTTP {code}: {}: {}",
                answer["errorType"].as_str().unwrap_or("?"),
                answer["error"].as_str().unwrap_or(&body)
            ))
        }
    }

    /// An instant query at the current time: the result vector (a scalar
    /// result becomes one series without labels).
    pub fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let data = self.call("/api/v1/query", &[("query", expr)])?;
        Ok(series(&data))
    }

    /// A range query: the result matrix.
    pub fn query_range(
        &self,
        expr: &str,
        start: f64,
        end: f64,
        step: &str,
    ) -> Result<Vec<Value>, String> {
        let (start, end) = (format!("{start:.3}"), format!("{end:.3}"));
        let data = self.call(
            "/api/v1/query_range",
            &[
                ("query", expr),
                ("start", &start),
                ("end", &end),
                ("step", step),
            ],
        )?;
        Ok(series(&data))
    }

    /// The values of `label` on series matching `selector` (what Grafana's
    /// `label_values(selector, label)` lists).
    pub fn label_values(&self, label: &str, selector: &str) -> Result<Vec<String>, String> {
        let path = format!("/api/v1/label/{label}/values");
        let url = format!("http://{PROMETHEUS}{path}");
        let (code, body) = curl(
            self.lab,
            &[
                "-G",
                &url,
                "--data-urlencode",
                &format!("match[]={selector}"),
            ],
        );
        let answer: Value = serde_json::from_str(&body)
            .map_err(|e| format!("HTTP {code} from {path}, not JSON ({e}): {body}"))?;
        if answer["status"] != "success" {
            return Err(format!("HTTP {code}: {body}"));
        }
        Ok(answer["data"]
            .as_array()
            .map(|values| {
                values
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The value of a one-series instant query, if it has exactly one.
    pub fn scalar(&self, expr: &str) -> Option<f64> {
        match self.query(expr).ok()?.as_slice() {
            [one] => sample_value(one),
            _ => None,
        }
    }

    /// The alerting and recording rules Prometheus has loaded.
    pub fn rules(&self) -> Result<Value, String> {
        let url = format!("http://{PROMETHEUS}/api/v1/rules");
        let (code, body) = http_get(self.lab, &url);
        let answer: Value = serde_json::from_str(&body)
            .map_err(|e| format!("HTTP {code} from /api/v1/rules ({e}): {body}"))?;
        Ok(answer["data"].clone())
    }
}

fn series(data: &Value) -> Vec<Value> {
    match data["resultType"].as_str() {
        Some("vector" | "matrix") => data["result"].as_array().cloned().unwrap_or_default(),
        Some("scalar" | "string") => {
            vec![serde_json::json!({"metric": {}, "value": data["result"]})]
        }
        _ => Vec::new(),
    }
}

/// The value of an instant-vector sample (`value: [time, "1.5"]`).
pub fn sample_value(sample: &Value) -> Option<f64> {
    sample["value"][1].as_str()?.parse().ok()
}

/// A label of a sample or series.
pub fn label<'v>(sample: &'v Value, name: &str) -> Option<&'v str> {
    sample["metric"][name].as_str()
}

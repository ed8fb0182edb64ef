//! `transitwatch run` on the namespace lab: five targets, the metrics they
//! produce, a route switch counted once, a restart counted never, a broken
//! reload that keeps the old configuration, and SIGTERM.
//!
//! The daemon runs at the vantage; the test reads its HTTP endpoint with
//! curl inside the same namespace. Waits poll the endpoint with a generous
//! bound (a hang guard, not a timing assertion).

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{bin, root, text, Lab};

const LISTEN: &str = "127.0.0.1:19968";

fn write_config(dir: &Path, targets: &str) -> PathBuf {
    let overrides = root().join("tests/lab/lab-geo.csv");
    let cfg = format!(
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

[store]
path = {store:?}
{targets}"#,
        overrides = overrides.to_str().unwrap(),
        store = dir.join("transitwatch.db").to_str().unwrap(),
    );
    let path = dir.join("transitwatch.toml");
    std::fs::write(&path, cfg).unwrap();
    path
}

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

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig}");
    }

    /// SIGTERM, then wait for the exit (hang guard: 30 s).
    fn stop(mut self) -> std::process::Output {
        self.signal("TERM");
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

/// Series name with labels → value.
fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

fn value(m: &BTreeMap<String, f64>, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    m.iter()
        .find(|(series, _)| {
            series.starts_with(&format!("{name}{{"))
                && labels
                    .iter()
                    .all(|(k, v)| series.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|(_, v)| *v)
}

fn verdict(m: &BTreeMap<String, f64>, target: &str) -> Option<String> {
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
            &[("target", target), ("class", class)],
        ) == Some(1.0)
    })
    .map(str::to_string)
}

/// Poll /metrics until `ok` holds (hang guard: 60 s).
fn wait_metrics(
    lab: &Lab,
    what: &str,
    ok: impl Fn(&BTreeMap<String, f64>) -> bool,
) -> BTreeMap<String, f64> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = BTreeMap::new();
    while Instant::now() < deadline {
        let (code, body) = get(lab, "/metrics");
        if code == 200 {
            last = parse_metrics(&body);
            if ok(&last) {
                return last;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out waiting for {what}; last metrics: {last:#?}");
}

fn wait_ready(lab: &Lab) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if get(lab, "/readyz").0 == 200 {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the daemon never became ready");
}

fn runs(m: &BTreeMap<String, f64>, target: &str, outcome: &str) -> f64 {
    value(
        m,
        "transitwatch_trace_runs_total",
        &[("target", target), ("outcome", outcome)],
    )
    .unwrap_or(0.0)
}

#[test]
fn daemon_verdicts_route_changes_restarts_and_reloads() {
    let Some(lab) = Lab::up("daemon_verdicts_route_changes_restarts_and_reloads") else {
        return;
    };
    if !support::have("curl") {
        support::skip("daemon_verdicts", "curl is not installed");
        return;
    }
    // The bank's address alone goes through South Africa.
    lab.route_prefixes("za", &["198.51.100.20/32"]);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let config = write_config(dir.path(), TARGETS);
    let daemon = Daemon::start(&lab, &config, &state);
    wait_ready(&lab);
    let m = wait_metrics(&lab, "a verdict for every reachable target", |m| {
        ["gov-portal", "bank", "shop", "silent"]
            .iter()
            .all(|t| verdict(m, t).is_some())
            && runs(m, "ghost", "error") >= 1.0
    });
    assert_eq!(verdict(&m, "gov-portal").as_deref(), Some("domestic"));
    assert_eq!(verdict(&m, "bank").as_deref(), Some("foreign_transit"));
    assert_eq!(verdict(&m, "shop").as_deref(), Some("foreign_destination"));
    assert_eq!(verdict(&m, "silent").as_deref(), Some("indeterminate"));
    assert!(runs(&m, "silent", "unreached") >= 1.0);
    assert_eq!(verdict(&m, "ghost"), None);
    // One of the four targets with a path crosses ZA.
    assert_eq!(
        value(
            &m,
            "transitwatch_country_dependency_ratio",
            &[("country", "ZA")]
        ),
        Some(0.25)
    );
    assert_eq!(
        value(
            &m,
            "transitwatch_path_transit_country",
            &[("target", "bank"), ("country", "ZA")]
        ),
        Some(2.0)
    );
    assert_eq!(
        value(
            &m,
            "transitwatch_path_changes_total",
            &[("target", "gov-portal")]
        ),
        Some(0.0)
    );

    // The API answers from the same state.
    let (code, body) = get(&lab, "/api/v1/targets/bank/latest");
    assert_eq!(code, 200, "{body}");
    let latest: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(latest[0]["verdict"]["class"], "foreign_transit");
    assert_eq!(get(&lab, "/api/v1/targets/nobody/latest").0, 404);

    // The portal moves onto the ZA route: its verdict flips, one change.
    lab.route_prefixes("za", &["198.51.100.10/32"]);
    let m = wait_metrics(&lab, "gov-portal to flip", |m| {
        verdict(m, "gov-portal").as_deref() == Some("foreign_transit")
    });
    assert_eq!(
        value(
            &m,
            "transitwatch_path_changes_total",
            &[("target", "gov-portal")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &m,
            "transitwatch_country_dependency_ratio",
            &[("country", "ZA")]
        ),
        Some(0.5)
    );
    // Two more traces of the new route change nothing.
    let seen = runs(&m, "gov-portal", "reached");
    let m = wait_metrics(&lab, "two more portal traces", |m| {
        runs(m, "gov-portal", "reached") >= seen + 2.0
    });
    assert_eq!(
        value(
            &m,
            "transitwatch_path_changes_total",
            &[("target", "gov-portal")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&m, "transitwatch_path_changes_total", &[("target", "bank")]),
        Some(0.0)
    );

    // A restart is not a change: the count carries over and stays.
    let out = daemon.stop();
    assert!(out.status.success(), "{}", text(&out));
    let daemon = Daemon::start(&lab, &config, &state);
    wait_ready(&lab);
    let m = wait_metrics(&lab, "the portal traced after the restart", |m| {
        runs(m, "gov-portal", "reached") >= 2.0
    });
    assert_eq!(
        value(
            &m,
            "transitwatch_path_changes_total",
            &[("target", "gov-portal")]
        ),
        Some(1.0)
    );
    assert_eq!(
        verdict(&m, "gov-portal").as_deref(),
        Some("foreign_transit")
    );

    // A broken configuration is rejected; the old one keeps serving.
    std::fs::write(
        &config,
        "[vantage]\nname = \"x\"\ncountry = \"LS\"\n[probe]\nprotocl = \"udp\"\n",
    )
    .unwrap();
    daemon.signal("HUP");
    let m = wait_metrics(&lab, "the rejected reload", |m| {
        value(m, "transitwatch_config_reload_success", &[]) == Some(0.0)
            || m.get("transitwatch_config_reload_success") == Some(&0.0)
    });
    assert_eq!(verdict(&m, "bank").as_deref(), Some("foreign_transit"));
    let seen = runs(&m, "bank", "reached");
    wait_metrics(&lab, "the old configuration still tracing", |m| {
        runs(m, "bank", "reached") > seen
    });

    // SIGTERM ends the daemon within its drain period.
    let out = daemon.stop();
    assert!(out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Run `prometheus` at the vantage, scraping the daemon every second.
struct Prometheus {
    child: Child,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn promql(lab: &Lab, query: &str) -> serde_json::Value {
    let out = lab
        .command("v", "curl")
        .args([
            "-s",
            "--max-time",
            "5",
            "-G",
            "http://127.0.0.1:9090/api/v1/query",
            "--data-urlencode",
        ])
        .arg(format!("query={query}"))
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

#[test]
fn prometheus_scrapes_the_daemon_and_sigterm_drains_in_flight_traces() {
    let test = "prometheus_scrapes_the_daemon_and_sigterm_drains_in_flight_traces";
    for tool in ["prometheus", "promtool", "curl"] {
        if !support::have(tool) {
            support::skip(
                test,
                &format!("{tool} is not installed (apt-get install prometheus curl)"),
            );
            return;
        }
    }
    let Some(lab) = Lab::up(test) else { return };
    lab.route_prefixes("za", &["198.51.100.20/32"]);
    let dir = tempfile::tempdir().unwrap();
    // The silent target's trace stays in flight for up to a minute.
    let targets = format!("{TARGETS}\n").replace(
        "name = \"silent\"",
        "name = \"silent\"\nprotocol = \"icmp\"",
    );
    let config = write_config(dir.path(), &targets)
        .to_str()
        .unwrap()
        .replace('"', "");
    let text_cfg = std::fs::read_to_string(&config)
        .unwrap()
        .replace("deadline = \"1s\"", "deadline = \"60s\"\ngrace = \"100ms\"");
    std::fs::write(&config, text_cfg).unwrap();
    let daemon = lab
        .command("v", bin())
        .args(["run", "--config", &config, "--drain", "1s", "--state-dir"])
        .arg(dir.path().join("state"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let daemon = Daemon { child: daemon };
    wait_metrics(&lab, "verdicts", |m| {
        verdict(m, "bank").is_some() && verdict(m, "shop").is_some()
    });

    // The live exposition passes promtool's linter.
    let (_, body) = get(&lab, "/metrics");
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
    let prom = lab
        .command("v", "prometheus")
        .arg(format!("--config.file={}", prom_cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            prom_dir.join("data").display()
        ))
        .args(["--web.listen-address=127.0.0.1:9090", "--log.level=warn"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _prom = Prometheus { child: prom };
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut answer = serde_json::Value::Null;
    let mut classes = BTreeMap::new();
    while Instant::now() < deadline {
        answer = promql(&lab, "transitwatch_path_verdict == 1");
        classes = answer["data"]["result"]
            .as_array()
            .map(|r| {
                r.iter()
                    .map(|s| {
                        (
                            s["metric"]["target"].as_str().unwrap_or("").to_string(),
                            s["metric"]["class"].as_str().unwrap_or("").to_string(),
                        )
                    })
                    .collect::<BTreeMap<_, _>>()
            })
            .unwrap_or_default();
        if classes.len() >= 3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(
        classes.get("bank").map(String::as_str),
        Some("foreign_transit"),
        "{answer}"
    );
    assert_eq!(
        classes.get("gov-portal").map(String::as_str),
        Some("domestic"),
        "{answer}"
    );
    assert_eq!(
        classes.get("shop").map(String::as_str),
        Some("foreign_destination"),
        "{answer}"
    );
    // Three targets have a path so far (the silent one is still tracing);
    // one of them crosses ZA.
    let ratio = promql(
        &lab,
        "transitwatch_country_dependency_ratio{country=\"ZA\"}",
    );
    let za: f64 = ratio["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1.0);
    assert!((za - 1.0 / 3.0).abs() < 1e-9, "{ratio}");

    // SIGTERM while the silent target's 60 s trace is in flight: the daemon
    // drains for 1 s and exits well before that trace could end (the 30 s
    // bound is a hang guard, half the trace's deadline).
    let out = daemon.stop();
    assert!(out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

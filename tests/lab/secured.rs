//! The daemon's endpoint secured by a web configuration file (TLS and
//! basic authentication, exporter-toolkit format) on the namespace lab,
//! against a real Prometheus (Debian's, 2.42) and curl.
//!
//! `prometheus_scrapes_over_tls_with_basic_auth_and_traces_on_demand`: the
//! daemon runs at the vantage with `--web.config.file` (a test CA's server
//! certificate, one bcrypt user). Prometheus scrapes it every second in two
//! jobs, both `scheme: https` trusting the test CA: `secured` with
//! `basic_auth`, whose target is up and whose samples arrive, and
//! `anonymous` without, whose target is down with Prometheus' own error
//! naming the 401. Then the trace route: 401 without credentials, 404 for
//! an unknown name (an address is only a name that matches nothing), a
//! record of the configured target with its hops, and 429 with
//! `Retry-After` when hammered by concurrent requests. Last, SIGHUP with a
//! web configuration without users opens the endpoint.
//!
//! Waits poll with generous bounds (hang guards, not timing assertions).

use crate::support;

use serde_json::Value;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;
use support::daemon::{write_config, LabDaemon, LISTEN as DAEMON};
use support::pki::Pki;
use support::services::{self, http_get, PromApi, PROMETHEUS};
use support::Lab;

/// Hang guard of every wait.
const WAIT: Duration = Duration::from_secs(60);

const TARGETS: &str = r#"
[[target]]
name = "gov-portal"
host = "portal.gov.ls.test"
category = "government"
"#;

/// curl at the vantage over TLS, trusting the test CA, with `args`;
/// started, not waited for.
fn curl(lab: &Lab, pki: &Pki, args: &[&str]) -> Child {
    lab.command("v", "curl")
        .args(["-s", "-o", "-", "-D", "/dev/stderr", "-w", "\n%{http_code}"])
        .args(["--max-time", "50", "--cacert"])
        .arg(&pki.ca)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run curl")
}

/// (status, body, response headers) of a finished curl.
fn finish(child: Child) -> (u16, String, String) {
    let out = child.wait_with_output().expect("wait for curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (
        code.trim().parse().unwrap_or(0),
        body.to_string(),
        String::from_utf8_lossy(&out.stderr).to_lowercase(),
    )
}

fn prometheus_config(dir: &Path, ca: &Path) -> std::path::PathBuf {
    let job = |name: &str, auth: &str| {
        format!(
            "  - job_name: {name}\n    scheme: https\n    tls_config:\n      ca_file: {}\n{auth}    static_configs:\n      - targets: [\"{DAEMON}\"]\n",
            ca.display()
        )
    };
    let text = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n{}{}",
        job(
            "secured",
            "    basic_auth:\n      username: prometheus\n      password: s3cret\n"
        ),
        job("anonymous", "")
    );
    let path = dir.join("prometheus.yml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn prometheus_scrapes_over_tls_with_basic_auth_and_traces_on_demand() {
    let test = "prometheus_scrapes_over_tls_with_basic_auth_and_traces_on_demand";
    if !support::have_all(test, &["prometheus", "curl"]) {
        return;
    }
    let Some(lab) = Lab::up(test) else { return };
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::write(dir.path());
    let web = pki.web_config(dir.path(), &[("prometheus", "s3cret")], "");
    let config = write_config(dir.path(), &[TARGETS]);
    let state = dir.path().join("state");
    let web_flag = web.to_str().expect("UTF-8 path");
    let daemon = LabDaemon::start_with(&lab, &config, &state, &["--web.config.file", web_flag]);
    let base = format!("https://{DAEMON}");
    let user = ["-u", "prometheus:s3cret"];

    // Served over TLS only, and only with the credentials.
    services::wait_for(
        "the daemon to answer over TLS",
        WAIT,
        || {
            daemon.assert_running();
            let (status, _, _) = finish(curl(
                &lab,
                &pki,
                &[user[0], user[1], &format!("{base}/readyz")],
            ));
            (status == 200).then_some(())
        },
        || daemon.log_tail(),
    );
    let (status, _, headers) = finish(curl(&lab, &pki, &[&format!("{base}/metrics")]));
    assert_eq!(status, 401);
    assert!(headers.contains("www-authenticate: basic"), "{headers}");
    assert_eq!(http_get(&lab, &format!("http://{DAEMON}/healthz")).0, 0);

    // A real Prometheus: up with credentials, refused without.
    let prometheus =
        services::prometheus(&lab, &prometheus_config(dir.path(), &pki.ca), dir.path());
    let targets = services::wait_for(
        "Prometheus to scrape both jobs",
        WAIT,
        || {
            prometheus.assert_running();
            let (_, body) = http_get(&lab, &format!("http://{PROMETHEUS}/api/v1/targets"));
            let answer: Value = serde_json::from_str(&body).ok()?;
            let active = answer["data"]["activeTargets"].as_array()?.clone();
            let health = |job: &str| {
                active
                    .iter()
                    .find(|t| t["labels"]["job"] == job)
                    .map(|t| t["health"].as_str().unwrap_or("").to_string())
            };
            (health("secured")?.as_str() == "up" && health("anonymous")?.as_str() == "down")
                .then_some(active)
        },
        || format!("{}\n{}", prometheus.log_tail(), daemon.log_tail()),
    );
    let anonymous = targets
        .iter()
        .find(|t| t["labels"]["job"] == "anonymous")
        .unwrap();
    let error = anonymous["lastError"].as_str().unwrap_or("");
    assert!(error.contains("401"), "anonymous scrape error: {error}");
    let prom = PromApi::new(&lab);
    let samples = services::wait_for(
        "the daemon's samples in Prometheus",
        WAIT,
        || {
            let found = prom
                .query("transitwatch_build_info{job=\"secured\"}")
                .ok()?;
            (!found.is_empty()).then_some(found)
        },
        || prometheus.log_tail(),
    );
    assert_eq!(samples.len(), 1, "{samples:?}");
    assert!(prom
        .query("transitwatch_build_info{job=\"anonymous\"}")
        .unwrap()
        .is_empty());

    // Traces on demand: credentials, a configured name, limits.
    let trace = |name: &str| format!("{base}/api/v1/targets/{name}/trace");
    let (status, _, _) = finish(curl(&lab, &pki, &["-X", "POST", &trace("gov-portal")]));
    assert_eq!(status, 401);
    let (status, body, _) = finish(curl(
        &lab,
        &pki,
        &[user[0], user[1], "-X", "POST", &trace("198.51.100.10")],
    ));
    assert_eq!(status, 404, "{body}");
    let (status, body, _) = finish(curl(
        &lab,
        &pki,
        &[user[0], user[1], "-X", "POST", &trace("gov-portal")],
    ));
    assert_eq!(status, 200, "{body}\n{}", daemon.log_tail());
    let records: Value = serde_json::from_str(&body).unwrap();
    let record = &records[0];
    assert_eq!(record["schema"], "transitwatch.trace/1");
    assert_eq!(record["target"]["name"], "gov-portal");
    assert_eq!(record["vantage"]["name"], "maseru-lab");
    assert!(
        record["hops"].as_array().is_some_and(|h| h.len() >= 2),
        "{record}"
    );
    assert_eq!(record["verdict"]["class"], "domestic", "{record}");

    let hammering: Vec<Child> = (0..6)
        .map(|_| {
            curl(
                &lab,
                &pki,
                &[user[0], user[1], "-X", "POST", &trace("gov-portal")],
            )
        })
        .collect();
    let answers: Vec<(u16, String, String)> = hammering.into_iter().map(finish).collect();
    let statuses: Vec<u16> = answers.iter().map(|a| a.0).collect();
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(
        statuses.iter().all(|s| [200, 429].contains(s)),
        "{statuses:?}"
    );
    let limited = answers.iter().find(|a| a.0 == 429).unwrap();
    assert!(limited.2.contains("retry-after:"), "{}", limited.2);
    daemon.assert_running();

    // SIGHUP reads the web configuration again: without users the
    // endpoint opens (TLS stays).
    pki.web_config(dir.path(), &[], "");
    daemon.signal("HUP");
    services::wait_for(
        "the reloaded web configuration",
        WAIT,
        || {
            daemon.assert_running();
            let (status, _, _) = finish(curl(&lab, &pki, &[&format!("{base}/healthz")]));
            (status == 200).then_some(())
        },
        || daemon.log_tail(),
    );
    drop(prometheus);
    let out = daemon.stop();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

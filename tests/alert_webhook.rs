//! The built-in notifier against real receivers on loopback: a Python
//! webhook receiver (`tests/tools/webhook_receiver.py`, plain HTTP and TLS)
//! that checks the HMAC signature independently, and a real Alertmanager
//! whose own webhook post is the reference for the payload's shape.
//!
//! Waits poll the receiver's file with a generous bound (a hang guard, not
//! a timing assertion).

mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use transitwatch::alert::{Notifier, Subject};
use transitwatch::config::{AlertConfig, CaFile, Config, Secret, WebhookConfig, WebhookFormat};
use transitwatch::metrics::Metrics;
use transitwatch::model::{
    CountryCode, GeoSource, Hop, HopGeo, PathVerdict, Protocol, TargetRef, Trace, TraceRecord,
    VantageRef, VerdictClass,
};

const SECRET: &str = "s3cret-for-tests";

fn receiver_script() -> PathBuf {
    support::root().join("tests/tools/webhook_receiver.py")
}

fn tls_dir() -> PathBuf {
    support::root().join("tests/resources/tls")
}

/// A receiver process; killed on drop.
struct Receiver {
    child: Child,
    port: u16,
    out: PathBuf,
}

impl Receiver {
    fn start(dir: &Path, name: &str, extra: &[&str]) -> Receiver {
        let out = dir.join(format!("{name}.jsonl"));
        let port_file = dir.join(format!("{name}.port"));
        let child = Command::new("python3")
            .arg(receiver_script())
            .args(["--listen", "127.0.0.1:0", "--out"])
            .arg(&out)
            .arg("--port-file")
            .arg(&port_file)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the webhook receiver (python3)");
        let deadline = Instant::now() + Duration::from_secs(20);
        let port = loop {
            if let Ok(text) = std::fs::read_to_string(&port_file) {
                break text.trim().parse().unwrap();
            }
            assert!(Instant::now() < deadline, "the receiver did not start");
            std::thread::sleep(Duration::from_millis(50));
        };
        Receiver { child, port, out }
    }

    fn lines(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Wait until at least `n` posts arrived (hang guard: 30 s).
    async fn wait_for(&self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let lines = self.lines();
            if lines.len() >= n {
                return lines;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} posts, got {}: {lines:#?}",
                lines.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn cc(s: &str) -> CountryCode {
    s.parse().unwrap()
}

/// A trace record of the portal with the given verdict.
fn record(class: VerdictClass, violation: bool, via: &[&str], at: &str) -> TraceRecord {
    let countries: Vec<CountryCode> = via.iter().map(|c| cc(c)).collect();
    let foreign: Vec<CountryCode> = via.iter().filter(|c| **c != "LS").map(|c| cc(c)).collect();
    let hops = countries
        .iter()
        .enumerate()
        .map(|(i, c)| Hop {
            ttl: u8::try_from(i + 1).unwrap(),
            addr: Some(format!("198.18.{}.2", i + 1).parse().unwrap()),
            addrs: vec![],
            sent: 3,
            received: 3,
            rtt_ms: None,
            geo: HopGeo {
                country: Some(*c),
                asn: Some(64500 + u32::try_from(i).unwrap()),
                source: GeoSource::Override,
                ..HopGeo::default()
            },
        })
        .collect();
    TraceRecord::new(
        Trace {
            target: TargetRef {
                name: "gov-portal".into(),
                host: "portal.gov.ls.test".into(),
                addr: Some("198.51.100.10".parse().unwrap()),
            },
            vantage: VantageRef {
                name: "maseru-lab".into(),
                country: Some(cc("LS")),
            },
            protocol: Protocol::Icmp,
            port: None,
            started_at: at.into(),
            reached: true,
            hops,
        },
        PathVerdict {
            class,
            countries,
            foreign_countries: foreign,
            foreign_asns: vec![64501],
            violation,
            path_id: "0123456789abcdef".into(),
            explanation: "gov-portal (LS) is reached via ZA: hop 2 is located in South Africa"
                .into(),
            suspect_countries: vec![],
            anomalies: vec![],
        },
    )
}

fn transit(at: &str) -> TraceRecord {
    record(VerdictClass::ForeignTransit, true, &["LS", "ZA", "LS"], at)
}

fn domestic(at: &str) -> TraceRecord {
    record(VerdictClass::Domestic, false, &["LS", "LS"], at)
}

const SUBJECT: Subject<'static> = Subject {
    key: "gov-portal",
    category: "government",
};

fn webhook(url: String, format: WebhookFormat, name: &str) -> WebhookConfig {
    WebhookConfig {
        url,
        format,
        name: name.into(),
        secret: None,
        ca: None,
    }
}

fn settings(webhooks: Vec<WebhookConfig>) -> AlertConfig {
    AlertConfig {
        webhooks,
        retry_initial: Duration::from_millis(50),
        retry_max: Duration::from_millis(200),
        timeout: Duration::from_secs(5),
        external_url: Some("http://tw.example:19968".into()),
        ..AlertConfig::default()
    }
}

fn ca(file: &str) -> CaFile {
    // Read the PEM the way the configuration does.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tw.toml");
    std::fs::write(
        &path,
        format!(
            "[vantage]\nname = \"v\"\ncountry = \"LS\"\n[[alert.webhook]]\nurl = \"https://localhost/\"\nca_file = {:?}\n",
            tls_dir().join(file).to_str().unwrap()
        ),
    )
    .unwrap();
    Config::load(&path).unwrap().alert.webhooks[0]
        .ca
        .clone()
        .unwrap()
}

fn metric(metrics: &Metrics, series: &str) -> f64 {
    metrics
        .render()
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(-1.0)
}

#[tokio::test]
async fn signed_posts_arrive_in_order_after_server_errors_over_http_and_https() {
    let dir = tempfile::tempdir().unwrap();
    let plain = Receiver::start(
        dir.path(),
        "plain",
        &["--secret", SECRET, "--status", "503,503"],
    );
    let cert = tls_dir().join("receiver.pem");
    let key = tls_dir().join("receiver.key");
    let tls = Receiver::start(
        dir.path(),
        "tls",
        &["--tls", cert.to_str().unwrap(), key.to_str().unwrap()],
    );
    let mut am = webhook(
        format!("http://127.0.0.1:{}/hook", plain.port),
        WebhookFormat::Alertmanager,
        "ops",
    );
    am.secret = Some(Secret::new(SECRET));
    let mut json = webhook(
        format!("https://localhost:{}/tw", tls.port),
        WebhookFormat::Json,
        "archive",
    );
    json.ca = Some(ca("ca.pem"));
    let metrics = Metrics::new("test");
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let notifier = Notifier::start(&state, &settings(vec![am, json]), metrics.alerts());

    notifier.observe(SUBJECT, &domestic("2026-01-01T00:00:00Z"));
    notifier.observe(SUBJECT, &transit("2026-01-01T00:05:00Z"));
    notifier.observe(SUBJECT, &transit("2026-01-01T00:10:00Z"));
    notifier.observe(SUBJECT, &domestic("2026-01-01T00:15:00Z"));

    let posts = plain.wait_for(4).await;
    let answered: Vec<i64> = posts
        .iter()
        .map(|p| p["answered"].as_i64().unwrap())
        .collect();
    assert_eq!(answered, [503, 503, 200, 200]);
    // The same firing notification three times (two refusals), then the resolved one.
    let ids: Vec<&str> = posts
        .iter()
        .map(|p| {
            p["headers"]["x-transitwatch-notification-id"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(ids[0], ids[1]);
    assert_eq!(ids[1], ids[2]);
    assert_ne!(ids[2], ids[3]);
    for p in &posts {
        assert_eq!(p["signature_valid"], true, "{p}");
        assert_eq!(p["path"], "/hook");
        assert_eq!(p["headers"]["content-type"], "application/json");
    }
    let firing = &posts[2]["body"];
    assert_eq!(firing["version"], "4");
    assert_eq!(firing["status"], "firing");
    assert_eq!(firing["receiver"], "ops");
    assert_eq!(firing["externalURL"], "http://tw.example:19968");
    let alert = &firing["alerts"][0];
    assert_eq!(alert["labels"]["alertname"], "ForeignTransitDetected");
    assert_eq!(alert["labels"]["target"], "gov-portal");
    assert_eq!(alert["labels"]["countries"], "ZA");
    assert_eq!(alert["startsAt"], "2026-01-01T00:05:00Z");
    assert_eq!(alert["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(
        alert["generatorURL"],
        "http://tw.example:19968/api/v1/targets/gov-portal/latest"
    );
    let resolved = &posts[3]["body"];
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(resolved["alerts"][0]["endsAt"], "2026-01-01T00:15:00Z");
    assert_eq!(
        resolved["alerts"][0]["fingerprint"], alert["fingerprint"],
        "one alert, two notifications"
    );

    let posts = tls.wait_for(2).await;
    assert_eq!(posts.len(), 2);
    let body = &posts[0]["body"];
    assert_eq!(body["schema"], "transitwatch.alert/1");
    assert_eq!(body["status"], "firing");
    assert_eq!(body["receiver"], "archive");
    assert_eq!(
        body["trace"]["countries"],
        serde_json::json!(["LS", "ZA", "LS"])
    );
    assert_eq!(body["trace"]["hops"][1]["country"], "ZA");
    assert!(posts[0]["headers"]
        .get("x-transitwatch-signature")
        .is_none());
    assert_eq!(posts[1]["body"]["status"], "resolved");

    let wait = Instant::now() + Duration::from_secs(30);
    while notifier.pending().values().any(|n| *n > 0) && Instant::now() < wait {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let delivered = |hook: &str| {
        metric(
            &metrics,
            &format!(
                "transitwatch_alert_notifications_total{{result=\"delivered\",webhook=\"{hook}\"}}"
            ),
        )
    };
    assert_eq!(delivered("ops"), 2.0);
    assert_eq!(delivered("archive"), 2.0);
    assert_eq!(
        metric(
            &metrics,
            "transitwatch_alert_notifications_total{result=\"failed\",webhook=\"ops\"}"
        ),
        2.0
    );
    assert_eq!(
        metric(&metrics, "transitwatch_alert_queue_length{webhook=\"ops\"}"),
        0.0
    );
    notifier.stop(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_client_error_is_not_retried_and_the_next_notification_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(dir.path(), "r", &["--status", "400"]);
    let metrics = Metrics::new("test");
    let notifier = Notifier::start(
        dir.path(),
        &settings(vec![webhook(
            format!("http://127.0.0.1:{}/", receiver.port),
            WebhookFormat::Alertmanager,
            "r",
        )]),
        metrics.alerts(),
    );
    notifier.observe(SUBJECT, &transit("2026-01-01T00:05:00Z"));
    notifier.observe(SUBJECT, &domestic("2026-01-01T00:10:00Z"));
    let posts = receiver.wait_for(2).await;
    assert_eq!(posts[0]["answered"], 400);
    assert_eq!(posts[0]["body"]["status"], "firing");
    assert_eq!(posts[1]["answered"], 200);
    assert_eq!(posts[1]["body"]["status"], "resolved");
    // Nothing more follows: the refused one is not sent again.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.lines().len(), 2);
    assert_eq!(
        metric(
            &metrics,
            "transitwatch_alert_notifications_total{result=\"rejected\",webhook=\"r\"}"
        ),
        1.0
    );
    notifier.stop(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_receiver_certificate_from_another_ca_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cert = tls_dir().join("receiver.pem");
    let key = tls_dir().join("receiver.key");
    let receiver = Receiver::start(
        dir.path(),
        "tls",
        &["--tls", cert.to_str().unwrap(), key.to_str().unwrap()],
    );
    let url = format!("https://localhost:{}/", receiver.port);
    let mut other = webhook(url.clone(), WebhookFormat::Json, "other-ca");
    other.ca = Some(ca("other-ca.pem"));
    let public_roots = webhook(
        format!("https://127.0.0.1:{}/", receiver.port),
        WebhookFormat::Json,
        "public-roots",
    );
    let metrics = Metrics::new("test");
    let notifier = Notifier::start(
        dir.path(),
        &settings(vec![other, public_roots]),
        metrics.alerts(),
    );
    notifier.observe(SUBJECT, &transit("2026-01-01T00:05:00Z"));
    let failed = |hook: &str| {
        metric(
            &metrics,
            &format!(
                "transitwatch_alert_notifications_total{{result=\"failed\",webhook=\"{hook}\"}}"
            ),
        )
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while (failed("other-ca") < 2.0 || failed("public-roots") < 2.0) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(failed("other-ca") >= 2.0);
    assert!(failed("public-roots") >= 2.0);
    // The handshake failed before any request was made.
    assert!(receiver.lines().is_empty());
    assert_eq!(notifier.pending()["other-ca"], 1);
    notifier.stop(Duration::from_secs(5)).await;
}

/// A free loopback port (bound and released; the caller binds it again).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The keys of a JSON object with the kind of each value, recursively
/// for objects and for the first element of arrays.
fn shape(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    // Label and annotation names differ between alerts;
                    // only their being string maps matters.
                    let inner = if matches!(
                        k.as_str(),
                        "labels"
                            | "annotations"
                            | "groupLabels"
                            | "commonLabels"
                            | "commonAnnotations"
                    ) {
                        Value::String("map of strings".into())
                    } else {
                        shape(v)
                    };
                    (k.clone(), inner)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.first().map(shape).into_iter().collect()),
        Value::String(_) => Value::String("string".into()),
        Value::Number(_) => Value::String("number".into()),
        Value::Bool(_) => Value::String("bool".into()),
        Value::Null => Value::Null,
    }
}

#[tokio::test]
async fn the_alertmanager_format_has_the_shape_of_alertmanagers_own_post() {
    let test = "the_alertmanager_format_has_the_shape_of_alertmanagers_own_post";
    for tool in ["prometheus-alertmanager", "curl"] {
        if !support::have(tool) {
            eprintln!("SKIPPED {test}: {tool} is not installed (apt-get install prometheus-alertmanager curl)");
            return;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let reference = Receiver::start(dir.path(), "alertmanager", &[]);
    let ours = Receiver::start(dir.path(), "ours", &[]);
    let am_port = free_port();
    let cluster_port = free_port();
    let am_config = dir.path().join("alertmanager.yml");
    std::fs::write(
        &am_config,
        format!(
            "route:\n  receiver: hook\n  group_by: ['alertname']\n  group_wait: 0s\n  group_interval: 1s\n\
             receivers:\n  - name: hook\n    webhook_configs:\n      - url: 'http://127.0.0.1:{}/am'\n        send_resolved: true\n",
            reference.port
        ),
    )
    .unwrap();
    let _am = Killed(
        Command::new("prometheus-alertmanager")
            .arg(format!("--config.file={}", am_config.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("am").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{am_port}"))
            .arg(format!("--cluster.listen-address=127.0.0.1:{cluster_port}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let alert = r#"[{"labels":{"alertname":"ForeignTransitDetected","target":"gov-portal","severity":"critical"},
        "annotations":{"summary":"s","description":"d"},"generatorURL":"http://tw.example/"}]"#;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let posted = Command::new("curl")
            .args([
                "-sf",
                "--max-time",
                "5",
                "-H",
                "Content-Type: application/json",
                "-d",
            ])
            .arg(alert)
            .arg(format!("http://127.0.0.1:{am_port}/api/v2/alerts"))
            .output()
            .unwrap();
        if posted.status.success() {
            break;
        }
        assert!(Instant::now() < deadline, "alertmanager did not start");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let theirs = reference.wait_for(1).await;

    let notifier = Notifier::start(
        dir.path(),
        &settings(vec![webhook(
            format!("http://127.0.0.1:{}/ours", ours.port),
            WebhookFormat::Alertmanager,
            "hook",
        )]),
        Metrics::new("t").alerts(),
    );
    notifier.observe(SUBJECT, &transit("2026-01-01T00:05:00Z"));
    let mine = ours.wait_for(1).await;
    notifier.stop(Duration::from_secs(5)).await;

    let (theirs, mine) = (&theirs[0]["body"], &mine[0]["body"]);
    for body in [theirs, mine] {
        assert_eq!(body["alerts"].as_array().map(Vec::len), Some(1), "{body}");
        assert!(body["commonLabels"].is_object(), "{body}");
    }
    assert_eq!(
        shape(mine),
        shape(theirs),
        "ours: {mine:#}\nalertmanager: {theirs:#}"
    );
    assert_eq!(mine["version"], theirs["version"]);
    assert_eq!(mine["status"], theirs["status"]);
    // Alertmanager's fingerprints are 16 hex digits; so are ours.
    for body in [theirs, mine] {
        let fp = body["alerts"][0]["fingerprint"].as_str().unwrap();
        assert_eq!(fp.len(), 16);
        assert!(fp.chars().all(|c| c.is_ascii_hexdigit()));
    }
    // Both group keys have Alertmanager's `{route}:{labels}` form.
    for body in [theirs, mine] {
        let key = body["groupKey"].as_str().unwrap();
        assert!(
            key.starts_with("{}:{alertname=\"ForeignTransitDetected\""),
            "{key}"
        );
    }
}

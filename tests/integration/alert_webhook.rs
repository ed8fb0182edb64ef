//! The built-in notifier against real receivers on loopback: a Python
//! webhook receiver (`tests/tools/webhook_receiver.py`, plain HTTP and TLS)
//! that checks the HMAC signature independently, and a real Alertmanager
//! whose own webhook post is the reference for the payload's shape.
//!
//! Waits poll the receiver's file with a generous bound (a hang guard, not
//! a timing assertion).

use crate::support;
use crate::support::loopback::free_port;

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};
use support::records::{domestic as domestic_route, via_za};
use support::services::Service;
use support::webhook::{notification_ids, Receiver};
use transitwatch::alert::{Notifier, Subject};
use transitwatch::config::{AlertConfig, CaFile, Config, Secret, WebhookConfig, WebhookFormat};
use transitwatch::metrics::Metrics;
use transitwatch::model::{PathKey, TraceRecord};
use transitwatch::state_dir::{SaveMetrics, StateDir, StateFiles};

const SECRET: &str = "s3cret-for-tests";

fn tls_dir() -> PathBuf {
    support::root().join("tests/resources/tls")
}

/// A receiver on this host's loopback, on a free port.
fn receiver(dir: &std::path::Path, name: &str, extra: &[&str]) -> Receiver {
    Receiver::local(dir, name, "127.0.0.1:0", extra)
}

/// A receiver serving HTTPS with `tests/resources/tls/receiver.pem`
/// (issued by `ca.pem` for localhost and 127.0.0.1).
fn tls_receiver(dir: &std::path::Path) -> Receiver {
    let cert = tls_dir().join("receiver.pem");
    let key = tls_dir().join("receiver.key");
    receiver(
        dir,
        "tls",
        &["--tls", cert.to_str().unwrap(), key.to_str().unwrap()],
    )
}

/// Wait until at least `n` posts arrived (hang guard: 30 s), yielding to
/// the notifier's tasks on this runtime meanwhile.
async fn wait_posts(receiver: &Receiver, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let posts = receiver.posts();
        if posts.len() >= n {
            return posts;
        }
        assert!(
            Instant::now() < deadline,
            "expected {n} posts, got {}: {posts:#?}\n{}",
            posts.len(),
            receiver.service().log_tail()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Unix time of an RFC 3339 UTC time.
fn unix(at: &str) -> i64 {
    time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
        .expect("RFC 3339")
        .unix_timestamp()
}

/// The portal over the lab's ZA route (LS, ZA, LS: foreign transit, a
/// violation of the home-only policy), judged by the real analysis.
fn transit(at: &str) -> TraceRecord {
    via_za("gov-portal", unix(at))
}

/// The portal over the domestic route.
fn domestic(at: &str) -> TraceRecord {
    domestic_route("gov-portal", unix(at))
}

static GOV_PORTAL: std::sync::LazyLock<PathKey> =
    std::sync::LazyLock::new(|| PathKey::whole("gov-portal"));

fn subject() -> Subject<'static> {
    Subject {
        key: &GOV_PORTAL,
        category: "government",
    }
}

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

/// The state files of a state directory in `dir` (the lock is let go at
/// once: each test has a folder of its own).
fn state_files(dir: &std::path::Path) -> StateFiles {
    StateDir::open(dir, SaveMetrics::default())
        .unwrap()
        .files()
        .clone()
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
    let plain = receiver(
        dir.path(),
        "plain",
        &["--secret", SECRET, "--status", "503,503"],
    );
    let tls = tls_receiver(dir.path());
    let mut am = webhook(
        format!("http://127.0.0.1:{}/hook", plain.port()),
        WebhookFormat::Alertmanager,
        "ops",
    );
    am.secret = Some(Secret::new(SECRET));
    let mut json = webhook(
        format!("https://localhost:{}/tw", tls.port()),
        WebhookFormat::Json,
        "archive",
    );
    json.ca = Some(ca("ca.pem"));
    let metrics = Metrics::new("test");
    let state = state_files(&dir.path().join("state"));
    let notifier = Notifier::start(&state, &settings(vec![am, json]), metrics.alerts()).unwrap();

    notifier.observe(subject(), &domestic("2026-01-01T00:00:00Z"));
    notifier.observe(subject(), &transit("2026-01-01T00:05:00Z"));
    notifier.observe(subject(), &transit("2026-01-01T00:10:00Z"));
    notifier.observe(subject(), &domestic("2026-01-01T00:15:00Z"));

    let posts = wait_posts(&plain, 4).await;
    let answered: Vec<i64> = posts
        .iter()
        .map(|p| p["answered"].as_i64().unwrap())
        .collect();
    assert_eq!(answered, [503, 503, 200, 200]);
    // The same firing notification three times (two refusals), then the resolved one.
    let ids = notification_ids(&posts);
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

    let posts = wait_posts(&tls, 2).await;
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
    notifier.stop(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn a_client_error_is_not_retried_and_the_next_notification_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = receiver(dir.path(), "r", &["--status", "400"]);
    let metrics = Metrics::new("test");
    let notifier = Notifier::start(
        &state_files(dir.path()),
        &settings(vec![webhook(
            format!("http://127.0.0.1:{}/", receiver.port()),
            WebhookFormat::Alertmanager,
            "r",
        )]),
        metrics.alerts(),
    )
    .unwrap();
    notifier.observe(subject(), &transit("2026-01-01T00:05:00Z"));
    notifier.observe(subject(), &domestic("2026-01-01T00:10:00Z"));
    let posts = wait_posts(&receiver, 2).await;
    assert_eq!(posts[0]["answered"], 400);
    assert_eq!(posts[0]["body"]["status"], "firing");
    assert_eq!(posts[1]["answered"], 200);
    assert_eq!(posts[1]["body"]["status"], "resolved");
    // Nothing more follows: the refused one is not sent again.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.posts().len(), 2);
    assert_eq!(
        metric(
            &metrics,
            "transitwatch_alert_notifications_total{result=\"rejected\",webhook=\"r\"}"
        ),
        1.0
    );
    notifier.stop(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn a_receiver_certificate_from_another_ca_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = tls_receiver(dir.path());
    let url = format!("https://localhost:{}/", receiver.port());
    let mut other = webhook(url.clone(), WebhookFormat::Json, "other-ca");
    other.ca = Some(ca("other-ca.pem"));
    let public_roots = webhook(
        format!("https://127.0.0.1:{}/", receiver.port()),
        WebhookFormat::Json,
        "public-roots",
    );
    let metrics = Metrics::new("test");
    let notifier = Notifier::start(
        &state_files(dir.path()),
        &settings(vec![other, public_roots]),
        metrics.alerts(),
    )
    .unwrap();
    notifier.observe(subject(), &transit("2026-01-01T00:05:00Z"));
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
    assert!(receiver.posts().is_empty());
    assert_eq!(notifier.pending()["other-ca"], 1);
    notifier.stop(Duration::from_secs(5)).await.unwrap();
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
    if !support::have_all(test, &["prometheus-alertmanager", "curl"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let reference = receiver(dir.path(), "alertmanager", &[]);
    let ours = receiver(dir.path(), "ours", &[]);
    let am_port = free_port();
    let cluster_port = free_port();
    let am_config = dir.path().join("alertmanager.yml");
    std::fs::write(
        &am_config,
        format!(
            "route:\n  receiver: hook\n  group_by: ['alertname']\n  group_wait: 0s\n  group_interval: 1s\n\
             receivers:\n  - name: hook\n    webhook_configs:\n      - url: 'http://127.0.0.1:{}/am'\n        send_resolved: true\n",
            reference.port()
        ),
    )
    .unwrap();
    let mut am = Command::new("prometheus-alertmanager");
    am.arg(format!("--config.file={}", am_config.display()))
        .arg(format!(
            "--storage.path={}",
            dir.path().join("am").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{am_port}"))
        .arg(format!("--cluster.listen-address=127.0.0.1:{cluster_port}"))
        .arg("--log.level=warn");
    let am = Service::spawn("prometheus-alertmanager", am, dir.path());
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
        assert!(
            Instant::now() < deadline,
            "alertmanager did not start\n{}",
            am.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let theirs = wait_posts(&reference, 1).await;

    let notifier = Notifier::start(
        &state_files(dir.path()),
        &settings(vec![webhook(
            format!("http://127.0.0.1:{}/ours", ours.port()),
            WebhookFormat::Alertmanager,
            "hook",
        )]),
        Metrics::new("t").alerts(),
    )
    .unwrap();
    notifier.observe(subject(), &transit("2026-01-01T00:05:00Z"));
    let mine = wait_posts(&ours, 1).await;
    notifier.stop(Duration::from_secs(5)).await.unwrap();

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

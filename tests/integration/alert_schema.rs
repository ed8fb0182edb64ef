//! The published `transitwatch.alert/1` schema (`schemas/alert.schema.json`)
//! holds for what the built-in notifier really posts, checked by Python's
//! `jsonschema`: the notifier (its own API, as `alert_webhook` drives it
//! without the lab) posts to webhook receivers on this host's loopback
//! (`support::webhook`), one per format, the `alertmanager` one being the
//! default format; every body they record is validated, with and without
//! `[alert] external_url`. The posts cover both statuses and both alert
//! names: a foreign transit firing, a changed finding (resolved with the
//! violation still there, and a PathPolicyViolation for a service in IE
//! firing), a return home, an IPv4 path with an unlocated hop that is
//! resolved by removing its target, and the PathPolicyViolation of a
//! domestic path whose `allowed_countries` leave out the home country
//! (class `domestic`, no foreign countries).
//!
//! The schema bites: real posts changed by one thing the notifier never
//! writes (an unknown top-level field, a `status` of `pending`, an alert
//! without `labels`, an unknown label, a firing alert with an end, ...)
//! are each refused, at the place that is wrong.

use crate::support;

use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};
use support::records::{domestic, hop, in_ie, lab_geo, record, via_za};
use support::webhook::{notification_ids, Receiver};
use transitwatch::alert::{Notifier, Subject};
use transitwatch::analysis::Policy;
use transitwatch::config::{AlertConfig, WebhookConfig, WebhookFormat};
use transitwatch::metrics::Metrics;
use transitwatch::model::{PathFamily, PathKey, TraceRecord};
use transitwatch::state_dir::{SaveMetrics, StateDir, StateFiles};

const SCHEMA: &str = "alert.schema.json";

/// Alertmanager's zero time: the `endsAt` of an alert still firing.
const NOT_ENDED: &str = "0001-01-01T00:00:00Z";

/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600;

/// What both receivers recorded: every post (path, headers, body).
struct Captured {
    alertmanager: Vec<Value>,
    json: Vec<Value>,
}

/// The state files of a state directory in `dir`.
fn state_files(dir: &Path) -> StateFiles {
    StateDir::open(dir, SaveMetrics::default())
        .unwrap()
        .files()
        .clone()
}

/// Wait until `receiver` has at least `n` posts (hang guard: 30 s),
/// yielding to the notifier's tasks meanwhile.
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

/// The IPv4 path of `mail` through ZA, with a responding hop no source
/// locates (its country and ASN are null in the `json` trace summary).
fn via_za_with_an_unlocated_hop(unix: i64) -> TraceRecord {
    record(
        "mail",
        "198.51.100.20",
        unix,
        vec![
            hop(1, &["198.18.1.2"], 3, 3, 0.05),
            hop(2, &["192.0.2.77"], 3, 3, 0.05),
            hop(3, &["198.18.4.2"], 3, 3, 0.06),
            hop(4, &["198.18.6.2"], 3, 3, 0.1),
            hop(5, &["198.51.100.20"], 3, 3, 0.12),
        ],
    )
}

/// The domestic route judged under `allowed_countries = ["ZA"]`: the home
/// country is not allowed, so a path at home breaks the policy.
fn domestic_outside_allowed(unix: i64) -> TraceRecord {
    let policy = Policy {
        home: Some("LS".parse().unwrap()),
        allowed: vec!["ZA".parse().unwrap()],
        ..Policy::default()
    };
    transitwatch::pipeline::judge(domestic("registry", unix).trace, &lab_geo(), None, &policy)
}

/// Drive a notifier with an `alertmanager` webhook (the default format)
/// and a `json` one through every kind of notification, and return what
/// the receivers got: 8 posts each.
async fn capture(dir: &Path, external_url: Option<&str>) -> Captured {
    let am = Receiver::local(dir, "am", "127.0.0.1:0", &[]);
    let own = Receiver::local(dir, "own", "127.0.0.1:0", &[]);
    let hook = |url: String, format, name: &str| WebhookConfig {
        url,
        format,
        name: name.into(),
        secret: None,
        ca: None,
    };
    assert_eq!(WebhookFormat::default(), WebhookFormat::Alertmanager);
    let settings = AlertConfig {
        webhooks: vec![
            hook(
                format!("http://127.0.0.1:{}/am", am.port()),
                WebhookFormat::default(),
                "ops",
            ),
            hook(
                format!("http://127.0.0.1:{}/own", own.port()),
                WebhookFormat::Json,
                "archive",
            ),
        ],
        retry_initial: Duration::from_millis(50),
        retry_max: Duration::from_millis(200),
        timeout: Duration::from_secs(5),
        external_url: external_url.map(String::from),
        ..AlertConfig::default()
    };
    let notifier = Notifier::start(
        &state_files(&dir.join("state")),
        &settings,
        Metrics::new("test").alerts(),
    )
    .unwrap();
    let portal = PathKey::whole("gov-portal");
    let mail = PathKey::of_family("mail", PathFamily::Ipv4);
    let registry = PathKey::whole("registry");
    let subject = |key| Subject {
        key,
        category: "government",
    };
    let at = |minutes: i64| T0 + 60 * minutes;
    // gov-portal: fires through ZA, changes to a service in IE (resolved
    // and fired), comes home (resolved).
    notifier.observe(subject(&portal), &domestic("gov-portal", at(0)));
    notifier.observe(subject(&portal), &via_za("gov-portal", at(5)));
    notifier.observe(subject(&portal), &in_ie("gov-portal", at(10)));
    notifier.observe(subject(&portal), &domestic("gov-portal", at(15)));
    // mail/ipv4: fires, then its target is removed from the configuration.
    notifier.observe(subject(&mail), &via_za_with_an_unlocated_hop(at(20)));
    notifier.retain(|key| key.target() != "mail");
    // registry: at home, but home is not allowed; then allowed again.
    notifier.observe(subject(&registry), &domestic_outside_allowed(at(25)));
    notifier.observe(subject(&registry), &domestic("registry", at(30)));
    let captured = Captured {
        alertmanager: wait_posts(&am, 8).await,
        json: wait_posts(&own, 8).await,
    };
    notifier.stop(Duration::from_secs(5)).await.unwrap();
    for posts in [&captured.alertmanager, &captured.json] {
        assert_eq!(posts.len(), 8, "{posts:#?}");
    }
    captured
}

/// The bodies of `posts`.
fn bodies(posts: &[Value]) -> Vec<&Value> {
    posts.iter().map(|p| &p["body"]).collect()
}

/// Every body is valid, and together they show what the notifier writes:
/// both statuses, both alert names, every label class, the confidence
/// annotation, the headers.
fn assert_posts_fit(captured: &Captured, external_url: Option<&str>) {
    for (format, posts) in [
        ("alertmanager", &captured.alertmanager),
        ("json", &captured.json),
    ] {
        for (i, body) in bodies(posts).into_iter().enumerate() {
            assert!(body.is_object(), "{format} post {i} is no JSON object");
            support::schema::assert_valid(SCHEMA, body);
        }
        for p in posts.iter() {
            assert_eq!(p["headers"]["content-type"], "application/json");
        }
    }
    let am = bodies(&captured.alertmanager);
    let own = bodies(&captured.json);
    // Both formats tell the same story in the same order.
    let story: Vec<(String, String, String)> = am
        .iter()
        .map(|b| {
            let alert = &b["alerts"][0];
            (
                alert["status"].as_str().unwrap().to_string(),
                alert["labels"]["alertname"].as_str().unwrap().to_string(),
                alert["labels"]["class"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let theirs: Vec<(String, String, String)> = own
        .iter()
        .map(|b| {
            (
                b["status"].as_str().unwrap().to_string(),
                b["alertname"].as_str().unwrap().to_string(),
                b["labels"]["class"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(story, theirs);
    let expected = [
        ("firing", "ForeignTransitDetected", "foreign_transit"),
        ("resolved", "ForeignTransitDetected", "foreign_transit"),
        ("firing", "PathPolicyViolation", "foreign_destination"),
        ("resolved", "PathPolicyViolation", "foreign_destination"),
        ("firing", "ForeignTransitDetected", "foreign_transit"),
        ("resolved", "ForeignTransitDetected", "foreign_transit"),
        ("firing", "PathPolicyViolation", "domestic"),
        ("resolved", "PathPolicyViolation", "domestic"),
    ];
    let expected: Vec<(String, String, String)> = expected
        .iter()
        .map(|(s, n, c)| (s.to_string(), n.to_string(), c.to_string()))
        .collect();
    assert_eq!(story, expected);
    // The header names the notification, as the json body's `id` does.
    assert_eq!(
        notification_ids(&captured.alertmanager),
        notification_ids(&captured.json)
    );
    for (p, b) in captured.json.iter().zip(&own) {
        assert_eq!(p["headers"]["x-transitwatch-notification-id"], b["id"]);
    }
    // Firing alerts have not ended; resolved ones have.
    for b in &am {
        let ended = b["alerts"][0]["endsAt"] != NOT_ENDED;
        assert_eq!(ended, b["status"] == "resolved", "{b:#}");
    }
    // A changed finding resolves with the violation still there; the
    // removed target resolves with its last (violating) trace.
    assert_eq!(own[1]["trace"]["violation"], true);
    assert_eq!(own[1]["trace"]["class"], "foreign_destination");
    assert_eq!(own[5]["trace"]["violation"], true);
    assert!(own[5]["annotations"]["summary"]
        .as_str()
        .unwrap()
        .contains("no longer monitored"));
    assert_eq!(own[5]["labels"]["path"], "mail/ipv4");
    // The unlocated hop has neither country nor AS.
    let hops = own[4]["trace"]["hops"].as_array().unwrap();
    assert!(
        hops.iter()
            .any(|h| h["country"].is_null() && h["asn"].is_null()),
        "{hops:#?}"
    );
    // At home but not allowed: no foreign country at all.
    assert_eq!(own[6]["labels"]["countries"], "");
    assert_eq!(own[6]["trace"]["class"], "domestic");
    // The lab's overrides say how sure they are.
    assert!(
        own.iter()
            .all(|b| b["annotations"].get("confidence").is_some()),
        "{own:#?}"
    );
    match external_url {
        Some(url) => {
            assert_eq!(am[0]["externalURL"], url);
            assert_eq!(
                am[0]["alerts"][0]["generatorURL"],
                format!(
                    "{}/api/v1/targets/gov-portal/latest",
                    url.trim_end_matches('/')
                )
            );
        }
        None => {
            for b in &am {
                assert_eq!(b["externalURL"], "");
                assert_eq!(b["alerts"][0]["generatorURL"], "");
            }
            for b in &own {
                assert_eq!(b["generator_url"], "");
            }
        }
    }
    // Everything once more in one pass, with the reason of any failure.
    let docs: Vec<Value> = am.into_iter().chain(own).cloned().collect();
    if let Some(errors) = support::schema::errors(SCHEMA, &docs) {
        for (d, e) in docs.iter().zip(errors) {
            assert!(e.is_none(), "{}\n{d:#}", e.unwrap());
        }
    }
}

#[tokio::test]
async fn posts_of_both_formats_fit_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let url = "http://tw.example:19968/";
    let captured = capture(dir.path(), Some(url)).await;
    assert_posts_fit(&captured, Some(url));
}

#[tokio::test]
async fn posts_without_an_external_url_fit_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let captured = capture(dir.path(), None).await;
    assert_posts_fit(&captured, None);
}

/// `doc` with the value at `pointer` replaced by `value`, or added or
/// removed (`None`).
fn changed(doc: &Value, pointer: &str, value: Option<Value>) -> Value {
    let mut doc = doc.clone();
    if let (Some(v), Some(there)) = (&value, doc.pointer_mut(pointer)) {
        *there = v.clone();
        return doc;
    }
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let object = doc
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("{parent} is no object"));
    match value {
        Some(v) => object.insert(key.to_string(), v),
        None => object.remove(key),
    };
    doc
}

#[tokio::test]
async fn the_schema_refuses_what_the_notifier_never_posts() {
    let dir = tempfile::tempdir().unwrap();
    let captured = capture(dir.path(), Some("http://tw.example:19968")).await;
    let am_firing = &captured.alertmanager[0]["body"];
    let am_resolved = &captured.alertmanager[1]["body"];
    let own_firing = &captured.json[0]["body"];
    let own_resolved = &captured.json[1]["body"];
    let text = |s: &str| Some(Value::from(s));
    let two_alerts = {
        let mut doc = am_firing.clone();
        let alert = doc["alerts"][0].clone();
        doc["alerts"].as_array_mut().unwrap().push(alert);
        doc
    };
    // Each change, and where the schema must say it is wrong.
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "alertmanager: an unknown top-level field",
            changed(am_firing, "/extra", Some(1.into())),
            "$",
        ),
        (
            "json: an unknown top-level field",
            changed(own_firing, "/extra", Some(1.into())),
            "$",
        ),
        (
            "alertmanager: a status of pending",
            changed(am_firing, "/status", text("pending")),
            "$.status",
        ),
        (
            "alertmanager: an alert's status of pending",
            changed(am_firing, "/alerts/0/status", text("pending")),
            "$.alerts[0].status",
        ),
        (
            "json: a status of pending",
            changed(own_firing, "/status", text("pending")),
            "$.status",
        ),
        (
            "alertmanager: an alert without labels",
            changed(am_firing, "/alerts/0/labels", None),
            "$.alerts[0]",
        ),
        (
            "json: an alert without labels",
            changed(own_firing, "/labels", None),
            "$",
        ),
        (
            "alertmanager: version 3",
            changed(am_firing, "/version", text("3")),
            "$.version",
        ),
        (
            "alertmanager: two alerts in one post",
            two_alerts,
            "$.alerts",
        ),
        (
            "alertmanager: no alert",
            changed(am_firing, "/alerts", Some(Value::Array(Vec::new()))),
            "$.alerts",
        ),
        (
            "alertmanager: a resolved post with a firing alert",
            changed(am_resolved, "/alerts/0/status", text("firing")),
            "$.alerts[0].status",
        ),
        (
            "alertmanager: a firing alert with an end",
            changed(am_firing, "/alerts/0/endsAt", text("2026-01-01T00:10:00Z")),
            "$.alerts[0].endsAt",
        ),
        (
            "json: a resolved alert without an end",
            changed(own_resolved, "/ends_at", text(NOT_ENDED)),
            "$.ends_at",
        ),
        (
            "alertmanager: an unknown label",
            changed(am_firing, "/alerts/0/labels/team", text("noc")),
            "$.alerts[0].labels",
        ),
        (
            "json: an unknown annotation",
            changed(own_firing, "/annotations/dashboard", text("x")),
            "$.annotations",
        ),
        (
            "alertmanager: a severity of warning",
            changed(am_firing, "/alerts/0/labels/severity", text("warning")),
            "$.alerts[0].labels.severity",
        ),
        (
            "json: an unknown alert name",
            changed(own_firing, "/alertname", text("TargetDown")),
            "$.alertname",
        ),
        (
            "alertmanager: a ForeignTransitDetected of class foreign_destination",
            changed(
                am_firing,
                "/alerts/0/labels/class",
                text("foreign_destination"),
            ),
            "$.alerts[0].labels.class",
        ),
        (
            "json: a label class of indeterminate",
            changed(own_firing, "/labels/class", text("indeterminate")),
            "$.labels.class",
        ),
        (
            "json: an unknown confidence",
            changed(own_firing, "/annotations/confidence", text("certain")),
            "$.annotations.confidence",
        ),
        (
            "json: no summary",
            changed(own_firing, "/annotations/summary", None),
            "$.annotations",
        ),
        (
            "alertmanager: a numeric label",
            changed(am_firing, "/commonLabels/target", Some(7.into())),
            "$.commonLabels.target",
        ),
        (
            "alertmanager: an upper-case fingerprint",
            changed(am_firing, "/alerts/0/fingerprint", text("175D4C8A49DF0696")),
            "$.alerts[0].fingerprint",
        ),
        (
            "alertmanager: a group label besides alertname and path",
            changed(am_firing, "/groupLabels/severity", text("critical")),
            "$.groupLabels",
        ),
        (
            "alertmanager: a generator URL without an external URL",
            changed(am_firing, "/externalURL", text("")),
            "$.alerts[0].generatorURL",
        ),
        (
            "alertmanager: a time with an offset",
            changed(
                am_firing,
                "/alerts/0/startsAt",
                text("2026-01-01T00:05:00+00:00"),
            ),
            "$.alerts[0].startsAt",
        ),
        (
            "json: an id of another status",
            changed(
                own_firing,
                "/id",
                Some(
                    own_firing["id"]
                        .as_str()
                        .unwrap()
                        .replace(":firing:", ":resolved:")
                        .into(),
                ),
            ),
            "$.id",
        ),
        (
            "json: an indeterminate trace",
            changed(own_firing, "/trace/class", text("indeterminate")),
            "$.trace.class",
        ),
        (
            "json: a firing alert of a path within the policy",
            changed(own_firing, "/trace/violation", Some(false.into())),
            "$.trace.violation",
        ),
        (
            "json: a lower-case hop country",
            changed(own_firing, "/trace/hops/0/country", text("ls")),
            "$.trace.hops[0].country",
        ),
        (
            "json: a hop without TTL",
            changed(own_firing, "/trace/hops/0/ttl", None),
            "$.trace.hops[0]",
        ),
        (
            "json: null for the receiver",
            changed(own_firing, "/receiver", Some(Value::Null)),
            "$.receiver",
        ),
        (
            "json: an alertmanager field",
            changed(own_firing, "/version", text("4")),
            "$",
        ),
    ];
    let mut docs: Vec<Value> = vec![
        am_firing.clone(),
        am_resolved.clone(),
        own_firing.clone(),
        own_resolved.clone(),
    ];
    docs.extend(cases.iter().map(|(_, d, _)| d.clone()));
    let Some(errors) = support::schema::errors(SCHEMA, &docs) else {
        return;
    };
    for (d, e) in docs.iter().zip(&errors).take(4) {
        assert!(e.is_none(), "an unchanged post is refused: {e:?}\n{d:#}");
    }
    for ((what, doc, at), e) in cases.iter().zip(&errors[4..]) {
        let Some(e) = e else {
            panic!("{what}: accepted\n{doc:#}");
        };
        eprintln!("{what}: refused: {e}");
        assert!(
            e.starts_with(&format!("{at}: ")),
            "{what}: refused at the wrong place (expected {at}): {e}"
        );
    }
}

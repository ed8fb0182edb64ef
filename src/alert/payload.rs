//! The bodies posted to webhooks.
//!
//! - `alertmanager`: the JSON object Alertmanager posts to its webhook
//!   receivers (`version` "4"), one alert per post, so receivers written
//!   for Alertmanager (chat bridges, ticketing hooks) work unchanged. The
//!   group is the alert itself: `groupLabels` are `alertname` and `path`,
//!   `commonLabels`/`commonAnnotations` its labels and annotations.
//! - `json`: transitwatch's own object, schema `transitwatch.alert/1`: the
//!   same alert fields in snake case plus a summary of the trace behind it
//!   (verdict, countries, responding hops).

use super::rules::Notification;
use crate::config::WebhookFormat;
use serde_json::{json, Value};

/// The schema name of the `json` format.
pub const ALERT_SCHEMA: &str = "transitwatch.alert/1";

/// Where a body goes and what points back at the daemon.
#[derive(Debug, Clone, Copy)]
pub struct Envelope<'a> {
    /// The webhook's name (Alertmanager's `receiver`).
    pub receiver: &'a str,
    /// `[alert] external_url`, or empty.
    pub external_url: &'a str,
}

/// The API address of the target's latest records, when the daemon's
/// external URL is known.
fn generator_url(n: &Notification, external_url: &str) -> String {
    if external_url.is_empty() {
        return String::new();
    }
    format!(
        "{}/api/v1/targets/{}/latest",
        external_url.trim_end_matches('/'),
        n.trace.target
    )
}

/// The body of `n` in `format`.
#[must_use]
pub fn body(format: WebhookFormat, n: &Notification, envelope: Envelope<'_>) -> Vec<u8> {
    let value = match format {
        WebhookFormat::Alertmanager => alertmanager(n, envelope),
        WebhookFormat::Json => own(n, envelope),
    };
    // Serialising a `Value` of strings and maps cannot fail.
    serde_json::to_vec(&value).unwrap_or_default()
}

fn alertmanager(n: &Notification, envelope: Envelope<'_>) -> Value {
    let labels = &n.alert.labels;
    let label = |k: &str| labels.get(k).map_or("", String::as_str);
    let group_key = format!(
        "{{}}:{{alertname={:?}, path={:?}}}",
        label("alertname"),
        label("path")
    );
    json!({
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": n.status.as_str(),
        "receiver": envelope.receiver,
        "groupLabels": {"alertname": label("alertname"), "path": label("path")},
        "commonLabels": labels,
        "commonAnnotations": n.alert.annotations,
        "externalURL": envelope.external_url,
        "alerts": [{
            "status": n.status.as_str(),
            "labels": labels,
            "annotations": n.alert.annotations,
            "startsAt": n.alert.starts_at,
            "endsAt": n.alert.ends_at,
            "generatorURL": generator_url(n, envelope.external_url),
            "fingerprint": n.alert.fingerprint,
        }],
    })
}

fn own(n: &Notification, envelope: Envelope<'_>) -> Value {
    json!({
        "schema": ALERT_SCHEMA,
        "id": n.id,
        "status": n.status.as_str(),
        "receiver": envelope.receiver,
        "alertname": n.alert.labels.get("alertname"),
        "labels": n.alert.labels,
        "annotations": n.alert.annotations,
        "starts_at": n.alert.starts_at,
        "ends_at": n.alert.ends_at,
        "fingerprint": n.alert.fingerprint,
        "generator_url": generator_url(n, envelope.external_url),
        "trace": n.trace,
    })
}

//! When an alert fires and when it resolves: pure transitions from one
//! path's verdicts to notifications.
//!
//! For every path key (`NAME`, or `NAME/ipv4` and `NAME/ipv6` when both
//! families are traced) the [`AlertBook`] holds at most one active alert.
//! Each new verdict is mapped to the alert the path *should* have:
//!
//! | verdict | alert |
//! |---|---|
//! | `foreign_transit` with a violation | `ForeignTransitDetected` |
//! | any other class with a violation (`foreign_destination`) | `PathPolicyViolation` |
//! | no violation (`domestic`, or a crossing the policy allows) | none |
//! | `indeterminate` | no evidence: the current state stays |
//!
//! A foreign country claimed with less confidence than the policy's
//! `min_confidence` is only suspected: it is no violation, so a path whose
//! only foreign claims are suspected fires nothing. Every firing alert says
//! how sure it is and why (the `confidence` annotation, and a sentence in
//! the description built from the strongest claim's reason).
//!
//! The alert names and severities are those of the Prometheus rules in
//! `config/prometheus/transitwatch-rules.yml`, so a receiver routes the
//! built-in notifier's alerts like those Alertmanager sends.
//!
//! An alert is identified by its name, path key and foreign countries; the
//! same identity on the next trace is no news, so repeated cycles notify
//! nothing. A different identity resolves the active alert and fires the new
//! one (a route that moves from South Africa to Mozambique is a new
//! finding); no alert any more resolves it. A trace that could not run and
//! an `indeterminate` verdict (a silent or unlocated path) are no evidence
//! either way and never fire or resolve anything, so an unreachable service
//! cannot flap an alert.

use crate::analysis::country_name;
use crate::model::{Confidence, CountryCode, PathKey, PathVerdict, TraceRecord, VerdictClass};
use crate::units::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Alert name of a national service reached through another country.
pub const FOREIGN_TRANSIT: &str = "ForeignTransitDetected";
/// Alert name of any other policy violation (a service answering from abroad).
pub const POLICY_VIOLATION: &str = "PathPolicyViolation";
/// Severity label of both alerts.
pub const SEVERITY: &str = "critical";
/// The `endsAt` Alertmanager sends for an alert that is still firing.
pub const NOT_ENDED: &str = "0001-01-01T00:00:00Z";

/// Whether an alert starts or ends with a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The alert starts.
    Firing,
    /// The alert ends.
    Resolved,
}

impl Status {
    /// The lower-case name used in payloads.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Firing => "firing",
            Self::Resolved => "resolved",
        }
    }
}

/// One alert as Alertmanager describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// Identity and routing labels: `alertname`, `severity`, `target`,
    /// `path`, `category`, `class`, `countries`, `vantage`.
    pub labels: BTreeMap<String, String>,
    /// Plain-language `summary` and `description`, and a `runbook`.
    pub annotations: BTreeMap<String, String>,
    /// RFC 3339 start of the trace that showed the problem first.
    pub starts_at: String,
    /// RFC 3339 start of the trace that showed it gone; [`NOT_ENDED`] while
    /// firing.
    pub ends_at: String,
    /// 16 hex digits derived from the identity labels; equal for the same
    /// alert in its firing and resolved notification.
    pub fingerprint: String,
}

/// A short account of the trace behind a notification (the `json` format
/// carries it; hops are the responding ones only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceSummary {
    /// Configured target name.
    pub target: String,
    /// Host as configured.
    pub host: String,
    /// Address traced (`None` when the record does not know it).
    pub addr: Option<String>,
    /// Vantage point name.
    pub vantage: String,
    /// Probe protocol.
    pub protocol: String,
    /// Start of the trace, RFC 3339.
    pub started_at: String,
    /// Whether the destination answered.
    pub reached: bool,
    /// The verdict class.
    pub class: VerdictClass,
    /// Whether the path breaks the target's policy.
    pub violation: bool,
    /// Countries on the path, in order.
    pub countries: Vec<CountryCode>,
    /// Countries outside home.
    pub foreign_countries: Vec<CountryCode>,
    /// Origin ASNs of foreign hops.
    pub foreign_asns: Vec<u32>,
    /// The route's identity.
    pub path_id: String,
    /// The verdict's plain-language sentence.
    pub explanation: String,
    /// Responding hops: TTL, address, country and ASN when known.
    pub hops: Vec<HopSummary>,
}

/// One responding hop of a [`TraceSummary`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HopSummary {
    /// The probe TTL.
    pub ttl: u8,
    /// The responding address.
    pub addr: String,
    /// Its country, when located.
    pub country: Option<CountryCode>,
    /// Its origin AS, when known.
    pub asn: Option<u32>,
}

impl TraceSummary {
    /// Summarise a record.
    #[must_use]
    pub fn of(record: &TraceRecord) -> Self {
        let t = &record.trace;
        let v = &record.verdict;
        Self {
            target: t.target.name.clone(),
            host: t.target.host.clone(),
            addr: t.target.addr.map(|a| a.to_string()),
            vantage: t.vantage.name.clone(),
            protocol: t.protocol.as_str().to_string(),
            started_at: t.started_at.to_string(),
            reached: t.reached,
            class: v.class,
            violation: v.violation,
            countries: v.countries.clone(),
            foreign_countries: v.foreign_countries.clone(),
            foreign_asns: v.foreign_asns.clone(),
            path_id: v.path_id.clone(),
            explanation: v.explanation.clone(),
            hops: t
                .hops
                .iter()
                .filter_map(|h| {
                    h.addr.map(|addr| HopSummary {
                        ttl: h.ttl,
                        addr: addr.to_string(),
                        country: h.geo.country,
                        asn: h.geo.asn,
                    })
                })
                .collect(),
        }
    }
}

/// One notification to send: an alert starting or ending, and the trace
/// that showed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Unique and stable: `FINGERPRINT:STATUS:STARTS_AT`. Sent as the
    /// `X-Transitwatch-Notification-Id` header so a receiver can drop a
    /// repeat.
    pub id: String,
    /// Firing or resolved.
    pub status: Status,
    /// The alert.
    pub alert: Alert,
    /// The trace that caused the transition (for a path removed from the
    /// configuration, its last trace).
    pub trace: TraceSummary,
    /// Unix seconds when the notification was made (for `max_age`).
    pub created_unix: u64,
}

/// What the labels say besides the verdict: where the path belongs.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The path key.
    pub key: &'a PathKey,
    /// The target's category.
    pub category: &'a str,
}

/// Active alerts per path key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertBook {
    active: BTreeMap<String, ActiveAlert>,
}

/// An alert that fired and has not resolved, with the trace that fired it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ActiveAlert {
    alert: Alert,
    trace: TraceSummary,
}

/// The alert a verdict calls for: its name and foreign countries.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Wanted {
    alertname: &'static str,
    countries: String,
}

/// What one record tells the book.
enum Evidence {
    /// The record says nothing (indeterminate).
    Nothing,
    /// The path should have this alert, or none.
    Wants(Option<Wanted>),
}

fn evidence(record: &TraceRecord) -> Evidence {
    let v = &record.verdict;
    match (v.class, v.violation) {
        (VerdictClass::Indeterminate, _) => Evidence::Nothing,
        (_, false) => Evidence::Wants(None),
        (class, true) => Evidence::Wants(Some(Wanted {
            alertname: if class == VerdictClass::ForeignTransit {
                FOREIGN_TRANSIT
            } else {
                POLICY_VIOLATION
            },
            countries: join_codes(&v.foreign_countries),
        })),
    }
}

/// How sure the verdict is, in plain words, and why: "Confidence: medium
/// (one strong source says so): hop 2's name says Johannesburg and it
/// answers 6 ms further away than hop 1." Empty for a verdict without a
/// confidence (records written before it was recorded).
fn how_sure(v: &PathVerdict) -> String {
    let Some(level) = v.confidence else {
        return String::new();
    };
    let meaning = match level {
        Confidence::High => "two independent kinds of evidence agree, or the operator says so",
        Confidence::Medium => {
            "one strong source says so, or a database confirmed by the round-trip time"
        }
        Confidence::Low => "a single database says so, nothing confirms it",
    };
    let mut s = format!(" Confidence: {level} ({meaning})");
    let strongest = v
        .claims
        .iter()
        .filter(|c| !c.suspected)
        .max_by_key(|c| (c.confidence, std::cmp::Reverse(c.ttls.first().copied())));
    if let Some(claim) = strongest {
        let why = claim
            .reason
            .split("; confidence")
            .next()
            .unwrap_or_default();
        s.push_str(&format!(": {why}"));
    }
    s.push('.');
    let suspected: Vec<String> = v
        .claims
        .iter()
        .filter(|c| c.suspected)
        .map(|c| format!("{} ({})", country_name(c.country), c.confidence))
        .collect();
    if !suspected.is_empty() {
        s.push_str(&format!(
            " Suspected but too uncertain to count: {}.",
            suspected.join(", ")
        ));
    }
    s
}

fn join_codes(codes: &[CountryCode]) -> String {
    codes
        .iter()
        .map(CountryCode::as_str)
        .collect::<Vec<_>>()
        .join(",")
}

fn country_names(codes: &[CountryCode]) -> String {
    let names: Vec<&str> = codes.iter().map(|c| country_name(*c)).collect();
    match names.as_slice() {
        [] => "another country".to_string(),
        [one] => (*one).to_string(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

impl AlertBook {
    /// Number of active alerts.
    #[must_use]
    pub fn active(&self) -> usize {
        self.active.len()
    }

    /// Whether `key` has an active alert, and its name.
    #[must_use]
    pub fn alertname(&self, key: &PathKey) -> Option<&str> {
        self.active
            .get(&key.to_string())
            .and_then(|a| a.alert.labels.get("alertname"))
            .map(String::as_str)
    }

    /// A new record of a path: the notifications it causes (none, a firing,
    /// a resolved, or a resolved followed by a firing), stamped with
    /// `now_unix`.
    pub fn observe(
        &mut self,
        subject: Subject<'_>,
        record: &TraceRecord,
        now_unix: u64,
    ) -> Vec<Notification> {
        let Evidence::Wants(wanted) = evidence(record) else {
            return Vec::new();
        };
        let key = subject.key.to_string();
        let current = self.active.get(&key).map(|a| Wanted {
            alertname: if a.alert.labels.get("alertname").map(String::as_str)
                == Some(FOREIGN_TRANSIT)
            {
                FOREIGN_TRANSIT
            } else {
                POLICY_VIOLATION
            },
            countries: a.alert.labels.get("countries").cloned().unwrap_or_default(),
        });
        if current == wanted {
            return Vec::new();
        }
        let mut out = Vec::new();
        if let Some(active) = self.active.remove(&key) {
            out.push(resolved(active, record, now_unix));
        }
        if let Some(wanted) = wanted {
            let alert = firing(subject, &wanted, record);
            let trace = TraceSummary::of(record);
            out.push(notification(
                Status::Firing,
                alert.clone(),
                trace.clone(),
                now_unix,
            ));
            self.active.insert(key, ActiveAlert { alert, trace });
        }
        out
    }

    /// Resolve the alerts of paths `keep` rejects (targets a reload or a
    /// new configuration removed), ended at `now`.
    pub fn retain(&mut self, keep: impl Fn(&PathKey) -> bool, now: Timestamp) -> Vec<Notification> {
        let now_unix = u64::try_from(now.unix()).unwrap_or(0);
        // A saved key that is no path key belongs to no configured target.
        let gone: Vec<String> = self
            .active
            .keys()
            .filter(|k| !k.parse().is_ok_and(|k| keep(&k)))
            .cloned()
            .collect();
        gone.into_iter()
            .filter_map(|key| self.active.remove(&key))
            .map(|mut active| {
                let target = active.trace.target.clone();
                let ann = &mut active.alert.annotations;
                ann.insert("summary".into(), format!("{target} is no longer monitored"));
                ann.insert(
                    "description".into(),
                    format!(
                        "The path {} was removed from transitwatch's configuration, so this alert \
                         ends without new evidence. The last trace before the removal said: {}",
                        active.alert.labels.get("path").map_or("", String::as_str),
                        active.trace.explanation
                    ),
                );
                active.alert.ends_at = now.to_string();
                let trace = active.trace.clone();
                notification(Status::Resolved, active.alert, trace, now_unix)
            })
            .collect()
    }
}

fn fingerprint(labels: &BTreeMap<String, String>) -> String {
    let mut h = Sha256::new();
    for key in ["alertname", "path", "countries", "vantage"] {
        h.update(key.as_bytes());
        h.update([0]);
        h.update(labels.get(key).map_or("", String::as_str).as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..8])
}

fn notification(status: Status, alert: Alert, trace: TraceSummary, now_unix: u64) -> Notification {
    Notification {
        id: format!(
            "{}:{}:{}",
            alert.fingerprint,
            status.as_str(),
            alert.starts_at
        ),
        status,
        alert,
        trace,
        created_unix: now_unix,
    }
}

fn firing(subject: Subject<'_>, wanted: &Wanted, record: &TraceRecord) -> Alert {
    let t = &record.trace;
    let v = &record.verdict;
    let target = &t.target.name;
    let labels: BTreeMap<String, String> = [
        ("alertname", wanted.alertname.to_string()),
        ("severity", SEVERITY.to_string()),
        ("target", target.clone()),
        ("path", subject.key.to_string()),
        ("category", subject.category.to_string()),
        ("class", v.class.as_str().to_string()),
        ("countries", wanted.countries.clone()),
        ("vantage", t.vantage.name.clone()),
    ]
    .into_iter()
    .map(|(k, val)| (k.to_string(), val))
    .collect();
    let home = t.vantage.country.map_or_else(
        || "the home country".to_string(),
        |c| country_name(c).to_string(),
    );
    let foreign = country_names(&v.foreign_countries);
    let path = join_codes(&v.countries).replace(',', " → ");
    let (summary, description) = if wanted.alertname == FOREIGN_TRANSIT {
        (
            format!("{target} is reached through {foreign}"),
            format!(
                "The national service {target} ({host}) answers from inside {home}, but traffic \
                 to it from the vantage point {vantage} crosses {foreign} on the way, outside \
                 the countries its policy allows. Countries on the path, in order: {path}. \
                 Evidence: {why}.{sure}",
                host = t.target.host,
                vantage = t.vantage.name,
                why = v.explanation.trim_end_matches('.'),
                sure = how_sure(v),
            ),
        )
    } else if v.foreign_countries.is_empty() {
        // The path stays home, and home is not among the countries the
        // target's policy allows (`allowed_countries` leaves it out).
        (
            format!("{target} is reached only through {home}, which its policy does not allow"),
            format!(
                "The path from the vantage point {vantage} to the national service {target} \
                 ({host}) stays in {home}, which is not among the countries its policy \
                 allows (`allowed_countries`). Countries on the path, in order: {path}. \
                 Evidence: {why}.{sure}",
                host = t.target.host,
                vantage = t.vantage.name,
                why = v.explanation.trim_end_matches('.'),
                sure = how_sure(v),
            ),
        )
    } else {
        (
            format!("{target} leaves the allowed countries"),
            format!(
                "The path from the vantage point {vantage} to the national service {target} \
                 ({host}) touches {foreign}, outside the countries its policy allows; the \
                 service may be hosted or answered from abroad. Countries on the path, in \
                 order: {path}. Evidence: {why}.{sure}",
                host = t.target.host,
                vantage = t.vantage.name,
                why = v.explanation.trim_end_matches('.'),
                sure = how_sure(v),
            ),
        )
    };
    let mut annotations: BTreeMap<String, String> = [
        ("summary", summary),
        ("description", description),
        (
            "runbook",
            format!(
                "GET /api/v1/targets/{target}/latest on the transitwatch daemon for the hop \
                 list; ask the operators of the foreign hops' networks (their ASNs are in the \
                 description) why the route leaves the country."
            ),
        ),
    ]
    .into_iter()
    .map(|(k, val)| (k.to_string(), val))
    .collect();
    if let Some(level) = v.confidence {
        annotations.insert("confidence".into(), level.as_str().to_string());
    }
    let fingerprint = fingerprint(&labels);
    Alert {
        labels,
        annotations,
        starts_at: t.started_at.to_string(),
        ends_at: NOT_ENDED.to_string(),
        fingerprint,
    }
}

/// The resolved notification of `active`, ended by `record`.
fn resolved(mut active: ActiveAlert, record: &TraceRecord, now_unix: u64) -> Notification {
    let t = &record.trace;
    let v = &record.verdict;
    let target = &t.target.name;
    let was = active
        .alert
        .annotations
        .get("summary")
        .cloned()
        .unwrap_or_default();
    let ann = &mut active.alert.annotations;
    ann.insert(
        "summary".into(),
        if v.violation {
            format!("{target}: the previous finding changed ({was})")
        } else {
            format!("{target} is back within the allowed countries")
        },
    );
    let path = join_codes(&v.countries).replace(',', " → ");
    ann.insert(
        "description".into(),
        format!(
            "Resolved: \"{was}\" no longer holds. The trace of {started} from {vantage} \
             found: {why}. Countries on the path, in order: {path}.",
            started = t.started_at,
            vantage = t.vantage.name,
            why = v.explanation.trim_end_matches('.'),
        ),
    );
    active.alert.ends_at = t.started_at.to_string();
    notification(
        Status::Resolved,
        active.alert,
        TraceSummary::of(record),
        now_unix,
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::{
        GeoSource, Hop, HopGeo, PathVerdict, Protocol, TargetRef, Trace, VantageRef,
    };

    fn code(s: &str) -> CountryCode {
        s.parse().unwrap()
    }

    /// The time of a test label: `t7` is 7 s after the epoch, `f7` 1007 s
    /// and `r7` 2007 s.
    pub(crate) fn stamp(label: &str) -> Timestamp {
        let offset = match label.as_bytes()[0] {
            b'f' => 1000,
            b'r' => 2000,
            _ => 0,
        };
        Timestamp::from_unix(offset + label[1..].parse::<i64>().unwrap()).unwrap()
    }

    pub(crate) fn record(
        class: VerdictClass,
        violation: bool,
        via: &[&str],
        at: &str,
    ) -> TraceRecord {
        let countries: Vec<CountryCode> = via.iter().map(|c| code(c)).collect();
        let foreign: Vec<CountryCode> = countries
            .iter()
            .copied()
            .filter(|c| c.as_str() != "LS")
            .fold(Vec::new(), |mut v, c| {
                if !v.contains(&c) {
                    v.push(c);
                }
                v
            });
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
                    source: GeoSource::Override,
                    ..HopGeo::default()
                },
                hostname: None,
                mpls: Vec::new(),
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
                    country: Some(code("LS")),
                },
                protocol: Protocol::Icmp,
                port: None,
                started_at: stamp(at),
                reached: true,
                hops,
            },
            PathVerdict {
                class,
                countries,
                foreign_countries: foreign,
                foreign_asns: vec![64510],
                violation,
                path_id: "p".into(),
                explanation:
                    "gov-portal (LS) is reached via ZA: hops 2-3 are located in South Africa."
                        .into(),
                suspect_countries: vec![],
                anomalies: vec![],
                claims: Vec::new(),
                confidence: None,
                exchanges: Vec::new(),
            },
        )
    }

    static GOV_PORTAL: std::sync::LazyLock<PathKey> =
        std::sync::LazyLock::new(|| PathKey::whole("gov-portal"));
    static GOV_PORTAL_V6: std::sync::LazyLock<PathKey> = std::sync::LazyLock::new(|| {
        PathKey::of_family("gov-portal", crate::model::PathFamily::Ipv6)
    });

    pub(crate) fn subject() -> Subject<'static> {
        Subject {
            key: &GOV_PORTAL,
            category: "government",
        }
    }

    fn domestic(at: &str) -> TraceRecord {
        record(VerdictClass::Domestic, false, &["LS"], at)
    }

    fn transit(at: &str) -> TraceRecord {
        record(VerdictClass::ForeignTransit, true, &["LS", "ZA", "LS"], at)
    }

    #[test]
    fn a_domestic_path_never_notifies() {
        let mut book = AlertBook::default();
        for i in 0..5 {
            assert!(book
                .observe(subject(), &domestic(&format!("t{i}")), 0)
                .is_empty());
        }
        assert_eq!(book.active(), 0);
    }

    #[test]
    fn a_violation_fires_once_and_resolves_once() {
        let mut book = AlertBook::default();
        book.observe(subject(), &domestic("t0"), 0);
        let fired = book.observe(subject(), &transit("t1"), 1);
        assert_eq!(fired.len(), 1);
        let n = &fired[0];
        assert_eq!(n.status, Status::Firing);
        assert_eq!(n.alert.labels["alertname"], FOREIGN_TRANSIT);
        assert_eq!(n.alert.labels["countries"], "ZA");
        assert_eq!(n.alert.labels["class"], "foreign_transit");
        assert_eq!(n.alert.labels["category"], "government");
        assert_eq!(n.alert.labels["severity"], "critical");
        assert_eq!(n.alert.starts_at, stamp("t1").to_string());
        assert_eq!(n.alert.ends_at, NOT_ENDED);
        assert_eq!(n.alert.fingerprint.len(), 16);
        assert!(n.alert.annotations["summary"].contains("South Africa"));
        assert!(n.alert.annotations["description"].contains("LS → ZA → LS"));
        // Repeated cycles of the same finding say nothing.
        for i in 2..6 {
            assert!(book
                .observe(subject(), &transit(&format!("t{i}")), 2)
                .is_empty());
        }
        let back = book.observe(subject(), &domestic("t9"), 9);
        assert_eq!(back.len(), 1);
        let r = &back[0];
        assert_eq!(r.status, Status::Resolved);
        assert_eq!(r.alert.fingerprint, n.alert.fingerprint);
        assert_eq!(r.alert.starts_at, stamp("t1").to_string());
        assert_eq!(r.alert.ends_at, stamp("t9").to_string());
        assert_ne!(r.id, n.id);
        assert!(r.alert.annotations["summary"].contains("back within"));
        assert!(book.observe(subject(), &domestic("t10"), 10).is_empty());
        assert_eq!(book.active(), 0);
    }

    #[test]
    fn a_home_path_outside_a_policy_without_home_says_it_stays_home() {
        let mut book = AlertBook::default();
        let home = record(VerdictClass::Domestic, true, &["LS", "LS"], "t0");
        let fired = book.observe(subject(), &home, 0);
        assert_eq!(fired.len(), 1);
        let a = &fired[0].alert;
        assert_eq!(
            a.annotations["summary"],
            "gov-portal is reached only through Lesotho, which its policy does not allow"
        );
        let d = &a.annotations["description"];
        assert!(
            d.contains("stays in Lesotho, which is not among the countries its policy allows"),
            "{d}"
        );
        assert!(
            !d.contains("another country") && !d.contains("abroad"),
            "{d}"
        );
    }

    #[test]
    fn indeterminate_verdicts_neither_fire_nor_resolve() {
        let mut book = AlertBook::default();
        let silent = record(VerdictClass::Indeterminate, true, &["ZA"], "t0");
        assert!(book.observe(subject(), &silent, 0).is_empty());
        book.observe(subject(), &transit("t1"), 1);
        let silent = record(VerdictClass::Indeterminate, false, &[], "t2");
        assert!(book.observe(subject(), &silent, 2).is_empty());
        assert_eq!(book.alertname(&GOV_PORTAL), Some(FOREIGN_TRANSIT));
    }

    #[test]
    fn a_new_alertname_or_country_resolves_the_old_alert_and_fires_the_new() {
        let mut book = AlertBook::default();
        book.observe(subject(), &transit("t1"), 1);
        let abroad = record(VerdictClass::ForeignDestination, true, &["LS", "ZA"], "t2");
        let out = book.observe(subject(), &abroad, 2);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].status, Status::Resolved);
        assert_eq!(out[0].alert.labels["alertname"], FOREIGN_TRANSIT);
        assert_eq!(out[1].status, Status::Firing);
        assert_eq!(out[1].alert.labels["alertname"], POLICY_VIOLATION);
        assert_ne!(out[0].alert.fingerprint, out[1].alert.fingerprint);
        // Same alert name, another country: a new finding.
        let mz = record(VerdictClass::ForeignDestination, true, &["LS", "MZ"], "t3");
        let out = book.observe(subject(), &mz, 3);
        assert_eq!(
            out.iter().map(|n| n.status).collect::<Vec<_>>(),
            [Status::Resolved, Status::Firing]
        );
        assert_eq!(out[1].alert.labels["countries"], "MZ");
    }

    #[test]
    fn an_allowed_crossing_is_no_alert_and_resolves_one() {
        let mut book = AlertBook::default();
        book.observe(subject(), &transit("t1"), 1);
        let allowed = record(
            VerdictClass::ForeignTransit,
            false,
            &["LS", "ZA", "LS"],
            "t2",
        );
        let out = book.observe(subject(), &allowed, 2);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].status, Status::Resolved);
        assert!(book.observe(subject(), &allowed, 3).is_empty());
    }

    #[test]
    fn removed_paths_resolve_and_fingerprints_are_stable() {
        let mut a = AlertBook::default();
        let mut b = AlertBook::default();
        let fa = a.observe(subject(), &transit("t1"), 1);
        let fb = b.observe(subject(), &transit("t7"), 7);
        assert_eq!(fa[0].alert.fingerprint, fb[0].alert.fingerprint);
        let other = Subject {
            key: &GOV_PORTAL_V6,
            ..subject()
        };
        let f6 = a.observe(other, &transit("t1"), 1);
        assert_ne!(fa[0].alert.fingerprint, f6[0].alert.fingerprint);
        let out = a.retain(|k| k.to_string() == "gov-portal", stamp("t8"));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].status, Status::Resolved);
        assert_eq!(out[0].alert.labels["path"], "gov-portal/ipv6");
        assert_eq!(out[0].alert.ends_at, stamp("t8").to_string());
        assert!(out[0].alert.annotations["summary"].contains("no longer monitored"));
        assert_eq!(a.active(), 1);
    }

    #[test]
    fn a_firing_alert_says_how_sure_it_is_and_why() {
        let mut record = transit("t1");
        record.verdict.confidence = Some(Confidence::Medium);
        record.verdict.claims = vec![
            crate::model::CountryClaim {
                country: code("ZA"),
                confidence: Confidence::Medium,
                ttls: vec![2, 3],
                suspected: false,
                reason: "hop 2's name says Johannesburg and it answers 4 ms further away than \
                         hop 1; confidence medium"
                    .into(),
            },
            crate::model::CountryClaim {
                country: code("MZ"),
                confidence: Confidence::Low,
                ttls: vec![4],
                suspected: true,
                reason: "GeoLite2-City places hop 4 in Maputo; confidence low".into(),
            },
        ];
        let mut book = AlertBook::default();
        let fired = book.observe(subject(), &record, 1);
        let a = &fired[0].alert;
        assert_eq!(a.annotations["confidence"], "medium");
        let d = &a.annotations["description"];
        assert!(
            d.contains(
                "Confidence: medium (one strong source says so, or a database confirmed by the \
                 round-trip time): hop 2's name says Johannesburg and it answers 4 ms further \
                 away than hop 1."
            ),
            "{d}"
        );
        assert!(
            d.contains("Suspected but too uncertain to count: Mozambique (low)."),
            "{d}"
        );
    }

    #[test]
    fn a_path_with_only_suspected_claims_fires_nothing() {
        use crate::analysis::{analyze, Policy};
        let mut record = transit("t1");
        for hop in &mut record.trace.hops {
            hop.geo.confidence = Some(Confidence::Low);
        }
        // The last hop is the destination, located at home.
        record.trace.hops[2].addr = record.trace.target.addr;
        let policy = Policy {
            home: Some(code("LS")),
            min_confidence: Confidence::Medium,
            ..Policy::default()
        };
        record.verdict = analyze(&record.trace, &policy);
        assert_eq!(record.verdict.class, VerdictClass::Domestic);
        assert!(!record.verdict.violation);
        assert!(record.verdict.claims.iter().all(|c| c.suspected));
        assert!(!record.verdict.claims.is_empty());
        let mut book = AlertBook::default();
        assert!(book.observe(subject(), &record, 1).is_empty());
        // The same path counted at the default threshold fires.
        record.verdict = analyze(
            &record.trace,
            &Policy {
                min_confidence: Confidence::Low,
                ..policy
            },
        );
        let fired = book.observe(subject(), &record, 2);
        assert_eq!(fired[0].alert.labels["alertname"], FOREIGN_TRANSIT);
        assert_eq!(fired[0].alert.annotations["confidence"], "low");
    }

    #[test]
    fn the_book_survives_a_json_round_trip() {
        let mut book = AlertBook::default();
        book.observe(subject(), &transit("t1"), 1);
        let text = serde_json::to_string(&book).unwrap();
        let mut back: AlertBook = serde_json::from_str(&text).unwrap();
        assert_eq!(back, book);
        assert!(back.observe(subject(), &transit("t2"), 2).is_empty());
    }
}

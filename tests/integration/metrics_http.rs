//! The metrics registry and the HTTP endpoint, from the outside.
//!
//! Metrics: hand-built trace records of four targets (domestic, foreign
//! transit via ZA, foreign destination in IE, indeterminate) are observed
//! and the rendered exposition is parsed back; exact series values are
//! asserted, then a re-observation and a reload (`retain_targets`) must
//! replace and remove series. `promtool check metrics` lints the exposition;
//! without promtool the lint prints a `SKIPPED` line, unless
//! `TRANSITWATCH_REQUIRE_LAB=1`, where a missing promtool fails.
//!
//! HTTP: a fake `StateView` is served on 127.0.0.1:0 and every route is asked
//! with a small HTTP/1.1 client over `TcpStream` (`/api/v1/whatif` over the
//! fake's four latest records, and its bad parameters); the waiting room (a new
//! client closes the oldest idle connection) and the shutdown future are
//! exercised too (tests/integration/slow_clients.rs loads the endpoint).

use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use transitwatch::geo::{DatabaseInfo, Schema};
use transitwatch::http::{serve, StateView, ViewError, WAITING_SLOTS};
use transitwatch::metrics::{Metrics, MetricsError, PerHop, DESTINATION_RTT_BUCKETS};
use transitwatch::model::{
    Confidence, CountryClaim, CountryCode, GeoSource, Hop, HopGeo, PathKey, PathVerdict, Protocol,
    RttMs, TargetRef, Trace, TraceRecord, VantageRef, VerdictClass,
};

// ---------------------------------------------------------------- records

fn cc(s: &str) -> CountryCode {
    s.parse().unwrap()
}

/// A responding hop; `geo` is `(country, asn, coordinates)`.
fn hop(
    ttl: u8,
    addr: &str,
    country: Option<&str>,
    asn: Option<u32>,
    at: Option<(f64, f64)>,
) -> Hop {
    let addr = addr.parse().unwrap();
    let best = f64::from(ttl) * 2.0;
    Hop {
        ttl,
        addr: Some(addr),
        addrs: vec![addr],
        sent: 3,
        received: 3,
        rtt_ms: Some(RttMs {
            best,
            avg: best + 0.5,
            worst: best + 1.0,
        }),
        geo: HopGeo {
            country: country.map(cc),
            asn,
            lat: at.map(|(lat, _)| lat),
            lon: at.map(|(_, lon)| lon),
            source: if country.is_some() || asn.is_some() {
                GeoSource::Mmdb
            } else {
                GeoSource::None
            },
            plausible: country.map(|_| true),
            ..HopGeo::default()
        },
        hostname: None,
        mpls: Vec::new(),
    }
}

fn silent(ttl: u8) -> Hop {
    Hop {
        ttl,
        addr: None,
        addrs: vec![],
        sent: 3,
        received: 0,
        rtt_ms: None,
        geo: HopGeo::default(),
        hostname: None,
        mpls: Vec::new(),
    }
}

fn record(
    name: &str,
    dest: &str,
    hops: Vec<Hop>,
    class: VerdictClass,
    countries: &[&str],
    foreign: &[&str],
    reached: bool,
) -> TraceRecord {
    TraceRecord::new(
        Trace {
            target: TargetRef {
                name: name.to_string(),
                host: format!("{name}.example.ls"),
                addr: Some(dest.parse().unwrap()),
            },
            vantage: VantageRef {
                name: "maseru-1".to_string(),
                country: Some(cc("LS")),
            },
            protocol: Protocol::Icmp,
            port: None,
            started_at: "2026-11-26T12:00:00Z".parse().unwrap(),
            reached,
            hops,
        },
        PathVerdict {
            class,
            countries: countries.iter().map(|c| cc(c)).collect(),
            foreign_countries: foreign.iter().map(|c| cc(c)).collect(),
            foreign_asns: vec![],
            violation: !foreign.is_empty(),
            path_id: format!("{name}-path"),
            explanation: String::new(),
            suspect_countries: vec![],
            anomalies: vec![],
            claims: Vec::new(),
            confidence: None,
            exchanges: Vec::new(),
        },
    )
}

const MASERU: (f64, f64) = (-29.31, 27.48);
const JOBURG: (f64, f64) = (-26.2, 28.04);
const DUBLIN: (f64, f64) = (53.35, -6.26);

fn domestic() -> TraceRecord {
    record(
        "gov-portal",
        "198.51.100.10",
        vec![
            hop(1, "198.18.1.1", Some("LS"), Some(64500), Some(MASERU)),
            hop(2, "198.51.100.10", Some("LS"), Some(64500), None),
        ],
        VerdictClass::Domestic,
        &["LS"],
        &[],
        true,
    )
}

/// LS → ZA → ZA → LS: two located hops in ZA.
fn via_za(name: &str, dest: &str) -> TraceRecord {
    record(
        name,
        dest,
        vec![
            hop(1, "198.18.1.1", Some("LS"), Some(64500), Some(MASERU)),
            hop(2, "198.18.2.1", Some("ZA"), Some(64510), Some(JOBURG)),
            hop(3, "198.18.2.2", Some("ZA"), Some(64510), None),
            silent(4),
            hop(5, dest, Some("LS"), Some(64501), None),
        ],
        VerdictClass::ForeignTransit,
        &["LS", "ZA", "LS"],
        &["ZA"],
        true,
    )
}

fn in_ie() -> TraceRecord {
    record(
        "tax",
        "203.0.113.7",
        vec![
            hop(1, "198.18.1.1", Some("LS"), Some(64500), Some(MASERU)),
            hop(2, "198.18.9.1", None, None, None),
            hop(3, "203.0.113.1", Some("IE"), Some(64520), Some(DUBLIN)),
            hop(4, "203.0.113.7", Some("IE"), Some(64520), Some(DUBLIN)),
        ],
        VerdictClass::ForeignDestination,
        &["LS", "IE"],
        &["IE"],
        true,
    )
}

fn indeterminate() -> TraceRecord {
    record(
        "health",
        "192.0.2.50",
        vec![hop(1, "198.18.1.1", None, None, None), silent(2), silent(3)],
        VerdictClass::Indeterminate,
        &[],
        &[],
        false,
    )
}

// ---------------------------------------------------------------- parsing

/// One sample of the exposition.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn parse(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap(),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series.to_string(), BTreeMap::new()),
            Some((name, rest)) => (
                name.to_string(),
                parse_labels(rest.strip_suffix('}').unwrap()),
            ),
        };
        out.push(Sample {
            name,
            labels,
            value,
        });
    }
    out
}

/// `a="x",b="y"` with `\\`, `\"` and `\n` escapes.
fn parse_labels(s: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut chars = s.chars().peekable();
    while chars.peek().is_some() {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        assert_eq!(chars.next(), Some('"'));
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(other) => value.push(other),
                    None => panic!("dangling escape"),
                },
                '"' => break,
                c => value.push(c),
            }
        }
        labels.insert(key, value);
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    labels
}

/// The value of the series `name` with exactly `labels`.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let want: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
    let found: Vec<f64> = samples
        .iter()
        .filter(|s| s.name == name && s.labels == want)
        .map(|s| s.value)
        .collect();
    assert!(found.len() <= 1, "duplicate series {name}{labels:?}");
    found.first().copied()
}

/// The series of family `name` whose labels include `labels`.
fn series<'a>(samples: &'a [Sample], name: &str, labels: &[(&str, &str)]) -> Vec<&'a Sample> {
    samples
        .iter()
        .filter(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect()
}

fn render(metrics: &Metrics) -> (String, Vec<Sample>) {
    let text = metrics.render().unwrap();
    let samples = parse(&text);
    (text, samples)
}

/// Four targets observed once; `health` also failed once. Per-hop metrics
/// are on for all but `tax`.
fn observed() -> Metrics {
    let metrics = Metrics::new("0.1.0-test");
    metrics.set_per_hop(PerHop {
        targets: ["gov-portal", "bank", "health"].map(String::from).into(),
        dependency_paths: false,
    });
    let ms = Duration::from_millis;
    metrics.observe("gov-portal", &domestic(), false, ms(40), 1_700_000_000.0);
    metrics.observe(
        "bank",
        &via_za("bank", "198.51.100.20"),
        false,
        ms(90),
        1_700_000_001.0,
    );
    let mut tax = in_ie();
    tax.verdict.confidence = Some(Confidence::High);
    tax.verdict.claims = vec![
        CountryClaim {
            country: cc("IE"),
            confidence: Confidence::High,
            ttls: vec![3, 4],
            suspected: false,
            reason: "hop 3's name says Dublin".into(),
        },
        CountryClaim {
            country: cc("ZA"),
            confidence: Confidence::Low,
            ttls: vec![2],
            suspected: true,
            reason: "a database places hop 2 in South Africa".into(),
        },
    ];
    metrics.observe("tax", &tax, false, ms(250), 1_700_000_002.0);
    metrics.observe("health", &indeterminate(), false, ms(3000), 1_700_000_003.0);
    metrics.observe_error("health", ms(2), 1_700_000_004.5);
    metrics.retain_targets(&["gov-portal", "bank", "tax", "health"].map(String::from));
    metrics
}

// ---------------------------------------------------------------- metrics tests

#[test]
fn verdicts_are_one_hot_per_target() {
    let (_, s) = render(&observed());
    for (target, class) in [
        ("gov-portal", "domestic"),
        ("bank", "foreign_transit"),
        ("tax", "foreign_destination"),
        ("health", "indeterminate"),
    ] {
        for other in VerdictClass::ALL {
            let want = if other.as_str() == class { 1.0 } else { 0.0 };
            assert_eq!(
                value(
                    &s,
                    "transitwatch_path_verdict",
                    &[("target", target), ("class", other.as_str())]
                ),
                Some(want),
                "{target} {}",
                other.as_str()
            );
        }
    }
    assert_eq!(series(&s, "transitwatch_path_verdict", &[]).len(), 16);
}

#[test]
fn dependency_ratio_counts_targets_with_verdicts() {
    let (_, s) = render(&observed());
    let ratio = |c| {
        value(
            &s,
            "transitwatch_country_dependency_ratio",
            &[("country", c)],
        )
    };
    assert_eq!(ratio("ZA"), Some(0.25));
    assert_eq!(ratio("IE"), Some(0.25));
    assert_eq!(ratio("LS"), None, "home is not a dependency");
    assert_eq!(
        series(&s, "transitwatch_country_dependency_ratio", &[]).len(),
        2
    );
    // The same countries named, with the services crossing them, for the
    // alert rules' texts.
    let info = series(&s, "transitwatch_country_dependents_info", &[]);
    let named: Vec<[&str; 3]> = info
        .iter()
        .map(|i| {
            [
                i.labels["country"].as_str(),
                i.labels["name"].as_str(),
                i.labels["services"].as_str(),
            ]
        })
        .collect();
    assert_eq!(
        named,
        [["IE", "Ireland", "tax"], ["ZA", "South Africa", "bank"]],
        "{info:?}"
    );
}

#[test]
fn the_report_url_is_published_only_when_configured() {
    let metrics = observed();
    let (_, s) = render(&metrics);
    assert!(series(&s, "transitwatch_report_info", &[]).is_empty());
    metrics.set_report_url(Some("https://transitwatch.example.ls/"));
    let (_, s) = render(&metrics);
    let info = series(&s, "transitwatch_report_info", &[]);
    assert_eq!(info.len(), 1, "{info:?}");
    assert_eq!(
        info[0].labels["url"],
        "https://transitwatch.example.ls/report"
    );
    metrics.set_report_url(None);
    let (_, s) = render(&metrics);
    assert!(series(&s, "transitwatch_report_info", &[]).is_empty());
}

#[test]
fn transit_countries_count_located_hops_of_the_last_path() {
    let (_, s) = render(&observed());
    let transit = |t, c| {
        value(
            &s,
            "transitwatch_path_transit_country",
            &[("target", t), ("country", c)],
        )
    };
    assert_eq!(transit("bank", "ZA"), Some(2.0));
    assert_eq!(transit("bank", "LS"), Some(2.0));
    assert_eq!(transit("tax", "IE"), Some(2.0));
    assert_eq!(transit("tax", "LS"), Some(1.0));
    assert_eq!(transit("gov-portal", "LS"), Some(2.0));
    assert!(series(
        &s,
        "transitwatch_path_transit_country",
        &[("target", "health")]
    )
    .is_empty());
}

#[test]
fn runs_changes_and_per_target_gauges() {
    let (_, s) = render(&observed());
    let runs = |t, o| {
        value(
            &s,
            "transitwatch_trace_runs_total",
            &[("target", t), ("outcome", o)],
        )
    };
    assert_eq!(runs("bank", "reached"), Some(1.0));
    assert_eq!(runs("bank", "unreached"), Some(0.0));
    assert_eq!(runs("bank", "error"), Some(0.0));
    assert_eq!(runs("health", "reached"), Some(0.0));
    assert_eq!(runs("health", "unreached"), Some(1.0));
    assert_eq!(runs("health", "error"), Some(1.0));
    for t in ["gov-portal", "bank", "tax", "health"] {
        assert_eq!(
            value(&s, "transitwatch_path_changes_total", &[("target", t)]),
            Some(0.0),
            "{t}"
        );
    }
    let one = |name, t| value(&s, name, &[("target", t)]);
    assert_eq!(one("transitwatch_path_hops", "bank"), Some(5.0));
    assert_eq!(one("transitwatch_path_violation", "bank"), Some(1.0));
    assert_eq!(one("transitwatch_path_violation", "gov-portal"), Some(0.0));
    assert_eq!(one("transitwatch_path_reached", "health"), Some(0.0));
    assert_eq!(one("transitwatch_path_reached", "tax"), Some(1.0));
    assert_eq!(one("transitwatch_path_confidence", "tax"), Some(3.0));
    assert_eq!(one("transitwatch_path_confidence", "bank"), Some(0.0));
    assert_eq!(
        one("transitwatch_path_suspected_countries", "tax"),
        Some(1.0)
    );
    assert_eq!(
        one("transitwatch_path_suspected_countries", "bank"),
        Some(0.0)
    );
    // The bank's countries in path order, for alert texts.
    let info = series(
        &s,
        "transitwatch_path_countries_info",
        &[("target", "bank")],
    );
    assert_eq!(info.len(), 1, "{info:?}");
    let bank = via_za("bank", "198.51.100.20");
    let in_order = |list: &[transitwatch::model::CountryCode]| {
        list.iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(
        info[0].labels["countries"],
        in_order(&bank.verdict.countries)
    );
    assert_eq!(
        info[0].labels["foreign"],
        in_order(&bank.verdict.foreign_countries)
    );
    assert_eq!(info[0].labels["foreign"], "ZA");
    assert_eq!(info[0].labels["foreign_names"], "South Africa");
    // Destination hop of `bank` is TTL 5: best 10 ms.
    assert_eq!(one("transitwatch_path_rtt_seconds", "bank"), Some(0.01));
    // `health` never reached: its last responding hop is TTL 1 (2 ms).
    assert_eq!(one("transitwatch_path_rtt_seconds", "health"), Some(0.002));
    assert_eq!(
        one("transitwatch_last_trace_timestamp_seconds", "tax"),
        Some(1_700_000_002.0)
    );
    assert_eq!(
        one("transitwatch_last_trace_error_timestamp_seconds", "health"),
        Some(1_700_000_004.5)
    );
    assert_eq!(
        value(&s, "transitwatch_trace_duration_seconds_count", &[]),
        Some(5.0)
    );
    assert_eq!(
        value(
            &s,
            "transitwatch_trace_duration_seconds_bucket",
            &[("le", "0.1")]
        ),
        Some(3.0)
    );
    assert_eq!(value(&s, "transitwatch_targets", &[]), Some(4.0));
    assert_eq!(
        value(&s, "transitwatch_build_info", &[("version", "0.1.0-test")]),
        Some(1.0)
    );
}

#[test]
fn hop_info_and_location_describe_responding_hops() {
    let (_, s) = render(&observed());
    let info = |ttl, addr, country, asn| {
        value(
            &s,
            "transitwatch_hop_info",
            &[
                ("target", "bank"),
                ("ttl", ttl),
                ("addr", addr),
                ("country", country),
                ("asn", asn),
            ],
        )
    };
    assert_eq!(info("1", "198.18.1.1", "LS", "64500"), Some(1.0));
    assert_eq!(info("2", "198.18.2.1", "ZA", "64510"), Some(1.0));
    assert_eq!(info("3", "198.18.2.2", "ZA", "64510"), Some(1.0));
    assert_eq!(info("5", "198.51.100.20", "LS", "64501"), Some(1.0));
    // The silent TTL 4 has no series.
    assert_eq!(
        series(&s, "transitwatch_hop_info", &[("target", "bank")]).len(),
        4
    );
    assert!(series(
        &s,
        "transitwatch_hop_info",
        &[("target", "bank"), ("ttl", "4")]
    )
    .is_empty());
    // Unknown country and ASN are empty labels.
    assert_eq!(
        value(
            &s,
            "transitwatch_hop_info",
            &[
                ("target", "tax"),
                ("ttl", "2"),
                ("addr", "198.18.9.1"),
                ("country", ""),
                ("asn", "")
            ],
        ),
        Some(1.0)
    );

    let located = series(&s, "transitwatch_hop_location", &[("target", "bank")]);
    assert_eq!(located.len(), 2, "only hops with coordinates");
    assert_eq!(
        value(
            &s,
            "transitwatch_hop_location",
            &[
                ("target", "bank"),
                ("ttl", "2"),
                ("lat", "-26.2"),
                ("lon", "28.04"),
                ("country", "ZA")
            ],
        ),
        Some(1.0)
    );
}

#[test]
fn a_new_path_replaces_the_old_series_and_updates_ratios() {
    let metrics = observed();
    // `tax` moves from Dublin to a domestic host reached via ZA.
    let moved = via_za("tax", "198.51.100.30");
    metrics.observe(
        "tax",
        &moved,
        true,
        Duration::from_millis(80),
        1_700_000_100.0,
    );
    let (_, s) = render(&metrics);

    assert_eq!(
        value(
            &s,
            "transitwatch_path_verdict",
            &[("target", "tax"), ("class", "foreign_transit")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &s,
            "transitwatch_path_verdict",
            &[("target", "tax"), ("class", "foreign_destination")]
        ),
        Some(0.0)
    );
    // Old hops (the IE ones, the unknown TTL 2) are gone.
    let hops = series(&s, "transitwatch_hop_info", &[("target", "tax")]);
    assert_eq!(hops.len(), 4);
    assert!(hops.iter().all(|h| h.labels["country"] != "IE"));
    assert!(series(
        &s,
        "transitwatch_hop_info",
        &[("target", "tax"), ("addr", "198.18.9.1")]
    )
    .is_empty());
    assert!(series(
        &s,
        "transitwatch_hop_location",
        &[("target", "tax"), ("country", "IE")]
    )
    .is_empty());
    // Transit: IE gone, ZA appears.
    assert_eq!(
        value(
            &s,
            "transitwatch_path_transit_country",
            &[("target", "tax"), ("country", "IE")]
        ),
        None
    );
    assert_eq!(
        value(
            &s,
            "transitwatch_path_transit_country",
            &[("target", "tax"), ("country", "ZA")]
        ),
        Some(2.0)
    );
    // Ratios: two of four targets cross ZA, none IE.
    assert_eq!(
        value(
            &s,
            "transitwatch_country_dependency_ratio",
            &[("country", "ZA")]
        ),
        Some(0.5)
    );
    assert_eq!(
        value(
            &s,
            "transitwatch_country_dependency_ratio",
            &[("country", "IE")]
        ),
        None
    );
    assert_eq!(
        value(&s, "transitwatch_path_changes_total", &[("target", "tax")]),
        Some(1.0)
    );
    assert_eq!(
        value(
            &s,
            "transitwatch_trace_runs_total",
            &[("target", "tax"), ("outcome", "reached")]
        ),
        Some(2.0)
    );
    // Other targets are untouched.
    assert_eq!(
        series(&s, "transitwatch_hop_info", &[("target", "bank")]).len(),
        4
    );
}

/// Asserts that the per-hop series of `target` are exactly the figures of
/// `record`'s hops.
fn assert_hops_match(s: &[Sample], target: &str, record: &TraceRecord) {
    for hop in &record.trace.hops {
        let ttl = hop.ttl.to_string();
        let at = [("target", target), ("ttl", ttl.as_str())];
        let sent = value(s, "transitwatch_hop_probes_sent", &at);
        let received = value(s, "transitwatch_hop_probes_received", &at);
        assert_eq!(sent, Some(f64::from(hop.sent)), "{target} {ttl}");
        assert_eq!(received, Some(f64::from(hop.received)), "{target} {ttl}");
        assert_eq!(
            value(s, "transitwatch_hop_loss_ratio", &at),
            Some(f64::from(hop.sent - hop.received) / f64::from(hop.sent)),
            "{target} {ttl}"
        );
        for (stat, ms) in ["best", "avg", "worst"].into_iter().zip(
            hop.rtt_ms
                .map(|r| [r.best, r.avg, r.worst])
                .into_iter()
                .flatten(),
        ) {
            let at = [("target", target), ("ttl", ttl.as_str()), ("stat", stat)];
            assert_eq!(
                value(s, "transitwatch_hop_rtt_seconds", &at),
                Some(ms / 1000.0),
                "{target} {ttl} {stat}"
            );
        }
        if hop.rtt_ms.is_none() {
            assert!(series(s, "transitwatch_hop_rtt_seconds", &at).is_empty());
        }
    }
    let ttls = |name| {
        series(s, name, &[("target", target)])
            .iter()
            .map(|x| x.labels["ttl"].clone())
            .collect::<std::collections::BTreeSet<_>>()
    };
    let want: std::collections::BTreeSet<String> = record
        .trace
        .hops
        .iter()
        .map(|h| h.ttl.to_string())
        .collect();
    assert_eq!(ttls("transitwatch_hop_probes_sent"), want, "{target}");
    assert_eq!(ttls("transitwatch_hop_loss_ratio"), want, "{target}");
}

/// `transitwatch_destination_rtt_seconds` of `target`: count, sum, and the
/// cumulative bucket counts by `le`.
fn histogram(s: &[Sample], target: &str) -> Option<(f64, f64, BTreeMap<String, f64>)> {
    let at = [("target", target)];
    let count = value(s, "transitwatch_destination_rtt_seconds_count", &at)?;
    let sum = value(s, "transitwatch_destination_rtt_seconds_sum", &at)?;
    let buckets = series(s, "transitwatch_destination_rtt_seconds_bucket", &at)
        .iter()
        .map(|b| (b.labels["le"].clone(), b.value))
        .collect();
    Some((count, sum, buckets))
}

#[test]
fn per_hop_series_are_the_records_figures_for_selected_paths_only() {
    let metrics = observed();
    let (text, s) = render(&metrics);
    assert_hops_match(&s, "bank", &via_za("bank", "198.51.100.20"));
    assert_hops_match(&s, "gov-portal", &domestic());
    assert_hops_match(&s, "health", &indeterminate());
    // The silent TTL 4 of the bank's path lost every probe and has no RTT.
    assert_eq!(
        value(
            &s,
            "transitwatch_hop_loss_ratio",
            &[("target", "bank"), ("ttl", "4")]
        ),
        Some(1.0)
    );
    // Not selected: no per-hop series, no histogram.
    for family in [
        "transitwatch_hop_rtt_seconds",
        "transitwatch_hop_probes_sent",
        "transitwatch_hop_probes_received",
        "transitwatch_hop_loss_ratio",
        "transitwatch_destination_rtt_seconds_count",
    ] {
        assert!(
            series(&s, family, &[("target", "tax")]).is_empty(),
            "{family}"
        );
    }
    // The histogram: the destination's best RTT once per trace that
    // reached it (the bank's TTL 5 answered in 10 ms).
    let (count, sum, buckets) = histogram(&s, "bank").unwrap();
    assert_eq!((count, sum), (1.0, 0.01));
    assert_eq!(buckets.len(), DESTINATION_RTT_BUCKETS.len() + 1);
    assert_eq!(buckets["0.008"], 0.0);
    assert_eq!(buckets["0.016"], 1.0);
    assert_eq!(buckets["+Inf"], 1.0);
    // A selected path whose destination never answered has an empty one.
    let (count, _, buckets) = histogram(&s, "health").unwrap();
    assert_eq!(count, 0.0);
    assert!(buckets.values().all(|n| *n == 0.0));
    assert!(histogram(&s, "tax").is_none());
    // Every family once.
    let mut types: Vec<&str> = text.lines().filter(|l| l.starts_with("# TYPE ")).collect();
    let all = types.len();
    types.sort_unstable();
    types.dedup();
    assert_eq!(types.len(), all, "a family is listed twice:\n{text}");
}

#[test]
fn per_hop_series_follow_the_path_and_the_selection() {
    let metrics = observed();
    let ms = Duration::from_millis(10);
    // The bank's path gets shorter (5 hops to 2): TTLs 3 to 5 go.
    let mut shorter = domestic();
    shorter.trace.target.name = "bank".into();
    metrics.observe("bank", &shorter, true, ms, 1_700_000_100.0);
    let (_, s) = render(&metrics);
    assert_hops_match(&s, "bank", &shorter);
    assert!(series(
        &s,
        "transitwatch_hop_probes_sent",
        &[("target", "bank"), ("ttl", "3")]
    )
    .is_empty());
    // Its histogram keeps counting: 10 ms, then the new destination's 4 ms.
    let (count, sum, buckets) = histogram(&s, "bank").unwrap();
    assert_eq!(count, 2.0);
    assert!((sum - 0.014).abs() < 1e-12, "{sum}");
    assert_eq!(buckets["0.004"], 1.0);

    // Deselected on reload: every per-hop series of the bank goes at once.
    metrics.set_per_hop(PerHop {
        targets: ["gov-portal".to_string()].into(),
        dependency_paths: false,
    });
    let (text, s) = render(&metrics);
    assert!(
        !text.contains("transitwatch_hop_probes_sent{target=\"bank\""),
        "{text}"
    );
    assert!(histogram(&s, "bank").is_none());
    assert!(histogram(&s, "gov-portal").is_some());
    // Selected again: the histogram starts afresh with the next trace.
    metrics.set_per_hop(PerHop {
        targets: ["gov-portal".to_string(), "bank".to_string()].into(),
        dependency_paths: false,
    });
    metrics.observe("bank", &shorter, false, ms, 1_700_000_200.0);
    let (_, s) = render(&metrics);
    assert_eq!(histogram(&s, "bank").unwrap().0, 1.0);
    // A target removed from the configuration takes its series along.
    metrics.retain_targets(&["gov-portal".to_string()]);
    let (text, _) = render(&metrics);
    assert!(!text.contains("target=\"bank\""), "{text}");
    assert!(text.contains("transitwatch_hop_probes_sent{target=\"gov-portal\""));
}

#[test]
fn retain_targets_removes_every_series_of_dropped_targets() {
    let metrics = observed();
    metrics.retain_targets(&["gov-portal".to_string(), "bank".to_string()]);
    let (text, s) = render(&metrics);
    for gone in ["tax", "health"] {
        assert!(
            !text.contains(&format!("target=\"{gone}\"")),
            "{gone} still has series:\n{text}"
        );
    }
    // One of the two remaining targets crosses ZA.
    assert_eq!(
        value(
            &s,
            "transitwatch_country_dependency_ratio",
            &[("country", "ZA")]
        ),
        Some(0.5)
    );
    assert_eq!(
        value(
            &s,
            "transitwatch_country_dependency_ratio",
            &[("country", "IE")]
        ),
        None
    );
    assert_eq!(value(&s, "transitwatch_targets", &[]), Some(2.0));
    assert_eq!(
        series(&s, "transitwatch_hop_info", &[("target", "bank")]).len(),
        4
    );

    metrics.retain_targets(&[]);
    let (text, s) = render(&metrics);
    assert!(!text.contains("target=\""), "{text}");
    assert!(series(&s, "transitwatch_country_dependency_ratio", &[]).is_empty());
    assert_eq!(value(&s, "transitwatch_targets", &[]), Some(0.0));
}

#[test]
fn retain_keeps_per_family_paths_of_configured_targets() {
    let metrics = Metrics::new("t");
    let ms = Duration::from_millis(10);
    metrics.observe(
        "dual/ipv4",
        &via_za("dual", "198.51.100.40"),
        false,
        ms,
        1.0,
    );
    metrics.observe("dual/ipv6", &domestic(), false, ms, 1.0);
    metrics.observe("dualx", &domestic(), false, ms, 1.0);
    metrics.retain_targets(&["dual".to_string()]);
    let (_, s) = render(&metrics);
    for kept in ["dual/ipv4", "dual/ipv6"] {
        assert_eq!(
            value(&s, "transitwatch_path_hops", &[("target", kept)]),
            Some(if kept == "dual/ipv4" { 5.0 } else { 2.0 }),
            "{kept}"
        );
    }
    assert!(series(&s, "transitwatch_path_hops", &[("target", "dualx")]).is_empty());
    // One service of two paths, one of them via ZA: the service depends
    // on ZA (national figures count services, not paths).
    assert_eq!(
        value(
            &s,
            "transitwatch_country_dependency_ratio",
            &[("country", "ZA")]
        ),
        Some(1.0)
    );
    assert_eq!(value(&s, "transitwatch_targets", &[]), Some(1.0));
}

#[test]
fn reload_and_database_families() {
    let metrics = observed();
    metrics.set_config_reload(false, 1_700_000_500.0);
    metrics.set_geoip_databases(&[
        DatabaseInfo {
            path: "/var/lib/GeoIP/GeoLite2-City.mmdb".into(),
            database_type: "GeoLite2-City".to_string(),
            schema: Schema::MaxMindCity,
            build_epoch: 1_700_000_000,
            ip_version: 6,
            node_count: 10,
            vendor: "MaxMind",
            sha256: "00".repeat(32),
        },
        DatabaseInfo {
            path: "/var/lib/GeoIP/GeoLite2-ASN.mmdb".into(),
            database_type: "GeoLite2-ASN".to_string(),
            schema: Schema::MaxMindAsn,
            build_epoch: 1_700_000_001,
            ip_version: 6,
            node_count: 10,
            vendor: "MaxMind",
            sha256: "00".repeat(32),
        },
    ]);
    let (_, s) = render(&metrics);
    assert_eq!(
        value(&s, "transitwatch_config_reload_success", &[]),
        Some(0.0)
    );
    assert_eq!(
        value(&s, "transitwatch_config_reload_timestamp_seconds", &[]),
        Some(1_700_000_500.0)
    );
    assert_eq!(
        value(
            &s,
            "transitwatch_geoip_database_info",
            &[
                ("kind", "asn"),
                ("type", "GeoLite2-ASN"),
                ("build_epoch", "1700000001")
            ],
        ),
        Some(1.0)
    );
    assert_eq!(series(&s, "transitwatch_geoip_database_info", &[]).len(), 2);
}

#[test]
fn store_writes_are_counted_by_result() {
    let metrics = observed();
    let (text, s) = render(&metrics);
    assert!(text.contains("# TYPE transitwatch_store_writes_total counter"));
    // Every result is published from the start, at zero.
    for result in ["ok", "error", "dropped"] {
        assert_eq!(
            value(&s, "transitwatch_store_writes_total", &[("result", result)]),
            Some(0.0),
            "{result}"
        );
    }
    metrics.store_write("ok");
    metrics.store_write("ok");
    metrics.store_write("dropped");
    let (_, s) = render(&metrics);
    assert_eq!(
        value(&s, "transitwatch_store_writes_total", &[("result", "ok")]),
        Some(2.0)
    );
    assert_eq!(
        value(
            &s,
            "transitwatch_store_writes_total",
            &[("result", "dropped")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &s,
            "transitwatch_store_writes_total",
            &[("result", "error")]
        ),
        Some(0.0)
    );
}

#[test]
fn every_family_has_help_and_no_timestamps() {
    let metrics = observed();
    metrics.set_config_reload(true, 1.0);
    metrics.set_geoip_databases(&[DatabaseInfo {
        path: "/x.mmdb".into(),
        database_type: "DBIP-Country-Lite".to_string(),
        schema: Schema::DbIpCountry,
        build_epoch: 1,
        ip_version: 6,
        node_count: 1,
        vendor: "MaxMind",
        sha256: "00".repeat(32),
    }]);
    let (text, samples) = render(&metrics);
    let mut typed = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let name = rest.split(' ').next().unwrap();
            assert!(
                text.contains(&format!("# HELP {name} ")),
                "{name} has no HELP"
            );
            typed.push(name.to_string());
        }
    }
    for family in [
        "transitwatch_path_verdict",
        "transitwatch_path_transit_country",
        "transitwatch_path_changes_total",
        "transitwatch_country_dependency_ratio",
        "transitwatch_hop_info",
        "transitwatch_hop_location",
        "transitwatch_trace_runs_total",
        "transitwatch_trace_duration_seconds",
        "transitwatch_path_rtt_seconds",
        "transitwatch_path_hops",
        "transitwatch_path_violation",
        "transitwatch_path_reached",
        "transitwatch_last_trace_timestamp_seconds",
        "transitwatch_build_info",
        "transitwatch_geoip_database_info",
        "transitwatch_config_reload_success",
        "transitwatch_config_reload_timestamp_seconds",
        "transitwatch_targets",
        "transitwatch_store_writes_total",
        "transitwatch_path_confidence",
        "transitwatch_path_suspected_countries",
        "transitwatch_path_countries_info",
        "transitwatch_country_dependents_info",
    ] {
        assert!(typed.iter().any(|t| t == family), "{family} missing");
    }
    // `name{labels} value` only: a timestamp would be a third field.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let fields = match line.rsplit_once('}') {
            Some((_, rest)) => rest.trim().split(' ').count(),
            None => line.split(' ').count() - 1,
        };
        assert_eq!(fields, 1, "{line}");
    }
    assert!(!samples.is_empty());
}

#[test]
fn promtool_finds_no_problems() {
    let require = std::env::var("TRANSITWATCH_REQUIRE_LAB").is_ok_and(|v| v == "1");
    let metrics = observed();
    metrics.set_config_reload(true, 1_700_000_500.0);
    // The alert notifier's families, with a webhook and some counts.
    let alerts = metrics.alerts();
    alerts.add_webhook("ops");
    alerts.count("ops", transitwatch::alert::DeliveryResult::Delivered);
    alerts.dropped("ops", 2);
    alerts.queue_length("ops", 3);
    alerts.active(1);
    let text = metrics.render().unwrap();
    for series in [
        "transitwatch_alert_notifications_total{result=\"delivered\",webhook=\"ops\"} 1",
        "transitwatch_alert_notifications_total{result=\"failed\",webhook=\"ops\"} 0",
        "transitwatch_alert_notifications_dropped_total{webhook=\"ops\"} 2",
        "transitwatch_alert_queue_length{webhook=\"ops\"} 3",
        "transitwatch_alerts_active 1",
    ] {
        assert!(
            text.lines().any(|l| l == series),
            "{series} missing:\n{text}"
        );
    }
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            assert!(!require, "promtool is missing (TRANSITWATCH_REQUIRE_LAB=1)");
            println!(
                "SKIPPED promtool check metrics: promtool not found (apt-get install prometheus)"
            );
            return;
        }
        Err(error) => panic!("running promtool: {error}"),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool: {report}\n{text}");
    assert!(report.trim().is_empty(), "promtool: {report}");
}

// ---------------------------------------------------------------- HTTP

struct Fake {
    metrics: Metrics,
    ready: AtomicBool,
    broken: AtomicBool,
}

impl StateView for Fake {
    fn metrics(&self) -> Result<String, ViewError> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(MetricsError::Encode("registry on fire".to_string()).into());
        }
        Ok(self.metrics.render()?)
    }

    fn ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    fn targets(&self) -> serde_json::Value {
        json!([{"name": "bank", "host": "bank.example.ls"}])
    }

    fn latest(&self, target: &str) -> Option<serde_json::Value> {
        (target == "bank")
            .then(|| json!([serde_json::to_value(via_za("bank", "198.51.100.20")).unwrap()]))
    }

    fn is_target(&self, target: &str) -> bool {
        // `fresh` is configured but has no trace yet.
        ["bank", "fresh"].contains(&target)
    }

    fn each_latest(&self, each: &mut dyn FnMut(&PathKey, &TraceRecord)) -> Result<(), ViewError> {
        for (key, record) in [
            ("bank", via_za("bank", "198.51.100.20")),
            ("gov-portal", domestic()),
            ("tax", in_ie()),
            ("health", indeterminate()),
        ] {
            each(&key.parse().unwrap(), &record);
        }
        Ok(())
    }
}

struct Server {
    addr: SocketAddr,
    snapshot: Arc<Fake>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let snapshot = Arc::new(Fake {
            metrics: observed(),
            ready: AtomicBool::new(false),
            broken: AtomicBool::new(false),
        });
        // A oneshot: the test alone decides when the server's shutdown future
        // completes.
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, Arc::clone(&snapshot), async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            snapshot,
            stop: Some(stop),
            task,
        }
    }

    /// Triggers shutdown and asserts `serve` returns promptly.
    async fn stop(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        let result = tokio::time::timeout(Duration::from_secs(3), self.task)
            .await
            .expect("serve did not end after shutdown");
        result.unwrap().unwrap();
    }
}

/// A response: status, lower-cased header names, body.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: HashMap<String, String>,
    body: String,
}

fn parse_response(raw: &[u8]) -> Answer {
    let text = String::from_utf8(raw.to_vec()).unwrap();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .expect("a complete response head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_string(),
    }
}

async fn request(addr: SocketAddr, method: &str, path: &str) -> Answer {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut raw))
        .await
        .expect("response in time")
        .unwrap();
    parse_response(&raw)
}

async fn get(addr: SocketAddr, path: &str) -> Answer {
    request(addr, "GET", path).await
}

#[tokio::test]
async fn routes_answer_with_status_type_and_body() {
    let server = Server::start().await;
    let addr = server.addr;

    let metrics = get(addr, "/metrics").await;
    assert_eq!(metrics.status, 200);
    assert_eq!(
        metrics.headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let samples = parse(&metrics.body);
    assert_eq!(
        value(
            &samples,
            "transitwatch_country_dependency_ratio",
            &[("country", "ZA")]
        ),
        Some(0.25)
    );

    let health = get(addr, "/healthz").await;
    assert_eq!((health.status, health.body.as_str()), (200, "ok"));
    assert!(health.headers["content-type"].starts_with("text/plain"));

    let not_ready = get(addr, "/readyz").await;
    assert_eq!(
        (not_ready.status, not_ready.body.as_str()),
        (503, "not ready")
    );
    server.snapshot.ready.store(true, Ordering::SeqCst);
    let ready = get(addr, "/readyz").await;
    assert_eq!((ready.status, ready.body.as_str()), (200, "ready"));

    let targets = get(addr, "/api/v1/targets").await;
    assert_eq!(targets.status, 200);
    assert_eq!(targets.headers["content-type"], "application/json");
    let targets: serde_json::Value = serde_json::from_str(&targets.body).unwrap();
    assert_eq!(targets[0]["name"], "bank");

    let latest = get(addr, "/api/v1/targets/bank/latest").await;
    assert_eq!(latest.status, 200);
    assert_eq!(latest.headers["content-type"], "application/json");
    let latest: serde_json::Value = serde_json::from_str(&latest.body).unwrap();
    assert_eq!(latest[0]["schema"], "transitwatch.trace/1");
    assert_eq!(latest[0]["verdict"]["class"], "foreign_transit");

    let fresh = get(addr, "/api/v1/targets/fresh/latest").await;
    assert_eq!((fresh.status, fresh.body.as_str()), (204, ""));

    let unknown = get(addr, "/api/v1/targets/nope/latest").await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.headers["content-type"], "application/json");
    let unknown: serde_json::Value = serde_json::from_str(&unknown.body).unwrap();
    assert!(unknown["error"].as_str().unwrap().contains("nope"));

    // What fails if South Africa does: from the view's latest records.
    let whatif = get(addr, "/api/v1/whatif?country=ZA").await;
    assert_eq!(whatif.status, 200, "{}", whatif.body);
    assert_eq!(whatif.headers["content-type"], "application/json");
    let whatif: serde_json::Value = serde_json::from_str(&whatif.body).unwrap();
    assert_eq!(whatif["schema"], "transitwatch.whatif/1");
    assert_eq!(whatif["failure"]["description"], "South Africa (ZA)");
    let effects: Vec<(&str, &str)> = whatif["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["effect"].as_str().unwrap()))
        .collect();
    assert_eq!(
        effects,
        [
            ("bank", "loses_route"),
            ("gov-portal", "unaffected"),
            ("health", "unknown"),
            ("tax", "unaffected"),
        ]
    );
    assert_eq!(
        whatif["sentences"][0],
        "If South Africa (ZA) becomes unavailable, 1 of 4 national services loses its route: bank."
    );
    let by_as = get(addr, "/api/v1/whatif?asn=AS64520").await;
    let by_as: serde_json::Value = serde_json::from_str(&by_as.body).unwrap();
    assert_eq!(by_as["services"][3]["effect"], "loses_hosting");
    for (query, why) in [
        (
            "",
            "exactly one of the parameters `country`, `asn` or `org`",
        ),
        ("?country=ZA&org=x", "exactly one"),
        ("?country=XX", "parameter `country`: `XX`"),
        ("?asn=x", "parameter `asn`"),
        ("?since=1h", "unknown parameter `since`"),
    ] {
        let bad = get(addr, &format!("/api/v1/whatif{query}")).await;
        assert_eq!(bad.status, 400, "{query}");
        assert_eq!(bad.headers["content-type"], "application/json");
        let bad: serde_json::Value = serde_json::from_str(&bad.body).unwrap();
        assert!(
            bad["error"].as_str().unwrap().contains(why),
            "{query}: {bad}"
        );
    }

    // The report pages need a history; this view keeps none.
    for path in ["/", "/report?since=30d"] {
        let page = get(addr, path).await;
        assert_eq!(page.status, 503, "{path}");
        assert!(
            page.body.contains("no trace history"),
            "{path}: {}",
            page.body
        );
    }
    assert_eq!(get(addr, "/report?format=pdf").await.status, 400);
    assert_eq!(get(addr, "/report?target=bank").await.status, 400);
    for path in [
        "/metricsx",
        "/reports",
        "/api/v1/targets/",
        "/api/v1/targets/bank",
        "/healthz/x",
    ] {
        assert_eq!(get(addr, path).await.status, 404, "{path}");
    }
    for method in ["POST", "PUT", "DELETE", "HEAD"] {
        let answer = request(addr, method, "/metrics").await;
        assert_eq!(answer.status, 405, "{method}");
        assert_eq!(answer.headers["allow"], "GET");
    }

    server.snapshot.broken.store(true, Ordering::SeqCst);
    let broken = get(addr, "/metrics").await;
    assert_eq!(broken.status, 500);
    assert!(broken.body.contains("registry on fire"));

    server.stop().await;
}

#[tokio::test]
async fn keep_alive_serves_several_requests_on_one_connection() {
    let server = Server::start().await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    for _ in 0..3 {
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        let mut buf = vec![0u8; 1024];
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        let answer = parse_response(&buf[..n]);
        assert_eq!((answer.status, answer.body.as_str()), (200, "ok"));
    }
    // Shutdown with this idle keep-alive connection open still ends promptly.
    server.stop().await;
}

#[tokio::test]
async fn a_bad_client_does_not_disturb_the_server() {
    let server = Server::start().await;
    let mut garbage = TcpStream::connect(server.addr).await.unwrap();
    garbage
        .write_all(b"\x00\x01 NOT HTTP AT ALL\r\n\r\n")
        .await
        .unwrap();
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), garbage.read_to_end(&mut raw)).await;
    // A client that connects and vanishes.
    drop(TcpStream::connect(server.addr).await.unwrap());
    assert_eq!(get(server.addr, "/healthz").await.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn a_new_client_closes_the_oldest_idle_connection() {
    let server = Server::start().await;
    let mut idle = Vec::new();
    for _ in 0..WAITING_SLOTS {
        idle.push(TcpStream::connect(server.addr).await.unwrap());
        // One at a time, so that the server sees them in this order.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The waiting room is full: a scraper is still answered at once...
    let answer = tokio::time::timeout(Duration::from_secs(3), get(server.addr, "/healthz"))
        .await
        .expect("served although every waiting place was taken");
    assert_eq!(answer.status, 200);
    // ... and the oldest idle connection was closed to make room for it.
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(3), idle[0].read(&mut buf))
        .await
        .expect("the oldest idle connection is closed");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    // The newest is still open.
    let last = idle.last_mut().unwrap();
    let still = tokio::time::timeout(Duration::from_millis(200), last.read(&mut buf)).await;
    assert!(still.is_err(), "the newest idle connection was closed");
    drop(idle);
    server.stop().await;
}

#[tokio::test]
async fn shutdown_closes_the_port() {
    let server = Server::start().await;
    let addr = server.addr;
    assert_eq!(get(addr, "/healthz").await.status, 200);
    server.stop().await;
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "still accepting after shutdown"
    );
}

//! Table-driven tests of the analysis: every file under
//! `tests/resources/analysis/` is one trace, a policy and the verdict it must
//! get; every file under `tests/resources/identity/` is a sequence of traces
//! of one target and whether each followed the route of the ones before.

use serde::Deserialize;
use std::path::{Path, PathBuf};
use transitwatch::analysis::{analyze, path_id, PathSignature, Policy, RouteComparison};
use transitwatch::geo::{decide, HopContext};
use transitwatch::model::{
    Anomaly, Confidence, Coordinates, CountryCode, Evidence, EvidenceKind, EvidenceStatus,
    GeoSource, Hop, HopGeo, IxpRef, Protocol, RttMs, TargetRef, Trace, VantageRef,
};

/// What one source says about a hop: the hop's location is then decided
/// from these items (`geo::decide`), not taken from the hop's own fields.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EvidenceSpec {
    kind: String,
    source: Option<String>,
    country: Option<String>,
    city: Option<String>,
    lat: Option<f64>,
    lon: Option<f64>,
    accuracy_km: Option<u32>,
}

impl EvidenceSpec {
    fn item(&self) -> Evidence {
        let kind = EvidenceKind::ALL
            .into_iter()
            .find(|k| k.as_str() == self.kind)
            .unwrap_or_else(|| panic!("`{}` is no evidence kind", self.kind));
        Evidence {
            kind,
            source: self
                .source
                .clone()
                .unwrap_or_else(|| kind.as_str().to_string()),
            country: self.country.as_ref().map(|c| c.parse().unwrap()),
            city: self.city.clone(),
            lat: self.lat,
            lon: self.lon,
            accuracy_km: self.accuracy_km,
            detail: None,
            status: EvidenceStatus::Agrees,
            reason: None,
        }
    }
}

/// The internet exchange whose LAN a hop is on.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IxpSpec {
    id: u32,
    name: String,
    country: String,
    city: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HopSpec {
    ttl: u8,
    addr: Option<String>,
    addrs: Option<Vec<String>>,
    country: Option<String>,
    asn: Option<u32>,
    database: Option<String>,
    plausible: Option<bool>,
    rtt: Option<f64>,
    hostname: Option<String>,
    confidence: Option<String>,
    evidence: Option<Vec<EvidenceSpec>>,
    ixp: Option<IxpSpec>,
}

impl HopSpec {
    /// The hop; with an `evidence` list, located by `geo::decide` from
    /// `vantage` with the round-trip time of the answering hop before.
    fn hop_in(&self, vantage: Option<Coordinates>, previous_rtt: Option<f64>) -> Hop {
        let mut hop = self.hop();
        if let Some(items) = &self.evidence {
            let ctx = HopContext {
                vantage,
                best_rtt_ms: hop.rtt_ms.map(|r| r.best),
                previous_best_rtt_ms: previous_rtt,
            };
            let geo = decide(items.iter().map(EvidenceSpec::item).collect(), &ctx);
            hop.geo = HopGeo {
                asn: self.asn,
                ixp: hop.geo.ixp.take(),
                ..geo
            };
        }
        hop
    }

    fn hop(&self) -> Hop {
        let addrs: Vec<std::net::IpAddr> = match (&self.addrs, &self.addr) {
            (Some(list), _) => list.iter().map(|a| a.parse().unwrap()).collect(),
            (None, Some(a)) => vec![a.parse().unwrap()],
            (None, None) => vec![],
        };
        let addr = self
            .addr
            .as_ref()
            .map(|a| a.parse().unwrap())
            .or_else(|| addrs.first().copied());
        let country: Option<CountryCode> = self.country.as_ref().map(|c| c.parse().unwrap());
        let located = country.is_some() || self.asn.is_some();
        Hop {
            ttl: self.ttl,
            addr,
            sent: 3,
            received: if addrs.is_empty() { 0 } else { 3 },
            rtt_ms: (!addrs.is_empty()).then(|| {
                let r = self.rtt.unwrap_or(1.0);
                RttMs {
                    best: r,
                    avg: r,
                    worst: r,
                }
            }),
            addrs,
            geo: HopGeo {
                country,
                asn: self.asn,
                source: if located {
                    GeoSource::Mmdb
                } else {
                    GeoSource::None
                },
                plausible: self.plausible,
                database: self.database.clone(),
                confidence: self
                    .confidence
                    .as_ref()
                    .map(|c| c.parse::<Confidence>().unwrap()),
                ixp: self.ixp.as_ref().map(|x| IxpRef {
                    id: x.id,
                    name: x.name.clone(),
                    country: x.country.parse().unwrap(),
                    city: x.city.clone(),
                }),
                ..HopGeo::default()
            },
            hostname: self.hostname.clone(),
            mpls: Vec::new(),
        }
    }
}

fn trace(target: &str, reached: bool, hops: &[HopSpec]) -> Trace {
    trace_from(target, reached, hops, None)
}

fn trace_from(
    target: &str,
    reached: bool,
    hops: &[HopSpec],
    vantage: Option<Coordinates>,
) -> Trace {
    let mut previous_rtt = None;
    let mut built = Vec::with_capacity(hops.len());
    for spec in hops {
        let hop = spec.hop_in(vantage, previous_rtt);
        if let Some(r) = hop.rtt_ms {
            previous_rtt = Some(r.best);
        }
        built.push(hop);
    }
    Trace {
        target: TargetRef {
            name: "svc".into(),
            host: target.into(),
            addr: Some(target.parse().unwrap()),
        },
        vantage: VantageRef {
            name: "maseru-1".into(),
            country: Some("LS".parse().unwrap()),
        },
        protocol: Protocol::Icmp,
        port: None,
        started_at: "2026-11-26T12:00:00Z".parse().unwrap(),
        reached,
        hops: built,
    }
}

fn codes(list: &[String]) -> Vec<CountryCode> {
    list.iter().map(|c| c.parse().unwrap()).collect()
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PolicySpec {
    home: Option<String>,
    #[serde(default)]
    also_home: Vec<String>,
    #[serde(default)]
    allowed: Vec<String>,
    min_confidence: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TraceSpec {
    target: String,
    reached: bool,
    /// The vantage point's latitude and longitude, for the round-trip
    /// bound of hops given as evidence.
    vantage_at: Option<[f64; 2]>,
    hops: Vec<HopSpec>,
}

/// A foreign country the verdict must claim.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClaimSpec {
    country: String,
    confidence: String,
    ttls: Option<Vec<u8>>,
    suspected: bool,
}

/// An exchange the verdict must list.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExchangeSpec {
    ttl: u8,
    name: String,
    domestic: bool,
}

/// What one hop must be located as.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HopExpect {
    ttl: u8,
    country: Option<String>,
    confidence: Option<String>,
    source: Option<String>,
    plausible: Option<bool>,
    #[serde(default)]
    statuses: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    class: String,
    countries: Option<Vec<String>>,
    foreign_countries: Option<Vec<String>>,
    foreign_asns: Option<Vec<u32>>,
    violation: Option<bool>,
    suspect_countries: Option<Vec<String>>,
    anomalies: Option<Vec<String>>,
    #[serde(default)]
    explanation_contains: Vec<String>,
    #[serde(default)]
    suspect_reason_contains: Vec<String>,
    /// The verdict's confidence: `low`, `medium`, `high` or `none`.
    confidence: Option<String>,
    claims: Option<Vec<ClaimSpec>>,
    #[serde(default)]
    claim_reason_contains: Vec<String>,
    exchanges: Option<Vec<ExchangeSpec>>,
    hops: Option<Vec<HopExpect>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AnalysisScenario {
    description: String,
    #[serde(default)]
    policy: PolicySpec,
    trace: TraceSpec,
    expect: Expect,
}

fn scenario_files(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/resources")
        .join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

fn anomaly_kind(a: &Anomaly) -> &'static str {
    match a {
        Anomaly::ForwardingLoop { .. } => "forwarding_loop",
        Anomaly::DestinationNotReached { .. } => "destination_not_reached",
    }
}

#[test]
fn analysis_scenarios() {
    let files = scenario_files("analysis");
    assert!(files.len() >= 12, "scenario files missing");
    let mut classes = std::collections::BTreeSet::new();
    let mut statuses = std::collections::BTreeSet::new();
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(&file).unwrap();
        let s: AnalysisScenario = toml::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let policy = Policy {
            home: s.policy.home.as_ref().map(|h| h.parse().unwrap()),
            also_home: codes(&s.policy.also_home),
            allowed: codes(&s.policy.allowed),
            min_confidence: s
                .policy
                .min_confidence
                .as_ref()
                .map_or(Confidence::Low, |c| c.parse().unwrap()),
            counts_only: false,
        };
        let vantage = s
            .trace
            .vantage_at
            .map(|[lat, lon]| Coordinates { lat, lon });
        let t = trace_from(&s.trace.target, s.trace.reached, &s.trace.hops, vantage);
        let v = analyze(&t, &policy);
        let ctx = format!("{name} ({}): {v:#?}", s.description);
        assert_eq!(v.class.as_str(), s.expect.class, "{ctx}");
        classes.insert(s.expect.class.clone());
        if let Some(c) = &s.expect.countries {
            assert_eq!(v.countries, codes(c), "{ctx}");
        }
        if let Some(c) = &s.expect.foreign_countries {
            assert_eq!(v.foreign_countries, codes(c), "{ctx}");
        }
        if let Some(a) = &s.expect.foreign_asns {
            assert_eq!(&v.foreign_asns, a, "{ctx}");
        }
        if let Some(x) = s.expect.violation {
            assert_eq!(v.violation, x, "{ctx}");
        }
        if let Some(c) = &s.expect.suspect_countries {
            let got: Vec<CountryCode> = v.suspect_countries.iter().map(|s| s.country).collect();
            assert_eq!(got, codes(c), "{ctx}");
        }
        for needle in &s.expect.suspect_reason_contains {
            assert!(
                v.suspect_countries
                    .iter()
                    .any(|s| s.reason.contains(needle.as_str())),
                "suspect reason lacks `{needle}`: {ctx}"
            );
        }
        if let Some(kinds) = &s.expect.anomalies {
            let got: Vec<&str> = v.anomalies.iter().map(anomaly_kind).collect();
            assert_eq!(got, *kinds, "{ctx}");
        }
        for needle in &s.expect.explanation_contains {
            assert!(
                v.explanation.contains(needle.as_str()),
                "explanation lacks `{needle}`: {ctx}"
            );
        }
        check_confidence(&s.expect, &t, &v, &ctx);
        for hop in &t.hops {
            statuses.extend(hop.geo.evidence.iter().map(|e| e.status.as_str()));
        }
        assert!(!v.explanation.contains('\n'), "one sentence: {ctx}");
        assert_eq!(v.path_id, path_id(&t));
    }
    for class in [
        "domestic",
        "foreign_transit",
        "foreign_destination",
        "indeterminate",
    ] {
        assert!(classes.contains(class), "no scenario for class {class}");
    }
    // Agreeing, conflicting and RTT-rejected evidence each appear in some
    // scenario (missing evidence: evidence_missing.toml).
    for status in ["chosen", "agrees", "disagrees", "rejected"] {
        assert!(
            statuses.contains(status),
            "no scenario with {status} evidence"
        );
    }
}

/// The confidence, claims, exchanges and hop locations a scenario expects.
fn check_confidence(e: &Expect, t: &Trace, v: &transitwatch::model::PathVerdict, ctx: &str) {
    if let Some(c) = &e.confidence {
        assert_eq!(v.confidence.map_or("none", |c| c.as_str()), c, "{ctx}");
    }
    if let Some(claims) = &e.claims {
        let got: Vec<(String, &str, bool)> = v
            .claims
            .iter()
            .map(|c| (c.country.to_string(), c.confidence.as_str(), c.suspected))
            .collect();
        let want: Vec<(String, &str, bool)> = claims
            .iter()
            .map(|c| (c.country.clone(), c.confidence.as_str(), c.suspected))
            .collect();
        assert_eq!(got, want, "{ctx}");
        for (claim, spec) in v.claims.iter().zip(claims) {
            if let Some(ttls) = &spec.ttls {
                assert_eq!(&claim.ttls, ttls, "{ctx}");
            }
            assert!(!claim.reason.is_empty(), "{ctx}");
        }
    }
    for needle in &e.claim_reason_contains {
        assert!(
            v.claims.iter().any(|c| c.reason.contains(needle.as_str())),
            "claim reason lacks `{needle}`: {ctx}"
        );
    }
    if let Some(x) = &e.exchanges {
        let got: Vec<(u8, &str, bool)> = v
            .exchanges
            .iter()
            .map(|x| (x.ttl, x.ixp.name.as_str(), x.domestic))
            .collect();
        let want: Vec<(u8, &str, bool)> = x
            .iter()
            .map(|x| (x.ttl, x.name.as_str(), x.domestic))
            .collect();
        assert_eq!(got, want, "{ctx}");
    }
    for want in e.hops.iter().flatten() {
        let hop = t.hops.iter().find(|h| h.ttl == want.ttl).unwrap();
        let g = &hop.geo;
        let hctx = format!("hop {}: {g:#?}\n{ctx}", want.ttl);
        if let Some(c) = &want.country {
            assert_eq!(g.country.map(|c| c.to_string()).as_ref(), Some(c), "{hctx}");
        }
        if let Some(c) = &want.confidence {
            assert_eq!(g.confidence.map_or("none", |c| c.as_str()), c, "{hctx}");
        }
        if let Some(src) = &want.source {
            let got = serde_json::to_value(g.source).unwrap();
            assert_eq!(got.as_str(), Some(src.as_str()), "{hctx}");
        }
        if let Some(p) = want.plausible {
            assert_eq!(g.plausible, Some(p), "{hctx}");
        }
        if !want.statuses.is_empty() {
            let got: Vec<&str> = g.evidence.iter().map(|e| e.status.as_str()).collect();
            assert_eq!(got, want.statuses, "{hctx}");
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityTrace {
    target: Option<String>,
    expect: Option<String>,
    #[serde(default)]
    same_path_id: bool,
    hops: Vec<HopSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityScenario {
    description: String,
    trace: Vec<IdentityTrace>,
}

#[test]
fn identity_scenarios() {
    let files = scenario_files("identity");
    assert!(files.len() >= 5, "scenario files missing");
    let (mut same, mut changed) = (0, 0);
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let s: IdentityScenario = toml::from_str(&std::fs::read_to_string(&file).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let traces: Vec<Trace> = s
            .trace
            .iter()
            .map(|t| {
                let target = t.target.as_deref().unwrap_or("198.51.100.10");
                trace(target, true, &t.hops)
            })
            .collect();
        let mut sig = PathSignature::of(&traces[0]);
        for (i, (spec, t)) in s.trace.iter().zip(&traces).enumerate().skip(1) {
            let got = sig.compare(t);
            let ctx = format!("{name} ({}), trace {i}: {got:?}", s.description);
            match spec.expect.as_deref() {
                Some("same") => {
                    same += 1;
                    assert_eq!(got, RouteComparison::Same, "{ctx}");
                    let id = sig.id().to_string();
                    sig.absorb(t);
                    assert_eq!(sig.id(), id, "a route keeps its id: {ctx}");
                }
                Some("changed") => {
                    changed += 1;
                    assert!(matches!(got, RouteComparison::Changed { .. }), "{ctx}");
                    assert_ne!(path_id(t), sig.id(), "{ctx}");
                    sig = PathSignature::of(t);
                }
                other => panic!("{ctx}: expect must be same or changed, not {other:?}"),
            }
            if spec.same_path_id {
                assert_eq!(path_id(t), path_id(&traces[i - 1]), "{ctx}");
            }
        }
    }
    assert!(
        same >= 4 && changed >= 3,
        "cover both outcomes: {same} same, {changed} changed"
    );
}

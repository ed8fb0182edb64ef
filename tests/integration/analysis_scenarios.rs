//! Table-driven tests of the analysis: every file under
//! `tests/resources/analysis/` is one trace, a policy and the verdict it must
//! get; every file under `tests/resources/identity/` is a sequence of traces
//! of one target and whether each followed the route of the ones before.

use serde::Deserialize;
use std::path::{Path, PathBuf};
use transitwatch::analysis::{analyze, path_id, PathSignature, Policy, RouteComparison};
use transitwatch::model::{
    Anomaly, CountryCode, GeoSource, Hop, HopGeo, Protocol, RttMs, TargetRef, Trace, VantageRef,
};

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
}

impl HopSpec {
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
                ..HopGeo::default()
            },
            hostname: None,
        }
    }
}

fn trace(target: &str, reached: bool, hops: &[HopSpec]) -> Trace {
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
        hops: hops.iter().map(HopSpec::hop).collect(),
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
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TraceSpec {
    target: String,
    reached: bool,
    hops: Vec<HopSpec>,
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
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(&file).unwrap();
        let s: AnalysisScenario = toml::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let policy = Policy {
            home: s.policy.home.as_ref().map(|h| h.parse().unwrap()),
            also_home: codes(&s.policy.also_home),
            allowed: codes(&s.policy.allowed),
        };
        let t = trace(&s.trace.target, s.trace.reached, &s.trace.hops);
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

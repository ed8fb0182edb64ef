//! How long the metrics registry takes for a large deployment: 1000 targets
//! whose last paths have 12 hops each (about 40 000 series), with per-hop
//! metrics off, then on for every target (about 128 000 series).
//!
//! Prints, for each, the time per `observe` (first observation of a target,
//! and a re-observation that replaces a changed path) and the median of 50
//! `render` calls, with the size of the exposition. Goal: `render` under
//! 50 ms. Run with `cargo bench --bench metrics_render`.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};
use transitwatch::metrics::{Metrics, PerHop};
use transitwatch::model::{
    CountryCode, GeoSource, Hop, HopGeo, PathVerdict, Protocol, RttMs, TargetRef, Trace,
    TraceRecord, VantageRef, VerdictClass,
};

const TARGETS: usize = 1000;
const HOPS: u8 = 12;
const RENDERS: usize = 50;
const COUNTRIES: [&str; 6] = ["LS", "ZA", "LS", "GB", "IE", "DE"];

fn cc(s: &str) -> CountryCode {
    s.parse().unwrap_or_else(|e| panic!("{e}"))
}

/// Target `i`'s path; `variant` shifts the transit addresses (a route change).
fn record(i: usize, variant: u8) -> TraceRecord {
    let id = u32::try_from(i).unwrap_or(u32::MAX);
    let dest = IpAddr::V4(Ipv4Addr::from(0xC633_0000 | id)); // 198.51.x.x
    let hops: Vec<Hop> = (1..=HOPS)
        .map(|ttl| {
            let addr = if ttl == HOPS {
                dest
            } else {
                IpAddr::V4(Ipv4Addr::new(10, variant, (id % 200) as u8, ttl))
            };
            let country = COUNTRIES[(i + usize::from(ttl)) % COUNTRIES.len()];
            let best = f64::from(ttl) * 3.1;
            let located = ttl % 4 != 0;
            Hop {
                ttl,
                addr: Some(addr),
                addrs: vec![addr],
                sent: 3,
                received: 3,
                rtt_ms: Some(RttMs {
                    best,
                    avg: best + 1.0,
                    worst: best + 2.0,
                }),
                geo: HopGeo {
                    country: located.then(|| cc(country)),
                    asn: Some(64_500 + u32::from(ttl)),
                    lat: located.then_some(-29.31 + f64::from(ttl)),
                    lon: located.then_some(27.48 + f64::from(ttl)),
                    source: GeoSource::Mmdb,
                    plausible: Some(true),
                    ..HopGeo::default()
                },
                hostname: None,
                mpls: Vec::new(),
            }
        })
        .collect();
    let foreign: Vec<CountryCode> = hops
        .iter()
        .filter_map(|h| h.geo.country)
        .filter(|c| c.as_str() != "LS")
        .collect();
    let class = if foreign.is_empty() {
        VerdictClass::Domestic
    } else {
        VerdictClass::ForeignTransit
    };
    TraceRecord::new(
        Trace {
            target: TargetRef {
                name: format!("target-{i}"),
                host: format!("t{i}.example.ls"),
                addr: Some(dest),
            },
            vantage: VantageRef {
                name: "bench".to_string(),
                country: Some(cc("LS")),
            },
            protocol: Protocol::Icmp,
            port: None,
            started_at: "2026-11-26T12:00:00Z".parse().unwrap(),
            reached: true,
            hops,
        },
        PathVerdict {
            class,
            countries: vec![],
            violation: !foreign.is_empty(),
            foreign_countries: foreign,
            foreign_asns: vec![],
            path_id: format!("{i}-{variant}"),
            explanation: String::new(),
            suspect_countries: vec![],
            anomalies: vec![],
            claims: Vec::new(),
            confidence: None,
            exchanges: Vec::new(),
        },
    )
}

fn per_call(total: Duration, calls: usize) -> f64 {
    total.as_secs_f64() * 1e6 / calls as f64
}

fn main() {
    run(false);
    run(true);
}

fn run(per_hop: bool) {
    let metrics = Metrics::new("bench");
    let names: Vec<String> = (0..TARGETS).map(|i| format!("target-{i}")).collect();
    if per_hop {
        metrics.set_per_hop(PerHop {
            targets: names.iter().cloned().collect(),
            dependency_paths: false,
        });
    }
    let first: Vec<TraceRecord> = (0..TARGETS).map(|i| record(i, 0)).collect();
    let second: Vec<TraceRecord> = (0..TARGETS).map(|i| record(i, 1)).collect();

    let start = Instant::now();
    for (name, rec) in names.iter().zip(&first) {
        metrics.observe(name, rec, false, Duration::from_millis(120), 1.7e9);
    }
    let first_observe = start.elapsed();

    let start = Instant::now();
    for (name, rec) in names.iter().zip(&second) {
        metrics.observe(name, rec, true, Duration::from_millis(120), 1.7e9 + 300.0);
    }
    let replace_observe = start.elapsed();
    metrics.retain_targets(&names);

    let mut times = Vec::with_capacity(RENDERS);
    let mut bytes = 0;
    let mut lines = 0;
    for _ in 0..RENDERS {
        let start = Instant::now();
        let text = metrics
            .render()
            .unwrap_or_else(|e| panic!("render failed: {e}"));
        times.push(start.elapsed());
        bytes = text.len();
        lines = text.lines().filter(|l| !l.starts_with('#')).count();
        black_box(text);
    }
    times.sort();
    let median = times[RENDERS / 2];

    println!(
        "metrics_render: {TARGETS} targets x {HOPS} hops, per-hop metrics {}: {lines} series, {:.1} KiB exposition",
        if per_hop { "on" } else { "off" },
        bytes as f64 / 1024.0
    );
    println!(
        "  observe (first path):    {:.1} us/trace",
        per_call(first_observe, TARGETS)
    );
    println!(
        "  observe (changed path):  {:.1} us/trace",
        per_call(replace_observe, TARGETS)
    );
    println!(
        "  render: median {:.2} ms, min {:.2} ms, max {:.2} ms over {RENDERS} runs (goal < 50 ms)",
        median.as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        times[RENDERS - 1].as_secs_f64() * 1e3,
    );
}

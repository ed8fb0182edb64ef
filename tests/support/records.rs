//! Trace records for store and export tests: traces over the lab's
//! addresses, located with the lab's override file and judged by the real
//! analysis, so records look exactly like the daemon's.

use std::net::IpAddr;
use std::sync::Arc;
use transitwatch::analysis::Policy;
use transitwatch::geo::GeoDb;
use transitwatch::model::{
    Hop, HopGeo, Protocol, RttMs, TargetRef, Trace, TraceRecord, VantageRef,
};
use transitwatch::store::{GeoIpDatabase, NewTrace, Provenance};
use transitwatch::units::Timestamp;

/// The lab's operator overrides as the only geolocation source.
pub fn lab_geo() -> GeoDb {
    GeoDb::open(&[], Some(&super::root().join("tests/lab/lab-geo.csv"))).expect("lab overrides")
}

/// A hop: responders (most frequent first), probes sent and received,
/// best RTT in ms (average and worst follow from it, as replies could
/// have given them).
pub fn hop(ttl: u8, addrs: &[&str], sent: u32, received: u32, best: f64) -> Hop {
    let addrs: Vec<IpAddr> = addrs.iter().map(|a| a.parse().unwrap()).collect();
    let rtt_ms = match received {
        0 => None,
        1 => Some(RttMs {
            best,
            avg: best,
            worst: best,
        }),
        2 => Some(RttMs {
            best,
            avg: best + 0.5,
            worst: best + 1.0,
        }),
        _ => Some(RttMs {
            best,
            avg: best + 0.5,
            worst: best + 1.125,
        }),
    };
    Hop {
        ttl,
        addr: addrs.first().copied(),
        addrs,
        sent,
        received,
        rtt_ms,
        geo: HopGeo::default(),
        hostname: None,
        mpls: Vec::new(),
    }
}

/// A judged record of `name` → `dest` started at `unix`.
pub fn record(name: &str, dest: &str, unix: i64, hops: Vec<Hop>) -> TraceRecord {
    let policy = Policy {
        home: Some("LS".parse().unwrap()),
        ..Policy::default()
    };
    transitwatch::pipeline::judge(trace(name, dest, unix, hops), &lab_geo(), None, &policy)
}

/// The trace of `name` (host `NAME.ls.test`) → `dest` started at `unix`
/// from the lab's vantage point, not yet located or judged.
pub fn trace(name: &str, dest: &str, unix: i64, hops: Vec<Hop>) -> Trace {
    let addr: IpAddr = dest.parse().unwrap();
    let reached = hops.iter().any(|h| h.addrs.contains(&addr));
    Trace {
        target: TargetRef {
            name: name.to_string(),
            host: format!("{name}.ls.test"),
            addr: Some(addr),
        },
        vantage: VantageRef {
            name: "maseru-lab".to_string(),
            country: Some("LS".parse().unwrap()),
        },
        protocol: Protocol::Icmp,
        port: None,
        started_at: Timestamp::from_unix(unix).unwrap(),
        reached,
        hops,
    }
}

/// The domestic route to the portal: LS all the way.
pub fn domestic(name: &str, unix: i64) -> TraceRecord {
    record(
        name,
        "198.51.100.10",
        unix,
        vec![
            hop(1, &["198.18.1.2"], 3, 3, 0.05),
            hop(2, &["198.18.2.2"], 3, 3, 0.07),
            hop(3, &["198.18.3.2"], 3, 2, 0.09),
            hop(4, &["198.51.100.10"], 3, 3, 0.11),
        ],
    )
}

/// The route through the two "South African" routers, with a silent hop
/// and an ECMP sibling: foreign transit.
pub fn via_za(name: &str, unix: i64) -> TraceRecord {
    record(
        name,
        "198.51.100.20",
        unix,
        vec![
            hop(1, &["198.18.1.2"], 3, 3, 0.05),
            hop(2, &["198.18.4.2", "198.18.4.3"], 3, 3, 0.06),
            hop(3, &[], 3, 0, 0.0),
            hop(4, &["198.18.6.2"], 4, 3, 0.1),
            hop(5, &["198.51.100.20"], 3, 3, 0.12),
        ],
    )
}

/// The foreign-hosted service.
pub fn in_ie(name: &str, unix: i64) -> TraceRecord {
    record(
        name,
        "203.0.113.10",
        unix,
        vec![
            hop(1, &["198.18.1.2"], 3, 3, 0.05),
            hop(2, &["198.18.8.2"], 3, 3, 0.3),
            hop(3, &["203.0.113.10"], 3, 1, 0.4),
        ],
    )
}

/// A provenance like the daemon's.
pub fn provenance() -> Arc<Provenance> {
    Arc::new(Provenance {
        config_sha256: Some("ab".repeat(32)),
        geoip: vec![GeoIpDatabase {
            kind: "city".to_string(),
            database_type: "GeoLite2-City".to_string(),
            build_epoch: 1_700_000_000,
            vendor: None,
            sha256: None,
        }],
        location_files: Vec::new(),
        version: "0.1.0".to_string(),
    })
}

/// A record to store under `key`.
pub fn new_trace(key: &str, record: TraceRecord) -> NewTrace {
    NewTrace {
        path_key: key.parse().expect("a path key"),
        record,
        duration: Some(std::time::Duration::from_millis(1500)),
        packet_size: Some(64),
        provenance: provenance(),
    }
}

/// Assert that `analyzed` (records `analyze` made from an Atlas export)
/// has the same hops and verdicts as `stored` (the same records exported
/// as JSON Lines), record by record: TTLs, responders, probes sent and
/// received, best and worst RTT (the average within a microsecond), hop
/// locations, and class, countries, foreign countries and ASNs, violation
/// and path id.
pub fn assert_same_hops_and_verdicts(stored: &[serde_json::Value], analyzed: &[serde_json::Value]) {
    assert_eq!(stored.len(), analyzed.len(), "record counts differ");
    for (i, (s, a)) in stored.iter().zip(analyzed).enumerate() {
        let id = &s["stored"]["id"];
        let what = format!("record {i} (trace {id})");
        assert_eq!(a["target"]["addr"], s["target"]["addr"], "{what}");
        assert_eq!(a["target"]["host"], s["target"]["host"], "{what}");
        assert_eq!(a["started_at"], s["started_at"], "{what}");
        assert_eq!(a["protocol"], s["protocol"], "{what}");
        assert_eq!(a["reached"], s["reached"], "{what}");
        let (sh, ah) = (s["hops"].as_array().unwrap(), a["hops"].as_array().unwrap());
        assert_eq!(sh.len(), ah.len(), "{what}: hop counts");
        for (x, y) in sh.iter().zip(ah) {
            let hop = format!("{what} hop {}", x["ttl"]);
            for key in ["ttl", "addr", "addrs", "sent", "received"] {
                assert_eq!(x[key], y[key], "{hop}: {key}");
            }
            for key in ["country", "asn", "source"] {
                assert_eq!(x["geo"][key], y["geo"][key], "{hop}: geo.{key}");
            }
            if x["rtt_ms"].is_null() {
                assert!(y["rtt_ms"].is_null(), "{hop}: rtt_ms");
                continue;
            }
            for key in ["best", "worst"] {
                assert_eq!(x["rtt_ms"][key], y["rtt_ms"][key], "{hop}: rtt_ms.{key}");
            }
            let (xa, ya) = (
                x["rtt_ms"]["avg"].as_f64().unwrap(),
                y["rtt_ms"]["avg"].as_f64().unwrap(),
            );
            assert!((xa - ya).abs() <= 0.001, "{hop}: rtt_ms.avg {xa} vs {ya}");
        }
        for key in [
            "class",
            "countries",
            "foreign_countries",
            "foreign_asns",
            "violation",
            "path_id",
        ] {
            assert_eq!(
                a["verdict"][key], s["verdict"][key],
                "{what}: verdict.{key}"
            );
        }
    }
}

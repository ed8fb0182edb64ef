//! The published `transitwatch.trace/1` schema (`schemas/trace.schema.json`)
//! holds for real records, checked by Python's `jsonschema`: the lines of
//! `analyze --json` over a generated RIPE Atlas dump located by the lab's
//! overrides (silent hops, ECMP, a path through ZA, one ending in IE, IPv6,
//! UDP, a forwarding loop, an unreached destination, a result without
//! `dst_addr`), over the paths of a generated scamper `tracelb` record that
//! end in every way, over the real Atlas results and scamper traces and
//! `tracelb` records of `../shared/data` when it is there; the lines of `export --format jsonl`
//! (with `stored`) of records with evidence, claims, exchanges, host names,
//! a port and DNS dependencies; and a record with DNS dependencies as serde
//! writes it. The schema bites: an unknown field, a three-letter country,
//! an unknown class, a hop without TTL, `null` where a field is left out
//! and a field left out where it is `null` are each refused, at the place
//! that is wrong.
//!
//! `support::schema::assert_valid` checks a sample of each source that
//! shows every field, type and enum value the source has; every record is
//! also checked in one pass by one Python process.

use crate::support;

use serde_json::Value;
use std::collections::BTreeSet;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use support::records::{domestic, hop, in_ie, new_trace, via_za};
use support::{bin, root, text};
use transitwatch::analysis::Policy;
use transitwatch::geo::{GeoDb, GeoSources};
use transitwatch::model::dns::{
    CnameStep, DnsDependencies, Nameserver, Problem, ProblemKind, QueryType, Zone,
};
use transitwatch::model::{
    Confidence, Coordinates, Hop, Protocol, TargetRef, Trace, TraceRecord, VantageRef,
};
use transitwatch::store::{GeoIpDatabase, LocationFile, NewTrace, Provenance, Store};
use transitwatch::units::Timestamp;

const SCHEMA: &str = "trace.schema.json";

/// 2023-11-14T22:13:20Z.
const T0: i64 = 1_700_000_000;

fn shared_data() -> Option<PathBuf> {
    let dir = root().join("../shared/data");
    dir.is_dir().then_some(dir)
}

/// One generated Atlas result: destination (`None`: no `dst_addr`, only a
/// name), address family, protocol, and each hop's three repliers (`*`
/// for no reply).
struct AtlasResult {
    dst: Option<&'static str>,
    af: u8,
    proto: &'static str,
    hops: &'static [[&'static str; 3]],
}

const RESULTS: &[AtlasResult] = &[
    // Domestic, with an ECMP sibling at hop 2.
    AtlasResult {
        dst: Some("198.51.100.10"),
        af: 4,
        proto: "ICMP",
        hops: &[
            ["198.18.1.2"; 3],
            ["198.18.2.2", "198.18.2.3", "198.18.2.2"],
            ["198.18.3.2"; 3],
            ["198.51.100.10"; 3],
        ],
    },
    // Through ZA, with a silent hop and a lost reply.
    AtlasResult {
        dst: Some("198.51.100.20"),
        af: 4,
        proto: "ICMP",
        hops: &[
            ["198.18.1.2"; 3],
            ["198.18.4.2"; 3],
            ["*"; 3],
            ["198.18.6.2", "*", "198.18.6.2"],
            ["198.51.100.20"; 3],
        ],
    },
    // Ending in Ireland, over UDP.
    AtlasResult {
        dst: Some("203.0.113.10"),
        af: 4,
        proto: "UDP",
        hops: &[["198.18.1.2"; 3], ["198.18.8.2"; 3], ["203.0.113.10"; 3]],
    },
    // Never reached: silent to the end.
    AtlasResult {
        dst: Some("198.51.100.30"),
        af: 4,
        proto: "ICMP",
        hops: &[["198.18.1.2"; 3], ["*"; 3], ["*"; 3]],
    },
    // A forwarding loop: 198.18.2.2 at TTLs 2 and 4.
    AtlasResult {
        dst: Some("198.51.100.40"),
        af: 4,
        proto: "ICMP",
        hops: &[
            ["198.18.1.2"; 3],
            ["198.18.2.2"; 3],
            ["198.18.3.2"; 3],
            ["198.18.2.2"; 3],
        ],
    },
    // The probe never resolved the name: no `dst_addr`.
    AtlasResult {
        dst: None,
        af: 4,
        proto: "ICMP",
        hops: &[["198.18.1.2"; 3], ["198.18.2.2"; 3]],
    },
    // IPv6 through ZA.
    AtlasResult {
        dst: Some("2001:db8:100::20"),
        af: 6,
        proto: "ICMP",
        hops: &[
            ["2001:db8:1::2"; 3],
            ["2001:db8:4::2"; 3],
            ["2001:db8:6::2"; 3],
            ["2001:db8:100::20"; 3],
        ],
    },
];

/// Every generated result twice (other probes, times and round-trip
/// times), as Atlas JSON Lines.
fn dump() -> Vec<u8> {
    let mut out = Vec::new();
    for round in 0..2u8 {
        for (i, r) in RESULTS.iter().enumerate() {
            let hops: Vec<String> = r
                .hops
                .iter()
                .enumerate()
                .map(|(h, repliers)| {
                    let replies: Vec<String> = repliers
                        .iter()
                        .enumerate()
                        .map(|(k, from)| {
                            if *from == "*" {
                                return r#"{"x":"*"}"#.to_string();
                            }
                            let rtt = 0.5 + h as f64 * 2.25 + k as f64 * 0.25 + f64::from(round);
                            // The ZA path's second hop is inside an LSP:
                            // its replies quote two MPLS labels.
                            let icmpext = if r.dst == Some("198.51.100.20") && h == 1 {
                                r#","icmpext":{"version":2,"rfc4884":1,"obj":[{"class":1,"type":1,"mpls":[{"exp":0,"label":24005,"s":0,"ttl":1},{"exp":5,"label":16,"s":1,"ttl":1}]}]}"#
                            } else {
                                ""
                            };
                            format!(
                                r#"{{"from":"{from}","rtt":{rtt},"size":68,"ttl":{}{icmpext}}}"#,
                                64 - h
                            )
                        })
                        .collect();
                    format!(r#"{{"hop":{},"result":[{}]}}"#, h + 1, replies.join(","))
                })
                .collect();
            let dst = match r.dst {
                Some(addr) => format!(r#""dst_addr":"{addr}","dst_name":"{addr}""#),
                None => r#""dst_name":"portal.gov.ls""#.to_string(),
            };
            let src = if r.af == 6 {
                "2001:db8:1::1"
            } else {
                "198.18.1.1"
            };
            writeln!(
                out,
                r#"{{"fw":5080,"msm_id":{},"prb_id":{},"timestamp":{},"af":{},"proto":"{}","src_addr":"{src}","from":"{src}",{dst},"result":[{}]}}"#,
                1000 + i,
                10 + round,
                T0 + 60 * (i64::from(round) * 10 + i as i64),
                r.af,
                r.proto,
                hops.join(",")
            )
            .unwrap();
        }
    }
    out
}

/// `transitwatch analyze ARGS --json --input INPUT`: its records, one per
/// line, after a clean exit.
fn analyze(input: &Path, args: &[&str]) -> Vec<Value> {
    let out = Command::new(bin())
        .arg("analyze")
        .args(args)
        .args(["--json", "--input"])
        .arg(input)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    json_lines(&out.stdout)
}

fn json_lines(bytes: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

/// What `value` shows: each field's path (array items as `[]`) with the
/// JSON type there, and the value of the enum-like fields.
fn shape(value: &Value, path: &str, out: &mut BTreeSet<String>) {
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(s) => {
            let field = path.rsplit('.').next().unwrap_or_default();
            if [
                "kind",
                "status",
                "source",
                "class",
                "protocol",
                "confidence",
                "query",
            ]
            .contains(&field)
            {
                out.insert(format!("{path} = {s}"));
            }
            "string"
        }
        Value::Array(items) => {
            for item in items {
                shape(item, &format!("{path}[]"), out);
            }
            "array"
        }
        Value::Object(fields) => {
            for (key, item) in fields {
                shape(item, &format!("{path}.{key}"), out);
            }
            "object"
        }
    };
    out.insert(format!("{path}: {kind}"));
}

/// The records that each show something no record before them did: every
/// field, type and enum value of `records`, in a few of them (at most 50).
fn covering_sample(records: &[Value]) -> Vec<&Value> {
    let mut seen = BTreeSet::new();
    let mut sample = Vec::new();
    for r in records {
        let mut s = BTreeSet::new();
        shape(r, "$", &mut s);
        if !s.is_subset(&seen) {
            seen.extend(s);
            sample.push(r);
        }
    }
    assert!(sample.len() <= 50, "{} records in the sample", sample.len());
    sample
}

/// Every record of `what` is valid: a covering sample through
/// `support::schema::assert_valid`, all of them in one pass.
fn assert_all_valid(what: &str, records: &[Value]) {
    assert!(!records.is_empty(), "{what}: no records");
    for r in covering_sample(records) {
        support::schema::assert_valid(SCHEMA, r);
    }
    let Some(errors) = support::schema::errors(SCHEMA, records) else {
        return;
    };
    for (i, (r, e)) in records.iter().zip(errors).enumerate() {
        assert!(e.is_none(), "{what}, record {i}: {}\n{r}", e.unwrap());
    }
}

/// The number of records that have a value at `pointer` for which `test`
/// holds.
fn count(records: &[Value], pointer: &str, test: impl Fn(&Value) -> bool) -> usize {
    records
        .iter()
        .filter(|r| r.pointer(pointer).is_some_and(&test))
        .count()
}

#[test]
fn analyzed_atlas_results_over_the_lab_fit_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("traceroute.jsonl");
    std::fs::write(&input, dump()).unwrap();
    let overrides = root().join("tests/lab/lab-geo.csv");
    let records = analyze(
        &input,
        &[
            "--input-format",
            "atlas",
            "--home",
            "LS",
            "--overrides",
            overrides.to_str().unwrap(),
        ],
    );
    assert_eq!(records.len(), 2 * RESULTS.len());
    // The varieties the dump is for are there.
    for class in [
        "domestic",
        "foreign_transit",
        "foreign_destination",
        "indeterminate",
    ] {
        assert!(
            count(&records, "/verdict/class", |c| c == class) > 0,
            "{class}"
        );
    }
    assert!(count(&records, "/target/addr", Value::is_null) > 0);
    assert!(count(&records, "/hops/2/addr", Value::is_null) > 0);
    assert!(
        count(&records, "/hops/0/addr", |a| a
            .as_str()
            .is_some_and(|a| a.contains(':')))
            > 0
    );
    assert!(count(&records, "/protocol", |p| p == "udp") > 0);
    assert!(count(&records, "/verdict/claims", Value::is_array) > 0);
    assert!(count(&records, "/verdict/confidence", Value::is_string) > 0);
    for kind in ["forwarding_loop", "destination_not_reached"] {
        assert!(
            count(&records, "/verdict/anomalies", |a| a
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["kind"] == kind))
                > 0,
            "{kind}"
        );
    }
    assert_all_valid("analyze of the generated Atlas dump", &records);
}

#[test]
fn analyzed_real_atlas_results_fit_the_schema() {
    let Some(data) = shared_data() else {
        eprintln!("SKIPPED analyzed_real_atlas_results_fit_the_schema: ../shared/data is absent");
        return;
    };
    let probes = data.join("atlas/probes_meta.json");
    let records = analyze(
        &data.join("atlas/traceroutes.jsonl"),
        &[
            "--input-format",
            "atlas",
            "--probes",
            probes.to_str().unwrap(),
        ],
    );
    assert!(count(&records, "/target/addr", Value::is_null) > 0);
    assert!(count(&records, "/vantage/country", Value::is_string) > 0);
    assert_all_valid("analyze of ../shared/data/atlas", &records);
}

#[test]
fn analyzed_scamper_traces_fit_the_schema() {
    let Some(data) = shared_data() else {
        eprintln!("SKIPPED analyzed_scamper_traces_fit_the_schema: ../shared/data is absent");
        return;
    };
    let mut records = Vec::new();
    for entry in std::fs::read_dir(data.join("scamper")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_file() && name.starts_with("mlab_") {
            records.extend(analyze(&path, &["--input-format", "scamper"]));
        }
    }
    // Five traces (scamper2) and five tracelb paths (scamper1, triggertrace).
    assert!(records.len() >= 10, "{} records", records.len());
    assert!(count(&records, "/tracelb/end", Value::is_string) >= 5);
    assert_all_valid("analyze of ../shared/data/scamper", &records);
}

/// A `tracelb` record from 198.18.1.1 to 198.51.100.10 whose paths end in
/// every way: .2 fans out to .3 (on to the destination), .4 (silence), .5
/// (a dead end: no node, not the destination) and .6, which links back to
/// .2 (a cycle).
fn tracelb_every_end() -> String {
    let to = |addr: &str, ttl: u32| {
        format!(r#"{{"addr":"{addr}","probes":[{{"ttl":{ttl},"replies":[{{"rtt":1.5}}]}}]}}"#)
    };
    let star = r#"{"addr":"*"}"#;
    let nodes = [
        format!(
            r#"{{"addr":"198.18.1.2","linkc":4,"links":[[{},{},{},{}]]}}"#,
            to("198.18.2.2", 2),
            to("198.18.4.2", 2),
            to("198.18.5.2", 2),
            to("198.18.6.2", 2)
        ),
        format!(
            r#"{{"addr":"198.18.2.2","linkc":1,"links":[[{}]]}}"#,
            to("198.51.100.10", 3)
        ),
        format!(r#"{{"addr":"198.18.4.2","linkc":1,"links":[[{star}],[{star}]]}}"#),
        format!(
            r#"{{"addr":"198.18.6.2","linkc":1,"links":[[{}]]}}"#,
            to("198.18.1.2", 3)
        ),
    ];
    format!(
        r#"{{"type":"tracelb","method":"udp-sport","dport":33435,"src":"198.18.1.1","dst":"198.51.100.10","start":{{"sec":{T0},"usec":0}},"firsthop":1,"attempts":3,"nodes":[{}]}}"#,
        nodes.join(",")
    ) + "\n"
}

#[test]
fn analyzed_tracelb_paths_fit_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("tracelb.jsonl");
    std::fs::write(&input, tracelb_every_end()).unwrap();
    let overrides = root().join("tests/lab/lab-geo.csv");
    let records = analyze(
        &input,
        &[
            "--input-format",
            "scamper",
            "--home",
            "LS",
            "--overrides",
            overrides.to_str().unwrap(),
        ],
    );
    assert_eq!(records.len(), 4);
    for end in ["destination", "silent", "dead_end", "loop"] {
        assert_eq!(count(&records, "/tracelb/end", |e| e == end), 1, "{end}");
    }
    assert_eq!(count(&records, "/tracelb/paths", |n| n == 4), 4);
    assert_eq!(count(&records, "/port", |p| p == 33435), 4);
    assert_all_valid("analyze of a generated tracelb record", &records);
}

/// The lab's overrides and the PeeringDB sample as location sources: an
/// exchange LAN that the overrides place elsewhere gives evidence that
/// disagrees.
fn geo() -> GeoDb {
    GeoDb::open_with(&GeoSources {
        overrides: Some(root().join("tests/lab/lab-geo.csv")),
        peeringdb: Some(root().join("tests/resources/peeringdb/sample.json")),
        ..GeoSources::default()
    })
    .expect("the lab's location files")
}

/// A trace of `name` to `dest` from Maseru (its coordinates known, so
/// round-trip times are checked against locations), located and judged
/// like the daemon's with home LS and `min_confidence`.
fn judged(
    name: &str,
    dest: &str,
    hops: Vec<Hop>,
    protocol: Protocol,
    port: Option<u16>,
    min_confidence: Confidence,
) -> TraceRecord {
    let dest: IpAddr = dest.parse().unwrap();
    let trace = Trace {
        target: TargetRef {
            name: name.to_string(),
            host: format!("{name}.ls.test"),
            addr: Some(dest),
        },
        vantage: VantageRef {
            name: "maseru-lab".to_string(),
            country: Some("LS".parse().unwrap()),
        },
        protocol,
        port,
        started_at: Timestamp::from_unix(T0 + 100).unwrap(),
        reached: hops.iter().any(|h| h.addrs.contains(&dest)),
        hops,
    };
    let policy = Policy {
        home: Some("LS".parse().unwrap()),
        min_confidence,
        ..Policy::default()
    };
    let maseru = Coordinates {
        lat: -29.31,
        lon: 27.48,
    };
    transitwatch::pipeline::judge(trace, &geo(), Some(maseru), &policy)
}

/// A TCP trace to port 443 of `bank`: host names (one whose Dublin hint
/// the round-trip time rules out, one agreeing with the overrides on
/// Johannesburg), the Lesotho exchange, a hop the overrides place in LS on
/// a South African exchange's LAN, a silent hop, ECMP.
fn rich_record() -> TraceRecord {
    let mut hops = vec![
        hop(1, &["198.18.1.2"], 3, 3, 0.05),
        hop(2, &["192.0.2.10"], 3, 3, 0.2),
        hop(3, &["198.18.4.2", "198.18.4.3"], 3, 3, 8.0),
        hop(4, &[], 3, 0, 0.0),
        hop(5, &["198.51.100.130"], 3, 2, 9.0),
        hop(6, &["198.51.100.20"], 3, 3, 10.0),
    ];
    hops[0].hostname = Some("be4307.ccr31.dub07.atlas.cogentco.com".to_string());
    hops[2].hostname = Some("xe-0-0-1.jnb-pe-2.za.liquidtelecom.net".to_string());
    judged(
        "bank",
        "198.51.100.20",
        hops,
        Protocol::Tcp,
        Some(443),
        Confidence::Low,
    )
}

/// A UDP trace of `shop` over IPv6 that never arrives: a hop the overrides place in
/// Ireland answers far too fast to be there (a suspect country), the next
/// is on the German exchange's LAN (a claim too weak for the policy's
/// `min_confidence`: suspected).
fn implausible_record() -> TraceRecord {
    judged(
        "shop",
        "2001:db8:113::99",
        vec![
            hop(1, &["2001:db8:1::2"], 3, 3, 0.05),
            hop(2, &["2001:db8:8::2"], 3, 3, 0.3),
            hop(3, &["2001:db8:1104::7"], 3, 1, 180.0),
            hop(4, &[], 3, 0, 0.0),
        ],
        Protocol::Udp,
        Some(33434),
        Confidence::High,
    )
}

fn addrs(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|a| a.parse().unwrap()).collect()
}

/// `bank.ls.test`, an alias of `bank.cdn.example`, with both zones, their
/// name servers and every kind of problem (`other` with its detail).
fn dns_dependencies() -> DnsDependencies {
    let problem = |kind, name: &str, query| Problem {
        kind,
        name: name.to_string(),
        query,
    };
    DnsDependencies {
        name: "bank.ls.test".to_string(),
        cname_chain: vec![CnameStep {
            name: "bank.ls.test".to_string(),
            target: "bank.cdn.example".to_string(),
        }],
        canonical: Some("bank.cdn.example".to_string()),
        addresses: addrs(&["198.51.100.20", "2001:db8:100::20"]),
        zone: Some(Zone {
            name: "ls.test".to_string(),
            nameservers: vec![Nameserver {
                name: "ns1.ls.test".to_string(),
                addresses: addrs(&["198.18.210.53", "2001:db8:210::53"]),
            }],
        }),
        target_zone: Some(Zone {
            name: "cdn.example".to_string(),
            nameservers: vec![
                Nameserver {
                    name: "ns1.cdn.example".to_string(),
                    addresses: addrs(&["203.0.113.53"]),
                },
                Nameserver {
                    name: "ns2.cdn.example".to_string(),
                    addresses: Vec::new(),
                },
            ],
        }),
        problems: vec![
            problem(ProblemKind::Timeout, "ns2.cdn.example", QueryType::A),
            problem(ProblemKind::ServFail, "ns2.cdn.example", QueryType::AAAA),
            problem(ProblemKind::NxDomain, "old.cdn.example", QueryType::CNAME),
            problem(ProblemKind::NoNameservers, "lame.example", QueryType::NS),
            problem(ProblemKind::CnameLoop, "loop.example", QueryType::CNAME),
            problem(ProblemKind::ChainTooLong, "long.example", QueryType::CNAME),
            problem(ProblemKind::Refused, "cdn.example", QueryType::NS),
            problem(
                ProblemKind::Other("the answer was truncated".to_string()),
                "ns1.cdn.example",
                QueryType::AAAA,
            ),
        ],
    }
}

/// A name whose chain loops: nothing established but the problem.
fn unresolved_dns() -> DnsDependencies {
    DnsDependencies {
        name: "loop.ls.test".to_string(),
        cname_chain: vec![
            CnameStep {
                name: "loop.ls.test".to_string(),
                target: "loop2.ls.test".to_string(),
            },
            CnameStep {
                name: "loop2.ls.test".to_string(),
                target: "loop.ls.test".to_string(),
            },
        ],
        canonical: None,
        addresses: Vec::new(),
        zone: None,
        target_zone: None,
        problems: vec![Problem {
            kind: ProblemKind::CnameLoop,
            name: "loop.ls.test".to_string(),
            query: QueryType::CNAME,
        }],
    }
}

#[test]
fn exported_records_with_evidence_claims_exchanges_and_dns_fit_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("transitwatch.db");
    let mut with_dns = rich_record();
    with_dns.trace.started_at = Timestamp::from_unix(T0 + 200).unwrap();
    with_dns.dns = Some(Box::new(dns_dependencies()));
    // Nothing recorded but the version, and the location files listed.
    let sparse = NewTrace {
        path_key: "bank/ipv4".parse().unwrap(),
        record: with_dns,
        duration: None,
        packet_size: None,
        provenance: Arc::new(Provenance {
            config_sha256: None,
            geoip: vec![GeoIpDatabase {
                kind: "asn".to_string(),
                database_type: "GeoLite2-ASN".to_string(),
                build_epoch: 1_700_000_000,
                vendor: None,
                sha256: None,
            }],
            location_files: vec![
                LocationFile {
                    kind: "overrides".to_string(),
                    path: "/etc/transitwatch/overrides.csv".to_string(),
                    sha256: "cd".repeat(32),
                },
                LocationFile {
                    kind: "peeringdb".to_string(),
                    path: "/var/lib/transitwatch/peeringdb.json".to_string(),
                    sha256: "ef".repeat(32),
                },
            ],
            version: "0.1.0".to_string(),
        }),
    };
    let mut store = Store::open(&db).unwrap();
    for (key, r) in [
        ("gov/ipv4", domestic("gov", T0)),
        ("bank", via_za("bank", T0 + 10)),
        ("shop", in_ie("shop", T0 + 20)),
        ("bank", rich_record()),
        ("shop", implausible_record()),
    ] {
        store.insert(&new_trace(key, r)).unwrap();
    }
    store.insert(&sparse).unwrap();
    drop(store);
    let out = Command::new(bin())
        .args(["export", "--format", "jsonl", "--store"])
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let lines = json_lines(&out.stdout);
    assert_eq!(lines.len(), 6);
    // What these records are for: every optional part is there.
    let any_hop = |test: &dyn Fn(&Value) -> bool| {
        lines
            .iter()
            .flat_map(|l| l["hops"].as_array().unwrap())
            .any(test)
    };
    assert!(any_hop(&|h| h.get("hostname").is_some()), "host names");
    assert!(any_hop(&|h| h["geo"].get("ixp").is_some()), "exchange LANs");
    assert!(
        any_hop(&|h| h["geo"].get("confidence").is_some()),
        "confidence"
    );
    for status in ["chosen", "agrees", "disagrees", "rejected"] {
        assert!(
            any_hop(&|h| h["geo"]["evidence"]
                .as_array()
                .is_some_and(|e| e.iter().any(|e| e["status"] == status))),
            "{status} evidence"
        );
    }
    for field in ["claims", "exchanges", "confidence"] {
        assert!(
            count(&lines, &format!("/verdict/{field}"), |_| true) > 0,
            "verdict.{field}"
        );
    }
    assert!(count(&lines, "/port", |p| p == 443) > 0);
    assert!(count(&lines, "/verdict/suspect_countries/0", Value::is_object) > 0);
    assert!(count(&lines, "/verdict/claims/0/suspected", |s| s == true) > 0);
    assert!(count(&lines, "/dns/problems", Value::is_array) > 0);
    assert!(count(&lines, "/stored/config_sha256", Value::is_null) > 0);
    assert!(count(&lines, "/stored/location_files/0", Value::is_object) > 0);
    assert_all_valid("export --format jsonl", &lines);
}

#[test]
fn records_with_dns_dependencies_fit_the_schema_as_serde_writes_them() {
    let mut records = Vec::new();
    for dns in [dns_dependencies(), unresolved_dns()] {
        let mut record = rich_record();
        record.dns = Some(Box::new(dns));
        records.push(serde_json::to_value(&record).unwrap());
    }
    let other = &records[0]["dns"]["problems"][7];
    assert_eq!(other["kind"], "other", "{other}");
    assert_eq!(other["detail"], "the answer was truncated", "{other}");
    assert!(records[0]["dns"]["problems"][0].get("detail").is_none());
    assert!(records[1]["dns"]["zone"].is_null());
    assert_all_valid("records with dns", &records);
}

#[test]
fn records_with_load_balanced_paths_fit_the_schema() {
    use transitwatch::analysis::multipath::{multipath, Enumeration};
    use transitwatch::model::multipath::MultipathStop;
    // One path at home with a silent hop, one through ZA (the rich record).
    let home = judged(
        "bank",
        "198.51.100.20",
        vec![
            hop(1, &["198.18.1.2"], 1, 1, 0.05),
            hop(2, &[], 1, 0, 0.0),
            hop(3, &["198.51.100.20"], 1, 1, 0.3),
        ],
        Protocol::Udp,
        Some(33434),
        Confidence::Low,
    );
    let mut record = rich_record();
    let run = Enumeration {
        started_at: Timestamp::from_unix(T0 + 100).unwrap(),
        port: 33434,
        flows: 11,
        silent_flows: 1,
        stop: MultipathStop::Confident,
    };
    let found = multipath(
        run,
        &[(vec![40_002, 40_000], home), (vec![40_001], record.clone())],
    );
    assert_eq!(found.paths[0].source_ports, [40_000, 40_002]);
    assert_eq!(
        found.summary,
        "1 of 2 load-balanced paths crosses South Africa (ZA)"
    );
    record.multipath = Some(Box::new(found));
    let value = serde_json::to_value(&record).unwrap();
    assert!(value["multipath"]["paths"][0]["hops"][1]["addr"].is_null());
    assert_eq!(value["multipath"]["crossing"][0]["country"], "ZA");
    assert_all_valid("records with multipath", &[value]);
}

#[test]
fn the_schema_refuses_what_records_never_hold() {
    let mut good = rich_record();
    good.dns = Some(Box::new(dns_dependencies()));
    good.tracelb = Some(transitwatch::model::TracelbPath {
        record: 1,
        line: 3,
        path: 2,
        paths: 4,
        capped: false,
        end: transitwatch::model::PathEnd::Destination,
    });
    let good = serde_json::to_value(&good).unwrap();
    let changed = |pointer: &str, value: Option<Value>| {
        let mut doc = good.clone();
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
    };
    let null = Some(Value::Null);
    let text = |s: &str| Some(Value::from(s));
    // Each change, and where the schema must say it is wrong.
    let cases: Vec<(&str, Value, &str)> = vec![
        ("an unknown field", changed("/extra", Some(1.into())), "$"),
        (
            "a three-letter country",
            changed("/vantage/country", text("lso")),
            "$.vantage.country",
        ),
        (
            "a lower-case country",
            changed("/verdict/countries/0", text("ls")),
            "$.verdict.countries[0]",
        ),
        (
            "an unknown class",
            changed("/verdict/class", text("foreign")),
            "$.verdict.class",
        ),
        (
            "a hop without TTL",
            changed("/hops/0/ttl", None),
            "$.hops[0]",
        ),
        (
            "a TTL beyond 255",
            changed("/hops/0/ttl", Some(256.into())),
            "$.hops[0].ttl",
        ),
        (
            "no address",
            changed("/hops/0/addr", text("198.18.1.300")),
            "$.hops[0].addr",
        ),
        (
            "null for an absent hop confidence",
            changed("/hops/0/geo/confidence", null.clone()),
            "$.hops[0].geo.confidence",
        ),
        (
            "null for absent claims",
            changed("/verdict/claims", null.clone()),
            "$.verdict.claims",
        ),
        (
            "an always-present field left out",
            changed("/hops/0/geo/database", None),
            "$.hops[0].geo",
        ),
        (
            "a time with an offset",
            changed("/started_at", text("2023-11-14T22:13:20+00:00")),
            "$.started_at",
        ),
        (
            "`other` without its detail",
            changed("/dns/problems/7/detail", None),
            "$.dns.problems[7]",
        ),
        (
            "a detail on a timeout",
            changed("/dns/problems/0/detail", text("slow")),
            "$.dns.problems[0]",
        ),
        (
            "an unknown tracelb path end",
            changed("/tracelb/end", text("lost")),
            "$.tracelb.end",
        ),
        (
            "a tracelb path 0",
            changed("/tracelb/path", Some(0.into())),
            "$.tracelb.path",
        ),
        (
            "an unknown anomaly",
            changed(
                "/verdict/anomalies",
                Some(serde_json::json!([{"kind": "blackhole"}])),
            ),
            "$.verdict.anomalies[0]",
        ),
    ];
    let mut docs = vec![good.clone()];
    docs.extend(cases.iter().map(|(_, doc, _)| doc.clone()));
    let Some(errors) = support::schema::errors(SCHEMA, &docs) else {
        return;
    };
    assert_eq!(errors[0], None, "the unchanged record is valid");
    for ((what, _, at), error) in cases.iter().zip(&errors[1..]) {
        let error = error
            .as_deref()
            .unwrap_or_else(|| panic!("{what}: accepted"));
        // At that place, or (but for the record itself) inside it.
        let inside = *at != "$"
            && (error.starts_with(&format!("{at}.")) || error.starts_with(&format!("{at}[")));
        assert!(
            error.starts_with(&format!("{at}: ")) || inside,
            "{what}: refused at the wrong place: {error}"
        );
    }
}

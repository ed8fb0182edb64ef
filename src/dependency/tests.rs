//! The rules of `dependency`, on hand-built records judged by the real
//! analysis (home LS).

use super::*;
use crate::analysis::{analyze, Policy};
use crate::model::dns::{DnsDependencies, Nameserver, Problem, ProblemKind, QueryType, Zone};
use crate::model::{GeoSource, HopGeo, PathFamily, Protocol, RttMs, TargetRef, Trace, VantageRef};
use nameservers::{service_dns, DnsPolicy, ZoneRole};
use std::str::FromStr;

const T0: i64 = 1_800_000_000;

/// A located hop: country, AS, organisation, confidence, plausibility.
#[derive(Clone, Copy)]
struct At {
    country: Option<&'static str>,
    asn: Option<u32>,
    org: Option<&'static str>,
    confidence: Confidence,
    plausible: bool,
}

const LS: At = At {
    country: Some("LS"),
    asn: Some(64500),
    org: Some("Lesotho Telecom"),
    confidence: Confidence::High,
    plausible: true,
};
const ZA: At = At {
    country: Some("ZA"),
    asn: Some(64510),
    org: Some("Cloudy Transit (Pty) Ltd"),
    confidence: Confidence::High,
    plausible: true,
};
const IE: At = At {
    country: Some("IE"),
    asn: Some(64520),
    org: Some("Emerald Hosting"),
    confidence: Confidence::High,
    plausible: true,
};
const NOWHERE: At = At {
    country: None,
    asn: None,
    org: None,
    confidence: Confidence::Low,
    plausible: true,
};

fn hop(ttl: u8, addr: &str, at: At) -> Hop {
    let addr: IpAddr = addr.parse().unwrap();
    Hop {
        ttl,
        addr: Some(addr),
        addrs: vec![addr],
        sent: 3,
        received: 3,
        rtt_ms: Some(RttMs {
            best: f64::from(ttl),
            avg: f64::from(ttl),
            worst: f64::from(ttl),
        }),
        geo: HopGeo {
            country: at.country.map(|c| c.parse().unwrap()),
            city: None,
            asn: at.asn,
            as_org: at.org.map(str::to_string),
            source: if at.country.is_some() {
                GeoSource::Mmdb
            } else {
                GeoSource::None
            },
            plausible: at.country.map(|_| at.plausible),
            confidence: at.country.map(|_| at.confidence),
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
        addrs: Vec::new(),
        sent: 3,
        received: 0,
        rtt_ms: None,
        geo: HopGeo::default(),
        hostname: None,
        mpls: Vec::new(),
    }
}

/// A record of `name` to `dest` over `hops`, judged with home LS and
/// `min_confidence`.
fn judged(name: &str, dest: &str, hops: Vec<Hop>, min: Confidence) -> TraceRecord {
    let addr: IpAddr = dest.parse().unwrap();
    let trace = Trace {
        target: TargetRef {
            name: name.into(),
            host: format!("{name}.ls"),
            addr: Some(addr),
        },
        vantage: VantageRef {
            name: "maseru".into(),
            country: Some("LS".parse().unwrap()),
        },
        protocol: Protocol::Icmp,
        port: None,
        started_at: Timestamp::from_unix(T0).unwrap(),
        reached: hops.iter().any(|h| h.addrs.contains(&addr)),
        hops,
    };
    let policy = Policy {
        home: Some("LS".parse().unwrap()),
        min_confidence: min,
        ..Policy::default()
    };
    let verdict = analyze(&trace, &policy);
    TraceRecord::new(trace, verdict)
}

fn record(name: &str, dest: &str, hops: Vec<Hop>) -> TraceRecord {
    judged(name, dest, hops, Confidence::Low)
}

/// LS, ZA, ZA, LS: transit through South Africa.
fn via_za(name: &str) -> TraceRecord {
    record(
        name,
        "198.51.100.20",
        vec![
            hop(1, "198.18.1.2", LS),
            hop(2, "198.18.4.2", ZA),
            silent(3),
            hop(4, "198.18.5.2", ZA),
            hop(5, "198.51.100.20", LS),
        ],
    )
}

/// LS all the way.
fn domestic(name: &str) -> TraceRecord {
    record(
        name,
        "198.51.100.10",
        vec![
            hop(1, "198.18.1.2", LS),
            hop(2, "198.18.2.2", LS),
            hop(3, "198.51.100.10", LS),
        ],
    )
}

/// Hosted in South Africa.
fn in_za(name: &str) -> TraceRecord {
    record(
        name,
        "198.18.9.9",
        vec![
            hop(1, "198.18.1.2", LS),
            hop(2, "198.18.4.2", ZA),
            hop(3, "198.18.9.9", ZA),
        ],
    )
}

/// Hosted in Ireland.
fn in_ie(name: &str) -> TraceRecord {
    record(
        name,
        "203.0.113.10",
        vec![
            hop(1, "198.18.1.2", LS),
            hop(2, "198.18.8.2", IE),
            hop(3, "203.0.113.10", IE),
        ],
    )
}

/// Nothing located: indeterminate.
fn unlocated(name: &str) -> TraceRecord {
    record(
        name,
        "192.0.2.50",
        vec![hop(1, "192.0.2.1", NOWHERE), silent(2), silent(3)],
    )
}

fn key(text: &str) -> PathKey {
    text.parse().unwrap()
}

fn answer(failure: Failure, paths: &[(&str, TraceRecord)]) -> WhatIf {
    let keyed: Vec<(PathKey, &TraceRecord)> = paths.iter().map(|(k, r)| (key(k), r)).collect();
    what_if(
        failure,
        Timestamp::from_unix(T0 + 60).unwrap(),
        keyed.iter().map(|(k, r)| (k, *r)),
    )
}

fn za() -> Failure {
    Failure::country("ZA").unwrap()
}

fn effect_of(answer: &WhatIf, name: &str) -> Effect {
    service(answer, name).effect
}

fn service<'a>(answer: &'a WhatIf, name: &str) -> &'a ServiceImpact {
    answer
        .services
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no service {name}"))
}

#[test]
fn transit_is_route_and_the_destination_is_hosting() {
    let a = answer(
        za(),
        &[
            ("bank", via_za("bank")),
            ("cloud", in_za("cloud")),
            ("home", domestic("home")),
        ],
    );
    assert_eq!(effect_of(&a, "bank"), Effect::LosesRoute);
    assert_eq!(effect_of(&a, "cloud"), Effect::LosesHosting);
    assert_eq!(effect_of(&a, "home"), Effect::Unaffected);
    let bank = &service(&a, "bank").paths[0];
    assert_eq!(bank.depends, PathDependency::Route);
    // The evidence: the ZA hops, with their addresses and confidence.
    let ttls: Vec<(u8, String, HopRole)> = bank
        .hops
        .iter()
        .map(|h| (h.ttl, h.addr.to_string(), h.role))
        .collect();
    assert_eq!(
        ttls,
        [
            (2, "198.18.4.2".to_string(), HopRole::Transit),
            (4, "198.18.5.2".to_string(), HopRole::Transit)
        ]
    );
    assert!(bank
        .hops
        .iter()
        .all(|h| h.confidence == Some(Confidence::High) && h.country == za_code()));
    let cloud = &service(&a, "cloud").paths[0];
    assert_eq!(cloud.depends, PathDependency::Hosting);
    assert_eq!(cloud.hops.len(), 2);
    assert_eq!(cloud.hops[1].role, HopRole::Destination);
    assert_eq!(
        service(&a, "bank").reason,
        "bank crosses ZA at hops 2 and 4 (198.18.4.2, 198.18.5.2)"
    );
    assert_eq!(
        service(&a, "cloud").reason,
        "cloud answers from ZA (198.18.9.9, hop 3) and crosses it at hop 2 (198.18.4.2)"
    );
    assert_eq!(
        (a.counts.services, a.counts.paths),
        (3, 3),
        "three services, one path each"
    );
    assert_eq!(
        (
            a.counts.loses_hosting,
            a.counts.loses_route,
            a.counts.unaffected
        ),
        (1, 1, 1)
    );
    assert_eq!(a.failure.description, "South Africa (ZA)");
    assert_eq!(
        a.sentences[0],
        "If South Africa (ZA) becomes unavailable, 1 of 3 national services loses its hosting: cloud; 1 loses its route: bank."
    );
    assert_eq!(a.sentences[1], "1 service is unaffected: home.");
}

fn za_code() -> Option<CountryCode> {
    Some("ZA".parse().unwrap())
}

#[test]
fn a_service_loses_only_what_all_its_paths_lose() {
    let a = answer(
        za(),
        &[
            // Dual stack, IPv6 stays home: degraded.
            ("dual/ipv4", via_za("dual")),
            ("dual/ipv6", domestic("dual")),
            // Both families through ZA: the route is lost.
            ("both/ipv4", via_za("both")),
            ("both/ipv6", via_za("both")),
            // One family hosted in ZA, the other through it: hosting.
            ("mixed/ipv4", in_za("mixed")),
            ("mixed/ipv6", via_za("mixed")),
            ("bank", via_za("bank")),
            ("gov-portal", via_za("gov-portal")),
            ("home", domestic("home")),
        ],
    );
    assert_eq!(effect_of(&a, "dual"), Effect::Degraded);
    assert_eq!(effect_of(&a, "both"), Effect::LosesRoute);
    assert_eq!(effect_of(&a, "mixed"), Effect::LosesHosting);
    let dual = service(&a, "dual");
    let keys: Vec<(&str, PathDependency)> = dual
        .paths
        .iter()
        .map(|p| (p.path_key.as_str(), p.depends))
        .collect();
    assert_eq!(
        keys,
        [
            ("dual/ipv4", PathDependency::Route),
            ("dual/ipv6", PathDependency::None)
        ]
    );
    assert!(
        dual.reason.starts_with(
            "some paths depend on ZA, others do not: dual/ipv4 crosses ZA at hops 2 and 4"
        ),
        "{}",
        dual.reason
    );
    assert!(dual.reason.ends_with("dual/ipv6 does not cross ZA"));
    assert_eq!((a.counts.services, a.counts.paths), (6, 9));
    assert_eq!(
        a.sentences[0],
        "If South Africa (ZA) becomes unavailable, 1 of 6 national services loses its hosting: mixed; 3 lose their route: bank, both, gov-portal; 1 is degraded: dual."
    );
}

#[test]
fn the_briefs_sentence_reads_as_written() {
    let a = answer(
        za(),
        &[
            ("bank", via_za("bank")),
            ("gov-portal", via_za("gov-portal")),
            ("dual/ipv4", domestic("dual")),
            ("dual/ipv6", via_za("dual")),
            ("home", domestic("home")),
            ("shop", in_ie("shop")),
        ],
    );
    assert_eq!(
        a.sentences,
        [
            "If South Africa (ZA) becomes unavailable, 2 of 5 national services lose their route: bank, gov-portal; 1 is degraded: dual.",
            "2 services are unaffected: home, shop.",
        ]
    );
}

#[test]
fn indeterminate_paths_are_unknown_rather_than_guessed() {
    let a = answer(
        za(),
        &[
            ("lost", unlocated("lost")),
            // One family through ZA, the other not located: nothing is
            // known to survive.
            ("half/ipv4", via_za("half")),
            ("half/ipv6", unlocated("half")),
            // One family clear, the other not located: it keeps working.
            ("fine/ipv4", domestic("fine")),
            ("fine/ipv6", unlocated("fine")),
        ],
    );
    assert_eq!(effect_of(&a, "lost"), Effect::Unknown);
    assert_eq!(
        service(&a, "lost").paths[0].depends,
        PathDependency::Unknown
    );
    assert_eq!(effect_of(&a, "half"), Effect::Unknown);
    assert!(service(&a, "half")
        .reason
        .starts_with("some paths depend on ZA and the others are too little located to tell"));
    assert_eq!(effect_of(&a, "fine"), Effect::Unaffected);
    assert_eq!(a.counts.unknown, 2);
    assert_eq!(
        a.sentences,
        [
            "If South Africa (ZA) becomes unavailable, none of the 3 national services loses its route or its hosting as far as their located paths show.",
            "2 services cannot be judged, too little of their paths being located: half, lost.",
        ]
    );
    // A located hop in ZA on an indeterminate path is still a dependency.
    let ends_abroad = record(
        "abroad",
        "192.0.2.77",
        vec![
            hop(1, "198.18.1.2", LS),
            hop(2, "198.18.4.2", ZA),
            silent(3),
        ],
    );
    assert_eq!(ends_abroad.verdict.class, VerdictClass::Indeterminate);
    let a = answer(za(), &[("abroad", ends_abroad)]);
    assert_eq!(effect_of(&a, "abroad"), Effect::LosesRoute);
}

#[test]
fn ases_match_by_number_and_organisations_by_text_in_any_case() {
    let paths = [
        ("bank", via_za("bank")),
        ("shop", in_ie("shop")),
        ("home", domestic("home")),
    ];
    let a = answer(Failure::asn("AS64510").unwrap(), &paths);
    assert_eq!(effect_of(&a, "bank"), Effect::LosesRoute);
    assert_eq!(effect_of(&a, "shop"), Effect::Unaffected);
    assert_eq!(a.failure.kind, FailureKind::Asn);
    assert_eq!(a.failure.asn, Some(64510));
    assert_eq!(a.failure.description, "AS64510 (Cloudy Transit (Pty) Ltd)");
    assert_eq!(
        a.networks,
        [NetworkMatch {
            asn: 64510,
            name: Some("Cloudy Transit (Pty) Ltd".into()),
            operator: None,
            services: vec!["bank".into()],
        }]
    );
    // The hosting network: the destination's AS.
    let a = answer(Failure::asn("64520").unwrap(), &paths);
    assert_eq!(effect_of(&a, "shop"), Effect::LosesHosting);

    for text in ["cloudy", "CLOUDY TRANSIT", "  Cloudy ", "(pty)"] {
        let a = answer(Failure::org(text).unwrap(), &paths);
        assert_eq!(effect_of(&a, "bank"), Effect::LosesRoute, "{text}");
        assert_eq!(effect_of(&a, "home"), Effect::Unaffected, "{text}");
        assert_eq!(a.networks.len(), 1, "{text}");
    }
    let a = answer(Failure::org("Cloudy").unwrap(), &paths);
    assert_eq!(a.failure.description, "organisation matching `Cloudy`");
    assert_eq!(
        a.sentences[..2],
        [
            "If the organisation matching `Cloudy` becomes unavailable, 1 of 3 national services loses its route: bank.",
            "`Cloudy` matches the organisation of AS64510 (Cloudy Transit (Pty) Ltd).",
        ]
    );
    // A text that matches nothing: nothing depends on it, no error.
    let a = answer(Failure::org("Nimbus").unwrap(), &paths);
    assert_eq!(a.counts.unaffected, 3);
    assert!(a.networks.is_empty());
    assert_eq!(
        a.sentences,
        [
            "If the organisation matching `Nimbus` becomes unavailable, none of the 3 national services loses its route or its hosting.",
            "No hop of the latest paths belongs to a network whose organisation matches `Nimbus`: nothing depends on it.",
        ]
    );
    // An AS no hop is in keeps its bare number.
    let a = answer(Failure::asn("64999").unwrap(), &paths);
    assert_eq!(a.failure.description, "AS64999");
    assert_eq!(a.sentences[1], "No hop of the latest paths is in AS64999.");
}

#[test]
fn hops_whose_country_the_verdict_does_not_accept_do_not_count() {
    // Hop 2 answers too fast to be in ZA: implausible, a suspect country.
    let implausible = At {
        plausible: false,
        ..ZA
    };
    let fast = record(
        "fast",
        "198.51.100.10",
        vec![
            hop(1, "198.18.1.2", LS),
            hop(2, "198.18.4.2", implausible),
            hop(3, "198.51.100.10", LS),
        ],
    );
    assert_eq!(fast.verdict.suspect_countries[0].country.as_str(), "ZA");
    // A ZA claim below the policy's minimum confidence: suspected.
    let weak = At {
        confidence: Confidence::Low,
        ..ZA
    };
    let suspected = judged(
        "weak",
        "198.51.100.10",
        vec![
            hop(1, "198.18.1.2", LS),
            hop(2, "198.18.4.2", weak),
            hop(3, "198.51.100.10", LS),
        ],
        Confidence::Medium,
    );
    assert!(suspected.verdict.claims[0].suspected);
    let paths = [("fast", fast), ("weak", suspected)];
    let a = answer(za(), &paths);
    assert_eq!(effect_of(&a, "fast"), Effect::Unaffected);
    assert_eq!(effect_of(&a, "weak"), Effect::Unaffected);
    assert_eq!(
        a.sentences[1],
        "No located hop of the latest paths is in South Africa (ZA)."
    );
    // The AS is a fact about the address: it still counts, without the
    // rejected location.
    let a = answer(Failure::asn("64510").unwrap(), &paths);
    assert_eq!(effect_of(&a, "fast"), Effect::LosesRoute);
    let hop = &service(&a, "fast").paths[0].hops[0];
    assert_eq!((hop.ttl, hop.country), (2, None));
    let hop = &service(&a, "weak").paths[0].hops[0];
    assert_eq!((hop.ttl, hop.country), (2, None));
}

#[test]
fn unreached_paths_are_route_and_echoes_past_the_destination_are_ignored() {
    // Never reached: every ZA hop is route, even the last.
    let unreached = record(
        "gone",
        "198.51.100.99",
        vec![
            hop(1, "198.18.1.2", LS),
            hop(2, "198.18.4.2", ZA),
            hop(3, "198.18.6.2", LS),
        ],
    );
    assert!(!unreached.trace.reached);
    // The destination (hop 3, LS) answers again at hop 4, geolocated in ZA
    // by a stale entry: that is not transit.
    let mut echo = domestic("echo");
    echo.trace.hops.push(hop(4, "198.51.100.10", ZA));
    let a = answer(za(), &[("gone", unreached), ("echo", echo)]);
    assert_eq!(effect_of(&a, "gone"), Effect::LosesRoute);
    assert_eq!(effect_of(&a, "echo"), Effect::Unaffected);
}

#[test]
fn nothing_stored_is_nothing_to_judge() {
    let a = answer(za(), &[]);
    assert_eq!(a.counts, Counts::default());
    assert!(a.services.is_empty());
    assert_eq!(
        a.sentences,
        ["No national service has a trace at or before 2027-01-15T08:01:00Z: there is nothing to judge."]
    );
    assert_eq!(
        text::render(&a),
        "No national service has a trace at or before 2027-01-15T08:01:00Z: there is nothing to judge.\n"
    );
}

#[test]
fn failures_parse_or_say_why_not() {
    assert_eq!(
        Failure::country("za"),
        Ok(Failure::Country("ZA".parse().unwrap()))
    );
    for bad in ["XX", "ZAF", "", "Z1"] {
        let e = Failure::country(bad).unwrap_err().to_string();
        assert!(e.contains(&format!("`{bad}`")), "{bad}: {e}");
        assert!(e.contains("ISO 3166-1"), "{e}");
    }
    assert_eq!(Failure::asn("64510"), Ok(Failure::Asn(64510)));
    assert_eq!(Failure::asn("as64510"), Ok(Failure::Asn(64510)));
    for bad in ["AS", "x", "-1", "4294967296", "64 510"] {
        let e = Failure::asn(bad).unwrap_err().to_string();
        assert!(e.contains("is not an AS number"), "{bad}: {e}");
    }
    assert_eq!(Failure::org(" Cloudy "), Ok(Failure::Org("Cloudy".into())));
    assert_eq!(Failure::org("  "), Err(InvalidFailure::EmptyOrg));
}

#[test]
fn the_text_form_has_the_sentences_and_a_row_per_matching_hop() {
    let a = answer(
        za(),
        &[
            ("dual/ipv4", domestic("dual")),
            ("dual/ipv6", via_za("dual")),
            ("bank", via_za("bank")),
        ],
    );
    let text = text::render(&a);
    assert!(text.starts_with(&format!("{}\n", a.sentences[0])), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    let header = lines.iter().position(|l| l.starts_with("service")).unwrap();
    assert!(lines[header].contains("matching hops"));
    assert!(lines[header + 1].starts_with("bank"));
    assert!(lines[header + 1].contains("loses route"));
    assert!(lines[header + 1]
        .contains("2 198.18.4.2 (ZA, AS64510 Cloudy Transit (Pty) Ltd, high confidence)"));
    assert!(lines[header + 2].contains("4 198.18.5.2"));
    assert!(lines[header + 3].starts_with("dual"));
    assert!(lines[header + 3].contains("degraded"));
    assert!(lines[header + 3].contains("dual/ipv4"));
    assert!(lines[header + 4].contains("dual/ipv6"));
    assert!(text.contains(": 3 paths of 2 services."), "{text}");
    assert!(text.contains("Matching hops are those in South Africa (ZA)."));
}

#[test]
fn path_keys_group_by_service() {
    let k = PathKey::of_family("dual", PathFamily::Ipv6);
    let r = via_za("dual");
    let a = what_if(za(), Timestamp::from_unix(T0).unwrap(), [(&k, &r)]);
    assert_eq!(a.services[0].name, "dual");
    assert_eq!(a.services[0].paths[0].path_key, "dual/ipv6");
    let json = serde_json::to_value(&a).unwrap();
    assert_eq!(json["schema"], WHATIF_SCHEMA);
    assert_eq!(json["failure"]["kind"], "country");
    assert_eq!(json["failure"]["country"], "ZA");
    assert!(json["failure"].get("asn").is_none());
    assert_eq!(json["services"][0]["effect"], "loses_route");
    assert_eq!(json["services"][0]["paths"][0]["depends"], "route");
    assert!(json["services"][0]["paths"][0].get("trace_id").is_none());
    assert_eq!(
        json["services"][0]["paths"][0]["hops"][0]["role"],
        "transit"
    );
}

#[test]
fn organisations_match_by_the_operator_table_too() {
    const AMAZON_AT_HOME: At = At {
        country: Some("LS"),
        asn: Some(16509),
        org: Some("AMAZON-02"),
        confidence: Confidence::High,
        plausible: true,
    };
    const UNNAMED_AMAZON: At = At {
        org: None,
        asn: Some(14618),
        ..AMAZON_AT_HOME
    };
    let hosted = |name: &str, at: At| {
        record(
            name,
            "198.51.100.30",
            vec![hop(1, "198.18.1.2", LS), hop(2, "198.51.100.30", at)],
        )
    };
    let paths = [
        ("portal", hosted("portal", AMAZON_AT_HOME)),
        ("tax", hosted("tax", UNNAMED_AMAZON)),
        ("bank", via_za("bank")),
    ];
    // The portal's AS name contains the text; the tax service's AS14618
    // has no name at all: only the operator table says it is Amazon's.
    for text in ["Amazon", "amazon", " AMAZON "] {
        let a = answer(Failure::org(text).unwrap(), &paths);
        assert_eq!(effect_of(&a, "portal"), Effect::LosesHosting, "{text}");
        assert_eq!(effect_of(&a, "tax"), Effect::LosesHosting, "{text}");
        assert_eq!(effect_of(&a, "bank"), Effect::Unaffected, "{text}");
        let networks: Vec<(u32, Option<&str>)> = a
            .networks
            .iter()
            .map(|m| (m.asn, m.operator.as_deref()))
            .collect();
        assert_eq!(networks, [(14618, Some("Amazon")), (16509, Some("Amazon"))]);
    }
    let a = answer(Failure::org("Amazon").unwrap(), &paths);
    assert_eq!(
        a.sentences[1],
        "`Amazon` matches the organisations of AS14618 (operated by Amazon), AS16509 (AMAZON-02, operated by Amazon)."
    );
    // Only the name of the AS's own operator counts: Cloudflare's does not
    // match a network Amazon operates.
    let a = answer(Failure::org("Cloudflare").unwrap(), &paths);
    assert!(a.networks.is_empty());
    // A deployment's table names its own operators.
    let own = crate::operators::OperatorTable::parse(
        "[[operator]]\nname = \"Nimbus Carrier\"\ncountry = \"ZA\"\nkind = \"transit\"\nasns = [64510]\n",
    )
    .unwrap();
    let table = crate::operators::OperatorTable::shipped().overlaid(&own);
    let mut assessment = Assessment::new(
        Failure::org("nimbus").unwrap(),
        Timestamp::from_unix(T0 + 60).unwrap(),
    )
    .with_operators(table);
    for (name, r) in &paths {
        assessment.add(&key(name), r, None);
    }
    let a = assessment.finish();
    assert_eq!(effect_of(&a, "bank"), Effect::LosesRoute);
    assert_eq!(a.networks[0].operator.as_deref(), Some("Nimbus Carrier"));
    // Without it, the shipped table knows no Nimbus.
    let a = answer(Failure::org("nimbus").unwrap(), &paths);
    assert!(a.networks.is_empty());
}

// ---- DNS: name servers as dependencies -------------------------------

/// A zone `name` served by `servers` (each with one address).
fn zone(name: &str, servers: &[&str]) -> Zone {
    Zone {
        name: name.into(),
        nameservers: servers
            .iter()
            .enumerate()
            .map(|(i, s)| Nameserver {
                name: (*s).into(),
                addresses: vec![format!("198.18.99.{}", i + 1).parse().unwrap()],
            })
            .collect(),
    }
}

/// What `name` depends on: its zone, and an alias into `target` when given.
fn dns_of(name: &str, own: Option<Zone>, alias: Option<(&str, Zone)>) -> DnsDependencies {
    DnsDependencies {
        name: name.into(),
        cname_chain: alias
            .iter()
            .map(|(t, _)| crate::model::dns::CnameStep {
                name: name.into(),
                target: (*t).into(),
            })
            .collect(),
        canonical: Some(alias.as_ref().map_or(name, |(t, _)| *t).into()),
        addresses: vec!["198.51.100.10".parse().unwrap()],
        zone: own,
        target_zone: alias.map(|(_, z)| z),
        problems: Vec::new(),
    }
}

fn with_dns(mut r: TraceRecord, dns: DnsDependencies) -> TraceRecord {
    r.dns = Some(Box::new(dns));
    r
}

#[test]
fn a_service_whose_every_name_server_depends_on_za_loses_its_dns() {
    let paths = [
        // bank's own path stays home; its only server is reached via ZA.
        (
            "bank",
            with_dns(
                domestic("bank"),
                dns_of("bank.ls", Some(zone("bank.ls", &["ns1.bank.ls"])), None),
            ),
        ),
        ("dns:ns1.bank.ls/ipv4", via_za("dns:ns1.bank.ls")),
        // gov: two servers, one behind ZA, one at home: the zone survives.
        (
            "gov",
            with_dns(
                domestic("gov"),
                dns_of(
                    "portal.gov.ls",
                    Some(zone("gov.ls", &["ns1.gov.ls", "ns2.gov.ls"])),
                    None,
                ),
            ),
        ),
        ("dns:ns1.gov.ls/ipv4", domestic("dns:ns1.gov.ls")),
        ("dns:ns2.gov.ls/ipv4", in_za("dns:ns2.gov.ls")),
        // tax: its server was never traced: not known to depend.
        (
            "tax",
            with_dns(
                domestic("tax"),
                dns_of("tax.ls", Some(zone("tax.ls", &["ns.tax.ls"])), None),
            ),
        ),
        // pay: loses its route, and its DNS with it.
        (
            "pay",
            with_dns(
                via_za("pay"),
                dns_of("pay.ls", Some(zone("bank.ls", &["ns1.bank.ls"])), None),
            ),
        ),
    ];
    let a = answer(za(), &paths);
    // Name servers' paths are no services.
    assert_eq!(a.counts.services, 4);
    assert_eq!(effect_of(&a, "bank"), Effect::LosesDns);
    let bank = service(&a, "bank");
    assert!(bank.loses_dns);
    assert_eq!(bank.dns[0].zone, "bank.ls");
    assert!(bank.dns[0].lost);
    assert_eq!(bank.dns[0].nameservers[0].depends, PathDependency::Route);
    assert_eq!(
        bank.reason,
        "every name server of bank.ls (ns1.bank.ls) depends on ZA: dns:ns1.bank.ls/ipv4 crosses ZA at hops 2 and 4 (198.18.4.2, 198.18.5.2)"
    );
    let gov = service(&a, "gov");
    assert_eq!(gov.effect, Effect::Unaffected);
    assert!(!gov.loses_dns);
    let servers: Vec<PathDependency> = gov.dns[0].nameservers.iter().map(|n| n.depends).collect();
    assert_eq!(servers, [PathDependency::None, PathDependency::Hosting]);
    let tax = service(&a, "tax");
    assert_eq!(tax.effect, Effect::Unaffected);
    assert_eq!(tax.dns[0].nameservers[0].depends, PathDependency::Unknown);
    let pay = service(&a, "pay");
    assert_eq!(pay.effect, Effect::LosesRoute);
    assert!(pay.loses_dns);
    assert!(pay.reason.contains("; and every name server of bank.ls"));
    assert_eq!(
        (
            a.counts.loses_route,
            a.counts.loses_dns_only,
            a.counts.loses_dns
        ),
        (1, 1, 2)
    );
    assert_eq!(
        a.sentences[0],
        "If South Africa (ZA) becomes unavailable, 1 of 4 national services loses its route: pay; 1 loses its DNS (its name servers): bank; 1 of those losing their route or hosting also loses its DNS: pay."
    );
    // A network seen only on a name server's path lists no "dns:" service.
    assert!(a
        .networks
        .iter()
        .all(|n| n.services.iter().all(|s| !s.starts_with("dns:"))));
    // Ireland: nothing of it.
    let a = answer(Failure::Country("IE".parse().unwrap()), &paths);
    assert_eq!(a.counts.loses_dns, 0);
}

fn latest_of<'r>(
    paths: &'r [(&str, TraceRecord)],
) -> impl Fn(&PathKey) -> Option<(&'r TraceRecord, Option<i64>)> {
    move |k: &PathKey| {
        paths
            .iter()
            .find(|(key_text, _)| *key_text == k.to_string())
            .map(|(_, r)| (r, None))
    }
}

fn ls_policy<'a>(countries: &'a [CountryCode], operators: &'a [String]) -> DnsPolicy<'a> {
    DnsPolicy {
        home: Some("LS".parse().unwrap()),
        accepted_countries: countries,
        accepted_operators: operators,
    }
}

fn emerald() -> OperatorTable {
    OperatorTable::parse(
        "[[operator]]\nname = \"Emerald Cloud\"\ncountry = \"US\"\nkind = \"hosting\"\nasns = [64520]\n",
    )
    .unwrap()
}

#[test]
fn an_alias_into_a_zone_served_only_from_one_foreign_country_is_flagged_unless_accepted() {
    let dns = dns_of(
        "id.gov.ls",
        Some(zone("gov.ls", &["ns1.gov.ls"])),
        Some((
            "ls-id.cloud.ie",
            zone("cloud.ie", &["ns1.cloud.ie", "ns2.cloud.ie"]),
        )),
    );
    let paths = [
        ("dns:ns1.gov.ls/ipv4", domestic("dns:ns1.gov.ls")),
        ("dns:ns1.cloud.ie/ipv4", in_ie("dns:ns1.cloud.ie")),
        ("dns:ns2.cloud.ie/ipv4", in_ie("dns:ns2.cloud.ie")),
    ];
    let at = Timestamp::from_unix(T0).unwrap();
    let table = emerald();
    let d = service_dns(&dns, at, latest_of(&paths), &table, ls_policy(&[], &[]));
    assert_eq!(d.cname_chain, ["id.gov.ls -> ls-id.cloud.ie"]);
    let own = &d.zones[0];
    assert_eq!((own.role, own.flagged), (ZoneRole::Own, false));
    assert_eq!(own.countries, [CountryCode::from_str("LS").unwrap()]);
    let cloud = &d.zones[1];
    assert_eq!(cloud.role, ZoneRole::AliasTarget);
    assert_eq!(cloud.single_foreign_country, Some("IE".parse().unwrap()));
    assert_eq!(
        cloud.single_foreign_operator.as_deref(),
        Some("Emerald Cloud")
    );
    assert!(cloud.flagged && !cloud.accepted && d.flagged);
    assert_eq!(
        cloud.sentence,
        "cloud.ie (its alias target's zone): every name server (2) is in Ireland (IE) and run by Emerald Cloud, a foreign-based operator; the paths to them cross Ireland (IE)."
    );
    assert!(d.sentence.starts_with("id.gov.ls is an alias of ls-id.cloud.ie. gov.ls (its zone): 1 name server, in Lesotho (LS)."));
    // Accepting the country alone leaves the operator flag standing.
    let ie = ["IE".parse().unwrap()];
    let d = service_dns(&dns, at, latest_of(&paths), &table, ls_policy(&ie, &[]));
    assert!(d.zones[1].flagged);
    // Accepting both: reported, not flagged.
    let ops = ["emerald cloud".to_string()];
    let d = service_dns(&dns, at, latest_of(&paths), &table, ls_policy(&ie, &ops));
    assert!(d.zones[1].accepted && !d.zones[1].flagged && !d.flagged);
    assert!(d.zones[1].sentence.contains("(an accepted dependency)"));
    // Without the operator in the table, only the country flag is raised.
    let d = service_dns(
        &dns,
        at,
        latest_of(&paths),
        &OperatorTable::empty(),
        ls_policy(&ie, &[]),
    );
    assert_eq!(d.zones[1].single_foreign_operator, None);
    assert!(d.zones[1].accepted && !d.flagged);
}

#[test]
fn servers_in_two_countries_or_not_all_located_raise_no_flag_and_say_so() {
    let dns = dns_of("x.ls", Some(zone("x.ls", &["a.x.ls", "b.x.ls"])), None);
    let at = Timestamp::from_unix(T0).unwrap();
    let table = OperatorTable::empty();
    // One in South Africa, one in Ireland: two foreign countries, no single one.
    let paths = [
        ("dns:a.x.ls/ipv4", in_za("dns:a.x.ls")),
        ("dns:b.x.ls/ipv4", in_ie("dns:b.x.ls")),
    ];
    let d = service_dns(&dns, at, latest_of(&paths), &table, ls_policy(&[], &[]));
    assert_eq!(d.zones[0].single_foreign_country, None);
    assert_eq!(d.zones[0].countries.len(), 2);
    // One in Ireland, the other never traced: not enough to say "all".
    let paths = [("dns:a.x.ls/ipv4", in_ie("dns:a.x.ls"))];
    let d = service_dns(&dns, at, latest_of(&paths), &table, ls_policy(&[], &[]));
    let z = &d.zones[0];
    assert_eq!(
        (z.located, z.single_foreign_country, z.flagged),
        (1, None, false)
    );
    assert!(z.sentence.contains("1 of 2 not located"), "{}", z.sentence);
    // An unlocated server (indeterminate path) is no evidence either.
    let paths = [
        ("dns:a.x.ls/ipv4", in_ie("dns:a.x.ls")),
        ("dns:b.x.ls/ipv4", unlocated("dns:b.x.ls")),
    ];
    let d = service_dns(&dns, at, latest_of(&paths), &table, ls_policy(&[], &[]));
    assert_eq!(d.zones[0].single_foreign_country, None);
}

#[test]
fn what_could_not_be_established_is_said_and_the_rest_stands() {
    // A lame zone (no server has an address), a CNAME loop, a SERVFAIL:
    // each a problem; the zone that was found is still judged.
    let mut dns = dns_of("loop.ls", None, None);
    dns.canonical = None;
    dns.addresses.clear();
    dns.cname_chain = vec![
        crate::model::dns::CnameStep {
            name: "loop.ls".into(),
            target: "loop2.ls".into(),
        },
        crate::model::dns::CnameStep {
            name: "loop2.ls".into(),
            target: "loop.ls".into(),
        },
    ];
    dns.problems = vec![
        Problem {
            kind: ProblemKind::CnameLoop,
            name: "loop.ls".into(),
            query: QueryType::CNAME,
        },
        Problem {
            kind: ProblemKind::ServFail,
            name: "loop.ls".into(),
            query: QueryType::NS,
        },
    ];
    let d = service_dns(
        &dns,
        Timestamp::from_unix(T0).unwrap(),
        |_| None,
        &OperatorTable::empty(),
        ls_policy(&[], &[]),
    );
    assert!(d.zones.is_empty() && !d.flagged);
    assert_eq!(
        d.sentence,
        "loop.ls is an alias of a name that could not be resolved. The zone of loop.ls could not be found: who answers for it is not known. Not established: loop.ls CNAME (cname_loop), loop.ls NS (serv_fail)."
    );
    // A zone without name servers: said, and nothing flagged.
    let mut lame = dns_of("lame.ls", Some(zone("lame.ls", &[])), None);
    lame.problems.push(Problem {
        kind: ProblemKind::NoNameservers,
        name: "lame.ls".into(),
        query: QueryType::NS,
    });
    let d = service_dns(
        &lame,
        Timestamp::from_unix(T0).unwrap(),
        |_| None,
        &OperatorTable::empty(),
        ls_policy(&[], &[]),
    );
    assert!(!d.flagged);
    assert!(d
        .sentence
        .contains("lame.ls (its zone): no name server could be found"));
    assert!(d
        .sentence
        .ends_with("Not established: lame.ls NS (no_nameservers)."));
    // And whatif: a service with a lame zone does not lose a DNS it never had
    // evidence for; its paths decide.
    let paths = [("lame", with_dns(via_za("lame"), lame))];
    let a = answer(za(), &paths);
    let s = service(&a, "lame");
    assert_eq!((s.effect, s.loses_dns), (Effect::LosesRoute, false));
}

#[test]
fn the_overview_assesses_every_foreign_country_and_operator_seen_and_counts_services() {
    use overview::{overview, Accepted};
    let table = OperatorTable::parse(
        "[[operator]]\nname = \"Cloudy Transit\"\ncountry = \"ZA\"\nkind = \"transit\"\nasns = [64510]\n\n[[operator]]\nname = \"Emerald Cloud\"\ncountry = \"US\"\nkind = \"hosting\"\nasns = [64520]\n",
    )
    .unwrap();
    let paths = [
        (
            "bank",
            with_dns(
                domestic("bank"),
                dns_of("bank.ls", Some(zone("bank.ls", &["ns1.bank.ls"])), None),
            ),
        ),
        ("dns:ns1.bank.ls/ipv4", via_za("dns:ns1.bank.ls")),
        (
            "id",
            with_dns(
                in_ie("id"),
                dns_of(
                    "id.gov.ls",
                    Some(zone("gov.ls", &["ns1.gov.ls"])),
                    Some(("ls-id.cloud.ie", zone("cloud.ie", &["ns1.cloud.ie"]))),
                ),
            ),
        ),
        ("dns:ns1.gov.ls/ipv4", domestic("dns:ns1.gov.ls")),
        ("dns:ns1.cloud.ie/ipv4", in_ie("dns:ns1.cloud.ie")),
        ("tax", via_za("tax")),
    ];
    let keyed: Vec<(PathKey, &TraceRecord)> = paths.iter().map(|(k, r)| (key(k), r)).collect();
    let mut accepted = BTreeMap::new();
    accepted.insert(
        "tax".to_string(),
        Accepted {
            countries: vec!["ZA".parse().unwrap()],
            operators: Vec::new(),
        },
    );
    let o = overview(
        Timestamp::from_unix(T0 + 60).unwrap(),
        keyed.iter().map(|(k, r)| (k, *r, None)),
        &table,
        Some("LS".parse().unwrap()),
        &accepted,
    );
    // Services only, by name; the name servers' paths count through them.
    let names: Vec<&str> = o.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["bank", "id", "tax"]);
    assert!(o.services[2].dns.is_none());
    // Failures: the foreign countries located (IE, ZA), then the operators
    // seen (by the table's names); never home.
    let failures: Vec<&str> = o
        .at_risk
        .iter()
        .map(|r| r.failure.description.as_str())
        .collect();
    assert_eq!(
        failures,
        [
            "Ireland (IE)",
            "South Africa (ZA)",
            "organisation matching `Cloudy Transit`",
            "organisation matching `Emerald Cloud`"
        ]
    );
    let za = &o.at_risk[1];
    assert_eq!(za.loses_route, ["tax"]);
    assert_eq!(za.loses_dns, ["bank"]);
    let ie = &o.at_risk[0];
    assert_eq!(
        (ie.loses_hosting.as_slice(), ie.loses_dns.as_slice()),
        (&["id".to_string()][..], &["id".to_string()][..])
    );
    // National DNS: id's alias zone is all in Ireland and run by one
    // foreign-based operator; bank's server is reached through ZA.
    assert_eq!(o.dns.services, 2);
    assert_eq!(o.dns.flagged, ["id"]);
    assert_eq!(o.dns.countries[&"ZA".parse().unwrap()], ["bank"]);
    assert_eq!(
        o.dns.sentences[0],
        "1 of 2 national services depends on name servers all in one foreign country or run by one foreign-based operator: id."
    );
    assert_eq!(
        o.dns.sentences[1],
        "The name servers of 1 of 2 national services are in or reached through Ireland (IE): id."
    );
}

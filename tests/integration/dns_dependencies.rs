//! A service's DNS dependencies (`transitwatch::dependency::dns`) against a
//! real recursive server (`support::dns::Unbound` with zones of its own)
//! and hostile ones, on 127.0.0.1:
//! - the CNAME chain is recorded step by step, to the canonical name's
//!   addresses;
//! - the zone of the service's own name, found by the label walk, with its
//!   name servers and their addresses; the zone of a CNAME target too;
//! - a CNAME loop and a chain beyond 8 steps stop with their problem;
//! - a zone without NS (or whose name servers have no address) is
//!   `no_nameservers` while the addresses still come;
//! - a server that never answers gives timeouts within the deadline, one
//!   that answers garbage gives problems, never a panic;
//! - `transitwatch dns` prints the same, as text or JSON lines, with its
//!   exit codes.
//!
//! Without `unbound` (scripts/setup.sh installs it) the tests that need it
//! print a skip line (and fail under `TRANSITWATCH_REQUIRE_LAB=1`).

use crate::support::bin;
use crate::support::dns::{Hostile, Unbound};
use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::time::Duration;
use transitwatch::dependency::dns::{
    resolve, DnsDependencies, DnsResolver, DnsSettings, ProblemKind, QueryType,
};

/// A generous bound on one resolution: a hang guard, not a timing check.
const HANG_GUARD: Duration = Duration::from_secs(60);

/// The lab's zones: a national zone, a service aliased into a cloud zone,
/// a loop, a 10-step chain, a zone without NS, a lame one, an orphan name.
fn zones() -> Vec<String> {
    let mut lines: Vec<String> = [
        r#"local-zone: "gov.ls.test." static"#,
        r#"local-data: "gov.ls.test. NS ns1.gov.ls.test.""#,
        r#"local-data: "gov.ls.test. NS ns2.gov.ls.test.""#,
        r#"local-data: "ns1.gov.ls.test. A 198.51.100.1""#,
        r#"local-data: "ns2.gov.ls.test. A 198.51.100.2""#,
        r#"local-data: "ns2.gov.ls.test. AAAA 2001:db8:53::2""#,
        r#"local-data: "portal.gov.ls.test. A 198.51.100.10""#,
        r#"local-zone: "ls.test." static"#,
        r#"local-data: "ls.test. NS ns.nic.ls.test.""#,
        r#"local-data: "ns.nic.ls.test. A 198.51.100.53""#,
        r#"local-data: "bank.ls.test. CNAME bank.cloud.ie.test.""#,
        r#"local-data: "loop.ls.test. CNAME loop2.ls.test.""#,
        r#"local-data: "loop2.ls.test. CNAME loop.ls.test.""#,
        r#"local-zone: "cloud.ie.test." static"#,
        r#"local-data: "cloud.ie.test. NS ns.cloud.ie.test.""#,
        r#"local-data: "ns.cloud.ie.test. A 203.0.113.53""#,
        r#"local-data: "bank.cloud.ie.test. A 203.0.113.20""#,
        r#"local-data: "bank.cloud.ie.test. AAAA 2001:db8:20::20""#,
        r#"local-zone: "nons.ls.test." static"#,
        r#"local-data: "nons.ls.test. SOA ns.nons.ls.test. host.nons.ls.test. 1 3600 600 86400 60""#,
        r#"local-data: "www.nons.ls.test. A 198.51.100.30""#,
        r#"local-zone: "lame.ls.test." static"#,
        r#"local-data: "lame.ls.test. NS ns.gone.ls.test.""#,
        r#"local-data: "www.lame.ls.test. A 198.51.100.31""#,
        r#"local-zone: "orphan.test." static"#,
        r#"local-data: "www.orphan.test. A 198.51.100.40""#,
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    for i in 0..10 {
        lines.push(format!(
            r#"local-data: "c{i}.ls.test. CNAME c{}.ls.test.""#,
            i + 1
        ));
    }
    lines.push(r#"local-data: "c10.ls.test. A 198.51.100.99""#.to_string());
    lines
}

fn unbound(test: &str) -> Option<Unbound> {
    let lines = zones();
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    Unbound::with_zones(test, &lines)
}

/// `name` resolved at `server`, each query bounded by `timeout`, all of it
/// by `deadline`.
fn run(server: SocketAddr, name: &str, timeout: Duration, deadline: Duration) -> DnsDependencies {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let settings = DnsSettings {
            servers: vec![server],
            timeout,
        };
        let resolver = DnsResolver::new(&settings).expect("resolver");
        let until = tokio::time::Instant::now() + deadline;
        tokio::time::timeout(HANG_GUARD, resolve(name, &resolver, until))
            .await
            .expect("the resolution hangs")
    })
}

fn at(server: &Unbound, name: &str) -> DnsDependencies {
    run(
        server.addr(),
        name,
        Duration::from_secs(5),
        Duration::from_secs(30),
    )
}

fn ips(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|a| a.parse().unwrap()).collect()
}

fn steps(d: &DnsDependencies) -> Vec<(&str, &str)> {
    d.cname_chain
        .iter()
        .map(|s| (s.name.as_str(), s.target.as_str()))
        .collect()
}

fn kinds(d: &DnsDependencies) -> Vec<(ProblemKind, &str, QueryType)> {
    d.problems
        .iter()
        .map(|p| (p.kind.clone(), p.name.as_str(), p.query))
        .collect()
}

#[test]
fn a_national_name_has_its_zone_and_name_servers_with_addresses() {
    let Some(server) = unbound("a_national_name_has_its_zone_and_name_servers_with_addresses")
    else {
        return;
    };
    let d = at(&server, "Portal.gov.ls.test.");
    assert_eq!(d.name, "portal.gov.ls.test");
    assert!(d.cname_chain.is_empty(), "{d:#?}");
    assert_eq!(d.canonical.as_deref(), Some("portal.gov.ls.test"));
    assert_eq!(d.addresses, ips(&["198.51.100.10"]));
    let zone = d.zone.as_ref().expect("a zone");
    assert_eq!(zone.name, "gov.ls.test");
    let ns: Vec<(&str, &[IpAddr])> = zone
        .nameservers
        .iter()
        .map(|n| (n.name.as_str(), n.addresses.as_slice()))
        .collect();
    assert_eq!(
        ns,
        [
            ("ns1.gov.ls.test", &ips(&["198.51.100.1"])[..]),
            (
                "ns2.gov.ls.test",
                &ips(&["198.51.100.2", "2001:db8:53::2"])[..]
            ),
        ]
    );
    assert_eq!(d.target_zone, None);
    assert!(d.problems.is_empty(), "{:#?}", d.problems);
    assert!(d.resolved());
}

#[test]
fn an_alias_into_a_cloud_zone_records_the_chain_and_both_zones() {
    let Some(server) = unbound("an_alias_into_a_cloud_zone_records_the_chain_and_both_zones")
    else {
        return;
    };
    let d = at(&server, "bank.ls.test");
    assert_eq!(steps(&d), [("bank.ls.test", "bank.cloud.ie.test")]);
    assert_eq!(d.canonical.as_deref(), Some("bank.cloud.ie.test"));
    assert_eq!(d.addresses, ips(&["203.0.113.20", "2001:db8:20::20"]));
    let zone = d.zone.as_ref().expect("the service's zone");
    assert_eq!(zone.name, "ls.test");
    assert_eq!(zone.nameservers[0].name, "ns.nic.ls.test");
    assert_eq!(zone.nameservers[0].addresses, ips(&["198.51.100.53"]));
    let target = d.target_zone.as_ref().expect("the target's zone");
    assert_eq!(target.name, "cloud.ie.test");
    assert_eq!(target.nameservers.len(), 1);
    assert_eq!(target.nameservers[0].name, "ns.cloud.ie.test");
    assert_eq!(target.nameservers[0].addresses, ips(&["203.0.113.53"]));
    assert!(d.problems.is_empty(), "{:#?}", d.problems);
}

#[test]
fn a_loop_and_an_overlong_chain_stop_with_their_problem() {
    let Some(server) = unbound("a_loop_and_an_overlong_chain_stop_with_their_problem") else {
        return;
    };
    let d = at(&server, "loop.ls.test");
    assert_eq!(
        steps(&d),
        [
            ("loop.ls.test", "loop2.ls.test"),
            ("loop2.ls.test", "loop.ls.test")
        ]
    );
    assert_eq!(
        kinds(&d),
        [(ProblemKind::CnameLoop, "loop.ls.test", QueryType::CNAME)]
    );
    assert_eq!(d.canonical, None);
    assert!(d.addresses.is_empty());
    assert_eq!(d.zone.as_ref().map(|z| z.name.as_str()), Some("ls.test"));

    let d = at(&server, "c0.ls.test");
    assert_eq!(d.cname_chain.len(), 8, "{d:#?}");
    for (i, step) in d.cname_chain.iter().enumerate() {
        assert_eq!(step.name, format!("c{i}.ls.test"));
        assert_eq!(step.target, format!("c{}.ls.test", i + 1));
    }
    assert_eq!(
        kinds(&d),
        [(ProblemKind::ChainTooLong, "c8.ls.test", QueryType::CNAME)]
    );
    assert!(d.addresses.is_empty());
    assert!(!d.resolved());
}

#[test]
fn a_zone_without_name_servers_still_gives_the_addresses() {
    let Some(server) = unbound("a_zone_without_name_servers_still_gives_the_addresses") else {
        return;
    };
    // An apex (SOA) without NS.
    let d = at(&server, "www.nons.ls.test");
    assert_eq!(d.addresses, ips(&["198.51.100.30"]));
    let zone = d.zone.as_ref().expect("the apex");
    assert_eq!(
        (zone.name.as_str(), zone.nameservers.len()),
        ("nons.ls.test", 0)
    );
    assert_eq!(
        kinds(&d),
        [(ProblemKind::NoNameservers, "nons.ls.test", QueryType::NS)]
    );
    // No NS anywhere up to the top-level label.
    let d = at(&server, "www.orphan.test");
    assert_eq!(d.addresses, ips(&["198.51.100.40"]));
    assert_eq!(d.zone, None);
    assert_eq!(
        kinds(&d),
        [(ProblemKind::NoNameservers, "www.orphan.test", QueryType::NS)]
    );
    // Lame: the one name server has no address.
    let d = at(&server, "www.lame.ls.test");
    assert_eq!(d.addresses, ips(&["198.51.100.31"]));
    let zone = d.zone.as_ref().expect("the zone");
    assert_eq!(zone.name, "lame.ls.test");
    assert_eq!(zone.nameservers[0].name, "ns.gone.ls.test");
    assert!(zone.nameservers[0].addresses.is_empty());
    assert!(
        kinds(&d).contains(&(ProblemKind::NoNameservers, "lame.ls.test", QueryType::NS)),
        "{:#?}",
        d.problems
    );
    assert!(
        kinds(&d).contains(&(ProblemKind::NxDomain, "ns.gone.ls.test", QueryType::A)),
        "{:#?}",
        d.problems
    );
}

#[test]
fn a_name_that_does_not_exist_is_nxdomain() {
    let Some(server) = unbound("a_name_that_does_not_exist_is_nxdomain") else {
        return;
    };
    let d = at(&server, "missing.gov.ls.test");
    assert_eq!(
        kinds(&d),
        [(
            ProblemKind::NxDomain,
            "missing.gov.ls.test",
            QueryType::CNAME
        )]
    );
    assert!(d.addresses.is_empty());
    // The zone is still found.
    assert_eq!(
        d.zone.as_ref().map(|z| z.name.as_str()),
        Some("gov.ls.test")
    );
}

#[test]
fn a_silent_server_gives_timeouts_within_the_deadline() {
    let server = Hostile::silent();
    let addr: SocketAddr = server.server().parse().unwrap();
    let d = run(
        addr,
        "portal.gov.ls.test",
        Duration::from_millis(300),
        Duration::from_secs(3),
    );
    assert!(d.addresses.is_empty());
    assert_eq!(d.zone, None);
    assert!(!d.problems.is_empty());
    assert!(
        d.problems.iter().all(|p| p.kind == ProblemKind::Timeout),
        "{:#?}",
        d.problems
    );
    // Each part tried and failed on its own: chain, addresses, zone.
    for query in [
        QueryType::CNAME,
        QueryType::A,
        QueryType::AAAA,
        QueryType::NS,
    ] {
        assert!(
            d.problems.iter().any(|p| p.query == query),
            "no {query:?} problem: {:#?}",
            d.problems
        );
    }
    assert!(server.queries() > 0);
}

#[test]
fn servfail_and_refused_are_named_for_every_part() {
    for (rcode, kind) in [(2, ProblemKind::ServFail), (5, ProblemKind::Refused)] {
        let server = Hostile::answering(rcode);
        let addr: SocketAddr = server.server().parse().unwrap();
        let d = run(
            addr,
            "portal.gov.ls.test",
            Duration::from_millis(500),
            Duration::from_secs(5),
        );
        assert!(d.addresses.is_empty(), "{d:#?}");
        assert_eq!(d.zone, None, "{d:#?}");
        for query in [
            QueryType::CNAME,
            QueryType::A,
            QueryType::AAAA,
            QueryType::NS,
        ] {
            assert!(
                d.problems
                    .iter()
                    .any(|p| p.query == query && p.kind == kind),
                "no {kind:?} for {query:?}: {:#?}",
                d.problems
            );
        }
    }
}

#[test]
fn a_servfail_on_the_nameservers_leaves_the_addresses_standing() {
    let server = Hostile::failing_ns();
    let addr: SocketAddr = server.server().parse().unwrap();
    let d = run(
        addr,
        "portal.gov.ls.test",
        Duration::from_millis(500),
        Duration::from_secs(5),
    );
    assert_eq!(
        d.addresses,
        ["198.51.100.10".parse::<std::net::IpAddr>().unwrap()],
        "{d:#?}"
    );
    assert_eq!(d.zone, None, "{d:#?}");
    assert!(
        d.problems
            .iter()
            .any(|p| p.query == QueryType::NS && p.kind == ProblemKind::ServFail),
        "{:#?}",
        d.problems
    );
    assert!(
        d.problems.iter().all(|p| p.query == QueryType::NS),
        "only the nameservers are unknown: {:#?}",
        d.problems
    );
}

#[test]
fn a_garbage_server_gives_problems_and_no_panic() {
    let server = Hostile::garbage();
    let addr: SocketAddr = server.server().parse().unwrap();
    for name in ["portal.gov.ls.test", "bank.ls.test", "c0.ls.test"] {
        let d = run(
            addr,
            name,
            Duration::from_millis(500),
            Duration::from_secs(5),
        );
        assert!(d.addresses.is_empty(), "{d:#?}");
        assert!(!d.problems.is_empty(), "{d:#?}");
    }
}

#[test]
fn the_command_prints_text_and_json_lines_with_exit_codes() {
    let Some(server) = unbound("the_command_prints_text_and_json_lines_with_exit_codes") else {
        return;
    };
    let out = Command::new(bin())
        .args(["dns", "bank.ls.test", "portal.gov.ls.test", "--dns-server"])
        .arg(server.server())
        .output()
        .expect("run transitwatch dns");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        "bank.ls.test",
        "bank.ls.test -> bank.cloud.ie.test",
        "203.0.113.20",
        "zone ls.test",
        "target zone cloud.ie.test",
        "ns.cloud.ie.test 203.0.113.53",
        "zone gov.ls.test",
        "ns2.gov.ls.test 198.51.100.2 2001:db8:53::2",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from\n{text}");
    }

    let out = Command::new(bin())
        .args([
            "dns",
            "portal.gov.ls.test",
            "loop.ls.test",
            "--json",
            "--dns-server",
        ])
        .arg(server.server())
        .output()
        .expect("run transitwatch dns --json");
    assert_eq!(out.status.code(), Some(1), "loop.ls.test has no address");
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["schema"], "transitwatch.dns/1");
    assert_eq!(lines[0]["name"], "portal.gov.ls.test");
    assert_eq!(lines[0]["addresses"][0], "198.51.100.10");
    assert_eq!(lines[0]["zone"]["name"], "gov.ls.test");
    assert_eq!(
        lines[0]["zone"]["nameservers"][0]["addresses"][0],
        "198.51.100.1"
    );
    assert_eq!(lines[1]["problems"][0]["kind"], "cname_loop");
    for line in &lines {
        crate::support::schema::assert_valid("dns.schema.json", line);
    }
    assert_eq!(lines[1]["problems"][0]["query"], "CNAME");

    let out = Command::new(bin())
        .args(["dns", "bad name", "--dns-server"])
        .arg(server.server())
        .output()
        .expect("run transitwatch dns");
    assert_eq!(out.status.code(), Some(2), "a name that is no host name");
    let out = Command::new(bin())
        .args(["dns", "portal.gov.ls.test", "--dns-server", "nonsense"])
        .output()
        .expect("run transitwatch dns");
    assert_eq!(out.status.code(), Some(2));
}

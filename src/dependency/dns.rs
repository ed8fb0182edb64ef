//! What a service's name needs from DNS: the CNAME chain from the name to
//! its canonical name, that name's addresses, the zone the service's name
//! lives in with its name servers (and their addresses), and, when the
//! name is an alias, the zone of the canonical name too (a CNAME into a
//! cloud provider's zone makes that provider's name servers a dependency).
//!
//! The one part of [`crate::dependency`] that does I/O: [`resolve`] asks
//! the configured recursive servers (hickory-resolver, no cache, one try
//! per query of at most the settings' timeout), one query at a time, under
//! a total deadline.
//!
//! # The rules
//!
//! **The chain** is followed here, one `CNAME` query per step, so every
//! step is recorded: at most [`MAX_CHAIN`] steps; a name seen twice stops
//! it with [`ProblemKind::CnameLoop`] (the closing step is recorded), a
//! further step with [`ProblemKind::ChainTooLong`] (not recorded). The
//! addresses (`A`, `AAAA`) are asked of the canonical name, only when the
//! chain ended there.
//!
//! **The zone** is found by walking up the labels of the service's own
//! name (not its alias target), asking each for `NS`: the first name with
//! an `NS` RRset is the zone. A name whose negative answer carries its own
//! `SOA` is a zone apex without name servers: the zone, with
//! [`ProblemKind::NoNameservers`]; so is a walk that reaches the top-level
//! label without an `NS` RRset (no zone then), and a zone none of whose
//! name servers has an address. The walk stops at the root (every name
//! depends on it; it says nothing) and at an answer that is no answer
//! (timeout, `SERVFAIL`, `REFUSED`, garbage): the zone is then not known,
//! and the problem says why. `NXDOMAIN` and no data only send it one label
//! up. At most [`MAX_NAMESERVERS`] name servers are kept per zone (sorted
//! by name), each with its `A` and `AAAA` addresses.
//!
//! **Problems** are typed and name the name and query type they concern; a
//! failure of one part never hides the others (a `SERVFAIL` on the `NS`
//! query still gives the addresses). Names in answers are validated like
//! reverse DNS names (letters, digits, `-`, `_`; lower-cased): a name that
//! is no host name is [`ProblemKind::Other`], never followed.

use crate::reverse_dns::name::host_name;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use hickory_resolver::TokioResolver;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::time::Instant;

pub use crate::model::dns::{
    CnameStep, DnsDependencies, Nameserver, Problem, ProblemKind, QueryType, Zone, MAX_CHAIN,
    MAX_NAMESERVERS,
};
pub use crate::reverse_dns::ReverseDnsError as DnsSetupError;

/// The answer format's schema name and version (`--json`).
pub const DNS_SCHEMA: &str = "transitwatch.dns/1";

/// The servers asked and the bound on each query.
#[derive(Debug, Clone)]
pub struct DnsSettings {
    /// Recursive servers, in order; empty: the system's (`/etc/resolv.conf`).
    pub servers: Vec<SocketAddr>,
    /// The longest one query may take.
    pub timeout: Duration,
}

impl From<&crate::config::RdnsConfig> for DnsSettings {
    fn from(c: &crate::config::RdnsConfig) -> Self {
        Self {
            servers: c.servers.clone(),
            timeout: c.timeout,
        }
    }
}

/// A resolver for [`resolve`]; cheap to clone.
#[derive(Clone)]
pub struct DnsResolver {
    resolver: TokioResolver,
    timeout: Duration,
}

impl std::fmt::Debug for DnsResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsResolver")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl DnsResolver {
    /// A resolver asking `settings.servers`. Must be called within a tokio
    /// runtime.
    ///
    /// # Errors
    /// No servers are given and `/etc/resolv.conf` cannot be read.
    pub fn new(settings: &DnsSettings) -> Result<Self, DnsSetupError> {
        Ok(Self {
            resolver: crate::reverse_dns::resolver(&settings.servers, settings.timeout)?,
            timeout: settings.timeout,
        })
    }
}

/// The record type a [`QueryType`] asks for.
const fn record_type(query: QueryType) -> RecordType {
    match query {
        QueryType::A => RecordType::A,
        QueryType::AAAA => RecordType::AAAA,
        QueryType::CNAME => RecordType::CNAME,
        QueryType::NS => RecordType::NS,
    }
}

/// The name as a lower-case host name without the trailing dot, or `None`
/// when it is none.
#[must_use]
pub fn valid_name(text: &str) -> Option<String> {
    let text = text.strip_suffix('.').unwrap_or(text);
    host_name(text.split('.').map(str::as_bytes))
}

/// The names the zone walk asks, from `name` up to its top-level label
/// (the root is not asked).
fn zone_candidates(name: &str) -> Vec<&str> {
    let mut out = vec![name];
    let mut rest = name;
    while let Some((_, parent)) = rest.split_once('.') {
        out.push(parent);
        rest = parent;
    }
    out
}

/// The CNAME chain's bookkeeping.
#[derive(Debug)]
struct Chain {
    seen: Vec<String>,
    steps: Vec<CnameStep>,
}

impl Chain {
    fn new(name: &str) -> Self {
        Self {
            seen: vec![name.to_string()],
            steps: Vec::new(),
        }
    }

    /// The name the chain has reached.
    fn current(&self) -> &str {
        self.seen.last().map_or("", String::as_str)
    }

    /// One more step from [`Chain::current`] to `target`; the problem when
    /// the chain ends badly here (a loop, recorded, or one step too many,
    /// not recorded).
    fn follow(&mut self, target: &str) -> Result<(), Problem> {
        let from = self.current().to_string();
        if self.steps.len() == MAX_CHAIN {
            return Err(Problem {
                kind: ProblemKind::ChainTooLong,
                name: from,
                query: QueryType::CNAME,
            });
        }
        self.steps.push(CnameStep {
            name: from,
            target: target.to_string(),
        });
        if self.seen.iter().any(|s| s == target) {
            return Err(Problem {
                kind: ProblemKind::CnameLoop,
                name: target.to_string(),
                query: QueryType::CNAME,
            });
        }
        self.seen.push(target.to_string());
        Ok(())
    }
}

/// What one query came to.
enum Answer {
    /// The records of the asked type owned by the asked name.
    Records(Vec<RData>),
    /// The name exists without records of that type; `apex` when the
    /// negative answer's SOA is the asked name's own.
    NoData { apex: bool },
    /// A failure, as a problem kind.
    Failed(ProblemKind),
}

/// Everything `name`'s DNS resolution depends on, asked of `resolver`,
/// finished by `deadline` (queries not answered by then are
/// [`ProblemKind::Timeout`]; none is started after it). Never fails: what
/// could not be established is in `problems`. A `name` that is no host
/// name is a single [`ProblemKind::Other`] problem, with no query made.
pub async fn resolve(name: &str, resolver: &DnsResolver, deadline: Instant) -> DnsDependencies {
    let mut out = DnsDependencies {
        name: name.trim().to_string(),
        cname_chain: Vec::new(),
        canonical: None,
        addresses: Vec::new(),
        zone: None,
        target_zone: None,
        problems: Vec::new(),
    };
    let Some(valid) = valid_name(name.trim()) else {
        out.problems.push(Problem {
            kind: ProblemKind::Other("not a host name".into()),
            name: out.name.clone(),
            query: QueryType::A,
        });
        return out;
    };
    out.name.clone_from(&valid);
    let ask = Asker { resolver, deadline };

    // The chain, step by step.
    let mut chain = Chain::new(&valid);
    let canonical = loop {
        let current = chain.current().to_string();
        match ask.query(&current, QueryType::CNAME).await {
            Answer::Records(records) => {
                let target = records.iter().find_map(|r| match r {
                    RData::CNAME(c) => Some(c.0.iter().collect::<Vec<_>>()),
                    _ => None,
                });
                match target.and_then(host_name) {
                    Some(target) => {
                        if let Err(p) = chain.follow(&target) {
                            out.problems.push(p);
                            break None;
                        }
                    }
                    None => {
                        out.problems.push(problem(
                            other("alias target is no host name"),
                            &current,
                            QueryType::CNAME,
                        ));
                        break None;
                    }
                }
            }
            Answer::NoData { .. } => break Some(current),
            Answer::Failed(ProblemKind::NxDomain) => {
                out.problems
                    .push(problem(ProblemKind::NxDomain, &current, QueryType::CNAME));
                break None;
            }
            // The name may still have addresses: ask for them.
            Answer::Failed(kind) => {
                out.problems.push(problem(kind, &current, QueryType::CNAME));
                break Some(current);
            }
        }
    };
    out.cname_chain = chain.steps;

    // The canonical name's addresses.
    if let Some(canonical) = &canonical {
        let (addresses, problems) = ask.both_families(canonical).await;
        out.addresses.extend(addresses);
        out.problems.extend(problems);
    }
    out.canonical = canonical;

    // The zones.
    out.zone = ask.zone(&valid, &mut out.problems).await;
    if !out.cname_chain.is_empty() {
        let target = out
            .canonical
            .clone()
            .or_else(|| out.cname_chain.last().map(|s| s.target.clone()));
        if let Some(target) = target {
            out.target_zone = ask.zone(&target, &mut out.problems).await;
        }
    }
    out
}

fn problem(kind: ProblemKind, name: &str, query: QueryType) -> Problem {
    Problem {
        kind,
        name: name.to_string(),
        query,
    }
}

fn other(text: &str) -> ProblemKind {
    ProblemKind::Other(text.to_string())
}

/// Queries under the deadline.
struct Asker<'a> {
    resolver: &'a DnsResolver,
    deadline: Instant,
}

impl Asker<'_> {
    /// One query of `name` (a valid host name) for `query`.
    async fn query(&self, name: &str, query: QueryType) -> Answer {
        let now = Instant::now();
        if now >= self.deadline {
            return Answer::Failed(ProblemKind::Timeout);
        }
        let Ok(fqdn) = Name::from_ascii(format!("{name}.")) else {
            return Answer::Failed(other("not a DNS name"));
        };
        let until = self.deadline.min(now + self.resolver.timeout);
        let lookup = self
            .resolver
            .resolver
            .lookup(fqdn.clone(), record_type(query));
        match tokio::time::timeout_at(until, lookup).await {
            Err(_) => Answer::Failed(ProblemKind::Timeout),
            Ok(Ok(lookup)) => Answer::Records(
                lookup
                    .answers()
                    .iter()
                    .filter(|r| r.record_type() == record_type(query) && r.name == fqdn)
                    .map(|r| r.data.clone())
                    .collect(),
            ),
            Ok(Err(e)) => classify(&e, &fqdn),
        }
    }

    /// `name`'s IPv4 and IPv6 addresses, asked at once, and the problems
    /// of either query.
    async fn both_families(&self, name: &str) -> (Vec<IpAddr>, Vec<Problem>) {
        let (v4, v6) = tokio::join!(
            self.addresses(name, QueryType::A),
            self.addresses(name, QueryType::AAAA)
        );
        let mut addresses = v4.0;
        addresses.extend(v6.0);
        (addresses, v4.1.into_iter().chain(v6.1).collect())
    }

    /// `name`'s addresses of one family, or the problem.
    async fn addresses(&self, name: &str, query: QueryType) -> (Vec<IpAddr>, Option<Problem>) {
        match self.query(name, query).await {
            Answer::Records(records) => (
                records
                    .iter()
                    .filter_map(|r| match r {
                        RData::A(a) => Some(IpAddr::V4(a.0)),
                        RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                        _ => None,
                    })
                    .collect(),
                None,
            ),
            Answer::NoData { .. } => (Vec::new(), None),
            Answer::Failed(kind) => (Vec::new(), Some(problem(kind, name, query))),
        }
    }

    /// The zone `name` lives in (the label walk), its name servers and
    /// their addresses; problems added to `problems`.
    async fn zone(&self, name: &str, problems: &mut Vec<Problem>) -> Option<Zone> {
        for candidate in zone_candidates(name) {
            match self.query(candidate, QueryType::NS).await {
                Answer::Records(records) => {
                    let mut names = Vec::new();
                    for r in &records {
                        if let RData::NS(ns) = r {
                            match host_name(ns.0.iter()) {
                                Some(n) => names.push(n),
                                None => problems.push(problem(
                                    other("name server name is no host name"),
                                    candidate,
                                    QueryType::NS,
                                )),
                            }
                        }
                    }
                    names.sort();
                    names.dedup();
                    names.truncate(MAX_NAMESERVERS);
                    let mut nameservers = Vec::with_capacity(names.len());
                    for ns in names {
                        let (addresses, failed) = self.both_families(&ns).await;
                        problems.extend(failed);
                        nameservers.push(Nameserver {
                            name: ns,
                            addresses,
                        });
                    }
                    // No usable name, or none with an address: lame.
                    if nameservers.iter().all(|n| n.addresses.is_empty()) {
                        problems.push(problem(
                            ProblemKind::NoNameservers,
                            candidate,
                            QueryType::NS,
                        ));
                    }
                    return Some(Zone {
                        name: candidate.to_string(),
                        nameservers,
                    });
                }
                Answer::NoData { apex: true } => {
                    problems.push(problem(
                        ProblemKind::NoNameservers,
                        candidate,
                        QueryType::NS,
                    ));
                    return Some(Zone {
                        name: candidate.to_string(),
                        nameservers: Vec::new(),
                    });
                }
                Answer::NoData { apex: false } | Answer::Failed(ProblemKind::NxDomain) => {}
                Answer::Failed(kind) => {
                    problems.push(problem(kind, candidate, QueryType::NS));
                    return None;
                }
            }
        }
        problems.push(problem(ProblemKind::NoNameservers, name, QueryType::NS));
        None
    }
}

/// A failed lookup of `asked` as an [`Answer`].
fn classify(e: &NetError, asked: &Name) -> Answer {
    match e {
        NetError::Dns(DnsError::NoRecordsFound(none)) => {
            if none.response_code == ResponseCode::NXDomain {
                Answer::Failed(ProblemKind::NxDomain)
            } else {
                Answer::NoData {
                    apex: none.soa.as_ref().is_some_and(|soa| &soa.name == asked),
                }
            }
        }
        NetError::Dns(DnsError::ResponseCode(code)) => Answer::Failed(match *code {
            ResponseCode::ServFail => ProblemKind::ServFail,
            ResponseCode::Refused => ProblemKind::Refused,
            ResponseCode::NXDomain => ProblemKind::NxDomain,
            other => ProblemKind::Other(format!("response code {other}")),
        }),
        NetError::Timeout => Answer::Failed(ProblemKind::Timeout),
        NetError::Proto(p) => Answer::Failed(ProblemKind::Other(format!("broken answer: {p}"))),
        other => Answer::Failed(ProblemKind::Other(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_zone_walk_goes_up_to_the_top_level_label() {
        assert_eq!(
            zone_candidates("portal.gov.ls.test"),
            ["portal.gov.ls.test", "gov.ls.test", "ls.test", "test"]
        );
        assert_eq!(zone_candidates("test"), ["test"]);
    }

    #[test]
    fn names_are_validated_and_lower_cased() {
        assert_eq!(
            valid_name("Portal.GOV.ls.test.").as_deref(),
            Some("portal.gov.ls.test")
        );
        for bad in ["", ".", "a..b", "bad name.test", "x;y.test"] {
            assert_eq!(valid_name(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_chain_records_each_step() {
        let mut c = Chain::new("a.test");
        c.follow("b.test").unwrap();
        c.follow("c.test").unwrap();
        assert_eq!(c.current(), "c.test");
        let steps: Vec<_> = c
            .steps
            .iter()
            .map(|s| (s.name.as_str(), s.target.as_str()))
            .collect();
        assert_eq!(steps, [("a.test", "b.test"), ("b.test", "c.test")]);
    }

    #[test]
    fn a_name_seen_twice_is_a_loop_with_the_closing_step_recorded() {
        let mut c = Chain::new("loop.test");
        c.follow("loop2.test").unwrap();
        let p = c.follow("loop.test").unwrap_err();
        assert_eq!(p.kind, ProblemKind::CnameLoop);
        assert_eq!(p.name, "loop.test");
        assert_eq!(c.steps.len(), 2);
        // A name pointing at itself too.
        let mut c = Chain::new("self.test");
        assert_eq!(
            c.follow("self.test").unwrap_err().kind,
            ProblemKind::CnameLoop
        );
    }

    #[test]
    fn the_ninth_step_is_too_long_and_not_recorded() {
        let mut c = Chain::new("c0.test");
        for i in 1..=MAX_CHAIN {
            c.follow(&format!("c{i}.test")).unwrap();
        }
        let p = c.follow("c9.test").unwrap_err();
        assert_eq!(p.kind, ProblemKind::ChainTooLong);
        assert_eq!(p.name, "c8.test");
        assert_eq!(c.steps.len(), MAX_CHAIN);
    }

    #[test]
    fn problems_serialise_with_their_kind_and_detail() {
        let p = problem(ProblemKind::ServFail, "x.test", QueryType::NS);
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"kind":"serv_fail","name":"x.test","query":"NS"}"#
        );
        let p = problem(other("why"), "x.test", QueryType::AAAA);
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"kind":"other","detail":"why","name":"x.test","query":"AAAA"}"#
        );
    }
}

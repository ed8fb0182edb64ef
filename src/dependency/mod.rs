//! What fails if a country, a network (AS) or a company becomes
//! unavailable: the national services that lose their route or their
//! hosting, from the latest path of each.
//!
//! Pure functions, no I/O (but [`dns`], which asks DNS servers what a
//! service's name depends on): the caller hands in the latest record of every
//! path (the store's [`crate::store::Store::latest_per_path`] for
//! `transitwatch whatif`, the path book for the daemon's `/api/v1/whatif`)
//! and gets a [`WhatIf`]: every figure and sentence computed once here, so
//! the text form ([`text`]) and the JSON form (serde,
//! `schemas/whatif.schema.json`) only format it.
//!
//! # The rules
//!
//! **Which hops match.** A responding hop matches a [`Failure`]:
//! - `Country(CC)`: when the verdict counts its location as evidence and
//!   that location is in CC ([`crate::analysis::AcceptedLocations`]: the
//!   verdict's own rule, so a hop that answers too fast for its claimed
//!   place, or a foreign claim below the policy's `min_confidence`, is no
//!   evidence here either);
//! - `Asn(N)`: when its origin AS is N. The AS is a fact about the address
//!   (the routing data), whichever source located it and whether or not
//!   the location was accepted; the evidence still gives the location only
//!   when the verdict accepted it;
//! - `Org(text)`: when its AS organisation (`as_org`) contains the text,
//!   case-insensitively (Unicode lower case, the text trimmed), or the
//!   name of its AS's operator in the operator table ([`crate::operators`])
//!   does: `Amazon` finds AS16509 whatever name the geolocation source gave
//!   it (`AMAZON-02`), and every other AS the table gives Amazon. A
//!   substring, not a whole word, because AS names are written as their
//!   holders register them (`CLOUDFLARENET`, `AMAZON-02`, `Telkom SA
//!   Ltd.`): "cloudflare" must find the first. Since a short text can match
//!   more than meant, the answer lists every matching network (AS number,
//!   name and operator). A text that matches nothing is no error: nothing
//!   depends on it, and the answer says so.
//!
//! **How a path depends** ([`PathDependency`]). The destination is the hop
//! that answered from the target's address ([`crate::model::Trace::destination_hop`],
//! the one the verdict locates); hops after it (the destination answering
//! again) are not looked at. A path depends on the failure for its
//! `hosting` when its destination matches, for its `route` when only hops
//! before it match (an unreached path's hops are all route); otherwise it
//! does not depend on it (`none`), unless its verdict is `indeterminate`:
//! then too little of it is located to say (`unknown`).
//!
//! **How a service fares** ([`Effect`]). A service is a target name; a
//! target traced in both families has two paths (`name/ipv4`,
//! `name/ipv6`).
//! - `loses_hosting` / `loses_route`: every path depends on the failure;
//!   hosting when some path's destination is in it, else route;
//! - `degraded`: some paths depend on it and at least one other is known
//!   not to (a dual-stack service whose IPv6 path stays home keeps working);
//! - `unaffected`: no path depends on it and at least one is known not to;
//! - `unknown`: nothing is known to survive: no path could be judged
//!   (every path indeterminate, none matching), or the paths that do not
//!   depend on it are indeterminate. Said so rather than guessed.
//!
//! This is what the measured paths show, not what routing would do next:
//! a path through a failed network may be rerouted, a service hosted there
//! may have a standby elsewhere.
//!
//! **Who hosts a service** ([`hosting`]): the organisation behind the
//! destination's AS (from the operator table), where it is based, and
//! whether the country accepted it for that service.
//!
//! **Who answers for its name** ([`nameservers`]): the zones a service's
//! name needs (its own, and its alias target's), their name servers, where
//! they are and who runs them, from the DNS dependencies its record keeps
//! and the latest dependency path to each server (`dns:NAME/ipv4`).
//!
//! **How its DNS fares.** A name server depends on the failure when every
//! one of its dependency paths does (hosting or route; a server with no
//! traced path is not known to); a zone is lost when it has name servers
//! and every one of them depends on the failure; a service loses its DNS
//! when its own zone or its alias target's zone is lost (`loses_dns` on
//! the service, and its effect is [`Effect::LosesDns`] when its paths
//! alone would have left it working, degraded or unknown). The zones and
//! servers are those of the service's latest record that carries them.

pub mod dns;
pub mod hosting;
pub mod nameservers;
pub mod overview;
pub mod text;

use crate::analysis::AcceptedLocations;
use crate::model::{Confidence, CountryCode, Hop, PathKey, TraceRecord, VerdictClass};
use crate::operators::OperatorTable;
use crate::units::Timestamp;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// The answer format's schema name and version.
pub const WHATIF_SCHEMA: &str = "transitwatch.whatif/1";

/// Most service names a sentence lists (the services list has them all).
const NAMES_IN_SENTENCE: usize = 10;

/// What becomes unavailable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// A country: every hop located there.
    Country(CountryCode),
    /// An autonomous system: every hop whose origin AS it is.
    Asn(u32),
    /// An organisation: every hop whose AS organisation, or whose AS's
    /// operator in the operator table, contains this text,
    /// case-insensitively.
    Org(String),
}

/// Why a text does not name a [`Failure`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidFailure {
    /// Not an assigned ISO 3166-1 alpha-2 code.
    #[error("`{0}` is not an assigned ISO 3166-1 alpha-2 country code (two letters, e.g. ZA)")]
    Country(String),
    /// Not an AS number.
    #[error("`{0}` is not an AS number (a whole number such as 64510, or AS64510)")]
    Asn(String),
    /// An empty organisation text (it would match every network).
    #[error("the organisation is empty (give part of an AS organisation's name, e.g. Telkom)")]
    EmptyOrg,
}

impl Failure {
    /// A country by its code (`ZA`, `za`); only assigned codes.
    ///
    /// # Errors
    /// [`InvalidFailure::Country`] naming the text.
    pub fn country(text: &str) -> Result<Self, InvalidFailure> {
        let code: CountryCode = text
            .trim()
            .parse()
            .map_err(|_| InvalidFailure::Country(text.to_string()))?;
        match code.name() {
            Some(_) => Ok(Self::Country(code)),
            None => Err(InvalidFailure::Country(text.to_string())),
        }
    }

    /// An AS by its number (`64510` or `AS64510`, any case).
    ///
    /// # Errors
    /// [`InvalidFailure::Asn`] naming the text.
    pub fn asn(text: &str) -> Result<Self, InvalidFailure> {
        let t = text.trim();
        let digits = match t.get(..2) {
            Some(prefix) if prefix.eq_ignore_ascii_case("as") => &t[2..],
            _ => t,
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InvalidFailure::Asn(text.to_string()));
        }
        digits
            .parse()
            .map(Self::Asn)
            .map_err(|_| InvalidFailure::Asn(text.to_string()))
    }

    /// An organisation by part of its AS organisation name.
    ///
    /// # Errors
    /// [`InvalidFailure::EmptyOrg`] for an empty (or blank) text.
    pub fn org(text: &str) -> Result<Self, InvalidFailure> {
        let t = text.trim();
        if t.is_empty() {
            Err(InvalidFailure::EmptyOrg)
        } else {
            Ok(Self::Org(t.to_string()))
        }
    }

    /// Which kind of failure this is.
    #[must_use]
    pub const fn kind(&self) -> FailureKind {
        match self {
            Self::Country(_) => FailureKind::Country,
            Self::Asn(_) => FailureKind::Asn,
            Self::Org(_) => FailureKind::Org,
        }
    }

    /// Whether `hop`, whose accepted location is `country`, is part of it
    /// (an organisation also by the operator `operators` give its AS).
    fn matches(&self, hop: &Hop, country: Option<CountryCode>, operators: &OperatorTable) -> bool {
        match self {
            Self::Country(c) => country == Some(*c),
            Self::Asn(n) => hop.geo.asn == Some(*n),
            Self::Org(text) => {
                hop.geo
                    .as_org
                    .as_deref()
                    .is_some_and(|org| org.to_lowercase().contains(&text.to_lowercase()))
                    || hop
                        .geo
                        .asn
                        .and_then(|n| operators.get(n))
                        .is_some_and(|op| op.name_contains(text))
            }
        }
    }

    /// The short name in per-path reasons: `ZA`, `AS64510`, `` `Cloudy` ``.
    fn label(&self) -> String {
        match self {
            Self::Country(c) => c.to_string(),
            Self::Asn(n) => format!("AS{n}"),
            Self::Org(text) => format!("`{text}`"),
        }
    }
}

/// The kind of a [`Failure`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureKind {
    /// A country.
    Country,
    /// An autonomous system.
    Asn,
    /// An organisation.
    Org,
}

/// The failure as the answer states it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailureReport {
    /// `country`, `asn` or `org`.
    pub kind: FailureKind,
    /// The country, for `country`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<CountryCode>,
    /// The AS number, for `asn`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    /// The text matched against AS organisations, for `org`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// In words: "South Africa (ZA)", "AS64510 (Cloudy Transit)",
    /// "organisation matching `Cloudy`".
    pub description: String,
}

/// How a service fares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Every path depends on it, and some path's destination is in it.
    LosesHosting,
    /// Every path depends on it, through hops before the destination only.
    LosesRoute,
    /// Its paths would keep working (some or all), but every name server
    /// of a zone its name needs depends on it.
    LosesDns,
    /// Some paths depend on it, at least one other does not.
    Degraded,
    /// No path depends on it, at least one is known not to.
    Unaffected,
    /// Nothing is known to survive it: too little is located to tell.
    Unknown,
}

impl Effect {
    /// In words, as the text form writes it.
    #[must_use]
    pub const fn words(self) -> &'static str {
        match self {
            Self::LosesHosting => "loses hosting",
            Self::LosesRoute => "loses route",
            Self::LosesDns => "loses DNS",
            Self::Degraded => "degraded",
            Self::Unaffected => "unaffected",
            Self::Unknown => "unknown",
        }
    }
}

/// How one path depends on the failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PathDependency {
    /// Its destination is in it.
    Hosting,
    /// Hops before its destination are in it (and its destination is not).
    Route,
    /// No hop is in it, and the verdict located the path.
    None,
    /// No hop is in it, but the verdict is `indeterminate`: too little of
    /// the path is located to say.
    Unknown,
}

impl PathDependency {
    const fn depends(self) -> bool {
        matches!(self, Self::Hosting | Self::Route)
    }

    /// In words, as the text form writes it.
    #[must_use]
    pub const fn words(self) -> &'static str {
        match self {
            Self::Hosting => "hosting",
            Self::Route => "route",
            Self::None => "no",
            Self::Unknown => "unknown",
        }
    }
}

/// Where on the path a matching hop is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HopRole {
    /// The destination (the hop answering from the target's address).
    Destination,
    /// A hop before it.
    Transit,
}

/// A hop that is part of the failure: the evidence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MatchedHop {
    /// Its TTL.
    pub ttl: u8,
    /// The address that answered.
    pub addr: IpAddr,
    /// Destination or transit.
    pub role: HopRole,
    /// Its location's country, when the verdict accepts the location
    /// (`null` when it does not: possible for an AS or an organisation).
    pub country: Option<CountryCode>,
    /// Its city, with an accepted location.
    pub city: Option<String>,
    /// Its origin AS.
    pub asn: Option<u32>,
    /// Its AS organisation.
    pub as_org: Option<String>,
    /// How sure its location is (`null`: not located).
    pub confidence: Option<Confidence>,
}

/// One path of a service and how it depends on the failure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PathImpact {
    /// The path key (`name`, `name/ipv4`, `name/ipv6`).
    pub path_key: String,
    /// The stored trace's id, when read from the history (`export` finds it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<i64>,
    /// When the latest trace started.
    pub started_at: Timestamp,
    /// Its verdict's class.
    pub class: VerdictClass,
    /// How it depends on the failure.
    pub depends: PathDependency,
    /// The hops that are part of the failure, in path order.
    pub hops: Vec<MatchedHop>,
}

/// One service and how it fares.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceImpact {
    /// The target name.
    pub name: String,
    /// How it fares.
    pub effect: Effect,
    /// Why, in plain words.
    pub reason: String,
    /// Its paths, by key.
    pub paths: Vec<PathImpact>,
    /// Whether a zone its name needs is lost (whatever its paths do).
    pub loses_dns: bool,
    /// The zones its name needs and how their name servers depend on it
    /// (empty when its records keep no DNS dependencies).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<ZoneImpact>,
}

/// One zone a service's name needs, and whether it survives the failure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ZoneImpact {
    /// The zone's apex.
    pub zone: String,
    /// The service's own zone, or its alias target's.
    pub role: nameservers::ZoneRole,
    /// Every name server depends on the failure.
    pub lost: bool,
    /// Its name servers, by name.
    pub nameservers: Vec<NameserverImpact>,
}

/// One name server and how its dependency paths depend on the failure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NameserverImpact {
    /// The server's name.
    pub name: String,
    /// Hosting or route when every path of it depends; none when one does
    /// not; unknown when it has no path, or none is located enough.
    pub depends: PathDependency,
    /// Its dependency paths (`dns:NAME/ipv4`), by key.
    pub paths: Vec<PathImpact>,
}

/// A network some matching hops belong to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkMatch {
    /// The AS number.
    pub asn: u32,
    /// Its organisation, as the geolocation sources name it.
    pub name: Option<String>,
    /// Its operator, when the operator table lists the AS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    /// The services with a matching hop in it, by name.
    pub services: Vec<String>,
}

/// How many services fare how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Counts {
    /// Services judged (target names with a latest path).
    pub services: u32,
    /// Their paths.
    pub paths: u32,
    /// Services that lose their hosting.
    pub loses_hosting: u32,
    /// Services that lose their route.
    pub loses_route: u32,
    /// Services whose effect is losing their DNS (paths alone would not
    /// stop them).
    pub loses_dns_only: u32,
    /// Services that lose their DNS, whatever their paths do.
    pub loses_dns: u32,
    /// Services that keep working on some path.
    pub degraded: u32,
    /// Services that do not depend on it.
    pub unaffected: u32,
    /// Services for which it cannot be told.
    pub unknown: u32,
}

/// The answer: what fails if the failure happens.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WhatIf {
    /// Always [`WHATIF_SCHEMA`].
    pub schema: &'static str,
    /// The latest paths are those at or before this time.
    pub at: Timestamp,
    /// What becomes unavailable.
    pub failure: FailureReport,
    /// How many services fare how.
    pub counts: Counts,
    /// The findings in plain words, most important first.
    pub sentences: Vec<String>,
    /// Every service, by name.
    pub services: Vec<ServiceImpact>,
    /// The networks (AS) of the matching hops, by number.
    pub networks: Vec<NetworkMatch>,
}

/// The answer built path by path, so that a caller can hand records in as
/// it reads them (one at a time from the store, or under the daemon's
/// lock) and keep only the findings: memory grows with the number of paths,
/// not with their records.
#[derive(Debug, Clone)]
pub struct Assessment {
    failure: Failure,
    at: Timestamp,
    operators: OperatorTable,
    services: BTreeMap<String, Vec<PathImpact>>,
    /// Name servers' dependency paths, by server (`dns:NAME`).
    nameservers: BTreeMap<String, Vec<PathImpact>>,
    /// Each service's zones from its latest record that has them: when,
    /// and (zone, role, server names).
    zones: BTreeMap<String, (Timestamp, Vec<nameservers::ZoneNames>)>,
    /// AS number → (name, services).
    networks: BTreeMap<u32, (Option<String>, BTreeSet<String>)>,
}

impl Assessment {
    /// An empty assessment of `failure` for the latest paths at `at`, with
    /// the shipped operator table.
    #[must_use]
    pub fn new(failure: Failure, at: Timestamp) -> Self {
        Self {
            failure,
            at,
            operators: OperatorTable::shipped().clone(),
            services: BTreeMap::new(),
            nameservers: BTreeMap::new(),
            zones: BTreeMap::new(),
            networks: BTreeMap::new(),
        }
    }

    /// The same, with `operators` (the configuration's table) naming the
    /// operators of ASes.
    #[must_use]
    pub fn with_operators(mut self, operators: OperatorTable) -> Self {
        self.operators = operators;
        self
    }

    /// Judge the latest record of the path `key` (with its stored id, when
    /// it has one).
    pub fn add(&mut self, key: &PathKey, record: &TraceRecord, trace_id: Option<i64>) {
        let trace = &record.trace;
        let accepted = AcceptedLocations::of(&record.verdict);
        let destination = trace.destination_hop().map(|h| h.ttl);
        let service = key.target().to_string();
        let mut hops = Vec::new();
        for hop in &trace.hops {
            let Some(addr) = hop.addr else { continue };
            let role = match destination {
                Some(ttl) if hop.ttl == ttl => HopRole::Destination,
                // The destination answering again past its own TTL.
                Some(ttl) if hop.ttl > ttl => continue,
                _ => HopRole::Transit,
            };
            let country = accepted.country(hop);
            if !self.failure.matches(hop, country, &self.operators) {
                continue;
            }
            if let Some(asn) = hop.geo.asn.filter(|_| !key.is_dependency()) {
                let network = self.networks.entry(asn).or_default();
                if network.0.is_none() {
                    network.0.clone_from(&hop.geo.as_org);
                }
                network.1.insert(service.clone());
            }
            hops.push(MatchedHop {
                ttl: hop.ttl,
                addr,
                role,
                country,
                city: country.and_then(|_| hop.geo.city.clone()),
                asn: hop.geo.asn,
                as_org: hop.geo.as_org.clone(),
                confidence: hop.geo.confidence,
            });
        }
        let depends = if hops.iter().any(|h| h.role == HopRole::Destination) {
            PathDependency::Hosting
        } else if !hops.is_empty() {
            PathDependency::Route
        } else if record.verdict.class == VerdictClass::Indeterminate {
            PathDependency::Unknown
        } else {
            PathDependency::None
        };
        if let Some(dns) = &record.dns {
            let newer = self
                .zones
                .get(&service)
                .is_none_or(|(at, _)| *at < trace.started_at);
            if newer {
                self.zones.insert(
                    service.clone(),
                    (trace.started_at, nameservers::zone_names(dns)),
                );
            }
        }
        let paths = if key.is_dependency() {
            self.nameservers.entry(service).or_default()
        } else {
            self.services.entry(service).or_default()
        };
        paths.push(PathImpact {
            path_key: key.to_string(),
            trace_id,
            started_at: trace.started_at,
            class: record.verdict.class,
            depends,
            hops,
        });
        paths.sort_by(|a, b| a.path_key.cmp(&b.path_key));
    }

    /// The answer.
    #[must_use]
    pub fn finish(self) -> WhatIf {
        let label = self.failure.label();
        let mut counts = Counts::default();
        let mut services = Vec::with_capacity(self.services.len());
        for (name, paths) in self.services {
            let dns = self.zones.get(&name).map_or_else(Vec::new, |(_, zones)| {
                zone_impacts(zones, &self.nameservers)
            });
            let loses_dns = dns.iter().any(|z| z.lost);
            let effect = match effect(&paths) {
                Effect::Degraded | Effect::Unaffected | Effect::Unknown if loses_dns => {
                    Effect::LosesDns
                }
                other => other,
            };
            counts.services += 1;
            counts.paths += u32::try_from(paths.len()).unwrap_or(u32::MAX);
            counts.loses_dns += u32::from(loses_dns);
            *match effect {
                Effect::LosesHosting => &mut counts.loses_hosting,
                Effect::LosesRoute => &mut counts.loses_route,
                Effect::LosesDns => &mut counts.loses_dns_only,
                Effect::Degraded => &mut counts.degraded,
                Effect::Unaffected => &mut counts.unaffected,
                Effect::Unknown => &mut counts.unknown,
            } += 1;
            services.push(ServiceImpact {
                reason: reason(effect, &paths, &dns, &label),
                name,
                effect,
                paths,
                loses_dns,
                dns,
            });
        }
        let operators = &self.operators;
        let networks: Vec<NetworkMatch> = self
            .networks
            .into_iter()
            .map(|(asn, (name, services))| NetworkMatch {
                asn,
                name,
                operator: operators.get(asn).map(|op| op.name.clone()),
                services: services.into_iter().collect(),
            })
            .collect();
        let failure = report_failure(&self.failure, &networks);
        let any_match = services
            .iter()
            .flat_map(|s| {
                s.paths.iter().chain(
                    s.dns
                        .iter()
                        .flat_map(|z| &z.nameservers)
                        .flat_map(|n| &n.paths),
                )
            })
            .any(|p| !p.hops.is_empty());
        let sentences = sentences(
            &self.failure,
            &failure.description,
            self.at,
            &counts,
            &services,
            &networks,
            any_match,
        );
        WhatIf {
            schema: WHATIF_SCHEMA,
            at: self.at,
            failure,
            counts,
            sentences,
            services,
            networks,
        }
    }
}

/// What fails if `failure` happens, from the latest record of each path
/// (with its key) at `at`.
#[must_use]
pub fn what_if<'a>(
    failure: Failure,
    at: Timestamp,
    paths: impl IntoIterator<Item = (&'a PathKey, &'a TraceRecord)>,
) -> WhatIf {
    let mut assessment = Assessment::new(failure, at);
    for (key, record) in paths {
        assessment.add(key, record, None);
    }
    assessment.finish()
}

/// The zones of a service with how their servers' paths depend.
fn zone_impacts(
    zones: &[nameservers::ZoneNames],
    paths: &BTreeMap<String, Vec<PathImpact>>,
) -> Vec<ZoneImpact> {
    zones
        .iter()
        .map(|(zone, role, servers)| {
            let nameservers: Vec<NameserverImpact> = servers
                .iter()
                .map(|name| {
                    let paths = paths
                        .get(&format!("{}{name}", crate::model::NAMESERVER_PREFIX))
                        .cloned()
                        .unwrap_or_default();
                    let depends = if paths.is_empty() {
                        PathDependency::Unknown
                    } else if paths.iter().all(|p| p.depends.depends()) {
                        if paths.iter().any(|p| p.depends == PathDependency::Hosting) {
                            PathDependency::Hosting
                        } else {
                            PathDependency::Route
                        }
                    } else if paths.iter().any(|p| p.depends == PathDependency::None) {
                        PathDependency::None
                    } else {
                        PathDependency::Unknown
                    };
                    NameserverImpact {
                        name: name.clone(),
                        depends,
                        paths,
                    }
                })
                .collect();
            ZoneImpact {
                zone: zone.clone(),
                role: *role,
                lost: !nameservers.is_empty() && nameservers.iter().all(|n| n.depends.depends()),
                nameservers,
            }
        })
        .collect()
}

/// A service's effect from its paths' dependencies (module docs).
fn effect(paths: &[PathImpact]) -> Effect {
    let depend = paths.iter().filter(|p| p.depends.depends()).count();
    let clear = paths
        .iter()
        .filter(|p| p.depends == PathDependency::None)
        .count();
    if depend == 0 {
        if clear > 0 {
            Effect::Unaffected
        } else {
            Effect::Unknown
        }
    } else if clear > 0 {
        Effect::Degraded
    } else if depend < paths.len() {
        Effect::Unknown
    } else if paths.iter().any(|p| p.depends == PathDependency::Hosting) {
        Effect::LosesHosting
    } else {
        Effect::LosesRoute
    }
}

/// "hop 2", "hops 2 and 4", "hops 2, 3 and 5".
fn hops_words(ttls: &[u8]) -> String {
    let list: Vec<String> = ttls.iter().map(u8::to_string).collect();
    match list.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("hops {} and {last}", rest.join(", ")),
        Some((last, _)) => format!("hop {last}"),
        None => String::new(),
    }
}

/// One path's finding in words.
fn path_words(path: &PathImpact, label: &str) -> String {
    let key = &path.path_key;
    let transit: Vec<&MatchedHop> = path
        .hops
        .iter()
        .filter(|h| h.role == HopRole::Transit)
        .collect();
    let crossing = || {
        let ttls: Vec<u8> = transit.iter().map(|h| h.ttl).collect();
        let addrs: Vec<String> = transit.iter().map(|h| h.addr.to_string()).collect();
        format!("{} ({})", hops_words(&ttls), addrs.join(", "))
    };
    match path.depends {
        PathDependency::Hosting => {
            let dest = path.hops.iter().find(|h| h.role == HopRole::Destination);
            let mut s = dest.map_or_else(
                || format!("{key} answers from {label}"),
                |d| format!("{key} answers from {label} ({}, hop {})", d.addr, d.ttl),
            );
            if !transit.is_empty() {
                s.push_str(&format!(" and crosses it at {}", crossing()));
            }
            s
        }
        PathDependency::Route => format!("{key} crosses {label} at {}", crossing()),
        PathDependency::None => format!("{key} does not cross {label}"),
        PathDependency::Unknown => format!(
            "{key} is too little located to tell ({} verdict)",
            path.class
        ),
    }
}

/// A lost zone in words: "every name server of bank.ls (ns1.bank.ls)
/// depends on ZA: dns:ns1.bank.ls/ipv4 crosses ZA at hop 2 (198.18.4.2)".
fn zone_words(zone: &ZoneImpact, label: &str) -> String {
    let names: Vec<&str> = zone.nameservers.iter().map(|n| n.name.as_str()).collect();
    let each: Vec<String> = zone
        .nameservers
        .iter()
        .flat_map(|n| &n.paths)
        .map(|p| path_words(p, label))
        .collect();
    format!(
        "every name server of {} ({}) depends on {label}: {}",
        zone.zone,
        names.join(", "),
        each.join("; ")
    )
}

/// A service's reason in words.
fn reason(effect: Effect, paths: &[PathImpact], dns: &[ZoneImpact], label: &str) -> String {
    let lost: Vec<String> = dns
        .iter()
        .filter(|z| z.lost)
        .map(|z| zone_words(z, label))
        .collect();
    if effect == Effect::LosesDns {
        return lost.join("; ");
    }
    let mut each: Vec<String> = paths.iter().map(|p| path_words(p, label)).collect();
    each.extend(lost.into_iter().map(|z| format!("and {z}")));
    let lead = match effect {
        Effect::LosesHosting | Effect::LosesRoute if paths.len() > 1 => {
            format!("every path depends on {label}: ")
        }
        Effect::Degraded => format!("some paths depend on {label}, others do not: "),
        Effect::Unknown if paths.iter().any(|p| p.depends.depends()) => {
            format!("some paths depend on {label} and the others are too little located to tell: ")
        }
        _ => String::new(),
    };
    format!("{lead}{}", each.join("; "))
}

/// The failure as the answer states it; an AS is named by the first name
/// its matching hops give.
fn report_failure(failure: &Failure, networks: &[NetworkMatch]) -> FailureReport {
    let mut report = FailureReport {
        kind: failure.kind(),
        country: None,
        asn: None,
        org: None,
        description: String::new(),
    };
    match failure {
        Failure::Country(c) => {
            report.country = Some(*c);
            report.description = format!("{} ({c})", c.name().unwrap_or("an unknown country"));
        }
        Failure::Asn(n) => {
            report.asn = Some(*n);
            let name = networks
                .iter()
                .find(|m| m.asn == *n)
                .and_then(|m| m.name.as_deref());
            report.description = match name {
                Some(name) => format!("AS{n} ({name})"),
                None => format!("AS{n}"),
            };
        }
        Failure::Org(text) => {
            report.org = Some(text.clone());
            report.description = format!("organisation matching `{text}`");
        }
    }
    report
}

/// `names` joined with ", ", at most [`NAMES_IN_SENTENCE`] of them, then
/// "and N more".
fn names_words<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let all: Vec<&str> = names.collect();
    if all.len() <= NAMES_IN_SENTENCE {
        all.join(", ")
    } else {
        format!(
            "{} and {} more",
            all[..NAMES_IN_SENTENCE].join(", "),
            all.len() - NAMES_IN_SENTENCE
        )
    }
}

/// The findings in plain words.
fn sentences(
    failure: &Failure,
    description: &str,
    at: Timestamp,
    counts: &Counts,
    services: &[ServiceImpact],
    networks: &[NetworkMatch],
    any_match: bool,
) -> Vec<String> {
    let n = counts.services;
    if n == 0 {
        return vec![format!(
            "No national service has a trace at or before {at}: there is nothing to judge."
        )];
    }
    let subject = match failure {
        Failure::Org(_) => format!("the {description}"),
        _ => description.to_string(),
    };
    let with = |effect: Effect| {
        names_words(
            services
                .iter()
                .filter(move |s| s.effect == effect)
                .map(|s| s.name.as_str()),
        )
    };
    let mut clauses: Vec<String> = Vec::new();
    for (effect, count, one, many) in [
        (
            Effect::LosesHosting,
            counts.loses_hosting,
            "loses its hosting",
            "lose their hosting",
        ),
        (
            Effect::LosesRoute,
            counts.loses_route,
            "loses its route",
            "lose their route",
        ),
        (
            Effect::LosesDns,
            counts.loses_dns_only,
            "loses its DNS (its name servers)",
            "lose their DNS (their name servers)",
        ),
        (
            Effect::Degraded,
            counts.degraded,
            "is degraded",
            "are degraded",
        ),
    ] {
        if count == 0 {
            continue;
        }
        let verb = if count == 1 { one } else { many };
        let who = if clauses.is_empty() {
            format!("{count} of {n} national services")
        } else {
            count.to_string()
        };
        clauses.push(format!("{who} {verb}: {}", with(effect)));
    }
    let also_dns = counts.loses_dns - counts.loses_dns_only;
    if also_dns > 0 {
        clauses.push(format!(
            "{also_dns} of those losing their route or hosting also {}: {}",
            if also_dns == 1 {
                "loses its DNS"
            } else {
                "lose their DNS"
            },
            names_words(
                services
                    .iter()
                    .filter(|s| s.loses_dns && s.effect != Effect::LosesDns)
                    .map(|s| s.name.as_str())
            )
        ));
    }
    let mut out = Vec::new();
    if clauses.is_empty() {
        out.push(format!(
            "If {subject} becomes unavailable, none of the {n} national services loses its route or its hosting{}.",
            if counts.unknown > 0 {
                " as far as their located paths show"
            } else {
                ""
            }
        ));
    } else {
        out.push(format!(
            "If {subject} becomes unavailable, {}.",
            clauses.join("; ")
        ));
    }
    if !any_match {
        out.push(match failure {
            Failure::Country(_) => {
                format!("No located hop of the latest paths is in {description}.")
            }
            Failure::Asn(n) => format!("No hop of the latest paths is in AS{n}."),
            Failure::Org(text) => format!(
                "No hop of the latest paths belongs to a network whose organisation matches `{text}`: nothing depends on it."
            ),
        });
    } else if let Failure::Org(text) = failure {
        let list: Vec<String> = networks
            .iter()
            .map(|m| match (&m.name, &m.operator) {
                (Some(name), Some(op)) => format!("AS{} ({name}, operated by {op})", m.asn),
                (Some(name), None) => format!("AS{} ({name})", m.asn),
                (None, Some(op)) => format!("AS{} (operated by {op})", m.asn),
                (None, None) => format!("AS{}", m.asn),
            })
            .collect();
        if !list.is_empty() {
            out.push(format!(
                "`{text}` matches the {} of {}.",
                if list.len() == 1 {
                    "organisation"
                } else {
                    "organisations"
                },
                list.join(", ")
            ));
        }
    }
    if counts.unaffected > 0 && !clauses.is_empty() {
        out.push(format!(
            "{} {} unaffected: {}.",
            plural(counts.unaffected, "service"),
            if counts.unaffected == 1 { "is" } else { "are" },
            with(Effect::Unaffected)
        ));
    }
    if counts.unknown > 0 {
        out.push(format!(
            "{} cannot be judged, too little of {} paths being located: {}.",
            plural(counts.unknown, "service"),
            if counts.unknown == 1 { "its" } else { "their" },
            with(Effect::Unknown)
        ));
    }
    out
}

/// `1 service`, `2 services`.
fn plural(n: u32, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests;

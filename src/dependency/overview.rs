//! Every dependency finding at one moment, from the latest record of each
//! path: per service its hosting ([`super::hosting`]) and its DNS
//! ([`super::nameservers`]), nationally the services whose DNS is flagged,
//! and what fails if each country or operator that appears in the paths
//! becomes unavailable ([`super::Assessment`]). The daemon's metrics and
//! `/api/v1/dependencies`, and the report, all take their figures from
//! here, so they are the same figures.
//!
//! **Which failures are assessed.** Every foreign country some path's
//! verdict locates a hop in (services' and name servers' paths alike), and
//! every operator the operator table gives some hop's AS (an
//! organisation failure by the operator's name): a bounded set (countries
//! of the world, operators of the table), whatever the number of services.

use super::hosting::{path_hosting, service_hosting, ServiceHosting};
use super::nameservers::{service_dns, DnsPolicy, ServiceDns};
use super::{Assessment, Failure, FailureReport};
use crate::analysis::AcceptedLocations;
use crate::model::{CountryCode, PathKey, TraceRecord};
use crate::operators::OperatorTable;
use crate::units::Timestamp;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// A path's key, its latest record and that record's stored id.
type LatestPath<'a> = (&'a PathKey, &'a TraceRecord, Option<i64>);

/// A service's accepted dependencies (`accepted_countries`,
/// `accepted_operators`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accepted {
    /// Foreign countries accepted for DNS.
    pub countries: Vec<CountryCode>,
    /// Operators accepted (names of the operator table).
    pub operators: Vec<String>,
}

/// One service's dependencies.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceDependencies {
    /// The target name.
    pub name: String,
    /// Who hosts it.
    pub hosting: ServiceHosting,
    /// Who answers for its name (absent: its records keep no DNS
    /// dependencies, e.g. an address target or `[dependency] dns` off).
    pub dns: Option<ServiceDns>,
}

/// What fails if one country or operator becomes unavailable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AtRisk {
    /// The country or operator.
    pub failure: FailureReport,
    /// Services that lose their hosting.
    pub loses_hosting: Vec<String>,
    /// Services that lose their route.
    pub loses_route: Vec<String>,
    /// Services that lose their DNS (whatever their paths do).
    pub loses_dns: Vec<String>,
    /// The finding in plain words.
    pub sentence: String,
}

/// National DNS figures: services, not paths.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NationalDns {
    /// Services whose DNS dependencies are known.
    pub services: u32,
    /// Those with a zone all in one foreign country or run by one
    /// foreign-based operator, not accepted.
    pub flagged: Vec<String>,
    /// Those whose only such zones are accepted dependencies.
    pub accepted: Vec<String>,
    /// Per foreign country, the services some of whose name servers' paths
    /// cross it or end in it.
    pub countries: BTreeMap<CountryCode, Vec<String>>,
    /// Those whose resolution left something not established.
    pub incomplete: Vec<String>,
    /// The findings in plain words.
    pub sentences: Vec<String>,
}

/// Every dependency finding at one moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Overview {
    /// The latest paths are those at or before this time.
    pub at: Timestamp,
    /// Per service, by name.
    pub services: Vec<ServiceDependencies>,
    /// National DNS figures.
    pub dns: NationalDns,
    /// What fails if each assessed country or operator does, countries
    /// first, each by name.
    pub at_risk: Vec<AtRisk>,
}

/// The findings from the latest record of each path (`paths`: key,
/// record, stored id), with the operator table, the home country and each
/// service's accepted dependencies.
#[must_use]
pub fn overview<'a>(
    at: Timestamp,
    paths: impl IntoIterator<Item = (&'a PathKey, &'a TraceRecord, Option<i64>)>,
    operators: &OperatorTable,
    home: Option<CountryCode>,
    accepted: &BTreeMap<String, Accepted>,
) -> Overview {
    let latest: BTreeMap<&PathKey, (&TraceRecord, Option<i64>)> =
        paths.into_iter().map(|(k, r, id)| (k, (r, id))).collect();
    let none = Accepted::default();

    // Per service.
    let mut by_service: BTreeMap<&str, Vec<LatestPath<'_>>> = BTreeMap::new();
    for (key, (record, id)) in &latest {
        if !key.is_dependency() {
            by_service
                .entry(key.target())
                .or_default()
                .push((key, record, *id));
        }
    }
    let mut services = Vec::with_capacity(by_service.len());
    for (name, paths) in &by_service {
        let rules = accepted.get(*name).unwrap_or(&none);
        let hosting = service_hosting(
            name,
            paths
                .iter()
                .map(|(k, r, id)| {
                    path_hosting(&k.to_string(), r, *id, home, operators, &rules.operators)
                })
                .collect(),
        );
        // The newest record of the service that keeps its DNS dependencies.
        let dns = paths
            .iter()
            .filter_map(|(_, r, _)| r.dns.as_deref().map(|d| (r.trace.started_at, d)))
            .max_by_key(|(when, _)| *when)
            .map(|(when, d)| {
                service_dns(
                    d,
                    when,
                    |k: &PathKey| latest.get(k).copied(),
                    operators,
                    DnsPolicy {
                        home,
                        accepted_countries: &rules.countries,
                        accepted_operators: &rules.operators,
                    },
                )
            });
        services.push(ServiceDependencies {
            name: (*name).to_string(),
            hosting,
            dns,
        });
    }

    // What fails if: the countries and operators the paths show.
    let mut countries: BTreeSet<CountryCode> = BTreeSet::new();
    let mut operator_names: BTreeSet<String> = BTreeSet::new();
    for (record, _) in latest.values() {
        let located = AcceptedLocations::of(&record.verdict);
        for hop in &record.trace.hops {
            if let Some(c) = located.country(hop).filter(|c| Some(*c) != home) {
                countries.insert(c);
            }
            if let Some(op) = hop.geo.asn.and_then(|n| operators.get(n)) {
                operator_names.insert(op.name.clone());
            }
        }
    }
    let failures = countries
        .into_iter()
        .map(Failure::Country)
        .chain(operator_names.into_iter().map(Failure::Org));
    let at_risk = failures
        .map(|failure| {
            let mut assessment = Assessment::new(failure, at).with_operators(operators.clone());
            for (key, (record, id)) in &latest {
                assessment.add(key, record, *id);
            }
            let answer = assessment.finish();
            let names = |pick: &dyn Fn(&super::ServiceImpact) -> bool| -> Vec<String> {
                answer
                    .services
                    .iter()
                    .filter(|s| pick(s))
                    .map(|s| s.name.clone())
                    .collect()
            };
            AtRisk {
                loses_hosting: names(&|s| s.effect == super::Effect::LosesHosting),
                loses_route: names(&|s| s.effect == super::Effect::LosesRoute),
                loses_dns: names(&|s| s.loses_dns),
                sentence: answer.sentences.first().cloned().unwrap_or_default(),
                failure: answer.failure,
            }
        })
        .collect();

    let dns = national_dns(&services);
    Overview {
        at,
        services,
        dns,
        at_risk,
    }
}

fn national_dns(services: &[ServiceDependencies]) -> NationalDns {
    let mut out = NationalDns {
        services: 0,
        flagged: Vec::new(),
        accepted: Vec::new(),
        countries: BTreeMap::new(),
        incomplete: Vec::new(),
        sentences: Vec::new(),
    };
    for s in services {
        let Some(dns) = &s.dns else { continue };
        out.services += 1;
        if dns.flagged {
            out.flagged.push(s.name.clone());
        } else if dns.zones.iter().any(|z| z.accepted) {
            out.accepted.push(s.name.clone());
        }
        if !dns.problems.is_empty() {
            out.incomplete.push(s.name.clone());
        }
        let mut seen: BTreeSet<CountryCode> = BTreeSet::new();
        for zone in &dns.zones {
            for c in zone.crosses.iter().chain(&zone.countries) {
                if Some(*c) != dns.home && seen.insert(*c) {
                    out.countries.entry(*c).or_default().push(s.name.clone());
                }
            }
        }
    }
    let n = out.services;
    if n == 0 {
        return out;
    }
    let names = |list: &[String]| super::names_words(list.iter().map(String::as_str));
    if out.flagged.is_empty() {
        out.sentences.push(format!(
            "None of the {n} national services whose DNS was resolved has all the name servers of a zone in one foreign country or run by one foreign-based operator{}.",
            if out.accepted.is_empty() { "" } else { ", but for accepted dependencies" }
        ));
    } else {
        out.sentences.push(format!(
            "{} of {n} national services {} name servers all in one foreign country or run by one foreign-based operator: {}.",
            out.flagged.len(),
            if out.flagged.len() == 1 { "depends on" } else { "depend on" },
            names(&out.flagged)
        ));
    }
    for (country, list) in &out.countries {
        out.sentences.push(format!(
            "The name servers of {} of {n} national services are in or reached through {} ({country}): {}.",
            list.len(),
            country.name().unwrap_or("an unknown country"),
            names(list)
        ));
    }
    if !out.incomplete.is_empty() {
        out.sentences.push(format!(
            "For {} some of the DNS dependencies could not be established: {}.",
            if out.incomplete.len() == 1 {
                "1 service".to_string()
            } else {
                format!("{} services", out.incomplete.len())
            },
            names(&out.incomplete)
        ));
    }
    out
}

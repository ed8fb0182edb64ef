//! Who answers for each service's name: the zones its name needs, their
//! name servers, where those are and who runs them, and the flag a small
//! state cares about: every server of a zone in one foreign country, or
//! run by one foreign-based operator. Pure, like the rest of
//! `dependency`: the caller hands in the DNS dependencies a service's
//! record keeps and a way to find the latest record of each dependency
//! path; every figure and sentence is made here.
//!
//! # The rules
//!
//! **The zones** are the service's own zone and, when its name is an
//! alias, its alias target's zone (a CNAME into a cloud provider's zone
//! makes that provider's servers a dependency too).
//!
//! **A name server** is located by its dependency paths
//! (`dns:NAME/ipv4`, `dns:NAME/ipv6`), like a service by its own
//! ([`super::hosting::path_hosting`]): the country the verdict accepts for
//! the server's answering address, the operator the operator table gives
//! its AS, and where that operator is based. A server with no traced path,
//! or whose destination did not answer or is not located, is `unknown`:
//! nothing is guessed from its name.
//!
//! **Flags.** A zone is in one foreign country when it has name servers,
//! every one of them is located, and all are in the same country, not the
//! home one; it is run by one foreign-based operator when every server has
//! an operator in the table and it is the same one, based abroad. Either
//! flag is `accepted` when the target names that country in
//! `accepted_countries` or that operator in `accepted_operators` (both,
//! when both flags are up): reported, not alerted. `crosses` lists the
//! foreign countries the paths to its servers cross (the transit verdicts
//! of the dependency paths, today's).
//!
//! **Missing evidence** is said, not guessed: a zone that could not be
//! found, a zone without servers, servers without addresses or without a
//! traced path, and every [`Problem`] of the resolution are in the
//! finding.

use super::hosting::{path_hosting, OperatorBase};
use crate::model::dns::{DnsDependencies, Problem};
use crate::model::{CountryCode, PathFamily, PathKey, TraceRecord, VerdictClass};
use crate::operators::OperatorTable;
use crate::units::Timestamp;
use serde::Serialize;
use std::net::IpAddr;

/// Which of a service's zones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ZoneRole {
    /// The zone of the service's own name.
    Own,
    /// The zone of its alias (CNAME) target.
    AliasTarget,
}

impl ZoneRole {
    /// In words, after a zone's name.
    #[must_use]
    pub const fn words(self) -> &'static str {
        match self {
            Self::Own => "its zone",
            Self::AliasTarget => "its alias target's zone",
        }
    }
}

/// A zone's apex, its role and its name servers' names.
pub type ZoneNames = (String, ZoneRole, Vec<String>);

/// The zones of `dns` with their servers' names.
#[must_use]
pub fn zone_names(dns: &DnsDependencies) -> Vec<ZoneNames> {
    [
        (&dns.zone, ZoneRole::Own),
        (&dns.target_zone, ZoneRole::AliasTarget),
    ]
    .into_iter()
    .filter_map(|(zone, role)| {
        zone.as_ref().map(|z| {
            (
                z.name.clone(),
                role,
                z.nameservers.iter().map(|n| n.name.clone()).collect(),
            )
        })
    })
    .collect()
}

/// One dependency path to a name server, today.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NameserverPath {
    /// `dns:NAME/ipv4` or `/ipv6`.
    pub path_key: String,
    /// The stored trace's id, when read from the history.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<i64>,
    /// When its latest trace started.
    pub started_at: Timestamp,
    /// Whether the server answered.
    pub reached: bool,
    /// Its transit verdict.
    pub class: VerdictClass,
    /// The countries it crosses, in path order.
    pub countries: Vec<CountryCode>,
    /// The foreign countries among them.
    pub foreign_countries: Vec<CountryCode>,
}

/// A name server: where it is and who runs it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NameserverFinding {
    /// Its name.
    pub name: String,
    /// Its addresses, as resolved.
    pub addresses: Vec<IpAddr>,
    /// Its country, when a path's verdict accepts its location.
    pub country: Option<CountryCode>,
    /// Its origin AS.
    pub asn: Option<u32>,
    /// The organisation behind its AS: the operator table's name, else
    /// the AS registry's.
    pub operator: Option<String>,
    /// Where that operator is based.
    pub operated_by: OperatorBase,
    /// The operator's country (its parent company's).
    pub operator_country: Option<CountryCode>,
    /// Whether the operator is one the service accepts.
    pub accepted: bool,
    /// Its dependency paths, by key (empty: not traced yet).
    pub paths: Vec<NameserverPath>,
}

/// A zone a service's name needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ZoneFinding {
    /// The zone's apex.
    pub zone: String,
    /// Own or alias target.
    pub role: ZoneRole,
    /// Its name servers, by name.
    pub nameservers: Vec<NameserverFinding>,
    /// Servers located.
    pub located: u32,
    /// Their countries, each once, in server order.
    pub countries: Vec<CountryCode>,
    /// Their operators, each once, in server order.
    pub operators: Vec<String>,
    /// Every server located in this one foreign country.
    pub single_foreign_country: Option<CountryCode>,
    /// Every server run by this one foreign-based operator.
    pub single_foreign_operator: Option<String>,
    /// Foreign countries the paths to its servers cross.
    pub crosses: Vec<CountryCode>,
    /// The flags raised are the target's accepted dependencies.
    pub accepted: bool,
    /// A flag is raised and not accepted.
    pub flagged: bool,
    /// The finding in plain words.
    pub sentence: String,
}

/// A service's DNS verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceDns {
    /// The name resolved.
    pub name: String,
    /// When (the start of the record that keeps it).
    pub resolved_at: Timestamp,
    /// The home country it was judged against.
    pub home: Option<CountryCode>,
    /// The alias chain, as `name -> target` steps.
    pub cname_chain: Vec<String>,
    /// Its canonical name, when the chain ended.
    pub canonical: Option<String>,
    /// The canonical name's addresses.
    pub addresses: Vec<IpAddr>,
    /// The zones it needs.
    pub zones: Vec<ZoneFinding>,
    /// What could not be established.
    pub problems: Vec<Problem>,
    /// Some zone is flagged.
    pub flagged: bool,
    /// The verdict in plain words.
    pub sentence: String,
}

/// What a service accepts and what home is.
#[derive(Debug, Clone, Copy)]
pub struct DnsPolicy<'a> {
    /// The home country.
    pub home: Option<CountryCode>,
    /// Foreign countries accepted as dependencies.
    pub accepted_countries: &'a [CountryCode],
    /// Operators accepted as dependencies (names of the table).
    pub accepted_operators: &'a [String],
}

/// The DNS verdict of a service whose record (started at `resolved_at`)
/// keeps `dns`; `latest` finds the latest record of a dependency path
/// (with its stored id).
#[must_use]
pub fn service_dns<'r>(
    dns: &DnsDependencies,
    resolved_at: Timestamp,
    latest: impl Fn(&PathKey) -> Option<(&'r TraceRecord, Option<i64>)>,
    operators: &OperatorTable,
    policy: DnsPolicy<'_>,
) -> ServiceDns {
    let mut zones = Vec::new();
    for (zone, role) in [
        (&dns.zone, ZoneRole::Own),
        (&dns.target_zone, ZoneRole::AliasTarget),
    ] {
        let Some(zone) = zone else { continue };
        let servers: Vec<NameserverFinding> = zone
            .nameservers
            .iter()
            .map(|ns| nameserver(&ns.name, &ns.addresses, &latest, operators, policy))
            .collect();
        zones.push(zone_finding(&zone.name, role, servers, operators, policy));
    }
    let flagged = zones.iter().any(|z| z.flagged);
    let mut out = ServiceDns {
        name: dns.name.clone(),
        resolved_at,
        home: policy.home,
        cname_chain: dns
            .cname_chain
            .iter()
            .map(|s| format!("{} -> {}", s.name, s.target))
            .collect(),
        canonical: dns.canonical.clone(),
        addresses: dns.addresses.clone(),
        zones,
        problems: dns.problems.clone(),
        flagged,
        sentence: String::new(),
    };
    out.sentence = service_sentence(&out);
    out
}

fn nameserver<'r>(
    name: &str,
    addresses: &[IpAddr],
    latest: &impl Fn(&PathKey) -> Option<(&'r TraceRecord, Option<i64>)>,
    operators: &OperatorTable,
    policy: DnsPolicy<'_>,
) -> NameserverFinding {
    let mut finding = NameserverFinding {
        name: name.to_string(),
        addresses: addresses.to_vec(),
        country: None,
        asn: None,
        operator: None,
        operated_by: OperatorBase::Unknown,
        operator_country: None,
        accepted: false,
        paths: Vec::new(),
    };
    for family in [PathFamily::Ipv4, PathFamily::Ipv6] {
        let key = PathKey::nameserver(name, family);
        let Some((record, trace_id)) = latest(&key) else {
            continue;
        };
        let hosting = path_hosting(
            &key.to_string(),
            record,
            trace_id,
            policy.home,
            operators,
            policy.accepted_operators,
        );
        if finding.country.is_none() {
            finding.country = hosting.country;
        }
        if finding.asn.is_none() {
            finding.asn = hosting.asn;
        }
        if finding.operator.is_none() {
            if let Some(name) = hosting.organisation() {
                finding.operator = Some(name.to_string());
                finding.operated_by = hosting.operated_by;
                finding.operator_country = hosting.organisation_country();
                finding.accepted = hosting.accepted;
            }
        }
        finding.paths.push(NameserverPath {
            path_key: key.to_string(),
            trace_id,
            started_at: record.trace.started_at,
            reached: hosting.reached,
            class: record.verdict.class,
            countries: record.verdict.countries.clone(),
            foreign_countries: record.verdict.foreign_countries.clone(),
        });
    }
    finding
}

fn zone_finding(
    name: &str,
    role: ZoneRole,
    nameservers: Vec<NameserverFinding>,
    operators: &OperatorTable,
    policy: DnsPolicy<'_>,
) -> ZoneFinding {
    let mut countries: Vec<CountryCode> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    let mut crosses: Vec<CountryCode> = Vec::new();
    for ns in &nameservers {
        if let Some(c) = ns.country.filter(|c| !countries.contains(c)) {
            countries.push(c);
        }
        if let Some(op) = ns.operator.as_ref().filter(|op| !names.contains(op)) {
            names.push(op.clone());
        }
        for c in ns.paths.iter().flat_map(|p| &p.foreign_countries) {
            if !crosses.contains(c) {
                crosses.push(*c);
            }
        }
    }
    let located = u32::try_from(nameservers.iter().filter(|n| n.country.is_some()).count())
        .unwrap_or(u32::MAX);
    let all_located = !nameservers.is_empty() && nameservers.iter().all(|n| n.country.is_some());
    let single_foreign_country = match countries.as_slice() {
        [only] if all_located && Some(*only) != policy.home => Some(*only),
        _ => None,
    };
    let all_operated = !nameservers.is_empty() && nameservers.iter().all(|n| n.operator.is_some());
    let single_foreign_operator = match names.as_slice() {
        [only] if all_operated && nameservers[0].operated_by == OperatorBase::ForeignBased => {
            Some(only.clone())
        }
        _ => None,
    };
    let raised = single_foreign_country.is_some() || single_foreign_operator.is_some();
    let country_ok = single_foreign_country.is_none_or(|c| policy.accepted_countries.contains(&c));
    let operator_ok = single_foreign_operator.as_ref().is_none_or(|op| {
        operators
            .iter()
            .any(|(_, o)| o.name == *op && policy.accepted_operators.iter().any(|a| o.is_named(a)))
    });
    let accepted = raised && country_ok && operator_ok;
    let mut finding = ZoneFinding {
        zone: name.to_string(),
        role,
        located,
        countries,
        operators: names,
        single_foreign_country,
        single_foreign_operator,
        crosses,
        accepted,
        flagged: raised && !accepted,
        sentence: String::new(),
        nameservers,
    };
    finding.sentence = zone_sentence(&finding);
    finding
}

fn country_words(c: CountryCode) -> String {
    format!("{} ({c})", c.name().unwrap_or("an unknown country"))
}

fn servers_words(n: usize) -> String {
    if n == 1 {
        "1 name server".into()
    } else {
        format!("{n} name servers")
    }
}

/// "bank.ls (its zone): 1 name server, in Lesotho (LS), run by Lab ISP;
/// the path to it crosses South Africa (ZA)."
fn zone_sentence(z: &ZoneFinding) -> String {
    let n = z.nameservers.len();
    let mut s = format!("{} ({})", z.zone, z.role.words());
    if n == 0 {
        s.push_str(": no name server could be found, so nothing is known of who answers for it.");
        return s;
    }
    s.push_str(": ");
    match (z.single_foreign_country, &z.single_foreign_operator) {
        (Some(c), Some(op)) => s.push_str(&format!(
            "every name server ({n}) is in {} and run by {op}, a foreign-based operator",
            country_words(c)
        )),
        (Some(c), None) => s.push_str(&format!(
            "every name server ({n}) is in {}",
            country_words(c)
        )),
        (None, Some(op)) => s.push_str(&format!(
            "every name server ({n}) is run by {op}, a foreign-based operator"
        )),
        (None, None) => {
            s.push_str(&servers_words(n));
            if !z.countries.is_empty() {
                let places: Vec<String> = z.countries.iter().map(|c| country_words(*c)).collect();
                s.push_str(&format!(", in {}", places.join(" and ")));
            }
            if !z.operators.is_empty() {
                s.push_str(&format!(", run by {}", z.operators.join(" and ")));
            }
        }
    }
    if z.accepted {
        s.push_str(" (an accepted dependency)");
    }
    let unlocated = n - z.located as usize;
    if unlocated > 0 {
        s.push_str(&format!(
            "; {} of {n} not located (no answering traced path yet)",
            unlocated
        ));
    }
    if !z.crosses.is_empty() {
        let places: Vec<String> = z.crosses.iter().map(|c| country_words(*c)).collect();
        s.push_str(&format!(
            "; the {} to {} {} {}",
            if n == 1 { "path" } else { "paths" },
            if n == 1 { "it" } else { "them" },
            if n == 1 { "crosses" } else { "cross" },
            places.join(" and ")
        ));
    }
    s.push('.');
    s
}

fn service_sentence(d: &ServiceDns) -> String {
    let mut parts: Vec<String> = Vec::new();
    if !d.cname_chain.is_empty() {
        parts.push(format!(
            "{} is an alias of {}.",
            d.name,
            d.canonical
                .as_deref()
                .unwrap_or("a name that could not be resolved")
        ));
    }
    if d.zones.is_empty() {
        parts.push(format!(
            "The zone of {} could not be found: who answers for it is not known.",
            d.name
        ));
    }
    parts.extend(d.zones.iter().map(|z| z.sentence.clone()));
    if !d.problems.is_empty() {
        let each: Vec<String> = d
            .problems
            .iter()
            .map(|p| format!("{} {} ({})", p.name, p.query.label(), p.kind.label()))
            .collect();
        parts.push(format!("Not established: {}.", each.join(", ")));
    }
    parts.join(" ")
}

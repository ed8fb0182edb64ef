//! Who hosts each national service: the organisation behind its
//! destination address, where that organisation is based, and a verdict
//! per service. Pure, like the rest of `dependency`: the caller hands in
//! the latest record of each path, the operator table and the service's
//! accepted operators; every figure and sentence is made here.
//!
//! # The rules
//!
//! **The destination** is the hop the verdict locates
//! ([`crate::model::Trace::destination_hop`]), only when the target was
//! reached. Its place is the country the verdict accepts for it
//! ([`crate::analysis::AcceptedLocations`]): `home` when that is the home
//! country (the policy's, else the vantage's), `abroad` when another,
//! `unknown` when the destination did not answer or its location is not
//! accepted.
//!
//! **The operator** is the one the operator table
//! ([`crate::operators`]) gives the destination's origin AS, and its base
//! the country its parent company is in: `domestic` when that is home,
//! `foreign_based` otherwise. When the table does not list the AS, the AS
//! registry ([`crate::asn_registry`]) gives the AS's published name and
//! the country the AS is registered in, and that country is the base
//! (`based_on: as_registration`, weaker than the table's parent company:
//! a subsidiary registers its AS where it operates); `unknown` when
//! neither knows the AS (or no AS is known): nothing is guessed from the
//! AS name. The AS is a fact about the address, so it counts whether or
//! not the location is accepted.
//!
//! **Accepted**: the operator is one of the target's
//! `accepted_operators` (names compared case-insensitively), a managed
//! dependency the country chose: reported, never alerted.
//!
//! **A service** (a target name; two paths when traced in both families):
//! its place is `home` or `abroad` when every path whose place is known
//! agrees, `mixed` when they differ, `unknown` when none is known; it is
//! operated by a `foreign_based` organisation when some reached path's
//! operator is, by a `domestic` one when every reached path's operator is,
//! else `unknown`; it is `accepted` when some path has an operator and
//! every path with one has an accepted one.

use super::names_words;
use crate::analysis::AcceptedLocations;
use crate::asn_registry::AsnRegistry;
use crate::model::{CountryCode, TraceRecord};
use crate::operators::{Operator, OperatorTable};
use crate::units::Timestamp;
use serde::Serialize;
use std::net::IpAddr;

/// Where a service answers from, against the home country.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HostingPlace {
    /// In the home country.
    Home,
    /// In another country.
    Abroad,
    /// Some paths at home, others abroad.
    Mixed,
    /// Not known: the destination did not answer, or its location is not
    /// accepted.
    Unknown,
}

/// What a base was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BaseSource {
    /// The operator table: the parent company's country.
    OperatorTable,
    /// The AS registry: the country the AS is registered in.
    AsRegistration,
}

/// Where the organisation operating a service's network is based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OperatorBase {
    /// In the home country.
    Domestic,
    /// In another country.
    ForeignBased,
    /// Not known: neither the operator table nor the AS registry places
    /// the AS.
    Unknown,
}

impl OperatorBase {
    /// In words: "a domestic operator".
    #[must_use]
    pub const fn words(self) -> &'static str {
        match self {
            Self::Domestic => "a domestic operator",
            Self::ForeignBased => "a foreign-based operator",
            Self::Unknown => "an operator of unknown base",
        }
    }
}

/// One path's destination and who operates it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PathHosting {
    /// The path key.
    pub path_key: String,
    /// The stored trace's id, when read from the history.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<i64>,
    /// When the trace started.
    pub started_at: Timestamp,
    /// Whether the destination answered.
    pub reached: bool,
    /// The destination's address, when it answered.
    pub addr: Option<IpAddr>,
    /// Its country, when the verdict accepts its location.
    pub country: Option<CountryCode>,
    /// Its origin AS.
    pub asn: Option<u32>,
    /// Its AS organisation, as the geolocation sources name it.
    pub as_org: Option<String>,
    /// The AS's operator, when the operator table lists it.
    pub operator: Option<Operator>,
    /// The AS's name in the AS registry.
    pub as_name: Option<String>,
    /// The country the AS is registered in (the AS registry).
    pub registered_country: Option<CountryCode>,
    /// Home, abroad or unknown.
    pub place: HostingPlace,
    /// Where the operator is based.
    pub operated_by: OperatorBase,
    /// What that base was read from (`None`: unknown).
    pub based_on: Option<BaseSource>,
    /// Whether the operator is one of the service's accepted operators.
    pub accepted: bool,
    /// The home country it was judged against (the service states it).
    #[serde(skip)]
    pub home: Option<CountryCode>,
}

/// A service's hosting verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceHosting {
    /// The home country the verdict is made against, when known.
    pub home: Option<CountryCode>,
    /// Home, abroad, mixed or unknown.
    pub place: HostingPlace,
    /// The destinations' accepted countries, each once, in path order.
    pub countries: Vec<CountryCode>,
    /// Where its operators are based.
    pub operated_by: OperatorBase,
    /// The operators of its destinations, each once, in path order.
    pub operators: Vec<Operator>,
    /// Whether every operator named is one the service accepts.
    pub accepted: bool,
    /// The verdict in plain words.
    pub sentence: String,
    /// Per path, by key.
    pub paths: Vec<PathHosting>,
}

/// National hosting figures: services, not paths.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NationalHosting {
    /// Services with a hosting verdict.
    pub services: u32,
    /// Hosted by a foreign-based operator, by name.
    pub foreign_based: Vec<String>,
    /// Of them, those whose operators the service accepts.
    pub accepted: Vec<String>,
    /// Hosted by a domestic operator.
    pub domestic: Vec<String>,
    /// In networks neither the operator table nor the AS registry places
    /// (or unreached).
    pub unknown: Vec<String>,
    /// The finding in plain words.
    pub sentence: String,
}

/// The hosting of one path, from its latest record. `home`: the policy's
/// home country (the record's vantage country when `None`); `accepted`:
/// the service's accepted operators.
#[must_use]
pub fn path_hosting(
    path_key: &str,
    record: &TraceRecord,
    trace_id: Option<i64>,
    home: Option<CountryCode>,
    operators: &OperatorTable,
    accepted: &[String],
) -> PathHosting {
    let trace = &record.trace;
    let home = home.or(trace.vantage.country);
    let destination = trace.destination_hop();
    let country = destination.and_then(|hop| AcceptedLocations::of(&record.verdict).country(hop));
    let asn = destination.and_then(|hop| hop.geo.asn);
    let operator = asn.and_then(|n| operators.get(n)).cloned();
    let registered = asn.and_then(|n| AsnRegistry::shipped().get(n));
    let registered_country = registered.and_then(|e| e.country);
    let place = match (country, home) {
        (Some(c), Some(h)) if c == h => HostingPlace::Home,
        (Some(_), Some(_)) => HostingPlace::Abroad,
        _ => HostingPlace::Unknown,
    };
    let (base, based_on) = match (&operator, registered_country) {
        (Some(op), _) => (Some(op.country), Some(BaseSource::OperatorTable)),
        (None, Some(c)) => (Some(c), Some(BaseSource::AsRegistration)),
        (None, None) => (None, None),
    };
    let operated_by = match (base, home) {
        (Some(b), Some(h)) if b == h => OperatorBase::Domestic,
        (Some(_), Some(_)) => OperatorBase::ForeignBased,
        _ => OperatorBase::Unknown,
    };
    PathHosting {
        path_key: path_key.to_string(),
        trace_id,
        started_at: trace.started_at,
        reached: destination.is_some(),
        addr: destination.and_then(|hop| hop.addr),
        country,
        asn,
        as_org: destination.and_then(|hop| hop.geo.as_org.clone()),
        accepted: operator
            .as_ref()
            .is_some_and(|op| accepted.iter().any(|name| op.is_named(name))),
        operator,
        as_name: registered.map(|e| e.name.to_string()),
        registered_country,
        place,
        operated_by,
        based_on: based_on.filter(|_| home.is_some()),
        home,
    }
}

impl PathHosting {
    /// The organisation behind the destination: the operator table's
    /// name, else the AS registry's.
    #[must_use]
    pub fn organisation(&self) -> Option<&str> {
        self.operator
            .as_ref()
            .map(|op| op.name.as_str())
            .or(self.as_name.as_deref())
    }

    /// Where that organisation is based: its parent company's country
    /// (the table), else the AS's registration country.
    #[must_use]
    pub fn organisation_country(&self) -> Option<CountryCode> {
        self.operator
            .as_ref()
            .map(|op| op.country)
            .or(self.registered_country)
    }
}

/// The hosting verdict of the service `name` from its paths' (module docs).
#[must_use]
pub fn service_hosting(name: &str, mut paths: Vec<PathHosting>) -> ServiceHosting {
    paths.sort_by(|a, b| a.path_key.cmp(&b.path_key));
    let known: Vec<HostingPlace> = paths
        .iter()
        .map(|p| p.place)
        .filter(|p| *p != HostingPlace::Unknown)
        .collect();
    let place = match known.first() {
        None => HostingPlace::Unknown,
        Some(first) if known.iter().all(|p| p == first) => *first,
        Some(_) => HostingPlace::Mixed,
    };
    let reached: Vec<&PathHosting> = paths.iter().filter(|p| p.reached).collect();
    let operated_by = if reached
        .iter()
        .any(|p| p.operated_by == OperatorBase::ForeignBased)
    {
        OperatorBase::ForeignBased
    } else if !reached.is_empty()
        && reached
            .iter()
            .all(|p| p.operated_by == OperatorBase::Domestic)
    {
        OperatorBase::Domestic
    } else {
        OperatorBase::Unknown
    };
    let mut countries: Vec<CountryCode> = Vec::new();
    let mut operators: Vec<Operator> = Vec::new();
    for p in &paths {
        if let Some(c) = p.country.filter(|c| !countries.contains(c)) {
            countries.push(c);
        }
        if let Some(op) = p.operator.as_ref().filter(|op| !operators.contains(op)) {
            operators.push(op.clone());
        }
    }
    let with_operator: Vec<&PathHosting> = paths.iter().filter(|p| p.operator.is_some()).collect();
    let accepted = !with_operator.is_empty() && with_operator.iter().all(|p| p.accepted);
    let sentence = sentence(name, &paths);
    ServiceHosting {
        home: paths.iter().find_map(|p| p.home),
        place,
        countries,
        operated_by,
        operators,
        accepted,
        sentence,
        paths,
    }
}

/// What one path's hosting says after "X is hosted ", or the whole clause
/// when its destination did not answer.
fn clause(subject: &str, p: &PathHosting) -> String {
    if !p.reached {
        return format!("{subject} did not answer in its latest trace: who hosts it is unknown");
    }
    let place = match (p.place, p.country) {
        (HostingPlace::Home, Some(c)) => format!("at home ({c})"),
        (HostingPlace::Abroad, Some(c)) => format!(
            "abroad, in {} ({c})",
            c.name().unwrap_or("an unknown country")
        ),
        _ => "at an address whose location is not established".to_string(),
    };
    let who = match (&p.operator, p.asn) {
        (Some(op), _) => {
            let mut s = format!(
                "by {} (based in {}) — {}",
                op.name,
                op.country,
                p.operated_by.words()
            );
            if p.accepted {
                s.push_str(", accepted for this service");
            }
            s
        }
        (None, Some(asn)) => {
            let name = p
                .as_org
                .as_deref()
                .filter(|o| !o.trim().is_empty())
                .or(p.as_name.as_deref())
                .map(|o| format!(" ({o})"))
                .unwrap_or_default();
            match p.registered_country {
                Some(c) => format!(
                    "in AS{asn}{name}, registered in {} ({c}) — {} by the AS's registration (the operator table does not list it)",
                    c.name().unwrap_or("an unknown country"),
                    p.operated_by.words()
                ),
                None => format!(
                    "in AS{asn}{name}, which neither the operator table nor the AS registry places: where its operator is based is unknown"
                ),
            }
        }
        (None, None) => "in a network of unknown AS: who operates it is unknown".to_string(),
    };
    format!("{subject} is hosted {place} {who}")
}

/// The service's verdict in words: one clause when its paths agree, one
/// per path when they differ.
fn sentence(name: &str, paths: &[PathHosting]) -> String {
    if paths.is_empty() {
        return format!("{name} has no trace: who hosts it is unknown.");
    }
    let alike = paths.windows(2).all(|w| {
        (
            w[0].reached,
            w[0].place,
            w[0].country,
            w[0].asn,
            &w[0].operator,
            w[0].accepted,
        ) == (
            w[1].reached,
            w[1].place,
            w[1].country,
            w[1].asn,
            &w[1].operator,
            w[1].accepted,
        )
    });
    if alike {
        format!("{}.", clause(name, &paths[0]))
    } else {
        let each: Vec<String> = paths.iter().map(|p| clause(&p.path_key, p)).collect();
        format!("{name}: {}.", each.join("; "))
    }
}

/// The national figures from every service's verdict (name, verdict).
#[must_use]
pub fn national<'a>(
    services: impl IntoIterator<Item = (&'a str, &'a ServiceHosting)>,
) -> NationalHosting {
    let mut out = NationalHosting {
        services: 0,
        foreign_based: Vec::new(),
        accepted: Vec::new(),
        domestic: Vec::new(),
        unknown: Vec::new(),
        sentence: String::new(),
    };
    for (name, h) in services {
        out.services += 1;
        let list = match h.operated_by {
            OperatorBase::ForeignBased => {
                if h.accepted {
                    out.accepted.push(name.to_string());
                }
                &mut out.foreign_based
            }
            OperatorBase::Domestic => &mut out.domestic,
            OperatorBase::Unknown => &mut out.unknown,
        };
        list.push(name.to_string());
    }
    let n = out.services;
    let k = out.foreign_based.len();
    let mut s = if n == 0 {
        "No national service has a trace: who hosts them is unknown.".to_string()
    } else if k == 0 && n == 1 {
        "The national service is not hosted by a foreign-based operator the operator table lists."
            .to_string()
    } else if k == 0 {
        format!(
            "None of the {n} national services is hosted by a foreign-based operator the operator table lists."
        )
    } else {
        format!(
            "{k} of {n} national services {} hosted by foreign-based operators: {}.",
            if k == 1 { "is" } else { "are" },
            names_words(out.foreign_based.iter().map(String::as_str))
        )
    };
    if !out.accepted.is_empty() {
        let one = out.accepted.len() == 1;
        s.push_str(&format!(
            " Of them, {} {} hosted by {} the country accepted for {} (`accepted_operators`).",
            names_words(out.accepted.iter().map(String::as_str)),
            if one { "is" } else { "are" },
            if one { "an operator" } else { "operators" },
            if one { "it" } else { "them" },
        ));
    }
    if n > 0 && !out.unknown.is_empty() {
        let u = out.unknown.len();
        s.push_str(&format!(
            " {u} {} not be judged (not reached, or in networks neither the operator table nor the AS registry places): {}.",
            if u == 1 { "service could" } else { "services could" },
            names_words(out.unknown.iter().map(String::as_str))
        ));
    }
    out.sentence = s;
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{analyze, Policy};
    use crate::model::{
        Confidence, GeoSource, Hop, HopGeo, Protocol, RttMs, TargetRef, Trace, VantageRef,
    };

    const LS: &str = "LS";

    fn hop(ttl: u8, addr: &str, country: &str, asn: u32, org: &str) -> Hop {
        let addr: IpAddr = addr.parse().unwrap();
        Hop {
            ttl,
            addr: Some(addr),
            addrs: vec![addr],
            sent: 3,
            received: 3,
            rtt_ms: Some(RttMs {
                best: 20.0,
                avg: 20.0,
                worst: 20.0,
            }),
            geo: HopGeo {
                country: Some(country.parse().unwrap()),
                asn: Some(asn),
                as_org: Some(org.to_string()),
                source: GeoSource::Mmdb,
                plausible: Some(true),
                confidence: Some(Confidence::High),
                ..HopGeo::default()
            },
            hostname: None,
            mpls: Vec::new(),
        }
    }

    /// `name` reached at 203.0.113.10, located in `country`, in `asn`.
    fn record(name: &str, country: &str, asn: u32, org: &str, reached: bool) -> TraceRecord {
        let dest: IpAddr = "203.0.113.10".parse().unwrap();
        let mut hops = vec![hop(1, "198.18.1.2", LS, 64500, "Lesotho Telecom")];
        if reached {
            hops.push(hop(2, "203.0.113.10", country, asn, org));
        }
        let trace = Trace {
            target: TargetRef {
                name: name.into(),
                host: format!("{name}.ls"),
                addr: Some(dest),
            },
            vantage: VantageRef {
                name: "maseru".into(),
                country: Some(LS.parse().unwrap()),
            },
            protocol: Protocol::Icmp,
            port: None,
            started_at: Timestamp::from_unix(1_800_000_000).unwrap(),
            reached,
            hops,
        };
        let policy = Policy {
            home: Some(LS.parse().unwrap()),
            ..Policy::default()
        };
        let verdict = analyze(&trace, &policy);
        TraceRecord::new(trace, verdict)
    }

    fn table() -> OperatorTable {
        let own = OperatorTable::parse(
            "[[operator]]\nname = \"Lesotho Cloud\"\ncountry = \"LS\"\nkind = \"hosting\"\nasns = [64501]\n",
        )
        .unwrap();
        OperatorTable::shipped().overlaid(&own)
    }

    fn judge(name: &str, r: &TraceRecord, accepted: &[&str]) -> ServiceHosting {
        let accepted: Vec<String> = accepted.iter().map(|s| (*s).to_string()).collect();
        let p = path_hosting(name, r, Some(7), None, &table(), &accepted);
        service_hosting(name, vec![p])
    }

    #[test]
    fn home_or_abroad_by_domestic_foreign_or_unknown_operators() {
        // At home, Amazon: a foreign-based operator.
        let h = judge(
            "gov-portal",
            &record("gov-portal", "LS", 16509, "AMAZON-02", true),
            &[],
        );
        assert_eq!(h.place, HostingPlace::Home);
        assert_eq!(h.operated_by, OperatorBase::ForeignBased);
        assert!(!h.accepted);
        assert_eq!(h.operators[0].name, "Amazon");
        assert_eq!(h.operators[0].country.as_str(), "US");
        assert_eq!(h.paths[0].asn, Some(16509));
        assert_eq!(h.paths[0].as_org.as_deref(), Some("AMAZON-02"));
        assert_eq!(h.paths[0].trace_id, Some(7));
        assert_eq!(
            h.sentence,
            "gov-portal is hosted at home (LS) by Amazon (based in US) — a foreign-based operator."
        );
        // Accepted by name, any case.
        let h = judge(
            "gov-portal",
            &record("gov-portal", "LS", 16509, "AMAZON-02", true),
            &["amazon"],
        );
        assert!(h.accepted && h.paths[0].accepted);
        assert!(h
            .sentence
            .ends_with("a foreign-based operator, accepted for this service."));
        // Another accepted operator does not make this one accepted.
        let h = judge(
            "gov-portal",
            &record("gov-portal", "LS", 16509, "AMAZON-02", true),
            &["Google"],
        );
        assert!(!h.accepted);
        // Abroad, Hetzner.
        let h = judge(
            "bank",
            &record("bank", "DE", 24940, "HETZNER-AS", true),
            &[],
        );
        assert_eq!(
            (h.place, h.operated_by),
            (HostingPlace::Abroad, OperatorBase::ForeignBased)
        );
        assert_eq!(
            h.sentence,
            "bank is hosted abroad, in Germany (DE) by Hetzner (based in DE) — a foreign-based operator."
        );
        // At home, a domestic operator of the deployment's table.
        let h = judge("tax", &record("tax", "LS", 64501, "LSCLOUD", true), &[]);
        assert_eq!(
            (h.place, h.operated_by),
            (HostingPlace::Home, OperatorBase::Domestic)
        );
        assert!(
            h.sentence.ends_with("— a domestic operator."),
            "{}",
            h.sentence
        );
        // Abroad, a domestic operator.
        let h = judge("tax", &record("tax", "ZA", 64501, "LSCLOUD", true), &[]);
        assert_eq!(
            (h.place, h.operated_by),
            (HostingPlace::Abroad, OperatorBase::Domestic)
        );
        // An AS the table does not list: unknown, nothing guessed from its
        // name (even one that reads like a known operator's).
        let h = judge(
            "news",
            &record("news", "LS", 64502, "AMAZON-LOOKALIKE", true),
            &[],
        );
        assert_eq!(
            (h.place, h.operated_by),
            (HostingPlace::Home, OperatorBase::Unknown)
        );
        assert!(h.operators.is_empty() && !h.accepted);
        assert_eq!(
            h.sentence,
            "news is hosted at home (LS) in AS64502 (AMAZON-LOOKALIKE), which neither the operator table nor the AS registry places: where its operator is based is unknown."
        );
        // An AS the table does not list but the AS registry knows: based
        // where the AS is registered, and said to be read from there.
        let h = judge("telco", &record("telco", "LS", 33567, "", true), &[]);
        assert_eq!(h.operated_by, OperatorBase::Domestic);
        let p = &h.paths[0];
        assert_eq!(p.based_on, Some(BaseSource::AsRegistration));
        assert_eq!(p.registered_country, Some("LS".parse().unwrap()));
        assert_eq!(p.organisation(), Some("Econet Telecom Lesotho (PTY) LTD"));
        let h = judge("cable", &record("cable", "LS", 37100, "", true), &[]);
        assert_eq!(h.operated_by, OperatorBase::ForeignBased);
        assert_eq!(
            h.sentence,
            "cable is hosted at home (LS) in AS37100 (SEACOM Limited), registered in Mauritius (MU) — a foreign-based operator by the AS's registration (the operator table does not list it)."
        );
        // The table wins over the registration: Amazon's parent company.
        let h = judge("shop", &record("shop", "LS", 16509, "", true), &[]);
        assert_eq!(h.paths[0].based_on, Some(BaseSource::OperatorTable));
        // Not reached: unknown on both counts.
        let h = judge(
            "mail",
            &record("mail", "LS", 16509, "AMAZON-02", false),
            &["Amazon"],
        );
        assert_eq!(
            (h.place, h.operated_by),
            (HostingPlace::Unknown, OperatorBase::Unknown)
        );
        assert!(!h.accepted && h.paths[0].addr.is_none());
        assert_eq!(
            h.sentence,
            "mail did not answer in its latest trace: who hosts it is unknown."
        );
    }

    #[test]
    fn paths_that_differ_are_each_worded_and_the_service_takes_the_worst() {
        let t = table();
        let v4 = path_hosting(
            "app/ipv4",
            &record("app", "LS", 64501, "LSCLOUD", true),
            None,
            None,
            &t,
            &[],
        );
        let v6 = path_hosting(
            "app/ipv6",
            &record("app", "IE", 16509, "AMAZON-02", true),
            None,
            None,
            &t,
            &[],
        );
        let h = service_hosting("app", vec![v6, v4]);
        assert_eq!(h.home.map(|c| c.to_string()).as_deref(), Some("LS"));
        assert_eq!(h.place, HostingPlace::Mixed);
        assert_eq!(h.operated_by, OperatorBase::ForeignBased);
        assert_eq!(h.paths[0].path_key, "app/ipv4");
        assert_eq!(h.operators.len(), 2);
        assert_eq!(
            h.sentence,
            "app: app/ipv4 is hosted at home (LS) by Lesotho Cloud (based in LS) — a domestic operator; app/ipv6 is hosted abroad, in Ireland (IE) by Amazon (based in US) — a foreign-based operator."
        );
    }

    #[test]
    fn the_national_sentence_counts_services() {
        let a = judge(
            "a",
            &record("a", "LS", 16509, "AMAZON-02", true),
            &["Amazon"],
        );
        let b = judge("b", &record("b", "LS", 13335, "CLOUDFLARENET", true), &[]);
        let c = judge("c", &record("c", "LS", 64501, "LSCLOUD", true), &[]);
        let d = judge("d", &record("d", "LS", 64509, "X", true), &[]);
        let n = national([("a", &a), ("b", &b), ("c", &c), ("d", &d)]);
        assert_eq!(n.services, 4);
        assert_eq!(n.foreign_based, ["a", "b"]);
        assert_eq!(n.accepted, ["a"]);
        assert_eq!(n.domestic, ["c"]);
        assert_eq!(n.unknown, ["d"]);
        assert_eq!(
            n.sentence,
            "2 of 4 national services are hosted by foreign-based operators: a, b. Of them, a is hosted by an operator the country accepted for it (`accepted_operators`). 1 service could not be judged (not reached, or in networks neither the operator table nor the AS registry places): d."
        );
        let n = national([("c", &c)]);
        assert_eq!(
            n.sentence,
            "The national service is not hosted by a foreign-based operator the operator table lists."
        );
    }
}

//! Pure functions from a located [`Trace`] to its [`PathVerdict`].
//!
//! Nothing here does I/O: the same trace and policy always give the same
//! verdict, whether the trace came from the prober, a RIPE Atlas file or a
//! scamper file. Hops must already carry their location (`geo::enrich`).
//!
//! # The verdict
//!
//! *Evidence* is every hop with a country whose plausibility check did not
//! fail. Hops that answered too fast for their claimed place are no evidence;
//! their countries are listed under `suspect_countries` with the reason.
//!
//! - `countries`: the evidence countries in path order, consecutive repeats
//!   collapsed; `foreign_countries`: those outside the home set (the home
//!   country and `Policy::also_home`), in order of first appearance.
//! - The destination's country is that of the hop answering from the target
//!   address, when it is evidence.
//! - `class`:
//!   1. no evidence at all: `indeterminate`;
//!   2. destination located abroad: `foreign_destination`;
//!   3. destination located at home: `foreign_transit` if any evidence is
//!      foreign, else `domestic`;
//!   4. destination not located (unreached or unknown to every source):
//!      `foreign_transit` if the path comes back home after its last foreign
//!      hop (a boomerang); `indeterminate` if it ends abroad (transit and a
//!      foreign destination cannot be told apart); `domestic` if every
//!      located hop is at home and the destination answered, else
//!      `indeterminate`.
//! - `violation`: a located hop or the destination lies outside the target's
//!   `allowed` countries (the home country when none are configured).
//!   A path may thus be `foreign_transit` without a violation when the
//!   operator allows that country.
//! - `foreign_asns`: origin ASNs of the foreign evidence hops.
//! - `anomalies`: forwarding loops (one address at non-neighbouring TTLs) and
//!   an unreached destination.

mod identity;

pub use identity::{path_id, PathSignature, RouteComparison};

use crate::model::{Anomaly, CountryCode, Hop, PathVerdict, SuspectCountry, Trace, VerdictClass};
use std::collections::BTreeMap;

/// What counts as home for one target.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Policy {
    /// The home country; `None` when it is not known.
    pub home: Option<CountryCode>,
    /// Further countries treated as home when classifying (none by default).
    pub also_home: Vec<CountryCode>,
    /// Countries the target's path may touch without a violation; empty
    /// means the home country only.
    pub allowed: Vec<CountryCode>,
}

impl Policy {
    /// Without a home country nothing is foreign (and nothing is judged).
    fn is_home(&self, c: CountryCode) -> bool {
        self.home.is_none_or(|h| h == c) || self.also_home.contains(&c)
    }

    fn is_allowed(&self, c: CountryCode) -> bool {
        if self.allowed.is_empty() {
            self.home.is_none_or(|h| h == c)
        } else {
            self.allowed.contains(&c)
        }
    }
}

/// The English short name of a country (`ZA` → "South Africa").
#[must_use]
pub fn country_name(c: CountryCode) -> &'static str {
    rust_iso3166::from_alpha2(c.as_str()).map_or("an unknown country", |n| n.name)
}

/// A hop that counts as location evidence.
fn evidence(hop: &Hop) -> Option<CountryCode> {
    if hop.geo.plausible == Some(false) {
        None
    } else {
        hop.geo.country
    }
}

/// Classify a located trace under a policy.
#[must_use]
pub fn analyze(trace: &Trace, policy: &Policy) -> PathVerdict {
    let located: Vec<(&Hop, CountryCode)> = trace
        .hops
        .iter()
        .filter_map(|h| evidence(h).map(|c| (h, c)))
        .collect();
    let mut countries: Vec<CountryCode> = Vec::new();
    for &(_, c) in &located {
        if countries.last() != Some(&c) {
            countries.push(c);
        }
    }
    let mut foreign_countries: Vec<CountryCode> = Vec::new();
    let mut foreign_asns: Vec<u32> = Vec::new();
    for &(hop, c) in &located {
        if !policy.is_home(c) {
            if !foreign_countries.contains(&c) {
                foreign_countries.push(c);
            }
            if let Some(asn) = hop.geo.asn {
                if !foreign_asns.contains(&asn) {
                    foreign_asns.push(asn);
                }
            }
        }
    }
    let destination = trace.destination_hop().and_then(evidence);
    let class = classify(trace, policy, &located, destination);
    let violation = located.iter().any(|&(_, c)| !policy.is_allowed(c));
    let suspect_countries = suspects(trace);
    let anomalies = anomalies(trace);
    let explanation = explain(
        trace,
        policy,
        class,
        &located,
        destination,
        &suspect_countries,
    );
    PathVerdict {
        class,
        countries,
        foreign_countries,
        foreign_asns,
        violation,
        path_id: path_id(trace),
        explanation,
        suspect_countries,
        anomalies,
        confidence: None,
        claims: Vec::new(),
        exchanges: Vec::new(),
    }
}

fn classify(
    trace: &Trace,
    policy: &Policy,
    located: &[(&Hop, CountryCode)],
    destination: Option<CountryCode>,
) -> VerdictClass {
    if located.is_empty() || policy.home.is_none() {
        return VerdictClass::Indeterminate;
    }
    let any_foreign = located.iter().any(|&(_, c)| !policy.is_home(c));
    match destination {
        Some(d) if !policy.is_home(d) => VerdictClass::ForeignDestination,
        Some(_) if any_foreign => VerdictClass::ForeignTransit,
        Some(_) => VerdictClass::Domestic,
        None => {
            let last_foreign = located.iter().rposition(|&(_, c)| !policy.is_home(c));
            match last_foreign {
                Some(i) if i + 1 < located.len() => VerdictClass::ForeignTransit,
                Some(_) => VerdictClass::Indeterminate,
                None if trace.reached => VerdictClass::Domestic,
                None => VerdictClass::Indeterminate,
            }
        }
    }
}

fn suspects(trace: &Trace) -> Vec<SuspectCountry> {
    let mut by_country: BTreeMap<CountryCode, Vec<&Hop>> = BTreeMap::new();
    for hop in &trace.hops {
        if let (Some(false), Some(c)) = (hop.geo.plausible, hop.geo.country) {
            by_country.entry(c).or_default().push(hop);
        }
    }
    by_country
        .into_iter()
        .map(|(country, hops)| {
            let first = hops[0];
            let rtt = first.rtt_ms.map_or(0.0, |r| r.best);
            let source = match first.geo.database.as_deref() {
                Some("override") | None => "the operator's overrides",
                Some(db) => db,
            };
            let reason = format!(
                "{} {} answered in {rtt:.2} ms, faster than light in fiber allows from the vantage to {} where {source} places {}",
                if hops.len() == 1 { "hop" } else { "hops" },
                ttl_list(&hops.iter().map(|h| h.ttl).collect::<Vec<_>>()),
                country_name(country),
                if hops.len() == 1 { "it" } else { "them" },
            );
            SuspectCountry {
                country,
                ttls: hops.iter().map(|h| h.ttl).collect(),
                reason,
            }
        })
        .collect()
}

fn anomalies(trace: &Trace) -> Vec<Anomaly> {
    let mut seen: BTreeMap<std::net::IpAddr, Vec<u8>> = BTreeMap::new();
    // A loop needs an address answering twice; most paths have none, and
    // need no map (a quadratic look over a few dozen hops allocates nothing).
    let repeats = trace.hops.iter().enumerate().any(|(i, h)| {
        h.addr
            .is_some_and(|a| trace.hops[i + 1..].iter().any(|l| l.addr == Some(a)))
    });
    for hop in trace.hops.iter().filter(|_| repeats) {
        if let Some(addr) = hop.addr {
            seen.entry(addr).or_default().push(hop.ttl);
        }
    }
    let mut out: Vec<Anomaly> = seen
        .into_iter()
        // The destination answering at every TTL past its own is no loop.
        .filter(|(addr, _)| !(trace.reached && Some(*addr) == trace.target.addr))
        .filter(|(_, ttls)| ttls.windows(2).any(|w| w[1] > w[0] + 1))
        .map(|(addr, ttls)| Anomaly::ForwardingLoop { addr, ttls })
        .collect();
    out.sort_by_key(|a| match a {
        Anomaly::ForwardingLoop { ttls, .. } => ttls.first().copied(),
        Anomaly::DestinationNotReached { .. } => None,
    });
    if !trace.reached {
        out.push(Anomaly::DestinationNotReached {
            last_responding_ttl: trace
                .hops
                .iter()
                .rev()
                .find(|h| h.addr.is_some())
                .map(|h| h.ttl),
        });
    }
    out
}

/// "2", "2-3", "2-3 and 5".
fn ttl_list(ttls: &[u8]) -> String {
    let mut runs: Vec<(u8, u8)> = Vec::new();
    for &t in ttls {
        match runs.last_mut() {
            Some((_, end)) if *end + 1 == t => *end = t,
            _ => runs.push((t, t)),
        }
    }
    let parts: Vec<String> = runs
        .iter()
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect();
    match parts.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        Some((last, _)) => last.clone(),
        None => String::new(),
    }
}

fn explain(
    trace: &Trace,
    policy: &Policy,
    class: VerdictClass,
    located: &[(&Hop, CountryCode)],
    destination: Option<CountryCode>,
    suspects: &[SuspectCountry],
) -> String {
    let name = &trace.target.name;
    let home = policy
        .home
        .map_or_else(|| "an unknown home country".to_string(), |h| h.to_string());
    let foreign_detail = || {
        let mut by_country: Vec<(CountryCode, Vec<&Hop>)> = Vec::new();
        for &(hop, c) in located.iter().filter(|&&(_, c)| !policy.is_home(c)) {
            match by_country.iter_mut().find(|(k, _)| *k == c) {
                Some((_, hops)) => hops.push(hop),
                None => by_country.push((c, vec![hop])),
            }
        }
        by_country
            .iter()
            .map(|(c, hops)| {
                let ttls: Vec<u8> = hops.iter().map(|h| h.ttl).collect();
                let mut asns: Vec<String> = Vec::new();
                for h in hops {
                    if let Some(a) = h.geo.asn {
                        let a = format!("AS{a}");
                        if !asns.contains(&a) {
                            asns.push(a);
                        }
                    }
                }
                let sources: Vec<&str> = hops
                    .iter()
                    .filter_map(|h| h.geo.database.as_deref())
                    .map(|d| {
                        if d == "override" {
                            "operator override"
                        } else {
                            d
                        }
                    })
                    .fold(Vec::new(), |mut v, s| {
                        if !v.contains(&s) {
                            v.push(s);
                        }
                        v
                    });
                let mut s = format!(
                    "{} {} {} located in {}",
                    if ttls.len() == 1 { "hop" } else { "hops" },
                    ttl_list(&ttls),
                    if ttls.len() == 1 { "is" } else { "are" },
                    country_name(*c)
                );
                if !sources.is_empty() {
                    s.push_str(&format!(" ({})", sources.join(", ")));
                }
                if !asns.is_empty() {
                    s.push_str(&format!(", {}", asns.join(", ")));
                }
                s
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    let via: Vec<String> = located
        .iter()
        .map(|&(_, c)| c)
        .filter(|&c| !policy.is_home(c))
        .fold(Vec::new(), |mut v, c| {
            if !v.contains(&c.to_string()) {
                v.push(c.to_string());
            }
            v
        });
    let mut text = match class {
        VerdictClass::ForeignTransit => format!(
            "{name} ({home}) is reached via {}: {}",
            via.join(" and "),
            foreign_detail()
        ),
        VerdictClass::ForeignDestination => {
            let d = destination.map_or("abroad", country_name);
            let mut s = format!("{name} answers from {d}, outside {home}");
            if !via.is_empty() {
                s.push_str(&format!(": {}", foreign_detail()));
            }
            s
        }
        VerdictClass::Domestic => {
            let place = policy.home.map_or("the home country", country_name);
            let mut s = if located.len() == 1 {
                format!("{name} stays in {home}: its only located hop is in {place}")
            } else {
                format!(
                    "{name} stays in {home}: all {} located hops are in {place}",
                    located.len()
                )
            };
            if destination.is_none() {
                s.push_str(", though the destination itself could not be located");
            }
            s
        }
        VerdictClass::Indeterminate => {
            if located.is_empty() {
                format!(
                    "{name}: no hop of the path could be located, so its jurisdiction is unknown"
                )
            } else if policy.home.is_none() {
                format!("{name}: no home country is configured, so the path cannot be judged")
            } else if via.is_empty() {
                format!(
                    "{name}: every located hop is in {}, but the destination did not answer, so where it is cannot be told",
                    policy.home.map_or("the home country", country_name)
                )
            } else {
                format!(
                    "{name}: the path ends abroad ({}) without reaching a located destination, so transit and a foreign destination cannot be told apart",
                    foreign_detail()
                )
            }
        }
    };
    if !suspects.is_empty() {
        let list: Vec<String> = suspects.iter().map(|s| s.country.to_string()).collect();
        text.push_str(&format!(" (ignored as implausible: {})", list.join(", ")));
    }
    if trace.target.addr.is_none() {
        text.push_str("; the destination's address is unknown (it was never resolved)");
    } else if !trace.reached && !text.contains("did not answer") {
        text.push_str("; the destination did not answer");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::ttl_list;

    #[test]
    fn ttl_lists_read_naturally() {
        assert_eq!(ttl_list(&[2]), "2");
        assert_eq!(ttl_list(&[2, 3]), "2-3");
        assert_eq!(ttl_list(&[2, 3, 5]), "2-3 and 5");
        assert_eq!(ttl_list(&[1, 3, 5, 6]), "1, 3 and 5-6");
    }
}

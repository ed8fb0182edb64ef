//! Several paths of one target at once: how many of them cross each
//! foreign country, the sentence that says so, and the identity of the set.
//!
//! A load-balanced target has several paths, each judged as a trace of its
//! own ([`super::analyze`]); what matters to the country is the share of
//! them that leaves it: "1 of 2 load-balanced paths crosses South Africa
//! (ZA)". [`Crossings`] counts it (a path naming a country twice counts
//! once), for the daemon's multipath enumerations
//! ([`multipath`]) and for `analyze`'s summary of scamper `tracelb` (MDA)
//! records alike.
//!
//! The set of paths has an identity of its own ([`set_id`]): the sorted,
//! distinct path ids of its members, hashed. Paths found in another order
//! give the same id; a path gained or lost, or one whose responders
//! changed, gives another: a change of the set is a route change, the order
//! of discovery is not.

use crate::model::multipath::{
    Multipath, MultipathHop, MultipathPath, MultipathStop, PathsCrossing,
};
use crate::model::{CountryCode, TraceRecord};
use crate::units::Timestamp;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

/// Per foreign country, how many of a set of paths cross it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Crossings {
    /// Paths counted.
    pub paths: u32,
    /// Per country: paths crossing it, and of those the ones breaking the
    /// policy.
    pub by_country: BTreeMap<CountryCode, (u32, u32)>,
}

impl Crossings {
    /// Count one path with its foreign countries (repeats count once) and
    /// whether it breaks the policy.
    pub fn add(&mut self, foreign: &[CountryCode], violation: bool) {
        self.paths += 1;
        let distinct: BTreeSet<CountryCode> = foreign.iter().copied().collect();
        for c in distinct {
            let entry = self.by_country.entry(c).or_default();
            entry.0 += 1;
            entry.1 += u32::from(violation);
        }
    }

    /// The counts as the record keeps them, in country order.
    #[must_use]
    pub fn to_vec(&self) -> Vec<PathsCrossing> {
        self.by_country
            .iter()
            .map(|(&country, &(paths, violating))| PathsCrossing {
                country,
                paths,
                violating,
            })
            .collect()
    }

    /// The finding in one sentence: each foreign country with the paths
    /// crossing it (most first), or that none leaves the country.
    #[must_use]
    pub fn sentence(&self) -> String {
        let n = self.paths;
        if n == 0 {
            return "no load-balanced path was found".to_string();
        }
        if self.by_country.is_empty() {
            return match n {
                1 => "the one load-balanced path found stays in the country".to_string(),
                2 => "neither of the 2 load-balanced paths leaves the country".to_string(),
                _ => format!("none of the {n} load-balanced paths leaves the country"),
            };
        }
        let mut countries: Vec<(&CountryCode, &(u32, u32))> = self.by_country.iter().collect();
        countries.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.0.cmp(b.0)));
        let parts: Vec<String> = countries
            .into_iter()
            .map(|(&c, &(k, _))| crossing_sentence(k, n, c))
            .collect();
        parts.join("; ")
    }
}

/// "1 of 2 load-balanced paths crosses South Africa (ZA)".
#[must_use]
pub fn crossing_sentence(k: u32, n: u32, country: CountryCode) -> String {
    let paths = if n == 1 { "path" } else { "paths" };
    let verb = if k == 1 { "crosses" } else { "cross" };
    format!(
        "{k} of {n} load-balanced {paths} {verb} {} ({country})",
        super::country_name(country)
    )
}

/// The identity of a set of paths: their distinct ids sorted and hashed
/// (16 hex digits).
#[must_use]
pub fn set_id<'a>(path_ids: impl IntoIterator<Item = &'a str>) -> String {
    let sorted: BTreeSet<&str> = path_ids.into_iter().collect();
    let mut h = Sha256::new();
    for id in sorted {
        h.update(id.as_bytes());
        h.update(b"\n");
    }
    hex::encode(&h.finalize()[..8])
}

/// How an enumeration went, besides its paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enumeration {
    /// When it started.
    pub started_at: Timestamp,
    /// The flows' UDP destination port.
    pub port: u16,
    /// Flows sent.
    pub flows: u32,
    /// Flows of which nothing answered.
    pub silent_flows: u32,
    /// Why it stopped.
    pub stop: MultipathStop,
}

/// The record's multipath part from the enumeration and its paths, each
/// judged as a trace of its own (with the source ports of the flows that
/// took it), in the order found.
#[must_use]
pub fn multipath(run: Enumeration, paths: &[(Vec<u16>, TraceRecord)]) -> Multipath {
    let mut crossings = Crossings::default();
    let mut out = Vec::with_capacity(paths.len());
    for (ports, record) in paths {
        let v = &record.verdict;
        crossings.add(&v.foreign_countries, v.violation);
        let mut source_ports = ports.clone();
        source_ports.sort_unstable();
        source_ports.dedup();
        out.push(MultipathPath {
            source_ports,
            reached: record.trace.reached,
            hops: record
                .trace
                .hops
                .iter()
                .map(|h| MultipathHop {
                    ttl: h.ttl,
                    addr: h.addr,
                    country: h.geo.country,
                })
                .collect(),
            class: v.class,
            foreign_countries: v.foreign_countries.clone(),
            violation: v.violation,
            path_id: super::path_id(&record.trace),
        });
    }
    Multipath {
        started_at: run.started_at,
        port: run.port,
        flows: run.flows,
        silent_flows: run.silent_flows,
        stop: run.stop,
        set_id: set_id(out.iter().map(|p| p.path_id.as_str())),
        crossing: crossings.to_vec(),
        summary: crossings.sentence(),
        paths: out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cc(c: &str) -> CountryCode {
        c.parse().unwrap()
    }

    #[test]
    fn paths_are_counted_per_country_once_each() {
        let mut c = Crossings::default();
        c.add(&[], false);
        c.add(&[cc("ZA"), cc("MZ"), cc("ZA")], true);
        c.add(&[cc("ZA")], false);
        assert_eq!(c.paths, 3);
        assert_eq!(c.by_country[&cc("ZA")], (2, 1));
        assert_eq!(c.by_country[&cc("MZ")], (1, 1));
        assert_eq!(
            c.sentence(),
            "2 of 3 load-balanced paths cross South Africa (ZA); \
             1 of 3 load-balanced paths crosses Mozambique (MZ)"
        );
        let mut one = Crossings::default();
        one.add(&[], false);
        one.add(&[cc("ZA")], true);
        assert_eq!(
            one.sentence(),
            "1 of 2 load-balanced paths crosses South Africa (ZA)"
        );
        let mut home = Crossings::default();
        home.add(&[], false);
        home.add(&[], false);
        assert_eq!(
            home.sentence(),
            "neither of the 2 load-balanced paths leaves the country"
        );
        assert_eq!(
            Crossings::default().sentence(),
            "no load-balanced path was found"
        );
    }

    #[test]
    fn the_set_id_ignores_order_and_repeats_and_follows_members() {
        let a = set_id(["aa", "bb"]);
        assert_eq!(a, set_id(["bb", "aa"]));
        assert_eq!(a, set_id(["bb", "aa", "bb"]));
        assert_ne!(a, set_id(["aa"]));
        assert_ne!(a, set_id(["aa", "bc"]));
        assert_eq!(a.len(), 16);
    }
}

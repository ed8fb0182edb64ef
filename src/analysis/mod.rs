//! Pure functions from a located [`Trace`] to its [`PathVerdict`].
//!
//! Nothing here does I/O: the same trace and policy always give the same
//! verdict, whether the trace came from the prober, a RIPE Atlas file or a
//! scamper file. Hops must already carry their location (`geo::enrich`).
//!
//! # The verdict
//!
//! *Evidence* is every hop with a country whose plausibility check did not
//! fail, except foreign hops whose confidence is below
//! `Policy::min_confidence`. Hops that answered too fast for their claimed
//! place are no evidence; their countries are listed under
//! `suspect_countries` with the reason.
//!
//! - `claims`: every foreign country of a located, plausible hop, with the
//!   highest confidence of its hops (a hop without one counts as `low`),
//!   their TTLs, and a plain reason built from the strongest hop's evidence
//!   and its round-trip jump from the hop before. A claim below
//!   `min_confidence` is `suspected`: reported, but no evidence, so never a
//!   violation.
//! - `confidence`: for a foreign class, that of the strongest claim that is
//!   not suspected; for `domestic`, that of the destination's location;
//!   none for `indeterminate`.
//! - `exchanges`: hops on an internet exchange's LAN, `domestic` when the
//!   exchange is in the home country.
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
//!   4. destination not located (unreached, unknown to every source, or
//!      only placed where its round-trip time rules out):
//!      `foreign_transit` if the path comes back home after its last foreign
//!      hop (a boomerang); otherwise `indeterminate`: a path that ends
//!      abroad cannot tell transit from a foreign destination, and
//!      `domestic` needs evidence that the destination itself is at home.
//! - `violation`: a located hop or the destination lies outside the target's
//!   `allowed` countries (the home country when none are configured).
//!   A path may thus be `foreign_transit` without a violation when the
//!   operator allows that country.
//! - `foreign_asns`: origin ASNs of the foreign evidence hops.
//! - `anomalies`: forwarding loops (one address at non-neighbouring TTLs) and
//!   an unreached destination.
//!
//! Several paths of one target (load balancing) are summed up by
//! [`multipath`]: how many of them cross each foreign country, and the
//! identity of the set.

mod identity;
pub mod multipath;

pub use identity::{path_id, PathSignature, RouteComparison};

use crate::model::{
    Anomaly, Confidence, CountryClaim, CountryCode, EvidenceKind, EvidenceStatus, ExchangeCrossing,
    GeoSource, Hop, PathVerdict, SuspectCountry, Trace, VerdictClass,
};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// What counts as home for one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The home country; `None` when it is not known.
    pub home: Option<CountryCode>,
    /// Further countries treated as home when classifying (none by default).
    pub also_home: Vec<CountryCode>,
    /// Countries the target's path may touch without a violation; empty
    /// means the home country only.
    pub allowed: Vec<CountryCode>,
    /// Foreign claims below this confidence are suspected: reported, never
    /// a violation (`low`, the default, counts every claim).
    pub min_confidence: Confidence,
    /// Leave out the words: no explanation and empty claim reasons. For
    /// passes that only count verdicts (`analyze`'s summary), where the
    /// sentences would be written and thrown away.
    pub counts_only: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            home: None,
            also_home: Vec::new(),
            allowed: Vec::new(),
            min_confidence: Confidence::Low,
            counts_only: false,
        }
    }
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
    c.name().unwrap_or("an unknown country")
}

/// A hop's country when it is located and its round-trip time does not
/// rule the place out.
fn plausible_country(hop: &Hop) -> Option<CountryCode> {
    if hop.geo.plausible == Some(false) {
        None
    } else {
        hop.geo.country
    }
}

/// How sure a located hop's place is; a hop located before confidence was
/// recorded counts as `low`.
fn hop_confidence(hop: &Hop) -> Confidence {
    hop.geo.confidence.unwrap_or(Confidence::Low)
}

impl Policy {
    /// Whether a hop located in `c` is only a suspected foreign claim.
    fn is_suspected(&self, hop: &Hop, c: CountryCode) -> bool {
        !self.is_home(c) && hop_confidence(hop) < self.min_confidence
    }

    /// A hop's country when it counts as location evidence.
    fn evidence(&self, hop: &Hop) -> Option<CountryCode> {
        plausible_country(hop).filter(|&c| !self.is_suspected(hop, c))
    }
}

/// Which hop locations a verdict counted as evidence, read back from the
/// judged record itself (the policy is not stored with it): the rule of
/// [`analyze`], so later readers of stored records (what depends on a
/// country, `crate::dependency`) count exactly the hops the verdict did.
///
/// A hop counts when it is located, its round-trip time does not rule the
/// place out (`plausible` is not `false`; such hops are the verdict's
/// `suspect_countries`), and, for a foreign country (one of the verdict's
/// `claims` or `foreign_countries`), its confidence is above that of every
/// `suspected` claim: a claim is suspected when its strongest hop is below
/// the policy's `min_confidence`, so a hop no stronger than a suspected
/// claim is below it too. Home countries always count. The minimum is thus
/// taken as the lowest the verdict allows (just above its strongest
/// suspected claim, else `low`, the default): a hop weaker than a higher
/// minimum inside a claim that is not suspected is counted here where the
/// verdict did not count it.
#[derive(Debug, Clone, Copy)]
pub struct AcceptedLocations<'a> {
    verdict: &'a PathVerdict,
    /// The highest confidence of a suspected claim, if any.
    suspected_up_to: Option<Confidence>,
}

impl<'a> AcceptedLocations<'a> {
    /// The accepted locations of the record whose verdict this is.
    #[must_use]
    pub fn of(verdict: &'a PathVerdict) -> Self {
        Self {
            verdict,
            suspected_up_to: verdict
                .claims
                .iter()
                .filter(|c| c.suspected)
                .map(|c| c.confidence)
                .max(),
        }
    }

    /// The hop's country when the verdict counts it as evidence.
    #[must_use]
    pub fn country(&self, hop: &Hop) -> Option<CountryCode> {
        let c = plausible_country(hop)?;
        let foreign = self.verdict.claims.iter().any(|k| k.country == c)
            || self.verdict.foreign_countries.contains(&c);
        let below = self
            .suspected_up_to
            .is_some_and(|max| hop_confidence(hop) <= max);
        (!(foreign && below)).then_some(c)
    }
}

/// Classify a located trace under a policy.
#[must_use]
pub fn analyze(trace: &Trace, policy: &Policy) -> PathVerdict {
    let located: Vec<(&Hop, CountryCode)> = trace
        .hops
        .iter()
        .filter_map(|h| policy.evidence(h).map(|c| (h, c)))
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
    let destination_hop = trace.destination_hop();
    let destination = destination_hop.and_then(|h| policy.evidence(h));
    let class = classify(policy, &located, destination);
    let violation = located.iter().any(|&(_, c)| !policy.is_allowed(c));
    let suspect_countries = suspects(trace);
    let anomalies = anomalies(trace);
    let claims = claims(trace, policy);
    let confidence = match class {
        VerdictClass::Indeterminate => None,
        VerdictClass::Domestic => destination_hop.map(hop_confidence),
        VerdictClass::ForeignTransit | VerdictClass::ForeignDestination => claims
            .iter()
            .filter(|c| !c.suspected)
            .map(|c| c.confidence)
            .max(),
    };
    let exchanges = exchanges(trace, policy);
    let mut explanation = String::new();
    if !policy.counts_only {
        explanation = explain(
            trace,
            policy,
            class,
            &located,
            destination,
            &suspect_countries,
        );
        explain_confidence(&mut explanation, confidence, &claims, &exchanges, policy);
    }
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
        confidence,
        claims,
        exchanges,
    }
}

fn classify(
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
                // Ends abroad, or never left home but the destination is not
                // known to be at home.
                Some(_) | None => VerdictClass::Indeterminate,
            }
        }
    }
}

/// Every foreign country of a located, plausible hop, in order of first
/// appearance.
fn claims(trace: &Trace, policy: &Policy) -> Vec<CountryClaim> {
    let mut by_country: Vec<(CountryCode, Vec<usize>)> = Vec::new();
    for (i, hop) in trace.hops.iter().enumerate() {
        let Some(c) = plausible_country(hop).filter(|&c| !policy.is_home(c)) else {
            continue;
        };
        match by_country.iter_mut().find(|(k, _)| *k == c) {
            Some((_, hops)) => hops.push(i),
            None => by_country.push((c, vec![i])),
        }
    }
    by_country
        .into_iter()
        .map(|(country, hops)| {
            // The strongest hop (the first among equals) speaks for the claim.
            let best = hops
                .iter()
                .copied()
                .min_by_key(|&i| std::cmp::Reverse(hop_confidence(&trace.hops[i])))
                .unwrap_or(hops[0]);
            let confidence = hop_confidence(&trace.hops[best]);
            let suspected = confidence < policy.min_confidence;
            // The first hop there says where the path enters the country
            // (and the jump in round-trip time that comes with it).
            let mut reason = if policy.counts_only {
                String::new()
            } else if best == hops[0] {
                hop_reason(trace, best)
            } else {
                format!(
                    "{}; {}",
                    hop_reason(trace, hops[0]),
                    hop_reason(trace, best)
                )
            };
            if !policy.counts_only {
                let _ = write!(reason, "; confidence {confidence}");
            }
            if suspected && !policy.counts_only {
                let _ = write!(
                    reason,
                    ", below the policy's minimum of {}, so only suspected",
                    policy.min_confidence
                );
            }
            CountryClaim {
                country,
                confidence,
                ttls: hops.iter().map(|&i| trace.hops[i].ttl).collect(),
                suspected,
                reason,
            }
        })
        .collect()
}

/// Why hop `i` is where it is located, in plain words: what decided, what
/// agrees, and how much later it answers than the hop before.
fn hop_reason(trace: &Trace, i: usize) -> String {
    let hop = &trace.hops[i];
    let geo = &hop.geo;
    let ttl = hop.ttl;
    let place = geo
        .city
        .as_deref()
        .unwrap_or_else(|| geo.country.map_or("an unknown place", country_name));
    let source = geo.database.as_deref().unwrap_or("a database");
    let mut s = String::with_capacity(96);
    let _ = match geo.source {
        GeoSource::Hostname => write!(s, "hop {ttl}'s name says {place}"),
        GeoSource::Override => write!(s, "the operator's overrides place hop {ttl} in {place}"),
        GeoSource::Geofeed => write!(s, "the geofeed {source} places hop {ttl} in {place}"),
        GeoSource::Ixp => {
            let exchange = geo.ixp.as_ref().map_or(source, |x| x.name.as_str());
            write!(s, "hop {ttl} is on the LAN of {exchange} in {place}")
        }
        GeoSource::Mmdb => write!(s, "{source} places hop {ttl} in {place}"),
        GeoSource::Registration => write!(s, "hop {ttl}'s address is registered in {place}"),
        GeoSource::None => write!(s, "hop {ttl} is located in {place}"),
    };
    let mut agreeing: Vec<EvidenceKind> = Vec::new();
    for e in geo
        .evidence
        .iter()
        .filter(|e| e.status == EvidenceStatus::Agrees)
    {
        if !agreeing.contains(&e.kind) && Some(e.kind) != crate::geo::decide::kind_of(geo.source) {
            agreeing.push(e.kind);
        }
    }
    if !agreeing.is_empty() {
        let names: Vec<&str> = agreeing.iter().map(|k| k.as_str()).collect();
        let verb = if names.len() == 1 { "agrees" } else { "agree" };
        let _ = write!(s, " ({} evidence {verb})", names.join(" and "));
    }
    let rejected = geo
        .evidence
        .iter()
        .filter(|e| e.status == EvidenceStatus::Rejected && e.country.is_some())
        .count();
    if rejected > 0 {
        let _ = write!(
            s,
            " ({rejected} other {} ruled out by the round-trip time)",
            if rejected == 1 { "place" } else { "places" }
        );
    }
    let before = trace.hops[..i]
        .iter()
        .rev()
        .find(|h| h.addr.is_some() && h.rtt_ms.is_some());
    if let (Some(now), Some(before)) = (hop.rtt_ms, before) {
        let jump = now.best - before.rtt_ms.map_or(now.best, |r| r.best);
        if jump >= 1.0 {
            let _ = write!(
                s,
                " and it answers {jump:.0} ms further away than hop {}",
                before.ttl
            );
        }
    }
    s
}

/// Hops on an internet exchange's LAN, in path order.
fn exchanges(trace: &Trace, policy: &Policy) -> Vec<ExchangeCrossing> {
    trace
        .hops
        .iter()
        .filter_map(|hop| {
            let ixp = hop.geo.ixp.as_ref()?;
            Some(ExchangeCrossing {
                ttl: hop.ttl,
                ixp: ixp.clone(),
                domestic: policy.home.is_some() && policy.is_home(ixp.country),
            })
        })
        .collect()
}

/// Adds how sure the verdict is, the suspected claims and the exchanges
/// crossed to the explanation.
fn explain_confidence(
    text: &mut String,
    confidence: Option<Confidence>,
    claims: &[CountryClaim],
    exchanges: &[ExchangeCrossing],
    policy: &Policy,
) {
    if let Some(c) = confidence {
        text.push_str(&format!("; confidence {c}"));
        if let Some(claim) = claims.iter().find(|k| !k.suspected && k.confidence == c) {
            let why = claim
                .reason
                .split("; confidence")
                .next()
                .unwrap_or_default();
            text.push_str(&format!(" ({why})"));
        }
    }
    let suspected: Vec<&CountryClaim> = claims.iter().filter(|c| c.suspected).collect();
    if !suspected.is_empty() {
        let list: Vec<String> = suspected
            .iter()
            .map(|c| format!("{} ({} confidence)", c.country, c.confidence))
            .collect();
        text.push_str(&format!(
            "; suspected, not counted (below the minimum confidence {}): {}",
            policy.min_confidence,
            list.join(", ")
        ));
    }
    for x in exchanges {
        text.push_str(&format!(
            "; hop {} is on the LAN of {} ({})",
            x.ttl,
            x.ixp.name,
            if x.domestic {
                "a national exchange: traffic is exchanged at home"
            } else {
                "an exchange abroad"
            }
        ));
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
            let s = if located.len() == 1 {
                format!("{name} stays in {home}: its only located hop is in {place}")
            } else {
                format!(
                    "{name} stays in {home}: all {} located hops are in {place}",
                    located.len()
                )
            };
            s
        }
        VerdictClass::Indeterminate => {
            if located.is_empty() {
                format!(
                    "{name}: no hop of the path could be located, so its jurisdiction is unknown"
                )
            } else if policy.home.is_none() {
                format!("{name}: no home country is configured, so the path cannot be judged")
            } else if via.is_empty() && !trace.reached {
                format!(
                    "{name}: every located hop is in {}, but the destination did not answer, so where it is cannot be told",
                    policy.home.map_or("the home country", country_name)
                )
            } else if via.is_empty() {
                format!(
                    "{name}: every located hop is in {}, but the destination itself could not be located, so the path cannot be called domestic",
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
    use super::{analyze, ttl_list, AcceptedLocations, Policy};
    use crate::model::{
        Confidence, CountryCode, GeoSource, Hop, HopGeo, Protocol, RttMs, TargetRef, Trace,
        VantageRef,
    };

    fn located(ttl: u8, country: &str, confidence: Confidence, plausible: bool) -> Hop {
        let addr = format!("198.18.{ttl}.1").parse().unwrap();
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
                country: Some(country.parse().unwrap()),
                source: GeoSource::Mmdb,
                plausible: Some(plausible),
                confidence: Some(confidence),
                ..HopGeo::default()
            },
            hostname: None,
            mpls: Vec::new(),
        }
    }

    #[test]
    fn accepted_locations_are_the_hops_the_verdict_counted() {
        use Confidence::{High, Low, Medium};
        let hops = vec![
            located(1, "LS", High, true),
            located(2, "ZA", Low, true),
            located(3, "ZA", Medium, true),
            located(4, "BW", Low, true),
            located(5, "IE", High, false),
            located(6, "MZ", High, true),
            located(7, "LS", High, true),
        ];
        let trace = Trace {
            target: TargetRef {
                name: "gov".into(),
                host: "gov.ls".into(),
                addr: hops[6].addr,
            },
            vantage: VantageRef {
                name: "maseru".into(),
                country: Some("LS".parse().unwrap()),
            },
            protocol: Protocol::Icmp,
            port: None,
            started_at: crate::units::Timestamp::from_unix(1_800_000_000).unwrap(),
            reached: true,
            hops,
        };
        let expected = |min: Confidence| -> Vec<u8> {
            match min {
                Low => vec![1, 2, 3, 4, 6, 7],
                Medium => vec![1, 3, 6, 7],
                High => vec![1, 6, 7],
            }
        };
        for min in [Low, Medium, High] {
            let policy = Policy {
                home: Some("LS".parse().unwrap()),
                min_confidence: min,
                ..Policy::default()
            };
            let verdict = analyze(&trace, &policy);
            let accepted = AcceptedLocations::of(&verdict);
            let counted: Vec<u8> = trace
                .hops
                .iter()
                .filter(|h| accepted.country(h).is_some())
                .map(|h| h.ttl)
                .collect();
            assert_eq!(counted, expected(min), "min_confidence {min}");
            // The same countries in path order as the verdict's.
            let mut countries: Vec<CountryCode> = Vec::new();
            for c in trace.hops.iter().filter_map(|h| accepted.country(h)) {
                if countries.last() != Some(&c) {
                    countries.push(c);
                }
            }
            assert_eq!(countries, verdict.countries, "min_confidence {min}");
        }
    }

    #[test]
    fn ttl_lists_read_naturally() {
        assert_eq!(ttl_list(&[2]), "2");
        assert_eq!(ttl_list(&[2, 3]), "2-3");
        assert_eq!(ttl_list(&[2, 3, 5]), "2-3 and 5");
        assert_eq!(ttl_list(&[1, 3, 5, 6]), "1, 3 and 5-6");
    }
}

//! Path identity: when two traces took the same route, and a short id for it.
//!
//! A single trace's [`path_id`] hashes its responding hops: for each TTL
//! that answered, the TTL and the sorted set of responders. Two traces with
//! identical responders share an id.
//!
//! Traces of one route still differ: a hop may be silent this time, and
//! per-probe load balancing (ECMP) makes a TTL answer from a sibling router.
//! A [`PathSignature`] therefore remembers, per TTL, every responder seen on
//! the route so far and the (country, ASN) they are located in, and decides
//! with [`PathSignature::compare`]:
//!
//! - a TTL silent in either trace is no evidence of change;
//! - a TTL whose responders overlap with those seen before is unchanged;
//! - a TTL whose responders are all new is an ECMP sibling, and unchanged,
//!   only when they are located in the same country and AS as the ones seen
//!   before (unlocated responders never qualify); otherwise the route changed;
//! - the destination answering at a different TTL is a changed route.
//!
//! So a real change (new routers, another country or AS, another length)
//! always reads as one; silence and siblings within one network never do.
//! The signature keeps the id of the route's first trace until it changes.

use crate::model::{CountryCode, Trace};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// The identity of the responders of one trace (16 hex digits).
#[must_use]
pub fn path_id(trace: &Trace) -> String {
    let mut h = Sha256::new();
    // Most hops have one responder: its text is hashed from one reused
    // buffer; several are sorted as text and joined with `,`.
    let mut text = Vec::with_capacity(48);
    for hop in &trace.hops {
        if hop.addrs.is_empty() {
            continue;
        }
        h.update([hop.ttl]);
        if let [only] = hop.addrs.as_slice() {
            text.clear();
            crate::ip_text::write(&mut text, *only);
            h.update(&text);
        } else {
            let mut addrs: Vec<String> = hop.addrs.iter().map(ToString::to_string).collect();
            addrs.sort();
            h.update(addrs.join(",").as_bytes());
        }
        h.update(b"\n");
    }
    hex::encode(&h.finalize()[..8])
}

/// Whether a trace followed a known route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteComparison {
    /// Same route (possibly with silent hops or ECMP siblings).
    Same,
    /// Another route; `ttl` is where it first differs.
    Changed {
        /// First differing TTL.
        ttl: u8,
        /// What differs, in words.
        reason: String,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct TtlSeen {
    addrs: BTreeSet<IpAddr>,
    /// (country, ASN) of located responders.
    networks: BTreeSet<(Option<CountryCode>, Option<u32>)>,
}

/// What is known about one route: responders per TTL, accumulated over the
/// traces that followed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathSignature {
    id: String,
    ttls: BTreeMap<u8, TtlSeen>,
    destination_ttl: Option<u8>,
}

impl PathSignature {
    /// The route of one trace; its id is that trace's [`path_id`].
    #[must_use]
    pub fn of(trace: &Trace) -> Self {
        let mut sig = Self {
            id: path_id(trace),
            ttls: BTreeMap::new(),
            destination_ttl: None,
        };
        sig.absorb(trace);
        sig
    }

    /// The route's id: the path id of its first trace.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Keep a known route's id (one saved before a restart).
    pub fn set_id(&mut self, id: String) {
        self.id = id;
    }

    /// Whether `trace` followed this route.
    #[must_use]
    pub fn compare(&self, trace: &Trace) -> RouteComparison {
        let destination = destination_ttl(trace);
        if let (Some(was), Some(now)) = (self.destination_ttl, destination) {
            if was != now {
                return RouteComparison::Changed {
                    ttl: was.min(now),
                    reason: format!("the destination answers at TTL {now} instead of {was}"),
                };
            }
        }
        for hop in &trace.hops {
            let Some(seen) = self.ttls.get(&hop.ttl) else {
                continue;
            };
            if hop.addrs.is_empty() || seen.addrs.is_empty() {
                continue;
            }
            if hop.addrs.iter().any(|a| seen.addrs.contains(a)) {
                continue;
            }
            let network = (hop.geo.country, hop.geo.asn);
            let located = network.0.is_some() || network.1.is_some();
            if located && seen.networks.contains(&network) {
                continue;
            }
            let now: Vec<String> = hop.addrs.iter().map(ToString::to_string).collect();
            return RouteComparison::Changed {
                ttl: hop.ttl,
                reason: format!("TTL {} answers from {} instead", hop.ttl, now.join(", ")),
            };
        }
        RouteComparison::Same
    }

    /// Add a trace of this route to what is known about it.
    pub fn absorb(&mut self, trace: &Trace) {
        for hop in &trace.hops {
            if hop.addrs.is_empty() {
                continue;
            }
            let seen = self.ttls.entry(hop.ttl).or_default();
            seen.addrs.extend(hop.addrs.iter().copied());
            if hop.geo.country.is_some() || hop.geo.asn.is_some() {
                seen.networks.insert((hop.geo.country, hop.geo.asn));
            }
        }
        if let Some(d) = destination_ttl(trace) {
            self.destination_ttl = Some(d);
        }
    }
}

fn destination_ttl(trace: &Trace) -> Option<u8> {
    trace.destination_hop().map(|h| h.ttl)
}

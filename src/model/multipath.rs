//! A target's load-balanced paths as the record keeps them: what one
//! multipath enumeration found (every distinct path the varied flows took,
//! each judged on its own), how many flows it sent, why it stopped, and per
//! foreign country how many of the paths cross it ("1 of 2 load-balanced
//! paths crosses South Africa (ZA)"). Made by the daemon from
//! `probe::multipath`'s paths; part of the `transitwatch.trace/1` record of
//! the trace whose attempt ran the enumeration (`[probe]
//! multipath_interval`), absent from every other record.

use super::{CountryCode, VerdictClass};
use crate::text_enum::text_enum;
use crate::units::Timestamp;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// What one enumeration of a target's load-balanced paths found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Multipath {
    /// When the enumeration started.
    pub started_at: Timestamp,
    /// The UDP destination port of every flow (flows are UDP Paris probes
    /// whatever the target's protocol: routers hash UDP ports, not ICMP
    /// identifiers).
    pub port: u16,
    /// Flows sent: one UDP source port each.
    pub flows: u32,
    /// Flows of which no hop answered: no path.
    pub silent_flows: u32,
    /// Why the enumeration stopped.
    pub stop: MultipathStop,
    /// The identity of the set of paths: the same paths, found in any
    /// order, give the same id; another set, another id.
    pub set_id: String,
    /// The distinct paths, in the order they were found.
    pub paths: Vec<MultipathPath>,
    /// Per foreign country (in code order), the paths crossing it.
    pub crossing: Vec<PathsCrossing>,
    /// The finding in one sentence ("1 of 2 load-balanced paths crosses
    /// South Africa (ZA)").
    pub summary: String,
}

/// Why an enumeration stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MultipathStop {
    /// Enough flows without a new path to rule out one more at 95%
    /// confidence (the MDA bound for the paths found).
    Confident,
    /// The cap on flows was reached first.
    FlowCap,
    /// The cap on paths was reached.
    PathCap,
}

text_enum! {
    /// The snake-case name used in records.
    MultipathStop {
        Confident => "confident",
        FlowCap => "flow_cap",
        PathCap => "path_cap",
    }
}

/// One distinct load-balanced path and its verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MultipathPath {
    /// The UDP source ports of the flows that took it, ascending.
    pub source_ports: Vec<u16>,
    /// Whether the destination answered on it.
    pub reached: bool,
    /// Its hops, one per TTL.
    pub hops: Vec<MultipathHop>,
    /// The path's class, judged as a trace of its own.
    pub class: VerdictClass,
    /// Its foreign countries, in path order.
    pub foreign_countries: Vec<CountryCode>,
    /// Whether it breaks the target's allowed-countries policy.
    pub violation: bool,
    /// The identity of its responders (as a trace's `path_id`).
    pub path_id: String,
}

/// One hop of a load-balanced path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MultipathHop {
    /// The TTL.
    pub ttl: u8,
    /// The responder, `None` when silent.
    pub addr: Option<IpAddr>,
    /// Where it is located, when it is.
    pub country: Option<CountryCode>,
}

/// How many of an enumeration's paths cross one foreign country.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathsCrossing {
    /// The country.
    pub country: CountryCode,
    /// Paths crossing it.
    pub paths: u32,
    /// Of those, paths breaking the policy.
    pub violating: u32,
}

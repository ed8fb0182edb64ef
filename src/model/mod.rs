//! The vocabulary every module shares: targets, traces, hops, verdicts.
//!
//! This module depends on std and serde only (and the leaves `text_enum`,
//! the macro that writes its enums' names, and `units`, for [`Timestamp`]). Producers (the probe engine,
//! importers) build a [`Trace`]; consumers (analysis, metrics, store,
//! export) read it. The serialized form of [`TraceRecord`] is the public
//! `transitwatch.trace/1` schema: fields are only ever added to it.

pub mod dns;
pub mod multipath;

use crate::text_enum::text_enum;
use crate::units::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// The schema name carried by every serialized trace record.
pub const TRACE_SCHEMA: &str = "transitwatch.trace/1";

/// An ISO 3166-1 alpha-2 country code, always upper case (`LS`, `ZA`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    /// The code as a `&str`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Only ASCII letters are ever stored (see `FromStr`).
        std::str::from_utf8(&self.0).unwrap_or("??")
    }

    /// The country's English short name (`ZA` → "South Africa"), when the
    /// code is an assigned one.
    #[must_use]
    pub fn name(&self) -> Option<&'static str> {
        rust_iso3166::from_alpha2(self.as_str()).map(|c| c.name)
    }
}

/// Why a string is not a country code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an ISO 3166-1 alpha-2 country code (two letters, e.g. LS)")]
pub struct InvalidCountryCode(pub String);

impl FromStr for CountryCode {
    type Err = InvalidCountryCode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        if b.len() == 2 && b.iter().all(u8::is_ascii_alphabetic) {
            Ok(Self([b[0].to_ascii_uppercase(), b[1].to_ascii_uppercase()]))
        } else {
            Err(InvalidCountryCode(s.to_string()))
        }
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for CountryCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CountryCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The probe protocol of a trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// ICMP echo requests.
    #[default]
    Icmp,
    /// UDP datagrams (Paris: one flow per probe sequence).
    Udp,
    /// TCP SYNs to a port.
    Tcp,
}

text_enum! {
    /// The lower-case name used in configs, CLIs and records.
    Protocol {
        Icmp => "icmp",
        Udp => "udp",
        Tcp => "tcp",
    }
    parse_error: InvalidProtocol
}

/// Why a string is not a protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a protocol (expected icmp, udp or tcp)")]
pub struct InvalidProtocol(pub String);

/// Which address families of a target are traced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// The first address the resolver returns.
    #[default]
    Auto,
    /// IPv4 only.
    Ipv4,
    /// IPv6 only.
    Ipv6,
    /// Both, traced as separate paths.
    Both,
}

impl Family {
    /// Whether an address belongs to this family selection.
    #[must_use]
    pub const fn admits(self, addr: &IpAddr) -> bool {
        match self {
            Self::Auto | Self::Both => true,
            Self::Ipv4 => addr.is_ipv4(),
            Self::Ipv6 => addr.is_ipv6(),
        }
    }
}

text_enum! {
    /// The lower-case name used in configs and CLIs.
    Family {
        Auto => "auto",
        Ipv4 => "ipv4" | "4",
        Ipv6 => "ipv6" | "6",
        Both => "both",
    }
    parse_error: InvalidFamily
}

/// Why a string is not an address family.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an address family (expected auto, ipv4, ipv6 or both)")]
pub struct InvalidFamily(pub String);

/// One traced path of a target: the target's name, and the address family
/// when the target's two families are traced as separate paths.
///
/// Written `NAME`, `NAME/ipv4` or `NAME/ipv6` ([`Display`](fmt::Display)
/// and [`FromStr`] are exact inverses); that text is what the history
/// database, `paths.json`, `alerts.json`, the `target` metric label and the
/// API carry. Target names never contain a `/`. Keys order by target name,
/// then family (the whole target first).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PathKey {
    target: String,
    family: Option<PathFamily>,
}

/// The address family of one path of a target traced in both families.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PathFamily {
    /// The IPv4 path (`NAME/ipv4`).
    Ipv4,
    /// The IPv6 path (`NAME/ipv6`).
    Ipv6,
}

impl PathFamily {
    /// The family of an address.
    #[must_use]
    pub const fn of(addr: &IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => Self::Ipv4,
            IpAddr::V6(_) => Self::Ipv6,
        }
    }

    /// The key suffix's name: `ipv4` or `ipv6`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ipv4 => "ipv4",
            Self::Ipv6 => "ipv6",
        }
    }
}

impl PathKey {
    /// The key of a target traced as a single path (`NAME`).
    #[must_use]
    pub fn whole(target: impl Into<String>) -> Self {
        Self {
            target: target.into(),
            family: None,
        }
    }

    /// The key of one family's path of a target traced in both (`NAME/ipv4`).
    #[must_use]
    pub fn of_family(target: impl Into<String>, family: PathFamily) -> Self {
        Self {
            target: target.into(),
            family: Some(family),
        }
    }

    /// The configured target name.
    #[must_use]
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The family of this path, when the target is traced in both.
    #[must_use]
    pub const fn family(&self) -> Option<PathFamily> {
        self.family
    }

    /// Whether this is a path of the target named `name`.
    #[must_use]
    pub fn belongs_to(&self, name: &str) -> bool {
        self.target == name
    }

    /// The dependency path to the name server `name` in one family
    /// (`dns:ns1.gov.ls/ipv4`).
    #[must_use]
    pub fn nameserver(name: &str, family: PathFamily) -> Self {
        Self::of_family(format!("{NAMESERVER_PREFIX}{name}"), family)
    }

    /// Whether this is a dependency path (to a name server), not a
    /// configured service's.
    #[must_use]
    pub fn is_dependency(&self) -> bool {
        is_dependency_target(&self.target)
    }
}

/// What a dependency path's target name starts with: `dns:NAME` is the
/// path to name server NAME, traced because a service's zone depends on
/// it. Configured target names cannot contain `:`, so the two never meet.
pub const NAMESERVER_PREFIX: &str = "dns:";

/// Whether the target name `name` is a dependency path's, not a configured
/// service's.
#[must_use]
pub fn is_dependency_target(name: &str) -> bool {
    name.starts_with(NAMESERVER_PREFIX)
}

impl fmt::Display for PathKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.target)?;
        if let Some(family) = self.family {
            write!(f, "/{}", family.as_str())?;
        }
        Ok(())
    }
}

/// Why a string is not a path key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a path key (expected NAME, NAME/ipv4 or NAME/ipv6)")]
pub struct InvalidPathKey(pub String);

impl FromStr for PathKey {
    type Err = InvalidPathKey;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidPathKey(s.to_string());
        let (target, family) = match s.split_once('/') {
            None => (s, None),
            Some((target, "ipv4")) => (target, Some(PathFamily::Ipv4)),
            Some((target, "ipv6")) => (target, Some(PathFamily::Ipv6)),
            Some(_) => return Err(invalid()),
        };
        if target.is_empty() {
            return Err(invalid());
        }
        Ok(Self {
            target: target.to_string(),
            family,
        })
    }
}

/// What was traced: the configured name, the host as written, the address used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetRef {
    /// Unique target name (the `target` label in metrics).
    pub name: String,
    /// The host name or address literal as configured or given.
    pub host: String,
    /// The address that was probed. Always known for live traces; `None`
    /// (serialized as `null`) for an imported measurement that never learnt
    /// it, e.g. a RIPE Atlas result whose probe failed to resolve the name.
    pub addr: Option<IpAddr>,
}

/// Where the trace was taken from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VantageRef {
    /// The vantage point's name.
    pub name: String,
    /// The vantage point's country, when known.
    pub country: Option<CountryCode>,
}

/// Round-trip times of a hop, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RttMs {
    /// Shortest reply.
    pub best: f64,
    /// Mean of all replies.
    pub avg: f64,
    /// Longest reply.
    pub worst: f64,
}

/// Where a hop's location came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum GeoSource {
    /// An operator override decided.
    Override,
    /// An MMDB database decided.
    Mmdb,
    /// An RFC 8805 geofeed decided.
    Geofeed,
    /// The hop is on an internet exchange's LAN (PeeringDB) and is placed
    /// at that exchange.
    Ixp,
    /// A location hint in the hop's reverse DNS name decided.
    Hostname,
    /// Only the address's registration country (RIR / whois) is known.
    Registration,
    /// Nothing located the address.
    #[default]
    None,
}

impl GeoSource {
    /// The lower-case name used in records and tables.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Override => "override",
            Self::Mmdb => "mmdb",
            Self::Geofeed => "geofeed",
            Self::Ixp => "ixp",
            Self::Hostname => "hostname",
            Self::Registration => "registration",
            Self::None => "none",
        }
    }
}

/// The location of one hop address, as far as it is known.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct HopGeo {
    /// Country of the address.
    pub country: Option<CountryCode>,
    /// City name, when a city database knows it.
    pub city: Option<String>,
    /// Latitude in degrees.
    pub lat: Option<f64>,
    /// Longitude in degrees.
    pub lon: Option<f64>,
    /// Origin autonomous system number.
    pub asn: Option<u32>,
    /// Origin AS organisation.
    pub as_org: Option<String>,
    /// Which source decided.
    pub source: GeoSource,
    /// `false` when the hop answers too fast for its claimed location;
    /// `true` when checked and consistent; `None` when it could not be checked.
    pub plausible: Option<bool>,
    /// The deciding source by name: an MMDB's `database_type` (e.g.
    /// `GeoLite2-City`) or `override`.
    #[serde(default)]
    pub database: Option<String>,
    /// Radius in km around `lat`/`lon` within which the address is, when the
    /// source says.
    #[serde(default)]
    pub accuracy_km: Option<u32>,
    /// How sure the location is ([`Confidence`]); `None` when nothing
    /// located the address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<Confidence>,
    /// The internet exchange whose LAN the address is on, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ixp: Option<IxpRef>,
    /// Everything every source said about the address, and what the
    /// decision made of each item.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<Evidence>,
}

/// How sure a location, or a claim built on locations, is. Ordered:
/// `Low < Medium < High`. The rule that assigns it is in `geo::decide`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    /// A single weak source says so (one database, a registration country).
    Low,
    /// One strong source (geofeed, exchange LAN, host name), or a database
    /// confirmed by the round-trip time.
    Medium,
    /// An operator statement, or two independent kinds of evidence agree
    /// and the round-trip time allows it.
    High,
}

text_enum! {
    /// The lower-case name used in records, configs and metrics.
    Confidence {
        Low => "low",
        Medium => "medium",
        High => "high",
    }
    parse_error: InvalidConfidence
}

/// A confidence name that is not `low`, `medium` or `high`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a confidence level (expected low, medium or high)")]
pub struct InvalidConfidence(pub String);

/// The kind of source an [`Evidence`] item comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EvidenceKind {
    /// The operator's overrides (CSV, or an MMDB built from them).
    Override,
    /// An RFC 8805 geofeed published by the address holder.
    Geofeed,
    /// An internet exchange LAN prefix from a PeeringDB dump.
    Ixp,
    /// A location hint in the reverse DNS (PTR) name.
    Hostname,
    /// A geolocation database (MMDB).
    Database,
    /// The registration country (RIR / whois), weak evidence.
    Registration,
}

text_enum! {
    /// The lower-case name used in records and metrics.
    EvidenceKind {
        Override => "override",
        Geofeed => "geofeed",
        Ixp => "ixp",
        Hostname => "hostname",
        Database => "database",
        Registration => "registration",
    }
}

/// What the decision made of one [`Evidence`] item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EvidenceStatus {
    /// The item the hop's location is taken from.
    Chosen,
    /// Says the same country as the chosen item.
    Agrees,
    /// Says another country; outweighed.
    Disagrees,
    /// Ruled out: the round-trip time makes its location impossible, or it
    /// says nothing usable.
    Rejected,
}

text_enum! {
    /// The lower-case name used in records.
    EvidenceStatus {
        Chosen => "chosen",
        Agrees => "agrees",
        Disagrees => "disagrees",
        Rejected => "rejected",
    }
}

/// One thing one source says about where an address is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The kind of source.
    pub kind: EvidenceKind,
    /// The source by name: an MMDB's `database_type`, `override`, a
    /// geofeed's file name, a PeeringDB exchange's name, `ptr` for the
    /// built-in host name hints or the operator rule's domain suffix.
    pub source: String,
    /// The country it says.
    pub country: Option<CountryCode>,
    /// The city it says.
    #[serde(default)]
    pub city: Option<String>,
    /// Latitude it says, in degrees.
    #[serde(default)]
    pub lat: Option<f64>,
    /// Longitude it says, in degrees.
    #[serde(default)]
    pub lon: Option<f64>,
    /// Radius in km around `lat`/`lon`, when the source says.
    #[serde(default)]
    pub accuracy_km: Option<u32>,
    /// What it said in its own terms: the override or geofeed line, the
    /// host name and the code in it, the exchange's prefix.
    #[serde(default)]
    pub detail: Option<String>,
    /// What the decision made of it.
    pub status: EvidenceStatus,
    /// Why, in plain words, when it is not the chosen item.
    #[serde(default)]
    pub reason: Option<String>,
}

/// An internet exchange, as PeeringDB names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IxpRef {
    /// PeeringDB's `ix` id.
    pub id: u32,
    /// The exchange's name.
    pub name: String,
    /// Its country.
    pub country: CountryCode,
    /// Its city.
    #[serde(default)]
    pub city: Option<String>,
}

/// A point on the globe, in degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Coordinates {
    /// Latitude, -90 to 90.
    pub lat: f64,
    /// Longitude, -180 to 180.
    pub lon: f64,
}

/// One TTL of a trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hop {
    /// The probe TTL (hop limit).
    pub ttl: u8,
    /// The most frequent responder at this TTL; `None` for a silent hop.
    pub addr: Option<IpAddr>,
    /// Every address that answered at this TTL, most frequent first.
    pub addrs: Vec<IpAddr>,
    /// Probes sent with this TTL.
    pub sent: u32,
    /// Replies received for this TTL.
    pub received: u32,
    /// Round-trip times; `None` for a silent hop.
    pub rtt_ms: Option<RttMs>,
    /// Location of `addr`.
    pub geo: HopGeo,
    /// The reverse DNS (PTR) name of `addr`, when it was looked up and has
    /// one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// The MPLS label stack (RFC 4950) that `addr` quoted in the ICMP
    /// extension of its reply, top of the stack first: the labels the probe
    /// carried when its TTL expired inside a label-switched path. One stack
    /// per hop, the main responder's (the first of its replies that carried
    /// one); other responders' stacks are not kept. Empty (and absent from
    /// the record) when no reply carried one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mpls: Vec<MplsLabel>,
}

/// One entry of an MPLS label stack (RFC 3032, as quoted by RFC 4950).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MplsLabel {
    /// The 20-bit label.
    pub label: u32,
    /// The 3-bit traffic class (RFC 5462; formerly EXP).
    pub tc: u8,
    /// Bottom of stack: `true` for the last entry.
    pub s: bool,
    /// The entry's TTL when the probe's TTL expired.
    pub ttl: u8,
}

impl MplsLabel {
    /// The largest label value (20 bits).
    pub const MAX_LABEL: u32 = (1 << 20) - 1;

    /// An entry from its fields, keeping only their defined bits (20 for
    /// the label, 3 for the traffic class).
    #[must_use]
    pub const fn new(label: u32, tc: u8, s: bool, ttl: u8) -> Self {
        Self {
            label: label & Self::MAX_LABEL,
            tc: tc & 0x7,
            s,
            ttl,
        }
    }
}

/// A label stack as one text: each entry `LABEL:TC:S:TTL` (S is 0 or 1),
/// top first, separated by spaces (`24001:0:0:1 16005:0:1:1`); the form of
/// the dataset's `mpls` column.
#[must_use]
pub fn mpls_text(stack: &[MplsLabel]) -> String {
    let mut out = String::new();
    for (i, l) in stack.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&format!("{}:{}:{}:{}", l.label, l.tc, u8::from(l.s), l.ttl));
    }
    out
}

impl Hop {
    /// Whether nothing answered at this TTL.
    #[must_use]
    pub fn is_silent(&self) -> bool {
        self.addr.is_none()
    }
}

/// A measured path before any interpretation: what the prober saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    /// What was traced.
    pub target: TargetRef,
    /// Where from.
    pub vantage: VantageRef,
    /// Probe protocol.
    pub protocol: Protocol,
    /// Destination port for UDP and TCP probes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Start of the trace (written as RFC 3339 UTC).
    pub started_at: Timestamp,
    /// Whether the destination answered.
    pub reached: bool,
    /// One entry per TTL from the first TTL to the last one probed.
    pub hops: Vec<Hop>,
}

impl Trace {
    /// The hop that answered from the target address (the lowest such TTL;
    /// a hop whose main responder is the target wins over one where it is
    /// only an alternate), if the target answered at all. `None` when the
    /// target address is unknown.
    #[must_use]
    pub fn destination_hop(&self) -> Option<&Hop> {
        if !self.reached {
            return None;
        }
        let target = self.target.addr?;
        self.hops
            .iter()
            .find(|h| h.addr == Some(target))
            .or_else(|| self.hops.iter().find(|h| h.addrs.contains(&target)))
    }
}

/// How a path relates to the home jurisdiction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictClass {
    /// Every located hop and the destination are at home (or allowed).
    Domestic,
    /// The destination is at home but the path crosses another country.
    ForeignTransit,
    /// The service itself answers from abroad.
    ForeignDestination,
    /// Too little located evidence to say.
    Indeterminate,
}

text_enum! {
    /// The snake-case name used in records and metrics.
    VerdictClass {
        Domestic => "domestic",
        ForeignTransit => "foreign_transit",
        ForeignDestination => "foreign_destination",
        Indeterminate => "indeterminate",
    }
}

/// What the analysis concludes about one trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathVerdict {
    /// The class of the path.
    pub class: VerdictClass,
    /// Ordered countries of located, plausible hops, repeats collapsed.
    pub countries: Vec<CountryCode>,
    /// Those of `countries` outside home and the allowed set.
    pub foreign_countries: Vec<CountryCode>,
    /// Origin ASNs of hops located in foreign countries.
    pub foreign_asns: Vec<u32>,
    /// Whether the path breaks the target's allowed-countries policy.
    pub violation: bool,
    /// Stable identity of the responding hop sequence.
    pub path_id: String,
    /// One plain-language sentence saying why.
    pub explanation: String,
    /// Countries claimed by hops that answered too fast to be there: not
    /// counted as evidence, listed with the reason.
    #[serde(default)]
    pub suspect_countries: Vec<SuspectCountry>,
    /// Oddities of the path: forwarding loops, an unreached destination.
    #[serde(default)]
    pub anomalies: Vec<Anomaly>,
    /// How sure the verdict is: for a foreign class, the confidence of its
    /// strongest foreign claim; for `domestic`, that of the destination's
    /// location; `None` for `indeterminate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<Confidence>,
    /// Every foreign country the path touches, with how sure that is and
    /// the hops behind it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims: Vec<CountryClaim>,
    /// Internet exchanges the path crosses, in path order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exchanges: Vec<ExchangeCrossing>,
}

/// A foreign country a path touches, and how sure that is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CountryClaim {
    /// The country.
    pub country: CountryCode,
    /// The highest confidence of the hops located there.
    pub confidence: Confidence,
    /// TTLs of the hops located there.
    pub ttls: Vec<u8>,
    /// `true` when the confidence is below the policy's `min_confidence`:
    /// reported, but never a violation.
    pub suspected: bool,
    /// Why, in plain words ("hop 3's name says Johannesburg and it answers
    /// 4 ms further away than hop 2").
    pub reason: String,
}

/// A hop on an internet exchange's LAN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExchangeCrossing {
    /// The TTL of the hop on the exchange LAN.
    pub ttl: u8,
    /// The exchange.
    pub ixp: IxpRef,
    /// Whether the exchange is in the home country (the path exchanges
    /// traffic locally).
    pub domestic: bool,
}

/// A country claimed by implausible hops.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuspectCountry {
    /// The claimed country.
    pub country: CountryCode,
    /// TTLs of the hops that claim it.
    pub ttls: Vec<u8>,
    /// Why the claim is not believed.
    pub reason: String,
}

/// Something unusual about a path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Anomaly {
    /// The same address answered at TTLs that are not neighbours.
    ForwardingLoop {
        /// The repeating address.
        addr: IpAddr,
        /// Every TTL it answered at.
        ttls: Vec<u8>,
    },
    /// The destination never answered.
    DestinationNotReached {
        /// The last TTL that any hop answered at, if any.
        last_responding_ttl: Option<u8>,
    },
}

/// A trace together with its verdict: the `transitwatch.trace/1` record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceRecord {
    /// Always [`TRACE_SCHEMA`].
    pub schema: String,
    /// What was measured.
    #[serde(flatten)]
    pub trace: Trace,
    /// What it means.
    pub verdict: PathVerdict,
    /// What the target's name depended on in DNS when it was traced
    /// (`[dependency] dns`): absent for address targets, imported traces,
    /// dependency paths and older records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<Box<dns::DnsDependencies>>,
    /// The RIPE Atlas ids of an imported Atlas result, so that a verdict
    /// leads back to the measurement and probe it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub atlas: Option<AtlasIds>,
    /// For one path of a scamper `tracelb` (MDA) record imported by
    /// `analyze`: which record and which of its paths this is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracelb: Option<TracelbPath>,
    /// The target's load-balanced paths, when this trace's attempt
    /// enumerated them (`[probe] multipath_interval`): absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multipath: Option<Box<multipath::Multipath>>,
}

/// One path through the load-balanced graph of a scamper `tracelb` record:
/// the record gives one trace per path from its first hop to the
/// destination (or as far as the graph goes), and each names its place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TracelbPath {
    /// The record: the 1-based count of `tracelb` records in the input.
    pub record: u64,
    /// The 1-based line of the input the record starts on.
    pub line: u64,
    /// This path: 1-based, in the order the graph is walked (each node's
    /// links in the record's order).
    pub path: u32,
    /// The record's paths given (at most the cap, see `capped`).
    pub paths: u32,
    /// `true` when the graph holds more paths than the cap: `paths` are
    /// the first ones only.
    pub capped: bool,
    /// How this path ends.
    pub end: PathEnd,
}

/// How a path through a `tracelb` graph ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PathEnd {
    /// At the destination.
    Destination,
    /// At a hop that answered and has no link onward, not the destination.
    DeadEnd,
    /// At hops that did not answer (or whose address the record leaves out).
    Silent,
    /// At a node already on the path: the graph has a cycle there; the
    /// repeated node is the path's last hop.
    Loop,
}

text_enum! {
    /// The snake-case name used in records.
    PathEnd {
        Destination => "destination",
        DeadEnd => "dead_end",
        Silent => "silent",
        Loop => "loop",
    }
}

/// A RIPE Atlas result's own ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AtlasIds {
    /// The measurement (`msm_id`), when the result names it.
    pub msm_id: Option<u64>,
    /// The probe (`prb_id`).
    pub prb_id: u64,
}

impl TraceRecord {
    /// Pair a trace with its verdict under the current schema.
    #[must_use]
    pub fn new(trace: Trace, verdict: PathVerdict) -> Self {
        Self {
            schema: TRACE_SCHEMA.to_string(),
            trace,
            verdict,
            dns: None,
            atlas: None,
            tracelb: None,
            multipath: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn country_codes_are_two_letters_upper_cased() {
        assert_eq!("ls".parse::<CountryCode>().unwrap().as_str(), "LS");
        assert!("LSO".parse::<CountryCode>().is_err());
        assert!("L1".parse::<CountryCode>().is_err());
        assert!("".parse::<CountryCode>().is_err());
    }

    #[test]
    fn protocols_parse_case_insensitively_and_reject_others() {
        assert_eq!("TCP".parse::<Protocol>().unwrap(), Protocol::Tcp);
        let err = "sctp".parse::<Protocol>().unwrap_err();
        assert!(err.to_string().contains("sctp"));
    }

    #[test]
    fn enum_names_aliases_and_errors_are_as_published() {
        let names = |all: &[&str]| all.join(",");
        assert_eq!(names(&Protocol::ALL.map(Protocol::as_str)), "icmp,udp,tcp");
        assert_eq!(
            names(&Family::ALL.map(Family::as_str)),
            "auto,ipv4,ipv6,both"
        );
        assert_eq!(
            names(&VerdictClass::ALL.map(VerdictClass::as_str)),
            "domestic,foreign_transit,foreign_destination,indeterminate"
        );
        assert_eq!(Protocol::Udp.to_string(), "udp");
        assert_eq!(Family::Ipv6.to_string(), "ipv6");
        assert_eq!(VerdictClass::ForeignTransit.to_string(), "foreign_transit");
        assert_eq!("4".parse::<Family>(), Ok(Family::Ipv4));
        assert_eq!("6".parse::<Family>(), Ok(Family::Ipv6));
        assert_eq!("BOTH".parse::<Family>(), Ok(Family::Both));
        assert_eq!(
            "Inet".parse::<Family>().unwrap_err().to_string(),
            "`Inet` is not an address family (expected auto, ipv4, ipv6 or both)"
        );
        assert_eq!(
            "Sctp".parse::<Protocol>().unwrap_err().to_string(),
            "`Sctp` is not a protocol (expected icmp, udp or tcp)"
        );
    }

    #[test]
    fn mpls_entries_keep_their_bits_and_read_as_text() {
        let top = MplsLabel::new(0x1F_FFFF, 0xF, false, 255);
        assert_eq!((top.label, top.tc), (MplsLabel::MAX_LABEL, 7));
        let stack = [
            MplsLabel::new(24001, 0, false, 1),
            MplsLabel::new(16005, 5, true, 254),
        ];
        assert_eq!(mpls_text(&stack), "24001:0:0:1 16005:5:1:254");
        assert_eq!(mpls_text(&[]), "");
    }

    #[test]
    fn path_keys_read_back_what_they_write() {
        for text in ["gov", "gov/ipv4", "gov/ipv6", "bank-1.ls"] {
            let key: PathKey = text.parse().unwrap();
            assert_eq!(key.to_string(), text);
            assert!(key.belongs_to(text.split('/').next().unwrap()));
        }
        let key = PathKey::of_family("gov", PathFamily::of(&"2001:db8::1".parse().unwrap()));
        assert_eq!(key.to_string(), "gov/ipv6");
        assert!(!key.belongs_to("go"));
        for bad in ["", "/ipv4", "gov/ipv5", "gov/IPV4", "gov/ipv4/x"] {
            assert!(bad.parse::<PathKey>().is_err(), "{bad}");
        }
    }
}

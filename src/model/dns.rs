//! What a service's name needs from DNS, as the record keeps it: the
//! CNAME chain, the canonical name's addresses, the zones and their name
//! servers, and what could not be established ([`Problem`]). Made by
//! `dependency::dns` (which asks the servers); part of the
//! `transitwatch.trace/1` record of every path of a named target when
//! `[dependency] dns` is on.

use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// Most CNAME steps followed.
pub const MAX_CHAIN: usize = 8;

/// Most name servers kept per zone.
pub const MAX_NAMESERVERS: usize = 16;

/// What a service's name depends on in DNS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsDependencies {
    /// The service's name as asked (lower case, no trailing dot).
    pub name: String,
    /// Each alias step, from the name towards its canonical name.
    pub cname_chain: Vec<CnameStep>,
    /// Where the chain ended: the name whose addresses these are; `None`
    /// when it did not end (loop, too long, no answer).
    pub canonical: Option<String>,
    /// The canonical name's A and AAAA addresses, in the answers' order.
    pub addresses: Vec<IpAddr>,
    /// The zone of the service's own name and its name servers.
    pub zone: Option<Zone>,
    /// The zone of the canonical name, when the name is an alias.
    pub target_zone: Option<Zone>,
    /// What could not be established.
    pub problems: Vec<Problem>,
}

impl DnsDependencies {
    /// Whether the name came to at least one address.
    #[must_use]
    pub fn resolved(&self) -> bool {
        !self.addresses.is_empty()
    }
}

/// One CNAME record: `name` is an alias of `target`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CnameStep {
    pub name: String,
    pub target: String,
}

/// A zone and its name servers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Zone {
    /// The zone's apex.
    pub name: String,
    /// Its name servers (by name), at most [`MAX_NAMESERVERS`].
    pub nameservers: Vec<Nameserver>,
}

/// A name server and its addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nameserver {
    pub name: String,
    pub addresses: Vec<IpAddr>,
}

/// The query types asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueryType {
    A,
    #[allow(clippy::upper_case_acronyms)]
    AAAA,
    #[allow(clippy::upper_case_acronyms)]
    CNAME,
    NS,
}

impl QueryType {
    /// The type's name (`A`, `NS`).
    #[must_use]
    pub const fn label(self) -> &'static str {
        match self {
            Self::A => "A",
            Self::AAAA => "AAAA",
            Self::CNAME => "CNAME",
            Self::NS => "NS",
        }
    }
}

/// What could not be established about one name and query type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    #[serde(flatten)]
    pub kind: ProblemKind,
    /// The name it concerns.
    pub name: String,
    /// The query type it concerns.
    pub query: QueryType,
}

/// Why something could not be established.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum ProblemKind {
    /// No answer within the query timeout, or the deadline passed first.
    Timeout,
    /// The server failed (`SERVFAIL`).
    ServFail,
    /// The name does not exist (`NXDOMAIN`).
    NxDomain,
    /// A zone without name servers, or none of whose name servers has an
    /// address (lame).
    NoNameservers,
    /// A name came twice in the CNAME chain.
    CnameLoop,
    /// The chain goes on beyond [`MAX_CHAIN`] steps.
    ChainTooLong,
    /// The server refused (`REFUSED`).
    Refused,
    /// Anything else: another response code, a broken answer, a name that
    /// is no host name, no server reachable.
    Other(String),
}

impl ProblemKind {
    /// The kind's name (`timeout`, `nx_domain`, as in the JSON).
    #[must_use]
    pub const fn label(&self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::ServFail => "serv_fail",
            Self::NxDomain => "nx_domain",
            Self::NoNameservers => "no_nameservers",
            Self::CnameLoop => "cname_loop",
            Self::ChainTooLong => "chain_too_long",
            Self::Refused => "refused",
            Self::Other(_) => "other",
        }
    }
}

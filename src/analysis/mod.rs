//! Pure functions from a measured [`Trace`] to its [`PathVerdict`].
//!
//! Nothing here does I/O: the same trace and policy always give the same
//! verdict, whether the trace came from the prober, a RIPE Atlas file or a
//! scamper file.

mod path_id;

pub use path_id::path_id;

use crate::model::{CountryCode, PathVerdict, Trace, VerdictClass};

/// What counts as home for one target.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Policy {
    /// The home country; `None` when it is not known.
    pub home: Option<CountryCode>,
    /// Countries a path may cross without a violation (home is implied).
    pub allowed: Vec<CountryCode>,
}

/// Classify a trace. Hops without a located country are no evidence either
/// way; with no located hop at all the class is `indeterminate`.
#[must_use]
pub fn analyze(trace: &Trace, policy: &Policy) -> PathVerdict {
    let countries = country_sequence(trace);
    let is_home = |c: &CountryCode| policy.home.as_ref() == Some(c) || policy.allowed.contains(c);
    let mut foreign_countries: Vec<CountryCode> = Vec::new();
    for c in countries.iter().filter(|c| !is_home(c)) {
        if !foreign_countries.contains(c) {
            foreign_countries.push(*c);
        }
    }
    let class = if countries.is_empty() || policy.home.is_none() {
        VerdictClass::Indeterminate
    } else if foreign_countries.is_empty() {
        VerdictClass::Domestic
    } else {
        VerdictClass::ForeignTransit
    };
    let explanation = match class {
        VerdictClass::Indeterminate => format!(
            "{} ({}): no hop of the path could be located, so its jurisdiction is unknown",
            trace.target.name, trace.target.addr
        ),
        _ => format!(
            "{}: path crosses {}",
            trace.target.name,
            countries
                .iter()
                .map(CountryCode::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    PathVerdict {
        class,
        violation: !foreign_countries.is_empty(),
        countries,
        foreign_countries,
        foreign_asns: Vec::new(),
        path_id: path_id(trace),
        explanation,
    }
}

/// Countries of located, plausible hops in path order, repeats collapsed.
fn country_sequence(trace: &Trace) -> Vec<CountryCode> {
    let mut seq: Vec<CountryCode> = Vec::new();
    for hop in &trace.hops {
        if hop.geo.plausible == Some(false) {
            continue;
        }
        if let Some(c) = hop.geo.country {
            if seq.last() != Some(&c) {
                seq.push(c);
            }
        }
    }
    seq
}

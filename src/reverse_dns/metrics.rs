//! The resolver's metric families: `transitwatch_rdns_lookups_total{result}`,
//! every PTR query by what came of it, and
//! `transitwatch_rdns_cache_hits_total`, names (or their absence) answered
//! from the cache without a query.
//!
//! [`RdnsMetrics::register`] adds them to the registry the metrics module
//! owns.

use super::Outcome;
use prometheus::{IntCounter, IntCounterVec, Opts, Registry};

/// A cheap handle on the resolver's families (clones share the series).
/// The default handle belongs to no registry and does nothing.
#[derive(Debug, Clone, Default)]
pub struct RdnsMetrics {
    families: Option<Families>,
}

#[derive(Debug, Clone)]
struct Families {
    lookups: IntCounterVec,
    cache_hits: IntCounter,
}

impl RdnsMetrics {
    /// Creates the families, every result at zero, and registers them in
    /// `registry`.
    ///
    /// # Errors
    ///
    /// What the Prometheus library says when a family is defective or
    /// already registered there.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let lookups = IntCounterVec::new(
            Opts::new(
                "transitwatch_rdns_lookups_total",
                "Reverse DNS (PTR) queries of hop addresses, by result: name (a valid name), \
                 no_name (the server says there is none), timeout (no answer in time), \
                 error (the server failed or refused), garbage (an answer that is no valid \
                 host name or no valid DNS message).",
            ),
            &["result"],
        )?;
        let cache_hits = IntCounter::new(
            "transitwatch_rdns_cache_hits_total",
            "Hop addresses whose reverse DNS name (or its absence) came from the cache, \
             without a query.",
        )?;
        registry.register(Box::new(lookups.clone()))?;
        registry.register(Box::new(cache_hits.clone()))?;
        for outcome in Outcome::ALL {
            lookups.with_label_values(&[outcome.label()]);
        }
        Ok(Self {
            families: Some(Families {
                lookups,
                cache_hits,
            }),
        })
    }

    /// One query ended with `outcome`.
    pub(super) fn lookup(&self, outcome: Outcome) {
        let Some(f) = &self.families else { return };
        f.lookups.with_label_values(&[outcome.label()]).inc();
    }

    /// One address answered from the cache.
    pub(super) fn cache_hit(&self) {
        let Some(f) = &self.families else { return };
        f.cache_hits.inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_result_is_published_from_the_start() {
        let registry = Registry::new();
        let m = RdnsMetrics::register(&registry).unwrap();
        m.lookup(Outcome::Garbage);
        m.cache_hit();
        let mut text = String::new();
        prometheus::TextEncoder::new()
            .encode_utf8(&registry.gather(), &mut text)
            .unwrap();
        for line in [
            "transitwatch_rdns_lookups_total{result=\"name\"} 0",
            "transitwatch_rdns_lookups_total{result=\"no_name\"} 0",
            "transitwatch_rdns_lookups_total{result=\"timeout\"} 0",
            "transitwatch_rdns_lookups_total{result=\"error\"} 0",
            "transitwatch_rdns_lookups_total{result=\"garbage\"} 1",
            "transitwatch_rdns_cache_hits_total 1",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }
}

//! The history's metric families: `transitwatch_store_writes_total{result}`,
//! the fate of every record handed to the store writer;
//! `transitwatch_store_healthy`, whether the writer has the database open
//! and found it intact; and `transitwatch_store_unreadable_traces`, how
//! many stored traces the last integrity check found unreadable.
//!
//! [`StoreMetrics::register`] adds them to the registry the metrics module
//! owns.

use prometheus::{IntCounterVec, IntGauge, Opts, Registry};

/// The `result` label values, each published from the start at zero.
const RESULTS: [&str; 3] = ["ok", "error", "dropped"];

/// A cheap handle on the store's families (clones share the series). The
/// default handle belongs to no registry and does nothing (metrics could
/// not be set up).
#[derive(Debug, Clone, Default)]
pub struct StoreMetrics {
    families: Option<Families>,
}

#[derive(Debug, Clone)]
struct Families {
    writes: IntCounterVec,
    healthy: IntGauge,
    unreadable: IntGauge,
}

impl StoreMetrics {
    /// Creates the families, with every result at zero and the store not
    /// (yet) healthy, and registers them in `registry`.
    ///
    /// # Errors
    ///
    /// What the Prometheus library says when a family is defective or
    /// already registered there.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let writes = IntCounterVec::new(
            Opts::new(
                "transitwatch_store_writes_total",
                "Trace records handed to the history database, by result: ok (stored), \
                 error (the database failed), dropped (its write queue was full).",
            ),
            &["result"],
        )?;
        let healthy = IntGauge::new(
            "transitwatch_store_healthy",
            "1 while the history database is open for writing and passed its integrity \
             check at open; 0 before that, when it cannot be opened, and when it is damaged \
             (history is then no longer written).",
        )?;
        let unreadable = IntGauge::new(
            "transitwatch_store_unreadable_traces",
            "Stored traces the last integrity check of the history database found \
             unreadable (0 when it was intact).",
        )?;
        registry.register(Box::new(writes.clone()))?;
        registry.register(Box::new(healthy.clone()))?;
        registry.register(Box::new(unreadable.clone()))?;
        for result in RESULTS {
            writes.with_label_values(&[result]);
        }
        Ok(Self {
            families: Some(Families {
                writes,
                healthy,
                unreadable,
            }),
        })
    }

    /// One record handed to the store, by `result`: `ok` (stored), `error`
    /// (the store failed), `dropped` (its queue was full); see
    /// [`Written::label`](super::writer::Written::label).
    pub fn count(&self, result: &str) {
        let Some(f) = &self.families else { return };
        f.writes.with_label_values(&[result]).inc();
    }

    /// The database is open and its integrity check passed.
    pub fn intact(&self) {
        let Some(f) = &self.families else { return };
        f.healthy.set(1);
        f.unreadable.set(0);
    }

    /// The database is damaged: `unreadable` stored traces cannot be read.
    pub fn damaged(&self, unreadable: u64) {
        let Some(f) = &self.families else { return };
        f.healthy.set(0);
        f.unreadable
            .set(i64::try_from(unreadable).unwrap_or(i64::MAX));
    }

    /// The database cannot be opened (or checked) for now.
    pub fn unavailable(&self) {
        let Some(f) = &self.families else { return };
        f.healthy.set(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::writer::Written;

    #[test]
    fn results_are_the_labels_of_written() {
        let labels = [
            Written::Stored(1).label(),
            Written::Failed(String::new()).label(),
            Written::Dropped.label(),
        ];
        assert_eq!(labels, RESULTS);
    }

    #[test]
    fn health_follows_the_checks() {
        let registry = Registry::new();
        let metrics = StoreMetrics::register(&registry).unwrap();
        let value = |name: &str| {
            registry
                .gather()
                .iter()
                .find(|f| f.name() == name)
                .map(|f| f.get_metric()[0].get_gauge().get_value())
        };
        assert_eq!(value("transitwatch_store_healthy"), Some(0.0));
        metrics.intact();
        assert_eq!(value("transitwatch_store_healthy"), Some(1.0));
        metrics.damaged(907);
        assert_eq!(value("transitwatch_store_healthy"), Some(0.0));
        assert_eq!(value("transitwatch_store_unreadable_traces"), Some(907.0));
        // The default handle does nothing.
        StoreMetrics::default().damaged(1);
    }
}

//! The history's metric family: `transitwatch_store_writes_total{result}`,
//! the fate of every record handed to the store writer.
//!
//! [`StoreMetrics::register`] adds it to the registry the metrics module
//! owns.

use prometheus::{IntCounterVec, Opts, Registry};

/// The `result` label values, each published from the start at zero.
const RESULTS: [&str; 3] = ["ok", "error", "dropped"];

/// A cheap handle on the store's family (clones share the series). The
/// default handle belongs to no registry and does nothing (metrics could
/// not be set up).
#[derive(Debug, Clone, Default)]
pub struct StoreMetrics {
    writes: Option<IntCounterVec>,
}

impl StoreMetrics {
    /// Creates the family, with every result at zero, and registers it in
    /// `registry`.
    ///
    /// # Errors
    ///
    /// What the Prometheus library says when the family is defective or
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
        registry.register(Box::new(writes.clone()))?;
        for result in RESULTS {
            writes.with_label_values(&[result]);
        }
        Ok(Self {
            writes: Some(writes),
        })
    }

    /// One record handed to the store, by `result`: `ok` (stored), `error`
    /// (the store failed), `dropped` (its queue was full); see
    /// [`Written::label`](super::writer::Written::label).
    pub fn count(&self, result: &str) {
        let Some(writes) = &self.writes else { return };
        writes.with_label_values(&[result]).inc();
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
}

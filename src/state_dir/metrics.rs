//! The state files' metric family: `transitwatch_state_saves_total{file,
//! result}`, every save of `paths.json` and `alerts.json`, `ok` or `error`.
//!
//! [`SaveMetrics::register`] adds it to the registry the metrics module
//! owns; [`super::StateFiles`] counts each save.

use prometheus::{IntCounterVec, Opts, Registry};

/// The state files whose series exist from the start, at zero.
pub const FILES: [&str; 2] = ["paths.json", "alerts.json"];

/// The `result` label values.
const RESULTS: [&str; 2] = ["ok", "error"];

/// A cheap handle on the family (clones share the series). The default
/// handle belongs to no registry and does nothing.
#[derive(Debug, Clone, Default)]
pub struct SaveMetrics {
    saves: Option<IntCounterVec>,
}

impl SaveMetrics {
    /// Creates the family, with every file and result at zero, and
    /// registers it in `registry`.
    ///
    /// # Errors
    ///
    /// What the Prometheus library says when the family is defective or
    /// already registered there.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let saves = IntCounterVec::new(
            Opts::new(
                "transitwatch_state_saves_total",
                "Saves of the state files in the state directory, by file and result: \
                 ok (replaced atomically) or error (the old file stays; the state is kept \
                 in memory and saved again at the next change or at stop).",
            ),
            &["file", "result"],
        )?;
        registry.register(Box::new(saves.clone()))?;
        for file in FILES {
            for result in RESULTS {
                saves.with_label_values(&[file, result]);
            }
        }
        Ok(Self { saves: Some(saves) })
    }

    /// One save of `file` (its name in the state directory).
    pub fn count(&self, file: &str, ok: bool) {
        let Some(saves) = &self.saves else { return };
        saves
            .with_label_values(&[file, if ok { RESULTS[0] } else { RESULTS[1] }])
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_files_are_the_state_files() {
        assert_eq!(FILES, [crate::paths::STATE_FILE, crate::alert::STATE_FILE]);
    }

    #[test]
    fn every_file_and_result_starts_at_zero_and_counts() {
        let registry = Registry::new();
        let metrics = SaveMetrics::register(&registry).unwrap();
        metrics.count("alerts.json", false);
        let families = registry.gather();
        let series: Vec<(String, String, f64)> = families[0]
            .get_metric()
            .iter()
            .map(|m| {
                let label = |name: &str| {
                    m.get_label()
                        .iter()
                        .find(|l| l.name() == name)
                        .map(|l| l.value().to_string())
                        .unwrap_or_default()
                };
                (label("file"), label("result"), m.get_counter().get_value())
            })
            .collect();
        assert_eq!(series.len(), 4, "{series:?}");
        for (file, result, value) in series {
            let expected = if (file.as_str(), result.as_str()) == ("alerts.json", "error") {
                1.0
            } else {
                0.0
            };
            assert_eq!(value, expected, "{file} {result}");
        }
        assert!(SaveMetrics::register(&registry).is_err());
    }
}

//! The last known path of every target, and whether a new trace changed it.
//!
//! For each path key the book keeps the last trace record, the route's
//! [`PathSignature`] (see `analysis::identity` for the rule) and the number
//! of route changes seen. A record's `verdict.path_id` is replaced by the
//! route's id, so silent hops and ECMP siblings keep the id stable.
//!
//! The book is saved in the state directory as a sealed state file (see
//! [`crate::state_dir`]: written whole and atomically, 0600, refused at load
//! when anything but this daemon changed it) and loaded at start: the first
//! trace after a restart is compared with the last one before it, so a
//! restart is never counted as a change.
//!
//! A key whose load-balanced paths are enumerated (`[probe]
//! multipath_interval`) also keeps its last enumeration: only the record of
//! an attempt that enumerated carries one, so the book remembers it across
//! the records between. A new enumeration whose set of paths differs from
//! the last one (`analysis::multipath::set_id`: the same paths found in
//! another order are the same set) is a route change like any other.

use crate::analysis::{PathSignature, RouteComparison};
use crate::model::multipath::Multipath;
use crate::model::{PathKey, TraceRecord};
use crate::state_dir::{LoadError, SaveError, StateFiles};
use crate::units::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The file name of the saved book inside the state directory.
pub const STATE_FILE: &str = "paths.json";

/// The version of the file this build writes (1 was unsealed).
pub const VERSION: u32 = 2;

#[derive(Serialize, Deserialize)]
struct Saved {
    paths: BTreeMap<String, SavedPath>,
}

#[derive(Serialize, Deserialize)]
struct SavedPath {
    record: TraceRecord,
    changes: u64,
    /// Start of the first trace of the current state; a file written
    /// before this was kept gives the record's own start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    since: Option<Timestamp>,
    /// The last enumeration of its load-balanced paths, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    multipath: Option<Box<Multipath>>,
}

struct Entry {
    record: TraceRecord,
    signature: PathSignature,
    changes: u64,
    /// Start of the first trace of the current state (route, class and
    /// foreign countries unchanged since).
    since: Timestamp,
    /// The last enumeration of its load-balanced paths.
    multipath: Option<Box<Multipath>>,
}

/// Whether two records are in the same state: same class and foreign
/// countries (the route is compared by its signature).
fn same_state(a: &TraceRecord, b: &TraceRecord) -> bool {
    a.verdict.class == b.verdict.class && a.verdict.foreign_countries == b.verdict.foreign_countries
}

/// What [`PathBook::apply`] concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The route changed with this trace (never on the first trace of a key).
    pub changed: bool,
    /// Route changes of this key so far.
    pub changes: u64,
}

/// Last path per key.
#[derive(Default)]
pub struct PathBook {
    entries: BTreeMap<PathKey, Entry>,
    dirty: bool,
}

impl PathBook {
    /// Load the book saved in the state directory, or an empty one when
    /// there is none.
    ///
    /// # Errors
    /// The file exists but was not loaded: see [`LoadError`].
    pub fn load(files: &StateFiles) -> Result<Self, LoadError> {
        let Some(saved) = files.load::<Saved>(STATE_FILE, VERSION)? else {
            return Ok(Self::default());
        };
        let entries = saved
            .paths
            .into_iter()
            .filter_map(|(key, s)| {
                // Only the daemon writes this file; a key it cannot have
                // written belongs to no configured target.
                let key = match key.parse::<PathKey>() {
                    Ok(key) => key,
                    Err(e) => {
                        tracing::warn!(error = %e, "a saved path is skipped");
                        return None;
                    }
                };
                let mut signature = PathSignature::of(&s.record.trace);
                signature.set_id(s.record.verdict.path_id.clone());
                Some((
                    key,
                    Entry {
                        since: s.since.unwrap_or(s.record.trace.started_at),
                        record: s.record,
                        signature,
                        changes: s.changes,
                        multipath: s.multipath,
                    },
                ))
            })
            .collect();
        Ok(Self {
            entries,
            dirty: false,
        })
    }

    /// Record a new trace of `key`; `record.verdict.path_id` becomes the
    /// route's id.
    pub fn apply(&mut self, key: &PathKey, mut record: TraceRecord) -> Applied {
        self.dirty = true;
        match self.entries.get_mut(key) {
            None => {
                let signature = PathSignature::of(&record.trace);
                record.verdict.path_id = signature.id().to_string();
                self.entries.insert(
                    key.clone(),
                    Entry {
                        since: record.trace.started_at,
                        multipath: record.multipath.clone(),
                        record,
                        signature,
                        changes: 0,
                    },
                );
                Applied {
                    changed: false,
                    changes: 0,
                }
            }
            Some(entry) => {
                let route_changed = match entry.signature.compare(&record.trace) {
                    RouteComparison::Same => {
                        entry.signature.absorb(&record.trace);
                        false
                    }
                    RouteComparison::Changed { .. } => {
                        entry.signature = PathSignature::of(&record.trace);
                        true
                    }
                };
                let set_changed = match (&record.multipath, &entry.multipath) {
                    (Some(new), Some(old)) => new.set_id != old.set_id,
                    _ => false,
                };
                if let Some(m) = &record.multipath {
                    entry.multipath = Some(m.clone());
                }
                let changed = route_changed || set_changed;
                entry.changes += u64::from(changed);
                record.verdict.path_id = entry.signature.id().to_string();
                if changed || !same_state(&entry.record, &record) {
                    entry.since = record.trace.started_at;
                }
                entry.record = record;
                Applied {
                    changed,
                    changes: entry.changes,
                }
            }
        }
    }

    /// The last record of a key.
    #[must_use]
    pub fn latest(&self, key: &PathKey) -> Option<&TraceRecord> {
        self.entries.get(key).map(|e| &e.record)
    }

    /// The last enumeration of a key's load-balanced paths.
    #[must_use]
    pub fn multipath(&self, key: &PathKey) -> Option<&Multipath> {
        self.entries.get(key).and_then(|e| e.multipath.as_deref())
    }

    /// When the current state of a key began: the start of the first trace
    /// since which its route, class and foreign countries are unchanged.
    #[must_use]
    pub fn since(&self, key: &PathKey) -> Option<Timestamp> {
        self.entries.get(key).map(|e| e.since)
    }

    /// Every key with its last record and change count.
    pub fn iter(&self) -> impl Iterator<Item = (&PathKey, &TraceRecord, u64)> {
        self.entries.iter().map(|(k, e)| (k, &e.record, e.changes))
    }

    /// Forget keys `keep` does not accept (targets removed by a reload).
    pub fn retain(&mut self, keep: impl Fn(&PathKey) -> bool) {
        let before = self.entries.len();
        self.entries.retain(|k, _| keep(k));
        self.dirty |= self.entries.len() != before;
    }

    /// Save to the state directory if anything changed since the last
    /// save.
    ///
    /// # Errors
    /// The file cannot be written (the old one stays; the next save tries
    /// again).
    pub fn save(&mut self, files: &StateFiles) -> Result<(), SaveError> {
        if !self.dirty {
            return Ok(());
        }
        let saved = Saved {
            paths: self
                .entries
                .iter()
                .map(|(k, e)| {
                    (
                        k.to_string(),
                        SavedPath {
                            record: e.record.clone(),
                            changes: e.changes,
                            since: Some(e.since),
                            multipath: e.multipath.clone(),
                        },
                    )
                })
                .collect(),
        };
        files.save(STATE_FILE, VERSION, &saved)?;
        self.dirty = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::rules::tests::record;
    use crate::model::{PathFamily, VerdictClass};
    use crate::state_dir::{SaveMetrics, StateDir};

    #[test]
    fn keys_are_saved_as_their_text_in_text_order_and_read_back() {
        let base = tempfile::tempdir().unwrap();
        let dir = StateDir::open(base.path(), SaveMetrics::default()).unwrap();
        let mut book = PathBook::default();
        let keys = [
            PathKey::of_family("gov", PathFamily::Ipv6),
            PathKey::whole("gov-x"),
            PathKey::of_family("gov", PathFamily::Ipv4),
            PathKey::whole("gov"),
        ];
        for key in &keys {
            book.apply(key, record(VerdictClass::Domestic, false, &["LS"], "t1"));
        }
        book.save(dir.files()).unwrap();
        let text = std::fs::read_to_string(base.path().join(STATE_FILE)).unwrap();
        let at: Vec<usize> = ["gov", "gov-x", "gov/ipv4", "gov/ipv6"]
            .iter()
            .map(|k| text.find(&format!("\"{k}\":{{")).expect(k))
            .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{at:?}");

        let again = PathBook::load(dir.files()).unwrap();
        for key in &keys {
            assert!(again.latest(key).is_some(), "{key}");
        }
        let gov: Vec<String> = again
            .iter()
            .filter(|(k, _, _)| k.belongs_to("gov"))
            .map(|(k, _, _)| k.to_string())
            .collect();
        assert_eq!(gov, ["gov", "gov/ipv4", "gov/ipv6"]);
    }

    #[test]
    fn a_state_keeps_its_start_until_route_or_class_change_and_across_a_restart() {
        let base = tempfile::tempdir().unwrap();
        let dir = StateDir::open(base.path(), SaveMetrics::default()).unwrap();
        let key = PathKey::whole("gov");
        let mut book = PathBook::default();
        let first = record(VerdictClass::Domestic, false, &["LS", "LS"], "t1");
        let started = first.trace.started_at;
        book.apply(&key, first);
        book.apply(
            &key,
            record(VerdictClass::Domestic, false, &["LS", "LS"], "t2"),
        );
        assert_eq!(
            book.since(&key),
            Some(started),
            "the same route keeps its start"
        );
        let moved = record(
            VerdictClass::ForeignTransit,
            true,
            &["LS", "ZA", "LS"],
            "t3",
        );
        let moved_at = moved.trace.started_at;
        assert_ne!(moved_at, started);
        book.apply(&key, moved);
        assert_eq!(
            book.since(&key),
            Some(moved_at),
            "a new route starts a new state"
        );
        book.save(dir.files()).unwrap();
        let again = PathBook::load(dir.files()).unwrap();
        assert_eq!(again.since(&key), Some(moved_at), "kept across a restart");
    }

    #[test]
    fn a_changed_set_of_load_balanced_paths_is_a_route_change_its_order_is_not() {
        use crate::analysis::multipath::{multipath, Enumeration};
        use crate::model::multipath::MultipathStop;
        let base = tempfile::tempdir().unwrap();
        let dir = StateDir::open(base.path(), SaveMetrics::default()).unwrap();
        let key = PathKey::whole("gov");
        // Each hop's responder among its addresses, which path ids hash.
        let answered = |mut r: TraceRecord| {
            for h in &mut r.trace.hops {
                h.addrs = h.addr.into_iter().collect();
            }
            r
        };
        let home = answered(record(VerdictClass::Domestic, false, &["LS", "LS"], "t1"));
        let via_za = answered(record(
            VerdictClass::ForeignTransit,
            true,
            &["LS", "ZA", "LS"],
            "t1",
        ));
        let run = Enumeration {
            started_at: home.trace.started_at,
            port: 33434,
            flows: 11,
            silent_flows: 0,
            stop: MultipathStop::Confident,
        };
        let with = |paths: &[&TraceRecord]| {
            let mut r = record(VerdictClass::Domestic, false, &["LS", "LS"], "t2");
            let paths: Vec<(Vec<u16>, TraceRecord)> =
                paths.iter().map(|p| (vec![40_000], (*p).clone())).collect();
            r.multipath = Some(Box::new(multipath(run, &paths)));
            r
        };
        let mut book = PathBook::default();
        book.apply(&key, with(&[&home, &via_za]));
        // The same two paths found the other way round; then a record
        // without an enumeration: no change, the enumeration is kept.
        let same = book.apply(&key, with(&[&via_za, &home]));
        assert!(!same.changed);
        let plain = record(VerdictClass::Domestic, false, &["LS", "LS"], "t3");
        assert!(!book.apply(&key, plain).changed);
        assert_eq!(book.multipath(&key).unwrap().paths.len(), 2);
        // The ZA path gone: a route change, counted.
        let fewer = book.apply(&key, with(&[&home]));
        assert!(fewer.changed);
        assert_eq!(fewer.changes, 1);
        // Kept across a restart: the same set then is no change.
        book.save(dir.files()).unwrap();
        let mut again = PathBook::load(dir.files()).unwrap();
        assert_eq!(again.multipath(&key).unwrap().paths.len(), 1);
        assert!(!again.apply(&key, with(&[&home])).changed);
        assert!(again.apply(&key, with(&[&home, &via_za])).changed);
    }
}

//! The latest stored trace of every path, as of a moment: what the store
//! says each path looked like then (`transitwatch whatif`).
//!
//! Read on the `(path_key, started_at)` index: one seek finds the next path
//! key after the last one read, one more its latest trace at or before the
//! moment. No statement walks the table, and one decoded record is held at
//! a time: the cost grows with the number of paths (two index seeks each),
//! not with the history.

use super::{sqlite, RawRow, Store, StoreError, StoredTrace, COLUMNS};
use rusqlite::{params, OptionalExtension};

/// The next path key after `?1`, from the index.
const NEXT_KEY: &str = "SELECT path_key FROM traces WHERE path_key > ?1 ORDER BY path_key LIMIT 1";

/// The latest trace of path `?1` that started at or before `?2`.
fn latest_sql() -> String {
    format!(
        "SELECT {COLUMNS} FROM traces WHERE path_key = ?1 AND started_at <= ?2 \
         ORDER BY started_at DESC, id DESC LIMIT 1"
    )
}

impl Store {
    /// The latest trace of every path that has one starting at or before
    /// `at` (Unix seconds; every path's latest when `None`), in path key
    /// order, handed to `each` one at a time; of two traces that started
    /// the same second, the one stored last. A row that cannot be decoded
    /// is an `Err` item and the read goes on with the next path. Returns
    /// the number of paths handed over.
    ///
    /// # Errors
    /// `SQLite` fails.
    pub fn latest_per_path(
        &self,
        at: Option<i64>,
        mut each: impl FnMut(Result<StoredTrace, StoreError>),
    ) -> Result<u64, StoreError> {
        let failed = sqlite(&self.path, "cannot read the latest traces");
        let at = at.unwrap_or(i64::MAX);
        let mut next_key = self.conn.prepare_cached(NEXT_KEY).map_err(&failed)?;
        let mut latest = self.conn.prepare_cached(&latest_sql()).map_err(&failed)?;
        let mut key = String::new();
        let mut paths = 0;
        loop {
            let next: Option<String> = next_key
                .query_row([&key], |row| row.get(0))
                .optional()
                .map_err(&failed)?;
            let Some(next) = next else { break };
            let row = latest
                .query_row(params![next, at], RawRow::from_row)
                .optional()
                .map_err(&failed)?;
            if let Some(raw) = row {
                paths += 1;
                each(raw.decode(&self.path));
            }
            key = next;
        }
        Ok(paths)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both statements seek the path key index; neither scans the table
    /// nor sorts.
    #[test]
    fn the_reads_seek_the_path_key_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        for sql in [NEXT_KEY.to_string(), latest_sql()] {
            let mut stmt = store
                .conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap();
            let values: Vec<rusqlite::types::Value> = vec!["gov".to_string().into(), 1.into()];
            let n = stmt.parameter_count();
            let plan: Vec<String> = stmt
                .query_map(
                    rusqlite::params_from_iter(values.into_iter().take(n)),
                    |row| row.get::<_, String>(3),
                )
                .and_then(Iterator::collect)
                .unwrap();
            let plan = plan.join("; ");
            assert!(plan.contains("traces_path_key"), "{sql}: {plan}");
            assert!(!plan.contains("TEMP B-TREE"), "{sql}: {plan}");
            assert!(!plan.contains("SCAN"), "{sql}: {plan}");
        }
        let mut n = 0;
        assert_eq!(store.latest_per_path(None, |_| n += 1).unwrap(), 0);
        assert_eq!(n, 0);
    }
}

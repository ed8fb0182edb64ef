//! Whether the history database is intact, and when it is not, how many
//! stored traces can no longer be read.
//!
//! [`Store::check`] runs `PRAGMA quick_check` (every page of every b-tree
//! is read and its structure checked, without comparing the indexes with
//! the table: about 1.5 s for a 1 GiB database whose pages are in the page
//! cache, one read of the file otherwise). When it reports a problem, the
//! damage is measured:
//!
//! - every trace id still listed is collected from each of the three
//!   indexes (each holds every id, on pages of its own, so a damaged table
//!   page leaves them readable) and from a walk of the table, each up to
//!   its first damaged page;
//! - each of those ids is then looked up in the table and its row decoded
//!   as an export would: a lookup that meets a damaged page (a leaf, or an
//!   interior page above hundreds of rows) fails, so the rows on it and
//!   under it are counted as unreadable.
//!
//! The count is exact when one index could be read whole; when every index
//! is damaged too it covers only the ids that could still be listed
//! ([`Damage::complete`] is false) and is a lower bound.

use super::{sqlite, Store, StoreError};
use rusqlite::types::Value;
use std::fmt;
use std::path::PathBuf;

/// At most this many problems are taken from `quick_check`.
const PROBLEMS: u32 = 20;

/// The indexes of the `traces` table; each lists every trace id.
const INDEXES: [&str; 3] = ["traces_started_at", "traces_target", "traces_path_key"];

/// What [`Store::check`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Integrity {
    /// `quick_check` says `ok`.
    Intact,
    /// Something is broken; how much is lost is measured.
    Damaged(Damage),
}

/// A damaged history database and what it costs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// The database file.
    pub path: PathBuf,
    /// What `quick_check` reported (at most 20 lines), or the error that
    /// stopped it.
    pub problems: Vec<String>,
    /// Stored traces whose ids are still listed.
    pub traces: u64,
    /// Of those, the traces that cannot be read back.
    pub unreadable: u64,
    /// Whether one index listed every id (else `traces` and `unreadable`
    /// are lower bounds).
    pub complete: bool,
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        if self.complete {
            write!(
                f,
                "{path}: the database is damaged: {} of {} stored traces cannot be read",
                self.unreadable, self.traces
            )?;
        } else {
            write!(
                f,
                "{path}: the database is damaged: at least {} stored traces cannot be read \
                 ({} still can; its indexes are damaged too, so the total is not known)",
                self.unreadable,
                self.traces - self.unreadable
            )?;
        }
        if let Some(first) = self.problems.first() {
            write!(f, " (quick_check: {}", first.trim())?;
            if self.problems.len() > 1 {
                // `quick_check` stops listing at its limit: no count.
                write!(f, "; and more")?;
            }
            write!(f, ")")?;
        }
        Ok(())
    }
}

impl Store {
    /// Check the database with `PRAGMA quick_check` and, when it finds
    /// damage, count the stored traces that can no longer be read (see the
    /// module docs). Read-only: nothing is repaired.
    ///
    /// # Errors
    /// `SQLite` fails other than on a damaged page (I/O error, locked).
    pub fn check(&self) -> Result<Integrity, StoreError> {
        let problems = match self.quick_check() {
            Ok(lines) if lines.len() == 1 && lines[0] == "ok" => return Ok(Integrity::Intact),
            // One problem a line, without the `*** in database main ***`
            // headings some versions put first.
            Ok(lines) => lines
                .iter()
                .flat_map(|l| l.lines())
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with("***"))
                .map(str::to_string)
                .collect(),
            // Newer versions stop at some damage with an error.
            Err(StoreError::Sqlite { source, .. }) if super::is_damage(&source) => {
                vec![source.to_string()]
            }
            Err(e) => return Err(e),
        };
        let (keys, complete) = self.listed("1", &[]);
        let unreadable = keys.iter().filter(|&&(_, id)| !self.readable(id)).count();
        Ok(Integrity::Damaged(Damage {
            path: self.path.clone(),
            problems,
            traces: keys.len() as u64,
            unreadable: unreadable as u64,
            complete,
        }))
    }

    fn quick_check(&self) -> Result<Vec<String>, StoreError> {
        let what = "cannot check the database";
        let mut stmt = self
            .conn
            .prepare(&format!("PRAGMA quick_check({PROBLEMS})"))
            .map_err(sqlite(&self.path, what))?;
        let lines = stmt
            .query_map([], |row| row.get(0))
            .and_then(Iterator::collect)
            .map_err(sqlite(&self.path, what))?;
        Ok(lines)
    }

    /// The (start time, id) of every trace `filter` selects that the table
    /// or one of its indexes still lists, in scan order, and whether one
    /// index listed them all. Each source is walked up to the first page it
    /// cannot read; what it listed before counts.
    pub(super) fn listed(&self, filter: &str, values: &[Value]) -> (Vec<(i64, i64)>, bool) {
        let mut keys = Vec::new();
        let mut complete = false;
        let sources = INDEXES
            .iter()
            .map(|index| format!("INDEXED BY {index}"))
            .chain(std::iter::once("NOT INDEXED".to_string()));
        for (n, source) in sources.enumerate() {
            let sql = format!("SELECT started_at, id FROM traces {source} WHERE {filter}");
            let whole = self.conn.prepare(&sql).and_then(|mut stmt| {
                let mut rows = stmt.query(rusqlite::params_from_iter(values))?;
                while let Some(row) = rows.next()? {
                    keys.push((row.get(0)?, row.get(1)?));
                }
                Ok(())
            });
            if whole.is_ok() && n < INDEXES.len() {
                complete = true;
            }
        }
        keys.sort_unstable();
        keys.dedup();
        (keys, complete)
    }

    /// Whether the row of trace `id` can be read and decoded.
    fn readable(&self, id: i64) -> bool {
        self.row(id).is_ok_and(|raw| raw.decode(&self.path).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damage_is_one_line_naming_the_file_and_the_count() {
        let mut damage = Damage {
            path: PathBuf::from("/var/lib/transitwatch/transitwatch.db"),
            problems: vec![
                "Tree 3 page 540: btreeInitPage() returns error code 11".to_string(),
                "Page 8: never used".to_string(),
            ],
            traces: 1500,
            unreadable: 529,
            complete: true,
        };
        assert_eq!(
            damage.to_string(),
            "/var/lib/transitwatch/transitwatch.db: the database is damaged: 529 of 1500 \
             stored traces cannot be read (quick_check: Tree 3 page 540: btreeInitPage() \
             returns error code 11; and more)"
        );
        damage.complete = false;
        damage.problems.clear();
        assert_eq!(
            damage.to_string(),
            "/var/lib/transitwatch/transitwatch.db: the database is damaged: at least 529 \
             stored traces cannot be read (971 still can; its indexes are damaged too, so the \
             total is not known)"
        );
    }
}

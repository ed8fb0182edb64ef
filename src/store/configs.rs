//! The configuration files the daemon ran with, kept content-addressed in
//! the history, so every stored verdict can be made again
//! (`transitwatch history config`, then `transitwatch analyze --config`).
//!
//! **Table.** `configs` (schema version 2) holds one row per distinct file
//! content: its SHA-256 (lower-case hex, the key, the same text every
//! trace's `config_sha256` column names), the exact bytes, and when they
//! were first stored. The daemon hands the file to the store writer when it
//! starts and at every accepted reload ([`super::writer::HistoryWriter::keep_config`]);
//! content already stored is not written again.
//!
//! **Checks on write** ([`Store::put_config`]): the bytes must hash to the
//! SHA-256 they are stored under ([`StoreError::ConfigMismatch`]) and be at
//! most [`MAX_CONFIG_BYTES`] ([`StoreError::ConfigTooLarge`]); nothing is
//! stored otherwise. **On read** ([`Store::config`]) the bytes are hashed
//! again, so a damaged row is reported, never handed out as the
//! configuration it claims to be.
//!
//! **Lookup.** By the full SHA-256 or a unique prefix of at least
//! [`MIN_PREFIX`] hex digits, among the stored configurations and those
//! that traces name. A store written before configurations were kept (a
//! version 1 database, or traces older than the upgrade) has traces whose
//! configuration is named but not stored: [`ConfigLookupError::NotStored`]
//! says so, with the traces that name it.
//!
//! **Retention.** A configuration goes with the last trace that names it
//! ([`Store::prune_configs`], run by the writer after retention), except
//! the one in force, which no trace may name yet.

use super::{sqlite, Store, StoreError};
use rusqlite::{params, OptionalExtension};
use sha2::{Digest, Sha256};
use std::path::PathBuf;

/// The largest configuration stored, in bytes (1 MiB, the most
/// [`crate::config::Config::load`] reads).
pub const MAX_CONFIG_BYTES: usize = 1 << 20;

/// The fewest hex digits of a SHA-256 a lookup accepts.
pub const MIN_PREFIX: usize = 8;

/// The table of schema version 2 (and the index that finds the traces of
/// one configuration).
pub(super) const SCHEMA_V2: &str = "
CREATE TABLE configs (
    sha256    TEXT    PRIMARY KEY NOT NULL,
    content   BLOB    NOT NULL,
    stored_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX traces_config ON traces (config_sha256);
";

/// A configuration file's exact bytes and their SHA-256, as the daemon
/// hands them to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigText {
    /// SHA-256 of `content`, lower-case hex, as the traces record it.
    pub sha256: String,
    /// The file's bytes.
    pub content: std::sync::Arc<[u8]>,
}

impl ConfigText {
    /// The text of a loaded configuration with the SHA-256 it was loaded
    /// with ([`Store::put_config`] checks that they agree).
    #[must_use]
    pub fn of(config: &crate::config::Config) -> Self {
        Self {
            sha256: config.sha256.clone(),
            content: std::sync::Arc::from(config.text.as_bytes()),
        }
    }
}

/// A configuration read back from the store (its bytes hash to `sha256`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredConfig {
    /// SHA-256 of `content`, lower-case hex.
    pub sha256: String,
    /// The file's bytes, exactly as the daemon read them.
    pub content: Vec<u8>,
    /// When it was first stored, Unix seconds.
    pub stored_at: i64,
}

/// One configuration the history knows of: stored, named by traces, or both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigUse {
    /// SHA-256 of the file, lower-case hex.
    pub sha256: String,
    /// Its size in bytes; `None` when it is named by traces but not stored.
    pub size: Option<u64>,
    /// When it was first stored, Unix seconds; `None` when it is not stored.
    pub stored_at: Option<i64>,
    /// The traces that name it.
    pub traces: u64,
    /// Start of the first and the last of those traces, Unix seconds.
    pub first: Option<i64>,
    /// See `first`.
    pub last: Option<i64>,
}

/// Why [`Store::config`] gives no configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigLookupError {
    /// Not a SHA-256 or a prefix of one long enough to look up.
    #[error("`{given}` is not a configuration SHA-256: give {MIN_PREFIX} to 64 hex digits")]
    NotASha {
        /// What was given.
        given: String,
    },
    /// Neither stored nor named by any trace.
    #[error("{}: no configuration {given} (neither stored nor named by a trace; `transitwatch history config --list` lists them)", .path.display())]
    Unknown {
        /// The database file.
        path: PathBuf,
        /// What was given.
        given: String,
    },
    /// The prefix names several configurations.
    #[error("{}: {given} is the start of {} configurations ({}): give more digits", .path.display(), .candidates.len(), .candidates.join(", "))]
    Ambiguous {
        /// The database file.
        path: PathBuf,
        /// What was given.
        given: String,
        /// The SHA-256s it starts.
        candidates: Vec<String>,
    },
    /// Traces name it, but its text was never stored: they were written
    /// before the history kept configurations.
    #[error("{}: configuration {sha256} is named by {traces} stored traces (from {first} to {last}, Unix seconds) but its text is not stored: they were written before transitwatch kept configurations in the history", .path.display())]
    NotStored {
        /// The database file.
        path: PathBuf,
        /// The full SHA-256.
        sha256: String,
        /// How many traces name it.
        traces: u64,
        /// Start of the first of them, Unix seconds.
        first: i64,
        /// Start of the last of them, Unix seconds.
        last: i64,
    },
    /// The stored bytes no longer hash to their key.
    #[error("{}: the stored configuration {sha256} is damaged: its bytes hash to {actual}", .path.display())]
    Damaged {
        /// The database file.
        path: PathBuf,
        /// The key it is stored under.
        sha256: String,
        /// What its bytes hash to.
        actual: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// SHA-256 of `bytes`, lower-case hex.
fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Store {
    /// Whether this database has the `configs` table (schema 2 and later).
    fn keeps_configs(&self) -> bool {
        self.schema >= 2
    }

    /// Store `content` under `sha256` unless it is stored already; returns
    /// whether it was new.
    ///
    /// # Errors
    /// [`StoreError::ConfigMismatch`] when the bytes do not hash to
    /// `sha256`, [`StoreError::ConfigTooLarge`] above [`MAX_CONFIG_BYTES`],
    /// or `SQLite` fails.
    pub fn put_config(
        &mut self,
        sha256: &str,
        content: &[u8],
        now_unix: i64,
    ) -> Result<bool, StoreError> {
        let actual = sha256_hex(content);
        if actual != sha256 {
            return Err(StoreError::ConfigMismatch {
                path: self.path.clone(),
                claimed: sha256.to_string(),
                actual,
            });
        }
        if content.len() > MAX_CONFIG_BYTES {
            return Err(StoreError::ConfigTooLarge {
                path: self.path.clone(),
                sha256: actual,
                size: content.len() as u64,
            });
        }
        let added = self
            .conn
            .execute(
                "INSERT OR IGNORE INTO configs (sha256, content, stored_at) VALUES (?1, ?2, ?3)",
                params![actual, content, now_unix],
            )
            .map_err(sqlite(&self.path, "cannot store the configuration"))?;
        Ok(added > 0)
    }

    /// The configuration whose SHA-256 is or starts with `sha_or_prefix`
    /// (any case, at least [`MIN_PREFIX`] hex digits, unique).
    ///
    /// # Errors
    /// See [`ConfigLookupError`].
    pub fn config(&self, sha_or_prefix: &str) -> Result<StoredConfig, ConfigLookupError> {
        let given = sha_or_prefix.trim().to_ascii_lowercase();
        if !(MIN_PREFIX..=64).contains(&given.len())
            || !given.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(ConfigLookupError::NotASha {
                given: sha_or_prefix.to_string(),
            });
        }
        let candidates = self.candidates(&given)?;
        let sha256 = match candidates.as_slice() {
            [] => {
                return Err(ConfigLookupError::Unknown {
                    path: self.path.clone(),
                    given,
                })
            }
            [one] => one.clone(),
            _ => {
                return Err(ConfigLookupError::Ambiguous {
                    path: self.path.clone(),
                    given,
                    candidates,
                })
            }
        };
        let p = &self.path;
        let row: Option<(Vec<u8>, i64)> = if self.keeps_configs() {
            self.conn
                .query_row(
                    "SELECT content, stored_at FROM configs WHERE sha256 = ?1",
                    [&sha256],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()
                .map_err(sqlite(p, "cannot read a configuration"))?
        } else {
            None
        };
        let Some((content, stored_at)) = row else {
            let (traces, first, last): (i64, Option<i64>, Option<i64>) = self
                .conn
                .query_row(
                    "SELECT count(*), min(started_at), max(started_at) FROM traces
                     WHERE config_sha256 = ?1",
                    [&sha256],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                )
                .map_err(sqlite(p, "cannot count the traces of a configuration"))?;
            return Err(ConfigLookupError::NotStored {
                path: p.clone(),
                sha256,
                traces: u64::try_from(traces).unwrap_or(0),
                first: first.unwrap_or(0),
                last: last.unwrap_or(0),
            });
        };
        let actual = sha256_hex(&content);
        if actual != sha256 {
            return Err(ConfigLookupError::Damaged {
                path: p.clone(),
                sha256,
                actual,
            });
        }
        Ok(StoredConfig {
            sha256,
            content,
            stored_at,
        })
    }

    /// The distinct SHA-256s, stored or named by traces, that start with
    /// `prefix` (lower-case hex), in order; at most a few.
    fn candidates(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        // Hex digits sort below `g`: every key starting with `prefix` lies
        // in [prefix, prefix + "g"), a range both indexes can seek.
        let end = format!("{prefix}g");
        let traces = "SELECT DISTINCT config_sha256 FROM traces
                      WHERE config_sha256 >= ?1 AND config_sha256 < ?2";
        let sql = if self.keeps_configs() {
            format!(
                "SELECT sha256 FROM configs WHERE sha256 >= ?1 AND sha256 < ?2
                 UNION {traces} ORDER BY 1 LIMIT 10"
            )
        } else {
            format!("{traces} ORDER BY 1 LIMIT 10")
        };
        self.conn
            .prepare(&sql)
            .and_then(|mut stmt| {
                stmt.query_map(params![prefix, end], |row| row.get(0))?
                    .collect::<rusqlite::Result<Vec<String>>>()
            })
            .map_err(sqlite(&self.path, "cannot look the configuration up"))
    }

    /// Every configuration the history knows of, stored or named by
    /// traces, with the count and time span of its traces; ordered by
    /// first trace (stored ones without traces last, by when they were
    /// stored).
    ///
    /// # Errors
    /// `SQLite` fails.
    pub fn configs(&self) -> Result<Vec<ConfigUse>, StoreError> {
        let traces = "SELECT config_sha256 AS sha256, NULL AS size, NULL AS stored_at,
                             count(*) AS traces, min(started_at) AS first, max(started_at) AS last
                      FROM traces WHERE config_sha256 IS NOT NULL GROUP BY config_sha256";
        let union = if self.keeps_configs() {
            format!(
                "SELECT sha256, length(content) AS size, stored_at, 0 AS traces,
                        NULL AS first, NULL AS last FROM configs
                 UNION ALL {traces}"
            )
        } else {
            traces.to_string()
        };
        let sql = format!(
            "SELECT sha256, max(size), max(stored_at), sum(traces), min(first), max(last)
             FROM ({union}) GROUP BY sha256
             ORDER BY min(first) IS NULL, min(first), max(stored_at), sha256"
        );
        self.conn
            .prepare(&sql)
            .and_then(|mut stmt| {
                stmt.query_map([], |row| {
                    Ok(ConfigUse {
                        sha256: row.get(0)?,
                        size: row
                            .get::<_, Option<i64>>(1)?
                            .and_then(|n| u64::try_from(n).ok()),
                        stored_at: row.get(2)?,
                        traces: u64::try_from(row.get::<_, i64>(3)?).unwrap_or(0),
                        first: row.get(4)?,
                        last: row.get(5)?,
                    })
                })?
                .collect()
            })
            .map_err(sqlite(&self.path, "cannot list the configurations"))
    }

    /// Delete the stored configurations no trace names any more, except
    /// `keep` (the one in force); returns how many went.
    ///
    /// # Errors
    /// `SQLite` fails.
    pub fn prune_configs(&mut self, keep: Option<&str>) -> Result<u64, StoreError> {
        let deleted = self
            .conn
            .execute(
                "DELETE FROM configs WHERE sha256 IS NOT ?1 AND NOT EXISTS
                    (SELECT 1 FROM traces WHERE traces.config_sha256 = configs.sha256)",
                [keep],
            )
            .map_err(sqlite(&self.path, "cannot delete unused configurations"))?;
        Ok(deleted as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_keyed_by_the_lower_case_hex_of_the_content() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}

//! The trace history: every trace record the daemon makes, in an embedded
//! `SQLite` database (rusqlite, SQLite bundled into the binary).
//!
//! One table, `traces`, holds one row per record: the full
//! `transitwatch.trace/1` record as JSON, the columns exports filter and
//! sort on (start time, target name, path key, class, violation, path id),
//! and what the record itself does not say about how it was made
//! ([`Provenance`]: the SHA-256 of the configuration file, the GeoIP
//! databases' types and build epochs, the path and SHA-256 of every other
//! location file (overrides, geofeeds, PeeringDB dump, host-name rules), the
//! transitwatch version; and the trace's duration and probe size). Row ids never repeat, also after
//! retention deleted older rows, so a trace id names one trace for good.
//! A second table, `configs` ([`configs`]), keeps the exact bytes of every
//! configuration file the daemon ran with, keyed by the SHA-256 the traces
//! name, so a stored verdict can be made again from the history alone.
//!
//! **Durability.** The database runs in WAL mode with `synchronous =
//! NORMAL`: a record is in the write-ahead log, handed to the operating
//! system, before [`Store::insert`] returns, so a killed process (even
//! `kill -9`) loses at most the record being written (with
//! [`Store::insert_batch`], the records being written together, one
//! transaction); each record is one statement, and is either complete or
//! absent. A power failure may lose the last records committed before it
//! (WAL with
//! `NORMAL` never corrupts the database, it only gives up the newest
//! transactions), which is the usual trade for not waiting on the disk at
//! every trace.
//!
//! **Schema.** Versioned with `PRAGMA user_version` (now
//! [`SCHEMA_VERSION`]); a newer database is refused rather than misread.
//! Version 1 had no `configs` table: opened for writing it is upgraded in
//! place (the table and an index of the traces by configuration are
//! added, in one transaction); opened read-only (exports) it is read as it
//! is, and its traces' configurations are reported as not stored.
//! The database is created with `auto_vacuum = INCREMENTAL`, so pages freed
//! by retention are given back to the file system.
//!
//! **Reading** is streaming: [`Store::scan`] fetches [`PAGE`] rows at a
//! time in (start time, id) order, so memory does not grow with the
//! history, and no read transaction stays open for long (the writer's WAL
//! checkpoints are never held back by a slow export).
//!
//! **Retention** ([`Retention`], applied by [`Store::prune`]): rows older
//! than `max_age` are deleted; then, while the bytes the database's pages
//! hold (page count less free pages, times page size: the data and its
//! indexes, without the `-wal` file, which checkpoints keep to a few MiB)
//! exceed `max_size`, the oldest rows are deleted. Freed pages are returned
//! to the file system with an incremental vacuum. A stored configuration
//! goes with the last trace that names it ([`Store::prune_configs`]).
//!
//! The latest trace of every path as of a moment
//! ([`Store::latest_per_path`], `latest.rs`) is read by index seeks, two
//! per path, whatever the length of the history.
//!
//! **Integrity** ([`Store::check`], see [`integrity`]): `PRAGMA
//! quick_check` at the daemon's start and before an export; a damaged
//! database is reported with the number of stored traces that can no
//! longer be read. A scan that meets a damaged page lists what is left
//! from the table and every index that can still list it and reads it row
//! by row, so every unreadable trace is an `Err` item rather than the end
//! of the scan.
//!
//! [`writer`] runs a store on its own thread for the daemon (and stops
//! writing to a damaged database); [`StoreMetrics`] counts what became of
//! the records it was handed and publishes the database's health.

mod configs;
mod integrity;
mod latest;
mod metrics;
mod query;
mod timeline;
pub mod writer;

pub use configs::{
    ConfigLookupError, ConfigText, ConfigUse, StoredConfig, MAX_CONFIG_BYTES, MIN_PREFIX,
};
pub use integrity::{Damage, Integrity};
pub use metrics::StoreMetrics;
pub use query::{parse_time, InvalidTime, Query};
pub use timeline::{ProvenanceCount, TimelineRow};

use crate::model::{PathKey, TraceRecord};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The schema version this build reads and writes.
pub const SCHEMA_VERSION: i64 = 2;

/// The oldest schema version this build still reads (read-only opening
/// reads it as it is; opening for writing upgrades it).
pub const OLDEST_SCHEMA_VERSION: i64 = 1;

/// Rows fetched per query while scanning.
pub const PAGE: usize = 256;

/// How long a statement waits for a lock held by another connection.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Rows deleted per statement by retention (keeps each write short).
const PRUNE_BATCH: i64 = 5000;

const SCHEMA: &str = "
CREATE TABLE traces (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at    INTEGER NOT NULL,
    target        TEXT    NOT NULL,
    path_key      TEXT    NOT NULL,
    class         TEXT    NOT NULL,
    violation     INTEGER NOT NULL,
    reached       INTEGER NOT NULL,
    path_id       TEXT    NOT NULL,
    config_sha256 TEXT,
    geoip         TEXT    NOT NULL,
    version       TEXT    NOT NULL,
    duration_ms   INTEGER,
    packet_size   INTEGER,
    record        TEXT    NOT NULL
);
CREATE INDEX traces_started_at ON traces (started_at);
CREATE INDEX traces_target ON traces (target, started_at);
CREATE INDEX traces_path_key ON traces (path_key, started_at);
";

/// Why the store could not be used. Every variant names the database file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// There is no database at the path (read-only opening never creates one).
    #[error("{}: no trace store here (the daemon creates it when it first runs)", .path.display())]
    Missing {
        /// The database file.
        path: PathBuf,
    },
    /// The folder of the database could not be created.
    #[error("{}: cannot create its folder: {source}", .path.display())]
    Folder {
        /// The database file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The database file could not be created private (0600).
    #[error("{}: cannot create it: {source}", .path.display())]
    Create {
        /// The database file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The file is a database of something else.
    #[error("{}: not a transitwatch trace store ({why})", .path.display())]
    Foreign {
        /// The database file.
        path: PathBuf,
        /// What gave it away.
        why: String,
    },
    /// The database was written by a newer transitwatch.
    #[error("{}: schema version {found} is newer than this transitwatch reads ({SCHEMA_VERSION}); upgrade transitwatch", .path.display())]
    Newer {
        /// The database file.
        path: PathBuf,
        /// Its `user_version`.
        found: i64,
    },
    /// `SQLite` failed (not a database, disk full, locked, I/O error...).
    #[error("{}: {what}: {source}", .path.display())]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// What `SQLite` said.
        source: rusqlite::Error,
    },
    /// A configuration's bytes do not hash to the SHA-256 it was to be
    /// stored under.
    #[error("{}: configuration {claimed} not stored: its bytes hash to {actual}", .path.display())]
    ConfigMismatch {
        /// The database file.
        path: PathBuf,
        /// The SHA-256 it was to be stored under.
        claimed: String,
        /// What its bytes hash to.
        actual: String,
    },
    /// A configuration larger than [`MAX_CONFIG_BYTES`].
    #[error("{}: configuration {sha256} not stored: {size} bytes is over the {MAX_CONFIG_BYTES}-byte maximum", .path.display())]
    ConfigTooLarge {
        /// The database file.
        path: PathBuf,
        /// Its SHA-256.
        sha256: String,
        /// Its size in bytes.
        size: u64,
    },
    /// A record could not be encoded, or a stored one cannot be read back.
    #[error("{}: trace {id}: {message}", .path.display())]
    Record {
        /// The database file.
        path: PathBuf,
        /// The trace id (0 before it was stored).
        id: i64,
        /// What is wrong.
        message: String,
    },
}

impl StoreError {
    /// Whether `SQLite` found a damaged page (`SQLITE_CORRUPT`) or a file
    /// that is not a database where one was (`SQLITE_NOTADB`).
    #[must_use]
    pub fn is_damage(&self) -> bool {
        matches!(self, Self::Sqlite { source, .. } if is_damage(source))
    }
}

/// Whether `SQLite` met a damaged page or a file that is not a database.
fn is_damage(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
    )
}

/// One GeoIP database in force when a trace was located.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeoIpDatabase {
    /// The detected record layout (`city`, `asn`, ...), as in the metrics.
    pub kind: String,
    /// Metadata `database_type`, e.g. `GeoLite2-City`.
    #[serde(rename = "type")]
    pub database_type: String,
    /// Metadata `build_epoch`, Unix seconds.
    pub build_epoch: u64,
    /// Who made it (`MaxMind`, `DB-IP`, ...); absent in rows written
    /// before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    /// SHA-256 (lower-case hex) of the file; absent in rows written before
    /// it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

impl GeoIpDatabase {
    /// The databases of an opened [`crate::geo::GeoDb`].
    #[must_use]
    pub fn of(infos: &[crate::geo::DatabaseInfo]) -> Vec<Self> {
        infos
            .iter()
            .map(|db| Self {
                kind: db.schema.as_str().to_string(),
                database_type: db.database_type.clone(),
                build_epoch: db.build_epoch,
                vendor: Some(db.vendor.to_string()),
                sha256: Some(db.sha256.clone()),
            })
            .collect()
    }
}

/// A location file other than an MMDB in force when a trace was located:
/// the operator's overrides, a geofeed, a PeeringDB dump, host-name rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocationFile {
    /// `overrides`, `geofeed`, `peeringdb` or `hostname_rules`
    /// ([`crate::geo::LocationFileKind`]).
    pub kind: String,
    /// The path it was read from (lossy where it is not UTF-8).
    pub path: String,
    /// SHA-256 (lower-case hex) of the bytes that were parsed.
    pub sha256: String,
}

impl LocationFile {
    /// The location files of an opened [`crate::geo::GeoDb`]
    /// ([`crate::geo::GeoDb::location_files`]).
    #[must_use]
    pub fn of<'a>(files: impl IntoIterator<Item = &'a crate::geo::LoadedFile>) -> Vec<Self> {
        files
            .into_iter()
            .map(|f| Self {
                kind: f.kind.as_str().to_string(),
                path: f.path.to_string_lossy().into_owned(),
                sha256: f.sha256.clone(),
            })
            .collect()
    }
}

/// What produced a record, besides the trace itself: the same for every
/// trace of one configuration generation.
///
/// **Stored** in the `geoip` column as one JSON list (the schema predates
/// the location files and is unchanged): the databases first, each
/// `{"kind", "type", "build_epoch", "vendor", "sha256"}` (the last two since
/// they were recorded), then the location files, each `{"kind", "path",
/// "sha256"}`. An entry with a `type` is a database, any other a file, so a
/// row written before files were recorded (a list of databases only) reads
/// as it always did, with no files, and older database entries read
/// without vendor and fingerprint. Generations
/// are told apart by the column's text, so new file bytes (a reload) make a
/// new generation in reports. A transitwatch older than this cannot read
/// rows that list files (their entries lack `type`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// SHA-256 (hex) of the configuration file, when there was one.
    pub config_sha256: Option<String>,
    /// The GeoIP databases, in order of precedence.
    pub geoip: Vec<GeoIpDatabase>,
    /// The other location files: overrides, geofeeds in order, the
    /// PeeringDB dump, host-name rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub location_files: Vec<LocationFile>,
    /// The transitwatch version.
    pub version: String,
}

/// One entry of the `geoip` column, written with its fields in declaration
/// order (a list of databases alone is the text it always was).
#[derive(Serialize)]
#[serde(untagged)]
enum GeoIpEntry<'a> {
    Database(&'a GeoIpDatabase),
    File(&'a LocationFile),
}

/// The `geoip` column of `provenance` (see [`Provenance`]).
fn encode_geoip(provenance: &Provenance) -> serde_json::Result<String> {
    let entries: Vec<GeoIpEntry<'_>> = provenance
        .geoip
        .iter()
        .map(GeoIpEntry::Database)
        .chain(provenance.location_files.iter().map(GeoIpEntry::File))
        .collect();
    serde_json::to_string(&entries)
}

/// The databases and location files of a `geoip` column (see
/// [`Provenance`]); a list of databases only, as rows written before files
/// were recorded hold, has no files.
fn decode_geoip(text: &str) -> serde_json::Result<(Vec<GeoIpDatabase>, Vec<LocationFile>)> {
    let entries: Vec<serde_json::Map<String, serde_json::Value>> = serde_json::from_str(text)?;
    let (mut databases, mut files) = (Vec::new(), Vec::new());
    for entry in entries {
        // A database has a `type` (and, since they were recorded, a
        // `sha256` too); a location file has a `path` and no `type`.
        if entry.contains_key("type") {
            databases.push(serde_json::from_value(entry.into())?);
        } else {
            files.push(serde_json::from_value(entry.into())?);
        }
    }
    Ok((databases, files))
}

/// A record to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTrace {
    /// The path key (`name`, or `name/ipv4` and `name/ipv6` for a target
    /// traced in both families), stored as its text.
    pub path_key: PathKey,
    /// The record as the daemon published it.
    pub record: TraceRecord,
    /// How long the trace took.
    pub duration: Option<Duration>,
    /// Probe packet size in bytes.
    pub packet_size: Option<u16>,
    /// What produced it.
    pub provenance: std::sync::Arc<Provenance>,
}

/// A record read back from the store.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTrace {
    /// The trace id: increasing, never reused.
    pub id: i64,
    /// The path key.
    pub path_key: String,
    /// How long the trace took, in milliseconds.
    pub duration_ms: Option<u64>,
    /// Probe packet size in bytes.
    pub packet_size: Option<u16>,
    /// What produced it.
    pub provenance: Provenance,
    /// The record.
    pub record: TraceRecord,
}

/// How long and how much history is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retention {
    /// Delete traces that started longer ago than this.
    pub max_age: Option<Duration>,
    /// Delete the oldest traces while the pages in use exceed this many bytes.
    pub max_size: Option<u64>,
}

/// What [`Store::prune`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pruned {
    /// Traces deleted for their age.
    pub by_age: u64,
    /// Traces deleted for the size limit.
    pub by_size: u64,
    /// Bytes in use afterwards.
    pub bytes_in_use: u64,
}

/// An open trace store.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// The schema version of the open database: [`SCHEMA_VERSION`] once
    /// opened for writing, possibly older when opened read-only.
    schema: i64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Open the store at `path` for writing, creating the file (and its
    /// folder) and the schema when there is none.
    ///
    /// # Errors
    /// The folder cannot be created, the file is not a (transitwatch)
    /// database or is newer, or `SQLite` fails.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(folder).map_err(|source| StoreError::Folder {
                path: path.to_path_buf(),
                source,
            })?;
        }
        // The history is private whatever the umask: 0600 before SQLite
        // opens it, which gives its -wal and -shm files the same mode.
        crate::state_dir::private_database(path).map_err(|source| StoreError::Create {
            path: path.to_path_buf(),
            source,
        })?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(sqlite(path, "cannot open"))?;
        let mut store = Self {
            conn,
            path: path.to_path_buf(),
            schema: SCHEMA_VERSION,
        };
        store.configure()?;
        store.migrate()?;
        Ok(store)
    }

    /// Open an existing store for reading only (exports, the HTTP API).
    ///
    /// # Errors
    /// [`StoreError::Missing`] when there is no file; otherwise as
    /// [`Store::open`].
    pub fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::Missing {
                    path: path.to_path_buf(),
                })
            }
            Ok(meta) if !meta.is_file() => {
                return Err(StoreError::Foreign {
                    path: path.to_path_buf(),
                    why: "it is not a regular file".to_string(),
                })
            }
            // Other failures (no permission) are SQLite's to report.
            _ => {}
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(sqlite(path, "cannot open"))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(sqlite(path, "cannot set the busy timeout"))?;
        let mut store = Self {
            conn,
            path: path.to_path_buf(),
            schema: SCHEMA_VERSION,
        };
        let version = match store.schema_version() {
            // The first read of the file: a text file, an image... fail here.
            Err(StoreError::Sqlite { source, .. })
                if source.sqlite_error_code() == Some(rusqlite::ErrorCode::NotADatabase) =>
            {
                return Err(store.foreign("it is not an SQLite database"));
            }
            other => other?,
        };
        match version {
            0 => Err(store.foreign("it has no transitwatch schema")),
            OLDEST_SCHEMA_VERSION..=SCHEMA_VERSION => {
                store.schema = version;
                Ok(store)
            }
            found => Err(StoreError::Newer {
                path: store.path,
                found,
            }),
        }
    }

    /// Cache at most `kib` KiB of database pages (`PRAGMA cache_size`), for
    /// a connection that must stay small (one per HTTP stream).
    ///
    /// # Errors
    /// `SQLite` fails.
    pub fn limit_cache(&self, kib: u32) -> Result<(), StoreError> {
        self.conn
            .pragma_update(None, "cache_size", -i64::from(kib))
            .map_err(sqlite(&self.path, "cannot set the cache size"))
    }

    /// The database file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn configure(&self) -> Result<(), StoreError> {
        let p = &self.path;
        self.conn
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(sqlite(p, "cannot set the busy timeout"))?;
        // auto_vacuum only takes effect before the first table exists; on
        // an existing database this is a no-op.
        self.conn
            .pragma_update(None, "auto_vacuum", "INCREMENTAL")
            .map_err(sqlite(p, "cannot set auto_vacuum"))?;
        let mode: String = self
            .conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(sqlite(p, "cannot switch to WAL mode"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Record {
                path: p.clone(),
                id: 0,
                message: format!("the journal mode stays `{mode}`, WAL is needed"),
            });
        }
        self.conn
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(sqlite(p, "cannot set synchronous"))
    }

    fn schema_version(&self) -> Result<i64, StoreError> {
        self.conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(sqlite(&self.path, "cannot read the schema version"))
    }

    fn foreign(&self, why: &str) -> StoreError {
        StoreError::Foreign {
            path: self.path.clone(),
            why: why.to_string(),
        }
    }

    /// Create the schema in an empty database, upgrade an older one in
    /// place (one transaction: a failed upgrade leaves it as it was);
    /// check it otherwise.
    fn migrate(&mut self) -> Result<(), StoreError> {
        let p = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(sqlite(&p, "cannot start the schema transaction"))?;
        let version: i64 = tx
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(sqlite(&p, "cannot read the schema version"))?;
        match version {
            0 => {
                let tables: i64 = tx
                    .query_row("SELECT count(*) FROM sqlite_master", [], |row| row.get(0))
                    .map_err(sqlite(&p, "cannot list the tables"))?;
                if tables > 0 {
                    return Err(StoreError::Foreign {
                        path: p,
                        why: "it holds other tables".to_string(),
                    });
                }
                tx.execute_batch(SCHEMA)
                    .map_err(sqlite(&p, "cannot create the schema"))?;
                tx.execute_batch(configs::SCHEMA_V2)
                    .map_err(sqlite(&p, "cannot create the schema"))?;
                tx.pragma_update(None, "user_version", SCHEMA_VERSION)
                    .map_err(sqlite(&p, "cannot set the schema version"))?;
            }
            1 => {
                tx.execute_batch(configs::SCHEMA_V2)
                    .map_err(sqlite(&p, "cannot upgrade the schema to version 2"))?;
                tx.pragma_update(None, "user_version", SCHEMA_VERSION)
                    .map_err(sqlite(&p, "cannot set the schema version"))?;
                tracing::info!(path = %p.display(), "trace store upgraded to schema version 2 (stored configurations)");
            }
            SCHEMA_VERSION => {}
            found => return Err(StoreError::Newer { path: p, found }),
        }
        tx.commit()
            .map_err(sqlite(&self.path, "cannot commit the schema"))
    }

    /// Store several records in one transaction, so one commit (one write
    /// to the log) for all of them; each result as [`Store::insert`]'s.
    /// Every record is one statement: one that fails is absent and the
    /// others are kept. A transaction that cannot begin (the database
    /// locked beyond the busy timeout) fails them all. Should `SQLite` roll
    /// the whole transaction back (disk full, I/O error) or the commit
    /// fail, every record of the batch that had gone in fails with that
    /// error, and the ones after it are stored one by one.
    pub fn insert_batch(&mut self, traces: &[NewTrace]) -> Vec<Result<i64, StoreError>> {
        if traces.len() < 2 {
            return traces.iter().map(|t| self.insert(t)).collect();
        }
        // Locked beyond the busy timeout, or worse: every record of the
        // batch fails with that error (waiting again for each would hold
        // the queue for as many timeouts).
        if let Err(e) = self.conn.execute_batch("BEGIN IMMEDIATE") {
            let first = sqlite(&self.path, "cannot store a trace")(e);
            let why = first.to_string();
            let mut results = vec![Err(first)];
            results.extend(traces[1..].iter().map(|_| {
                Err(StoreError::Record {
                    path: self.path.clone(),
                    id: 0,
                    message: format!("written with a batch that could not begin: {why}"),
                })
            }));
            return results;
        }
        let mut results = Vec::with_capacity(traces.len());
        for (i, trace) in traces.iter().enumerate() {
            let result = self.insert(trace);
            // Out of the transaction after a failed insert: SQLite rolled
            // the whole of it back.
            if let (Err(e), true) = (&result, self.conn.is_autocommit()) {
                let why = e.to_string();
                self.fail_batch(&mut results, &why);
                results.push(result);
                results.extend(traces[i + 1..].iter().map(|t| self.insert(t)));
                return results;
            }
            results.push(result);
        }
        if let Err(e) = self.conn.execute_batch("COMMIT") {
            let _ = self.conn.execute_batch("ROLLBACK");
            let why = sqlite(&self.path, "cannot commit stored traces")(e).to_string();
            self.fail_batch(&mut results, &why);
        }
        results
    }

    /// Turn the batch's stored records into failures: its transaction is gone.
    fn fail_batch(&self, results: &mut [Result<i64, StoreError>], why: &str) {
        for result in results.iter_mut().filter(|r| r.is_ok()) {
            *result = Err(StoreError::Record {
                path: self.path.clone(),
                id: 0,
                message: format!("rolled back with the records written with it: {why}"),
            });
        }
    }

    /// Store one record; returns its trace id once it is committed.
    ///
    /// # Errors
    /// The record cannot be encoded, or `SQLite` fails (disk full, locked
    /// beyond the busy timeout, I/O error).
    pub fn insert(&mut self, trace: &NewTrace) -> Result<i64, StoreError> {
        let record = &trace.record;
        let bad = |message: String| StoreError::Record {
            path: self.path.clone(),
            id: 0,
            message,
        };
        let started_at = record.trace.started_at.unix();
        let json = serde_json::to_string(record).map_err(|e| bad(e.to_string()))?;
        let geoip = encode_geoip(&trace.provenance).map_err(|e| bad(e.to_string()))?;
        let duration_ms = trace
            .duration
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        // One statement, so one transaction: the row is complete or absent.
        self.conn
            .prepare_cached(
                "INSERT INTO traces (started_at, target, path_key, class, violation, reached,
                    path_id, config_sha256, geoip, version, duration_ms, packet_size, record)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    started_at,
                    record.trace.target.name,
                    trace.path_key.to_string(),
                    record.verdict.class.as_str(),
                    record.verdict.violation,
                    record.trace.reached,
                    record.verdict.path_id,
                    trace.provenance.config_sha256,
                    geoip,
                    trace.provenance.version,
                    duration_ms,
                    trace.packet_size,
                    json,
                ])
            })
            .map_err(sqlite(&self.path, "cannot store a trace"))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// How many traces `query` selects (at most its limit).
    ///
    /// # Errors
    /// `SQLite` fails.
    pub fn count(&self, query: &Query) -> Result<u64, StoreError> {
        let (filter, values) = query.filter(None);
        let sql = format!("SELECT count(*) FROM traces WHERE {filter}");
        let n: i64 = self
            .conn
            .query_row(&sql, rusqlite::params_from_iter(values), |row| row.get(0))
            .map_err(sqlite(&self.path, "cannot count traces"))?;
        let n = u64::try_from(n).unwrap_or(0);
        Ok(query.limit.map_or(n, |limit| n.min(limit)))
    }

    /// The traces `query` selects, oldest first (by start time, then id),
    /// read [`PAGE`] rows at a time. A row that cannot be read is an `Err`
    /// item and the scan goes on; a failing query ends it after its `Err`.
    #[must_use]
    pub fn scan(self, query: Query) -> StoredTraces {
        StoredTraces {
            remaining: query.limit,
            store: self,
            query,
            cursor: None,
            page: VecDeque::new(),
            page_rows: PAGE,
            done: false,
            rescue: None,
        }
    }

    /// The trace with this id, if it is stored.
    ///
    /// # Errors
    /// `SQLite` fails, or the row cannot be read.
    pub fn get(&self, id: i64) -> Result<Option<StoredTrace>, StoreError> {
        let row = self
            .conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM traces WHERE id = ?1"),
                [id],
                RawRow::from_row,
            )
            .optional()
            .map_err(sqlite(&self.path, "cannot read a trace"))?;
        row.map(|raw| raw.decode(&self.path)).transpose()
    }

    /// The row of trace `id`, or why it cannot be read.
    fn row(&self, id: i64) -> Result<RawRow, String> {
        self.conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM traces WHERE id = ?1"))
            .and_then(|mut stmt| stmt.query_row([id], RawRow::from_row).optional())
            .map_err(|e| format!("cannot be read: {e}"))?
            .ok_or_else(|| "is listed in an index but its row is gone".to_string())
    }

    /// Delete what `retention` no longer keeps (see the module docs), as of
    /// `now_unix`, and give the freed pages back to the file system.
    ///
    /// # Errors
    /// `SQLite` fails.
    pub fn prune(&mut self, retention: &Retention, now_unix: i64) -> Result<Pruned, StoreError> {
        let mut pruned = Pruned::default();
        if let Some(age) = retention.max_age {
            let cutoff = now_unix.saturating_sub(i64::try_from(age.as_secs()).unwrap_or(i64::MAX));
            loop {
                let n = self.delete_oldest(PRUNE_BATCH, Some(cutoff))?;
                pruned.by_age += n;
                if n == 0 {
                    break;
                }
            }
        }
        if let Some(max) = retention.max_size {
            loop {
                let used = self.bytes_in_use()?;
                if used <= max {
                    break;
                }
                let rows: i64 = self
                    .conn
                    .query_row("SELECT count(*) FROM traces", [], |row| row.get(0))
                    .map_err(sqlite(&self.path, "cannot count traces"))?;
                if rows == 0 {
                    break;
                }
                // The share of rows the excess corresponds to, at least one.
                #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
                let share = ((rows as f64) * ((used - max) as f64) / (used as f64)).ceil() as i64;
                let n = self.delete_oldest(share.clamp(1, PRUNE_BATCH), None)?;
                pruned.by_size += n;
                if n == 0 {
                    break;
                }
            }
        }
        if pruned.by_age + pruned.by_size > 0 {
            self.vacuum()?;
        }
        pruned.bytes_in_use = self.bytes_in_use()?;
        Ok(pruned)
    }

    /// Delete up to `n` oldest traces (only those older than `before` when
    /// given); returns how many went.
    fn delete_oldest(&self, n: i64, before: Option<i64>) -> Result<u64, StoreError> {
        let deleted = self
            .conn
            .execute(
                "DELETE FROM traces WHERE id IN (
                    SELECT id FROM traces WHERE started_at < ?1
                    ORDER BY started_at, id LIMIT ?2)",
                params![before.unwrap_or(i64::MAX), n],
            )
            .map_err(sqlite(&self.path, "cannot delete old traces"))?;
        Ok(deleted as u64)
    }

    /// Return free pages to the file system and fold the WAL back in.
    fn vacuum(&self) -> Result<(), StoreError> {
        let p = &self.path;
        // Each step of the pragma frees pages; step it to the end.
        let mut stmt = self
            .conn
            .prepare("PRAGMA incremental_vacuum")
            .map_err(sqlite(p, "cannot vacuum"))?;
        let mut rows = stmt.query([]).map_err(sqlite(p, "cannot vacuum"))?;
        while rows.next().map_err(sqlite(p, "cannot vacuum"))?.is_some() {}
        drop(rows);
        drop(stmt);
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(sqlite(p, "cannot checkpoint"))
    }

    /// Bytes held by the pages in use: page count less free pages, times
    /// the page size (the `-wal` file not included).
    ///
    /// # Errors
    /// `SQLite` fails.
    pub fn bytes_in_use(&self) -> Result<u64, StoreError> {
        let pragma = |name: &str| -> Result<i64, StoreError> {
            self.conn
                .pragma_query_value(None, name, |row| row.get(0))
                .map_err(sqlite(&self.path, "cannot measure the database"))
        };
        let pages = pragma("page_count")? - pragma("freelist_count")?;
        Ok(u64::try_from(pages.max(0) * pragma("page_size")?).unwrap_or(0))
    }

    /// `PRAGMA integrity_check`: `ok`, or what is broken.
    ///
    /// # Errors
    /// `SQLite` fails.
    pub fn integrity_check(&self) -> Result<String, StoreError> {
        let p = &self.path;
        let mut stmt = self
            .conn
            .prepare("PRAGMA integrity_check")
            .map_err(sqlite(p, "cannot check integrity"))?;
        let lines: Vec<String> = stmt
            .query_map([], |row| row.get(0))
            .and_then(Iterator::collect)
            .map_err(sqlite(p, "cannot check integrity"))?;
        Ok(lines.join("\n"))
    }
}

/// The columns a [`RawRow`] reads, in order.
const COLUMNS: &str =
    "id, started_at, path_key, config_sha256, geoip, version, duration_ms, packet_size, record";

/// A row as `SQLite` returns it, before its JSON is decoded.
struct RawRow {
    id: i64,
    started_at: i64,
    path_key: String,
    config_sha256: Option<String>,
    geoip: String,
    version: String,
    duration_ms: Option<i64>,
    packet_size: Option<i64>,
    record: String,
}

impl RawRow {
    fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            started_at: row.get(1)?,
            path_key: row.get(2)?,
            config_sha256: row.get(3)?,
            geoip: row.get(4)?,
            version: row.get(5)?,
            duration_ms: row.get(6)?,
            packet_size: row.get(7)?,
            record: row.get(8)?,
        })
    }

    fn decode(self, path: &Path) -> Result<StoredTrace, StoreError> {
        let bad = |what: &str, e: serde_json::Error| StoreError::Record {
            path: path.to_path_buf(),
            id: self.id,
            message: format!("its {what} is not readable: {e}"),
        };
        let record: TraceRecord =
            serde_json::from_str(&self.record).map_err(|e| bad("record", e))?;
        let (geoip, location_files) =
            decode_geoip(&self.geoip).map_err(|e| bad("GeoIP list", e))?;
        Ok(StoredTrace {
            id: self.id,
            path_key: self.path_key,
            duration_ms: self.duration_ms.and_then(|d| u64::try_from(d).ok()),
            packet_size: self.packet_size.and_then(|s| u16::try_from(s).ok()),
            provenance: Provenance {
                config_sha256: self.config_sha256,
                geoip,
                location_files,
                version: self.version,
            },
            record,
        })
    }
}

/// The iterator [`Store::scan`] returns; owns its connection.
pub struct StoredTraces {
    store: Store,
    query: Query,
    /// (started_at, id) of the last row handed out.
    cursor: Option<(i64, i64)>,
    page: VecDeque<Result<StoredTrace, StoreError>>,
    /// Rows read per query ([`PAGE`] unless [`StoredTraces::in_pages_of`]).
    page_rows: usize,
    remaining: Option<u64>,
    done: bool,
    /// Set once a damaged page was met: the (start time, id) of the
    /// traces left to read, one by one (16 bytes a trace).
    rescue: Option<VecDeque<(i64, i64)>>,
}

impl StoredTraces {
    /// Read `rows` rows per query (at least one) instead of [`PAGE`]: fewer
    /// decoded records held at once, more queries.
    #[must_use]
    pub fn in_pages_of(mut self, rows: usize) -> Self {
        self.page_rows = rows.max(1);
        self
    }

    /// The store being read.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.store.path
    }

    fn fetch(&mut self) -> Result<(), StoreError> {
        let page = self.page_rows;
        let want = self
            .remaining
            .map_or(page, |r| usize::try_from(r).unwrap_or(page).min(page));
        let p = &self.store.path;
        if self.rescue.is_none() {
            let (filter, mut values) = self.query.filter(self.cursor);
            values.push(rusqlite::types::Value::Integer(
                i64::try_from(want).unwrap_or(0),
            ));
            let sql = format!(
                "SELECT {COLUMNS} FROM traces WHERE {filter} ORDER BY started_at, id LIMIT ?{}",
                values.len()
            );
            let rows = self.store.conn.prepare_cached(&sql).and_then(|mut stmt| {
                stmt.query_map(rusqlite::params_from_iter(values), RawRow::from_row)
                    .and_then(Iterator::collect::<rusqlite::Result<Vec<RawRow>>>)
            });
            match rows {
                Ok(rows) => {
                    if rows.len() < want {
                        self.done = true;
                    }
                    for raw in rows {
                        self.cursor = Some((raw.started_at, raw.id));
                        self.page.push_back(raw.decode(p));
                    }
                    return Ok(());
                }
                // A damaged page (of the table or of the index the query
                // walks): from here on, list what is left from every
                // source that can still list it, and read it row by row.
                Err(e) if is_damage(&e) => {
                    let (filter, values) = self.query.filter(self.cursor);
                    self.rescue = Some(self.store.listed(&filter, &values).0.into());
                }
                Err(e) => return Err(sqlite(p, "cannot read traces")(e)),
            }
        }
        let keys = self.rescue.get_or_insert_with(VecDeque::new);
        let take: Vec<(i64, i64)> = keys.drain(..want.min(keys.len())).collect();
        if take.len() < want {
            self.done = true;
        }
        for (at, id) in take {
            self.cursor = Some((at, id));
            self.page.push_back(match self.store.row(id) {
                Ok(raw) => raw.decode(p),
                Err(message) => Err(StoreError::Record {
                    path: p.clone(),
                    id,
                    message,
                }),
            });
        }
        Ok(())
    }
}

impl Iterator for StoredTraces {
    type Item = Result<StoredTrace, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == Some(0) {
            return None;
        }
        if self.page.is_empty() && !self.done {
            if let Err(e) = self.fetch() {
                self.done = true;
                return Some(Err(e));
            }
        }
        let item = self.page.pop_front()?;
        if let Some(r) = &mut self.remaining {
            *r -= 1;
        }
        Some(item)
    }
}

/// Wrap a `SQLite` error with the file and what was being done.
fn sqlite<'a>(path: &'a Path, what: &'static str) -> impl Fn(rusqlite::Error) -> StoreError + 'a {
    move |source| StoreError::Sqlite {
        path: path.to_path_buf(),
        what,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provenance(files: Vec<LocationFile>) -> Provenance {
        Provenance {
            config_sha256: None,
            geoip: vec![GeoIpDatabase {
                kind: "city".to_string(),
                database_type: "GeoLite2-City".to_string(),
                build_epoch: 1_700_000_000,
                vendor: None,
                sha256: None,
            }],
            location_files: files,
            version: "0.1.0".to_string(),
        }
    }

    #[test]
    fn the_geoip_column_lists_databases_then_files_and_old_lists_read() {
        let file = LocationFile {
            kind: "overrides".to_string(),
            path: "/etc/transitwatch/overrides.csv".to_string(),
            sha256: "ab".repeat(32),
        };
        let p = provenance(vec![file.clone()]);
        let text = encode_geoip(&p).unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text).unwrap(),
            serde_json::json!([
                {"kind": "city", "type": "GeoLite2-City", "build_epoch": 1_700_000_000},
                {"kind": "overrides", "path": "/etc/transitwatch/overrides.csv", "sha256": "ab".repeat(32)}
            ])
        );
        assert_eq!(
            decode_geoip(&text).unwrap(),
            (p.geoip.clone(), vec![file.clone()])
        );
        // Without files the column is what it always was.
        let old = provenance(Vec::new());
        let text = encode_geoip(&old).unwrap();
        assert_eq!(text, serde_json::to_string(&old.geoip).unwrap());
        assert_eq!(
            decode_geoip(&text).unwrap(),
            (old.geoip.clone(), Vec::new())
        );
        assert_eq!(decode_geoip("[]").unwrap(), (Vec::new(), Vec::new()));
        // A damaged entry is still an error, naming what is missing.
        let e = decode_geoip(r#"[{"kind": "overrides", "sha256": "ab"}]"#).unwrap_err();
        assert!(e.to_string().contains("path"), "{e}");
        let e = decode_geoip(r#"[{"kind": "city", "type": "X"}]"#).unwrap_err();
        assert!(e.to_string().contains("build_epoch"), "{e}");
        // A database with its vendor and fingerprint: still a database,
        // beside an older one without them.
        let mut new = provenance(vec![file.clone()]);
        new.geoip[0].vendor = Some("MaxMind".to_string());
        new.geoip[0].sha256 = Some("cd".repeat(32));
        new.geoip.push(old.geoip[0].clone());
        let text = encode_geoip(&new).unwrap();
        assert_eq!(decode_geoip(&text).unwrap(), (new.geoip, vec![file]));
    }
}

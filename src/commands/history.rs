//! `transitwatch history config`: the configuration files the history
//! keeps ([`crate::store::Store::config`]), given back byte for byte by
//! their SHA-256 (the `config_sha256` every stored trace carries), or
//! listed with the count and time span of the traces each made.
//!
//! Together with `export --format atlas` and `analyze --config` this makes
//! a stored verdict again from the history alone (README, "Reproducing a
//! stored verdict").

use super::CliError;
use crate::config::Config;
use crate::store::{ConfigLookupError, ConfigUse, Store, StoreError};
use crate::units::Timestamp;
use std::io::Write;
use std::path::PathBuf;

/// Options of `transitwatch history config`.
#[derive(Debug, Clone)]
pub struct HistoryConfigOptions {
    /// Configuration file whose `[store] path` names the history.
    pub config: Option<PathBuf>,
    /// The history database (instead of `config`).
    pub store: Option<PathBuf>,
    /// What to do.
    pub action: ConfigAction,
}

/// What `transitwatch history config` does.
#[derive(Debug, Clone)]
pub enum ConfigAction {
    /// Write the configuration whose SHA-256 is or starts with this to
    /// `output` (standard output when `None`).
    Get {
        /// The SHA-256 or a unique prefix of at least 8 hex digits.
        sha256: String,
        /// Where to write it (created 0600: a configuration may hold
        /// secrets); the file appears whole or not at all.
        output: Option<PathBuf>,
    },
    /// List every configuration the history knows of.
    List {
        /// One JSON object per line instead of a table.
        json: bool,
    },
}

/// `transitwatch history config`.
///
/// # Errors
/// Usage errors, an unusable store (missing, not a database, not
/// transitwatch's, newer) and a configuration that is unknown, ambiguous
/// or not stored (exit 2); read and write failures and a damaged stored
/// configuration (exit 1).
pub fn config(opts: &HistoryConfigOptions, out: &mut impl Write) -> Result<(), CliError> {
    let path = match (&opts.store, &opts.config) {
        (Some(store), _) => store.clone(),
        (None, Some(config)) => Config::load(config)?.store.path,
        (None, None) => return Err(CliError::Usage("give --config or --store".into())),
    };
    let store = Store::open_read_only(&path).map_err(store_error)?;
    match &opts.action {
        ConfigAction::Get { sha256, output } => {
            let stored = store.config(sha256).map_err(|e| match e {
                ConfigLookupError::Store(e) => store_error(e),
                e @ ConfigLookupError::Damaged { .. } => CliError::Runtime(e.to_string()),
                e => CliError::Usage(e.to_string()),
            })?;
            match output {
                None => out
                    .write_all(&stored.content)
                    .and_then(|()| out.flush())
                    .map_err(super::write_err),
                Some(file) => crate::atomic_file::write_private(file, &stored.content)
                    .map_err(|e| CliError::Runtime(e.to_string())),
            }
        }
        ConfigAction::List { json } => {
            let configs = store.configs().map_err(store_error)?;
            let text = if *json {
                configs.iter().map(json_line).collect::<String>()
            } else {
                table(&configs)
            };
            out.write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .map_err(super::write_err)
        }
    }
}

/// A store that cannot be used: the user's to fix (exit 2) unless
/// `SQLite` failed while reading.
fn store_error(e: StoreError) -> CliError {
    match e {
        StoreError::Missing { .. } | StoreError::Foreign { .. } | StoreError::Newer { .. } => {
            CliError::Usage(e.to_string())
        }
        other => CliError::Runtime(other.to_string()),
    }
}

/// RFC 3339 of Unix seconds (the seconds themselves when out of range).
fn time(unix: i64) -> String {
    Timestamp::from_unix(unix).map_or_else(|_| unix.to_string(), |t| t.to_string())
}

/// One configuration as a JSON line: `sha256`, `stored`, `bytes`,
/// `stored_at`, `traces`, `first`, `last` (times in RFC 3339, `null` where
/// there is none).
fn json_line(c: &ConfigUse) -> String {
    let line = serde_json::json!({
        "sha256": c.sha256,
        "stored": c.size.is_some(),
        "bytes": c.size,
        "stored_at": c.stored_at.map(time),
        "traces": c.traces,
        "first": c.first.map(time),
        "last": c.last.map(time),
    });
    format!("{line}\n")
}

/// The list as a table: SHA-256, size (or `not stored`), traces, first
/// and last trace.
fn table(configs: &[ConfigUse]) -> String {
    let mut text = format!(
        "{:<64}  {:>10}  {:>8}  {:<20}  LAST\n",
        "SHA256", "BYTES", "TRACES", "FIRST"
    );
    for c in configs {
        let size = c
            .size
            .map_or_else(|| "not stored".to_string(), |n| n.to_string());
        let first = c.first.map_or_else(|| "-".to_string(), time);
        let last = c.last.map_or_else(|| "-".to_string(), time);
        let line = format!(
            "{:<64}  {size:>10}  {:>8}  {first:<20}  {last}",
            c.sha256, c.traces
        );
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

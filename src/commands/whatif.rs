//! `transitwatch whatif`: what fails if a country, a network (AS) or a
//! company becomes unavailable, from the latest stored trace of every path
//! ([`crate::dependency`]), as text or JSON.

use super::CliError;
use crate::config::Config;
use crate::dependency::{text, Assessment, Failure, WhatIf};
use crate::model::PathKey;
use crate::store::{parse_time, Store, StoreError};
use crate::units::Timestamp;
use std::io::Write;
use std::path::PathBuf;

/// The output format of `transitwatch whatif`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhatIfFormat {
    /// Plain sentences and a table.
    #[default]
    Text,
    /// JSON (`schemas/whatif.schema.json`).
    Json,
}

crate::text_enum::text_enum! {
    /// The name used on the command line.
    WhatIfFormat {
        Text => "text",
        Json => "json",
    }
    parse_error: InvalidWhatIfFormat
}

/// A `--format` that is not a format of `whatif`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a whatif format (expected text or json)")]
pub struct InvalidWhatIfFormat(pub String);

/// Options of `transitwatch whatif`.
#[derive(Debug, Clone, Default)]
pub struct WhatIfOptions {
    /// Configuration file whose `[store] path` names the history.
    pub config: Option<PathBuf>,
    /// The history database (instead of `config`).
    pub store: Option<PathBuf>,
    /// The country that becomes unavailable, as written.
    pub country: Option<String>,
    /// The AS that does (`64510` or `AS64510`).
    pub asn: Option<String>,
    /// The organisation that does: part of its AS organisation's name.
    pub org: Option<String>,
    /// Take each path's latest trace at or before this time (as `export`
    /// takes times); default now.
    pub at: Option<String>,
    /// Output format.
    pub format: WhatIfFormat,
}

/// The one failure the options name.
///
/// # Errors
/// None or more than one of `--country`, `--asn`, `--org`, or a value that
/// names nothing (usage, exit 2).
pub fn failure(opts: &WhatIfOptions) -> Result<Failure, CliError> {
    let usage =
        |flag: &str, e: crate::dependency::InvalidFailure| CliError::Usage(format!("{flag}: {e}"));
    match (&opts.country, &opts.asn, &opts.org) {
        (Some(c), None, None) => Failure::country(c).map_err(|e| usage("--country", e)),
        (None, Some(n), None) => Failure::asn(n).map_err(|e| usage("--asn", e)),
        (None, None, Some(o)) => Failure::org(o).map_err(|e| usage("--org", e)),
        _ => Err(CliError::Usage(
            "give exactly one of --country CC, --asn N or --org NAME".into(),
        )),
    }
}

/// `transitwatch whatif`: reads the latest trace of every path at or
/// before `--at` and writes what fails. Returns the answer.
///
/// # Errors
/// Usage errors and an unusable store (missing, not a database, not
/// transitwatch's, newer: exit 2); read and write failures, and stored
/// latest traces that cannot be read (reported on stderr, the answer made
/// without them: exit 1).
pub fn run(opts: &WhatIfOptions, out: &mut impl Write) -> Result<WhatIf, CliError> {
    let failure = failure(opts)?;
    let config = opts.config.as_ref().map(|c| Config::load(c)).transpose()?;
    let path = match (&opts.store, &config) {
        (Some(store), _) => store.clone(),
        (None, Some(config)) => config.store.path.clone(),
        (None, None) => return Err(CliError::Usage("give --config or --store".into())),
    };
    let now = Timestamp::now();
    let at = match &opts.at {
        Some(text) => {
            let unix =
                parse_time(text, now.unix()).map_err(|e| CliError::Usage(format!("--at: {e}")))?;
            Timestamp::from_unix(unix).map_err(|e| CliError::Usage(format!("--at: {e}")))?
        }
        None => now,
    };
    let store = Store::open_read_only(&path).map_err(|e| match e {
        StoreError::Missing { .. } | StoreError::Foreign { .. } | StoreError::Newer { .. } => {
            CliError::Usage(e.to_string())
        }
        other => CliError::Runtime(other.to_string()),
    })?;
    // The configuration's operator table (with `[dependency] operators`)
    // names the operators `--org` also matches; the shipped one without it.
    let mut assessment = Assessment::new(failure, at);
    if let Some(config) = config {
        assessment = assessment.with_operators(config.dependency.table);
    }
    let mut unreadable = 0u64;
    store
        .latest_per_path(Some(at.unix()), |stored| match stored {
            Ok(stored) => {
                // Keys are written from `PathKey`s; one that does not read
                // back is judged as a path of the target it names.
                let key = stored
                    .path_key
                    .parse()
                    .unwrap_or_else(|_| PathKey::whole(stored.record.trace.target.name.clone()));
                assessment.add(&key, &stored.record, Some(stored.id));
            }
            Err(e) => {
                unreadable += 1;
                eprintln!("transitwatch: error: {e}");
            }
        })
        .map_err(|e| CliError::Runtime(e.to_string()))?;
    let answer = assessment.finish();
    let text = match opts.format {
        WhatIfFormat::Text => text::render(&answer),
        WhatIfFormat::Json => {
            let mut json = serde_json::to_string_pretty(&answer)
                .map_err(|e| CliError::Runtime(format!("cannot encode the answer: {e}")))?;
            json.push('\n');
            json
        }
    };
    out.write_all(text.as_bytes()).map_err(super::write_err)?;
    if unreadable > 0 {
        return Err(CliError::Runtime(format!(
            "{}: the latest trace of {unreadable} {} could not be read; the answer leaves {} out",
            path.display(),
            if unreadable == 1 { "path" } else { "paths" },
            if unreadable == 1 { "it" } else { "them" },
        )));
    }
    Ok(answer)
}

//! The one error type of the geo module: every message names the file it is
//! about, and override-file errors also name the line and the field.

use std::fmt;
use std::path::PathBuf;

/// Why a file is not a readable MaxMind DB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotMmdbReason {
    /// The file has no bytes at all.
    Empty,
    /// The file is plain text (a CSV or a config, say), not a binary database.
    Text,
    /// The metadata marker that ends every MMDB file is missing: the file was
    /// cut short (an interrupted download or copy) or is of another format.
    NoMetadataMarker,
    /// The marker is there but what follows or precedes it does not hold
    /// together (truncated metadata, a search tree larger than the file, a
    /// record size the format does not have, ...).
    Corrupt(String),
}

impl fmt::Display for NotMmdbReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("the file is empty"),
            Self::Text => f.write_str("it is a text file, not a binary MaxMind DB"),
            Self::NoMetadataMarker => f.write_str(
                "no MaxMind DB metadata marker found: the file is truncated or of another format",
            ),
            Self::Corrupt(detail) => write!(f, "it is truncated or corrupt: {detail}"),
        }
    }
}

/// Why geolocation data could not be loaded or built.
#[derive(Debug, thiserror::Error)]
pub enum GeoError {
    /// The file could not be read (missing, unreadable, not a regular
    /// file, over its kind's maximum size, ...).
    #[error("{source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why, naming the file.
        #[source]
        source: crate::input_file::InputFileError,
    },
    /// The file is not a MaxMind DB, or a damaged one.
    #[error("{} is not a usable MaxMind DB: {reason}", path.display())]
    NotMmdb {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: NotMmdbReason,
    },
    /// The file is an MMDB whose records carry neither a location nor an ASN
    /// in any layout this module knows.
    #[error(
        "{}: unknown MMDB schema: database_type `{database_type}`, record fields seen: {}; \
         expected GeoIP2/GeoLite2, DB-IP, IPinfo or `country_code` records",
        path.display(),
        fields_list(fields)
    )]
    UnknownSchema {
        /// The file.
        path: PathBuf,
        /// Its metadata `database_type`.
        database_type: String,
        /// The top-level record keys found in a sample of its records.
        fields: Vec<String>,
    },
    /// A line of an overrides CSV file is wrong.
    #[error("{}:{line}: field `{field}`: {message}", path.display())]
    Overrides {
        /// The CSV file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The column at fault (`prefix`, `country`, `lat`, ...).
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// A line of an RFC 8805 geofeed is wrong.
    #[error("{}:{line}: field `{field}`: {message}", path.display())]
    Geofeed {
        /// The geofeed file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The column at fault (`ip_prefix`, `alpha2code`, `region`, or
        /// `line` for the field count).
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// A PeeringDB dump is not valid JSON, or an object in it is wrong.
    #[error("{}{}: {message}", path.display(), at_text(*.at))]
    PeeringDb {
        /// The dump.
        path: PathBuf,
        /// Line and column (1-based) where the JSON parser stopped, when
        /// the fault is in the JSON text itself.
        at: Option<(usize, usize)>,
        /// What is wrong: the JSON error, or the object (`ix 1234`) and
        /// its field.
        message: String,
    },
    /// A rule of a host name rules file (`hostname_rules`) is wrong.
    #[error("{}:{line}: {message}", path.display())]
    HintRules {
        /// The rules file.
        path: PathBuf,
        /// 1-based line number (of the rule's `[[rule]]` header, or of the
        /// TOML error).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// An MMDB could not be written.
    #[error("cannot build {}: {message}", output.display())]
    Build {
        /// The database that was being written.
        output: PathBuf,
        /// What went wrong.
        message: String,
    },
}

fn at_text(at: Option<(usize, usize)>) -> String {
    at.map(|(line, column)| format!(":{line}:{column}"))
        .unwrap_or_default()
}

fn fields_list(fields: &[String]) -> String {
    if fields.is_empty() {
        "none (no records)".to_string()
    } else {
        fields.join(", ")
    }
}

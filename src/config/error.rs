//! [`ConfigError`]: why a configuration file could not be used, and its
//! one-line `FILE[:LINE:COLUMN]: [field `PATH`: ]MESSAGE` form.

use crate::input_file::InputFileError;
use std::path::{Path, PathBuf};

/// Why a configuration file could not be used.
///
/// The `Display` form is one line: `FILE[:LINE:COLUMN]: [field `PATH`: ]MESSAGE`.
/// Lines and columns are 1-based (columns count characters); array indices in
/// field paths are 0-based.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read (missing, not a regular file, too large,
    /// not UTF-8).
    #[error("{source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why, naming the file.
        source: InputFileError,
    },
    /// The text is not TOML, or does not fit the file's structure (unknown
    /// key, wrong value type).
    #[error("{}", located(.path, *.line, *.column, .field.as_deref(), .message))]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error, when known.
        line: Option<usize>,
        /// 1-based column of the error, when known.
        column: Option<usize>,
        /// Dotted path of the field concerned, when known.
        field: Option<String>,
        /// What is wrong, on one line.
        message: String,
    },
    /// A value is well-formed but not acceptable (out of range, duplicate,
    /// missing, inconsistent with another value).
    #[error("{}", located(.path, *.line, *.column, Some(.field), .message))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line of the value, or of its table's header, when known.
        line: Option<usize>,
        /// 1-based column, when known.
        column: Option<usize>,
        /// Dotted path of the field concerned.
        field: String,
        /// What is wrong, on one line.
        message: String,
    },
}

impl ConfigError {
    /// The file the error is about.
    #[must_use]
    pub fn path(&self) -> &Path {
        match self {
            Self::Read { path, .. } | Self::Syntax { path, .. } | Self::Invalid { path, .. } => {
                path
            }
        }
    }

    /// The 1-based line and column of the error, when known.
    #[must_use]
    pub fn position(&self) -> Option<(usize, usize)> {
        match self {
            Self::Read { .. } => None,
            Self::Syntax { line, column, .. } | Self::Invalid { line, column, .. } => {
                Some(((*line)?, (*column)?))
            }
        }
    }

    /// The dotted path of the field concerned, when known.
    #[must_use]
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Read { .. } => None,
            Self::Syntax { field, .. } => field.as_deref(),
            Self::Invalid { field, .. } => Some(field),
        }
    }
}

/// Render `FILE[:LINE:COLUMN]: [field `PATH`: ]MESSAGE`.
fn located(
    path: &Path,
    line: Option<usize>,
    column: Option<usize>,
    field: Option<&str>,
    message: &str,
) -> String {
    let position = match (line, column) {
        (Some(line), Some(column)) => format!(":{line}:{column}"),
        (Some(line), None) => format!(":{line}"),
        _ => String::new(),
    };
    let field = field.map(|f| format!("field `{f}`: ")).unwrap_or_default();
    format!("{}{position}: {field}{message}", path.display())
}

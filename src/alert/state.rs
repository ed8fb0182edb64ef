//! The notifier's saved state: `alerts.json` in the state directory.
//!
//! It holds the active alerts (so a restart neither fires them again nor
//! forgets to resolve them) and every webhook's pending notifications (so a
//! restart loses none). Webhooks are keyed by a hash of their URL: the file
//! never holds a URL (which may carry a token), and a reload that keeps a
//! URL keeps its pending notifications.
//!
//! Written whole on every change: to a temporary file that is flushed to
//! disk, then renamed over the old one, then the folder is flushed, so a
//! crash or power loss leaves the old or the new file, never a mix.

use super::rules::{AlertBook, Notification};
use crate::atomic_file::{self, AtomicFileError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The file name inside the state directory.
pub const STATE_FILE: &str = "alerts.json";
const VERSION: u32 = 1;

/// Why the state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The state file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// Replacing the file failed (the old one is unchanged).
    #[error(transparent)]
    Save(#[from] AtomicFileError),
    /// The file is not a saved alert state.
    #[error("{path}: not a transitwatch alert state file: {message}")]
    Format {
        /// The state file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// The stable key of a webhook: 16 hex digits of the SHA-256 of its URL.
#[must_use]
pub fn webhook_id(url: &str) -> String {
    hex::encode(&Sha256::digest(url.as_bytes())[..8])
}

/// What the file holds, as loaded.
#[derive(Debug, Default, Deserialize)]
pub struct Saved {
    /// Active alerts.
    pub book: AlertBook,
    /// Pending notifications per webhook id.
    pub webhooks: BTreeMap<String, SavedQueue>,
}

/// One webhook's pending notifications, oldest first.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct SavedQueue {
    /// The webhook's name when saved (for people reading the file).
    pub name: String,
    /// Notifications not yet delivered.
    pub pending: Vec<Notification>,
}

#[derive(Deserialize)]
struct File {
    version: u32,
    #[serde(flatten)]
    saved: Saved,
}

/// What is written, borrowed from the live state.
#[derive(Serialize)]
pub struct SavedState<'a> {
    /// Active alerts.
    pub book: &'a AlertBook,
    /// Pending notifications per webhook id: name and queue.
    pub webhooks: BTreeMap<&'a str, PendingRef<'a>>,
}

/// One webhook's queue, borrowed.
#[derive(Serialize)]
pub struct PendingRef<'a> {
    /// The webhook's name.
    pub name: &'a str,
    /// Notifications not yet delivered, oldest first.
    pub pending: Vec<&'a Notification>,
}

#[derive(Serialize)]
struct FileRef<'a> {
    version: u32,
    #[serde(flatten)]
    snapshot: &'a SavedState<'a>,
}

/// Load the state saved in `dir`; `Ok(None)` when there is none.
///
/// # Errors
/// The file exists but cannot be read or is not a saved state.
pub fn load(dir: &Path) -> Result<Option<Saved>, StateError> {
    let path = dir.join(STATE_FILE);
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(StateError::Io { path, source }),
    };
    let file: File = serde_json::from_slice(&text).map_err(|e| StateError::Format {
        path: path.clone(),
        message: e.to_string(),
    })?;
    if file.version != VERSION {
        return Err(StateError::Format {
            path,
            message: format!("version {} (expected {VERSION})", file.version),
        });
    }
    Ok(Some(file.saved))
}

/// Move a damaged state file aside (to `alerts.json.damaged`); returns
/// where it went, when the move worked.
pub fn move_aside(dir: &Path) -> Option<PathBuf> {
    let to = dir.join(format!("{STATE_FILE}.damaged"));
    std::fs::rename(dir.join(STATE_FILE), &to).ok().map(|()| to)
}

/// Write `snapshot` to `dir` atomically and durably.
///
/// # Errors
/// The file cannot be written.
pub fn save(dir: &Path, snapshot: &SavedState<'_>) -> Result<(), StateError> {
    let path = dir.join(STATE_FILE);
    let text = serde_json::to_vec(&FileRef {
        version: VERSION,
        snapshot,
    })
    .map_err(|e| StateError::Format {
        path: path.clone(),
        message: e.to_string(),
    })?;
    atomic_file::write(&path, &text)?;
    Ok(())
}

//! The notifier's saved state: `alerts.json` in the state directory.
//!
//! It holds the active alerts (so a restart neither fires them again nor
//! forgets to resolve them) and every webhook's pending notifications (so a
//! restart loses none). Webhooks are keyed by a hash of their URL: the file
//! never holds a URL (which may carry a token), and a reload that keeps a
//! URL keeps its pending notifications.
//!
//! Written whole on every change, as a sealed state file of the state
//! directory (see [`crate::state_dir`]): replaced atomically (a crash or
//! power loss leaves the old or the new file, never a mix), 0600, and
//! refused at load when anything but this daemon wrote it, so what is sent
//! from it is only what this daemon queued.

use super::rules::{AlertBook, Notification};
use crate::state_dir::{LoadError, SaveError, StateFiles};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The file name inside the state directory.
pub const STATE_FILE: &str = "alerts.json";
/// The version of the file this build writes (1 was unsealed).
pub const VERSION: u32 = 2;

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

/// Load the state saved in the state directory; `Ok(None)` when there is
/// none.
///
/// # Errors
/// The file exists but was not loaded: see [`LoadError`].
pub fn load(files: &StateFiles) -> Result<Option<Saved>, LoadError> {
    files.load(STATE_FILE, VERSION)
}

/// Move a state file refused for `why` aside (`alerts.json.refused` or
/// `alerts.json.damaged`); returns where it went, when the move worked.
#[must_use]
pub fn move_aside(files: &StateFiles, why: &LoadError) -> Option<PathBuf> {
    files.move_aside(STATE_FILE, why)
}

/// Write `snapshot` to the state directory atomically and durably.
///
/// # Errors
/// The file cannot be written.
pub fn save(files: &StateFiles, snapshot: &SavedState<'_>) -> Result<(), SaveError> {
    files.save(STATE_FILE, VERSION, snapshot)
}

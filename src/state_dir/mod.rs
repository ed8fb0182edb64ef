//! The state directory: the folder of `paths.json`, `alerts.json` and (by
//! default) the history, held by one daemon at a time and private to it.
//!
//! [`StateDir::open`] runs at start, before anything is written there:
//! - the folder is created 0700 (an existing one is made 0700);
//! - an exclusive lock is taken on `lock` in it and the daemon's pid is
//!   written there: a second daemon on the same folder stops with
//!   [`StateDirError::Held`] naming the folder and that pid. The lock lives
//!   as long as the [`StateDir`] (the daemon's life; a reload keeps it) and
//!   the kernel releases it when the process ends, `kill -9` included, so a
//!   crash never leaves a stale lock;
//! - `state.key` is read, or created once: 64 random bytes (as hex), 0600,
//!   the key that seals the state files.
//!
//! [`StateFiles`] reads and writes the state files. Each is one JSON object
//! `{"version":N,"mac":"hmac-sha256:HEX","state":{...}}`, where `mac` is the
//! HMAC-SHA256, under the key, of the file's name, its version and the exact
//! bytes of `state`. Whatever the daemon loads it wrote itself:
//! - a file whose seal does not verify (edited by someone else, sealed under
//!   another key, or written unsealed by an older transitwatch) is refused:
//!   logged by the caller and moved aside to `NAME.refused`;
//! - a file that cannot be read or is not such an object is moved aside to
//!   `NAME.damaged`;
//! - a file of a newer version is neither loaded nor overwritten: loading it
//!   would drop the fields this build does not know, saving would erase
//!   them; [`LoadError::Newer`] makes the daemon stop.
//!
//! Files are written with [`atomic_file::write_private`]: 0600 whatever the
//! umask, replaced whole. Every save of a state file is counted in
//! `transitwatch_state_saves_total{file,result}` ([`SaveMetrics`]).
//!
//! Depends on the leaves (`atomic_file`) and the hashing crates only.

mod metrics;

pub use metrics::SaveMetrics;

use crate::atomic_file::{self, AtomicFileError, PRIVATE};
use crate::input_file::{self, FileKind, InputFileError};
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::fmt;
use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The lock file's name in the state directory.
pub const LOCK_FILE: &str = "lock";
/// The key file's name in the state directory.
pub const KEY_FILE: &str = "state.key";
/// The state folder's mode: only its owner may list and enter it.
pub const FOLDER_MODE: u32 = 0o700;

/// The key's length: SHA-256's block size, HMAC's natural key length.
const KEY_LEN: usize = 64;
/// The prefix of the `mac` field.
const MAC_SCHEME: &str = "hmac-sha256:";

type HmacSha256 = Hmac<Sha256>;

/// Why the state directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateDirError {
    /// The folder cannot be created or inspected.
    #[error("state directory {}: {source}", path.display())]
    Folder {
        /// The folder.
        path: PathBuf,
        /// What failed.
        source: io::Error,
    },
    /// Another process holds the lock.
    #[error(
        "state directory {} is in use by another transitwatch ({}, holding {}); stop it or give this one another state directory",
        dir.display(),
        holder.map_or_else(|| "pid unknown".to_string(), |pid| format!("pid {pid}")),
        lock.display()
    )]
    Held {
        /// The folder.
        dir: PathBuf,
        /// The lock file.
        lock: PathBuf,
        /// The holder's pid, as it wrote it.
        holder: Option<u32>,
    },
    /// The lock file or the key file cannot be opened, read or written.
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: io::Error,
    },
    /// A new key cannot be saved.
    #[error(transparent)]
    KeySave(#[from] AtomicFileError),
}

impl StateDirError {
    /// The process exit code: 2 when another daemon holds the folder (a
    /// set-up mistake to fix, not to restart on), else 1.
    #[must_use]
    pub const fn exit_code(&self) -> u8 {
        match self {
            Self::Held { .. } => 2,
            _ => 1,
        }
    }
}

/// Why a state file was not loaded. The caller moves it aside
/// ([`StateFiles::move_aside`]) and starts without it, except for
/// [`LoadError::Newer`].
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// It cannot be read (or is no regular file, or is over the size
    /// limit of state files).
    #[error("{0}")]
    Io(#[source] InputFileError),
    /// It is not a state file of this kind.
    #[error("{}: not a transitwatch state file: {message}", path.display())]
    Damaged {
        /// The state file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// It was written by a newer transitwatch.
    #[error(
        "{}: version {found} is newer than this transitwatch writes ({current}); it is left as it is: upgrade transitwatch, or move the file away to start without it",
        path.display()
    )]
    Newer {
        /// The state file.
        path: PathBuf,
        /// Its version.
        found: u64,
        /// The version this build writes.
        current: u32,
    },
    /// It carries no seal (an older transitwatch wrote it).
    #[error(
        "{}: version {found} carries no seal of this state directory (an older transitwatch wrote it); refused",
        path.display()
    )]
    Unsealed {
        /// The state file.
        path: PathBuf,
        /// Its version.
        found: u64,
    },
    /// Its seal does not match its content.
    #[error(
        "{}: its seal does not match its content (changed by something other than this daemon, or sealed under another {KEY_FILE}); refused",
        path.display()
    )]
    Forged {
        /// The state file.
        path: PathBuf,
    },
}

impl LoadError {
    /// Whether the file is of a newer version (to be left alone; the daemon
    /// stops).
    #[must_use]
    pub const fn is_newer(&self) -> bool {
        matches!(self, Self::Newer { .. })
    }

    /// Where a file refused for this reason goes: `NAME.refused` for a seal
    /// that does not verify, `NAME.damaged` otherwise; a newer one stays.
    fn aside_suffix(&self) -> Option<&'static str> {
        match self {
            Self::Io(_) | Self::Damaged { .. } => Some("damaged"),
            Self::Unsealed { .. } | Self::Forged { .. } => Some("refused"),
            Self::Newer { .. } => None,
        }
    }
}

/// Why a state file could not be saved (the old file is unchanged).
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    /// The state cannot be encoded.
    #[error("{}: cannot encode the state: {message}", path.display())]
    Encode {
        /// The state file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Replacing the file failed.
    #[error(transparent)]
    Write(#[from] AtomicFileError),
}

/// The key that seals the state files of one state directory.
#[derive(Clone)]
struct StateKey(Arc<[u8; KEY_LEN]>);

impl fmt::Debug for StateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StateKey(..)")
    }
}

impl StateKey {
    fn mac(&self, name: &str, version: u32, state: &[u8]) -> HmacSha256 {
        // A key of the block size: `new` takes it as it is, infallibly.
        let mut mac = <HmacSha256 as KeyInit>::new(self.0.as_slice().into());
        mac.update(b"transitwatch state file\0");
        mac.update(name.as_bytes());
        mac.update(b"\0");
        mac.update(version.to_string().as_bytes());
        mac.update(b"\0");
        mac.update(state);
        mac
    }
}

/// Reads and writes the state files of a state directory, sealed with its
/// key. A cheap handle: clones share the key and the metrics.
#[derive(Debug, Clone)]
pub struct StateFiles {
    dir: PathBuf,
    key: StateKey,
    saves: SaveMetrics,
}

/// The first field, read alone so that any version can be recognised.
#[derive(Deserialize)]
struct Versioned {
    version: u64,
}

/// A sealed file's other fields; `state` borrowed as its exact bytes.
#[derive(Deserialize)]
struct Sealed<'a> {
    mac: String,
    #[serde(borrow)]
    state: &'a serde_json::value::RawValue,
}

impl StateFiles {
    /// The state directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of state file `name`.
    #[must_use]
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Load state file `name` of `version`; `Ok(None)` when there is none.
    ///
    /// # Errors
    /// See [`LoadError`]: the file is unreadable, damaged, unsealed, forged
    /// or newer.
    pub fn load<T: DeserializeOwned>(
        &self,
        name: &str,
        version: u32,
    ) -> Result<Option<T>, LoadError> {
        let path = self.path(name);
        let bytes = match input_file::read(&path, FileKind::StateFile) {
            Ok(bytes) => bytes,
            Err(InputFileError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Ok(None)
            }
            Err(e) => return Err(LoadError::Io(e)),
        };
        let damaged = |e: serde_json::Error| LoadError::Damaged {
            path: path.clone(),
            message: e.to_string(),
        };
        let found = serde_json::from_slice::<Versioned>(&bytes)
            .map_err(damaged)?
            .version;
        if found > u64::from(version) {
            return Err(LoadError::Newer {
                path,
                found,
                current: version,
            });
        }
        if found < u64::from(version) {
            return Err(LoadError::Unsealed { path, found });
        }
        let sealed: Sealed<'_> = serde_json::from_slice(&bytes).map_err(damaged)?;
        let tag = sealed
            .mac
            .strip_prefix(MAC_SCHEME)
            .and_then(|h| hex::decode(h).ok());
        let state = sealed.state.get();
        let verified = tag.is_some_and(|tag| {
            self.key
                .mac(name, version, state.as_bytes())
                .verify_slice(&tag)
                .is_ok()
        });
        if !verified {
            return Err(LoadError::Forged { path });
        }
        serde_json::from_str(state).map(Some).map_err(damaged)
    }

    /// Seal `state` as state file `name` of `version` and replace the file
    /// (0600, atomically); counted in `transitwatch_state_saves_total`.
    ///
    /// # Errors
    /// The state cannot be encoded or the file cannot be replaced (the old
    /// one stays).
    pub fn save<T: Serialize + ?Sized>(
        &self,
        name: &str,
        version: u32,
        state: &T,
    ) -> Result<(), SaveError> {
        let result = self.write(name, version, state);
        self.saves.count(name, result.is_ok());
        result
    }

    fn write<T: Serialize + ?Sized>(
        &self,
        name: &str,
        version: u32,
        state: &T,
    ) -> Result<(), SaveError> {
        let path = self.path(name);
        let body = serde_json::to_vec(state).map_err(|e| SaveError::Encode {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let tag = hex::encode(self.key.mac(name, version, &body).finalize().into_bytes());
        let mut out = Vec::with_capacity(body.len() + 128);
        out.extend_from_slice(
            format!("{{\"version\":{version},\"mac\":\"{MAC_SCHEME}{tag}\",\"state\":").as_bytes(),
        );
        out.extend_from_slice(&body);
        out.extend_from_slice(b"}\n");
        atomic_file::write_private(&path, &out)?;
        Ok(())
    }

    /// Move state file `name`, refused for `why`, aside (`NAME.refused` or
    /// `NAME.damaged`); returns where it went, when it moved. A newer file
    /// stays where it is.
    #[must_use]
    pub fn move_aside(&self, name: &str, why: &LoadError) -> Option<PathBuf> {
        let suffix = why.aside_suffix()?;
        let to = self.path(&format!("{name}.{suffix}"));
        std::fs::rename(self.path(name), &to).ok().map(|()| to)
    }

    /// Remove the temporary files of saves of `name` left behind (by a
    /// killed process, or a removal that failed); returns how many.
    ///
    /// # Errors
    /// The folder cannot be listed or a leftover cannot be removed.
    pub fn remove_temporaries(&self, name: &str) -> io::Result<usize> {
        atomic_file::remove_temporaries(&self.path(name))
    }
}

/// A state directory held by this process: its lock, its key.
#[derive(Debug)]
pub struct StateDir {
    files: StateFiles,
    // The exclusive lock (flock) on the lock file, never read: holding it is
    // what keeps a second daemon out of this folder, so that two never write
    // the same state files and database or send every notification twice.
    // Released when this value is dropped or the process ends.
    _lock: File,
}

impl StateDir {
    /// Take the state directory `path` for this process: create it (0700),
    /// lock it, read or create its key. `saves` counts the state files'
    /// saves.
    ///
    /// # Errors
    /// [`StateDirError::Held`] when another process holds it; otherwise the
    /// folder, the lock file or the key file cannot be set up.
    pub fn open(path: &Path, saves: SaveMetrics) -> Result<Self, StateDirError> {
        let dir = if path.as_os_str().is_empty() {
            Path::new(".")
        } else {
            path
        };
        make_folder(dir)?;
        let lock = lock(dir)?;
        let key = key(dir)?;
        Ok(Self {
            files: StateFiles {
                dir: dir.to_path_buf(),
                key,
                saves,
            },
            _lock: lock,
        })
    }

    /// The folder.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.files.dir
    }

    /// Its state files.
    #[must_use]
    pub fn files(&self) -> &StateFiles {
        &self.files
    }
}

/// Create the folder 0700 (whatever the umask), or make an existing one so.
fn make_folder(dir: &Path) -> Result<(), StateDirError> {
    let fail = |source| StateDirError::Folder {
        path: dir.to_path_buf(),
        source,
    };
    DirBuilder::new()
        .recursive(true)
        .mode(FOLDER_MODE)
        .create(dir)
        .map_err(fail)?;
    let mode = std::fs::metadata(dir).map_err(fail)?.permissions().mode() & 0o7777;
    if mode != FOLDER_MODE {
        // Not the owner (a folder set up by someone else): its files are
        // private all the same; say that the folder is not.
        if let Err(e) = std::fs::set_permissions(dir, Permissions::from_mode(FOLDER_MODE)) {
            tracing::warn!(dir = %dir.display(), mode = format!("{mode:o}"), error = %e, "cannot make the state directory private (0700); its files are 0600");
        }
    }
    Ok(())
}

/// Take the lock: open (never truncate: another holder's pid is in it)
/// and try the exclusive lock, then write this process's pid.
fn lock(dir: &Path) -> Result<File, StateDirError> {
    let path = dir.join(LOCK_FILE);
    let fail = |source| StateDirError::File {
        path: path.clone(),
        source,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(PRIVATE)
        .open(&path)
        .map_err(fail)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let holder = (&file)
                .take(64)
                .read_to_string(&mut text)
                .ok()
                .and_then(|_| text.trim().parse().ok());
            return Err(StateDirError::Held {
                dir: dir.to_path_buf(),
                lock: path,
                holder,
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(fail(e)),
    }
    file.set_permissions(Permissions::from_mode(PRIVATE))
        .and_then(|()| file.set_len(0))
        .and_then(|()| file.write_all(format!("{}\n", std::process::id()).as_bytes()))
        .map_err(fail)?;
    Ok(file)
}

/// Read the key, or create it; a damaged key file is moved aside (the
/// files sealed under it are then refused) and a new key made.
fn key(dir: &Path) -> Result<StateKey, StateDirError> {
    let path = dir.join(KEY_FILE);
    let fail = |source| StateDirError::File {
        path: path.clone(),
        source,
    };
    match File::open(&path) {
        Ok(file) => {
            let mut text = String::new();
            let read = (&file)
                .take(4 * KEY_LEN as u64)
                .read_to_string(&mut text)
                .ok();
            let key = read
                .and_then(|_| hex::decode(text.trim()).ok())
                .and_then(|bytes| <[u8; KEY_LEN]>::try_from(bytes).ok());
            if let Some(key) = key {
                file.set_permissions(Permissions::from_mode(PRIVATE))
                    .map_err(fail)?;
                return Ok(StateKey(Arc::new(key)));
            }
            let to = dir.join(format!("{KEY_FILE}.damaged"));
            let moved = std::fs::rename(&path, &to).is_ok();
            tracing::error!(file = %path.display(), moved_to = %to.display(), moved, "the state key is damaged; a new one is made, and state files sealed under the old one will be refused");
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(fail(e)),
    }
    let mut key = [0u8; KEY_LEN];
    getrandom::getrandom(&mut key).map_err(|e| fail(io::Error::other(e.to_string())))?;
    atomic_file::write_private(&path, format!("{}\n", hex::encode(key)).as_bytes())?;
    Ok(StateKey(Arc::new(key)))
}

/// Create the database file `path` 0600 when it does not exist, and make
/// an existing one and its `-wal` and `-shm` companions (`SQLite` creates
/// those with the database file's mode) 0600. A file this user does not own
/// keeps its mode (logged).
///
/// # Errors
/// The file cannot be created.
pub fn private_database(path: &Path) -> io::Result<()> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(PRIVATE)
        .open(path)?;
    let mut companions = vec![path.to_path_buf()];
    for suffix in ["-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        companions.push(PathBuf::from(name));
    }
    for file in companions {
        let Ok(meta) = std::fs::metadata(&file) else {
            continue;
        };
        let mode = meta.permissions().mode() & 0o7777;
        if mode != PRIVATE {
            if let Err(e) = std::fs::set_permissions(&file, Permissions::from_mode(PRIVATE)) {
                tracing::warn!(file = %file.display(), mode = format!("{mode:o}"), error = %e, "cannot make the history private (0600)");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    fn state() -> BTreeMap<String, String> {
        BTreeMap::from([("summary".to_string(), "gov-portal goes via ZA".to_string())])
    }

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid_until_it_lets_go() {
        let base = tempfile::tempdir().unwrap();
        let path = base.path().join("a/state");
        let first = StateDir::open(&path, SaveMetrics::default()).unwrap();
        assert_eq!(mode(&path), FOLDER_MODE);
        for file in [LOCK_FILE, KEY_FILE] {
            assert_eq!(mode(&path.join(file)), PRIVATE, "{file}");
        }
        let err = StateDir::open(&path, SaveMetrics::default()).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let text = err.to_string();
        assert!(
            text.contains(&format!(
                "state directory {} is in use by another transitwatch (pid {}, holding ",
                path.display(),
                std::process::id()
            )),
            "{text}"
        );
        assert!(!text.contains('\n'));
        drop(first);
        let again = StateDir::open(&path, SaveMetrics::default()).unwrap();
        drop(again);
    }

    #[test]
    fn a_sealed_file_is_read_back_and_refused_once_edited() {
        let base = tempfile::tempdir().unwrap();
        let dir = StateDir::open(base.path(), SaveMetrics::default()).unwrap();
        let files = dir.files().clone();
        assert_eq!(
            files
                .load::<BTreeMap<String, String>>("alerts.json", 2)
                .unwrap(),
            None
        );
        files.save("alerts.json", 2, &state()).unwrap();
        let path = files.path("alerts.json");
        assert_eq!(mode(&path), PRIVATE);
        assert_eq!(files.load("alerts.json", 2).unwrap(), Some(state()));

        // The same key (a restart) reads it; another directory's key does not.
        drop(dir);
        let dir = StateDir::open(base.path(), SaveMetrics::default()).unwrap();
        assert_eq!(dir.files().load("alerts.json", 2).unwrap(), Some(state()));
        let other = tempfile::tempdir().unwrap();
        std::fs::copy(&path, other.path().join("alerts.json")).unwrap();
        let foreign = StateDir::open(other.path(), SaveMetrics::default()).unwrap();
        let err = foreign
            .files()
            .load::<BTreeMap<String, String>>("alerts.json", 2)
            .unwrap_err();
        assert!(matches!(err, LoadError::Forged { .. }), "{err}");

        // An edit of the content, even one that keeps it valid, is refused.
        let text = std::fs::read_to_string(&path).unwrap();
        let edited = text.replace("goes via ZA", "all clear!!");
        assert_ne!(edited, text);
        std::fs::write(&path, edited).unwrap();
        let err = files
            .load::<BTreeMap<String, String>>("alerts.json", 2)
            .unwrap_err();
        assert!(matches!(err, LoadError::Forged { .. }), "{err}");
        assert!(err
            .to_string()
            .starts_with(&format!("{}: ", path.display())));
        let aside = files.move_aside("alerts.json", &err).unwrap();
        assert_eq!(aside, base.path().join("alerts.json.refused"));
        assert!(!path.exists());

        // Sealed as another file, it is refused too.
        files.save("paths.json", 2, &state()).unwrap();
        std::fs::rename(files.path("paths.json"), &path).unwrap();
        assert!(matches!(
            files.load::<BTreeMap<String, String>>("alerts.json", 2),
            Err(LoadError::Forged { .. })
        ));
    }

    #[test]
    fn versions_older_newer_and_damage_are_told_apart() {
        let base = tempfile::tempdir().unwrap();
        let dir = StateDir::open(base.path(), SaveMetrics::default()).unwrap();
        let files = dir.files();
        let path = files.path("paths.json");
        let load = || files.load::<BTreeMap<String, String>>("paths.json", 2);

        std::fs::write(&path, r#"{"version":1,"paths":{}}"#).unwrap();
        let err = load().unwrap_err();
        assert!(matches!(err, LoadError::Unsealed { found: 1, .. }), "{err}");
        assert_eq!(
            files.move_aside("paths.json", &err),
            Some(base.path().join("paths.json.refused"))
        );

        let future = r#"{"version":3,"mac":"x","state":{},"more":[1]}"#;
        std::fs::write(&path, future).unwrap();
        let err = load().unwrap_err();
        assert!(err.is_newer(), "{err}");
        assert_eq!(
            err.to_string(),
            format!(
                "{}: version 3 is newer than this transitwatch writes (2); it is left as it is: upgrade transitwatch, or move the file away to start without it",
                path.display()
            )
        );
        assert_eq!(files.move_aside("paths.json", &err), None);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), future);

        for damaged in [
            "{ not json",
            r#"{"version":2}"#,
            r#"{"version":2,"mac":"hmac-sha256:00","state":"#,
        ] {
            std::fs::write(&path, damaged).unwrap();
            let err = load().unwrap_err();
            assert!(matches!(err, LoadError::Damaged { .. }), "{damaged}: {err}");
        }
        std::fs::write(&path, r#"{"version":2,"mac":"hmac-sha256:zz","state":{}}"#).unwrap();
        assert!(matches!(load(), Err(LoadError::Forged { .. })));
    }

    #[test]
    fn a_damaged_key_is_replaced_and_its_files_refused() {
        let base = tempfile::tempdir().unwrap();
        let dir = StateDir::open(base.path(), SaveMetrics::default()).unwrap();
        dir.files().save("alerts.json", 2, &state()).unwrap();
        let key = std::fs::read_to_string(base.path().join(KEY_FILE)).unwrap();
        assert_eq!(key.trim().len(), 2 * KEY_LEN);
        drop(dir);
        std::fs::write(base.path().join(KEY_FILE), "short\n").unwrap();
        let dir = StateDir::open(base.path(), SaveMetrics::default()).unwrap();
        assert!(base.path().join("state.key.damaged").exists());
        let new = std::fs::read_to_string(base.path().join(KEY_FILE)).unwrap();
        assert_ne!(new, key);
        assert!(matches!(
            dir.files()
                .load::<BTreeMap<String, String>>("alerts.json", 2),
            Err(LoadError::Forged { .. })
        ));
    }

    #[test]
    fn saves_are_counted_by_file_and_result() {
        let registry = prometheus::Registry::new();
        let saves = SaveMetrics::register(&registry).unwrap();
        let base = tempfile::tempdir().unwrap();
        let dir = StateDir::open(base.path(), saves).unwrap();
        dir.files().save("paths.json", 2, &state()).unwrap();
        std::fs::create_dir(base.path().join("alerts.json")).unwrap();
        std::fs::write(base.path().join("alerts.json/x"), "").unwrap();
        let err = dir.files().save("alerts.json", 2, &state()).unwrap_err();
        assert!(err.to_string().contains("alerts.json"), "{err}");
        assert_eq!(dir.files().remove_temporaries("alerts.json").unwrap(), 0);
        let mut text = String::new();
        prometheus::TextEncoder::new()
            .encode_utf8(&registry.gather(), &mut text)
            .unwrap();
        for line in [
            "transitwatch_state_saves_total{file=\"paths.json\",result=\"ok\"} 1",
            "transitwatch_state_saves_total{file=\"alerts.json\",result=\"error\"} 1",
            "transitwatch_state_saves_total{file=\"alerts.json\",result=\"ok\"} 0",
        ] {
            assert!(text.contains(line), "{line}\n{text}");
        }
    }

    #[test]
    fn a_database_is_created_private_and_an_existing_one_made_so() {
        let base = tempfile::tempdir().unwrap();
        let db = base.path().join("transitwatch.db");
        private_database(&db).unwrap();
        assert_eq!(mode(&db), PRIVATE);
        let wal = base.path().join("transitwatch.db-wal");
        std::fs::write(&wal, "").unwrap();
        std::fs::set_permissions(&wal, Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(&db, Permissions::from_mode(0o666)).unwrap();
        private_database(&db).unwrap();
        assert_eq!((mode(&db), mode(&wal)), (PRIVATE, PRIVATE));
    }
}

//! Replacing a file atomically and durably: the one routine behind every
//! state file (`paths.json`, `alerts.json`), `geo build`'s database and
//! `export --output`, `analyze --output` and Parquet datasets.
//!
//! The new content goes to a temporary file in the target's folder
//! (`NAME.partial.PID-N`); the file is flushed to disk, renamed over the
//! target, and the folder is flushed so that the rename survives a power
//! loss. A reader (or a crash at any moment) therefore sees either the old
//! file whole or the new one whole, never a mix. When a step fails the
//! temporary file is removed; only a process killed mid-write leaves one
//! behind, beside an intact target.
//!
//! [`write_private`] makes the new file readable and writable by its owner
//! only (0600), whatever the umask: the temporary file is created with that
//! mode and set to it explicitly (the umask only removes bits, and a
//! leftover of a killed process keeps the mode it had). State files use it;
//! outputs for people and other programs (`geo build`, `export`) keep the
//! mode any new file gets. [`remove_temporaries`] removes what a killed
//! process left behind.
//!
//! A leaf: it depends on the standard library and `thiserror` only.

use std::ffi::OsString;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The step of a replacement that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Creating the temporary file.
    Create,
    /// Writing the new content to it.
    Write,
    /// Flushing it to disk.
    SyncFile,
    /// Renaming it over the target.
    Rename,
    /// Flushing the folder (which records the rename).
    SyncFolder,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Create => "creating the temporary file",
            Step::Write => "writing the temporary file",
            Step::SyncFile => "flushing the temporary file to disk",
            Step::Rename => "renaming the temporary file over it",
            Step::SyncFolder => "flushing its folder to disk",
        })
    }
}

/// A replacement that failed: the target, the step, the temporary file and
/// the system's reason. The target is unchanged unless the step is
/// [`Step::SyncFolder`] (then it holds the new content, maybe not durably).
#[derive(Debug, thiserror::Error)]
#[error("{}: {step} ({}): {source}", target.display(), temp.display())]
pub struct AtomicFileError {
    /// The file being replaced.
    pub target: PathBuf,
    /// The temporary file beside it.
    pub temp: PathBuf,
    /// What failed.
    pub step: Step,
    /// Why.
    #[source]
    pub source: io::Error,
}

/// A streamed replacement that failed: in the caller's writing, or in a
/// step of the replacement itself.
#[derive(Debug, thiserror::Error)]
pub enum WriteWithError<E> {
    /// The caller's closure failed (the temporary file is removed).
    #[error(transparent)]
    Fill(E),
    /// A step of the replacement failed.
    #[error(transparent)]
    File(#[from] AtomicFileError),
}

/// Replace `target` with `bytes`.
///
/// # Errors
/// A step failed; the target is unchanged (see [`AtomicFileError`]).
pub fn write(target: &Path, bytes: &[u8]) -> Result<(), AtomicFileError> {
    write_mode(target, None, bytes)
}

/// Replace `target` with `bytes` in a file only its owner may read and
/// write (0600, whatever the umask).
///
/// # Errors
/// A step failed; the target is unchanged (see [`AtomicFileError`]).
pub fn write_private(target: &Path, bytes: &[u8]) -> Result<(), AtomicFileError> {
    write_mode(target, Some(PRIVATE), bytes)
}

/// The mode of private files: read and write for the owner only.
pub const PRIVATE: u32 = 0o600;

fn write_mode(target: &Path, mode: Option<u32>, bytes: &[u8]) -> Result<(), AtomicFileError> {
    let (temp, result) = replace(target, mode, |file| file.write_all(bytes));
    result.map_err(|e| match e {
        WriteWithError::File(e) => e,
        WriteWithError::Fill(source) => AtomicFileError {
            target: target.to_path_buf(),
            temp,
            step: Step::Write,
            source,
        },
    })
}

/// Replace `target` with what `fill` writes to the temporary file (for
/// large outputs, streamed; wrap the file in a `BufWriter` for small
/// writes and flush it before returning).
///
/// # Errors
/// `fill` failed ([`WriteWithError::Fill`]) or a step of the replacement
/// did ([`WriteWithError::File`]); the target is unchanged either way.
pub fn write_with<E>(
    target: &Path,
    fill: impl FnOnce(&mut File) -> Result<(), E>,
) -> Result<(), WriteWithError<E>> {
    replace(target, None, fill).1
}

/// The replacement; also returns the temporary file's name.
fn replace<E>(
    target: &Path,
    mode: Option<u32>,
    fill: impl FnOnce(&mut File) -> Result<(), E>,
) -> (PathBuf, Result<(), WriteWithError<E>>) {
    let temp = temp_path(target);
    let result = replace_via(target, &temp, mode, fill);
    (temp, result)
}

fn replace_via<E>(
    target: &Path,
    temp: &Path,
    mode: Option<u32>,
    fill: impl FnOnce(&mut File) -> Result<(), E>,
) -> Result<(), WriteWithError<E>> {
    let fail = |step: Step| {
        move |source: io::Error| AtomicFileError {
            target: target.to_path_buf(),
            temp: temp.to_path_buf(),
            step,
            source,
        }
    };
    // Truncating: a file of this name is a leftover of a killed process
    // that had this process's id, never a replacement in progress.
    let mut file = create(temp, mode).map_err(fail(Step::Create))?;
    let written = match fill(&mut file) {
        Ok(()) => file.sync_all().map_err(fail(Step::SyncFile)),
        Err(e) => {
            drop(file);
            remove(temp);
            return Err(WriteWithError::Fill(e));
        }
    };
    drop(file);
    #[cfg(test)]
    tests::crash_point(target);
    if let Err(e) = written.and_then(|()| std::fs::rename(temp, target).map_err(fail(Step::Rename)))
    {
        remove(temp);
        return Err(e.into());
    }
    sync_folder(target).map_err(fail(Step::SyncFolder))?;
    Ok(())
}

/// A replacement written a piece at a time ([`Replacement::create`],
/// `Write`, [`Replacement::commit`]) when the content is not produced in
/// one closure: the same temporary file, flush, rename and folder flush as
/// [`write_with`]; dropped without a commit, the temporary file is removed
/// and the target stays as it was. A target that is not a regular file (a
/// device, a FIFO) is written in place: renaming over it would replace it.
pub struct Replacement {
    file: File,
    /// `None` when writing in place.
    temp: Option<PathBuf>,
    target: PathBuf,
}

impl Replacement {
    /// Start replacing `target`.
    ///
    /// # Errors
    /// The temporary file (or the device) cannot be opened.
    pub fn create(target: &Path) -> Result<Self, AtomicFileError> {
        if std::fs::metadata(target).is_ok_and(|m| !m.is_file()) {
            let file = OpenOptions::new()
                .write(true)
                .open(target)
                .map_err(|source| AtomicFileError {
                    target: target.to_path_buf(),
                    temp: target.to_path_buf(),
                    step: Step::Create,
                    source,
                })?;
            return Ok(Self {
                file,
                temp: None,
                target: target.to_path_buf(),
            });
        }
        let temp = temp_path(target);
        let file = create(&temp, None).map_err(|source| AtomicFileError {
            target: target.to_path_buf(),
            temp: temp.clone(),
            step: Step::Create,
            source,
        })?;
        Ok(Self {
            file,
            temp: Some(temp),
            target: target.to_path_buf(),
        })
    }

    /// Flush the content to disk and put it in place.
    ///
    /// # Errors
    /// A step failed; the target is unchanged unless it is
    /// [`Step::SyncFolder`].
    pub fn commit(mut self) -> Result<(), AtomicFileError> {
        let Some(temp) = self.temp.take() else {
            return Ok(());
        };
        let fail = |step: Step| {
            let (target, temp) = (self.target.clone(), temp.clone());
            move |source: io::Error| AtomicFileError {
                target,
                temp,
                step,
                source,
            }
        };
        let synced = self.file.sync_all().map_err(fail(Step::SyncFile));
        if let Err(e) =
            synced.and_then(|()| std::fs::rename(&temp, &self.target).map_err(fail(Step::Rename)))
        {
            remove(&temp);
            return Err(e);
        }
        sync_folder(&self.target).map_err(fail(Step::SyncFolder))
    }
}

impl Write for Replacement {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Drop for Replacement {
    fn drop(&mut self) {
        if let Some(temp) = &self.temp {
            remove(temp);
        }
    }
}

/// Put a folder that was filled beside its target in place: rename it to
/// `target` (an empty folder there is replaced) and flush the parent
/// folder. The files inside are the filler's to flush before.
///
/// # Errors
/// The target is a non-empty folder or a file, or the rename or flush
/// fails.
pub fn publish_folder(filled: &Path, target: &Path) -> io::Result<()> {
    if target.is_dir() {
        std::fs::remove_dir(target)?;
    }
    std::fs::rename(filled, target)?;
    sync_folder(target)
}

/// Create (or truncate) the temporary file; with a `mode`, exactly that
/// mode: created with it (no moment with wider rights) and then set to it,
/// since the umask may have removed bits and a leftover keeps its own.
fn create(temp: &Path, mode: Option<u32>) -> io::Result<File> {
    let Some(mode) = mode else {
        return File::create(temp);
    };
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(temp)?;
    if let Err(e) = file.set_permissions(std::fs::Permissions::from_mode(mode)) {
        drop(file);
        remove(temp);
        return Err(e);
    }
    Ok(file)
}

/// Remove the temporary files of replacements of `target` that a killed
/// process left behind (`NAME.partial.*` beside it); returns how many there
/// were. Only safe while no other process replaces `target` (the state
/// directory's lock guarantees it for state files).
///
/// # Errors
/// The folder cannot be listed, or a leftover cannot be removed.
pub fn remove_temporaries(target: &Path) -> io::Result<usize> {
    let Some(name) = target.file_name() else {
        return Ok(0);
    };
    let prefix = format!("{}.partial.", name.to_string_lossy());
    let folder = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut removed = 0;
    for entry in std::fs::read_dir(folder)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Numbers the temporary files of one process, so that two replacements
/// of one target at the same time do not share a temporary file. A plain
/// counter: uniqueness is all it gives, no ordering.
static NEXT: AtomicU64 = AtomicU64::new(0);

/// `NAME.partial.PID-N` beside `target`.
fn temp_path(target: &Path) -> PathBuf {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut name = target
        .file_name()
        .map_or_else(|| OsString::from("file"), OsString::from);
    name.push(format!(".partial.{}-{n}", std::process::id()));
    target.with_file_name(name)
}

/// Best effort: a temporary file is useless once a step failed.
fn remove(temp: &Path) {
    let _ = std::fs::remove_file(temp);
}

/// Flush the folder of `target`, which makes a rename in it durable. A file
/// system that cannot flush folders (it answers "invalid" or "unsupported")
/// has nothing to flush.
fn sync_folder(target: &Path) -> io::Result<()> {
    let folder = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match File::open(folder).and_then(|f| f.sync_all()) {
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::InvalidInput | io::ErrorKind::Unsupported
            ) =>
        {
            Ok(())
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    /// In the child role, the target whose replacement stops between the
    /// write and the rename (the parent kills the process there).
    const CHILD_ENV: &str = "TRANSITWATCH_ATOMIC_FILE_CHILD";

    /// Called between writing and renaming: in the child role, announce the
    /// moment on stdout and wait to be killed.
    pub(super) fn crash_point(target: &Path) {
        if std::env::var_os(CHILD_ENV).is_some_and(|t| Path::new(&t) == target) {
            println!("written");
            let _ = io::stdout().flush();
            std::thread::sleep(std::time::Duration::from_secs(120));
            std::process::exit(3);
        }
    }

    fn partials(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".partial."))
            .collect()
    }

    #[test]
    fn a_file_is_written_then_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("state.json");
        write(&target, b"one").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"one");
        write_with(&target, |f| f.write_all(b"two, longer")).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"two, longer");
        assert!(partials(dir.path()).is_empty());
    }

    #[test]
    fn a_failed_write_keeps_the_old_file_and_removes_the_temporary_one() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.csv");
        write(&target, b"old").unwrap();
        let err = write_with(&target, |f| {
            f.write_all(b"half of the new")?;
            Err::<(), _>(io::Error::other("the source broke"))
        })
        .unwrap_err();
        assert!(matches!(err, WriteWithError::Fill(_)));
        assert_eq!(std::fs::read(&target).unwrap(), b"old");
        assert!(partials(dir.path()).is_empty());

        // A target that is a folder: the rename fails.
        let folder = dir.path().join("folder");
        std::fs::create_dir(&folder).unwrap();
        std::fs::write(folder.join("inside"), b"x").unwrap();
        let err = write(&folder, b"new").unwrap_err();
        assert_eq!(err.step, Step::Rename);
        assert!(err.to_string().starts_with(&format!(
            "{}: renaming the temporary file over it (",
            folder.display()
        )));
        assert!(partials(dir.path()).is_empty());
    }

    #[test]
    fn a_private_file_is_0600_also_over_a_wider_leftover() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("alerts.json");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        write(&target, b"public").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o666)).unwrap();
        write_private(&target, b"private").unwrap();
        assert_eq!(mode(&target), 0o600);
        assert_eq!(std::fs::read(&target).unwrap(), b"private");

        // A leftover of a killed process: world-writable, then reused.
        let leftover = dir.path().join("alerts.json.partial.1-0");
        std::fs::write(&leftover, b"half").unwrap();
        std::fs::set_permissions(&leftover, std::fs::Permissions::from_mode(0o666)).unwrap();
        let file = create(&leftover, Some(PRIVATE)).unwrap();
        drop(file);
        assert_eq!(mode(&leftover), 0o600);
        assert_eq!(remove_temporaries(&target).unwrap(), 1);
        assert!(partials(dir.path()).is_empty());
        assert!(target.exists());
    }

    #[test]
    fn a_missing_folder_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("no/such/out.csv");
        let err = write(&target, b"x").unwrap_err();
        assert_eq!(err.step, Step::Create);
        let text = err.to_string();
        assert!(text.contains("no/such/out.csv.partial."), "{text}");
        assert!(text.contains("creating the temporary file"), "{text}");
    }

    /// Not a test of its own: the child role of
    /// `a_crash_between_write_and_rename_leaves_the_old_file_whole`. With
    /// the environment variable set it writes 64 MiB over the named file
    /// and stops before the rename (see [`crash_point`]).
    #[test]
    fn crash_child_role() {
        let Some(target) = std::env::var_os(CHILD_ENV) else {
            return;
        };
        let chunk = vec![b'n'; 1 << 20];
        let _ = write_with(Path::new(&target), |f| {
            (0..64).try_for_each(|_| f.write_all(&chunk))
        });
    }

    #[test]
    fn a_crash_between_write_and_rename_leaves_the_old_file_whole() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("paths.json");
        let old: Vec<u8> = (0..100_000u32).flat_map(u32::to_le_bytes).collect();
        write(&target, &old).unwrap();

        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "atomic_file::tests::crash_child_role",
                "--nocapture",
                "--quiet",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &target)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdout = io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        loop {
            line.clear();
            let n = io::BufRead::read_line(&mut stdout, &mut line).unwrap();
            assert!(n > 0, "the child ended before writing");
            if line.trim() == "written" {
                break;
            }
        }
        // SIGKILL: no destructor, no clean-up runs.
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert!(!status.success());

        assert_eq!(std::fs::read(&target).unwrap(), old, "the old file changed");
        let left = partials(dir.path());
        assert_eq!(left.len(), 1, "{left:?}");
        let temp = dir.path().join(&left[0]);
        assert_eq!(std::fs::metadata(&temp).unwrap().len(), 64 << 20);

        // The next save works and replaces the file whole.
        write(&target, b"after the crash").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"after the crash");
    }
}

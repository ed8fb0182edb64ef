//! The daemon's store writer: a dedicated thread that owns the write
//! connection, stores the records it is handed, and applies retention.
//!
//! `SQLite` calls block (on the disk, on locks), so they never run on the
//! async workers that schedule traces. The daemon hands records over with
//! [`HistoryWriter::submit`], which never blocks: a full queue drops the record
//! and says so ([`Written::Dropped`]), because a stalled disk must not stall
//! tracing, and the live state (metrics, API) does not depend on the
//! history. Each record's fate is reported to a callback (the daemon counts
//! it in `transitwatch_store_writes_total{result}`).
//!
//! Failures are never fatal: a store that cannot be opened is tried again
//! every [`REOPEN_EVERY`] (records meanwhile count as errors), a failed
//! write (disk full, database locked) is counted and logged, and the next
//! record is tried as usual. Logs are throttled to one line per
//! [`LOG_EVERY`] with the number of failures since.

use super::{NewTrace, Retention, Store};
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Records waiting for the writer before new ones are dropped. At a few KiB
/// per record this bounds the queue to some tens of MiB, and it absorbs
/// minutes of a slow disk at the trace rates a daemon runs.
pub const QUEUE: usize = 4096;
/// How often retention runs (it also runs once at start).
pub const PRUNE_EVERY: Duration = Duration::from_secs(600);
/// How long after a failed open the store is tried again.
pub const REOPEN_EVERY: Duration = Duration::from_secs(30);
/// At most one failure log line per this period.
pub const LOG_EVERY: Duration = Duration::from_secs(60);

/// What became of one submitted record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// Committed under this trace id.
    Stored(i64),
    /// Not stored: the store failed (the message says how).
    Failed(String),
    /// Not stored: the queue was full or the writer had stopped.
    Dropped,
}

impl Written {
    /// The `result` label of `transitwatch_store_writes_total`.
    #[must_use]
    pub const fn label(&self) -> &'static str {
        match self {
            Self::Stored(_) => "ok",
            Self::Failed(_) => "error",
            Self::Dropped => "dropped",
        }
    }
}

/// Called with the fate of every submitted record, on whichever thread
/// decided it.
pub type Report = Arc<dyn Fn(&Written) + Send + Sync>;

/// The sending side of a running writer thread; clones share the thread.
#[derive(Clone)]
pub struct HistoryWriter {
    // Bounded: memory stays capped whatever the disk does; `submit` uses
    // `try_send`, so the sender never waits.
    queue: SyncSender<NewTrace>,
    report: Report,
}

/// Waits for a writer thread to finish.
pub struct Finished {
    // Signalled by the thread once every `HistoryWriter` is gone and it has
    // stored the queued records and closed the database, so `wait` can use
    // a time limit.
    done: Receiver<()>,
}

impl Finished {
    /// Wait at most `wait` for the thread to store what is queued and close
    /// the database (it does so once every [`HistoryWriter`] clone is dropped).
    /// Returns whether it finished in time; if not, it goes on until the
    /// process ends.
    #[must_use]
    pub fn wait(self, wait: Duration) -> bool {
        self.done.recv_timeout(wait).is_ok()
    }
}

impl HistoryWriter {
    /// Start the thread; it opens (or creates) the store at `path` and
    /// prunes it with `retention` at start and every [`PRUNE_EVERY`].
    ///
    /// # Errors
    /// The thread could not be started.
    pub fn start(
        path: PathBuf,
        retention: Retention,
        report: Report,
    ) -> std::io::Result<(Self, Finished)> {
        let (queue, records) = mpsc::sync_channel(QUEUE);
        let (done_tx, done) = mpsc::channel();
        let thread_report = Arc::clone(&report);
        std::thread::Builder::new()
            .name("transitwatch-store".to_string())
            .spawn(move || {
                Worker::new(path, retention, thread_report).run(&records);
                let _ = done_tx.send(());
            })?;
        Ok((Self { queue, report }, Finished { done }))
    }

    /// Hand a record to the writer without waiting; a full queue drops it.
    pub fn submit(&self, trace: NewTrace) {
        match self.queue.try_send(trace) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                (self.report)(&Written::Dropped);
            }
        }
    }
}

/// The thread's state.
struct Worker {
    path: PathBuf,
    retention: Retention,
    report: Report,
    store: Option<Store>,
    next_open: Instant,
    next_prune: Instant,
    failures: Failures,
}

impl Worker {
    fn new(path: PathBuf, retention: Retention, report: Report) -> Self {
        let now = Instant::now();
        Self {
            path,
            retention,
            report,
            store: None,
            next_open: now,
            next_prune: now,
            failures: Failures::default(),
        }
    }

    fn run(mut self, records: &Receiver<NewTrace>) {
        loop {
            self.maintain();
            let wake = if self.store.is_some() {
                self.next_prune
            } else {
                self.next_open
            };
            let wait = wake.saturating_duration_since(Instant::now());
            match records.recv_timeout(wait) {
                Ok(trace) => self.write(&trace),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        if let Some(store) = self.store.take() {
            tracing::debug!(path = %store.path().display(), "trace store closed");
        }
    }

    /// Open the store when it is due; prune when that is due.
    fn maintain(&mut self) {
        let now = Instant::now();
        if self.store.is_none() && now >= self.next_open {
            match Store::open(&self.path) {
                Ok(store) => {
                    tracing::info!(path = %self.path.display(), "trace store open");
                    self.store = Some(store);
                    self.next_prune = now;
                }
                Err(e) => {
                    self.next_open = now + REOPEN_EVERY;
                    self.failures
                        .log(&e.to_string(), "cannot open the trace store");
                }
            }
        }
        let Some(store) = self.store.as_mut() else {
            return;
        };
        if now < self.next_prune {
            return;
        }
        self.next_prune = now + PRUNE_EVERY;
        match store.prune(&self.retention, unix_now()) {
            Ok(p) if p.by_age + p.by_size > 0 => tracing::info!(
                by_age = p.by_age,
                by_size = p.by_size,
                bytes_in_use = p.bytes_in_use,
                "trace store pruned"
            ),
            Ok(_) => {}
            Err(e) => self
                .failures
                .log(&e.to_string(), "trace store retention failed"),
        }
    }

    fn write(&mut self, trace: &NewTrace) {
        let written = match self.store.as_mut() {
            Some(store) => match store.insert(trace) {
                Ok(id) => Written::Stored(id),
                Err(e) => Written::Failed(e.to_string()),
            },
            None => Written::Failed(format!(
                "{}: the trace store is not open",
                self.path.display()
            )),
        };
        if let Written::Failed(why) = &written {
            self.failures.log(why, "cannot store a trace");
        }
        (self.report)(&written);
    }
}

/// Throttled failure logging.
#[derive(Default)]
struct Failures {
    last_logged: Option<Instant>,
    unlogged: u64,
}

impl Failures {
    fn log(&mut self, error: &str, message: &'static str) {
        let now = Instant::now();
        if self
            .last_logged
            .is_some_and(|at| now.duration_since(at) < LOG_EVERY)
        {
            self.unlogged += 1;
            return;
        }
        tracing::error!(error, failures_since_last_log = self.unlogged, "{message}");
        self.last_logged = Some(now);
        self.unlogged = 0;
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

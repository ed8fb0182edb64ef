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
//! Records are written in batches, one transaction each: a record and
//! whatever arrives within [`LINGER`] after it (at most [`BATCH`]). Each
//! commit writes every page it changed to the write-ahead log, so a commit
//! per trace cost more than the trace's insert itself.
//!
//! Failures are never fatal: a store that cannot be opened is tried again
//! every [`REOPEN_EVERY`] (records meanwhile count as errors), a failed
//! write (disk full, database locked) is counted and logged, and the next
//! record is tried as usual. Logs are throttled to one line per
//! [`LOG_EVERY`] with the number of failures since.
//!
//! **A damaged database.** Once opened, the database is checked
//! ([`Store::check`]); so is it when a write or retention meets a damaged
//! page. A damaged database is reported in one error line (the file, how
//! many stored traces cannot be read of how many) and in
//! [`StoreMetrics`], closed, and no longer written until the daemon is
//! restarted on a recovered or new file: writing into a damaged b-tree
//! can spread the damage (retention's deletes and vacuum move pages
//! around), and recovery works best on the file as it was found. Tracing,
//! metrics and the API go on; the records meanwhile count as errors.
//!
//! **The configuration in force** is handed over with
//! [`HistoryWriter::keep_config`] at start and at every accepted reload.
//! The writer stores it ([`Store::put_config`]) as soon as the store is
//! open, again after a reopen, and always before the next record, so
//! every stored trace's configuration is stored before the trace; it is
//! also spared by the pruning of unused configurations while no trace
//! names it yet. A configuration that cannot be stored is logged (records
//! go on being stored: they still name it by its SHA-256).

use super::{ConfigText, Integrity, NewTrace, Retention, Store, StoreError, StoreMetrics};
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Records waiting for the writer before new ones are dropped. At a few KiB
/// per record this bounds the queue to some tens of MiB, and it absorbs
/// minutes of a slow disk at the trace rates a daemon runs.
pub const QUEUE: usize = 4096;
/// Most records written in one transaction.
pub const BATCH: usize = 256;
/// How long the writer waits for more records to write with the first in
/// one transaction. Records waiting are lost if the process is killed, as
/// queued ones are; the live state (metrics, API) never waits for them.
pub const LINGER: Duration = Duration::from_millis(100);
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
    // Unbounded, and never dropped: one message per start or reload, and
    // the traces that follow name the configuration it carries. The
    // writer drains it before every record, so a configuration handed
    // over before a record is stored before it.
    configs: mpsc::Sender<ConfigText>,
    report: Report,
}

/// Hands the configuration in force to a writer thread
/// ([`HistoryWriter::config_sender`]); the thread stops once every
/// [`HistoryWriter`] is gone, whatever these handles do.
#[derive(Clone)]
pub struct ConfigSender(mpsc::Sender<ConfigText>);

impl ConfigSender {
    /// See [`HistoryWriter::keep_config`].
    pub fn keep(&self, config: ConfigText) {
        // Fails only once the thread has stopped, when nothing more is
        // stored anyway.
        let _ = self.0.send(config);
    }
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
    /// Start the thread; it opens (or creates) the store at `path`, checks
    /// it (publishing the result in `metrics`), and prunes it with
    /// `retention` at start and every [`PRUNE_EVERY`].
    ///
    /// # Errors
    /// The thread could not be started.
    pub fn start(
        path: PathBuf,
        retention: Retention,
        metrics: StoreMetrics,
        report: Report,
    ) -> std::io::Result<(Self, Finished)> {
        let (queue, records) = mpsc::sync_channel(QUEUE);
        let (configs, config_rx) = mpsc::channel();
        let (done_tx, done) = mpsc::channel();
        let thread_report = Arc::clone(&report);
        std::thread::Builder::new()
            .name("transitwatch-store".to_string())
            .spawn(move || {
                Worker::new(path, retention, metrics, thread_report).run(&records, &config_rx);
                let _ = done_tx.send(());
            })?;
        Ok((
            Self {
                queue,
                configs,
                report,
            },
            Finished { done },
        ))
    }

    /// The configuration now in force: stored before the next record
    /// (see the module docs). Never blocks.
    pub fn keep_config(&self, config: ConfigText) {
        self.config_sender().keep(config);
    }

    /// A handle that hands configurations to this writer's thread without
    /// keeping it running (a [`HistoryWriter`] clone would).
    #[must_use]
    pub fn config_sender(&self) -> ConfigSender {
        ConfigSender(self.configs.clone())
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
    metrics: StoreMetrics,
    report: Report,
    store: Option<Store>,
    /// The configuration in force, and whether the open store holds it.
    config: Option<ConfigText>,
    config_stored: bool,
    /// Set once the database was found damaged: nothing is written to it
    /// again (see the module docs).
    damaged: bool,
    next_open: Instant,
    next_prune: Instant,
    failures: Failures,
}

impl Worker {
    fn new(path: PathBuf, retention: Retention, metrics: StoreMetrics, report: Report) -> Self {
        let now = Instant::now();
        Self {
            path,
            retention,
            metrics,
            report,
            store: None,
            config: None,
            config_stored: false,
            damaged: false,
            next_open: now,
            next_prune: now,
            failures: Failures::default(),
        }
    }

    fn run(mut self, records: &Receiver<NewTrace>, configs: &Receiver<ConfigText>) {
        loop {
            self.take_configs(configs);
            self.maintain();
            let wake = if self.store.is_some() {
                Some(self.next_prune)
            } else if self.damaged {
                None
            } else {
                Some(self.next_open)
            };
            let next = match wake {
                Some(wake) => records.recv_timeout(wake.saturating_duration_since(Instant::now())),
                // Nothing to maintain: wait for records only.
                None => records.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            match next {
                Ok(trace) => {
                    let (batch, open) = gather(trace, records);
                    // A configuration handed over before these records is
                    // in the channel by now: store it first.
                    self.take_configs(configs);
                    self.store_config();
                    self.write(&batch);
                    if !open {
                        break;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        if let Some(store) = self.store.take() {
            tracing::debug!(path = %store.path().display(), "trace store closed");
        }
    }

    /// The latest configuration handed over, if any.
    fn take_configs(&mut self, configs: &Receiver<ConfigText>) {
        while let Ok(config) = configs.try_recv() {
            self.config_stored = self.config.as_ref() == Some(&config) && self.config_stored;
            self.config = Some(config);
        }
    }

    /// Store the configuration in force in the open store, once.
    fn store_config(&mut self) {
        let (Some(store), Some(config)) = (self.store.as_mut(), self.config.as_ref()) else {
            return;
        };
        if self.config_stored {
            return;
        }
        match store.put_config(&config.sha256, &config.content, unix_now()) {
            Ok(added) => {
                if added {
                    tracing::info!(sha256 = %config.sha256, bytes = config.content.len(), "configuration stored in the trace store");
                }
                self.config_stored = true;
            }
            // Wrong bytes or too large: trying again cannot help.
            Err(e @ (StoreError::ConfigMismatch { .. } | StoreError::ConfigTooLarge { .. })) => {
                tracing::error!(error = %e, "the configuration is not kept in the history; its traces name it by SHA-256 only");
                self.config_stored = true;
            }
            Err(e) => {
                self.failures
                    .log(&e.to_string(), "cannot store the configuration");
                self.recheck(&e);
            }
        }
    }

    /// Open the store when it is due; prune when that is due.
    fn maintain(&mut self) {
        let now = Instant::now();
        if self.store.is_none() && !self.damaged && now >= self.next_open {
            let opened = Store::open(&self.path).and_then(|store| {
                let integrity = store.check()?;
                Ok((store, integrity))
            });
            match opened {
                Ok((store, Integrity::Intact)) => {
                    tracing::info!(path = %self.path.display(), "trace store open");
                    self.metrics.intact();
                    self.store = Some(store);
                    self.config_stored = false;
                    self.next_prune = now;
                }
                Ok((_, Integrity::Damaged(damage))) => self.stop_writing(&damage),
                Err(e) => {
                    self.metrics.unavailable();
                    self.next_open = now + REOPEN_EVERY;
                    self.failures
                        .log(&e.to_string(), "cannot open the trace store");
                }
            }
        }
        // Before retention: the configuration in force is then stored
        // (and spared by it).
        self.store_config();
        let Some(store) = self.store.as_mut() else {
            return;
        };
        if now < self.next_prune {
            return;
        }
        self.next_prune = now + PRUNE_EVERY;
        let keep = self.config.as_ref().map(|c| c.sha256.as_str());
        let pruned = store
            .prune(&self.retention, unix_now())
            .and_then(|p| Ok((p, store.prune_configs(keep)?)));
        match pruned {
            Ok((p, configs)) if p.by_age + p.by_size + configs > 0 => tracing::info!(
                by_age = p.by_age,
                by_size = p.by_size,
                configs,
                bytes_in_use = p.bytes_in_use,
                "trace store pruned"
            ),
            Ok(_) => {}
            Err(e) => {
                self.failures
                    .log(&e.to_string(), "trace store retention failed");
                self.recheck(&e);
            }
        }
    }

    /// After `error`: when it was a damaged page, check the database and
    /// stop writing to it if it is damaged.
    fn recheck(&mut self, error: &StoreError) {
        if !error.is_damage() {
            return;
        }
        let Some(store) = self.store.as_ref() else {
            return;
        };
        match store.check() {
            Ok(Integrity::Damaged(damage)) => self.stop_writing(&damage),
            Ok(Integrity::Intact) => {}
            Err(e) => self
                .failures
                .log(&e.to_string(), "cannot check the trace store"),
        }
    }

    /// The degraded mode: report the damage, close the database, write no
    /// more history.
    fn stop_writing(&mut self, damage: &super::Damage) {
        tracing::error!(
            "{damage}; history is no longer written to it (tracing and metrics go on): \
             stop transitwatch, recover or move the file aside, and start it again"
        );
        self.metrics.damaged(damage.unreadable);
        self.store = None;
        self.damaged = true;
    }

    fn write(&mut self, batch: &[NewTrace]) {
        let results = match self.store.as_mut() {
            Some(store) => store.insert_batch(batch),
            None => {
                let why = if self.damaged {
                    format!(
                        "{}: the trace store is damaged; history is not written until it is recovered",
                        self.path.display()
                    )
                } else {
                    format!("{}: the trace store is not open", self.path.display())
                };
                self.failures.log(&why, "cannot store a trace");
                for _ in batch {
                    (self.report)(&Written::Failed(why.clone()));
                }
                return;
            }
        };
        let mut damage = None;
        for result in results {
            let written = match result {
                Ok(id) => Written::Stored(id),
                Err(e) => {
                    let why = e.to_string();
                    self.failures.log(&why, "cannot store a trace");
                    if damage.is_none() && e.is_damage() {
                        damage = Some(e);
                    }
                    Written::Failed(why)
                }
            };
            (self.report)(&written);
        }
        if let Some(e) = damage {
            self.recheck(&e);
        }
    }
}

/// The records of one transaction: `first`, then those that arrive within
/// [`LINGER`] of it, at most [`BATCH`]. A commit writes every page it
/// changed to the log, so one commit per burst of traces instead of one per
/// trace saves most of the writing. Also whether the queue is still open.
fn gather(first: NewTrace, records: &Receiver<NewTrace>) -> (Vec<NewTrace>, bool) {
    let until = Instant::now() + LINGER;
    let mut batch = vec![first];
    while batch.len() < BATCH {
        match records.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Ok(trace) => batch.push(trace),
            Err(RecvTimeoutError::Timeout) => return (batch, true),
            Err(RecvTimeoutError::Disconnected) => return (batch, false),
        }
    }
    (batch, true)
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

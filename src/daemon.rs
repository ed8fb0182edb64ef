//! `transitwatch run`: the daemon's wiring and lifecycle.
//!
//! ```text
//! scheduler (+ reverse DNS) ──TraceOutcome──► consumer ──► judge (geo + analysis) ──► PathBook ──► Notifier ──► Metrics
//!                                                                   │                         │
//!                                           store writer ◄──────────┤                         │
//!                                            (SQLite)               └───────── HTTP ◄─────────┘
//! ```
//!
//! Every record the path book accepted is also handed to the store writer
//! (its own thread, see [`crate::store::writer`]) with the configuration's
//! SHA-256 and the GeoIP databases in force; the history file is `[store]
//! path`, or `transitwatch.db` in the state directory when that key is not
//! set. A failing store is logged and counted, never fatal. `[store]`
//! changes take effect at the next start, not on reload. The
//! configuration file's exact bytes are handed to the writer at start and
//! at every accepted reload and kept in the history under their SHA-256
//! (`transitwatch history config`).
//!
//! The state directory ([`crate::state_dir`]) is taken before anything is
//! written: locked for the daemon's life (a second daemon on it stops,
//! exit 2, naming the holder's pid), 0700, its files 0600 and sealed. A
//! state file of a newer version stops the start (exit 2) and stays as it
//! is; one this daemon did not write is refused and moved aside. At stop
//! the path book and the alert state are saved a last time: if either save
//! fails the daemon exits 1 naming the file ([`DaemonError::FinalSave`]),
//! and no temporary file is left behind.
//!
//! Controls arrive on a channel (the binary maps signals to them): `Reload`
//! loads the configuration and GeoIP files again and swaps them in only if
//! both are valid; `Stop { graceful: true }` stops scheduling and lets the
//! traces in flight finish within the drain period; `Stop { graceful:
//! false }` ends at once. The HTTP endpoint only reads what the consumer
//! wrote: a scrape never starts a probe. `/api/v1/whatif` is answered from
//! the path book's latest records of the configured targets.
//!
//! The one route that measures, `POST /api/v1/targets/{name}/trace`, asks
//! the daemon as an [`OnDemandTracer`]: the running scheduler generation's
//! [`Measurer`] (its prober, probe permits and reverse DNS) traces the
//! configured target, and the generation's geolocation and the target's
//! policy judge it, as a scheduled trace is judged. The records are
//! answered and nothing else: the path book, metrics, alerts and history
//! follow the schedule alone, so no client can make them move. While the
//! daemon stops, no trace on demand starts.
//!
//! The web configuration (`[metrics] web_config_file`, or `run
//! --web.config.file`, which wins) is read at start and on reload with the
//! rest: a broken one stops the start (exit 2) or rejects the reload. The
//! HTTP endpoint takes each new one through a watch channel.

use crate::alert::{Notifier, Subject};
use crate::analysis::Policy;
use crate::config::{Config, RdnsConfig};
use crate::dependency::overview::{overview, Accepted, Overview};
use crate::geo::GeoDb;
use crate::http::{
    self, Endpoint, OnDemandError, OnDemandTracer, StateView, TraceFuture, ViewError, WebConfig,
    WebConfigError,
};
use crate::metrics::DependencyView;
use crate::metrics::{Metrics, PerHop};
use crate::model::CountryCode;
use crate::model::{Coordinates, PathKey, TraceRecord, VantageRef};
use crate::operators::OperatorTable;
use crate::paths::PathBook;
use crate::pipeline::{judge, probe_settings};
use crate::probe::{FdBudget, PathHint, SlotPool, TrippyProber, TRACER_THREADS};
use crate::report::ReportFormat;
use crate::reverse_dns::{RdnsMetrics, ReverseDns};
use crate::scheduler::{self, Cadence, Job, Measurer, PathHints, TraceOutcome};
use crate::state_dir::{LoadError, SaveError, StateDir, StateDirError, StateFiles};
use crate::store::writer::{HistoryWriter, Written};
use crate::store::{
    ConfigText, GeoIpDatabase, LocationFile, NewTrace, Provenance, Query, Retention, Store,
};
use crate::units::Timestamp;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// DNS dependency resolutions in flight at most (each holds up to two UDP
/// sockets at a time: far within the descriptors the probe budget leaves
/// for everything but the tracers).
const RESOLUTIONS: usize = 16;
/// How long a graceful stop waits for traces in flight.
pub const DEFAULT_DRAIN: Duration = Duration::from_secs(10);
/// How often the path book is saved while running.
const SAVE_EVERY: Duration = Duration::from_secs(5);
/// How long a stop waits for the store writer to store what is queued.
const STORE_FLUSH: Duration = Duration::from_secs(5);
/// The history file's name in the state directory when `[store] path` is
/// not set.
pub const STORE_FILE: &str = "transitwatch.db";
/// Blocking threads beside the tracers': HTTP answers, host name lookups,
/// the store's flush at stop, giving memory back. Traces never take them
/// (at most [`TRACER_THREADS`] trace at once), so these never wait for a
/// trace to end.
const OTHER_BLOCKING_THREADS: usize = 12;
/// Runtime worker threads at most: the async side only schedules, judges
/// and serves; tracing and storing run on threads of their own.
const MAX_WORKER_THREADS: usize = 4;

/// The runtime `run` needs: its blocking pool capped at the tracers' bound
/// plus [`OTHER_BLOCKING_THREADS`], its workers at [`MAX_WORKER_THREADS`],
/// so the daemon's thread count stays bounded however many targets it has
/// (uncapped, tokio's pool grows to 512 threads under a burst of traces).
///
/// # Errors
/// When the runtime cannot start its threads.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let workers = std::thread::available_parallelism()
        .map_or(2, std::num::NonZeroUsize::get)
        .min(MAX_WORKER_THREADS);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .max_blocking_threads(TRACER_THREADS + OTHER_BLOCKING_THREADS)
        .enable_all()
        .build()
}

/// What the daemon is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Reload configuration and GeoIP files (SIGHUP).
    Reload,
    /// Stop: gracefully (SIGTERM) or at once (SIGINT).
    Stop {
        /// Drain traces in flight first.
        graceful: bool,
    },
}

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The configuration file is unusable.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// A GeoIP file is unusable.
    #[error(transparent)]
    Geo(#[from] crate::geo::GeoError),
    /// The web configuration file is unusable.
    #[error(transparent)]
    WebConfig(#[from] WebConfigError),
    /// The state directory, the listener or the store writer could not be
    /// set up.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// The state directory is held by another daemon, or cannot be set up.
    #[error(transparent)]
    StateDir(#[from] StateDirError),
    /// A state file is of a newer version (left as it is).
    #[error(transparent)]
    StateFile(#[from] LoadError),
    /// A state file could not be saved at stop: what changed since its
    /// last save is lost.
    #[error("the state was not saved at stop: {0}")]
    FinalSave(SaveError),
}

impl DaemonError {
    /// The process exit code: 2 for what the operator must fix before a
    /// start can work (configuration, GeoIP files, a state directory held
    /// by another daemon, a state file of a newer version), 1 for the rest.
    #[must_use]
    pub const fn exit_code(&self) -> u8 {
        match self {
            Self::Config(_) | Self::Geo(_) | Self::WebConfig(_) | Self::StateFile(_) => 2,
            Self::StateDir(e) => e.exit_code(),
            Self::Setup(_) | Self::FinalSave(_) => 1,
        }
    }
}

/// What of the daemon's own set-up failed (besides the state directory).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The metrics address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// `[metrics] listen`.
        addr: std::net::SocketAddr,
        /// What failed.
        source: std::io::Error,
    },
    /// The store writer's thread cannot be started.
    #[error("cannot start the store writer: {0}")]
    StoreWriter(std::io::Error),
}

/// Start-up options besides the configuration file.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// The configuration file.
    pub config: PathBuf,
    /// Where the path state (and, without `[store] path`, the history)
    /// lives; default: `$STATE_DIRECTORY`, else the folder of `[store] path`.
    pub state_dir: Option<PathBuf>,
    /// How long a graceful stop waits.
    pub drain: Duration,
    /// The web configuration file, over `[metrics] web_config_file`.
    pub web_config: Option<PathBuf>,
}

/// The configuration of one generation (replaced whole by a reload).
struct Generation {
    jobs: HashMap<String, Job>,
    /// How name servers' dependency paths are judged: home is the home
    /// country, nothing else allowed (a server is no service with its own
    /// policy; several services may share it).
    nameserver_policy: Policy,
    geo: Arc<GeoDb>,
    vantage_at: Option<Coordinates>,
    provenance: Arc<Provenance>,
    /// The live report's categories and rules, from this configuration.
    report: crate::report::Options,
    /// Each target's accepted dependencies, for the dependency overview.
    accepted: BTreeMap<String, Accepted>,
    /// The operator table, for the dependency overview.
    operators: OperatorTable,
    /// The home country.
    home: CountryCode,
}

impl Generation {
    fn new(config: &Config, geo: GeoDb) -> Self {
        // The files as this generation's `GeoDb` read them: a reload opens
        // them again, so its records carry the hashes of the new bytes.
        let provenance = Arc::new(Provenance {
            config_sha256: Some(config.sha256.clone()),
            geoip: GeoIpDatabase::of(geo.databases()),
            location_files: LocationFile::of(geo.location_files()),
            version: env!("CARGO_PKG_VERSION").to_string(),
        });
        Self {
            jobs: jobs_of(config),
            nameserver_policy: Policy {
                home: Some(config.policy.home),
                also_home: Vec::new(),
                allowed: vec![config.policy.home],
                min_confidence: config.policy.min_confidence,
                counts_only: false,
            },
            geo: Arc::new(geo),
            vantage_at: vantage_at(config),
            provenance,
            report: crate::report::Options::of_config(config),
            accepted: config
                .targets
                .iter()
                .map(|t| {
                    let accepted = Accepted {
                        countries: t.accepted_countries.clone(),
                        operators: t.accepted_operators.clone(),
                    };
                    (t.name.clone(), accepted)
                })
                .collect(),
            operators: config.dependency.table.clone(),
            home: config.policy.home,
        }
    }
}

/// State shared by the consumer and the HTTP endpoint.
struct DaemonState {
    metrics: Metrics,
    // std Mutex: every holder does map work only, never awaits; the HTTP
    // side copies what it needs and releases at once.
    book: Mutex<PathBook>,
    // Swapped whole on reload; readers clone the Arc and release.
    generation: RwLock<Arc<Generation>>,
    // Names that have not finished a first attempt; empty means ready.
    pending: Mutex<HashSet<String>>,
    ready: AtomicBool,
    // std Mutex: held for a synchronous observe or reconfigure only, never
    // across an await; taken out (None) at stop so its tasks can be awaited.
    notifier: Mutex<Option<Notifier>>,
    // The history database, read by `/api/v1/traces`.
    store_file: PathBuf,
    // The last dependency overview, replaced whole by each refresh; the
    // HTTP side clones the Arc and releases at once.
    dependencies: Mutex<Option<Arc<Overview>>>,
    // The running scheduler generation's measurer, for traces on demand:
    // replaced on reload, taken out (None) at stop; readers clone it and
    // release at once.
    measurer: RwLock<Option<Measurer<TrippyProber>>>,
}

impl DaemonState {
    fn generation(&self) -> Option<Arc<Generation>> {
        self.generation.read().ok().map(|g| Arc::clone(&g))
    }
}

impl StateView for DaemonState {
    fn metrics(&self) -> Result<String, ViewError> {
        Ok(self.metrics.render()?)
    }

    fn ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    fn targets(&self) -> serde_json::Value {
        let Some(generation) = self.generation() else {
            return serde_json::json!([]);
        };
        let Ok(book) = self.book.lock() else {
            return serde_json::json!([]);
        };
        let mut names: Vec<&String> = generation.jobs.keys().collect();
        names.sort();
        let list: Vec<serde_json::Value> = names
            .into_iter()
            .map(|name| {
                let job = &generation.jobs[name];
                let mut target_since: Option<Timestamp> = None;
                let paths: Vec<serde_json::Value> = book
                    .iter()
                    .filter(|(key, _, _)| key.belongs_to(name))
                    .map(|(key, r, changes)| {
                        let since = book.since(key);
                        target_since = target_since.max(since);
                        let mut path = serde_json::json!({
                            "key": key.to_string(),
                            "since": since,
                            "addr": r.trace.target.addr,
                            "started_at": r.trace.started_at,
                            "reached": r.trace.reached,
                            "class": r.verdict.class,
                            "violation": r.verdict.violation,
                            "countries": r.verdict.countries,
                            "path_id": r.verdict.path_id,
                            "changes": changes,
                            "explanation": r.verdict.explanation,
                        });
                        // The last enumeration of its load-balanced paths,
                        // in brief (the record of that trace has it whole).
                        if let (Some(m), Some(fields)) = (book.multipath(key), path.as_object_mut())
                        {
                            fields.insert(
                                "multipath".to_string(),
                                serde_json::json!({
                                    "started_at": m.started_at,
                                    "flows": m.flows,
                                    "paths": m.paths.len(),
                                    "crossing": m.crossing,
                                    "set_id": m.set_id,
                                    "summary": m.summary,
                                }),
                            );
                        }
                        path
                    })
                    .collect();
                serde_json::json!({
                    "name": name,
                    "since": target_since,
                    "host": job.host,
                    "category": job.category,
                    "protocol": job.settings.protocol,
                    "paths": paths,
                })
            })
            .collect();
        serde_json::Value::Array(list)
    }

    fn latest(&self, target: &str) -> Option<serde_json::Value> {
        let book = self.book.lock().ok()?;
        let records: Vec<serde_json::Value> = book
            .iter()
            .filter(|(key, _, _)| key.belongs_to(target))
            .filter_map(|(_, r, _)| serde_json::to_value(r).ok())
            .collect();
        (!records.is_empty()).then_some(serde_json::Value::Array(records))
    }

    fn is_target(&self, target: &str) -> bool {
        self.generation()
            .is_some_and(|generation| generation.jobs.contains_key(target))
    }

    fn each_latest(&self, each: &mut dyn FnMut(&PathKey, &TraceRecord)) -> Result<(), ViewError> {
        let Some(generation) = self.generation() else {
            return Ok(());
        };
        // A poisoned lock still holds a consistent book (every update is
        // one insert or replacement); `each` only takes notes under it.
        let book = match self.book.lock() {
            Ok(book) => book,
            Err(poisoned) => poisoned.into_inner(),
        };
        for (key, record, _) in book.iter() {
            // Saved paths of targets no longer configured are not services
            // (name servers' paths are read beside the services').
            if key.is_dependency() || generation.jobs.contains_key(key.target()) {
                each(key, record);
            }
        }
        Ok(())
    }

    fn dependencies(&self) -> Option<serde_json::Value> {
        let overview = self.dependencies.lock().ok()?.clone()?;
        serde_json::to_value(&*overview).ok()
    }

    fn operators(&self) -> crate::operators::OperatorTable {
        self.generation()
            .and_then(|g| g.report.operators.clone())
            .unwrap_or_else(|| crate::operators::OperatorTable::shipped().clone())
    }

    fn report(&self, period: &Query, format: ReportFormat) -> Result<String, ViewError> {
        let store = Store::open_read_only(&self.store_file)?;
        store.limit_cache(http::STREAM_CACHE_KIB)?;
        let mut options = self
            .generation()
            .map(|g| g.report.clone())
            .unwrap_or_default();
        options.now = Timestamp::now().unix();
        options.since = period.since;
        options.until = period.until;
        let report = crate::report::build(&store, &options)?;
        Ok(crate::report::render(&report, format))
    }

    fn traces(&self, query: &Query) -> Result<http::TraceLines, ViewError> {
        // A connection per request: reads never wait for the writer (WAL).
        let store = Store::open_read_only(&self.store_file)?;
        // Small per stream: many may be open at once (src/http/stream.rs).
        store.limit_cache(http::STREAM_CACHE_KIB)?;
        Ok(Box::new(crate::export::jsonl_lines(
            store
                .scan(query.clone())
                .in_pages_of(http::STREAM_PAGE_ROWS),
        )))
    }
}

impl OnDemandTracer for DaemonState {
    fn knows(&self, target: &str) -> bool {
        self.is_target(target)
    }

    fn trace(&self, target: &str) -> TraceFuture {
        let generation = self.generation();
        let measurer = self.measurer.read().ok().and_then(|m| m.clone());
        let target = target.to_string();
        Box::pin(async move {
            let (Some(generation), Some(measurer)) = (generation, measurer) else {
                return Err(OnDemandError::Unavailable);
            };
            let Some(job) = generation.jobs.get(&target).cloned() else {
                return Err(OnDemandError::UnknownTarget(target));
            };
            let outcomes = measurer
                .trace_once(&job)
                .await
                .ok_or(OnDemandError::Unavailable)?;
            tracing::info!(target = %target, paths = outcomes.len(), "traced on demand");
            // Judging looks up every hop in the GeoIP files: off the
            // async workers.
            let judged = tokio::task::spawn_blocking(move || {
                let mut records = Vec::new();
                let mut failures = Vec::new();
                for outcome in outcomes {
                    match outcome.result {
                        Ok(trace) => records.push(judge(
                            trace,
                            &generation.geo,
                            generation.vantage_at,
                            &job.policy,
                        )),
                        Err(why) => failures.push(format!("{}: {why}", outcome.key)),
                    }
                }
                if records.is_empty() {
                    Err(OnDemandError::Failed(failures.join("; ")))
                } else {
                    Ok(records)
                }
            })
            .await;
            judged.map_err(|e| OnDemandError::Failed(format!("judging failed: {e}")))?
        })
    }
}

/// The web configuration named by `run --web.config.file` or `[metrics]
/// web_config_file`; none: plain HTTP, open.
fn web_config(opts: &DaemonOptions, config: &Config) -> Result<WebConfig, WebConfigError> {
    match opts
        .web_config
        .as_ref()
        .or(config.metrics.web_config_file.as_ref())
    {
        Some(path) => WebConfig::load(path),
        None => Ok(WebConfig::open()),
    }
}

/// Now, in Unix seconds (Prometheus' time unit).
fn now_unix() -> f64 {
    Timestamp::now().unix_f64()
}

fn jobs_of(config: &Config) -> HashMap<String, Job> {
    let p = &config.probe;
    config
        .targets
        .iter()
        .map(|t| {
            let job = Job {
                name: t.name.clone(),
                host: t.host.clone(),
                category: t.category.clone(),
                family: t.family,
                settings: probe_settings(p, t.protocol, t.port),
                policy: Policy {
                    home: Some(config.policy.home),
                    also_home: Vec::new(),
                    allowed: t.allowed_countries.clone(),
                    min_confidence: config.policy.min_confidence,
                    counts_only: false,
                },
                multipath: t.multipath,
            };
            (t.name.clone(), job)
        })
        .collect()
}

fn open_geo(config: &Config) -> Result<GeoDb, crate::geo::GeoError> {
    crate::pipeline::open_geo(Some(config), &[], None)
}

fn state_dir(opts: &DaemonOptions, config: &Config) -> PathBuf {
    if let Some(dir) = &opts.state_dir {
        return dir.clone();
    }
    if let Some(dir) = std::env::var_os("STATE_DIRECTORY") {
        // systemd may pass several, colon-separated; the first is ours.
        let first = dir
            .to_string_lossy()
            .split(':')
            .next()
            .unwrap_or("")
            .to_string();
        if !first.is_empty() {
            return PathBuf::from(first);
        }
    }
    config
        .store
        .path
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Load the saved paths; a file this daemon did not write or a damaged one
/// is moved aside, never fatal.
///
/// # Errors
/// The file is of a newer version (it stays as it is).
fn load_book(files: &StateFiles) -> Result<PathBook, LoadError> {
    match PathBook::load(files) {
        Ok(book) => Ok(book),
        Err(e) if e.is_newer() => Err(e),
        Err(e) => {
            let moved = files.move_aside(crate::paths::STATE_FILE, &e);
            tracing::error!(error = %e, moved_to = ?moved, "the saved paths are not loaded; starting without them");
            Ok(PathBook::default())
        }
    }
}

/// Remove temporary files of the state files' saves: at start, leftovers
/// of a killed process (the lock makes them nobody's); at stop, anything a
/// failed save could not remove.
fn remove_temporaries(files: &StateFiles) {
    for name in [crate::paths::STATE_FILE, crate::alert::STATE_FILE] {
        match files.remove_temporaries(name) {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(file = %files.path(name).display(), removed = n, "removed temporary files of unfinished saves")
            }
            Err(e) => {
                tracing::error!(file = %files.path(name).display(), error = %e, "cannot remove temporary files of unfinished saves")
            }
        }
    }
}

/// A running scheduler generation.
struct Running {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    /// What its loops measure with, for traces on demand.
    measurer: Measurer<TrippyProber>,
}

/// The resolver of the hops' names under `[rdns]`: none when it is off,
/// or (logged) when it cannot be set up; tracing goes on without names.
fn reverse_dns(config: &RdnsConfig, metrics: RdnsMetrics) -> Option<ReverseDns> {
    if !config.enabled {
        return None;
    }
    ReverseDns::new(config, metrics)
        .inspect_err(|e| tracing::error!(error = %e, "hop names are not looked up"))
        .ok()
}

fn start_scheduler(
    config: &Config,
    generation: &Generation,
    prober: &TrippyProber,
    hints: &PathHints,
    names: Option<&ReverseDns>,
    outcomes: &mpsc::Sender<TraceOutcome>,
) -> Running {
    let (stop, stop_rx) = watch::channel(false);
    let jobs: Vec<Job> = generation.jobs.values().cloned().collect();
    let vantage = VantageRef {
        name: config.vantage.name.clone(),
        country: Some(config.vantage.country),
    };
    let cadence = Cadence {
        interval: config.probe.interval,
        jitter: config.probe.jitter,
    };
    let measurer = Measurer {
        vantage,
        prober: prober.clone(),
        permits: Arc::new(tokio::sync::Semaphore::new(config.probe.concurrency.max(1))),
        hints: Arc::clone(hints),
        names: names.cloned(),
        enumerations: Arc::new(tokio::sync::Mutex::new(0)),
    };
    let schedule = scheduler::Schedule {
        jobs,
        cadence,
        measurer: measurer.clone(),
        dependencies: dependencies(config),
    };
    let task = tokio::spawn(scheduler::run(schedule, outcomes.clone(), stop_rx));
    Running {
        stop,
        task,
        measurer,
    }
}

/// How `[dependency] dns` resolves targets' dependencies: none when it is
/// off, or (logged) when the resolver cannot be set up; tracing goes on
/// without them.
fn dependencies(config: &Config) -> Option<scheduler::Dependencies> {
    let d = &config.dependency;
    if !d.dns {
        return None;
    }
    let settings = crate::dependency::dns::DnsSettings {
        servers: if d.dns_servers.is_empty() {
            config.rdns.servers.clone()
        } else {
            d.dns_servers.clone()
        },
        timeout: d.dns_timeout,
    };
    let resolver = crate::dependency::dns::DnsResolver::new(&settings)
        .inspect_err(|e| tracing::error!(error = %e, "DNS dependencies are not resolved"))
        .ok()?;
    let protocol = config.probe.settings.protocol;
    // A name server listens on port 53 whatever the services' ports.
    let port = (protocol != crate::model::Protocol::Icmp).then_some(53);
    Some(scheduler::Dependencies {
        resolver,
        deadline: d.dns_deadline,
        trace_nameservers: d.trace_nameservers,
        settings: probe_settings(&config.probe, protocol, port),
        family: config.probe.family,
        resolutions: Arc::new(tokio::sync::Semaphore::new(RESOLUTIONS)),
        claimed: Arc::default(),
    })
}

/// Run the daemon until a `Stop` control.
///
/// # Errors
/// Start-up failures: configuration, GeoIP files, state directory, listener.
pub async fn run(
    opts: DaemonOptions,
    mut controls: mpsc::Receiver<Control>,
) -> Result<(), DaemonError> {
    let mut config = Config::load(&opts.config)?;
    let metrics = Metrics::new(env!("CARGO_PKG_VERSION"));
    // Before anything is written or bound: a second daemon on the same
    // state directory stops here, whatever else it would share.
    let state = StateDir::open(&state_dir(&opts, &config), metrics.state_saves())?;
    let files = state.files().clone();
    let dir = state.path().to_path_buf();
    remove_temporaries(&files);
    let geo = open_geo(&config)?;
    let web = web_config(&opts, &config)?;
    let listener = tokio::net::TcpListener::bind(config.metrics.listen)
        .await
        .map_err(|source| SetupError::Listen {
            addr: config.metrics.listen,
            source,
        })?;

    metrics.set_geoip_databases(geo.databases());
    metrics.set_config_reload(true, now_unix());
    metrics.set_report_url(config.alert.external_url.as_deref());
    let generation = Arc::new(Generation::new(&config, geo));
    let store_file = if config.store.path_configured {
        config.store.path.clone()
    } else {
        dir.join(STORE_FILE)
    };
    metrics.retain_targets(&generation.jobs.keys().cloned().collect::<Vec<_>>());
    metrics.set_per_hop(per_hop_selection(&config));
    let book = load_book(&files)?;
    for (key, record, changes) in book.iter() {
        if key.is_dependency() || generation.jobs.contains_key(key.target()) {
            metrics.restore(
                &key.to_string(),
                record,
                changes,
                record.trace.started_at.unix_f64(),
            );
            if let Some(multipath) = book.multipath(key) {
                metrics.set_multipath(&key.to_string(), multipath);
            }
        }
    }
    let notifier = Notifier::start(&files, &config.alert, metrics.alerts())?;
    notifier.retain(|key| generation.jobs.contains_key(key.target()));
    let shared = Arc::new(DaemonState {
        metrics,
        book: Mutex::new(book),
        generation: RwLock::new(Arc::clone(&generation)),
        pending: Mutex::new(generation.jobs.keys().cloned().collect()),
        ready: AtomicBool::new(generation.jobs.is_empty()),
        notifier: Mutex::new(Some(notifier)),
        store_file: store_file.clone(),
        dependencies: Mutex::new(None),
        measurer: RwLock::new(None),
    });
    // Each path's hint from its last saved record: after a restart the
    // first cycle needs no RTT probe and sends no more probes ahead of the
    // replies than each path is long, as every later cycle.
    let hints: PathHints = Arc::new(Mutex::new(
        shared
            .book
            .lock()
            .map(|book| {
                book.iter()
                    .filter_map(|(key, record, _)| {
                        Some((key.clone(), PathHint::of(&record.trace)?))
                    })
                    .collect()
            })
            .unwrap_or_default(),
    ));
    let counted = Arc::clone(&shared);
    let retention = Retention {
        max_age: config.store.max_age,
        max_size: config.store.max_size,
    };
    let (writer, store_finished) = HistoryWriter::start(
        store_file,
        retention,
        shared.metrics.store(),
        Arc::new(move |w: &Written| counted.metrics.store_write(w.label())),
    )
    .map_err(SetupError::StoreWriter)?;
    // Kept in the history with the traces that name it (a reload hands
    // over the new one), so every stored verdict can be made again.
    let configs = writer.config_sender();
    configs.keep(ConfigText::of(&config));

    let (http_stop, http_stop_rx) = watch::channel(false);
    log_web_config(&web);
    // Why a watch channel: the endpoint reads the latest web configuration
    // for each connection and request; a reload replaces it.
    let (web_tx, web_rx) = watch::channel(Arc::new(web));
    let endpoint = Endpoint {
        web: web_rx,
        tracer: Some(Arc::clone(&shared) as Arc<dyn OnDemandTracer>),
    };
    let http_task = tokio::spawn(http::serve_with(
        listener,
        Arc::clone(&shared),
        endpoint,
        async move {
            let mut rx = http_stop_rx;
            let _ = rx.wait_for(|stop| *stop).await;
        },
    ));

    // Bounded: a consumer that falls behind slows the scheduler down
    // instead of queueing results without limit.
    let (outcome_tx, outcome_rx) = mpsc::channel::<TraceOutcome>(1024);
    let consumer = tokio::spawn(consume(
        outcome_rx,
        Arc::clone(&shared),
        Arc::clone(&hints),
        files.clone(),
        writer,
    ));
    let prober = TrippyProber::new(SlotPool::default(), FdBudget::default());
    let mut hop_names = reverse_dns(&config.rdns, shared.metrics.rdns());
    let mut running = start_scheduler(
        &config,
        &generation,
        &prober,
        &hints,
        hop_names.as_ref(),
        &outcome_tx,
    );
    set_measurer(&shared, Some(running.measurer.clone()));
    tracing::info!(targets = generation.jobs.len(), listen = %config.metrics.listen, "transitwatch running");

    let graceful = loop {
        match controls.recv().await {
            Some(Control::Reload) => match reload(&opts) {
                Ok((new_config, new_geo, new_web)) => {
                    log_web_config(&new_web);
                    web_tx.send_replace(Arc::new(new_web));
                    let _ = running.stop.send(true);
                    let new_generation = Arc::new(Generation::new(&new_config, new_geo));
                    // Before the first record of the new generation.
                    configs.keep(ConfigText::of(&new_config));
                    let names: Vec<String> = new_generation.jobs.keys().cloned().collect();
                    shared.metrics.retain_targets(&names);
                    shared.metrics.set_per_hop(per_hop_selection(&new_config));
                    shared
                        .metrics
                        .set_geoip_databases(new_generation.geo.databases());
                    shared.metrics.set_config_reload(true, now_unix());
                    shared
                        .metrics
                        .set_report_url(new_config.alert.external_url.as_deref());
                    if let Ok(mut book) = shared.book.lock() {
                        book.retain(|key| {
                            key.is_dependency() || names.iter().any(|n| key.belongs_to(n))
                        });
                    }
                    if let Ok(Some(notifier)) = shared.notifier.lock().as_deref() {
                        notifier.reconfigure(&new_config.alert);
                        notifier.retain(|key| names.iter().any(|n| key.belongs_to(n)));
                    }
                    if let Ok(mut g) = shared.generation.write() {
                        *g = Arc::clone(&new_generation);
                    }
                    // A changed `[rdns]` gets a new resolver (and an empty
                    // cache); an unchanged one keeps its cache.
                    if new_config.rdns != config.rdns {
                        hop_names = reverse_dns(&new_config.rdns, shared.metrics.rdns());
                    }
                    running = start_scheduler(
                        &new_config,
                        &new_generation,
                        &prober,
                        &hints,
                        hop_names.as_ref(),
                        &outcome_tx,
                    );
                    set_measurer(&shared, Some(running.measurer.clone()));
                    config = new_config;
                    tracing::info!(targets = names.len(), "configuration reloaded");
                }
                Err(why) => {
                    shared.metrics.set_config_reload(false, now_unix());
                    tracing::error!(error = %why, "reload rejected; the running configuration stays");
                }
            },
            Some(Control::Stop { graceful }) => break graceful,
            None => break true,
        }
    };

    let _ = running.stop.send(true);
    set_measurer(&shared, None);
    if graceful {
        let drained = tokio::time::timeout(opts.drain, &mut running.task)
            .await
            .is_ok();
        if !drained {
            tracing::warn!(drain = ?opts.drain, "traces still in flight after the drain period; stopping anyway");
            running.task.abort();
        }
    } else {
        running.task.abort();
    }
    drop(outcome_tx);
    let _ = tokio::time::timeout(Duration::from_secs(2), consumer).await;
    // Deliveries in flight finish (a graceful stop) so their answer is
    // recorded; what is still pending stays in the state file.
    let notifier = shared.notifier.lock().ok().and_then(|mut n| n.take());
    let mut final_saves = Vec::new();
    if let Some(notifier) = notifier {
        let grace = if graceful {
            config.alert.timeout + Duration::from_secs(1)
        } else {
            Duration::ZERO
        };
        final_saves.push(notifier.stop(grace).await);
    }
    // The consumer held the last `HistoryWriter`; the thread now stores
    // what is queued and closes the database.
    let flushed = tokio::task::spawn_blocking(move || store_finished.wait(STORE_FLUSH))
        .await
        .unwrap_or(false);
    if !flushed {
        tracing::warn!(wait = ?STORE_FLUSH, "the trace store did not finish writing in time");
    }
    // A poisoned lock still holds a consistent book (every update is one
    // insert or replacement), and its last save matters most.
    let saved = match shared.book.lock() {
        Ok(mut book) => book.save(&files),
        Err(poisoned) => poisoned.into_inner().save(&files),
    };
    if let Err(e) = &saved {
        tracing::error!(error = %e, "cannot save the paths");
    }
    final_saves.insert(0, saved);
    remove_temporaries(&files);
    let _ = http_stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(2), http_task).await;
    drop(config);
    // The lock is released last, once nothing more is written.
    drop(state);
    if let Some(failed) = final_saves.into_iter().find_map(Result::err) {
        return Err(DaemonError::FinalSave(failed));
    }
    tracing::info!(graceful, "transitwatch stopped");
    Ok(())
}

fn vantage_at(config: &Config) -> Option<Coordinates> {
    match (config.vantage.latitude, config.vantage.longitude) {
        (Some(lat), Some(lon)) => Some(Coordinates { lat, lon }),
        _ => None,
    }
}

/// Why a reload was rejected (the running configuration stays).
#[derive(Debug, thiserror::Error)]
enum ReloadError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Geo(#[from] crate::geo::GeoError),
    #[error(transparent)]
    WebConfig(#[from] WebConfigError),
}

/// The paths the configuration selects for per-hop metrics: the targets
/// with `per_hop` (their own or `[metrics] per_hop`), and the name servers'
/// paths when `[metrics] per_hop` is on.
fn per_hop_selection(config: &Config) -> PerHop {
    PerHop {
        targets: config
            .targets
            .iter()
            .filter(|t| t.per_hop)
            .map(|t| t.name.clone())
            .collect(),
        dependency_paths: config.metrics.per_hop,
    }
}

fn reload(opts: &DaemonOptions) -> Result<(Config, GeoDb, WebConfig), ReloadError> {
    let config = Config::load(&opts.config)?;
    let geo = open_geo(&config)?;
    let web = web_config(opts, &config)?;
    Ok((config, geo, web))
}

/// Hand traces on demand the running generation's measurer (none: the
/// daemon is stopping).
fn set_measurer(shared: &DaemonState, measurer: Option<Measurer<TrippyProber>>) {
    if let Ok(mut slot) = shared.measurer.write() {
        *slot = measurer;
    }
}

fn log_web_config(web: &WebConfig) {
    if let Some(path) = web.path() {
        tracing::info!(file = %path.display(), tls = web.tls(), basic_auth = web.authenticates(), "web configuration read");
    }
}

/// Turn outcomes into records, path state and metrics.
async fn consume(
    mut outcomes: mpsc::Receiver<TraceOutcome>,
    shared: Arc<DaemonState>,
    hints: PathHints,
    files: StateFiles,
    writer: HistoryWriter,
) {
    let mut save = tokio::time::interval(SAVE_EVERY);
    save.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            outcome = outcomes.recv() => {
                let Some(outcome) = outcome else { break };
                handle(&shared, &hints, &writer, outcome);
            }
            _ = save.tick() => {
                if let Ok(mut book) = shared.book.lock() {
                    if let Err(e) = book.save(&files) {
                        tracing::error!(error = %e, "cannot save the paths; they are kept in memory");
                    }
                }
                refresh_dependencies(&shared);
            }
        }
    }
}

fn handle(shared: &DaemonState, hints: &PathHints, writer: &HistoryWriter, outcome: TraceOutcome) {
    let at = now_unix();
    let Some(generation) = shared.generation() else {
        return;
    };
    // A trace of a target removed by a reload has nobody to report to; a
    // name server's path is judged under the name servers' policy.
    let job = generation.jobs.get(&outcome.name);
    let policy = match job {
        Some(job) => &job.policy,
        None if crate::model::is_dependency_target(&outcome.name) => &generation.nameserver_policy,
        None => return,
    };
    match outcome.result {
        Ok(trace) => {
            if let Some(hint) = PathHint::of(&trace) {
                if let Ok(mut h) = hints.lock() {
                    h.insert(outcome.key.clone(), hint);
                }
            }
            let mut record = judge(trace, &generation.geo, generation.vantage_at, policy);
            record.dns = outcome.dns.as_deref().cloned().map(Box::new);
            if let Some(found) = &outcome.multipath {
                record.multipath = Some(Box::new(crate::pipeline::judge_multipath(
                    found,
                    &generation.geo,
                    generation.vantage_at,
                    policy,
                )));
            }
            let (applied, record) = match shared.book.lock() {
                Ok(mut book) => {
                    let applied = book.apply(&outcome.key, record);
                    let record = book.latest(&outcome.key).cloned();
                    (applied, record)
                }
                Err(_) => return,
            };
            if let Some(record) = record {
                let label = outcome.key.to_string();
                if applied.changed {
                    tracing::info!(target = %outcome.key, path = %record.verdict.path_id, class = record.verdict.class.as_str(), "route changed");
                }
                // Name servers' paths alert through the services that depend
                // on them (the Prometheus rules), not one by one.
                if let (Some(job), Ok(Some(notifier))) = (job, shared.notifier.lock().as_deref()) {
                    let subject = Subject {
                        key: &outcome.key,
                        category: &job.category,
                    };
                    notifier.observe(subject, &record);
                }
                shared
                    .metrics
                    .observe(&label, &record, applied.changed, outcome.duration, at);
                if let Some(multipath) = &record.multipath {
                    tracing::info!(target = %outcome.key, flows = multipath.flows, paths = multipath.paths.len(), summary = %multipath.summary, "load-balanced paths");
                    shared.metrics.set_multipath(&label, multipath);
                }
                writer.submit(NewTrace {
                    path_key: outcome.key.clone(),
                    record,
                    duration: Some(outcome.duration),
                    packet_size: job.map(|job| job.settings.packet_size),
                    provenance: Arc::clone(&generation.provenance),
                });
            }
        }
        Err(why) => {
            tracing::warn!(target = %outcome.key, error = %why, "trace failed");
            shared
                .metrics
                .observe_error(&outcome.key.to_string(), outcome.duration, at);
        }
    }
    if let Ok(mut pending) = shared.pending.lock() {
        pending.remove(&outcome.name);
        if pending.is_empty() {
            shared.ready.store(true, Ordering::Release);
        }
    }
}

/// Recompute the dependency overview from the path book's latest records
/// and publish it (metrics and `/api/v1/dependencies`).
fn refresh_dependencies(shared: &DaemonState) {
    let Some(generation) = shared.generation() else {
        return;
    };
    let overview = {
        // Held for the computation (pure, milliseconds for a thousand
        // paths): the records are read in place rather than copied; the
        // consumer waits that long at most once per save period.
        let Ok(mut book) = shared.book.lock() else {
            return;
        };
        // A name server no service's latest record names any more (its
        // zone changed, the target went, `[dependency] dns` was turned
        // off) is forgotten: its path says nothing about any service.
        let named: HashSet<String> = book
            .iter()
            .filter(|(key, _, _)| generation.jobs.contains_key(key.target()))
            .filter_map(|(_, record, _)| record.dns.as_deref())
            .flat_map(|dns| dns.zone.iter().chain(dns.target_zone.iter()))
            .flat_map(|zone| &zone.nameservers)
            .map(|ns| format!("{}{}", crate::model::NAMESERVER_PREFIX, ns.name))
            .collect();
        book.retain(|key| !key.is_dependency() || named.contains(key.target()));
        shared
            .metrics
            .retain_dependency_paths(|name| named.contains(name));
        let paths = book
            .iter()
            .filter(|(key, _, _)| key.is_dependency() || generation.jobs.contains_key(key.target()))
            .map(|(key, record, _)| (key, record, None));
        overview(
            Timestamp::now(),
            paths,
            &generation.operators,
            Some(generation.home),
            &generation.accepted,
        )
    };
    shared
        .metrics
        .set_dependencies(DependencyView::of(&overview));
    if let Ok(mut slot) = shared.dependencies.lock() {
        *slot = Some(Arc::new(overview));
    }
}

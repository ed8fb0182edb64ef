//! Wiring of the commands: the only module that sees all others.
//!
//! Each command turns its inputs into a flow through the modules
//! (config → resolve → probe → analysis → render) and reports failures as a
//! [`CliError`], whose kind decides the exit code.

use crate::analysis::{self, Policy};
use crate::config::{Config, ConfigError};
use crate::geo::{self, GeoDb};
use crate::model::{Coordinates, CountryCode, Family, Protocol, TraceRecord, VantageRef};
use crate::probe::{ProbeSettings, ProbeTarget, Prober, TraceRequest, TrippyProber};
use crate::render;
use crate::resolve;
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// A failure of a command, by exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Wrong arguments (exit 2).
    #[error("{0}")]
    Usage(String),
    /// A configuration file that cannot be used (exit 2).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A geolocation database or overrides file that cannot be used (exit 2).
    #[error(transparent)]
    Geo(#[from] geo::GeoError),
    /// Something failed while running (exit 1).
    #[error("{0}")]
    Runtime(String),
}

impl CliError {
    /// The process exit code for this failure.
    #[must_use]
    pub const fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) | Self::Config(_) | Self::Geo(_) => 2,
            Self::Runtime(_) => 1,
        }
    }
}

/// Options of `transitwatch trace`, as parsed from the command line.
#[derive(Debug, Clone, Default)]
pub struct TraceOptions {
    /// A configured target name, a host name or an address.
    pub target: String,
    /// Configuration file for vantage, policy and probe defaults.
    pub config: Option<PathBuf>,
    /// MMDB files (replace the config's `[geoip] files` when given).
    pub geoip: Vec<PathBuf>,
    /// Overrides CSV (replaces the config's `[geoip] overrides`).
    pub overrides: Option<PathBuf>,
    /// Home country (overrides the config).
    pub home: Option<CountryCode>,
    /// Probe protocol (overrides target and config).
    pub protocol: Option<Protocol>,
    /// Destination port for UDP/TCP.
    pub port: Option<u16>,
    /// Address family selection.
    pub family: Option<Family>,
    /// Probes per TTL.
    pub probes: Option<u8>,
    /// First TTL.
    pub first_ttl: Option<u8>,
    /// Last TTL.
    pub max_ttl: Option<u8>,
    /// Probe size in bytes.
    pub packet_size: Option<u16>,
    /// Ceiling of the grace period.
    pub grace: Option<Duration>,
    /// Bound on a trace whose destination never answers.
    pub deadline: Option<Duration>,
    /// Write trace records as JSON lines instead of tables.
    pub json: bool,
}

/// Everything a trace needs once the options and config are merged.
struct TracePlan {
    name: String,
    host: String,
    family: Family,
    vantage: VantageRef,
    vantage_at: Option<Coordinates>,
    policy: Policy,
    settings: ProbeSettings,
}

fn plan_trace(opts: &TraceOptions, config: Option<&Config>) -> Result<TracePlan, CliError> {
    let mut settings = ProbeSettings::default();
    let mut family = Family::Auto;
    let mut vantage = VantageRef {
        name: "local".to_string(),
        country: None,
    };
    let mut policy = Policy::default();
    let mut vantage_at = None;
    let mut name = opts.target.clone();
    let mut host = opts.target.clone();
    if let Some(cfg) = config {
        let p = &cfg.probe;
        settings = probe_settings(p, p.protocol, p.port);
        family = p.family;
        vantage = VantageRef {
            name: cfg.vantage.name.clone(),
            country: Some(cfg.vantage.country),
        };
        policy.home = Some(cfg.policy.home);
        if let (Some(lat), Some(lon)) = (cfg.vantage.latitude, cfg.vantage.longitude) {
            vantage_at = Some(Coordinates { lat, lon });
        }
        if let Some(t) = cfg.targets.iter().find(|t| t.name == opts.target) {
            name.clone_from(&t.name);
            host.clone_from(&t.host);
            settings.protocol = t.protocol;
            settings.port = t.port;
            family = t.family;
            policy.allowed.clone_from(&t.allowed_countries);
        }
    }
    if host.trim().is_empty() {
        return Err(CliError::Usage("the target must not be empty".into()));
    }
    if let Some(home) = opts.home {
        policy.home = Some(home);
        vantage.country.get_or_insert(home);
    }
    settings.protocol = opts.protocol.unwrap_or(settings.protocol);
    if let Some(port) = opts.port {
        if port == 0 {
            return Err(CliError::Usage(
                "invalid --port 0: ports are 1 to 65535".into(),
            ));
        }
        if settings.protocol == Protocol::Icmp {
            return Err(CliError::Usage(
                "--port applies to udp and tcp probes only; add --protocol udp or --protocol tcp"
                    .into(),
            ));
        }
        settings.port = Some(port);
    }
    family = opts.family.unwrap_or(family);
    settings.probes_per_hop = opts.probes.unwrap_or(settings.probes_per_hop);
    settings.first_ttl = opts.first_ttl.unwrap_or(settings.first_ttl);
    settings.max_ttl = opts.max_ttl.unwrap_or(settings.max_ttl);
    settings.packet_size = opts.packet_size.unwrap_or(settings.packet_size);
    settings.grace = opts.grace.unwrap_or(settings.grace);
    settings.deadline = opts.deadline.unwrap_or(settings.deadline);
    check_settings(&settings)?;
    Ok(TracePlan {
        name,
        host,
        family,
        vantage,
        vantage_at,
        policy,
        settings,
    })
}

fn check_settings(s: &ProbeSettings) -> Result<(), CliError> {
    let usage = |m: String| Err(CliError::Usage(m));
    if !(1..=16).contains(&s.probes_per_hop) {
        return usage(format!("--probes {} is outside 1..=16", s.probes_per_hop));
    }
    if s.first_ttl == 0 || s.max_ttl > 64 || s.first_ttl > s.max_ttl {
        return usage(format!(
            "TTLs must satisfy 1 <= first ({}) <= max ({}) <= 64",
            s.first_ttl, s.max_ttl
        ));
    }
    if !(48..=1024).contains(&s.packet_size) {
        return usage(format!(
            "--packet-size {} is outside 48..=1024",
            s.packet_size
        ));
    }
    if s.deadline < s.grace || s.deadline.is_zero() {
        return usage(format!(
            "--deadline {:?} must be positive and at least the grace {:?}",
            s.deadline, s.grace
        ));
    }
    Ok(())
}

/// `transitwatch trace`: trace one target and print the result. Returns
/// the records it printed.
///
/// # Errors
/// Usage, configuration and runtime failures, as [`CliError`].
pub async fn trace(
    opts: &TraceOptions,
    out: &mut impl Write,
) -> Result<Vec<TraceRecord>, CliError> {
    let config = match &opts.config {
        Some(path) => Some(Config::load(path)?),
        None => None,
    };
    let plan = plan_trace(opts, config.as_ref())?;
    let geo = open_geo(config.as_ref(), &opts.geoip, opts.overrides.as_deref())?;
    let addrs = resolve::resolve(&plan.host, plan.family)
        .await
        .map_err(|e| CliError::Runtime(e.to_string()))?;
    let prober = TrippyProber::default();
    let mut records = Vec::new();
    let mut unreached = Vec::new();
    for addr in addrs {
        let request = TraceRequest {
            target: ProbeTarget {
                name: plan.name.clone(),
                host: plan.host.clone(),
                addr,
            },
            vantage: plan.vantage.clone(),
            settings: plan.settings.clone(),
            rtt_hint: None,
        };
        let trace = prober
            .trace(request)
            .await
            .map_err(|e| CliError::Runtime(e.to_string()))?;
        if !trace.reached {
            unreached.push(addr);
        }
        let record = judge(trace, &geo, plan.vantage_at, &plan.policy);
        let text = if opts.json {
            let mut line = serde_json::to_string(&record)
                .map_err(|e| CliError::Runtime(format!("cannot encode the record: {e}")))?;
            line.push('\n');
            line
        } else {
            render::table(&record)
        };
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| CliError::Runtime(format!("cannot write the result: {e}")))?;
        records.push(record);
    }
    if !unreached.is_empty() {
        let list: Vec<String> = unreached.iter().map(ToString::to_string).collect();
        return Err(CliError::Runtime(format!(
            "{} ({}) did not answer within the deadline of {:?}",
            plan.host,
            list.join(", "),
            plan.settings.deadline
        )));
    }
    Ok(records)
}

/// The one path from a measured trace to a record, shared by every command
/// that produces records: locate every hop, then classify the path.
#[must_use]
pub fn judge(
    mut trace: crate::model::Trace,
    geo: &GeoDb,
    vantage_at: Option<Coordinates>,
    policy: &Policy,
) -> TraceRecord {
    geo::enrich(&mut trace, geo, vantage_at);
    let verdict = analysis::analyze(&trace, policy);
    TraceRecord::new(trace, verdict)
}

/// [`judge`] for a pass over many traces: locations come through `cache`.
#[must_use]
pub fn judge_cached(
    mut trace: crate::model::Trace,
    geo: &GeoDb,
    cache: &mut geo::LocateCache,
    vantage_at: Option<Coordinates>,
    policy: &Policy,
) -> TraceRecord {
    geo::enrich_cached(&mut trace, geo, vantage_at, cache);
    let verdict = analysis::analyze(&trace, policy);
    TraceRecord::new(trace, verdict)
}

/// How a target is probed: the `[probe]` defaults with the target's own
/// protocol and port.
#[must_use]
pub fn probe_settings(
    p: &crate::config::ProbeConfig,
    protocol: Protocol,
    port: Option<u16>,
) -> ProbeSettings {
    ProbeSettings {
        protocol,
        port,
        probes_per_hop: p.probes_per_hop,
        first_ttl: p.first_ttl,
        max_ttl: p.max_ttl,
        packet_size: p.packet_size,
        grace: p.grace,
        deadline: p.deadline,
    }
}

/// The geolocation sources: files given on the command line replace the
/// config's; with neither, nothing is located.
///
/// # Errors
/// A database or overrides file that cannot be used.
pub fn open_geo(
    config: Option<&Config>,
    files: &[PathBuf],
    overrides: Option<&std::path::Path>,
) -> Result<GeoDb, geo::GeoError> {
    let (cfg_files, cfg_overrides) = config.map_or((&[][..], None), |c| {
        (c.geoip.files.as_slice(), c.geoip.overrides.as_deref())
    });
    let files = if files.is_empty() { cfg_files } else { files };
    let overrides = overrides.or(cfg_overrides);
    if files.is_empty() && overrides.is_none() {
        return Ok(GeoDb::empty());
    }
    GeoDb::open(files, overrides)
}

/// Options of `transitwatch geo lookup`.
#[derive(Debug, Clone, Default)]
pub struct GeoLookupOptions {
    /// Addresses to look up.
    pub addrs: Vec<std::net::IpAddr>,
    /// Configuration file (its `[geoip]` table).
    pub config: Option<PathBuf>,
    /// MMDB files (replace the config's).
    pub geoip: Vec<PathBuf>,
    /// Overrides CSV (replaces the config's).
    pub overrides: Option<PathBuf>,
    /// JSON lines instead of text.
    pub json: bool,
}

/// `transitwatch geo lookup`: what every source says about each address,
/// and which answer wins.
///
/// # Errors
/// Configuration and database errors.
pub fn geo_lookup(opts: &GeoLookupOptions, out: &mut impl Write) -> Result<(), CliError> {
    let config = match &opts.config {
        Some(path) => Some(Config::load(path)?),
        None => None,
    };
    let db = open_geo(config.as_ref(), &opts.geoip, opts.overrides.as_deref())?;
    let mut text = String::new();
    for &addr in &opts.addrs {
        let decided = db.locate(addr);
        let answers = db.lookup_all(addr);
        if opts.json {
            let line = serde_json::json!({
                "addr": addr,
                "geo": decided,
                "sources": answers.iter().map(|a| serde_json::json!({
                    "source": a.source,
                    "database": a.database,
                    "geo": a.geo,
                    "note": a.note,
                })).collect::<Vec<_>>(),
            });
            text.push_str(&line.to_string());
            text.push('\n');
        } else {
            text.push_str(&format!("{addr}: {}\n", describe(&decided)));
            for a in &answers {
                let said = a
                    .geo
                    .as_ref()
                    .map_or_else(|| "nothing".to_string(), describe);
                let note = a
                    .note
                    .as_deref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default();
                text.push_str(&format!("  {} [{}]: {said}{note}\n", a.source, a.database));
            }
        }
    }
    out.write_all(text.as_bytes())
        .map_err(|e| CliError::Runtime(format!("cannot write the result: {e}")))
}

fn describe(g: &crate::model::HopGeo) -> String {
    if g.country.is_none() && g.asn.is_none() {
        return "not located".to_string();
    }
    let mut parts = Vec::new();
    if let Some(c) = g.country {
        parts.push(c.to_string());
    }
    if let Some(city) = &g.city {
        parts.push(city.clone());
    }
    if let (Some(lat), Some(lon)) = (g.lat, g.lon) {
        let radius = g
            .accuracy_km
            .map(|r| format!(" ±{r} km"))
            .unwrap_or_default();
        parts.push(format!("{lat:.4},{lon:.4}{radius}"));
    }
    if let Some(asn) = g.asn {
        let org = g
            .as_org
            .as_deref()
            .map(|o| format!(" {o}"))
            .unwrap_or_default();
        parts.push(format!("AS{asn}{org}"));
    }
    let by = g
        .database
        .as_deref()
        .map(|d| format!(" (from {d})"))
        .unwrap_or_default();
    format!("{}{by}", parts.join(", "))
}

/// `transitwatch geo build`: turn an overrides CSV into an MMDB.
///
/// # Errors
/// The CSV or the output cannot be used.
pub fn geo_build(csv: &std::path::Path, output: &std::path::Path) -> Result<String, CliError> {
    let report = geo::build(csv, output)?;
    Ok(format!(
        "{}: {} prefixes from {}",
        output.display(),
        report.prefixes,
        csv.display()
    ))
}

/// `transitwatch check-config`: load and validate a file; say what it holds.
///
/// # Errors
/// The configuration error, if any.
pub fn check_config(path: &std::path::Path) -> Result<String, CliError> {
    let cfg = Config::load(path)?;
    Ok(format!(
        "{}: ok (vantage {} in {}, home {}, {} targets)",
        path.display(),
        cfg.vantage.name,
        cfg.vantage.country,
        cfg.policy.home,
        cfg.targets.len()
    ))
}

/// Options of `transitwatch analyze`.
#[derive(Debug, Clone)]
pub struct AnalyzeOptions {
    /// RIPE Atlas or scamper results (JSON Lines or a JSON array).
    pub input: PathBuf,
    /// Which format the input is in.
    pub format: crate::import::InputFormat,
    /// Configuration file (home country, `[geoip]`).
    pub config: Option<PathBuf>,
    /// MMDB files (replace the config's).
    pub geoip: Vec<PathBuf>,
    /// Overrides CSV (replaces the config's).
    pub overrides: Option<PathBuf>,
    /// Home country (overrides the config).
    pub home: Option<CountryCode>,
    /// RIPE Atlas probe metadata (`prb_id` → `country_code`) for the vantage
    /// country of each result.
    pub probes: Option<PathBuf>,
    /// Trace records as JSON lines instead of a summary.
    pub json: bool,
    /// Threads that classify RIPE Atlas results (0: one per available
    /// core). Records come out in input order whatever the number.
    pub threads: usize,
}

/// Probe id → country, from a RIPE Atlas probe metadata file: an object
/// keyed by probe id, or an array of objects with `id`.
fn probe_countries(path: &std::path::Path) -> Result<HashMap<u64, CountryCode>, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| CliError::Usage(format!("{}: not JSON: {e}", path.display())))?;
    let country = |v: &serde_json::Value| {
        v.get("country_code")
            .and_then(serde_json::Value::as_str)
            .and_then(|c| c.parse::<CountryCode>().ok())
    };
    let mut map = HashMap::new();
    match &value {
        serde_json::Value::Object(o) => {
            for (id, v) in o {
                if let (Ok(id), Some(c)) = (id.parse::<u64>(), country(v)) {
                    map.insert(id, c);
                }
            }
        }
        serde_json::Value::Array(a) => {
            for v in a {
                if let (Some(id), Some(c)) =
                    (v.get("id").and_then(serde_json::Value::as_u64), country(v))
                {
                    map.insert(id, c);
                }
            }
        }
        _ => {
            return Err(CliError::Usage(format!(
                "{}: expected an object or an array of probes",
                path.display()
            )))
        }
    }
    Ok(map)
}

/// How many addresses `analyze` keeps located in memory (a few MB at most).
const ANALYZE_CACHE_ADDRESSES: usize = 1 << 16;

/// What `analyze` read.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AnalyzeSummary {
    /// Traces classified.
    pub traces: usize,
    /// Lines that could not be read.
    pub failed: usize,
}

/// `transitwatch analyze`: classify every trace of a RIPE Atlas or scamper
/// file with the same geolocation and analysis as live traces. Streams the
/// input; a malformed line is reported on stderr with its number and
/// skipped.
///
/// # Errors
/// Unusable inputs (exit 2); `Runtime` (exit 1) when some lines failed.
pub fn analyze(opts: &AnalyzeOptions, out: &mut impl Write) -> Result<AnalyzeSummary, CliError> {
    // Output is written in large blocks, not line by line.
    let mut out = std::io::BufWriter::with_capacity(1 << 16, out);
    let config = match &opts.config {
        Some(path) => Some(Config::load(path)?),
        None => None,
    };
    let geo = open_geo(config.as_ref(), &opts.geoip, opts.overrides.as_deref())?;
    let home = opts.home.or(config.as_ref().map(|c| c.policy.home));
    let probes = match &opts.probes {
        Some(p) => probe_countries(p)?,
        None => HashMap::new(),
    };
    let file = std::fs::File::open(&opts.input)
        .map_err(|e| CliError::Usage(format!("{}: {e}", opts.input.display())))?;
    let reader = std::io::BufReader::with_capacity(1 << 18, file);
    let context = Classify {
        geo: &geo,
        probes: &probes,
        home,
        json: opts.json,
    };
    let threads = match opts.threads {
        0 => std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
        n => n,
    };
    let mut tally = Tally::default();
    let report = |e: &crate::import::ImportError| {
        eprintln!(
            "transitwatch: {}:{}: {}",
            opts.input.display(),
            e.line,
            e.message
        );
    };
    // Scamper streams carry state from record to record (open cycles) and
    // are read in order; Atlas results are independent and may be spread
    // over threads.
    if threads > 1 && opts.format == crate::import::InputFormat::Atlas {
        analyze_threaded(reader, &context, threads, &mut out, &mut tally, report)?;
    } else {
        let mut classifier = context.classifier();
        // Records are gathered here and written a block at a time: a block
        // at least as large as `out`'s buffer goes straight through it.
        let mut records = Vec::with_capacity(RECORD_BLOCK + (1 << 14));
        for item in crate::import::read(reader, opts.format) {
            match item {
                Ok(imported) => classifier.classify(imported, &mut records, &mut tally),
                Err(e) => {
                    tally.failed += 1;
                    report(&e);
                }
            }
            if records.len() >= RECORD_BLOCK {
                out.write_all(&records).map_err(write_err)?;
                records.clear();
            }
        }
        out.write_all(&records).map_err(write_err)?;
    }
    if !opts.json {
        writeln!(out, "{} traces from {}", tally.traces, opts.input.display())
            .map_err(write_err)?;
        for (class, n) in &tally.classes {
            writeln!(out, "  {class:<20} {n}").map_err(write_err)?;
        }
        let mut by_count: Vec<(&CountryCode, &usize)> = tally.foreign.iter().collect();
        by_count.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (c, n) in by_count.iter().take(10) {
            #[allow(clippy::cast_precision_loss)]
            let share = 100.0 * **n as f64 / tally.traces.max(1) as f64;
            writeln!(out, "  crosses {c}: {n} traces ({share:.0}%)").map_err(write_err)?;
        }
    }
    out.flush().map_err(write_err)?;
    if tally.failed > 0 {
        return Err(CliError::Runtime(format!(
            "{} line(s) of {} could not be read (reported above); {} trace(s) analysed",
            tally.failed,
            opts.input.display(),
            tally.traces
        )));
    }
    Ok(AnalyzeSummary {
        traces: tally.traces,
        failed: tally.failed,
    })
}

/// How many bytes of records `analyze` gathers before writing them.
const RECORD_BLOCK: usize = 1 << 16;

/// Raw input `analyze` hands to a worker thread at a time, at most.
const BATCH_BYTES: usize = 1 << 16;

fn write_err(e: std::io::Error) -> CliError {
    CliError::Runtime(format!("cannot write the result: {e}"))
}

/// What `analyze` counts for its summary.
#[derive(Debug, Default)]
struct Tally {
    traces: usize,
    failed: usize,
    classes: std::collections::BTreeMap<&'static str, usize>,
    foreign: std::collections::BTreeMap<CountryCode, usize>,
}

impl Tally {
    fn merge(&mut self, other: Self) {
        self.traces += other.traces;
        self.failed += other.failed;
        for (k, n) in other.classes {
            *self.classes.entry(k).or_default() += n;
        }
        for (k, n) in other.foreign {
            *self.foreign.entry(k).or_default() += n;
        }
    }
}

/// What every thread of `analyze` classifies with.
struct Classify<'a> {
    geo: &'a GeoDb,
    probes: &'a HashMap<u64, CountryCode>,
    home: Option<CountryCode>,
    json: bool,
}

impl<'a> Classify<'a> {
    /// A classifier for one thread: its own location memo and writer.
    fn classifier(&self) -> Classifier<'a> {
        Classifier {
            geo: self.geo,
            probes: self.probes,
            home: self.home,
            json: self.json,
            // Files of traces meet the same routers again and again.
            cache: geo::LocateCache::new(ANALYZE_CACHE_ADDRESSES),
            writer: crate::record_json::Writer::new(),
        }
    }
}

/// Locates, judges and writes imported traces (one per thread).
struct Classifier<'a> {
    geo: &'a GeoDb,
    probes: &'a HashMap<u64, CountryCode>,
    home: Option<CountryCode>,
    json: bool,
    cache: geo::LocateCache,
    writer: crate::record_json::Writer,
}

impl Classifier<'_> {
    /// Judge one trace: counted in `tally`, its record (with `--json`)
    /// appended to `records` as one line.
    fn classify(
        &mut self,
        imported: crate::import::Imported,
        records: &mut Vec<u8>,
        tally: &mut Tally,
    ) {
        let mut trace = imported.trace;
        let probe_country = imported.prb_id.and_then(|id| self.probes.get(&id).copied());
        trace.vantage.country = probe_country.or(trace.vantage.country).or(self.home);
        let policy = Policy {
            home: trace.vantage.country,
            ..Policy::default()
        };
        let record = judge_cached(trace, self.geo, &mut self.cache, None, &policy);
        tally.traces += 1;
        *tally
            .classes
            .entry(record.verdict.class.as_str())
            .or_default() += 1;
        for c in &record.verdict.foreign_countries {
            *tally.foreign.entry(*c).or_default() += 1;
        }
        if self.json {
            self.writer.write(records, &record);
            records.push(b'\n');
        }
    }
}

/// Raw records for a worker: their bytes, and per record its line and its
/// range in `bytes` (or what was wrong with it).
#[derive(Default)]
struct InBatch {
    bytes: Vec<u8>,
    records: Vec<(
        usize,
        Result<std::ops::Range<usize>, crate::import::ImportError>,
    )>,
}

/// A worker's answer to one [`InBatch`], in its order.
struct OutBatch {
    records: Vec<u8>,
    errors: Vec<crate::import::ImportError>,
    tally: Tally,
}

/// `analyze` of Atlas input on `threads` workers: one thread splits the
/// input into batches and deals them out in turn, each worker converts,
/// judges and writes its batches, and this thread collects the answers in
/// the same turn, so records and errors come out in input order.
fn analyze_threaded<R: std::io::BufRead + Send>(
    input: R,
    context: &Classify<'_>,
    threads: usize,
    out: &mut impl Write,
    tally: &mut Tally,
    report: impl Fn(&crate::import::ImportError),
) -> Result<(), CliError> {
    use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
    std::thread::scope(|scope| {
        let mut to_workers: Vec<SyncSender<InBatch>> = Vec::new();
        let mut from_workers: Vec<Receiver<OutBatch>> = Vec::new();
        for _ in 0..threads {
            // Bounded to two batches each way: memory stays flat whatever
            // the file size, and a slow output holds the reader back.
            let (batch_tx, batch_rx) = sync_channel::<InBatch>(2);
            let (answer_tx, answer_rx) = sync_channel::<OutBatch>(2);
            to_workers.push(batch_tx);
            from_workers.push(answer_rx);
            let mut classifier = context.classifier();
            scope.spawn(move || {
                let mut converter = crate::import::AtlasConverter::default();
                for batch in batch_rx {
                    let mut answer = OutBatch {
                        records: Vec::with_capacity(batch.bytes.len() * 2),
                        errors: Vec::new(),
                        tally: Tally::default(),
                    };
                    for (line, raw) in batch.records {
                        match raw.and_then(|r| converter.convert(line, &batch.bytes[r])) {
                            Ok(imported) => {
                                classifier.classify(
                                    imported,
                                    &mut answer.records,
                                    &mut answer.tally,
                                );
                            }
                            Err(e) => {
                                answer.tally.failed += 1;
                                answer.errors.push(e);
                            }
                        }
                    }
                    // The collector is gone (it failed to write): stop.
                    if answer_tx.send(answer).is_err() {
                        return;
                    }
                }
            });
        }
        scope.spawn(move || {
            let mut records = crate::import::atlas_records(input);
            for turn in 0.. {
                let mut batch = InBatch::default();
                while batch.bytes.len() < BATCH_BYTES {
                    let start = batch.bytes.len();
                    let Some((line, raw)) = records.next_into(&mut batch.bytes) else {
                        break;
                    };
                    batch
                        .records
                        .push((line, raw.map(|()| start..batch.bytes.len())));
                }
                // Dropping the senders (on return) ends the workers.
                if batch.records.is_empty() || to_workers[turn % threads].send(batch).is_err() {
                    return;
                }
            }
        });
        // A worker that has no answer for its turn has had no batch: the
        // input is exhausted.
        for turn in 0.. {
            let Ok(answer) = from_workers[turn % threads].recv() else {
                break;
            };
            for e in &answer.errors {
                report(e);
            }
            out.write_all(&answer.records).map_err(write_err)?;
            tally.merge(answer.tally);
        }
        Ok(())
    })
}

/// Options of `transitwatch export`.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// Configuration file whose `[store] path` names the history.
    pub config: Option<PathBuf>,
    /// The history database (instead of `config`).
    pub store: Option<PathBuf>,
    /// Output format.
    pub format: crate::export::Format,
    /// Only traces that started at or after this time (as the user wrote it).
    pub since: Option<String>,
    /// Only traces that started before this time.
    pub until: Option<String>,
    /// Only traces of this target name or path key.
    pub target: Option<String>,
    /// Output file (else `out`).
    pub output: Option<PathBuf>,
    /// Draw a progress bar on stderr.
    pub progress: bool,
}

/// `transitwatch export`: stored traces in a dataset format. Streams the
/// store; with `--output` it writes `FILE.partial.*` and renames it when
/// complete, so a failed export never leaves a complete-looking file
/// (a device or a named pipe is written in place). A
/// stored trace that cannot be read is reported on stderr and skipped.
/// Returns how many traces were written.
///
/// # Errors
/// Usage errors and an unusable store (exit 2); read and write failures
/// (exit 1), also when some traces could not be read.
pub fn export(opts: &ExportOptions, out: &mut impl Write) -> Result<u64, CliError> {
    use crate::store::{parse_time, Query, Store, StoreError};
    let path = match (&opts.store, &opts.config) {
        (Some(store), _) => store.clone(),
        (None, Some(config)) => Config::load(config)?.store.path,
        (None, None) => return Err(CliError::Usage("give --config or --store".into())),
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let time = |flag: &str, text: &Option<String>| {
        text.as_deref()
            .map(|t| parse_time(t, now).map_err(|e| CliError::Usage(format!("{flag}: {e}"))))
            .transpose()
    };
    let query = Query {
        since: time("--since", &opts.since)?,
        until: time("--until", &opts.until)?,
        target: opts.target.clone(),
        limit: None,
    };
    if let (Some(since), Some(until)) = (query.since, query.until) {
        if since >= until {
            return Err(CliError::Usage(
                "--since must be before --until: the window is empty".into(),
            ));
        }
    }
    let store = Store::open_read_only(&path).map_err(|e| match e {
        StoreError::Missing { .. } | StoreError::Foreign { .. } | StoreError::Newer { .. } => {
            CliError::Usage(e.to_string())
        }
        other => CliError::Runtime(other.to_string()),
    })?;
    let total = store
        .count(&query)
        .map_err(|e| CliError::Runtime(e.to_string()))?;
    let bar = if opts.progress {
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(total),
            indicatif::ProgressDrawTarget::stderr(),
        );
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{wide_bar} {pos}/{len} traces, {elapsed} (eta {eta})",
        ) {
            bar.set_style(style);
        }
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };

    let runtime = |e: crate::export::ExportError| CliError::Runtime(e.to_string());
    let (mut written, mut failed) = (0u64, 0u64);
    let write_all = |sink: &mut dyn Write| -> Result<(), crate::export::ExportError> {
        let mut exporter =
            crate::export::Exporter::new(opts.format, std::io::BufWriter::new(sink))?;
        for item in store.scan(query) {
            match item {
                Ok(trace) => {
                    exporter.write(&trace)?;
                    written += 1;
                }
                Err(e) => {
                    failed += 1;
                    bar.suspend(|| eprintln!("transitwatch: {e}"));
                }
            }
            bar.inc(1);
        }
        exporter.finish()?.flush()?;
        Ok(())
    };
    match &opts.output {
        None => match write_all(out) {
            Ok(()) => {}
            // The reader went away (`| head`): the export is not at fault.
            Err(crate::export::ExportError::Io(e))
                if e.kind() == std::io::ErrorKind::BrokenPipe =>
            {
                bar.abandon();
                return Ok(written);
            }
            Err(e) => return Err(runtime(e)),
        },
        // A device or a pipe (`/dev/null`, a FIFO) is written in place:
        // renaming a file over it would replace it.
        Some(file) if std::fs::metadata(file).is_ok_and(|m| !m.is_file()) => {
            let mut sink = std::fs::OpenOptions::new()
                .write(true)
                .open(file)
                .map_err(|e| CliError::Runtime(format!("{}: {e}", file.display())))?;
            write_all(&mut sink).map_err(runtime)?;
        }
        Some(file) => {
            crate::atomic_file::write_with(file, |f| write_all(f)).map_err(|e| match e {
                crate::atomic_file::WriteWithError::Fill(e) => runtime(e),
                crate::atomic_file::WriteWithError::File(e) => CliError::Runtime(e.to_string()),
            })?
        }
    }
    bar.finish();
    if failed > 0 {
        return Err(CliError::Runtime(format!(
            "{failed} of {} stored traces of {} could not be read (reported above)",
            written + failed,
            path.display()
        )));
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::{analyze, AnalyzeOptions, CliError};
    use std::fmt::Write as _;

    /// Atlas results over several batches, with lines that fail among them.
    fn atlas_input() -> String {
        let mut text = String::new();
        for i in 0..1500u32 {
            let (a, b) = (i % 200, i % 7);
            let _ = match i % 97 {
                5 => writeln!(text, "{{\"prb_id\":{i},\"timestamp\":\"late\"}}"),
                6 => writeln!(text),
                7 => writeln!(text, "not json at all"),
                _ => writeln!(
                    text,
                    r#"{{"fw":5020,"prb_id":{i},"msm_id":{b},"timestamp":{},"proto":"ICMP","dst_name":"svc{b}.example","dst_addr":"192.0.2.{b}","result":[{{"hop":1,"result":[{{"from":"198.51.100.{a}","rtt":1.{a},"ttl":254,"size":76}},{{"x":"*"}},{{"from":"198.51.100.{a}","rtt":2.5}}]}},{{"hop":2,"result":[{{"from":"203.0.113.{b}","rtt":9.25}},{{"from":"203.0.113.{a}","rtt":9.75,"late":1}}]}},{{"hop":3,"result":[{{"from":"192.0.2.{b}","rtt":12.125}}]}}]}}"#,
                    1_600_000_000 + i
                ),
            };
        }
        text
    }

    #[test]
    fn threads_give_the_records_and_counts_of_one_thread_in_input_order() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("results.jsonl");
        std::fs::write(&input, atlas_input()).unwrap();
        let overrides = dir.path().join("overrides.csv");
        std::fs::write(
            &overrides,
            "198.51.100.0/25,DE,Berlin,52.52,13.40\n198.51.100.128/25,NL\n203.0.113.0/24,FR\n192.0.2.0/24,DE\n",
        )
        .unwrap();
        let run = |threads: usize, json: bool| {
            let opts = AnalyzeOptions {
                input: input.clone(),
                format: crate::import::InputFormat::Atlas,
                config: None,
                geoip: Vec::new(),
                overrides: Some(overrides.clone()),
                home: Some("DE".parse().unwrap()),
                probes: None,
                json,
                threads,
            };
            let mut out = Vec::new();
            let result = analyze(&opts, &mut out);
            let Err(CliError::Runtime(message)) = result else {
                panic!("the failing lines must fail the run: {result:?}");
            };
            (String::from_utf8(out).unwrap(), message)
        };
        for json in [true, false] {
            let (one, one_message) = run(1, json);
            for threads in [2, 3] {
                let (many, many_message) = run(threads, json);
                assert_eq!(many, one, "{threads} threads, json {json}");
                assert_eq!(many_message, one_message);
            }
            assert!(one_message.contains("32 line(s)"), "{one_message}");
            if json {
                let prb_ids: Vec<u64> = one
                    .lines()
                    .map(|l| {
                        let v: serde_json::Value = serde_json::from_str(l).unwrap();
                        v["vantage"]["name"].as_str().unwrap()[10..]
                            .parse()
                            .unwrap()
                    })
                    .collect();
                assert_eq!(prb_ids.len(), 1500 - 32 - 16);
                assert!(prb_ids.windows(2).all(|w| w[0] < w[1]), "input order");
            }
        }
    }
}

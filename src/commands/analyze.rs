//! `transitwatch analyze`: classify the traces of a RIPE Atlas or scamper
//! results file through the [`Pipeline`], streamed, on worker threads for
//! Atlas input, with records and errors in input order. Each RIPE Atlas
//! probe is judged from its own coordinates when its metadata has them, and
//! the summary counts what the evidence behind the hop locations came to.
//! With a configuration, results are judged by its rules as the daemon
//! judges its own traces (`Rules`: the policy's minimum confidence, and a
//! target's allowed countries for results to that target's host).
//!
//! A scamper `tracelb` (MDA) record gives one trace per path through its
//! load-balanced graph (see [`crate::import::tracelb`]); each path's record
//! names its `tracelb` record and path, and the summary says per record how
//! many of its paths cross each foreign country ("1 record has 2 of 4 paths
//! crossing ZA").

use super::{load_config, write_err, CliError};
use crate::analysis::Policy;
use crate::geo;
use crate::input_file::{self, FileKind};
use crate::model::{
    Confidence, Coordinates, CountryCode, EvidenceKind, EvidenceStatus, GeoSource, HopGeo,
};
use crate::pipeline::Pipeline;
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

/// Options of `transitwatch analyze`.
#[derive(Debug, Clone)]
pub struct AnalyzeOptions {
    /// RIPE Atlas or scamper results (JSON Lines or a JSON array), plain
    /// or compressed (gzip, bzip2, zstd, xz; told by content); `-` is
    /// standard input.
    pub input: PathBuf,
    /// Which format the input is in.
    pub format: crate::import::InputFormat,
    /// Configuration file (home country, `[geoip]`, minimum confidence,
    /// the targets' allowed countries).
    pub config: Option<PathBuf>,
    /// MMDB files (replace the config's).
    pub geoip: Vec<PathBuf>,
    /// Overrides CSV (replaces the config's).
    pub overrides: Option<PathBuf>,
    /// Home country (overrides the config).
    pub home: Option<CountryCode>,
    /// RIPE Atlas probe metadata (`prb_id` → `country_code`, coordinates)
    /// for the vantage country and coordinates of each result.
    pub probes: Option<PathBuf>,
    /// Trace records as JSON lines instead of a summary.
    pub json: bool,
    /// Trace records as tables instead (CSV, or a Parquet dataset).
    pub table: Option<TableOutput>,
    /// Where the records go (a file; a directory for Parquet); the
    /// summary then goes to the output. Standard output when absent.
    pub output: Option<PathBuf>,
    /// Threads that classify RIPE Atlas results (0: one per available
    /// core). Records come out in input order whatever the number.
    pub threads: usize,
    /// Where to write the run's provenance (`--provenance`), if anywhere.
    pub provenance: Option<PathBuf>,
}

/// What `analyze` writes (`--output-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// The summary.
    Summary,
    /// `transitwatch.trace/1` records, one JSON object per line.
    Jsonl,
    /// One CSV row per hop.
    Csv,
    /// A Parquet dataset.
    Parquet,
}

crate::text_enum::text_enum! {
    /// The name used on the command line.
    OutputFormat {
        Summary => "summary",
        Jsonl => "jsonl",
        Csv => "csv",
        Parquet => "parquet",
    }
    parse_error: InvalidOutputFormat
}

/// Why a text is not an output format of `analyze`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an output format (expected summary, jsonl, csv or parquet)")]
pub struct InvalidOutputFormat(pub String);

/// A table format of `analyze`'s records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFormat {
    /// [`crate::dataset::CSV`] rows.
    Csv,
    /// A Parquet dataset ([`crate::dataset::parquet`]).
    Parquet,
}

/// Records as tables: which format, partitioned how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableOutput {
    /// CSV or Parquet.
    pub format: TableFormat,
    /// Parquet: the Hive-style partition columns.
    pub partition_by: Vec<crate::dataset::Partition>,
}

/// The provenance document's schema name and version.
pub const PROVENANCE_SCHEMA: &str = "transitwatch.provenance/1";

/// How an `analyze` run's verdicts were made: what `--provenance` writes.
#[derive(Debug, serde::Serialize)]
struct RunProvenance<'a> {
    schema: &'static str,
    version: &'static str,
    config_sha256: Option<String>,
    home: Option<CountryCode>,
    geoip: Vec<crate::store::GeoIpDatabase>,
    location_files: Vec<crate::store::LocationFile>,
    probes: Option<FileFingerprint>,
    input: InputFingerprint,
    traces: usize,
    failed: usize,
    classes: &'a std::collections::BTreeMap<&'static str, usize>,
    indeterminate: &'a std::collections::BTreeMap<&'static str, usize>,
    skipped: &'a std::collections::BTreeMap<&'static str, usize>,
    /// Present when the input held scamper `tracelb` records.
    #[serde(skip_serializing_if = "Option::is_none")]
    tracelb: Option<crate::import::tracelb::TracelbCounts>,
}

#[derive(Debug, serde::Serialize)]
struct FileFingerprint {
    path: String,
    sha256: String,
}

#[derive(Debug, serde::Serialize)]
struct InputFingerprint {
    path: String,
    format: &'static str,
    compression: &'static str,
    /// Bytes read, as stored (compressed when compressed).
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes: Option<u64>,
    /// SHA-256 of those bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
}

/// Counts and hashes what passes through, for the provenance.
struct Fingerprinting {
    inner: Box<dyn std::io::Read + Send>,
    // Shared with the caller, who reads it once the input is consumed.
    seen: std::sync::Arc<std::sync::Mutex<(u64, sha2::Sha256)>>,
}

impl std::io::Read for Fingerprinting {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use sha2::Digest;
        let n = self.inner.read(buf)?;
        if let Ok(mut seen) = self.seen.lock() {
            seen.0 += n as u64;
            seen.1.update(&buf[..n]);
        }
        Ok(n)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What RIPE Atlas probe metadata says about one probe.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct ProbeInfo {
    /// The probe's country: the vantage country of its results.
    country: Option<CountryCode>,
    /// The probe's position: the vantage coordinates of its results for
    /// the speed-of-light checks.
    at: Option<Coordinates>,
}

/// Probe id → country and coordinates, from a RIPE Atlas probe metadata
/// file: an object keyed by probe id, an array of objects with `id`, or the
/// probe API's page (`{"results": [...]}`). Coordinates are the API's
/// `"geometry": {"type": "Point", "coordinates": [lon, lat]}` or
/// `latitude`/`longitude`; unusable ones are an error naming the probe.
fn probe_metadata(path: &std::path::Path) -> Result<HashMap<u64, ProbeInfo>, CliError> {
    let text = input_file::read_to_string(path, FileKind::ProbeMetadata)
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| CliError::Usage(format!("{}: not JSON: {e}", path.display())))?;
    let mut map = HashMap::new();
    let mut add = |id: u64, v: &serde_json::Value| -> Result<(), CliError> {
        let at = probe_coordinates(v)
            .map_err(|e| CliError::Usage(format!("{}: probe {id}: {e}", path.display())))?;
        let country = v
            .get("country_code")
            .and_then(serde_json::Value::as_str)
            .and_then(|c| c.parse::<CountryCode>().ok());
        if country.is_some() || at.is_some() {
            map.insert(id, ProbeInfo { country, at });
        }
        Ok(())
    };
    let page = value.get("results").and_then(serde_json::Value::as_array);
    match (&value, page) {
        (_, Some(a)) | (serde_json::Value::Array(a), None) => {
            for v in a {
                if let Some(id) = v.get("id").and_then(serde_json::Value::as_u64) {
                    add(id, v)?;
                }
            }
        }
        (serde_json::Value::Object(o), None) => {
            for (id, v) in o {
                if let Ok(id) = id.parse::<u64>() {
                    add(id, v)?;
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

/// A probe's coordinates: its GeoJSON `geometry` point (`[lon, lat]`), else
/// its `latitude` and `longitude`; `None` when it has neither (or they are
/// `null`). `Err` says what is wrong with them.
fn probe_coordinates(probe: &serde_json::Value) -> Result<Option<Coordinates>, String> {
    use serde_json::Value;
    let at = match probe.get("geometry") {
        None | Some(Value::Null) => {
            let number = |key: &str| match probe.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_f64()
                    .map(Some)
                    .ok_or_else(|| format!("`{key}` is not a number: {v}")),
            };
            match (number("latitude")?, number("longitude")?) {
                (None, None) => return Ok(None),
                (Some(lat), Some(lon)) => Coordinates { lat, lon },
                (Some(_), None) => return Err("`latitude` without `longitude`".into()),
                (None, Some(_)) => return Err("`longitude` without `latitude`".into()),
            }
        }
        Some(geometry) => {
            let point = geometry
                .get("type")
                .and_then(Value::as_str)
                .filter(|t| *t == "Point")
                .and_then(|_| geometry.get("coordinates"))
                .and_then(Value::as_array)
                .filter(|c| c.len() == 2)
                .and_then(|c| Some((c[0].as_f64()?, c[1].as_f64()?)));
            let Some((lon, lat)) = point else {
                return Err(format!(
                    "`geometry` is not a GeoJSON point {{\"type\": \"Point\", \"coordinates\": [lon, lat]}}: {geometry}"
                ));
            };
            Coordinates { lat, lon }
        }
    };
    if geo::plausibility::valid_coordinates(at) {
        Ok(Some(at))
    } else {
        Err(format!(
            "latitude {} / longitude {} are not on the globe (latitude within ±90, longitude within ±180)",
            at.lat, at.lon
        ))
    }
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
pub fn run(opts: &AnalyzeOptions, out: &mut impl Write) -> Result<AnalyzeSummary, CliError> {
    // Output is written in large blocks, not line by line.
    let mut out = std::io::BufWriter::with_capacity(1 << 16, out);
    let config = load_config(opts.config.as_ref())?;
    // The traces were measured elsewhere: vantage coordinates come only
    // from each result's probe (`--probes`).
    let pipeline = Pipeline::open(config.as_ref(), &opts.geoip, opts.overrides.as_deref())?;
    let home = opts.home.or(config.as_ref().map(|c| c.policy.home));
    let probes = match &opts.probes {
        Some(p) => probe_metadata(p)?,
        None => HashMap::new(),
    };
    // A regular file, a FIFO, a pipe or standard input, plain or
    // compressed; the reader bounds each record.
    let raw: Box<dyn std::io::Read + Send> = if opts.input.as_os_str() == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(
            input_file::open_stream(&opts.input, FileKind::TraceInput)
                .map_err(|e| CliError::Usage(e.to_string()))?,
        )
    };
    // std Mutex: taken per read by the hashing reader (one thread reads),
    // and once at the end by this function.
    let seen = std::sync::Arc::new(std::sync::Mutex::new((
        0u64,
        <sha2::Sha256 as sha2::Digest>::new(),
    )));
    // The input is hashed for a provenance document: `--provenance`, and
    // the one a Parquet dataset holds.
    let fingerprint = opts.provenance.is_some()
        || opts
            .table
            .as_ref()
            .is_some_and(|t| t.format == TableFormat::Parquet);
    let raw: Box<dyn std::io::Read + Send> = if fingerprint {
        Box::new(Fingerprinting {
            inner: raw,
            seen: std::sync::Arc::clone(&seen),
        })
    } else {
        raw
    };
    let threads = match opts.threads {
        0 => std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
        n => n,
    };
    // bzip2 blocks decode on as many threads as classify the records: the
    // two stages take turns on the cores as the data flows.
    let (compression, reader) = crate::compressed::decoded(raw, 1 << 18, threads)
        .map_err(|e| CliError::Usage(format!("{}: cannot read: {e}", opts.input.display())))?;
    let form = match (&opts.table, opts.json) {
        (Some(_), _) => Form::Record,
        (None, true) => Form::Json,
        (None, false) => Form::Counted,
    };
    if form == Form::Counted && opts.output.is_some() {
        return Err(CliError::Usage(
            "--output is for records: give --output-format jsonl, csv or parquet".into(),
        ));
    }
    // The summary goes to the output unless records take it.
    let summary = form == Form::Counted || opts.output.is_some();
    let rules = Rules::of(config.as_ref());
    let context = Classify {
        pipeline: &pipeline,
        probes: &probes,
        home,
        form,
        summary,
        rules: &rules,
    };
    let geo = pipeline.geo();
    let provenance = crate::store::Provenance {
        config_sha256: config.as_ref().map(|c| c.sha256.clone()),
        geoip: crate::store::GeoIpDatabase::of(geo.databases()),
        location_files: crate::store::LocationFile::of(geo.location_files()),
        version: env!("CARGO_PKG_VERSION").to_string(),
    };
    // Records to a file are written beside it and renamed when complete
    // (a Parquet dataset is a directory that does the same itself).
    let mut file_out = match (&opts.output, &opts.table) {
        (Some(_), Some(t)) if t.format == TableFormat::Parquet => None,
        (Some(path), _) => Some(std::io::BufWriter::with_capacity(
            1 << 16,
            crate::atomic_file::Replacement::create(path)
                .map_err(|e| CliError::Runtime(e.to_string()))?,
        )),
        (None, _) => None,
    };
    let mut sink = match (&opts.table, &mut file_out) {
        (None, Some(file)) if form == Form::Json => RecordSink::Json(file),
        (None, None) if form == Form::Json => RecordSink::Json(&mut out),
        (None, _) => RecordSink::Counted,
        (Some(table), file) => {
            let table_out: &mut dyn Write = match file {
                Some(file) => file,
                None => &mut out,
            };
            match table.format {
                TableFormat::Csv => RecordSink::Csv {
                    writer: crate::dataset::csv::CsvWriter::new(table_out).map_err(write_err)?,
                    next_id: 1,
                    provenance: &provenance,
                },
                TableFormat::Parquet => {
                    let Some(dir) = &opts.output else {
                        return Err(CliError::Usage(
                            "parquet is written to a directory: give --output DIR".into(),
                        ));
                    };
                    RecordSink::Parquet {
                        dataset: Box::new(
                            crate::dataset::parquet::Dataset::create(dir, &table.partition_by)
                                .map_err(dataset_error)?,
                        ),
                        next_id: 1,
                        provenance: &provenance,
                    }
                }
            }
        }
    };
    let mut tally = Tally::default();
    let mut skipped: std::collections::BTreeMap<&'static str, usize> =
        std::collections::BTreeMap::new();
    let mut tracelb = crate::import::tracelb::TracelbCounts::default();
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
        analyze_threaded(reader, &context, threads, &mut sink, &mut tally, report)?;
    } else {
        let mut classifier = context.classifier();
        // Records are gathered here and written a block at a time: a block
        // at least as large as `out`'s buffer goes straight through it.
        let mut judged = Judged {
            lines: Vec::with_capacity(RECORD_BLOCK + (1 << 14)),
            records: Vec::new(),
        };
        let mut items = crate::import::read(reader, opts.format);
        for item in items.by_ref() {
            match item {
                Ok(imported) => classifier.classify(imported, &mut judged, &mut tally),
                Err(e) => {
                    tally.failed += 1;
                    report(&e);
                }
            }
            if judged.lines.len() >= RECORD_BLOCK || judged.records.len() >= RECORD_BATCH {
                sink.put(std::mem::take(&mut judged))?;
            }
        }
        sink.put(judged)?;
        skipped.clone_from(items.skipped());
        tracelb = items.tracelb();
    }
    tally.tracelb.finish();
    // Measurements that give no trace are said, never passed over.
    let skipped_words: Vec<String> = skipped
        .iter()
        .map(|(kind, n)| format!("{n} {kind}"))
        .collect();
    // A record whose paths were cut at the cap is said in both forms.
    if !summary && tracelb.capped > 0 {
        eprintln!(
            "transitwatch: note: {}: {} of {} tracelb record(s) hold more than {} paths: only their first {} were analysed",
            opts.input.display(),
            tracelb.capped,
            tracelb.records,
            crate::import::tracelb::MAX_PATHS,
            crate::import::tracelb::MAX_PATHS
        );
    }
    // Results the probe metadata cannot place are said: their verdicts
    // have no home to be judged against unless `--home` gives one.
    let probe_line = (tally.unknown_probe_results > 0).then(|| {
        format!(
            "{} result(s) of {} probe(s) not in the probe metadata{}: {}",
            tally.unknown_probe_results,
            tally.unknown_probes.len(),
            opts.probes
                .as_ref()
                .map_or_else(String::new, |p| format!(" ({})", p.display())),
            if home.is_some() {
                "judged from the home country given instead"
            } else {
                "no vantage country, so indeterminate (--home judges them from one)"
            }
        )
    });
    if let (false, Some(line)) = (summary, &probe_line) {
        eprintln!("transitwatch: note: {}: {line}", opts.input.display());
    }
    if !summary && !skipped_words.is_empty() {
        eprintln!(
            "transitwatch: note: {}: records that are no single traceroute were skipped, not analysed: {}",
            opts.input.display(),
            skipped_words.join(", ")
        );
    }
    let (bytes, sha256) = match seen.lock() {
        Ok(seen) => (seen.0, hex(&sha2::Digest::finalize(seen.1.clone()))),
        Err(_) => (0, String::new()),
    };
    let document = RunProvenance {
        schema: PROVENANCE_SCHEMA,
        version: env!("CARGO_PKG_VERSION"),
        config_sha256: provenance.config_sha256.clone(),
        home,
        geoip: provenance.geoip.clone(),
        location_files: provenance.location_files.clone(),
        probes: opts.probes.as_ref().and_then(|p| {
            let bytes = std::fs::read(p).ok()?;
            Some(FileFingerprint {
                path: p.display().to_string(),
                sha256: hex(&<sha2::Sha256 as sha2::Digest>::digest(&bytes)),
            })
        }),
        input: InputFingerprint {
            path: opts.input.display().to_string(),
            format: match opts.format {
                crate::import::InputFormat::Atlas => "atlas",
                crate::import::InputFormat::Scamper => "scamper",
            },
            compression: compression.name(),
            // Hashed only when a provenance document is asked for.
            bytes: fingerprint.then_some(bytes),
            sha256: fingerprint.then_some(sha256),
        },
        traces: tally.traces,
        failed: tally.failed,
        classes: &tally.classes,
        indeterminate: &tally.indeterminate,
        skipped: &skipped,
        tracelb: (tracelb.records > 0).then_some(tracelb),
    };
    let mut text = serde_json::to_vec_pretty(&document)
        .map_err(|e| CliError::Runtime(format!("cannot encode the provenance: {e}")))?;
    text.push(b'\n');
    // The records are complete before the summary says so.
    sink.finish(&text)?;
    if let Some(file) = file_out {
        file.into_inner()
            .map_err(|e| write_err(e.into_error()))?
            .commit()
            .map_err(|e| CliError::Runtime(e.to_string()))?;
    }
    if summary {
        writeln!(out, "{} traces from {}", tally.traces, opts.input.display())
            .map_err(write_err)?;
        for (class, n) in &tally.classes {
            writeln!(out, "  {class:<20} {n}").map_err(write_err)?;
        }
        if !tally.indeterminate.is_empty() {
            let why: Vec<String> = tally
                .indeterminate
                .iter()
                .map(|(reason, n)| format!("{reason} {n}"))
                .collect();
            writeln!(out, "  indeterminate because: {}", why.join(", ")).map_err(write_err)?;
        }
        if tracelb.records > 0 {
            tally.tracelb.write(&mut out, tracelb).map_err(write_err)?;
        }
        if !skipped_words.is_empty() {
            writeln!(out, "  skipped, not analysed: {}", skipped_words.join(", "))
                .map_err(write_err)?;
        }
        if let Some(line) = &probe_line {
            writeln!(out, "  {line}").map_err(write_err)?;
        }
        let mut by_count: Vec<(&CountryCode, &usize)> = tally.foreign.iter().collect();
        by_count.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (c, n) in by_count.iter().take(10) {
            #[allow(clippy::cast_precision_loss)]
            let share = 100.0 * **n as f64 / tally.traces.max(1) as f64;
            writeln!(out, "  crosses {c}: {n} traces ({share:.0}%)").map_err(write_err)?;
        }
        tally
            .evidence
            .write(&mut out, tally.traces)
            .map_err(write_err)?;
    }
    out.flush().map_err(write_err)?;
    if let Some(file) = &opts.provenance {
        crate::atomic_file::write(file, &text)
            .map_err(|e| CliError::Runtime(format!("{}: {e}", file.display())))?;
    }
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

/// How many records `analyze` gathers before handing them to a table.
const RECORD_BATCH: usize = 1024;

/// Where judged traces go once classified, in input order.
enum RecordSink<'o> {
    /// Nowhere: the summary counts them.
    Counted,
    /// JSON lines, encoded by the classifiers.
    Json(&'o mut dyn Write),
    /// CSV rows.
    Csv {
        writer: crate::dataset::csv::CsvWriter<&'o mut dyn Write>,
        next_id: i64,
        provenance: &'o crate::store::Provenance,
    },
    /// A Parquet dataset.
    Parquet {
        dataset: Box<crate::dataset::parquet::Dataset>,
        next_id: i64,
        provenance: &'o crate::store::Provenance,
    },
}

impl RecordSink<'_> {
    /// Write judged traces; table rows are numbered from 1 in input order.
    fn put(&mut self, judged: Judged) -> Result<(), CliError> {
        match self {
            Self::Counted => {}
            Self::Json(out) => out.write_all(&judged.lines).map_err(write_err)?,
            Self::Csv {
                writer,
                next_id,
                provenance,
            } => {
                for record in &judged.records {
                    writer
                        .write(&table_row(record, next_id, provenance))
                        .map_err(write_err)?;
                }
            }
            Self::Parquet {
                dataset,
                next_id,
                provenance,
            } => {
                for record in &judged.records {
                    dataset
                        .write(&table_row(record, next_id, provenance))
                        .map_err(dataset_error)?;
                }
            }
        }
        Ok(())
    }

    /// Complete the output; a Parquet dataset gets the run's provenance
    /// document beside its tables.
    fn finish(self, provenance: &[u8]) -> Result<(), CliError> {
        match self {
            Self::Counted => Ok(()),
            Self::Json(out) => out.flush().map_err(write_err),
            Self::Csv { writer, .. } => writer.finish().and_then(Write::flush).map_err(write_err),
            Self::Parquet { dataset, .. } => dataset
                .finish(&[("provenance.json", provenance)])
                .map(|_| ())
                .map_err(dataset_error),
        }
    }
}

/// A record as the next row of a table.
fn table_row<'r>(
    record: &'r crate::model::TraceRecord,
    next_id: &mut i64,
    provenance: &'r crate::store::Provenance,
) -> crate::dataset::TraceRow<'r> {
    let id = *next_id;
    *next_id += 1;
    crate::dataset::TraceRow {
        id,
        record,
        path_key: None,
        provenance,
    }
}

fn dataset_error(e: crate::dataset::parquet::DatasetError) -> CliError {
    match e {
        crate::dataset::parquet::DatasetError::Exists(_) => CliError::Usage(e.to_string()),
        other => CliError::Runtime(other.to_string()),
    }
}

/// Raw input `analyze` hands to a worker thread at a time, at most.
const BATCH_BYTES: usize = 1 << 16;

/// What `analyze` counts for its summary.
#[derive(Debug, Default)]
struct Tally {
    traces: usize,
    failed: usize,
    classes: std::collections::BTreeMap<&'static str, usize>,
    foreign: std::collections::BTreeMap<CountryCode, usize>,
    evidence: EvidenceTally,
    /// Why the `indeterminate` verdicts are (see [`indeterminate_reason`]).
    indeterminate: std::collections::BTreeMap<&'static str, usize>,
    /// Results whose probe the given metadata does not list, and the
    /// distinct probes.
    unknown_probe_results: usize,
    unknown_probes: std::collections::BTreeSet<u64>,
    /// How many paths of each `tracelb` record cross each foreign country.
    tracelb: TracelbTally,
}

/// How many of each `tracelb` record's paths cross each foreign country,
/// gathered from the paths' records (a record's paths come one after the
/// other, so only the record being read is kept apart).
#[derive(Debug, Default)]
struct TracelbTally {
    /// The record being read: its number, its paths, and per foreign
    /// country the paths crossing it.
    current: Option<(u64, u32, crate::analysis::multipath::Crossings)>,
    /// Records by (country, paths crossing it, paths of the record).
    crossing: std::collections::BTreeMap<(CountryCode, u32, u32), usize>,
}

/// "1 record", "2 records".
fn count_of(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

impl TracelbTally {
    /// Count one judged path.
    fn count(&mut self, path: &crate::model::TracelbPath, foreign: &[CountryCode]) {
        if self.current.as_ref().map(|c| c.0) != Some(path.record) {
            self.finish();
            self.current = Some((path.record, path.paths, Default::default()));
        }
        if let Some((_, _, crossings)) = &mut self.current {
            crossings.add(foreign, false);
        }
    }

    /// Close the record being read.
    fn finish(&mut self) {
        if let Some((_, paths, crossings)) = self.current.take() {
            for (c, (k, _)) in crossings.by_country {
                *self.crossing.entry((c, k, paths)).or_default() += 1;
            }
        }
    }

    fn merge(&mut self, mut other: Self) {
        self.finish();
        other.finish();
        for (key, n) in other.crossing {
            *self.crossing.entry(key).or_default() += n;
        }
    }

    /// The summary's `tracelb` lines: what the records gave, and the
    /// commonest "N records have k of n paths crossing C".
    fn write(
        &self,
        out: &mut impl Write,
        counts: crate::import::tracelb::TracelbCounts,
    ) -> std::io::Result<()> {
        let mut notes = Vec::new();
        if counts.capped > 0 {
            notes.push(format!(
                "{} with more than {} paths: the first {} analysed",
                count_of(counts.capped, "record"),
                crate::import::tracelb::MAX_PATHS,
                crate::import::tracelb::MAX_PATHS
            ));
        }
        if counts.without_paths > 0 {
            notes.push(format!(
                "{} without nodes: no path",
                count_of(counts.without_paths, "record")
            ));
        }
        writeln!(
            out,
            "  tracelb: {}, {}{}",
            count_of(counts.records, "record"),
            count_of(counts.paths, "path"),
            if notes.is_empty() {
                String::new()
            } else {
                format!(" ({})", notes.join("; "))
            }
        )?;
        let mut groups: Vec<(&(CountryCode, u32, u32), &usize)> = self.crossing.iter().collect();
        // Most records first, then the larger share, then the country.
        groups.sort_by(|a, b| {
            b.1.cmp(a.1)
                .then(
                    (u64::from(b.0 .1) * u64::from(a.0 .2))
                        .cmp(&(u64::from(a.0 .1) * u64::from(b.0 .2))),
                )
                .then(a.0.cmp(b.0))
        });
        const SHOWN: usize = 10;
        for ((country, k, n), records) in groups.iter().take(SHOWN) {
            writeln!(
                out,
                "    {} {} {k} of {} crossing {country}",
                count_of(**records, "record"),
                if **records == 1 { "has" } else { "have" },
                count_of(*n as usize, "path"),
            )?;
        }
        if groups.len() > SHOWN {
            writeln!(out, "    ... and {} more", groups.len() - SHOWN)?;
        }
        Ok(())
    }
}

/// Why a trace's verdict is `indeterminate`, in the summary's words: no
/// home to judge against (no vantage country: the probe is not in the
/// metadata and no `--home`), a destination that never answered, or one
/// that answered from where no source locates it.
fn indeterminate_reason(record: &crate::model::TraceRecord) -> &'static str {
    if record.trace.vantage.country.is_none() {
        "no vantage country"
    } else if !record.trace.reached {
        "destination not reached"
    } else {
        "destination not located"
    }
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
        self.evidence.merge(&other.evidence);
        for (k, n) in other.indeterminate {
            *self.indeterminate.entry(k).or_default() += n;
        }
        self.unknown_probe_results += other.unknown_probe_results;
        self.unknown_probes.extend(other.unknown_probes);
        self.tracelb.merge(other.tracelb);
    }
}

/// The kinds of evidence a located hop can be decided by, in the summary's
/// order (strongest first); [`EvidenceTally::decided`] is indexed by it.
const DECIDING_KINDS: [EvidenceKind; 6] = [
    EvidenceKind::Override,
    EvidenceKind::Geofeed,
    EvidenceKind::Ixp,
    EvidenceKind::Hostname,
    EvidenceKind::Database,
    EvidenceKind::Registration,
];

/// What the evidence behind the hop locations of `analyze`'s traces came to:
/// counted per answering hop of every trace (a router met by many traces
/// counts each time). Hops whose location carries no evidence list count
/// from `geo.source` (the deciding kind) and `geo.plausible` (`false`: the
/// round-trip time ruled the database location out).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct EvidenceTally {
    /// Traces judged with vantage coordinates (the RTT bound applies).
    traces_with_vantage: usize,
    /// Hops with an address.
    hops: usize,
    /// Located hops (a country) per deciding kind, as [`DECIDING_KINDS`].
    decided: [usize; DECIDING_KINDS.len()],
    /// Located hops whose deciding source is not known.
    decided_otherwise: usize,
    /// Database items (or database-decided locations) with coordinates.
    database_locations: usize,
    /// Of those, the ones in traces with vantage coordinates: the ones the
    /// RTT bound can check.
    database_checkable: usize,
    /// Of those, the ones the RTT bound rejected.
    database_rejected: usize,
    /// Hops whose location answers too fast for where it is said to be.
    implausible: usize,
    /// Located hops by confidence: high, medium, low, none given.
    confidence: [usize; 4],
}

impl EvidenceTally {
    /// Counts the hops of one judged trace.
    fn count(&mut self, trace: &crate::model::Trace, with_vantage: bool) {
        self.traces_with_vantage += usize::from(with_vantage);
        for hop in trace.hops.iter().filter(|h| h.addr.is_some()) {
            self.count_hop(&hop.geo, with_vantage);
        }
    }

    fn count_hop(&mut self, geo: &HopGeo, with_vantage: bool) {
        self.hops += 1;
        self.implausible += usize::from(geo.plausible == Some(false));
        let has_coordinates = |lat: Option<f64>, lon: Option<f64>| lat.is_some() && lon.is_some();
        if geo.evidence.is_empty() {
            if geo.source == GeoSource::Mmdb && has_coordinates(geo.lat, geo.lon) {
                self.database_locations += 1;
                self.database_checkable += usize::from(with_vantage);
                self.database_rejected += usize::from(geo.plausible == Some(false));
            }
        } else {
            for item in geo
                .evidence
                .iter()
                .filter(|e| e.kind == EvidenceKind::Database && has_coordinates(e.lat, e.lon))
            {
                self.database_locations += 1;
                self.database_checkable += usize::from(with_vantage);
                self.database_rejected += usize::from(item.status == EvidenceStatus::Rejected);
            }
        }
        if geo.country.is_none() {
            return;
        }
        let chosen = geo
            .evidence
            .iter()
            .find(|e| e.status == EvidenceStatus::Chosen)
            .map(|e| e.kind);
        let kind = chosen.or(match geo.source {
            GeoSource::Override => Some(EvidenceKind::Override),
            GeoSource::Mmdb => Some(EvidenceKind::Database),
            GeoSource::Geofeed => Some(EvidenceKind::Geofeed),
            GeoSource::Ixp => Some(EvidenceKind::Ixp),
            GeoSource::Hostname => Some(EvidenceKind::Hostname),
            GeoSource::Registration => Some(EvidenceKind::Registration),
            GeoSource::None => None,
        });
        match kind.and_then(|k| DECIDING_KINDS.iter().position(|d| *d == k)) {
            Some(i) => self.decided[i] += 1,
            None => self.decided_otherwise += 1,
        }
        let level = match geo.confidence {
            Some(Confidence::High) => 0,
            Some(Confidence::Medium) => 1,
            Some(Confidence::Low) => 2,
            None => 3,
        };
        self.confidence[level] += 1;
    }

    fn merge(&mut self, other: &Self) {
        self.traces_with_vantage += other.traces_with_vantage;
        self.hops += other.hops;
        for (a, b) in self.decided.iter_mut().zip(other.decided) {
            *a += b;
        }
        self.decided_otherwise += other.decided_otherwise;
        self.database_locations += other.database_locations;
        self.database_checkable += other.database_checkable;
        self.database_rejected += other.database_rejected;
        self.implausible += other.implausible;
        for (a, b) in self.confidence.iter_mut().zip(other.confidence) {
            *a += b;
        }
    }

    /// Located hops.
    fn located(&self) -> usize {
        self.decided.iter().sum::<usize>() + self.decided_otherwise
    }

    /// The summary's evidence section: one `label  number` line each.
    fn write(&self, out: &mut impl Write, traces: usize) -> std::io::Result<()> {
        #[allow(clippy::cast_precision_loss)]
        let share = |n: usize, of: usize| 100.0 * n as f64 / of.max(1) as f64;
        let located = self.located();
        writeln!(out, "evidence")?;
        writeln!(
            out,
            "  traces with vantage coordinates  {} of {traces}",
            self.traces_with_vantage
        )?;
        writeln!(out, "  answering hops                   {}", self.hops)?;
        writeln!(
            out,
            "  located hops                     {located} ({:.1}%)",
            share(located, self.hops)
        )?;
        for (kind, n) in DECIDING_KINDS.iter().zip(self.decided) {
            let label = format!("decided by {kind}");
            writeln!(out, "    {label:<30} {n}")?;
        }
        if self.decided_otherwise > 0 {
            writeln!(
                out,
                "    decided otherwise              {}",
                self.decided_otherwise
            )?;
        }
        writeln!(
            out,
            "  database locations               {}",
            self.database_locations
        )?;
        writeln!(
            out,
            "    with vantage coordinates       {}",
            self.database_checkable
        )?;
        writeln!(
            out,
            "    rejected by the RTT bound      {} ({:.1}% of those)",
            self.database_rejected,
            share(self.database_rejected, self.database_checkable)
        )?;
        writeln!(
            out,
            "  implausible hops                 {}",
            self.implausible
        )?;
        for (name, n) in ["high", "medium", "low", "none"]
            .iter()
            .zip(self.confidence)
        {
            let label = format!("confidence {name}");
            writeln!(out, "    {label:<30} {n} ({:.1}%)", share(n, located))?;
        }
        Ok(())
    }
}

/// What becomes of each judged trace besides being counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// Nothing: the summary alone.
    Counted,
    /// A JSON line, encoded by the classifier.
    Json,
    /// The record itself, for the table writer.
    Record,
}

/// Judged traces on their way out of a classifier.
#[derive(Default)]
struct Judged {
    /// JSON lines ([`Form::Json`]).
    lines: Vec<u8>,
    /// Records ([`Form::Record`]).
    records: Vec<crate::model::TraceRecord>,
}

/// The configuration's rules, applied as the daemon applies them: the
/// policy's `min_confidence` to every result, and a configured target's
/// `allowed_countries` to the results whose destination name (`dst_name`,
/// which `export --format atlas` writes from the target's host) is that
/// target's host. So a stored trace exported as Atlas results and
/// analyzed with the configuration it was made with is judged as it was.
#[derive(Debug)]
struct Rules {
    /// Lower-cased host → the countries its paths may touch; `None` for a
    /// host that targets with different lists share (judged by home only).
    allowed: HashMap<String, Option<Vec<CountryCode>>>,
    min_confidence: Confidence,
}

impl Rules {
    /// The rules of `config`; without one, home only and every claim counts.
    fn of(config: Option<&crate::config::Config>) -> Self {
        let mut allowed: HashMap<String, Option<Vec<CountryCode>>> = HashMap::new();
        for t in config.map_or(&[][..], |c| &c.targets[..]) {
            let countries = Some(t.allowed_countries.clone());
            allowed
                .entry(t.host.to_ascii_lowercase())
                .and_modify(|known| {
                    if *known != countries {
                        *known = None;
                    }
                })
                .or_insert(countries);
        }
        Self {
            allowed,
            min_confidence: config.map_or(Confidence::Low, |c| c.policy.min_confidence),
        }
    }

    /// The policy of a trace to `host` seen from `home`.
    fn policy(&self, home: Option<CountryCode>, host: &str, counts_only: bool) -> Policy {
        let allowed = self
            .allowed
            .get(&host.to_ascii_lowercase())
            .cloned()
            .flatten()
            .unwrap_or_default();
        Policy {
            home,
            allowed,
            min_confidence: self.min_confidence,
            counts_only,
            ..Policy::default()
        }
    }
}

/// What every thread of `analyze` classifies with.
struct Classify<'a> {
    pipeline: &'a Pipeline,
    probes: &'a HashMap<u64, ProbeInfo>,
    home: Option<CountryCode>,
    form: Form,
    /// Whether the summary's evidence counts are wanted.
    summary: bool,
    rules: &'a Rules,
}

impl<'a> Classify<'a> {
    /// A classifier for one thread: its own location memo and writer.
    fn classifier(&self) -> Classifier<'a> {
        Classifier {
            pipeline: self.pipeline,
            probes: self.probes,
            home: self.home,
            form: self.form,
            summary: self.summary,
            rules: self.rules,
            // Files of traces meet the same routers again and again.
            cache: geo::LocateCache::new(ANALYZE_CACHE_ADDRESSES),
            writer: crate::record_json::RecordWriter::new(),
        }
    }
}

/// Locates, judges and writes imported traces (one per thread).
struct Classifier<'a> {
    pipeline: &'a Pipeline,
    probes: &'a HashMap<u64, ProbeInfo>,
    home: Option<CountryCode>,
    form: Form,
    summary: bool,
    rules: &'a Rules,
    cache: geo::LocateCache,
    writer: crate::record_json::RecordWriter,
}

impl Classifier<'_> {
    /// Judge one trace: counted in `tally`, its record added to `judged`
    /// in the form asked for.
    fn classify(
        &mut self,
        imported: crate::import::Imported,
        judged: &mut Judged,
        tally: &mut Tally,
    ) {
        let atlas = imported.prb_id.map(|prb_id| crate::model::AtlasIds {
            msm_id: imported.msm_id,
            prb_id,
        });
        let mut trace = imported.trace;
        let known = imported.prb_id.and_then(|id| self.probes.get(&id).copied());
        if let (Some(id), None, false) = (imported.prb_id, known, self.probes.is_empty()) {
            tally.unknown_probe_results += 1;
            tally.unknown_probes.insert(id);
        }
        let probe = known.unwrap_or_default();
        trace.vantage.country = probe.country.or(trace.vantage.country).or(self.home);
        // The summary counts verdicts; only records carry the words.
        let policy = self.rules.policy(
            trace.vantage.country,
            &trace.target.host,
            self.form == Form::Counted,
        );
        // Each probe is its own vantage point: its coordinates bound how far
        // its hops can be.
        let vantage_at = probe.at.or(self.pipeline.vantage_at());
        let mut record = crate::pipeline::judge_cached(
            trace,
            self.pipeline.geo(),
            &mut self.cache,
            vantage_at,
            &policy,
        );
        record.atlas = atlas;
        record.tracelb = imported.tracelb;
        if let Some(path) = &record.tracelb {
            tally.tracelb.count(path, &record.verdict.foreign_countries);
        }
        tally.traces += 1;
        // Only the summary shows it.
        if self.summary {
            tally.evidence.count(&record.trace, vantage_at.is_some());
        }
        *tally
            .classes
            .entry(record.verdict.class.as_str())
            .or_default() += 1;
        for c in &record.verdict.foreign_countries {
            *tally.foreign.entry(*c).or_default() += 1;
        }
        if record.verdict.class == crate::model::VerdictClass::Indeterminate {
            *tally
                .indeterminate
                .entry(indeterminate_reason(&record))
                .or_default() += 1;
        }
        match self.form {
            Form::Counted => {}
            Form::Json => {
                self.writer.write(&mut judged.lines, &record);
                judged.lines.push(b'\n');
            }
            Form::Record => judged.records.push(record),
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
    judged: Judged,
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
    out: &mut RecordSink<'_>,
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
                        judged: Judged {
                            lines: Vec::with_capacity(batch.bytes.len() * 2),
                            records: Vec::new(),
                        },
                        errors: Vec::new(),
                        tally: Tally::default(),
                    };
                    for (line, raw) in batch.records {
                        match raw.and_then(|r| converter.convert(line, &batch.bytes[r])) {
                            Ok(imported) => {
                                classifier.classify(
                                    imported,
                                    &mut answer.judged,
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
            out.put(answer.judged)?;
            tally.merge(answer.tally);
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::{run as analyze, AnalyzeOptions, CliError};
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
                table: None,
                output: None,
                threads,
                provenance: None,
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

#[cfg(test)]
mod evidence_tests {
    use super::{
        probe_metadata, run as analyze, AnalyzeOptions, CliError, EvidenceTally, ProbeInfo,
    };
    use crate::model::{
        Confidence, Coordinates, Evidence, EvidenceKind, EvidenceStatus, GeoSource, HopGeo,
    };
    use std::collections::HashMap;

    fn metadata(json: &str) -> Result<HashMap<u64, ProbeInfo>, CliError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("probes.json");
        std::fs::write(&path, json).unwrap();
        probe_metadata(&path)
    }

    #[test]
    fn probe_coordinates_come_from_geometry_or_latitude_and_longitude() {
        let at = |lat, lon| Some(Coordinates { lat, lon });
        let keyed = metadata(
            r#"{"1": {"country_code": "LS", "geometry": {"type": "Point", "coordinates": [27.48, -29.31]}},
                "2": {"country_code": "IE", "latitude": 53.35, "longitude": -6.26},
                "3": {"country_code": "ZA", "geometry": null, "latitude": null},
                "4": {"latitude": 0, "longitude": 0},
                "5": {"description": "neither"}}"#,
        )
        .unwrap();
        assert_eq!(keyed[&1].at, at(-29.31, 27.48), "GeoJSON is [lon, lat]");
        assert_eq!(keyed[&1].country, Some("LS".parse().unwrap()));
        assert_eq!(keyed[&2].at, at(53.35, -6.26));
        assert_eq!(keyed[&3].at, None);
        assert_eq!(keyed[&4].at, at(0.0, 0.0));
        assert_eq!(keyed[&4].country, None);
        assert!(!keyed.contains_key(&5));
        // The probe API's page and a plain array.
        for json in [
            r#"{"count": 1, "next": null, "results": [{"id": 7, "country_code": "LS", "geometry": {"type": "Point", "coordinates": [27.5, -29.3]}}]}"#,
            r#"[{"id": 7, "country_code": "LS", "latitude": -29.3, "longitude": 27.5}]"#,
        ] {
            let probes = metadata(json).unwrap();
            assert_eq!(probes[&7].at, at(-29.3, 27.5), "{json}");
        }
    }

    #[test]
    fn bad_probe_coordinates_are_errors_naming_file_and_probe() {
        for (json, says) in [
            (
                r#"{"42": {"geometry": {"type": "Polygon", "coordinates": [1, 2]}}}"#,
                "`geometry` is not a GeoJSON point",
            ),
            (
                r#"{"42": {"geometry": {"type": "Point", "coordinates": [1]}}}"#,
                "`geometry` is not a GeoJSON point",
            ),
            (
                r#"{"42": {"geometry": {"type": "Point", "coordinates": ["1", 2]}}}"#,
                "`geometry` is not a GeoJSON point",
            ),
            (
                r#"{"42": {"geometry": {"type": "Point", "coordinates": [27.5, 95]}}}"#,
                "latitude 95 / longitude 27.5 are not on the globe",
            ),
            (
                r#"[{"id": 42, "latitude": -29.3}]"#,
                "`latitude` without `longitude`",
            ),
            (
                r#"[{"id": 42, "latitude": -29.3, "longitude": "east"}]"#,
                "`longitude` is not a number: \"east\"",
            ),
            (
                r#"[{"id": 42, "latitude": 10, "longitude": 181}]"#,
                "not on the globe",
            ),
        ] {
            let Err(CliError::Usage(message)) = metadata(json) else {
                panic!("{json} must be refused");
            };
            assert!(message.contains("probes.json: probe 42: "), "{message}");
            assert!(message.contains(says), "{message}");
            assert!(!message.contains('\n'), "{message}");
        }
    }

    /// One Atlas result of probe 9 whose second hop answers in 1 ms from an
    /// address the overrides place in Berlin.
    const RESULT: &str = r#"{"fw":5020,"prb_id":9,"msm_id":1,"timestamp":1600000000,"proto":"ICMP","dst_name":"192.0.2.1","dst_addr":"192.0.2.1","result":[{"hop":1,"result":[{"from":"10.0.0.1","rtt":0.5}]},{"hop":2,"result":[{"from":"198.51.100.1","rtt":1.0}]},{"hop":3,"result":[{"x":"*"}]}]}"#;

    #[test]
    fn each_probe_is_judged_from_its_own_coordinates() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("results.jsonl");
        std::fs::write(&input, format!("{RESULT}\n")).unwrap();
        let overrides = dir.path().join("overrides.csv");
        std::fs::write(&overrides, "198.51.100.0/24,DE,Berlin,52.52,13.40\n").unwrap();
        let run = |probes: &str, json: bool| {
            let path = dir.path().join("probes.json");
            std::fs::write(&path, probes).unwrap();
            let opts = AnalyzeOptions {
                input: input.clone(),
                format: crate::import::InputFormat::Atlas,
                config: None,
                geoip: Vec::new(),
                overrides: Some(overrides.clone()),
                home: None,
                probes: Some(path),
                json,
                table: None,
                output: None,
                threads: 1,
                provenance: None,
            };
            let mut out = Vec::new();
            analyze(&opts, &mut out).unwrap();
            String::from_utf8(out).unwrap()
        };
        let plausible = |probes: &str| {
            let record: serde_json::Value = serde_json::from_str(&run(probes, true)).unwrap();
            record["hops"][1]["geo"]["plausible"].clone()
        };
        // Sydney is 16,000 km from Berlin: 1 ms is impossible from there.
        let sydney = r#"{"9": {"country_code": "AU", "geometry": {"type": "Point", "coordinates": [151.2, -33.87]}}}"#;
        let potsdam = r#"{"9": {"country_code": "DE", "latitude": 52.4, "longitude": 13.06}}"#;
        assert_eq!(plausible(sydney), false);
        assert_eq!(plausible(potsdam), true);
        assert_eq!(
            plausible(r#"{"9": {"country_code": "DE"}}"#),
            serde_json::Value::Null
        );
        let summary = run(sydney, false);
        for line in [
            "  traces with vantage coordinates  1 of 1\n",
            "  answering hops                   2\n",
            "  located hops                     1 (50.0%)\n",
            "    decided by override            1\n",
            "    decided by database            0\n",
            "  implausible hops                 1\n",
            "    confidence none                1 (100.0%)\n",
        ] {
            assert!(summary.contains(line), "{line:?} in\n{summary}");
        }
    }

    fn database(country: &str, status: EvidenceStatus) -> Evidence {
        Evidence {
            kind: EvidenceKind::Database,
            source: "GeoLite2-City".into(),
            country: Some(country.parse().unwrap()),
            city: None,
            lat: Some(53.35),
            lon: Some(-6.26),
            accuracy_km: Some(20),
            detail: None,
            status,
            reason: None,
        }
    }

    #[test]
    fn hops_count_by_their_chosen_evidence_or_else_their_source() {
        let located = |source, plausible| HopGeo {
            country: Some("IE".parse().unwrap()),
            lat: Some(53.35),
            lon: Some(-6.26),
            source,
            plausible,
            ..HopGeo::default()
        };
        let hostname = Evidence {
            kind: EvidenceKind::Hostname,
            source: "ptr".into(),
            country: Some("LS".parse().unwrap()),
            lat: None,
            lon: None,
            status: EvidenceStatus::Chosen,
            ..database("LS", EvidenceStatus::Chosen)
        };
        let hops = [
            // Today's form: a database location, checked and rejected.
            located(GeoSource::Mmdb, Some(false)),
            // Today's form: a database location the RTT allows.
            located(GeoSource::Mmdb, Some(true)),
            located(GeoSource::Override, None),
            // Nothing located it.
            HopGeo::default(),
            // With evidence: the name decided, the database was rejected.
            HopGeo {
                source: GeoSource::Hostname,
                confidence: Some(Confidence::Medium),
                evidence: vec![hostname, database("IE", EvidenceStatus::Rejected)],
                ..located(GeoSource::Hostname, None)
            },
            // With evidence: the database decided, a second one agrees.
            HopGeo {
                confidence: Some(Confidence::Low),
                evidence: vec![
                    database("IE", EvidenceStatus::Chosen),
                    database("IE", EvidenceStatus::Agrees),
                ],
                ..located(GeoSource::Mmdb, None)
            },
        ];
        let mut tally = EvidenceTally::default();
        for geo in &hops {
            tally.count_hop(geo, true);
        }
        tally.count_hop(&located(GeoSource::Mmdb, None), false);
        assert_eq!(tally.hops, 7);
        assert_eq!(tally.located(), 6);
        // override, geofeed, ixp, hostname, database, registration
        assert_eq!(tally.decided, [1, 0, 0, 1, 4, 0]);
        assert_eq!(tally.database_locations, 6);
        assert_eq!(tally.database_checkable, 5);
        assert_eq!(tally.database_rejected, 2);
        assert_eq!(tally.implausible, 1);
        // high, medium, low, none
        assert_eq!(tally.confidence, [0, 1, 1, 4]);
        let mut twice = tally.clone();
        twice.merge(&tally);
        assert_eq!(twice.located(), 12);
        assert_eq!(twice.database_checkable, 10);
        assert_eq!(twice.database_rejected, 4);
    }
}

#[cfg(test)]
mod tracelb_tests {
    use super::TracelbTally;
    use crate::import::tracelb::TracelbCounts;
    use crate::model::{CountryCode, PathEnd, TracelbPath};

    fn path(record: u64, path: u32, paths: u32) -> TracelbPath {
        TracelbPath {
            record,
            line: record + 1,
            path,
            paths,
            capped: false,
            end: PathEnd::Destination,
        }
    }

    fn cc(c: &str) -> CountryCode {
        c.parse().unwrap()
    }

    fn summary(tally: &mut TracelbTally, counts: TracelbCounts) -> String {
        tally.finish();
        let mut out = Vec::new();
        tally.write(&mut out, counts).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn records_are_summed_up_as_k_of_n_paths_per_country() {
        let mut tally = TracelbTally::default();
        // Record 1: 2 of 4 paths through ZA, one of them through MZ too
        // (counted once however often it is named).
        tally.count(&path(1, 1, 4), &[]);
        tally.count(&path(1, 2, 4), &[cc("ZA")]);
        tally.count(&path(1, 3, 4), &[cc("ZA"), cc("MZ"), cc("ZA")]);
        tally.count(&path(1, 4, 4), &[]);
        // Records 2 and 3: 1 of 1 path through ZA each.
        tally.count(&path(2, 1, 1), &[cc("ZA")]);
        tally.count(&path(3, 1, 1), &[cc("ZA")]);
        // Record 4: no path crosses anything.
        tally.count(&path(4, 1, 2), &[]);
        tally.count(&path(4, 2, 2), &[]);
        let counts = TracelbCounts {
            records: 5,
            paths: 72,
            capped: 1,
            without_paths: 1,
        };
        assert_eq!(
            summary(&mut tally, counts),
            "  tracelb: 5 records, 72 paths (1 record with more than 64 paths: the first 64 analysed; 1 record without nodes: no path)\n\
             \x20   2 records have 1 of 1 path crossing ZA\n\
             \x20   1 record has 2 of 4 paths crossing ZA\n\
             \x20   1 record has 1 of 4 paths crossing MZ\n"
        );
    }

    #[test]
    fn many_groups_show_the_commonest_ten() {
        let mut tally = TracelbTally::default();
        for record in 1..=12u64 {
            let paths = u32::try_from(record).unwrap() + 1;
            tally.count(&path(record, 1, paths), &[cc("ZA")]);
        }
        let other = TracelbTally::default();
        tally.merge(other);
        let text = summary(
            &mut tally,
            TracelbCounts {
                records: 12,
                paths: 12,
                ..TracelbCounts::default()
            },
        );
        assert_eq!(text.lines().count(), 1 + 10 + 1, "{text}");
        assert!(
            text.starts_with("  tracelb: 12 records, 12 paths\n"),
            "{text}"
        );
        assert!(text.ends_with("    ... and 2 more\n"), "{text}");
        // The larger share first: 1 of 2 before 1 of 3.
        assert!(
            text.contains("crossing ZA\n    1 record has 1 of 3 paths"),
            "{text}"
        );
    }
}

//! `transitwatch analyze`: classify the traces of a RIPE Atlas or scamper
//! results file through the [`Pipeline`], streamed, on worker threads for
//! Atlas input, with records and errors in input order.

use super::{load_config, write_err, CliError};
use crate::analysis::Policy;
use crate::geo;
use crate::input_file::{self, FileKind};
use crate::model::CountryCode;
use crate::pipeline::Pipeline;
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

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
    let text = input_file::read_to_string(path, FileKind::ProbeMetadata)
        .map_err(|e| CliError::Usage(e.to_string()))?;
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
pub fn run(opts: &AnalyzeOptions, out: &mut impl Write) -> Result<AnalyzeSummary, CliError> {
    // Output is written in large blocks, not line by line.
    let mut out = std::io::BufWriter::with_capacity(1 << 16, out);
    let config = load_config(opts.config.as_ref())?;
    // The traces were measured elsewhere: no vantage coordinates apply.
    let pipeline = Pipeline::open(config.as_ref(), &opts.geoip, opts.overrides.as_deref())?;
    let home = opts.home.or(config.as_ref().map(|c| c.policy.home));
    let probes = match &opts.probes {
        Some(p) => probe_countries(p)?,
        None => HashMap::new(),
    };
    // A regular file, a FIFO or a pipe; the reader bounds each record.
    let file = input_file::open_stream(&opts.input, FileKind::TraceInput)
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let reader = std::io::BufReader::with_capacity(1 << 18, file);
    let context = Classify {
        pipeline: &pipeline,
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
    pipeline: &'a Pipeline,
    probes: &'a HashMap<u64, CountryCode>,
    home: Option<CountryCode>,
    json: bool,
}

impl<'a> Classify<'a> {
    /// A classifier for one thread: its own location memo and writer.
    fn classifier(&self) -> Classifier<'a> {
        Classifier {
            pipeline: self.pipeline,
            probes: self.probes,
            home: self.home,
            json: self.json,
            // Files of traces meet the same routers again and again.
            cache: geo::LocateCache::new(ANALYZE_CACHE_ADDRESSES),
            writer: crate::record_json::RecordWriter::new(),
        }
    }
}

/// Locates, judges and writes imported traces (one per thread).
struct Classifier<'a> {
    pipeline: &'a Pipeline,
    probes: &'a HashMap<u64, CountryCode>,
    home: Option<CountryCode>,
    json: bool,
    cache: geo::LocateCache,
    writer: crate::record_json::RecordWriter,
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
        let record = self.pipeline.judge_cached(trace, &mut self.cache, &policy);
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

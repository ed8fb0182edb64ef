//! `transitwatch export`: stored traces streamed from the history in a
//! dataset format, with a progress bar on a terminal, to standard output
//! or to a file that appears only once complete.

use super::CliError;
use crate::config::Config;
use std::io::Write;
use std::path::PathBuf;

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
    /// Parquet: the Hive-style partition columns.
    pub partition_by: Vec<crate::dataset::Partition>,
}

/// `transitwatch export`: stored traces in a dataset format. Streams the
/// store; with `--output` it writes `FILE.partial.*` and renames it when
/// complete, so a failed export never leaves a complete-looking file
/// (a device or a named pipe is written in place). A
/// stored trace that cannot be read is reported on stderr and skipped.
/// The database is checked first ([`crate::store::Store::check`]): a
/// damaged one is reported up front in one line with the number of stored
/// traces that cannot be read, what can be read is exported, and the
/// export fails at the end (the rows on a damaged page are not listed one
/// by one). Returns how many traces were written.
///
/// # Errors
/// Usage errors and an unusable store: missing, not a database, not
/// transitwatch's, newer (exit 2); read and write failures (exit 1), also
/// when some traces could not be read and whenever the database is
/// damaged.
pub fn run(opts: &ExportOptions, out: &mut impl Write) -> Result<u64, CliError> {
    use crate::store::{parse_time, Integrity, Query, Store, StoreError};
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
    let damage = match store
        .check()
        .map_err(|e| CliError::Runtime(e.to_string()))?
    {
        Integrity::Intact => None,
        Integrity::Damaged(damage) => {
            eprintln!("transitwatch: warning: {damage}; exporting what can be read");
            Some(damage)
        }
    };
    // Counted through an index: still possible on a damaged table.
    let total = store.count(&query).ok();
    let bar = if opts.progress {
        let bar = indicatif::ProgressBar::with_draw_target(
            total,
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
    if opts.format == crate::export::Format::Parquet {
        let Some(dir) = &opts.output else {
            return Err(CliError::Usage(
                "parquet is written to a directory: give --output DIR".into(),
            ));
        };
        let dataset_err = |e: crate::dataset::parquet::DatasetError| match e {
            crate::dataset::parquet::DatasetError::Exists(_) => CliError::Usage(e.to_string()),
            other => CliError::Runtime(other.to_string()),
        };
        let mut dataset = crate::dataset::parquet::Dataset::create(dir, &opts.partition_by)
            .map_err(dataset_err)?;
        for item in store.scan(query) {
            match item {
                Ok(trace) => {
                    dataset
                        .write(&crate::export::row(&trace))
                        .map_err(dataset_err)?;
                    written += 1;
                }
                Err(e) => {
                    failed += 1;
                    if damage.is_none() {
                        bar.suspend(|| eprintln!("transitwatch: {e}"));
                    }
                }
            }
            bar.inc(1);
        }
        dataset.finish(&[]).map_err(dataset_err)?;
        bar.finish();
        return finish(&path, damage.as_ref(), total, written, failed);
    } else if !opts.partition_by.is_empty() {
        return Err(CliError::Usage(
            "--partition-by is for --format parquet".into(),
        ));
    }
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
                    // On a damaged database the line up front said it.
                    if damage.is_none() {
                        bar.suspend(|| eprintln!("transitwatch: {e}"));
                    }
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
            })?;
        }
    }
    bar.finish();
    finish(&path, damage.as_ref(), total, written, failed)
}

/// The export's outcome: how many were written, or why it failed.
fn finish(
    path: &std::path::Path,
    damage: Option<&crate::store::Damage>,
    total: Option<u64>,
    written: u64,
    failed: u64,
) -> Result<u64, CliError> {
    if damage.is_some() {
        // The count through an index, when there is one: a scan cut short
        // by a damaged index page does not know how many it missed.
        let selected = total.unwrap_or(0).max(written + failed);
        let what = if selected == written {
            format!("the {written} selected traces it still lists were exported")
        } else {
            format!(
                "{} of {selected} stored traces could not be read, the other {written} were exported",
                selected - written
            )
        };
        return Err(CliError::Runtime(format!(
            "{}: the database is damaged: {what}",
            path.display(),
        )));
    }
    if failed > 0 {
        return Err(CliError::Runtime(format!(
            "{failed} of {} stored traces of {} could not be read (reported above)",
            written + failed,
            path.display()
        )));
    }
    Ok(written)
}

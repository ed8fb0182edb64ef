//! `transitwatch report`: the regulator's report of the history, as JSON,
//! Markdown or one standalone HTML page, to standard output or to a file
//! that appears only once complete.

use super::CliError;
use crate::config::Config;
use crate::report::{render, Options, ReportFormat};
use std::io::Write;
use std::path::PathBuf;

/// Options of `transitwatch report`.
#[derive(Debug, Clone, Default)]
pub struct ReportOptions {
    /// Configuration file: its store, services' categories and rules.
    pub config: Option<PathBuf>,
    /// The history database (instead of, or besides, `config`).
    pub store: Option<PathBuf>,
    /// Start of the period, as written (as `export` takes it).
    pub since: Option<String>,
    /// End of the period.
    pub until: Option<String>,
    /// How long a verdict holds at most (a duration); default from each
    /// path's spacing.
    pub gap: Option<String>,
    /// Output format.
    pub format: ReportFormat,
    /// Output file (else `out`).
    pub output: Option<PathBuf>,
}

/// `transitwatch report`. Returns the number of services reported.
///
/// # Errors
/// Usage errors and an unusable store (exit 2); read and write failures
/// (exit 1).
pub fn run(opts: &ReportOptions, out: &mut impl Write) -> Result<usize, CliError> {
    use crate::store::{parse_time, Store, StoreError};
    let config = opts.config.as_ref().map(|c| Config::load(c)).transpose()?;
    let path = match (&opts.store, &config) {
        (Some(store), _) => store.clone(),
        (None, Some(config)) => config.store.path.clone(),
        (None, None) => return Err(CliError::Usage("give --config or --store".into())),
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let time = |flag: &str, text: &Option<String>| {
        text.as_deref()
            .map(|t| parse_time(t, now).map_err(|e| CliError::Usage(format!("{flag}: {e}"))))
            .transpose()
    };
    let mut options = config.as_ref().map(Options::of_config).unwrap_or_default();
    options.now = now;
    options.since = time("--since", &opts.since)?;
    options.until = time("--until", &opts.until)?;
    if let (Some(since), Some(until)) = (options.since, options.until) {
        if since >= until {
            return Err(CliError::Usage(
                "--since must be before --until: the period is empty".into(),
            ));
        }
    }
    if let Some(gap) = &opts.gap {
        let d = crate::units::parse_duration(gap)
            .map_err(|e| CliError::Usage(format!("--gap: {e}")))?;
        options.gap = Some(i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    }
    let store = Store::open_read_only(&path).map_err(|e| match e {
        StoreError::Missing { .. } | StoreError::Foreign { .. } | StoreError::Newer { .. } => {
            CliError::Usage(e.to_string())
        }
        other => CliError::Runtime(other.to_string()),
    })?;
    let report = crate::report::build(&store, &options)
        .map_err(|e| CliError::Runtime(format!("{}: {e}", path.display())))?;
    let text = render(&report, opts.format);
    match &opts.output {
        None => out
            .write_all(text.as_bytes())
            .map_err(|e| CliError::Runtime(e.to_string()))?,
        Some(file) => crate::atomic_file::write(file, text.as_bytes())
            .map_err(|e| CliError::Runtime(e.to_string()))?,
    }
    Ok(report.services.len())
}

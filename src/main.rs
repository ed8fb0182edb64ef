//! The `transitwatch` command line: parses arguments (the grammar is in
//! `cli.rs`), sets up logging (level from `-v`/`-q`, colour only on a
//! terminal), checks capabilities, builds the runtime, hands each command
//! to [`transitwatch::commands`] or the daemon, writes shell completions and
//! man pages from the grammar, and maps failures to exit codes (0 ok, 1
//! runtime failure, 2 usage or configuration error).

mod cli;

use clap::{CommandFactory as _, Parser};
use cli::{Cli, Command, GeoCommand, HistoryCommand, LogFormat};
use std::process::ExitCode;
use transitwatch::commands::{self, CliError};
use transitwatch::privilege;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Bare `transitwatch`: the whole help, as clap prints it (exit 2).
        Err(err)
            if err.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand =>
        {
            err.exit()
        }
        // Usage errors in one line (clap adds a help hint on further lines).
        Err(err) if err.use_stderr() => {
            let text = err.render().to_string();
            let mut lines = text.lines();
            let first = lines.next().unwrap_or_default();
            // Missing arguments are listed on indented lines right below.
            let listed: Vec<&str> = lines
                .take_while(|l| l.starts_with("  "))
                .map(str::trim)
                .collect();
            eprintln!(
                "transitwatch: error: {}{}{} (see --help)",
                first.trim_start_matches("error: "),
                if listed.is_empty() { "" } else { " " },
                listed.join(", ")
            );
            return ExitCode::from(2);
        }
        Err(err) => err.exit(),
    };
    let (format, daemon) = match &cli.command {
        Command::Run { log_format, .. } => (*log_format, true),
        _ => (LogFormat::Text, false),
    };
    init_logging(format, log_level(daemon, cli.verbose, cli.quiet));
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("transitwatch: error: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}

/// The log levels `-v` and `-q` step through.
const LOG_LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// The level of the logs: the daemon reports starts, reloads and route
/// changes (`info`); a one-shot command only what went wrong (`warn`);
/// each `-v` one level more, each `-q` one fewer.
fn log_level(daemon: bool, verbose: u8, quiet: u8) -> &'static str {
    let base: i32 = if daemon { 3 } else { 2 };
    let at = (base + i32::from(verbose) - i32::from(quiet)).clamp(0, 5);
    LOG_LEVELS[usize::try_from(at).unwrap_or(0)]
}

/// Logs go to stderr at `level`, unless `TRANSITWATCH_LOG` gives `tracing`
/// filter directives (e.g. `debug`, `transitwatch=debug,trippy_core=info`),
/// which win over `-v`/`-q`. Text lines are coloured only when stderr is a
/// terminal, `NO_COLOR` is unset or empty (no-color.org) and
/// `JOURNAL_STREAM` is unset (systemd sets it for a service whose output
/// goes to journald), so a log file or the journal never gets escape
/// codes; JSON lines never are.
fn init_logging(format: LogFormat, level: &str) {
    use std::io::IsTerminal as _;
    let filter = match std::env::var("TRANSITWATCH_LOG") {
        Ok(directives) => tracing_subscriber::EnvFilter::new(directives),
        Err(_) => tracing_subscriber::EnvFilter::new(level),
    };
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    match format {
        LogFormat::Json => builder.json().with_ansi(false).init(),
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal() && !no_color && !journald)
            .init(),
    }
}

fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Completions { shell } => {
            let mut stdout = std::io::stdout().lock();
            clap_complete::generate(shell, &mut Cli::command(), "transitwatch", &mut stdout);
            Ok(())
        }
        Command::Man { dir } => man(dir.as_deref()),
        Command::CheckConfig { config } => {
            println!("{}", commands::check_config::run(&config)?);
            Ok(())
        }
        Command::Geo(GeoCommand::Lookup {
            addrs,
            config,
            files,
            json,
            hostname,
            dns_server,
        }) => {
            let opts = commands::geo::GeoLookupOptions {
                addrs,
                config,
                geoip: files.geoip,
                overrides: files.overrides,
                json,
                hostname,
                dns_server,
            };
            commands::geo::lookup(&opts, &mut std::io::stdout().lock())
        }
        Command::Geo(GeoCommand::Hint { names, rules, json }) => commands::geo::hint(
            &names,
            rules.as_deref(),
            json,
            &mut std::io::stdout().lock(),
        ),
        Command::Geo(GeoCommand::Build {
            csv,
            output,
            database_type,
        }) => {
            println!("{}", commands::geo::build(&csv, &output, &database_type)?);
            Ok(())
        }
        Command::Run {
            config,
            state_dir,
            drain,
            web_config_file,
            log_format: _,
        } => {
            require_net_raw()?;
            // Before any thread starts: a few arenas for all the tracer
            // threads (see `allocator::limit_arenas`).
            transitwatch::allocator::limit_arenas(2);
            // Built after the capability check, before any thread starts.
            let runtime = transitwatch::daemon::runtime()
                .map_err(|e| CliError::Runtime(format!("cannot start the runtime: {e}")))?;
            let opts = transitwatch::daemon::DaemonOptions {
                config,
                state_dir,
                drain: drain.unwrap_or(transitwatch::daemon::DEFAULT_DRAIN),
                web_config: web_config_file,
            };
            let result = runtime.block_on(run_daemon(opts));
            // A trace cut off by the drain period still occupies a blocking
            // thread until its own deadline; the process ends without it.
            runtime.shutdown_background();
            result
        }
        Command::Analyze {
            input,
            input_format,
            config,
            files,
            home,
            probes,
            json,
            output_format,
            output,
            partition_by,
            provenance,
            threads,
        } => {
            use commands::analyze::{OutputFormat, TableFormat, TableOutput};
            let partition_by = partition_by.map(|p| p.0).unwrap_or_default();
            let table = |format| {
                Some(TableOutput {
                    format,
                    partition_by: partition_by.clone(),
                })
            };
            let (json, table) = match output_format {
                _ if json => (true, None),
                OutputFormat::Summary => (false, None),
                OutputFormat::Jsonl => (true, None),
                OutputFormat::Csv => (false, table(TableFormat::Csv)),
                OutputFormat::Parquet => (false, table(TableFormat::Parquet)),
            };
            if !partition_by.is_empty() && output_format != OutputFormat::Parquet {
                return Err(CliError::Usage(
                    "--partition-by is for --output-format parquet".into(),
                ));
            }
            let opts = commands::analyze::AnalyzeOptions {
                input,
                format: input_format,
                config,
                geoip: files.geoip,
                overrides: files.overrides,
                home,
                probes,
                json,
                table,
                output,
                threads,
                provenance,
            };
            commands::analyze::run(&opts, &mut std::io::stdout().lock()).map(|_| ())
        }
        Command::Export {
            config,
            store,
            format,
            since,
            until,
            target,
            output,
            partition_by,
        } => {
            use std::io::IsTerminal as _;
            let opts = commands::export::ExportOptions {
                config,
                store,
                format,
                since,
                until,
                target,
                output,
                partition_by: partition_by.map(|p| p.0).unwrap_or_default(),
                progress: std::io::stderr().is_terminal(),
            };
            commands::export::run(&opts, &mut std::io::stdout().lock()).map(|_| ())
        }
        Command::History(HistoryCommand::Config {
            sha256,
            list,
            json,
            config,
            store,
            output,
        }) => {
            use commands::history::{ConfigAction, HistoryConfigOptions};
            let action = match sha256 {
                Some(sha256) if !list => ConfigAction::Get { sha256, output },
                _ => ConfigAction::List { json },
            };
            let opts = HistoryConfigOptions {
                config,
                store,
                action,
            };
            commands::history::config(&opts, &mut std::io::stdout().lock())
        }
        Command::Report {
            config,
            store,
            since,
            until,
            gap,
            format,
            output,
        } => {
            let opts = commands::report::ReportOptions {
                config,
                store,
                since,
                until,
                gap,
                format,
                output,
            };
            commands::report::run(&opts, &mut std::io::stdout().lock()).map(|_| ())
        }
        Command::Whatif {
            config,
            store,
            failure,
            format,
            at,
        } => {
            let opts = commands::whatif::WhatIfOptions {
                config,
                store,
                country: failure.country,
                asn: failure.asn,
                org: failure.org,
                at,
                format,
            };
            commands::whatif::run(&opts, &mut std::io::stdout().lock()).map(|_| ())
        }
        Command::Dns {
            names,
            dns_server,
            timeout,
            deadline,
            json,
        } => {
            let opts = commands::dns::DnsOptions {
                names,
                servers: dns_server,
                timeout,
                deadline,
                json,
            };
            let runtime = runtime()?;
            let resolved =
                runtime.block_on(commands::dns::run(&opts, &mut std::io::stdout().lock()))?;
            runtime.shutdown_background();
            if resolved {
                Ok(())
            } else {
                Err(CliError::Runtime(
                    "some names have no address (see their problems)".into(),
                ))
            }
        }
        Command::Trace(args) => {
            require_net_raw()?;
            let opts = args.into_options();
            let runtime = runtime()?;
            let mut stdout = std::io::stdout().lock();
            let result = runtime
                .block_on(commands::trace::run(&opts, &mut stdout))
                .map(|_| ());
            // Every tracer has returned by now; idle pool threads need no join.
            runtime.shutdown_background();
            result
        }
    }
}

/// Signals become controls: SIGHUP reload, SIGTERM graceful stop, SIGINT
/// immediate stop.
async fn run_daemon(opts: transitwatch::daemon::DaemonOptions) -> Result<(), CliError> {
    use tokio::signal::unix::{signal, SignalKind};
    use transitwatch::daemon::{self, Control, DaemonError};
    let signal_error = |e: std::io::Error| CliError::Runtime(format!("cannot watch signals: {e}"));
    let mut hup = signal(SignalKind::hangup()).map_err(signal_error)?;
    let mut term = signal(SignalKind::terminate()).map_err(signal_error)?;
    let mut int = signal(SignalKind::interrupt()).map_err(signal_error)?;
    // A few controls at most are ever queued: signals are rare.
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    tokio::spawn(async move {
        loop {
            let control = tokio::select! {
                _ = hup.recv() => Control::Reload,
                _ = term.recv() => Control::Stop { graceful: true },
                _ = int.recv() => Control::Stop { graceful: false },
            };
            if tx.send(control).await.is_err() {
                break;
            }
        }
    });
    daemon::run(opts, rx).await.map_err(|e| match e {
        DaemonError::Config(c) => CliError::Config(c),
        DaemonError::Geo(g) => CliError::Geo(g),
        // A state directory held by another daemon, a state file of a newer
        // version: to be fixed, not restarted on (exit 2).
        other if other.exit_code() == 2 => CliError::Usage(other.to_string()),
        other => CliError::Runtime(other.to_string()),
    })
}

/// The man page on standard output, or every command's page in `dir`.
fn man(dir: Option<&std::path::Path>) -> Result<(), CliError> {
    let failed = |e: std::io::Error| CliError::Runtime(format!("cannot write the man page: {e}"));
    match dir {
        None => clap_mangen::Man::new(Cli::command())
            .render(&mut std::io::stdout().lock())
            .map_err(failed),
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| CliError::Runtime(format!("cannot create {}: {e}", dir.display())))?;
            clap_mangen::generate_to(Cli::command(), dir).map_err(failed)
        }
    }
}

/// Raw sockets need CAP_NET_RAW; say so in one line before anything starts.
fn require_net_raw() -> Result<(), CliError> {
    match privilege::has_net_raw() {
        Ok(true) => Ok(()),
        Ok(false) => Err(CliError::Runtime(privilege::missing_message().to_string())),
        Err(e) => Err(CliError::Runtime(format!("cannot check capabilities: {e}"))),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    // One command, one trace at a time: a current-thread runtime starts
    // faster (no worker threads, no CPU-count probing); the tracers
    // themselves run on its blocking pool.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Runtime(format!("cannot start the runtime: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbose_and_quiet_step_from_each_command_s_level() {
        assert_eq!(log_level(true, 0, 0), "info");
        assert_eq!(log_level(false, 0, 0), "warn");
        assert_eq!(log_level(true, 1, 0), "debug");
        assert_eq!(log_level(false, 1, 0), "info");
        assert_eq!(log_level(true, 9, 0), "trace");
        assert_eq!(log_level(true, 0, 1), "warn");
        assert_eq!(log_level(false, 0, 1), "error");
        assert_eq!(log_level(false, 0, 9), "off");
    }

    #[test]
    fn the_grammar_is_consistent() {
        Cli::command().debug_assert();
    }
}

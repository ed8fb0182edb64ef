//! The `transitwatch` command line: parses arguments, sets up logging,
//! checks capabilities, builds the runtime and maps failures to exit codes
//! (0 ok, 1 runtime failure, 2 usage or configuration error).

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use transitwatch::app::{self, CliError, GeoLookupOptions, TraceOptions};
use transitwatch::model::{CountryCode, Family, Protocol};
use transitwatch::privilege;
use transitwatch::units::parse_duration;

#[derive(Parser)]
#[command(
    name = "transitwatch",
    version,
    about = "Where a country's critical internet traffic really goes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: trace every configured target on schedule, serve
    /// /metrics and the API. SIGHUP reloads, SIGTERM drains and stops,
    /// SIGINT stops at once.
    Run {
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
        /// Where the path state (and, without [store] path, the history
        /// database) lives (default: $STATE_DIRECTORY, else the folder of
        /// [store] path).
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// How long SIGTERM waits for traces in flight (e.g. 10s).
        #[arg(long, value_parser = parse_duration)]
        drain: Option<Duration>,
        /// Log format on stderr: text or json.
        #[arg(long, default_value = "text")]
        log_format: LogFormat,
    },
    /// Classify the traces of a RIPE Atlas or scamper results file.
    Analyze {
        /// The results file (JSON Lines or a JSON array).
        #[arg(long)]
        input: PathBuf,
        /// Its format: atlas or scamper.
        #[arg(long, default_value = "atlas")]
        input_format: transitwatch::import::InputFormat,
        /// Configuration file (home country, [geoip]).
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        files: GeoFiles,
        /// Home country of the vantage points (when no probe metadata says).
        #[arg(long)]
        home: Option<CountryCode>,
        /// RIPE Atlas probe metadata: prb_id -> country_code.
        #[arg(long)]
        probes: Option<PathBuf>,
        /// Print trace records as JSON lines instead of a summary.
        #[arg(long)]
        json: bool,
    },
    /// Write stored traces as JSON Lines, per-hop CSV or RIPE Atlas results.
    Export {
        /// Configuration file (its [store] path names the history).
        #[arg(long, required_unless_present = "store", conflicts_with = "store")]
        config: Option<PathBuf>,
        /// The history database itself, instead of --config.
        #[arg(long)]
        store: Option<PathBuf>,
        /// Output format: jsonl, csv or atlas.
        #[arg(long, default_value = "jsonl")]
        format: transitwatch::export::Format,
        /// Only traces that started at or after T (RFC 3339, a date, or a
        /// duration before now such as 24h or 7d).
        #[arg(long, value_name = "T")]
        since: Option<String>,
        /// Only traces that started before T (same notation as --since).
        #[arg(long, value_name = "T")]
        until: Option<String>,
        /// Only traces of this target name (all its paths) or path key.
        #[arg(long, value_name = "NAME")]
        target: Option<String>,
        /// Write to this file instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Trace one target (a configured name, a host name or an address).
    Trace(TraceArgs),
    /// Load and validate a configuration file.
    CheckConfig {
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Geolocation databases: look addresses up, build overlays.
    #[command(subcommand)]
    Geo(GeoCommand),
}

#[derive(Subcommand)]
enum GeoCommand {
    /// What every source says about each address, and which answer wins.
    Lookup {
        /// Addresses to look up.
        #[arg(required = true)]
        addrs: Vec<std::net::IpAddr>,
        /// Configuration file (its [geoip] table).
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        files: GeoFiles,
        /// Print JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Turn an overrides CSV into an MMDB that sites can share.
    Build {
        /// The overrides CSV.
        #[arg(long)]
        csv: PathBuf,
        /// The MMDB file to write.
        #[arg(long)]
        output: PathBuf,
    },
}

/// Geolocation sources given on the command line (they replace the
/// config's `[geoip]` table).
#[derive(Args)]
struct GeoFiles {
    /// MMDB file (repeatable: a country or city database and an ASN
    /// database; replaces the config's files).
    #[arg(long)]
    geoip: Vec<PathBuf>,
    /// Overrides CSV (prefix,country[,city,lat,lon,asn,note]) that wins over
    /// the databases.
    #[arg(long)]
    overrides: Option<PathBuf>,
}

#[derive(Args)]
struct TraceArgs {
    /// Configured target name, host name or IP address.
    target: String,
    /// Configuration file (vantage, home country, probe defaults, targets).
    #[arg(long)]
    config: Option<PathBuf>,
    #[command(flatten)]
    files: GeoFiles,
    /// Home country, ISO 3166-1 alpha-2 (overrides the config).
    #[arg(long)]
    home: Option<CountryCode>,
    /// Probe protocol: icmp, udp or tcp.
    #[arg(long)]
    protocol: Option<Protocol>,
    /// Destination port for udp and tcp probes.
    #[arg(long)]
    port: Option<u16>,
    /// Address family: auto, ipv4, ipv6 or both.
    #[arg(long)]
    family: Option<Family>,
    /// Trace IPv4 only.
    #[arg(short = '4', conflicts_with_all = ["family", "ipv6"])]
    ipv4: bool,
    /// Trace IPv6 only.
    #[arg(short = '6', conflicts_with = "family")]
    ipv6: bool,
    /// Probes per hop (1-16).
    #[arg(long)]
    probes: Option<u8>,
    /// First TTL probed.
    #[arg(long)]
    first_ttl: Option<u8>,
    /// Last TTL probed (at most 64).
    #[arg(long)]
    max_ttl: Option<u8>,
    /// Probe size in bytes (48-1024).
    #[arg(long)]
    packet_size: Option<u16>,
    /// Longest wait for late replies after the destination answered (e.g. 100ms).
    #[arg(long, value_parser = parse_duration)]
    grace: Option<Duration>,
    /// Longest a trace may take when the destination never answers (e.g. 3s).
    #[arg(long, value_parser = parse_duration)]
    deadline: Option<Duration>,
    /// Print trace records (transitwatch.trace/1) as JSON lines.
    #[arg(long)]
    json: bool,
}

impl TraceArgs {
    fn into_options(self) -> TraceOptions {
        let family = if self.ipv4 {
            Some(Family::Ipv4)
        } else if self.ipv6 {
            Some(Family::Ipv6)
        } else {
            self.family
        };
        TraceOptions {
            target: self.target,
            config: self.config,
            geoip: self.files.geoip,
            overrides: self.files.overrides,
            home: self.home,
            protocol: self.protocol,
            port: self.port,
            family,
            probes: self.probes,
            first_ttl: self.first_ttl,
            max_ttl: self.max_ttl,
            packet_size: self.packet_size,
            grace: self.grace,
            deadline: self.deadline,
            json: self.json,
        }
    }
}

/// How logs are written.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
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
    init_logging(format, daemon);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("transitwatch: error: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}

/// Logs go to stderr; `TRANSITWATCH_LOG` takes `tracing` filter directives
/// (e.g. `debug`, `transitwatch=debug,trippy_core=info`). Without it the
/// daemon logs at `info` and the one-shot commands at `warn`.
fn init_logging(format: LogFormat, daemon: bool) {
    let filter = match std::env::var("TRANSITWATCH_LOG") {
        Ok(directives) => tracing_subscriber::EnvFilter::new(directives),
        // The daemon reports starts, reloads and route changes; a one-shot
        // command only what went wrong.
        Err(_) => tracing_subscriber::EnvFilter::new(if daemon { "info" } else { "warn" }),
    };
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::CheckConfig { config } => {
            println!("{}", app::check_config(&config)?);
            Ok(())
        }
        Command::Geo(GeoCommand::Lookup {
            addrs,
            config,
            files,
            json,
        }) => {
            let opts = GeoLookupOptions {
                addrs,
                config,
                geoip: files.geoip,
                overrides: files.overrides,
                json,
            };
            app::geo_lookup(&opts, &mut std::io::stdout().lock())
        }
        Command::Geo(GeoCommand::Build { csv, output }) => {
            println!("{}", app::geo_build(&csv, &output)?);
            Ok(())
        }
        Command::Run {
            config,
            state_dir,
            drain,
            log_format: _,
        } => {
            require_net_raw()?;
            // Built after the capability check, before any thread starts.
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| CliError::Runtime(format!("cannot start the runtime: {e}")))?;
            let opts = transitwatch::daemon::DaemonOptions {
                config,
                state_dir,
                drain: drain.unwrap_or(transitwatch::daemon::DEFAULT_DRAIN),
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
        } => {
            let opts = app::AnalyzeOptions {
                input,
                format: input_format,
                config,
                geoip: files.geoip,
                overrides: files.overrides,
                home,
                probes,
                json,
                threads: 0,
            };
            app::analyze(&opts, &mut std::io::stdout().lock()).map(|_| ())
        }
        Command::Export {
            config,
            store,
            format,
            since,
            until,
            target,
            output,
        } => {
            use std::io::IsTerminal as _;
            let opts = app::ExportOptions {
                config,
                store,
                format,
                since,
                until,
                target,
                output,
                progress: std::io::stderr().is_terminal(),
            };
            app::export(&opts, &mut std::io::stdout().lock()).map(|_| ())
        }
        Command::Trace(args) => {
            require_net_raw()?;
            let opts = args.into_options();
            let runtime = runtime()?;
            let mut stdout = std::io::stdout().lock();
            let result = runtime.block_on(app::trace(&opts, &mut stdout)).map(|_| ());
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
        DaemonError::Setup(s) => CliError::Runtime(s.to_string()),
    })
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

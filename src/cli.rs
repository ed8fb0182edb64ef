//! The command line's grammar: every subcommand, flag and help text, as
//! clap parses them, and their conversion into the options of
//! [`transitwatch::commands`]. Shell completions and the man pages are
//! generated from this grammar (`completions`, `man`), so they cannot
//! drift from it.

use clap::{ArgAction, Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use transitwatch::commands::trace::TraceOptions;
use transitwatch::config::parse_dns_server;
use transitwatch::model::{CountryCode, Family, Protocol};
use transitwatch::units::parse_duration;

#[derive(Parser)]
#[command(
    name = "transitwatch",
    version,
    about = "Where a country's critical internet traffic really goes",
    // Bare `transitwatch` prints the help (on stderr, exit 2: a usage error).
    arg_required_else_help = true
)]
pub struct Cli {
    /// More log detail on stderr, one level per -v (from info for the
    /// daemon, warn for the other commands). TRANSITWATCH_LOG, when set,
    /// wins.
    #[arg(short, long, action = ArgAction::Count, global = true, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Less log detail on stderr, one level per -q (from info for the
    /// daemon, warn for the other commands). TRANSITWATCH_LOG, when set,
    /// wins.
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub quiet: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
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
        /// The HTTP endpoint's web configuration file (TLS, basic
        /// authentication; the Prometheus exporter-toolkit format), over
        /// [metrics] web_config_file.
        #[arg(long = "web.config.file", value_name = "FILE")]
        web_config_file: Option<PathBuf>,
        /// Log format on stderr: text or json.
        #[arg(long, default_value = "text")]
        log_format: LogFormat,
    },
    /// Classify the traces of a RIPE Atlas or scamper results file.
    Analyze {
        /// The results file (JSON Lines or a JSON array), plain or
        /// compressed with gzip, bzip2, zstd or xz (told by its content);
        /// `-` reads standard input.
        #[arg(long)]
        input: PathBuf,
        /// Its format: atlas or scamper.
        #[arg(long, default_value = "atlas")]
        input_format: transitwatch::import::InputFormat,
        /// Configuration file (home country, [geoip], min_confidence; a
        /// target's allowed_countries for results to its host).
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        files: GeoFiles,
        /// Home country of the vantage points (when no probe metadata says).
        #[arg(long)]
        home: Option<CountryCode>,
        /// RIPE Atlas probe metadata: prb_id -> country_code, and the
        /// probe's coordinates (geometry or latitude/longitude) for the
        /// speed-of-light checks.
        #[arg(long)]
        probes: Option<PathBuf>,
        /// Print trace records as JSON lines instead of a summary (the
        /// same as --output-format jsonl).
        #[arg(long, conflicts_with = "output_format")]
        json: bool,
        /// What to write: summary, jsonl (trace records), csv (a row per
        /// hop) or parquet (a dataset directory of traces and hops:
        /// needs --output DIR).
        #[arg(long, value_name = "FORMAT", default_value = "summary")]
        output_format: transitwatch::commands::analyze::OutputFormat,
        /// Write the records to this file (parquet: this directory, which
        /// must not exist or be empty); the summary then goes to standard
        /// output.
        #[arg(long, value_name = "PATH")]
        output: Option<PathBuf>,
        /// Parquet: partition the dataset Hive-style by these columns
        /// (date, vantage; e.g. date,vantage).
        #[arg(long, value_name = "COLUMNS")]
        partition_by: Option<transitwatch::dataset::Partitions>,
        /// Also write how the verdicts were made to this file (JSON,
        /// `transitwatch.provenance/1`): version, configuration, GeoIP
        /// databases and location files with their SHA-256s, the input's
        /// SHA-256 and compression, and the run's counts.
        #[arg(long, value_name = "FILE")]
        provenance: Option<PathBuf>,
        /// Threads that classify RIPE Atlas results and decode bzip2 input
        /// (0: one per available core). The output is the same whatever
        /// the number.
        #[arg(long, value_name = "N", default_value_t = 0)]
        threads: usize,
    },
    /// Write stored traces as JSON Lines, per-hop CSV, RIPE Atlas results
    /// or a Parquet dataset.
    Export {
        /// Configuration file (its [store] path names the history).
        #[arg(long, required_unless_present = "store", conflicts_with = "store")]
        config: Option<PathBuf>,
        /// The history database itself, instead of --config.
        #[arg(long)]
        store: Option<PathBuf>,
        /// Output format: jsonl, csv, atlas or parquet (a directory:
        /// needs --output DIR).
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
        /// Write to this file instead of standard output (parquet: this
        /// directory, which must not exist or be empty).
        #[arg(long)]
        output: Option<PathBuf>,
        /// Parquet: partition the dataset Hive-style by these columns
        /// (date, vantage; e.g. date,vantage).
        #[arg(long, value_name = "COLUMNS")]
        partition_by: Option<transitwatch::dataset::Partitions>,
    },
    /// What the history keeps besides traces: the configuration files the
    /// daemon ran with.
    #[command(subcommand)]
    History(HistoryCommand),
    /// Write the regulator's report of the history: which services depend
    /// on which countries, since when and for how much of the period.
    Report {
        /// Configuration file: its [store] path, and the services'
        /// categories and rules for the report.
        #[arg(long, required_unless_present = "store")]
        config: Option<PathBuf>,
        /// The history database itself (instead of the configuration's).
        #[arg(long)]
        store: Option<PathBuf>,
        /// Start of the period (RFC 3339, a date, or a duration before now
        /// such as 30d); default the first stored trace.
        #[arg(long, value_name = "T")]
        since: Option<String>,
        /// End of the period (same notation); default now.
        #[arg(long, value_name = "T")]
        until: Option<String>,
        /// Longest time a verdict is taken to hold without a new trace
        /// (a duration); default three times each path's median spacing.
        #[arg(long, value_name = "DURATION")]
        gap: Option<String>,
        /// Output format: html, md or json.
        #[arg(long, default_value = "html")]
        format: transitwatch::report::ReportFormat,
        /// Write to this file instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// What fails if a country, a network (AS) or a company becomes
    /// unavailable: the services that lose their route or their hosting,
    /// from each path's latest stored trace.
    Whatif {
        /// Configuration file (its [store] path names the history).
        #[arg(long, required_unless_present = "store", conflicts_with = "store")]
        config: Option<PathBuf>,
        /// The history database itself, instead of --config.
        #[arg(long)]
        store: Option<PathBuf>,
        #[command(flatten)]
        failure: FailureArgs,
        /// Output format: text or json.
        #[arg(long, default_value = "text")]
        format: transitwatch::commands::whatif::WhatIfFormat,
        /// Take each path's latest trace at or before T (RFC 3339, a date,
        /// or a duration before now such as 24h); default now.
        #[arg(long, value_name = "T")]
        at: Option<String>,
    },
    /// What each name depends on in DNS: its CNAME chain, addresses, the
    /// zone of the name (and of its alias target) and their name servers.
    Dns {
        /// Service host names.
        #[arg(required = true)]
        names: Vec<String>,
        /// Recursive DNS server asked, ADDR or ADDR:PORT (repeatable;
        /// default: the system's).
        #[arg(long, value_name = "ADDR[:PORT]", value_parser = parse_dns_server)]
        dns_server: Vec<SocketAddr>,
        /// The longest one query may take (e.g. 2s).
        #[arg(long, value_parser = parse_duration, default_value = "2s")]
        timeout: Duration,
        /// The longest one name's resolution may take (e.g. 10s).
        #[arg(long, value_parser = parse_duration, default_value = "10s")]
        deadline: Duration,
        /// Print one JSON object per name per line (transitwatch.dns/1).
        #[arg(long)]
        json: bool,
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
    /// Print the shell completion script for SHELL on standard output.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) on standard output, or with --dir write
    /// one page per command there (transitwatch.1, transitwatch-trace.1...).
    Man {
        /// The folder to write the pages to (created if missing).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub enum HistoryCommand {
    /// The configuration file stored traces were made with, byte for byte,
    /// by its SHA-256 (each trace's `config_sha256`); with --list, every
    /// configuration with the count and time span of its traces.
    Config {
        /// The SHA-256, or a unique prefix of at least 8 hex digits.
        #[arg(required_unless_present = "list", conflicts_with = "list")]
        sha256: Option<String>,
        /// List the configurations instead.
        #[arg(long)]
        list: bool,
        /// With --list: one JSON object per line instead of a table.
        #[arg(long, requires = "list")]
        json: bool,
        /// Configuration file (its [store] path names the history).
        #[arg(long, required_unless_present = "store", conflicts_with = "store")]
        config: Option<PathBuf>,
        /// The history database itself, instead of --config.
        #[arg(long)]
        store: Option<PathBuf>,
        /// Write the configuration to this file (created 0600, whole or
        /// not at all) instead of standard output.
        #[arg(long, conflicts_with = "list")]
        output: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub enum GeoCommand {
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
        /// The address's host name, to weigh its location hints as evidence
        /// (no lookup is made).
        #[arg(long, value_name = "NAME")]
        hostname: Option<String>,
        /// Look the address's name up (reverse DNS) at this server,
        /// ADDR or ADDR:PORT, and weigh its hints as evidence.
        #[arg(long, value_name = "ADDR[:PORT]", value_parser = parse_dns_server, conflicts_with = "hostname")]
        dns_server: Option<SocketAddr>,
    },
    /// The location hints host names carry (airport, UN/LOCODE, CLLI-style
    /// codes, city names, country labels), read from the names alone.
    Hint {
        /// Host names (router PTR names).
        #[arg(required = true)]
        names: Vec<String>,
        /// Operator rules (TOML, `[[rule]]` suffix/regex/country/city).
        #[arg(long)]
        rules: Option<PathBuf>,
        /// Print one JSON object per name per line.
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
        /// The database's metadata `database_type`. The default marks it
        /// as the operator's overrides; any other name (not a public
        /// vendor's) makes it an ordinary database of that name, which
        /// also locates private and reserved ranges.
        #[arg(long, default_value = transitwatch::geo::BUILD_DATABASE_TYPE)]
        database_type: String,
    },
}

/// What becomes unavailable, for `whatif`: exactly one of the three.
#[derive(Args)]
#[group(required = true, multiple = false)]
pub struct FailureArgs {
    /// A country, ISO 3166-1 alpha-2 (e.g. ZA).
    #[arg(long, value_name = "CC")]
    pub country: Option<String>,
    /// An autonomous system by number (64510 or AS64510).
    #[arg(long, value_name = "N")]
    pub asn: Option<String>,
    /// An organisation: part of its AS organisation's name, any case
    /// (e.g. Telkom).
    #[arg(long, value_name = "NAME")]
    pub org: Option<String>,
}

/// Geolocation sources given on the command line (they replace the
/// config's `[geoip]` table).
#[derive(Args)]
pub struct GeoFiles {
    /// MMDB file (repeatable: a country or city database and an ASN
    /// database; replaces the config's files).
    #[arg(long)]
    pub geoip: Vec<PathBuf>,
    /// Overrides CSV (prefix,country[,city,lat,lon,asn,note]) that wins over
    /// the databases.
    #[arg(long)]
    pub overrides: Option<PathBuf>,
}

#[derive(Args)]
pub struct TraceArgs {
    /// Configured target name, host name or IP address.
    pub target: String,
    /// Configuration file (vantage, home country, probe defaults, targets).
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub files: GeoFiles,
    /// Home country, ISO 3166-1 alpha-2 (overrides the config).
    #[arg(long)]
    pub home: Option<CountryCode>,
    /// Probe protocol: icmp, udp or tcp.
    #[arg(long)]
    pub protocol: Option<Protocol>,
    /// Destination port for udp and tcp probes.
    #[arg(long)]
    pub port: Option<u16>,
    /// Address family: auto, ipv4, ipv6 or both.
    #[arg(long)]
    pub family: Option<Family>,
    /// Trace IPv4 only.
    #[arg(short = '4', conflicts_with_all = ["family", "ipv6"])]
    pub ipv4: bool,
    /// Trace IPv6 only.
    #[arg(short = '6', conflicts_with = "family")]
    pub ipv6: bool,
    /// Probes per hop (1-16).
    #[arg(long)]
    pub probes: Option<u8>,
    /// First TTL probed.
    #[arg(long)]
    pub first_ttl: Option<u8>,
    /// Last TTL probed (at most 64).
    #[arg(long)]
    pub max_ttl: Option<u8>,
    /// Probe size in bytes (48-1024).
    #[arg(long)]
    pub packet_size: Option<u16>,
    /// Longest wait for late replies after the destination answered (e.g. 100ms).
    #[arg(long, value_parser = parse_duration)]
    pub grace: Option<Duration>,
    /// Longest a trace may take when the destination never answers (e.g. 3s).
    #[arg(long, value_parser = parse_duration)]
    pub deadline: Option<Duration>,
    /// Print trace records (transitwatch.trace/1) as JSON lines.
    #[arg(long)]
    pub json: bool,
    /// Do not look up the hops' names (reverse DNS).
    #[arg(short = 'n', long, conflicts_with = "dns_server")]
    pub no_dns: bool,
    /// DNS server asked for the hops' names, ADDR or ADDR:PORT (default:
    /// the config's `[rdns] servers`, else the system's).
    #[arg(long, value_name = "ADDR[:PORT]", value_parser = parse_dns_server)]
    pub dns_server: Option<SocketAddr>,
}

impl TraceArgs {
    pub fn into_options(self) -> TraceOptions {
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
            no_dns: self.no_dns,
            dns_server: self.dns_server,
        }
    }
}

/// How logs are written.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

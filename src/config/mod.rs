//! The configuration file: reading it, checking it, and the validated [`Config`].
//!
//! The TOML text is first deserialized into a raw file struct in which every
//! field is optional and every table rejects unknown keys (`raw`). Small
//! `validate_*` functions (`validate`) then apply defaults, check ranges and
//! cross-field rules, resolve relative paths against the config file's
//! folder, and build a [`Config`] that the rest of the program can use
//! without further checks.
//!
//! Every [`ConfigError`] names the file and, where the text gives one, the
//! 1-based line and column and the dotted path of the offending field
//! (`target[1].allowed_countries`, with 0-based array indices), all on one
//! line; `position` works those out from the text.

mod error;
mod position;
mod raw;
mod validate;

pub use error::ConfigError;

use crate::input_file::FileKind;
use crate::model::{Confidence, CountryCode, Protocol};
use crate::operators::OperatorTable;
use crate::probe::ProbeSettings;
use position::Source;
use raw::RawConfig;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The address family of a target (defined with the shared vocabulary).
pub use crate::model::Family;

/// The metrics endpoint's address when `[metrics] listen` is not set.
/// Prometheus' exporter port allocations fill 9100-9999 completely, so the
/// default lies outside that range, where no listed exporter collides.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:19968";

/// The history database when `[store] path` is not set (the daemon puts it
/// in its state directory instead when it is given one; see
/// [`StoreConfig::path_configured`]).
pub const DEFAULT_STORE_PATH: &str = "/var/lib/transitwatch/transitwatch.db";

/// How long stored traces are kept when `[store] max_age` is not set.
pub const DEFAULT_STORE_MAX_AGE: Duration = Duration::from_secs(90 * 86_400);

/// How large the history may grow when `[store] max_size` is not set (1 GiB).
pub const DEFAULT_STORE_MAX_SIZE: u64 = 1 << 30;

/// The smallest `[store] max_size` accepted (1 MiB): below it retention
/// would delete nearly every trace it stores.
pub const MIN_STORE_MAX_SIZE: u64 = 1 << 20;

/// The category of a target that does not name one.
pub const DEFAULT_CATEGORY: &str = "uncategorized";

/// A fully parsed and validated configuration file.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file the configuration was loaded from.
    pub path: PathBuf,
    /// Where the traces are taken from.
    pub vantage: VantageConfig,
    /// The jurisdiction rules.
    pub policy: PolicyConfig,
    /// Geolocation databases.
    pub geoip: GeoIpConfig,
    /// Probe defaults and limits.
    pub probe: ProbeConfig,
    /// The Prometheus endpoint.
    pub metrics: MetricsConfig,
    /// The history database.
    pub store: StoreConfig,
    /// The services to trace, in file order (possibly none).
    pub targets: Vec<TargetConfig>,
    /// Alert delivery.
    pub alert: AlertConfig,
    /// Reverse DNS names of hop addresses.
    pub rdns: RdnsConfig,
    /// Who operates the networks services depend on.
    pub dependency: DependencyConfig,
    /// SHA-256 of the file's bytes (lower-case hex): recorded with every
    /// stored trace, so a trace says which configuration produced it.
    pub sha256: String,
    /// The file's text exactly as read (what `sha256` is of): the daemon
    /// keeps it in the history, so a stored verdict can be made again
    /// (`transitwatch history config`).
    pub text: std::sync::Arc<str>,
}

/// The vantage point: the machine the traces start from.
#[derive(Debug, Clone, PartialEq)]
pub struct VantageConfig {
    /// The vantage point's name, as recorded in every trace.
    pub name: String,
    /// The country the vantage point is in.
    pub country: CountryCode,
    /// Latitude in degrees (-90..=90); set together with `longitude`.
    pub latitude: Option<f64>,
    /// Longitude in degrees (-180..=180); set together with `latitude`.
    pub longitude: Option<f64>,
}

/// The jurisdiction rules paths are judged by.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyConfig {
    /// The home country; defaults to the vantage point's country.
    pub home: CountryCode,
    /// Foreign claims less sure than this are suspected, not violations
    /// (default `low`: every claim counts).
    pub min_confidence: Confidence,
}

/// Geolocation databases and operator overrides.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GeoIpConfig {
    /// MMDB files (country or city, and ASN), resolved against the config folder.
    pub files: Vec<PathBuf>,
    /// An overrides CSV, resolved against the config folder.
    pub overrides: Option<PathBuf>,
    /// RFC 8805 geofeeds, in order, resolved against the config folder.
    pub geofeeds: Vec<PathBuf>,
    /// A PeeringDB dump (objects `ix`, `ixlan`, `ixpfx`), resolved against
    /// the config folder.
    pub peeringdb: Option<PathBuf>,
    /// Registration-country MMDBs (weak evidence), resolved against the
    /// config folder.
    pub registration: Vec<PathBuf>,
    /// Operator rules for location hints in router host names (TOML,
    /// `crate::geo::hint::rules`), resolved against the config folder.
    pub hostname_rules: Option<PathBuf>,
}

/// How probes are sent, and the defaults targets inherit.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeConfig {
    /// How each trace is probed. Its `protocol` and `port` are the defaults
    /// targets inherit (`port` `None`: the protocol's default). Accepted
    /// ranges: `probes_per_hop` 1..=16, `first_ttl` 1..=64, `max_ttl`
    /// `first_ttl..=64`, `packet_size` 48..=1024 bytes, `grace` 1ms..=5s,
    /// `deadline` 100ms..=60s and at least `grace`.
    pub settings: ProbeSettings,
    /// Default address family for targets.
    pub family: Family,
    /// Time between two traces of one target.
    pub interval: Duration,
    /// Random delay added to each interval; always shorter than `interval`.
    pub jitter: Duration,
    /// Traces running at once (1..=200).
    pub concurrency: usize,
    /// How often each target's load-balanced paths are enumerated
    /// (`multipath_interval`, 1s..=30d; `None`, the default or `"off"`:
    /// never). Targets inherit it.
    pub multipath: Option<Duration>,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        Self {
            settings: ProbeSettings::default(),
            family: Family::Auto,
            interval: Duration::from_secs(300),
            jitter: Duration::from_secs(30),
            concurrency: 8,
            multipath: None,
        }
    }
}

/// The Prometheus endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsConfig {
    /// Address the `/metrics` HTTP server listens on.
    pub listen: SocketAddr,
    /// The HTTP endpoint's web configuration (TLS, basic authentication,
    /// headers; the exporter-toolkit format, see `http::web_config`),
    /// resolved against the config folder; read by the daemon, not here.
    pub web_config_file: Option<PathBuf>,
    /// Whether per-hop latency and loss series and the destination RTT
    /// histogram are exported for every path (`[metrics] per_hop`): the
    /// default of each target's `per_hop`, and the setting of the name
    /// servers' dependency paths.
    pub per_hop: bool,
}

/// The history database.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreConfig {
    /// The `SQLite` file, resolved against the config folder
    /// ([`DEFAULT_STORE_PATH`] when not set).
    pub path: PathBuf,
    /// Whether `path` was written in the file. When it was not, the daemon
    /// keeps the database in its state directory (`transitwatch.db` there).
    pub path_configured: bool,
    /// Traces older than this are deleted; `None`: kept whatever their age.
    pub max_age: Option<Duration>,
    /// The oldest traces are deleted while the database's pages in use
    /// exceed this many bytes; `None`: no size limit.
    pub max_size: Option<u64>,
}

/// One service to trace, with every default applied.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetConfig {
    /// Unique name, made of `[A-Za-z0-9_.-]`; the `target` label in metrics.
    pub name: String,
    /// Host name or IP address literal.
    pub host: String,
    /// Free-form grouping such as `government` or `finance`.
    pub category: String,
    /// Probe protocol.
    pub protocol: Protocol,
    /// Destination port; `None` for ICMP and for the protocol's default port.
    pub port: Option<u16>,
    /// Address family.
    pub family: Family,
    /// Countries the path may cross without a violation.
    pub allowed_countries: Vec<CountryCode>,
    /// Operators the country chose to depend on for this service (names of
    /// the operator table, as written; matched case-insensitively): a
    /// hosting by one of them is reported as accepted, not alerted.
    pub accepted_operators: Vec<String>,
    /// Foreign countries the country chose to depend on for this
    /// service's DNS: a zone whose name servers are all there is reported
    /// as accepted, not alerted (where its paths and destination may be is
    /// `allowed_countries`).
    pub accepted_countries: Vec<CountryCode>,
    /// How often its load-balanced paths are enumerated (`None`: never);
    /// `[probe] multipath_interval` unless the target sets its own.
    pub multipath: Option<Duration>,
    /// Whether this target's paths export per-hop latency and loss series
    /// and the destination RTT histogram (`per_hop`, else `[metrics]
    /// per_hop`).
    pub per_hop: bool,
}

/// `[dependency]`: who operates the networks services depend on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DependencyConfig {
    /// The deployment's operator table, resolved against the config folder.
    pub operators: Option<PathBuf>,
    /// The SHA-256 (hex) of that file's bytes as read.
    pub operators_sha256: Option<String>,
    /// The shipped operator table with that file's entries over it (by AS
    /// number); the shipped table alone when no file is named.
    pub table: OperatorTable,
    /// Whether every named target's DNS dependencies (CNAME chain, zones,
    /// name servers) are resolved every cycle and kept in its records.
    pub dns: bool,
    /// The recursive servers asked; empty: `[rdns] servers`, and when
    /// those are empty too, the system's (`/etc/resolv.conf`).
    pub dns_servers: Vec<SocketAddr>,
    /// The longest one DNS query may take.
    pub dns_timeout: Duration,
    /// The longest one target's whole resolution may take.
    pub dns_deadline: Duration,
    /// Whether each name server address found is traced as a dependency
    /// path (`dns:NAME/ipv4`), once per interval however many targets
    /// share it, under the probe concurrency bound.
    pub trace_nameservers: bool,
}

impl Default for DependencyConfig {
    fn default() -> Self {
        Self {
            operators: None,
            operators_sha256: None,
            table: OperatorTable::shipped().clone(),
            dns: false,
            dns_servers: Vec::new(),
            dns_timeout: Duration::from_secs(2),
            dns_deadline: Duration::from_secs(10),
            trace_nameservers: true,
        }
    }
}

/// Alert delivery: the built-in notifier's webhooks and its delivery
/// settings (see `alert` for what fires when).
#[derive(Debug, Clone, PartialEq)]
pub struct AlertConfig {
    /// Webhooks every alert is posted to.
    pub webhooks: Vec<WebhookConfig>,
    /// Most notifications waiting per webhook (1..=100000); when full the
    /// oldest is dropped.
    pub queue_capacity: usize,
    /// Wait after a first failed delivery (10ms..=1h).
    pub retry_initial: Duration,
    /// Longest wait between two attempts (`retry_initial`..=24h).
    pub retry_max: Duration,
    /// Give up on a notification this old; `None` retries without end.
    pub max_age: Option<Duration>,
    /// Limit on one delivery attempt, connect to answer (100ms..=5m).
    pub timeout: Duration,
    /// The daemon's address as seen by people reading alerts; links in
    /// notifications point to its JSON API.
    pub external_url: Option<String>,
}

impl Default for AlertConfig {
    fn default() -> Self {
        Self {
            webhooks: Vec::new(),
            queue_capacity: 1000,
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(300),
            max_age: None,
            timeout: Duration::from_secs(10),
            external_url: None,
        }
    }
}

/// `[rdns]`: reverse DNS (PTR) names of hop addresses, looked up after a
/// trace is measured and before it is judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RdnsConfig {
    /// Whether names are looked up at all.
    pub enabled: bool,
    /// The DNS servers asked, in order; empty: the system's
    /// (`/etc/resolv.conf`).
    pub servers: Vec<SocketAddr>,
    /// Limit on one query (10ms..=30s).
    pub timeout: Duration,
    /// The longest a trace's record waits for its names (0s..=60s); a name
    /// that comes later is kept for the next trace.
    pub max_wait: Duration,
    /// Answers kept, names and their absence alike (0..=1000000).
    pub cache_size: usize,
}

impl Default for RdnsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            servers: Vec::new(),
            timeout: Duration::from_secs(1),
            max_wait: Duration::from_secs(2),
            cache_size: 4096,
        }
    }
}

/// The port a DNS server address without one is asked on.
pub const DNS_PORT: u16 = 53;

/// Why a text is not a DNS server address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a DNS server address (expected IP or IP:PORT, e.g. \"127.0.0.1\", \"127.0.0.1:5353\" or \"[::1]:53\")")]
pub struct InvalidDnsServer(pub String);

/// A DNS server address: `IP` (port 53) or `IP:PORT` (`[IPv6]:PORT`).
///
/// # Errors
/// Anything else, or port 0.
pub fn parse_dns_server(text: &str) -> Result<SocketAddr, InvalidDnsServer> {
    let trimmed = text.trim();
    let addr = trimmed
        .parse::<SocketAddr>()
        .ok()
        .or_else(|| {
            trimmed
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .ok()
                .map(|ip| SocketAddr::new(ip, DNS_PORT))
        })
        .ok_or_else(|| InvalidDnsServer(text.to_string()))?;
    if addr.port() == 0 {
        return Err(InvalidDnsServer(text.to_string()));
    }
    Ok(addr)
}

/// One webhook receiver.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookConfig {
    /// The `http://` or `https://` URL posted to.
    pub url: String,
    /// The body format.
    pub format: WebhookFormat,
    /// Unique name: the `webhook` label of the alert metrics and the
    /// Alertmanager `receiver`; defaults to the URL's `host:port`.
    pub name: String,
    /// Key of the `X-Transitwatch-Signature` HMAC, from `secret` or
    /// `secret_file`.
    pub secret: Option<Secret>,
    /// Certificates trusted for this https webhook instead of the built-in
    /// roots.
    pub ca: Option<CaFile>,
}

/// A signing key; its `Debug` form never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// A key from its text.
    #[must_use]
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The key bytes.
    #[must_use]
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// A PEM file of CA certificates, read and decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaFile {
    /// The file, resolved against the config folder.
    pub path: PathBuf,
    /// Its certificates, DER-encoded, in file order (at least one).
    pub certs: Vec<Vec<u8>>,
}

/// The body format of a webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// Alertmanager-style alerts.
    #[default]
    Alertmanager,
    /// transitwatch's own JSON object.
    Json,
}

crate::text_enum::text_enum! {
    /// The lower-case name used in configs.
    WebhookFormat {
        Alertmanager => "alertmanager",
        Json => "json",
    }
    parse_error: InvalidWebhookFormat
}

/// Why a string is not a webhook format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a webhook format (expected alertmanager or json)")]
pub struct InvalidWebhookFormat(pub String);

impl Config {
    /// Read, parse and validate the configuration file at `path`.
    ///
    /// # Errors
    /// [`ConfigError::Read`] when the file cannot be read (also when it is
    /// not a regular file or is over the 1 MiB maximum), otherwise as
    /// [`Config::from_str`].
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = crate::input_file::read_to_string(path, FileKind::Config).map_err(|source| {
            ConfigError::Read {
                path: path.to_path_buf(),
                source,
            }
        })?;
        Self::from_str(&text, path)
    }

    /// Parse and validate configuration `text` as if read from `path`.
    ///
    /// `path` names the file in error messages, and relative paths in the
    /// text are resolved against its folder.
    ///
    /// # Errors
    /// [`ConfigError::Syntax`] when the text is not TOML or does not fit the
    /// file's structure, [`ConfigError::Invalid`] when a value is not acceptable.
    pub fn from_str(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let source = Source { text, path };
        let raw: RawConfig = toml::from_str(text).map_err(|e| source.syntax(&e))?;
        validate::validate_config(raw, &source)
    }
}

//! The configuration file: reading it, checking it, and the validated [`Config`].
//!
//! The TOML text is first deserialized into a raw file struct in which every
//! field is optional and every table rejects unknown keys. Small `validate_*`
//! functions then apply defaults, check ranges and cross-field rules, resolve
//! relative paths against the config file's folder, and build a [`Config`]
//! that the rest of the program can use without further checks.
//!
//! Every [`ConfigError`] names the file and, where the text gives one, the
//! 1-based line and column and the dotted path of the offending field
//! (`target[1].allowed_countries`, with 0-based array indices), all on one line.

use crate::model::{CountryCode, InvalidFamily, Protocol};
use crate::units::{format_duration, parse_duration, parse_size};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;
use toml::Spanned;

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
    /// SHA-256 of the file's bytes (lower-case hex): recorded with every
    /// stored trace, so a trace says which configuration produced it.
    pub sha256: String,
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
}

/// Geolocation databases and operator overrides.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GeoIpConfig {
    /// MMDB files (country or city, and ASN), resolved against the config folder.
    pub files: Vec<PathBuf>,
    /// An overrides CSV, resolved against the config folder.
    pub overrides: Option<PathBuf>,
}

/// How probes are sent, and the defaults targets inherit.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeConfig {
    /// Default probe protocol for targets.
    pub protocol: Protocol,
    /// Default destination port for UDP and TCP; `None` means the protocol's default.
    pub port: Option<u16>,
    /// Default address family for targets.
    pub family: Family,
    /// Time between two traces of one target.
    pub interval: Duration,
    /// Random delay added to each interval; always shorter than `interval`.
    pub jitter: Duration,
    /// Traces running at once (1..=200).
    pub concurrency: usize,
    /// Probes sent per TTL (1..=16).
    pub probes_per_hop: u8,
    /// First TTL probed (1..=64).
    pub first_ttl: u8,
    /// Last TTL probed (`first_ttl..=64`).
    pub max_ttl: u8,
    /// Probe packet size in bytes (48..=1024).
    pub packet_size: u16,
    /// Ceiling on the wait for late replies (1ms..=5s).
    pub grace: Duration,
    /// Bound on one trace when the target never answers (100ms..=60s, at least `grace`).
    pub deadline: Duration,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        Self {
            protocol: Protocol::Icmp,
            port: None,
            family: Family::Auto,
            interval: Duration::from_secs(300),
            jitter: Duration::from_secs(30),
            concurrency: 64,
            probes_per_hop: 3,
            first_ttl: 1,
            max_ttl: 30,
            packet_size: 64,
            grace: Duration::from_millis(100),
            deadline: Duration::from_secs(3),
        }
    }
}

/// The Prometheus endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsConfig {
    /// Address the `/metrics` HTTP server listens on.
    pub listen: SocketAddr,
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

impl WebhookFormat {
    /// The lower-case name used in configs.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Alertmanager => "alertmanager",
            Self::Json => "json",
        }
    }
}

/// Why a string is not a webhook format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a webhook format (expected alertmanager or json)")]
pub struct InvalidWebhookFormat(pub String);

impl FromStr for WebhookFormat {
    type Err = InvalidWebhookFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "alertmanager" => Ok(Self::Alertmanager),
            "json" => Ok(Self::Json),
            _ => Err(InvalidWebhookFormat(s.to_string())),
        }
    }
}

impl fmt::Display for WebhookFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a configuration file could not be used.
///
/// The `Display` form is one line: `FILE[:LINE:COLUMN]: [field `PATH`: ]MESSAGE`.
/// Lines and columns are 1-based (columns count characters); array indices in
/// field paths are 0-based.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The text is not TOML, or does not fit the file's structure (unknown
    /// key, wrong value type).
    #[error("{}", located(.path, *.line, *.column, .field.as_deref(), .message))]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error, when known.
        line: Option<usize>,
        /// 1-based column of the error, when known.
        column: Option<usize>,
        /// Dotted path of the field concerned, when known.
        field: Option<String>,
        /// What is wrong, on one line.
        message: String,
    },
    /// A value is well-formed but not acceptable (out of range, duplicate,
    /// missing, inconsistent with another value).
    #[error("{}", located(.path, *.line, *.column, Some(.field), .message))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line of the value, or of its table's header, when known.
        line: Option<usize>,
        /// 1-based column, when known.
        column: Option<usize>,
        /// Dotted path of the field concerned.
        field: String,
        /// What is wrong, on one line.
        message: String,
    },
}

impl ConfigError {
    /// The file the error is about.
    #[must_use]
    pub fn path(&self) -> &Path {
        match self {
            Self::Read { path, .. } | Self::Syntax { path, .. } | Self::Invalid { path, .. } => {
                path
            }
        }
    }

    /// The 1-based line and column of the error, when known.
    #[must_use]
    pub fn position(&self) -> Option<(usize, usize)> {
        match self {
            Self::Read { .. } => None,
            Self::Syntax { line, column, .. } | Self::Invalid { line, column, .. } => {
                Some(((*line)?, (*column)?))
            }
        }
    }

    /// The dotted path of the field concerned, when known.
    #[must_use]
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Read { .. } => None,
            Self::Syntax { field, .. } => field.as_deref(),
            Self::Invalid { field, .. } => Some(field),
        }
    }
}

/// Render `FILE[:LINE:COLUMN]: [field `PATH`: ]MESSAGE`.
fn located(
    path: &Path,
    line: Option<usize>,
    column: Option<usize>,
    field: Option<&str>,
    message: &str,
) -> String {
    let position = match (line, column) {
        (Some(line), Some(column)) => format!(":{line}:{column}"),
        (Some(line), None) => format!(":{line}"),
        _ => String::new(),
    };
    let field = field.map(|f| format!("field `{f}`: ")).unwrap_or_default();
    format!("{}{position}: {field}{message}", path.display())
}

impl Config {
    /// Read, parse and validate the configuration file at `path`.
    ///
    /// # Errors
    /// [`ConfigError::Read`] when the file cannot be read, otherwise as
    /// [`Config::from_str`].
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
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
        validate_config(raw, &source)
    }
}

// ---------------------------------------------------------------------------
// The raw file: every field optional, unknown keys rejected. Values that are
// checked after parsing keep their span so errors can point at them.
// ---------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    vantage: Option<RawVantage>,
    policy: Option<RawPolicy>,
    geoip: Option<RawGeoIp>,
    probe: Option<RawProbe>,
    metrics: Option<RawMetrics>,
    store: Option<RawStore>,
    target: Option<Vec<Spanned<RawTarget>>>,
    alert: Option<RawAlert>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVantage {
    name: Option<Spanned<String>>,
    country: Option<Spanned<String>>,
    latitude: Option<Spanned<f64>>,
    longitude: Option<Spanned<f64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    home: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGeoIp {
    files: Option<Vec<Spanned<String>>>,
    overrides: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProbe {
    protocol: Option<Spanned<String>>,
    port: Option<Spanned<i64>>,
    family: Option<Spanned<String>>,
    interval: Option<Spanned<String>>,
    jitter: Option<Spanned<String>>,
    concurrency: Option<Spanned<i64>>,
    probes_per_hop: Option<Spanned<i64>>,
    first_ttl: Option<Spanned<i64>>,
    max_ttl: Option<Spanned<i64>>,
    packet_size: Option<Spanned<i64>>,
    grace: Option<Spanned<String>>,
    deadline: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    listen: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    path: Option<Spanned<String>>,
    max_age: Option<Spanned<String>>,
    max_size: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    name: Option<Spanned<String>>,
    host: Option<Spanned<String>>,
    category: Option<Spanned<String>>,
    protocol: Option<Spanned<String>>,
    port: Option<Spanned<i64>>,
    family: Option<Spanned<String>>,
    allowed_countries: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlert {
    webhook: Option<Vec<Spanned<RawWebhook>>>,
    queue_capacity: Option<Spanned<i64>>,
    retry_initial: Option<Spanned<String>>,
    retry_max: Option<Spanned<String>>,
    max_age: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    external_url: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    url: Option<Spanned<String>>,
    format: Option<Spanned<String>>,
    name: Option<Spanned<String>>,
    secret: Option<Spanned<String>>,
    secret_file: Option<Spanned<String>>,
    ca_file: Option<Spanned<String>>,
}

// ---------------------------------------------------------------------------
// Error positions.
// ---------------------------------------------------------------------------

/// The text being validated and the file it came from.
struct Source<'a> {
    text: &'a str,
    path: &'a Path,
}

impl Source<'_> {
    /// The 1-based line and column (in characters) of byte `offset`.
    fn position(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line = before.matches('\n').count() + 1;
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }

    /// A validation error at `span` (or without a position).
    fn invalid(
        &self,
        span: Option<Range<usize>>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        let (line, column) = match span.map(|span| self.position(span.start)) {
            Some((line, column)) => (Some(line), Some(column)),
            None => (None, None),
        };
        ConfigError::Invalid {
            path: self.path.to_path_buf(),
            line,
            column,
            field: field.into(),
            message: one_line(&message.into()),
        }
    }

    /// A validation error about a missing key of the table `table`, placed at
    /// that table's header or first key.
    fn missing(&self, table: &str, key: &str) -> ConfigError {
        let span = KeyIndex::build(self.text).and_then(|index| index.span_of(table));
        self.invalid(
            span,
            format!("{table}.{key}"),
            format!("`{key}` is required in `[{table}]`"),
        )
    }

    /// A parse error, with the field path worked out from its position.
    fn syntax(&self, error: &toml::de::Error) -> ConfigError {
        let span = error.span();
        let field = span.clone().and_then(|span| {
            KeyIndex::build(self.text).and_then(|index| index.field_at(self.text, span.start))
        });
        let (line, column) = match span.map(|span| self.position(span.start)) {
            Some((line, column)) => (Some(line), Some(column)),
            None => (None, None),
        };
        ConfigError::Syntax {
            path: self.path.to_path_buf(),
            line,
            column,
            field,
            message: one_line(error.message()),
        }
    }
}

/// Join the lines of a multi-line message with `; `.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Every key of a TOML document with its dotted path and the span of the key
/// text. Used to name the field a parse error points into; keys are kept in
/// document order.
struct KeyIndex {
    keys: Vec<(String, Range<usize>)>,
}

impl KeyIndex {
    /// Index `text`, or `None` when it is not valid TOML.
    fn build(text: &str) -> Option<Self> {
        let root: KeyNode = toml::from_str(text).ok()?;
        let mut keys = Vec::new();
        root.collect("", &mut keys);
        keys.sort_by_key(|(_, span)| span.start);
        Some(Self { keys })
    }

    /// The span of the key whose path is `path`.
    fn span_of(&self, path: &str) -> Option<Range<usize>> {
        self.keys
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, span)| span.clone())
    }

    /// The dotted path of the field at byte `offset` of `text`: the key
    /// written there; for a table header, the last key named on it; else the
    /// last key before it (whose value the offset falls in).
    fn field_at(&self, text: &str, offset: usize) -> Option<String> {
        if let Some((path, _)) = self.keys.iter().find(|(_, span)| span.contains(&offset)) {
            return Some(path.clone());
        }
        let rest = text.get(offset..)?;
        if rest.starts_with('[') {
            // Errors about a whole table point at the `[` of its header. A
            // header that repeats an array of tables (`[[target]]`) holds no
            // key of its own here, and no path is better than a wrong one.
            let line_end = offset + rest.find('\n').unwrap_or(rest.len());
            return self
                .keys
                .iter()
                .filter(|(_, span)| span.start > offset && span.start < line_end)
                .max_by_key(|(_, span)| span.start)
                .map(|(path, _)| path.clone());
        }
        self.keys
            .iter()
            .rev()
            .find(|(_, span)| span.start <= offset)
            .map(|(path, _)| path.clone())
    }
}

/// The shape of a TOML document: tables with spanned keys, arrays, leaves.
enum KeyNode {
    Table(Vec<(Spanned<String>, KeyNode)>),
    Array(Vec<KeyNode>),
    Leaf,
}

impl KeyNode {
    fn collect(&self, prefix: &str, out: &mut Vec<(String, Range<usize>)>) {
        match self {
            Self::Table(entries) => {
                for (key, value) in entries {
                    let path = if prefix.is_empty() {
                        key.get_ref().clone()
                    } else {
                        format!("{prefix}.{}", key.get_ref())
                    };
                    out.push((path.clone(), key.span()));
                    value.collect(&path, out);
                }
            }
            Self::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    item.collect(&format!("{prefix}[{i}]"), out);
                }
            }
            Self::Leaf => {}
        }
    }
}

impl<'de> Deserialize<'de> for KeyNode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(KeyNodeVisitor)
    }
}

struct KeyNodeVisitor;

impl<'de> Visitor<'de> for KeyNodeVisitor {
    type Value = KeyNode;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any TOML value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<KeyNode, E> {
        Ok(KeyNode::Leaf)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<KeyNode, E> {
        Ok(KeyNode::Leaf)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<KeyNode, E> {
        Ok(KeyNode::Leaf)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<KeyNode, E> {
        Ok(KeyNode::Leaf)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<KeyNode, E> {
        Ok(KeyNode::Leaf)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<KeyNode, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(KeyNode::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KeyNode, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            let value = map.next_value()?;
            entries.push((key, value));
        }
        Ok(KeyNode::Table(entries))
    }
}

// ---------------------------------------------------------------------------
// Validation: raw file → Config.
// ---------------------------------------------------------------------------

fn validate_config(raw: RawConfig, src: &Source<'_>) -> Result<Config, ConfigError> {
    let base = src.path.parent().unwrap_or_else(|| Path::new(""));
    let vantage = validate_vantage(raw.vantage, src)?;
    let policy = validate_policy(raw.policy.unwrap_or_default(), &vantage, src)?;
    let geoip = validate_geoip(raw.geoip.unwrap_or_default(), base, src)?;
    let probe = validate_probe(&raw.probe.unwrap_or_default(), src)?;
    let metrics = validate_metrics(raw.metrics.unwrap_or_default(), src)?;
    let store = validate_store(raw.store.unwrap_or_default(), base, src)?;
    let targets = validate_targets(&raw.target.unwrap_or_default(), &probe, &policy, src)?;
    let alert = validate_alert(raw.alert.unwrap_or_default(), base, src)?;
    Ok(Config {
        path: src.path.to_path_buf(),
        vantage,
        policy,
        geoip,
        probe,
        metrics,
        store,
        targets,
        alert,
        sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(src.text.as_bytes())),
    })
}

fn validate_vantage(
    raw: Option<RawVantage>,
    src: &Source<'_>,
) -> Result<VantageConfig, ConfigError> {
    let raw = raw.ok_or_else(|| {
        src.invalid(
            None,
            "vantage",
            "the `[vantage]` table is required (with `name` and `country`)",
        )
    })?;
    let name = raw.name.ok_or_else(|| src.missing("vantage", "name"))?;
    let name = validate_label(&name, "vantage.name", src)?;
    let country = raw
        .country
        .ok_or_else(|| src.missing("vantage", "country"))?;
    let country = validate_country(&country, "vantage.country", src)?;
    let latitude = validate_coordinate(raw.latitude.as_ref(), "vantage.latitude", 90.0, src)?;
    let longitude = validate_coordinate(raw.longitude.as_ref(), "vantage.longitude", 180.0, src)?;
    match (&raw.latitude, &raw.longitude) {
        (Some(lat), None) => {
            return Err(src.invalid(
                Some(lat.span()),
                "vantage.longitude",
                "`latitude` is set but `longitude` is not; set both or neither",
            ))
        }
        (None, Some(lon)) => {
            return Err(src.invalid(
                Some(lon.span()),
                "vantage.latitude",
                "`longitude` is set but `latitude` is not; set both or neither",
            ))
        }
        _ => {}
    }
    Ok(VantageConfig {
        name,
        country,
        latitude,
        longitude,
    })
}

fn validate_coordinate(
    value: Option<&Spanned<f64>>,
    field: &str,
    limit: f64,
    src: &Source<'_>,
) -> Result<Option<f64>, ConfigError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let degrees = *value.get_ref();
    if (-limit..=limit).contains(&degrees) {
        Ok(Some(degrees))
    } else {
        Err(src.invalid(
            Some(value.span()),
            field,
            format!("{degrees} is out of range, expected -{limit}..={limit} degrees"),
        ))
    }
}

fn validate_policy(
    raw: RawPolicy,
    vantage: &VantageConfig,
    src: &Source<'_>,
) -> Result<PolicyConfig, ConfigError> {
    let home = match raw.home {
        Some(home) => validate_country(&home, "policy.home", src)?,
        None => vantage.country,
    };
    Ok(PolicyConfig { home })
}

fn validate_geoip(
    raw: RawGeoIp,
    base: &Path,
    src: &Source<'_>,
) -> Result<GeoIpConfig, ConfigError> {
    let files = raw
        .files
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, file)| validate_path(file, &format!("geoip.files[{i}]"), base, src))
        .collect::<Result<Vec<_>, _>>()?;
    let overrides = raw
        .overrides
        .map(|file| validate_path(&file, "geoip.overrides", base, src))
        .transpose()?;
    Ok(GeoIpConfig { files, overrides })
}

fn validate_probe(raw: &RawProbe, src: &Source<'_>) -> Result<ProbeConfig, ConfigError> {
    let defaults = ProbeConfig::default();
    let protocol = match &raw.protocol {
        Some(p) => validate_protocol(p, "probe.protocol", src)?,
        None => defaults.protocol,
    };
    let port = raw
        .port
        .as_ref()
        .map(|p| validate_port(p, "probe.port", src))
        .transpose()?;
    let family = match &raw.family {
        Some(f) => validate_family(f, "probe.family", src)?,
        None => defaults.family,
    };
    let (interval, jitter) = validate_probe_schedule(raw, &defaults, src)?;
    let (first_ttl, max_ttl) = validate_probe_ttls(raw, &defaults, src)?;
    let (grace, deadline) = validate_probe_waits(raw, &defaults, src)?;
    Ok(ProbeConfig {
        protocol,
        port,
        family,
        interval,
        jitter,
        concurrency: validate_int(
            raw.concurrency.as_ref(),
            "probe.concurrency",
            defaults.concurrency,
            (1, 200),
            src,
        )?,
        probes_per_hop: validate_int(
            raw.probes_per_hop.as_ref(),
            "probe.probes_per_hop",
            defaults.probes_per_hop,
            (1, 16),
            src,
        )?,
        first_ttl,
        max_ttl,
        packet_size: validate_int(
            raw.packet_size.as_ref(),
            "probe.packet_size",
            defaults.packet_size,
            (48, 1024),
            src,
        )?,
        grace,
        deadline,
    })
}

/// `probe.interval` and `probe.jitter`: jitter must stay below the interval.
fn validate_probe_schedule(
    raw: &RawProbe,
    defaults: &ProbeConfig,
    src: &Source<'_>,
) -> Result<(Duration, Duration), ConfigError> {
    let interval = validate_duration(
        raw.interval.as_ref(),
        "probe.interval",
        defaults.interval,
        (Duration::from_secs(1), Duration::from_secs(7 * 24 * 3600)),
        src,
    )?;
    let jitter = validate_duration(
        raw.jitter.as_ref(),
        "probe.jitter",
        defaults.jitter,
        (Duration::ZERO, Duration::MAX),
        src,
    )?;
    if jitter >= interval {
        // Point at jitter when it is written, else at interval.
        let span = raw
            .jitter
            .as_ref()
            .or(raw.interval.as_ref())
            .map(Spanned::span);
        return Err(src.invalid(
            span,
            "probe.jitter",
            format!(
                "jitter ({}) must be shorter than interval ({})",
                format_duration(jitter),
                format_duration(interval)
            ),
        ));
    }
    Ok((interval, jitter))
}

/// `probe.first_ttl` and `probe.max_ttl`: a non-empty TTL range within 1..=64.
fn validate_probe_ttls(
    raw: &RawProbe,
    defaults: &ProbeConfig,
    src: &Source<'_>,
) -> Result<(u8, u8), ConfigError> {
    let first_ttl = validate_int(
        raw.first_ttl.as_ref(),
        "probe.first_ttl",
        defaults.first_ttl,
        (1, 64),
        src,
    )?;
    let max_ttl = validate_int(
        raw.max_ttl.as_ref(),
        "probe.max_ttl",
        defaults.max_ttl,
        (1, 64),
        src,
    )?;
    if max_ttl < first_ttl {
        let span = raw
            .max_ttl
            .as_ref()
            .or(raw.first_ttl.as_ref())
            .map(Spanned::span);
        return Err(src.invalid(
            span,
            "probe.max_ttl",
            format!("max_ttl ({max_ttl}) must not be below first_ttl ({first_ttl})"),
        ));
    }
    Ok((first_ttl, max_ttl))
}

/// `probe.grace` and `probe.deadline`: the deadline is never shorter than the grace.
fn validate_probe_waits(
    raw: &RawProbe,
    defaults: &ProbeConfig,
    src: &Source<'_>,
) -> Result<(Duration, Duration), ConfigError> {
    let grace = validate_duration(
        raw.grace.as_ref(),
        "probe.grace",
        defaults.grace,
        (Duration::from_millis(1), Duration::from_secs(5)),
        src,
    )?;
    let deadline = validate_duration(
        raw.deadline.as_ref(),
        "probe.deadline",
        defaults.deadline,
        (Duration::from_millis(100), Duration::from_secs(60)),
        src,
    )?;
    if deadline < grace {
        let span = raw
            .deadline
            .as_ref()
            .or(raw.grace.as_ref())
            .map(Spanned::span);
        return Err(src.invalid(
            span,
            "probe.deadline",
            format!(
                "deadline ({}) must not be shorter than grace ({})",
                format_duration(deadline),
                format_duration(grace)
            ),
        ));
    }
    Ok((grace, deadline))
}

fn validate_metrics(raw: RawMetrics, src: &Source<'_>) -> Result<MetricsConfig, ConfigError> {
    let listen = match raw.listen {
        Some(listen) => listen.get_ref().trim().parse().map_err(|_| {
            src.invalid(
                Some(listen.span()),
                "metrics.listen",
                format!(
                    "`{}` is not a socket address (expected IP:PORT, e.g. \"{DEFAULT_METRICS_LISTEN}\" or \"[::1]:19968\")",
                    listen.get_ref()
                ),
            )
        })?,
        None => DEFAULT_METRICS_LISTEN.parse().map_err(|_| {
            src.invalid(None, "metrics.listen", "the built-in default address is invalid")
        })?,
    };
    Ok(MetricsConfig { listen })
}

fn validate_store(
    raw: RawStore,
    base: &Path,
    src: &Source<'_>,
) -> Result<StoreConfig, ConfigError> {
    let path = match &raw.path {
        Some(path) => validate_path(path, "store.path", base, src)?,
        None => PathBuf::from(DEFAULT_STORE_PATH),
    };
    // "none" switches a limit off.
    let unlimited = |v: &Spanned<String>| v.get_ref().trim().eq_ignore_ascii_case("none");
    let max_age = match &raw.max_age {
        Some(v) if unlimited(v) => None,
        v => Some(validate_duration(
            v.as_ref(),
            "store.max_age",
            DEFAULT_STORE_MAX_AGE,
            (Duration::from_secs(3600), Duration::MAX),
            src,
        )?),
    };
    let max_size = match &raw.max_size {
        Some(v) if unlimited(v) => None,
        Some(v) => {
            let size = parse_size(v.get_ref())
                .map_err(|e| src.invalid(Some(v.span()), "store.max_size", e.to_string()))?;
            if size < MIN_STORE_MAX_SIZE {
                return Err(src.invalid(
                    Some(v.span()),
                    "store.max_size",
                    format!("{} is out of range, expected at least 1MiB", v.get_ref()),
                ));
            }
            Some(size)
        }
        None => Some(DEFAULT_STORE_MAX_SIZE),
    };
    Ok(StoreConfig {
        path,
        path_configured: raw.path.is_some(),
        max_age,
        max_size,
    })
}

fn validate_targets(
    raw: &[Spanned<RawTarget>],
    probe: &ProbeConfig,
    policy: &PolicyConfig,
    src: &Source<'_>,
) -> Result<Vec<TargetConfig>, ConfigError> {
    let mut seen = HashSet::new();
    let mut targets = Vec::with_capacity(raw.len());
    for (i, target) in raw.iter().enumerate() {
        let prefix = format!("target[{i}]");
        let validated = validate_target(target, &prefix, probe, policy, src)?;
        if !seen.insert(validated.name.clone()) {
            let span = target.get_ref().name.as_ref().map(Spanned::span);
            return Err(src.invalid(
                span,
                format!("{prefix}.name"),
                format!("target name `{}` is used more than once", validated.name),
            ));
        }
        targets.push(validated);
    }
    Ok(targets)
}

fn validate_target(
    spanned: &Spanned<RawTarget>,
    prefix: &str,
    probe: &ProbeConfig,
    policy: &PolicyConfig,
    src: &Source<'_>,
) -> Result<TargetConfig, ConfigError> {
    let raw = spanned.get_ref();
    let header = Some(spanned.span());
    let field = |key: &str| format!("{prefix}.{key}");

    let name = raw.name.as_ref().ok_or_else(|| {
        src.invalid(
            header.clone(),
            field("name"),
            "`name` is required in every `[[target]]`",
        )
    })?;
    let name = validate_target_name(name, &field("name"), src)?;

    let host = raw.host.as_ref().ok_or_else(|| {
        src.invalid(
            header.clone(),
            field("host"),
            "`host` is required in every `[[target]]`",
        )
    })?;
    let host_text = host.get_ref().trim();
    if host_text.is_empty()
        || host_text
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(src.invalid(
            Some(host.span()),
            field("host"),
            format!("`{}` is not a host name or IP address", host.get_ref()),
        ));
    }

    let category = match &raw.category {
        Some(category) => validate_label(category, &field("category"), src)?,
        None => DEFAULT_CATEGORY.to_string(),
    };
    let protocol = match &raw.protocol {
        Some(p) => validate_protocol(p, &field("protocol"), src)?,
        None => probe.protocol,
    };
    let port = match &raw.port {
        Some(p) if protocol == Protocol::Icmp => {
            return Err(src.invalid(
                Some(p.span()),
                field("port"),
                "a port has no meaning for icmp; set `protocol` to \"udp\" or \"tcp\", or remove `port`",
            ))
        }
        Some(p) => Some(validate_port(p, &field("port"), src)?),
        None if protocol == Protocol::Icmp => None,
        None => probe.port,
    };
    let family = match &raw.family {
        Some(f) => validate_family(f, &field("family"), src)?,
        None => probe.family,
    };
    if let Ok(addr) = host_text.parse::<IpAddr>() {
        let mismatch = matches!(
            (family, addr),
            (Family::Ipv4, IpAddr::V6(_)) | (Family::Ipv6, IpAddr::V4(_))
        );
        if mismatch {
            let span = raw.family.as_ref().unwrap_or(host).span();
            return Err(src.invalid(
                Some(span),
                field("family"),
                format!("host `{host_text}` is not an {} address", family.as_str()),
            ));
        }
    }
    let allowed_countries = match &raw.allowed_countries {
        Some(list) => {
            let mut countries: Vec<CountryCode> = Vec::with_capacity(list.len());
            for code in list {
                let code = validate_country(code, &field("allowed_countries"), src)?;
                if !countries.contains(&code) {
                    countries.push(code);
                }
            }
            countries
        }
        None => vec![policy.home],
    };
    Ok(TargetConfig {
        name,
        host: host_text.to_string(),
        category,
        protocol,
        port,
        family,
        allowed_countries,
    })
}

fn validate_alert(
    raw: RawAlert,
    base: &Path,
    src: &Source<'_>,
) -> Result<AlertConfig, ConfigError> {
    let defaults = AlertConfig::default();
    let queue_capacity = validate_int(
        raw.queue_capacity.as_ref(),
        "alert.queue_capacity",
        defaults.queue_capacity,
        (1, 100_000),
        src,
    )?;
    let retry_initial = validate_duration(
        raw.retry_initial.as_ref(),
        "alert.retry_initial",
        defaults.retry_initial,
        (Duration::from_millis(10), Duration::from_secs(3600)),
        src,
    )?;
    let retry_max = validate_duration(
        raw.retry_max.as_ref(),
        "alert.retry_max",
        defaults.retry_max.max(retry_initial),
        (Duration::from_millis(10), Duration::from_secs(24 * 3600)),
        src,
    )?;
    if retry_max < retry_initial {
        let span = raw
            .retry_max
            .as_ref()
            .or(raw.retry_initial.as_ref())
            .map(Spanned::span);
        return Err(src.invalid(
            span,
            "alert.retry_max",
            format!(
                "retry_max ({}) must not be shorter than retry_initial ({})",
                format_duration(retry_max),
                format_duration(retry_initial)
            ),
        ));
    }
    let max_age = raw
        .max_age
        .as_ref()
        .map(|age| {
            validate_duration(
                Some(age),
                "alert.max_age",
                Duration::ZERO,
                (Duration::from_secs(1), Duration::from_secs(365 * 24 * 3600)),
                src,
            )
        })
        .transpose()?;
    let timeout = validate_duration(
        raw.timeout.as_ref(),
        "alert.timeout",
        defaults.timeout,
        (Duration::from_millis(100), Duration::from_secs(300)),
        src,
    )?;
    let external_url = raw
        .external_url
        .as_ref()
        .map(|url| validate_http_url(url, "alert.external_url", src).map(|u| u.to_string()))
        .transpose()?;
    let mut webhooks: Vec<WebhookConfig> = Vec::new();
    for (i, hook) in raw.webhook.unwrap_or_default().iter().enumerate() {
        let prefix = format!("alert.webhook[{i}]");
        let validated = validate_webhook(hook, &prefix, base, src)?;
        let raw_hook = hook.get_ref();
        if webhooks.iter().any(|w| w.url == validated.url) {
            return Err(src.invalid(
                raw_hook.url.as_ref().map(Spanned::span),
                format!("{prefix}.url"),
                format!("webhook `{}` is listed more than once", validated.url),
            ));
        }
        if webhooks.iter().any(|w| w.name == validated.name) {
            return Err(src.invalid(
                raw_hook
                    .name
                    .as_ref()
                    .or(raw_hook.url.as_ref())
                    .map(Spanned::span),
                format!("{prefix}.name"),
                format!(
                    "webhook name `{}` is used more than once; give each webhook its own `name`",
                    validated.name
                ),
            ));
        }
        webhooks.push(validated);
    }
    Ok(AlertConfig {
        webhooks,
        queue_capacity,
        retry_initial,
        retry_max,
        max_age,
        timeout,
        external_url,
    })
}

/// An `http://` or `https://` URL without credentials; returns it trimmed.
fn validate_http_url<'a>(
    url: &'a Spanned<String>,
    field: &str,
    src: &Source<'_>,
) -> Result<&'a str, ConfigError> {
    let text = url.get_ref().trim();
    let invalid = |why: &str| {
        src.invalid(
            Some(url.span()),
            field,
            format!("`{}` is not an http:// or https:// URL{why}", url.get_ref()),
        )
    };
    let has_scheme = ["http://", "https://"].iter().any(|scheme| {
        text.len() > scheme.len()
            && text
                .get(..scheme.len())
                .is_some_and(|s| s.eq_ignore_ascii_case(scheme))
    });
    if !has_scheme || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(""));
    }
    let uri: hyper::Uri = text.parse().map_err(|e| invalid(&format!(": {e}")))?;
    match uri.authority() {
        Some(a) if a.as_str().contains('@') => Err(src.invalid(
            Some(url.span()),
            field,
            format!(
                "`{}` carries credentials, which transitwatch does not send; \
                 sign the posts with `secret` instead",
                url.get_ref()
            ),
        )),
        Some(a) if !a.host().is_empty() => Ok(text),
        _ => Err(invalid(": it has no host")),
    }
}

fn validate_webhook(
    spanned: &Spanned<RawWebhook>,
    prefix: &str,
    base: &Path,
    src: &Source<'_>,
) -> Result<WebhookConfig, ConfigError> {
    let raw = spanned.get_ref();
    let field = |key: &str| format!("{prefix}.{key}");
    let url = raw.url.as_ref().ok_or_else(|| {
        src.invalid(
            Some(spanned.span()),
            field("url"),
            "`url` is required in every `[[alert.webhook]]`",
        )
    })?;
    let url_text = validate_http_url(url, &field("url"), src)?;
    let https = url_text
        .get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"));
    let format = match &raw.format {
        Some(format) => format
            .get_ref()
            .parse()
            .map_err(|e: InvalidWebhookFormat| {
                src.invalid(Some(format.span()), field("format"), e.to_string())
            })?,
        None => WebhookFormat::default(),
    };
    let name = match &raw.name {
        Some(name) => validate_label(name, &field("name"), src)?,
        None => url_text
            .parse::<hyper::Uri>()
            .ok()
            .and_then(|u| u.authority().map(|a| a.as_str().to_string()))
            .unwrap_or_else(|| url_text.to_string()),
    };
    let secret = match (&raw.secret, &raw.secret_file) {
        (Some(_), Some(file)) => {
            return Err(src.invalid(
                Some(file.span()),
                field("secret_file"),
                "set either `secret` or `secret_file`, not both",
            ))
        }
        (Some(secret), None) => {
            if secret.get_ref().is_empty() {
                return Err(src.invalid(
                    Some(secret.span()),
                    field("secret"),
                    "the secret must not be empty",
                ));
            }
            Some(Secret(secret.get_ref().clone()))
        }
        (None, Some(file)) => Some(read_secret_file(file, &field("secret_file"), base, src)?),
        (None, None) => None,
    };
    let ca = match &raw.ca_file {
        Some(file) if !https => {
            return Err(src.invalid(
                Some(file.span()),
                field("ca_file"),
                "`ca_file` applies to https:// webhooks only",
            ))
        }
        Some(file) => Some(read_ca_file(file, &field("ca_file"), base, src)?),
        None => None,
    };
    Ok(WebhookConfig {
        url: url_text.to_string(),
        format,
        name,
        secret,
        ca,
    })
}

/// The secret in a file: its text without the final line break.
fn read_secret_file(
    file: &Spanned<String>,
    field: &str,
    base: &Path,
    src: &Source<'_>,
) -> Result<Secret, ConfigError> {
    let path = validate_path(file, field, base, src)?;
    let text = std::fs::read_to_string(&path).map_err(|e| {
        src.invalid(
            Some(file.span()),
            field,
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    let secret = text.trim_end_matches(['\n', '\r']);
    if secret.is_empty() {
        return Err(src.invalid(
            Some(file.span()),
            field,
            format!("{} is empty", path.display()),
        ));
    }
    Ok(Secret(secret.to_string()))
}

/// The certificates of a PEM file.
fn read_ca_file(
    file: &Spanned<String>,
    field: &str,
    base: &Path,
    src: &Source<'_>,
) -> Result<CaFile, ConfigError> {
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::CertificateDer;
    let path = validate_path(file, field, base, src)?;
    let bytes = std::fs::read(&path).map_err(|e| {
        src.invalid(
            Some(file.span()),
            field,
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .map(|c| c.map(|c| c.as_ref().to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            src.invalid(
                Some(file.span()),
                field,
                format!("{} is not a PEM certificate file: {e}", path.display()),
            )
        })?;
    if certs.is_empty() {
        return Err(src.invalid(
            Some(file.span()),
            field,
            format!("{} holds no PEM certificate", path.display()),
        ));
    }
    Ok(CaFile { path, certs })
}

// ---------------------------------------------------------------------------
// Single values.
// ---------------------------------------------------------------------------

fn validate_country(
    code: &Spanned<String>,
    field: &str,
    src: &Source<'_>,
) -> Result<CountryCode, ConfigError> {
    let parsed: CountryCode =
        code.get_ref()
            .parse()
            .map_err(|e: crate::model::InvalidCountryCode| {
                src.invalid(Some(code.span()), field, e.to_string())
            })?;
    // Two letters are not enough: `XX` or `UK` would silently never match
    // a database answer. XK (Kosovo) is user-assigned but used by every
    // geolocation database.
    if parsed.as_str() != "XK" && rust_iso3166::from_alpha2(parsed.as_str()).is_none() {
        return Err(src.invalid(
            Some(code.span()),
            field,
            format!(
                "`{}` is not an assigned ISO 3166-1 alpha-2 country code",
                code.get_ref()
            ),
        ));
    }
    Ok(parsed)
}

fn validate_protocol(
    protocol: &Spanned<String>,
    field: &str,
    src: &Source<'_>,
) -> Result<Protocol, ConfigError> {
    protocol
        .get_ref()
        .parse()
        .map_err(|e: crate::model::InvalidProtocol| {
            src.invalid(Some(protocol.span()), field, e.to_string())
        })
}

fn validate_family(
    family: &Spanned<String>,
    field: &str,
    src: &Source<'_>,
) -> Result<Family, ConfigError> {
    family
        .get_ref()
        .parse()
        .map_err(|e: InvalidFamily| src.invalid(Some(family.span()), field, e.to_string()))
}

fn validate_port(port: &Spanned<i64>, field: &str, src: &Source<'_>) -> Result<u16, ConfigError> {
    match u16::try_from(*port.get_ref()) {
        Ok(p) if p != 0 => Ok(p),
        _ => Err(src.invalid(
            Some(port.span()),
            field,
            format!(
                "port {} is out of range, expected 1..=65535",
                port.get_ref()
            ),
        )),
    }
}

/// An integer setting: `default` when absent, else within `min..=max`.
fn validate_int<T>(
    value: Option<&Spanned<i64>>,
    field: &str,
    default: T,
    (min, max): (i64, i64),
    src: &Source<'_>,
) -> Result<T, ConfigError>
where
    T: TryFrom<i64>,
{
    let Some(value) = value else {
        return Ok(default);
    };
    let n = *value.get_ref();
    let out_of_range = || {
        src.invalid(
            Some(value.span()),
            field,
            format!("{n} is out of range, expected {min}..={max}"),
        )
    };
    if !(min..=max).contains(&n) {
        return Err(out_of_range());
    }
    T::try_from(n).map_err(|_| out_of_range())
}

/// A duration setting: `default` when absent, else parsed and within `range`.
fn validate_duration(
    value: Option<&Spanned<String>>,
    field: &str,
    default: Duration,
    (min, max): (Duration, Duration),
    src: &Source<'_>,
) -> Result<Duration, ConfigError> {
    let Some(value) = value else {
        return Ok(default);
    };
    let duration = parse_duration(value.get_ref())
        .map_err(|e| src.invalid(Some(value.span()), field, e.to_string()))?;
    if duration < min || duration > max {
        let expected = if max == Duration::MAX {
            format!("at least {}", format_duration(min))
        } else {
            format!("{}..={}", format_duration(min), format_duration(max))
        };
        return Err(src.invalid(
            Some(value.span()),
            field,
            format!("{} is out of range, expected {expected}", value.get_ref()),
        ));
    }
    Ok(duration)
}

/// A free-form name: not empty, no control characters.
fn validate_label(
    value: &Spanned<String>,
    field: &str,
    src: &Source<'_>,
) -> Result<String, ConfigError> {
    let text = value.get_ref().trim();
    if text.is_empty() {
        return Err(src.invalid(Some(value.span()), field, "must not be empty"));
    }
    if text.chars().any(char::is_control) {
        return Err(src.invalid(
            Some(value.span()),
            field,
            "must not contain control characters",
        ));
    }
    Ok(text.to_string())
}

/// A target name: `[A-Za-z0-9_.-]+`, usable as a label value and a file name.
fn validate_target_name(
    value: &Spanned<String>,
    field: &str,
    src: &Source<'_>,
) -> Result<String, ConfigError> {
    let name = value.get_ref();
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    if name.is_empty() || !name.chars().all(allowed) || name == "." || name == ".." {
        return Err(src.invalid(
            Some(value.span()),
            field,
            format!(
                "`{name}` is not a valid target name (use letters, digits, `_`, `.` and `-`, e.g. \"gov-portal\")"
            ),
        ));
    }
    Ok(name.clone())
}

/// A file path, resolved against the config file's folder when relative.
fn validate_path(
    value: &Spanned<String>,
    field: &str,
    base: &Path,
    src: &Source<'_>,
) -> Result<PathBuf, ConfigError> {
    let text = value.get_ref();
    if text.trim().is_empty() {
        return Err(src.invalid(Some(value.span()), field, "the path must not be empty"));
    }
    let path = Path::new(text);
    Ok(if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let src = Source {
            text: "a = 1\nbé = \"x\"\n",
            path: Path::new("t.toml"),
        };
        assert_eq!(src.position(0), (1, 1));
        assert_eq!(src.position(6), (2, 1));
        // `=` after a two-byte character is the fourth character of line 2.
        assert_eq!(src.position(10), (2, 4));
    }

    #[test]
    fn key_index_names_array_elements_and_dotted_keys() {
        let text = "probe.port = 5\n[[target]]\nname = \"a\"\n[[target]]\nname = \"b\"\n";
        let index = KeyIndex::build(text).unwrap();
        let offset = text.rfind("\"b\"").unwrap();
        assert_eq!(
            index.field_at(text, offset).as_deref(),
            Some("target[1].name")
        );
        assert_eq!(index.field_at(text, 6).as_deref(), Some("probe.port"));
        // The second `[[target]]` header: no key of its own.
        let header = text.rfind("[[target]]").unwrap();
        assert_eq!(index.field_at(text, header), None);
    }
}

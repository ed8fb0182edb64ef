//! The web configuration file (`[metrics] web_config_file`, or `run
//! --web.config.file`): TLS, basic authentication and response headers of
//! the HTTP endpoint, in the format of the Prometheus exporter-toolkit
//! (its `docs/web-configuration.md`), so one file and the same
//! documentation serve transitwatch and the exporters beside it.
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: server.crt          # or `cert:` inline PEM
//!   key_file: server.key           # or `key:` inline PEM
//!   client_auth_type: RequireAndVerifyClientCert  # default NoClientCert
//!   client_ca_file: clients.crt    # or `client_ca:` inline PEM
//!   min_version: TLS12             # TLS12 (default) or TLS13
//!   max_version: TLS13
//!   cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]
//!   prefer_server_cipher_suites: true
//!   curve_preferences: [X25519, CurveP256]
//! http_server_config:
//!   headers:
//!     Strict-Transport-Security: max-age=31536000
//! basic_auth_users:
//!   prometheus: $2y$10$...         # bcrypt hash
//! ```
//!
//! Relative file names are relative to the web configuration file's
//! folder, as in the exporter-toolkit. Every key of the format is known;
//! what this endpoint cannot honour is refused with an error naming the
//! key, never ignored: `client_auth_type` `RequestClientCert` and
//! `RequireAnyClientCert` (they accept certificates nobody verified),
//! `client_allowed_sans`, TLS versions below 1.2, cipher suites and curves
//! the TLS library (rustls) does not implement (CBC and static-RSA suites,
//! P-521), and `rate_limit` (the endpoint's own admission bounds requests,
//! see [`super::admission`]). `cipher_suites` chooses among the TLS 1.2
//! suites; TLS 1.3 names are accepted and, as in Go, change nothing (its
//! three suites are always offered). `http_server_config.http2` is
//! accepted and changes nothing: the endpoint speaks HTTP/1.1.
//!
//! Unlike the exporter-toolkit, which reads the file again for every
//! request, the daemon reads it at start and on reload (SIGHUP): a reload
//! with a broken file is rejected whole and the running one stays.

use super::basic_auth::BasicAuth;
use crate::input_file::{self, FileKind, InputFileError};
use hyper::header::{HeaderName, HeaderValue};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::rustls::crypto::ring::{default_provider, kx_group};
use tokio_rustls::rustls::crypto::SupportedKxGroup;
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{
    self, CipherSuite, RootCertStore, ServerConfig, SupportedCipherSuite, SupportedProtocolVersion,
};
use tokio_rustls::TlsAcceptor;

/// Why a web configuration file cannot be used. The `Display` form is one
/// line: `FILE[:LINE[:COLUMN]]: [field `KEY`: ]MESSAGE`.
#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    /// The file could not be read.
    #[error("{0}")]
    Read(InputFileError),
    /// Not YAML, or not the format: an unknown key, a value of the wrong
    /// type or an unknown value (the message starts with the key's path).
    #[error("{}{}: {message}", path.display(), at(*.line, *.column))]
    Syntax {
        /// The web configuration file.
        path: PathBuf,
        /// 1-based line, when known.
        line: Option<usize>,
        /// 1-based column, when known.
        column: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// A value is well-formed but cannot be used (a missing key, a
    /// certificate file that cannot be read, a key that does not match).
    #[error("{}{}: field `{key}`: {message}", path.display(), at(*.line, None))]
    Invalid {
        /// The web configuration file.
        path: PathBuf,
        /// 1-based line of the key, when found.
        line: Option<usize>,
        /// The key's dotted path (`tls_server_config.key_file`).
        key: String,
        /// What is wrong.
        message: String,
    },
}

fn at(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(line), Some(column)) => format!(":{line}:{column}"),
        (Some(line), None) => format!(":{line}"),
        _ => String::new(),
    }
}

/// The endpoint's security settings, read from a web configuration file
/// (or none: plain HTTP, open to every client).
pub struct WebConfig {
    /// The file they came from.
    path: Option<PathBuf>,
    /// Accepts TLS connections; `None`: plain HTTP.
    pub(super) tls: Option<TlsAcceptor>,
    /// Checks every request's credentials; `None`: no authentication.
    pub(super) auth: Option<Arc<BasicAuth>>,
    /// Added to every response.
    pub(super) headers: Vec<(HeaderName, HeaderValue)>,
}

impl fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebConfig")
            .field("path", &self.path)
            .field("tls", &self.tls.is_some())
            .field("auth", &self.auth.is_some())
            .field("headers", &self.headers)
            .finish()
    }
}

impl Default for WebConfig {
    fn default() -> Self {
        Self::open()
    }
}

impl WebConfig {
    /// No web configuration: plain HTTP, no authentication, no headers.
    #[must_use]
    pub fn open() -> Self {
        Self {
            path: None,
            tls: None,
            auth: None,
            headers: Vec::new(),
        }
    }

    /// Read and check the web configuration file at `path`, reading the
    /// certificate and key files it names.
    ///
    /// # Errors
    /// The file cannot be read or used; the error names the file, the line
    /// where known and the key.
    pub fn load(path: &Path) -> Result<Self, WebConfigError> {
        let text =
            input_file::read_to_string(path, FileKind::WebConfig).map_err(WebConfigError::Read)?;
        Self::from_str(&text, path)
    }

    /// [`load`](Self::load) from `text`, as if read from `path`.
    ///
    /// # Errors
    /// As [`load`](Self::load).
    pub fn from_str(text: &str, path: &Path) -> Result<Self, WebConfigError> {
        let source = Source { text, path };
        let raw: Option<RawWebConfig> =
            serde_yaml_ng::from_str(text).map_err(|e| source.syntax(&e))?;
        let raw = raw.unwrap_or_default();
        let base = path.parent().unwrap_or_else(|| Path::new(""));
        let tls = match raw.tls_server_config {
            Some(tls) => tls_acceptor(tls, base, &source)?,
            None => None,
        };
        let auth = match raw.basic_auth_users {
            Some(users) if !users.is_empty() => Some(Arc::new(basic_auth(users, &source)?)),
            _ => None,
        };
        let headers = raw
            .http_server_config
            .and_then(|h| h.headers)
            .map(RawHeaders::into_list)
            .unwrap_or_default();
        Ok(Self {
            path: Some(path.to_path_buf()),
            tls,
            auth,
            headers,
        })
    }

    /// Whether connections are TLS.
    #[must_use]
    pub fn tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Whether requests must authenticate.
    #[must_use]
    pub fn authenticates(&self) -> bool {
        self.auth.is_some()
    }

    /// The file read, if any.
    #[must_use]
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
}

/// The text and its file, for errors.
struct Source<'a> {
    text: &'a str,
    path: &'a Path,
}

impl Source<'_> {
    fn syntax(&self, error: &serde_yaml_ng::Error) -> WebConfigError {
        let location = error.location();
        let mut message = error.to_string();
        if let Some(l) = &location {
            let suffix = format!(" at line {} column {}", l.line(), l.column());
            if let Some(stripped) = message.strip_suffix(&suffix) {
                message = stripped.to_string();
            }
        }
        WebConfigError::Syntax {
            path: self.path.to_path_buf(),
            line: location.as_ref().map(serde_yaml_ng::Location::line),
            column: location.as_ref().map(serde_yaml_ng::Location::column),
            message,
        }
    }

    /// An error about the key at `keys` (its path from the top).
    fn invalid(&self, keys: &[&str], message: impl Into<String>) -> WebConfigError {
        WebConfigError::Invalid {
            path: self.path.to_path_buf(),
            line: line_of(self.text, keys),
            key: keys.join("."),
            message: message.into(),
        }
    }
}

/// The 1-based line of the key at `keys` in block-style YAML: each key
/// looked for below its parent's line, indented deeper. `None` when not
/// written that way (flow style, or absent).
fn line_of(text: &str, keys: &[&str]) -> Option<usize> {
    let mut lines = text.lines().enumerate();
    let mut parent_indent: Option<usize> = None;
    let mut found = None;
    for key in keys {
        found = None;
        // The parent's children are indented as its first line below it.
        let mut children = None;
        for (n, line) in lines.by_ref() {
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let indent = line.len() - trimmed.len();
            if parent_indent.is_some_and(|parent| indent <= parent) {
                return None;
            }
            if *children.get_or_insert(indent) != indent {
                continue;
            }
            let name = trimmed
                .split_once(':')
                .map(|(name, _)| name.trim().trim_matches(['"', '\'']));
            if name == Some(key) {
                found = Some(n + 1);
                parent_indent = Some(indent);
                break;
            }
        }
        found?;
    }
    found
}

// ------------------------------------------------------------- the raw file

#[derive(Debug, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping of tls_server_config, http_server_config and basic_auth_users"
)]
struct RawWebConfig {
    tls_server_config: Option<RawTls>,
    http_server_config: Option<RawHttpServer>,
    basic_auth_users: Option<BTreeMap<String, String>>,
    /// Always refused while deserializing; never read.
    #[allow(dead_code)]
    #[serde(default, deserialize_with = "refuse_rate_limit")]
    rate_limit: Option<()>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping of TLS settings")]
struct RawTls {
    cert_file: Option<String>,
    key_file: Option<String>,
    cert: Option<String>,
    key: Option<String>,
    client_auth_type: Option<ClientAuth>,
    client_ca_file: Option<String>,
    client_ca: Option<String>,
    /// Refused unless empty, while deserializing; never read.
    #[allow(dead_code)]
    #[serde(default, deserialize_with = "refuse_allowed_sans")]
    client_allowed_sans: Option<()>,
    min_version: Option<TlsVersion>,
    max_version: Option<TlsVersion>,
    cipher_suites: Option<Vec<CipherSuiteName>>,
    prefer_server_cipher_suites: Option<bool>,
    curve_preferences: Option<Vec<Curve>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping of HTTP settings")]
struct RawHttpServer {
    /// Accepted for the format's sake; HTTP/1.1 is served either way.
    #[allow(dead_code)]
    http2: Option<bool>,
    headers: Option<RawHeaders>,
}

/// The response headers the format allows, each unset when blank.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping of header names to values")]
struct RawHeaders {
    #[serde(rename = "Content-Security-Policy")]
    content_security_policy: Option<HeaderText>,
    #[serde(rename = "X-Frame-Options")]
    frame_options: Option<FrameOptions>,
    #[serde(rename = "X-Content-Type-Options")]
    content_type_options: Option<ContentTypeOptions>,
    #[serde(rename = "X-XSS-Protection")]
    xss_protection: Option<HeaderText>,
    #[serde(rename = "Strict-Transport-Security")]
    strict_transport_security: Option<HeaderText>,
}

impl RawHeaders {
    fn into_list(self) -> Vec<(HeaderName, HeaderValue)> {
        [
            ("content-security-policy", self.content_security_policy),
            ("x-frame-options", self.frame_options.map(|v| v.0)),
            (
                "x-content-type-options",
                self.content_type_options.map(|v| v.0),
            ),
            ("x-xss-protection", self.xss_protection),
            ("strict-transport-security", self.strict_transport_security),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((HeaderName::from_static(name), value?.0?)))
        .collect()
    }
}

/// A header value; blank: unset.
#[derive(Debug)]
struct HeaderText(Option<HeaderValue>);

impl TryFrom<String> for HeaderText {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        if text.trim().is_empty() {
            return Ok(Self(None));
        }
        HeaderValue::from_str(text.trim())
            .map(|v| Self(Some(v)))
            .map_err(|_| format!("`{text}` is not a valid header value"))
    }
}

/// `X-Frame-Options`: `deny` or `sameorigin` (any case), or blank.
#[derive(Debug)]
struct FrameOptions(HeaderText);

impl TryFrom<String> for FrameOptions {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "" | "deny" | "sameorigin" => HeaderText::try_from(text).map(Self),
            _ => Err(format!(
                "`{text}` is not an X-Frame-Options value (expected deny or sameorigin)"
            )),
        }
    }
}

/// `X-Content-Type-Options`: `nosniff`, or blank.
#[derive(Debug)]
struct ContentTypeOptions(HeaderText);

impl TryFrom<String> for ContentTypeOptions {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "" | "nosniff" => HeaderText::try_from(text).map(Self),
            _ => Err(format!(
                "`{text}` is not an X-Content-Type-Options value (expected nosniff)"
            )),
        }
    }
}

/// Values read from text, parsed inside the deserializer's visitor so that
/// an error carries the value's line, column and key path.
struct TextVisitor<T>(PhantomData<T>);

impl<T: TryFrom<String, Error = String>> Visitor<'_> for TextVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<T, E> {
        T::try_from(text.to_string()).map_err(E::custom)
    }
}

/// `Deserialize` for value types read from text (their `TryFrom<String>`).
macro_rules! from_text {
    ($($name:ident),* $(,)?) => {$(
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_str(TextVisitor(PhantomData))
            }
        }
    )*};
}

from_text!(
    HeaderText,
    FrameOptions,
    ContentTypeOptions,
    ClientAuth,
    TlsVersion,
    CipherSuiteName,
    Curve,
);

/// A known key this endpoint cannot honour: refused with `why` when it
/// has a value (an empty list or null is no value), at the value's place.
struct Refused(&'static str);

impl<'de> Visitor<'de> for Refused {
    type Value = Option<()>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("nothing")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<()>, E> {
        Ok(None)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Option<()>, A::Error> {
        match seq.next_element::<de::IgnoredAny>()? {
            None => Ok(None),
            Some(_) => Err(de::Error::custom(self.0)),
        }
    }

    fn visit_map<A: de::MapAccess<'de>>(self, _: A) -> Result<Option<()>, A::Error> {
        Err(de::Error::custom(self.0))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Option<()>, E> {
        Err(E::custom(self.0))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Option<()>, E> {
        Err(E::custom(self.0))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Option<()>, E> {
        Err(E::custom(self.0))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Option<()>, E> {
        Err(E::custom(self.0))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Option<()>, E> {
        Err(E::custom(self.0))
    }
}

fn refuse_rate_limit<'de, D: Deserializer<'de>>(d: D) -> Result<Option<()>, D::Error> {
    d.deserialize_any(Refused(
        "is not supported: the endpoint bounds connections and requests itself \
         (remove `rate_limit`)",
    ))
}

fn refuse_allowed_sans<'de, D: Deserializer<'de>>(d: D) -> Result<Option<()>, D::Error> {
    d.deserialize_any(Refused(
        "is not supported: client certificates are checked against `client_ca_file` only",
    ))
}

/// `client_auth_type`: the verifying policies only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientAuth {
    NoClientCert,
    VerifyClientCertIfGiven,
    RequireAndVerifyClientCert,
}

impl TryFrom<String> for ClientAuth {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        match text.as_str() {
            "NoClientCert" => Ok(Self::NoClientCert),
            "VerifyClientCertIfGiven" => Ok(Self::VerifyClientCertIfGiven),
            "RequireAndVerifyClientCert" => Ok(Self::RequireAndVerifyClientCert),
            "RequestClientCert" | "RequireAnyClientCert" => Err(format!(
                "`{text}` is not supported: it accepts client certificates nobody verified \
                 (use VerifyClientCertIfGiven or RequireAndVerifyClientCert with client_ca_file)"
            )),
            _ => Err(format!(
                "`{text}` is not a client_auth_type (expected NoClientCert, \
                 VerifyClientCertIfGiven or RequireAndVerifyClientCert)"
            )),
        }
    }
}

/// `min_version`, `max_version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TlsVersion {
    Tls12,
    Tls13,
}

impl TryFrom<String> for TlsVersion {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        match text.as_str() {
            "TLS12" => Ok(Self::Tls12),
            "TLS13" => Ok(Self::Tls13),
            "TLS10" | "TLS11" => Err(format!(
                "`{text}` is not supported: the oldest version offered is TLS12"
            )),
            _ => Err(format!(
                "`{text}` is not a TLS version (expected TLS12 or TLS13)"
            )),
        }
    }
}

/// The TLS 1.2 suites by their Go names (with Go's older aliases of the
/// ChaCha20 ones).
const TLS12_SUITES: [(&str, CipherSuite); 8] = [
    (
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
    (
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
    (
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
        CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
];

/// The TLS 1.3 suites' Go names: accepted, always offered.
const TLS13_SUITES: [&str; 3] = [
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
];

/// One `cipher_suites` entry: a TLS 1.2 suite, or `None` for a TLS 1.3 one.
#[derive(Debug, Clone, Copy)]
struct CipherSuiteName(Option<CipherSuite>);

impl TryFrom<String> for CipherSuiteName {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        if TLS13_SUITES.contains(&text.as_str()) {
            return Ok(Self(None));
        }
        TLS12_SUITES
            .iter()
            .find(|(name, _)| *name == text)
            .map(|(_, suite)| Self(Some(*suite)))
            .ok_or_else(|| {
                let names: Vec<&str> = TLS12_SUITES
                    .iter()
                    .map(|(name, _)| *name)
                    .chain(TLS13_SUITES)
                    .collect();
                format!(
                    "`{text}` is not a supported cipher suite (supported: {})",
                    names.join(", ")
                )
            })
    }
}

/// One `curve_preferences` entry.
#[derive(Clone, Copy)]
struct Curve(&'static dyn SupportedKxGroup);

impl fmt::Debug for Curve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0.name())
    }
}

impl TryFrom<String> for Curve {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        match text.as_str() {
            "X25519" => Ok(Self(kx_group::X25519)),
            "CurveP256" => Ok(Self(kx_group::SECP256R1)),
            "CurveP384" => Ok(Self(kx_group::SECP384R1)),
            _ => Err(format!(
                "`{text}` is not a supported curve (supported: X25519, CurveP256, CurveP384)"
            )),
        }
    }
}

// ------------------------------------------------------------- validation

const TLS: &str = "tls_server_config";

/// PEM text from an inline key or a file key (relative to `base`); both
/// set is an error, neither is `None`.
fn pem_source(
    inline: Option<String>,
    file: Option<String>,
    (inline_key, file_key): (&'static str, &'static str),
    kind: FileKind,
    base: &Path,
    src: &Source<'_>,
) -> Result<Option<(Vec<u8>, &'static str)>, WebConfigError> {
    match (inline, file) {
        (Some(_), Some(_)) => Err(src.invalid(
            &[TLS, inline_key],
            format!("set `{inline_key}` or `{file_key}`, not both"),
        )),
        (Some(text), None) => Ok(Some((text.into_bytes(), inline_key))),
        (None, Some(file)) => {
            let path = base.join(&file);
            let bytes = input_file::read(&path, kind)
                .map_err(|e| src.invalid(&[TLS, file_key], e.to_string()))?;
            Ok(Some((bytes, file_key)))
        }
        (None, None) => Ok(None),
    }
}

fn certificates(
    bytes: &[u8],
    key: &str,
    src: &Source<'_>,
) -> Result<Vec<CertificateDer<'static>>, WebConfigError> {
    let certs = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| src.invalid(&[TLS, key], format!("not PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(src.invalid(&[TLS, key], "holds no PEM certificate"));
    }
    Ok(certs)
}

/// The TLS acceptor of `tls_server_config`; `None` when it names no
/// certificate and key and nothing else.
fn tls_acceptor(
    raw: RawTls,
    base: &Path,
    src: &Source<'_>,
) -> Result<Option<TlsAcceptor>, WebConfigError> {
    let cert = pem_source(
        raw.cert,
        raw.cert_file,
        ("cert", "cert_file"),
        FileKind::TlsCertificates,
        base,
        src,
    )?;
    let key = pem_source(
        raw.key,
        raw.key_file,
        ("key", "key_file"),
        FileKind::TlsKey,
        base,
        src,
    )?;
    let client_ca = pem_source(
        raw.client_ca,
        raw.client_ca_file,
        ("client_ca", "client_ca_file"),
        FileKind::TlsCertificates,
        base,
        src,
    )?;
    let others = raw.client_auth_type.is_some()
        || client_ca.is_some()
        || raw.min_version.is_some()
        || raw.max_version.is_some()
        || raw.cipher_suites.is_some()
        || raw.prefer_server_cipher_suites.is_some()
        || raw.curve_preferences.is_some();
    let ((cert, cert_key), (key, key_key)) = match (cert, key) {
        (None, None) if !others => return Ok(None),
        (Some(cert), Some(key)) => (cert, key),
        (None, _) => {
            return Err(src.invalid(
                &[TLS],
                "`cert_file` (or `cert`) is required: the server's certificate",
            ))
        }
        (_, None) => {
            return Err(src.invalid(
                &[TLS],
                "`key_file` (or `key`) is required: the certificate's private key",
            ))
        }
    };
    let chain = certificates(&cert, cert_key, src)?;
    let private = PrivateKeyDer::from_pem_slice(&key)
        .map_err(|e| src.invalid(&[TLS, key_key], format!("not a PEM private key: {e}")))?;

    let min = raw.min_version.unwrap_or(TlsVersion::Tls12);
    let max = raw.max_version.unwrap_or(TlsVersion::Tls13);
    if min > max {
        return Err(src.invalid(
            &[TLS, "min_version"],
            "`min_version` is above `max_version`",
        ));
    }
    let versions: Vec<&'static SupportedProtocolVersion> = [
        (TlsVersion::Tls12, &rustls::version::TLS12),
        (TlsVersion::Tls13, &rustls::version::TLS13),
    ]
    .into_iter()
    .filter(|(v, _)| (min..=max).contains(v))
    .map(|(_, v)| v)
    .collect();

    let mut provider = default_provider();
    if let Some(names) = &raw.cipher_suites {
        let wanted: Vec<CipherSuite> = names.iter().filter_map(|n| n.0).collect();
        if !wanted.is_empty() {
            // In the order given: with `prefer_server_cipher_suites`, the
            // first the client also offers is chosen.
            let mut chosen: Vec<SupportedCipherSuite> = wanted
                .iter()
                .filter_map(|w| {
                    provider
                        .cipher_suites
                        .iter()
                        .find(|s| s.suite() == *w)
                        .copied()
                })
                .collect();
            chosen.extend(
                provider
                    .cipher_suites
                    .iter()
                    .filter(|s| matches!(s, SupportedCipherSuite::Tls13(_))),
            );
            provider.cipher_suites = chosen;
        }
        if min == TlsVersion::Tls13 && !wanted.is_empty() {
            return Err(src.invalid(
                &[TLS, "cipher_suites"],
                "TLS 1.2 suites are listed but `min_version` is TLS13",
            ));
        }
    }
    if let Some(curves) = &raw.curve_preferences {
        if !curves.is_empty() {
            provider.kx_groups = curves.iter().map(|c| c.0).collect();
        }
    }
    let provider = Arc::new(provider);
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions)
        .map_err(|e| src.invalid(&[TLS], e.to_string()))?;
    let client_auth = raw.client_auth_type.unwrap_or(ClientAuth::NoClientCert);
    let builder = match (client_auth, client_ca) {
        (ClientAuth::NoClientCert, None) => builder.with_no_client_auth(),
        (ClientAuth::NoClientCert, Some((_, ca_key))) => {
            return Err(src.invalid(
                &[TLS, ca_key],
                "client CAs are set but `client_auth_type` is NoClientCert \
                 (set VerifyClientCertIfGiven or RequireAndVerifyClientCert)",
            ))
        }
        (_, None) => {
            return Err(src.invalid(
                &[TLS, "client_auth_type"],
                "verifying client certificates needs `client_ca_file` (or `client_ca`)",
            ))
        }
        (policy, Some((ca, ca_key))) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates(&ca, ca_key, src)? {
                roots
                    .add(cert)
                    .map_err(|e| src.invalid(&[TLS, ca_key], e.to_string()))?;
            }
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider));
            let verifier = if policy == ClientAuth::VerifyClientCertIfGiven {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier
                .build()
                .map_err(|e| src.invalid(&[TLS, ca_key], e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(chain, private).map_err(|e| {
        src.invalid(
            &[TLS, key_key],
            format!("does not fit the certificate: {e}"),
        )
    })?;
    config.ignore_client_order = raw.prefer_server_cipher_suites.unwrap_or(true);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(TlsAcceptor::from(Arc::new(config))))
}

fn basic_auth(
    users: BTreeMap<String, String>,
    src: &Source<'_>,
) -> Result<BasicAuth, WebConfigError> {
    for (user, hash) in &users {
        let keys = ["basic_auth_users", user.as_str()];
        if user.is_empty() || user.contains(':') {
            return Err(src.invalid(
                &keys,
                "a user name must be non-empty and without `:` (basic authentication splits at the first `:`)",
            ));
        }
        if let Err(e) = hash.parse::<bcrypt::HashParts>() {
            return Err(src.invalid(
                &keys,
                format!(
                    "not a bcrypt hash ({e}); make one with `htpasswd -nBC 10 \"\" | tr -d ':\\n'`"
                ),
            ));
        }
    }
    Ok(BasicAuth::new(users.into_iter().collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// bcrypt of `secret` at cost 4 (fast in tests).
    fn hash() -> String {
        bcrypt::hash("secret", 4).unwrap()
    }

    fn parse(text: &str) -> Result<WebConfig, WebConfigError> {
        WebConfig::from_str(text, Path::new("/etc/transitwatch/web.yml"))
    }

    fn error(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn an_empty_file_is_open() {
        for text in ["", "# nothing\n", "{}\n"] {
            let web = parse(text).unwrap();
            assert!(!web.tls() && !web.authenticates(), "{text:?}");
        }
    }

    #[test]
    fn users_and_headers_are_read() {
        let web = parse(&format!(
            "basic_auth_users:\n  prometheus: {}\nhttp_server_config:\n  http2: false\n  headers:\n    X-Frame-Options: deny\n    Strict-Transport-Security: max-age=31536000\n    X-XSS-Protection: ''\n",
            hash()
        ))
        .unwrap();
        assert!(web.authenticates());
        assert!(!web.tls());
        let names: Vec<&str> = web.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["x-frame-options", "strict-transport-security"]);
    }

    #[test]
    fn errors_name_the_file_line_and_key() {
        for (text, expected) in [
            (
                "tls_server_config:\n  cert_fil: a.crt\n",
                "/etc/transitwatch/web.yml:2:3: tls_server_config: unknown field `cert_fil`",
            ),
            (
                "basic_auth_user:\n  a: b\n",
                "web.yml:1:1: unknown field `basic_auth_user`",
            ),
            (
                "tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n  min_version: TLS10\n",
                "web.yml:4:16: tls_server_config.min_version: `TLS10` is not supported",
            ),
            (
                "tls_server_config:\n  client_auth_type: RequireAnyClientCert\n",
                "tls_server_config.client_auth_type: `RequireAnyClientCert` is not supported",
            ),
            (
                "tls_server_config:\n  cipher_suites:\n    - TLS_RSA_WITH_AES_128_CBC_SHA\n",
                "tls_server_config.cipher_suites[0]: `TLS_RSA_WITH_AES_128_CBC_SHA` is not a supported cipher suite",
            ),
            (
                "tls_server_config:\n  curve_preferences: [CurveP521]\n",
                "tls_server_config.curve_preferences[0]: `CurveP521` is not a supported curve",
            ),
            (
                "tls_server_config:\n  client_allowed_sans: [a.example]\n",
                "tls_server_config.client_allowed_sans: is not supported",
            ),
            ("rate_limit:\n  burst: 20\n", "rate_limit: is not supported"),
            (
                "http_server_config:\n  headers:\n    X-Powered-By: rust\n",
                "http_server_config.headers: unknown field `X-Powered-By`",
            ),
            (
                "http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
                "`allow` is not an X-Frame-Options value",
            ),
            (
                "basic_auth_users:\n  prometheus: secret\n",
                "web.yml:2: field `basic_auth_users.prometheus`: not a bcrypt hash",
            ),
            (
                "basic_auth_users:\n  prometheus: [a]\n",
                "web.yml:2:15: basic_auth_users.prometheus: invalid type: sequence, expected a string",
            ),
            (
                "tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n",
                "web.yml:2: field `tls_server_config.cert_file`: /etc/transitwatch/missing.crt: cannot read the TLS certificate file",
            ),
            (
                "tls_server_config:\n  key_file: a.key\n",
                "field `tls_server_config.key_file`: /etc/transitwatch/a.key: cannot read",
            ),
            (
                "tls_server_config:\n  min_version: TLS13\n",
                "web.yml:1: field `tls_server_config`: `cert_file` (or `cert`) is required",
            ),
            (
                "tls_server_config: [a]\n",
                "web.yml:1:20: tls_server_config: invalid type: sequence, expected a mapping of TLS settings",
            ),
            ("tls_server_config: a: b\n", "web.yml:1:"),
        ] {
            let got = error(text);
            assert!(got.contains(expected), "{text:?}\n got: {got}\nwant: {expected}");
        }
    }

    #[test]
    fn lines_of_nested_keys_are_found() {
        let text = "a:\n  b: 1\nc:\n  # b: comment\n  d:\n    b: 2\n";
        assert_eq!(line_of(text, &["a", "b"]), Some(2));
        assert_eq!(line_of(text, &["c", "d", "b"]), Some(6));
        assert_eq!(line_of(text, &["c", "b"]), None);
        assert_eq!(line_of(text, &["x"]), None);
    }
}

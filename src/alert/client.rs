//! One POST to a webhook, over `http://` or `https://` (rustls with the
//! `ring` provider; Mozilla's roots from `webpki-roots`, or only the
//! certificates of the webhook's `ca_file`).
//!
//! Every post opens its own connection and closes it after the answer
//! (`Connection: close`), and the whole exchange — name resolution, connect,
//! TLS handshake, request, response — runs under one timeout. Idle pooled
//! connections would hold file descriptors the prober needs (trippy-core's
//! `select()` fails on descriptors of 1024 and above), and notifications are
//! rare enough that a handshake per post costs nothing.
//!
//! The receiver's answer decides what happens next, as with Alertmanager:
//! 2xx is delivered; 5xx, 408 and 429 (and any failure to get an answer) are
//! retried; any other status is a rejection that retrying cannot fix.

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{CONNECTION, CONTENT_TYPE, HOST, USER_AGENT};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

/// The most of a response body read (and discarded) before closing.
const MAX_RESPONSE_BODY: usize = 64 * 1024;

/// Why a post did not deliver.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// No TCP connection.
    #[error("cannot connect to {endpoint}: {source}")]
    Connect {
        /// `host:port`.
        endpoint: String,
        /// What failed.
        source: std::io::Error,
    },
    /// The TLS handshake failed (certificate, protocol).
    #[error("TLS with {endpoint} failed: {source}")]
    Tls {
        /// `host:port`.
        endpoint: String,
        /// What failed.
        source: std::io::Error,
    },
    /// The HTTP exchange failed.
    #[error("HTTP exchange with {endpoint} failed: {source}")]
    Http {
        /// `host:port`.
        endpoint: String,
        /// What failed.
        source: hyper::Error,
    },
    /// No answer in time.
    #[error("no answer from {endpoint} within {timeout:?}")]
    Timeout {
        /// `host:port`.
        endpoint: String,
        /// The limit.
        timeout: Duration,
    },
    /// The receiver answered with a status other than 2xx.
    #[error("{endpoint} answered HTTP {status}")]
    Status {
        /// `host:port`.
        endpoint: String,
        /// The status code.
        status: u16,
    },
}

impl DeliveryError {
    /// Whether another attempt may succeed (everything but a 4xx other
    /// than 408 and 429, and other non-retryable statuses).
    #[must_use]
    pub fn retryable(&self) -> bool {
        match self {
            Self::Status { status, .. } => *status >= 500 || *status == 408 || *status == 429,
            _ => true,
        }
    }
}

/// Why a webhook URL (or its certificates) cannot be posted to.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EndpointError {
    /// The text is not a URL.
    #[error("`{url}` is not a URL: {reason}")]
    NotUrl {
        /// The configured URL.
        url: String,
        /// What the parser said.
        reason: String,
    },
    /// The scheme is neither `http` nor `https`.
    #[error("`{0}` is not an http:// or https:// URL")]
    Scheme(String),
    /// The URL names no host.
    #[error("`{0}` has no host")]
    NoHost(String),
    /// The URL carries user info.
    #[error("`{0}` carries credentials; they are not sent (use `secret` to sign posts)")]
    Credentials(String),
    /// The host cannot be checked against a certificate.
    #[error("`{host}` is not a TLS server name: {reason}")]
    ServerName {
        /// The URL's host.
        host: String,
        /// What rustls said.
        reason: String,
    },
    /// A certificate of `ca_file` is unusable.
    #[error("a CA certificate is unusable: {0}")]
    CaCertificate(String),
    /// The TLS client could not be set up.
    #[error("TLS set-up failed: {0}")]
    TlsSetup(String),
}

/// A webhook URL made ready to post to.
#[derive(Clone)]
pub struct Endpoint {
    host: String,
    port: u16,
    authority: String,
    path: String,
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// Parse `url` (`http://` or `https://`, no user info); for https
    /// trust `ca` (DER certificates) when given, else Mozilla's roots.
    ///
    /// # Errors
    /// Why the URL or a certificate is unusable.
    pub fn new(url: &str, ca: Option<&[Vec<u8>]>) -> Result<Self, EndpointError> {
        let uri: Uri =
            url.parse()
                .map_err(|e: hyper::http::uri::InvalidUri| EndpointError::NotUrl {
                    url: url.to_string(),
                    reason: e.to_string(),
                })?;
        let https = match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(EndpointError::Scheme(url.to_string())),
        };
        let authority = uri
            .authority()
            .ok_or_else(|| EndpointError::NoHost(url.to_string()))?;
        if authority.as_str().contains('@') {
            return Err(EndpointError::Credentials(url.to_string()));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let path = uri
            .path_and_query()
            .map_or_else(|| "/".to_string(), |p| p.as_str().to_string());
        let tls = if https {
            let name =
                ServerName::try_from(host.clone()).map_err(|e| EndpointError::ServerName {
                    host: host.clone(),
                    reason: e.to_string(),
                })?;
            Some((TlsConnector::from(Arc::new(tls_config(ca)?)), name))
        } else {
            None
        };
        Ok(Self {
            host,
            port,
            authority: authority.as_str().to_string(),
            path,
            tls,
        })
    }

    fn endpoint(&self) -> String {
        self.authority.clone()
    }

    /// POST `body` with `headers` (name, value) and the JSON content type;
    /// `Ok` with the 2xx status when the receiver took it.
    ///
    /// # Errors
    /// Why it was not delivered; see [`DeliveryError::retryable`].
    pub async fn post(
        &self,
        headers: &[(&str, String)],
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<u16, DeliveryError> {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(self.path.as_str())
            .header(HOST, self.authority.as_str())
            .header(CONTENT_TYPE, "application/json")
            .header(
                USER_AGENT,
                concat!("transitwatch/", env!("CARGO_PKG_VERSION")),
            )
            .header(CONNECTION, "close");
        for (name, value) in headers {
            request = request.header(*name, value.as_str());
        }
        let request =
            request
                .body(Full::new(Bytes::from(body)))
                .map_err(|e| DeliveryError::Connect {
                    endpoint: self.endpoint(),
                    source: std::io::Error::new(std::io::ErrorKind::InvalidInput, e),
                })?;
        let exchange = async {
            let endpoint = self.endpoint();
            let tcp = TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(|source| DeliveryError::Connect {
                    endpoint: endpoint.clone(),
                    source,
                })?;
            let _ = tcp.set_nodelay(true);
            match &self.tls {
                None => exchange(TokioIo::new(tcp), request, &endpoint).await,
                Some((connector, name)) => {
                    let tls = connector
                        .connect(name.clone(), tcp)
                        .await
                        .map_err(|source| DeliveryError::Tls {
                            endpoint: endpoint.clone(),
                            source,
                        })?;
                    exchange(TokioIo::new(tls), request, &endpoint).await
                }
            }
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| DeliveryError::Timeout {
                endpoint: self.endpoint(),
                timeout,
            })?
    }
}

/// Send one request over a fresh connection and read the answer.
async fn exchange<I>(
    io: I,
    request: Request<Full<Bytes>>,
    endpoint: &str,
) -> Result<u16, DeliveryError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let http = |source| DeliveryError::Http {
        endpoint: endpoint.to_string(),
        source,
    };
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(http)?;
    let answer = async {
        let response = sender.send_request(request).await?;
        let status = response.status();
        // Read what the receiver says (bounded) so the exchange ends
        // cleanly; its content does not matter.
        let _ = Limited::new(response.into_body(), MAX_RESPONSE_BODY)
            .collect()
            .await;
        Ok::<_, hyper::Error>(status)
    };
    tokio::pin!(connection);
    tokio::pin!(answer);
    // The connection future drives the socket; the answer completes once
    // the response is read. A connection ending first either failed (its
    // error is the answer) or closed after the response (the answer is
    // ready).
    let status = tokio::select! {
        status = &mut answer => status.map_err(http)?,
        ended = &mut connection => {
            ended.map_err(http)?;
            answer.await.map_err(http)?
        }
    };
    if status.is_success() {
        Ok(status.as_u16())
    } else {
        Err(DeliveryError::Status {
            endpoint: endpoint.to_string(),
            status: status.as_u16(),
        })
    }
}

fn tls_config(ca: Option<&[Vec<u8>]>) -> Result<ClientConfig, EndpointError> {
    let mut roots = RootCertStore::empty();
    match ca {
        Some(certs) => {
            for der in certs {
                roots
                    .add(CertificateDer::from(der.clone()))
                    .map_err(|e| EndpointError::CaCertificate(e.to_string()))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| EndpointError::TlsSetup(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_host_port_and_path() {
        let e = Endpoint::new("http://127.0.0.1:9000/hook?x=1", None).unwrap();
        assert_eq!((e.host.as_str(), e.port), ("127.0.0.1", 9000));
        assert_eq!(e.path, "/hook?x=1");
        assert_eq!(e.authority, "127.0.0.1:9000");
        let e = Endpoint::new("https://[::1]/", None).unwrap();
        assert_eq!((e.host.as_str(), e.port), ("::1", 443));
        assert!(e.tls.is_some());
        let e = Endpoint::new("http://receiver.example", None).unwrap();
        assert_eq!((e.port, e.path.as_str()), (80, "/"));
        assert!(Endpoint::new("http://user:pw@host/", None)
            .unwrap_err()
            .to_string()
            .contains("credentials"));
        assert!(Endpoint::new("ftp://host/", None).is_err());
    }

    #[test]
    fn only_server_errors_and_throttling_are_retried() {
        let status = |status| DeliveryError::Status {
            endpoint: String::new(),
            status,
        };
        assert!(status(500).retryable());
        assert!(status(503).retryable());
        assert!(status(429).retryable());
        assert!(status(408).retryable());
        assert!(!status(400).retryable());
        assert!(!status(404).retryable());
        assert!(!status(301).retryable());
    }
}

//! The HTTP endpoint secured by a web configuration file (the
//! exporter-toolkit format: TLS and basic authentication), and the route
//! that traces on demand, from the outside over loopback.
//!
//! Certificates are made at test time (`support::pki`); the client is
//! rustls (tokio-rustls) trusting only the test CA, speaking HTTP/1.1 by
//! hand. `serve_with` runs with a small view and a tracer that answers
//! when the test lets it (a `Notify`), so "a trace is in flight" is a
//! state the test holds, not a race.

use crate::support::pki::Pki;
use crate::support::records;
use base64::Engine as _;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch, Semaphore};
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;
use transitwatch::http::{
    serve_with, Endpoint, OnDemandError, OnDemandTracer, StateView, TraceFuture, ViewError,
    WebConfig, ON_DEMAND_BURST,
};

struct View;

impl StateView for View {
    fn metrics(&self) -> Result<String, ViewError> {
        Ok("# TYPE transitwatch_test gauge\ntransitwatch_test 1\n".to_string())
    }
    fn ready(&self) -> bool {
        true
    }
    fn targets(&self) -> serde_json::Value {
        serde_json::json!([{"name": "gov-portal"}])
    }
    fn latest(&self, _: &str) -> Option<serde_json::Value> {
        None
    }
}

/// Traces `gov-portal` and `bank`, each once the test adds a permit to
/// `answers`; `fails` fails.
struct Tracer {
    answers: Arc<Semaphore>,
    asked: AtomicUsize,
}

impl OnDemandTracer for Tracer {
    fn knows(&self, target: &str) -> bool {
        ["gov-portal", "bank", "fails"].contains(&target)
    }

    fn trace(&self, target: &str) -> TraceFuture {
        self.asked.fetch_add(1, Ordering::SeqCst);
        let answers = Arc::clone(&self.answers);
        let target = target.to_string();
        Box::pin(async move {
            answers.acquire().await.expect("open").forget();
            if target == "fails" {
                return Err(OnDemandError::Failed("fails: no route to host".into()));
            }
            Ok(vec![records::domestic(&target, 1_800_000_000)])
        })
    }
}

struct Server {
    addr: SocketAddr,
    web: watch::Sender<Arc<WebConfig>>,
    tracer: Arc<Tracer>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(web: WebConfig) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (web, web_rx) = watch::channel(Arc::new(web));
        let tracer = Arc::new(Tracer {
            answers: Arc::new(Semaphore::new(0)),
            asked: AtomicUsize::new(0),
        });
        let endpoint = Endpoint {
            web: web_rx,
            tracer: Some(Arc::clone(&tracer) as Arc<dyn OnDemandTracer>),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve_with(listener, Arc::new(View), endpoint, async move {
            let _ = stopped.await;
        }));
        Server {
            addr,
            web,
            tracer,
            stop: Some(stop),
            task,
        }
    }

    async fn stop(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(10), self.task)
            .await
            .expect("serve did not end after shutdown")
            .unwrap()
            .unwrap();
    }
}

/// A response: status, lower-cased header names, body.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: HashMap<String, String>,
    body: String,
}

fn parse(raw: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete response: {text:?}"));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_string(),
    }
}

fn basic(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

/// A rustls client trusting the test CA, with the test client certificate
/// when `with_cert`.
fn connector(pki: &Pki, with_cert: bool) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&pki.ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = if with_cert {
        let chain = CertificateDer::pem_file_iter(&pki.client_cert)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let key = PrivateKeyDer::from_pem_file(&pki.client_key).unwrap();
        builder.with_client_auth_cert(chain, key).unwrap()
    } else {
        builder.with_no_client_auth()
    };
    TlsConnector::from(Arc::new(config))
}

/// One request (`Connection: close`) on `io`; the whole response.
async fn exchange<I: AsyncRead + AsyncWrite + Unpin>(
    io: I,
    method: &str,
    path: &str,
    authorization: Option<&str>,
) -> std::io::Result<Answer> {
    exchange_raw(io, method, path, authorization)
        .await
        .map(|raw| parse(&raw))
}

/// One request on `io`; whatever came back, up to the end or an error.
async fn exchange_raw<I: AsyncRead + AsyncWrite + Unpin>(
    mut io: I,
    method: &str,
    path: &str,
    authorization: Option<&str>,
) -> std::io::Result<Vec<u8>> {
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    io.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    io.read_to_end(&mut raw).await?;
    Ok(raw)
}

/// A request over TLS; panics if the handshake fails.
async fn https(
    server: &Server,
    tls: &TlsConnector,
    method: &str,
    path: &str,
    authorization: Option<&str>,
) -> Answer {
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let stream = tls.connect(name, tcp).await.expect("TLS handshake");
    exchange(stream, method, path, authorization).await.unwrap()
}

fn web_config(path: &Path) -> WebConfig {
    WebConfig::load(path).unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn tls_with_basic_auth_admits_only_the_right_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::write(dir.path());
    let file = pki.web_config(dir.path(), &[("prometheus", "s3cret")], "");
    let server = Server::start(web_config(&file)).await;
    let tls = connector(&pki, false);
    let right = basic("prometheus", "s3cret");

    let ok = https(&server, &tls, "GET", "/metrics", Some(&right)).await;
    assert_eq!(ok.status, 200, "{ok:?}");
    assert!(ok.body.contains("transitwatch_test 1"), "{ok:?}");
    assert_eq!(
        ok.headers
            .get("strict-transport-security")
            .map(String::as_str),
        Some("max-age=31536000")
    );
    // Remembered credentials are answered the same.
    assert_eq!(
        https(&server, &tls, "GET", "/metrics", Some(&right))
            .await
            .status,
        200
    );

    // Every route, /healthz included, wants the credentials.
    for (path, authorization) in [
        ("/metrics", None),
        ("/healthz", None),
        ("/api/v1/targets", None),
        ("/report", None),
        ("/metrics", Some(basic("prometheus", "wrong"))),
        ("/metrics", Some(basic("nobody", "s3cret"))),
        ("/metrics", Some("Bearer s3cret".to_string())),
    ] {
        let denied = https(&server, &tls, "GET", path, authorization.as_deref()).await;
        assert_eq!(denied.status, 401, "{path} {authorization:?}: {denied:?}");
        assert!(
            denied
                .headers
                .get("www-authenticate")
                .is_some_and(|v| v.starts_with("Basic")),
            "{denied:?}"
        );
        assert!(denied.headers.contains_key("strict-transport-security"));
    }

    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = TcpStream::connect(server.addr).await.unwrap();
    let answer = exchange_raw(plain, "GET", "/metrics", Some(&right)).await;
    assert!(
        !answer
            .as_ref()
            .is_ok_and(|raw| raw.starts_with(b"HTTP/1.1")),
        "plain HTTP was answered: {answer:?}"
    );
    // A client that does not trust the server's CA cannot connect.
    let strangers = {
        let other = tempfile::tempdir().unwrap();
        connector(&Pki::write(other.path()), false)
    };
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    assert!(strangers.connect(name, tcp).await.is_err());

    // A reload to a file without users opens the endpoint at once.
    let open = dir.path().join("open.yml");
    std::fs::write(
        &open,
        format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: {}\n",
            pki.server_key.display()
        ),
    )
    .unwrap();
    server.web.send_replace(Arc::new(web_config(&open)));
    assert_eq!(
        https(&server, &tls, "GET", "/healthz", None).await.status,
        200
    );
    server.stop().await;
}

#[tokio::test]
async fn client_certificates_are_required_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::write(dir.path());
    let more = format!(
        "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {}\n  min_version: TLS13\n",
        pki.ca.display()
    );
    let file = pki.web_config(dir.path(), &[], &more);
    let server = Server::start(web_config(&file)).await;

    let with = https(&server, &connector(&pki, true), "GET", "/healthz", None).await;
    assert_eq!(with.status, 200, "{with:?}");
    // Without a certificate the server ends the handshake (TLS 1.3: the
    // client learns it on its first read).
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let refused = match connector(&pki, false).connect(name, tcp).await {
        Err(_) => true,
        Ok(stream) => !exchange_raw(stream, "GET", "/healthz", None)
            .await
            .is_ok_and(|raw| raw.starts_with(b"HTTP/1.1")),
    };
    assert!(refused, "served a client without a certificate");
    server.stop().await;
}

#[tokio::test]
async fn traces_on_demand_are_authenticated_named_and_limited() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::write(dir.path());
    let file = pki.web_config(dir.path(), &[("operator", "pa55")], "");
    let server = Server::start(web_config(&file)).await;
    let tls = Arc::new(connector(&pki, false));
    let right = basic("operator", "pa55");
    let asked = || server.tracer.asked.load(Ordering::SeqCst);

    let path = "/api/v1/targets/gov-portal/trace";
    assert_eq!(https(&server, &tls, "POST", path, None).await.status, 401);
    let get = https(&server, &tls, "GET", path, Some(&right)).await;
    assert_eq!(get.status, 405);
    assert_eq!(get.headers.get("allow").map(String::as_str), Some("POST"));
    let unknown = https(
        &server,
        &tls,
        "POST",
        "/api/v1/targets/10.0.0.1/trace",
        Some(&right),
    )
    .await;
    assert_eq!(unknown.status, 404, "{unknown:?}");
    assert!(unknown.body.contains("no target named `10.0.0.1`"));
    assert_eq!(asked(), 0, "nothing was traced yet");

    // One trace of a target at a time: a second request while the first
    // is in flight is refused.
    let first = {
        let tls = Arc::clone(&tls);
        let addr = server.addr;
        let right = right.clone();
        tokio::spawn(async move {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let stream = tls
                .connect(ServerName::try_from("localhost").unwrap(), tcp)
                .await
                .unwrap();
            exchange(stream, "POST", path, Some(&right)).await.unwrap()
        })
    };
    while asked() == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let busy = https(&server, &tls, "POST", path, Some(&right)).await;
    assert_eq!(busy.status, 429, "{busy:?}");
    assert!(busy.headers.contains_key("retry-after"));
    server.tracer.answers.add_permits(1);
    let first = first.await.unwrap();
    assert_eq!(first.status, 200, "{first:?}");
    let records: serde_json::Value = serde_json::from_str(&first.body).unwrap();
    assert_eq!(records[0]["schema"], "transitwatch.trace/1");
    assert_eq!(records[0]["target"]["name"], "gov-portal");
    assert!(!records[0]["hops"].as_array().unwrap().is_empty());

    // A failed trace is a bad gateway; then the bucket is empty.
    server.tracer.answers.add_permits(ON_DEMAND_BURST as usize);
    let failed = https(
        &server,
        &tls,
        "POST",
        "/api/v1/targets/fails/trace",
        Some(&right),
    )
    .await;
    assert_eq!(failed.status, 502, "{failed:?}");
    assert!(failed.body.contains("no route to host"));
    let mut statuses = Vec::new();
    for _ in 0..ON_DEMAND_BURST {
        statuses.push(
            https(
                &server,
                &tls,
                "POST",
                "/api/v1/targets/bank/trace",
                Some(&right),
            )
            .await
            .status,
        );
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(
        asked(),
        2 + ON_DEMAND_BURST as usize - refused,
        "a refused request reached the tracer"
    );
    server.stop().await;
}

#[test]
fn check_config_reads_the_web_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::write(dir.path());
    pki.web_config(dir.path(), &[("prometheus", "s3cret")], "");
    let config = dir.path().join("transitwatch.toml");
    std::fs::write(
        &config,
        "[vantage]\nname = \"maseru-1\"\ncountry = \"LS\"\n\n[metrics]\nweb_config_file = \"web.yml\"\n",
    )
    .unwrap();
    let check_config = || {
        std::process::Command::new(crate::support::bin())
            .args(["check-config", "--config"])
            .arg(&config)
            .output()
            .unwrap()
    };
    let out = check_config();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.contains("web configuration") && stdout.contains("(TLS, basic authentication)"),
        "{stdout}"
    );
    // A broken one is named with its line and key (exit 2).
    std::fs::write(
        dir.path().join("web.yml"),
        "tls_server_config:\n  min_version: TLS11\n",
    )
    .unwrap();
    let out = check_config();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("web.yml:2:16: tls_server_config.min_version: `TLS11` is not supported"),
        "{stderr}"
    );
}

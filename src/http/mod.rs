//! The daemon's HTTP endpoint: `/metrics` for Prometheus, `/healthz` and
//! `/readyz` for supervisors, and a small read-only JSON API.
//!
//! | route | answer |
//! |---|---|
//! | `GET /metrics` | the exposition, `text/plain; version=0.0.4; charset=utf-8` |
//! | `GET /healthz` | 200 `ok` while the process serves at all |
//! | `GET /readyz` | 200 `ready` once the first cycle is done, else 503 `not ready` |
//! | `GET /api/v1/targets` | JSON, as [`StateView::targets`] gives it |
//! | `GET /api/v1/targets/{name}/latest` | JSON array of the target's latest records; 204 (no body) for a configured target not traced yet; 404 JSON error for an unknown name |
//! | `GET /api/v1/traces?since=&until=&target=&limit=` | stored trace records as JSON Lines (`application/x-ndjson`), streamed; 400 JSON error for a bad parameter, 503 when no history can be read |
//! | `GET /api/v1/dependencies` | JSON: every service's hosting and DNS verdicts, the national DNS figures and what fails if each country or operator seen on the paths becomes unavailable ([`crate::dependency::overview`]), as of the daemon's last refresh (every few seconds); 503 before the first |
//! | `GET /api/v1/whatif?country=` (or `asn=`, `org=`) | JSON: what fails if that country, AS or organisation becomes unavailable ([`crate::dependency`]), from the latest record of every path ([`StateView::each_latest`]); 400 JSON error for a missing, repeated, unknown or bad parameter, 503 when the view keeps no latest records |
//! | `GET /` and `GET /report?since=&until=&format=` | the regulator's report of the history ([`crate::report`]): standalone HTML by default, `md` or `json`; made on a history reader; 400 JSON error for a bad parameter, 503 when no history can be read |
//! | `POST /api/v1/targets/{name}/trace` | one trace of that configured target now ([`on_demand`]): JSON array of its trace records, one per path; 404 JSON error for an unknown name, 429 with `Retry-After` over the limits, 502 when the trace failed, 503 when the daemon is not tracing, 504 past [`ON_DEMAND_TIMEOUT`] |
//!
//! `/api/v1/traces` takes the export's notation: `since` and `until` are RFC
//! 3339 times, dates or durations before now (`24h`), `until` exclusive;
//! `target` a target name or path key; `limit` a count. Values are
//! percent-decoded (a `+` stays a `+`, as in `+02:00`). The body is read
//! from the store as the client reads it ([`stream`]), so it never holds
//! the whole history. A stream is bound by the connection age limit like
//! any response (see below): for bulk history use `transitwatch export`, or
//! page with `since` and `limit`.
//!
//! Other paths answer 404; other methods on these paths 405 with
//! `Allow: GET` (`Allow: POST` on the trace route). Every route but the
//! trace route only reads a [`StateView`]; the trace route asks an
//! [`OnDemandTracer`], within its limits, and its traces change nothing
//! the other routes show (they are answered, not recorded).
//!
//! # Security
//!
//! [`serve_with`] takes a [`WebConfig`] (the exporter-toolkit's web
//! configuration file, [`web_config`]), replaced on reload through a
//! watch channel: with TLS, each connection's handshake must finish within
//! [`HEADER_DEADLINE`] (a connection waiting for it holds a waiting place,
//! like one waiting for a head); with basic authentication every route,
//! `/healthz` and `/readyz` included as in the exporter-toolkit, answers
//! 401 with `WWW-Authenticate: Basic` to a request without the right
//! credentials ([`basic_auth`]); its headers are added to every response.
//! A request is admitted to its share before its credentials are checked.
//!
//! `/api/v1/whatif` takes exactly one of `country` (an assigned ISO 3166-1
//! alpha-2 code), `asn` (`64510` or `AS64510`) and `org` (part of an AS
//! organisation's name, any case; percent-decoded as above, so a space is
//! `%20`). The answer is the JSON of `transitwatch whatif --format json`
//! (`schemas/whatif.schema.json`), made on tokio's blocking pool.
//!
//! Built on hyper 1 and hyper-util rather than axum: eight fixed routes need
//! no router or extractors, and the properties that matter here live in the
//! accept loop, which axum's `serve` hides — admission in stages, time
//! limits per connection, and draining on shutdown. Owning that loop with
//! hyper directly keeps tower and axum out of the dependency tree.
//!
//! Connections are HTTP/1.1 with keep-alive, admitted in stages
//! ([`admission`]): a connection waiting for a request head holds only a
//! waiting place, and the oldest is closed when a new client needs one; a
//! request is then served from the share of its route, monitoring's being
//! reserved, so `/metrics` and `/healthz` answer at once while slow clients
//! and API readers fill theirs. A client must send a complete head within
//! [`HEADER_DEADLINE`] (idle keep-alive included) and keep reading a
//! response ([`WRITE_STALL`]); a head is at most [`WRITE_BUFFER`] bytes. A
//! connection is asked to close after [`MAX_CONNECTION_AGE`]; a client that
//! then still does not finish within [`SHUTDOWN_GRACE`] is cut off.

pub mod admission;
pub mod basic_auth;
pub mod on_demand;
pub mod stream;
pub mod web_config;

pub use admission::{
    API_PER_CLIENT, API_SLOTS, HEADER_DEADLINE, HTTP_FDS, MAX_CONNECTIONS, MONITORING_SLOTS,
    WAITING_SLOTS, WRITE_STALL,
};
pub use basic_auth::VERIFICATIONS;
pub use on_demand::{
    OnDemandError, OnDemandTracer, TraceFuture, ON_DEMAND_BURST, ON_DEMAND_REFILL,
    ON_DEMAND_TIMEOUT,
};
use stream::HistoryReaders;
pub use stream::{StreamBroken, TraceBody, STREAM_CACHE_KIB, STREAM_CHUNK, STREAM_PAGE_ROWS};
pub use web_config::{WebConfig, WebConfigError};

use crate::dependency::{Assessment, Failure, InvalidFailure};
use crate::export::ExportError;
use crate::metrics::MetricsError;
use crate::model::{PathKey, TraceRecord};
use crate::report::ReportFormat;
use crate::store::{parse_time, InvalidTime, Query, StoreError};
use admission::{Pass, Refusal, Share, Shares, Waiting, WaitingRoom};
use basic_auth::AuthVerdict;
use http_body_util::{Either, Full};
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper::header::{
    HeaderValue, ALLOW, AUTHORIZATION, CONNECTION, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE,
};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use on_demand::Limiter;
use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio_io_timeout::TimeoutStream;

/// A connection is asked to close (after its current response) once it is
/// this old; clients such as Prometheus simply reconnect.
pub const MAX_CONNECTION_AGE: Duration = Duration::from_secs(60);
/// How long a connection asked to close (shutdown or age) may take to finish
/// its response before it is cut off.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// hyper's buffer limit per connection (`max_buf_size`, its minimum is
/// 8 KiB): the largest request head, and how much of a response hyper
/// queues before it waits for the socket.
pub const WRITE_BUFFER: usize = 16 * 1024;
/// Threads reading the history for `/api/v1/traces` (opening it, and each
/// chunk of a stream), whatever the number of streams ([`stream`]).
pub const STORE_READS: usize = 2;
/// The kernel's send buffer of a connection (`SO_SNDBUF`; Linux reserves
/// twice this for bookkeeping): enough for 2.5 MB/s at 100 ms round trip.
pub const SEND_BUFFER: usize = 128 * 1024;
/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop
/// does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

const TEXT: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json";
/// The `Content-Type` of `/api/v1/traces`.
pub const NDJSON: &str = "application/x-ndjson";

/// Stored trace records, each one JSON line with its `\n`, read as they
/// are asked for.
pub type TraceLines = Box<dyn Iterator<Item = Result<Vec<u8>, ExportError>> + Send>;

/// A response body: a complete one, or a stream.
type Content = Either<Full<Bytes>, TraceBody>;
/// The `Content-Type` of `/metrics`.
pub const METRICS_CONTENT_TYPE: &str = crate::metrics::CONTENT_TYPE;

/// Why a [`StateView`] could not answer; the endpoint answers with this
/// text.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    /// The exposition could not be rendered.
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    /// The trace history could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// This view keeps no trace history.
    #[error("this endpoint keeps no trace history")]
    NoHistory,
    /// The report could not be made.
    #[error(transparent)]
    Report(#[from] crate::report::ReportError),
}

/// What the HTTP layer reads; the daemon implements it. Nothing here starts
/// a probe.
///
/// `metrics`, `targets` and `latest` may take a while (rendering thousands of
/// series, reading a store): they are called on tokio's blocking pool, never
/// on an async worker. `ready` is called on the blocking pool too.
pub trait StateView: Send + Sync + 'static {
    /// The rendered Prometheus exposition, or why it could not be rendered
    /// (answered as 500 with that text).
    ///
    /// # Errors
    ///
    /// Why rendering failed, for the operator.
    fn metrics(&self) -> Result<String, ViewError>;
    /// Whether the first probe cycle is done.
    fn ready(&self) -> bool;
    /// The configured targets, for `/api/v1/targets`.
    fn targets(&self) -> serde_json::Value;
    /// The latest trace records of `target` (a JSON array), `None` when no
    /// target has that name or it has no record yet.
    fn latest(&self, target: &str) -> Option<serde_json::Value>;
    /// Whether `target` is a configured target, traced or not: when
    /// [`latest`](Self::latest) has no records for it, the endpoint answers
    /// 204 for a configured target and 404 for an unknown one. By default
    /// no name is.
    fn is_target(&self, target: &str) -> bool {
        let _ = target;
        false
    }
    /// The stored trace records `query` selects, one JSON line each (the
    /// `jsonl` export format), for `/api/v1/traces`. Called on one of the
    /// [`STORE_READS`] history reader threads, and the lines are read there
    /// a chunk at a time as the client reads; an `Err` line ends the stream
    /// as broken. Keep what the iterator holds small: up to [`API_SLOTS`]
    /// may be open at once (the daemon's uses [`STREAM_CACHE_KIB`] and
    /// [`STREAM_PAGE_ROWS`]).
    ///
    /// # Errors
    ///
    /// Why no history can be read (answered 503 with that text). By
    /// default none is kept.
    fn traces(&self, query: &Query) -> Result<TraceLines, ViewError> {
        let _ = query;
        Err(ViewError::NoHistory)
    }
    /// The regulator's report of the history over `period` (its `since`
    /// and `until`), rendered in `format`, for `/` and `/report`. Called
    /// on one of the [`STORE_READS`] history reader threads.
    ///
    /// # Errors
    ///
    /// Why no history can be read (answered 503 with that text). By
    /// default none is kept.
    fn report(&self, period: &Query, format: ReportFormat) -> Result<String, ViewError> {
        let _ = (period, format);
        Err(ViewError::NoHistory)
    }
    /// Hand the latest trace record of every path of the configured
    /// targets to `each`, with its key, for `/api/v1/whatif`. Called on
    /// tokio's blocking pool; `each` only notes what it needs of each
    /// record (it may be called under a lock).
    ///
    /// # Errors
    ///
    /// Why no latest records can be read (answered 503 with that text).
    /// By default none are kept.
    fn each_latest(&self, each: &mut dyn FnMut(&PathKey, &TraceRecord)) -> Result<(), ViewError> {
        let _ = each;
        Err(ViewError::NoHistory)
    }
    /// The latest dependency overview (`/api/v1/dependencies`): every
    /// service's hosting and DNS verdicts and what fails if each country
    /// or operator seen does; `None` (answered 503) before the first one
    /// or when the view keeps none.
    fn dependencies(&self) -> Option<serde_json::Value> {
        None
    }
    /// The operator table `/api/v1/whatif?org=` also matches organisations
    /// against (the configuration's); by default the shipped one.
    fn operators(&self) -> crate::operators::OperatorTable {
        crate::operators::OperatorTable::shipped().clone()
    }
}

/// What the endpoint serves besides its [`StateView`]: its security
/// settings and who traces on demand.
pub struct Endpoint {
    /// The web configuration in force; the daemon sends a new one on
    /// reload, and each connection (TLS) and request (credentials, headers)
    /// takes the latest.
    pub web: watch::Receiver<Arc<WebConfig>>,
    /// Runs `POST /api/v1/targets/{name}/trace`; `None`: that route answers
    /// 503.
    pub tracer: Option<Arc<dyn OnDemandTracer>>,
}

impl Default for Endpoint {
    /// Plain HTTP, no authentication, no traces on demand.
    fn default() -> Self {
        // The sender is dropped at once: the receiver keeps its value.
        let (_, web) = watch::channel(Arc::new(WebConfig::open()));
        Self { web, tracer: None }
    }
}

/// [`serve_with`] plain HTTP, without authentication or traces on demand.
///
/// # Errors
///
/// The history reader threads cannot be started.
pub async fn serve<S: StateView>(
    listener: TcpListener,
    view: Arc<S>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, view, Endpoint::default(), shutdown).await
}

/// Serves HTTP (or HTTPS, as `endpoint.web` says) on `listener` until
/// `shutdown` completes, then stops accepting, lets open connections finish
/// their current response (at most [`SHUTDOWN_GRACE`]) and returns.
///
/// A failing connection or `accept` is logged and the loop goes on; nothing
/// a client does ends the server.
///
/// # Errors
///
/// The history reader threads cannot be started.
pub async fn serve_with<S: StateView>(
    listener: TcpListener,
    view: Arc<S>,
    endpoint: Endpoint,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limiter = Arc::new(Limiter::default());
    // Why a semaphore: every open connection is a file descriptor, shared
    // with trippy-core's select()-based sockets that must stay below
    // FD_SETSIZE (see `admission` for the budget). A connection holds a
    // permit until it closes; when none is free, the oldest connection
    // waiting for a head is closed to make room.
    let connections_open = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let room = Arc::new(WaitingRoom::default());
    let shares = Arc::new(Shares::default());
    let readers = match HistoryReaders::start(STORE_READS) {
        Ok(readers) => Arc::new(readers),
        Err(error) => {
            tracing::error!(%error, "the HTTP endpoint cannot start its history readers");
            return Err(error);
        }
    };
    // Why a watch channel: one send tells every connection task at once to
    // finish its current response and close; tasks subscribe before the send.
    let (stop, _) = watch::channel(false);
    let mut connections = JoinSet::new();
    // Connections ended since start: the trimmer gives freed memory back
    // once this has stopped moving for a moment.
    let ended = Arc::new(AtomicU64::new(0));
    let trimmer = tokio::spawn(release_memory_when_quiet(Arc::clone(&ended)));
    let mut shutdown = std::pin::pin!(shutdown);
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "HTTP endpoint listening");
    }

    loop {
        while let Some(done) = connections.try_join_next() {
            log_task_end(done);
        }
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accepting an HTTP connection failed");
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                    }
                }
            },
        };
        let permit = match Arc::clone(&connections_open).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                // Every place is taken: the slowest client waiting for a
                // head makes room; with none waiting, this one waits for a
                // response to end (others queue in the kernel's backlog).
                room.evict_oldest();
                tokio::select! {
                    () = &mut shutdown => break,
                    permit = Arc::clone(&connections_open).acquire_owned() => match permit {
                        Ok(permit) => permit,
                        // The semaphore is never closed; stop serving if it were.
                        Err(_) => break,
                    },
                }
            }
        };
        let client = Client {
            peer: peer.ip(),
            waiting: Waiting::enter(&room),
            shares: Arc::clone(&shares),
            readers: Arc::clone(&readers),
            web: endpoint.web.clone(),
            tracer: endpoint.tracer.clone(),
            limiter: Arc::clone(&limiter),
        };
        let view = Arc::clone(&view);
        let stop = stop.subscribe();
        let ended = Arc::clone(&ended);
        connections.spawn(async move {
            // Held until the connection is closed.
            let _permit = permit;
            if let Err(error) = serve_connection(stream, client, view, stop).await {
                tracing::debug!(%peer, %error, "HTTP connection ended with an error");
            }
            ended.fetch_add(1, Ordering::Relaxed);
        });
    }

    trimmer.abort();
    // Closes the port first, so that no client connects to a server that
    // will not answer.
    drop(listener);
    stop.send_replace(true);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE + Duration::from_secs(1), async {
        while let Some(done) = connections.join_next().await {
            log_task_end(done);
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            "HTTP connections did not close in time; cutting them off"
        );
        connections.shutdown().await;
    }
    tracing::debug!("HTTP endpoint stopped");
    Ok(())
}

/// How long connections must have stopped ending before the memory their
/// buffers used is given back (checked once a second).
const QUIET_BEFORE_RELEASE: u32 = 2;

/// Give the allocator's free memory back to the system each time clients
/// have been quiet for [`QUIET_BEFORE_RELEASE`] seconds after connections
/// ended: a burst of slow or streaming clients otherwise leaves its buffers'
/// pages with the allocator for good. A scraper on a kept-alive connection
/// ends none, so a steady daemon never trims.
async fn release_memory_when_quiet(ended: Arc<AtomicU64>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut seen, mut released, mut quiet) = (0, 0, 0);
    loop {
        tick.tick().await;
        let now = ended.load(Ordering::Relaxed);
        if now != seen {
            (seen, quiet) = (now, 0);
            continue;
        }
        quiet += 1;
        if seen != released && quiet >= QUIET_BEFORE_RELEASE {
            released = seen;
            // The walk over every arena locks each in turn: off the runtime.
            if let Ok(gave_back) =
                tokio::task::spawn_blocking(crate::allocator::release_free_memory).await
            {
                tracing::debug!(
                    gave_back,
                    "freed memory given back after HTTP clients ended"
                );
            }
        }
    }
}

/// Why one connection ended badly (logged only).
#[derive(Debug, thiserror::Error)]
enum ConnectionError {
    #[error(transparent)]
    Http(#[from] hyper::Error),
    #[error("the client did not finish within {0:?} of being asked to close")]
    Stalled(Duration),
    #[error("closed to make room for a new client while waiting for a request head")]
    Evicted,
    #[error("TLS handshake failed: {0}")]
    Handshake(std::io::Error),
    #[error("the TLS handshake did not finish within {0:?}")]
    HandshakeTimeout(Duration),
}

/// One connection's client and its standing.
#[derive(Clone)]
struct Client {
    peer: IpAddr,
    waiting: Arc<Waiting>,
    shares: Arc<Shares>,
    readers: Arc<HistoryReaders>,
    web: watch::Receiver<Arc<WebConfig>>,
    tracer: Option<Arc<dyn OnDemandTracer>>,
    limiter: Arc<Limiter>,
}

async fn serve_connection<S: StateView>(
    stream: TcpStream,
    client: Client,
    view: Arc<S>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), ConnectionError> {
    // The kernel's send buffer is fixed (no autotuning to megabytes): what
    // a stalled client costs in the kernel is bounded, and a stream stops
    // reading the history soon after its client stops reading.
    if let Err(error) = socket2::SockRef::from(&stream).set_send_buffer_size(SEND_BUFFER) {
        tracing::debug!(%error, "setting the send buffer of an HTTP connection failed");
    }
    // A client that stops reading a response is cut off: hyper has no
    // write timeout of its own.
    let mut stream = TimeoutStream::new(stream);
    stream.set_write_timeout(Some(WRITE_STALL));
    let stream = Box::pin(stream);
    // The settings as this connection starts: a reload applies to the
    // connections that follow.
    let tls = client.web.borrow().tls.clone();
    let Some(acceptor) = tls else {
        return serve_http(stream, client, view, stop).await;
    };
    let waiting = Arc::clone(&client.waiting);
    let handshake = tokio::select! {
        done = tokio::time::timeout(HEADER_DEADLINE, acceptor.accept(stream)) => done,
        () = waiting.evict.notified() => {
            waiting.close();
            return Err(ConnectionError::Evicted);
        }
        _ = stop.wait_for(|stop| *stop) => {
            waiting.close();
            return Ok(());
        }
    };
    match handshake {
        Ok(Ok(tls)) => serve_http(tls, client, view, stop).await,
        Ok(Err(error)) => {
            waiting.close();
            Err(ConnectionError::Handshake(error))
        }
        Err(_) => {
            waiting.close();
            Err(ConnectionError::HandshakeTimeout(HEADER_DEADLINE))
        }
    }
}

/// HTTP/1.1 on `io` (TCP, or TLS over it) until the client closes, the
/// connection is evicted, aged out or the server stops.
async fn serve_http<S, I>(
    io: I,
    client: Client,
    view: Arc<S>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), ConnectionError>
where
    S: StateView,
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let waiting = Arc::clone(&client.waiting);
    let service = service_fn(move |request: Request<Incoming>| {
        let view = Arc::clone(&view);
        let client = client.clone();
        async move { Ok::<_, Infallible>(respond(view, &client, &request).await) }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_DEADLINE)
        .max_buf_size(WRITE_BUFFER);
    let connection = builder.serve_connection(TokioIo::new(io), service);
    let mut connection = std::pin::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => Some(result.map_err(ConnectionError::from)),
        () = waiting.evict.notified() => Some(Err(ConnectionError::Evicted)),
        // A closed channel means the server is gone: close as well.
        _ = stop.wait_for(|stop| *stop) => None,
        () = tokio::time::sleep(MAX_CONNECTION_AGE) => None,
    };
    let result = match result {
        Some(result) => result,
        None => {
            connection.as_mut().graceful_shutdown();
            match tokio::time::timeout(SHUTDOWN_GRACE, connection).await {
                Ok(result) => result.map_err(ConnectionError::from),
                Err(_) => Err(ConnectionError::Stalled(SHUTDOWN_GRACE)),
            }
        }
    };
    waiting.close();
    result
}

fn log_task_end(done: Result<(), tokio::task::JoinError>) {
    if let Err(error) = done {
        if error.is_panic() {
            tracing::error!(%error, "an HTTP connection task panicked");
        }
    }
}

/// The routes of the endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Metrics,
    Healthz,
    Readyz,
    Targets,
    Latest(String),
    /// `POST /api/v1/targets/{name}/trace`.
    Trace(String),
    Traces,
    Report,
    WhatIf,
    Dependencies,
}

impl Route {
    fn parse(path: &str) -> Option<Self> {
        match path {
            "/metrics" => Some(Self::Metrics),
            "/healthz" => Some(Self::Healthz),
            "/readyz" => Some(Self::Readyz),
            "/api/v1/targets" => Some(Self::Targets),
            "/api/v1/traces" => Some(Self::Traces),
            "/api/v1/whatif" => Some(Self::WhatIf),
            "/api/v1/dependencies" => Some(Self::Dependencies),
            "/" | "/report" => Some(Self::Report),
            _ => {
                // Target names are `[A-Za-z0-9_.-]+`, so they need no
                // percent-decoding; an encoded name matches nothing.
                let rest = path.strip_prefix("/api/v1/targets/")?;
                let (name, route): (&str, fn(String) -> Self) =
                    if let Some(name) = rest.strip_suffix("/latest") {
                        (name, Self::Latest)
                    } else {
                        (rest.strip_suffix("/trace")?, Self::Trace)
                    };
                (!name.is_empty() && !name.contains('/')).then(|| route(name.to_string()))
            }
        }
    }

    /// The admission share of this route.
    fn share(&self) -> Share {
        match self {
            Self::Metrics | Self::Healthz | Self::Readyz => Share::Monitoring,
            Self::Targets
            | Self::Latest(_)
            | Self::Trace(_)
            | Self::Traces
            | Self::Report
            | Self::WhatIf
            | Self::Dependencies => Share::Api,
        }
    }

    /// The method the route answers.
    fn method(&self) -> Method {
        match self {
            Self::Trace(_) => Method::POST,
            _ => Method::GET,
        }
    }

    /// The answer, from the view. May block.
    fn answer<S: StateView>(self, view: &S) -> Response<Full<Bytes>> {
        match self {
            Self::Dependencies => match view.dependencies() {
                Some(overview) => reply(StatusCode::OK, JSON, overview.to_string()),
                None => json_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "no dependency overview yet: it is made from the first traces, within seconds of them",
                ),
            },
            Self::Metrics => match view.metrics() {
                Ok(text) => reply(StatusCode::OK, METRICS_CONTENT_TYPE, text),
                Err(error) => {
                    tracing::error!(%error, "rendering metrics failed");
                    reply(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        TEXT,
                        format!("rendering metrics failed: {error}\n"),
                    )
                }
            },
            Self::Healthz => reply(StatusCode::OK, TEXT, "ok"),
            Self::Readyz => {
                if view.ready() {
                    reply(StatusCode::OK, TEXT, "ready")
                } else {
                    reply(StatusCode::SERVICE_UNAVAILABLE, TEXT, "not ready")
                }
            }
            Self::Targets => json(StatusCode::OK, &view.targets()),
            Self::Latest(name) => match view.latest(&name) {
                Some(records) => json(StatusCode::OK, &records),
                // Configured, but no trace of it has finished yet.
                None if view.is_target(&name) => {
                    let mut response = Response::new(Full::new(Bytes::new()));
                    *response.status_mut() = StatusCode::NO_CONTENT;
                    response
                }
                None => json_error(StatusCode::NOT_FOUND, &format!("no target named `{name}`")),
            },
            // Answered by `answer` (on a history reader, with its
            // parameters, or by the tracer); never here.
            Self::Traces | Self::Report | Self::WhatIf | Self::Trace(_) => {
                reply(StatusCode::INTERNAL_SERVER_ERROR, TEXT, "internal error")
            }
        }
    }
}

/// The answer to `request`, with the place it was admitted to: held until
/// the body is finished or dropped; credentials are checked once admitted,
/// and the web configuration's headers go on every answer.
async fn respond<S: StateView>(
    view: Arc<S>,
    client: &Client,
    request: &Request<Incoming>,
) -> Response<Admitted> {
    let route = Route::parse(request.uri().path());
    let share = match &route {
        Some(route) if request.method() == route.method() => route.share(),
        _ => Share::Free,
    };
    // The latest settings (a reload applies at once to credentials).
    let web = Arc::clone(&client.web.borrow());
    let (pass, admitted) = client.shares.admit(share, client.peer, &client.waiting);
    let content = match admitted {
        Err(refusal) => refused(refusal).map(Either::Left),
        Ok(()) => {
            let verdict = match &web.auth {
                Some(auth) => auth.check(request.headers().get(AUTHORIZATION)).await,
                None => AuthVerdict::Allowed,
            };
            match verdict {
                AuthVerdict::Allowed => answer(view, route, request, client).await,
                AuthVerdict::Denied => unauthorized().map(Either::Left),
                AuthVerdict::Busy => refused(Refusal::Busy).map(Either::Left),
            }
        }
    };
    let mut response = content.map(|content| Admitted {
        content,
        _pass: pass,
    });
    for (name, value) in &web.headers {
        response.headers_mut().insert(name.clone(), value.clone());
    }
    response
}

/// 401 with a `Basic` challenge.
fn unauthorized() -> Response<Full<Bytes>> {
    let mut response = reply(StatusCode::UNAUTHORIZED, TEXT, "Unauthorized\n");
    response.headers_mut().insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"transitwatch\""),
    );
    response
}

/// A refusal: 503 (or 429 for the per-client limit) with `Retry-After`, and
/// the connection closed after it.
fn refused(refusal: Refusal) -> Response<Full<Bytes>> {
    let (status, why) = match refusal {
        Refusal::Busy => (StatusCode::SERVICE_UNAVAILABLE, "busy, try again"),
        Refusal::ClientBusy => (
            StatusCode::TOO_MANY_REQUESTS,
            "too many requests from this address at once",
        ),
        Refusal::Evicted => (StatusCode::SERVICE_UNAVAILABLE, "closed to make room"),
    };
    let mut response = reply(status, TEXT, why);
    let headers = response.headers_mut();
    headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
    headers.insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

async fn answer<S: StateView>(
    view: Arc<S>,
    route: Option<Route>,
    request: &Request<Incoming>,
    client: &Client,
) -> Response<Content> {
    let readers = Arc::clone(&client.readers);
    let Some(route) = route else {
        return reply(StatusCode::NOT_FOUND, TEXT, "not found").map(Either::Left);
    };
    if request.method() != route.method() {
        let mut response = reply(StatusCode::METHOD_NOT_ALLOWED, TEXT, "method not allowed");
        let allow = if route.method() == Method::POST {
            "POST"
        } else {
            "GET"
        };
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static(allow));
        return response.map(Either::Left);
    }
    if let Route::Trace(name) = route {
        return trace_now(client, &name).await.map(Either::Left);
    }
    if route == Route::Healthz {
        // Liveness must not depend on the view or the blocking pool.
        return route.answer(&*view).map(Either::Left);
    }
    if route == Route::Traces {
        return match traces_query(request.uri().query(), unix_now()) {
            Ok(query) => stream_traces(view, query, readers).await,
            Err(why) => json_error(StatusCode::BAD_REQUEST, &why.to_string()).map(Either::Left),
        };
    }
    if route == Route::Report {
        return match report_query(request.uri().query(), unix_now()) {
            Ok((period, format)) => report(view, period, format, readers).await,
            Err(why) => json_error(StatusCode::BAD_REQUEST, &why.to_string()).map(Either::Left),
        };
    }
    if route == Route::WhatIf {
        return match whatif_query(request.uri().query()) {
            Ok(failure) => what_if(view, failure).await.map(Either::Left),
            Err(why) => json_error(StatusCode::BAD_REQUEST, &why.to_string()).map(Either::Left),
        };
    }
    match tokio::task::spawn_blocking(move || route.answer(&*view)).await {
        Ok(response) => response.map(Either::Left),
        Err(error) => {
            tracing::error!(%error, "an HTTP handler failed");
            reply(StatusCode::INTERNAL_SERVER_ERROR, TEXT, "internal error").map(Either::Left)
        }
    }
}

/// `POST /api/v1/targets/{name}/trace`: 404 for an unknown name (no
/// token spent), 429 over the limits, else the tracer's records.
async fn trace_now(client: &Client, name: &str) -> Response<Full<Bytes>> {
    let Some(tracer) = &client.tracer else {
        return json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "this endpoint runs no traces on demand",
        );
    };
    if !tracer.knows(name) {
        return json_error(StatusCode::NOT_FOUND, &format!("no target named `{name}`"));
    }
    let _admitted = match client.limiter.admit(name) {
        Ok(admitted) => admitted,
        Err(limited) => {
            let mut response = json_error(StatusCode::TOO_MANY_REQUESTS, limited.message());
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(limited.retry_after()));
            return response;
        }
    };
    match tokio::time::timeout(ON_DEMAND_TIMEOUT, tracer.trace(name)).await {
        Ok(Ok(records)) => match serde_json::to_value(&records) {
            Ok(value) => json(StatusCode::OK, &value),
            Err(error) => {
                tracing::error!(%error, "encoding trace records failed");
                reply(StatusCode::INTERNAL_SERVER_ERROR, TEXT, "internal error")
            }
        },
        Ok(Err(why)) => {
            let status = match why {
                OnDemandError::UnknownTarget(_) => StatusCode::NOT_FOUND,
                OnDemandError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
                OnDemandError::Failed(_) => StatusCode::BAD_GATEWAY,
            };
            json_error(status, &why.to_string())
        }
        Err(_) => json_error(
            StatusCode::GATEWAY_TIMEOUT,
            &format!("the trace did not finish within {ON_DEMAND_TIMEOUT:?}"),
        ),
    }
}

/// A response body and the admission place it holds.
pub struct Admitted {
    content: Content,
    _pass: Pass,
}

impl Body for Admitted {
    type Data = Bytes;
    type Error = <Content as Body>::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.content).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.content.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.content.size_hint()
    }
}

/// Why a query string of `/api/v1/traces` is refused (answered 400 with
/// this text).
#[derive(Debug, thiserror::Error)]
enum QueryError {
    #[error("parameter `{0}`: invalid percent-encoding")]
    Encoding(String),
    #[error("parameter `{0}` is given more than once")]
    Repeated(String),
    #[error("parameter `{name}`: {source}")]
    Time {
        name: &'static str,
        source: InvalidTime,
    },
    #[error("parameter `target` is empty")]
    EmptyTarget,
    #[error("parameter `limit`: `{0}` is not a whole number")]
    Limit(String),
    #[error("unknown parameter `{0}` (expected since, until, target or limit; /report takes since, until and format)")]
    Unknown(String),
    #[error("parameter `format`: `{0}` is not a report format (expected html, md or json)")]
    Format(String),
    #[error("give exactly one of the parameters `country`, `asn` or `org` (e.g. /api/v1/whatif?country=ZA)")]
    OneFailure,
    #[error("parameter `{name}`: {source}")]
    Failure {
        name: &'static str,
        source: InvalidFailure,
    },
    #[error("unknown parameter `{0}` (/api/v1/whatif takes one of country, asn or org)")]
    UnknownWhatIf(String),
}

/// The failure `/api/v1/whatif` asks about: exactly one of `country`,
/// `asn` and `org`.
fn whatif_query(raw: Option<&str>) -> Result<Failure, QueryError> {
    let mut found: Option<Failure> = None;
    let mut seen = Vec::new();
    for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(value).ok_or_else(|| QueryError::Encoding(key.to_string()))?;
        if seen.contains(&key) {
            return Err(QueryError::Repeated(key.to_string()));
        }
        seen.push(key);
        let (name, parsed) = match key {
            "country" => ("country", Failure::country(&value)),
            "asn" => ("asn", Failure::asn(&value)),
            "org" => ("org", Failure::org(&value)),
            _ => return Err(QueryError::UnknownWhatIf(key.to_string())),
        };
        let failure = parsed.map_err(|source| QueryError::Failure { name, source })?;
        if found.is_some() {
            return Err(QueryError::OneFailure);
        }
        found = Some(failure);
    }
    found.ok_or(QueryError::OneFailure)
}

/// `/api/v1/whatif`: the answer from the view's latest records, made on
/// the blocking pool; 503 when the view keeps none.
async fn what_if<S: StateView>(view: Arc<S>, failure: Failure) -> Response<Full<Bytes>> {
    let made = tokio::task::spawn_blocking(move || {
        let mut assessment = Assessment::new(failure, crate::units::Timestamp::now())
            .with_operators(view.operators());
        view.each_latest(&mut |key, record| assessment.add(key, record, None))?;
        Ok::<_, ViewError>(assessment.finish())
    })
    .await;
    match made {
        Ok(Ok(answer)) => match serde_json::to_vec(&answer) {
            Ok(body) => reply(StatusCode::OK, JSON, body),
            Err(error) => {
                tracing::error!(%error, "encoding the whatif answer failed");
                reply(StatusCode::INTERNAL_SERVER_ERROR, TEXT, "internal error")
            }
        },
        Ok(Err(why)) => json_error(StatusCode::SERVICE_UNAVAILABLE, &why.to_string()),
        Err(error) => {
            tracing::error!(%error, "an HTTP handler failed");
            reply(StatusCode::INTERNAL_SERVER_ERROR, TEXT, "internal error")
        }
    }
}

/// The selection of `/api/v1/traces` from its query string.
fn traces_query(raw: Option<&str>, now_unix: i64) -> Result<Query, QueryError> {
    let mut query = Query::default();
    let mut seen = Vec::new();
    let time = |name, value: &str| {
        parse_time(value, now_unix).map_err(|source| QueryError::Time { name, source })
    };
    for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(value).ok_or_else(|| QueryError::Encoding(key.to_string()))?;
        if seen.contains(&key) {
            return Err(QueryError::Repeated(key.to_string()));
        }
        seen.push(key);
        match key {
            "since" => query.since = Some(time("since", &value)?),
            "until" => query.until = Some(time("until", &value)?),
            "target" if value.is_empty() => return Err(QueryError::EmptyTarget),
            "target" => query.target = Some(value),
            "limit" => {
                query.limit = Some(value.parse().map_err(|_| QueryError::Limit(value))?);
            }
            _ => return Err(QueryError::Unknown(key.to_string())),
        }
    }
    Ok(query)
}

/// The period and format of `/report` from its query string: `since`,
/// `until` (the notation of `/api/v1/traces`) and `format` (html, md,
/// json; default html).
fn report_query(raw: Option<&str>, now_unix: i64) -> Result<(Query, ReportFormat), QueryError> {
    let mut format = ReportFormat::Html;
    let mut rest = Vec::new();
    for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("format", value)) => {
                format = value
                    .parse()
                    .map_err(|_| QueryError::Format(value.to_string()))?;
            }
            Some(("target" | "limit", _)) => {
                return Err(QueryError::Unknown(
                    pair.split('=').next().unwrap_or("").to_string(),
                ));
            }
            _ => rest.push(pair),
        }
    }
    let period = traces_query(Some(&rest.join("&")), now_unix)?;
    Ok((period, format))
}

/// `/report`: the report made on a history reader (so at most
/// [`STORE_READS`] are made at once), 503 when no history can be read.
async fn report<S: StateView>(
    view: Arc<S>,
    period: Query,
    format: ReportFormat,
    readers: Arc<HistoryReaders>,
) -> Response<Content> {
    let content_type = match format {
        ReportFormat::Html => "text/html; charset=utf-8",
        ReportFormat::Md => "text/markdown; charset=utf-8",
        ReportFormat::Json => JSON,
    };
    match readers.run(move || view.report(&period, format)).await {
        Ok(Ok(text)) => reply(StatusCode::OK, content_type, text).map(Either::Left),
        Ok(Err(why)) => {
            json_error(StatusCode::SERVICE_UNAVAILABLE, &why.to_string()).map(Either::Left)
        }
        Err(_) => {
            reply(StatusCode::INTERNAL_SERVER_ERROR, TEXT, "internal error").map(Either::Left)
        }
    }
}

/// `%XX` decoded; `None` for a broken escape or a result that is not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `/api/v1/traces`: open the history on a history reader, answer 503 if
/// that fails, else stream its lines ([`TraceBody`]).
async fn stream_traces<S: StateView>(
    view: Arc<S>,
    query: Query,
    readers: Arc<HistoryReaders>,
) -> Response<Content> {
    match readers.run(move || view.traces(&query)).await {
        Ok(Ok(lines)) => {
            let mut response = Response::new(Either::Right(TraceBody::new(lines, readers)));
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(NDJSON));
            response
        }
        Ok(Err(why)) => {
            json_error(StatusCode::SERVICE_UNAVAILABLE, &why.to_string()).map(Either::Left)
        }
        Err(_) => {
            reply(StatusCode::INTERNAL_SERVER_ERROR, TEXT, "internal error").map(Either::Left)
        }
    }
}

fn reply(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn json_error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    json(status, &serde_json::json!({ "error": message }))
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response<Full<Bytes>> {
    match serde_json::to_vec(value) {
        Ok(body) => reply(status, JSON, body),
        Err(error) => {
            tracing::error!(%error, "encoding a JSON answer failed");
            reply(StatusCode::INTERNAL_SERVER_ERROR, TEXT, "internal error")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_parse() {
        assert_eq!(Route::parse("/metrics"), Some(Route::Metrics));
        assert_eq!(
            Route::parse("/api/v1/targets/gov-portal/latest"),
            Some(Route::Latest("gov-portal".to_string()))
        );
        assert_eq!(Route::parse("/api/v1/targets//latest"), None);
        assert_eq!(Route::parse("/api/v1/targets/a/b/latest"), None);
        assert_eq!(Route::parse("/metrics/"), None);
        assert_eq!(Route::parse("/"), Some(Route::Report));
        assert_eq!(Route::parse("/report"), Some(Route::Report));
        assert_eq!(Route::parse("/report/"), None);
        assert_eq!(Route::parse("/api/v1/traces"), Some(Route::Traces));
        assert_eq!(Route::parse("/api/v1/whatif"), Some(Route::WhatIf));
        assert_eq!(Route::parse("/api/v1/whatif/"), None);
        assert_eq!(Route::WhatIf.share(), Share::Api);
        let trace = Route::parse("/api/v1/targets/gov-portal/trace").unwrap();
        assert_eq!(trace, Route::Trace("gov-portal".to_string()));
        assert_eq!((trace.method(), trace.share()), (Method::POST, Share::Api));
        assert_eq!(Route::parse("/api/v1/targets//trace"), None);
        assert_eq!(Route::parse("/api/v1/targets/a/b/trace"), None);
        assert_eq!(Route::parse("/api/v1/targets/gov-portal/traces"), None);
    }

    #[test]
    fn whatif_queries_name_one_failure_or_say_why_not() {
        assert_eq!(
            whatif_query(Some("country=za")).unwrap(),
            Failure::Country("ZA".parse().unwrap())
        );
        assert_eq!(
            whatif_query(Some("asn=AS64510")).unwrap(),
            Failure::Asn(64510)
        );
        assert_eq!(
            whatif_query(Some("org=Cloudy%20Transit")).unwrap(),
            Failure::Org("Cloudy Transit".into())
        );
        for (bad, why) in [
            (
                None,
                "exactly one of the parameters `country`, `asn` or `org`",
            ),
            (Some(""), "exactly one"),
            (Some("country=ZA&asn=64510"), "exactly one"),
            (
                Some("country=XX"),
                "parameter `country`: `XX` is not an assigned ISO 3166-1",
            ),
            (
                Some("country=ZA&country=IE"),
                "`country` is given more than once",
            ),
            (
                Some("asn=sixty"),
                "parameter `asn`: `sixty` is not an AS number",
            ),
            (Some("org="), "parameter `org`: the organisation is empty"),
            (Some("org=%zz"), "parameter `org`: invalid percent-encoding"),
            (Some("cc=ZA"), "unknown parameter `cc`"),
        ] {
            let err = whatif_query(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
    }

    #[test]
    fn trace_queries_parse_or_say_why_not() {
        let now = 1_800_000_000;
        let q = traces_query(
            Some("since=2026-11-26T14%3A00%3A00+02:00&target=gov-portal%2Fipv4&limit=5"),
            now,
        )
        .unwrap();
        assert_eq!(q.since, Some(1_795_694_400));
        assert_eq!(q.target.as_deref(), Some("gov-portal/ipv4"));
        assert_eq!(q.limit, Some(5));
        assert_eq!(
            traces_query(Some("until=1h"), now).unwrap().until,
            Some(now - 3600)
        );
        assert_eq!(traces_query(None, now).unwrap(), Query::default());
        for (bad, why) in [
            ("since=yesterday", "parameter `since`"),
            ("limit=-1", "not a whole number"),
            ("target=", "empty"),
            ("limit=1&limit=2", "more than once"),
            ("from=1h", "unknown parameter `from`"),
            ("target=%zz", "percent-encoding"),
        ] {
            let err = traces_query(Some(bad), now).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}

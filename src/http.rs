//! The daemon's HTTP endpoint: `/metrics` for Prometheus, `/healthz` and
//! `/readyz` for supervisors, and a small read-only JSON API.
//!
//! | route | answer |
//! |---|---|
//! | `GET /metrics` | the exposition, `text/plain; version=0.0.4; charset=utf-8` |
//! | `GET /healthz` | 200 `ok` while the process serves at all |
//! | `GET /readyz` | 200 `ready` once the first cycle is done, else 503 `not ready` |
//! | `GET /api/v1/targets` | JSON, as [`StateView::targets`] gives it |
//! | `GET /api/v1/targets/{name}/latest` | JSON array of the target's latest records; 404 JSON error for an unknown name |
//! | `GET /api/v1/traces?since=&until=&target=&limit=` | stored trace records as JSON Lines (`application/x-ndjson`), streamed; 400 JSON error for a bad parameter, 503 when no history can be read |
//!
//! `/api/v1/traces` takes the export's notation: `since` and `until` are RFC
//! 3339 times, dates or durations before now (`24h`), `until` exclusive;
//! `target` a target name or path key; `limit` a count. Values are
//! percent-decoded (a `+` stays a `+`, as in `+02:00`). The body is
//! produced as it is sent, a chunk at a time, by a reader on the blocking
//! pool, so it never holds the whole history; should the store fail midway,
//! the connection is closed without the final chunk, so the client sees a
//! truncated transfer rather than a complete-looking answer. A stream is
//! bound by the connection age limit like any response (see below): for
//! bulk history use `transitwatch export`, or page with `since` and
//! `limit`.
//!
//! Other paths answer 404; other methods on these paths 405 with
//! `Allow: GET`. The endpoint only reads a [`StateView`]; no request can
//! start a probe.
//!
//! Built on hyper 1 and hyper-util rather than axum: six fixed routes need
//! no router or extractors, and the properties that matter here live in the
//! accept loop, which axum's `serve` hides — a cap on open connections,
//! per-connection time limits, and draining on shutdown. Owning that loop
//! with hyper directly costs a few dozen lines and keeps tower and axum out
//! of the dependency tree.
//!
//! Connections are HTTP/1.1 with keep-alive. Each one is closed when its
//! client sends no complete request head for [`HEADER_READ_TIMEOUT`] (idle
//! keep-alive included), and asked to close after [`MAX_CONNECTION_AGE`]; a
//! client that then still does not finish within [`SHUTDOWN_GRACE`] is cut
//! off. So a stalled client can hold one of the [`MAX_CONNECTIONS`] slots for
//! a bounded time only.

use crate::export::ExportError;
use crate::metrics::MetricsError;
use crate::store::{parse_time, InvalidTime, Query, StoreError};
use http_body_util::{Either, Full};
use hyper::body::{Body, Bytes, Frame, Incoming};
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

/// Most connections served at once; further clients wait in the kernel's
/// accept backlog until one closes.
pub const MAX_CONNECTIONS: usize = 64;
/// Longest a client may take to send a request head, and longest an idle
/// keep-alive connection is kept open.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection is asked to close (after its current response) once it is
/// this old; clients such as Prometheus simply reconnect.
pub const MAX_CONNECTION_AGE: Duration = Duration::from_secs(60);
/// How long a connection asked to close (shutdown or age) may take to finish
/// its response before it is cut off.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop
/// does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

const TEXT: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json";
/// The `Content-Type` of `/api/v1/traces`.
pub const NDJSON: &str = "application/x-ndjson";
/// Bytes of JSON lines gathered into one chunk of a streamed body.
const STREAM_CHUNK: usize = 64 * 1024;
/// Chunks a stream reader may run ahead of a slow client.
const STREAM_AHEAD: usize = 4;

/// Stored trace records, each one JSON line with its `\n`, read as they
/// are asked for.
pub type TraceLines = Box<dyn Iterator<Item = Result<Vec<u8>, ExportError>> + Send>;

/// Every response body: a complete one, or a stream.
type ResponseBody = Either<Full<Bytes>, ChannelBody>;
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
    /// target has that name.
    fn latest(&self, target: &str) -> Option<serde_json::Value>;
    /// The stored trace records `query` selects, one JSON line each (the
    /// `jsonl` export format), for `/api/v1/traces`. Called on the blocking
    /// pool, and the lines are read there as the body is sent; an `Err`
    /// line ends the stream as broken.
    ///
    /// # Errors
    ///
    /// Why no history can be read (answered 503 with that text). By
    /// default none is kept.
    fn traces(&self, query: &Query) -> Result<TraceLines, ViewError> {
        let _ = query;
        Err(ViewError::NoHistory)
    }
}

/// Serves HTTP on `listener` until `shutdown` completes, then stops
/// accepting, lets open connections finish their current response (at most
/// [`SHUTDOWN_GRACE`]) and returns.
///
/// A failing connection or `accept` is logged and the loop goes on; nothing
/// a client does ends the server.
///
/// # Errors
///
/// None today; the `io::Result` leaves room for listener-level failures.
pub async fn serve<S: StateView>(
    listener: TcpListener,
    view: Arc<S>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Why a semaphore: the process's file descriptors are shared with
    // trippy-core, whose select()-based sockets must stay below
    // FD_SETSIZE; every accepted connection is one more descriptor. A permit
    // is taken *before* accepting, so waiting clients sit in the kernel
    // backlog without costing a descriptor here.
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    // Why a watch channel: one send tells every connection task at once to
    // finish its current response and close; tasks subscribe before the send.
    let (stop, _) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "HTTP endpoint listening");
    }

    loop {
        while let Some(done) = connections.try_join_next() {
            log_task_end(done);
        }
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                // The semaphore is never closed; stop serving if it were.
                Err(_) => break,
            },
        };
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
        let view = Arc::clone(&view);
        let stop = stop.subscribe();
        connections.spawn(async move {
            // Held until the connection is closed.
            let _permit = permit;
            if let Err(error) = serve_connection(stream, view, stop).await {
                tracing::debug!(%peer, %error, "HTTP connection ended with an error");
            }
        });
    }

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

/// Why one connection ended badly (logged only).
#[derive(Debug, thiserror::Error)]
enum ConnectionError {
    #[error(transparent)]
    Http(#[from] hyper::Error),
    #[error("the client did not finish within {0:?} of being asked to close")]
    Stalled(Duration),
}

async fn serve_connection<S: StateView>(
    stream: TcpStream,
    view: Arc<S>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), ConnectionError> {
    let service = service_fn(move |request: Request<Incoming>| {
        let view = Arc::clone(&view);
        async move { Ok::<_, Infallible>(respond(view, &request).await) }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => return Ok(result?),
        // A closed channel means the server is gone: close as well.
        _ = stop.wait_for(|stop| *stop) => {}
        () = tokio::time::sleep(MAX_CONNECTION_AGE) => {}
    }
    connection.as_mut().graceful_shutdown();
    match tokio::time::timeout(SHUTDOWN_GRACE, connection).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(ConnectionError::Stalled(SHUTDOWN_GRACE)),
    }
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
    Traces,
}

impl Route {
    fn parse(path: &str) -> Option<Self> {
        match path {
            "/metrics" => Some(Self::Metrics),
            "/healthz" => Some(Self::Healthz),
            "/readyz" => Some(Self::Readyz),
            "/api/v1/targets" => Some(Self::Targets),
            "/api/v1/traces" => Some(Self::Traces),
            _ => {
                // Target names are `[A-Za-z0-9_.-]+`, so they need no
                // percent-decoding; an encoded name matches nothing.
                let name = path
                    .strip_prefix("/api/v1/targets/")?
                    .strip_suffix("/latest")?;
                (!name.is_empty() && !name.contains('/')).then(|| Self::Latest(name.to_string()))
            }
        }
    }

    /// The answer, from the view. May block.
    fn answer<S: StateView>(self, view: &S) -> Response<Full<Bytes>> {
        match self {
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
                None => json_error(StatusCode::NOT_FOUND, &format!("no target named `{name}`")),
            },
            // Streamed by `respond`; never answered whole.
            Self::Traces => reply(StatusCode::INTERNAL_SERVER_ERROR, TEXT, "internal error"),
        }
    }
}

async fn respond<S: StateView>(
    view: Arc<S>,
    request: &Request<Incoming>,
) -> Response<ResponseBody> {
    let Some(route) = Route::parse(request.uri().path()) else {
        return reply(StatusCode::NOT_FOUND, TEXT, "not found").map(Either::Left);
    };
    if request.method() != Method::GET {
        let mut response = reply(StatusCode::METHOD_NOT_ALLOWED, TEXT, "method not allowed");
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET"));
        return response.map(Either::Left);
    }
    if route == Route::Healthz {
        // Liveness must not depend on the view or the blocking pool.
        return route.answer(&*view).map(Either::Left);
    }
    if route == Route::Traces {
        return match traces_query(request.uri().query(), unix_now()) {
            Ok(query) => stream_traces(view, query).await,
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
    #[error("unknown parameter `{0}` (expected since, until, target or limit)")]
    Unknown(String),
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

/// `/api/v1/traces`: open the history on the blocking pool, answer 503 if
/// that fails, else stream its lines from there.
async fn stream_traces<S: StateView>(view: Arc<S>, query: Query) -> Response<ResponseBody> {
    // Why a oneshot: the reader decides between 503 and a stream before any
    // byte is sent; the response head waits for that decision.
    let (opened_tx, opened) = tokio::sync::oneshot::channel::<Result<(), ViewError>>();
    // Why bounded: a slow client holds the reader back (back-pressure)
    // instead of the server buffering the history in memory.
    let (chunks_tx, chunks) = tokio::sync::mpsc::channel(STREAM_AHEAD);
    tokio::task::spawn_blocking(move || match view.traces(&query) {
        Err(why) => {
            let _ = opened_tx.send(Err(why));
        }
        Ok(lines) => {
            let _ = opened_tx.send(Ok(()));
            pump(lines, &chunks_tx);
        }
    });
    match opened.await {
        Ok(Ok(())) => {
            let mut response = Response::new(Either::Right(ChannelBody { chunks }));
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(NDJSON));
            response
        }
        Ok(Err(why)) => {
            json_error(StatusCode::SERVICE_UNAVAILABLE, &why.to_string()).map(Either::Left)
        }
        Err(_) => {
            tracing::error!("the trace history reader ended without an answer");
            reply(StatusCode::INTERNAL_SERVER_ERROR, TEXT, "internal error").map(Either::Left)
        }
    }
}

/// Move lines into chunks until the lines end, one fails, or the client is
/// gone. Runs on the blocking pool.
fn pump(lines: TraceLines, chunks: &tokio::sync::mpsc::Sender<Result<Bytes, StreamBroken>>) {
    let mut buf = Vec::with_capacity(STREAM_CHUNK);
    for line in lines {
        match line {
            Ok(line) => {
                buf.extend_from_slice(&line);
                if buf.len() >= STREAM_CHUNK
                    && chunks
                        .blocking_send(Ok(Bytes::from(std::mem::take(&mut buf))))
                        .is_err()
                {
                    return;
                }
            }
            Err(why) => {
                tracing::error!(error = %why, "reading the trace history failed; the stream is cut off");
                if !buf.is_empty() {
                    let _ = chunks.blocking_send(Ok(Bytes::from(std::mem::take(&mut buf))));
                }
                let _ = chunks.blocking_send(Err(StreamBroken(why.to_string())));
                return;
            }
        }
    }
    if !buf.is_empty() {
        let _ = chunks.blocking_send(Ok(Bytes::from(buf)));
    }
}

/// A streamed body ended by a failure of its source.
#[derive(Debug, thiserror::Error)]
#[error("the trace history could not be read to the end: {0}")]
pub struct StreamBroken(String);

/// A response body fed chunk by chunk through a channel; it ends when the
/// sender is dropped, and fails (so hyper closes the connection without
/// the final chunk) on an `Err`.
pub struct ChannelBody {
    chunks: tokio::sync::mpsc::Receiver<Result<Bytes, StreamBroken>>,
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = StreamBroken;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, StreamBroken>>> {
        self.chunks
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| c.map(Frame::data)))
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
        assert_eq!(Route::parse("/"), None);
        assert_eq!(Route::parse("/api/v1/traces"), Some(Route::Traces));
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

//! The body of `/api/v1/traces`: stored records pulled as the client reads.
//!
//! The body owns the history reader. Each time hyper asks for the next
//! frame (it does so only once what it holds is written to the socket), one
//! chunk of at most [`STREAM_CHUNK`] bytes of JSON lines (plus the line that
//! crosses the mark) is read, and the reader comes back to the body. No
//! task runs and no thread is held while a client is not reading.
//!
//! Reads run on `HistoryReaders`: [`super::STORE_READS`] threads of their
//! own, whatever the number of streams. So streams share that much CPU and
//! the rest of the machine, monitoring included, keeps the remainder; and
//! few threads allocate for them, so the memory a load of streams used is
//! reused by the next rather than scattered over one allocator arena per
//! blocking-pool thread, where it stays after the load.
//!
//! Memory per stream is bounded: the reader's database connection caches at
//! most [`STREAM_CACHE_KIB`] KiB and decodes [`STREAM_PAGE_ROWS`] records
//! at a time (a 30-hop record is some 15 KB decoded), one chunk of
//! [`STREAM_CHUNK`] bytes is read at a time, and hyper queues at most
//! [`super::WRITE_BUFFER`] bytes for the socket and reads heads into as
//! much: about 0.7 MB at worst, 0.3 MB for typical records. With at most
//! [`super::API_SLOTS`] API requests at once, streams cost at most about
//! 22 MB in all, whatever the number of clients.
//!
//! Should the history fail midway, the body ends with an error, and hyper
//! closes the connection without the final chunk: the client sees a
//! truncated transfer rather than a complete-looking answer.

use super::TraceLines;
use crate::export::ExportError;
use hyper::body::{Body, Bytes, Frame};
use std::future::Future;
use std::pin::Pin;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use tokio::sync::oneshot;

/// Bytes of JSON lines read into one chunk.
pub const STREAM_CHUNK: usize = 8 * 1024;
/// Stored records a stream's reader decodes at once (one query's page).
pub const STREAM_PAGE_ROWS: usize = 32;
/// KiB of database pages a stream's read-only connection may cache.
pub const STREAM_CACHE_KIB: u32 = 128;

/// Work for the history readers.
type Job = Box<dyn FnOnce() + Send>;

/// A fixed set of threads reading the history for every stream.
pub(super) struct HistoryReaders {
    // Why a channel: jobs for the reader threads, taken in order. Each
    // admitted request has at most one job queued (opening its history, or
    // its next chunk), so at most API_SLOTS wait: no bound of its own.
    jobs: mpsc::Sender<Job>,
}

impl HistoryReaders {
    /// Start `threads` readers; they end once this and every body holding it
    /// are dropped.
    pub(super) fn start(threads: usize) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        // std Mutex: a reader holds it only while taking the next job.
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..threads {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("http-history-{n}"))
                .spawn(move || loop {
                    let job = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
                    let Ok(job) = job else { return };
                    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
                        tracing::error!("reading the trace history panicked");
                    }
                })?;
        }
        Ok(Self { jobs })
    }

    /// Run `work` on a reader; its result arrives on the receiver (which
    /// fails if `work` panicked).
    pub(super) fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> oneshot::Receiver<T> {
        // Why a oneshot: one answer per job, awaited by the body or handler.
        let (tx, rx) = oneshot::channel();
        // A failed send (readers gone) drops `tx`: the receiver fails.
        let _ = self.jobs.send(Box::new(move || {
            let _ = tx.send(work());
        }));
        rx
    }
}

/// A chunk read, and whether the lines ended with it or failed.
struct Read {
    lines: TraceLines,
    chunk: Vec<u8>,
    end: End,
}

enum End {
    More,
    Done,
    Failed(ExportError),
}

enum State {
    Idle(TraceLines),
    Reading(oneshot::Receiver<Read>),
    /// The last chunk was sent before this failure is reported.
    Failing(ExportError),
    Done,
}

/// A streamed response body of stored trace records.
pub struct TraceBody {
    state: State,
    readers: Arc<HistoryReaders>,
}

impl TraceBody {
    /// A body of `lines`, read chunk by chunk on `readers`.
    pub(super) fn new(lines: TraceLines, readers: Arc<HistoryReaders>) -> Self {
        Self {
            state: State::Idle(lines),
            readers,
        }
    }
}

/// A streamed body ended by a failure of its source.
#[derive(Debug, thiserror::Error)]
#[error("the trace history could not be read to the end: {0}")]
pub struct StreamBroken(String);

/// Read lines until a chunk is full, they end, or one fails. Runs on a
/// history reader.
fn read_chunk(mut lines: TraceLines) -> Read {
    let mut chunk = Vec::with_capacity(STREAM_CHUNK);
    let end = loop {
        match lines.next() {
            None => break End::Done,
            Some(Ok(line)) => {
                chunk.extend_from_slice(&line);
                if chunk.len() >= STREAM_CHUNK {
                    break End::More;
                }
            }
            Some(Err(why)) => {
                tracing::error!(error = %why, "reading the trace history failed; the stream is cut off");
                break End::Failed(why);
            }
        }
    };
    Read { lines, chunk, end }
}

impl Body for TraceBody {
    type Data = Bytes;
    type Error = StreamBroken;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, StreamBroken>>> {
        loop {
            match std::mem::replace(&mut self.state, State::Done) {
                State::Done => return Poll::Ready(None),
                State::Failing(why) => {
                    return Poll::Ready(Some(Err(StreamBroken(why.to_string()))))
                }
                State::Idle(lines) => {
                    self.state = State::Reading(self.readers.run(move || read_chunk(lines)));
                }
                State::Reading(mut reading) => {
                    let read = match Pin::new(&mut reading).poll(cx) {
                        Poll::Pending => {
                            self.state = State::Reading(reading);
                            return Poll::Pending;
                        }
                        Poll::Ready(read) => read,
                    };
                    let Read { lines, chunk, end } = match read {
                        Ok(read) => read,
                        Err(_) => {
                            return Poll::Ready(Some(Err(StreamBroken(
                                "the reader failed".to_string(),
                            ))));
                        }
                    };
                    self.state = match end {
                        End::More => State::Idle(lines),
                        End::Done => State::Done,
                        End::Failed(why) => State::Failing(why),
                    };
                    if !chunk.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(Bytes::from(chunk)))));
                    }
                }
            }
        }
    }
}

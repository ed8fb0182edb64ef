//! The body of `/api/v1/traces`: stored records pulled as the client reads.
//!
//! The body owns the history reader. Each time hyper asks for the next
//! frame (it does so only once what it holds is written to the socket), one
//! chunk of at most [`STREAM_CHUNK`] bytes of JSON lines (plus the line that
//! crosses the mark) is read on the blocking pool, and the reader comes back
//! to the body. No task runs and no thread is held while a client is not
//! reading. Memory per stream, beyond the reader's own state (one page of
//! decoded records, [`crate::store::PAGE`] rows), is bounded by one chunk
//! being read plus what hyper buffers for writing (`max_buf_size`,
//! [`super::WRITE_BUFFER`]).
//!
//! Should the history fail midway, the body ends with an error, and hyper
//! closes the connection without the final chunk: the client sees a
//! truncated transfer rather than a complete-looking answer.

use super::TraceLines;
use crate::export::ExportError;
use hyper::body::{Body, Bytes, Frame};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::task::JoinHandle;

/// Bytes of JSON lines read into one chunk.
pub const STREAM_CHUNK: usize = 8 * 1024;

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
    Reading(JoinHandle<Read>),
    /// The last chunk was sent before this failure is reported.
    Failing(ExportError),
    Done,
}

/// A streamed response body of stored trace records.
pub struct TraceBody {
    state: State,
}

impl TraceBody {
    pub(super) fn new(lines: TraceLines) -> Self {
        Self {
            state: State::Idle(lines),
        }
    }
}

/// A streamed body ended by a failure of its source.
#[derive(Debug, thiserror::Error)]
#[error("the trace history could not be read to the end: {0}")]
pub struct StreamBroken(String);

/// Read lines until a chunk is full, they end, or one fails. Runs on the
/// blocking pool.
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
                    self.state =
                        State::Reading(tokio::task::spawn_blocking(move || read_chunk(lines)));
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
                        Err(error) => {
                            tracing::error!(%error, "the trace history reader failed");
                            return Poll::Ready(Some(Err(StreamBroken(error.to_string()))));
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

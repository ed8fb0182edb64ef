//! Block-parallel bzip2 decoding: a bzip2 stream is a header, blocks that
//! each decode on their own, and an end-of-stream mark, so the blocks of a
//! RIPE Atlas daily dump (tens of GB) can be decoded on several cores and
//! handed on in order.
//!
//! **Flow.** One thread (the *splitter*) reads the compressed input in
//! chunks and cuts it at the block magic `0x314159265359` and at the
//! end-of-stream magic `0x177245385090`; both are 48 bits and bit-aligned,
//! not byte-aligned. Each piece goes to a small pool of *decoder* threads,
//! and a ticket for its result, in input order, to the [`ParallelBzip2`]
//! reader, which yields the decoded bytes strictly in that order. A stream
//! that ends is followed by the next one (`pbzip2` writes many).
//!
//! **Decoding a piece.** A decoder wraps the piece's bits in a stream of
//! their own: `BZh` + the stream's level, the block's bits shifted to a
//! byte boundary, the end-of-stream magic and, as the combined CRC, the
//! block's own CRC (for a single block the two are equal). The `bzip2`
//! crate's decoder (the libbzip2 algorithm) then checks the block's CRC
//! as it always does. The reader chains the block CRCs into each stream's
//! combined CRC and checks it against the one the stream records.
//!
//! **A magic inside block data.** The 48-bit magics can occur by chance
//! inside compressed data. Such a false cut gives two pieces that both
//! fail to decode (the first lacks its end, the second has no real block
//! header and would have to match a random CRC); the reader then joins the
//! failed piece with the next one and decodes them together, on its own
//! thread (rare). An end-of-stream magic counts only where what follows it
//! is the end of the input or another stream's `BZh` header; otherwise it
//! is data.
//!
//! **Bounds.** Pieces in flight are bounded (see the channels in
//! [`ParallelBzip2::new`]), so memory does not grow with the input; a piece
//! with no boundary within the most compressed bytes a block can take is
//! damage, not a reason to keep reading into memory.
//!
//! **Damage** is a [`Bzip2Error`] saying what is wrong and at which
//! compressed byte, after every byte of the blocks before it has been
//! yielded; nothing of a block that failed its CRC is.

use std::io::{self, Read};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};

/// The block magic (the digits of π in BCD).
const BLOCK_MAGIC: u64 = 0x3141_5926_5359;
/// The end-of-stream magic (the digits of √π).
const EOS_MAGIC: u64 = 0x1772_4538_5090;
const MAGIC_BITS: u64 = 48;
const MAGIC_MASK: u64 = (1 << MAGIC_BITS) - 1;
/// How much compressed input the splitter asks for at a time.
const READ_CHUNK: usize = 1 << 20;

/// The most compressed bytes one block can take at `level` (1-9): a full
/// block of symbols at 20 bits each (the longest Huffman code the decoder
/// accepts), plus its tables.
fn max_block_bytes(level: u8) -> usize {
    usize::from(level) * 100_000 * 20 / 8 + 8192
}

/// What is wrong with bzip2 input.
#[derive(Debug, thiserror::Error)]
pub enum Bzip2Error {
    /// No `BZh1`..`BZh9` header (or no block after it) where a stream must
    /// start.
    #[error("no bzip2 stream starts at compressed byte {offset}")]
    NotBzip2 {
        /// Where the stream should start.
        offset: u64,
    },
    /// Something that is not bzip2 after the last stream.
    #[error("the bytes after the last bzip2 stream (from compressed byte {offset}) are not bzip2")]
    TrailingData {
        /// Where they start.
        offset: u64,
    },
    /// The input ends before its stream's end-of-stream mark.
    #[error(
        "the input ends in the middle of bzip2 stream {stream}, after {offset} compressed bytes \
         (a truncated file?)"
    )]
    Truncated {
        /// The stream (1 is the first).
        stream: u64,
        /// How many compressed bytes there were.
        offset: u64,
    },
    /// A block that does not decode or fails its CRC check.
    #[error("the block of bzip2 stream {stream} at compressed byte {offset} is damaged: {why}")]
    DamagedBlock {
        /// The stream (1 is the first).
        stream: u64,
        /// Where the block starts (the byte holding its first bit).
        offset: u64,
        /// What the decoder said.
        why: &'static str,
    },
    /// No block boundary where one must be.
    #[error(
        "bzip2 stream {stream} is damaged: no block boundary within {limit} compressed bytes \
         of byte {offset}"
    )]
    NoBoundary {
        /// The stream (1 is the first).
        stream: u64,
        /// Where the block that does not end starts.
        offset: u64,
        /// The most a block can take.
        limit: usize,
    },
    /// The blocks decoded, but not to the stream's combined CRC.
    #[error(
        "bzip2 stream {stream} is damaged: its blocks' combined CRC {computed:08x} is not the \
         {stored:08x} it records"
    )]
    StreamCrc {
        /// The stream (1 is the first).
        stream: u64,
        /// What the stream records.
        stored: u32,
        /// What its blocks give.
        computed: u32,
    },
    /// Reading the compressed input failed.
    #[error("reading the compressed input failed: {0}")]
    Read(#[source] io::Error),
    /// A decoding thread ended without an answer (it panicked).
    #[error("a bzip2 decoding thread stopped unexpectedly")]
    WorkerLost,
}

/// Where a piece is and what the reader checks it against.
#[derive(Debug, Clone, Copy)]
struct Place {
    /// The stream, from 0.
    stream: u64,
    /// The compressed byte holding the piece's first bit.
    offset: u64,
    /// The stream's level (`BZh1`..`BZh9`).
    level: u8,
    /// The block's CRC, as its header records it.
    crc: u32,
    /// The stream's combined CRC, when the piece is the stream's last.
    stream_end: Option<u32>,
}

/// Consecutive bits of the compressed input: bits `skip..skip + bits` of
/// `bytes`, starting with a block magic unless a false magic cut them.
#[derive(Debug)]
struct Piece {
    place: Place,
    bytes: Vec<u8>,
    skip: u8,
    bits: u64,
}

impl Piece {
    /// This piece and the one right after it in the input, as one.
    fn join(mut self, next: Self) -> Self {
        let end = u64::from(self.skip) + self.bits;
        debug_assert_eq!(end % 8, u64::from(next.skip));
        // The byte holding this piece's last bits is the next one's first.
        self.bytes
            .truncate(usize::try_from(end / 8).unwrap_or(usize::MAX));
        self.bytes.extend_from_slice(&next.bytes);
        self.bits += next.bits;
        self.place.stream_end = next.place.stream_end;
        self
    }

    /// The piece as a single-block bzip2 stream of its own.
    fn as_stream(&self) -> Vec<u8> {
        let mut w = BitWriter {
            bytes: Vec::with_capacity(self.bytes.len() + 16),
            used: 0,
        };
        w.bytes.extend_from_slice(b"BZh");
        w.bytes.push(b'0' + self.place.level);
        w.append(&self.bytes, self.skip, self.bits);
        w.push(EOS_MAGIC, 48);
        w.push(u64::from(self.place.crc), 32);
        w.bytes
    }

    /// The decoded block; or why it does not decode.
    fn decode(&self) -> Result<Vec<u8>, &'static str> {
        let stream = self.as_stream();
        let mut d = bzip2::Decompress::new(false);
        let mut out = Vec::with_capacity(usize::from(self.place.level) * 100_000 + (1 << 12));
        loop {
            if out.len() == out.capacity() {
                out.reserve(1 << 20);
            }
            let (was_in, was_out) = (d.total_in(), d.total_out());
            let rest = usize::try_from(was_in)
                .ok()
                .and_then(|at| stream.get(at..))
                .unwrap_or(&[]);
            match d.decompress_vec(rest, &mut out) {
                Ok(bzip2::Status::StreamEnd) => {
                    // An end-of-stream mark before the piece's end: the
                    // piece held more than one block's bits.
                    return if d.total_in() == stream.len() as u64 {
                        Ok(out)
                    } else {
                        Err("an end-of-stream mark inside the block")
                    };
                }
                Ok(_) if d.total_in() == was_in && d.total_out() == was_out => {
                    return Err("its data ends early");
                }
                Ok(_) => {}
                Err(bzip2::Error::Data) => {
                    return Err("it does not decode, or fails its CRC check");
                }
                Err(bzip2::Error::DataMagic) => return Err("no block header"),
                Err(_) => return Err("the decoder refused it"),
            }
        }
    }
}

/// Appends bits, most significant first.
struct BitWriter {
    bytes: Vec<u8>,
    /// Bits used in the last byte (0: byte-aligned).
    used: u8,
}

impl BitWriter {
    /// The low `n` bits of `value`.
    fn push(&mut self, value: u64, n: u32) {
        for i in (0..n).rev() {
            if self.used == 0 {
                self.bytes.push(0);
            }
            if let Some(last) = self.bytes.last_mut() {
                *last |= u8::from((value >> i) & 1 == 1) << (7 - self.used);
            }
            self.used = (self.used + 1) % 8;
        }
    }

    /// Bits `skip..skip + bits` of `src`; the writer must be byte-aligned.
    fn append(&mut self, src: &[u8], skip: u8, bits: u64) {
        debug_assert_eq!(self.used, 0);
        let whole = usize::try_from(bits / 8).unwrap_or(usize::MAX);
        if skip == 0 {
            self.bytes
                .extend_from_slice(src.get(..whole).unwrap_or(src));
        } else {
            self.bytes.extend(
                src.windows(2)
                    .take(whole)
                    .map(|w| (w[0] << skip) | (w[1] >> (8 - skip))),
            );
        }
        let rest = (bits % 8) as u32;
        let at = u64::from(skip) + bits - u64::from(rest);
        self.push(bits_at(src, at, rest), rest);
    }
}

/// `n` (at most 64) bits of `bytes` from bit `at`, most significant first;
/// zeros past the end.
fn bits_at(bytes: &[u8], at: u64, n: u32) -> u64 {
    (0..u64::from(n)).fold(0, |acc, i| {
        let bit = at + i;
        let byte = usize::try_from(bit / 8)
            .ok()
            .and_then(|b| bytes.get(b))
            .copied()
            .unwrap_or(0);
        (acc << 1) | u64::from((byte >> (7 - bit % 8)) & 1)
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Magic {
    Block,
    Eos,
}

/// The first bit position `p >= from` where a whole magic (48 bits) of
/// either kind is in `buf`.
fn find_magic(buf: &[u8], from: u64) -> Option<(u64, Magic)> {
    let total = buf.len() as u64 * 8;
    let first = usize::try_from(from / 8).ok()?;
    let tail = buf.len().saturating_sub(7).max(first);
    let check = |j: usize, w: u64| {
        (0..8u64).find_map(|s| {
            let p = j as u64 * 8 + s;
            if p < from || p + MAGIC_BITS > total {
                return None;
            }
            match (w >> (16 - s)) & MAGIC_MASK {
                BLOCK_MAGIC => Some((p, Magic::Block)),
                EOS_MAGIC => Some((p, Magic::Eos)),
                _ => None,
            }
        })
    };
    // Eight bytes at a time while there are eight, then the last few
    // padded with zeros (`check` only takes whole magics).
    let body = buf.get(first..).unwrap_or(&[]);
    body.windows(8)
        .enumerate()
        .find_map(|(i, w)| {
            let w = u64::from_be_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
            check(first + i, w)
        })
        .or_else(|| {
            (tail..buf.len()).find_map(|j| {
                let mut window = [0u8; 8];
                for (k, b) in buf.iter().skip(j).take(8).enumerate() {
                    window[k] = *b;
                }
                check(j, u64::from_be_bytes(window))
            })
        })
}

/// What the splitter hands the reader, in input order.
enum Slot {
    /// A piece, and where its decoder's answer will come.
    Piece {
        place: Place,
        answer: Receiver<Answer>,
    },
    /// The input ended after its last stream.
    End,
    /// The input cannot be split further.
    Failed(Bzip2Error),
}

/// A decoder's answer for one piece.
enum Answer {
    Decoded(Vec<u8>),
    /// The piece, kept so the reader can join it with the next one.
    Undecodable(Piece, &'static str),
}

/// A piece for a decoder, and where to answer.
struct Job {
    piece: Piece,
    answer: SyncSender<Answer>,
}

/// Why the splitter stops early.
enum Halt {
    Failed(Bzip2Error),
    /// The reader was dropped: nobody wants the rest.
    ReaderGone,
}

impl From<Bzip2Error> for Halt {
    fn from(e: Bzip2Error) -> Self {
        Self::Failed(e)
    }
}

/// Reads the compressed input and cuts it into pieces.
struct Splitter<R> {
    input: R,
    /// Unsplit input; `buf[0]` is compressed byte `base`.
    buf: Vec<u8>,
    base: u64,
    eof: bool,
    /// The stream being read, from 0.
    stream: u64,
    /// Compressed bit offsets cut at as if a block magic were there: a
    /// test's stand-in for a magic inside block data.
    false_magics: Vec<u64>,
    work: SyncSender<Job>,
    order: SyncSender<Slot>,
}

impl<R: Read> Splitter<R> {
    fn run(mut self) {
        let last = match self.streams() {
            Ok(()) => Slot::End,
            Err(Halt::Failed(e)) => Slot::Failed(e),
            Err(Halt::ReaderGone) => return,
        };
        // The reader may be gone; then nobody needs it.
        let _ = self.order.send(last);
    }

    fn bits(&self) -> u64 {
        self.buf.len() as u64 * 8
    }

    /// Reads more input; false at its end.
    fn fill(&mut self) -> Result<bool, Bzip2Error> {
        if self.eof {
            return Ok(false);
        }
        let len = self.buf.len();
        self.buf.resize(len + READ_CHUNK, 0);
        loop {
            match self.input.read(&mut self.buf[len..]) {
                Ok(n) => {
                    self.buf.truncate(len + n);
                    self.eof = n == 0;
                    return Ok(n > 0);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.buf.truncate(len);
                    return Err(Bzip2Error::Read(e));
                }
            }
        }
    }

    /// Reads until `bits` bits are buffered; false if the input ends first.
    fn want(&mut self, bits: u64) -> Result<bool, Bzip2Error> {
        while self.bits() < bits {
            if !self.fill()? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn forget(&mut self, bytes: u64) {
        let n = usize::try_from(bytes)
            .unwrap_or(usize::MAX)
            .min(self.buf.len());
        self.buf.drain(..n);
        self.base += n as u64;
    }

    fn truncated(&self) -> Bzip2Error {
        Bzip2Error::Truncated {
            stream: self.stream + 1,
            offset: self.base + self.buf.len() as u64,
        }
    }

    /// Whether a stream header (`BZh1`..`BZh9`) is at byte `at` of `buf`.
    fn header_at(&self, at: u64) -> Option<u8> {
        let at = usize::try_from(at).ok()?;
        match self.buf.get(at..at.checked_add(4)?)? {
            [b'B', b'Z', b'h', level @ b'1'..=b'9'] => Some(level - b'0'),
            _ => None,
        }
    }

    /// Every stream, one after another.
    fn streams(&mut self) -> Result<(), Halt> {
        loop {
            // A stream starts at buf[0].
            self.want(32 + MAGIC_BITS)?;
            if self.buf.is_empty() && self.stream > 0 {
                return Ok(());
            }
            let Some(level) = self.header_at(0) else {
                return Err(if self.stream == 0 {
                    Bzip2Error::NotBzip2 { offset: self.base }
                } else {
                    Bzip2Error::TrailingData { offset: self.base }
                }
                .into());
            };
            if self.bits() < 32 + MAGIC_BITS {
                return Err(self.truncated().into());
            }
            match bits_at(&self.buf, 32, 48) {
                BLOCK_MAGIC => self.blocks(level)?,
                EOS_MAGIC => {
                    // An empty stream: its combined CRC is that of nothing.
                    if !self.want(32 + 80)? {
                        return Err(self.truncated().into());
                    }
                    let stored = bits_at(&self.buf, 80, 32) as u32;
                    if stored != 0 {
                        return Err(Bzip2Error::StreamCrc {
                            stream: self.stream + 1,
                            stored,
                            computed: 0,
                        }
                        .into());
                    }
                    self.forget(14);
                }
                _ => return Err(Bzip2Error::NotBzip2 { offset: self.base }.into()),
            }
            self.stream += 1;
        }
    }

    /// The blocks of a stream whose first block magic is at bit 32; returns
    /// with `buf` at the byte after the stream.
    fn blocks(&mut self, level: u8) -> Result<(), Halt> {
        let mut start: u64 = 32;
        let mut from = start + MAGIC_BITS;
        // The first end-of-stream magic seen in the current piece that is
        // followed by neither the input's end nor another stream: data, or
        // the end of the last stream followed by something else.
        let mut unconfirmed_end: Option<u64> = None;
        loop {
            let found = self.next_boundary(from);
            match found {
                Some((p, Magic::Block)) => {
                    self.send(start, p, None, level)?;
                    self.forget(p / 8);
                    start = p % 8;
                    from = start + MAGIC_BITS;
                    unconfirmed_end = None;
                }
                Some((p, Magic::Eos)) => {
                    // The stream's CRC, padding to a byte, and then the
                    // input's end or the next stream's header.
                    let after = (p + 80).div_ceil(8);
                    self.want(after * 8 + 32)?;
                    let ends = self.header_at(after).is_some()
                        || (self.eof && self.buf.len() as u64 == after);
                    if ends {
                        let stored = bits_at(&self.buf, p + 48, 32) as u32;
                        self.send(start, p, Some(stored), level)?;
                        self.forget(after);
                        return Ok(());
                    }
                    unconfirmed_end.get_or_insert(p);
                    from = p + 1;
                }
                None => {
                    let held = self.buf.len() as u64 - start / 8;
                    let limit = max_block_bytes(level);
                    if held > limit as u64 {
                        return Err(Bzip2Error::NoBoundary {
                            stream: self.stream + 1,
                            offset: self.base + start / 8,
                            limit,
                        }
                        .into());
                    }
                    from = from.max(self.bits().saturating_sub(MAGIC_BITS - 1));
                    if !self.fill()? {
                        return Err(self.at_input_end(start, unconfirmed_end, level));
                    }
                }
            }
        }
    }

    /// The input ended inside a stream: the last stream followed by
    /// something else, or a cut file. Sends what there is of the last
    /// piece (whole blocks in it are still decoded).
    fn at_input_end(&mut self, start: u64, unconfirmed_end: Option<u64>, level: u8) -> Halt {
        let result = match unconfirmed_end {
            Some(p) if p + 80 <= self.bits() => {
                let stored = bits_at(&self.buf, p + 48, 32) as u32;
                self.send(start, p, Some(stored), level)
                    .map(|()| Bzip2Error::TrailingData {
                        offset: self.base + (p + 80).div_ceil(8),
                    })
            }
            _ => {
                let end = self.bits();
                self.send(start, end, None, level)
                    .map(|()| self.truncated())
            }
        };
        match result {
            Ok(e) => Halt::Failed(e),
            Err(halt) => halt,
        }
    }

    /// The first block boundary candidate at or after bit `from`.
    fn next_boundary(&self, from: u64) -> Option<(u64, Magic)> {
        let found = find_magic(&self.buf, from);
        let base = self.base * 8;
        let planted = self
            .false_magics
            .iter()
            .filter_map(|bit| bit.checked_sub(base))
            .find(|p| *p >= from && p + MAGIC_BITS <= self.bits());
        match (found, planted) {
            (Some((p, _)), Some(q)) if q < p => Some((q, Magic::Block)),
            (None, Some(q)) => Some((q, Magic::Block)),
            (found, _) => found,
        }
    }

    /// Sends bits `start..end` of `buf` to be decoded, and its ticket to
    /// the reader.
    fn send(&self, start: u64, end: u64, stream_end: Option<u32>, level: u8) -> Result<(), Halt> {
        let first = usize::try_from(start / 8).unwrap_or(usize::MAX);
        let last = usize::try_from(end.div_ceil(8)).unwrap_or(usize::MAX);
        let bytes = self.buf.get(first..last).unwrap_or(&[]).to_vec();
        let place = Place {
            stream: self.stream,
            offset: self.base + start / 8,
            level,
            crc: bits_at(&self.buf, start + MAGIC_BITS, 32) as u32,
            stream_end,
        };
        let piece = Piece {
            place,
            bytes,
            skip: (start % 8) as u8,
            bits: end.saturating_sub(start),
        };
        // Capacity 1: exactly one answer per piece, so a decoder never
        // waits on it, whatever the reader does.
        let (answer, ticket) = mpsc::sync_channel(1);
        self.order
            .send(Slot::Piece {
                place,
                answer: ticket,
            })
            .map_err(|_| Halt::ReaderGone)?;
        self.work
            .send(Job { piece, answer })
            .map_err(|_| Halt::ReaderGone)
    }
}

/// A decoder thread: pieces in, answers out, until the splitter is done.
fn decode_pieces(jobs: &Mutex<Receiver<Job>>) {
    loop {
        // The lock only shares the one receiver among the decoders (std's
        // channel has a single consumer); it is held while waiting for a
        // piece and let go before decoding it. A decoder that panicked
        // never holds it while decoding, so a poisoned lock is still sound.
        let job = jobs.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(Job { piece, answer }) = job else {
            return;
        };
        let result = match piece.decode() {
            Ok(data) => Answer::Decoded(data),
            Err(why) => Answer::Undecodable(piece, why),
        };
        // The reader may be gone; then nobody needs it.
        let _ = answer.send(result);
    }
}

/// A bzip2 input (one stream or several), decoded block-parallel, as a
/// [`Read`] of its bytes in order.
pub struct ParallelBzip2 {
    tickets: Receiver<Slot>,
    block: Vec<u8>,
    at: usize,
    /// The stream of the last block, and the combined CRC so far.
    stream: Option<u64>,
    crc: u32,
    state: State,
}

enum State {
    Reading,
    Done,
    Failed(String),
}

/// What arrived for the next piece.
enum Arrived {
    Decoded(Place, Vec<u8>),
    Undecodable(Piece, &'static str),
    End,
    Failed(Bzip2Error),
}

impl ParallelBzip2 {
    /// Decodes `input` on `threads` decoder threads (at least one), besides
    /// the one that splits it.
    ///
    /// # Errors
    /// A thread could not be started.
    pub fn new<R: Read + Send + 'static>(input: R, threads: usize) -> io::Result<Self> {
        Self::with_false_magics(input, threads, Vec::new())
    }

    fn with_false_magics<R: Read + Send + 'static>(
        input: R,
        threads: usize,
        false_magics: Vec<u64>,
    ) -> io::Result<Self> {
        let threads = threads.max(1);
        // Pieces waiting for a decoder: one per decoder keeps them all busy
        // while the splitter reads on; more would only hold memory.
        let (work, jobs) = mpsc::sync_channel::<Job>(threads);
        // Tickets the reader has not reached yet: this is the bound on
        // blocks in flight (a decoded block waits in its ticket until the
        // reader takes it). Two per decoder lets the decoders run ahead of
        // a reader that is busy with one block, without the decoded output
        // piling up when the reader is slower than they are.
        let (order, tickets) = mpsc::sync_channel::<Slot>(2 * threads);
        let jobs = Arc::new(Mutex::new(jobs));
        for i in 0..threads {
            let jobs = Arc::clone(&jobs);
            std::thread::Builder::new()
                .name(format!("bzip2-{i}"))
                .spawn(move || decode_pieces(&jobs))?;
        }
        let splitter = Splitter {
            input,
            buf: Vec::new(),
            base: 0,
            eof: false,
            stream: 0,
            false_magics,
            work,
            order,
        };
        std::thread::Builder::new()
            .name("bzip2-split".into())
            .spawn(move || splitter.run())?;
        Ok(Self {
            tickets,
            block: Vec::new(),
            at: 0,
            stream: None,
            crc: 0,
            state: State::Reading,
        })
    }

    fn arrive(&self) -> Arrived {
        match self.tickets.recv() {
            Ok(Slot::Piece { place, answer }) => match answer.recv() {
                Ok(Answer::Decoded(data)) => Arrived::Decoded(place, data),
                Ok(Answer::Undecodable(piece, why)) => Arrived::Undecodable(piece, why),
                Err(_) => Arrived::Failed(Bzip2Error::WorkerLost),
            },
            Ok(Slot::End) => Arrived::End,
            Ok(Slot::Failed(e)) => Arrived::Failed(e),
            Err(_) => Arrived::Failed(Bzip2Error::WorkerLost),
        }
    }

    /// The next block's bytes; `None` after the last.
    fn next_block(&mut self) -> Result<Option<Vec<u8>>, Bzip2Error> {
        match self.arrive() {
            Arrived::Decoded(place, data) => {
                self.account(place)?;
                Ok(Some(data))
            }
            Arrived::Undecodable(piece, why) => self.mend(piece, why).map(Some),
            Arrived::End => Ok(None),
            Arrived::Failed(e) => Err(e),
        }
    }

    /// A piece that did not decode: joined with the pieces after it in its
    /// stream that did not decode either (a false magic cut it), until the
    /// whole decodes; damage when it cannot.
    fn mend(&mut self, mut piece: Piece, mut why: &'static str) -> Result<Vec<u8>, Bzip2Error> {
        let first = piece.place;
        let damaged = |why| Bzip2Error::DamagedBlock {
            stream: first.stream + 1,
            offset: first.offset,
            why,
        };
        loop {
            if piece.place.stream_end.is_some() {
                return Err(damaged(why));
            }
            match self.arrive() {
                Arrived::Undecodable(next, _) if next.place.stream == first.stream => {
                    piece = piece.join(next);
                    if piece.bytes.len() > max_block_bytes(first.level) {
                        return Err(damaged(why));
                    }
                    match piece.decode() {
                        Ok(data) => {
                            self.account(piece.place)?;
                            return Ok(data);
                        }
                        Err(w) => why = w,
                    }
                }
                // Cut inside this block, or unreadable after it.
                Arrived::Failed(e) => return Err(e),
                _ => return Err(damaged(why)),
            }
        }
    }

    /// Chains a decoded block's CRC into its stream's, and checks the
    /// stream's at its end.
    fn account(&mut self, place: Place) -> Result<(), Bzip2Error> {
        if self.stream != Some(place.stream) {
            self.stream = Some(place.stream);
            self.crc = 0;
        }
        self.crc = self.crc.rotate_left(1) ^ place.crc;
        match place.stream_end {
            Some(stored) if stored != self.crc => Err(Bzip2Error::StreamCrc {
                stream: place.stream + 1,
                stored,
                computed: self.crc,
            }),
            _ => Ok(()),
        }
    }
}

impl Read for ParallelBzip2 {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.at < self.block.len() || buf.is_empty() {
                let n = buf.len().min(self.block.len() - self.at);
                buf[..n].copy_from_slice(&self.block[self.at..self.at + n]);
                self.at += n;
                return Ok(n);
            }
            match &self.state {
                State::Reading => {}
                State::Done => return Ok(0),
                State::Failed(why) => {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, why.clone()))
                }
            }
            match self.next_block() {
                Ok(Some(block)) => {
                    self.block = block;
                    self.at = 0;
                }
                Ok(None) => self.state = State::Done,
                Err(e) => {
                    self.state = State::Failed(e.to_string());
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// ~`n` bytes of JSON lines, varied enough to compress like real ones.
    fn json_text(n: usize) -> Vec<u8> {
        let mut rng = crate::test_rng::Rng(7);
        let mut out = Vec::with_capacity(n + 256);
        let mut i = 0u64;
        while out.len() < n {
            let hops: Vec<String> = (0..rng.below(12) + 3)
                .map(|h| {
                    format!(
                        r#"{{"hop":{h},"result":[{{"from":"{}.{}.{}.{}","rtt":{}.{:03}}}]}}"#,
                        rng.below(223) + 1,
                        rng.below(256),
                        rng.below(256),
                        rng.below(256),
                        rng.below(300),
                        rng.below(1000)
                    )
                })
                .collect();
            writeln!(
                out,
                r#"{{"msm_id":{},"prb_id":{},"timestamp":{},"result":[{}]}}"#,
                5000 + rng.below(40),
                rng.below(60_000),
                1_700_000_000 + i,
                hops.join(",")
            )
            .unwrap();
            i += 1;
        }
        out
    }

    fn compress(data: &[u8], level: u32) -> Vec<u8> {
        let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::new(level));
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn serial(bytes: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        bzip2::read::MultiBzDecoder::new(bytes).read_to_end(&mut out)?;
        Ok(out)
    }

    fn parallel_with(
        bytes: &[u8],
        threads: usize,
        false_magics: Vec<u64>,
    ) -> (Vec<u8>, Option<io::Error>) {
        // Small reads, to cross block edges inside a read.
        let mut r = ParallelBzip2::with_false_magics(
            io::Cursor::new(bytes.to_vec()),
            threads,
            false_magics,
        )
        .unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 7777];
        loop {
            match r.read(&mut buf) {
                Ok(0) => return (out, None),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) => return (out, Some(e)),
            }
        }
    }

    fn parallel(bytes: &[u8], threads: usize) -> (Vec<u8>, Option<io::Error>) {
        parallel_with(bytes, threads, Vec::new())
    }

    /// The bit offsets of the block magics of a well-formed stream.
    fn block_starts(bytes: &[u8]) -> Vec<u64> {
        let mut at = 0;
        let mut out = Vec::new();
        while let Some((p, magic)) = find_magic(bytes, at) {
            if magic == Magic::Block {
                out.push(p);
            }
            at = p + 1;
        }
        out
    }

    #[test]
    fn magics_are_found_at_every_bit_offset() {
        for shift in 0..8u32 {
            for magic in [BLOCK_MAGIC, EOS_MAGIC] {
                let mut w = BitWriter {
                    bytes: vec![0xff; 3],
                    used: 0,
                };
                w.push(0, shift);
                w.push(magic, 48);
                w.push(0b1010_1010, 8);
                let want = if magic == BLOCK_MAGIC {
                    Magic::Block
                } else {
                    Magic::Eos
                };
                assert_eq!(
                    find_magic(&w.bytes, 0),
                    Some((24 + u64::from(shift), want)),
                    "shift {shift}"
                );
                assert_eq!(find_magic(&w.bytes, 25 + u64::from(shift)), None);
            }
        }
    }

    #[test]
    fn multi_block_streams_decode_as_the_serial_decoder_does() {
        let text = json_text(1 << 20);
        let bytes = compress(&text, 1);
        assert!(block_starts(&bytes).len() >= 5, "several blocks");
        for threads in [1, 2, 3] {
            let (out, err) = parallel(&bytes, threads);
            assert!(err.is_none(), "{err:?}");
            assert!(out == text, "{threads} threads: the output differs");
        }
        // Level 9, and a level-1 stream read through ones of every kind.
        let (out, err) = parallel(&compress(&text, 9), 2);
        assert!(err.is_none() && out == text);
    }

    #[test]
    fn streams_made_by_the_system_bzip2_decode_as_bzip2_dc_does() {
        let Some(bytes) = system_bzip2(&json_text(1 << 20), "-1") else {
            return;
        };
        let want = std::process::Command::new("bzip2")
            .arg("-dc")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                let mut stdin = child.stdin.take().unwrap();
                let copy = bytes.clone();
                let writer = std::thread::spawn(move || stdin.write_all(&copy));
                let out = child.wait_with_output()?;
                writer.join().unwrap()?;
                Ok(out.stdout)
            })
            .unwrap();
        let (out, err) = parallel(&bytes, 2);
        assert!(err.is_none(), "{err:?}");
        assert!(out == want, "not bzip2 -dc's output");
    }

    /// `data` compressed by the `bzip2` command with `flag`, if there is one.
    fn system_bzip2(data: &[u8], flag: &str) -> Option<Vec<u8>> {
        let mut child = std::process::Command::new("bzip2")
            .args([flag, "-c"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .ok()?;
        let mut stdin = child.stdin.take()?;
        let copy = data.to_vec();
        let writer = std::thread::spawn(move || stdin.write_all(&copy));
        let out = child.wait_with_output().ok()?;
        writer.join().ok()?.ok()?;
        out.status.success().then_some(out.stdout)
    }

    #[test]
    fn concatenated_and_empty_streams_are_read_to_the_end() {
        let text = json_text(600_000);
        let (a, b) = text.split_at(250_000);
        let bytes = [
            compress(a, 1),
            compress(b"", 9),
            compress(b, 2),
            compress(b"", 1),
        ]
        .concat();
        assert_eq!(serial(&bytes).unwrap(), text);
        let (out, err) = parallel(&bytes, 2);
        assert!(err.is_none(), "{err:?}");
        assert!(out == text);
        // An empty stream alone.
        let (out, err) = parallel(&compress(b"", 9), 2);
        assert!(err.is_none() && out.is_empty(), "{err:?}");
    }

    #[test]
    fn a_false_magic_inside_block_data_does_not_change_the_output() {
        let text = json_text(1 << 20);
        let bytes = compress(&text, 1);
        let starts = block_starts(&bytes);
        // Cuts inside blocks: early in one, two in another, one inside
        // the last block (before the end-of-stream mark), at every bit
        // offset within a byte.
        let last = *starts.last().unwrap();
        let false_magics = vec![
            starts[1] + 90,
            starts[2] + 8_003,
            starts[2] + 40_005,
            starts[3] + (starts[4] - starts[3]) / 2 + 3,
            last + 1_001,
        ];
        let (out, err) = parallel_with(&bytes, 2, false_magics);
        assert!(err.is_none(), "{err:?}");
        assert!(out == text, "a false cut changed the output");
    }

    #[test]
    fn a_cut_file_gives_its_whole_blocks_and_says_it_is_cut() {
        let text = json_text(1 << 20);
        let bytes = compress(&text, 1);
        let starts = block_starts(&bytes);
        for cut in [
            bytes.len() - 1,
            bytes.len() - 11,
            bytes.len() * 2 / 3,
            usize::try_from(starts[3] / 8).unwrap() + 1,
            10,
        ] {
            let (out, err) = parallel(&bytes[..cut], 2);
            let err = err.expect("an error").to_string();
            assert!(
                err.contains("the input ends in the middle of bzip2 stream 1"),
                "cut at {cut}: {err}"
            );
            assert!(text.starts_with(&out), "cut at {cut}: not a prefix");
        }
    }

    #[test]
    fn a_damaged_block_is_an_error_naming_it_never_other_bytes() {
        let text = json_text(1 << 20);
        let bytes = compress(&text, 1);
        let starts = block_starts(&bytes);
        let mut damaged = bytes.clone();
        let at = usize::try_from(starts[2] / 8).unwrap() + 5_000;
        damaged[at] ^= 0x10;
        let (out, err) = parallel(&damaged, 2);
        let err = err.expect("an error").to_string();
        assert!(
            err.starts_with(&format!(
                "the block of bzip2 stream 1 at compressed byte {} is damaged: ",
                starts[2] / 8
            )),
            "{err}"
        );
        assert!(text.starts_with(&out), "not a prefix");
        // Whatever byte is hit: an error or the right bytes, never others.
        let mut rng = crate::test_rng::Rng(11);
        for _ in 0..40 {
            let mut damaged = bytes.clone();
            let at = rng.below(bytes.len());
            damaged[at] ^= 1 << rng.below(8);
            let (out, err) = parallel(&damaged, 2);
            assert!(text.starts_with(&out), "byte {at}: not a prefix");
            assert!(err.is_some() || out == text, "byte {at}");
        }
    }

    #[test]
    fn other_data_before_or_after_the_streams_is_an_error() {
        let text = json_text(300_000);
        let bytes = compress(&text, 1);
        let (_, err) = parallel(b"BZh9 but then nothing of the kind", 2);
        assert_eq!(
            err.unwrap().to_string(),
            "no bzip2 stream starts at compressed byte 0"
        );
        let mut trailing = bytes.clone();
        trailing.extend_from_slice(b"garbage after the stream");
        let (out, err) = parallel(&trailing, 2);
        assert_eq!(
            err.unwrap().to_string(),
            format!(
                "the bytes after the last bzip2 stream (from compressed byte {}) are not bzip2",
                bytes.len()
            )
        );
        assert!(out == text);
        // A stream's CRC that does not match its blocks'.
        let mut crc = bytes.clone();
        let n = crc.len();
        crc[n - 2] ^= 0x01;
        let (_, err) = parallel(&crc, 2);
        let err = err.unwrap().to_string();
        assert!(err.contains("combined CRC"), "{err}");
    }
}

//! Importers: traceroutes measured by other tools, turned into [`Trace`]s.
//!
//! Two sources are understood (see [`InputFormat`]):
//!
//! - [`atlas`]: RIPE Atlas traceroute results, as the Atlas API and its
//!   result downloads publish them;
//! - [`scamper`]: scamper `trace` objects, as `scamper -O json` and
//!   `sc_warts2json` write them (M-Lab's traceroute archives included), and
//!   scamper `tracelb` (MDA) records, whose graph of load-balanced paths
//!   [`tracelb`] walks into one trace per path.
//!
//! [`read`] streams its input: either JSON Lines (one record per line) or a
//! single JSON array of records, recognised by `[` as the first non-space
//! byte. A JSON array is split element by element with a small incremental
//! scanner, so memory holds one record at a time whatever the file size.
//!
//! A record (a line, or an element of the array) may take at most
//! [`MAX_RECORD_BYTES`] (64 MiB): a longer one is reported as an error of
//! the line it starts on and skipped without being held in memory (its
//! bytes are read and dropped until its end), and reading goes on. Memory
//! therefore stays bounded whatever the input, a pipe included.
//!
//! One source record gives at most one [`Imported`] trace, except a scamper
//! `tracelb` record, which gives one per path (each naming the record and
//! the path in [`Imported::tracelb`]), one after the other. A record that
//! cannot be read (bad JSON, a field of the wrong type, a required field
//! missing) gives an [`ImportError`] naming the line it starts on, and
//! reading carries on with the next record. Only an I/O error of the input
//! itself ends the iteration (after it is reported).
//!
//! Importers leave the vantage country empty (`None`): callers know where
//! their probes are (for Atlas, `probes_meta.json`-style metadata keyed by
//! [`Imported::prb_id`]). Hop geolocation is likewise left to `geo`.

pub mod atlas;
#[cfg(test)]
#[path = "../../tests/fuzz/atlas.rs"]
mod atlas_fuzz;
mod atlas_scan;
pub mod scamper;
pub mod tracelb;

use crate::model::Trace;
use crate::text_enum::text_enum;
use crate::units::Timestamp;
use std::io::BufRead;

/// The most bytes one record (a line of JSON Lines, or an element of a
/// JSON array) may take; a longer one is an error of its line, skipped.
pub const MAX_RECORD_BYTES: usize = 64 << 20;

/// One source record turned into a trace.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    /// The 1-based line of the input the record starts on.
    pub line: usize,
    /// The measured path.
    pub trace: Trace,
    /// The RIPE Atlas probe id, for Atlas results.
    pub prb_id: Option<u64>,
    /// The RIPE Atlas measurement id, when an Atlas result names it.
    pub msm_id: Option<u64>,
    /// Replies that arrived after their probe's timeout (Atlas `late`).
    /// They are left out of the hops' addresses, counts and round-trip times.
    pub late_replies: u32,
    /// For a path of a scamper `tracelb` record: which record and path.
    pub tracelb: Option<crate::model::TracelbPath>,
}

/// A record that could not be imported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ImportError {
    /// The 1-based line of the input the record starts on.
    pub line: usize,
    /// What is wrong with it.
    pub message: String,
}

impl ImportError {
    /// An error for the record starting at `line`.
    #[must_use]
    pub fn new(line: usize, message: impl Into<String>) -> Self {
        Self {
            line,
            message: message.into(),
        }
    }
}

/// Which tool wrote the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InputFormat {
    /// RIPE Atlas traceroute results.
    Atlas,
    /// scamper `trace` objects (`scamper -O json`, `sc_warts2json`).
    Scamper,
}

text_enum! {
    /// The lower-case name used on the command line.
    InputFormat {
        Atlas => "atlas",
        Scamper => "scamper",
    }
    parse_error: InvalidInputFormat
}

/// Why a string is not an input format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an input format (expected atlas or scamper)")]
pub struct InvalidInputFormat(pub String);

/// What a format's converter makes of one record.
pub(crate) struct Converted {
    trace: Trace,
    prb_id: Option<u64>,
    msm_id: Option<u64>,
    late_replies: u32,
    tracelb: Option<crate::model::TracelbPath>,
}

impl Converted {
    /// The trace of the record that starts on `line`.
    fn imported(self, line: usize) -> Imported {
        Imported {
            line,
            trace: self.trace,
            prb_id: self.prb_id,
            msm_id: self.msm_id,
            late_replies: self.late_replies,
            tracelb: self.tracelb,
        }
    }
}

/// Read traces from JSON Lines or a JSON array of records, one at a time.
///
/// Records the format does not trace (scamper `cycle-start`, `ping`, M-Lab
/// metadata lines, ...) are checked and skipped; a scamper `tracelb` record
/// gives one trace per path. Blank lines of JSON Lines
/// are skipped for Atlas results; scamper writes none, so in scamper input
/// each is an error (see [`scamper`]).
pub fn read<R: BufRead>(input: R, format: InputFormat) -> Reader<R> {
    let blank_lines = match format {
        InputFormat::Atlas => BlankLines::Skip,
        InputFormat::Scamper => BlankLines::Report,
    };
    Reader {
        records: Records::new(input, blank_lines, MAX_RECORD_BYTES),
        format,
        scamper: scamper::Stream::default(),
        atlas: atlas::Assembly::default(),
        pending: std::collections::VecDeque::new(),
    }
}

/// The iterator [`read`] returns.
#[derive(Debug)]
pub struct Reader<R> {
    records: Records<R>,
    format: InputFormat,
    /// What a scamper stream remembers between records (open cycles).
    scamper: scamper::Stream,
    /// Working space of the Atlas converter, kept between records.
    atlas: atlas::Assembly,
    /// The paths of a `tracelb` record not yet handed out.
    pending: std::collections::VecDeque<Imported>,
}

impl<R> Reader<R> {
    /// The measurements read so far that give no trace, by record type
    /// (scamper `ping`, `dealias`, ...): what a summary must not pass over
    /// in silence.
    #[must_use]
    pub fn skipped(&self) -> &std::collections::BTreeMap<&'static str, usize> {
        self.scamper.skipped()
    }

    /// What the scamper `tracelb` records read so far came to.
    #[must_use]
    pub const fn tracelb(&self) -> tracelb::TracelbCounts {
        self.scamper.tracelb()
    }
}

impl<R: BufRead> Iterator for Reader<R> {
    type Item = Result<Imported, ImportError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(imported) = self.pending.pop_front() {
                return Some(Ok(imported));
            }
            let (line, raw) = self.records.next_record()?;
            let bytes = match raw {
                Ok(()) => self.records.record(),
                Err(message) => return Some(Err(ImportError::new(line, message))),
            };
            match self.format {
                InputFormat::Atlas => {
                    return Some(
                        atlas::convert(bytes, &mut self.atlas)
                            .map(|c| c.imported(line))
                            .map_err(|message| ImportError::new(line, message)),
                    )
                }
                InputFormat::Scamper => match self.scamper.convert(line, bytes) {
                    Ok(converted) => self
                        .pending
                        .extend(converted.into_iter().map(|c| c.imported(line))),
                    Err(message) => return Some(Err(ImportError::new(line, message))),
                },
            }
        }
    }
}

/// The records of RIPE Atlas input as raw bytes, not yet converted: for
/// converting them elsewhere (on other threads) with [`AtlasConverter`].
/// Splits the input exactly as [`read`] does, with the same errors.
pub fn atlas_records<R: BufRead>(input: R) -> AtlasRecords<R> {
    AtlasRecords {
        records: Records::new(input, BlankLines::Skip, MAX_RECORD_BYTES),
    }
}

/// The splitter [`atlas_records`] returns.
#[derive(Debug)]
pub struct AtlasRecords<R> {
    records: Records<R>,
}

impl<R: BufRead> AtlasRecords<R> {
    /// The next record: its line, and its bytes appended to `out`, or what
    /// is wrong with it. `None` at the end of the input.
    pub fn next_into(&mut self, out: &mut Vec<u8>) -> Option<(usize, Result<(), ImportError>)> {
        let (line, raw) = self.records.next_record()?;
        Some((
            line,
            match raw {
                Ok(()) => {
                    out.extend_from_slice(self.records.record());
                    Ok(())
                }
                Err(message) => Err(ImportError::new(line, message)),
            },
        ))
    }
}

/// Converts raw RIPE Atlas records (from [`atlas_records`]) as [`read`]
/// does; one per thread (it keeps working space between records).
#[derive(Debug, Default)]
pub struct AtlasConverter {
    assembly: atlas::Assembly,
}

impl AtlasConverter {
    /// The trace of the record that starts on `line`.
    ///
    /// # Errors
    /// What is wrong with the record, as [`read`] reports it.
    pub fn convert(&mut self, line: usize, bytes: &[u8]) -> Result<Imported, ImportError> {
        atlas::convert(bytes, &mut self.assembly)
            .map(|c| c.imported(line))
            .map_err(|message| ImportError::new(line, message))
    }
}

/// Whether the input is JSON Lines or one JSON array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// Not looked at yet.
    Unknown,
    /// One record per line.
    Lines,
    /// One JSON array of records.
    Array,
    /// Input exhausted or broken.
    Done,
}

/// What a blank line of JSON Lines is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlankLines {
    /// Nothing: skipped.
    Skip,
    /// An error of that line (for writers that never produce one).
    Report,
}

/// The error of a blank line under [`BlankLines::Report`].
const BLANK_LINE: &str =
    "empty line: scamper writes one JSON record on every line, never an empty one";

/// Splits the input into raw records, each with the line it starts on.
#[derive(Debug)]
struct Records<R> {
    input: R,
    layout: Layout,
    blank_lines: BlankLines,
    /// Blank lines before the first record (consumed while detecting the
    /// layout), still to be reported under [`BlankLines::Report`].
    leading_blank: std::ops::Range<usize>,
    /// The 1-based line the reader is on.
    line: usize,
    buf: Vec<u8>,
    /// The length of the current record when it lies whole in `input`'s
    /// buffer, read there without a copy (consumed on the next call);
    /// 0 when it is in `buf`.
    in_place: usize,
    /// The most bytes a record may take ([`MAX_RECORD_BYTES`]).
    max_record: usize,
}

/// The error of a record over the maximum.
fn too_long(max_record: usize) -> String {
    let most = if max_record.is_multiple_of(1 << 20) {
        format!("{} MiB", max_record >> 20)
    } else {
        format!("{max_record} bytes")
    };
    format!("the record is longer than {most}, the most one record may take; skipped")
}

/// Append `byte` to an array element in `buf` unless the element is
/// `over` the maximum, or would be with it: then `over` is set and the
/// memory given back.
fn keep(buf: &mut Vec<u8>, over: &mut bool, max_record: usize, byte: u8) {
    if *over {
        return;
    }
    if buf.len() < max_record {
        buf.push(byte);
    } else {
        *over = true;
        *buf = Vec::new();
    }
}

/// A line gathered by [`Records::gather_line`].
enum Gathered {
    /// The input ended before any byte.
    End,
    /// The line is in `buf`.
    Line,
    /// The line was longer than the maximum; its bytes were dropped.
    TooLong,
}

/// Scanner state inside a JSON array.
#[derive(Debug, Default)]
struct Scan {
    depth: usize,
    in_string: bool,
    escaped: bool,
}

impl<R: BufRead> Records<R> {
    fn new(input: R, blank_lines: BlankLines, max_record: usize) -> Self {
        Self {
            input,
            layout: Layout::Unknown,
            blank_lines,
            leading_blank: 0..0,
            line: 1,
            buf: Vec::new(),
            in_place: 0,
            max_record,
        }
    }

    /// Read the rest of a line (through its `\n`, or to the end of the
    /// input) into `buf`, keeping at most `max_record` bytes: past that the
    /// bytes are read and dropped, so memory stays bounded.
    fn gather_line(&mut self) -> std::io::Result<Gathered> {
        let mut read_any = false;
        let mut over = false;
        loop {
            let chunk = match self.input.fill_buf() {
                Ok(chunk) => chunk,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if chunk.is_empty() {
                break;
            }
            read_any = true;
            let (len, ends) = match memchr::memchr(b'\n', chunk) {
                Some(end) => (end + 1, true),
                None => (chunk.len(), false),
            };
            if !over {
                if self.buf.len() + len <= self.max_record {
                    self.buf.extend_from_slice(&chunk[..len]);
                } else {
                    over = true;
                    // Give the memory back: the record is not kept.
                    self.buf = Vec::new();
                }
            }
            self.input.consume(len);
            if ends {
                break;
            }
        }
        Ok(match (read_any, over) {
            (false, _) => Gathered::End,
            (true, false) => Gathered::Line,
            (true, true) => Gathered::TooLong,
        })
    }

    /// Look at the first non-space byte to choose the layout.
    fn detect(&mut self) -> Result<Layout, String> {
        loop {
            let chunk = self
                .input
                .fill_buf()
                .map_err(|e| format!("reading input: {e}"))?;
            let Some(&first) = chunk.first() else {
                return Ok(Layout::Done);
            };
            if first.is_ascii_whitespace() {
                if first == b'\n' {
                    self.line += 1;
                }
                self.input.consume(1);
                continue;
            }
            if first == b'[' {
                self.input.consume(1);
                return Ok(Layout::Array);
            }
            return Ok(Layout::Lines);
        }
    }

    /// The next non-blank line: in place when the input's buffer holds all
    /// of it (nearly always), else copied into `buf`.
    fn next_line(&mut self) -> Option<(usize, Result<(), String>)> {
        loop {
            self.buf.clear();
            let line = self.line;
            let chunk = match self.input.fill_buf() {
                Ok(chunk) => chunk,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.layout = Layout::Done;
                    return Some((line, Err(format!("reading input: {e}"))));
                }
            };
            if let Some(end) = memchr::memchr(b'\n', chunk) {
                let len = end + 1;
                self.line += 1;
                if chunk[..len].iter().all(u8::is_ascii_whitespace) {
                    self.input.consume(len);
                    if self.blank_lines == BlankLines::Report {
                        return Some((line, Err(BLANK_LINE.to_string())));
                    }
                    continue;
                }
                if len > self.max_record {
                    self.input.consume(len);
                    return Some((line, Err(too_long(self.max_record))));
                }
                self.in_place = len;
                return Some((line, Ok(())));
            }
            match self.gather_line() {
                Ok(Gathered::End) => {
                    self.layout = Layout::Done;
                    return None;
                }
                Ok(Gathered::TooLong) => {
                    self.line += 1;
                    return Some((line, Err(too_long(self.max_record))));
                }
                Ok(Gathered::Line) => {
                    self.line += 1;
                    if self.buf.iter().all(u8::is_ascii_whitespace) {
                        // Spaces after the last line break are no line.
                        let terminated = self.buf.last() == Some(&b'\n');
                        if self.blank_lines == BlankLines::Report && terminated {
                            return Some((line, Err(BLANK_LINE.to_string())));
                        }
                        continue;
                    }
                    return Some((line, Ok(())));
                }
                Err(e) => {
                    self.layout = Layout::Done;
                    return Some((line, Err(format!("reading input: {e}"))));
                }
            }
        }
    }

    /// The next element of the JSON array, as raw bytes.
    fn next_element(&mut self) -> Option<(usize, Result<(), String>)> {
        self.buf.clear();
        let mut start = self.line;
        let mut scan = Scan::default();
        // Set when the element outgrew `max_record`: its bytes are scanned
        // to find its end, not kept.
        let mut over = false;
        loop {
            let chunk = match self.input.fill_buf() {
                Ok(chunk) => chunk,
                Err(e) => {
                    self.layout = Layout::Done;
                    return Some((self.line, Err(format!("reading input: {e}"))));
                }
            };
            if chunk.is_empty() {
                self.layout = Layout::Done;
                let message = "the JSON array is not closed (missing `]`)".to_string();
                return Some((start, Err(message)));
            }
            let mut used = 0;
            let mut finished: Option<(usize, Result<(), String>)> = None;
            for &byte in chunk {
                used += 1;
                if byte == b'\n' {
                    self.line += 1;
                }
                if scan.in_string {
                    keep(&mut self.buf, &mut over, self.max_record, byte);
                    if scan.escaped {
                        scan.escaped = false;
                    } else if byte == b'\\' {
                        scan.escaped = true;
                    } else if byte == b'"' {
                        scan.in_string = false;
                    }
                    continue;
                }
                if scan.depth == 0 && (byte == b',' || byte == b']') {
                    if byte == b']' {
                        self.layout = Layout::Done;
                    }
                    if over {
                        finished = Some((start, Err(too_long(self.max_record))));
                        break;
                    }
                    if self.buf.iter().all(u8::is_ascii_whitespace) {
                        if byte == b',' {
                            let message = "empty element in the JSON array".to_string();
                            finished = Some((start, Err(message)));
                            break;
                        }
                        // `[]` or the `]` after the last element.
                        if byte == b']' {
                            break;
                        }
                    }
                    finished = Some((start, Ok(())));
                    break;
                }
                if self.buf.is_empty() && !over {
                    if byte.is_ascii_whitespace() {
                        continue;
                    }
                    start = self.line;
                }
                keep(&mut self.buf, &mut over, self.max_record, byte);
                match byte {
                    b'"' => scan.in_string = true,
                    b'{' | b'[' => scan.depth += 1,
                    b'}' | b']' => scan.depth = scan.depth.saturating_sub(1),
                    _ => {}
                }
            }
            self.input.consume(used);
            if finished.is_some() || self.layout == Layout::Done {
                return finished;
            }
        }
    }
}

impl<R: BufRead> Records<R> {
    /// The bytes of the record [`next_record`](Self::next_record) found.
    fn record(&mut self) -> &[u8] {
        if self.in_place == 0 {
            return &self.buf;
        }
        // Nothing was consumed since `next_line` saw the record in the
        // buffer, so this returns that same buffer without reading.
        match self.input.fill_buf() {
            Ok(chunk) => &chunk[..self.in_place.min(chunk.len())],
            Err(_) => &[],
        }
    }

    /// The next record, with the line it starts on: `Ok(())` when its bytes
    /// are in [`record`](Self::record) (the input's buffer, or one buffer,
    /// reused, so reading allocates nothing per record once it has grown to
    /// the longest one).
    fn next_record(&mut self) -> Option<(usize, Result<(), String>)> {
        self.input.consume(std::mem::take(&mut self.in_place));
        if self.layout == Layout::Unknown {
            match self.detect() {
                Ok(layout) => self.layout = layout,
                Err(message) => {
                    self.layout = Layout::Done;
                    return Some((self.line, Err(message)));
                }
            }
            // Every line `detect` passed was blank; in an array they are
            // only whitespace, but not in JSON Lines.
            if self.blank_lines == BlankLines::Report && self.layout != Layout::Array {
                self.leading_blank = 1..self.line;
            }
        }
        if let Some(line) = self.leading_blank.next() {
            return Some((line, Err(BLANK_LINE.to_string())));
        }
        match self.layout {
            Layout::Lines => self.next_line(),
            Layout::Array => self.next_element(),
            Layout::Unknown | Layout::Done => None,
        }
    }
}

/// The JSON error message without serde_json's own "at line 1 column N"
/// position when the record is a single line; the record's line is reported
/// by [`ImportError`] instead.
pub(crate) fn json_error(e: &serde_json::Error) -> String {
    if e.line() <= 1 {
        format!("invalid record: {e}")
    } else {
        format!(
            "invalid record (its line {} column {}): {e}",
            e.line(),
            e.column()
        )
    }
}

/// Round-trip statistics of a set of replies, `None` when there are none.
pub(crate) fn rtt_stats(rtts: &[f64]) -> Option<crate::model::RttMs> {
    let first = *rtts.first()?;
    let (mut best, mut worst, mut sum) = (first, first, 0.0);
    for &rtt in rtts {
        best = best.min(rtt);
        worst = worst.max(rtt);
        sum += rtt;
    }
    #[allow(clippy::cast_precision_loss)] // reply counts are tiny
    let avg = sum / rtts.len() as f64;
    Some(crate::model::RttMs { best, avg, worst })
}

/// Distinct addresses, most frequent first (ties: first seen first).
pub(crate) fn rank_addrs(seen: &[std::net::IpAddr]) -> Vec<std::net::IpAddr> {
    rank_addrs_with(seen, &mut Vec::new())
}

/// [`rank_addrs`] counting in `counts` (a buffer reused between hops).
pub(crate) fn rank_addrs_with(
    seen: &[std::net::IpAddr],
    counts: &mut Vec<(std::net::IpAddr, usize)>,
) -> Vec<std::net::IpAddr> {
    if let [only] = seen {
        return vec![*only];
    }
    counts.clear();
    for addr in seen {
        match counts.iter_mut().find(|(a, _)| a == addr) {
            Some((_, n)) => *n += 1,
            None => counts.push((*addr, 1)),
        }
    }
    // A stable sort keeps first-seen order among equal counts.
    counts.sort_by_key(|&(_, n)| std::cmp::Reverse(n));
    counts.iter().map(|&(a, _)| a).collect()
}

/// Unix seconds as the start of a trace.
///
/// # Errors
/// When RFC 3339 cannot write the time; the text gives the reason in the
/// time crate's words, as the importers always have.
fn timestamp(unix_seconds: i64) -> Result<Timestamp, String> {
    Timestamp::from_unix(unix_seconds).map_err(|_| match time::OffsetDateTime::from_unix_timestamp(
        unix_seconds,
    ) {
        Err(e) => format!("timestamp {unix_seconds} is out of range: {e}"),
        Ok(at) => match at.format(&time::format_description::well_known::Rfc3339) {
            Err(e) => format!("timestamp {unix_seconds} cannot be formatted: {e}"),
            Ok(_) => format!("timestamp {unix_seconds} cannot be formatted"),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    const ATLAS_A: &str = r#"{"prb_id":1,"msm_id":5,"timestamp":1600000000,"proto":"ICMP","dst_addr":"192.0.2.9","dst_name":"example.org","result":[{"hop":1,"result":[{"from":"10.0.0.1","rtt":1.0},{"from":"10.0.0.1","rtt":3.0},{"x":"*"}]},{"hop":2,"result":[{"from":"192.0.2.9","rtt":5.0}]}]}"#;
    const ATLAS_B: &str = r#"{"prb_id":2,"timestamp":1600000001,"proto":"UDP","dst_addr":"198.51.100.1","result":[{"hop":1,"result":[{"x":"*"},{"x":"*"},{"x":"*"}]}]}"#;

    fn all(input: &str, format: InputFormat) -> Vec<Result<Imported, ImportError>> {
        read(Cursor::new(input.as_bytes().to_vec()), format).collect()
    }

    #[test]
    fn formats_parse_by_name() {
        assert_eq!("Atlas".parse::<InputFormat>().unwrap(), InputFormat::Atlas);
        assert_eq!(
            "scamper".parse::<InputFormat>().unwrap(),
            InputFormat::Scamper
        );
        assert!("warts".parse::<InputFormat>().is_err());
    }

    #[test]
    fn json_lines_skip_blank_lines_and_keep_line_numbers() {
        let input = format!("\n{ATLAS_A}\n\n{ATLAS_B}\n");
        let out = all(&input, InputFormat::Atlas);
        let lines: Vec<usize> = out.iter().map(|r| r.as_ref().unwrap().line).collect();
        assert_eq!(lines, vec![2, 4]);
    }

    #[test]
    fn malformed_line_in_the_middle_is_reported_and_reading_goes_on() {
        let input = format!("{ATLAS_A}\n{{\"prb_id\": 3, \"timestamp\":\n{ATLAS_B}\n{{\"prb_id\":\"x\"}}\n{ATLAS_A}\n");
        let out = all(&input, InputFormat::Atlas);
        assert_eq!(out.len(), 5);
        assert_eq!(out[0].as_ref().unwrap().line, 1);
        let err = out[1].as_ref().unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.to_string().starts_with("line 2: "), "{err}");
        assert_eq!(out[2].as_ref().unwrap().line, 3);
        assert_eq!(out[2].as_ref().unwrap().prb_id, Some(2));
        assert_eq!(out[3].as_ref().unwrap_err().line, 4);
        assert_eq!(out[4].as_ref().unwrap().line, 5);
    }

    #[test]
    fn json_array_is_streamed_element_by_element() {
        let input = format!("  [\n{ATLAS_A},\n  {ATLAS_B}\n]\n");
        let out = all(&input, InputFormat::Atlas);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].as_ref().unwrap().line, 2);
        assert_eq!(out[1].as_ref().unwrap().line, 3);
        assert_eq!(
            out[1].as_ref().unwrap().trace.target.addr,
            Some("198.51.100.1".parse().unwrap())
        );
    }

    #[test]
    fn json_array_reads_through_a_tiny_buffer() {
        // Elements straddle many buffer refills; strings hold `]`, `,` and
        // escaped quotes that must not end an element.
        let tricky = ATLAS_B.replace(
            r#""proto":"UDP""#,
            r#""proto":"UDP","msm_name":"a],\"b\"[,{""#,
        );
        let input = format!("[{ATLAS_A},{tricky}]");
        let reader = std::io::BufReader::with_capacity(7, Cursor::new(input.into_bytes()));
        let out: Vec<_> = read(reader, InputFormat::Atlas).collect();
        assert_eq!(out.len(), 2, "{out:?}");
        assert!(out.iter().all(Result::is_ok), "{out:?}");
    }

    #[test]
    fn json_array_bad_element_is_reported_and_the_rest_read() {
        let input = format!("[\n{ATLAS_A},\n{{\"prb_id\": true}},\n{ATLAS_B}\n]");
        let out = all(&input, InputFormat::Atlas);
        assert_eq!(out.len(), 3);
        assert_eq!(out[1].as_ref().unwrap_err().line, 3);
        assert_eq!(out[2].as_ref().unwrap().line, 4);
    }

    #[test]
    fn unterminated_array_is_an_error() {
        let input = format!("[{ATLAS_A},");
        let out = all(&input, InputFormat::Atlas);
        assert!(out[0].is_ok());
        assert!(out[1].as_ref().unwrap_err().message.contains("not closed"));
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn empty_inputs_give_nothing() {
        assert!(all("", InputFormat::Atlas).is_empty());
        assert!(all("  \n ", InputFormat::Atlas).is_empty());
        assert!(all("", InputFormat::Scamper).is_empty());
        assert!(all(" [ ] ", InputFormat::Scamper).is_empty());
        // scamper writes no empty lines (see `scamper`).
        let out = all("  \n ", InputFormat::Scamper);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].as_ref().unwrap_err().line, 1);
        assert!(all(" [ ] ", InputFormat::Atlas).is_empty());
    }

    /// Every record of `input` read through a `capacity`-byte buffer with
    /// records of at most `max` bytes: the line and whether it was read.
    fn bounded(input: &str, capacity: usize, max: usize) -> Vec<(usize, Result<(), String>)> {
        let reader = std::io::BufReader::with_capacity(capacity, Cursor::new(input.to_string()));
        let mut records = Records::new(reader, BlankLines::Skip, max);
        std::iter::from_fn(|| records.next_record()).collect()
    }

    #[test]
    fn a_line_over_the_maximum_is_an_error_of_its_line_and_reading_goes_on() {
        let long = "x".repeat(300);
        let input = format!("{ATLAS_B}\n{long}\n{ATLAS_B}\n{long}");
        // Lines within one buffer and lines gathered over many refills.
        for capacity in [8, 64, 1024] {
            let out = bounded(&input, capacity, 200);
            let lines: Vec<usize> = out.iter().map(|(line, _)| *line).collect();
            assert_eq!(lines, vec![1, 2, 3, 4], "capacity {capacity}");
            assert!(out[0].1.is_ok() && out[2].1.is_ok(), "{out:?}");
            for (_, result) in [&out[1], &out[3]] {
                assert_eq!(
                    result.as_ref().unwrap_err(),
                    "the record is longer than 200 bytes, the most one record may take; skipped"
                );
            }
        }
        // A line of exactly the maximum (with its line break) is read.
        let exact = format!("{}\n", "y".repeat(199));
        assert!(bounded(&exact, 8, 200)[0].1.is_ok());
        assert!(bounded(&exact, 1024, 200)[0].1.is_ok());
    }

    #[test]
    fn an_array_element_over_the_maximum_is_skipped() {
        let long = format!("{{\"a\":\"{}\"}}", "],".repeat(200));
        let input = format!("[\n{ATLAS_B},\n{long},\n{ATLAS_B}]");
        let out = bounded(&input, 16, 300);
        assert_eq!(out.len(), 3, "{out:?}");
        assert!(out[0].1.is_ok() && out[2].1.is_ok(), "{out:?}");
        assert_eq!(out[1].0, 3);
        assert!(out[1]
            .1
            .as_ref()
            .unwrap_err()
            .contains("longer than 300 bytes"));
        assert_eq!(out[2].0, 4);
    }

    #[test]
    fn ranks_addresses_by_frequency_then_first_seen() {
        let a: std::net::IpAddr = "10.0.0.1".parse().unwrap();
        let b: std::net::IpAddr = "10.0.0.2".parse().unwrap();
        let c: std::net::IpAddr = "10.0.0.3".parse().unwrap();
        assert_eq!(rank_addrs(&[a, b, b, c]), vec![b, a, c]);
    }

    #[test]
    fn measurements_that_give_no_trace_are_counted_by_type() {
        let input = [
            r#"{"type":"cycle-start","list_name":"default","id":1,"hostname":"v","start_time":1638999960}"#,
            r#"{"type":"tracelb","method":"icmp-echo","src":"10.0.0.1","dst":"192.0.2.1","start":{"sec":1638999961},"nodes":[]}"#,
            r#"{"type":"tracelb","method":"icmp-echo","src":"10.0.0.1","dst":"192.0.2.2","start":{"sec":1638999962},"nodes":[]}"#,
            r#"{"type":"ping"}"#,
            r#"{"type":"list"}"#,
            r#"{"type":"cycle-stop","list_name":"default","id":1,"hostname":"v","stop_time":1638999990}"#,
        ]
        .join("\n");
        let mut reader = read(std::io::Cursor::new(input), InputFormat::Scamper);
        assert_eq!(reader.by_ref().count(), 0);
        let skipped: Vec<(&str, usize)> = reader.skipped().iter().map(|(k, n)| (*k, *n)).collect();
        // The cycle and list records frame measurements: not counted; the
        // tracelb records are analysed (these two have no path).
        assert_eq!(skipped, [("ping", 1)]);
        let tracelb = reader.tracelb();
        assert_eq!(
            (tracelb.records, tracelb.paths, tracelb.without_paths),
            (2, 0, 2)
        );
    }
}

//! Dataset writers: stored traces in formats other tools read.
//!
//! | format | one ... per line | for |
//! |---|---|---|
//! | [`Format::Jsonl`] | `transitwatch.trace/1` record, plus a `stored` object | transitwatch's own schema (`../shared/ARCHITECTURE.md`) |
//! | [`Format::Csv`] | hop (RFC 4180, with a header) | spreadsheets, pandas, R |
//! | [`Format::Atlas`] | RIPE Atlas traceroute result | Atlas tooling, `transitwatch analyze --input-format atlas` |
//! | [`Format::Parquet`] | (a directory of tables `traces/` and `hops/`) | DuckDB, Spark, Trino, Polars, pyarrow |
//!
//! **JSONL.** Each line is the record exactly as the daemon published it,
//! with one added field (the schema only ever adds fields), `stored`: the
//! trace id, path key, duration in ms, probe size, and the provenance (the
//! configuration's SHA-256, the GeoIP databases' kind, type and build
//! epoch, the other location files' kind, path and SHA-256, the
//! transitwatch version).
//!
//! **CSV** and **Parquet**: the tables of [`crate::dataset`]
//! (`transitwatch.csv/3`; `transitwatch.traces/1` and
//! `transitwatch.hops/2`), whose columns `schemas/columns.json` publishes.
//! Parquet needs `--output DIR`; see [`crate::dataset::parquet`].
//!
//! **Atlas**: see [`atlas`].

pub mod atlas;

use crate::store::StoredTrace;
use crate::text_enum::text_enum;
use std::io::Write;

/// The formats `transitwatch export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `transitwatch.trace/1` records, one JSON object per line.
    Jsonl,
    /// One CSV row per hop.
    Csv,
    /// RIPE Atlas traceroute results, one JSON object per line.
    Atlas,
    /// A Parquet dataset: a directory, not a stream.
    Parquet,
}

text_enum! {
    /// The name used on the command line.
    Format {
        Jsonl => "jsonl",
        Csv => "csv",
        Atlas => "atlas",
        Parquet => "parquet",
    }
    parse_error: InvalidFormat
}

/// Why a string is not an export format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an export format (expected jsonl, csv, atlas or parquet)")]
pub struct InvalidFormat(pub String);

/// Why a trace could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Writing the output failed.
    #[error("cannot write the export: {0}")]
    Io(#[from] std::io::Error),
    /// A trace could not be encoded.
    #[error("trace {id}: cannot encode it: {message}")]
    Encode {
        /// The trace id.
        id: i64,
        /// What the encoder said.
        message: String,
    },
    /// The trace store could not be read.
    #[error(transparent)]
    Read(#[from] crate::store::StoreError),
    /// A format that is a directory was asked of a stream.
    #[error("{0} is written to a directory: give --output DIR")]
    NotAStream(&'static str),
}

/// The `stored` object of a JSON line.
#[derive(serde::Serialize)]
struct Stored<'a> {
    id: i64,
    path_key: &'a str,
    duration_ms: Option<u64>,
    packet_size: Option<u16>,
    config_sha256: Option<&'a str>,
    geoip: &'a [crate::store::GeoIpDatabase],
    location_files: &'a [crate::store::LocationFile],
    version: &'a str,
}

/// One trace as a JSON line (with its `\n`): the record, its fields in
/// their usual order, and its `stored` object last.
///
/// # Errors
/// The record cannot be encoded.
pub fn jsonl_line(trace: &StoredTrace) -> Result<Vec<u8>, ExportError> {
    let encode = |e: serde_json::Error| ExportError::Encode {
        id: trace.id,
        message: e.to_string(),
    };
    let stored = Stored {
        id: trace.id,
        path_key: &trace.path_key,
        duration_ms: trace.duration_ms,
        packet_size: trace.packet_size,
        config_sha256: trace.provenance.config_sha256.as_deref(),
        geoip: &trace.provenance.geoip,
        location_files: &trace.provenance.location_files,
        version: &trace.provenance.version,
    };
    let mut line = serde_json::to_vec(&trace.record).map_err(encode)?;
    // A record is a JSON object: open it up again before its `}`.
    if line.pop() != Some(b'}') {
        return Err(ExportError::Encode {
            id: trace.id,
            message: "the record is not a JSON object".to_string(),
        });
    }
    line.extend_from_slice(b",\"stored\":");
    serde_json::to_writer(&mut line, &stored).map_err(encode)?;
    line.extend_from_slice(b"}\n");
    Ok(line)
}

/// The `jsonl` lines of stored traces: what `/api/v1/traces` streams.
pub fn jsonl_lines(
    traces: crate::store::StoredTraces,
) -> impl Iterator<Item = Result<Vec<u8>, ExportError>> {
    traces.map(|item| jsonl_line(&item?))
}

/// Writes traces in one format to `W`.
pub struct Exporter<W: Write> {
    sink: Sink<W>,
}

enum Sink<W: Write> {
    Lines(W, Format),
    Csv(crate::dataset::csv::CsvWriter<W>),
}

impl<W: Write> Exporter<W> {
    /// Start an export (CSV writes its header here).
    ///
    /// # Errors
    /// Writing the header fails.
    pub fn new(format: Format, out: W) -> Result<Self, ExportError> {
        let sink = match format {
            Format::Jsonl | Format::Atlas => Sink::Lines(out, format),
            Format::Csv => Sink::Csv(crate::dataset::csv::CsvWriter::new(out)?),
            Format::Parquet => return Err(ExportError::NotAStream("parquet")),
        };
        Ok(Self { sink })
    }

    /// Write one trace.
    ///
    /// # Errors
    /// Writing fails or the trace cannot be encoded.
    pub fn write(&mut self, trace: &StoredTrace) -> Result<(), ExportError> {
        match &mut self.sink {
            Sink::Lines(out, Format::Atlas) => {
                let mut line =
                    serde_json::to_vec(&atlas::result(trace)).map_err(|e| ExportError::Encode {
                        id: trace.id,
                        message: e.to_string(),
                    })?;
                line.push(b'\n');
                out.write_all(&line)?;
            }
            Sink::Lines(out, _) => out.write_all(&jsonl_line(trace)?)?,
            Sink::Csv(writer) => writer.write(&row(trace))?,
        }
        Ok(())
    }

    /// Flush and hand the output back.
    ///
    /// # Errors
    /// Flushing fails.
    pub fn finish(self) -> Result<W, ExportError> {
        match self.sink {
            Sink::Lines(mut out, _) => {
                out.flush()?;
                Ok(out)
            }
            Sink::Csv(writer) => Ok(writer.finish()?),
        }
    }
}

/// A stored trace as a row of the tables of [`crate::dataset`].
#[must_use]
pub fn row(trace: &StoredTrace) -> crate::dataset::TraceRow<'_> {
    crate::dataset::TraceRow {
        id: trace.id,
        record: &trace.record,
        path_key: Some(&trace.path_key),
        provenance: &trace.provenance,
    }
}

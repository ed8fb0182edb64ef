//! [`super::CSV`]: one RFC 4180 row per hop (silent hops included, with
//! empty address, round-trip time and location), its trace's time, target
//! and verdict on each row; a header names the columns.

use super::{TraceRow, CSV};
use std::io::Write;

/// The number of CSV columns.
pub const WIDTH: usize = CSV.columns.len();

/// The header row.
#[must_use]
pub fn header() -> [&'static str; WIDTH] {
    let mut names = [""; WIDTH];
    for (name, c) in names.iter_mut().zip(CSV.columns) {
        *name = c.name;
    }
    names
}

/// The rows of one trace, one per hop, in [`CSV`]'s column order.
#[must_use]
pub fn rows(row: &TraceRow<'_>) -> Vec<[String; WIDTH]> {
    let record = row.record;
    let trace = &record.trace;
    let opt = |v: Option<String>| v.unwrap_or_default();
    let vantage = opt(trace.vantage.country.map(|c| c.to_string()));
    let target_addr = opt(trace.target.addr.map(|a| a.to_string()));
    let msm = opt(record.atlas.and_then(|a| a.msm_id).map(|m| m.to_string()));
    let prb = opt(record.atlas.map(|a| a.prb_id.to_string()));
    trace
        .hops
        .iter()
        .map(|hop| {
            let geo = &hop.geo;
            [
                row.id.to_string(),
                trace.started_at.to_string(),
                trace.target.name.clone(),
                hop.ttl.to_string(),
                opt(hop.addr.map(|a| a.to_string())),
                opt(hop.rtt_ms.map(|r| r.best.to_string())),
                opt(geo.country.map(|c| c.to_string())),
                opt(geo.asn.map(|a| a.to_string())),
                opt(geo.plausible.map(|p| p.to_string())),
                record.verdict.class.as_str().to_string(),
                vantage.clone(),
                target_addr.clone(),
                opt(hop.hostname.clone()),
                opt(geo.city.clone()),
                opt(geo.confidence.map(|c| c.as_str().to_string())),
                geo.source.as_str().to_string(),
                msm.clone(),
                prb.clone(),
                crate::model::mpls_text(&hop.mpls),
            ]
        })
        .collect()
}

/// Writes CSV rows: the header first, then each trace's rows.
pub struct CsvWriter<W: Write> {
    // Boxed: the CSV writer carries its own buffers.
    inner: Box<csv::Writer<W>>,
}

impl<W: Write> CsvWriter<W> {
    /// Start, writing the header.
    ///
    /// # Errors
    /// Writing fails.
    pub fn new(out: W) -> std::io::Result<Self> {
        let mut inner = Box::new(csv::Writer::from_writer(out));
        inner.write_record(header()).map_err(io)?;
        Ok(Self { inner })
    }

    /// Write one trace's rows.
    ///
    /// # Errors
    /// Writing fails.
    pub fn write(&mut self, row: &TraceRow<'_>) -> std::io::Result<()> {
        for fields in rows(row) {
            self.inner.write_record(&fields).map_err(io)?;
        }
        Ok(())
    }

    /// Flush and hand the output back.
    ///
    /// # Errors
    /// Flushing fails.
    pub fn finish(self) -> std::io::Result<W> {
        self.inner.into_inner().map_err(|e| e.into_error())
    }
}

/// A CSV error is an I/O error here: records are plain strings, so
/// nothing but writing can fail.
fn io(e: csv::Error) -> std::io::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => io,
        other => std::io::Error::other(format!("{other:?}")),
    }
}

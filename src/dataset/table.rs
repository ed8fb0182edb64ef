//! Judged traces as Arrow record batches of [`super::TRACES`] and
//! [`super::HOPS`]: rows are gathered column by column and made into
//! arrays in the spec's order, with the spec's types, so the batches are
//! exactly what the published spec says.

use super::{Column, Kind, Partition, Table, TraceRow, EVIDENCE_FIELDS};
use arrow_array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, ListArray, RecordBatch, StringArray,
    StructArray, TimestampMillisecondArray, UInt16Array, UInt32Array, UInt64Array, UInt8Array,
};
use arrow_buffer::OffsetBuffer;
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use std::sync::Arc;

/// The Arrow type of a column kind.
#[must_use]
pub fn data_type(kind: Kind) -> DataType {
    let list = |item: DataType| DataType::List(Arc::new(Field::new("item", item, true)));
    match kind {
        Kind::Int64 => DataType::Int64,
        Kind::UInt8 => DataType::UInt8,
        Kind::UInt16 => DataType::UInt16,
        Kind::UInt32 => DataType::UInt32,
        Kind::UInt64 => DataType::UInt64,
        Kind::Float64 => DataType::Float64,
        Kind::Bool => DataType::Boolean,
        Kind::Text => DataType::Utf8,
        Kind::Timestamp => DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
        Kind::TextList => list(DataType::Utf8),
        Kind::UInt32List => list(DataType::UInt32),
        Kind::EvidenceList => list(DataType::Struct(evidence_fields())),
    }
}

fn field(c: &Column) -> Field {
    Field::new(c.name, data_type(c.kind), c.nullable)
}

fn evidence_fields() -> Fields {
    EVIDENCE_FIELDS.iter().map(field).collect()
}

/// The Arrow schema of a table's files (without the partition columns).
#[must_use]
pub fn schema(table: &Table, partition: &[Partition]) -> SchemaRef {
    Arc::new(Schema::new(
        table.file_columns(partition).map(field).collect::<Vec<_>>(),
    ))
}

/// Why a batch could not be made: the columns do not fit the spec (a
/// defect, reported rather than panicking).
#[derive(Debug, thiserror::Error)]
#[error("cannot make the {table} batch: {message}")]
pub struct BatchError {
    table: &'static str,
    message: String,
}

/// A list column: the values of all rows and each row's length.
#[derive(Debug)]
struct List<T> {
    values: Vec<T>,
    lengths: Vec<usize>,
}

impl<T> Default for List<T> {
    fn default() -> Self {
        Self {
            values: Vec::new(),
            lengths: Vec::new(),
        }
    }
}

impl<T> List<T> {
    fn push(&mut self, items: impl IntoIterator<Item = T>) {
        let before = self.values.len();
        self.values.extend(items);
        self.lengths.push(self.values.len() - before);
    }

    fn array(&mut self, values: ArrayRef, kind: Kind) -> ArrayRef {
        let item = match data_type(kind) {
            DataType::List(item) => item,
            _ => Arc::new(Field::new("item", values.data_type().clone(), true)),
        };
        let offsets = OffsetBuffer::from_lengths(std::mem::take(&mut self.lengths));
        self.values.clear();
        Arc::new(ListArray::new(item, offsets, values, None))
    }
}

fn text(values: &mut Vec<Option<String>>) -> ArrayRef {
    Arc::new(StringArray::from(std::mem::take(values)))
}

/// Rows of [`super::TRACES`] and [`super::HOPS`] being gathered for one
/// batch of each.
#[derive(Debug, Default)]
pub struct Batches {
    traces: usize,
    t_id: Vec<i64>,
    t_started: Vec<i64>,
    t_date: Vec<Option<String>>,
    t_vantage: Vec<Option<String>>,
    t_vantage_name: Vec<Option<String>>,
    t_target: Vec<Option<String>>,
    t_host: Vec<Option<String>>,
    t_addr: Vec<Option<String>>,
    t_path_key: Vec<Option<String>>,
    t_protocol: Vec<Option<String>>,
    t_port: Vec<Option<u16>>,
    t_reached: Vec<bool>,
    t_hops: Vec<u16>,
    t_class: Vec<Option<String>>,
    t_violation: Vec<bool>,
    t_confidence: Vec<Option<String>>,
    t_countries: List<String>,
    t_foreign: List<String>,
    t_foreign_asns: List<u32>,
    t_suspected: List<String>,
    t_explanation: Vec<Option<String>>,
    t_msm: Vec<Option<u64>>,
    t_prb: Vec<Option<u64>>,
    t_mda_record: Vec<Option<u64>>,
    t_mda_path: Vec<Option<u32>>,
    t_mda_paths: Vec<Option<u32>>,
    t_config: Vec<Option<String>>,
    t_geoip: List<String>,
    t_files: List<String>,
    t_version: Vec<Option<String>>,

    hops: usize,
    h_id: Vec<i64>,
    h_date: Vec<Option<String>>,
    h_vantage: Vec<Option<String>>,
    h_ttl: Vec<u8>,
    h_addr: Vec<Option<String>>,
    h_hostname: Vec<Option<String>>,
    h_sent: Vec<u32>,
    h_received: Vec<u32>,
    h_best: Vec<Option<f64>>,
    h_avg: Vec<Option<f64>>,
    h_worst: Vec<Option<f64>>,
    h_country: Vec<Option<String>>,
    h_city: Vec<Option<String>>,
    h_lat: Vec<Option<f64>>,
    h_lon: Vec<Option<f64>>,
    h_accuracy: Vec<Option<u32>>,
    h_asn: Vec<Option<u32>>,
    h_as_org: Vec<Option<String>>,
    h_source: Vec<Option<String>>,
    h_plausible: Vec<Option<bool>>,
    h_confidence: Vec<Option<String>>,
    h_ixp: Vec<Option<String>>,
    h_ixp_country: Vec<Option<String>>,
    h_evidence: List<Evidence>,
    h_mpls: Vec<Option<String>>,
}

/// One evidence item's fields, in [`EVIDENCE_FIELDS`] order.
#[derive(Debug)]
struct Evidence {
    kind: &'static str,
    source: String,
    country: Option<String>,
    city: Option<String>,
    accuracy_km: Option<u32>,
    detail: Option<String>,
    status: &'static str,
    reason: Option<String>,
}

impl Batches {
    /// Traces gathered since the last [`Batches::take`].
    #[must_use]
    pub fn traces(&self) -> usize {
        self.traces
    }

    /// Hops gathered since the last [`Batches::take`].
    #[must_use]
    pub fn hops(&self) -> usize {
        self.hops
    }

    /// Add one trace and its hops.
    pub fn push(&mut self, row: &TraceRow<'_>) {
        let record = row.record;
        let trace = &record.trace;
        let verdict = &record.verdict;
        let some = |s: &str| Some(s.to_string());
        let date = super::date(trace.started_at);
        let vantage = trace.vantage.country.map(|c| c.to_string());
        self.traces += 1;
        self.t_id.push(row.id);
        self.t_started
            .push(trace.started_at.unix().saturating_mul(1000));
        self.t_date.push(Some(date.clone()));
        self.t_vantage.push(vantage.clone());
        self.t_vantage_name.push(some(&trace.vantage.name));
        self.t_target.push(some(&trace.target.name));
        self.t_host.push(some(&trace.target.host));
        self.t_addr.push(trace.target.addr.map(|a| a.to_string()));
        self.t_path_key.push(row.path_key.map(str::to_string));
        self.t_protocol.push(some(trace.protocol.as_str()));
        self.t_port.push(trace.port);
        self.t_reached.push(trace.reached);
        self.t_hops
            .push(u16::try_from(trace.hops.len()).unwrap_or(u16::MAX));
        self.t_class.push(some(verdict.class.as_str()));
        self.t_violation.push(verdict.violation);
        self.t_confidence
            .push(verdict.confidence.map(|c| c.as_str().to_string()));
        self.t_countries
            .push(verdict.countries.iter().map(ToString::to_string));
        self.t_foreign
            .push(verdict.foreign_countries.iter().map(ToString::to_string));
        self.t_foreign_asns
            .push(verdict.foreign_asns.iter().copied());
        self.t_suspected.push(
            verdict
                .claims
                .iter()
                .filter(|c| c.suspected)
                .map(|c| c.country.to_string()),
        );
        self.t_explanation.push(some(&verdict.explanation));
        self.t_msm.push(record.atlas.and_then(|a| a.msm_id));
        self.t_prb.push(record.atlas.map(|a| a.prb_id));
        self.t_mda_record
            .push(record.tracelb.as_ref().map(|t| t.record));
        self.t_mda_path
            .push(record.tracelb.as_ref().map(|t| t.path));
        self.t_mda_paths
            .push(record.tracelb.as_ref().map(|t| t.paths));
        let provenance = row.provenance;
        self.t_config.push(provenance.config_sha256.clone());
        self.t_geoip.push(
            provenance
                .geoip
                .iter()
                .map(|g| g.sha256.clone().unwrap_or_default()),
        );
        self.t_files
            .push(provenance.location_files.iter().map(|f| f.sha256.clone()));
        self.t_version.push(some(&provenance.version));

        for hop in &trace.hops {
            let geo = &hop.geo;
            self.hops += 1;
            self.h_id.push(row.id);
            self.h_date.push(Some(date.clone()));
            self.h_vantage.push(vantage.clone());
            self.h_ttl.push(hop.ttl);
            self.h_addr.push(hop.addr.map(|a| a.to_string()));
            self.h_hostname.push(hop.hostname.clone());
            self.h_sent.push(hop.sent);
            self.h_received.push(hop.received);
            self.h_best.push(hop.rtt_ms.map(|r| r.best));
            self.h_avg.push(hop.rtt_ms.map(|r| r.avg));
            self.h_worst.push(hop.rtt_ms.map(|r| r.worst));
            self.h_country.push(geo.country.map(|c| c.to_string()));
            self.h_city.push(geo.city.clone());
            self.h_lat.push(geo.lat);
            self.h_lon.push(geo.lon);
            self.h_accuracy.push(geo.accuracy_km);
            self.h_asn.push(geo.asn);
            self.h_as_org.push(geo.as_org.clone());
            self.h_source.push(some(geo.source.as_str()));
            self.h_plausible.push(geo.plausible);
            self.h_confidence
                .push(geo.confidence.map(|c| c.as_str().to_string()));
            self.h_ixp.push(geo.ixp.as_ref().map(|x| x.name.clone()));
            self.h_ixp_country
                .push(geo.ixp.as_ref().map(|x| x.country.to_string()));
            self.h_evidence.push(geo.evidence.iter().map(|e| Evidence {
                kind: e.kind.as_str(),
                source: e.source.clone(),
                country: e.country.map(|c| c.to_string()),
                city: e.city.clone(),
                accuracy_km: e.accuracy_km,
                detail: e.detail.clone(),
                status: e.status.as_str(),
                reason: e.reason.clone(),
            }));
            self.h_mpls
                .push((!hop.mpls.is_empty()).then(|| crate::model::mpls_text(&hop.mpls)));
        }
    }

    /// The gathered rows as one batch of each table (partition columns
    /// left out), and start over.
    ///
    /// # Errors
    /// The arrays do not fit the schema (a defect).
    pub fn take(
        &mut self,
        partition: &[Partition],
    ) -> Result<(RecordBatch, RecordBatch), BatchError> {
        let traces = self.take_traces(partition)?;
        let hops = self.take_hops(partition)?;
        Ok((traces, hops))
    }

    fn take_traces(&mut self, partition: &[Partition]) -> Result<RecordBatch, BatchError> {
        let table = &super::TRACES;
        let mut arrays: Vec<ArrayRef> = Vec::new();
        for c in table.file_columns(partition) {
            let array: ArrayRef = match c.name {
                "trace_id" => Arc::new(Int64Array::from(std::mem::take(&mut self.t_id))),
                "started_at" => Arc::new(
                    TimestampMillisecondArray::from(std::mem::take(&mut self.t_started))
                        .with_timezone("UTC"),
                ),
                "date" => text(&mut self.t_date),
                "vantage" => text(&mut self.t_vantage),
                "vantage_name" => text(&mut self.t_vantage_name),
                "target" => text(&mut self.t_target),
                "target_host" => text(&mut self.t_host),
                "target_addr" => text(&mut self.t_addr),
                "path_key" => text(&mut self.t_path_key),
                "protocol" => text(&mut self.t_protocol),
                "port" => Arc::new(UInt16Array::from(std::mem::take(&mut self.t_port))),
                "reached" => Arc::new(BooleanArray::from(std::mem::take(&mut self.t_reached))),
                "hops" => Arc::new(UInt16Array::from(std::mem::take(&mut self.t_hops))),
                "class" => text(&mut self.t_class),
                "violation" => Arc::new(BooleanArray::from(std::mem::take(&mut self.t_violation))),
                "confidence" => text(&mut self.t_confidence),
                "countries" => text_list(&mut self.t_countries, c.kind),
                "foreign_countries" => text_list(&mut self.t_foreign, c.kind),
                "foreign_asns" => {
                    let values = Arc::new(UInt32Array::from(std::mem::take(
                        &mut self.t_foreign_asns.values,
                    )));
                    self.t_foreign_asns.array(values, c.kind)
                }
                "suspected_countries" => text_list(&mut self.t_suspected, c.kind),
                "explanation" => text(&mut self.t_explanation),
                "msm_id" => Arc::new(UInt64Array::from(std::mem::take(&mut self.t_msm))),
                "prb_id" => Arc::new(UInt64Array::from(std::mem::take(&mut self.t_prb))),
                "tracelb_record" => {
                    Arc::new(UInt64Array::from(std::mem::take(&mut self.t_mda_record)))
                }
                "tracelb_path" => Arc::new(UInt32Array::from(std::mem::take(&mut self.t_mda_path))),
                "tracelb_paths" => {
                    Arc::new(UInt32Array::from(std::mem::take(&mut self.t_mda_paths)))
                }
                "config_sha256" => text(&mut self.t_config),
                "geoip_sha256" => text_list(&mut self.t_geoip, c.kind),
                "location_files_sha256" => text_list(&mut self.t_files, c.kind),
                "transitwatch_version" => text(&mut self.t_version),
                other => return Err(unknown(table, other)),
            };
            arrays.push(array);
        }
        self.traces = 0;
        batch(table, partition, arrays)
    }

    fn take_hops(&mut self, partition: &[Partition]) -> Result<RecordBatch, BatchError> {
        let table = &super::HOPS;
        let mut arrays: Vec<ArrayRef> = Vec::new();
        for c in table.file_columns(partition) {
            let array: ArrayRef = match c.name {
                "trace_id" => Arc::new(Int64Array::from(std::mem::take(&mut self.h_id))),
                "date" => text(&mut self.h_date),
                "vantage" => text(&mut self.h_vantage),
                "ttl" => Arc::new(UInt8Array::from(std::mem::take(&mut self.h_ttl))),
                "addr" => text(&mut self.h_addr),
                "hostname" => text(&mut self.h_hostname),
                "sent" => Arc::new(UInt32Array::from(std::mem::take(&mut self.h_sent))),
                "received" => Arc::new(UInt32Array::from(std::mem::take(&mut self.h_received))),
                "rtt_best_ms" => Arc::new(Float64Array::from(std::mem::take(&mut self.h_best))),
                "rtt_avg_ms" => Arc::new(Float64Array::from(std::mem::take(&mut self.h_avg))),
                "rtt_worst_ms" => Arc::new(Float64Array::from(std::mem::take(&mut self.h_worst))),
                "country" => text(&mut self.h_country),
                "city" => text(&mut self.h_city),
                "lat" => Arc::new(Float64Array::from(std::mem::take(&mut self.h_lat))),
                "lon" => Arc::new(Float64Array::from(std::mem::take(&mut self.h_lon))),
                "accuracy_km" => Arc::new(UInt32Array::from(std::mem::take(&mut self.h_accuracy))),
                "asn" => Arc::new(UInt32Array::from(std::mem::take(&mut self.h_asn))),
                "as_org" => text(&mut self.h_as_org),
                "source" => text(&mut self.h_source),
                "plausible" => Arc::new(BooleanArray::from(std::mem::take(&mut self.h_plausible))),
                "confidence" => text(&mut self.h_confidence),
                "ixp" => text(&mut self.h_ixp),
                "ixp_country" => text(&mut self.h_ixp_country),
                "evidence" => {
                    let values = evidence_array(&self.h_evidence.values)?;
                    self.h_evidence.array(values, c.kind)
                }
                "mpls" => text(&mut self.h_mpls),
                other => return Err(unknown(table, other)),
            };
            arrays.push(array);
        }
        self.hops = 0;
        batch(table, partition, arrays)
    }
}

fn text_list(list: &mut List<String>, kind: Kind) -> ArrayRef {
    let values = Arc::new(StringArray::from_iter_values(list.values.iter()));
    list.array(values, kind)
}

fn evidence_array(items: &[Evidence]) -> Result<ArrayRef, BatchError> {
    let texts = |f: &dyn Fn(&Evidence) -> Option<&str>| -> ArrayRef {
        Arc::new(StringArray::from(items.iter().map(f).collect::<Vec<_>>()))
    };
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for c in &EVIDENCE_FIELDS {
        arrays.push(match c.name {
            "kind" => texts(&|e| Some(e.kind)),
            "source" => texts(&|e| Some(&e.source)),
            "country" => texts(&|e| e.country.as_deref()),
            "city" => texts(&|e| e.city.as_deref()),
            "accuracy_km" => Arc::new(UInt32Array::from(
                items.iter().map(|e| e.accuracy_km).collect::<Vec<_>>(),
            )),
            "detail" => texts(&|e| e.detail.as_deref()),
            "status" => texts(&|e| Some(e.status)),
            "reason" => texts(&|e| e.reason.as_deref()),
            other => {
                return Err(BatchError {
                    table: "evidence",
                    message: format!("no values for field `{other}`"),
                })
            }
        });
    }
    StructArray::try_new(evidence_fields(), arrays, None)
        .map(|a| Arc::new(a) as ArrayRef)
        .map_err(|e| BatchError {
            table: "evidence",
            message: e.to_string(),
        })
}

fn unknown(table: &Table, column: &str) -> BatchError {
    BatchError {
        table: table.schema,
        message: format!("no values for column `{column}`"),
    }
}

fn batch(
    table: &Table,
    partition: &[Partition],
    arrays: Vec<ArrayRef>,
) -> Result<RecordBatch, BatchError> {
    RecordBatch::try_new(schema(table, partition), arrays).map_err(|e| BatchError {
        table: table.schema,
        message: e.to_string(),
    })
}

//! Tabular datasets: judged traces as tables that DuckDB, pandas/pyarrow,
//! Polars, R and Spark read, written by `export` (from the history) and
//! `analyze` (from measurement files).
//!
//! **The column spec is data.** [`TRACES`], [`HOPS`] and [`CSV`] name
//! every column with its type, whether it may be empty and what it means;
//! the Arrow schemas ([`table`]), the CSV header ([`csv`]), the published
//! spec `schemas/columns.json` and the README's table all come from them.
//! Each table has a versioned name (`transitwatch.traces/1`): a change to
//! its columns (name, order, type, nullability) changes its version, and
//! the tests hold every version to the columns it was published with.
//!
//! - [`TRACES`]: one row per trace: when, from which vantage country, to
//!   what, the verdict (class, countries, confidence, suspected countries,
//!   the explanation), RIPE Atlas ids, and the provenance of the verdict
//!   (configuration SHA-256, GeoIP and location files' SHA-256s, version).
//! - [`HOPS`]: one row per hop (silent hops too), joined to its trace by
//!   `trace_id` (and by `date` and `vantage` when partitioned): address,
//!   name, round-trip times, the chosen location and its confidence,
//!   every evidence item with what the decision made of it, and the MPLS
//!   label stack its reply quoted.
//! - [`CSV`]: one row per hop with the trace's time, target and verdict on
//!   each row: the flat form for spreadsheets (RFC 4180, with a header).
//!
//! Parquet datasets ([`parquet`]) are directories `traces/` and `hops/`,
//! optionally partitioned Hive-style by `date` and `vantage`.

pub mod csv;
pub mod parquet;
pub mod table;

use crate::model::TraceRecord;
use crate::store::Provenance;

/// The type of a column's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Signed 64-bit integer.
    Int64,
    /// Unsigned 8-bit integer.
    UInt8,
    /// Unsigned 16-bit integer.
    UInt16,
    /// Unsigned 32-bit integer.
    UInt32,
    /// Unsigned 64-bit integer.
    UInt64,
    /// 64-bit float.
    Float64,
    /// `true` or `false`.
    Bool,
    /// UTF-8 text.
    Text,
    /// A moment in UTC, to the millisecond (whole seconds in practice).
    Timestamp,
    /// A list of texts.
    TextList,
    /// A list of unsigned 32-bit integers.
    UInt32List,
    /// A list of evidence items: structs of [`EVIDENCE_FIELDS`].
    EvidenceList,
}

impl Kind {
    /// The name in the published spec.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Int64 => "int64",
            Self::UInt8 => "uint8",
            Self::UInt16 => "uint16",
            Self::UInt32 => "uint32",
            Self::UInt64 => "uint64",
            Self::Float64 => "float64",
            Self::Bool => "bool",
            Self::Text => "string",
            Self::Timestamp => "timestamp[ms, UTC]",
            Self::TextList => "list<string>",
            Self::UInt32List => "list<uint32>",
            Self::EvidenceList => "list<struct<evidence>>",
        }
    }
}

/// One column of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// Its name.
    pub name: &'static str,
    /// Its values' type.
    pub kind: Kind,
    /// Whether a value may be missing (null; empty in CSV).
    pub nullable: bool,
    /// What it holds.
    pub doc: &'static str,
}

/// A table: its versioned name and columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    /// `transitwatch.NAME/VERSION`.
    pub schema: &'static str,
    /// The directory of a Parquet dataset it is written to (`traces`,
    /// `hops`); empty for CSV.
    pub dir: &'static str,
    /// The columns, in order.
    pub columns: &'static [Column],
}

impl Table {
    /// The columns a file of this table holds: all of them, or those that
    /// are not among the partition columns (which are in the file's path).
    pub fn file_columns<'a>(
        &'a self,
        partition: &'a [Partition],
    ) -> impl Iterator<Item = &'a Column> + 'a {
        self.columns
            .iter()
            .filter(move |c| !partition.iter().any(|p| p.as_str() == c.name))
    }
}

/// A column a Parquet dataset can be partitioned by (Hive style:
/// `date=2026-12-06/vantage=LS/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Partition {
    /// The trace's start date, UTC (`YYYY-MM-DD`).
    Date,
    /// The vantage country (ISO 3166-1 alpha-2).
    Vantage,
}

crate::text_enum::text_enum! {
    /// The column's name.
    Partition {
        Date => "date",
        Vantage => "vantage",
    }
    parse_error: InvalidPartition
}

/// Why a text is not a partition column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a partition column (expected date or vantage)")]
pub struct InvalidPartition(pub String);

/// The partition columns of a dataset, in path order (`--partition-by`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Partitions(pub Vec<Partition>);

impl std::str::FromStr for Partitions {
    type Err = InvalidPartition;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_partitions(s).map(Partitions)
    }
}

/// Parse `date`, `vantage` or `date,vantage` (each at most once).
///
/// # Errors
/// An unknown or repeated column.
pub fn parse_partitions(text: &str) -> Result<Vec<Partition>, InvalidPartition> {
    let mut out: Vec<Partition> = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let p: Partition = part.parse()?;
        if out.contains(&p) {
            return Err(InvalidPartition(format!("{part} (given twice)")));
        }
        out.push(p);
    }
    Ok(out)
}

/// The fields of one evidence item in [`Kind::EvidenceList`] columns
/// (all text, all nullable but `kind`, `source` and `status`).
pub const EVIDENCE_FIELDS: [Column; 8] = [
    col(
        "kind",
        Kind::Text,
        false,
        "override, geofeed, ixp, hostname, database or registration",
    ),
    col(
        "source",
        Kind::Text,
        false,
        "the file or service it came from",
    ),
    col("country", Kind::Text, true, "the country it says"),
    col("city", Kind::Text, true, "the city it says"),
    col("accuracy_km", Kind::UInt32, true, "its own accuracy radius"),
    col("detail", Kind::Text, true, "what it says in its own terms"),
    col(
        "status",
        Kind::Text,
        false,
        "chosen, agrees, disagrees or rejected",
    ),
    col("reason", Kind::Text, true, "why, in words"),
];

const fn col(name: &'static str, kind: Kind, nullable: bool, doc: &'static str) -> Column {
    Column {
        name,
        kind,
        nullable,
        doc,
    }
}

/// One row per trace.
pub const TRACES: Table = Table {
    schema: "transitwatch.traces/1",
    dir: "traces",
    columns: &[
        col(
            "trace_id",
            Kind::Int64,
            false,
            "the stored trace id (export), or the trace's number in the input from 1 (analyze)",
        ),
        col(
            "started_at",
            Kind::Timestamp,
            false,
            "when the trace started",
        ),
        col(
            "date",
            Kind::Text,
            false,
            "its UTC date, YYYY-MM-DD (a partition column)",
        ),
        col(
            "vantage",
            Kind::Text,
            true,
            "the vantage country, ISO 3166-1 alpha-2 (a partition column)",
        ),
        col(
            "vantage_name",
            Kind::Text,
            false,
            "the vantage point's name (an Atlas probe is `atlas-probe-N`)",
        ),
        col("target", Kind::Text, false, "the target's name"),
        col(
            "target_host",
            Kind::Text,
            false,
            "the host name or address the target was given as",
        ),
        col("target_addr", Kind::Text, true, "the address traced"),
        col(
            "path_key",
            Kind::Text,
            true,
            "the path key (`target/protocol/family`; stored traces)",
        ),
        col("protocol", Kind::Text, false, "icmp, udp or tcp"),
        col("port", Kind::UInt16, true, "destination port (udp, tcp)"),
        col(
            "reached",
            Kind::Bool,
            false,
            "whether the destination answered",
        ),
        col("hops", Kind::UInt16, false, "its number of hop rows"),
        col(
            "class",
            Kind::Text,
            false,
            "the verdict: domestic, foreign_transit, foreign_destination, indeterminate, ...",
        ),
        col(
            "violation",
            Kind::Bool,
            false,
            "whether the path breaks the policy",
        ),
        col(
            "confidence",
            Kind::Text,
            true,
            "how sure the verdict is: low, medium or high",
        ),
        col(
            "countries",
            Kind::TextList,
            false,
            "the countries the path's located hops are in, in path order",
        ),
        col(
            "foreign_countries",
            Kind::TextList,
            false,
            "those outside the vantage country that count for the verdict",
        ),
        col(
            "foreign_asns",
            Kind::UInt32List,
            false,
            "the ASes of the foreign hops",
        ),
        col(
            "suspected_countries",
            Kind::TextList,
            false,
            "countries claimed below the minimum confidence: reported, not counted",
        ),
        col("explanation", Kind::Text, false, "the verdict in words"),
        col("msm_id", Kind::UInt64, true, "RIPE Atlas measurement id"),
        col("prb_id", Kind::UInt64, true, "RIPE Atlas probe id"),
        col(
            "tracelb_record",
            Kind::UInt64,
            true,
            "scamper tracelb (MDA): the record's number in the input, from 1",
        ),
        col(
            "tracelb_path",
            Kind::UInt32,
            true,
            "which of its paths this is, from 1",
        ),
        col(
            "tracelb_paths",
            Kind::UInt32,
            true,
            "how many paths the record gave",
        ),
        col(
            "config_sha256",
            Kind::Text,
            true,
            "SHA-256 of the configuration file the verdict was made with",
        ),
        col(
            "geoip_sha256",
            Kind::TextList,
            false,
            "SHA-256 of each GeoIP database, in order of precedence",
        ),
        col(
            "location_files_sha256",
            Kind::TextList,
            false,
            "SHA-256 of the overrides, geofeeds, PeeringDB dump and host-name rules",
        ),
        col(
            "transitwatch_version",
            Kind::Text,
            false,
            "the version that made the verdict",
        ),
    ],
};

/// One row per hop.
pub const HOPS: Table = Table {
    schema: "transitwatch.hops/2",
    dir: "hops",
    columns: &[
        col("trace_id", Kind::Int64, false, "the trace's `trace_id`"),
        col(
            "date",
            Kind::Text,
            false,
            "the trace's UTC date (a partition column)",
        ),
        col(
            "vantage",
            Kind::Text,
            true,
            "the trace's vantage country (a partition column)",
        ),
        col("ttl", Kind::UInt8, false, "the hop's TTL"),
        col(
            "addr",
            Kind::Text,
            true,
            "the address that answered (empty: silent hop)",
        ),
        col("hostname", Kind::Text, true, "its reverse DNS name"),
        col("sent", Kind::UInt32, false, "probes sent at this TTL"),
        col("received", Kind::UInt32, false, "replies received"),
        col(
            "rtt_best_ms",
            Kind::Float64,
            true,
            "best round-trip time, ms",
        ),
        col(
            "rtt_avg_ms",
            Kind::Float64,
            true,
            "mean round-trip time, ms",
        ),
        col(
            "rtt_worst_ms",
            Kind::Float64,
            true,
            "worst round-trip time, ms",
        ),
        col("country", Kind::Text, true, "the chosen country"),
        col("city", Kind::Text, true, "the chosen city"),
        col("lat", Kind::Float64, true, "latitude"),
        col("lon", Kind::Float64, true, "longitude"),
        col(
            "accuracy_km",
            Kind::UInt32,
            true,
            "accuracy radius of the chosen location",
        ),
        col("asn", Kind::UInt32, true, "origin AS"),
        col("as_org", Kind::Text, true, "the AS's name"),
        col(
            "source",
            Kind::Text,
            false,
            "what decided the location: override, mmdb, geofeed, ixp, hostname, registration, none",
        ),
        col(
            "plausible",
            Kind::Bool,
            true,
            "whether the location fits the round-trip time (empty: not checked)",
        ),
        col(
            "confidence",
            Kind::Text,
            true,
            "how sure the location is: low, medium or high",
        ),
        col(
            "ixp",
            Kind::Text,
            true,
            "the internet exchange whose LAN the address is on",
        ),
        col("ixp_country", Kind::Text, true, "that exchange's country"),
        col(
            "evidence",
            Kind::EvidenceList,
            false,
            "every evidence item and what the decision made of it",
        ),
        col("mpls", Kind::Text, true, MPLS_DOC),
    ],
};

/// What the `mpls` column of [`HOPS`] and [`CSV`] holds.
const MPLS_DOC: &str = "the MPLS label stack (RFC 4950) the hop's reply quoted, top first: \
     LABEL:TC:S:TTL per entry, separated by spaces (empty: none)";

/// One CSV row per hop, with its trace's columns repeated.
pub const CSV: Table = Table {
    schema: "transitwatch.csv/3",
    dir: "",
    columns: &[
        col(
            "trace_id",
            Kind::Int64,
            false,
            "the stored trace id (export), or the trace's number in the input from 1 (analyze)",
        ),
        col(
            "time",
            Kind::Timestamp,
            false,
            "when the trace started, RFC 3339",
        ),
        col("target", Kind::Text, false, "the target's name"),
        col("ttl", Kind::UInt8, false, "the hop's TTL"),
        col(
            "addr",
            Kind::Text,
            true,
            "the address that answered (empty: silent hop)",
        ),
        col("rtt_ms", Kind::Float64, true, "best round-trip time, ms"),
        col("country", Kind::Text, true, "the chosen country"),
        col("asn", Kind::UInt32, true, "origin AS"),
        col(
            "plausible",
            Kind::Bool,
            true,
            "whether the location fits the round-trip time (empty: not checked)",
        ),
        col("class", Kind::Text, false, "the trace's verdict"),
        col("vantage", Kind::Text, true, "the vantage country"),
        col("target_addr", Kind::Text, true, "the address traced"),
        col("hostname", Kind::Text, true, "the hop's reverse DNS name"),
        col("city", Kind::Text, true, "the chosen city"),
        col(
            "confidence",
            Kind::Text,
            true,
            "how sure the hop's location is",
        ),
        col("source", Kind::Text, false, "what decided the location"),
        col("msm_id", Kind::UInt64, true, "RIPE Atlas measurement id"),
        col("prb_id", Kind::UInt64, true, "RIPE Atlas probe id"),
        col("mpls", Kind::Text, true, MPLS_DOC),
    ],
};

/// Every table, for the published spec.
pub const TABLES: [&Table; 3] = [&TRACES, &HOPS, &CSV];

/// A judged trace on its way into a table.
#[derive(Debug, Clone, Copy)]
pub struct TraceRow<'a> {
    /// Its `trace_id`.
    pub id: i64,
    /// The record.
    pub record: &'a TraceRecord,
    /// Its path key, when stored.
    pub path_key: Option<&'a str>,
    /// What made the verdict.
    pub provenance: &'a Provenance,
}

impl TraceRow<'_> {
    /// The value of a partition column, as written in the path.
    #[must_use]
    pub fn partition_value(&self, p: Partition) -> String {
        match p {
            Partition::Date => date(self.record.trace.started_at),
            Partition::Vantage => self
                .record
                .trace
                .vantage
                .country
                .map_or_else(|| NULL_PARTITION.to_string(), |c| c.to_string()),
        }
    }
}

/// The directory name of a missing vantage country. Not Hive's null
/// (`__HIVE_DEFAULT_PARTITION__`): pandas cannot read a directory holding
/// one (pyarrow makes partition columns dictionaries, which it cannot
/// unify with a null), and researchers read these with pandas.
pub const NULL_PARTITION: &str = "unknown";

/// `YYYY-MM-DD` of a moment, UTC.
#[must_use]
pub fn date(at: crate::units::Timestamp) -> String {
    let mut text = Vec::with_capacity(20);
    at.write_rfc3339(&mut text);
    String::from_utf8_lossy(&text[..text.len().min(10)]).into_owned()
}

/// The published spec (`schemas/columns.json`): every table's versioned
/// name, columns with type, nullability and meaning, and the evidence
/// item's fields.
#[must_use]
pub fn spec_json() -> serde_json::Value {
    let columns = |cols: &[Column]| -> Vec<serde_json::Value> {
        cols.iter()
            .map(|c| {
                serde_json::json!({
                    "name": c.name,
                    "type": c.kind.as_str(),
                    "nullable": c.nullable,
                    "description": c.doc,
                })
            })
            .collect()
    };
    serde_json::json!({
        "$comment": "transitwatch's tabular formats: CSV (export --format csv, analyze --output-format csv) and Parquet datasets (export --format parquet, analyze --output-format parquet). A change to a table's columns changes its version.",
        "tables": TABLES.iter().map(|t| serde_json::json!({
            "schema": t.schema,
            "parquet_directory": if t.dir.is_empty() { serde_json::Value::Null } else { t.dir.into() },
            "columns": columns(t.columns),
        })).collect::<Vec<_>>(),
        "partition_columns": ["date", "vantage"],
        "missing_partition_value": NULL_PARTITION,
        "evidence_fields": columns(&EVIDENCE_FIELDS),
    })
}

#[cfg(test)]
mod tests;

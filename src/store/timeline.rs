//! The compact read of the history that reports use: per trace only what a
//! timeline needs (when, which path, which class, which foreign
//! countries), without decoding the stored record. The foreign countries
//! are taken out of the record by `SQLite`'s own JSON functions, so a
//! report over millions of traces never builds a [`crate::model::TraceRecord`]
//! for most of them; [`super::Store::get`] reads the few whole records a
//! report shows as evidence.

use super::{sqlite, Query, Store, StoreError};
use crate::model::VerdictClass;

/// One stored trace as a point on its path's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineRow {
    /// The trace id.
    pub id: i64,
    /// Start of the trace, Unix seconds.
    pub started_at: i64,
    /// The target (service) name.
    pub target: String,
    /// The path key (`name`, `name/ipv4`, `name/ipv6`).
    pub path_key: String,
    /// The vantage point's name.
    pub vantage: String,
    /// The verdict's class.
    pub class: VerdictClass,
    /// Whether the path broke its target's policy.
    pub violation: bool,
    /// Whether the destination answered.
    pub reached: bool,
    /// The path identity.
    pub path_id: String,
    /// The verdict's foreign countries, in path order.
    pub foreign: Vec<String>,
}

/// One configuration generation's provenance and how many traces it made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvenanceCount {
    /// SHA-256 of the configuration file, when there was one.
    pub config_sha256: Option<String>,
    /// The GeoIP databases in force (JSON as stored).
    pub geoip: Vec<super::GeoIpDatabase>,
    /// The other location files in force (overrides, geofeeds, PeeringDB
    /// dump, host-name rules); empty for rows stored before files were
    /// recorded.
    pub location_files: Vec<super::LocationFile>,
    /// The transitwatch version.
    pub version: String,
    /// Traces made with it.
    pub traces: u64,
    /// First and last start time, Unix seconds.
    pub first: i64,
    /// See `first`.
    pub last: i64,
}

impl Store {
    /// Every trace `query` selects as a [`TimelineRow`], ordered by path
    /// key, then start time and id, handed to `each` one at a time (memory
    /// does not grow with the history). One statement reads them all: a
    /// report is a short read, unlike a streaming export.
    ///
    /// # Errors
    /// `SQLite` fails, or a row's class or countries cannot be read.
    pub fn timeline(
        &self,
        query: &Query,
        mut each: impl FnMut(TimelineRow),
    ) -> Result<(), StoreError> {
        let (filter, values) = query.filter(None);
        let sql = format!(
            "SELECT id, started_at, target, path_key, \
                    coalesce(json_extract(record, '$.vantage.name'), ''), class, violation, \
                    reached, path_id, json_extract(record, '$.verdict.foreign_countries') \
             FROM traces WHERE {filter} ORDER BY path_key, started_at, id"
        );
        let failed = sqlite(&self.path, "cannot read the trace timeline");
        let mut stmt = self.conn.prepare(&sql).map_err(&failed)?;
        let mut rows = stmt
            .query(rusqlite::params_from_iter(values))
            .map_err(&failed)?;
        while let Some(row) = rows.next().map_err(&failed)? {
            let id: i64 = row.get(0).map_err(&failed)?;
            let bad = |message: String| StoreError::Record {
                path: self.path.clone(),
                id,
                message,
            };
            let class: String = row.get(5).map_err(&failed)?;
            let class = VerdictClass::ALL
                .iter()
                .copied()
                .find(|c| c.as_str() == class)
                .ok_or(())
                .map_err(|_| bad(format!("unknown class `{class}`")))?;
            let foreign: Option<String> = row.get(9).map_err(&failed)?;
            let foreign = match foreign {
                None => Vec::new(),
                Some(text) => serde_json::from_str::<Vec<String>>(&text)
                    .map_err(|e| bad(format!("foreign_countries: {e}")))?,
            };
            each(TimelineRow {
                id,
                started_at: row.get(1).map_err(&failed)?,
                target: row.get(2).map_err(&failed)?,
                path_key: row.get(3).map_err(&failed)?,
                vantage: row.get(4).map_err(&failed)?,
                class,
                violation: row.get::<_, i64>(6).map_err(&failed)? != 0,
                reached: row.get::<_, i64>(7).map_err(&failed)? != 0,
                path_id: row.get(8).map_err(&failed)?,
                foreign,
            });
        }
        Ok(())
    }

    /// The provenance of the traces `query` selects, one entry per
    /// distinct (configuration, databases and location files, version),
    /// oldest first.
    ///
    /// # Errors
    /// `SQLite` fails, or a stored database list cannot be read.
    pub fn provenance_counts(&self, query: &Query) -> Result<Vec<ProvenanceCount>, StoreError> {
        let (filter, values) = query.filter(None);
        let sql = format!(
            "SELECT config_sha256, geoip, version, count(*), min(started_at), max(started_at) \
             FROM traces WHERE {filter} GROUP BY 1, 2, 3 ORDER BY 5"
        );
        let failed = sqlite(&self.path, "cannot read the traces' provenance");
        let mut stmt = self.conn.prepare(&sql).map_err(&failed)?;
        let mut rows = stmt
            .query(rusqlite::params_from_iter(values))
            .map_err(&failed)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(&failed)? {
            let geoip: String = row.get(1).map_err(&failed)?;
            let (geoip, location_files) =
                super::decode_geoip(&geoip).map_err(|e| StoreError::Record {
                    path: self.path.clone(),
                    id: 0,
                    message: format!("geoip provenance: {e}"),
                })?;
            out.push(ProvenanceCount {
                config_sha256: row.get(0).map_err(&failed)?,
                geoip,
                location_files,
                version: row.get(2).map_err(&failed)?,
                traces: u64::try_from(row.get::<_, i64>(3).map_err(&failed)?).unwrap_or(0),
                first: row.get(4).map_err(&failed)?,
                last: row.get(5).map_err(&failed)?,
            });
        }
        Ok(out)
    }
}

//! A Parquet dataset: a directory that DuckDB, Spark, Trino, Polars and
//! pyarrow read as two tables.
//!
//! ```text
//! DIR/traces/part-00000.parquet                         unpartitioned
//! DIR/hops/part-00000.parquet
//! DIR/traces/date=2026-12-06/vantage=LS/part-00000.parquet   --partition-by date,vantage
//! DIR/hops/date=2026-12-06/vantage=LS/part-00000.parquet
//! DIR/provenance.json                                   when the writer has one
//! ```
//!
//! Partition columns live in the path only (as Hive and Spark write
//! them), a missing vantage as `vantage=unknown` ([`super::NULL_PARTITION`]). Files are
//! zstd-compressed, with row groups of at most [`ROW_GROUP_ROWS`] rows
//! (about DuckDB's own) so scans skip and parallelise by group, and carry
//! their table's versioned name under the key `transitwatch.schema`.
//!
//! The dataset is written into a hidden sibling directory, its files
//! flushed to disk, and renamed into place once complete
//! ([`crate::atomic_file::publish_folder`]): a failed run leaves no
//! complete-looking dataset.
//! Memory is bounded: rows are handed to the Parquet writer every
//! [`BATCH_TRACES`] traces or [`BATCH_HOPS`] hops, and at most
//! [`OPEN_PARTITIONS`] partitions are open at once (the least recently
//! written is closed to open another; it continues in a new part file).

use super::table::{schema, BatchError, Batches};
use super::{Partition, TraceRow, HOPS, TRACES};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

/// Rows per row group, at most.
pub const ROW_GROUP_ROWS: usize = 122_880;
/// Traces gathered per partition before they go to the Parquet writer.
pub const BATCH_TRACES: usize = 4096;
/// Hops gathered per partition before they go to the Parquet writer.
pub const BATCH_HOPS: usize = 32_768;
/// Partitions open at once, at most.
pub const OPEN_PARTITIONS: usize = 32;

/// Why a dataset could not be written.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The output directory exists and is not empty.
    #[error("{}: already exists and is not empty; give a new directory", .0.display())]
    Exists(PathBuf),
    /// A file or directory could not be made or written.
    #[error("{}: {source}", .path.display())]
    Io {
        /// Which.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The Parquet writer refused.
    #[error("{}: {message}", .path.display())]
    Parquet {
        /// The file.
        path: PathBuf,
        /// What it said.
        message: String,
    },
    /// A batch could not be made (a defect).
    #[error(transparent)]
    Batch(#[from] BatchError),
}

/// What a finished dataset holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Written {
    /// Trace rows.
    pub traces: u64,
    /// Hop rows.
    pub hops: u64,
    /// Parquet files (both tables).
    pub files: u64,
}

/// One partition's gathered rows and open files.
struct Part {
    /// Its directory below `traces/` and `hops/` (`date=.../vantage=...`).
    dir: String,
    rows: Batches,
    writers: Option<(ArrowWriter<File>, ArrowWriter<File>)>,
    /// The number of the part file being written (or next to open).
    file: u32,
    /// When it was last written to, for closing the least recent.
    used: u64,
}

/// Writes a Parquet dataset; see the module docs.
pub struct Dataset {
    target: PathBuf,
    staging: PathBuf,
    partition: Vec<Partition>,
    parts: HashMap<Vec<String>, Part>,
    /// Part files written so far per partition directory (a closed
    /// partition that opens again continues with the next number).
    next_file: HashMap<String, u32>,
    props: WriterProperties,
    clock: u64,
    written: Written,
}

impl Dataset {
    /// Start a dataset in `dir`, which must not exist or be empty.
    ///
    /// # Errors
    /// The directory exists and is not empty, or the staging directory
    /// cannot be made.
    pub fn create(dir: &Path, partition: &[Partition]) -> Result<Self, DatasetError> {
        if let Ok(mut entries) = std::fs::read_dir(dir) {
            if entries.next().is_some() {
                return Err(DatasetError::Exists(dir.to_path_buf()));
            }
        }
        let name = dir
            .file_name()
            .map_or_else(|| "dataset".into(), |n| n.to_string_lossy().into_owned());
        let parent = dir
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| Path::new("."));
        let staging = parent.join(format!(".{name}.partial-{}", std::process::id()));
        for table in [&TRACES, &HOPS] {
            let path = staging.join(table.dir);
            std::fs::create_dir_all(&path).map_err(|source| DatasetError::Io { path, source })?;
        }
        let level = ZstdLevel::try_new(3).unwrap_or_default();
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(level))
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_created_by(format!("transitwatch {}", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(Self {
            target: dir.to_path_buf(),
            staging,
            partition: partition.to_vec(),
            parts: HashMap::new(),
            next_file: HashMap::new(),
            props,
            clock: 0,
            written: Written::default(),
        })
    }

    /// Add one trace (and its hops).
    ///
    /// # Errors
    /// A file cannot be opened or written.
    pub fn write(&mut self, row: &TraceRow<'_>) -> Result<(), DatasetError> {
        let key: Vec<String> = self
            .partition
            .iter()
            .map(|p| row.partition_value(*p))
            .collect();
        if !self.parts.contains_key(&key) && self.parts.len() >= OPEN_PARTITIONS {
            self.close_least_recent()?;
        }
        self.clock += 1;
        let clock = self.clock;
        let partition = &self.partition;
        let part = self.parts.entry(key).or_insert_with_key(|key| Part {
            dir: partition
                .iter()
                .zip(key)
                .map(|(p, v)| format!("{}={v}", p.as_str()))
                .collect::<Vec<_>>()
                .join("/"),
            rows: Batches::default(),
            writers: None,
            file: 0,
            used: clock,
        });
        part.used = clock;
        part.rows.push(row);
        if part.rows.traces() >= BATCH_TRACES || part.rows.hops() >= BATCH_HOPS {
            let dir = part.dir.clone();
            self.flush(&dir)?;
        }
        Ok(())
    }

    /// Hand a partition's gathered rows to its files (opening them first).
    fn flush(&mut self, dir: &str) -> Result<(), DatasetError> {
        let Some(part) = self.parts.values_mut().find(|p| p.dir == dir) else {
            return Ok(());
        };
        if part.rows.traces() == 0 {
            return Ok(());
        }
        if part.writers.is_none() {
            let n = self.next_file.entry(part.dir.clone()).or_insert(0);
            part.file = *n;
            *n += 1;
            let open = |table: &super::Table| -> Result<ArrowWriter<File>, DatasetError> {
                let folder = self.staging.join(table.dir).join(&part.dir);
                std::fs::create_dir_all(&folder).map_err(|source| DatasetError::Io {
                    path: folder.clone(),
                    source,
                })?;
                let path = folder.join(format!("part-{:05}.parquet", part.file));
                let file = File::create(&path).map_err(|source| DatasetError::Io {
                    path: path.clone(),
                    source,
                })?;
                ArrowWriter::try_new(
                    file,
                    schema(table, &self.partition),
                    Some(table_props(&self.props, table)),
                )
                .map_err(|e| DatasetError::Parquet {
                    path,
                    message: e.to_string(),
                })
            };
            part.writers = Some((open(&TRACES)?, open(&HOPS)?));
            self.written.files += 2;
        }
        let (traces, hops) = part.rows.take(&self.partition)?;
        self.written.traces += traces.num_rows() as u64;
        self.written.hops += hops.num_rows() as u64;
        if let Some((t, h)) = &mut part.writers {
            let file = |table: &super::Table| {
                self.staging
                    .join(table.dir)
                    .join(&part.dir)
                    .join(format!("part-{:05}.parquet", part.file))
            };
            t.write(&traces).map_err(|e| DatasetError::Parquet {
                path: file(&TRACES),
                message: e.to_string(),
            })?;
            h.write(&hops).map_err(|e| DatasetError::Parquet {
                path: file(&HOPS),
                message: e.to_string(),
            })?;
        }
        Ok(())
    }

    /// Flush and close one partition's files.
    fn close(&mut self, key: &[String]) -> Result<(), DatasetError> {
        let Some(dir) = self.parts.get(key).map(|p| p.dir.clone()) else {
            return Ok(());
        };
        self.flush(&dir)?;
        if let Some(part) = self.parts.remove(key) {
            if let Some((t, h)) = part.writers {
                for (writer, table) in [(t, &TRACES), (h, &HOPS)] {
                    let path = self.staging.join(table.dir).join(&part.dir);
                    // Flushed to disk before the folder is published.
                    let file = writer.into_inner().map_err(|e| DatasetError::Parquet {
                        path: path.clone(),
                        message: e.to_string(),
                    })?;
                    file.sync_all()
                        .map_err(|source| DatasetError::Io { path, source })?;
                }
            }
        }
        Ok(())
    }

    fn close_least_recent(&mut self) -> Result<(), DatasetError> {
        let oldest = self
            .parts
            .iter()
            .min_by_key(|(_, p)| p.used)
            .map(|(k, _)| k.clone());
        match oldest {
            Some(key) => self.close(&key),
            None => Ok(()),
        }
    }

    /// Close every file, add `extra` files (e.g. `provenance.json`) and
    /// move the dataset into place.
    ///
    /// # Errors
    /// A file cannot be written, or the rename fails.
    pub fn finish(mut self, extra: &[(&str, &[u8])]) -> Result<Written, DatasetError> {
        let keys: Vec<Vec<String>> = self.parts.keys().cloned().collect();
        for key in keys {
            self.close(&key)?;
        }
        // No rows: one empty file per table still tells readers the schema.
        if self.written.files == 0 {
            for table in [&TRACES, &HOPS] {
                let path = self.staging.join(table.dir).join("part-00000.parquet");
                let parquet = |e: parquet::errors::ParquetError| DatasetError::Parquet {
                    path: path.clone(),
                    message: e.to_string(),
                };
                let file = File::create(&path).map_err(|source| DatasetError::Io {
                    path: path.clone(),
                    source,
                })?;
                ArrowWriter::try_new(
                    file,
                    schema(table, &self.partition),
                    Some(self.props.clone()),
                )
                .map_err(parquet)?
                .close()
                .map_err(parquet)?;
                self.written.files += 1;
            }
        }
        for (name, bytes) in extra {
            let path = self.staging.join(name);
            std::fs::write(&path, bytes).map_err(|source| DatasetError::Io { path, source })?;
        }
        crate::atomic_file::publish_folder(&self.staging, &self.target).map_err(|source| {
            DatasetError::Io {
                path: self.target.clone(),
                source,
            }
        })?;
        Ok(self.written)
    }
}

/// The writer properties of a file of `table`: `base` with the table's
/// versioned name in the file metadata.
fn table_props(base: &WriterProperties, table: &super::Table) -> WriterProperties {
    base.clone()
        .into_builder()
        .set_key_value_metadata(Some(vec![KeyValue::new(
            "transitwatch.schema".to_string(),
            table.schema.to_string(),
        )]))
        .build()
}

impl Drop for Dataset {
    /// A dataset dropped before [`Dataset::finish`] leaves nothing behind.
    fn drop(&mut self) {
        if self.staging.exists() {
            let _ = std::fs::remove_dir_all(&self.staging);
        }
    }
}

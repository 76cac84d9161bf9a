//! `dataset_metadata` of a Delta table: everything from its transaction log (version, last commit,
//! schema, partitions, files, and the row count and per-column null counts and bounds from the
//! files' statistics), plus sample rows read from the first data files only.

use serde::Serialize;
use serde_json::Value;

use super::{ColumnStats, DatasetMetadata, DatasetMetadataTool, sample_of};
use crate::{
    datasets::{
        self, Dataset, Format,
        delta::{self, ActiveFile, Snapshot, TimeTravel},
    },
    registry::ToolError,
};

/// Data files read at most for the sample rows.
const SAMPLE_FILES: usize = 4;

/// What the log says of a Delta table's snapshot.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct DeltaDetails {
    /// The version described.
    pub version: u64,
    /// When it was committed (RFC 3339): its commit file's modification time, the clock `as_of`
    /// reads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub committed_at: Option<String>,
    /// The operation that made it (`WRITE`, `DELETE`, `MERGE`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// The partition columns.
    pub partition_columns: Vec<String>,
    /// Active data files.
    pub files: usize,
    /// Bytes of the active data files.
    pub bytes: u64,
    /// Rows hidden by deletion vectors (already left out of `row_count`).
    pub deleted_rows: u64,
    /// The reader protocol version.
    pub min_reader_version: i32,
    /// The reader features the table requires (reader version 3).
    pub reader_features: Vec<String>,
}

impl DatasetMetadataTool {
    /// Describes a Delta table at `at` (its latest version when `None`).
    pub(super) async fn describe_delta(
        &self,
        dataset: Dataset,
        at: Option<TimeTravel>,
        sample_rows: usize,
    ) -> Result<DatasetMetadata, ToolError> {
        let snapshot = delta::load(&self.storage, &dataset, at).await?;
        let mut source = "delta-log";
        let row_count = match snapshot.row_count() {
            Some(rows) => rows,
            None => {
                // A writer that recorded no row counts: the Parquet footers have them.
                source = "delta-log+parquet-footer";
                let mut rows = 0;
                for file in &snapshot.files {
                    rows += match file.stats.as_ref().and_then(|stats| stats.num_records) {
                        Some(records) => records,
                        None => self.parquet_footer(&dataset, &file.path, file.size).await?.row_count,
                    }
                    .saturating_sub(file.deleted_rows);
                }
                rows
            }
        };
        let columns = column_stats(&snapshot);
        let sample = self.delta_sample(&snapshot, sample_rows).await?;
        let bytes = snapshot.files.iter().map(|file| file.size).sum();
        let details = DeltaDetails {
            version: snapshot.version,
            committed_at: snapshot
                .timestamp
                .and_then(chrono::DateTime::from_timestamp_millis)
                .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            operation: snapshot.operation.clone(),
            partition_columns: snapshot.partition_columns.clone(),
            files: snapshot.files.len(),
            bytes,
            deleted_rows: snapshot.files.iter().map(|file| file.deleted_rows).sum(),
            min_reader_version: snapshot.protocol.min_reader_version,
            reader_features: snapshot.protocol.reader_features.clone().unwrap_or_default(),
        };
        Ok(DatasetMetadata {
            path: dataset.path,
            table: dataset.name,
            format: Format::Delta,
            size: bytes,
            delimiter: None,
            has_header: None,
            row_count,
            row_groups: None,
            statistics_source: source.into(),
            columns,
            sample,
            delta: Some(details),
        })
    }

    /// The first rows of the snapshot, from its first few data files (by path) only.
    async fn delta_sample(
        &self,
        snapshot: &Snapshot,
        rows: usize,
    ) -> Result<Vec<serde_json::Map<String, Value>>, ToolError> {
        if rows == 0 || snapshot.files.is_empty() {
            return Ok(Vec::new());
        }
        let mut chosen: Vec<&ActiveFile> = Vec::new();
        let mut covered = 0;
        for file in snapshot.files.iter().take(SAMPLE_FILES) {
            chosen.push(file);
            covered +=
                file.stats.as_ref().and_then(|stats| stats.num_records).unwrap_or(0).saturating_sub(file.deleted_rows);
            if covered >= rows as u64 {
                break;
            }
        }
        let local = datasets::open_delta(&self.storage, snapshot, &chosen).await?;
        datasets::blocking(move |_| sample_of(local.scan(Format::Delta, None)?, rows)).await
    }
}

/// Per-column null counts and bounds from the files' statistics (and partition values). A count
/// or bound is given only when every file has it; with deletion vectors whose statistics are not
/// tight, null counts are left out and min/max are bounds that deleted rows may reach.
fn column_stats(snapshot: &Snapshot) -> Vec<ColumnStats> {
    let loose = snapshot
        .files
        .iter()
        .any(|file| file.deleted_rows > 0 && file.stats.as_ref().is_none_or(|stats| stats.tight_bounds != Some(true)));
    snapshot
        .columns
        .iter()
        .map(|column| {
            let name = column.name.as_str();
            let mut stats = ColumnStats::named(column.name.clone(), column.delta_type.clone());
            let files = &snapshot.files;
            if snapshot.partition_columns.iter().any(|partition| partition == name) {
                let typed = |file: &ActiveFile| {
                    file.partition_values.get(name).cloned().flatten().map(|text| partition_value(&column.dtype, text))
                };
                stats.null_count = files
                    .iter()
                    .map(|file| match typed(file) {
                        None => Some(file.stats.as_ref()?.num_records?.saturating_sub(file.deleted_rows)),
                        Some(_) => Some(0),
                    })
                    .sum();
                for value in files.iter().filter_map(typed) {
                    fold_bounds(&mut stats, Some(value.clone()), Some(value));
                }
                return stats;
            }
            let per_file = |field: fn(&delta::Stats) -> &serde_json::Map<String, Value>| {
                files
                    .iter()
                    .map(|file| file.stats.as_ref().and_then(|stats| field(stats).get(name)).cloned())
                    .collect::<Option<Vec<Value>>>()
            };
            if !loose {
                stats.null_count =
                    per_file(|stats| &stats.null_count).and_then(|counts| counts.iter().map(Value::as_u64).sum());
            }
            if let (Some(mins), Some(maxes)) =
                (per_file(|stats| &stats.min_values), per_file(|stats| &stats.max_values))
            {
                for (min, max) in mins.into_iter().zip(maxes) {
                    // Nested columns have objects here; only scalars are bounds.
                    if !min.is_object() && !max.is_object() {
                        fold_bounds(&mut stats, Some(min), Some(max));
                    }
                }
            }
            stats
        })
        .collect()
}

/// A partition value (text in the log) as JSON of its column's type.
fn partition_value(dtype: &polars::prelude::DataType, text: String) -> Value {
    if dtype.is_integer()
        && let Ok(number) = text.parse::<i64>()
    {
        return number.into();
    }
    if dtype.is_float()
        && let Some(number) = text.parse::<f64>().ok().and_then(serde_json::Number::from_f64)
    {
        return Value::Number(number);
    }
    Value::String(text)
}

fn fold_bounds(stats: &mut ColumnStats, min: Option<Value>, max: Option<Value>) {
    if let Some(min) = min.filter(|min| stats.min.as_ref().is_none_or(|old| datasets::json_less(min, old))) {
        stats.min = Some(min);
    }
    if let Some(max) = max.filter(|max| stats.max.as_ref().is_none_or(|old| datasets::json_less(old, max))) {
        stats.max = Some(max);
    }
}

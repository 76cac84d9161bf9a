//! `dataset_metadata`: format, schema, row count and per-column statistics of the datasets under
//! the data root, computed with polars' streaming engine (bounded memory for CSV/NDJSON of any
//! size; see `chunked`) or, for Parquet, read from the file footers without touching the data
//! pages.

mod chunked;
mod delta;

use polars::prelude::{Engine, LazyFrame};
use polars_buffer::Buffer;
use polars_core::query_result::QueryResult;
use polars_parquet::parquet::{read::deserialize_metadata, statistics::Statistics, types::NativeType};
use rmcp::model::ToolAnnotations;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::{
    datasets::{self, Dataset, Format, delta::TimeTravel, rows_of},
    registry::{CallContext, Output, ToolError, TypedTool},
    storage::{EntryKind, ObjectPath, Storage},
};

/// Most datasets described in one call (for a folder).
const MAX_DATASETS: usize = 50;

/// The `dataset_metadata` tool over one data root.
#[derive(Debug, Clone)]
pub struct DatasetMetadataTool {
    storage: Storage,
    timeout: std::time::Duration,
}

impl DatasetMetadataTool {
    /// A `dataset_metadata` tool over `storage`, giving up after `timeout`.
    pub fn new(storage: Storage, timeout: std::time::Duration) -> Self {
        Self { storage, timeout }
    }
}

/// Arguments of `dataset_metadata`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetadataInput {
    /// A dataset file (CSV, TSV, Parquet, NDJSON), a partitioned Parquet folder, a Delta table
    /// folder, or a folder whose datasets should all be described. Empty for the whole root.
    #[serde(default)]
    pub path: String,
    /// Sample rows to include per dataset (default 5, at most 50).
    pub sample_rows: Option<usize>,
    /// Most frequent values to list per text column (default 5, at most 50).
    pub top_values: Option<usize>,
    /// Delta tables: describe this version (time travel).
    pub version: Option<u64>,
    /// Delta tables: describe the newest version committed at or before this time (RFC 3339, or
    /// a date).
    pub as_of: Option<String>,
}

/// Statistics of one column.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ColumnStats {
    /// Column name.
    pub name: String,
    /// polars data type.
    pub dtype: String,
    /// Number of nulls (missing values).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub null_count: Option<u64>,
    /// Number of distinct values (see `distinct_is_approximate`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distinct_count: Option<u64>,
    /// Whether `distinct_count` is a HyperLogLog estimate (about 0.8 % error, used past 250,000
    /// distinct values) rather than an exact count.
    pub distinct_is_approximate: bool,
    /// Smallest value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<Value>,
    /// Largest value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<Value>,
    /// Mean, for numbers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    /// Sample standard deviation, for numbers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub std: Option<f64>,
    /// Most frequent values with their counts, for text columns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_values: Option<Vec<TopValue>>,
}

impl ColumnStats {
    /// A column with no statistics yet.
    fn named(name: String, dtype: String) -> Self {
        Self {
            name,
            dtype,
            null_count: None,
            distinct_count: None,
            distinct_is_approximate: false,
            min: None,
            max: None,
            mean: None,
            std: None,
            top_values: None,
        }
    }
}

/// A value and how often it occurs.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TopValue {
    /// The value.
    pub value: Value,
    /// Its number of occurrences.
    pub count: u64,
}

/// Metadata of one dataset.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DatasetMetadata {
    /// Path relative to the data root.
    pub path: String,
    /// The SQL table name used by `db`.
    pub table: String,
    /// File format.
    pub format: Format,
    /// Size in bytes.
    pub size: u64,
    /// CSV: the detected field separator.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<String>,
    /// CSV: whether the first row was detected as a header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub has_header: Option<bool>,
    /// Number of rows.
    pub row_count: u64,
    /// Parquet: number of row groups.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row_groups: Option<usize>,
    /// Where the statistics come from: `scan` (a streaming pass over the data),
    /// `parquet-footer` (the file's own statistics; no data pages read) or `delta-log` (the
    /// statistics a Delta table's log records per file; no data file read).
    pub statistics_source: String,
    /// Per-column statistics.
    pub columns: Vec<ColumnStats>,
    /// The first rows.
    pub sample: Vec<Map<String, Value>>,
    /// Delta tables: the version and what the log says of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delta: Option<delta::DeltaDetails>,
}

/// Result of `dataset_metadata`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct MetadataOutput {
    /// One entry per dataset described.
    pub datasets: Vec<DatasetMetadata>,
    /// Datasets under the path that were not described (over the per-call limit).
    pub skipped: usize,
}

impl TypedTool for DatasetMetadataTool {
    type Input = MetadataInput;
    type Output = MetadataOutput;
    const NAME: &'static str = "dataset_metadata";
    const TITLE: &'static str = "Dataset metadata";
    const DESCRIPTION: &'static str = "Describe CSV, TSV, Parquet and NDJSON datasets and Delta Lake tables \
        under the data root: format (CSV delimiter and header detected), schema, row count, and per column \
        the null count, distinct count (approximate), min/max/mean/std for numbers, top values for text, \
        plus sample rows. Give a file, a partitioned Parquet folder, a Delta table folder, or a folder to \
        describe every dataset in it. For Delta tables: version, last commit and operation, partitions, \
        files, and statistics from the log (no data file read); `version`/`as_of` pick an older version.";

    fn annotations(&self) -> ToolAnnotations {
        ToolAnnotations::new().read_only(true).destructive(false).idempotent(true).open_world(false)
    }

    fn timeout(&self) -> std::time::Duration {
        self.timeout
    }

    async fn run(&self, input: MetadataInput, context: CallContext) -> Result<Output<MetadataOutput>, ToolError> {
        let sample_rows = input.sample_rows.unwrap_or(5).min(50);
        let at = TimeTravel::from_args(input.version, input.as_of.as_deref()).map_err(ToolError::new)?;
        let top_values = input.top_values.unwrap_or(5).min(50);
        let path = ObjectPath::parse(&input.path)?;
        let chosen = match datasets::delta_table(&self.storage, &path).await? {
            // A Delta table named by its folder is found from its log alone (a big table's data
            // files need no listing).
            Some(table) => vec![table],
            None => {
                let all = datasets::discover(&self.storage).await?;
                let exact: Vec<Dataset> = all.iter().filter(|d| d.path == path.as_str()).cloned().collect();
                if exact.is_empty() {
                    let entry = self.storage.stat(&path).await?;
                    if entry.kind == EntryKind::File {
                        return Err(datasets::DatasetError::NotADataset(path.to_string()).into());
                    }
                    let prefix = if path.is_root() { String::new() } else { format!("{}/", path.as_str()) };
                    all.into_iter().filter(|d| d.path.starts_with(&prefix)).collect()
                } else {
                    exact
                }
            }
        };
        if chosen.is_empty() {
            return Err(ToolError::new(format!("no datasets (CSV, TSV, Parquet, NDJSON, Delta) under `{path}`")));
        }
        if at.is_some() && !chosen.iter().any(|dataset| dataset.format == Format::Delta) {
            return Err(ToolError::new("`version` and `as_of` apply to Delta tables; there is none under this path"));
        }
        let skipped = chosen.len().saturating_sub(MAX_DATASETS);
        let total = chosen.len().min(MAX_DATASETS);
        let mut described = Vec::with_capacity(total);
        for (done, dataset) in chosen.into_iter().take(MAX_DATASETS).enumerate() {
            context.progress.report(done as f64, Some(total as f64), format!("describing {}", dataset.path)).await;
            described.push(match dataset.format {
                Format::Delta => self.describe_delta(dataset, at, sample_rows).await?,
                _ => self.describe(dataset, sample_rows, top_values).await?,
            });
        }
        context.progress.report(total as f64, Some(total as f64), "done").await;
        let text = described.iter().map(summary).collect::<Vec<_>>().join("\n\n");
        Ok(Output { structured: MetadataOutput { datasets: described, skipped }, text })
    }
}

impl DatasetMetadataTool {
    async fn describe(&self, dataset: Dataset, sample_rows: usize, top: usize) -> Result<DatasetMetadata, ToolError> {
        if dataset.format == Format::Parquet {
            let files: Vec<(String, u64)> = if dataset.partitioned {
                dataset.files.iter().map(|file| (file.path.clone(), file.size)).collect()
            } else {
                vec![(dataset.path.clone(), dataset.size)]
            };
            let mut merged: Option<DatasetMetadata> = None;
            for (path, size) in files {
                let footer = self.parquet_footer(&dataset, &path, size).await?;
                merged = Some(match merged {
                    None => footer,
                    Some(total) => merge_footers(total, footer),
                });
            }
            let mut metadata =
                merged.ok_or_else(|| ToolError::new(format!("`{}` holds no Parquet files", dataset.path)))?;
            let local = datasets::local_path(&self.storage, &dataset).await?;
            metadata.sample = datasets::blocking(move |_| {
                sample_of(datasets::scan(Format::Parquet, local.path(), local.files(), None)?, sample_rows)
            })
            .await?;
            return Ok(metadata);
        }
        let dialect = datasets::csv_dialect(&self.storage, &dataset).await?;
        let local = datasets::local_path(&self.storage, &dataset).await?;
        let format = dataset.format;
        let scan =
            datasets::blocking(move |cancel| chunked::scan(local.path(), format, dialect, sample_rows, top, &cancel))
                .await?;
        Ok(DatasetMetadata {
            table: dataset.name.clone(),
            path: dataset.path,
            format: dataset.format,
            size: dataset.size,
            delimiter: dialect.map(|d| (d.separator as char).to_string()),
            has_header: dialect.map(|d| d.has_header),
            row_count: scan.rows,
            row_groups: None,
            statistics_source: "scan".into(),
            columns: scan.columns,
            sample: scan.sample,
            delta: None,
        })
    }

    /// Row count, schema and column statistics from the Parquet footer (two ranged reads).
    async fn parquet_footer(&self, dataset: &Dataset, path: &str, size: u64) -> Result<DatasetMetadata, ToolError> {
        let object = ObjectPath::parse(path)?;
        let tail_len = size.min(8);
        let tail = self.storage.read_range(&object, size - tail_len, tail_len).await?;
        if tail.len() < 8 || &tail[4..] != b"PAR1" {
            return Err(ToolError::new(format!("`{path}` is not a Parquet file (no PAR1 footer)")));
        }
        let footer_len = u64::from(u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]])) + 8;
        if footer_len > size {
            return Err(ToolError::new(format!("`{path}` has a corrupt Parquet footer")));
        }
        let footer = self.storage.read_range(&object, size - footer_len, footer_len).await?;
        let metadata = deserialize_metadata(Buffer::from_vec(footer))
            .map_err(|error| ToolError::new(format!("reading the Parquet footer of `{path}`: {error}")))?;
        let mut columns: Vec<ColumnStats> = metadata
            .schema_descr
            .columns()
            .iter()
            .map(|column| ColumnStats {
                null_count: Some(0),
                ..ColumnStats::named(
                    column.path_in_schema.join("."),
                    format!("{:?}", column.descriptor.primitive_type.physical_type).to_lowercase(),
                )
            })
            .collect();
        for group in &metadata.row_groups {
            for (index, chunk) in group.parquet_columns().iter().enumerate() {
                let Some(column) = columns.get_mut(index) else { continue };
                match chunk.statistics(&metadata.footer_buf) {
                    Some(Ok(statistics)) => merge_statistics(column, &statistics),
                    _ => column.null_count = None,
                }
            }
        }
        if metadata.row_groups.is_empty() {
            columns.iter_mut().for_each(|c| c.null_count = Some(0));
        }
        Ok(DatasetMetadata {
            path: dataset.path.clone(),
            table: dataset.name.clone(),
            format: Format::Parquet,
            size,
            delimiter: None,
            has_header: None,
            row_count: metadata.num_rows as u64,
            row_groups: Some(metadata.row_groups.len()),
            statistics_source: "parquet-footer".into(),
            columns,
            sample: Vec::new(),
            delta: None,
        })
    }
}

/// Adds the footer statistics of another file of a partitioned dataset.
fn merge_footers(mut total: DatasetMetadata, other: DatasetMetadata) -> DatasetMetadata {
    total.row_count += other.row_count;
    total.row_groups = Some(total.row_groups.unwrap_or(0) + other.row_groups.unwrap_or(0));
    for column in other.columns {
        let Some(into) = total.columns.iter_mut().find(|c| c.name == column.name) else { continue };
        into.null_count = into.null_count.zip(column.null_count).map(|(a, b)| a + b);
        if let Some(min) = column.min.filter(|min| into.min.as_ref().is_none_or(|old| datasets::json_less(min, old))) {
            into.min = Some(min);
        }
        if let Some(max) = column.max.filter(|max| into.max.as_ref().is_none_or(|old| datasets::json_less(old, max))) {
            into.max = Some(max);
        }
    }
    total
}

/// Folds one row group's statistics into the column totals.
fn merge_statistics(column: &mut ColumnStats, statistics: &Statistics) {
    fn nulls(column: &mut ColumnStats, count: Option<i64>) {
        column.null_count = match (column.null_count, count) {
            (Some(total), Some(count)) => Some(total + u64::try_from(count).unwrap_or(0)),
            _ => None,
        };
    }
    fn bounds<T: NativeType + Into<f64>>(column: &mut ColumnStats, min: Option<T>, max: Option<T>, integer: bool) {
        let to_json = |value: T| {
            let value: f64 = value.into();
            if integer { json!(value as i64) } else { json!(value) }
        };
        if let Some(min) = min.map(to_json) {
            let smaller = column.min.as_ref().is_none_or(|old| min.as_f64() < old.as_f64());
            if smaller {
                column.min = Some(min);
            }
        }
        if let Some(max) = max.map(to_json) {
            let larger = column.max.as_ref().is_none_or(|old| max.as_f64() > old.as_f64());
            if larger {
                column.max = Some(max);
            }
        }
    }
    match statistics {
        Statistics::Int32(s) => {
            nulls(column, s.null_count);
            bounds(column, s.min_value, s.max_value, true);
        }
        Statistics::Int64(s) => {
            nulls(column, s.null_count);
            bounds(column, s.min_value.map(|v| v as f64), s.max_value.map(|v| v as f64), true);
        }
        Statistics::Float(s) => {
            nulls(column, s.null_count);
            bounds(column, s.min_value, s.max_value, false);
        }
        Statistics::Double(s) => {
            nulls(column, s.null_count);
            bounds(column, s.min_value, s.max_value, false);
        }
        Statistics::Binary(s) => {
            nulls(column, s.null_count);
            let text = |bytes: &Vec<u8>| String::from_utf8_lossy(bytes).into_owned();
            if let Some(min) = s.min_value.as_ref().map(text)
                && column.min.as_ref().and_then(Value::as_str).is_none_or(|old| min.as_str() < old)
            {
                column.min = Some(Value::String(min));
            }
            if let Some(max) = s.max_value.as_ref().map(text)
                && column.max.as_ref().and_then(Value::as_str).is_none_or(|old| max.as_str() > old)
            {
                column.max = Some(Value::String(max));
            }
            if s.distinct_count.is_some() {
                column.distinct_count = s.distinct_count.and_then(|n| u64::try_from(n).ok());
            }
        }
        Statistics::Boolean(s) => nulls(column, s.null_count),
        Statistics::FixedLen(s) => nulls(column, s.null_count),
        Statistics::Int96(s) => nulls(column, s.null_count),
    }
}

fn sample_of(frame: LazyFrame, rows: usize) -> Result<Vec<Map<String, Value>>, datasets::DatasetError> {
    if rows == 0 {
        return Ok(Vec::new());
    }
    Ok(rows_of(&collect(frame.limit(rows as u32))?))
}

fn collect(frame: LazyFrame) -> Result<polars::prelude::DataFrame, datasets::DatasetError> {
    match frame.collect_with_engine(Engine::Streaming)? {
        QueryResult::Single(frame) => Ok(frame),
        QueryResult::Multiple(mut frames) => Ok(frames.pop().unwrap_or_default()),
    }
}

fn summary(metadata: &DatasetMetadata) -> String {
    let mut text = format!(
        "{} ({:?}, {} bytes, {} rows, table `{}`)",
        metadata.path, metadata.format, metadata.size, metadata.row_count, metadata.table
    );
    if let Some(delta) = &metadata.delta {
        text.push_str(&format!(
            "\n  version {} ({}, {}), {} files",
            delta.version,
            delta.operation.as_deref().unwrap_or("unknown operation"),
            delta.committed_at.as_deref().unwrap_or("commit time unknown"),
            delta.files
        ));
        if !delta.partition_columns.is_empty() {
            text.push_str(&format!(", partitioned by {}", delta.partition_columns.join(", ")));
        }
    }
    for column in &metadata.columns {
        text.push_str(&format!("\n  {}: {}", column.name, column.dtype));
        if let Some(nulls) = column.null_count {
            text.push_str(&format!(", {nulls} nulls"));
        }
        if let Some(distinct) = column.distinct_count {
            text.push_str(&format!(", ~{distinct} distinct"));
        }
        if let (Some(min), Some(max)) = (&column.min, &column.max) {
            text.push_str(&format!(", {min} … {max}"));
        }
        if let Some(mean) = column.mean {
            text.push_str(&format!(", mean {mean:.4}"));
        }
    }
    text
}

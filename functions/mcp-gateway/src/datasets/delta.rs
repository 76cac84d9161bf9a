//! Delta Lake tables: a folder holding `_delta_log/` is one table, whose rows are those of the
//! files its transaction log says are active at a version, minus the rows their deletion vectors
//! remove.
//!
//! - The snapshot is replayed from the log (the newest complete Parquet checkpoint at or before
//!   the version, then the JSON commits after it): protocol, metadata (schema, partition columns),
//!   active files with their partition values, statistics and deletion vectors. polars reads the
//!   checkpoint's Parquet and, later, the resolved data files; no second query engine.
//! - A protocol feature this reader cannot honour (column mapping, v2 checkpoints, type widening,
//!   ...) is an error naming it, never rows read the wrong way.
//! - Every file path in the log is resolved to an object path inside the table folder (a path that
//!   would leave it is an error), so polars is only handed files the storage layer checked.
//! - Bounded: at most [`MAX_LOG_BYTES`] of log is read per snapshot, and deletion vectors are
//!   size-checked before they are read.

mod dv;

use std::{
    collections::{BTreeMap, HashMap},
    path::PathBuf,
};

use futures::StreamExt as _;
use polars::prelude::{
    CastColumnsPolicy, DataFrame, DataType, DslBuilder, ExtraColumnsPolicy, Field, IntoLazy as _, JsonFormat,
    JsonWriter, LazyFrame, MissingColumnsPolicy, NULL, ParquetOptions, ParquetReader, PlRefPath, ScanSources, Schema,
    SerReader as _, SerWriter as _, TimeUnit, UnifiedScanArgs, UnionArgs, col, concat, lit,
};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::{Dataset, DatasetError};
pub use crate::storage::delta_tables::{LOG_FOLDER, table_folders};
use crate::storage::{Entry, ObjectPath, Storage, StorageError};

/// The most log bytes (commits and checkpoint) read for one snapshot.
pub const MAX_LOG_BYTES: u64 = 256 << 20;
/// Log files read at once (S3 round trips overlap).
const CONCURRENT_READS: usize = 8;
/// The table property that moves commit times into the commits.
const IN_COMMIT_TIMESTAMPS: &str = "delta.enableInCommitTimestamps";
/// Reader features whose meaning this reader honours.
const SUPPORTED_READER_FEATURES: &[&str] = &["deletionVectors", "timestampNtz", "vacuumProtocolCheck", "columnMapping"];

/// Why a Delta table could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DeltaError {
    /// A protocol feature (or a form of one) this reader does not implement.
    #[error("it uses {0}, which this gateway cannot read yet")]
    Unsupported(String),
    /// The log contradicts itself or the protocol.
    #[error("its log is not valid: {0}")]
    Corrupt(String),
    /// The version asked for cannot be read.
    #[error("{0}")]
    Version(String),
}

/// Which version of a table to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeTravel {
    /// This version.
    Version(u64),
    /// The newest version committed at or before this instant (Unix milliseconds).
    AsOf(i64),
}

impl TimeTravel {
    /// From a call's `version` and `as_of` (RFC 3339, or a date for its midnight UTC) arguments.
    pub fn from_args(version: Option<u64>, as_of: Option<&str>) -> Result<Option<Self>, String> {
        match (version, as_of) {
            (Some(_), Some(_)) => Err("give `version` or `as_of`, not both".to_owned()),
            (Some(version), None) => Ok(Some(Self::Version(version))),
            (None, Some(text)) => parse_instant(text).map(|ms| Some(Self::AsOf(ms))).ok_or_else(|| {
                format!("`as_of` must be an RFC 3339 time (2026-01-31T12:00:00Z) or a date (2026-01-31), not `{text}`")
            }),
            (None, None) => Ok(None),
        }
    }
}

/// Unix milliseconds of an RFC 3339 time, or of a date's midnight UTC.
fn parse_instant(text: &str) -> Option<i64> {
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text.trim()) {
        return Some(time.timestamp_millis());
    }
    let date = chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis())
}

/// The protocol action.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Protocol {
    /// The oldest reader protocol version that can read the table.
    pub min_reader_version: i32,
    /// With reader version 3: the features a reader must support.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reader_features: Option<Vec<String>>,
}

/// The metaData action.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Metadata {
    schema_string: String,
    #[serde(default)]
    partition_columns: Vec<String>,
    #[serde(default, deserialize_with = "string_map")]
    configuration: BTreeMap<String, Option<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Add {
    path: String,
    #[serde(default, deserialize_with = "string_map")]
    partition_values: BTreeMap<String, Option<String>>,
    size: i64,
    stats: Option<String>,
    deletion_vector: Option<dv::Descriptor>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Remove {
    path: String,
    deletion_vector: Option<dv::Descriptor>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CommitInfo {
    timestamp: Option<i64>,
    operation: Option<String>,
}

/// One line of a commit (or row of a checkpoint); other actions (txn, cdc, domainMetadata, ...)
/// do not change what a reader sees.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Action {
    add: Option<Add>,
    remove: Option<Remove>,
    meta_data: Option<Metadata>,
    protocol: Option<Protocol>,
    commit_info: Option<CommitInfo>,
}

/// A string map as the JSON log writes it (`{"k": "v"}`) or as a checkpoint's Parquet map reads
/// back (`[{"key": "k", "value": "v"}]`).
fn string_map<'de, D: Deserializer<'de>>(deserializer: D) -> Result<BTreeMap<String, Option<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Form {
        Object(BTreeMap<String, Option<String>>),
        Pairs(Vec<Pair>),
        Null(()),
    }
    #[derive(Deserialize)]
    struct Pair {
        key: String,
        value: Option<String>,
    }
    Ok(match Form::deserialize(deserializer)? {
        Form::Object(map) => map,
        Form::Pairs(pairs) => pairs.into_iter().map(|pair| (pair.key, pair.value)).collect(),
        Form::Null(()) => BTreeMap::new(),
    })
}

/// A column of the table schema.
#[derive(Debug, Clone)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// Its Delta type, e.g. `long`, `string`, `decimal(10,2)`, `struct`.
    pub delta_type: String,
    /// The polars type it is read as.
    pub dtype: DataType,
}

/// An active data file of a snapshot.
#[derive(Debug, Clone)]
pub struct ActiveFile {
    /// Its object path (under the data root).
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its partition values (`None` for null).
    pub partition_values: BTreeMap<String, Option<String>>,
    /// Its statistics, when the writer recorded them.
    pub stats: Option<Stats>,
    /// Rows its deletion vector removes, when it has one.
    pub deleted_rows: u64,
    deletion_vector: Option<dv::Descriptor>,
    /// Its ETag when the table was found by a listing of its files (Delta writes each data file
    /// once, under a unique name, so path and size identify it without one).
    etag: Option<String>,
}

/// A file's statistics from the log.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Rows in the file (deleted ones included).
    pub num_records: Option<u64>,
    /// Smallest value per column.
    #[serde(default)]
    pub min_values: serde_json::Map<String, Value>,
    /// Largest value per column.
    #[serde(default)]
    pub max_values: serde_json::Map<String, Value>,
    /// Nulls per column.
    #[serde(default)]
    pub null_count: serde_json::Map<String, Value>,
    /// Whether the bounds are exact (false once a deletion vector hides rows).
    pub tight_bounds: Option<bool>,
}

/// One version of a table.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The table folder (under the data root).
    pub path: String,
    /// The version.
    pub version: u64,
    /// When it was committed (Unix milliseconds): its commit file's modification time (the clock
    /// `as_of` uses), else the time its commitInfo records.
    pub timestamp: Option<i64>,
    /// The operation that made it (`WRITE`, `DELETE`, `MERGE`, ...), when recorded.
    pub operation: Option<String>,
    /// The protocol.
    pub protocol: Protocol,
    /// The schema, in table order.
    pub columns: Vec<Column>,
    /// The partition columns.
    pub partition_columns: Vec<String>,
    /// The active files, by path.
    pub files: Vec<ActiveFile>,
    schema_string: String,
}

impl Snapshot {
    /// Rows of the snapshot, when every file has a row count in its statistics.
    pub fn row_count(&self) -> Option<u64> {
        self.files.iter().map(|file| Some(file.stats.as_ref()?.num_records?.saturating_sub(file.deleted_rows))).sum()
    }

    /// Whether some file has rows removed by a deletion vector.
    pub fn has_deletion_vectors(&self) -> bool {
        self.files.iter().any(|file| file.deletion_vector.is_some())
    }
}

/// A log file name's meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LogFile {
    Commit(u64),
    /// A classic checkpoint: its version, part and number of parts.
    Checkpoint(u64, u32, u32),
}

fn log_file(name: &str) -> Option<LogFile> {
    let (version, rest) = name.split_once('.')?;
    if version.len() != 20 || !version.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let version = version.parse().ok()?;
    match rest.split('.').collect::<Vec<_>>().as_slice() {
        ["json"] => Some(LogFile::Commit(version)),
        ["checkpoint", "parquet"] => Some(LogFile::Checkpoint(version, 1, 1)),
        ["checkpoint", part, parts, "parquet"] if part.len() == 10 && parts.len() == 10 => {
            Some(LogFile::Checkpoint(version, part.parse().ok()?, parts.parse().ok()?))
        }
        _ => None,
    }
}

/// Reads the snapshot of `dataset` (a Delta table) at `at` (the newest version when `None`).
pub async fn load(storage: &Storage, dataset: &Dataset, at: Option<TimeTravel>) -> Result<Snapshot, DatasetError> {
    load_snapshot(storage, dataset, at).await.map_err(|error| error.in_table(&dataset.path))
}

/// A failure to read a table: its log's, or the storage's.
enum Failure {
    Delta(DeltaError),
    Dataset(DatasetError),
}

impl Failure {
    fn in_table(self, table: &str) -> DatasetError {
        match self {
            Self::Delta(error) => DatasetError::Delta(format!("Delta table `{table}`: {error}")),
            Self::Dataset(error) => error,
        }
    }
}

impl From<DeltaError> for Failure {
    fn from(error: DeltaError) -> Self {
        Self::Delta(error)
    }
}

impl From<DatasetError> for Failure {
    fn from(error: DatasetError) -> Self {
        Self::Dataset(error)
    }
}

impl From<StorageError> for Failure {
    fn from(error: StorageError) -> Self {
        Self::Dataset(error.into())
    }
}

impl From<crate::storage::PathError> for Failure {
    fn from(error: crate::storage::PathError) -> Self {
        Self::Dataset(StorageError::from(error).into())
    }
}

async fn load_snapshot(storage: &Storage, dataset: &Dataset, at: Option<TimeTravel>) -> Result<Snapshot, Failure> {
    let log_prefix = format!("{}/{LOG_FOLDER}/", dataset.path);
    let mut commits: BTreeMap<u64, &Entry> = BTreeMap::new();
    let mut checkpoints: BTreeMap<u64, BTreeMap<u32, (u32, &Entry)>> = BTreeMap::new();
    for entry in &dataset.files {
        let Some(name) = entry.path.strip_prefix(&log_prefix).filter(|name| !name.contains('/')) else { continue };
        match log_file(name) {
            Some(LogFile::Commit(version)) => {
                commits.insert(version, entry);
            }
            Some(LogFile::Checkpoint(version, part, parts)) => {
                checkpoints.entry(version).or_default().insert(part, (parts, entry));
            }
            None => {}
        }
    }
    // A multi-part checkpoint counts once all its parts are there.
    checkpoints.retain(|_, parts| {
        let count = parts.values().next().map_or(0, |(count, _)| *count);
        parts.len() == count as usize && parts.values().all(|(n, _)| *n == count) && parts.contains_key(&count)
    });
    let latest = commits
        .keys()
        .chain(checkpoints.keys())
        .max()
        .copied()
        .ok_or_else(|| DeltaError::Corrupt(format!("`{LOG_FOLDER}/` holds no commit or checkpoint")))?;
    let version = match at {
        None => latest,
        Some(TimeTravel::Version(version)) if version > latest => {
            return Err(DeltaError::Version(format!("version {version} does not exist; the latest is {latest}")).into());
        }
        Some(TimeTravel::Version(version)) => version,
        Some(TimeTravel::AsOf(ms)) => version_as_of(&commits, ms)?,
    };
    let checkpoint = checkpoints.range(..=version).next_back();
    let first = checkpoint.map_or(0, |(at, _)| at + 1);
    if let Some(missing) = (first..=version).find(|v| !commits.contains_key(v)) {
        let oldest = checkpoints.keys().next().copied().or_else(|| commits.keys().next().copied()).unwrap_or(latest);
        return Err(DeltaError::Version(format!(
            "version {version} cannot be rebuilt: commit {missing} is no longer in the log (cleaned up); \
             the oldest readable version is {oldest}"
        ))
        .into());
    }
    let checkpoint_parts: Vec<&Entry> =
        checkpoint.map(|(_, parts)| parts.values().map(|(_, entry)| *entry).collect()).unwrap_or_default();
    // (version, commit, replayed): the commit of `version` itself is read for its commitInfo even
    // when the checkpoint covers it.
    let mut commit_entries: Vec<(u64, &Entry, bool)> =
        (first..=version).filter_map(|v| Some((v, *commits.get(&v)?, true))).collect();
    if checkpoint.is_some_and(|(at, _)| *at == version)
        && let Some(entry) = commits.get(&version)
    {
        commit_entries.push((version, entry, false));
    }
    let log_bytes: u64 = checkpoint_parts
        .iter()
        .map(|entry| entry.size)
        .chain(commit_entries.iter().map(|(_, entry, _)| entry.size))
        .sum();
    if log_bytes > MAX_LOG_BYTES {
        return Err(DeltaError::Unsupported(format!(
            "{} MiB of log for version {version} (the limit is {} MiB; a newer checkpoint makes it smaller)",
            log_bytes >> 20,
            MAX_LOG_BYTES >> 20
        ))
        .into());
    }
    let mut state = Replay::default();
    for part in &checkpoint_parts {
        let bytes = read_whole(storage, part).await?;
        let actions = super::polars_job(move |_| checkpoint_actions(bytes)).await?;
        state.apply_all(actions, true);
    }
    // Owned futures: a stream of borrowing closures is not `Send` enough for the tools' futures.
    let reads: Vec<_> = commit_entries
        .iter()
        .map(|(_, entry, _)| {
            let (storage, entry) = (storage.clone(), (*entry).clone());
            async move { read_whole(&storage, &entry).await }
        })
        .collect();
    let mut reads = futures::stream::iter(reads).buffered(CONCURRENT_READS);
    for (at, entry, replayed) in &commit_entries {
        let bytes = reads.next().await.ok_or_else(|| DeltaError::Corrupt("a log read went missing".into()))??;
        let actions =
            commit_actions(&bytes).map_err(|error| DeltaError::Corrupt(format!("{}: {error}", entry.path)))?;
        state.apply_all(actions, *replayed);
        if *at == version {
            // The commit's time is its file's modification time, as `as_of` reads it.
            state.timestamp = modified_ms(entry).or(state.info.timestamp);
        }
    }
    state.into_snapshot(dataset, version, matches!(at, Some(TimeTravel::AsOf(_))))
}

/// The newest version whose commit file was written at or before `ms`.
fn version_as_of(commits: &BTreeMap<u64, &Entry>, ms: i64) -> Result<u64, DeltaError> {
    let mut found = None;
    for (&version, entry) in commits {
        let written = modified_ms(entry).ok_or_else(|| {
            DeltaError::Version("the storage reports no modification time for the log; use `version`".into())
        })?;
        if written <= ms {
            found = Some(version);
        }
    }
    found.ok_or_else(|| {
        let first = commits.values().next().and_then(|entry| entry.modified.clone()).unwrap_or_default();
        DeltaError::Version(format!("no version was committed by then; the oldest readable one was committed {first}"))
    })
}

fn modified_ms(entry: &Entry) -> Option<i64> {
    Some(chrono::DateTime::parse_from_rfc3339(entry.modified.as_deref()?).ok()?.timestamp_millis())
}

async fn read_whole(storage: &Storage, entry: &Entry) -> Result<Vec<u8>, StorageError> {
    let object = ObjectPath::parse(&entry.path)?;
    storage.read_range(&object, 0, entry.size).await
}

fn commit_actions(bytes: &[u8]) -> Result<Vec<Action>, serde_json::Error> {
    bytes
        .split(|&b| b == b'\n')
        .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
        .map(serde_json::from_slice)
        .collect()
}

/// The actions of a checkpoint part: polars reads the Parquet, its JSON writer turns the rows back
/// into the log's own JSON form.
fn checkpoint_actions(bytes: Vec<u8>) -> Result<Vec<Action>, DatasetError> {
    let mut reader = ParquetReader::new(std::io::Cursor::new(bytes));
    let schema = reader.schema()?;
    let wanted: Vec<String> = ["add", "remove", "metaData", "protocol"]
        .into_iter()
        .filter(|name| schema.contains(name))
        .map(str::to_owned)
        .collect();
    let mut frame = reader.with_columns(Some(wanted)).finish()?;
    let mut json = Vec::new();
    JsonWriter::new(&mut json).with_json_format(JsonFormat::JsonLines).finish(&mut frame)?;
    commit_actions(&json).map_err(|error| DeltaError::Corrupt(format!("a checkpoint row: {error}")).into_dataset())
}

impl DeltaError {
    fn into_dataset(self) -> DatasetError {
        DatasetError::Delta(self.to_string())
    }
}

/// The state of a replay.
#[derive(Debug, Default)]
struct Replay {
    protocol: Option<Protocol>,
    metadata: Option<Metadata>,
    /// Active files by (path, deletion vector id).
    files: HashMap<(String, Option<String>), Add>,
    info: CommitInfo,
    timestamp: Option<i64>,
}

impl Replay {
    /// Applies a commit's (or checkpoint's) actions; without `replayed` only its commitInfo is
    /// kept (a commit the checkpoint already covers).
    fn apply_all(&mut self, actions: Vec<Action>, replayed: bool) {
        self.info = CommitInfo::default();
        for action in actions {
            if let Some(info) = action.commit_info {
                self.info = info;
            }
            if !replayed {
                continue;
            }
            if let Some(protocol) = action.protocol {
                self.protocol = Some(protocol);
            }
            if let Some(metadata) = action.meta_data {
                self.metadata = Some(metadata);
            }
            if let Some(remove) = action.remove {
                self.files.remove(&(remove.path, remove.deletion_vector.map(|dv| dv.unique_id())));
            }
            if let Some(add) = action.add {
                let key = (add.path.clone(), add.deletion_vector.as_ref().map(dv::Descriptor::unique_id));
                self.files.insert(key, add);
            }
        }
    }

    /// The snapshot the replay reached; `by_time` when the version was picked by `as_of`.
    fn into_snapshot(self, dataset: &Dataset, version: u64, by_time: bool) -> Result<Snapshot, Failure> {
        let protocol = self.protocol.ok_or_else(|| DeltaError::Corrupt("no protocol action".into()))?;
        let metadata = self.metadata.ok_or_else(|| DeltaError::Corrupt("no metaData action".into()))?;
        check_protocol(&protocol, &metadata)?;
        // With in-commit timestamps a version's time is in its commit, not its file: `as_of`
        // by file times could pick another version.
        let in_commit = metadata.configuration.get(IN_COMMIT_TIMESTAMPS).cloned().flatten();
        if by_time && in_commit.is_some_and(|on| on.eq_ignore_ascii_case("true")) {
            return Err(DeltaError::Unsupported(format!(
                "in-commit timestamps (`{IN_COMMIT_TIMESTAMPS}`) for `as_of`; use `version`"
            ))
            .into());
        }
        let columns = parse_schema(&metadata.schema_string)?;
        let listed: HashMap<&str, &Entry> = dataset.files.iter().map(|entry| (entry.path.as_str(), entry)).collect();
        let mut files = Vec::with_capacity(self.files.len());
        for add in self.files.into_values() {
            let path = data_path(&dataset.path, &add.path)?;
            let size = u64::try_from(add.size)
                .map_err(|_| DeltaError::Corrupt(format!("`{}` has a negative size", add.path)))?;
            let stats = match add.stats.as_deref() {
                Some(text) => Some(
                    serde_json::from_str::<Stats>(text)
                        .map_err(|error| DeltaError::Corrupt(format!("statistics of `{}`: {error}", add.path)))?,
                ),
                None => None,
            };
            let deleted_rows = add.deletion_vector.as_ref().map_or(0, |dv| dv.cardinality.unsigned_abs());
            let etag = listed.get(path.as_str()).and_then(|entry| entry.etag.clone());
            // An empty partition value is a null one, whatever the column's type.
            let partition_values =
                add.partition_values.into_iter().map(|(key, value)| (key, value.filter(|v| !v.is_empty()))).collect();
            files.push(ActiveFile {
                path,
                size,
                partition_values,
                stats,
                deleted_rows,
                deletion_vector: add.deletion_vector,
                etag,
            });
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(Snapshot {
            path: dataset.path.clone(),
            version,
            timestamp: self.timestamp,
            operation: self.info.operation,
            protocol,
            columns,
            partition_columns: metadata.partition_columns,
            files,
            schema_string: metadata.schema_string,
        })
    }
}

/// Refuses tables that need a reader feature this reader does not implement.
fn check_protocol(protocol: &Protocol, metadata: &Metadata) -> Result<(), DeltaError> {
    let mapping = metadata.configuration.get("delta.columnMapping.mode").cloned().flatten();
    if let Some(mode) = mapping.filter(|mode| mode != "none") {
        return Err(DeltaError::Unsupported(format!("column mapping (mode `{mode}`)")));
    }
    match protocol.min_reader_version {
        1 | 2 => Ok(()),
        3 => {
            let features = protocol.reader_features.as_deref().unwrap_or_default();
            match features.iter().find(|feature| !SUPPORTED_READER_FEATURES.contains(&feature.as_str())) {
                Some(feature) => Err(DeltaError::Unsupported(format!(
                    "the reader feature `{feature}` (supported: {})",
                    SUPPORTED_READER_FEATURES.join(", ")
                ))),
                None => Ok(()),
            }
        }
        other => Err(DeltaError::Unsupported(format!("reader protocol version {other}"))),
    }
}

/// The object path of a data file the log names (a URI relative to the table folder).
fn data_path(table: &str, uri: &str) -> Result<String, DeltaError> {
    if uri.contains("://") || uri.starts_with('/') || uri.starts_with("file:") {
        return Err(DeltaError::Unsupported(format!(
            "data files outside the table folder (`{uri}`, e.g. a shallow clone)"
        )));
    }
    let decoded = percent_encoding::percent_decode_str(uri)
        .decode_utf8()
        .map_err(|_| DeltaError::Corrupt(format!("file path `{uri}` is not UTF-8")))?;
    let path = ObjectPath::parse(&format!("{table}/{decoded}"))
        .map_err(|error| DeltaError::Corrupt(format!("file path `{uri}`: {error}")))?;
    if !path.as_str().starts_with(&format!("{table}/")) {
        return Err(DeltaError::Corrupt(format!("file path `{uri}` leaves the table folder")));
    }
    Ok(path.as_str().to_owned())
}

/// The columns of a Delta schema (`schemaString`).
fn parse_schema(text: &str) -> Result<Vec<Column>, DeltaError> {
    #[derive(Deserialize)]
    struct Struct {
        fields: Vec<SchemaField>,
    }
    #[derive(Deserialize)]
    struct SchemaField {
        name: String,
        #[serde(rename = "type")]
        kind: Value,
    }
    let schema: Struct =
        serde_json::from_str(text).map_err(|error| DeltaError::Corrupt(format!("the schema: {error}")))?;
    schema
        .fields
        .into_iter()
        .map(|field| {
            let dtype = polars_type(&field.kind, &field.name)?;
            let delta_type = match &field.kind {
                Value::String(name) => name.clone(),
                other => other["type"].as_str().unwrap_or("unknown").to_owned(),
            };
            Ok(Column { name: field.name, delta_type, dtype })
        })
        .collect()
}

/// The polars type a Delta type is read as.
fn polars_type(kind: &Value, column: &str) -> Result<DataType, DeltaError> {
    let unsupported = |what: &str| DeltaError::Unsupported(format!("the type `{what}` (column `{column}`)"));
    Ok(match kind {
        Value::String(name) => match name.as_str() {
            "string" => DataType::String,
            "long" => DataType::Int64,
            "integer" => DataType::Int32,
            "short" => DataType::Int16,
            "byte" => DataType::Int8,
            "float" => DataType::Float32,
            "double" => DataType::Float64,
            "boolean" => DataType::Boolean,
            "binary" => DataType::Binary,
            "date" => DataType::Date,
            "timestamp" => DataType::Datetime(TimeUnit::Microseconds, Some(polars::prelude::TimeZone::UTC)),
            "timestamp_ntz" => DataType::Datetime(TimeUnit::Microseconds, None),
            decimal if decimal.starts_with("decimal(") => {
                let inner = decimal.trim_start_matches("decimal(").trim_end_matches(')');
                let (precision, scale) = inner.split_once(',').ok_or_else(|| unsupported(decimal))?;
                let precision: usize = precision.trim().parse().map_err(|_| unsupported(decimal))?;
                let scale: usize = scale.trim().parse().map_err(|_| unsupported(decimal))?;
                if !(1..=38).contains(&precision) || scale > precision {
                    return Err(unsupported(decimal));
                }
                DataType::Decimal(precision, scale)
            }
            other => return Err(unsupported(other)),
        },
        Value::Object(object) => match object.get("type").and_then(Value::as_str) {
            Some("array") => DataType::List(Box::new(polars_type(&object["elementType"], column)?)),
            Some("struct") => {
                let fields = object["fields"].as_array().map(Vec::as_slice).unwrap_or_default();
                DataType::Struct(
                    fields
                        .iter()
                        .map(|field| {
                            let name = field["name"].as_str().unwrap_or_default();
                            Ok(Field::new(name.into(), polars_type(&field["type"], column)?))
                        })
                        .collect::<Result<_, DeltaError>>()?,
                )
            }
            Some("map") => DataType::List(Box::new(DataType::Struct(vec![
                Field::new("key".into(), polars_type(&object["keyType"], column)?),
                Field::new("value".into(), polars_type(&object["valueType"], column)?),
            ]))),
            other => return Err(unsupported(other.unwrap_or("unknown"))),
        },
        other => return Err(unsupported(&other.to_string())),
    })
}

/// What the SQL worker (or a metadata call) needs to scan a snapshot: local files, partition
/// values, deleted rows. Built by [`plan`], read by [`scan`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScanPlan {
    /// The Delta schema (`schemaString`).
    pub schema: String,
    /// The partition columns.
    pub partition_columns: Vec<String>,
    /// The files to read.
    pub files: Vec<PlannedFile>,
}

/// A data file of a [`ScanPlan`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlannedFile {
    /// Its local path (absolute).
    pub path: PathBuf,
    /// Its partition values.
    pub partition_values: BTreeMap<String, Option<String>>,
    /// Rows removed by its deletion vector, as sorted `[start, end)` ranges.
    pub deleted: Vec<(u64, u64)>,
}

/// The scan plan of `files` (of `snapshot`), whose local copies are `local` (in the same order):
/// reads the deletion vectors.
pub async fn plan(
    storage: &Storage,
    snapshot: &Snapshot,
    files: &[&ActiveFile],
    local: Vec<PathBuf>,
) -> Result<ScanPlan, DatasetError> {
    let mut planned = Vec::with_capacity(files.len());
    for (file, path) in files.iter().zip(local) {
        let deleted = match &file.deletion_vector {
            None => Vec::new(),
            Some(descriptor) => deleted_rows(storage, &snapshot.path, descriptor)
                .await
                .map_err(|error| error.in_table(&snapshot.path))?,
        };
        planned.push(PlannedFile { path, partition_values: file.partition_values.clone(), deleted });
    }
    Ok(ScanPlan {
        schema: snapshot.schema_string.clone(),
        partition_columns: snapshot.partition_columns.clone(),
        files: planned,
    })
}

async fn deleted_rows(storage: &Storage, table: &str, descriptor: &dv::Descriptor) -> Result<Vec<(u64, u64)>, Failure> {
    match descriptor.location()? {
        dv::Location::Inline(bytes) => Ok(dv::deleted_ranges(&bytes, false, descriptor.cardinality)?),
        dv::Location::File { path, offset, len } => {
            let object = ObjectPath::parse(&data_path(table, &path)?)?;
            let bytes = storage.read_range(&object, offset, len).await?;
            Ok(dv::deleted_ranges(&bytes, true, descriptor.cardinality)?)
        }
    }
}

impl ActiveFile {
    /// The file as a storage entry (size from the log), for the S3 cache.
    pub fn entry(&self) -> Entry {
        Entry {
            path: self.path.clone(),
            kind: crate::storage::EntryKind::File,
            size: self.size,
            modified: None,
            etag: self.etag.clone(),
        }
    }
}

/// A lazy scan of a planned snapshot: the data files read with the table schema (columns a file
/// lacks are null), their partition values as columns, deleted rows dropped.
pub fn scan(plan: &ScanPlan) -> Result<LazyFrame, DatasetError> {
    if let Some(not_local) = plan.files.iter().find(|file| !file.path.is_absolute()) {
        return Err(DatasetError::NotLocal(not_local.path.display().to_string()));
    }
    let columns = parse_schema(&plan.schema).map_err(DeltaError::into_dataset)?;
    let full: Schema = columns.iter().map(|c| Field::new(c.name.as_str().into(), c.dtype.clone())).collect();
    if plan.files.is_empty() {
        return Ok(DataFrame::empty_with_schema(&full).lazy());
    }
    let data: Schema = columns
        .iter()
        .filter(|c| !plan.partition_columns.contains(&c.name))
        .map(|c| Field::new(c.name.as_str().into(), c.dtype.clone()))
        .collect();
    let data = std::sync::Arc::new(data);
    // Files without deletions are scanned together, one scan per partition.
    let mut groups: BTreeMap<&BTreeMap<String, Option<String>>, Vec<&PlannedFile>> = BTreeMap::new();
    let mut frames = Vec::new();
    for file in &plan.files {
        if file.deleted.is_empty() {
            groups.entry(&file.partition_values).or_default().push(file);
        }
    }
    for (values, files) in groups {
        let frame = parquet_scan(files.iter().map(|file| &file.path), data.clone())?;
        frames.push(finish(frame, values, &columns)?);
    }
    for file in plan.files.iter().filter(|file| !file.deleted.is_empty()) {
        // One file, read whole and in order: a row's position is its index in the file.
        let rows = parquet_scan(std::iter::once(&file.path), data.clone())?.collect()?;
        let keep: polars::prelude::BooleanChunked = (0..rows.height() as u64)
            .map(|row| {
                let at = file.deleted.partition_point(|(start, _)| *start <= row);
                at == 0 || file.deleted.get(at - 1).is_none_or(|(_, end)| row >= *end)
            })
            .collect();
        let rows = rows.filter(&keep)?;
        frames.push(finish(rows.lazy(), &file.partition_values, &columns)?);
    }
    Ok(concat(frames, UnionArgs { rechunk: false, ..UnionArgs::default() })?)
}

/// A Parquet scan of `paths` read as `schema` (missing columns null, extra ones ignored, integer,
/// float and timestamp precision differences cast as Delta's readers do).
fn parquet_scan<'a>(
    paths: impl Iterator<Item = &'a PathBuf>,
    schema: polars::prelude::SchemaRef,
) -> Result<LazyFrame, DatasetError> {
    let paths: polars_buffer::Buffer<PlRefPath> =
        paths.map(|path| PlRefPath::new(path.to_string_lossy().into_owned())).collect();
    let args = UnifiedScanArgs {
        glob: false,
        cast_columns_policy: CastColumnsPolicy {
            integer_upcast: true,
            float_upcast: true,
            datetime_nanoseconds_downcast: true,
            datetime_microseconds_downcast: false,
            datetime_convert_timezone: true,
            ..CastColumnsPolicy::ERROR_ON_MISMATCH
        },
        missing_columns_policy: MissingColumnsPolicy::Insert,
        extra_columns_policy: ExtraColumnsPolicy::Ignore,
        ..UnifiedScanArgs::default()
    };
    let options = ParquetOptions { schema: Some(schema), ..ParquetOptions::default() };
    Ok(DslBuilder::scan_parquet(ScanSources::Paths(paths), options, args)?.build().into())
}

/// Adds the partition values as columns and puts the columns in table order.
fn finish(
    frame: LazyFrame,
    values: &BTreeMap<String, Option<String>>,
    columns: &[Column],
) -> Result<LazyFrame, DatasetError> {
    let select: Vec<_> = columns
        .iter()
        .map(|column| match values.get(&column.name) {
            Some(Some(value)) => lit(value.as_str()).cast(column.dtype.clone()).alias(column.name.as_str()),
            Some(None) => lit(NULL).cast(column.dtype.clone()).alias(column.name.as_str()),
            None => col(column.name.as_str()),
        })
        .collect();
    Ok(frame.select(select))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_file_names() {
        assert_eq!(log_file("00000000000000000007.json"), Some(LogFile::Commit(7)));
        assert_eq!(log_file("00000000000000000010.checkpoint.parquet"), Some(LogFile::Checkpoint(10, 1, 1)));
        assert_eq!(
            log_file("00000000000000000010.checkpoint.0000000002.0000000003.parquet"),
            Some(LogFile::Checkpoint(10, 2, 3))
        );
        for other in [
            "_last_checkpoint",
            "00000000000000000007.crc",
            "7.json",
            "00000000000000000010.checkpoint.3a0d65cd-4056-49b8-937b-95f9e3ee90e5.json",
        ] {
            assert_eq!(log_file(other), None, "{other}");
        }
    }

    /// A log that names a file outside its table must not get it read.
    #[test]
    fn data_paths_stay_inside_the_table() {
        assert_eq!(data_path("t", "part-0.parquet").ok().as_deref(), Some("t/part-0.parquet"));
        assert_eq!(data_path("a/t", "x=a%20b/part-0.parquet").ok().as_deref(), Some("a/t/x=a b/part-0.parquet"));
        for hostile in [
            "../secret.parquet",
            "%2E%2E/secret.parquet",
            "/etc/passwd",
            "s3://other/x.parquet",
            "file:///x",
            "x/../../y",
        ] {
            assert!(data_path("t", hostile).is_err(), "{hostile}");
        }
    }

    #[test]
    fn unsupported_features_are_named() {
        let metadata = |mode: Option<&str>| Metadata {
            schema_string: String::new(),
            partition_columns: Vec::new(),
            configuration: mode
                .map(|m| ("delta.columnMapping.mode".to_owned(), Some(m.to_owned())))
                .into_iter()
                .collect(),
        };
        let protocol = |version, features: &[&str]| Protocol {
            min_reader_version: version,
            reader_features: Some(features.iter().map(|f| (*f).to_owned()).collect()),
        };
        assert!(check_protocol(&protocol(1, &[]), &metadata(None)).is_ok());
        assert!(check_protocol(&protocol(3, &["deletionVectors", "timestampNtz"]), &metadata(None)).is_ok());
        let refused = |p, m| check_protocol(&p, &m).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(refused(protocol(3, &["v2Checkpoint"]), metadata(None)).contains("`v2Checkpoint`"));
        assert!(refused(protocol(2, &[]), metadata(Some("name"))).contains("column mapping (mode `name`)"));
        assert!(refused(protocol(4, &[]), metadata(None)).contains("reader protocol version 4"));
    }

    /// `as_of` compares commit file times; a table whose commit times live in its commits must
    /// not be read by them.
    #[test]
    fn as_of_is_refused_on_tables_with_in_commit_timestamps() {
        let replay = |on: &str| Replay {
            protocol: Some(Protocol { min_reader_version: 1, reader_features: None }),
            metadata: Some(Metadata {
                schema_string: r#"{"type":"struct","fields":[{"name":"a","type":"long"}]}"#.into(),
                partition_columns: Vec::new(),
                configuration: BTreeMap::from([(IN_COMMIT_TIMESTAMPS.to_owned(), Some(on.to_owned()))]),
            }),
            ..Replay::default()
        };
        let table = Dataset {
            name: "t".into(),
            path: "t".into(),
            format: super::super::Format::Delta,
            size: 0,
            partitioned: false,
            etag: None,
            files: Vec::new(),
        };
        let refused = |on, by_time| match replay(on).into_snapshot(&table, 0, by_time) {
            Err(error) => error.in_table("t").to_string(),
            Ok(_) => String::new(),
        };
        assert!(refused("true", true).contains("in-commit timestamps"), "{}", refused("true", true));
        assert_eq!(refused("true", false), "", "reading by version is fine");
        assert_eq!(refused("false", true), "");
    }

    #[test]
    fn schemas_map_to_polars_types() {
        let schema = r#"{"type":"struct","fields":[
            {"name":"id","type":"long","nullable":true,"metadata":{}},
            {"name":"price","type":"decimal(10,2)","nullable":true,"metadata":{}},
            {"name":"at","type":"timestamp","nullable":true,"metadata":{}},
            {"name":"tags","type":{"type":"array","elementType":"string","containsNull":true},"nullable":true,"metadata":{}}]}"#;
        let columns = parse_schema(schema).unwrap_or_default();
        let types: Vec<(&str, &str)> = columns.iter().map(|c| (c.name.as_str(), c.delta_type.as_str())).collect();
        assert_eq!(types, [("id", "long"), ("price", "decimal(10,2)"), ("at", "timestamp"), ("tags", "array")]);
        assert_eq!(columns[1].dtype, DataType::Decimal(10, 2));
        let variant = r#"{"type":"struct","fields":[{"name":"v","type":"variant","nullable":true,"metadata":{}}]}"#;
        assert!(parse_schema(variant).err().is_some_and(|e| e.to_string().contains("`variant` (column `v`)")));
    }

    #[test]
    fn maps_read_in_both_log_forms() {
        let json: Action =
            serde_json::from_str(r#"{"add":{"path":"p","partitionValues":{"y":"1","z":null},"size":1}}"#)
                .unwrap_or_default();
        let pairs: Action = serde_json::from_str(
            r#"{"add":{"path":"p","partitionValues":[{"key":"y","value":"1"},{"key":"z","value":null}],"size":1}}"#,
        )
        .unwrap_or_default();
        let values = |action: &Action| action.add.as_ref().map(|add| add.partition_values.clone());
        assert_eq!(values(&json), values(&pairs));
        assert_eq!(values(&json).map(|v| v.len()), Some(2));
    }

    #[test]
    fn time_travel_arguments() {
        assert_eq!(TimeTravel::from_args(Some(3), None), Ok(Some(TimeTravel::Version(3))));
        assert_eq!(TimeTravel::from_args(None, Some("1970-01-02")), Ok(Some(TimeTravel::AsOf(86_400_000))));
        assert_eq!(TimeTravel::from_args(None, Some("1970-01-01T01:00:00+01:00")), Ok(Some(TimeTravel::AsOf(0))));
        assert!(TimeTravel::from_args(Some(1), Some("1970-01-02")).is_err());
        assert!(TimeTravel::from_args(None, Some("yesterday")).is_err());
    }

    /// Regression: polars turns COUNT(*) over a union (a table of several partitions) into a sum
    /// cast to UInt128, which panicked the SQL worker without polars' `dtype-u128`.
    #[test]
    fn partitions_and_deletion_vectors_scan_through_sql() {
        let Ok(table) = std::path::absolute("../../tests/e2e/fixtures/delta/table-with-dv-small") else {
            return;
        };
        let data = table.join("part-00000-fae5310a-a37d-4e51-827b-c3d5516560ca-c000.snappy.parquet");
        let partition = |value: &str| BTreeMap::from([("p".to_owned(), Some(value.to_owned()))]);
        let plan = ScanPlan {
            schema: r#"{"type":"struct","fields":[{"name":"value","type":"integer","nullable":true,"metadata":{}},
                {"name":"p","type":"string","nullable":true,"metadata":{}}]}"#
                .into(),
            partition_columns: vec!["p".into()],
            files: vec![
                PlannedFile { path: data.clone(), partition_values: partition("a"), deleted: vec![(0, 1), (9, 10)] },
                PlannedFile { path: data, partition_values: partition("b"), deleted: Vec::new() },
            ],
        };
        let frame = scan(&plan).map_err(|error| error.to_string());
        let mut context = polars_sql::SQLContext::new();
        context.register("t", frame.unwrap_or_else(|error| panic!("{error}")));
        let sql = "SELECT COUNT(*) AS n, SUM(value) AS total, SUM(CASE WHEN p = 'a' THEN 1 ELSE 0 END) AS in_a FROM t";
        let result = context.execute(sql).and_then(|query| query.collect());
        let rows = result.map(|frame| crate::datasets::rows_of(&frame)).map_err(|error| error.to_string());
        let row = rows.ok().and_then(|rows| rows.into_iter().next()).unwrap_or_default();
        assert_eq!(row.get("n"), Some(&Value::from(18u32)), "{row:?}");
        assert_eq!(row.get("total"), Some(&Value::from(36 + 45)) /* 1..=8, 0..=9 */, "{row:?}");
        assert_eq!(row.get("in_a").and_then(Value::as_i64), Some(8), "{row:?}");
    }
}

//! Datasets: the tables (CSV, TSV, Parquet, NDJSON files, hive-partitioned Parquet folders and
//! Delta Lake tables) under the data root, named after their paths, and their local files for
//! polars.
//!
//! polars reads local files; for an S3 root each dataset is streamed to a local cache first
//! (`cache`: keyed by ETag, so an unchanged object is fetched once per instance), never held
//! whole in memory. polars is only ever handed paths built here: a dataset's own file under a
//! local root (its real path, checked to be inside the root) or its cached copy.

mod cache;
pub mod delta;

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use polars::prelude::{
    AnyValue, DataFrame, LazyCsvReader, LazyFileListReader as _, LazyFrame, LazyJsonLineReader, PlRefPath,
    ScanArgsParquet,
};
use serde_json::{Map, Value};

use crate::storage::{Entry, EntryKind, ObjectPath, Storage, StorageError};

pub use cache::{CacheSettings, configure_cache};

/// A file format polars can scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Comma- (or otherwise) separated values with a header row.
    Csv,
    /// Tab-separated values with a header row.
    Tsv,
    /// Apache Parquet (one file, or a hive-partitioned folder of files).
    Parquet,
    /// Newline-delimited JSON objects.
    Ndjson,
    /// A Delta Lake table (a folder holding `_delta_log/`).
    Delta,
}

impl Format {
    /// The format of `path`, by extension.
    pub fn of(path: &str) -> Option<Self> {
        let extension = path.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase())?;
        match extension.as_str() {
            "csv" => Some(Self::Csv),
            "tsv" | "tab" => Some(Self::Tsv),
            "parquet" | "pq" => Some(Self::Parquet),
            "ndjson" | "jsonl" => Some(Self::Ndjson),
            _ => None,
        }
    }
}

/// One table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct Dataset {
    /// The SQL table name: the path without its extension, non-alphanumerics as `_` (with the
    /// extension appended when two datasets would otherwise share a name).
    pub name: String,
    /// Path relative to the data root (a folder for partitioned Parquet and Delta tables).
    pub path: String,
    /// File format.
    pub format: Format,
    /// Size in bytes (all files, for a folder; for a Delta table its log and the files of older
    /// versions too).
    pub size: u64,
    /// Whether this is a hive-partitioned folder (`key=value/` sub-folders).
    pub partitioned: bool,
    /// ETag of the file, when the backend reports one.
    #[serde(skip)]
    pub etag: Option<String>,
    /// The files of a partitioned folder (of a Delta table: every file under its folder).
    #[serde(skip)]
    pub files: Vec<Entry>,
}

/// Why a dataset could not be found or opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DatasetError {
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// polars failed to open or scan it.
    #[error("{0}")]
    Polars(#[from] polars::prelude::PolarsError),
    /// Local cache IO failed.
    #[error("dataset cache: {0}")]
    Io(#[from] std::io::Error),
    /// No such table.
    #[error("no table named `{0}`; action=tables lists them")]
    UnknownTable(String),
    /// The S3 download cache cannot hold the dataset.
    #[error("{0}")]
    Cache(String),
    /// A path for polars that is not an absolute local path (it could be read as a URL).
    #[error("`{0}` is not an absolute local path; polars is only given those")]
    NotLocal(String),
    /// The call that started the work has gone (timed out or cancelled).
    #[error("stopped: the call timed out or was cancelled")]
    Cancelled,
    /// Not a dataset.
    #[error("`{0}` is not a dataset (CSV, TSV, Parquet or NDJSON file, partitioned Parquet folder or Delta table)")]
    NotADataset(String),
    /// A Delta table that cannot be read (as asked).
    #[error("{0}")]
    Delta(String),
    /// The blocking pool could not run polars work.
    #[error("{0}")]
    Worker(String),
}

/// The table name for a dataset path: `sales/orders.csv` → `sales_orders`.
pub fn table_name(path: &str) -> String {
    let stem = match path.rsplit_once('.') {
        Some((stem, ext)) if Format::of(&format!("x.{ext}")).is_some() => stem,
        _ => path,
    };
    let mut name: String =
        stem.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert(0, 't');
    }
    name
}

/// Every dataset under the root, sorted by name.
pub async fn discover(storage: &Storage) -> Result<Vec<Dataset>, StorageError> {
    let entries = storage.list(&ObjectPath::root(), true).await?;
    Ok(from_entries(&entries))
}

fn from_entries(all: &[Entry]) -> Vec<Dataset> {
    let hidden = |path: &str| path.split('/').any(|segment| segment.starts_with('.'));
    // A folder holding `_delta_log/` is a Delta table: one dataset, never its loose files.
    let delta_roots = delta::table_folders(all, |root| !hidden(root));
    let in_delta = |path: &str| delta_roots.iter().any(|root| path.starts_with(&format!("{root}/")));
    let entries: Vec<Entry> = all.iter().filter(|entry| !in_delta(&entry.path)).cloned().collect();
    // A folder is a partitioned dataset when it has `key=value` sub-folders holding Parquet.
    let mut partitioned_roots: Vec<String> = Vec::new();
    for entry in entries.iter().filter(|e| e.kind == EntryKind::File && Format::of(&e.path) == Some(Format::Parquet)) {
        let segments: Vec<&str> = entry.path.split('/').collect();
        if let Some(first) = segments.iter().position(|segment| segment.contains('='))
            && first > 0
            && first < segments.len() - 1
        {
            let root = segments[..first].join("/");
            if !partitioned_roots.contains(&root) {
                partitioned_roots.push(root);
            }
        }
    }
    let mut datasets: Vec<Dataset> = partitioned_roots
        .iter()
        .filter(|root| !hidden(root))
        .map(|root| {
            let prefix = format!("{root}/");
            let files: Vec<Entry> = entries
                .iter()
                .filter(|e| {
                    e.kind == EntryKind::File
                        && e.path.starts_with(&prefix)
                        && Format::of(&e.path) == Some(Format::Parquet)
                })
                .cloned()
                .collect();
            Dataset {
                name: table_name(root),
                path: root.clone(),
                format: Format::Parquet,
                size: files.iter().map(|f| f.size).sum(),
                partitioned: true,
                etag: None,
                files,
            }
        })
        .collect();
    for root in &delta_roots {
        let prefix = format!("{root}/");
        let files: Vec<Entry> =
            all.iter().filter(|e| e.kind == EntryKind::File && e.path.starts_with(&prefix)).cloned().collect();
        datasets.push(Dataset {
            name: table_name(root),
            path: root.clone(),
            format: Format::Delta,
            size: files.iter().map(|f| f.size).sum(),
            partitioned: false,
            etag: None,
            files,
        });
    }
    for entry in entries.iter().filter(|e| e.kind == EntryKind::File && !hidden(&e.path)) {
        let inside_partitioned = partitioned_roots.iter().any(|root| entry.path.starts_with(&format!("{root}/")));
        if let (Some(format), false) = (Format::of(&entry.path), inside_partitioned) {
            datasets.push(Dataset {
                name: table_name(&entry.path),
                path: entry.path.clone(),
                format,
                size: entry.size,
                partitioned: false,
                etag: entry.etag.clone(),
                files: Vec::new(),
            });
        }
    }
    // `x.csv` and `x.parquet` would both be `x`: such names get their extension appended.
    let mut seen = std::collections::HashMap::<String, usize>::new();
    for dataset in &datasets {
        *seen.entry(dataset.name.clone()).or_default() += 1;
    }
    for dataset in &mut datasets {
        if seen.get(&dataset.name).is_some_and(|&count| count > 1) {
            let extension = dataset.path.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase()).unwrap_or_default();
            dataset.name = format!("{}_{extension}", dataset.name);
        }
    }
    datasets.sort_by(|a, b| a.name.cmp(&b.name));
    datasets
}

/// The Delta table whose folder is `path`, found from a listing of its log alone (no listing of
/// the root or of the table's data files); `None` when `path` holds no `_delta_log/`.
pub async fn delta_table(storage: &Storage, path: &ObjectPath) -> Result<Option<Dataset>, StorageError> {
    let hidden = path.segments().any(|segment| segment.starts_with('.'));
    if path.is_root() || hidden || Format::of(path.as_str()).is_some() {
        return Ok(None);
    }
    let log = ObjectPath::parse(&format!("{}/{}", path.as_str(), delta::LOG_FOLDER))?;
    let files: Vec<Entry> = match storage.list(&log, false).await {
        Ok(entries) => entries.into_iter().filter(|entry| entry.kind == EntryKind::File).collect(),
        Err(StorageError::NotFound(_) | StorageError::WrongKind { .. }) => return Ok(None),
        // `path` is a file.
        Err(StorageError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotADirectory => return Ok(None),
        Err(error) => return Err(error),
    };
    if files.is_empty() {
        return Ok(None);
    }
    Ok(Some(Dataset {
        name: table_name(path.as_str()),
        path: path.as_str().to_owned(),
        format: Format::Delta,
        size: files.iter().map(|file| file.size).sum(),
        partitioned: false,
        etag: None,
        files,
    }))
}

/// The dataset at `path` (a file or a partitioned folder).
pub async fn find(storage: &Storage, path: &str) -> Result<Dataset, DatasetError> {
    let wanted = ObjectPath::parse(path).map_err(StorageError::from)?;
    let datasets = discover(storage).await?;
    datasets
        .into_iter()
        .find(|dataset| dataset.path == wanted.as_str())
        .ok_or_else(|| DatasetError::NotADataset(wanted.to_string()))
}

/// The local files of a dataset, for polars: kept in the S3 cache (never evicted) while this
/// value lives.
#[derive(Debug)]
pub struct LocalDataset {
    path: PathBuf,
    files: Vec<PathBuf>,
    delta: Option<delta::ScanPlan>,
    _pin: Option<cache::Pin>,
}

impl LocalDataset {
    /// The file, or the folder of a partitioned dataset or Delta table.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The files of a partitioned dataset (empty for a single file and a Delta table).
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// The scan plan of a Delta table's snapshot.
    pub fn delta(&self) -> Option<&delta::ScanPlan> {
        self.delta.as_ref()
    }

    /// A lazy scan of the dataset (of `format`, with the CSV `dialect` when it has one).
    pub fn scan(&self, format: Format, dialect: Option<CsvDialect>) -> Result<LazyFrame, DatasetError> {
        match &self.delta {
            Some(plan) => delta::scan(plan),
            None => scan(format, &self.path, &self.files, dialect),
        }
    }
}

/// The local files polars reads for `dataset`: on a local root its real path (checked to be inside
/// the root; a partitioned folder's listed files, never a glob that could follow a link out), on
/// S3 a cached copy streamed from the bucket. A Delta table is read at its latest version.
pub async fn local_path(storage: &Storage, dataset: &Dataset) -> Result<LocalDataset, DatasetError> {
    open(storage, dataset, None).await
}

/// As [`local_path`], with a Delta table read at the version `at` picks.
pub async fn open(
    storage: &Storage,
    dataset: &Dataset,
    at: Option<delta::TimeTravel>,
) -> Result<LocalDataset, DatasetError> {
    if dataset.format == Format::Delta {
        let snapshot = delta::load(storage, dataset, at).await?;
        let files: Vec<&delta::ActiveFile> = snapshot.files.iter().collect();
        return open_delta(storage, &snapshot, &files).await;
    }
    match storage {
        Storage::Local(root) => {
            let object = ObjectPath::parse(&dataset.path).map_err(StorageError::from)?;
            if dataset.partitioned {
                let folder = root.path().join(object.as_str());
                let files = dataset.files.iter().map(|file| root.path().join(&file.path)).collect();
                Ok(LocalDataset { path: folder, files, delta: None, _pin: None })
            } else {
                let path = root.real_path(&object)?;
                Ok(LocalDataset { path, files: Vec::new(), delta: None, _pin: None })
            }
        }
        Storage::S3(_) => cache::fetch(storage, dataset).await,
    }
}

/// The local copies of some active `files` of a Delta `snapshot` (their real paths under a local
/// root, checked to be inside it; cached copies from S3) with their scan plan.
pub async fn open_delta(
    storage: &Storage,
    snapshot: &delta::Snapshot,
    files: &[&delta::ActiveFile],
) -> Result<LocalDataset, DatasetError> {
    let (path, local, pin) = match storage {
        Storage::Local(root) => {
            let mut local = Vec::with_capacity(files.len());
            for file in files {
                local.push(root.real_path(&ObjectPath::parse(&file.path).map_err(StorageError::from)?)?);
            }
            (root.path().join(&snapshot.path), local, None)
        }
        Storage::S3(_) => {
            let entries: Vec<Entry> = files.iter().map(|file| file.entry()).collect();
            // A multi-file dataset for the cache: one cached folder per set of active files.
            let active = Dataset {
                name: table_name(&snapshot.path),
                path: snapshot.path.clone(),
                format: Format::Delta,
                size: entries.iter().map(|entry| entry.size).sum(),
                partitioned: true,
                etag: None,
                files: entries,
            };
            let fetched = cache::fetch(storage, &active).await?;
            (fetched.path, fetched.files, fetched._pin)
        }
    };
    let plan = delta::plan(storage, snapshot, files, local).await?;
    Ok(LocalDataset { path, files: Vec::new(), delta: Some(plan), _pin: pin })
}

/// The CSV dialect of a CSV/TSV dataset, sniffed from its first 64 KiB (`None` for other formats).
/// `db` and `dataset_metadata` both read CSV through this one detection.
pub async fn csv_dialect(storage: &Storage, dataset: &Dataset) -> Result<Option<CsvDialect>, DatasetError> {
    if !matches!(dataset.format, Format::Csv | Format::Tsv) {
        return Ok(None);
    }
    let object = ObjectPath::parse(&dataset.path).map_err(StorageError::from)?;
    let head = storage.read_range(&object, 0, SNIFF_BYTES).await?;
    Ok(Some(CsvDialect::sniff(&head, dataset.format == Format::Tsv)))
}

/// How much of a CSV file the dialect is detected from.
const SNIFF_BYTES: u64 = 64 * 1024;

/// polars jobs on the blocking pool at once, so that the rest of the pool (16 threads) stays free
/// for file reads and listings however many long polars calls are running.
const POLARS_JOBS: usize = 4;
static POLARS_SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(POLARS_JOBS);

/// Set once the call that started a piece of polars work has gone (timed out or cancelled); long
/// work checks it between chunks and stops.
#[derive(Debug, Clone, Default)]
pub struct Cancelled(Arc<AtomicBool>);

impl Cancelled {
    /// Whether the caller has gone.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Tells the work that its caller has gone.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// `Err(Cancelled)` once the caller has gone.
    pub fn check(&self) -> Result<(), DatasetError> {
        if self.is_set() { Err(DatasetError::Cancelled) } else { Ok(()) }
    }
}

/// Runs polars work on the blocking pool (at most [`POLARS_JOBS`] at once), as a tool error on
/// failure (see [`polars_job`]).
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce(Cancelled) -> Result<T, DatasetError> + Send + 'static,
) -> Result<T, crate::registry::ToolError> {
    polars_job(work).await.map_err(crate::registry::ToolError::from)
}

/// Runs polars work on the blocking pool, at most [`POLARS_JOBS`] at once. When the returned
/// future is dropped (the call timed out or was cancelled), the work is told so through its
/// [`Cancelled`].
pub async fn polars_job<T: Send + 'static>(
    work: impl FnOnce(Cancelled) -> Result<T, DatasetError> + Send + 'static,
) -> Result<T, DatasetError> {
    struct CancelOnDrop(Cancelled);
    impl Drop for CancelOnDrop {
        fn drop(&mut self) {
            self.0.cancel();
        }
    }
    let _slot = POLARS_SLOTS
        .acquire()
        .await
        .map_err(|_| DatasetError::Worker("the dataset workers are shutting down".into()))?;
    let cancelled = Cancelled::default();
    let _on_drop = CancelOnDrop(cancelled.clone());
    tokio::task::spawn_blocking(move || work(cancelled))
        .await
        .map_err(|error| DatasetError::Worker(format!("dataset worker failed: {error}")))?
}

/// Orders two JSON scalars of the same kind (numbers, strings, booleans); others are unordered.
pub fn json_less(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() < y.as_f64(),
        (Value::String(x), Value::String(y)) => x < y,
        (Value::Bool(x), Value::Bool(y)) => !x & y,
        _ => false,
    }
}

/// Options for reading CSV: separator, and whether the first row is a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CsvDialect {
    /// The field separator.
    pub separator: u8,
    /// Whether the first row holds column names.
    pub has_header: bool,
}

impl CsvDialect {
    /// Detects the separator and header of a CSV from its first bytes: the candidate that splits
    /// the first lines (outside quotes) into the same number (> 1) of fields wins; the first row
    /// is a header unless it looks like data (a numeric field where later rows have numbers too).
    pub fn sniff(head: &[u8], tsv: bool) -> Self {
        let text = String::from_utf8_lossy(head);
        let mut lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).take(20).collect();
        if head.len() as u64 >= SNIFF_BYTES && lines.len() > 1 {
            lines.pop(); // the last line may be cut
        }
        let mut separator = if tsv { b'\t' } else { b',' };
        let mut best = 0usize;
        for candidate in [b',', b';', b'\t', b'|'] {
            let counts: Vec<usize> = lines.iter().map(|line| split_fields(line, candidate).len()).collect();
            let Some(&first) = counts.first() else { continue };
            let consistent = counts.iter().all(|&n| n == first);
            if first > 1 && consistent && first > best {
                best = first;
                separator = candidate;
            }
        }
        let numeric = |field: &str| field.trim().trim_matches('"').parse::<f64>().is_ok();
        let has_header = match (lines.first(), lines.get(1)) {
            (Some(first), Some(second)) => {
                let first = split_fields(first, separator);
                let second = split_fields(second, separator);
                !first.iter().zip(&second).any(|(a, b)| numeric(a) && numeric(b))
            }
            _ => true,
        };
        Self { separator, has_header }
    }
}

/// Fields of one CSV line, honouring double quotes.
fn split_fields(line: &str, separator: u8) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    for ch in line.chars() {
        if ch == '"' {
            quoted = !quoted;
        } else if !quoted && ch == separator as char {
            fields.push(String::new());
            continue;
        }
        if let Some(field) = fields.last_mut() {
            field.push(ch);
        }
    }
    fields
}

/// A lazy scan of a dataset's local file `path` (from [`local_path`]); `files` are the files of a
/// partitioned folder (read as listed, with their `key=value` folders as columns). CSV without a
/// dialect is read as comma-separated with a header.
pub fn scan(
    format: Format,
    path: &Path,
    files: &[PathBuf],
    dialect: Option<CsvDialect>,
) -> Result<LazyFrame, DatasetError> {
    // polars reads URLs too (`s3://`, `https://`, `file:`); an absolute path starts with `/`, so it
    // can never be taken for one. Anything else is refused before polars sees it.
    let paths = std::iter::once(path).chain(files.iter().map(PathBuf::as_path));
    if let Some(not_local) = paths.into_iter().find(|path| !path.is_absolute()) {
        return Err(DatasetError::NotLocal(not_local.display().to_string()));
    }
    let text = path.to_string_lossy().into_owned();
    let frame = match format {
        Format::Csv | Format::Tsv => {
            let dialect = dialect.unwrap_or(CsvDialect {
                separator: if format == Format::Tsv { b'\t' } else { b',' },
                has_header: true,
            });
            LazyCsvReader::new(PlRefPath::new(text))
                .with_glob(false)
                .with_separator(dialect.separator)
                .with_has_header(dialect.has_header)
                .with_infer_schema_length(Some(10_000))
                .with_try_parse_dates(true)
                .finish()?
        }
        Format::Parquet if !files.is_empty() => {
            let mut args = ScanArgsParquet { glob: false, ..ScanArgsParquet::default() };
            args.hive_options.enabled = Some(true);
            args.hive_options.hive_start_idx = text.len() + 1;
            let paths = files.iter().map(|file| PlRefPath::new(file.to_string_lossy().into_owned()));
            LazyFrame::scan_parquet_files(polars_buffer::Buffer::from_iter(paths), args)?
        }
        Format::Parquet => LazyFrame::scan_parquet(
            PlRefPath::new(text),
            ScanArgsParquet { glob: false, ..ScanArgsParquet::default() },
        )?,
        Format::Ndjson => LazyJsonLineReader::new(PlRefPath::new(text))
            .with_infer_schema_length(std::num::NonZeroUsize::new(10_000))
            .finish()?,
        // Its files, partition values and deletions come from the log: see `LocalDataset::scan`.
        Format::Delta => return Err(DatasetError::Delta(format!("`{text}` is a Delta table: scan its snapshot"))),
    };
    Ok(frame)
}

/// The frame as JSON objects, one per row.
pub fn rows_of(frame: &DataFrame) -> Vec<Map<String, Value>> {
    let columns = frame.columns();
    (0..frame.height())
        .map(|row| {
            columns
                .iter()
                .map(|column| {
                    let value = column.get(row).map(|value| json_value(&value)).unwrap_or(Value::Null);
                    (column.name().to_string(), value)
                })
                .collect()
        })
        .collect()
}

/// One polars value as JSON: numbers and booleans as such, temporal values and everything else
/// as their display text.
pub fn json_value(value: &AnyValue<'_>) -> Value {
    match value {
        AnyValue::Null => Value::Null,
        AnyValue::Boolean(b) => Value::Bool(*b),
        AnyValue::String(s) => Value::String((*s).to_owned()),
        AnyValue::StringOwned(s) => Value::String(s.to_string()),
        AnyValue::UInt8(n) => (*n).into(),
        AnyValue::UInt16(n) => (*n).into(),
        AnyValue::UInt32(n) => (*n).into(),
        AnyValue::UInt64(n) => (*n).into(),
        AnyValue::Int8(n) => (*n).into(),
        AnyValue::Int16(n) => (*n).into(),
        AnyValue::Int32(n) => (*n).into(),
        AnyValue::Int64(n) => (*n).into(),
        AnyValue::Float32(x) => serde_json::Number::from_f64(f64::from(*x)).map_or(Value::Null, Value::Number),
        AnyValue::Float64(x) => serde_json::Number::from_f64(*x).map_or(Value::Null, Value::Number),
        other => Value::String(other.to_string().trim_matches('"').to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str) -> Entry {
        Entry { path: path.into(), kind: EntryKind::File, size: 10, modified: None, etag: None }
    }

    #[test]
    fn table_names_follow_paths() {
        assert_eq!(table_name("sales/orders.csv"), "sales_orders");
        assert_eq!(table_name("2024/Q1 data.parquet"), "t2024_q1_data");
        assert_eq!(table_name("events.ndjson"), "events");
        assert_eq!(table_name("trips"), "trips");
    }

    #[test]
    fn polars_is_never_handed_a_path_that_could_be_a_url() {
        for path in ["s3://bucket/x.csv", "https://example.com/x.csv", "file:///etc/passwd", "relative/x.csv"] {
            let refused = scan(Format::Csv, Path::new(path), &[], None).err();
            assert!(matches!(refused, Some(DatasetError::NotLocal(_))), "{path}: {refused:?}");
        }
        let partitioned =
            scan(Format::Parquet, Path::new("/data/t"), &[PathBuf::from("http://x/y.parquet")], None).err();
        assert!(matches!(partitioned, Some(DatasetError::NotLocal(_))));
    }

    #[test]
    fn sniffs_separators_and_headers() {
        let sniff = |head: &[u8], tsv| CsvDialect::sniff(head, tsv);
        assert_eq!(sniff(b"a,b,c\n1,2,3\n4,5,6\n", false), CsvDialect { separator: b',', has_header: true });
        assert_eq!(sniff(b"a;b\n1;2\n", false), CsvDialect { separator: b';', has_header: true });
        assert_eq!(sniff(b"x|y|z\n\"a|b\"|2|3\n", false), CsvDialect { separator: b'|', has_header: true });
        assert_eq!(sniff(b"1,2\n3,4\n", false), CsvDialect { separator: b',', has_header: false });
        assert_eq!(sniff(b"name\tage\nann\t3\n", true), CsvDialect { separator: b'\t', has_header: true });
    }

    #[test]
    fn quoted_separators_do_not_split() {
        assert_eq!(split_fields("\"a,b\",c", b','), vec!["\"a,b\"".to_owned(), "c".to_owned()]);
    }

    #[test]
    fn finds_files_and_partitioned_folders() {
        let entries = vec![
            file("a.csv"),
            file("docs/readme.md"),
            file("trips/year=2024/month=1/part-0.parquet"),
            file("trips/year=2024/month=2/part-0.parquet"),
            file("events.ndjson"),
            file(".mcp-index/meta.json"),
            file("x/y.tsv"),
            file("x/y.csv"),
            file("lake/trips/_delta_log/00000000000000000000.json"),
            file("lake/trips/_delta_log/00000000000000000010.checkpoint.parquet"),
            file("lake/trips/part-0.parquet"),
            file("lake/trips/day=1/part-1.parquet"),
        ];
        let found: Vec<(String, Format, bool)> =
            from_entries(&entries).into_iter().map(|d| (d.name, d.format, d.partitioned)).collect();
        assert_eq!(
            found,
            vec![
                ("a".into(), Format::Csv, false),
                ("events".into(), Format::Ndjson, false),
                ("lake_trips".into(), Format::Delta, false),
                ("trips".into(), Format::Parquet, true),
                ("x_y_csv".into(), Format::Csv, false),
                ("x_y_tsv".into(), Format::Tsv, false),
            ]
        );
    }
}

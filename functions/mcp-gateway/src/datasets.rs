//! Datasets: the tables (CSV, TSV, Parquet, NDJSON files and hive-partitioned Parquet folders)
//! under the data root, named after their paths, and their local files for polars.
//!
//! polars reads local files; for an S3 root each dataset is streamed to a local cache file
//! first (keyed by ETag, so an unchanged object is fetched once per instance), never held
//! whole in memory.

use std::path::{Path, PathBuf};

use polars::prelude::{
    LazyCsvReader, LazyFileListReader as _, LazyFrame, LazyJsonLineReader, PlRefPath, ScanArgsParquet,
};

use crate::storage::{Entry, EntryKind, ObjectPath, Storage, StorageError};

/// A file format polars can scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
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
    /// Path relative to the data root (a folder for partitioned Parquet).
    pub path: String,
    /// File format.
    pub format: Format,
    /// Size in bytes (all files, for a folder).
    pub size: u64,
    /// Whether this is a hive-partitioned folder (`key=value/` sub-folders).
    pub partitioned: bool,
    /// ETag of the file, when the backend reports one.
    #[serde(skip)]
    pub etag: Option<String>,
    /// The files of a partitioned folder.
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
    /// Not a dataset.
    #[error("`{0}` is not a dataset (CSV, TSV, Parquet or NDJSON file, or a partitioned Parquet folder)")]
    NotADataset(String),
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

fn from_entries(entries: &[Entry]) -> Vec<Dataset> {
    let hidden = |path: &str| path.split('/').any(|segment| segment.starts_with('.'));
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

/// The dataset at `path` (a file or a partitioned folder).
pub async fn find(storage: &Storage, path: &str) -> Result<Dataset, DatasetError> {
    let wanted = ObjectPath::parse(path).map_err(StorageError::from)?;
    let datasets = discover(storage).await?;
    datasets
        .into_iter()
        .find(|dataset| dataset.path == wanted.as_str())
        .ok_or_else(|| DatasetError::NotADataset(wanted.to_string()))
}

/// A local path polars can read for `dataset`: the file itself on a local root, a cached copy
/// streamed from S3 otherwise. For a partitioned folder, the folder.
pub async fn local_path(storage: &Storage, dataset: &Dataset) -> Result<PathBuf, DatasetError> {
    match storage {
        Storage::Local(root) => Ok(root.path().join(&dataset.path)),
        Storage::S3(_) => {
            let cache = cache_dir().join(cache_key(&storage.describe(), dataset));
            let target = cache.join(&dataset.path);
            let files: Vec<Entry> = if dataset.partitioned {
                dataset.files.clone()
            } else {
                vec![Entry {
                    path: dataset.path.clone(),
                    kind: EntryKind::File,
                    size: dataset.size,
                    modified: None,
                    etag: dataset.etag.clone(),
                }]
            };
            for file in files {
                let local = cache.join(&file.path);
                if local.exists() {
                    continue;
                }
                if let Some(parent) = local.parent() {
                    tokio::fs::create_dir_all(parent).await?;
                }
                let partial = local.with_extension(format!("part-{}", std::process::id()));
                let mut sink = tokio::fs::File::create(&partial).await?;
                let object = ObjectPath::parse(&file.path).map_err(StorageError::from)?;
                if let Err(error) = storage.stream_to(&object, &mut sink).await {
                    let _ = tokio::fs::remove_file(&partial).await;
                    return Err(error.into());
                }
                tokio::io::AsyncWriteExt::flush(&mut sink).await?;
                tokio::fs::rename(&partial, &local).await?;
            }
            Ok(target)
        }
    }
}

fn cache_dir() -> PathBuf {
    std::env::var_os("MCP_CACHE_DIR").map_or_else(|| std::env::temp_dir().join("mcp-gateway-cache"), PathBuf::from)
}

fn cache_key(root: &str, dataset: &Dataset) -> String {
    use std::hash::{Hash as _, Hasher as _};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    root.hash(&mut hasher);
    dataset.path.hash(&mut hasher);
    dataset.etag.hash(&mut hasher);
    dataset.size.hash(&mut hasher);
    for file in &dataset.files {
        file.path.hash(&mut hasher);
        file.etag.hash(&mut hasher);
    }
    format!("{:016x}", hasher.finish())
}

/// Runs polars work on the blocking pool, as a tool error on failure.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, DatasetError> + Send + 'static,
) -> Result<T, crate::registry::ToolError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| crate::registry::ToolError::new(format!("dataset worker failed: {error}")))?
        .map_err(crate::registry::ToolError::from)
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvDialect {
    /// The field separator.
    pub separator: u8,
    /// Whether the first row holds column names.
    pub has_header: bool,
}

/// A lazy scan of `dataset` at `path` (from [`local_path`]).
pub fn scan(dataset: &Dataset, path: &Path, dialect: Option<CsvDialect>) -> Result<LazyFrame, DatasetError> {
    let text = path.to_string_lossy().into_owned();
    let frame = match dataset.format {
        Format::Csv | Format::Tsv => {
            let dialect = dialect.unwrap_or(CsvDialect {
                separator: if dataset.format == Format::Tsv { b'\t' } else { b',' },
                has_header: true,
            });
            LazyCsvReader::new(PlRefPath::new(text))
                .with_separator(dialect.separator)
                .with_has_header(dialect.has_header)
                .with_infer_schema_length(Some(10_000))
                .with_try_parse_dates(true)
                .finish()?
        }
        Format::Parquet if dataset.partitioned => {
            let mut args = ScanArgsParquet::default();
            args.hive_options.enabled = Some(true);
            LazyFrame::scan_parquet(PlRefPath::new(format!("{text}/**/*.parquet")), args)?
        }
        Format::Parquet => LazyFrame::scan_parquet(PlRefPath::new(text), ScanArgsParquet::default())?,
        Format::Ndjson => LazyJsonLineReader::new(PlRefPath::new(text))
            .with_infer_schema_length(std::num::NonZeroUsize::new(10_000))
            .finish()?,
    };
    Ok(frame)
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
        ];
        let found: Vec<(String, Format, bool)> =
            from_entries(&entries).into_iter().map(|d| (d.name, d.format, d.partitioned)).collect();
        assert_eq!(
            found,
            vec![
                ("a".into(), Format::Csv, false),
                ("events".into(), Format::Ndjson, false),
                ("trips".into(), Format::Parquet, true),
                ("x_y_csv".into(), Format::Csv, false),
                ("x_y_tsv".into(), Format::Tsv, false),
            ]
        );
    }
}

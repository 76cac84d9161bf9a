//! The S3 download cache: each dataset of an S3 root is streamed to local disk once per version
//! (ETag), for polars to read.
//!
//! - Keyed by SHA-256 of the root, the dataset's path and each file's path, ETag and size: the
//!   same key in every build and process.
//! - Bounded: at most `max_bytes` on disk (Lambda's `/tmp` is 512 MB by default). The least
//!   recently used datasets are evicted to make room, never one that a call is reading (pinned).
//! - One download per dataset at a time in this process; concurrent calls wait for it. Each file
//!   is written under a unique temporary name and renamed into place once complete and of the
//!   listed size, so a download that fails, is cut off or is cancelled leaves nothing behind.
//!
//! One cache folder per process: pins are per process, so two servers sharing a folder could
//! evict each other's datasets mid-read.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, SystemTime},
};

use sha2::{Digest as _, Sha256};

use super::{Dataset, DatasetError, LocalDataset};
use crate::storage::{Entry, EntryKind, ObjectPath, Storage, StorageError};

/// Where the cache lives and how large it may grow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheSettings {
    /// The cache folder (created when needed).
    pub dir: PathBuf,
    /// The most bytes the cached datasets may take.
    pub max_bytes: u64,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self { dir: std::env::temp_dir().join("mcp-gateway-cache"), max_bytes: 400 << 20 }
    }
}

/// Sets the cache's folder and size, once, at start-up (before any S3 dataset is read); later
/// calls have no effect. Without a call the defaults apply.
pub fn configure_cache(settings: CacheSettings) {
    // Absolute, so that the paths handed to polars are too (see `datasets::scan`).
    let dir = std::path::absolute(&settings.dir).unwrap_or(settings.dir);
    let _ = CACHE.set(Cache::new(CacheSettings { dir, ..settings }));
}

static CACHE: OnceLock<Cache> = OnceLock::new();

fn cache() -> &'static Cache {
    CACHE.get_or_init(|| Cache::new(CacheSettings::default()))
}

/// Temporary files of downloads that died with their process are removed after this long.
const STALE_PARTIAL_AGE: Duration = Duration::from_secs(3600);
/// Marks when a cached dataset was last used (its modification time).
const LAST_USED: &str = ".last-used";
const PARTIAL_MARK: &str = ".part-";

struct Cache {
    settings: CacheSettings,
    state: Mutex<State>,
    /// Held while room is made, so two downloads do not count the same free space.
    evicting: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct State {
    /// Calls reading each cached dataset.
    pins: HashMap<String, usize>,
    /// One lock per dataset being downloaded.
    downloads: HashMap<String, Arc<tokio::sync::Mutex<()>>>,
}

/// Keeps a cached dataset from being evicted while it is read.
#[derive(Debug)]
pub(super) struct Pin {
    key: String,
}

impl Drop for Pin {
    fn drop(&mut self) {
        let mut state = cache().lock();
        if let Some(count) = state.pins.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                state.pins.remove(&self.key);
                state.downloads.remove(&self.key);
            }
        }
    }
}

impl Cache {
    fn new(settings: CacheSettings) -> Self {
        Self { settings, state: Mutex::new(State::default()), evicting: tokio::sync::Mutex::new(()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn pin(&self, key: &str) -> (Pin, Arc<tokio::sync::Mutex<()>>) {
        let mut state = self.lock();
        *state.pins.entry(key.to_owned()).or_default() += 1;
        let download = state.downloads.entry(key.to_owned()).or_default().clone();
        (Pin { key: key.to_owned() }, download)
    }

    fn is_pinned(&self, key: &str) -> bool {
        self.lock().pins.contains_key(key)
    }

    /// Evicts least recently used, unpinned datasets until `needed` more bytes fit.
    fn make_room(&self, keep: &str, needed: u64) -> Result<(), DatasetError> {
        let max = self.settings.max_bytes;
        let mut cached = cached_datasets(&self.settings.dir)?;
        let mut used: u64 = cached.iter().map(|dataset| dataset.bytes).sum();
        cached.sort_by_key(|dataset| dataset.last_used);
        for dataset in &cached {
            if used.saturating_add(needed) <= max {
                break;
            }
            if dataset.key == keep || self.is_pinned(&dataset.key) {
                continue;
            }
            std::fs::remove_dir_all(self.settings.dir.join(&dataset.key))?;
            tracing::info!(key = %dataset.key, bytes = dataset.bytes, "evicted a dataset from the S3 cache");
            used = used.saturating_sub(dataset.bytes);
        }
        if used.saturating_add(needed) > max {
            return Err(DatasetError::Cache(format!(
                "the dataset cache is full ({} of {} MiB) with datasets that calls are reading; try again shortly, \
                 or raise --cache-max-bytes (MCP_CACHE_MAX_BYTES) and the disk behind --cache-dir",
                used >> 20,
                max >> 20
            )));
        }
        Ok(())
    }
}

/// The local copy of an S3 dataset, downloaded unless it is cached already.
pub(super) async fn fetch(storage: &Storage, dataset: &Dataset) -> Result<LocalDataset, DatasetError> {
    let cache = cache();
    let files = files_of(dataset);
    let needed: u64 = files.iter().map(|file| file.size).sum();
    let max = cache.settings.max_bytes;
    if needed > max {
        return Err(DatasetError::Cache(format!(
            "`{}` is {} MiB, more than the dataset cache may hold ({} MiB); raise --cache-max-bytes \
             (MCP_CACHE_MAX_BYTES) and, on Lambda, the function's ephemeral storage",
            dataset.path,
            needed >> 20,
            max >> 20
        )));
    }
    let key = key(&storage.describe(), dataset);
    let folder = cache.settings.dir.join(&key);
    let (pin, download) = cache.pin(&key);
    {
        let _one_download = download.lock().await;
        let missing: Vec<&Entry> = files.iter().filter(|file| !folder.join(&file.path).is_file()).collect();
        if !missing.is_empty() {
            {
                let _evicting = cache.evicting.lock().await;
                let still_needed: u64 = missing.iter().map(|file| file.size).sum();
                cache.make_room(&key, still_needed)?;
            }
            for file in missing {
                download_file(storage, &folder, file).await?;
            }
        }
    }
    touch(&folder);
    let path = folder.join(&dataset.path);
    let files =
        if dataset.partitioned { files.iter().map(|file| folder.join(&file.path)).collect() } else { Vec::new() };
    Ok(LocalDataset { path, files, delta: None, _pin: Some(pin) })
}

/// The files of a dataset, with their listed size and ETag.
fn files_of(dataset: &Dataset) -> Vec<Entry> {
    if dataset.partitioned {
        return dataset.files.clone();
    }
    vec![Entry {
        path: dataset.path.clone(),
        kind: EntryKind::File,
        size: dataset.size,
        modified: None,
        etag: dataset.etag.clone(),
    }]
}

/// The cache key of one version of a dataset: the same in every build and process.
fn key(root: &str, dataset: &Dataset) -> String {
    let mut hash = Sha256::new();
    let mut field = |value: &str| {
        hash.update((value.len() as u64).to_le_bytes());
        hash.update(value.as_bytes());
    };
    field(root);
    field(&dataset.path);
    for file in files_of(dataset) {
        field(&file.path);
        field(file.etag.as_deref().unwrap_or(""));
        field(&file.size.to_string());
    }
    hex::encode(&hash.finalize()[..16])
}

/// A file being downloaded: removed on drop unless it was completed.
struct Partial {
    path: PathBuf,
    done: bool,
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

async fn download_file(storage: &Storage, folder: &Path, file: &Entry) -> Result<(), DatasetError> {
    use tokio::io::AsyncWriteExt as _;
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let target = folder.join(&file.path);
    if let Some(parent) = target.parent() {
        tokio::fs::create_dir_all(parent).await?;
    }
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = target.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    let mut partial =
        Partial { path: target.with_file_name(format!("{name}{PARTIAL_MARK}{}-{n}", std::process::id())), done: false };
    let mut sink = tokio::fs::File::create(&partial.path).await?;
    let object = ObjectPath::parse(&file.path).map_err(StorageError::from)?;
    let written = storage.stream_to(&object, &mut sink).await?;
    sink.flush().await?;
    drop(sink);
    if written != file.size {
        return Err(DatasetError::Cache(format!(
            "the download of `{}` ended after {written} of {} bytes; try again",
            file.path, file.size
        )));
    }
    tokio::fs::rename(&partial.path, &target).await?;
    partial.done = true;
    Ok(())
}

/// Records that a cached dataset was just used (for eviction order).
fn touch(folder: &Path) {
    let marker = folder.join(LAST_USED);
    let result = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&marker)
        .and_then(|file| file.set_modified(SystemTime::now()));
    if let Err(error) = result {
        tracing::debug!(%error, "cannot mark a cached dataset as used");
    }
}

struct Cached {
    key: String,
    bytes: u64,
    last_used: SystemTime,
}

/// The datasets in the cache folder with their size on disk; removes stale partial files.
fn cached_datasets(dir: &Path) -> Result<Vec<Cached>, DatasetError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error.into()),
    };
    let mut cached = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        let last_used = std::fs::metadata(path.join(LAST_USED))
            .or_else(|_| entry.metadata())
            .and_then(|metadata| metadata.modified())
            .unwrap_or(SystemTime::UNIX_EPOCH);
        cached.push(Cached {
            key: entry.file_name().to_string_lossy().into_owned(),
            bytes: folder_bytes(&path),
            last_used,
        });
    }
    Ok(cached)
}

/// Bytes of the files under `folder`, removing partial downloads that outlived their process.
fn folder_bytes(folder: &Path) -> u64 {
    let mut bytes = 0;
    let mut pending = vec![folder.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let Ok(metadata) = entry.metadata() else { continue };
            if metadata.is_dir() {
                pending.push(entry.path());
                continue;
            }
            let stale = entry.file_name().to_string_lossy().contains(PARTIAL_MARK)
                && metadata.modified().ok().and_then(|at| at.elapsed().ok()).is_some_and(|age| age > STALE_PARTIAL_AGE);
            if stale {
                let _ = std::fs::remove_file(entry.path());
            } else {
                bytes += metadata.len();
            }
        }
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dataset(path: &str, etag: &str, size: u64) -> Dataset {
        Dataset {
            name: super::super::table_name(path),
            path: path.to_owned(),
            format: super::super::Format::Csv,
            size,
            partitioned: false,
            etag: Some(etag.to_owned()),
            files: Vec::new(),
        }
    }

    /// Regression: the key came from `DefaultHasher`, which may change between builds.
    #[test]
    fn cache_keys_are_stable_sha256_and_follow_the_version() {
        let a = key("s3://bucket/data/", &dataset("sales/orders.csv", "abc", 10));
        assert_eq!(a, "b6d36c1a65641636ee4353fd64e60480", "the key of a known dataset changed");
        assert_ne!(a, key("s3://bucket/data/", &dataset("sales/orders.csv", "abd", 10)));
        assert_ne!(a, key("s3://bucket/other/", &dataset("sales/orders.csv", "abc", 10)));
        assert_ne!(a, key("s3://bucket/data/", &dataset("sales/orders.csv", "abc", 11)));
    }

    fn folder(root: &Path, key: &str, bytes: usize, age: Duration) -> PathBuf {
        let folder = root.join(key);
        std::fs::create_dir_all(&folder).ok();
        std::fs::write(folder.join("data.csv"), vec![b'x'; bytes]).ok();
        let used = SystemTime::now() - age;
        std::fs::File::create(folder.join(LAST_USED)).and_then(|file| file.set_modified(used)).ok();
        folder
    }

    /// Regression: the cache had no size bound, and Lambda's /tmp is 512 MB by default.
    #[test]
    fn cache_evicts_least_recently_used_unpinned_datasets_to_stay_under_its_size() {
        let root = std::env::temp_dir().join(format!("mcp-cache-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let cache = Cache::new(CacheSettings { dir: root.clone(), max_bytes: 1000 });
        let oldest = folder(&root, "oldest", 400, Duration::from_secs(300));
        let pinned = folder(&root, "pinned-old", 300, Duration::from_secs(200));
        let recent = folder(&root, "recent", 200, Duration::from_secs(10));
        cache.lock().pins.insert("pinned-old".to_owned(), 1);
        // 900 used: 350 more must evict the oldest unpinned dataset, and only that one.
        let made = cache.make_room("new", 350);
        assert!(made.is_ok(), "{made:?}");
        assert!(!oldest.exists() && pinned.exists() && recent.exists());
        // 500 used, of which 300 pinned: 800 more cannot fit even after evicting `recent`.
        let full = cache.make_room("new", 800).err().map(|error| error.to_string()).unwrap_or_default();
        assert!(full.contains("MCP_CACHE_MAX_BYTES"), "{full}");
        assert!(pinned.exists());
        let _ = std::fs::remove_dir_all(&root);
    }
}

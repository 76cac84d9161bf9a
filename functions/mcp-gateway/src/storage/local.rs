//! A data root in a local folder. Every resolved path is checked against the canonical root, so
//! symlinks that lead outside it are refused.

use std::{
    fs,
    io::{self, Read, Seek, SeekFrom},
    path::{Path, PathBuf},
    sync::Arc,
};

use super::{Entry, EntryKind, ObjectPath, StorageError, rfc3339};

/// Reads up to this size, and metadata calls (`stat`, opening a file), run in place on the
/// async thread: from a local disk or the page cache they take a few microseconds, less than
/// handing them to a blocking thread and back (50–100 µs of wake-ups on a small VM, most of a
/// small tool call's cost). Larger reads, listings and writes go to a blocking thread.
const IN_PLACE_READ_BYTES: u64 = 64 * 1024;

/// A local folder used as the data root.
#[derive(Debug, Clone)]
pub struct LocalRoot {
    root: Arc<PathBuf>,
}

impl LocalRoot {
    /// Opens `root`, which must be an existing folder.
    pub fn open(root: impl AsRef<Path>) -> io::Result<Self> {
        let root = fs::canonicalize(root.as_ref())
            .map_err(|error| io::Error::new(error.kind(), format!("data root {}: {error}", root.as_ref().display())))?;
        if !root.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("data root {} is not a folder", root.display()),
            ));
        }
        Ok(Self { root: Arc::new(root) })
    }

    /// The canonical root folder.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Metadata of one file or folder (in place: see [`IN_PLACE_READ_BYTES`]).
    pub async fn stat(&self, path: &ObjectPath) -> Result<Entry, StorageError> {
        let full = self.resolve(path)?;
        let metadata = fs::metadata(&full).map_err(|error| io_error(path, error))?;
        Ok(entry(path.as_str().to_owned(), &metadata))
    }

    /// Entries below `dir`, sorted by path; symlinks leading outside the root are skipped; more
    /// than `limit` entries is an error.
    pub async fn list(&self, dir: &ObjectPath, recursive: bool, limit: usize) -> Result<Vec<Entry>, StorageError> {
        let this = self.clone();
        let dir = dir.clone();
        blocking(move || {
            let full = this.resolve(&dir)?;
            if !full.is_dir() {
                return Err(StorageError::WrongKind { path: dir.to_string(), expected: "a folder", actual: "a file" });
            }
            let mut entries = Vec::new();
            let this_dir = dir.clone();
            let mut pending = vec![(dir, full)];
            while let Some((dir, full)) = pending.pop() {
                let read = fs::read_dir(&full).map_err(|error| io_error(&dir, error))?;
                for item in read {
                    let item = item.map_err(|error| io_error(&dir, error))?;
                    let Some(name) = item.file_name().to_str().map(str::to_owned) else {
                        tracing::warn!(dir = %dir, "skipping a file name that is not UTF-8");
                        continue;
                    };
                    let child = dir.child(&name);
                    // Follow links only when they stay inside the root.
                    let Ok(target) = this.resolve(&child) else {
                        continue;
                    };
                    let Ok(metadata) = fs::metadata(&target) else {
                        continue;
                    };
                    if recursive && metadata.is_dir() {
                        pending.push((child.clone(), target));
                    }
                    entries.push(entry(child.as_str().to_owned(), &metadata));
                    if entries.len() > limit {
                        return Err(StorageError::TooManyEntries { path: this_dir.to_string(), limit });
                    }
                }
            }
            entries.sort_by(|a, b| a.path.cmp(&b.path));
            Ok(entries)
        })
        .await
    }

    /// Up to `len` bytes of a file from `start`; small reads in place, larger ones on a blocking
    /// thread (see [`IN_PLACE_READ_BYTES`]).
    pub async fn read_range(&self, path: &ObjectPath, start: u64, len: u64) -> Result<Vec<u8>, StorageError> {
        if len <= IN_PLACE_READ_BYTES {
            return self.read_range_blocking(path, start, len);
        }
        let this = self.clone();
        let path = path.clone();
        blocking(move || this.read_range_blocking(&path, start, len)).await
    }

    fn read_range_blocking(&self, path: &ObjectPath, start: u64, len: u64) -> Result<Vec<u8>, StorageError> {
        read_from(self.open_file_blocking(path)?, path, start, len)
    }

    /// See [`Storage::read_picked`]: one resolution of the path, one open; the metadata comes from
    /// the open file (so it is the file that is read), the read is done like [`Self::read_range`].
    pub async fn read_picked<E: From<StorageError>>(
        &self,
        path: &ObjectPath,
        pick: impl FnOnce(&Entry) -> Result<(u64, u64), E>,
    ) -> Result<(Entry, Vec<u8>), E> {
        let full = self.resolve(path)?;
        let file = fs::File::open(&full).map_err(|error| io_error(path, error))?;
        let metadata = file.metadata().map_err(|error| io_error(path, error))?;
        let entry = entry(path.as_str().to_owned(), &metadata);
        let (start, len) = pick(&entry)?;
        if entry.kind == EntryKind::Dir {
            return Err(StorageError::not_a_file(path).into());
        }
        let bytes = if len <= IN_PLACE_READ_BYTES {
            read_from(file, path, start, len)?
        } else {
            let path = path.clone();
            blocking(move || read_from(file, &path, start, len)).await?
        };
        Ok((entry, bytes))
    }

    /// Writes `bytes` to a temporary file next to `path`, syncs it, and renames it into place,
    /// so readers see the old content or the new, never a mix.
    pub async fn write(&self, path: &ObjectPath, bytes: Vec<u8>) -> Result<(), StorageError> {
        let this = self.clone();
        let path = path.clone();
        blocking(move || {
            let parent = this.prepare_parent(&path)?;
            let name = path.segments().last().unwrap_or_default().to_owned();
            let target = parent.join(&name);
            if target.is_dir() {
                return Err(StorageError::not_a_file(&path));
            }
            let (temporary, mut file) = create_temporary(&parent, &name).map_err(|error| io_error(&path, error))?;
            let result = (|| {
                std::io::Write::write_all(&mut file, &bytes)?;
                file.sync_all()?;
                fs::rename(&temporary, &target)
            })();
            if let Err(error) = result {
                fs::remove_file(&temporary).ok();
                return Err(io_error(&path, error));
            }
            Ok(())
        })
        .await
    }

    /// Removes a file (folders are refused).
    pub async fn delete(&self, path: &ObjectPath) -> Result<(), StorageError> {
        let this = self.clone();
        let path = path.clone();
        blocking(move || {
            let full = this.file_path(&path)?;
            fs::remove_file(&full).map_err(|error| io_error(&path, error))
        })
        .await
    }

    /// The real parent folder of `path`, created if missing, checked to be inside the root.
    fn prepare_parent(&self, path: &ObjectPath) -> Result<PathBuf, StorageError> {
        let segments: Vec<&str> = path.segments().collect();
        let mut parent = self.root.to_path_buf();
        for segment in &segments[..segments.len().saturating_sub(1)] {
            parent.push(segment);
            // Another writer may create the same folder at the same time: "already exists" is
            // success, and whatever exists is checked, as if it had been there before.
            match fs::create_dir(&parent) {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                    let real = fs::canonicalize(&parent).map_err(|error| io_error(path, error))?;
                    if !real.starts_with(self.root.as_path()) {
                        return Err(StorageError::OutsideRoot(path.to_string()));
                    }
                    parent = real;
                }
                Err(error) => return Err(io_error(path, error)),
            }
        }
        Ok(parent)
    }

    /// Opens a file (not a folder) for reading, after the root checks (in place, like `stat`).
    pub async fn open_file(&self, path: &ObjectPath) -> Result<fs::File, StorageError> {
        self.open_file_blocking(path)
    }

    /// Resolves once and opens; whether it is a folder is asked of the open file (`fstat`), so
    /// that what is checked is what is read, with no `stat` of the path before.
    fn open_file_blocking(&self, path: &ObjectPath) -> Result<fs::File, StorageError> {
        let file = fs::File::open(self.resolve(path)?).map_err(|error| io_error(path, error))?;
        if file.metadata().map_err(|error| io_error(path, error))?.is_dir() {
            return Err(StorageError::not_a_file(path));
        }
        Ok(file)
    }

    /// The real path of a file (folders are refused), checked to be inside the root: the path
    /// handed to libraries that open files themselves (polars).
    pub fn real_path(&self, path: &ObjectPath) -> Result<PathBuf, StorageError> {
        self.file_path(path)
    }

    /// The real path of a file (folders are refused) inside the root.
    fn file_path(&self, path: &ObjectPath) -> Result<PathBuf, StorageError> {
        let full = self.resolve(path)?;
        if full.is_dir() { Err(StorageError::not_a_file(path)) } else { Ok(full) }
    }

    /// The real path of `path`, refusing anything that resolves outside the root.
    fn resolve(&self, path: &ObjectPath) -> Result<PathBuf, StorageError> {
        let mut full = self.root.to_path_buf();
        full.extend(path.segments());
        let real = fs::canonicalize(&full).map_err(|error| io_error(path, error))?;
        if real.starts_with(self.root.as_path()) { Ok(real) } else { Err(StorageError::OutsideRoot(path.to_string())) }
    }
}

fn entry(path: String, metadata: &fs::Metadata) -> Entry {
    let is_dir = metadata.is_dir();
    let modified = metadata.modified().ok();
    let etag = (!is_dir).then(|| {
        let nanos = modified
            .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |since| since.as_nanos());
        format!("{nanos:x}-{:x}", metadata.len())
    });
    Entry {
        path,
        kind: if is_dir { EntryKind::Dir } else { EntryKind::File },
        size: if is_dir { 0 } else { metadata.len() },
        modified: modified.and_then(rfc3339),
        etag,
    }
}

/// A new file `.{name}.tmp-{pid}-{n}` in `parent`, made with `create_new` so that it is never a file
/// another writer holds (another process with the same pid, in another container on a shared
/// folder, only costs a retry).
fn create_temporary(parent: &Path, name: &str) -> io::Result<(PathBuf, fs::File)> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut attempts = 0;
    loop {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let temporary = parent.join(format!(".{name}.tmp-{}-{n}", std::process::id()));
        match fs::File::create_new(&temporary) {
            Ok(file) => return Ok((temporary, file)),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists && attempts < 64 => attempts += 1,
            Err(error) => return Err(error),
        }
    }
}

/// Up to `len` bytes of `file` from `start`.
fn read_from(mut file: fs::File, path: &ObjectPath, start: u64, len: u64) -> Result<Vec<u8>, StorageError> {
    file.seek(SeekFrom::Start(start)).map_err(|error| io_error(path, error))?;
    let mut buffer = Vec::with_capacity(usize::try_from(len.min(1 << 20)).unwrap_or(0));
    file.take(len).read_to_end(&mut buffer).map_err(|error| io_error(path, error))?;
    Ok(buffer)
}

fn io_error(path: &ObjectPath, error: io::Error) -> StorageError {
    match error.kind() {
        io::ErrorKind::NotFound => StorageError::NotFound(path.to_string()),
        io::ErrorKind::PermissionDenied => StorageError::AccessDenied {
            path: path.to_string(),
            hint: "the file's permissions do not let the user running mcp-gateway use it",
        },
        _ => StorageError::Io { path: path.to_string(), source: error },
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|error| Err(StorageError::Io { path: String::new(), source: io::Error::other(error) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> (tempdir::Dir, LocalRoot) {
        let dir = tempdir::Dir::new();
        fs::create_dir_all(dir.0.join("root/sub")).ok();
        fs::write(dir.0.join("root/a.txt"), "hello\nworld\n").ok();
        fs::write(dir.0.join("root/sub/b.csv"), "x,y\n1,2\n").ok();
        fs::write(dir.0.join("secret.txt"), "top secret").ok();
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(dir.0.join("secret.txt"), dir.0.join("root/escape.txt")).ok();
            std::os::unix::fs::symlink(dir.0.join("root/a.txt"), dir.0.join("root/inside.txt")).ok();
        }
        let root = LocalRoot::open(dir.0.join("root")).ok();
        (dir, root.unwrap_or_else(|| panic!("fixture root opens")))
    }

    mod tempdir {
        /// A temporary folder removed on drop.
        pub(super) struct Dir(pub(super) std::path::PathBuf);
        impl Dir {
            pub(super) fn new() -> Self {
                use std::sync::atomic::{AtomicU32, Ordering};
                static NEXT: AtomicU32 = AtomicU32::new(0);
                let n = NEXT.fetch_add(1, Ordering::Relaxed);
                let path = std::env::temp_dir().join(format!("mcp-gateway-local-{}-{n}", std::process::id()));
                std::fs::create_dir_all(&path).ok();
                Self(path)
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                std::fs::remove_dir_all(&self.0).ok();
            }
        }
    }

    fn path(s: &str) -> ObjectPath {
        ObjectPath::parse(s).unwrap_or_else(|error| panic!("{error}"))
    }

    /// Regression: writers racing into a folder that did not exist yet failed when another one
    /// created it first, and writers in the same nanosecond shared (and truncated) one temporary file.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writes_into_a_new_folder_all_succeed_and_leave_one_whole_text() {
        let (_dir, root) = fixture();
        for round in 0..20 {
            let target = path(&format!("new-{round}/deeper/race.txt"));
            let bodies: Vec<Vec<u8>> = (0..16).map(|i| i.to_string().repeat(5_000).into_bytes()).collect();
            let writes = bodies.iter().cloned().map(|body| {
                let (root, target) = (root.clone(), target.clone());
                tokio::spawn(async move { root.write(&target, body).await })
            });
            for outcome in futures::future::join_all(writes).await {
                let written = outcome.unwrap_or_else(|error| panic!("{error}"));
                written.unwrap_or_else(|error| panic!("round {round}: {error}"));
            }
            let content = root.read_range(&target, 0, 1 << 20).await.unwrap_or_else(|error| panic!("{error}"));
            assert!(bodies.contains(&content), "round {round}: the file is not one writer's whole text");
            let folder = root.list(&path(&format!("new-{round}/deeper")), false, 100).await;
            let names: Vec<String> =
                folder.unwrap_or_else(|error| panic!("{error}")).into_iter().map(|e| e.path).collect();
            assert_eq!(names, vec![format!("new-{round}/deeper/race.txt")], "no temporary file is left behind");
        }
    }

    #[tokio::test]
    async fn lists_recursively_sorted_and_skips_links_leaving_the_root() {
        let (_dir, root) = fixture();
        let entries = root
            .list(&ObjectPath::root(), true, 100)
            .await
            .map(|entries| entries.into_iter().map(|e| e.path).collect::<Vec<_>>());
        let expected: Vec<String> = if cfg!(unix) {
            vec!["a.txt".into(), "inside.txt".into(), "sub".into(), "sub/b.csv".into()]
        } else {
            vec!["a.txt".into(), "sub".into(), "sub/b.csv".into()]
        };
        assert_eq!(entries.ok(), Some(expected));
    }

    #[tokio::test]
    async fn listings_past_their_limit_are_refused_not_held() {
        let (_dir, root) = fixture();
        let refused = root.list(&ObjectPath::root(), true, 2).await;
        assert!(matches!(refused, Err(StorageError::TooManyEntries { limit: 2, .. })), "{refused:?}");
        assert_eq!(root.list(&ObjectPath::root(), true, 4).await.map(|e| e.len()).ok(), Some(4));
    }

    #[tokio::test]
    async fn symlink_leaving_the_root_is_refused() {
        let (_dir, root) = fixture();
        let result = root.read_range(&path("escape.txt"), 0, 100).await;
        assert!(matches!(result, Err(StorageError::OutsideRoot(_))), "{result:?}");
    }

    #[tokio::test]
    async fn reads_ranges_and_reports_missing_files() {
        let (_dir, root) = fixture();
        assert_eq!(root.read_range(&path("a.txt"), 6, 100).await.ok(), Some(b"world\n".to_vec()));
        assert!(matches!(root.stat(&path("nope.txt")).await, Err(StorageError::NotFound(_))));
        assert_eq!(root.stat(&path("sub/b.csv")).await.ok().map(|e| e.size), Some(8));
    }

    #[tokio::test]
    async fn reads_in_place_and_on_a_blocking_thread_agree_and_both_refuse_escapes() {
        let (dir, root) = fixture();
        let content: Vec<u8> = (0..3 * IN_PLACE_READ_BYTES).map(|i| (i % 251) as u8).collect();
        fs::write(dir.0.join("root/big.bin"), &content).ok();
        let small = root.read_range(&path("big.bin"), 10, IN_PLACE_READ_BYTES).await.ok();
        let large = root.read_range(&path("big.bin"), 10, 2 * IN_PLACE_READ_BYTES).await.ok();
        assert_eq!(small.as_deref(), content.get(10..10 + IN_PLACE_READ_BYTES as usize));
        assert_eq!(large.as_deref(), content.get(10..10 + 2 * IN_PLACE_READ_BYTES as usize));
        let escape = root.read_range(&path("escape.txt"), 0, 2 * IN_PLACE_READ_BYTES).await;
        assert!(matches!(escape, Err(StorageError::OutsideRoot(_))), "{escape:?}");
    }

    #[tokio::test]
    async fn read_picked_shows_the_open_files_metadata_reads_what_was_picked_and_refuses_escapes() {
        let (dir, root) = fixture();
        let content: Vec<u8> = (0..2 * IN_PLACE_READ_BYTES).map(|i| (i % 251) as u8).collect();
        fs::write(dir.0.join("root/big.bin"), &content).ok();
        let mut seen = None;
        let read = root
            .read_picked(&path("a.txt"), |entry: &Entry| {
                seen = Some((entry.kind, entry.size));
                Ok::<_, StorageError>((6, entry.size - 6))
            })
            .await;
        assert_eq!(seen, Some((EntryKind::File, 12)));
        assert_eq!(read.ok().map(|(entry, bytes)| (entry.path, bytes)), Some(("a.txt".into(), b"world\n".to_vec())));
        let large =
            root.read_picked(&path("big.bin"), |entry: &Entry| Ok::<_, StorageError>((1, entry.size - 1))).await;
        assert_eq!(large.ok().map(|(_, bytes)| bytes).as_deref(), content.get(1..));
        // The picker sees a folder and may refuse it; a picker that does not is refused anyway.
        let folder = root.read_picked(&path("sub"), |entry: &Entry| Ok::<_, StorageError>((0, entry.size))).await;
        assert!(matches!(folder, Err(StorageError::WrongKind { .. })), "{folder:?}");
        let escape = root.read_picked(&path("escape.txt"), |_: &Entry| Ok::<_, StorageError>((0, 10))).await;
        assert!(matches!(escape, Err(StorageError::OutsideRoot(_))), "{escape:?}");
        let missing = root.read_picked(&path("nope.txt"), |_: &Entry| Ok::<_, StorageError>((0, 10))).await;
        assert!(matches!(missing, Err(StorageError::NotFound(_))), "{missing:?}");
    }
}

//! The folder of a stored index on a local root, opened so that a read-only data root works: a
//! container's `-v ./data:/data:ro`, a read-only volume or snapshot.
//!
//! tantivy takes its meta lock whenever a reader opens segments (at load and at every reload), and
//! on a plain `MmapDirectory` that lock is a file, `.tantivy-meta.lock`, created in the index
//! folder: on a read-only root every load failed with "Failed to acquire Lockfile". The lock keeps a
//! writer's garbage collection from deleting segments a reader is opening, and a stored index has
//! no writer: `mcp-gateway index` builds a new folder and renames it over the old one
//! (`build_and_store`). So this directory takes its locks without a file, and is otherwise the
//! memory-mapped one.

use std::{path::Path, sync::Arc};

use tantivy::directory::{
    Directory, DirectoryLock, FileHandle, Lock, MmapDirectory, WatchCallback, WatchHandle, WritePtr,
    error::{DeleteError, LockError, OpenDirectoryError, OpenReadError, OpenWriteError},
};

/// A stored index's folder, memory-mapped, whose locks create no lock file.
#[derive(Debug, Clone)]
pub(super) struct StoredDirectory(MmapDirectory);

impl StoredDirectory {
    /// Opens `folder`, which must exist.
    pub(super) fn open(folder: &Path) -> Result<Self, OpenDirectoryError> {
        MmapDirectory::open(folder).map(Self)
    }
}

impl Directory for StoredDirectory {
    fn get_file_handle(&self, path: &Path) -> Result<Arc<dyn FileHandle>, OpenReadError> {
        self.0.get_file_handle(path)
    }

    fn delete(&self, path: &Path) -> Result<(), DeleteError> {
        self.0.delete(path)
    }

    fn exists(&self, path: &Path) -> Result<bool, OpenReadError> {
        self.0.exists(path)
    }

    fn open_write(&self, path: &Path) -> Result<WritePtr, OpenWriteError> {
        self.0.open_write(path)
    }

    fn atomic_read(&self, path: &Path) -> Result<Vec<u8>, OpenReadError> {
        self.0.atomic_read(path)
    }

    fn atomic_write(&self, path: &Path, data: &[u8]) -> std::io::Result<()> {
        self.0.atomic_write(path, data)
    }

    fn sync_directory(&self) -> std::io::Result<()> {
        self.0.sync_directory()
    }

    /// Granted at once, with no lock file (see the module comment).
    fn acquire_lock(&self, _lock: &Lock) -> Result<DirectoryLock, LockError> {
        Ok(DirectoryLock::from(Box::new(())))
    }

    fn watch(&self, watch_callback: WatchCallback) -> tantivy::Result<WatchHandle> {
        self.0.watch(watch_callback)
    }
}

#[cfg(test)]
mod tests {
    use tantivy::directory::META_LOCK;

    use super::*;

    fn lock_file_while_locked(directory: &dyn Directory) -> bool {
        let lock = directory.acquire_lock(&META_LOCK).unwrap_or_else(|error| panic!("{error}"));
        let exists = directory.exists(&META_LOCK.filepath).unwrap_or_else(|error| panic!("{error}"));
        drop(lock);
        exists
    }

    /// Regression: a stored index on a read-only data root (`-v ./data:/data:ro`) did not load,
    /// because opening its segments created tantivy's meta lock file.
    #[test]
    fn the_meta_lock_of_a_stored_index_creates_no_file() {
        let folder = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
        let stored = StoredDirectory::open(folder.path()).unwrap_or_else(|error| panic!("{error}"));
        assert!(!lock_file_while_locked(&stored));
        // Nothing else is written either: the folder is as empty as it started.
        let left = std::fs::read_dir(folder.path()).map(Iterator::count).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(left, 0);
        // The plain directory's lock is a file (which it leaves behind): what this one avoids.
        let plain = MmapDirectory::open(folder.path()).unwrap_or_else(|error| panic!("{error}"));
        assert!(lock_file_while_locked(&plain));
    }
}

//! Storage: the only module besides `transport` that does IO.
//!
//! Tools see one data root through [`Storage`] and name objects by [`ObjectPath`], a validated
//! path relative to that root, so no tool can reach outside it.

pub mod delta_tables;
mod local;
mod path;
mod s3;

use std::time::SystemTime;

pub use local::LocalRoot;
pub use path::{ObjectPath, PathError};
pub use s3::S3Root;

/// What storage failures can be; each message says what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The path was rejected before any IO.
    #[error(transparent)]
    Path(#[from] PathError),
    /// Nothing exists at the path.
    #[error("`{0}` does not exist under the data root; list the parent folder to see what does")]
    NotFound(String),
    /// The path names a folder where a file was expected (or the reverse).
    #[error("`{path}` is {actual}, not {expected}")]
    WrongKind { path: String, expected: &'static str, actual: &'static str },
    /// The object resolves (through a link) to somewhere outside the root.
    #[error("`{0}` leads outside the data root and cannot be used")]
    OutsideRoot(String),
    /// The object exists but this process may not read it.
    #[error("access to `{path}` was denied: {hint}")]
    AccessDenied { path: String, hint: &'static str },
    /// A listing past [`MAX_LISTING_ENTRIES`]: its entries would not fit in a bounded answer.
    #[error("`{path}` holds more than {limit} entries; list a sub-folder, or without `recursive`")]
    TooManyEntries { path: String, limit: usize },
    /// Any other IO failure.
    #[error("storage error on `{path}`: {source}")]
    Io { path: String, source: std::io::Error },
}

impl StorageError {
    /// A folder was given where a file is needed.
    pub(crate) fn not_a_file(path: &ObjectPath) -> Self {
        Self::WrongKind { path: path.to_string(), expected: "a file", actual: "a folder" }
    }
}

/// The most entries one listing holds: a larger tree is refused rather than held in memory.
pub const MAX_LISTING_ENTRIES: usize = 500_000;

/// One file or folder under the root.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct Entry {
    /// Path relative to the data root, with `/` separators; folders end without a slash.
    pub path: String,
    /// `file` or `dir`.
    pub kind: EntryKind,
    /// Size in bytes (0 for folders).
    pub size: u64,
    /// Last modification time, RFC 3339 UTC, when the backend knows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub modified: Option<String>,
    /// Entity tag: S3's ETag, or `<mtime>-<size>` in hex for local files; changes when the
    /// content does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
}

/// Whether an [`Entry`] is a file or a folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// A regular file (an object, on S3).
    File,
    /// A folder (a common prefix, on S3).
    Dir,
}

/// The data root the tools work on.
#[derive(Debug, Clone)]
pub enum Storage {
    /// A folder on the local file system.
    Local(LocalRoot),
    /// A prefix in an S3 bucket.
    S3(S3Root),
}

impl Storage {
    /// A human-readable name of the root, for logs and tool output.
    pub fn describe(&self) -> String {
        match self {
            Self::Local(root) => root.path().display().to_string(),
            Self::S3(root) => root.describe(),
        }
    }

    /// Metadata of one object.
    pub async fn stat(&self, path: &ObjectPath) -> Result<Entry, StorageError> {
        match self {
            Self::Local(root) => root.stat(path).await,
            Self::S3(root) => root.stat(path).await,
        }
    }

    /// Every entry below `dir` (recursively when asked), sorted by path; more than
    /// [`MAX_LISTING_ENTRIES`] is an error.
    pub async fn list(&self, dir: &ObjectPath, recursive: bool) -> Result<Vec<Entry>, StorageError> {
        match self {
            Self::Local(root) => root.list(dir, recursive, MAX_LISTING_ENTRIES).await,
            Self::S3(root) => root.list(dir, recursive, MAX_LISTING_ENTRIES).await,
        }
    }

    /// Bytes `start..start+len` of a file (fewer at its end).
    pub async fn read_range(&self, path: &ObjectPath, start: u64, len: u64) -> Result<Vec<u8>, StorageError> {
        match self {
            Self::Local(root) => root.read_range(path, start, len).await,
            Self::S3(root) => root.read_range(path, start, len).await,
        }
    }

    /// A file's metadata and the bytes `start..start+len` that `pick` chooses once it has seen
    /// them (or `pick`'s refusal, e.g. of a folder or of a range past the end). A local file is
    /// resolved and opened once, its metadata read from the open file; on S3 it is a HEAD, then a
    /// ranged GET.
    pub async fn read_picked<E: From<StorageError>>(
        &self,
        path: &ObjectPath,
        pick: impl FnOnce(&Entry) -> Result<(u64, u64), E>,
    ) -> Result<(Entry, Vec<u8>), E> {
        match self {
            Self::Local(root) => root.read_picked(path, pick).await,
            Self::S3(root) => {
                let entry = root.stat(path).await?;
                let (start, len) = pick(&entry)?;
                let bytes = root.read_range(path, start, len).await?;
                Ok((entry, bytes))
            }
        }
    }

    /// Creates or replaces a file: atomically (temporary file + rename) on a local root,
    /// with one PutObject on S3.
    pub async fn write(&self, path: &ObjectPath, bytes: Vec<u8>) -> Result<(), StorageError> {
        if path.is_root() {
            return Err(StorageError::WrongKind { path: ".".into(), expected: "a file", actual: "the root folder" });
        }
        match self {
            Self::Local(root) => root.write(path, bytes).await,
            Self::S3(root) => root.write(path, bytes).await,
        }
    }

    /// Copies a whole file into `sink` chunk by chunk (never whole in memory).
    pub async fn stream_to(
        &self,
        path: &ObjectPath,
        sink: &mut (impl tokio::io::AsyncWrite + Unpin),
    ) -> Result<u64, StorageError> {
        match self {
            Self::Local(root) => {
                let mut file = tokio::fs::File::from_std(root.open_file(path).await?);
                tokio::io::copy(&mut file, sink)
                    .await
                    .map_err(|source| StorageError::Io { path: path.to_string(), source })
            }
            Self::S3(root) => root.stream_to(path, sink).await,
        }
    }

    /// Deletes a file (never a folder).
    pub async fn delete(&self, path: &ObjectPath) -> Result<(), StorageError> {
        match self {
            Self::Local(root) => root.delete(path).await,
            Self::S3(root) => root.delete(path).await,
        }
    }
}

/// An error and its sources, joined with `: `.
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let part = inner.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = inner.source();
    }
    text
}

/// Formats a modification time as RFC 3339 UTC (second precision).
pub(crate) fn rfc3339(time: SystemTime) -> Option<String> {
    let secs = time.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant), valid for the proleptic Gregorian calendar.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    Some(format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_formats_known_instants() {
        let at = |secs| rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(at(951_782_400).as_deref(), Some("2000-02-29T00:00:00Z"));
        assert_eq!(at(1_795_435_199).as_deref(), Some("2026-11-23T11:59:59Z"));
    }
}

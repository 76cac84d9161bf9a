//! A data root under an S3 prefix (`s3://bucket/prefix/`), read with ranged GETs and paginated
//! listings; objects are never loaded whole unless asked for.

use std::sync::Arc;

use aws_sdk_s3::{
    Client,
    config::http::HttpResponse,
    error::{ProvideErrorMetadata, SdkError},
    primitives::ByteStream,
};

use super::{Entry, EntryKind, ObjectPath, StorageError};

/// The S3 location of the data root.
#[derive(Debug, Clone)]
pub struct S3Root {
    client: Client,
    bucket: Arc<str>,
    /// The key prefix of the root: empty, or ending in `/`.
    prefix: Arc<str>,
}

impl S3Root {
    /// Parses `s3://bucket/prefix` (the prefix may be empty).
    pub fn parse_url(url: &str) -> Result<(String, String), String> {
        let rest = url.strip_prefix("s3://").ok_or_else(|| format!("`{url}` is not an s3:// URL"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(format!("`{url}` names no bucket; use s3://bucket/prefix/"));
        }
        let prefix = prefix.trim_matches('/');
        let prefix = if prefix.is_empty() { String::new() } else { format!("{prefix}/") };
        Ok((bucket.to_owned(), prefix))
    }

    /// A root for `s3://bucket/prefix`, with credentials and region from the default chain.
    /// `AWS_ENDPOINT_URL` (e.g. a local S3 server) switches to path-style addressing.
    pub async fn connect(url: &str) -> Result<Self, String> {
        let (bucket, prefix) = Self::parse_url(url)?;
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let custom_endpoint =
            std::env::var_os("AWS_ENDPOINT_URL").is_some() || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
        let s3_config = aws_sdk_s3::config::Builder::from(&config).force_path_style(custom_endpoint).build();
        Ok(Self { client: Client::from_conf(s3_config), bucket: bucket.into(), prefix: prefix.into() })
    }

    /// `s3://bucket/prefix/`, for logs and tool output.
    pub fn describe(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    fn key(&self, path: &ObjectPath) -> String {
        format!("{}{}", self.prefix, path.as_str())
    }

    fn relative<'a>(&self, key: &'a str) -> &'a str {
        key.strip_prefix(&*self.prefix).unwrap_or(key)
    }

    /// Metadata of one object, or of a "folder" (a prefix with objects under it).
    pub async fn stat(&self, path: &ObjectPath) -> Result<Entry, StorageError> {
        if !path.is_root() {
            let head = self.client.head_object().bucket(&*self.bucket).key(self.key(path)).send().await;
            match head {
                Ok(head) => {
                    return Ok(Entry {
                        path: path.as_str().to_owned(),
                        kind: EntryKind::File,
                        size: head.content_length().and_then(|n| u64::try_from(n).ok()).unwrap_or(0),
                        modified: head
                            .last_modified()
                            .and_then(|t| t.fmt(aws_smithy_types::date_time::Format::DateTime).ok()),
                        etag: head.e_tag().map(|etag| etag.trim_matches('"').to_owned()),
                    });
                }
                Err(error) if is_not_found(&error) => {}
                Err(error) => return Err(s3_error(path, error)),
            }
        }
        let folder = if path.is_root() { self.prefix.to_string() } else { format!("{}/", self.key(path)) };
        let listing = self
            .client
            .list_objects_v2()
            .bucket(&*self.bucket)
            .prefix(&folder)
            .max_keys(1)
            .send()
            .await
            .map_err(|error| s3_error(path, error))?;
        if listing.key_count().unwrap_or(0) > 0 || path.is_root() {
            Ok(Entry { path: path.as_str().to_owned(), kind: EntryKind::Dir, size: 0, modified: None, etag: None })
        } else {
            Err(StorageError::NotFound(path.to_string()))
        }
    }

    /// Entries below `dir`, sorted by path, following continuation tokens past 1,000 keys; more
    /// than `limit` entries is an error.
    pub async fn list(&self, dir: &ObjectPath, recursive: bool, limit: usize) -> Result<Vec<Entry>, StorageError> {
        let folder = if dir.is_root() { self.prefix.to_string() } else { format!("{}/", self.key(dir)) };
        let mut entries = Vec::new();
        let mut folders = std::collections::BTreeSet::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&*self.bucket)
            .prefix(&folder)
            .set_delimiter((!recursive).then(|| "/".to_owned()))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|error| s3_error(dir, error))?;
            for object in page.contents() {
                let Some(key) = object.key() else { continue };
                let relative = self.relative(key);
                if relative.ends_with('/') || relative.is_empty() {
                    continue; // "folder marker" objects
                }
                if recursive {
                    // Folders are implied by the keys below them.
                    let mut end = relative.len();
                    while let Some(slash) = relative[..end].rfind('/') {
                        folders.insert(relative[..slash].to_owned());
                        end = slash;
                    }
                }
                entries.push(Entry {
                    path: relative.to_owned(),
                    kind: EntryKind::File,
                    size: object.size().and_then(|n| u64::try_from(n).ok()).unwrap_or(0),
                    modified: object
                        .last_modified()
                        .and_then(|t| t.fmt(aws_smithy_types::date_time::Format::DateTime).ok()),
                    etag: object.e_tag().map(|etag| etag.trim_matches('"').to_owned()),
                });
            }
            for common in page.common_prefixes() {
                if let Some(prefix) = common.prefix() {
                    folders.insert(self.relative(prefix).trim_end_matches('/').to_owned());
                }
            }
            if entries.len() + folders.len() > limit {
                return Err(StorageError::TooManyEntries { path: dir.to_string(), limit });
            }
        }
        let below = if dir.is_root() { String::new() } else { format!("{}/", dir.as_str()) };
        entries.extend(
            folders
                .into_iter()
                .filter(|folder| folder.starts_with(&below) && folder.len() > below.len())
                .map(|path| Entry { path, kind: EntryKind::Dir, size: 0, modified: None, etag: None }),
        );
        if entries.is_empty() && !dir.is_root() {
            self.stat(dir).await?;
        }
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(entries)
    }

    /// Up to `len` bytes from `start` (a ranged GET).
    pub async fn read_range(&self, path: &ObjectPath, start: u64, len: u64) -> Result<Vec<u8>, StorageError> {
        if len == 0 {
            return Ok(Vec::new());
        }
        let range = format!("bytes={start}-{}", start.saturating_add(len) - 1);
        let object = self.client.get_object().bucket(&*self.bucket).key(self.key(path)).range(range).send().await;
        let object = match object {
            Ok(object) => object,
            // Asking past the end of an object is "not satisfiable": that is an empty read.
            Err(error) if error.as_service_error().and_then(|e| e.code()) == Some("InvalidRange") => {
                return Ok(Vec::new());
            }
            Err(error) => return Err(s3_error(path, error)),
        };
        let bytes = object
            .body
            .collect()
            .await
            .map_err(|error| StorageError::Io { path: path.to_string(), source: std::io::Error::other(error) })?;
        Ok(bytes.into_bytes().to_vec())
    }

    /// Streams the object into `sink` chunk by chunk (never whole in memory).
    pub async fn stream_to(
        &self,
        path: &ObjectPath,
        sink: &mut (impl tokio::io::AsyncWrite + Unpin),
    ) -> Result<u64, StorageError> {
        use tokio::io::AsyncWriteExt as _;
        let object = self
            .client
            .get_object()
            .bucket(&*self.bucket)
            .key(self.key(path))
            .send()
            .await
            .map_err(|error| s3_error(path, error))?;
        let mut body = object.body;
        let mut written = 0u64;
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|error| StorageError::Io { path: path.to_string(), source: std::io::Error::other(error) })?
        {
            sink.write_all(&chunk).await.map_err(|source| StorageError::Io { path: path.to_string(), source })?;
            written += chunk.len() as u64;
        }
        Ok(written)
    }

    /// Creates or replaces an object.
    pub async fn write(&self, path: &ObjectPath, bytes: Vec<u8>) -> Result<(), StorageError> {
        self.client
            .put_object()
            .bucket(&*self.bucket)
            .key(self.key(path))
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map(drop)
            .map_err(|error| s3_error(path, error))
    }

    /// Deletes an object (it must exist).
    pub async fn delete(&self, path: &ObjectPath) -> Result<(), StorageError> {
        let entry = self.stat(path).await?;
        if entry.kind == EntryKind::Dir {
            return Err(StorageError::not_a_file(path));
        }
        self.client
            .delete_object()
            .bucket(&*self.bucket)
            .key(self.key(path))
            .send()
            .await
            .map(drop)
            .map_err(|error| s3_error(path, error))
    }
}

/// The HTTP status of a failed S3 call, when a response came back.
fn http_status<E>(error: &SdkError<E, HttpResponse>) -> Option<u16> {
    error.raw_response().map(|response| response.status().as_u16())
}

/// Whether the object (or prefix) does not exist. HEAD answers have no body, hence no error
/// code: only their status tells a missing object (404) from a forbidden one (403).
fn is_not_found<E: ProvideErrorMetadata>(error: &SdkError<E, HttpResponse>) -> bool {
    let code = error.as_service_error().and_then(ProvideErrorMetadata::code);
    matches!(code, Some("NotFound" | "NoSuchKey")) || code.is_none() && http_status(error) == Some(404)
}

fn s3_error<E>(path: &ObjectPath, error: SdkError<E, HttpResponse>) -> StorageError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let code = error.as_service_error().and_then(|e| e.code()).map(str::to_owned);
    match (code.as_deref(), http_status(&error)) {
        (Some("NoSuchKey" | "NotFound"), _) | (None, Some(404)) => StorageError::NotFound(path.to_string()),
        (Some("AccessDenied" | "AllAccessDisabled" | "InvalidAccessKeyId" | "SignatureDoesNotMatch"), _)
        | (None, Some(403)) => StorageError::AccessDenied {
            path: path.to_string(),
            hint: "the credentials in use (on Lambda, the function's role) need s3:GetObject and \
                   s3:ListBucket on the data root (s3:PutObject and s3:DeleteObject to write)",
        },
        (Some("NoSuchBucket"), _) => StorageError::Io {
            path: path.to_string(),
            source: std::io::Error::other("the bucket of the data root does not exist (check DATA_ROOT)"),
        },
        _ => StorageError::Io {
            path: path.to_string(),
            source: std::io::Error::other(crate::storage::error_chain(&error)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_s3_urls() {
        assert_eq!(S3Root::parse_url("s3://bucket/data/"), Ok(("bucket".into(), "data/".into())));
        assert_eq!(S3Root::parse_url("s3://bucket/a/b"), Ok(("bucket".into(), "a/b/".into())));
        assert_eq!(S3Root::parse_url("s3://bucket"), Ok(("bucket".into(), String::new())));
        assert!(S3Root::parse_url("s3:///x").is_err());
        assert!(S3Root::parse_url("/local").is_err());
    }
}

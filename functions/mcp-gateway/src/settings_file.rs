//! Small settings files in TOML (the upstreams file, the access file): read from a local path or
//! `s3://bucket/key` (at most 1 MiB), and every problem reported with the file and the line.

use std::time::Duration;

use toml::Spanned;

use crate::storage::{ObjectPath, S3Root};

/// The largest settings file read.
const MAX_FILE_BYTES: u64 = 1 << 20;

/// A problem with a settings file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}{}: {message}", .line.map(|line| format!(" line {line}")).unwrap_or_default())]
pub struct ConfigError {
    /// The file (path or `s3://` URL).
    pub source_name: String,
    /// The 1-based line of the problem, when known.
    pub line: Option<usize>,
    /// What is wrong and what is allowed.
    pub message: String,
}

/// The text of a small file (at most 1 MiB): a local path or `s3://bucket/key`.
pub async fn read_text(source: &str) -> Result<String, ConfigError> {
    let unreadable = |message: String| ConfigError { source_name: source.to_owned(), line: None, message };
    let text = if let Some(rest) = source.strip_prefix("s3://") {
        let (bucket, key) =
            rest.split_once('/').ok_or_else(|| unreadable("names no object; use s3://bucket/key".into()))?;
        let (folder, file) = key.rsplit_once('/').unwrap_or(("", key));
        let root = S3Root::connect(&format!("s3://{bucket}/{folder}")).await.map_err(unreadable)?;
        let path = ObjectPath::parse(file).map_err(|error| unreadable(error.to_string()))?;
        let entry = root.stat(&path).await.map_err(|error| unreadable(error.to_string()))?;
        if entry.size > MAX_FILE_BYTES {
            return Err(unreadable(format!("is {} bytes; the limit is {MAX_FILE_BYTES}", entry.size)));
        }
        let bytes = root.read_range(&path, 0, entry.size).await.map_err(|error| unreadable(error.to_string()))?;
        String::from_utf8(bytes).map_err(|_| unreadable("is not UTF-8 text".into()))?
    } else {
        let metadata = std::fs::metadata(source).map_err(|error| unreadable(format!("cannot be read: {error}")))?;
        if metadata.len() > MAX_FILE_BYTES {
            return Err(unreadable(format!("is {} bytes; the limit is {MAX_FILE_BYTES}", metadata.len())));
        }
        std::fs::read_to_string(source).map_err(|error| unreadable(format!("cannot be read: {error}")))?
    };
    Ok(text)
}

/// `500ms`, `30s`, `2m`, `1h`: a positive duration of at most an hour.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let duration = match unit {
        "ms" => Duration::from_millis(number),
        "s" => Duration::from_secs(number),
        "m" => Duration::from_secs(number.checked_mul(60)?),
        "h" => Duration::from_secs(number.checked_mul(3600)?),
        _ => return None,
    };
    (!duration.is_zero() && duration <= Duration::from_secs(3600)).then_some(duration)
}

/// Byte offsets to line numbers in one file.
pub(crate) struct Lines<'a> {
    source_name: &'a str,
    text: &'a str,
}

impl<'a> Lines<'a> {
    pub(crate) fn new(source_name: &'a str, text: &'a str) -> Self {
        Self { source_name, text }
    }

    pub(crate) fn error(&self, offset: Option<usize>, message: String) -> ConfigError {
        let line = offset.map(|offset| self.text[..offset.min(self.text.len())].matches('\n').count() + 1);
        ConfigError { source_name: self.source_name.to_owned(), line, message }
    }

    pub(crate) fn at<T>(&self, value: &Spanned<T>, message: String) -> ConfigError {
        self.error(Some(value.span().start), message)
    }

    /// The duration `raw` holds (`500ms`, `30s`, `2m`, `1h`), or `default` when it is absent.
    pub(crate) fn duration(&self, raw: Option<&Spanned<String>>, default: Duration) -> Result<Duration, ConfigError> {
        let Some(raw) = raw else { return Ok(default) };
        parse_duration(raw.get_ref()).ok_or_else(|| {
            self.at(raw, format!("`{}` is not a duration; write e.g. 500ms, 30s or 2m (at most 1h)", raw.get_ref()))
        })
    }
}

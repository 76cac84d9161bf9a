//! `file`: list, read and inspect files under the data root (sandboxed, read-only).

use base64::Engine as _;
use globset::{Glob, GlobMatcher};
use rmcp::model::ToolAnnotations;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    registry::{CallContext, Output, ToolError, TypedTool, cursor_offset, next_cursor},
    storage::{Entry, EntryKind, ObjectPath, Storage, delta_tables},
};

/// The `file` tool over one data root.
#[derive(Debug, Clone)]
pub struct FileTool {
    storage: Storage,
    limits: FileLimits,
}

/// The furthest a `list` cursor may point (no listing is that long).
const MAX_LIST_OFFSET: usize = 1 << 40;

/// Size caps for `file`; users raise them with `--max-read-bytes`.
#[derive(Debug, Clone, Copy)]
pub struct FileLimits {
    /// Largest byte count one `read` returns.
    pub max_read_bytes: u64,
    /// Largest page of `list` entries.
    pub max_page: usize,
}

impl Default for FileLimits {
    fn default() -> Self {
        Self { max_read_bytes: 1 << 20, max_page: 1000 }
    }
}

impl FileTool {
    /// A `file` tool over `storage`.
    pub fn new(storage: Storage, limits: FileLimits) -> Self {
        Self { storage, limits }
    }
}

/// What to do.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FileAction {
    /// List a folder (optionally recursive, filtered by glob, paginated).
    List,
    /// Read a file: text by line range or byte range; binary files come back base64-encoded.
    Read,
    /// Size, modification time and content type of one file or folder.
    Info,
}

/// Arguments of `file`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileInput {
    /// `list`, `read` or `info`.
    pub action: FileAction,
    /// Path relative to the data root, `/`-separated. Empty or `.` is the root.
    #[serde(default)]
    pub path: String,
    /// `list`: only entries whose path (relative to the root) matches this glob, e.g. `**/*.csv`.
    pub glob: Option<String>,
    /// `list`: descend into sub-folders.
    #[serde(default)]
    pub recursive: bool,
    /// `list`: the `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// `list`: page size (default 100).
    pub limit: Option<usize>,
    /// `read`: first line to return, 1-based.
    pub start_line: Option<u64>,
    /// `read`: last line to return, inclusive.
    pub end_line: Option<u64>,
    /// `read`: first byte to return, 0-based (instead of lines).
    pub offset: Option<u64>,
    /// `read`: number of bytes to return from `offset`.
    pub length: Option<u64>,
}

/// Result of `file`; which fields are set depends on the action.
#[derive(Debug, Default, Serialize, JsonSchema)]
pub struct FileOutput {
    /// `list`: this page of entries, sorted by path. A Delta Lake table's folder is one entry
    /// (`table: "delta"`); its log and data files are listed only inside it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entries: Option<Vec<ListedEntry>>,
    /// `list`: pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// `read`/`info`: the file's metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub info: Option<FileInfo>,
    /// `read`: the text read (UTF-8 files).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// `read`: the bytes read, base64-encoded (binary files).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base64: Option<String>,
    /// `read`: the byte range returned, `[start, end)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub byte_range: Option<[u64; 2]>,
    /// `read` by lines: the line range returned, inclusive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line_range: Option<[u64; 2]>,
}

/// An entry of a listing.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ListedEntry {
    /// The entry itself.
    #[serde(flatten)]
    pub entry: Entry,
    /// `delta` for the folder of a Delta Lake table (`db` and `dataset_metadata` read it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
}

/// Folders checked at once for `_delta_log/` in a listing.
const CONCURRENT_TABLE_CHECKS: usize = 8;

/// Metadata of one file.
#[derive(Debug, Serialize, JsonSchema)]
pub struct FileInfo {
    /// The entry itself.
    #[serde(flatten)]
    pub entry: Entry,
    /// Media type guessed from the extension.
    pub content_type: String,
}

impl TypedTool for FileTool {
    type Input = FileInput;
    type Output = FileOutput;
    const NAME: &'static str = "file";
    const TITLE: &'static str = "Files under the data root";
    const DESCRIPTION: &'static str = "List, read and inspect files under the data root. \
        action=list (path, recursive, glob, limit, cursor; a Delta Lake table's folder is one entry, \
        table=delta); action=read (path plus start_line/end_line \
        or offset/length; binary files are returned base64-encoded); action=info (path). \
        Paths are relative to the data root.";

    fn annotations(&self) -> ToolAnnotations {
        ToolAnnotations::new().read_only(true).destructive(false).idempotent(true).open_world(false)
    }

    async fn run(&self, input: FileInput, context: CallContext) -> Result<Output<FileOutput>, ToolError> {
        let path = ObjectPath::parse(&input.path)?;
        match input.action {
            FileAction::List => self.list(&path, &input, &context).await,
            FileAction::Read => self.read(&path, &input).await,
            FileAction::Info => {
                let entry = self.storage.stat(&path).await?;
                let text = format!("{} ({:?}, {} bytes)", entry.path, entry.kind, entry.size);
                Ok(Output { structured: FileOutput { info: Some(info(entry)), ..FileOutput::default() }, text })
            }
        }
    }
}

impl FileTool {
    async fn list(
        &self,
        dir: &ObjectPath,
        input: &FileInput,
        context: &CallContext,
    ) -> Result<Output<FileOutput>, ToolError> {
        let matcher = input.glob.as_deref().map(glob_matcher).transpose()?;
        let limit = input.limit.unwrap_or(100);
        if limit == 0 || limit > self.limits.max_page {
            return Err(ToolError::new(format!("limit must be between 1 and {}", self.limits.max_page)));
        }
        let start = cursor_offset(input.cursor.as_deref(), MAX_LIST_OFFSET)?;
        context.progress.report(0.0, None, format!("listing {dir}")).await;
        let mut entries = self.storage.list(dir, input.recursive).await?;
        let tables = if input.recursive { collapse_delta_tables(dir, &mut entries) } else { Vec::new() };
        let matching: Vec<Entry> =
            entries.into_iter().filter(|entry| matcher.as_ref().is_none_or(|m| m.is_match(&entry.path))).collect();
        let total = matching.len();
        context.progress.report(total as f64, Some(total as f64), format!("{total} entries found")).await;
        let page: Vec<Entry> = matching.into_iter().skip(start).take(limit).collect();
        let page = if input.recursive {
            page.into_iter()
                .map(|entry| {
                    let table = tables.contains(&entry.path).then(|| "delta".to_owned());
                    ListedEntry { entry, table }
                })
                .collect()
        } else {
            self.mark_delta_tables(page).await
        };
        let next = start + page.len();
        let next_cursor = next_cursor(next, total);
        let mut text = page
            .iter()
            .map(|listed| match (&listed.entry.kind, &listed.table) {
                (EntryKind::Dir, Some(_)) => format!("{}/\tDelta table", listed.entry.path),
                (EntryKind::Dir, None) => format!("{}/", listed.entry.path),
                (EntryKind::File, _) => format!("{}\t{} bytes", listed.entry.path, listed.entry.size),
            })
            .collect::<Vec<_>>()
            .join("\n");
        if let Some(cursor) = &next_cursor {
            text.push_str(&format!("\n… {} more; pass cursor \"{cursor}\" for the next page", total - next));
        }
        if page.is_empty() {
            text = format!("no entries under {dir}");
        }
        Ok(Output { structured: FileOutput { entries: Some(page), next_cursor, ..FileOutput::default() }, text })
    }

    /// Marks the folders of a page that hold `_delta_log/` as Delta tables.
    async fn mark_delta_tables(&self, page: Vec<Entry>) -> Vec<ListedEntry> {
        use futures::StreamExt as _;
        let checks: Vec<_> = page
            .into_iter()
            .map(|entry| {
                let storage = self.storage.clone();
                async move {
                    let log = ObjectPath::parse(&format!("{}/{}", entry.path, delta_tables::LOG_FOLDER));
                    let is_table = match (&entry.kind, log) {
                        (EntryKind::Dir, Ok(log)) => {
                            storage.stat(&log).await.is_ok_and(|found| found.kind == EntryKind::Dir)
                        }
                        _ => false,
                    };
                    ListedEntry { entry, table: is_table.then(|| "delta".to_owned()) }
                }
            })
            .collect();
        futures::stream::iter(checks).buffered(CONCURRENT_TABLE_CHECKS).collect().await
    }

    async fn read(&self, path: &ObjectPath, input: &FileInput) -> Result<Output<FileOutput>, ToolError> {
        let by_lines = input.start_line.is_some() || input.end_line.is_some();
        let by_bytes = input.offset.is_some() || input.length.is_some();
        if by_lines && by_bytes {
            return Err(ToolError::new("give either start_line/end_line or offset/length, not both"));
        }
        if by_lines {
            let entry = self.storage.stat(path).await?;
            refuse_folder(path, &entry)?;
            return self.read_lines(path, entry, input.start_line.unwrap_or(1), input.end_line).await;
        }
        let cap = self.limits.max_read_bytes;
        let offset = input.offset.unwrap_or(0);
        let pick = |entry: &Entry| {
            refuse_folder(path, entry)?;
            let length = match input.length {
                Some(length) if length > cap => {
                    return Err(ToolError::new(format!(
                        "length {length} is larger than the read limit of {cap} bytes; read in smaller ranges"
                    )));
                }
                Some(length) => length,
                None if entry.size.saturating_sub(offset) > cap => {
                    return Err(ToolError::new(format!(
                        "`{path}` is {} bytes, too large to read at once (limit {cap}); use offset/length or start_line/end_line to read a range",
                        entry.size
                    )));
                }
                None => entry.size.saturating_sub(offset),
            };
            if offset > entry.size {
                return Err(ToolError::new(format!(
                    "offset {offset} is past the end of `{path}` ({} bytes)",
                    entry.size
                )));
            }
            Ok((offset, length))
        };
        let (entry, bytes) = self.storage.read_picked(path, pick).await?;
        let end = offset + bytes.len() as u64;
        let mut output = FileOutput { byte_range: Some([offset, end]), ..FileOutput::default() };
        let text = match decode_text(bytes) {
            Ok(text) => {
                output.text = Some(text.clone());
                text
            }
            Err(bytes) => {
                let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
                output.base64 = Some(encoded);
                format!("`{path}` is binary: bytes {offset}..{end} are in structuredContent.base64")
            }
        };
        output.info = Some(info(entry));
        Ok(Output { structured: output, text })
    }

    async fn read_lines(
        &self,
        path: &ObjectPath,
        entry: Entry,
        start_line: u64,
        end_line: Option<u64>,
    ) -> Result<Output<FileOutput>, ToolError> {
        if start_line == 0 || end_line.is_some_and(|end| end < start_line) {
            return Err(ToolError::new("lines are numbered from 1 and end_line must not be before start_line"));
        }
        let cap = self.limits.max_read_bytes;
        const CHUNK: u64 = 256 * 1024;
        let mut line = 1u64;
        let mut offset = 0u64;
        let mut selected = Vec::new();
        let mut first_byte = None;
        'scan: while offset < entry.size {
            let chunk = self.storage.read_range(path, offset, CHUNK.min(entry.size - offset)).await?;
            if chunk.is_empty() {
                break;
            }
            for (i, &byte) in chunk.iter().enumerate() {
                if line >= start_line && end_line.is_none_or(|end| line <= end) {
                    first_byte.get_or_insert(offset + i as u64);
                    selected.push(byte);
                    if selected.len() as u64 > cap {
                        return Err(ToolError::new(format!(
                            "lines {start_line}..{} of `{path}` exceed the read limit of {cap} bytes; ask for fewer lines",
                            end_line.map_or("end".to_owned(), |end| end.to_string())
                        )));
                    }
                }
                if byte == b'\n' {
                    line += 1;
                    if end_line.is_some_and(|end| line > end) {
                        break 'scan;
                    }
                }
            }
            offset += chunk.len() as u64;
        }
        if line < start_line {
            return Err(ToolError::new(format!(
                "`{path}` has only {line} lines; start_line {start_line} is past its end"
            )));
        }
        let last_line = end_line.map_or(line, |end| end.min(line));
        let start = first_byte.unwrap_or(offset);
        let byte_range = Some([start, start + selected.len() as u64]);
        let text = decode_text(selected).map_err(|_| {
            ToolError::new(format!("`{path}` is not UTF-8 text; read it with offset/length to get base64 bytes"))
        })?;
        let output = FileOutput {
            text: Some(text.clone()),
            byte_range,
            line_range: Some([start_line, last_line]),
            info: Some(info(entry)),
            ..FileOutput::default()
        };
        Ok(Output { structured: output, text })
    }
}

/// Refuses to read a folder, pointing at `list`.
fn refuse_folder(path: &ObjectPath, entry: &Entry) -> Result<(), ToolError> {
    if entry.kind == EntryKind::Dir {
        return Err(ToolError::new(format!("`{path}` is a folder; use action=list to see its contents")));
    }
    Ok(())
}

/// Folds each Delta table under `dir` (a folder holding `_delta_log/`, other than `dir` itself)
/// into one folder entry; returns the tables' paths.
fn collapse_delta_tables(dir: &ObjectPath, entries: &mut Vec<Entry>) -> Vec<String> {
    let tables = delta_tables::table_folders(entries, |root| root != dir.as_str());
    entries.retain(|entry| !tables.iter().any(|root| entry.path.starts_with(&format!("{root}/"))));
    for root in &tables {
        if !entries.iter().any(|entry| &entry.path == root) {
            entries.push(Entry { path: root.clone(), kind: EntryKind::Dir, size: 0, modified: None, etag: None });
        }
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    tables
}

fn info(entry: Entry) -> FileInfo {
    let content_type = match entry.kind {
        EntryKind::Dir => "inode/directory".to_owned(),
        EntryKind::File => content_type(&entry.path).to_owned(),
    };
    FileInfo { entry, content_type }
}

/// The media type of a path, from its extension.
pub fn content_type(path: &str) -> &'static str {
    let extension = path.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase()).unwrap_or_default();
    match extension.as_str() {
        "csv" => "text/csv",
        "tsv" => "text/tab-separated-values",
        "json" => "application/json",
        "ndjson" | "jsonl" => "application/x-ndjson",
        "parquet" => "application/vnd.apache.parquet",
        "md" | "markdown" => "text/markdown",
        "txt" | "log" => "text/plain",
        "html" | "htm" => "text/html",
        "xml" => "application/xml",
        "yaml" | "yml" => "application/yaml",
        "toml" => "application/toml",
        "rs" | "py" | "js" | "ts" | "go" | "java" | "c" | "h" | "cpp" | "sh" | "sql" => "text/plain",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "pdf" => "application/pdf",
        "gz" => "application/gzip",
        "zip" => "application/zip",
        _ => "application/octet-stream",
    }
}

fn glob_matcher(pattern: &str) -> Result<GlobMatcher, ToolError> {
    Glob::new(pattern)
        .map(|glob| glob.compile_matcher())
        .map_err(|error| ToolError::new(format!("invalid glob `{pattern}`: {error}")))
}

/// UTF-8 text, or the bytes back when they are binary (NUL bytes or invalid UTF-8).
fn decode_text(bytes: Vec<u8>) -> Result<String, Vec<u8>> {
    if bytes.contains(&0) {
        return Err(bytes);
    }
    String::from_utf8(bytes).map_err(|error| error.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        assert_eq!(cursor_offset(next_cursor(42, 50).as_deref(), 100).ok(), Some(42));
        assert_eq!(next_cursor(50, 50), None);
        assert_eq!(cursor_offset(None, 100).ok(), Some(0));
        for bad in ["42", "o-1", "o", "o+1", "o1e3", "o 1", "o99999999999999999999999"] {
            assert!(cursor_offset(Some(bad), 100).is_err(), "{bad}");
        }
        let past = cursor_offset(Some("o101"), 100).err().map(|e| e.0).unwrap_or_default();
        assert!(past.contains("at most 100"), "{past}");
    }

    #[test]
    fn malformed_glob_is_a_clear_error() {
        let error = glob_matcher("a/[b").err().map(|e| e.0).unwrap_or_default();
        assert!(error.starts_with("invalid glob `a/[b`"), "{error}");
    }

    #[test]
    fn binary_detection() {
        assert!(decode_text(b"plain\n".to_vec()).is_ok());
        assert!(decode_text(vec![0xff, 0xfe]).is_err());
        assert!(decode_text(b"a\0b".to_vec()).is_err());
    }
}

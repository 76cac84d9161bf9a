//! What gets indexed: which files, and how each is cut into searchable chunks.

use crate::storage::{Entry, EntryKind, ObjectPath, Storage, StorageError};

use super::{INDEX_DIR, MAX_FILE_BYTES};

/// One searchable piece of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// First line of the chunk, 1-based.
    pub line: u64,
    /// The chunk's text.
    pub text: String,
}

/// Text formats worth indexing, by extension.
const TEXT_EXTENSIONS: &[&str] = &[
    "md", "markdown", "txt", "rst", "log", "json", "ndjson", "jsonl", "csv", "tsv", "yaml", "yml", "toml", "xml",
    "html", "htm", "rs", "py", "js", "ts", "go", "java", "kt", "c", "h", "cpp", "hpp", "cs", "rb", "php", "sh", "sql",
    "swift", "scala", "ini", "cfg",
];

/// Whether `path` is a text document the search tool indexes (not hidden, not a Delta table's
/// transaction log).
pub fn is_indexable(path: &str) -> bool {
    let skipped = |segment: &str| segment.starts_with('.') || segment == crate::datasets::delta::LOG_FOLDER;
    if path.starts_with(INDEX_DIR) || path.split('/').any(skipped) {
        return false;
    }
    let extension = path.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase()).unwrap_or_default();
    TEXT_EXTENSIONS.contains(&extension.as_str())
}

/// The indexable files under the root, sorted by path.
pub(super) async fn files(storage: &Storage) -> Result<Vec<Entry>, StorageError> {
    let entries = storage.list(&ObjectPath::root(), true).await?;
    Ok(entries
        .into_iter()
        .filter(|entry| entry.kind == EntryKind::File && entry.size <= MAX_FILE_BYTES && is_indexable(&entry.path))
        .collect())
}

/// Cuts a file into chunks: one per row for tables (CSV/TSV/NDJSON), one per paragraph (at
/// most 20 lines) for everything else. Empty chunks are dropped.
pub(super) fn chunks(path: &str, text: &str) -> Vec<Chunk> {
    let extension = path.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase()).unwrap_or_default();
    let per_row = matches!(extension.as_str(), "csv" | "tsv" | "ndjson" | "jsonl");
    let mut chunks = Vec::new();
    let mut current = String::new();
    let mut start = 1u64;
    let mut lines_in_chunk = 0;
    for (index, line) in text.lines().enumerate() {
        let number = index as u64 + 1;
        if per_row {
            if !line.trim().is_empty() {
                chunks.push(Chunk { line: number, text: line.to_owned() });
            }
            continue;
        }
        let blank = line.trim().is_empty();
        if (blank || lines_in_chunk == 20) && !current.trim().is_empty() {
            chunks.push(Chunk { line: start, text: std::mem::take(&mut current) });
            lines_in_chunk = 0;
        }
        if blank {
            current.clear();
            continue;
        }
        if current.is_empty() {
            start = number;
        }
        current.push_str(line);
        current.push('\n');
        lines_in_chunk += 1;
    }
    if !current.trim().is_empty() {
        chunks.push(Chunk { line: start, text: current });
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_and_rows() {
        let text = "# Title\n\nFirst paragraph\ncontinues here.\n\n\nSecond.\n";
        let chunks = chunks("doc.md", text);
        assert_eq!(
            chunks,
            vec![
                Chunk { line: 1, text: "# Title\n".into() },
                Chunk { line: 3, text: "First paragraph\ncontinues here.\n".into() },
                Chunk { line: 7, text: "Second.\n".into() },
            ]
        );
        let rows = super::chunks("t.csv", "a,b\n1,2\n\n3,4\n");
        assert_eq!(rows.iter().map(|c| c.line).collect::<Vec<_>>(), vec![1, 2, 4]);
    }

    #[test]
    fn long_paragraphs_are_split_every_20_lines() {
        let text: String = (1..=45).map(|i| format!("line {i}\n")).collect();
        let starts: Vec<u64> = chunks("a.txt", &text).iter().map(|c| c.line).collect();
        assert_eq!(starts, vec![1, 21, 41]);
    }

    #[test]
    fn indexable_files() {
        assert!(is_indexable("docs/a.md"));
        assert!(is_indexable("src/main.RS"));
        assert!(!is_indexable("data/x.parquet"));
        assert!(!is_indexable(".mcp-index/meta.json"));
        assert!(!is_indexable("a/.hidden/b.txt"));
        assert!(!is_indexable("sales/trips/_delta_log/00000000000000000000.json"), "a Delta log is not a document");
    }
}

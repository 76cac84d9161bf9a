//! The full-text index behind the `search` tool: tantivy (BM25) over the text documents under the
//! data root, one document per paragraph (or per row for CSV/NDJSON).
//!
//! `mcp-gateway index` builds it and stores it in the root under [`INDEX_DIR`]; the server loads
//! it at cold start (memory-mapped for a local root, without writing there: the root may be
//! read-only; into memory from S3). Without a stored index, a small corpus is indexed in memory on
//! first use.

mod corpus;
mod stored_dir;

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use tantivy::{
    DocAddress, Index, IndexReader, Score, TantivyDocument, Term,
    collector::{Count, TopDocs},
    directory::RamDirectory,
    doc,
    query::{BooleanQuery, Occur, Query, QueryParser, RegexQuery, TermQuery},
    schema::{Field, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions, Value as _},
    snippet::SnippetGenerator,
};

use crate::{
    progress::Progress,
    storage::{EntryKind, ObjectPath, Storage, StorageError},
};

pub use corpus::{Chunk, is_indexable};

/// Where the stored index lives, relative to the data root.
pub const INDEX_DIR: &str = ".mcp-index";
/// A corpus up to this many bytes may be indexed in memory on first use.
pub const MEMORY_BUILD_LIMIT: u64 = 64 << 20;
/// Files larger than this are not indexed.
pub const MAX_FILE_BYTES: u64 = 16 << 20;
const WRITER_MEMORY: usize = 64 << 20;

/// Why the index could not be built, loaded or queried.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    /// Reading the corpus or the stored index failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// tantivy failed.
    #[error("search index: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    /// Local IO around the index failed.
    #[error("search index: {0}")]
    Io(#[from] std::io::Error),
    /// No stored index and the corpus is too big to index on the fly.
    #[error(
        "no search index is stored under {INDEX_DIR}/ and the corpus is {bytes} bytes, above the in-memory limit of {MEMORY_BUILD_LIMIT}; run `mcp-gateway index` for this data root"
    )]
    TooLargeForMemory { bytes: u64 },
    /// The query or filter could not be used.
    #[error("{0}")]
    BadQuery(String),
}

/// How the index came to be.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct IndexInfo {
    /// `stored` (built by `mcp-gateway index`) or `memory` (built on first use).
    pub source: String,
    /// Number of indexed chunks.
    pub documents: u64,
    /// Number of indexed files.
    pub files: u64,
    /// Whether files changed since this index was built (a stored index too large to rebuild in
    /// memory; new or changed files may be missing from the hits).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stale: bool,
    /// What the client should know about the index, e.g. that it is stale and how to refresh it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One search hit.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct Hit {
    /// Path of the file, relative to the data root.
    pub path: String,
    /// First line of the matching paragraph or row (1-based).
    pub line: u64,
    /// BM25 score; higher is better.
    pub score: f32,
    /// The best-matching passage, with matched terms marked as `**term**`.
    pub snippet: String,
}

/// One page of results.
#[derive(Debug, Clone)]
pub struct Page {
    /// The hits, best first.
    pub hits: Vec<Hit>,
    /// How many chunks match in all.
    pub total: usize,
}

#[derive(Debug, Clone, Copy)]
struct Fields {
    path: Field,
    line: Field,
    body: Field,
}

/// A searchable index.
pub struct SearchIndex {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    info: IndexInfo,
    /// The [`fingerprint`] of the files it was built from, when known.
    built_from: Option<String>,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchIndex").field("info", &self.info).finish_non_exhaustive()
    }
}

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let path = builder.add_text_field("path", STRING | STORED);
    let line = builder.add_u64_field("line", STORED);
    let indexing = TextFieldIndexing::default()
        .set_tokenizer("en_stem")
        .set_index_option(IndexRecordOption::WithFreqsAndPositions);
    let body = builder.add_text_field("body", TextOptions::default().set_indexing_options(indexing).set_stored());
    (builder.build(), Fields { path, line, body })
}

impl SearchIndex {
    /// What this index holds.
    pub fn info(&self) -> &IndexInfo {
        &self.info
    }

    /// The stored index of `storage`, or `None` when there is none.
    pub async fn load(storage: &Storage) -> Result<Option<Self>, IndexError> {
        let dir = ObjectPath::parse(INDEX_DIR).map_err(StorageError::from)?;
        let files = match storage.list(&dir, false).await {
            Ok(files) => files,
            Err(StorageError::NotFound(_)) => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        if !files.iter().any(|entry| entry.path.ends_with("meta.json")) {
            return Ok(None);
        }
        let started = Instant::now();
        let index = match storage {
            Storage::Local(root) => {
                let folder = root.path().join(INDEX_DIR);
                Index::open(stored_dir::StoredDirectory::open(&folder).map_err(tantivy::TantivyError::from)?)?
            }
            Storage::S3(_) => {
                let directory = RamDirectory::create();
                for entry in files.iter().filter(|entry| entry.kind == EntryKind::File) {
                    let path = ObjectPath::parse(&entry.path).map_err(StorageError::from)?;
                    let bytes = storage.read_range(&path, 0, entry.size).await?;
                    let name = entry.path.rsplit('/').next().unwrap_or_default();
                    tantivy::directory::Directory::atomic_write(&directory, Path::new(name), &bytes)?;
                }
                Index::open(directory)?
            }
        };
        let built_from = index.load_metas()?.payload;
        let loaded = Self::from_index(index, "stored", built_from)?;
        tracing::info!(
            documents = loaded.info.documents,
            ms = started.elapsed().as_millis() as u64,
            "loaded the stored search index"
        );
        Ok(Some(loaded))
    }

    /// Indexes the corpus in memory (refusing corpora above [`MEMORY_BUILD_LIMIT`]).
    pub async fn build_in_memory(storage: &Storage, progress: &Progress) -> Result<Self, IndexError> {
        let files = corpus::files(storage).await?;
        let bytes: u64 = files.iter().map(|entry| entry.size).sum();
        if bytes > MEMORY_BUILD_LIMIT {
            return Err(IndexError::TooLargeForMemory { bytes });
        }
        tracing::info!(files = files.len(), bytes, "indexing the data root in memory");
        let (schema, _) = schema();
        let index = Index::create_in_ram(schema);
        fill(&index, storage, &files, progress).await?;
        Self::from_index(index, "memory", Some(fingerprint(&files)))
    }

    /// Builds the index into `folder` on local disk (for `mcp-gateway index`).
    pub async fn build_into(storage: &Storage, folder: &Path, progress: &Progress) -> Result<IndexInfo, IndexError> {
        let files = corpus::files(storage).await?;
        std::fs::create_dir_all(folder)?;
        let (schema, _) = schema();
        let index = Index::create_in_dir(folder, schema)?;
        fill(&index, storage, &files, progress).await?;
        Ok(Self::from_index(index, "stored", Some(fingerprint(&files)))?.info)
    }

    fn from_index(index: Index, source: &str, built_from: Option<String>) -> Result<Self, IndexError> {
        register_tokenizers(&index);
        let (_, fields) = schema();
        let reader = index.reader()?;
        let searcher = reader.searcher();
        let documents = searcher.num_docs();
        let mut paths = std::collections::HashSet::new();
        for segment in searcher.segment_readers() {
            let inverted = segment.inverted_index(fields.path)?;
            let mut terms = inverted.terms().stream()?;
            while terms.advance() {
                paths.insert(terms.key().to_vec());
            }
        }
        let info =
            IndexInfo { source: source.to_owned(), documents, files: paths.len() as u64, stale: false, note: None };
        Ok(Self { index, reader, fields, info, built_from })
    }

    /// Runs `query` (tantivy query syntax, parsed leniently), optionally only in paths matching
    /// `glob`, returning hits `offset..offset+limit`.
    pub fn search(&self, query: &str, glob: Option<&str>, offset: usize, limit: usize) -> Result<Page, IndexError> {
        let parser = QueryParser::for_index(&self.index, vec![self.fields.body]);
        let (text_query, _errors) = parser.parse_query_lenient(query);
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, text_query.box_clone())];
        if let Some(glob) = glob {
            let regex = globset::GlobBuilder::new(glob)
                .literal_separator(true)
                .build()
                .map_err(|error| IndexError::BadQuery(format!("invalid glob `{glob}`: {error}")))?
                .regex()
                .to_owned();
            // tantivy matches the whole term; strip the anchors and inline flags globset adds.
            let pattern = regex.trim_start_matches("(?-u)").trim_start_matches('^').trim_end_matches('$').to_owned();
            let filter = if pattern.contains(['*', '?', '[', '{', '\\', '.', '+', '(']) {
                Box::new(RegexQuery::from_pattern(&pattern, self.fields.path)?) as Box<dyn Query>
            } else {
                Box::new(TermQuery::new(Term::from_field_text(self.fields.path, glob), IndexRecordOption::Basic))
            };
            clauses.push((Occur::Must, filter));
        }
        let query = BooleanQuery::new(clauses);
        let searcher = self.reader.searcher();
        let (top, total) =
            searcher.search(&query, &(TopDocs::with_limit(limit.max(1)).and_offset(offset).order_by_score(), Count))?;
        let mut snippets = SnippetGenerator::create(&searcher, &*text_query, self.fields.body)?;
        snippets.set_max_num_chars(240);
        let hits = top
            .into_iter()
            .map(|(score, address): (Score, DocAddress)| {
                let doc: TantivyDocument = searcher.doc(address)?;
                let path = doc.get_first(self.fields.path).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
                let line = doc.get_first(self.fields.line).and_then(|v| v.as_u64()).unwrap_or(1);
                let body = doc.get_first(self.fields.body).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
                let snippet = snippets.snippet(&body);
                Ok(Hit { path, line, score, snippet: mark(&snippet, &body) })
            })
            .collect::<Result<Vec<_>, IndexError>>()?;
        Ok(Page { hits, total })
    }
}

/// The snippet with `**` around each highlighted range, or the start of the text when no term
/// matched inside it (a path-only match).
fn mark(snippet: &tantivy::snippet::Snippet, body: &str) -> String {
    let fragment = snippet.fragment();
    if fragment.is_empty() {
        return body.chars().take(240).collect();
    }
    let mut marked = String::with_capacity(fragment.len() + 16);
    let mut at = 0;
    for range in snippet.highlighted() {
        if range.start < at || range.end > fragment.len() {
            continue;
        }
        marked.push_str(&fragment[at..range.start]);
        marked.push_str("**");
        marked.push_str(&fragment[range.clone()]);
        marked.push_str("**");
        at = range.end;
    }
    marked.push_str(&fragment[at..]);
    marked.trim().to_owned()
}

fn register_tokenizers(index: &Index) {
    use tantivy::tokenizer::{Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, TextAnalyzer};
    let analyzer = TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(64))
        .filter(LowerCaser)
        .filter(Stemmer::new(Language::English))
        .build();
    index.tokenizers().register("en_stem", analyzer);
}

async fn fill(
    index: &Index,
    storage: &Storage,
    files: &[crate::storage::Entry],
    progress: &Progress,
) -> Result<(), IndexError> {
    register_tokenizers(index);
    let (_, fields) = schema();
    let mut writer: tantivy::IndexWriter = index.writer_with_num_threads(1, WRITER_MEMORY)?;
    let total = files.len() as f64;
    let mut last_report = Instant::now();
    for (done, entry) in files.iter().enumerate() {
        let path = ObjectPath::parse(&entry.path).map_err(StorageError::from)?;
        let bytes = storage.read_range(&path, 0, entry.size).await?;
        let Ok(text) = String::from_utf8(bytes) else {
            tracing::debug!(path = %entry.path, "skipping a file that is not UTF-8");
            continue;
        };
        for chunk in corpus::chunks(&entry.path, &text) {
            writer.add_document(doc!(
                fields.path => entry.path.clone(),
                fields.line => chunk.line,
                fields.body => chunk.text,
            ))?;
        }
        if last_report.elapsed().as_millis() >= 500 || done + 1 == files.len() {
            tracing::info!(done = done + 1, files = files.len(), "indexing");
            progress
                .report((done + 1) as f64, Some(total), format!("indexed {} of {} files", done + 1, files.len()))
                .await;
            last_report = Instant::now();
        }
    }
    // The commit payload records which files the index was built from, so a loaded index can tell
    // whether the data root changed since.
    let built_from = fingerprint(files);
    tokio::task::spawn_blocking(move || {
        let mut commit = writer.prepare_commit()?;
        commit.set_payload(&built_from);
        commit.commit()
    })
    .await
    .map_err(|error| IndexError::Io(std::io::Error::other(error)))??;
    Ok(())
}

/// Builds the index and stores it in the data root under [`INDEX_DIR`], replacing any older
/// one: on a local root by renaming a finished folder into place; on S3 by uploading the segment
/// files first and `meta.json` (which makes them visible) last, then removing stale files.
pub async fn build_and_store(storage: &Storage, progress: &Progress) -> Result<IndexInfo, IndexError> {
    match storage {
        Storage::Local(root) => {
            let final_dir = root.path().join(INDEX_DIR);
            let staging = root.path().join(format!("{INDEX_DIR}.tmp-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&staging);
            let info = SearchIndex::build_into(storage, &staging, progress).await?;
            remove_lock_files(&staging);
            readable_like_folder(&staging)?;
            let _ = std::fs::remove_dir_all(&final_dir);
            std::fs::rename(&staging, &final_dir)?;
            Ok(info)
        }
        Storage::S3(_) => {
            let staging = std::env::temp_dir().join(format!("mcp-index-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&staging);
            let info = SearchIndex::build_into(storage, &staging, progress).await?;
            remove_lock_files(&staging);
            let mut names: Vec<String> =
                std::fs::read_dir(&staging)?.filter_map(|entry| entry.ok()?.file_name().into_string().ok()).collect();
            names.sort_by_key(|name| name == "meta.json");
            for name in &names {
                let bytes = std::fs::read(staging.join(name))?;
                let path = ObjectPath::parse(&format!("{INDEX_DIR}/{name}")).map_err(StorageError::from)?;
                storage.write(&path, bytes).await?;
            }
            let dir = ObjectPath::parse(INDEX_DIR).map_err(StorageError::from)?;
            for stale in storage.list(&dir, false).await? {
                let name = stale.path.rsplit('/').next().unwrap_or_default();
                if stale.kind == EntryKind::File && !names.iter().any(|n| n == name) {
                    let path = ObjectPath::parse(&stale.path).map_err(StorageError::from)?;
                    storage.delete(&path).await?;
                }
            }
            let _ = std::fs::remove_dir_all(&staging);
            Ok(info)
        }
    }
}

/// Gives every file in `folder` the folder's read and write bits (its mode under the umask, e.g.
/// 0644): tantivy writes `meta.json` and `.managed.json` through temporary files, 0600, so an
/// index built by one user (on the host) could not be loaded by another (a container's 65532).
fn readable_like_folder(folder: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(folder)?.permissions().mode() & 0o666;
        for entry in std::fs::read_dir(folder)? {
            std::fs::set_permissions(entry?.path(), std::fs::Permissions::from_mode(mode))?;
        }
    }
    #[cfg(not(unix))]
    let _ = folder;
    Ok(())
}

fn remove_lock_files(folder: &Path) {
    if let Ok(entries) = std::fs::read_dir(folder) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().ends_with(".lock") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// Identifies a corpus: a SHA-256 over each indexable file's path, size and ETag (sorted by path).
fn fingerprint(files: &[crate::storage::Entry]) -> String {
    use sha2::{Digest as _, Sha256};
    let mut hash = Sha256::new();
    for file in files {
        for field in [file.path.as_str(), &file.size.to_string(), file.etag.as_deref().unwrap_or("")] {
            hash.update((field.len() as u64).to_le_bytes());
            hash.update(field.as_bytes());
        }
    }
    hex::encode(hash.finalize())
}

/// How often, by default, the data root is listed again to see whether the index still matches.
pub const RECHECK_INTERVAL: Duration = Duration::from_secs(10);

/// Shares one index per process: loaded or built on first use, then reused while it matches the
/// data root. At most every `recheck` (and right after a `file_write`) the corpus is
/// listed again: an in-memory index of a changed root is rebuilt; a stored one is rebuilt in
/// memory when the corpus is small enough, and otherwise answers marked stale, with a note that
/// says to run `mcp-gateway index`.
#[derive(Debug)]
pub struct SharedIndex {
    current: tokio::sync::Mutex<Option<Current>>,
    changed: AtomicBool,
    recheck: Duration,
    /// The largest corpus rebuilt in memory when a stored index is stale.
    memory_limit: u64,
}

impl Default for SharedIndex {
    fn default() -> Self {
        Self::new(RECHECK_INTERVAL)
    }
}

#[derive(Debug)]
struct Current {
    index: Arc<SearchIndex>,
    /// The fingerprint of the files the index holds.
    built_from: Option<String>,
    checked: Instant,
    stale: bool,
}

impl Current {
    fn new(index: SearchIndex) -> Self {
        let built_from = index.built_from.clone();
        Self { index: Arc::new(index), built_from, checked: Instant::now(), stale: false }
    }

    fn answer(&self) -> (Arc<SearchIndex>, IndexInfo) {
        let mut info = self.index.info.clone();
        if self.stale {
            info.stale = true;
            info.note = Some(
                "files under the data root changed since `mcp-gateway index` stored this index, and the corpus is \
                 too large to index in memory: new or changed files may be missing from the hits; run \
                 `mcp-gateway index` again"
                    .to_owned(),
            );
        }
        (self.index.clone(), info)
    }
}

impl SharedIndex {
    /// An index (loaded or built on first use) that is checked against the data root at most
    /// every `recheck`.
    pub fn new(recheck: Duration) -> Self {
        Self {
            current: tokio::sync::Mutex::default(),
            changed: AtomicBool::new(false),
            recheck,
            memory_limit: MEMORY_BUILD_LIMIT,
        }
    }

    /// Loads the stored index now (at cold start), if there is one; a missing or unreadable
    /// index is left for the first search to deal with.
    pub async fn preload(&self, storage: &Storage) {
        let mut current = self.current.lock().await;
        if current.is_some() {
            return;
        }
        match SearchIndex::load(storage).await {
            Ok(Some(index)) => *current = Some(Current::new(index)),
            Ok(None) => {
                tracing::info!("no stored search index; a small corpus is indexed on first search")
            }
            Err(error) => tracing::warn!(%error, "could not load the stored search index"),
        }
    }

    /// Says that files under the data root were written or deleted: the next search checks the
    /// index against the root first.
    pub fn invalidate(&self) {
        self.changed.store(true, Ordering::Relaxed);
    }

    /// The index of `storage` (the stored one if present, else built in memory), checked against
    /// the data root, and what to tell the client about it.
    pub async fn get(
        &self,
        storage: &Storage,
        progress: &Progress,
    ) -> Result<(Arc<SearchIndex>, IndexInfo), IndexError> {
        let mut current = self.current.lock().await;
        let Some(existing) = current.as_mut() else {
            let index = match SearchIndex::load(storage).await? {
                Some(index) => index,
                None => SearchIndex::build_in_memory(storage, progress).await?,
            };
            let fresh = Current::new(index);
            let answer = fresh.answer();
            *current = Some(fresh);
            return Ok(answer);
        };
        let due = self.changed.swap(false, Ordering::Relaxed) || existing.checked.elapsed() >= self.recheck;
        if !due {
            return Ok(existing.answer());
        }
        existing.checked = Instant::now();
        let files = corpus::files(storage).await?;
        let now = fingerprint(&files);
        let Some(built_from) = &existing.built_from else {
            // An index stored before fingerprints were recorded: take the root as it is now.
            existing.built_from = Some(now);
            return Ok(existing.answer());
        };
        if *built_from == now {
            existing.stale = false;
            return Ok(existing.answer());
        }
        let bytes: u64 = files.iter().map(|entry| entry.size).sum();
        if bytes > self.memory_limit {
            tracing::warn!(bytes, "the data root changed since the stored search index was built");
            existing.stale = true;
            return Ok(existing.answer());
        }
        tracing::info!(source = %existing.index.info.source, "the data root changed; re-indexing it in memory");
        *existing = Current::new(SearchIndex::build_in_memory(storage, progress).await?);
        Ok(existing.answer())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::LocalRoot;

    fn root_with(files: &[(&str, &str)]) -> (tempfile::TempDir, Storage) {
        let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("temp dir: {error}"));
        for (path, text) in files {
            std::fs::write(dir.path().join(path), text).unwrap_or_else(|error| panic!("{path}: {error}"));
        }
        let root = LocalRoot::open(dir.path()).unwrap_or_else(|error| panic!("root: {error}"));
        (dir, Storage::Local(root))
    }

    async fn hits(index: &SharedIndex, storage: &Storage, query: &str) -> (Vec<String>, IndexInfo) {
        let (searcher, info) =
            index.get(storage, &Progress::disabled()).await.unwrap_or_else(|error| panic!("{error}"));
        let page = searcher.search(query, None, 0, 10).unwrap_or_else(|error| panic!("{error}"));
        (page.hits.into_iter().map(|hit| hit.path).collect(), info)
    }

    /// Regression: the in-memory index was built once and never noticed new or changed files.
    #[tokio::test]
    async fn search_index_notices_files_changed_after_it_was_built() {
        let (dir, storage) = root_with(&[("a.md", "alpha\n")]);
        let index = SharedIndex::new(Duration::from_secs(3600));
        assert_eq!(hits(&index, &storage, "zebrafish").await.0, Vec::<String>::new());
        std::fs::write(dir.path().join("b.md"), "zebrafish\n").ok();
        // Within the recheck interval and without a write through the tool, the old index answers...
        assert_eq!(hits(&index, &storage, "zebrafish").await.0, Vec::<String>::new());
        // ...and `file_write`'s invalidation makes the next search look again.
        index.invalidate();
        let (found, info) = hits(&index, &storage, "zebrafish").await;
        assert_eq!(found, vec!["b.md".to_owned()]);
        assert!(!info.stale && info.source == "memory");
    }

    /// Regression: `meta.json` and `.managed.json` were stored 0600, so an index built by one user
    /// (e.g. on the host) did not load for another (a container's uid 65532).
    #[cfg(unix)]
    #[tokio::test]
    async fn a_stored_index_is_as_readable_as_its_folder() {
        use std::os::unix::fs::PermissionsExt as _;
        let (dir, storage) = root_with(&[("a.md", "alpha\n")]);
        build_and_store(&storage, &Progress::disabled()).await.unwrap_or_else(|error| panic!("{error}"));
        let folder = dir.path().join(INDEX_DIR);
        let mode_of = |path: &Path| std::fs::metadata(path).map_or(0, |meta| meta.permissions().mode() & 0o777);
        let expected = mode_of(&folder) & 0o666;
        assert!(expected & 0o044 != 0, "the folder itself is private ({expected:o}): nothing to test");
        let entries = std::fs::read_dir(&folder).unwrap_or_else(|error| panic!("{error}"));
        let modes: Vec<String> = entries
            .flatten()
            .map(|entry| format!("{} {:o}", entry.file_name().to_string_lossy(), mode_of(&entry.path())))
            .collect();
        assert!(modes.iter().any(|mode| mode.starts_with("meta.json ")), "{modes:?}");
        assert!(modes.iter().all(|mode| mode.ends_with(&format!(" {expected:o}"))), "expected {expected:o}: {modes:?}");
    }

    #[tokio::test]
    async fn a_stale_stored_index_too_large_to_rebuild_says_so() {
        let (dir, storage) = root_with(&[("a.md", "alpha\n")]);
        let stored = build_and_store(&storage, &Progress::disabled()).await;
        assert!(stored.is_ok(), "{stored:?}");
        let index = SharedIndex { memory_limit: 0, ..SharedIndex::new(Duration::ZERO) };
        let (_, info) = hits(&index, &storage, "alpha").await;
        assert_eq!((info.source.as_str(), info.stale), ("stored", false));
        std::fs::write(dir.path().join("b.md"), "zebrafish\n").ok();
        let (found, info) = hits(&index, &storage, "zebrafish").await;
        assert!(found.is_empty() && info.stale, "{info:?}");
        assert!(info.note.as_deref().is_some_and(|note| note.contains("mcp-gateway index")), "{info:?}");
        // With room to rebuild in memory, the changed root is indexed again instead.
        let roomy = SharedIndex::new(Duration::ZERO);
        hits(&roomy, &storage, "alpha").await;
        std::fs::write(dir.path().join("c.md"), "quokka\n").ok();
        let (found, info) = hits(&roomy, &storage, "quokka").await;
        assert_eq!((found, info.source.as_str(), info.stale), (vec!["c.md".to_owned()], "memory", false));
    }
}

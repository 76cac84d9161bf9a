//! `search`: ranked (BM25) full-text search over the text documents under the data root.

use std::sync::Arc;

use rmcp::model::ToolAnnotations;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    registry::{CallContext, Output, ToolError, TypedTool, cursor_offset, next_cursor},
    search_index::{Hit, IndexInfo, SharedIndex},
    storage::Storage,
};

/// The deepest hit a search pages to: tantivy keeps `offset + limit` hits in memory per query.
pub const MAX_SEARCH_WINDOW: usize = 10_000;

/// The `search` tool over one data root.
#[derive(Debug, Clone)]
pub struct SearchTool {
    storage: Storage,
    index: Arc<SharedIndex>,
}

impl SearchTool {
    /// A `search` tool over `storage`, sharing `index` with the rest of the process.
    pub fn new(storage: Storage, index: Arc<SharedIndex>) -> Self {
        Self { storage, index }
    }
}

/// Arguments of `search`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchInput {
    /// Words to look for. Supports `"exact phrases"`, `+required`, `-excluded`, `a OR b`.
    pub query: String,
    /// Only search files whose path matches this glob, e.g. `docs/**/*.md`.
    pub path_glob: Option<String>,
    /// Number of hits to return (default 10, at most 100).
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Result of `search`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SearchOutput {
    /// Hits, best first.
    pub hits: Vec<Hit>,
    /// How many passages match in all.
    pub total: usize,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// Which index answered.
    pub index: IndexInfo,
}

impl TypedTool for SearchTool {
    type Input = SearchInput;
    type Output = SearchOutput;
    const NAME: &'static str = "search";
    const TITLE: &'static str = "Full-text search";
    const DESCRIPTION: &'static str = "Ranked (BM25) full-text search over the text files under the data root \
        (Markdown, text, JSON, CSV rows, source code). Returns path, line, score and a snippet with the \
        matched terms in **bold**. Filter with path_glob; page with limit and cursor.";

    fn annotations(&self) -> ToolAnnotations {
        ToolAnnotations::new().read_only(true).destructive(false).idempotent(true).open_world(false)
    }

    async fn run(&self, input: SearchInput, context: CallContext) -> Result<Output<SearchOutput>, ToolError> {
        if input.query.trim().is_empty() {
            return Err(ToolError::new("query is empty; give one or more words to look for"));
        }
        let limit = input.limit.unwrap_or(10);
        if !(1..=100).contains(&limit) {
            return Err(ToolError::new("limit must be between 1 and 100"));
        }
        // tantivy's top-docs collector allocates for offset + limit hits: bound the window.
        let offset = cursor_offset(input.cursor.as_deref(), MAX_SEARCH_WINDOW - 1)?;
        let limit = limit.min(MAX_SEARCH_WINDOW - offset);
        let (index, info) = self.index.get(&self.storage, &context.progress).await?;
        let query = input.query.clone();
        let glob = input.path_glob.clone();
        let searcher = index;
        let page = tokio::task::spawn_blocking(move || searcher.search(&query, glob.as_deref(), offset, limit))
            .await
            .map_err(|error| ToolError::new(format!("search failed: {error}")))??;
        let next = offset + page.hits.len();
        let next_cursor = next_cursor(next, page.total);
        let mut text = if page.hits.is_empty() {
            format!("no matches for `{}`", input.query)
        } else {
            page.hits
                .iter()
                .map(|hit| {
                    format!("{}:{} ({:.2})\n  {}", hit.path, hit.line, hit.score, hit.snippet.replace('\n', "\n  "))
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        let next_cursor = next_cursor.filter(|_| next < MAX_SEARCH_WINDOW);
        if let Some(cursor) = &next_cursor {
            text.push_str(&format!("\n… {} more; pass cursor \"{cursor}\"", page.total - next));
        } else if next < page.total {
            text.push_str(&format!(
                "\n… {} more matches, past the last page ({MAX_SEARCH_WINDOW} hits): narrow the query or use path_glob",
                page.total - next
            ));
        }
        if let Some(note) = &info.note {
            text.push_str(&format!("\nnote: {note}"));
        }
        let structured = SearchOutput { hits: page.hits, total: page.total, next_cursor, index: info };
        Ok(Output { structured, text })
    }
}

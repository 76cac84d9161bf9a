//! `file_write`: create, replace or delete files under the data root. Registered only when
//! writes are enabled (`--allow-write`), so read-only deployments cannot even see it.

use base64::Engine as _;
use rmcp::model::ToolAnnotations;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    registry::{CallContext, Output, ToolError, TypedTool},
    storage::{Entry, ObjectPath, Storage},
    tools::Index,
};

/// The `file_write` tool over one data root.
#[derive(Debug, Clone)]
pub struct FileWriteTool {
    storage: Storage,
    max_write_bytes: usize,
    /// Told about every change, so `search` re-checks the root before its next answer.
    #[cfg(feature = "data")]
    index: Index,
}

impl FileWriteTool {
    /// A `file_write` tool over `storage`, refusing content above `max_write_bytes`.
    #[cfg_attr(not(feature = "data"), allow(unused_variables))]
    pub fn new(storage: Storage, max_write_bytes: usize, index: Index) -> Self {
        Self {
            storage,
            max_write_bytes,
            #[cfg(feature = "data")]
            index,
        }
    }

    /// After a change under the root: the search index (when there is one) checks again.
    fn changed(&self) {
        #[cfg(feature = "data")]
        self.index.invalidate();
    }
}

/// What to do.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WriteAction {
    /// Create the file, or replace it completely.
    Write,
    /// Delete the file.
    Delete,
}

/// Arguments of `file_write`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileWriteInput {
    /// `write` or `delete`.
    pub action: WriteAction,
    /// Path relative to the data root, `/`-separated.
    pub path: String,
    /// `write`: the new content as UTF-8 text.
    pub text: Option<String>,
    /// `write`: the new content, base64-encoded (for binary files), instead of `text`.
    pub base64: Option<String>,
}

/// Result of `file_write`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct FileWriteOutput {
    /// What was done: `written` or `deleted`.
    pub done: String,
    /// The path acted on.
    pub path: String,
    /// `write`: the file's metadata afterwards.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry: Option<Entry>,
}

impl TypedTool for FileWriteTool {
    type Input = FileWriteInput;
    type Output = FileWriteOutput;
    const NAME: &'static str = "file_write";
    const TITLE: &'static str = "Write or delete files under the data root";
    const DESCRIPTION: &'static str = "Create, replace (action=write, with text or base64) or delete \
        (action=delete) one file under the data root. Writes replace the whole file atomically.";

    fn annotations(&self) -> ToolAnnotations {
        ToolAnnotations::new().read_only(false).destructive(true).idempotent(true).open_world(false)
    }

    async fn run(&self, input: FileWriteInput, _context: CallContext) -> Result<Output<FileWriteOutput>, ToolError> {
        let path = ObjectPath::parse(&input.path)?;
        if path.is_root() {
            return Err(ToolError::new("give the path of a file, not the data root"));
        }
        match input.action {
            WriteAction::Delete => {
                self.storage.delete(&path).await?;
                self.changed();
                let text = format!("deleted {path}");
                let structured = FileWriteOutput { done: "deleted".into(), path: path.to_string(), entry: None };
                Ok(Output { structured, text })
            }
            WriteAction::Write => {
                let bytes = match (input.text, input.base64) {
                    (Some(text), None) => text.into_bytes(),
                    (None, Some(encoded)) if encoded.trim().len() / 4 * 3 > self.max_write_bytes + 3 => {
                        return Err(ToolError::new(format!(
                            "the base64 content decodes to more than the write limit of {} bytes (raise --max-write-bytes)",
                            self.max_write_bytes
                        )));
                    }
                    (None, Some(encoded)) => base64::engine::general_purpose::STANDARD
                        .decode(encoded.trim())
                        .map_err(|error| ToolError::new(format!("`base64` is not valid base64: {error}")))?,
                    _ => {
                        return Err(ToolError::new("action=write needs exactly one of `text` or `base64`"));
                    }
                };
                if bytes.len() > self.max_write_bytes {
                    return Err(ToolError::new(format!(
                        "{} bytes is more than the write limit of {} bytes (raise --max-write-bytes)",
                        bytes.len(),
                        self.max_write_bytes
                    )));
                }
                let size = bytes.len();
                self.storage.write(&path, bytes).await?;
                self.changed();
                let entry = self.storage.stat(&path).await.ok();
                let text = format!("wrote {size} bytes to {path}");
                let structured = FileWriteOutput { done: "written".into(), path: path.to_string(), entry };
                Ok(Output { structured, text })
            }
        }
    }
}

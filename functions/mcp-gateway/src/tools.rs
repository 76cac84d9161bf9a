//! Built-in tools, one file each. Adding a tool: a file here plus one line in [`register_builtin`].
//! `file` and `file_write` are in every build; the data tools need the `data` feature.

#[cfg(feature = "data")]
pub mod dataset_metadata;
#[cfg(feature = "data")]
pub mod db;
pub mod file;
pub mod file_write;
#[cfg(feature = "data")]
pub mod search;

#[cfg(feature = "data")]
use std::sync::Arc;

#[cfg(feature = "data")]
use crate::search_index::SharedIndex;
use crate::{
    registry::{Registry, typed},
    storage::Storage,
};

/// Limits and switches of the built-in tools, configurable from the command line.
#[derive(Debug, Clone)]
pub struct ToolLimits {
    /// Limits of the `file` tool.
    pub file: file::FileLimits,
    /// Limits of the `db` tool.
    #[cfg(feature = "data")]
    pub db: db::DbLimits,
    /// How long one `dataset_metadata` call may run.
    #[cfg(feature = "data")]
    pub metadata_timeout: std::time::Duration,
    /// Whether `file_write` is offered at all.
    pub allow_write: bool,
    /// Largest file `file_write` accepts.
    pub max_write_bytes: usize,
    /// How often `search` checks its index against the data root.
    #[cfg(feature = "data")]
    pub index_recheck: std::time::Duration,
}

impl Default for ToolLimits {
    fn default() -> Self {
        Self {
            file: file::FileLimits::default(),
            #[cfg(feature = "data")]
            db: db::DbLimits::new(db::WorkerSettings::new(
                std::env::current_exe().unwrap_or_else(|_| "mcp-gateway".into()),
                1 << 30,
                2,
                db::Sandbox::Seccomp,
            )),
            #[cfg(feature = "data")]
            metadata_timeout: std::time::Duration::from_secs(600),
            allow_write: false,
            max_write_bytes: 8 << 20,
            #[cfg(feature = "data")]
            index_recheck: crate::search_index::RECHECK_INTERVAL,
        }
    }
}

/// The process's shared search index.
#[cfg(feature = "data")]
pub type Index = Arc<SharedIndex>;
/// Without the `data` feature there is no search index to keep: this stands in its place.
#[cfg(not(feature = "data"))]
#[derive(Debug, Clone)]
pub struct Index;

/// Registers every built-in tool over `storage`; `index` is the process's shared search index.
pub fn register_builtin(registry: &mut Registry, storage: &Storage, limits: ToolLimits, index: &Index) {
    registry.register(typed(file::FileTool::new(storage.clone(), limits.file)));
    #[cfg(feature = "data")]
    {
        registry.register(typed(search::SearchTool::new(storage.clone(), index.clone())));
        registry.register(typed(db::DbTool::new(storage.clone(), limits.db.clone())));
        registry.register(typed(dataset_metadata::DatasetMetadataTool::new(storage.clone(), limits.metadata_timeout)));
    }
    if limits.allow_write {
        registry.register(typed(file_write::FileWriteTool::new(
            storage.clone(),
            limits.max_write_bytes,
            index.clone(),
        )));
    }
}

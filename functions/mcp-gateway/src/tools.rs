//! Built-in tools, one file each. Adding a tool: a file here plus one line in [`register_builtin`].

pub mod file;

use crate::{
    registry::{Registry, typed},
    storage::Storage,
};

/// Limits shared by the built-in tools, configurable from the command line.
#[derive(Debug, Clone, Copy, Default)]
pub struct ToolLimits {
    /// Limits of the `file` tool.
    pub file: file::FileLimits,
}

/// Registers every built-in tool over `storage`.
pub fn register_builtin(registry: &mut Registry, storage: &Storage, limits: ToolLimits) {
    registry.register(typed(file::FileTool::new(storage.clone(), limits.file)));
}

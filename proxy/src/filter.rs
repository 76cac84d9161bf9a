//! Tool filters: `--read-only`, `--allow-tools` and `--deny-tools` globs. Filtered tools vanish
//! from `tools/list` and are refused locally on `tools/call`.

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde_json::Value;

/// Which tools the client may see and call.
#[derive(Debug, Clone, Default)]
pub struct ToolFilter {
    read_only: bool,
    allow: Option<GlobSet>,
    deny: Option<GlobSet>,
}

/// What the server says about a tool's behaviour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ToolHints {
    /// `annotations.readOnlyHint`.
    pub read_only: Option<bool>,
    /// `annotations.idempotentHint`.
    pub idempotent: Option<bool>,
}

impl ToolHints {
    /// The hints in a tool definition from `tools/list`.
    pub fn of(tool: &Value) -> Self {
        let annotations = &tool["annotations"];
        Self { read_only: annotations["readOnlyHint"].as_bool(), idempotent: annotations["idempotentHint"].as_bool() }
    }
}

impl ToolFilter {
    /// A filter from the command-line options; globs are validated here.
    pub fn new(read_only: bool, allow: &[String], deny: &[String]) -> Result<Self, globset::Error> {
        Ok(Self { read_only, allow: glob_set(allow)?, deny: glob_set(deny)? })
    }

    /// Whether any filter is set (when none is, responses pass through untouched).
    pub fn is_active(&self) -> bool {
        self.read_only || self.allow.is_some() || self.deny.is_some()
    }

    /// Whether the filter needs the server's hints to decide about `name`.
    pub fn needs_hints(&self) -> bool {
        self.read_only
    }

    /// Why `name` is refused, or `None` when it is allowed. `hints` is `None` when unknown.
    pub fn refusal(&self, name: &str, hints: Option<ToolHints>) -> Option<String> {
        if self.deny.as_ref().is_some_and(|deny| deny.is_match(name)) {
            return Some(format!("tool `{name}` is blocked by the proxy's --deny-tools"));
        }
        if self.allow.as_ref().is_some_and(|allow| !allow.is_match(name)) {
            return Some(format!("tool `{name}` is not in the proxy's --allow-tools"));
        }
        if self.read_only && hints.and_then(|hints| hints.read_only) != Some(true) {
            return Some(format!(
                "tool `{name}` is not marked read-only (readOnlyHint) and the proxy runs with --read-only"
            ));
        }
        None
    }

    /// Removes refused tools from a `tools/list` result, in place.
    pub fn apply_to_list(&self, result: &mut Value) {
        if let Some(tools) = result.get_mut("tools").and_then(Value::as_array_mut) {
            tools.retain(|tool| {
                let name = tool["name"].as_str().unwrap_or_default();
                self.refusal(name, Some(ToolHints::of(tool))).is_none()
            });
        }
    }
}

fn glob_set(patterns: &[String]) -> Result<Option<GlobSet>, globset::Error> {
    let patterns: Vec<&String> = patterns.iter().filter(|p| !p.is_empty()).collect();
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        builder.add(Glob::new(pattern)?);
    }
    builder.build().map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn list() -> Value {
        json!({"tools": [
            {"name": "file", "annotations": {"readOnlyHint": true}},
            {"name": "file_write", "annotations": {"readOnlyHint": false, "destructiveHint": true}},
            {"name": "search"},
            {"name": "db_query", "annotations": {"readOnlyHint": true}}
        ]})
    }

    fn names(value: &Value) -> Vec<&str> {
        value["tools"].as_array().map(|t| t.iter().filter_map(|t| t["name"].as_str()).collect()).unwrap_or_default()
    }

    #[test]
    fn read_only_keeps_only_read_only_tools() {
        let filter = ToolFilter::new(true, &[], &[]).unwrap_or_default();
        let mut result = list();
        filter.apply_to_list(&mut result);
        assert_eq!(names(&result), ["file", "db_query"]);
        assert!(filter.refusal("search", None).is_some());
    }

    #[test]
    fn allow_and_deny_globs() {
        let filter = ToolFilter::new(false, &["file*".into(), "db_*".into()], &["*_write".into()]).unwrap_or_default();
        let mut result = list();
        filter.apply_to_list(&mut result);
        assert_eq!(names(&result), ["file", "db_query"]);
        assert_eq!(
            filter.refusal("file_write", None).as_deref(),
            Some("tool `file_write` is blocked by the proxy's --deny-tools")
        );
        assert!(ToolFilter::new(false, &["a[".into()], &[]).is_err());
        assert!(!ToolFilter::new(false, &[], &[]).map(|f| f.is_active()).unwrap_or(true));
    }
}

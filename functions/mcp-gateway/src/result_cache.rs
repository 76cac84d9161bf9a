//! A bounded in-process cache of results: upstream `resources/read` results whose `ttlMs` says
//! they may be reused (2026-07-28 caching hints), and `tools/call` results of the tools the access
//! file's `[[cache.tool]]` names (tool results carry no hints, so only the configuration may make
//! one cacheable).
//!
//! **Invariants:** an `isError` result is never stored; a `private` result is stored and found
//! only under the principal that got it (anonymous callers share one context); an entry is never
//! served after its time-to-live; at most `max_entries` entries and `max_bytes` of results
//! (their JSON size) are kept, the oldest going first.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use globset::GlobMatcher;
use rmcp::model::{CacheScope, CallToolResult, ReadResourceResult};

/// `[cache]` of the access file.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// The most entries kept.
    pub max_entries: usize,
    /// The most bytes of results kept (their JSON size).
    pub max_bytes: usize,
    /// Whether upstream resource reads are reused as their `ttlMs` allows.
    pub resources: bool,
    /// Tools whose results are kept, in file order (the first match decides).
    pub tools: Vec<ToolCaching>,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self { max_entries: 1_000, max_bytes: 32 << 20, resources: true, tools: Vec::new() }
    }
}

/// One `[[cache.tool]]`.
#[derive(Debug, Clone)]
pub struct ToolCaching {
    /// Exposed tool names (globs).
    pub tools: Vec<GlobMatcher>,
    /// How long a result is reused.
    pub ttl: Duration,
    /// Whether one caller's result may be served to another.
    pub scope: CacheScope,
}

/// What is cached.
#[derive(Debug, Clone)]
enum Cached {
    Tool(CallToolResult),
    Resource(ReadResourceResult),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    /// `tool` or `resource`.
    kind: &'static str,
    /// The tool name and its arguments as JSON, or the resource URI.
    what: String,
    /// The principal, for a private entry; `None` for a public one.
    principal: Option<Arc<str>>,
}

#[derive(Debug)]
struct Entry {
    value: Cached,
    inserted: Instant,
    expires: Instant,
    bytes: usize,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<Key, Entry>,
    /// Keys in insertion order (a key may appear again after being replaced; stale ones are
    /// skipped when evicting).
    order: VecDeque<(Key, Instant)>,
    bytes: usize,
}

/// The cache.
#[derive(Debug, Default)]
pub struct ResultCache {
    config: CacheConfig,
    inner: Mutex<Inner>,
}

/// The principal of a cache key: who may be served a `scope` entry.
fn owner(scope: &CacheScope, principal: Option<&Arc<str>>) -> Option<Arc<str>> {
    match scope {
        CacheScope::Public => None,
        // Private, and any scope a later revision adds: the narrowest reading.
        _ => Some(principal.cloned().unwrap_or_else(|| Arc::from(""))),
    }
}

impl ResultCache {
    /// A cache with `config`.
    pub fn new(config: CacheConfig) -> Self {
        Self { config, inner: Mutex::new(Inner::default()) }
    }

    /// How results of the tool `name` are cached, if they are.
    pub fn tool_caching(&self, name: &str) -> Option<&ToolCaching> {
        self.config.tools.iter().find(|rule| rule.tools.iter().any(|glob| glob.is_match(name)))
    }

    /// A stored result of `name` called with `arguments` (as JSON) by `principal`.
    pub fn tool(&self, name: &str, arguments: &str, principal: Option<&Arc<str>>) -> Option<CallToolResult> {
        let rule = self.tool_caching(name)?;
        let key = Key { kind: "tool", what: format!("{name}\n{arguments}"), principal: owner(&rule.scope, principal) };
        let hit = match self.get(&key) {
            Some(Cached::Tool(result)) => Some(result),
            _ => None,
        };
        crate::metrics::global().cache("tool", hit.is_some());
        hit
    }

    /// Stores a result of `name` (unless it is an error or the tool is not cached).
    pub fn put_tool(&self, name: &str, arguments: &str, principal: Option<&Arc<str>>, result: &CallToolResult) {
        let Some(rule) = self.tool_caching(name) else { return };
        if result.is_error == Some(true) {
            return;
        }
        let key = Key { kind: "tool", what: format!("{name}\n{arguments}"), principal: owner(&rule.scope, principal) };
        self.put(key, Cached::Tool(result.clone()), rule.ttl);
    }

    /// A stored read of the upstream resource `uri` for `principal`.
    pub fn resource(&self, uri: &str, principal: Option<&Arc<str>>) -> Option<ReadResourceResult> {
        if !self.config.resources {
            return None;
        }
        let keys = [CacheScope::Public, CacheScope::Private].map(|scope| Key {
            kind: "resource",
            what: uri.to_owned(),
            principal: owner(&scope, principal),
        });
        let hit = keys.iter().find_map(|key| match self.get(key) {
            Some(Cached::Resource(result)) => Some(result),
            _ => None,
        });
        crate::metrics::global().cache("resource", hit.is_some());
        hit
    }

    /// Stores an upstream read of `uri` when its hints allow (`ttlMs` > 0, a complete result).
    pub fn put_resource(&self, uri: &str, principal: Option<&Arc<str>>, result: &ReadResourceResult) {
        let ttl = result.ttl_ms.unwrap_or(0);
        let complete = result.result_type.as_ref().is_none_or(|kind| kind.is_complete());
        if !self.config.resources || ttl == 0 || !complete {
            return;
        }
        let scope = result.cache_scope.unwrap_or(CacheScope::Private);
        let key = Key { kind: "resource", what: uri.to_owned(), principal: owner(&scope, principal) };
        self.put(key, Cached::Resource(result.clone()), Duration::from_millis(ttl.min(86_400_000)));
    }

    fn get(&self, key: &Key) -> Option<Cached> {
        let mut inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = inner.entries.get(key)?;
        if entry.expires > Instant::now() {
            return Some(entry.value.clone());
        }
        if let Some(stale) = inner.entries.remove(key) {
            inner.bytes -= stale.bytes;
        }
        None
    }

    fn put(&self, key: Key, value: Cached, ttl: Duration) {
        let bytes = match &value {
            Cached::Tool(result) => serde_json::to_vec(result).map(|json| json.len()),
            Cached::Resource(result) => serde_json::to_vec(result).map(|json| json.len()),
        }
        .unwrap_or(usize::MAX)
            + key.what.len();
        if bytes > self.config.max_bytes / 4 || self.config.max_entries == 0 {
            return; // one result may not take more than a quarter of the cache
        }
        let now = Instant::now();
        let mut inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(old) = inner.entries.remove(&key) {
            inner.bytes -= old.bytes;
        }
        while inner.entries.len() >= self.config.max_entries || inner.bytes + bytes > self.config.max_bytes {
            let Some((oldest, inserted)) = inner.order.pop_front() else { break };
            // Only the entry this position was recorded for: a replaced key was put back later.
            let current = inner.entries.get(&oldest).is_some_and(|entry| entry.inserted == inserted);
            if current && let Some(evicted) = inner.entries.remove(&oldest) {
                inner.bytes -= evicted.bytes;
            }
        }
        inner.bytes += bytes;
        inner.order.push_back((key.clone(), now));
        inner.entries.insert(key, Entry { value, inserted: now, expires: now + ttl, bytes });
    }
}

#[cfg(test)]
mod tests {
    use rmcp::model::{ContentBlock as Content, ResourceContents};

    use super::*;

    fn cache(max_entries: usize) -> ResultCache {
        let glob = globset::Glob::new("search*").unwrap_or_else(|error| panic!("{error}")).compile_matcher();
        ResultCache::new(CacheConfig {
            max_entries,
            tools: vec![ToolCaching { tools: vec![glob], ttl: Duration::from_secs(60), scope: CacheScope::Private }],
            ..CacheConfig::default()
        })
    }

    fn text(text: &str) -> CallToolResult {
        CallToolResult::success(vec![Content::text(text)])
    }

    #[test]
    fn private_tool_results_are_served_only_to_their_principal_and_errors_never() {
        let cache = cache(10);
        let (alice, bob): (Arc<str>, Arc<str>) = ("alice".into(), "bob".into());
        cache.put_tool("search", "{}", Some(&alice), &text("a"));
        assert!(cache.tool("search", "{}", Some(&alice)).is_some());
        assert!(cache.tool("search", "{}", Some(&bob)).is_none());
        assert!(cache.tool("search", "{\"q\":1}", Some(&alice)).is_none(), "other arguments");
        cache.put_tool("file", "{}", Some(&alice), &text("a"));
        assert!(cache.tool("file", "{}", Some(&alice)).is_none(), "a tool no rule names is not cached");
        cache.put_tool("search_b", "{}", None, &CallToolResult::error(vec![Content::text("boom")]));
        assert!(cache.tool("search_b", "{}", None).is_none(), "an isError result is not cached");
    }

    #[test]
    fn resource_reads_follow_their_hints_and_the_oldest_goes_first() {
        let cache = cache(2);
        let read = |uri: &str, ttl: u64, scope: CacheScope| {
            ReadResourceResult::new(vec![ResourceContents::text("x", uri)]).with_ttl_ms(ttl).with_cache_scope(scope)
        };
        let alice: Arc<str> = "alice".into();
        cache.put_resource("r://0", Some(&alice), &read("r://0", 0, CacheScope::Public));
        assert!(cache.resource("r://0", None).is_none(), "ttlMs 0: immediately stale");
        cache.put_resource("r://1", Some(&alice), &read("r://1", 60_000, CacheScope::Public));
        assert!(cache.resource("r://1", None).is_some(), "public: anyone");
        cache.put_resource("r://2", Some(&alice), &read("r://2", 60_000, CacheScope::Private));
        assert!(cache.resource("r://2", None).is_none() && cache.resource("r://2", Some(&alice)).is_some());
        cache.put_resource("r://3", None, &read("r://3", 60_000, CacheScope::Public));
        assert!(cache.resource("r://1", None).is_none(), "evicted: the oldest of 2");
        assert!(cache.resource("r://3", None).is_some());
        cache.put_resource("r://4", None, &read("r://4", 1, CacheScope::Public));
        std::thread::sleep(Duration::from_millis(5));
        assert!(cache.resource("r://4", None).is_none(), "expired");
    }
}

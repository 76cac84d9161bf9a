//! The aggregated catalogue: every upstream's tools under their exposed names, kept per process
//! for a TTL and refreshed in the background (a client never waits for a refresh once the
//! catalogue has been filled). One upstream that is down or slow is left out (fail-open) unless
//! its file entry says `failure_mode = "closed"`; the refresh waits at most each upstream's list
//! timeout.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use rmcp::model::{Prompt, Resource, ResourceTemplate, Tool};

use super::{
    client::{Offer, UpstreamError},
    config::{FailureMode, UpstreamsConfig},
    names,
    pool::Upstream,
    registration::ChangeError,
};

/// One exposed tool: who owns it and what it is called there.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The upstream that owns it.
    pub upstream: Arc<Upstream>,
    /// Its name on the upstream.
    pub original: String,
    /// Its definition as clients see it (the exposed name, everything else passed through).
    pub definition: Tool,
}

/// One exposed prompt: who owns it and what it is called there.
#[derive(Debug, Clone)]
pub struct PromptEntry {
    /// The upstream that owns it.
    pub upstream: Arc<Upstream>,
    /// Its name on the upstream.
    pub original: String,
    /// Its definition as clients see it.
    pub definition: Prompt,
}

/// The catalogue at one moment.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// When it was taken; `None` before the first fill.
    pub taken: Option<Instant>,
    /// Exposed name → tool.
    pub tools: BTreeMap<String, Entry>,
    /// Every upstream resource, under its exposed URI (`names::resource_uri`).
    pub resources: Vec<Resource>,
    /// Every upstream resource template, its URI template namespaced the same way.
    pub templates: Vec<ResourceTemplate>,
    /// Exposed name → prompt.
    pub prompts: BTreeMap<String, PromptEntry>,
    /// Upstreams left out, with why.
    pub left_out: BTreeMap<String, String>,
    /// How long after `taken` it is fresh: the catalogue's TTL, or less when an upstream's lists
    /// said so with their `ttlMs` (never less than [`MIN_LIST_TTL`]).
    pub ttl: Duration,
}

impl Snapshot {
    /// Whether `other` offers clients the same tools, prompts, resources and templates.
    fn same_lists(&self, other: &Snapshot) -> bool {
        let tools =
            |snapshot: &Snapshot| snapshot.tools.values().map(|entry| entry.definition.clone()).collect::<Vec<_>>();
        let prompts =
            |snapshot: &Snapshot| snapshot.prompts.values().map(|entry| entry.definition.clone()).collect::<Vec<_>>();
        tools(self) == tools(other)
            && prompts(self) == prompts(other)
            && self.resources == other.resources
            && self.templates == other.templates
    }
}

/// Why a catalogue could not be built.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogueError {
    /// Two tools would be exposed under one name.
    #[error("two tools would both be exposed as `{name}`: {first} and {second}; rename one, or set a prefix")]
    Collision { name: String, first: String, second: String },
    /// A `failure_mode = "closed"` upstream is down.
    #[error("upstream `{upstream}` is down and its failure_mode is closed: {reason}")]
    ClosedUpstreamDown { upstream: String, reason: String },
}

/// A catalogue written by `mcp-gateway upstreams snapshot`, for a cold start that answers lists
/// without calling any upstream.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct SavedCatalogue {
    /// The format's version (1).
    pub version: u32,
    /// Every exposed tool.
    pub tools: Vec<SavedItem<Tool>>,
    /// Every upstream resource (exposed URIs).
    #[serde(default)]
    pub resources: Vec<SavedItem<Resource>>,
    /// Every upstream resource template (exposed URI templates).
    #[serde(default)]
    pub templates: Vec<SavedItem<ResourceTemplate>>,
    /// Every exposed prompt.
    #[serde(default)]
    pub prompts: Vec<SavedItem<Prompt>>,
}

/// One saved item: its upstream, its own name there, and its definition as clients see it.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct SavedItem<T> {
    /// The upstream's name.
    pub upstream: String,
    /// The item's name on the upstream (tools and prompts).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub original: String,
    /// As clients see it.
    pub definition: T,
}

/// What a reconfiguration made.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct Reconfigured {
    /// Upstreams now.
    pub upstreams: usize,
    /// Tools exposed from them.
    pub tools: usize,
    /// Upstreams left out of the catalogue (down), with why.
    pub left_out: BTreeMap<String, String>,
}

/// How old the catalogue must be before a call to a name it lacks refreshes it.
const LOOKUP_REFRESH_INTERVAL: Duration = Duration::from_secs(1);

/// The shortest time the catalogue is kept, whatever an upstream's `ttlMs` says (0 included):
/// refreshes run in the background, one at a time, so this bounds how often each upstream is
/// listed.
pub const MIN_LIST_TTL: Duration = Duration::from_secs(1);

/// The names the gateway's own tools and prompts take, which no upstream's may be exposed as.
#[derive(Debug, Clone, Default)]
pub struct Reserved {
    /// Built-in tool names.
    pub tools: BTreeSet<String>,
    /// Built-in prompt names.
    pub prompts: BTreeSet<String>,
}

/// Every upstream's tools, refreshed every `ttl`, and the fleet they come from, which
/// [`Catalogue::reconfigure`] replaces at run time (`serve`: a reload, the management API).
#[derive(Debug)]
pub struct Catalogue {
    upstreams: RwLock<Arc<[Arc<Upstream>]>>,
    /// The configuration the fleet was made from; held while a change is made, one at a time.
    config: tokio::sync::Mutex<UpstreamsConfig>,
    ttl: Duration,
    /// Names the built-in tools and prompts take.
    reserved: Reserved,
    current: RwLock<Arc<Snapshot>>,
    refreshing: tokio::sync::Mutex<()>,
    last_error: RwLock<Option<CatalogueError>>,
    /// Counts the changes of what clients see (tools, prompts, resources), for
    /// `subscriptions/listen` streams.
    changes: tokio::sync::watch::Sender<u64>,
    /// Whether this process may hold streams open (`serve`, `stdio`; not Lambda).
    listen: bool,
}

impl Catalogue {
    /// A catalogue over the upstreams of `config` (none contacted yet), empty until first used;
    /// `reserved` are the built-in names.
    pub fn new(config: UpstreamsConfig, reserved: Reserved) -> Self {
        let listen = config.listen;
        let upstreams: Arc<[Arc<Upstream>]> =
            config.upstreams.iter().map(|upstream| Arc::new(Upstream::new(upstream.clone(), listen, None))).collect();
        Self {
            upstreams: RwLock::new(upstreams),
            ttl: config.catalogue_ttl,
            config: tokio::sync::Mutex::new(config),
            reserved,
            current: RwLock::new(Arc::new(Snapshot::default())),
            refreshing: tokio::sync::Mutex::new(()),
            last_error: RwLock::new(None),
            changes: tokio::sync::watch::Sender::new(0),
            listen,
        }
    }

    /// Whether changes of the lists are announced (a long-lived process: `serve`, `stdio`).
    pub fn announces(&self) -> bool {
        self.listen
    }

    /// A receiver that wakes when what clients see (tools, prompts, resources) has changed: a
    /// reload, a registration, an upstream's own list change.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Swaps in `snapshot`, and tells the listeners when clients would see a difference.
    fn publish(&self, snapshot: Arc<Snapshot>) {
        let Ok(mut current) = self.current.write() else { return };
        let changed = current.taken.is_some() && !current.same_lists(&snapshot);
        *current = snapshot;
        drop(current);
        if changed {
            self.changes.send_modify(|count| *count += 1);
        }
    }

    /// The upstreams, in file order.
    pub fn upstreams(&self) -> Arc<[Arc<Upstream>]> {
        self.upstreams.read().map(|upstreams| upstreams.clone()).unwrap_or_else(|_| Arc::new([]))
    }

    /// How long a list answered now stays fresh (its `ttlMs`): until the catalogue's next
    /// refresh, and not at all while an upstream declares that its lists may change: such a
    /// change can come at any moment, and this stateless gateway has no stream to pass it on.
    pub fn fresh_for(&self) -> Duration {
        if self.upstreams().iter().any(|upstream| upstream.announces_changes()) {
            return Duration::ZERO;
        }
        let current = self.snapshot();
        current.taken.map_or(Duration::ZERO, |taken| current.ttl.saturating_sub(taken.elapsed()))
    }

    /// Whether any upstream offers resources, and whether any offers prompts, by what each
    /// declared at its last connection (one never reached yet counts as offering both).
    pub fn offers_resources_and_prompts(&self) -> (bool, bool) {
        self.upstreams().iter().fold((false, false), |(resources, prompts), upstream| match upstream.capabilities() {
            None => (true, true),
            Some(declared) => (resources || declared.resources.is_some(), prompts || declared.prompts.is_some()),
        })
    }

    /// The last refresh that was refused (a collision, a closed upstream down), if the current
    /// snapshot is older than it.
    pub fn last_error(&self) -> Option<CatalogueError> {
        self.last_error.read().ok().and_then(|error| error.clone())
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        self.current.read().map(|current| current.clone()).unwrap_or_default()
    }

    /// The catalogue to answer with: filled now when it never was or an upstream said its list
    /// changed (so the list after that notification has the change); refreshed in the background
    /// when it is older than its TTL (the catalogue's, or an upstream list's shorter `ttlMs`).
    pub async fn tools(self: &Arc<Self>) -> Result<Arc<Snapshot>, CatalogueError> {
        let current = self.snapshot();
        let Some(taken) = current.taken else {
            return self.refresh().await;
        };
        // `any` stops at the first true: take every upstream's flag, not just the first one set.
        let changed = self.upstreams().iter().fold(false, |changed, upstream| upstream.take_list_changed() | changed);
        if changed {
            return match self.refresh().await {
                Ok(fresh) => Ok(fresh),
                Err(error) => {
                    tracing::warn!(%error, "an upstream's list changed, and the catalogue was not refreshed");
                    Ok(current)
                }
            };
        }
        // One background refresh at a time (a running one is not queued behind).
        if taken.elapsed() >= current.ttl && self.refreshing.try_lock().is_ok() {
            let catalogue = self.clone();
            tokio::spawn(async move {
                if let Err(error) = catalogue.refresh().await {
                    tracing::warn!(%error, "the upstream catalogue was not refreshed");
                }
            });
        }
        Ok(current)
    }

    /// The tool exposed as `name`, from the current snapshot, routed to the current upstream of
    /// its name (a reconfiguration may have replaced the one the snapshot was taken from).
    pub fn get(&self, name: &str) -> Option<Entry> {
        let mut entry = self.snapshot().tools.get(name).cloned()?;
        entry.upstream = self.upstream(entry.upstream.name())?;
        Some(entry)
    }

    /// The tool exposed as `name`; when the snapshot does not have it but may be missing it (never
    /// filled, or the name could belong to an upstream that was left out), the catalogue is
    /// refreshed first, so a client that calls without listing finds a tool an upstream offers.
    /// Names no left-out upstream could own cause no refresh.
    pub async fn lookup(&self, name: &str) -> Option<Entry> {
        if let Some(entry) = self.get(name) {
            return Some(entry);
        }
        let current = self.snapshot();
        // At most one such refresh a second: a client calling names no upstream has (a typo, a
        // tool of an upstream that is down) cannot keep every upstream listed.
        let could_be_missing = current.taken.is_none_or(|taken| taken.elapsed() >= LOOKUP_REFRESH_INTERVAL)
            && (current.taken.is_none()
                || current.left_out.keys().any(|upstream| {
                    let prefixed = self.upstream(upstream).is_none_or(|upstream| upstream.config.prefix);
                    !prefixed || name.starts_with(&format!("{upstream}{}", names::SEPARATOR))
                }));
        if could_be_missing && self.refresh().await.is_ok() {
            return self.get(name);
        }
        None
    }

    /// The prompt exposed as `name`, from the current snapshot; when the catalogue was never
    /// filled (a cold start without a saved snapshot), it is filled first.
    pub async fn prompt(&self, name: &str) -> Option<PromptEntry> {
        if self.snapshot().taken.is_none() {
            let _ = self.refresh().await;
        }
        let mut entry = self.snapshot().prompts.get(name).cloned()?;
        entry.upstream = self.upstream(entry.upstream.name())?;
        Some(entry)
    }

    /// The upstream named `name`.
    pub fn upstream(&self, name: &str) -> Option<Arc<Upstream>> {
        self.upstreams().iter().find(|upstream| upstream.name() == name).cloned()
    }

    /// The configuration the fleet was made from.
    pub async fn config(&self) -> UpstreamsConfig {
        self.config.lock().await.clone()
    }

    /// Replaces the fleet with the upstreams of `config`, and the catalogue with what they offer,
    /// when `edit` (given the current configuration) returns one: both change at once, or (an
    /// error from `edit`, a collision, a fail-closed upstream down) neither does. Upstreams and
    /// instances whose settings did not change keep their connections, breakers and numbers; calls
    /// under way finish where they are. Changes are made one at a time.
    pub async fn reconfigure(
        &self,
        edit: impl FnOnce(&UpstreamsConfig) -> Result<UpstreamsConfig, ChangeError>,
    ) -> Result<Reconfigured, ChangeError> {
        let mut current = self.config.lock().await;
        let mut config = edit(&current)?;
        config.listen = current.listen;
        let old = self.upstreams();
        let upstreams: Arc<[Arc<Upstream>]> = config
            .upstreams
            .iter()
            .map(|upstream| {
                let previous = old.iter().find(|previous| previous.name() == upstream.name);
                Arc::new(Upstream::new(upstream.clone(), config.listen, previous.map(|previous| &**previous)))
            })
            .collect();
        let _one_at_a_time = self.refreshing.lock().await;
        let started = Instant::now();
        let listed = futures::future::join_all(
            upstreams.iter().map(|upstream| async move { (upstream.clone(), upstream.list_all().await) }),
        )
        .await;
        let snapshot = Arc::new(self.build(listed, started)?);
        let summary = Reconfigured {
            upstreams: upstreams.len(),
            tools: snapshot.tools.len(),
            left_out: snapshot.left_out.clone(),
        };
        if let Ok(mut fleet) = self.upstreams.write() {
            *fleet = upstreams;
        }
        self.publish(snapshot);
        if let Ok(mut last) = self.last_error.write() {
            *last = None;
        }
        *current = config;
        tracing::info!(
            upstreams = summary.upstreams,
            tools = summary.tools,
            left_out = summary.left_out.len(),
            "upstreams reconfigured"
        );
        Ok(summary)
    }

    /// The current catalogue, for `mcp-gateway upstreams snapshot`.
    pub fn save(&self) -> SavedCatalogue {
        let snapshot = self.snapshot();
        let item = |upstream: &Arc<Upstream>, original: &str| (upstream.name().to_owned(), original.to_owned());
        SavedCatalogue {
            version: 1,
            tools: snapshot
                .tools
                .values()
                .map(|entry| {
                    let (upstream, original) = item(&entry.upstream, &entry.original);
                    SavedItem { upstream, original, definition: entry.definition.clone() }
                })
                .collect(),
            resources: snapshot
                .resources
                .iter()
                .filter_map(|resource| {
                    let (upstream, _) = names::parse_resource_uri(&resource.uri)?;
                    Some(SavedItem { upstream, original: String::new(), definition: resource.clone() })
                })
                .collect(),
            templates: snapshot
                .templates
                .iter()
                .filter_map(|template| {
                    let (upstream, _) = names::parse_resource_uri(&template.uri_template)?;
                    Some(SavedItem { upstream, original: String::new(), definition: template.clone() })
                })
                .collect(),
            prompts: snapshot
                .prompts
                .values()
                .map(|entry| {
                    let (upstream, original) = item(&entry.upstream, &entry.original);
                    SavedItem { upstream, original, definition: entry.definition.clone() }
                })
                .collect(),
        }
    }

    /// Starts from a saved catalogue (taken now, so it answers for one TTL before the first
    /// background refresh); every item must belong to an upstream of this file.
    pub fn load(&self, saved: SavedCatalogue) -> Result<(), String> {
        if saved.version != 1 {
            return Err(format!(
                "catalogue snapshot version {} is not 1; write it again with this gateway",
                saved.version
            ));
        }
        let upstream = |name: &str| {
            self.upstream(name).ok_or_else(|| {
                format!("the catalogue snapshot names upstream `{name}`, which the upstreams file does not have")
            })
        };
        // The file decides, not the snapshot: a name it would expose differently, or that a
        // built-in tool (or prompt) has, means the snapshot is from another file.
        let exposed = |upstream: &Upstream, original: &str, name: &str, reserved: &BTreeSet<String>| {
            let expected = names::exposed(upstream.name(), original, upstream.config.prefix);
            if name != expected || reserved.contains(name) {
                return Err(format!(
                    "the catalogue snapshot exposes `{original}` of upstream `{}` as `{name}`, where this upstreams \
                     file exposes `{expected}`; write the snapshot again with this file",
                    upstream.name()
                ));
            }
            Ok(())
        };
        let mut snapshot = Snapshot { taken: Some(Instant::now()), ttl: self.ttl, ..Snapshot::default() };
        for item in saved.tools {
            let owner = upstream(&item.upstream)?;
            exposed(&owner, &item.original, &item.definition.name, &self.reserved.tools)?;
            // A tool the file's allow and deny lists now leave out stays out.
            if !owner.config.exposes(&item.original) {
                continue;
            }
            let entry = Entry { upstream: owner, original: item.original, definition: item.definition };
            snapshot.tools.insert(entry.definition.name.to_string(), entry);
        }
        for item in saved.prompts {
            let owner = upstream(&item.upstream)?;
            exposed(&owner, &item.original, &item.definition.name, &self.reserved.prompts)?;
            let entry = PromptEntry { upstream: owner, original: item.original, definition: item.definition };
            snapshot.prompts.insert(entry.definition.name.clone(), entry);
        }
        for item in saved.resources {
            upstream(&item.upstream)?;
            snapshot.resources.push(item.definition);
        }
        for item in saved.templates {
            upstream(&item.upstream)?;
            snapshot.templates.push(item.definition);
        }
        if let Ok(mut current) = self.current.write() {
            *current = Arc::new(snapshot);
        }
        Ok(())
    }

    /// Lists every upstream at once and builds a new snapshot; on a collision or a closed
    /// upstream that is down, the old snapshot stays and the error is returned (and kept for
    /// `gateway_status`).
    ///
    /// Refreshes run one at a time, and one that waited for another is answered by it: however
    /// many callers ask at once, each upstream is listed once.
    pub async fn refresh(&self) -> Result<Arc<Snapshot>, CatalogueError> {
        let asked = Instant::now();
        let _one_at_a_time = self.refreshing.lock().await;
        let current = self.snapshot();
        if current.taken.is_some_and(|taken| taken >= asked) {
            return Ok(current);
        }
        let started = Instant::now();
        let upstreams = self.upstreams();
        let listed = futures::future::join_all(
            upstreams.iter().map(|upstream| async move { (upstream.clone(), upstream.list_all().await) }),
        )
        .await;
        let built = self.build(listed, started);
        match built {
            Ok(snapshot) => {
                tracing::info!(
                    tools = snapshot.tools.len(),
                    left_out = snapshot.left_out.len(),
                    ms = started.elapsed().as_millis() as u64,
                    "upstream catalogue refreshed"
                );
                let snapshot = Arc::new(snapshot);
                self.publish(snapshot.clone());
                if let Ok(mut last) = self.last_error.write() {
                    *last = None;
                }
                Ok(snapshot)
            }
            Err(error) => {
                if let Ok(mut last) = self.last_error.write() {
                    *last = Some(error.clone());
                }
                Err(error)
            }
        }
    }

    /// A snapshot of what the upstreams `listed`; `started` is when the listing began (what
    /// `taken` says: a change announced after it may be missing).
    fn build(
        &self,
        listed: Vec<(Arc<Upstream>, Result<Offer, UpstreamError>)>,
        started: Instant,
    ) -> Result<Snapshot, CatalogueError> {
        let mut snapshot = Snapshot { taken: Some(started), ttl: self.ttl, ..Snapshot::default() };
        let mut owners: BTreeMap<String, String> =
            self.reserved.tools.iter().map(|name| (name.clone(), format!("the built-in tool `{name}`"))).collect();
        let mut prompt_owners: BTreeMap<String, String> =
            self.reserved.prompts.iter().map(|name| (name.clone(), format!("the built-in prompt `{name}`"))).collect();
        for (upstream, offer) in listed {
            let offer = match offer {
                Ok(offer) => offer,
                Err(error) if upstream.config.failure_mode == FailureMode::Closed => {
                    return Err(CatalogueError::ClosedUpstreamDown {
                        upstream: upstream.name().to_owned(),
                        reason: error.to_string(),
                    });
                }
                Err(error) => {
                    snapshot.left_out.insert(upstream.name().to_owned(), error.to_string());
                    continue;
                }
            };
            if let Some(fresh_for) = offer.fresh_for {
                snapshot.ttl = snapshot.ttl.min(fresh_for.max(MIN_LIST_TTL));
            }
            for tool in offer.tools {
                let exposed = names::exposed(upstream.name(), &tool.name, upstream.config.prefix);
                let owner = format!("`{}` of upstream `{}`", tool.name, upstream.name());
                if let Some(first) = owners.insert(exposed.clone(), owner.clone()) {
                    return Err(CatalogueError::Collision { name: exposed, first, second: owner });
                }
                let original = tool.name.to_string();
                let mut definition = tool;
                definition.name = exposed.clone().into();
                snapshot.tools.insert(exposed, Entry { upstream: upstream.clone(), original, definition });
            }
            for mut resource in offer.resources {
                resource.uri = names::resource_uri(upstream.name(), &resource.uri);
                snapshot.resources.push(resource);
            }
            for mut template in offer.templates {
                template.uri_template = names::resource_uri(upstream.name(), &template.uri_template);
                snapshot.templates.push(template);
            }
            for prompt in offer.prompts {
                let exposed = names::exposed(upstream.name(), &prompt.name, upstream.config.prefix);
                let owner = format!("the prompt `{}` of upstream `{}`", prompt.name, upstream.name());
                if let Some(first) = prompt_owners.insert(exposed.clone(), owner.clone()) {
                    return Err(CatalogueError::Collision { name: exposed, first, second: owner });
                }
                let original = prompt.name.clone();
                let mut definition = prompt;
                definition.name = exposed.clone();
                snapshot.prompts.insert(exposed, PromptEntry { upstream: upstream.clone(), original, definition });
            }
        }
        Ok(snapshot)
    }
}

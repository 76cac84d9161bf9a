//! The MCP server: protocol requests mapped onto the registry and the data root.
//!
//! [`Gateway`] implements rmcp's `ServerHandler`; rmcp owns JSON-RPC framing, version negotiation
//! and both protocol eras. A `Gateway` is a cheap handle: every HTTP request gets a clone, and no
//! state outlives a request, so any instance can answer any request.

use std::sync::Arc;

use base64::Engine as _;
use rmcp::{
    ErrorData as McpError, RoleServer, ServerHandler,
    model::{
        CacheScope, CallToolRequestParams, CallToolResponse, GetPromptRequestParams, GetPromptResponse,
        GetPromptResult, Implementation, ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult,
        ListToolsResult, PaginatedRequestParams, Prompt, PromptArgument, PromptMessage, ReadResourceRequestParams,
        ReadResourceResponse, ReadResourceResult, Resource, ResourceContents, ResourceTemplate, Role,
        ServerCapabilities, ServerConfig, ServerNotification, SubscriptionFilter, Tool,
    },
    service::{RequestContext, SubscriptionContext},
};

use crate::{
    access::Target,
    access_log::RequestRecord,
    progress::Progress,
    registry::{CallContext, Registry},
    storage::{EntryKind, ObjectPath, Storage},
    tools::file::content_type,
};

/// How long clients may cache `tools/list` (the tool set only changes with a deployment).
const TOOLS_TTL_MS: u64 = 5 * 60 * 1000;
/// How long clients may cache resource listings and reads (data changes underneath).
const RESOURCES_TTL_MS: u64 = 30 * 1000;
/// URI prefix of data-root files exposed as resources.
pub const RESOURCE_SCHEME: &str = "gateway://data/";
/// The media type of a dataset resource: its metadata as JSON.
#[cfg(feature = "data")]
const METADATA_MIME: &str = "application/json";
/// Largest resource body returned by `resources/read`.
const MAX_RESOURCE_BYTES: u64 = 1 << 20;

/// Everything the server needs, shared by all requests.
#[derive(Debug)]
pub struct Core {
    /// The tools offered.
    pub registry: Registry,
    /// The data root.
    pub storage: Storage,
    /// The search index, loaded or built once per process.
    #[cfg(feature = "data")]
    pub search_index: crate::tools::Index,
    /// Whether the built-in tools (and the data root's resources and prompt) are offered.
    pub builtin: bool,
    /// Who may call what, and how often (the access file; open without one).
    pub policy: crate::access::Policy,
    /// Results that may be reused (upstream resource reads by their hints, configured tools).
    pub cache: crate::result_cache::ResultCache,
}

impl Core {
    /// A core offering every built-in tool over `storage`.
    pub fn with_builtin_tools(storage: Storage, limits: crate::tools::ToolLimits) -> Self {
        let search_index = Self::new_index(&limits);
        let mut registry = Registry::new();
        crate::tools::register_builtin(&mut registry, &storage, limits, &search_index);
        Self {
            registry,
            storage,
            #[cfg(feature = "data")]
            search_index,
            builtin: true,
            policy: crate::access::Policy::default(),
            cache: crate::result_cache::ResultCache::default(),
        }
    }

    /// A core over `storage` with `builtin` tools (or none), federating `upstreams` when given:
    /// their tools join the registry, and `gateway_status` reports on them.
    pub fn new(
        storage: Storage,
        limits: crate::tools::ToolLimits,
        builtin: bool,
        upstreams: Option<crate::upstream::UpstreamsConfig>,
    ) -> Self {
        let mut core = if builtin {
            Self::with_builtin_tools(storage, limits)
        } else {
            Self {
                registry: Registry::new(),
                #[cfg(feature = "data")]
                search_index: Self::new_index(&limits),
                storage,
                builtin: false,
                policy: crate::access::Policy::default(),
                cache: crate::result_cache::ResultCache::default(),
            }
        };
        if let Some(config) = upstreams {
            let mut reserved = crate::upstream::catalogue::Reserved {
                tools: core.registry.names().map(str::to_owned).collect(),
                prompts: builtin.then(|| EXPLORE_PROMPT.to_owned()).into_iter().collect(),
            };
            reserved.tools.insert(crate::upstream::status::StatusTool::NAME_FOR_RESERVATION.to_owned());
            let federation = crate::upstream::Federation::new(config, reserved);
            core.registry.register(crate::registry::typed(crate::upstream::status::StatusTool::new(
                federation.catalogue.clone(),
            )));
            core.registry.federate(federation.catalogue);
        }
        core
    }

    #[cfg(feature = "data")]
    fn new_index(limits: &crate::tools::ToolLimits) -> crate::tools::Index {
        Arc::new(crate::search_index::SharedIndex::new(limits.index_recheck))
    }

    #[cfg(not(feature = "data"))]
    fn new_index(_limits: &crate::tools::ToolLimits) -> crate::tools::Index {
        crate::tools::Index
    }
}

/// Put in a request's extensions by the HTTP transport for `/mcp/{upstream}`: the request sees
/// that upstream alone, its tools and prompts under their own names, and its resources; not the
/// built-in tools.
#[derive(Debug, Clone)]
pub struct UpstreamScope(pub String);

/// The upstream a request is scoped to, if it is.
fn scope(context: &RequestContext<RoleServer>) -> Option<&str> {
    let parts = context.extensions.get::<http::request::Parts>()?;
    parts.extensions.get::<UpstreamScope>().map(|scope| scope.0.as_str())
}

/// Whether the exposed resource URI (or template) `uri` is one of `upstream`'s.
fn of_upstream(uri: &str, upstream: &str) -> bool {
    crate::upstream::names::parse_resource_uri(uri).is_some_and(|(owner, _)| owner == upstream)
}

/// Who sent the request (from the HTTP transport's record; anonymous on stdio).
fn caller_of(context: &RequestContext<RoleServer>) -> crate::caller::Caller {
    RequestRecord::from_extensions(&context.extensions).map(|record| record.caller()).unwrap_or_default()
}

/// The protocol error for a call the authorization rules refuse.
fn denied(denied: &crate::access::Denied) -> McpError {
    McpError::invalid_params(denied.to_string(), None)
}

/// The protocol error for a tool name that is not offered.
fn unknown_tool(name: &str) -> McpError {
    McpError::invalid_params(format!("unknown tool `{name}`; tools/list shows the available tools"), None)
}

/// What [`Gateway::visible`] filters.
#[derive(Debug, Clone, Copy)]
enum Listed {
    Tool,
    Prompt,
}

/// The MCP handler: a clone per request over one shared [`Core`].
#[derive(Debug, Clone)]
pub struct Gateway {
    core: Arc<Core>,
}

impl Gateway {
    /// A handler over `core`.
    pub fn new(core: Arc<Core>) -> Self {
        Self { core }
    }

    /// The `ttlMs` of a list whose own part stays fresh `own` ms: with upstreams, no longer than
    /// the catalogue it came from (see `Catalogue::fresh_for`).
    fn list_ttl_ms(&self, own: u64) -> u64 {
        match self.core.registry.upstreams() {
            Some(catalogue) => own.min(u64::try_from(catalogue.fresh_for().as_millis()).unwrap_or(u64::MAX)),
            None => own,
        }
    }

    /// The tools or prompts of a list the caller may see (by exposed name; `name` gives an item's
    /// name as listed, which a per-upstream endpoint lists unprefixed), and the list's cache
    /// scope: private when rules decide what a caller sees.
    async fn visible<T>(
        &self,
        context: &RequestContext<RoleServer>,
        items: Vec<T>,
        kind: Listed,
        name: impl Fn(&T) -> String,
    ) -> (Vec<T>, CacheScope) {
        let rules = &self.core.policy.rules;
        if rules.is_open() {
            return (items, CacheScope::Public);
        }
        let caller = caller_of(context);
        let mut allowed = Vec::with_capacity(items.len());
        for item in items {
            let listed = name(&item);
            let exposed = match (scope(context), kind) {
                (Some(upstream), Listed::Tool) => self.core.registry.exposed_tool(upstream, &listed).await,
                (Some(upstream), Listed::Prompt) => self.core.registry.exposed_prompt(upstream, &listed).await,
                (None, _) => Some(listed),
            };
            let target = |exposed: &str| match kind {
                Listed::Tool => rules.allows(&caller, Target::Tool(exposed)),
                Listed::Prompt => rules.allows(&caller, Target::Prompt(exposed)),
            };
            if exposed.is_some_and(|exposed| target(&exposed)) {
                allowed.push(item);
            }
        }
        (allowed, CacheScope::Private)
    }

    /// The server's name and version, as sent in `serverInfo`.
    pub fn implementation() -> Implementation {
        Implementation::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
            .with_title("MCP Lambda Gateway")
            .with_description(if cfg!(feature = "data") {
                "Data tools (file, search, db, dataset metadata) over MCP"
            } else {
                "File tools and federated MCP servers over MCP (a build without the data tools)"
            })
    }
}

#[cfg(feature = "data")]
impl Gateway {
    /// The data root's datasets as resources (their metadata), when the built-in tools are on.
    async fn dataset_resources(&self) -> Result<Vec<Resource>, McpError> {
        if !self.core.builtin {
            return Ok(Vec::new());
        }
        let datasets = crate::datasets::discover(&self.core.storage)
            .await
            .map_err(|error| McpError::internal_error(error.to_string(), None))?;
        let resources = datasets.into_iter().map(|dataset| {
            Resource::new(format!("{RESOURCE_SCHEME}{}", dataset.path), dataset.path.clone())
                .with_mime_type(METADATA_MIME)
                .with_size(dataset.size)
                .with_description(format!(
                    "Metadata of the {:?} dataset `{}` (SQL table `{}`): schema, row count, column statistics, sample rows",
                    dataset.format, dataset.path, dataset.name
                ))
        });
        Ok(resources.collect())
    }

    /// A dataset read as a resource: its metadata (from the `dataset_metadata` tool) as JSON,
    /// within the request's deadline and cancelled with it.
    async fn dataset_resource(
        &self,
        uri: String,
        path: &ObjectPath,
        context: CallContext,
    ) -> Result<ReadResourceResponse, McpError> {
        let mut arguments = rmcp::model::JsonObject::new();
        arguments.insert("path".into(), path.as_str().into());
        let mut request = CallToolRequestParams::new("dataset_metadata");
        request.arguments = Some(arguments);
        let answer = self
            .core
            .registry
            .call(request, context)
            .await
            .ok_or_else(|| McpError::internal_error("the dataset_metadata tool is not registered", None))?;
        let Ok(CallToolResponse::Complete(result)) = answer else {
            return Err(McpError::internal_error("dataset_metadata gave no result", None));
        };
        let metadata = result.structured_content.as_ref().and_then(|content| content["datasets"].get(0));
        let Some(metadata) = metadata.filter(|_| result.is_error != Some(true)) else {
            let message = serde_json::to_value(&result.content)
                .ok()
                .and_then(|content| content[0]["text"].as_str().map(str::to_owned))
                .unwrap_or_else(|| format!("could not describe `{path}`"));
            return Err(McpError::internal_error(message, None));
        };
        let text = serde_json::to_string_pretty(metadata).unwrap_or_default();
        let contents =
            ResourceContents::TextResourceContents { uri, mime_type: Some(METADATA_MIME.to_owned()), text, meta: None };
        let result =
            ReadResourceResult::new(vec![contents]).with_ttl_ms(RESOURCES_TTL_MS).with_cache_scope(CacheScope::Private);
        Ok(ReadResourceResponse::Complete(result))
    }
}

impl ServerHandler for Gateway {
    // Logging is deprecated in 2026-07-28 but part of every earlier revision we serve.
    #[allow(deprecated)]
    fn get_info(&self) -> ServerConfig {
        let mut capabilities =
            ServerCapabilities::builder().enable_tools().enable_resources().enable_prompts().enable_logging().build();
        // Without built-in tools, resources and prompts are only what the upstreams offer.
        if !self.core.builtin
            && let Some(catalogue) = self.core.registry.upstreams()
        {
            let (resources, prompts) = catalogue.offers_resources_and_prompts();
            if !resources {
                capabilities.resources = None;
            }
            if !prompts {
                capabilities.prompts = None;
            }
        }
        // A long-lived process announces list changes (a reload, an upstream's change) on
        // `subscriptions/listen` streams.
        if self.core.registry.upstreams().is_some_and(|catalogue| catalogue.announces()) {
            let announce = Some(true);
            if let Some(tools) = capabilities.tools.as_mut() {
                tools.list_changed = announce;
            }
            if let Some(prompts) = capabilities.prompts.as_mut() {
                prompts.list_changed = announce;
            }
            if let Some(resources) = capabilities.resources.as_mut() {
                resources.list_changed = announce;
            }
        }
        let mut info = ServerConfig::new(capabilities);
        info.server_info = Self::implementation();
        let mut instructions = if self.core.builtin {
            format!(
                "Tools over the data root {}. Start with `file` (action=list) to see what is there.",
                self.core.storage.describe()
            )
        } else {
            "Tools of the MCP servers behind this gateway, named `<server>__<tool>`.".to_owned()
        };
        if self.core.registry.upstreams().is_some() {
            instructions.push_str(" `gateway_status` reports on the upstream servers.");
        }
        info.instructions = Some(instructions);
        info
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let definitions = match scope(&context) {
            Some(upstream) => self.core.registry.tools_of(upstream).await,
            None => self.core.registry.definitions().await,
        }
        .map_err(|error| McpError::internal_error(error.to_string(), None))?;
        let (definitions, cache_scope) =
            self.visible(&context, definitions, Listed::Tool, |tool: &Tool| tool.name.to_string()).await;
        let mut result = ListToolsResult::with_all_items(definitions);
        result.ttl_ms = Some(self.list_ttl_ms(TOOLS_TTL_MS));
        result.cache_scope = Some(cache_scope);
        Ok(result)
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.core.registry.definition(name)
    }

    fn accepted_subscription_filter(&self, requested: &SubscriptionFilter) -> Option<SubscriptionFilter> {
        self.core.registry.upstreams().filter(|catalogue| catalogue.announces())?;
        let mut accepted = SubscriptionFilter::new();
        accepted.tools_list_changed = requested.tools_list_changed;
        accepted.prompts_list_changed = requested.prompts_list_changed;
        accepted.resources_list_changed = requested.resources_list_changed;
        Some(accepted)
    }

    /// Holds a `subscriptions/listen` stream open and sends each list change of the federation's
    /// catalogue (a reload, a registration, an upstream's own change) that the client asked for.
    async fn listen(&self, context: SubscriptionContext) -> Result<(), McpError> {
        let Some(catalogue) = self.core.registry.upstreams() else {
            context.cancelled().await;
            return Ok(());
        };
        let mut changes = catalogue.changes();
        changes.mark_unchanged();
        loop {
            tokio::select! {
                () = context.cancelled() => return Ok(()),
                changed = changes.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    let accepted = context.accepted().clone();
                    let notifications = [
                        (accepted.tools_list_changed, ServerNotification::ToolListChangedNotification(Default::default())),
                        (accepted.prompts_list_changed, ServerNotification::PromptListChangedNotification(Default::default())),
                        (accepted.resources_list_changed, ServerNotification::ResourceListChangedNotification(Default::default())),
                    ];
                    for (wanted, notification) in notifications {
                        if wanted == Some(true) && context.sink().send(notification).await.is_err() {
                            return Ok(()); // the client went away
                        }
                    }
                }
            }
        }
    }

    async fn call_tool(
        &self,
        mut request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let name = request.name.to_string();
        if let Some(upstream) = scope(&context) {
            let exposed = self.core.registry.exposed_tool(upstream, &name).await;
            request.name = exposed.ok_or_else(|| unknown_tool(&name))?.into();
        }
        let record = RequestRecord::from_extensions(&context.extensions);
        if let Some(record) = &record {
            record.set_tool(&name);
        }
        let call_context = call_context(&context, record.as_ref());
        self.core.policy.rules.check(&call_context.caller, Target::Tool(&request.name)).map_err(|why| denied(&why))?;
        let cache = &self.core.cache;
        let cached_as = cache.tool_caching(&request.name).map(|_| {
            let arguments = serde_json::to_string(&request.arguments).unwrap_or_default();
            (request.name.to_string(), arguments, call_context.caller.principal.clone())
        });
        if let Some((tool, arguments, principal)) = &cached_as
            && let Some(result) = cache.tool(tool, arguments, principal.as_ref())
        {
            return Ok(CallToolResponse::Complete(result));
        }
        let started = std::time::Instant::now();
        let Some(answer) = self.core.registry.call(request, call_context).await else {
            return Err(unknown_tool(&name));
        };
        let response = answer?;
        if let (Some((tool, arguments, principal)), CallToolResponse::Complete(result)) = (&cached_as, &response) {
            cache.put_tool(tool, arguments, principal.as_ref(), result);
        }
        let (is_error, reason) = match &response {
            CallToolResponse::Complete(result) if result.is_error == Some(true) => (true, Some(first_text(result))),
            _ => (false, None),
        };
        match &record {
            Some(record) => record.set_tool_error(is_error, reason.clone()),
            // stdio has no HTTP access log, so the call is logged here.
            None => tracing::info!(
                target: "mcp_gateway::request",
                method = "tools/call",
                tool = %name,
                transport = "stdio",
                latency_ms = started.elapsed().as_secs_f64() * 1000.0,
                outcome = if is_error { "tool_error" } else { "ok" },
                reason = reason.as_deref(),
            ),
        }
        Ok(response)
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let (mut upstream_resources, _) =
            self.core.registry.resources().await.map_err(|error| McpError::internal_error(error.to_string(), None))?;
        let resources = match scope(&context) {
            Some(upstream) => {
                upstream_resources.retain(|resource| of_upstream(&resource.uri, upstream));
                upstream_resources
            }
            None => self.dataset_resources().await?.into_iter().chain(upstream_resources).collect(),
        };
        let rules = &self.core.policy.rules;
        let resources = if rules.is_open() {
            resources
        } else {
            let caller = caller_of(&context);
            resources.into_iter().filter(|resource| rules.allows(&caller, Target::Resource(&resource.uri))).collect()
        };
        let mut result = ListResourcesResult::with_all_items(resources);
        result.ttl_ms = Some(self.list_ttl_ms(RESOURCES_TTL_MS));
        result.cache_scope = Some(CacheScope::Private);
        Ok(result)
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        let mut template = ResourceTemplate::new(format!("{RESOURCE_SCHEME}{{+path}}"), "data-file");
        template.title = Some("A file under the data root".to_owned());
        template.description = Some(
            "Any file under the data root, by its relative path: a dataset reads as its metadata (JSON), \
             other files as their content"
                .to_owned(),
        );
        let (_, mut upstream_templates) =
            self.core.registry.resources().await.map_err(|error| McpError::internal_error(error.to_string(), None))?;
        if let Some(upstream) = scope(&context) {
            upstream_templates.retain(|template| of_upstream(&template.uri_template, upstream));
        }
        let own = (self.core.builtin && scope(&context).is_none()).then_some(template);
        let mut result =
            ListResourceTemplatesResult::with_all_items(own.into_iter().chain(upstream_templates).collect());
        result.ttl_ms = Some(self.list_ttl_ms(TOOLS_TTL_MS));
        result.cache_scope = Some(CacheScope::Public);
        Ok(result)
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let not_found = |message: String| {
            // 2026-07-28 moved "resource not found" from -32002 to -32602.
            if context.meta.protocol_version().is_some() {
                McpError::invalid_params(message, None)
            } else {
                McpError::resource_not_found(message, None)
            }
        };
        if scope(&context).is_some_and(|upstream| !of_upstream(&request.uri, upstream)) {
            return Err(not_found(format!("unknown resource `{}`; resources/list shows them", request.uri)));
        }
        let record = RequestRecord::from_extensions(&context.extensions);
        let call_context = call_context(&context, record.as_ref());
        self.core
            .policy
            .rules
            .check(&call_context.caller, Target::Resource(&request.uri))
            .map_err(|why| denied(&why))?;
        let principal = call_context.caller.principal.clone();
        if let Some(result) = self.core.cache.resource(&request.uri, principal.as_ref()) {
            let result = result.with_ttl_ms(RESOURCES_TTL_MS).with_cache_scope(CacheScope::Private);
            return Ok(ReadResourceResponse::Complete(result));
        }
        if let Some(answer) = self.core.registry.read_resource(&request.uri, call_context.clone()).await {
            if let Ok(result) = &answer {
                self.core.cache.put_resource(&request.uri, principal.as_ref(), result);
            }
            return answer.map(|result| {
                ReadResourceResponse::Complete(
                    result.with_ttl_ms(RESOURCES_TTL_MS).with_cache_scope(CacheScope::Private),
                )
            });
        }
        let relative = request.uri.strip_prefix(RESOURCE_SCHEME).filter(|_| self.core.builtin);
        let Some(relative) = relative else {
            return Err(not_found(format!("unknown resource `{}`; resources/list shows them", request.uri)));
        };
        let path = ObjectPath::parse(relative).map_err(|error| McpError::invalid_params(error.to_string(), None))?;
        let storage = &self.core.storage;
        #[cfg(feature = "data")]
        if crate::datasets::find(storage, path.as_str()).await.is_ok() {
            let call_context = CallContext { progress: Progress::disabled(), ..call_context };
            return self.dataset_resource(request.uri, &path, call_context).await;
        }
        let entry = storage.stat(&path).await.map_err(|error| not_found(error.to_string()))?;
        if entry.kind == EntryKind::Dir || entry.size > MAX_RESOURCE_BYTES {
            return Err(McpError::invalid_params(
                format!(
                    "`{path}` is a folder or larger than {MAX_RESOURCE_BYTES} bytes; use the `file` tool with a range"
                ),
                None,
            ));
        }
        let bytes = storage
            .read_range(&path, 0, entry.size)
            .await
            .map_err(|error| McpError::internal_error(error.to_string(), None))?;
        let mime_type = Some(content_type(&entry.path).to_owned());
        let contents = match String::from_utf8(bytes) {
            Ok(text) => ResourceContents::TextResourceContents { uri: request.uri, mime_type, text, meta: None },
            Err(error) => ResourceContents::BlobResourceContents {
                uri: request.uri,
                mime_type,
                blob: base64::engine::general_purpose::STANDARD.encode(error.into_bytes()),
                meta: None,
            },
        };
        let result =
            ReadResourceResult::new(vec![contents]).with_ttl_ms(RESOURCES_TTL_MS).with_cache_scope(CacheScope::Private);
        Ok(ReadResourceResponse::Complete(result))
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        let upstream = match scope(&context) {
            Some(upstream) => self.core.registry.prompts_of(upstream).await,
            None => self.core.registry.prompts().await,
        }
        .map_err(|error| McpError::internal_error(error.to_string(), None))?;
        let own = (self.core.builtin && scope(&context).is_none()).then(explore_prompt);
        let prompts: Vec<Prompt> = own.into_iter().chain(upstream).collect();
        let (prompts, cache_scope) =
            self.visible(&context, prompts, Listed::Prompt, |prompt: &Prompt| prompt.name.clone()).await;
        let mut result = ListPromptsResult::with_all_items(prompts);
        result.ttl_ms = Some(self.list_ttl_ms(TOOLS_TTL_MS));
        result.cache_scope = Some(cache_scope);
        Ok(result)
    }

    async fn get_prompt(
        &self,
        mut request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        if let Some(upstream) = scope(&context) {
            let exposed = self.core.registry.exposed_prompt(upstream, &request.name).await;
            let unknown = || McpError::invalid_params(format!("unknown prompt `{}`", request.name), None);
            request.name = exposed.ok_or_else(unknown)?;
        }
        self.core
            .policy
            .rules
            .check(&caller_of(&context), Target::Prompt(&request.name))
            .map_err(|why| denied(&why))?;
        if request.name != EXPLORE_PROMPT || !self.core.builtin || scope(&context).is_some() {
            let record = RequestRecord::from_extensions(&context.extensions);
            let call_context = call_context(&context, record.as_ref());
            if let Some(answer) = self.core.registry.get_prompt(request.clone(), call_context).await {
                return answer.map(GetPromptResponse::Complete);
            }
            return Err(McpError::invalid_params(format!("unknown prompt `{}`", request.name), None));
        }
        let focus = request
            .arguments
            .as_ref()
            .and_then(|arguments| arguments.get("focus"))
            .and_then(|focus| focus.as_str())
            .unwrap_or("whatever looks most useful");
        let text = format!(
            "Explore the data under the gateway's data root ({}). List it with the `file` tool \
             (action=list, recursive=true), read the files that matter, and summarise what is there, \
             focusing on: {focus}.",
            self.core.storage.describe()
        );
        let mut result = GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)]);
        result.description = Some("Survey the data root".to_owned());
        Ok(GetPromptResponse::Complete(result))
    }

    #[allow(deprecated)]
    async fn set_level(
        &self,
        request: rmcp::model::SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        // Stateless: nothing is kept between requests, and this server sends no
        // `notifications/message`, so the level is acknowledged and logged only.
        tracing::debug!(level = ?request.level, "client set its log level");
        Ok(())
    }
}

/// What a tool, resource or prompt call may use of its request: cancellation, progress, the
/// deadline and the caller (from the HTTP transport's record; none on stdio).
fn call_context(context: &RequestContext<RoleServer>, record: Option<&RequestRecord>) -> CallContext {
    CallContext {
        cancel: context.ct.clone(),
        progress: Progress::new(context.meta.get_progress_token(), context.peer.clone()),
        deadline: record.and_then(RequestRecord::deadline),
        caller: record.map(RequestRecord::caller).unwrap_or_default(),
        trace: record.and_then(RequestRecord::trace),
    }
}

/// The start of a result's first text block (a tool error's message), for the access log.
fn first_text(result: &rmcp::model::CallToolResult) -> String {
    let text =
        result.content.iter().find_map(|block| block.as_text().map(|text| text.text.as_str())).unwrap_or_default();
    text.chars().take(300).collect()
}

const EXPLORE_PROMPT: &str = "explore_data";

fn explore_prompt() -> Prompt {
    let mut focus = PromptArgument::new("focus");
    focus.description = Some("What to look for (optional)".to_owned());
    focus.required = Some(false);
    Prompt::new(EXPLORE_PROMPT, Some("Survey the files under the data root"), Some(vec![focus]))
}

/// Without the `data` feature there are no datasets, so no dataset resources (files still read
/// as resources).
#[cfg(not(feature = "data"))]
impl Gateway {
    async fn dataset_resources(&self) -> Result<Vec<Resource>, McpError> {
        Ok(Vec::new())
    }
}

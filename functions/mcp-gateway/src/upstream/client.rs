//! One instance of an upstream MCP server, as an rmcp client: connected on first use, connected
//! again when its transport closes (a stdio command is restarted, with back-off), with each call's
//! progress and cancellation carried across. Which instance takes a request is `pool`'s choice.
//!
//! rmcp's client does the protocol: `server/discover` with a fallback to `initialize` (or the
//! revision the file names), the legacy session (re-initialized once on a 404), SSE answers and
//! JSON-RPC ids. The state kept here is per upstream and per process, never per client.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use futures::{FutureExt as _, StreamExt as _};
use rmcp::{
    ClientHandler, RoleClient, ServiceError,
    handler::client::progress::ProgressDispatcher,
    model::{
        CallToolRequestParams, CallToolResponse, CancelledNotificationParam, ClientCapabilities, ClientConfig,
        ClientRequest, GetPromptRequestParams, GetPromptResult, Implementation, PaginatedRequestParams, PingRequest,
        ProgressNotificationParam, Prompt, ProtocolVersion, ReadResourceRequestParams, ReadResourceResult, Resource,
        ResourceTemplate, ResultType, ServerCapabilities, ServerNotification, ServerResult, SubscriptionFilter, Tool,
    },
    service::{
        ClientLifecycleMode, ClientServiceExt as _, NotificationContext, Peer, PeerRequestOptions, RunningService,
        Subscription,
    },
};
use tokio_util::sync::CancellationToken;

use super::{
    config::{
        Auth, DEFAULT_INSTANCE, HttpConfig, InstanceConfig, ProbeKind, Protocol, StdioConfig, Transport, UpstreamConfig,
    },
    sigv4::SigV4Client,
};
use crate::{caller::Caller, progress::Progress};

/// List-change notifications buffered on a `subscriptions/listen` stream between two lists; one
/// more ends the stream (and the next list refreshes the catalogue anyway).
const SUBSCRIPTION_BUFFER: std::num::NonZeroUsize = std::num::NonZeroUsize::new(256).unwrap();

/// How long sending `notifications/cancelled` to an upstream may take (in the background).
const CANCEL_SEND_LIMIT: Duration = Duration::from_secs(5);

/// How long passing one progress update on to the client may take before it is dropped.
const PROGRESS_SEND_LIMIT: Duration = Duration::from_secs(1);

/// How many times a call that got its answer lets rmcp's notification tasks run, to pass on the
/// progress that came just before the answer.
const PROGRESS_DRAIN_YIELDS: usize = 4;

/// The most pages of one list read from an upstream.
const MAX_PAGES: usize = 100;

/// The most items of one kind (tools, resources, templates, prompts) taken from an upstream.
const MAX_ITEMS: usize = 10_000;

/// The environment a stdio upstream inherits from the gateway (what MCP clients pass on too).
const STDIO_ENV: &[&str] = &["HOME", "LANG", "LOGNAME", "PATH", "SHELL", "TERM", "TMPDIR", "USER"];

/// The longest stderr line of a stdio upstream that is logged.
const STDERR_LINE_BYTES: usize = 4096;

/// How long a connection must last for its upstream's past failures to be forgiven; one that
/// ends sooner twice in a row is restarted with back-off.
const STABLE_UPTIME: Duration = Duration::from_secs(30);

/// The longest wait between two attempts to reach an upstream that is down.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Why a call to an upstream failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    /// The upstream could not be reached (or started); `retry_in` until the next attempt.
    #[error("upstream `{upstream}` is down: {reason}")]
    Down { upstream: String, reason: String },
    /// None of its instances may be called now (their breakers are open, or they fail their
    /// health checks).
    #[error("upstream `{upstream}` has no healthy instance: {reason}")]
    NoHealthyInstance { upstream: String, reason: String },
    /// It answered with a JSON-RPC error: passed on with its code.
    #[error("{0}")]
    Rpc(rmcp::ErrorData),
    /// It did not answer in time.
    #[error("upstream `{upstream}` did not answer within {} s", .limit.as_secs_f64())]
    Timeout { upstream: String, limit: Duration },
    /// The caller went away; the upstream was told.
    #[error("the call to upstream `{upstream}` was cancelled")]
    Cancelled { upstream: String },
    /// Anything else the transport reported.
    #[error("upstream `{upstream}`: {reason}")]
    Transport { upstream: String, reason: String },
}

/// How a list failed: before the request (connecting) or in it.
enum Listing {
    Upstream(UpstreamError),
    Service(ServiceError),
}

impl From<UpstreamError> for Listing {
    fn from(error: UpstreamError) -> Self {
        Self::Upstream(error)
    }
}

/// Everything an instance offers.
#[derive(Debug, Clone, Default)]
pub struct Offer {
    /// Its tools.
    pub tools: Vec<Tool>,
    /// Its resources.
    pub resources: Vec<Resource>,
    /// Its resource templates.
    pub templates: Vec<ResourceTemplate>,
    /// Its prompts.
    pub prompts: Vec<Prompt>,
    /// How long the lists stay fresh: the shortest positive `ttlMs` of their pages, if any.
    pub fresh_for: Option<Duration>,
}

/// What `gateway_status` reports about an upstream.
#[derive(Debug, Clone, Default, serde::Serialize, schemars::JsonSchema)]
pub struct Status {
    /// `up`, `down` or `unknown` (not contacted yet).
    pub state: String,
    /// The protocol revision agreed on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// The last failure, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Latency of the last successful request, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    /// Tools it offers (after allow/deny).
    pub tools: usize,
    /// Times it was connected (or its command started).
    pub connections: u64,
}

/// One instance of an upstream server.
pub struct Instance {
    /// The upstream's name, or `<upstream>/<instance>` when it has several instances: what
    /// errors and log lines call it.
    label: String,
    /// Its configuration.
    pub config: InstanceConfig,
    /// How long a list (connecting included) may take.
    list_timeout: Duration,
    connection: tokio::sync::Mutex<Option<Connection>>,
    status: Mutex<Status>,
    backoff: Mutex<Backoff>,
    progress: ProgressDispatcher,
    /// Set when the upstream says its tool list changed.
    list_changed: Arc<AtomicBool>,
    /// Whether to hold a `subscriptions/listen` stream to a 2026-07-28 upstream.
    listen: bool,
    /// That stream, once the upstream acknowledged it.
    subscription: Arc<Mutex<Option<Subscription>>>,
    /// What it declared at its last connection (`None` before the first).
    capabilities: Mutex<Option<ServerCapabilities>>,
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance").field("label", &self.label).finish_non_exhaustive()
    }
}

struct Connection {
    service: RunningService<RoleClient, Handler>,
}

#[derive(Debug, Default)]
struct Backoff {
    /// Failed connections (or connections that ended young) in a row.
    failures: u32,
    next_attempt: Option<Instant>,
    /// When the current (or last) connection was made.
    connected_at: Option<Instant>,
}

/// Receives what the upstream sends on its own: progress and list-changed notifications.
#[derive(Clone)]
struct Handler {
    progress: ProgressDispatcher,
    list_changed: Arc<AtomicBool>,
    /// The legacy revision the file pins, asked for in `initialize`.
    protocol: Option<ProtocolVersion>,
}

impl ClientHandler for Handler {
    fn get_info(&self) -> ClientConfig {
        let mut info = ClientConfig::default();
        if let Some(pinned) = &self.protocol {
            info.protocol_version = pinned.clone();
        }
        info.capabilities = ClientCapabilities::default();
        info.client_info = Implementation::new("mcp-gateway", env!("CARGO_PKG_VERSION"));
        info
    }

    async fn on_progress(&self, params: ProgressNotificationParam, _context: NotificationContext<RoleClient>) {
        self.progress.handle_notification(params).await;
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.list_changed.store(true, Ordering::Relaxed);
    }

    async fn on_resource_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.list_changed.store(true, Ordering::Relaxed);
    }

    async fn on_prompt_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.list_changed.store(true, Ordering::Relaxed);
    }
}

/// Where one call stands: its cancellation, progress and deadline.
#[derive(Debug, Clone)]
pub struct CallOptions {
    /// Fires when the client cancels (or goes away).
    pub cancel: CancellationToken,
    /// Where the upstream's progress goes.
    pub progress: Progress,
    /// How long the call may take.
    pub timeout: Duration,
    /// Who asked (what `strategy = "hash"` keys on).
    pub caller: Caller,
    /// The gateway's span of the request, sent as `_meta.traceparent` (W3C Trace Context).
    pub trace: Option<mcp_wire::trace::TraceContext>,
}

impl Instance {
    /// An instance of `upstream` that connects on first use; with `listen`, a 2026-07-28 server
    /// that announces list changes is asked for them on a `subscriptions/listen` stream.
    pub fn new(upstream: &UpstreamConfig, config: InstanceConfig, listen: bool) -> Self {
        Self {
            label: Self::label(upstream, &config),
            config,
            list_timeout: upstream.list_timeout,
            connection: tokio::sync::Mutex::new(None),
            status: Mutex::new(Status { state: "unknown".into(), ..Status::default() }),
            backoff: Mutex::new(Backoff::default()),
            progress: ProgressDispatcher::new(),
            list_changed: Arc::new(AtomicBool::new(false)),
            listen,
            subscription: Arc::new(Mutex::new(None)),
            capabilities: Mutex::new(None),
        }
    }

    /// What errors and log lines call `instance` of `upstream`: the upstream's name for its only,
    /// unnamed instance (a plain `url` or `command`), `<upstream>/<id>` otherwise.
    pub fn label(upstream: &UpstreamConfig, instance: &InstanceConfig) -> String {
        if upstream.instances.len() == 1 && instance.id == DEFAULT_INSTANCE {
            upstream.name.clone()
        } else {
            format!("{}/{}", upstream.name, instance.id)
        }
    }

    /// What errors and log lines call it (see [`Instance::label`]).
    pub fn name(&self) -> &str {
        &self.label
    }

    /// What `gateway_status` says about it.
    pub fn status(&self) -> Status {
        self.status.lock().map(|status| status.clone()).unwrap_or_default()
    }

    /// Whether it said its tools, resources or prompts changed since the last call (and clears
    /// that).
    ///
    /// The `subscriptions/listen` stream is read here, not by a task of its own: its notifications
    /// are queued in the order they arrived, so a change announced before the answer to a call
    /// is seen by the list that follows that answer.
    pub fn take_list_changed(&self) -> bool {
        let mut changed = self.list_changed.swap(false, Ordering::Relaxed);
        let Ok(mut slot) = self.subscription.lock() else { return changed };
        let Some(subscription) = slot.as_mut() else { return changed };
        loop {
            match subscription.next().now_or_never() {
                None => break,
                Some(Ok(Some(notification))) => {
                    changed |= matches!(
                        notification,
                        ServerNotification::ToolListChangedNotification(_)
                            | ServerNotification::PromptListChangedNotification(_)
                            | ServerNotification::ResourceListChangedNotification(_)
                    );
                }
                // Ended: the connection closed (the next one listens again), or the buffer
                // filled. Either way changes may have been missed, so the catalogue is refreshed.
                Some(Ok(None) | Err(_)) => {
                    tracing::debug!(upstream = %self.label, end = ?subscription.end(), "the subscriptions/listen stream ended");
                    *slot = None;
                    changed = true;
                    break;
                }
            }
        }
        if changed {
            tracing::info!(upstream = %self.label, "the upstream's list changed");
        }
        changed
    }

    /// One active health check: `ping` on its connection (any answer counts, a JSON-RPC error
    /// too), or a `GET` of `path` on its host answered with a 2xx; connecting included, within
    /// `limit`.
    pub async fn probe(&self, kind: &ProbeKind, limit: Duration) -> Result<(), String> {
        let checked = tokio::time::timeout(limit, async {
            match kind {
                ProbeKind::Mcp => {
                    let peer = self.peer().await.map_err(|error| error.to_string())?;
                    // A 2026-07-28 server has no `ping` and answers "method not found": an answer
                    // all the same, from a server that is up and reading its requests.
                    match peer.send_request(ClientRequest::PingRequest(PingRequest::default())).await {
                        Ok(_) | Err(ServiceError::McpError(_)) => Ok(()),
                        Err(error) => Err(self.redact(crate::storage::error_chain(&error))),
                    }
                }
                ProbeKind::Http(path) => {
                    let Transport::Http(http) = &self.config.transport else {
                        return Err("an HTTP check needs an http instance".to_owned());
                    };
                    let url = health_url(&http.url, path).ok_or_else(|| format!("cannot make a URL of `{path}`"))?;
                    let client = probe_client().ok_or("cannot create an HTTP client")?;
                    let answer = client.get(&url).send().await.map_err(|error| self.redact(error.to_string()))?;
                    if answer.status().is_success() {
                        Ok(())
                    } else {
                        Err(format!("GET {path} answered {}", answer.status()))
                    }
                }
            }
        })
        .await;
        checked.unwrap_or_else(|_| Err(format!("no answer within {} s", limit.as_secs_f64())))
    }

    /// What it declared at its last connection; `None` before the first.
    pub fn capabilities(&self) -> Option<ServerCapabilities> {
        self.capabilities.lock().ok().and_then(|capabilities| capabilities.clone())
    }

    /// Whether its tools, prompts or resources may change while it runs (it declared
    /// `listChanged`), as of its last connection.
    pub fn announces_changes(&self) -> bool {
        self.capabilities().is_some_and(|capabilities| announces_list_changes(&capabilities))
    }

    fn update(&self, change: impl FnOnce(&mut Status)) {
        if let Ok(mut status) = self.status.lock() {
            change(&mut status);
        }
    }

    /// Everything it offers (every page of each list); connecting included, this takes at most
    /// `limit`.
    pub async fn list_all(&self, limit: Duration) -> Result<Offer, UpstreamError> {
        let started = Instant::now();
        let listed = tokio::time::timeout(limit, async {
            // A list has no effect upstream, so one that fails (a 5xx, a dropped connection) is
            // sent once more, on a new connection if the old one closed.
            match self.offer().await {
                Err(Listing::Service(error)) if !matches!(error, ServiceError::McpError(_)) => {
                    tracing::debug!(upstream = %self.label, %error, "listing again");
                    self.offer().await
                }
                other => other,
            }
        })
        .await;
        let offer = match listed {
            Ok(Ok(offer)) => offer,
            Ok(Err(Listing::Upstream(error))) => return Err(error),
            Ok(Err(Listing::Service(error))) => return Err(self.failed(error).await),
            Err(_) => {
                let error = UpstreamError::Timeout { upstream: self.name().to_owned(), limit };
                // Ran out of time while connecting (the handshake was dropped with the list): back
                // off like a failed connection, so the next lists fail at once instead of waiting
                // the whole list timeout again.
                let connected = self.connection.try_lock().map_or(true, |connection| {
                    connection.as_ref().is_some_and(|connected| !connected.service.is_transport_closed())
                });
                let wait = (!connected).then(|| self.back_off());
                self.update(|status| {
                    status.last_error = Some(error.to_string());
                    if let Some(wait) = wait {
                        status.state = "down".into();
                        status.last_error =
                            Some(format!("{error} while connecting; next attempt in {:.1} s", wait.as_secs_f64()));
                    }
                });
                return Err(error);
            }
        };
        let count = offer.tools.len();
        self.update(|status| {
            status.state = "up".into();
            status.tools = count;
            status.latency_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
        });
        Ok(offer)
    }

    /// One attempt at everything the upstream offers (what its capabilities declare), every list
    /// bounded by [`MAX_PAGES`] pages and [`MAX_ITEMS`] items.
    async fn offer(&self) -> Result<Offer, Listing> {
        let peer = self.peer().await?;
        let capabilities = peer.peer_info().map(|info| info.capabilities.clone()).unwrap_or_default();
        let mut offer = Offer::default();
        let mut ttls = Vec::new();
        if capabilities.tools.is_some() {
            offer.tools = self
                .pages("tools", &mut ttls, |page| async {
                    peer.list_tools(page).await.map(|list| (list.tools, list.next_cursor, list.ttl_ms))
                })
                .await?;
        }
        if capabilities.resources.is_some() {
            offer.resources = self
                .pages("resources", &mut ttls, |page| async {
                    peer.list_resources(page).await.map(|list| (list.resources, list.next_cursor, list.ttl_ms))
                })
                .await?;
            offer.templates = self
                .pages("resource templates", &mut ttls, |page| async {
                    peer.list_resource_templates(page)
                        .await
                        .map(|list| (list.resource_templates, list.next_cursor, list.ttl_ms))
                })
                .await?;
        }
        if capabilities.prompts.is_some() {
            offer.prompts = self
                .pages("prompts", &mut ttls, |page| async {
                    peer.list_prompts(page).await.map(|list| (list.prompts, list.next_cursor, list.ttl_ms))
                })
                .await?;
        }
        offer.fresh_for = ttls.into_iter().min().map(Duration::from_millis);
        Ok(offer)
    }

    /// Every page of one list (`page` asks for one, and gives its items, the next cursor and its
    /// `ttlMs`, which goes to `ttls` when positive), refused past [`MAX_PAGES`] pages or [`MAX_ITEMS`] items: an
    /// upstream that never stops paging cannot fill the gateway's memory.
    async fn pages<T, F, Fut>(&self, what: &str, ttls: &mut Vec<u64>, mut page: F) -> Result<Vec<T>, Listing>
    where
        F: FnMut(Option<PaginatedRequestParams>) -> Fut,
        Fut: std::future::Future<Output = Result<(Vec<T>, Option<String>, Option<u64>), ServiceError>>,
    {
        let mut items = Vec::new();
        let mut cursor = None;
        for _ in 0..MAX_PAGES {
            let params = cursor.take().map(|cursor| PaginatedRequestParams::default().with_cursor(Some(cursor)));
            let (mut batch, next, ttl) = page(params).await.map_err(Listing::Service)?;
            // 0 (or none) promises nothing: the catalogue's own TTL holds for such lists.
            ttls.extend(ttl.filter(|ttl| *ttl > 0));
            if items.len() + batch.len() > MAX_ITEMS {
                return Err(Listing::Upstream(self.too_large(format!("offers more than {MAX_ITEMS} {what}"))));
            }
            items.append(&mut batch);
            match next {
                Some(next) => cursor = Some(next),
                None => return Ok(items),
            }
        }
        Err(Listing::Upstream(self.too_large(format!("lists {what} in more than {MAX_PAGES} pages"))))
    }

    fn too_large(&self, reason: String) -> UpstreamError {
        let reason = format!("{reason}; it is left out");
        self.update(|status| status.last_error = Some(reason.clone()));
        UpstreamError::Transport { upstream: self.name().to_owned(), reason }
    }

    /// Calls its tool.
    pub async fn call_tool(
        &self,
        params: CallToolRequestParams,
        options: CallOptions,
    ) -> Result<CallToolResponse, UpstreamError> {
        match self.request(ClientRequest::CallToolRequest(rmcp::model::Request::new(params)), options).await? {
            // Servers before 2026-07-28 send no `resultType`; for our modern clients it is required.
            ServerResult::CallToolResult(mut result) => {
                result.result_type.get_or_insert(ResultType::COMPLETE);
                Ok(CallToolResponse::Complete(result))
            }
            ServerResult::InputRequiredResult(result) => Ok(CallToolResponse::InputRequired(result)),
            ServerResult::CreateTaskResult(result) => Ok(CallToolResponse::Task(result)),
            other => Err(self.unexpected("tools/call", &other)),
        }
    }

    /// Reads its resource `uri` (its own URI).
    pub async fn read_resource(&self, uri: String, options: CallOptions) -> Result<ReadResourceResult, UpstreamError> {
        let params = ReadResourceRequestParams::new(uri);
        match self.request(ClientRequest::ReadResourceRequest(rmcp::model::Request::new(params)), options).await? {
            ServerResult::ReadResourceResult(mut result) => {
                result.result_type.get_or_insert(ResultType::COMPLETE);
                Ok(result)
            }
            other => Err(self.unexpected("resources/read", &other)),
        }
    }

    /// Gets its prompt `name`.
    pub async fn get_prompt(
        &self,
        params: GetPromptRequestParams,
        options: CallOptions,
    ) -> Result<GetPromptResult, UpstreamError> {
        match self.request(ClientRequest::GetPromptRequest(rmcp::model::Request::new(params)), options).await? {
            ServerResult::GetPromptResult(mut result) => {
                result.result_type.get_or_insert(ResultType::COMPLETE);
                Ok(result)
            }
            other => Err(self.unexpected("prompts/get", &other)),
        }
    }

    fn unexpected(&self, method: &str, answer: &ServerResult) -> UpstreamError {
        let shown: String = format!("{answer:?}").chars().take(200).collect();
        UpstreamError::Transport { upstream: self.name().to_owned(), reason: format!("answered {method} with {shown}") }
    }

    /// Sends one request; progress goes to `options.progress`, and a cancellation or time-out
    /// is sent to the upstream as `notifications/cancelled` with its own request id.
    async fn request(&self, mut request: ClientRequest, options: CallOptions) -> Result<ServerResult, UpstreamError> {
        use rmcp::model::GetMeta as _;
        let started = Instant::now();
        if let Some(trace) = options.trace {
            request.get_meta_mut().0.insert("traceparent".to_owned(), serde_json::Value::String(trace.to_string()));
        }
        let peer = tokio::time::timeout(options.timeout, self.peer())
            .await
            .map_err(|_| UpstreamError::Timeout { upstream: self.name().to_owned(), limit: options.timeout })??;
        let handle = peer
            .send_request_with_option(request, PeerRequestOptions::default())
            .await
            .map_err(|error| self.transport_error(&error))?;
        let id = handle.id.clone();
        let mut progress = self.progress.subscribe(handle.progress_token.clone()).await;
        let mut answer = handle.rx;
        let deadline = tokio::time::sleep(options.timeout.saturating_sub(started.elapsed()));
        tokio::pin!(deadline);
        let mut forwarded = ForwardedProgress::default();
        let outcome = loop {
            tokio::select! {
                biased;
                Some(update) = progress.next() => forwarded.pass_on(update, &options.progress).await,
                answer = &mut answer => break Ok(answer),
                () = options.cancel.cancelled() => break Err(UpstreamError::Cancelled { upstream: self.name().to_owned() }),
                () = &mut deadline => break Err(UpstreamError::Timeout { upstream: self.name().to_owned(), limit: options.timeout }),
            }
        };
        // rmcp hands each notification to a task of its own, while the answer comes straight:
        // the last updates may still be on their way. Let those tasks run, then pass on what came.
        if outcome.is_ok() && options.progress.is_enabled() {
            for _ in 0..PROGRESS_DRAIN_YIELDS {
                tokio::task::yield_now().await;
                while let Some(Some(update)) = progress.next().now_or_never() {
                    forwarded.pass_on(update, &options.progress).await;
                }
            }
        }
        match outcome {
            Ok(Ok(Ok(result))) => {
                self.update(|status| status.latency_ms = Some(started.elapsed().as_secs_f64() * 1000.0));
                Ok(result)
            }
            Ok(Ok(Err(error))) => Err(self.failed(error).await),
            Ok(Err(_)) => Err(self.failed(ServiceError::TransportClosed).await),
            Err(stopped) => {
                // The upstream is told, with its own request id, and nothing waits for its answer.
                let reason = stopped.to_string();
                let request_id = serde_json::to_value(&id).map(|id| id.to_string()).unwrap_or_default();
                tracing::info!(
                    target: "mcp_gateway::upstream",
                    upstream = %self.label,
                    upstream_request_id = %request_id,
                    %reason,
                    "sent notifications/cancelled to the upstream"
                );
                // Sent in the background: a hung upstream (a full stdin pipe, a slow POST) must not
                // hold the caller's answer past its deadline.
                tokio::spawn(async move {
                    let cancelled = peer.notify_cancelled(CancelledNotificationParam::new(Some(id), Some(reason)));
                    let _ = tokio::time::timeout(CANCEL_SEND_LIMIT, cancelled).await;
                });
                Err(stopped)
            }
        }
    }

    /// The connected peer, connecting (or reconnecting) first when needed; fails fast while the
    /// upstream is in back-off.
    async fn peer(&self) -> Result<Peer<RoleClient>, UpstreamError> {
        let mut connection = self.connection.lock().await;
        if let Some(connected) = connection.as_ref() {
            if !connected.service.is_transport_closed() {
                if let Ok(mut backoff) = self.backoff.lock()
                    && backoff.failures > 0
                    && backoff.connected_at.is_some_and(|at| at.elapsed() >= STABLE_UPTIME)
                {
                    backoff.failures = 0; // up long enough: past trouble is forgiven
                }
                return Ok(connected.service.peer().clone());
            }
            // It ended (a stdio command exited, the transport closed). It is started again now,
            // unless it ended young once more: a crash loop backs off like a failed connection.
            *connection = None;
            let again = self.backoff.lock().is_ok_and(|mut backoff| {
                let young = backoff.connected_at.is_some_and(|at| at.elapsed() < STABLE_UPTIME);
                let again = young && backoff.failures > 0;
                if young && !again {
                    backoff.failures = 1;
                }
                again
            });
            if again {
                let wait = self.back_off();
                let reason = format!(
                    "it stopped within {} s of starting, again; next attempt in {:.1} s",
                    STABLE_UPTIME.as_secs(),
                    wait.as_secs_f64()
                );
                self.update(|status| {
                    status.state = "down".into();
                    status.last_error = Some(reason.clone());
                });
                return Err(UpstreamError::Down { upstream: self.name().to_owned(), reason });
            }
        }
        if let Some(wait) = self.backoff.lock().ok().and_then(|backoff| backoff.next_attempt) {
            let now = Instant::now();
            if wait > now {
                let reason = self.status().last_error.unwrap_or_else(|| "not reachable".into());
                let seconds = (wait - now).as_secs_f64();
                return Err(UpstreamError::Down {
                    upstream: self.name().to_owned(),
                    reason: format!("{reason}; next attempt in {seconds:.1} s"),
                });
            }
        }
        match self.connect().await {
            Ok(service) => {
                let protocol = service.peer_info().map(|info| info.protocol_version.to_string());
                if let (Ok(mut capabilities), Some(info)) = (self.capabilities.lock(), service.peer_info()) {
                    *capabilities = Some(info.capabilities.clone());
                }
                let peer = service.peer().clone();
                *connection = Some(Connection { service });
                if self.listen {
                    self.listen_for_list_changes(peer.clone());
                }
                // The failure count stays until the connection has lasted (see above).
                if let Ok(mut backoff) = self.backoff.lock() {
                    backoff.next_attempt = None;
                    backoff.connected_at = Some(Instant::now());
                }
                self.update(|status| {
                    status.state = "up".into();
                    status.protocol = protocol;
                    status.connections += 1;
                });
                Ok(peer)
            }
            Err(reason) => {
                *connection = None;
                let wait = self.back_off();
                self.update(|status| {
                    status.state = "down".into();
                    status.last_error = Some(reason.clone());
                });
                Err(UpstreamError::Down {
                    upstream: self.name().to_owned(),
                    reason: format!("{reason}; next attempt in {:.1} s", wait.as_secs_f64()),
                })
            }
        }
    }

    /// Before 2026-07-28, list changes arrive on their own (`Handler`); a 2026-07-28 upstream
    /// sends them only on a `subscriptions/listen` stream. This opens one for the kinds it
    /// announces, held until the connection ends; the next connection opens a new one.
    fn listen_for_list_changes(&self, peer: Peer<RoleClient>) {
        let Some(info) = peer.peer_info() else { return };
        if info.protocol_version.as_str() < "2026-07-28" {
            return;
        }
        let announces = |list_changed: Option<bool>| list_changed == Some(true);
        let capabilities = &info.capabilities;
        let mut filter = SubscriptionFilter::builder();
        let mut any = false;
        if capabilities.tools.as_ref().is_some_and(|tools| announces(tools.list_changed)) {
            (filter, any) = (filter.tools_list_changed(), true);
        }
        if capabilities.prompts.as_ref().is_some_and(|prompts| announces(prompts.list_changed)) {
            (filter, any) = (filter.prompts_list_changed(), true);
        }
        if capabilities.resources.as_ref().is_some_and(|resources| announces(resources.list_changed)) {
            (filter, any) = (filter.resources_list_changed(), true);
        }
        if !any {
            return;
        }
        let (name, slot) = (self.label.clone(), self.subscription.clone());
        tokio::spawn(async move {
            match peer.listen_with_capacity(filter.build(), SUBSCRIPTION_BUFFER).await {
                Ok(subscription) => {
                    tracing::debug!(upstream = %name, "listening for list changes");
                    if let Ok(mut slot) = slot.lock() {
                        *slot = Some(subscription);
                    }
                }
                Err(error) => tracing::warn!(
                    upstream = %name, %error,
                    "no subscriptions/listen stream: its list changes are seen when the catalogue's TTL runs out"
                ),
            }
        });
    }

    /// Doubles the wait before the next attempt (1 s, 2 s, … 30 s).
    fn back_off(&self) -> Duration {
        let Ok(mut backoff) = self.backoff.lock() else { return MAX_BACKOFF };
        backoff.failures = backoff.failures.saturating_add(1);
        let wait = Duration::from_secs(1u64 << backoff.failures.min(5).saturating_sub(1)).min(MAX_BACKOFF);
        backoff.next_attempt = Some(Instant::now() + wait);
        wait
    }

    async fn connect(&self) -> Result<RunningService<RoleClient, Handler>, String> {
        let protocol = match &self.config.transport {
            Transport::Http(http) => pinned_revision(&http.protocol),
            Transport::Stdio(_) => None,
        };
        let handler = Handler { progress: self.progress.clone(), list_changed: self.list_changed.clone(), protocol };
        let connected = match &self.config.transport {
            Transport::Http(http) => {
                let lifecycle = lifecycle(&http.protocol);
                let transport = http_transport(http).await?;
                tokio::time::timeout(
                    self.list_timeout.max(Duration::from_secs(10)),
                    handler.serve_with_lifecycle(transport, lifecycle),
                )
                .await
            }
            Transport::Stdio(stdio) => {
                let transport = stdio_transport(&self.label, stdio)?;
                let lifecycle = lifecycle(&Protocol::Auto);
                tokio::time::timeout(
                    self.list_timeout.max(Duration::from_secs(10)),
                    handler.serve_with_lifecycle(transport, lifecycle),
                )
                .await
            }
        };
        match connected {
            Ok(Ok(service)) => {
                tracing::info!(upstream = %self.label, "connected to the upstream");
                Ok(service)
            }
            Ok(Err(error)) => Err(self.redact(crate::storage::error_chain(&error))),
            Err(_) => Err("no answer to the handshake in time".to_owned()),
        }
    }

    /// `text` (an error from the transport) without the query or fragment of the upstream's URL,
    /// which may hold a key: reqwest's errors name the URL, and error texts reach clients
    /// (`gateway_status`, `isError` results) and the logs.
    fn redact(&self, text: String) -> String {
        let Transport::Http(http) = &self.config.transport else { return text };
        redact_url(&text, &http.url)
    }

    /// Records a failed request. The connection stays: one failed request (a 503, say) does not
    /// end a session, and a transport that did close is connected again by the next call.
    async fn failed(&self, error: ServiceError) -> UpstreamError {
        match error {
            ServiceError::McpError(error) => UpstreamError::Rpc(error),
            ServiceError::Timeout { timeout } => {
                UpstreamError::Timeout { upstream: self.name().to_owned(), limit: timeout }
            }
            other => {
                let reason = self.redact(crate::storage::error_chain(&other));
                self.update(|status| status.last_error = Some(reason.clone()));
                UpstreamError::Transport { upstream: self.name().to_owned(), reason }
            }
        }
    }

    fn transport_error(&self, error: &ServiceError) -> UpstreamError {
        UpstreamError::Transport {
            upstream: self.name().to_owned(),
            reason: self.redact(crate::storage::error_chain(error)),
        }
    }
}

/// The URL of `path` on the host of the instance URL `url`.
fn health_url(url: &str, path: &str) -> Option<String> {
    let uri: http::Uri = url.parse().ok()?;
    Some(format!("{}://{}{path}", uri.scheme_str()?, uri.authority()?))
}

/// The HTTP client of active health checks (`GET` only, no credentials; each check is bounded by
/// its own limit, and by [`PROBE_CLIENT_TIMEOUT`] whatever that is).
fn probe_client() -> Option<&'static reqwest::Client> {
    static CLIENT: std::sync::OnceLock<Option<reqwest::Client>> = std::sync::OnceLock::new();
    CLIENT.get_or_init(|| crate::outbound::client(PROBE_CLIENT_TIMEOUT).ok()).as_ref()
}

/// The longest a health check's request may take.
const PROBE_CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// `text` with the query and fragment of every occurrence of `url` replaced by `?…`.
fn redact_url(text: &str, url: &str) -> String {
    let base = url.split(['?', '#']).next().unwrap_or_default();
    if base.is_empty() || base.len() == url.len() {
        return text.to_owned();
    }
    let (mut redacted, mut rest) = (String::with_capacity(text.len()), text);
    while let Some(at) = rest.find(base) {
        redacted.push_str(&rest[..at + base.len()]);
        rest = &rest[at + base.len()..];
        if rest.starts_with(['?', '#']) {
            let end = rest.find(|c: char| c.is_whitespace() || c == ')').unwrap_or(rest.len());
            redacted.push_str("?…");
            rest = &rest[end..];
        }
    }
    redacted.push_str(rest);
    redacted
}

/// The progress of one call passed on to the client: in order, since progress only grows (the
/// spec says so) and rmcp may hand two updates over out of order, an update at or below the
/// last is stale and dropped.
#[derive(Debug)]
struct ForwardedProgress {
    last: f64,
}

impl Default for ForwardedProgress {
    fn default() -> Self {
        Self { last: f64::NEG_INFINITY }
    }
}

impl ForwardedProgress {
    async fn pass_on(&mut self, update: ProgressNotificationParam, to: &Progress) {
        if update.progress > self.last {
            self.last = update.progress;
            let report = to.report(update.progress, update.total, update.message.unwrap_or_default());
            // A client that reads slowly loses an update rather than holding the call.
            let _ = tokio::time::timeout(PROGRESS_SEND_LIMIT, report).await;
        }
    }
}

/// Whether `capabilities` declare `listChanged` for tools, prompts or resources.
fn announces_list_changes(capabilities: &ServerCapabilities) -> bool {
    let declared = |list_changed: Option<bool>| list_changed == Some(true);
    capabilities.tools.as_ref().is_some_and(|tools| declared(tools.list_changed))
        || capabilities.prompts.as_ref().is_some_and(|prompts| declared(prompts.list_changed))
        || capabilities.resources.as_ref().is_some_and(|resources| declared(resources.list_changed))
}

/// The revision `initialize` asks for when the file pins a legacy one.
fn pinned_revision(protocol: &Protocol) -> Option<ProtocolVersion> {
    let Protocol::Version(version) = protocol else { return None };
    [
        ProtocolVersion::V_2024_11_05,
        ProtocolVersion::V_2025_03_26,
        ProtocolVersion::V_2025_06_18,
        ProtocolVersion::V_2025_11_25,
    ]
    .into_iter()
    .find(|known| known.as_str() == version)
}

fn lifecycle(protocol: &Protocol) -> ClientLifecycleMode {
    match protocol {
        Protocol::Auto => ClientLifecycleMode::Auto {
            preferred_versions: vec![ProtocolVersion::LATEST],
            legacy_version: Some(ProtocolVersion::V_2025_11_25),
        },
        Protocol::Version(version) if version.as_str() >= "2026-07-28" => {
            ClientLifecycleMode::Discover { preferred_versions: vec![ProtocolVersion::LATEST] }
        }
        Protocol::Version(_) => ClientLifecycleMode::Initialize,
    }
}

async fn http_transport(
    http: &HttpConfig,
) -> Result<rmcp::transport::StreamableHttpClientTransport<SigV4Client>, String> {
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
    let mut config = StreamableHttpClientTransportConfig::with_uri(http.url.clone());
    config.max_concurrent_requests = 64;
    for (name, value) in &http.headers {
        config.custom_headers.insert(name.clone(), value.clone());
    }
    let client = match &http.auth {
        Auth::None => SigV4Client::plain(),
        Auth::Bearer { token_env } => {
            config.auth_header = Some(env_value(token_env)?);
            SigV4Client::plain()
        }
        Auth::Header { header, value_env } => {
            let value = http::HeaderValue::try_from(env_value(value_env)?)
                .map_err(|_| format!("the value of {value_env} is not a valid header value"))?;
            config.custom_headers.insert(header.clone(), value);
            SigV4Client::plain()
        }
        Auth::SigV4 { service, region, role_arn } => {
            SigV4Client::signing(&http.url, service.as_deref(), region.as_deref(), role_arn.as_deref())
                .await
                .map_err(|error| error.to_string())?
        }
    };
    Ok(rmcp::transport::StreamableHttpClientTransport::with_client(client, config))
}

/// Starts the command with a minimal environment ([`STDIO_ENV`], the variables the file lets it
/// inherit, and the ones it sets: never the gateway's credentials or other upstreams' secrets);
/// each line it writes to stderr becomes a log line of ours (our stderr carries JSON only).
fn stdio_transport(name: &str, stdio: &StdioConfig) -> Result<rmcp::transport::TokioChildProcess, String> {
    let mut command = tokio::process::Command::new(&stdio.command);
    command.args(&stdio.args).env_clear().kill_on_drop(true);
    for variable in STDIO_ENV.iter().copied().chain(stdio.inherit_env.iter().map(String::as_str)) {
        if let Some(value) = std::env::var_os(variable) {
            command.env(variable, value);
        }
    }
    command.envs(&stdio.env);
    if let Some(cwd) = &stdio.cwd {
        command.current_dir(cwd);
    }
    let (transport, stderr) = rmcp::transport::TokioChildProcess::builder(command)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|error| format!("cannot start `{}`: {error}", stdio.command))?;
    if let Some(stderr) = stderr {
        let name = name.to_owned();
        tokio::spawn(async move {
            let mut lines = mcp_wire::line::LineReader::new(tokio::io::BufReader::new(stderr), STDERR_LINE_BYTES);
            loop {
                match lines.next_line().await {
                    Ok(Some(mcp_wire::line::Line::Complete(line))) => {
                        let line = String::from_utf8_lossy(&line);
                        tracing::info!(target: "mcp_gateway::upstream", upstream = %name, stderr = %line.trim_end());
                    }
                    Ok(Some(mcp_wire::line::Line::TooLong { .. })) => {
                        tracing::info!(target: "mcp_gateway::upstream", upstream = %name, stderr_line_bytes_over = STDERR_LINE_BYTES);
                    }
                    Ok(None) | Err(_) => break,
                }
            }
        });
    }
    Ok(transport)
}

fn env_value(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("the environment variable {name} is not set"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream() -> Instance {
        let file = "[[upstream]]\nname = \"big\"\ntransport = \"http\"\nurl = \"http://127.0.0.1:9/mcp\"\n";
        let config = super::super::config::parse("test.toml", file).map(|mut config| config.upstreams.remove(0));
        let config = config.unwrap_or_else(|error| panic!("{error}"));
        Instance::new(&config, config.instances[0].clone(), false)
    }

    #[tokio::test]
    async fn an_upstream_that_pages_forever_is_refused_after_max_pages() {
        let upstream = upstream();
        let mut asked = 0;
        let listed = upstream
            .pages("tools", &mut Vec::new(), |_| {
                asked += 1;
                async { Ok((vec![1u8], Some("more".to_owned()), None)) }
            })
            .await;
        assert!(
            matches!(listed, Err(Listing::Upstream(UpstreamError::Transport { ref reason, .. })) if reason.contains("100 pages"))
        );
        assert_eq!(asked, MAX_PAGES);
    }

    #[tokio::test]
    async fn an_upstream_that_offers_too_many_items_is_refused() {
        let upstream = upstream();
        let listed = upstream
            .pages("tools", &mut Vec::new(), |_| async {
                Ok((vec![0u8; MAX_ITEMS / 2 + 1], Some("more".to_owned()), None))
            })
            .await;
        assert!(
            matches!(listed, Err(Listing::Upstream(UpstreamError::Transport { ref reason, .. })) if reason.contains("more than 10000 tools"))
        );
        let mut ttls = Vec::new();
        let pages = upstream
            .pages("tools", &mut ttls, |page| async move {
                let ttl = if page.is_some() { Some(500) } else { Some(0) };
                Ok((vec![0u8; 3], page.map_or(Some("2".to_owned()), |_| None), ttl))
            })
            .await;
        assert!(matches!(pages, Ok(ref items) if items.len() == 6));
        assert_eq!(ttls, [500], "a page's positive ttlMs is kept, 0 promises nothing");
    }

    #[test]
    fn the_query_of_an_upstream_url_is_cut_from_error_texts() {
        let url = "http://127.0.0.1:9/mcp?api_key=SECRET";
        let text = "error sending request for url (http://127.0.0.1:9/mcp?api_key=SECRET): connection refused";
        assert_eq!(
            redact_url(text, url),
            "error sending request for url (http://127.0.0.1:9/mcp?…): connection refused"
        );
        assert_eq!(redact_url("no url here", url), "no url here");
        assert_eq!(redact_url(text, "http://127.0.0.1:9/mcp"), text, "nothing to cut without a query");
    }
}

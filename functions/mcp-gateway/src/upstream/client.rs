//! One upstream MCP server, as an rmcp client: connected on first use, connected again when its
//! transport closes (a stdio command is restarted, with back-off), with each call's progress and
//! cancellation carried across.
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
        ClientRequest, GetPromptRequestParams, GetPromptResult, Implementation, ProgressNotificationParam, Prompt,
        ProtocolVersion, ReadResourceRequestParams, ReadResourceResult, Resource, ResourceTemplate, ResultType,
        ServerCapabilities, ServerNotification, ServerResult, SubscriptionFilter, Tool,
    },
    service::{
        ClientLifecycleMode, ClientServiceExt as _, NotificationContext, Peer, PeerRequestOptions, RunningService,
        Subscription,
    },
};
use tokio_util::sync::CancellationToken;

use super::{
    config::{Auth, HttpConfig, Protocol, StdioConfig, Transport, UpstreamConfig},
    sigv4::SigV4Client,
};
use crate::progress::Progress;

/// List-change notifications buffered on a `subscriptions/listen` stream between two lists; one
/// more ends the stream (and the next list refreshes the catalogue anyway).
const SUBSCRIPTION_BUFFER: std::num::NonZeroUsize = std::num::NonZeroUsize::new(256).unwrap();

/// The longest wait between two attempts to reach an upstream that is down.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Why a call to an upstream failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    /// The upstream could not be reached (or started); `retry_in` until the next attempt.
    #[error("upstream `{upstream}` is down: {reason}")]
    Down { upstream: String, reason: String },
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

/// Everything an upstream offers.
#[derive(Debug, Clone, Default)]
pub struct Offer {
    /// Its tools (after allow/deny).
    pub tools: Vec<Tool>,
    /// Its resources.
    pub resources: Vec<Resource>,
    /// Its resource templates.
    pub templates: Vec<ResourceTemplate>,
    /// Its prompts.
    pub prompts: Vec<Prompt>,
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

/// One upstream server.
pub struct Upstream {
    /// Its configuration.
    pub config: UpstreamConfig,
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
    /// Whether it said (at its last connection) that its lists may change while it runs.
    announces_changes: AtomicBool,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream").field("name", &self.config.name).finish_non_exhaustive()
    }
}

struct Connection {
    service: RunningService<RoleClient, Handler>,
}

#[derive(Debug, Default)]
struct Backoff {
    failures: u32,
    next_attempt: Option<Instant>,
}

/// Receives what the upstream sends on its own: progress and list-changed notifications.
#[derive(Clone)]
struct Handler {
    progress: ProgressDispatcher,
    list_changed: Arc<AtomicBool>,
}

impl ClientHandler for Handler {
    fn get_info(&self) -> ClientConfig {
        let mut info = ClientConfig::default();
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
}

impl Upstream {
    /// An upstream that connects on first use; with `listen`, a 2026-07-28 upstream that
    /// announces list changes is asked for them on a `subscriptions/listen` stream.
    pub fn new(config: UpstreamConfig, listen: bool) -> Self {
        Self {
            config,
            connection: tokio::sync::Mutex::new(None),
            status: Mutex::new(Status { state: "unknown".into(), ..Status::default() }),
            backoff: Mutex::new(Backoff::default()),
            progress: ProgressDispatcher::new(),
            list_changed: Arc::new(AtomicBool::new(false)),
            listen,
            subscription: Arc::new(Mutex::new(None)),
            announces_changes: AtomicBool::new(false),
        }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.config.name
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
                    tracing::debug!(upstream = %self.config.name, end = ?subscription.end(), "the subscriptions/listen stream ended");
                    *slot = None;
                    changed = true;
                    break;
                }
            }
        }
        if changed {
            tracing::info!(upstream = %self.config.name, "the upstream's list changed");
        }
        changed
    }

    /// Whether its tools, prompts or resources may change while it runs (it declared
    /// `listChanged`), as of its last connection.
    pub fn announces_changes(&self) -> bool {
        self.announces_changes.load(Ordering::Relaxed)
    }

    fn update(&self, change: impl FnOnce(&mut Status)) {
        if let Ok(mut status) = self.status.lock() {
            change(&mut status);
        }
    }

    /// Everything it offers (every page of each list), its tools after the file's allow and deny
    /// lists; connecting included, this takes at most the upstream's list timeout.
    pub async fn list_all(&self) -> Result<Offer, UpstreamError> {
        let started = Instant::now();
        let limit = self.config.list_timeout;
        let listed = tokio::time::timeout(limit, async {
            // A list has no effect upstream, so one that fails (a 5xx, a dropped connection) is
            // sent once more, on a new connection if the old one closed.
            match self.offer().await {
                Err(Listing::Service(error)) if !matches!(error, ServiceError::McpError(_)) => {
                    tracing::debug!(upstream = %self.config.name, %error, "listing again");
                    self.offer().await
                }
                other => other,
            }
        })
        .await;
        let mut offer = match listed {
            Ok(Ok(offer)) => offer,
            Ok(Err(Listing::Upstream(error))) => return Err(error),
            Ok(Err(Listing::Service(error))) => return Err(self.failed(error).await),
            Err(_) => {
                let error = UpstreamError::Timeout { upstream: self.name().to_owned(), limit };
                self.update(|status| status.last_error = Some(error.to_string()));
                return Err(error);
            }
        };
        offer.tools.retain(|tool| self.config.exposes(&tool.name));
        let count = offer.tools.len();
        self.update(|status| {
            status.state = "up".into();
            status.tools = count;
            status.latency_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
        });
        Ok(offer)
    }

    /// One attempt at everything the upstream offers.
    async fn offer(&self) -> Result<Offer, Listing> {
        let peer = self.peer().await?;
        let capabilities = peer.peer_info().map(|info| info.capabilities.clone()).unwrap_or_default();
        let mut offer = Offer { tools: peer.list_all_tools().await.map_err(Listing::Service)?, ..Offer::default() };
        if capabilities.resources.is_some() {
            offer.resources = peer.list_all_resources().await.map_err(Listing::Service)?;
            offer.templates = peer.list_all_resource_templates().await.map_err(Listing::Service)?;
        }
        if capabilities.prompts.is_some() {
            offer.prompts = peer.list_all_prompts().await.map_err(Listing::Service)?;
        }
        Ok(offer)
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
    async fn request(&self, request: ClientRequest, options: CallOptions) -> Result<ServerResult, UpstreamError> {
        let started = Instant::now();
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
        let outcome = loop {
            tokio::select! {
                answer = &mut answer => break Ok(answer),
                Some(update) = progress.next() => {
                    options.progress.report(update.progress, update.total, update.message.unwrap_or_default()).await;
                }
                () = options.cancel.cancelled() => break Err(UpstreamError::Cancelled { upstream: self.name().to_owned() }),
                () = &mut deadline => break Err(UpstreamError::Timeout { upstream: self.name().to_owned(), limit: options.timeout }),
            }
        };
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
                    upstream = %self.config.name,
                    upstream_request_id = %request_id,
                    %reason,
                    "sent notifications/cancelled to the upstream"
                );
                let _ = peer.notify_cancelled(CancelledNotificationParam::new(Some(id), Some(reason))).await;
                Err(stopped)
            }
        }
    }

    /// The connected peer, connecting (or reconnecting) first when needed; fails fast while the
    /// upstream is in back-off.
    async fn peer(&self) -> Result<Peer<RoleClient>, UpstreamError> {
        let mut connection = self.connection.lock().await;
        if let Some(connected) = connection.as_ref()
            && !connected.service.is_transport_closed()
        {
            return Ok(connected.service.peer().clone());
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
                let announces = service.peer_info().is_some_and(|info| announces_list_changes(&info.capabilities));
                self.announces_changes.store(announces, Ordering::Relaxed);
                let peer = service.peer().clone();
                *connection = Some(Connection { service });
                if self.listen {
                    self.listen_for_list_changes(peer.clone());
                }
                if let Ok(mut backoff) = self.backoff.lock() {
                    *backoff = Backoff::default();
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
        let (name, slot) = (self.config.name.clone(), self.subscription.clone());
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
        let handler = Handler { progress: self.progress.clone(), list_changed: self.list_changed.clone() };
        let connected = match &self.config.transport {
            Transport::Http(http) => {
                let lifecycle = lifecycle(&http.protocol);
                let transport = http_transport(http).await?;
                tokio::time::timeout(
                    self.config.list_timeout.max(Duration::from_secs(10)),
                    handler.serve_with_lifecycle(transport, lifecycle),
                )
                .await
            }
            Transport::Stdio(stdio) => {
                let transport = stdio_transport(&self.config.name, stdio)?;
                let lifecycle = lifecycle(&Protocol::Auto);
                tokio::time::timeout(
                    self.config.list_timeout.max(Duration::from_secs(10)),
                    handler.serve_with_lifecycle(transport, lifecycle),
                )
                .await
            }
        };
        match connected {
            Ok(Ok(service)) => {
                tracing::info!(upstream = %self.config.name, "connected to the upstream");
                Ok(service)
            }
            Ok(Err(error)) => Err(crate::storage::error_chain(&error)),
            Err(_) => Err("no answer to the handshake in time".to_owned()),
        }
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
                let reason = crate::storage::error_chain(&other);
                self.update(|status| status.last_error = Some(reason.clone()));
                UpstreamError::Transport { upstream: self.name().to_owned(), reason }
            }
        }
    }

    fn transport_error(&self, error: &ServiceError) -> UpstreamError {
        UpstreamError::Transport { upstream: self.name().to_owned(), reason: crate::storage::error_chain(error) }
    }
}

/// Whether `capabilities` declare `listChanged` for tools, prompts or resources.
fn announces_list_changes(capabilities: &ServerCapabilities) -> bool {
    let declared = |list_changed: Option<bool>| list_changed == Some(true);
    capabilities.tools.as_ref().is_some_and(|tools| declared(tools.list_changed))
        || capabilities.prompts.as_ref().is_some_and(|prompts| declared(prompts.list_changed))
        || capabilities.resources.as_ref().is_some_and(|resources| declared(resources.list_changed))
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

/// Starts the command; each line it writes to stderr becomes a log line of ours (our stderr
/// carries JSON only).
fn stdio_transport(name: &str, stdio: &StdioConfig) -> Result<rmcp::transport::TokioChildProcess, String> {
    use tokio::io::AsyncBufReadExt as _;
    let mut command = tokio::process::Command::new(&stdio.command);
    command.args(&stdio.args).envs(&stdio.env).kill_on_drop(true);
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
            let mut lines = tokio::io::BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let line: String = line.chars().take(2000).collect();
                tracing::info!(target: "mcp_gateway::upstream", upstream = %name, stderr = %line);
            }
        });
    }
    Ok(transport)
}

fn env_value(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("the environment variable {name} is not set"))
}

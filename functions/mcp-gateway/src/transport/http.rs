//! The HTTP transport: one axum [`Router`] for Lambda and `serve` alike.
//!
//! `/mcp` (and `/mcp/`, and both under an API Gateway stage prefix) is the Streamable HTTP MCP
//! endpoint, and `/mcp/{upstream}` the endpoint of one upstream alone; `/health` reports
//! liveness; with `[auth]` ([`auth`]), every other route needs credentials and
//! `/.well-known/oauth-protected-resource` tells MCP clients where to get a token; `/gateway/...` is the management API over the upstreams ([`manage`]), and
//! `/mcp/{upstream}/tools/list` etc. are REST routes to one upstream ([`rest`]); `/openapi.json`
//! and `/docs` describe them all ([`openapi`]). [`guard`] answers malformed and hostile requests itself
//! with the right HTTP status and JSON-RPC code; valid messages go to rmcp's stateless
//! Streamable HTTP service, which speaks every revision from 2024-11-05 to 2026-07-28.

mod auth;
mod guard;
mod headers;
pub mod manage;
pub mod openapi;
pub mod rest;
pub mod session;

use std::sync::Arc;

use axum::{Json, Router, extract::State, response::IntoResponse, routing::get};
use rmcp::{
    model::ProtocolVersion,
    transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::never::NeverSessionManager,
    },
};
use tokio_util::sync::CancellationToken;

use crate::server::{Core, Gateway};

pub use manage::Management;
pub use session::SessionKey;

/// The TCP peer of a request's connection, put in the request's extensions by `serve`.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub std::net::SocketAddr);

/// Which `Host` headers are accepted.
#[derive(Debug, Clone)]
pub enum AllowedHosts {
    /// Any host (behind API Gateway with IAM auth, where DNS rebinding does not apply).
    Any,
    /// Only these host names (port optional; `host:port` entries must match the port too).
    Only(Vec<String>),
}

impl AllowedHosts {
    /// The loopback names a local server accepts by default.
    pub fn loopback() -> Self {
        Self::Only(vec!["localhost".into(), "127.0.0.1".into(), "[::1]".into(), "::1".into()])
    }
}

/// HTTP-level settings shared by Lambda and `serve`.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Accepted `Host` headers.
    pub allowed_hosts: AllowedHosts,
    /// Browser origins accepted besides the request's own host (e.g. `https://app.example.com`).
    pub allowed_origins: Vec<String>,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// How long a client may take to send the body (slow senders get 408).
    pub body_read_timeout: std::time::Duration,
    /// Signs and verifies `Mcp-Session-Id` for the revisions that have sessions.
    pub session_key: SessionKey,
    /// Cancelled on shutdown, ending open streams.
    pub shutdown: CancellationToken,
    /// Who may change the upstreams through the management API.
    pub management: Management,
    /// How callers authenticate (`serve` with `[auth]`); `None`: nobody is asked (Lambda, where
    /// API Gateway's IAM check is the door, and local use).
    pub auth: Option<Arc<crate::access::authn::Authenticator>>,
    /// Whether `serve` speaks TLS (answers then carry `Strict-Transport-Security`).
    pub tls: bool,
}

impl HttpSettings {
    /// Defaults for a local server: loopback hosts only, 4 MiB bodies, a random session key
    /// (which fails only when the OS has no random bytes to give).
    pub fn local() -> Result<Self, getrandom::Error> {
        Ok(Self {
            allowed_hosts: AllowedHosts::loopback(),
            allowed_origins: Vec::new(),
            max_body_bytes: 4 * 1024 * 1024,
            body_read_timeout: std::time::Duration::from_secs(30),
            session_key: SessionKey::random()?,
            shutdown: CancellationToken::new(),
            management: Management::Locked,
            auth: None,
            tls: false,
        })
    }
}

/// Shared state of the HTTP handlers.
pub(crate) struct AppState {
    pub(crate) settings: HttpSettings,
    pub(crate) core: Arc<Core>,
    pub(crate) mcp: StreamableHttpService<Gateway, NeverSessionManager>,
}

/// The protocol revisions this server speaks, newest first.
pub fn supported_versions() -> Vec<String> {
    let mut versions: Vec<String> = ProtocolVersion::KNOWN_VERSIONS.iter().map(|v| v.as_str().to_owned()).collect();
    versions.sort_unstable_by(|a, b| b.cmp(a));
    versions
}

/// Builds the router serving MCP and health checks over `core`. A host axum service may mount it
/// under a prefix of its own (`Router::nest("/assistant", router)`: MCP at `/assistant/mcp`; see
/// `examples/embedded.rs`); the links it hands out keep the prefix.
pub fn router(core: Arc<Core>, settings: HttpSettings) -> Router {
    // rmcp's own host/origin checks are off: `guard` does them (first, and with the reason in the
    // access log). Sessions are off: `guard` issues and verifies stateless session ids.
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        .with_sse_retry(None)
        .disable_allowed_hosts()
        .disable_allowed_origins()
        .with_max_request_body_bytes(settings.max_body_bytes)
        .with_cancellation_token(settings.shutdown.child_token());
    let service_core = core.clone();
    let mcp = StreamableHttpService::new(
        move || Ok(Gateway::new(service_core.clone())),
        Arc::new(NeverSessionManager::default()),
        config,
    );
    let state = Arc::new(AppState { settings, core, mcp });
    Router::new()
        .route("/mcp", axum::routing::any(guard::mcp_endpoint))
        .route("/mcp/", axum::routing::any(guard::mcp_endpoint))
        .route("/{stage}/mcp", axum::routing::any(guard::mcp_endpoint))
        .route("/{stage}/mcp/", axum::routing::any(guard::mcp_endpoint))
        .route("/mcp/{upstream}", axum::routing::any(guard::upstream_endpoint))
        .route("/{stage}/mcp/{upstream}", axum::routing::any(guard::upstream_endpoint))
        .route("/health", get(health))
        .route("/{stage}/health", get(health))
        .route("/live", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .merge(manage::routes())
        .merge(rest::routes())
        .merge(openapi::routes())
        .merge(auth::routes())
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::authenticate))
        .layer(axum::middleware::from_fn_with_state(state.clone(), headers::cors_and_security))
        .with_state(state)
}

/// The path a host service mounted this router under (`Router::nest("/assistant", router)`:
/// `/assistant`), or `""` at the root: the part of the request's original path before the path
/// this router routed (axum strips the prefix, and keeps the original in `OriginalUri`). Links the
/// gateway hands out (the OAuth metadata pointer, the OpenAPI server) need it. A prefix with a
/// character that is not plain URL path text counts as none, as it goes into headers and JSON.
pub(crate) fn mount_prefix(uri: &http::Uri, extensions: &http::Extensions) -> String {
    let Some(axum::extract::OriginalUri(original)) = extensions.get::<axum::extract::OriginalUri>() else {
        return String::new();
    };
    let prefix = original.path().strip_suffix(uri.path()).unwrap_or_default();
    let plain = prefix.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"/-._~%!$&'()*+,;=:@".contains(&byte));
    if plain { prefix.trim_end_matches('/').to_owned() } else { String::new() }
}

/// Ready when the tool list answers (the catalogue of upstreams loaded, the built-in tools there),
/// within 2 s; 503 otherwise.
async fn ready(State(state): State<Arc<AppState>>) -> axum::response::Response {
    let listed = tokio::time::timeout(std::time::Duration::from_secs(2), state.core.registry.definitions()).await;
    let (status, body) = match listed {
        Ok(Ok(tools)) => (http::StatusCode::OK, serde_json::json!({"status": "ready", "tools": tools.len()})),
        Ok(Err(error)) => (
            http::StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"status": "not ready", "reason": error.to_string()}),
        ),
        Err(_) => (
            http::StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"status": "not ready", "reason": "the tool list did not answer within 2 s"}),
        ),
    };
    (status, Json(body)).into_response()
}

/// Prometheus text: the request metrics of this process and each upstream instance's numbers.
async fn metrics(State(state): State<Arc<AppState>>) -> axum::response::Response {
    use std::fmt::Write as _;
    let mut upstreams = String::new();
    if let Some(catalogue) = state.core.registry.upstreams() {
        use crate::upstream::pool::InstanceReport;
        type Family = (&'static str, &'static str, &'static str, fn(&InstanceReport) -> f64);
        let families: [Family; 4] = [
            ("mcp_gateway_upstream_requests_total", "counter", "Calls sent to an upstream instance.", |i| {
                i.requests as f64
            }),
            (
                "mcp_gateway_upstream_errors_total",
                "counter",
                "Calls to an upstream instance that failed or timed out.",
                |i| i.errors as f64,
            ),
            ("mcp_gateway_upstream_in_flight", "gauge", "Calls to an upstream instance under way.", |i| {
                f64::from(i.in_flight)
            }),
            (
                "mcp_gateway_upstream_breaker_open",
                "gauge",
                "1 when the instance's circuit breaker is open, 0.5 half-open.",
                |i| match i.breaker.as_str() {
                    "open" => 1.0,
                    "half_open" => 0.5,
                    _ => 0.0,
                },
            ),
        ];
        // Each instance's report once (it sorts latency samples), for every family.
        let reports: Vec<(String, Vec<InstanceReport>)> = catalogue
            .upstreams()
            .iter()
            .map(|upstream| (crate::metrics::escape(upstream.name()), upstream.instances()))
            .collect();
        for (name, kind, help, value) in families {
            let _ = writeln!(upstreams, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (upstream, instances) in &reports {
                for instance in instances {
                    let (id, value) = (crate::metrics::escape(&instance.id), value(instance));
                    let _ = writeln!(upstreams, "{name}{{upstream=\"{upstream}\",instance=\"{id}\"}} {value}");
                }
            }
        }
    }
    let text = crate::metrics::global().render(&upstreams);
    ([(http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

async fn health(State(_state): State<Arc<AppState>>) -> impl IntoResponse {
    Json(serde_json::json!({
        "status": "ok",
        "name": env!("CARGO_PKG_NAME"),
        "version": env!("CARGO_PKG_VERSION"),
        "protocolVersions": supported_versions(),
    }))
}

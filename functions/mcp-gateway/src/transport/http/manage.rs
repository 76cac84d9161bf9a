//! The management API over the federation's fleet: `GET /gateway/health`, `/gateway/stats` and
//! `/gateway/registry` (read-only: `serve` and Lambda), `POST /gateway/register` and
//! `DELETE /gateway/deregister/{upstream}[/{instance}]` (`serve` only, with the admin token).
//!
//! **Invariant:** a change is refused unless the request carries the admin token
//! (`X-Admin-Token`, or `Authorization: Bearer`; compared in constant time); without a configured token every change
//! is refused, and on Lambda every change is refused with what to do instead. Every route checks
//! `Host` and `Origin` like `/mcp`.

use std::{collections::BTreeMap, sync::Arc};

use axum::{
    Json, Router,
    extract::{Path, Request, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{delete, get, post},
};
use schemars::JsonSchema;
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::AppState;
use crate::upstream::{
    Catalogue,
    config::Transport,
    pool::InstanceReport,
    registration::{self, ChangeError, Registration},
};

/// The header that may carry the admin token (when `Authorization` carries the caller's own).
const ADMIN_TOKEN_HEADER: &str = "x-admin-token";

/// The largest `POST /gateway/register` body.
const MAX_REGISTRATION_BYTES: usize = 64 * 1024;

/// Who may change the fleet through the management API.
#[derive(Clone)]
pub enum Management {
    /// Nobody: a Lambda function's upstreams come from its upstreams file.
    ReadOnly,
    /// Nobody until `MCP_ADMIN_TOKEN` is set.
    Locked,
    /// Callers with this token (kept as its SHA-256).
    Token([u8; 32]),
}

impl std::fmt::Debug for Management {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::ReadOnly => "ReadOnly",
            Self::Locked => "Locked",
            Self::Token(_) => "Token(…)",
        })
    }
}

impl Management {
    /// The shortest admin token accepted.
    pub const MIN_TOKEN_CHARS: usize = 16;

    /// Changes allowed to callers with `token`, which must have at least
    /// [`Self::MIN_TOKEN_CHARS`] visible ASCII characters.
    pub fn token(token: &str) -> Result<Self, String> {
        if token.len() < Self::MIN_TOKEN_CHARS || !token.bytes().all(|byte| byte.is_ascii_graphic()) {
            return Err(format!(
                "MCP_ADMIN_TOKEN must be at least {} visible ASCII characters (no spaces)",
                Self::MIN_TOKEN_CHARS
            ));
        }
        Ok(Self::Token(Sha256::digest(token.as_bytes()).into()))
    }

    /// Whether `headers` carry the token; the refusal (status and why) otherwise.
    fn allows(&self, headers: &HeaderMap) -> Result<(), (StatusCode, String)> {
        let expected = match self {
            Self::ReadOnly => {
                return Err((
                    StatusCode::FORBIDDEN,
                    "this gateway runs on Lambda, where the fleet cannot change at run time: configure instances in \
                     the upstreams file (MCP_UPSTREAMS) and deploy again"
                        .to_owned(),
                ));
            }
            Self::Locked => {
                return Err((
                    StatusCode::FORBIDDEN,
                    "changes through the management API are off: start the gateway with MCP_ADMIN_TOKEN set, and \
                     send it as `Authorization: Bearer <token>`"
                        .to_owned(),
                ));
            }
            Self::Token(expected) => expected,
        };
        // `X-Admin-Token` when `Authorization` carries the caller's own credential (`[auth]`).
        let given = match headers.get(ADMIN_TOKEN_HEADER) {
            Some(value) => value.to_str().unwrap_or_default(),
            None => headers
                .get(header::AUTHORIZATION)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.strip_prefix("Bearer "))
                .unwrap_or_default(),
        };
        let given: [u8; 32] = Sha256::digest(given.as_bytes()).into();
        if bool::from(given.ct_eq(expected)) {
            Ok(())
        } else {
            Err((
                StatusCode::UNAUTHORIZED,
                "a change needs `Authorization: Bearer <MCP_ADMIN_TOKEN>` (or `X-Admin-Token: <MCP_ADMIN_TOKEN>`)"
                    .to_owned(),
            ))
        }
    }
}

/// The management routes, also under an API Gateway stage prefix.
pub(super) fn routes() -> Router<Arc<AppState>> {
    let mut router = Router::new();
    for prefix in ["", "/{stage}"] {
        router = router
            .route(&format!("{prefix}/gateway/health"), get(health))
            .route(&format!("{prefix}/gateway/stats"), get(stats))
            .route(&format!("{prefix}/gateway/registry"), get(registry))
            .route(&format!("{prefix}/gateway/register"), post(register))
            .route(&format!("{prefix}/gateway/deregister/{{upstream}}"), delete(deregister_upstream))
            .route(&format!("{prefix}/gateway/deregister/{{upstream}}/{{instance}}"), delete(deregister_instance));
    }
    router
}

/// A request refused: its status and why, answered as `{"error": why}` (here and in `rest`).
#[derive(Debug)]
pub(super) struct Refusal(pub(super) StatusCode, pub(super) String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.0, Json(ErrorBody { error: self.1 })).into_response()
    }
}

/// The JSON body of `request` (`shape` says what is expected), at most `limit` bytes, sent
/// within the settings' body time limit: the body handling of every route beside `/mcp`.
pub(super) async fn json_body<T: serde::de::DeserializeOwned>(
    settings: &super::HttpSettings,
    request: Request,
    limit: usize,
    shape: &str,
) -> Result<T, Refusal> {
    let read = tokio::time::timeout(settings.body_read_timeout, axum::body::to_bytes(request.into_body(), limit));
    let bytes = match read.await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => {
            return Err(error(StatusCode::PAYLOAD_TOO_LARGE, format!("the body is larger than {limit} bytes")));
        }
        Err(_) => return Err(error(StatusCode::REQUEST_TIMEOUT, "the body was not sent in time")),
    };
    serde_json::from_slice(&bytes).map_err(|problem| error(StatusCode::BAD_REQUEST, format!("{problem}; send {shape}")))
}

fn error(status: StatusCode, message: impl Into<String>) -> Refusal {
    Refusal(status, message.into())
}

/// The federation's catalogue, after the `Host`/`Origin` check; the refusal otherwise.
fn catalogue(state: &AppState, headers: &HeaderMap) -> Result<Arc<Catalogue>, Refusal> {
    if let Some((status, message)) = super::guard::host_and_origin_refusal(&state.settings, headers) {
        return Err(error(status, message));
    }
    state.core.registry.upstreams().cloned().ok_or_else(|| {
        error(StatusCode::NOT_FOUND, "this gateway has no upstreams (start it with --upstreams or MCP_UPSTREAMS)")
    })
}

/// `GET /gateway/health`.
#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct Health {
    /// `ok` when every upstream has every instance healthy, `degraded` otherwise.
    status: &'static str,
    /// Every upstream, in file order.
    upstreams: Vec<UpstreamHealth>,
}

/// One upstream's health.
#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct UpstreamHealth {
    /// The upstream.
    name: String,
    /// `up`, `down` or `unknown` (not contacted yet).
    state: String,
    /// Instances that may be called now (breaker not open, health checks passing).
    healthy_instances: usize,
    /// All its instances.
    instances: usize,
}

async fn health(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Result<Response, Refusal> {
    let catalogue = catalogue(&state, &headers)?;
    let upstreams: Vec<UpstreamHealth> = catalogue
        .upstreams()
        .iter()
        .map(|upstream| {
            let instances = upstream.instances();
            UpstreamHealth {
                name: upstream.name().to_owned(),
                state: upstream.status().state,
                healthy_instances: instances.iter().filter(|instance| healthy(instance)).count(),
                instances: instances.len(),
            }
        })
        .collect();
    let degraded = upstreams.iter().any(|upstream| upstream.healthy_instances < upstream.instances);
    Ok(Json(Health { status: if degraded { "degraded" } else { "ok" }, upstreams }).into_response())
}

/// Whether an instance may be called and was not found down.
pub(super) fn healthy(instance: &InstanceReport) -> bool {
    instance.breaker != "open" && instance.probe != "unhealthy" && instance.state != "down"
}

/// `GET /gateway/stats`.
#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct Stats {
    /// Every upstream, in file order.
    upstreams: Vec<UpstreamStats>,
}

/// One upstream's numbers, as this process saw them.
#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct UpstreamStats {
    /// The upstream.
    name: String,
    /// How a call picks an instance.
    strategy: &'static str,
    /// Calls sent to its instances.
    requests: u64,
    /// Calls that failed at the transport or timed out.
    errors: u64,
    /// Calls under way.
    in_flight: u32,
    /// Each instance.
    instances: Vec<InstanceReport>,
}

async fn stats(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Result<Response, Refusal> {
    let catalogue = catalogue(&state, &headers)?;
    let upstreams: Vec<UpstreamStats> = catalogue
        .upstreams()
        .iter()
        .map(|upstream| {
            let instances = upstream.instances();
            UpstreamStats {
                name: upstream.name().to_owned(),
                strategy: upstream.strategy(),
                requests: instances.iter().map(|instance| instance.requests).sum(),
                errors: instances.iter().map(|instance| instance.errors).sum(),
                in_flight: instances.iter().map(|instance| instance.in_flight).sum(),
                instances,
            }
        })
        .collect();
    Ok(Json(Stats { upstreams }).into_response())
}

/// `GET /gateway/registry`.
#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct Registry {
    /// Every upstream, in file order.
    upstreams: Vec<UpstreamEntry>,
}

/// One upstream, its instances, and its tools under their exposed names.
#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct UpstreamEntry {
    /// The upstream.
    name: String,
    /// `http` or `stdio`.
    transport: &'static str,
    /// How a call picks an instance.
    strategy: &'static str,
    /// `open` or `closed`.
    failure_mode: String,
    /// Its instances.
    instances: Vec<InstanceEntry>,
    /// Exposed name → the upstream's own name.
    tools: BTreeMap<String, String>,
    /// Why its tools are not listed now, if they are not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    left_out: Option<String>,
}

/// One instance as configured.
#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct InstanceEntry {
    /// Its id.
    id: String,
    /// Its endpoint (query cut) or its command.
    address: String,
    /// Its weight.
    weight: u32,
    /// Its labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    metadata: BTreeMap<String, String>,
}

async fn registry(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Result<Response, Refusal> {
    let catalogue = catalogue(&state, &headers)?;
    let snapshot =
        catalogue.tools().await.map_err(|problem| error(StatusCode::SERVICE_UNAVAILABLE, problem.to_string()))?;
    let upstreams: Vec<UpstreamEntry> = catalogue
        .upstreams()
        .iter()
        .map(|upstream| UpstreamEntry {
            name: upstream.name().to_owned(),
            transport: upstream.config.transport_kind(),
            strategy: upstream.strategy(),
            failure_mode: upstream.config.failure_mode.to_string(),
            instances: upstream
                .config
                .instances
                .iter()
                .map(|instance| InstanceEntry {
                    id: instance.id.clone(),
                    address: match &instance.transport {
                        Transport::Http(http) => registration::shown_url(&http.url),
                        Transport::Stdio(stdio) => stdio.command.clone(),
                    },
                    weight: instance.weight,
                    metadata: instance.metadata.clone(),
                })
                .collect(),
            tools: snapshot
                .tools
                .iter()
                .filter(|(_, entry)| entry.upstream.name() == upstream.name())
                .map(|(exposed, entry)| (exposed.clone(), entry.original.clone()))
                .collect(),
            left_out: snapshot.left_out.get(upstream.name()).cloned(),
        })
        .collect();
    Ok(Json(Registry { upstreams }).into_response())
}

/// `POST /gateway/register` with a [`Registration`].
async fn register(State(state): State<Arc<AppState>>, request: Request) -> Result<Response, Refusal> {
    let catalogue = changes_allowed(&state, request.headers())?;
    let shape = r#"{"upstream": NAME, "id": ID, "url": URL, "weight": 1, "metadata": {}}"#;
    let registration: Registration = json_body(&state.settings, request, MAX_REGISTRATION_BYTES, shape).await?;
    let (upstream, id) = (registration.upstream.clone(), registration.id.clone());
    let changed = catalogue.reconfigure(|config| registration::register(config, registration)).await;
    respond(changed, "registered", &upstream, Some(&id))
}

async fn deregister_upstream(
    State(state): State<Arc<AppState>>,
    Path(upstream): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    let catalogue = changes_allowed(&state, &headers)?;
    let changed = catalogue.reconfigure(|config| registration::deregister(config, &upstream, None)).await;
    respond(changed, "deregistered", &upstream, None)
}

async fn deregister_instance(
    State(state): State<Arc<AppState>>,
    Path((upstream, instance)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    let catalogue = changes_allowed(&state, &headers)?;
    let changed = catalogue.reconfigure(|config| registration::deregister(config, &upstream, Some(&instance))).await;
    respond(changed, "deregistered", &upstream, Some(&instance))
}

/// The answer to a change: what was done, and the fleet after it.
#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct Change {
    /// `registered` or `deregistered`.
    status: String,
    /// The upstream changed.
    upstream: String,
    /// The instance changed; none when a whole upstream was deregistered.
    instance: Option<String>,
    /// The fleet now.
    fleet: crate::upstream::catalogue::Reconfigured,
}

/// `{"error": why}`: every refusal of the management API and the REST routes.
#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct ErrorBody {
    /// What is wrong and what to do.
    pub error: String,
}

/// The catalogue, when the caller may change it; the refusal otherwise.
fn changes_allowed(state: &AppState, headers: &HeaderMap) -> Result<Arc<Catalogue>, Refusal> {
    let catalogue = catalogue(state, headers)?;
    state.settings.management.allows(headers).map_err(|(status, message)| {
        tracing::warn!(target: "mcp_gateway::manage", %status, %message, "a change to the fleet was refused");
        error(status, message)
    })?;
    Ok(catalogue)
}

fn respond(
    changed: Result<crate::upstream::catalogue::Reconfigured, ChangeError>,
    what: &str,
    upstream: &str,
    instance: Option<&str>,
) -> Result<Response, Refusal> {
    match changed {
        Ok(summary) => {
            tracing::info!(target: "mcp_gateway::manage", upstream, instance, what, "fleet changed");
            let change = Change {
                status: what.to_owned(),
                upstream: upstream.to_owned(),
                instance: instance.map(str::to_owned),
                fleet: summary,
            };
            Ok(Json(change).into_response())
        }
        Err(problem @ ChangeError::NotFound(_)) => Err(error(StatusCode::NOT_FOUND, problem.to_string())),
        Err(problem @ ChangeError::Invalid(_)) => Err(error(StatusCode::UNPROCESSABLE_ENTITY, problem.to_string())),
        Err(problem @ ChangeError::Refused(_)) => Err(error(StatusCode::CONFLICT, problem.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn the_admin_token_comes_as_a_bearer_token_or_in_its_own_header() {
        let management = Management::token("admin-token-0123456789").unwrap_or_else(|error| panic!("{error}"));
        let headers = |name: &'static str, value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(name, HeaderValue::from_str(value).unwrap_or_else(|error| panic!("{error}")));
            headers
        };
        assert!(management.allows(&headers("authorization", "Bearer admin-token-0123456789")).is_ok());
        // With `[auth]`, `Authorization` carries the caller's own credential.
        let both = {
            let mut both = headers("x-admin-token", "admin-token-0123456789");
            both.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer some-api-key"));
            both
        };
        assert!(management.allows(&both).is_ok());
        let wrong = management.allows(&headers("x-admin-token", "admin-token-012345678")).err();
        assert_eq!(wrong.map(|(status, _)| status), Some(StatusCode::UNAUTHORIZED));
        assert!(Management::Locked.allows(&both).is_err());
    }
}

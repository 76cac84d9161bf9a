//! The MCP endpoint's front door: HTTP hygiene, JSON-RPC validation, stateless sessions,
//! batches, and the access log, in front of rmcp's Streamable HTTP service.
//!
//! Checks run in the order a client can fix them: Host/Origin (403), HTTP method (405),
//! `Accept` (406), `Content-Type` (415), body size (413), JSON (-32700), JSON-RPC shape (-32600),
//! params (-32602), session (404), rate limits (429 with `Retry-After`). Every refusal carries a JSON-RPC error body and is logged
//! with its reason.

use std::{sync::Arc, time::Instant};

use axum::{
    body::{Body, Bytes},
    extract::{Path, Request, State},
    response::Response,
};
use futures::StreamExt as _;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use rmcp::model::ErrorCode;
use serde_json::{Value, json};

use super::{AllowedHosts, AppState};
use crate::access_log::RequestRecord;
use crate::transport::message;

const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";
/// The only revision whose JSON-RPC layer has batches.
const BATCH_REVISION: &str = "2025-03-26";
/// The most messages one batch may hold (each is answered in turn).
pub(crate) const MAX_BATCH_MESSAGES: usize = 100;

/// A refusal: HTTP status, JSON-RPC code and message, and the id it answers (if known).
struct Refusal {
    status: StatusCode,
    code: ErrorCode,
    message: String,
    id: Value,
    /// Seconds for `Retry-After` (a rate limit).
    retry_after: Option<u64>,
}

impl Refusal {
    fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), id: Value::Null, retry_after: None }
    }

    /// A request a rate limit refused: 429 with `Retry-After`.
    fn limited(limited: &crate::access::Limited, id: Value) -> Self {
        Self {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: ErrorCode::INVALID_REQUEST,
            message: limited.to_string(),
            id,
            retry_after: Some(limited.retry_after_secs()),
        }
    }

    fn with_id(mut self, id: Value) -> Self {
        self.id = id;
        self
    }

    /// A message the shared JSON-RPC check refused: 400 with its code.
    fn bad_request(rejected: message::Rejected) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: rejected.code,
            message: rejected.message,
            id: rejected.id,
            retry_after: None,
        }
    }

    fn into_response(self, record: &RequestRecord) -> Response {
        record.update(|fields| {
            fields.error_code = Some(i64::from(self.code.0));
            fields.reason = Some(self.message.clone());
        });
        let body = json!({
            "jsonrpc": "2.0",
            "id": self.id,
            "error": { "code": self.code.0, "message": self.message },
        });
        let mut response = json_response(self.status, body.to_string().into());
        if self.status == StatusCode::METHOD_NOT_ALLOWED {
            response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
        }
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// Refuses a request to a `Host` or from an `Origin` the settings do not allow (DNS rebinding):
/// the status and why, for routes other than `/mcp` (the management API).
pub(super) fn host_and_origin_refusal(
    settings: &super::HttpSettings,
    headers: &HeaderMap,
) -> Option<(StatusCode, String)> {
    check_host_and_origin(settings, headers).err().map(|refusal| (refusal.status, refusal.message))
}

/// The MCP endpoint of one upstream (`/mcp/{upstream}`): that upstream's tools, prompts and
/// resources alone, its tools and prompts under their own names.
pub(super) async fn upstream_endpoint(
    State(state): State<Arc<AppState>>,
    Path(params): Path<std::collections::HashMap<String, String>>,
    mut request: Request,
) -> Response {
    let upstream = params.get("upstream").cloned().unwrap_or_default();
    let known = state.core.registry.upstreams().is_some_and(|catalogue| catalogue.upstream(&upstream).is_some());
    let refused = check_host_and_origin(&state.settings, request.headers()).err().or_else(|| {
        (!known).then(|| {
            Refusal::new(
                StatusCode::NOT_FOUND,
                ErrorCode::INVALID_REQUEST,
                format!("no upstream named `{upstream}`; GET /gateway/registry lists them"),
            )
        })
    });
    if let Some(refusal) = refused {
        let record = RequestRecord::start(request.method().as_str());
        record_identity(&request, &record);
        let response = refusal.into_response(&record);
        record.update(|fields| fields.status = response.status().as_u16());
        record.emit();
        return response;
    }
    request.extensions_mut().insert(crate::server::UpstreamScope(upstream));
    mcp_endpoint(State(state), request).await
}

/// The MCP endpoint handler.
pub(super) async fn mcp_endpoint(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let record = RequestRecord::start(request.method().as_str()).with_deadline(lambda_deadline(&request));
    record_identity(&request, &record);
    let response = match handle(&state, request, &record).await {
        Ok(response) => response,
        Err(refusal) => refusal.into_response(&record),
    };
    record.update(|fields| fields.status = response.status().as_u16());
    log_when_body_ends(response, record)
}

async fn handle(state: &AppState, request: Request, record: &RequestRecord) -> Result<Response, Refusal> {
    check_host_and_origin(&state.settings, request.headers())?;
    if request.method() != Method::POST {
        return Err(Refusal::new(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::INVALID_REQUEST,
            format!(
                "{} is not supported: this stateless server has no standalone SSE stream or sessions to delete; POST JSON-RPC messages instead",
                request.method()
            ),
        ));
    }
    check_accept(request.headers())?;
    check_content_type(request.headers())?;
    let (parts, body) = request.into_parts();
    let limit = state.settings.body_read_timeout;
    let read = tokio::time::timeout(limit, axum::body::to_bytes(body, state.settings.max_body_bytes));
    let bytes = read.await.map_err(|_| {
        Refusal::new(
            StatusCode::REQUEST_TIMEOUT,
            ErrorCode::INVALID_REQUEST,
            format!("the request body did not arrive within {} s", limit.as_secs()),
        )
    })?;
    let bytes = bytes.map_err(|error| {
        let too_large =
            std::error::Error::source(&error).is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
        if too_large {
            Refusal::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::INVALID_REQUEST,
                format!("request body exceeds {} bytes", state.settings.max_body_bytes),
            )
        } else {
            Refusal::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::INVALID_REQUEST,
                format!("could not read the request body: {error}"),
            )
        }
    })?;
    let value = message::parse(&bytes).map_err(Refusal::bad_request)?;
    match value {
        Value::Array(messages) => batch(state, parts, messages, record).await,
        value => single(state, parts, bytes, value, record).await,
    }
}

/// One JSON-RPC message: validated here, answered by rmcp.
async fn single(
    state: &AppState,
    parts: http::request::Parts,
    bytes: Bytes,
    value: Value,
    record: &RequestRecord,
) -> Result<Response, Refusal> {
    let envelope = Envelope::inspect(&value, &parts.headers)?;
    record.update(|fields| {
        fields.method = envelope.method.clone();
        fields.rpc_id = (!envelope.id.is_null()).then(|| envelope.id.to_string());
        fields.protocol_version = Some(envelope.protocol_version.clone());
    });
    if envelope.is_legacy {
        check_session(state, &parts.headers, &envelope)?;
    }
    if !envelope.id.is_null() {
        check_limits(state, &parts, &value, &envelope, record).await?;
    }
    let is_initialize = envelope.method.as_deref() == Some("initialize");
    // Made before the call, so that initialize fails whole when no session id can be made.
    let session_id = if is_initialize {
        let id = state.settings.session_key.issue().map_err(|error| {
            Refusal::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::INTERNAL_ERROR,
                format!("cannot create a session id: the OS random number generator failed ({error})"),
            )
            .with_id(envelope.id.clone())
        })?;
        HeaderValue::from_str(&id).ok()
    } else {
        None
    };
    let mut request = Request::from_parts(parts, Body::from(bytes));
    request.extensions_mut().insert(record.clone());
    let response = state.mcp.handle(request).await;
    let (mut parts, body) = response.into_parts();
    if let Some(id) = session_id.filter(|_| parts.status == StatusCode::OK) {
        parts.headers.insert(SESSION_HEADER, id);
    }
    let is_json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if !is_json {
        return Ok(Response::from_parts(parts, Body::new(body)));
    }
    // JSON answers are complete in memory already; read the error code for the log. Error
    // answers are small, so large bodies (a big tool result) are not scanned for one.
    let bytes = http_body_util::BodyExt::collect(body).await.map(|body| body.to_bytes()).unwrap_or_default();
    if let Some((code, message)) = (bytes.len() <= MAX_ERROR_ANSWER_BYTES).then(|| error_of(&bytes)).flatten() {
        record.update(|fields| {
            fields.error_code = Some(code);
            fields.reason = Some(message);
        });
    } else if !parts.status.is_success() {
        record.update(|fields| fields.reason = Some(String::from_utf8_lossy(&bytes).into_owned()));
    }
    Ok(Response::from_parts(parts, Body::from(bytes)))
}

/// A JSON-RPC batch: only the 2025-03-26 revision has them; each message is answered in turn
/// and the answers come back as one JSON array.
async fn batch(
    state: &AppState,
    parts: http::request::Parts,
    messages: Vec<Value>,
    record: &RequestRecord,
) -> Result<Response, Refusal> {
    record.update(|fields| fields.method = Some("batch".to_owned()));
    let revision = header_str(&parts.headers, VERSION_HEADER).unwrap_or(BATCH_REVISION).to_owned();
    if revision != BATCH_REVISION {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::INVALID_REQUEST,
            format!(
                "JSON-RPC batches are not part of protocol revision {revision} (only {BATCH_REVISION}); send one message per POST"
            ),
        ));
    }
    if messages.is_empty() {
        return Err(Refusal::new(StatusCode::BAD_REQUEST, ErrorCode::INVALID_REQUEST, "empty JSON-RPC batch"));
    }
    if messages.len() > MAX_BATCH_MESSAGES {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::INVALID_REQUEST,
            format!("the batch has {} messages; the limit is {MAX_BATCH_MESSAGES}", messages.len()),
        ));
    }
    if messages.iter().any(|message| message.get("method").and_then(Value::as_str) == Some("initialize")) {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::INVALID_REQUEST,
            "initialize must not be part of a JSON-RPC batch",
        ));
    }
    let mut answers = Vec::with_capacity(messages.len());
    for message in messages {
        // Each element is a request of its own: logged on its own line, with the batch's Lambda
        // identity and deadline.
        let inner = record.element();
        let element_parts = clone_parts(&parts);
        let bytes = Bytes::from(message.to_string());
        let response = match single(state, element_parts, bytes, message, &inner).await {
            Ok(response) => response,
            Err(refusal) => refusal.into_response(&inner),
        };
        inner.update(|fields| fields.status = response.status().as_u16());
        answers.extend(answers_in(response).await);
        inner.emit();
    }
    if answers.is_empty() {
        return Ok(accepted());
    }
    Ok(json_response(StatusCode::OK, Value::Array(answers).to_string().into()))
}

/// What the guard learned from one message.
struct Envelope {
    method: Option<String>,
    id: Value,
    protocol_version: String,
    /// Speaks a revision with `initialize` and sessions (before 2026-07-28).
    is_legacy: bool,
}

impl Envelope {
    fn inspect(value: &Value, headers: &HeaderMap) -> Result<Self, Refusal> {
        let checked = message::check(value).map_err(Refusal::bad_request)?;
        let object = value.as_object();
        let meta_version = object
            .and_then(|object| object.get("params"))
            .and_then(|params| params.get("_meta"))
            .and_then(|meta| meta.get("io.modelcontextprotocol/protocolVersion"))
            .and_then(Value::as_str);
        let method = checked.method;
        let is_discover = method.as_deref() == Some("server/discover");
        let is_legacy = meta_version.is_none() && !is_discover;
        let protocol_version = meta_version
            .or_else(|| header_str(headers, VERSION_HEADER))
            .or_else(|| {
                if method.as_deref() == Some("initialize") {
                    object?.get("params")?.get("protocolVersion")?.as_str()
                } else {
                    None
                }
            })
            .unwrap_or(BATCH_REVISION)
            .to_owned();
        Ok(Self { method, id: checked.id, protocol_version, is_legacy })
    }
}

/// Takes a token from each rate limit that applies to this request (a `tools/call` counts
/// against the limits of its tool, by exposed name), or refuses it with 429.
async fn check_limits(
    state: &AppState,
    parts: &http::request::Parts,
    value: &Value,
    envelope: &Envelope,
    record: &RequestRecord,
) -> Result<(), Refusal> {
    let limits = &state.core.policy.limits;
    if limits.is_empty() {
        return Ok(());
    }
    let mut tool = None;
    if envelope.method.as_deref() == Some("tools/call")
        && let Some(name) = value.pointer("/params/name").and_then(Value::as_str)
    {
        tool = Some(match parts.extensions.get::<crate::server::UpstreamScope>() {
            Some(scope) => state.core.registry.exposed_tool(&scope.0, name).await.unwrap_or_else(|| name.to_owned()),
            None => name.to_owned(),
        });
    }
    limits.admit(&record.caller(), tool.as_deref()).map_err(|limited| Refusal::limited(&limited, envelope.id.clone()))
}

/// Legacy requests that carry a session id must carry one we issued.
fn check_session(state: &AppState, headers: &HeaderMap, envelope: &Envelope) -> Result<(), Refusal> {
    let Some(id) = headers.get(SESSION_HEADER) else {
        return Ok(());
    };
    if envelope.method.as_deref() == Some("initialize") {
        return Ok(());
    }
    let valid = id.to_str().is_ok_and(|id| state.settings.session_key.verify(id));
    if valid {
        Ok(())
    } else {
        Err(Refusal::new(
            StatusCode::NOT_FOUND,
            ErrorCode(-32001),
            "Session not found: the Mcp-Session-Id was not issued by this server (or its key changed); send initialize again",
        )
        .with_id(envelope.id.clone()))
    }
}

/// Whether `origin` is on the `--allowed-origin` list (cross-origin browser clients: CORS).
pub(super) fn origin_listed(settings: &super::HttpSettings, origin: &str) -> bool {
    settings.allowed_origins.iter().any(|allowed| allowed.trim_end_matches('/').eq_ignore_ascii_case(origin))
}

fn check_host_and_origin(settings: &super::HttpSettings, headers: &HeaderMap) -> Result<(), Refusal> {
    let host = header_str(headers, "host").unwrap_or_default();
    if let AllowedHosts::Only(allowed) = &settings.allowed_hosts
        && !authority_allowed(host, allowed)
    {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            ErrorCode::INVALID_REQUEST,
            format!("Forbidden: Host `{host}` is not allowed (add it with --allowed-host or MCP_ALLOWED_HOSTS)"),
        ));
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or_default();
    let origin_authority = origin.split_once("://").map(|(_, rest)| rest.trim_end_matches('/'));
    let same_origin = origin_authority.is_some_and(|authority| authority.eq_ignore_ascii_case(host));
    if same_origin || origin_listed(settings, origin) {
        Ok(())
    } else {
        Err(Refusal::new(
            StatusCode::FORBIDDEN,
            ErrorCode::INVALID_REQUEST,
            format!(
                "Forbidden: Origin `{origin}` is not allowed (add it with --allowed-origin or MCP_ALLOWED_ORIGINS)"
            ),
        ))
    }
}

/// Whether a `Host` value matches an allow-list entry: `name` matches any port, `name:port` only
/// that port. Names compare case-insensitively.
fn authority_allowed(host: &str, allowed: &[String]) -> bool {
    let host = host.to_ascii_lowercase();
    let name = match host.rsplit_once(':') {
        Some((name, port)) if !name.is_empty() && port.chars().all(|c| c.is_ascii_digit()) && !name.ends_with(':') => {
            name
        }
        _ => host.as_str(),
    };
    allowed.iter().any(|entry| {
        let entry = entry.to_ascii_lowercase();
        entry == host || entry == name
    })
}

fn check_accept(headers: &HeaderMap) -> Result<(), Refusal> {
    let mut json = false;
    let mut sse = false;
    for value in headers.get_all(header::ACCEPT).iter().filter_map(|value| value.to_str().ok()) {
        for item in value.split(',') {
            let mut pieces = item.split(';');
            let media = pieces.next().unwrap_or_default().trim().to_ascii_lowercase();
            let refused = pieces.any(|param| {
                let param = param.trim().replace(' ', "");
                param == "q=0" || param == "q=0.0" || param == "q=0.00" || param == "q=0.000"
            });
            if refused {
                continue;
            }
            json |= media == "application/json";
            sse |= media == "text/event-stream";
        }
    }
    if json && sse {
        Ok(())
    } else {
        Err(Refusal::new(
            StatusCode::NOT_ACCEPTABLE,
            ErrorCode::INVALID_REQUEST,
            "Not Acceptable: the Accept header must list both application/json and text/event-stream",
        ))
    }
}

fn check_content_type(headers: &HeaderMap) -> Result<(), Refusal> {
    let content_type = header_str(headers, "content-type").unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        let shown = if content_type.is_empty() { "none" } else { content_type };
        Err(Refusal::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::INVALID_REQUEST,
            format!("Unsupported Media Type: Content-Type must be application/json (got {shown})"),
        ))
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// The largest JSON answer read for an error code: JSON-RPC errors are a code and a sentence.
const MAX_ERROR_ANSWER_BYTES: usize = 64 * 1024;

/// The error code and message of a JSON-RPC error response body.
///
/// The members are read in order and the read stops at `result`: a success (most answers, and
/// the large ones) costs only its first few bytes, not a parse of the whole result.
fn error_of(bytes: &[u8]) -> Option<(i64, String)> {
    use serde::de::{Deserializer as _, IgnoredAny, MapAccess, Visitor};

    #[derive(serde::Deserialize)]
    struct ErrorHead {
        code: i64,
        #[serde(default)]
        message: String,
    }
    struct Head;
    impl<'de> Visitor<'de> for Head {
        type Value = Option<ErrorHead>;

        fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            formatter.write_str("a JSON-RPC response")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut error = None;
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                match key.as_ref() {
                    "error" => error = Some(map.next_value::<ErrorHead>()?),
                    // A success: stop reading. serde_json then finds the object unfinished and
                    // fails, which reads as "no error" too.
                    "result" => return Ok(None),
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(error)
        }
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let head = deserializer.deserialize_map(Head).ok()??;
    Some((head.code, head.message))
}

/// The JSON-RPC responses in one inner answer (JSON body or SSE stream).
async fn answers_in(response: Response) -> Vec<Value> {
    let is_sse = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/event-stream"));
    let bytes =
        http_body_util::BodyExt::collect(response.into_body()).await.map(|body| body.to_bytes()).unwrap_or_default();
    if bytes.is_empty() {
        return Vec::new();
    }
    if !is_sse {
        return serde_json::from_slice(&bytes).into_iter().collect();
    }
    mcp_wire::sse::events(&bytes)
        .filter_map(|event| serde_json::from_slice::<Value>(&event.data).ok())
        .filter(|message| message.get("id").is_some())
        .collect()
}

fn clone_parts(parts: &http::request::Parts) -> http::request::Parts {
    let mut builder =
        http::Request::builder().method(parts.method.clone()).uri(parts.uri.clone()).version(parts.version);
    if let Some(headers) = builder.headers_mut() {
        *headers = parts.headers.clone();
    }
    let (mut cloned, ()) = builder.body(()).unwrap_or_default().into_parts();
    cloned.extensions = parts.extensions.clone();
    cloned
}

fn json_response(status: StatusCode, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn accepted() -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::ACCEPTED;
    response
}

/// Adds who is calling, and in which trace, to the record: in `serve` the TCP peer
/// ([`super::PeerAddr`]) and the principal `[auth]` verified; on Lambda, API Gateway's request
/// id, IAM caller and source address; everywhere a span of the client's `traceparent` trace (or
/// of a new one).
pub(super) fn record_identity(request: &Request, record: &RequestRecord) {
    use lambda_http::request::RequestContext;
    use mcp_wire::trace::TraceContext;
    let parent = header_str(request.headers(), "traceparent").and_then(TraceContext::parse);
    let trace = parent.map_or_else(TraceContext::new_root, |parent| parent.child());
    record.update(|fields| {
        fields.trace = Some(trace);
        fields.parent_span = parent;
    });
    if let Some(super::PeerAddr(peer)) = request.extensions().get::<super::PeerAddr>() {
        let ip = peer.ip();
        record.update(|fields| fields.client_ip = Some(ip));
    }
    if let Some(identity) = request.extensions().get::<crate::access::authn::Identity>() {
        record.update(|fields| {
            fields.principal = Some(identity.principal.clone());
            fields.auth = Some(identity.kind.as_str());
            fields.claims.clone_from(&identity.claims);
        });
    }
    let Some(context) = request.extensions().get::<RequestContext>() else {
        return;
    };
    let (request_id, caller, source_ip) = match context {
        RequestContext::ApiGatewayV1(context) => {
            let identity = &context.identity;
            (
                context.request_id.clone(),
                identity.user_arn.clone().or_else(|| identity.caller.clone()),
                identity.source_ip.as_deref(),
            )
        }
        RequestContext::ApiGatewayV2(context) => {
            let iam = context.authorizer.as_ref().and_then(|authorizer| authorizer.iam.as_ref());
            (context.request_id.clone(), iam.and_then(|iam| iam.user_arn.clone()), context.http.source_ip.as_deref())
        }
        #[allow(unreachable_patterns)]
        _ => (None, None, None),
    };
    let client_ip = source_ip.and_then(|ip| ip.parse().ok());
    let lambda_request_id =
        request.extensions().get::<lambda_http::Context>().map(|context| context.request_id.clone());
    record.update(|fields| {
        fields.request_id = lambda_request_id.or(request_id);
        if let Some(caller) = caller {
            fields.principal = Some(caller.into());
            fields.auth = Some(crate::access::authn::AuthKind::Iam.as_str());
        }
        fields.client_ip = fields.client_ip.or(client_ip);
    });
}

/// When the Lambda invocation carrying `request` times out; `None` off Lambda, or when the
/// runtime gave no usable deadline: 0 (hand-built contexts) or one already past on arrival, which
/// AWS never sends (local emulators may), so it cannot be a real limit.
pub(super) fn lambda_deadline(request: &Request) -> Option<Instant> {
    let deadline_ms = request.extensions().get::<lambda_http::Context>()?.deadline;
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?.as_millis();
    let left_ms = u64::try_from(u128::from(deadline_ms).saturating_sub(now_ms)).ok()?;
    tracing::debug!(deadline_ms, left_ms, "Lambda invocation deadline");
    if left_ms == 0 {
        return None;
    }
    Instant::now().checked_add(std::time::Duration::from_millis(left_ms))
}

/// Emits the access-log line once the response body has been sent (or dropped).
fn log_when_body_ends(response: Response, record: RequestRecord) -> Response {
    struct EmitOnDrop(RequestRecord);
    impl Drop for EmitOnDrop {
        fn drop(&mut self) {
            self.0.emit();
        }
    }
    let guard = EmitOnDrop(record);
    let (parts, body) = response.into_parts();
    let stream = body.into_data_stream().map(move |chunk| {
        let _keep = &guard;
        chunk
    });
    Response::from_parts(parts, Body::from_stream(stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_allow_list_matches_names_and_ports() {
        let allowed =
            vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "[::1]".to_owned(), "api.example.com:443".to_owned()];
        for host in ["localhost", "LOCALHOST:8080", "127.0.0.1:1", "[::1]:8080", "api.example.com:443"] {
            assert!(authority_allowed(host, &allowed), "{host}");
        }
        for host in
            ["evil.example.com", "localhost.evil.com", "127.0.0.2", "api.example.com", "api.example.com:8443", ""]
        {
            assert!(!authority_allowed(host, &allowed), "{host}");
        }
    }

    #[test]
    fn accept_needs_both_types_and_honours_q_zero() {
        let headers = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT, HeaderValue::from_static(value));
            headers
        };
        assert!(check_accept(&headers("application/json, text/event-stream")).is_ok());
        assert!(check_accept(&headers("text/event-stream;q=0.5, application/json")).is_ok());
        assert!(check_accept(&headers("application/json")).is_err());
        assert!(check_accept(&headers("application/json, text/event-stream;q=0")).is_err());
        assert!(check_accept(&HeaderMap::new()).is_err());
    }

    fn request_with_deadline(deadline_ms: u64) -> Request {
        let mut request = Request::new(Body::empty());
        let mut context = lambda_http::Context::default();
        context.deadline = deadline_ms;
        request.extensions_mut().insert(context);
        request
    }

    #[test]
    fn lambda_deadline_ignores_deadlines_no_real_runtime_sends() {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or_default();
        let left = lambda_deadline(&request_with_deadline(now_ms + 30_000)).map(|at| at - Instant::now());
        let (low, high) = (std::time::Duration::from_secs(29), std::time::Duration::from_secs(30));
        assert!(left.is_some_and(|left| left > low && left <= high), "{left:?}");
        // cargo lambda watch sends the timeout (600000) where AWS sends an epoch time in ms.
        assert!(lambda_deadline(&request_with_deadline(600_000)).is_none());
        assert!(lambda_deadline(&request_with_deadline(0)).is_none());
        assert!(lambda_deadline(&Request::new(Body::empty())).is_none());
    }

    #[test]
    fn error_of_reads_only_top_level_errors() {
        assert_eq!(
            error_of(br#"{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"x"}}"#),
            Some((-32601, "x".into()))
        );
        assert_eq!(error_of(br#"{"jsonrpc":"2.0","id":1,"result":{"error":{"code":1}}}"#), None);
        // Members in any order; a success is no error, whatever follows `result` (left unread).
        assert_eq!(
            error_of(br#"{"error":{"code":-32602,"message":"y"},"id":"a","jsonrpc":"2.0"}"#),
            Some((-32602, "y".into()))
        );
        assert_eq!(error_of(br#"{"jsonrpc":"2.0","id":1,"result":{"content":[ truncated"#), None);
        assert_eq!(error_of(b"not json"), None);
    }
}

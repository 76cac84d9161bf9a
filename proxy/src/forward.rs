//! Forwarding: one signed POST per JSON-RPC message, answers passed back to stdout, each as one
//! complete line (see [`crate::answer`] for JSON answers, [`mcp_wire::sse`] for event streams).

use std::{collections::HashMap, sync::Arc, time::Duration};

use bytes::{Bytes, BytesMut};
use futures::StreamExt as _;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use mcp_sigv4::sts_token::TokenCache;
use mcp_wire::{
    line::Line,
    sse::{EventReader, SseError},
    trace::TraceContext,
};
use serde_json::{Value, json};
use tokio::sync::{Mutex, mpsc};

use crate::{
    answer::{self, Body, json_scan::JsonScan},
    credentials::CredentialSource,
    endpoint::Endpoint,
    errors::{self, AnswerProblem, Failure as HttpFailure},
    filter::{ToolFilter, ToolHints},
    message::{self, Message, Rejection},
    process::Out,
    retry::{self, Effect},
    sign,
};

const ACCEPT: &str = "application/json, text/event-stream";
/// The revisions that have JSON-RPC batches.
const BATCH_REVISIONS: &[&str] = &["2024-11-05", "2025-03-26"];

/// Options of the forwarder.
#[derive(Debug, Clone)]
pub struct Options {
    /// Longest wait for the response headers, and between two chunks of an answer.
    pub timeout: Duration,
    /// Extra headers sent with every request (`--header K=V`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Tool filters.
    pub filter: ToolFilter,
    /// The longest stdin line (`--max-message-bytes`).
    pub max_message_bytes: usize,
    /// The largest answer, and the largest single event of an event stream (`--max-answer-bytes`).
    pub max_answer_bytes: u64,
    /// How requests prove the caller's IAM identity.
    pub auth: Auth,
}

/// How requests prove the caller's IAM identity (`--auth`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// Each request signed with SigV4 (API Gateway with AWS_IAM, Lambda Function URLs).
    SigV4,
    /// A signed STS `GetCallerIdentity` request as `Authorization: Bearer` (`mcp-gateway serve`
    /// with `[auth.iam]`), bound to `gateway_id`, signed for `sts_endpoint`.
    Sts {
        /// The gateway the token is for (its `[auth.iam] gateway_id`).
        gateway_id: String,
        /// The STS endpoint the token is signed for (`https://sts.<region>.amazonaws.com/`).
        sts_endpoint: String,
    },
}

/// Session state for the revisions that have `initialize` (before 2026-07-28).
#[derive(Debug, Default)]
struct Session {
    id: Option<String>,
    protocol_version: Option<String>,
    /// The client's original initialize request, replayed when the server forgets the session.
    initialize: Option<Value>,
    /// Bumped on every (re-)initialize, so concurrent 404s re-initialize only once.
    generation: u64,
}

/// The proxy: shared by every in-flight message.
#[derive(Debug)]
pub struct Proxy {
    endpoint: Endpoint,
    http: reqwest::Client,
    credentials: CredentialSource,
    options: Options,
    session: Mutex<Session>,
    /// Held for writing while an `initialize` is in flight, so messages sent after it wait
    /// for its session id and negotiated version.
    init_gate: tokio::sync::RwLock<()>,
    hints: Mutex<HashMap<String, ToolHints>>,
    out: mpsc::Sender<Out>,
    /// The STS tokens sent with `--auth sts`; without it, each request is signed with SigV4.
    sts_tokens: Option<TokenCache>,
}

/// The outcome of sending one message.
enum Sent {
    /// Answer delivered (or nothing to deliver).
    Done,
    /// The server does not know our session: re-initialize and send again.
    SessionLost(u64),
}

/// The outcome of reading one answer.
enum Delivery {
    /// Written to stdout (or nothing to write), or the session is lost.
    Sent(Sent),
    /// Unusable, and nothing of it was written: the retry rules decide what comes next.
    Failed(HttpFailure),
}

impl Proxy {
    /// A proxy writing answers to `out`.
    pub fn new(
        endpoint: Endpoint,
        credentials: CredentialSource,
        options: Options,
        out: mpsc::Sender<Out>,
    ) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(options.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("mcp-sigv4-proxy/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let sts_tokens = match &options.auth {
            Auth::SigV4 => None,
            Auth::Sts { gateway_id, sts_endpoint } => Some(TokenCache::new(&endpoint.region, sts_endpoint, gateway_id)),
        };
        Ok(Self {
            endpoint,
            http,
            credentials,
            options,
            session: Mutex::new(Session::default()),
            init_gate: tokio::sync::RwLock::new(()),
            hints: Mutex::new(HashMap::new()),
            out,
            sts_tokens,
        })
    }

    /// Handles one line from stdin.
    pub async fn handle_line(self: Arc<Self>, line: Line) {
        let message = match message::parse(line, self.options.max_message_bytes) {
            Ok(message) => message,
            Err(rejection) => return self.refuse(&rejection).await,
        };
        if message.batch {
            let version = self.session.lock().await.protocol_version.clone();
            if !version.as_deref().is_some_and(|version| BATCH_REVISIONS.contains(&version)) {
                return self.refuse(&Rejection::batch(version.as_deref())).await;
            }
        }
        if let Err(refusal) = self.check_filter(&message).await {
            if let Some(id) = &message.id {
                self.write(rpc_error(id, -32602, &refusal, None)).await;
            }
            return;
        }
        if message.method.as_deref() == Some("initialize") {
            let _initializing = self.init_gate.write().await;
            self.session.lock().await.initialize = Some(message.body.clone());
            self.forward(message).await;
        } else {
            drop(self.init_gate.read().await);
            self.forward(message).await;
        }
    }

    async fn refuse(&self, rejection: &Rejection) {
        tracing::warn!(
            reason = rejection.reason,
            id = %rejection.id,
            code = rejection.code,
            "refused a line from stdin: {}",
            rejection.message
        );
        self.write(rejection.to_line(self.options.max_message_bytes)).await;
    }

    async fn forward(&self, message: Message) {
        match self.send(&message).await {
            Sent::Done => {}
            Sent::SessionLost(generation) => {
                if let Err(error) = self.reinitialize(generation).await {
                    tracing::warn!(%error, reason = "reinitialize-failed", "re-initialization failed");
                    if let Some(id) = &message.id {
                        let text = format!("the server lost the MCP session and re-initializing failed: {error}");
                        self.write(rpc_error(id, -32000, &text, None)).await;
                    }
                    return;
                }
                if let Sent::SessionLost(_) = self.send(&message).await
                    && let Some(id) = &message.id
                {
                    tracing::warn!(reason = "session-lost-again", id = %id, "the new session was refused too");
                    let text =
                        "the server rejected the new MCP session as well; is a load balancer mixing deployments?";
                    self.write(rpc_error(id, -32000, text, None)).await;
                }
            }
        }
    }

    /// Sends with retries, delivering the answer.
    async fn send(&self, message: &Message) -> Sent {
        let effect = self.effect(message).await;
        let body = Bytes::from(message.body.to_string());
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (headers, generation) = self.headers_for(message).await;
            let failure = match self.attempt(&body, headers).await {
                Ok(response) => match self.deliver(message, response, generation).await {
                    Delivery::Sent(sent) => return sent,
                    Delivery::Failed(failure) => failure,
                },
                Err(failure) => failure,
            };
            let retry = attempt < retry::MAX_ATTEMPTS && retry::should_retry(failure.kind(), effect);
            if !retry {
                self.fail(message, &failure).await;
                return Sent::Done;
            }
            let wait = retry::backoff(attempt, failure.retry_after(), retry::jitter());
            let reason = failure.reason();
            tracing::info!(attempt, wait_ms = wait.as_millis() as u64, failure = %failure, %reason, "retrying");
            tokio::time::sleep(wait).await;
        }
    }

    /// Ends a request that failed: its one JSON-RPC error (a notification only gets logged).
    async fn fail(&self, message: &Message, failure: &HttpFailure) {
        let reason = failure.reason();
        let method = message.method.as_deref().unwrap_or_default();
        let id = match (&message.id, message.batch) {
            (Some(id), _) => id.clone(),
            (None, true) => Value::Null,
            (None, false) => {
                tracing::warn!(%reason, method, failure = %failure, "a notification or response was not delivered");
                return;
            }
        };
        if let HttpFailure::JsonRpc(_) = failure {
            // The server's own answer (a 4xx with a JSON-RPC error): not a failure of the proxy.
            tracing::info!(%reason, id = %id, method, "the server refused the request");
        } else {
            tracing::warn!(%reason, id = %id, method, failure = %failure, "request failed");
        }
        self.write(errors::to_rpc_error(&id, failure, &self.endpoint, self.credentials.profile())).await;
    }

    /// One signed POST, up to the response headers.
    async fn attempt(&self, body: &Bytes, headers: HeaderMap) -> Result<reqwest::Response, HttpFailure> {
        let credentials = self.credentials.get().await.map_err(|error| HttpFailure::Credentials(error.message))?;
        let request = match &self.sts_tokens {
            None => sign::signed_post(&self.endpoint, headers, body.clone(), &credentials),
            Some(tokens) => self.with_sts_token(tokens, headers, body.clone(), &credentials).await,
        }
        .map_err(|error| HttpFailure::Signing(error.to_string()))?;
        let request = reqwest::Request::try_from(request).map_err(|error| HttpFailure::Signing(error.to_string()))?;
        let response = tokio::time::timeout(self.options.timeout, self.http.execute(request))
            .await
            .map_err(|_| HttpFailure::Timeout(self.options.timeout))?
            .map_err(HttpFailure::from_reqwest)?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let content_type = content_type(&response);
        if status == StatusCode::NOT_FOUND
            && !content_type.is_empty()
            && (answer::is_json(&content_type) || answer::is_event_stream(&content_type))
        {
            // A JSON-RPC 404 (method not found, unknown session) is an answer, not a failure.
            return Ok(response);
        }
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = answer::read_head(response, self.options.timeout).await;
        if let Some(error) = jsonrpc_error(&body) {
            // The MCP server's own error (HeaderMismatch, -32602, ...): passed on.
            return Err(HttpFailure::JsonRpc(error));
        }
        Err(HttpFailure::Status { status, body, retry_after })
    }

    /// An unsigned POST carrying the STS token (made anew every 4 minutes, or when the
    /// credentials change).
    async fn with_sts_token(
        &self,
        tokens: &TokenCache,
        headers: HeaderMap,
        body: Bytes,
        credentials: &aws_credential_types::Credentials,
    ) -> Result<http::Request<Bytes>, sign::SignError> {
        let token = tokens.token(credentials).await?;
        let mut request = http::Request::builder().method("POST").uri(&self.endpoint.url);
        if let Some(target) = request.headers_mut() {
            *target = headers;
        }
        let mut request = request.body(body).map_err(|error| sign::SignError::Request(error.to_string()))?;
        let value = HeaderValue::try_from(format!("Bearer {token}"))
            .map_err(|error| sign::SignError::Request(error.to_string()))?;
        request.headers_mut().insert(http::header::AUTHORIZATION, value);
        Ok(request)
    }

    /// Reads the answer and writes it to stdout, complete lines only.
    async fn deliver(&self, message: &Message, response: reqwest::Response, generation: u64) -> Delivery {
        let status = response.status();
        let content_type = content_type(&response);
        if message.method.as_deref() == Some("initialize") && status.is_success() {
            let id = response.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
            let mut session = self.session.lock().await;
            session.id = id;
            session.generation += 1;
        }
        if status == StatusCode::ACCEPTED {
            if message.id.is_some() {
                // 202 is for notifications and responses: a request would wait forever.
                let detail = "HTTP 202 Accepted, which answers notifications, not requests";
                return Delivery::Failed(HttpFailure::answer(AnswerProblem::Empty, detail));
            }
            return Delivery::Sent(Sent::Done);
        }
        if answer::is_event_stream(&content_type) {
            self.stream_events(message, response).await;
            return Delivery::Sent(Sent::Done);
        }
        let lost_session =
            status == StatusCode::NOT_FOUND && message.modern_version().is_none() && self.has_session().await;
        if lost_session {
            // 2025-03-26..2025-11-25: 404 means the session is gone (restart, new deployment).
            tracing::info!("server answered 404 for our session; re-initializing");
            return Delivery::Sent(Sent::SessionLost(generation));
        }
        if !answer::is_json(&content_type) {
            let body = answer::read_head(response, self.options.timeout).await;
            let detail = format!("HTTP {} with content type `{content_type}`", status.as_u16());
            return Delivery::Failed(HttpFailure::Answer {
                problem: AnswerProblem::ContentType,
                detail,
                body: Some(body.slice(..body.len().min(512))),
            });
        }
        let mut spooled = match answer::receive(response, self.options.max_answer_bytes, self.options.timeout).await {
            Ok(spooled) => spooled,
            Err(HttpFailure::Answer { problem: AnswerProblem::Empty, .. }) if message.id.is_none() => {
                return Delivery::Sent(Sent::Done);
            }
            Err(failure) => return Delivery::Failed(failure),
        };
        if let Some(id) = &message.id
            && !spooled.envelope.answers(id)
        {
            if spooled.envelope.id == Some(Value::Null) && spooled.envelope.has_error {
                // The server could not tell the id (a parse error): its error, for this request.
                if let Ok(mut value) = spooled.body.parse::<Value>() {
                    value["id"] = id.clone();
                    self.write(value.to_string()).await;
                    return Delivery::Sent(Sent::Done);
                }
            }
            if !status.is_success() {
                // JSON, but not from the MCP server (API Gateway's `{"message":"Not Found"}`).
                return Delivery::Failed(HttpFailure::Status { status, body: spooled.head, retry_after: None });
            }
            return Delivery::Failed(HttpFailure::Answer {
                problem: AnswerProblem::NotTheResponse,
                detail: spooled.envelope.mismatch(id),
                body: Some(spooled.head),
            });
        }
        if inspects(message) && spooled.envelope.is_response() {
            match spooled.body.parse::<Value>() {
                Ok(value) => self.deliver_value(message, value).await,
                Err(error) => {
                    let detail = format!("reading the answer back: {error}");
                    return Delivery::Failed(HttpFailure::answer(AnswerProblem::Spool, detail));
                }
            }
        } else {
            self.write_body(spooled.body).await;
        }
        Delivery::Sent(Sent::Done)
    }

    /// Passes an event stream on: each event's data becomes one stdout line once complete. A
    /// stream that breaks, stalls, or ends before the response to the request ends in one error.
    async fn stream_events(&self, message: &Message, response: reqwest::Response) {
        let limit = usize::try_from(self.options.max_answer_bytes).unwrap_or(usize::MAX);
        let mut reader = EventReader::new(limit);
        let mut stream = response.bytes_stream();
        let mut skipped = None;
        loop {
            let chunk = match tokio::time::timeout(self.options.timeout, stream.next()).await {
                Ok(Some(Ok(chunk))) => chunk,
                Ok(None) => break,
                Ok(Some(Err(error))) => {
                    let detail = crate::credentials::aws_error_chain(&error);
                    return self.fail(message, &HttpFailure::answer(AnswerProblem::StreamBroken, detail)).await;
                }
                Err(_) => {
                    let detail = format!("no event for {} s", self.options.timeout.as_secs());
                    return self.fail(message, &HttpFailure::answer(AnswerProblem::StreamStalled, detail)).await;
                }
            };
            reader.push(&chunk);
            loop {
                match reader.next_event() {
                    Ok(Some(event)) => {
                        if self.deliver_event(message, event.data, &mut skipped).await {
                            return; // the response: the stream has nothing more for us
                        }
                    }
                    Ok(None) => break,
                    Err(error) => return self.fail(message, &too_large_event(&error)).await,
                }
            }
        }
        match reader.finish() {
            Ok(Some(event)) => {
                if self.deliver_event(message, event.data, &mut skipped).await {
                    return;
                }
            }
            Ok(None) => {}
            Err(error) => return self.fail(message, &too_large_event(&error)).await,
        }
        if message.id.is_some() {
            let detail = skipped.unwrap_or_else(|| "it had no response event".to_owned());
            self.fail(message, &HttpFailure::answer(AnswerProblem::StreamEnded, detail)).await;
        }
    }

    /// Writes one event's message; true when it was the response to `message`. Events that are
    /// not JSON, and responses to other requests, are dropped (and noted in `skipped`).
    async fn deliver_event(&self, message: &Message, data: Bytes, skipped: &mut Option<String>) -> bool {
        if data.iter().all(u8::is_ascii_whitespace) {
            return false; // a priming or keep-alive event
        }
        // The event's data buffer itself (no copy): its `\n`s that joined data lines become spaces.
        let mut line = data.try_into_mut().unwrap_or_else(|shared| BytesMut::from(&shared[..]));
        answer::one_line(&mut line);
        let line = line.freeze();
        let mut scan = JsonScan::new();
        let envelope = match scan.push(&line).and_then(|()| scan.finish()) {
            Ok(envelope) => envelope,
            Err(error) => {
                let id = message.id.clone().unwrap_or_default();
                tracing::warn!(reason = "sse-event-not-json", id = %id, %error, "dropped an event that is not JSON");
                *skipped = Some(format!("an event was not JSON ({error})"));
                return false;
            }
        };
        let Some(id) = &message.id else {
            self.write(line).await;
            return false;
        };
        if !envelope.is_response() {
            self.write(line).await; // a notification (progress, log) or a request of the server
            return false;
        }
        if envelope.answers(id) || (envelope.id == Some(Value::Null) && envelope.has_error) {
            match serde_json::from_slice::<Value>(&line) {
                Ok(mut value) if !envelope.answers(id) => {
                    value["id"] = id.clone();
                    self.write(value.to_string()).await;
                }
                Ok(value) if inspects(message) => self.deliver_value(message, value).await,
                _ => self.write(line).await,
            }
            return true;
        }
        let mismatch = envelope.mismatch(id);
        tracing::warn!(reason = "sse-wrong-id", id = %id, %mismatch, "dropped a response to another request");
        *skipped = Some(format!("a response event had {mismatch}"));
        false
    }

    /// Writes one JSON-RPC response of `initialize` or `tools/list`, applying the tool filter
    /// and noting tool hints and the negotiated version.
    async fn deliver_value(&self, message: &Message, mut value: Value) {
        if message.method.as_deref() == Some("initialize")
            && let Some(version) = value["result"]["protocolVersion"].as_str()
        {
            self.session.lock().await.protocol_version = Some(version.to_owned());
        }
        if message.method.as_deref() == Some("tools/list")
            && let Some(result) = value.get_mut("result")
        {
            self.note_hints(result).await;
            self.options.filter.apply_to_list(result);
        }
        self.write(value.to_string()).await;
    }

    /// The answer's one message, for the proxy's own requests (`tools/list` for hints, the
    /// replayed `initialize`): the JSON body, or the event that answers `id`.
    async fn read_answer(&self, response: reqwest::Response, id: &Value) -> Result<Value, HttpFailure> {
        let limit = self.options.max_answer_bytes;
        if !answer::is_event_stream(&content_type(&response)) {
            let mut spooled = answer::receive(response, limit, self.options.timeout).await?;
            if !spooled.envelope.answers(id) {
                return Err(HttpFailure::answer(AnswerProblem::NotTheResponse, spooled.envelope.mismatch(id)));
            }
            return spooled
                .body
                .parse()
                .map_err(|error| HttpFailure::answer(AnswerProblem::NotJson, error.to_string()));
        }
        let mut reader = EventReader::new(usize::try_from(limit).unwrap_or(usize::MAX));
        let mut stream = response.bytes_stream();
        let mut ended = false;
        loop {
            let event = match reader.next_event() {
                Ok(Some(event)) => Some(event),
                Ok(None) if ended => None,
                Ok(None) => match tokio::time::timeout(self.options.timeout, stream.next()).await {
                    Ok(Some(Ok(chunk))) => {
                        reader.push(&chunk);
                        continue;
                    }
                    Ok(None) => {
                        ended = true;
                        let rest = std::mem::replace(&mut reader, EventReader::new(0));
                        rest.finish().map_err(|error| too_large_event(&error))?
                    }
                    Ok(Some(Err(error))) => {
                        let detail = crate::credentials::aws_error_chain(&error);
                        return Err(HttpFailure::answer(AnswerProblem::StreamBroken, detail));
                    }
                    Err(_) => return Err(HttpFailure::answer(AnswerProblem::StreamStalled, "no event in time")),
                },
                Err(error) => return Err(too_large_event(&error)),
            };
            let Some(event) = event else {
                return Err(HttpFailure::answer(AnswerProblem::StreamEnded, "it had no response event"));
            };
            if let Ok(value) = serde_json::from_slice::<Value>(&event.data)
                && value.get("id") == Some(id)
                && value.get("method").is_none()
            {
                return Ok(value);
            }
        }
    }

    async fn note_hints(&self, result: &Value) {
        let Some(tools) = result.get("tools").and_then(Value::as_array) else {
            return;
        };
        let mut hints = self.hints.lock().await;
        for tool in tools {
            if let Some(name) = tool["name"].as_str() {
                hints.insert(name.to_owned(), ToolHints::of(tool));
            }
        }
    }

    /// Refuses filtered tools locally, fetching `tools/list` first when hints are needed.
    async fn check_filter(&self, message: &Message) -> Result<(), String> {
        if message.method.as_deref() != Some("tools/call") || !self.options.filter.is_active() {
            return Ok(());
        }
        let name = message.name().unwrap_or_default().to_owned();
        let mut hints = self.hints.lock().await.get(&name).copied();
        if hints.is_none() && self.options.filter.needs_hints() {
            hints = self.fetch_hints(message, &name).await;
        }
        match self.options.filter.refusal(&name, hints) {
            Some(refusal) => Err(refusal),
            None => Ok(()),
        }
    }

    /// Asks the server for `tools/list` (same era as `like`) to learn a tool's annotations.
    async fn fetch_hints(&self, like: &Message, name: &str) -> Option<ToolHints> {
        let mut params = json!({});
        if let Some(meta) = like.body.get("params").and_then(|p| p.get("_meta")) {
            params["_meta"] = meta.clone();
            if let Some(meta) = params["_meta"].as_object_mut() {
                meta.remove("progressToken");
            }
        }
        let list = Message::new(
            json!({"jsonrpc": "2.0", "id": "mcp-sigv4-proxy/tools-list", "method": "tools/list", "params": params}),
        );
        let body = Bytes::from(list.body.to_string());
        let (headers, _) = self.headers_for(&list).await;
        let response = self.attempt(&body, headers).await.ok()?;
        let id = list.id.clone().unwrap_or_default();
        let value = match self.read_answer(response, &id).await {
            Ok(value) => value,
            Err(failure) => {
                tracing::warn!(reason = %failure.reason(), %failure, "tools/list for the tool filter failed");
                return None;
            }
        };
        self.note_hints(&value["result"]).await;
        self.hints.lock().await.get(name).copied()
    }

    async fn effect(&self, message: &Message) -> Effect {
        let method = message.method.as_deref().unwrap_or_default();
        if method != "tools/call" {
            return retry::effect(method, None, None);
        }
        let hints = self.hints.lock().await.get(message.name().unwrap_or_default()).copied().unwrap_or_default();
        retry::effect(method, hints.read_only, hints.idempotent)
    }

    async fn has_session(&self) -> bool {
        self.session.lock().await.id.is_some()
    }

    /// The MCP headers for `message`, and the session generation they belong to.
    async fn headers_for(&self, message: &Message) -> (HeaderMap, u64) {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.insert("accept", HeaderValue::from_static(ACCEPT));
        let generation;
        if let Some(version) = message
            .modern_version()
            .or_else(|| (message.method.as_deref() == Some("server/discover")).then_some("2026-07-28"))
        {
            insert(&mut headers, "mcp-protocol-version", version);
            if let Some(method) = &message.method {
                insert(&mut headers, "mcp-method", method);
            }
            if let Some(name) = message.name() {
                insert(&mut headers, "mcp-name", &header_safe(name));
            }
            generation = self.session.lock().await.generation;
        } else {
            let session = self.session.lock().await;
            generation = session.generation;
            if message.method.as_deref() != Some("initialize") {
                if let Some(id) = &session.id {
                    insert(&mut headers, "mcp-session-id", id);
                }
                if let Some(version) = &session.protocol_version {
                    insert(&mut headers, "mcp-protocol-version", version);
                }
            }
        }
        // W3C Trace Context: the client's, or a new trace for this message.
        let trace = message.traceparent().and_then(TraceContext::parse).unwrap_or_else(TraceContext::new_root);
        insert(&mut headers, "traceparent", &trace.to_string());
        tracing::debug!(trace_id = %trace.trace_id_hex(), method = message.method.as_deref(), "forwarding");
        for (name, value) in &self.options.headers {
            headers.insert(name.clone(), value.clone());
        }
        (headers, generation)
    }

    /// Replays the client's initialize (and `notifications/initialized`) to get a new session.
    async fn reinitialize(&self, failed_generation: u64) -> Result<(), String> {
        let initialize = {
            let session = self.session.lock().await;
            if session.generation != failed_generation {
                return Ok(()); // another task already re-initialized
            }
            session.initialize.clone().ok_or("the client never sent initialize")?
        };
        let mut replay = initialize;
        replay["id"] = json!("mcp-sigv4-proxy/reinitialize");
        let message = Message::new(replay);
        let body = Bytes::from(message.body.to_string());
        let (headers, _) = self.headers_for(&message).await;
        let response = self.attempt(&body, headers).await.map_err(|failure| failure.to_string())?;
        let session_id = response.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let id = message.id.clone().unwrap_or_default();
        let value =
            self.read_answer(response, &id).await.map_err(|failure| format!("bad initialize answer: {failure}"))?;
        if let Some(error) = value.get("error") {
            return Err(format!("initialize failed: {error}"));
        }
        {
            let mut session = self.session.lock().await;
            session.id = session_id;
            session.generation += 1;
            if let Some(version) = value["result"]["protocolVersion"].as_str() {
                session.protocol_version = Some(version.to_owned());
            }
        }
        let initialized = Message::new(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        let body = Bytes::from(initialized.body.to_string());
        let (headers, _) = self.headers_for(&initialized).await;
        self.attempt(&body, headers).await.map_err(|failure| failure.to_string())?;
        tracing::info!("re-initialized the MCP session");
        Ok(())
    }

    async fn write(&self, line: impl Into<Bytes>) {
        if self.out.send(Out::Line(line.into())).await.is_err() {
            tracing::debug!("stdout writer is gone");
        }
    }

    async fn write_body(&self, body: Body) {
        let item = match body {
            Body::Memory(bytes) => Out::Line(bytes),
            Body::File { file, bytes } => Out::File { file, bytes },
        };
        if self.out.send(item).await.is_err() {
            tracing::debug!("stdout writer is gone");
        }
    }
}

fn insert(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

/// A header value as is when it is plain visible ASCII, else the `=?base64?…?=` sentinel form.
fn header_safe(value: &str) -> String {
    let visible_ascii = value.bytes().all(|b| (0x20..0x7f).contains(&b));
    let padded = value.starts_with(' ') || value.ends_with(' ');
    let looks_encoded = value.starts_with("=?base64?") && value.ends_with("?=");
    if visible_ascii && !padded && !looks_encoded {
        value.to_owned()
    } else {
        use base64::Engine as _;
        format!("=?base64?{}?=", base64::engine::general_purpose::STANDARD.encode(value))
    }
}

/// The content type of a response ("" when it has none).
fn content_type(response: &reqwest::Response) -> String {
    response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

/// Whether the proxy reads this answer itself (session version, tool hints and filter).
fn inspects(message: &Message) -> bool {
    matches!(message.method.as_deref(), Some("initialize" | "tools/list"))
}

/// A JSON-RPC error object in an error status's body.
fn jsonrpc_error(body: &[u8]) -> Option<Value> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .filter(|value| value.get("jsonrpc").is_some() && value.get("error").is_some())
}

fn too_large_event(error: &SseError) -> HttpFailure {
    let detail = match error {
        SseError::EventTooLarge { limit } => format!("more than --max-answer-bytes {limit} in one event"),
        other => other.to_string(),
    };
    HttpFailure::answer(AnswerProblem::EventTooLarge, detail)
}

/// A JSON-RPC error line.
pub fn rpc_error(id: &Value, code: i64, message: &str, data: Option<Value>) -> Vec<u8> {
    let mut error = json!({"code": code, "message": message});
    if let Some(data) = data {
        error["data"] = data;
    }
    json!({"jsonrpc": "2.0", "id": id, "error": error}).to_string().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_use_the_base64_sentinel_when_needed() {
        assert_eq!(header_safe("file"), "file");
        assert_eq!(header_safe("Hello, 世界"), "=?base64?SGVsbG8sIOS4lueVjA==?=");
        assert_eq!(header_safe(" padded "), "=?base64?IHBhZGRlZCA=?=");
        assert_eq!(header_safe("=?base64?literal?="), "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=");
    }
}

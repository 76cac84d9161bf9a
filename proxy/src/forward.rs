//! Forwarding: one signed POST per JSON-RPC message, answers streamed back to stdout.

use std::{collections::HashMap, sync::Arc, time::Duration};

use bytes::{Bytes, BytesMut};
use futures::StreamExt as _;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde_json::{Value, json};
use tokio::sync::{Mutex, mpsc};

use crate::{
    credentials::CredentialSource,
    endpoint::Endpoint,
    errors::{self, Failure as HttpFailure},
    filter::{ToolFilter, ToolHints},
    retry::{self, Effect},
    sign,
};

const MODERN_VERSION_KEY: &str = "io.modelcontextprotocol/protocolVersion";
const ACCEPT: &str = "application/json, text/event-stream";

/// Options of the forwarder.
#[derive(Debug, Clone)]
pub struct Options {
    /// Longest wait for the response headers, and between two chunks of a streamed answer.
    pub timeout: Duration,
    /// Extra headers sent with every request (`--header K=V`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Tool filters.
    pub filter: ToolFilter,
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
}

/// A streamed JSON answer goes to stdout in copies of at most this many bytes, at most
/// [`PIECES_IN_FLIGHT`] of them (256 KiB) waiting. hyper's chunks are slices of its read buffer
/// (up to ~400 KiB each), and as long as one is queued hyper has to allocate a fresh buffer for
/// its next read; a copy (a memcpy into a piece that malloc reuses) lets it keep the one it has.
const PIECE_BYTES: usize = 64 * 1024;
const PIECES_IN_FLIGHT: usize = 4;

/// What the stdout writer receives: a whole line, or a line that arrives in chunks (a large
/// JSON answer streamed through without being held in memory). The writer ends each with `\n`
/// and writes one item at a time, so lines never interleave.
#[derive(Debug)]
pub enum Out {
    /// One complete line (without the newline).
    Line(Bytes),
    /// The chunks of one line, in order.
    Chunks(mpsc::Receiver<Bytes>),
}

/// How one message is sent: method, id and the headers it needs.
#[derive(Debug, Clone)]
struct Message {
    body: Value,
    method: Option<String>,
    id: Option<Value>,
}

impl Message {
    fn new(body: Value) -> Self {
        let method = body.get("method").and_then(Value::as_str).map(str::to_owned);
        let id = body.get("id").filter(|id| !id.is_null()).cloned();
        Self { body, method, id }
    }

    /// The 2026-07-28 protocol version carried in `_meta`, if this is a modern message.
    fn modern_version(&self) -> Option<&str> {
        self.body.get("params")?.get("_meta")?.get(MODERN_VERSION_KEY)?.as_str()
    }

    /// `params.name` or `params.uri`, mirrored into `Mcp-Name`.
    fn name(&self) -> Option<&str> {
        let params = self.body.get("params")?;
        params.get("name").or_else(|| params.get("uri"))?.as_str()
    }
}

/// The outcome of sending one message.
enum Sent {
    /// Answer delivered (or nothing to deliver).
    Done,
    /// The server does not know our session: re-initialize and send again.
    SessionLost(u64),
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
        Ok(Self {
            endpoint,
            http,
            credentials,
            options,
            session: Mutex::new(Session::default()),
            init_gate: tokio::sync::RwLock::new(()),
            hints: Mutex::new(HashMap::new()),
            out,
        })
    }

    /// Handles one line from stdin.
    pub async fn handle_line(self: Arc<Self>, line: String) {
        let body: Value = match serde_json::from_str(&line) {
            Ok(body) => body,
            Err(error) => {
                tracing::warn!(%error, "stdin line is not JSON");
                let message = format!("Parse error: the proxy received a line that is not JSON ({error})");
                self.write(rpc_error(&Value::Null, -32700, &message, None)).await;
                return;
            }
        };
        let message = Message::new(body);
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

    async fn forward(&self, message: Message) {
        match self.send(&message).await {
            Sent::Done => {}
            Sent::SessionLost(generation) => {
                if let Err(error) = self.reinitialize(generation).await {
                    tracing::warn!(%error, "re-initialization failed");
                    if let Some(id) = &message.id {
                        let text = format!("the server lost the MCP session and re-initializing failed: {error}");
                        self.write(rpc_error(id, -32000, &text, None)).await;
                    }
                    return;
                }
                if let Sent::SessionLost(_) = self.send(&message).await
                    && let Some(id) = &message.id
                {
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
                Ok(response) => return self.deliver(message, response, generation).await,
                Err(failure) => failure,
            };
            let retry = attempt < retry::MAX_ATTEMPTS && retry::should_retry(failure.kind(), effect);
            if !retry {
                if let Some(id) = &message.id {
                    self.write(errors::to_rpc_error(id, &failure, &self.endpoint, self.credentials.profile())).await;
                } else {
                    tracing::warn!(failure = %failure, method = ?message.method, "notification not delivered");
                }
                return Sent::Done;
            }
            let wait = retry::backoff(attempt, failure.retry_after(), retry::jitter());
            tracing::info!(attempt, wait_ms = wait.as_millis() as u64, failure = %failure, "retrying");
            tokio::time::sleep(wait).await;
        }
    }

    /// One signed POST, up to the response headers.
    async fn attempt(&self, body: &Bytes, headers: HeaderMap) -> Result<reqwest::Response, HttpFailure> {
        let credentials = self.credentials.get().await.map_err(|error| HttpFailure::Credentials(error.message))?;
        let request = sign::signed_post(&self.endpoint, headers, body.clone(), &credentials)
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
        if status == StatusCode::NOT_FOUND && response.headers().contains_key("content-type") {
            // A JSON-RPC 404 (method not found, unknown session) is an answer, not a failure.
            return Ok(response);
        }
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = read_body(response, self.options.timeout).await;
        if is_jsonrpc(&body) {
            // The MCP server's own error (HeaderMismatch, -32602, ...): pass it through as is.
            return Err(HttpFailure::JsonRpc(body));
        }
        Err(HttpFailure::Status { status, body, retry_after })
    }

    /// Writes the answer to stdout as it arrives.
    async fn deliver(&self, message: &Message, response: reqwest::Response, generation: u64) -> Sent {
        let status = response.status();
        let content_type =
            response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        if message.method.as_deref() == Some("initialize") && status.is_success() {
            let id = response.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
            let mut session = self.session.lock().await;
            session.id = id;
            session.generation += 1;
        }
        if status == StatusCode::ACCEPTED {
            return Sent::Done;
        }
        if content_type.starts_with("text/event-stream") {
            self.stream_events(message, response).await;
            return Sent::Done;
        }
        let lost_session =
            status == StatusCode::NOT_FOUND && message.modern_version().is_none() && self.has_session().await;
        if lost_session {
            // 2025-03-26..2025-11-25: 404 means the session is gone (restart, new deployment).
            tracing::info!("server answered 404 for our session; re-initializing");
            return Sent::SessionLost(generation);
        }
        let inspect = matches!(message.method.as_deref(), Some("initialize" | "tools/list"));
        if !inspect {
            self.stream_json(message, response).await;
            return Sent::Done;
        }
        let body = read_body(response, self.options.timeout).await;
        if !body.is_empty() {
            self.deliver_message(message, body).await;
        }
        Sent::Done
    }

    /// Passes a JSON answer to stdout piece by piece (see [`PIECE_BYTES`]). Raw line breaks can
    /// only be insignificant whitespace in valid JSON (inside strings they are escaped), so they
    /// become spaces.
    async fn stream_json(&self, message: &Message, response: reqwest::Response) {
        let mut stream = response.bytes_stream();
        let mut sender = None;
        loop {
            let chunk = match tokio::time::timeout(self.options.timeout, stream.next()).await {
                Ok(Some(Ok(chunk))) => chunk,
                Ok(None) => return,
                Ok(Some(Err(error))) => {
                    drop(sender);
                    self.stream_broken(message, &format!("the answer broke off: {error}")).await;
                    return;
                }
                Err(_) => {
                    drop(sender);
                    let text = format!("the answer stalled for {} s; raise --timeout", self.options.timeout.as_secs());
                    self.stream_broken(message, &text).await;
                    return;
                }
            };
            if chunk.is_empty() {
                continue;
            }
            if sender.is_none() {
                let (pieces, receiver) = mpsc::channel(PIECES_IN_FLIGHT);
                if self.out.send(Out::Chunks(receiver)).await.is_err() {
                    return;
                }
                sender = Some(pieces);
            }
            let Some(pieces) = &sender else { return };
            for piece in one_line_pieces(&chunk) {
                if pieces.send(piece).await.is_err() {
                    return;
                }
            }
        }
    }

    /// Streams SSE events: each event's data becomes one stdout line as soon as it is complete.
    async fn stream_events(&self, message: &Message, response: reqwest::Response) {
        let mut stream = response.bytes_stream();
        let mut buffer = BytesMut::new();
        loop {
            let chunk = match tokio::time::timeout(self.options.timeout, stream.next()).await {
                Ok(Some(Ok(chunk))) => chunk,
                Ok(None) => break,
                Ok(Some(Err(error))) => {
                    self.stream_broken(message, &format!("the event stream broke: {error}")).await;
                    return;
                }
                Err(_) => {
                    let text = format!("no event for {} s; raise --timeout", self.options.timeout.as_secs());
                    self.stream_broken(message, &text).await;
                    return;
                }
            };
            buffer.extend_from_slice(&chunk);
            while let Some((end, separator)) = find_event_end(&buffer) {
                let event = buffer.split_to(end + separator);
                if let Some(data) = event_data(&event[..end]) {
                    self.deliver_message(message, data).await;
                }
            }
        }
        if let Some(data) = event_data(&buffer) {
            self.deliver_message(message, data).await;
        }
    }

    async fn stream_broken(&self, message: &Message, text: &str) {
        tracing::warn!(text, "event stream ended early");
        if let Some(id) = &message.id {
            self.write(rpc_error(id, -32000, text, None)).await;
        }
    }

    /// Writes one JSON-RPC message, applying the tool filter and noting tool hints.
    async fn deliver_message(&self, message: &Message, body: Bytes) {
        let is_answer_to_list = message.method.as_deref() == Some("tools/list");
        let is_initialize = message.method.as_deref() == Some("initialize");
        if !(is_answer_to_list || is_initialize || body.contains(&b'\n')) {
            self.write(body).await;
            return;
        }
        let mut value: Value = match serde_json::from_slice(&body) {
            Ok(value) => value,
            Err(error) => {
                tracing::warn!(%error, "the server sent a message that is not JSON");
                if let Some(id) = &message.id {
                    let text = format!("the server answered with something that is not JSON: {error}");
                    self.write(rpc_error(id, -32603, &text, Some(json!({ "body": lossy(&body) })))).await;
                }
                return;
            }
        };
        let is_response = value.get("id").is_some() && value.get("method").is_none();
        if is_response
            && is_initialize
            && let Some(version) = value["result"]["protocolVersion"].as_str()
        {
            self.session.lock().await.protocol_version = Some(version.to_owned());
        }
        if is_response
            && is_answer_to_list
            && let Some(result) = value.get_mut("result")
        {
            self.note_hints(result).await;
            self.options.filter.apply_to_list(result);
        }
        self.write(value.to_string()).await;
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
        let body = final_message(response, self.options.timeout).await;
        let value: Value = serde_json::from_slice(&body).ok()?;
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
        let answer = final_message(response, self.options.timeout).await;
        let value: Value =
            serde_json::from_slice(&answer).map_err(|error| format!("bad initialize answer: {error}"))?;
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

async fn read_body(response: reqwest::Response, timeout: Duration) -> Bytes {
    tokio::time::timeout(timeout, response.bytes()).await.ok().and_then(Result::ok).unwrap_or_default()
}

/// The last message of an answer: the body itself for JSON, the last event's data for SSE.
async fn final_message(response: reqwest::Response, timeout: Duration) -> Bytes {
    let is_sse = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let mut body = BytesMut::from(&read_body(response, timeout).await[..]);
    if !is_sse {
        return body.freeze();
    }
    let mut last = None;
    while let Some((end, separator)) = find_event_end(&body) {
        let event = body.split_to(end + separator);
        last = event_data(&event[..end]).or(last);
    }
    event_data(&body).or(last).unwrap_or_default()
}

/// `chunk` copied into pieces of at most [`PIECE_BYTES`], its raw line breaks made spaces.
fn one_line_pieces(chunk: &[u8]) -> impl Iterator<Item = Bytes> + '_ {
    let has_line_breaks = chunk.contains(&b'\n') || chunk.contains(&b'\r');
    chunk.chunks(PIECE_BYTES).map(move |part| {
        let mut piece = part.to_vec();
        if has_line_breaks {
            piece.iter_mut().filter(|b| matches!(b, b'\n' | b'\r')).for_each(|b| *b = b' ');
        }
        Bytes::from(piece)
    })
}

fn is_jsonrpc(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body).is_ok_and(|value| value.get("jsonrpc").is_some())
}

/// A JSON-RPC error line.
pub fn rpc_error(id: &Value, code: i64, message: &str, data: Option<Value>) -> Vec<u8> {
    let mut error = json!({"code": code, "message": message});
    if let Some(data) = data {
        error["data"] = data;
    }
    json!({"jsonrpc": "2.0", "id": id, "error": error}).to_string().into_bytes()
}

fn lossy(body: &[u8]) -> String {
    String::from_utf8_lossy(body).into_owned()
}

/// Where the first complete SSE event ends: (index of the blank line, separator length).
fn find_event_end(buffer: &[u8]) -> Option<(usize, usize)> {
    let lf = buffer.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2));
    let crlf = buffer.windows(4).position(|w| w == b"\r\n\r\n").map(|i| (i, 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// The data of one SSE event (its `data:` lines joined), if it has any.
fn event_data(event: &[u8]) -> Option<Bytes> {
    let mut data = Vec::new();
    let mut any = false;
    for line in event.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(rest) = line.strip_prefix(b"data:") {
            if any {
                data.push(b'\n');
            }
            data.extend_from_slice(rest.strip_prefix(b" ").unwrap_or(rest));
            any = true;
        }
    }
    (any && !data.iter().all(u8::is_ascii_whitespace)).then(|| Bytes::from(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_chunks_become_small_one_line_pieces() {
        let text = "{\"a\": [1,\r\n 2]}\n".repeat(PIECE_BYTES / 4);
        let pieces: Vec<Bytes> = one_line_pieces(text.as_bytes()).collect();
        assert!(pieces.len() > 1 && pieces.iter().all(|piece| piece.len() <= PIECE_BYTES));
        let joined: Vec<u8> = pieces.concat();
        assert_eq!(joined, text.replace(['\r', '\n'], " ").into_bytes());
    }

    #[test]
    fn sse_events_are_split_and_joined() {
        let stream = b"event: message\ndata: {\"a\":1}\n\n: keep-alive\n\ndata: {\"b\":\r\ndata: 2}\r\n\r\ndata: tail";
        let mut buffer = BytesMut::from(&stream[..]);
        let mut events = Vec::new();
        while let Some((end, separator)) = find_event_end(&buffer) {
            let event = buffer.split_to(end + separator);
            events.push(event_data(&event[..end]));
        }
        assert_eq!(events, vec![Some(Bytes::from("{\"a\":1}")), None, Some(Bytes::from("{\"b\":\n2}"))]);
        assert_eq!(event_data(&buffer), Some(Bytes::from("tail")));
    }

    #[test]
    fn header_values_use_the_base64_sentinel_when_needed() {
        assert_eq!(header_safe("file"), "file");
        assert_eq!(header_safe("Hello, 世界"), "=?base64?SGVsbG8sIOS4lueVjA==?=");
        assert_eq!(header_safe(" padded "), "=?base64?IHBhZGRlZCA=?=");
        assert_eq!(header_safe("=?base64?literal?="), "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=");
    }

    #[test]
    fn messages_know_their_era_and_name() {
        let modern = Message::new(
            json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"file","_meta":{MODERN_VERSION_KEY:"2026-07-28"}}}),
        );
        assert_eq!(modern.modern_version(), Some("2026-07-28"));
        assert_eq!(modern.name(), Some("file"));
        let legacy = Message::new(json!({"jsonrpc":"2.0","method":"notifications/initialized"}));
        assert_eq!(legacy.modern_version(), None);
    }
}

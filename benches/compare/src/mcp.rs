//! MCP over Streamable HTTP, as far as a load generator needs it: the request to send (body and
//! headers for the chosen revision), the handshake of pre-2026 revisions, and what came back.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, header};
use serde_json::{Value, json};

/// The stateless revision: no handshake, the version travels in every request's `_meta`.
pub const LATEST: &str = "2026-07-28";
const CLIENT_INFO: &str = concat!("mcp-compare/", env!("CARGO_PKG_VERSION"));

/// The request sent, again and again, with a fresh id each time.
#[derive(Debug, Clone)]
pub struct RequestTemplate {
    method: String,
    params: Value,
    protocol: String,
    /// The `Mcp-Name` header of 2026-07-28 (tool name, resource URI or prompt name).
    name: Option<String>,
}

impl RequestTemplate {
    /// A request of `method` with `params` (a JSON object) in revision `protocol`.
    pub fn new(method: &str, params: Value, protocol: &str) -> anyhow::Result<Self> {
        let Value::Object(mut object) = params else { anyhow::bail!("the request's params must be a JSON object") };
        if protocol.len() != 10 || !protocol.starts_with("20") {
            anyhow::bail!("--protocol `{protocol}` is not an MCP revision such as {LATEST} or 2025-11-25");
        }
        let name_key = match method {
            "tools/call" | "prompts/get" => Some("name"),
            "resources/read" => Some("uri"),
            _ => None,
        };
        let name = name_key.and_then(|key| object.get(key)).and_then(Value::as_str).map(str::to_owned);
        if protocol >= LATEST {
            let meta = object.entry("_meta").or_insert_with(|| json!({}));
            if let Value::Object(meta) = meta {
                meta.insert("io.modelcontextprotocol/protocolVersion".into(), protocol.into());
                meta.insert("io.modelcontextprotocol/clientCapabilities".into(), json!({}));
                meta.insert(
                    "io.modelcontextprotocol/clientInfo".into(),
                    json!({ "name": "mcp-compare", "version": env!("CARGO_PKG_VERSION") }),
                );
            }
        }
        Ok(Self { method: method.to_owned(), params: Value::Object(object), protocol: protocol.to_owned(), name })
    }

    /// The tool, resource or prompt named by the request, if any.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Whether this revision has no handshake.
    pub fn is_stateless(&self) -> bool {
        self.protocol.as_str() >= LATEST
    }

    /// The JSON-RPC body with id `id`.
    pub fn body(&self, id: u64) -> Bytes {
        let message = json!({ "jsonrpc": "2.0", "id": id, "method": self.method, "params": self.params });
        Bytes::from(message.to_string())
    }

    /// The HTTP headers of the request (`session`: the `Mcp-Session-Id` of the handshake).
    pub fn headers(&self, session: Option<&str>) -> HeaderMap {
        let mut headers = base_headers();
        // 2025-03-26 and earlier do not define the version header.
        if self.protocol.as_str() >= "2025-06-18" {
            insert(&mut headers, "mcp-protocol-version", &self.protocol);
        }
        if self.is_stateless() {
            insert(&mut headers, "mcp-method", &self.method);
            if let Some(name) = &self.name {
                insert(&mut headers, "mcp-name", name);
            }
        }
        if let Some(session) = session {
            insert(&mut headers, "mcp-session-id", session);
        }
        headers
    }

    /// The `initialize` request of a pre-2026 handshake.
    pub fn initialize(&self) -> (Bytes, HeaderMap) {
        let message = json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {
                "protocolVersion": self.protocol,
                "capabilities": {},
                "clientInfo": { "name": "mcp-compare", "version": env!("CARGO_PKG_VERSION") },
            },
        });
        (Bytes::from(message.to_string()), base_headers())
    }

    /// The `notifications/initialized` that completes the handshake.
    pub fn initialized(&self, session: Option<&str>) -> (Bytes, HeaderMap) {
        let message = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
        let mut headers = self.headers(session);
        headers.remove("mcp-method");
        (Bytes::from(message.to_string()), headers)
    }
}

fn base_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::ACCEPT, HeaderValue::from_static("application/json, text/event-stream"));
    headers.insert(header::USER_AGENT, HeaderValue::from_static(CLIENT_INFO));
    headers
}

fn insert(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(HeaderName::from_static(name), value);
    }
}

/// How one request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A JSON-RPC result (for tools/call: not `isError`).
    Ok,
    /// A tools/call result with `isError: true`.
    ToolError,
    /// A JSON-RPC error answer.
    RpcError(i64),
    /// An HTTP status other than 200/202.
    Http(u16),
    /// No answer within --timeout.
    Timeout,
    /// The connection could not be made or broke.
    Connect,
    /// 200 with a body that holds no JSON-RPC answer for the request.
    Invalid,
}

impl Outcome {
    /// Whether the call succeeded.
    pub fn is_ok(&self) -> bool {
        *self == Self::Ok
    }

    /// The kind of failure, as counted in reports (`None` for success).
    pub fn error_kind(&self) -> Option<String> {
        match self {
            Self::Ok => None,
            Self::ToolError => Some("tool error (isError)".into()),
            Self::RpcError(code) => Some(format!("JSON-RPC {code}")),
            Self::Http(status) => Some(format!("HTTP {status}")),
            Self::Timeout => Some("timeout".into()),
            Self::Connect => Some("connection".into()),
            Self::Invalid => Some("invalid answer".into()),
        }
    }
}

/// What an HTTP answer with `status`, `content_type` and `body` means for request `id`.
pub fn classify(status: u16, content_type: &str, body: &[u8], id: u64) -> Outcome {
    if status != 200 {
        return Outcome::Http(status);
    }
    let answer = if content_type.starts_with("text/event-stream") {
        sse_messages(body).find(|message| message.get("id").and_then(Value::as_u64) == Some(id))
    } else {
        serde_json::from_slice::<Value>(body).ok()
    };
    let Some(answer) = answer else { return Outcome::Invalid };
    if let Some(error) = answer.get("error") {
        return Outcome::RpcError(error.get("code").and_then(Value::as_i64).unwrap_or(0));
    }
    match answer.get("result") {
        Some(result) if result.get("isError") == Some(&Value::Bool(true)) => Outcome::ToolError,
        Some(_) => Outcome::Ok,
        None => Outcome::Invalid,
    }
}

/// The JSON messages in the events of an SSE body.
fn sse_messages(body: &[u8]) -> impl Iterator<Item = Value> + '_ {
    mcp_wire::sse::events(body).filter_map(|event| serde_json::from_slice(&event.data).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stateless_requests_carry_version_meta_and_standard_headers() {
        let params = json!({ "name": "search", "arguments": { "query": "x" } });
        let template = RequestTemplate::new("tools/call", params, LATEST).unwrap_or_else(|e| panic!("{e}"));
        let body: Value = serde_json::from_slice(&template.body(7)).unwrap_or_default();
        assert_eq!(body["id"], 7);
        assert_eq!(body["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"], LATEST);
        assert_eq!(body["params"]["arguments"]["query"], "x");
        let headers = template.headers(None);
        assert_eq!(headers["mcp-method"], "tools/call");
        assert_eq!(headers["mcp-name"], "search");
        assert_eq!(headers["mcp-protocol-version"], LATEST);
    }

    #[test]
    fn older_revisions_send_no_meta_and_keep_the_session() {
        let template = RequestTemplate::new("tools/list", json!({}), "2025-03-26").unwrap_or_else(|e| panic!("{e}"));
        let body: Value = serde_json::from_slice(&template.body(1)).unwrap_or_default();
        assert!(body["params"].get("_meta").is_none());
        let headers = template.headers(Some("abc"));
        assert!(headers.get("mcp-protocol-version").is_none());
        assert!(headers.get("mcp-method").is_none());
        assert_eq!(headers["mcp-session-id"], "abc");
        assert!(RequestTemplate::new("tools/list", json!([]), LATEST).is_err());
        assert!(RequestTemplate::new("tools/list", json!({}), "latest").is_err());
    }

    #[test]
    fn answers_are_classified() {
        let ok = br#"{"jsonrpc":"2.0","id":3,"result":{"content":[]}}"#;
        assert_eq!(classify(200, "application/json", ok, 3), Outcome::Ok);
        let tool_error = br#"{"jsonrpc":"2.0","id":3,"result":{"content":[],"isError":true}}"#;
        assert_eq!(classify(200, "application/json", tool_error, 3), Outcome::ToolError);
        let rpc_error = br#"{"jsonrpc":"2.0","id":3,"error":{"code":-32602,"message":"no"}}"#;
        assert_eq!(classify(200, "application/json", rpc_error, 3), Outcome::RpcError(-32602));
        assert_eq!(classify(503, "text/plain", b"busy", 3), Outcome::Http(503));
        assert_eq!(classify(200, "application/json", b"<html>", 3), Outcome::Invalid);
        let sse = b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n\
                    data: {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{}}\n\n";
        assert_eq!(classify(200, "text/event-stream", sse, 3), Outcome::Ok);
        assert_eq!(classify(200, "text/event-stream", sse, 4), Outcome::Invalid);
    }

    /// Regression: events were split at `\n\n` only, so a stream with CRLF line endings was one
    /// event whose joined data was no JSON message, and a good answer counted as invalid.
    #[test]
    fn sse_answers_with_crlf_line_endings_are_read() {
        let crlf = b"data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\r\n\r\n\
                     data: {\"jsonrpc\":\"2.0\",\r\ndata: \"id\":3,\"result\":{}}\r\n\r\n";
        assert_eq!(classify(200, "text/event-stream", crlf, 3), Outcome::Ok);
        let unterminated = b"data: {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{}}";
        assert_eq!(classify(200, "text/event-stream", unterminated, 3), Outcome::Ok, "no blank line at the end");
    }
}

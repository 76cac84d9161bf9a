//! Messages from stdin: one JSON-RPC message per line, checked before anything is sent. A line
//! that is not a JSON-RPC message gets its error here, with the reason the log records.

use mcp_wire::line::Line;
use serde_json::{Value, json};

use crate::forward::rpc_error;

const MODERN_VERSION_KEY: &str = "io.modelcontextprotocol/protocolVersion";

/// JSON-RPC's "Parse error".
pub const PARSE_ERROR: i64 = -32700;
/// JSON-RPC's "Invalid Request".
pub const INVALID_REQUEST: i64 = -32600;

/// One JSON-RPC message from the client, or a batch of them (2025-03-26 and earlier).
#[derive(Debug, Clone)]
pub struct Message {
    /// The message as the client sent it.
    pub body: Value,
    /// Its method, for requests and notifications.
    pub method: Option<String>,
    /// Its id, for requests: what the answer must carry. `None` for notifications and for the
    /// client's responses to requests of the server, which get no answer.
    pub id: Option<Value>,
    /// A JSON array of messages.
    pub batch: bool,
}

impl Message {
    /// A message from a JSON value already checked (or built by the proxy itself).
    pub fn new(body: Value) -> Self {
        let method = body.get("method").and_then(Value::as_str).map(str::to_owned);
        let id = body.get("id").filter(|id| !id.is_null() && method.is_some()).cloned();
        let batch = body.is_array();
        Self { body, method, id, batch }
    }

    /// The 2026-07-28 protocol version carried in `_meta`, if this is a modern message.
    pub fn modern_version(&self) -> Option<&str> {
        self.body.get("params")?.get("_meta")?.get(MODERN_VERSION_KEY)?.as_str()
    }

    /// The client's W3C trace context (`params._meta.traceparent`), when it sent one.
    pub fn traceparent(&self) -> Option<&str> {
        self.body.get("params")?.get("_meta")?.get("traceparent")?.as_str()
    }

    /// `params.name` or `params.uri`, mirrored into `Mcp-Name`.
    pub fn name(&self) -> Option<&str> {
        let params = self.body.get("params")?;
        params.get("name").or_else(|| params.get("uri"))?.as_str()
    }
}

/// A line refused before anything was sent, and the error the client gets for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// [`PARSE_ERROR`] or [`INVALID_REQUEST`].
    pub code: i64,
    /// The request's id when it could be read, else `null`.
    pub id: Value,
    /// A short, stable name for the log (`stdin-not-json`, ...).
    pub reason: &'static str,
    /// What was wrong.
    pub message: String,
}

impl Rejection {
    fn parse(reason: &'static str, message: String) -> Self {
        Self { code: PARSE_ERROR, id: Value::Null, reason, message: format!("Parse error: {message}") }
    }

    fn invalid(id: Value, reason: &'static str, message: &str) -> Self {
        Self { code: INVALID_REQUEST, id, reason, message: format!("Invalid Request: {message}") }
    }

    /// The refusal of a batch: this session's protocol revision has none.
    pub fn batch(version: Option<&str>) -> Self {
        let version = version.unwrap_or("none negotiated yet");
        Self::invalid(
            Value::Null,
            "stdin-batch",
            &format!("JSON-RPC batches exist in MCP 2024-11-05 and 2025-03-26 only (this session: {version})"),
        )
    }

    /// The JSON-RPC error line (its data repeats the reason and the line limit).
    pub fn to_line(&self, max_message_bytes: usize) -> Vec<u8> {
        let data = json!({ "reason": self.reason, "max_message_bytes": max_message_bytes });
        rpc_error(&self.id, self.code, &self.message, Some(data))
    }
}

/// The message on one line of stdin, or why it is refused.
///
/// # Errors
///
/// A line past the limit, not UTF-8, not JSON (nested too deeply included), or not a JSON-RPC
/// message: `-32700` or `-32600`, with the id when it could be read.
pub fn parse(line: Line, max_message_bytes: usize) -> Result<Message, Rejection> {
    let bytes = match line {
        Line::Complete(bytes) => bytes,
        Line::TooLong { bytes } => {
            return Err(Rejection::parse(
                "stdin-line-too-long",
                format!("the line is {bytes} bytes, over --max-message-bytes {max_message_bytes}; it was skipped"),
            ));
        }
    };
    let text = std::str::from_utf8(&bytes).map_err(|error| {
        Rejection::parse("stdin-not-utf8", format!("the line is not UTF-8 (invalid byte at {})", error.valid_up_to()))
    })?;
    let body: Value = serde_json::from_str(text)
        .map_err(|error| Rejection::parse("stdin-not-json", format!("the line is not JSON ({error})")))?;
    check(&body)?;
    Ok(Message::new(body))
}

/// JSON-RPC 2.0's rules for one message (or a batch), as far as the proxy relies on them.
fn check(body: &Value) -> Result<(), Rejection> {
    let object = match body {
        Value::Object(object) => object,
        Value::Array(items) if items.is_empty() => {
            return Err(Rejection::invalid(Value::Null, "stdin-invalid-request", "an empty batch"));
        }
        Value::Array(_) => return Ok(()), // the server checks the members; see `Rejection::batch`
        _ => {
            return Err(Rejection::invalid(
                Value::Null,
                "stdin-invalid-request",
                "a JSON-RPC message is an object (or a batch array)",
            ));
        }
    };
    let id = match object.get("id") {
        None => None,
        Some(id) if id.is_string() || id.is_i64() || id.is_u64() => Some(id.clone()),
        Some(_) => {
            return Err(Rejection::invalid(
                Value::Null,
                "stdin-bad-id",
                "`id` must be a string or an integer of at most 64 bits (not null, a fraction, an object, ...)",
            ));
        }
    };
    let echo = id.clone().unwrap_or(Value::Null);
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(Rejection::invalid(echo, "stdin-invalid-request", "`jsonrpc` must be \"2.0\""));
    }
    match object.get("method") {
        Some(Value::String(_)) => {}
        Some(_) => return Err(Rejection::invalid(echo, "stdin-invalid-request", "`method` must be a string")),
        // A response to a request of the server (sampling, elicitation, roots): id and outcome.
        None if id.is_some() && (object.contains_key("result") || object.contains_key("error")) => return Ok(()),
        None => {
            return Err(Rejection::invalid(
                echo,
                "stdin-invalid-request",
                "neither a request (no `method`) nor a response (no `id` with `result` or `error`)",
            ));
        }
    }
    if object.get("params").is_some_and(|params| !params.is_object() && !params.is_array()) {
        return Err(Rejection::invalid(echo, "stdin-invalid-request", "`params` must be an object or an array"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(line: &[u8]) -> (i64, Value, &'static str) {
        match parse(Line::Complete(line.to_vec()), 1024) {
            Ok(message) => panic!("accepted: {message:?}"),
            Err(rejection) => (rejection.code, rejection.id, rejection.reason),
        }
    }

    #[test]
    fn requests_notifications_responses_and_batches_pass() {
        for line in [
            r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"x"}}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            r#"{"jsonrpc":"2.0","id":18446744073709551615,"result":{}}"#,
            r#"{"jsonrpc":"2.0","id":-3,"error":{"code":-1,"message":"no"}}"#,
            r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#,
        ] {
            assert!(parse(Line::Complete(line.into()), 1024).is_ok(), "{line}");
        }
    }

    #[test]
    fn what_is_not_json_is_a_parse_error() {
        assert_eq!(refusal(b"{not json"), (PARSE_ERROR, Value::Null, "stdin-not-json"));
        assert_eq!(refusal(b"\xff\xfe{}"), (PARSE_ERROR, Value::Null, "stdin-not-utf8"));
        assert_eq!(refusal("[".repeat(100_000).as_bytes()), (PARSE_ERROR, Value::Null, "stdin-not-json"));
        assert_eq!(refusal(br#"{"jsonrpc":"2.0","id":1e400,"method":"ping"}"#).2, "stdin-not-json");
        let too_long = parse(Line::TooLong { bytes: 5000 }, 1024).err();
        assert!(too_long.is_some_and(|rejection| rejection.reason == "stdin-line-too-long"
            && rejection.message.contains("5000")
            && rejection.message.contains("1024")));
    }

    #[test]
    fn what_is_not_a_jsonrpc_message_is_an_invalid_request() {
        let invalid = |line: &str| refusal(line.as_bytes());
        assert_eq!(invalid("{}"), (INVALID_REQUEST, Value::Null, "stdin-invalid-request"));
        assert_eq!(invalid("[]"), (INVALID_REQUEST, Value::Null, "stdin-invalid-request"));
        assert_eq!(invalid("42"), (INVALID_REQUEST, Value::Null, "stdin-invalid-request"));
        assert_eq!(invalid(r#"{"jsonrpc":"2.0","method":5}"#), (INVALID_REQUEST, Value::Null, "stdin-invalid-request"));
        assert_eq!(
            invalid(r#"{"jsonrpc":"1.0","id":3,"method":"ping"}"#),
            (INVALID_REQUEST, json!(3), "stdin-invalid-request")
        );
        assert_eq!(invalid(r#"{"jsonrpc":"2.0","id":3,"method":"ping","params":7}"#).1, json!(3));
        assert_eq!(invalid(r#"{"jsonrpc":"2.0","id":3}"#).2, "stdin-invalid-request");
        for id in ["null", "1.5", "{\"a\":1}", "[1]", "true", "123456789012345678901234567890"] {
            let line = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"ping"}}"#);
            assert_eq!(invalid(&line), (INVALID_REQUEST, Value::Null, "stdin-bad-id"), "{id}");
        }
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
        let response = Message::new(json!({"jsonrpc":"2.0","id":"server-1","result":{}}));
        assert_eq!(response.id, None, "a response to the server expects no answer");
    }
}

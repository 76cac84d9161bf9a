//! Failures of one forwarded request, and the JSON-RPC errors (with a fix) the client sees.

use std::{borrow::Cow, fmt, time::Duration};

use bytes::Bytes;
use http::StatusCode;
use serde_json::{Value, json};

use crate::{endpoint::Endpoint, forward::rpc_error, retry};

/// The JSON-RPC error code for transport failures (implementation-defined range).
pub const TRANSPORT_ERROR: i64 = -32000;

/// How the network layer failed before any HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectKind {
    /// The host name did not resolve.
    Dns,
    /// The TLS handshake failed (certificate, protocol).
    Tls,
    /// The TCP connection was refused or could not be made.
    Refused,
}

/// What was wrong with an answer whose headers had arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AnswerProblem {
    /// The connection broke while the body was read.
    Broken,
    /// No byte of the body arrived within the timeout.
    Stalled,
    /// The body passed `--max-answer-bytes`.
    TooLarge,
    /// The body is not one JSON value (truncated, HTML, plain text, bad UTF-8, ...).
    NotJson,
    /// A success status with a content type that is neither JSON nor an event stream.
    ContentType,
    /// A success status with an empty body, for a request that needs an answer.
    Empty,
    /// JSON, but not a response to this request: no id, another id, neither result nor error.
    NotTheResponse,
    /// The answer could not be held (the temporary file failed).
    Spool,
    /// The event stream broke.
    StreamBroken,
    /// No event within the timeout.
    StreamStalled,
    /// One event passed `--max-answer-bytes`.
    EventTooLarge,
    /// The event stream ended before the response to this request.
    StreamEnded,
}

impl AnswerProblem {
    /// The `reason` logged and put in the error's data.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Broken => "answer-broken",
            Self::Stalled => "answer-stalled",
            Self::TooLarge => "answer-too-large",
            Self::NotJson => "answer-not-json",
            Self::ContentType => "answer-content-type",
            Self::Empty => "answer-empty",
            Self::NotTheResponse => "answer-not-the-response",
            Self::Spool => "answer-spool",
            Self::StreamBroken => "sse-broken",
            Self::StreamStalled => "sse-stalled",
            Self::EventTooLarge => "sse-event-too-large",
            Self::StreamEnded => "sse-ended-early",
        }
    }
}

/// One failed attempt.
#[derive(Debug)]
#[non_exhaustive]
pub enum Failure {
    /// No credentials could be loaded.
    Credentials(String),
    /// The request could not be signed or built.
    Signing(String),
    /// No response headers within the timeout.
    Timeout(Duration),
    /// DNS, TLS or TCP failure before the request was sent: it cannot have reached the server.
    Connect { kind: ConnectKind, detail: String },
    /// The connection failed once the request may have been sent (reset, closed before the
    /// response headers): it may have run.
    Interrupted(String),
    /// A non-success status whose body is not a JSON-RPC error.
    Status { status: StatusCode, body: Bytes, retry_after: Option<Duration> },
    /// A JSON-RPC error from the MCP server (with a non-success status), passed on.
    JsonRpc(Value),
    /// The answer's headers arrived, its body was unusable (nothing of it has been written).
    Answer {
        problem: AnswerProblem,
        /// What exactly, for the message.
        detail: String,
        /// The start of the body, when it helps (not JSON, wrong content type).
        body: Option<Bytes>,
    },
}

impl Failure {
    /// Classifies a reqwest error: only a failure to connect is known not to have sent the
    /// request; anything else (a reset after sending, a broken or unreadable answer) may have run.
    pub fn from_reqwest(error: reqwest::Error) -> Self {
        let detail = crate::credentials::aws_error_chain(&error);
        if error.is_timeout() {
            return Self::Timeout(Duration::ZERO);
        }
        if !error.is_connect() {
            return Self::Interrupted(detail);
        }
        let lower = detail.to_ascii_lowercase();
        let kind = if lower.contains("dns") || lower.contains("lookup") || lower.contains("resolve") {
            ConnectKind::Dns
        } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") {
            ConnectKind::Tls
        } else {
            ConnectKind::Refused
        };
        Self::Connect { kind, detail }
    }

    /// An unusable answer.
    pub fn answer(problem: AnswerProblem, detail: impl Into<String>) -> Self {
        Self::Answer { problem, detail: detail.into(), body: None }
    }

    /// The retry class of this failure.
    pub fn kind(&self) -> retry::Failure {
        match self {
            Self::Connect { .. } => retry::Failure::Connect,
            Self::Interrupted(_) | Self::Answer { problem: AnswerProblem::Broken, .. } => retry::Failure::MayHaveRun,
            Self::Timeout(_) | Self::Answer { problem: AnswerProblem::Stalled, .. } => retry::Failure::Timeout,
            Self::Status { status, .. } if *status == StatusCode::TOO_MANY_REQUESTS => retry::Failure::Throttled,
            Self::Status { status, .. } if status.is_server_error() => retry::Failure::ServerError,
            _ => retry::Failure::Rejected,
        }
    }

    /// The server's `Retry-After`, if it sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// A short, stable name for logs and the error's data (`timeout`, `http-502`, `answer-broken`).
    pub fn reason(&self) -> Cow<'static, str> {
        match self {
            Self::Credentials(_) => "credentials".into(),
            Self::Signing(_) => "signing".into(),
            Self::Timeout(_) => "timeout".into(),
            Self::Connect { kind: ConnectKind::Dns, .. } => "connect-dns".into(),
            Self::Connect { kind: ConnectKind::Tls, .. } => "connect-tls".into(),
            Self::Connect { kind: ConnectKind::Refused, .. } => "connect-refused".into(),
            Self::Interrupted(_) => "interrupted".into(),
            Self::Status { status, .. } => format!("http-{}", status.as_u16()).into(),
            Self::JsonRpc(_) => "upstream-jsonrpc-error".into(),
            Self::Answer { problem, .. } => problem.reason().into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Credentials(message) | Self::Signing(message) | Self::Interrupted(message) => f.write_str(message),
            Self::Timeout(limit) => write!(f, "timed out after {} s", limit.as_secs()),
            Self::Connect { kind, detail } => write!(f, "{kind:?} failure: {detail}"),
            Self::Status { status, body, .. } => {
                write!(f, "HTTP {status}: {}", String::from_utf8_lossy(body))
            }
            Self::JsonRpc(body) => write!(f, "{body}"),
            Self::Answer { problem, detail, .. } => write!(f, "{}: {detail}", problem.reason()),
        }
    }
}

/// The JSON-RPC error line for `failure`, answering request `id`.
pub fn to_rpc_error(id: &Value, failure: &Failure, endpoint: &Endpoint, profile: &str) -> Vec<u8> {
    if let Failure::JsonRpc(answer) = failure {
        // The server's own error, for this request: it may not have known the id (a parse error
        // answers `null`), and it is written compactly on one line whatever its formatting was.
        let mut answer = answer.clone();
        answer["id"] = id.clone();
        return answer.to_string().into_bytes();
    }
    let (message, hint) = explain(failure, endpoint, profile);
    let mut data = json!({ "hint": hint, "endpoint": endpoint.url, "reason": failure.reason() });
    match failure {
        Failure::Status { status, body, .. } => {
            data["status"] = json!(status.as_u16());
            data["body"] = json!(String::from_utf8_lossy(body));
        }
        Failure::Answer { body: Some(body), .. } => data["body"] = json!(String::from_utf8_lossy(body)),
        _ => {}
    }
    rpc_error(id, TRANSPORT_ERROR, &message, Some(data))
}

/// A one-line description and the fix.
pub fn explain(failure: &Failure, endpoint: &Endpoint, profile: &str) -> (String, String) {
    let host = endpoint.authority();
    match failure {
        Failure::Credentials(message) => {
            (message.clone(), format!("check `aws sts get-caller-identity --profile {profile}`"))
        }
        Failure::Signing(message) => {
            (format!("could not sign the request: {message}"), "check --endpoint, --region and --header values".into())
        }
        Failure::Timeout(_) => (
            format!("no answer from {host} in time"),
            "the function may be cold or slow: raise --timeout, or check the function's own timeout and logs".into(),
        ),
        Failure::Connect { kind: ConnectKind::Dns, detail } => (
            format!("cannot resolve {host}: {detail}"),
            "check the endpoint URL (the API id and region) and your network/VPN".into(),
        ),
        Failure::Connect { kind: ConnectKind::Tls, detail } => (
            format!("TLS handshake with {host} failed: {detail}"),
            "check the URL uses https with the API's own host name, and any corporate proxy's CA".into(),
        ),
        Failure::Connect { kind: ConnectKind::Refused, detail } => (
            format!("cannot connect to {host}: {detail}"),
            "is the endpoint up? check the URL and port, and `make deploy` output".into(),
        ),
        Failure::Interrupted(detail) => (
            format!("the connection to {host} broke after the request was sent: {detail}"),
            "the request may have run on the server, so it was not sent again; check the function's logs, then retry if it is safe".into(),
        ),
        Failure::Status { status, body, .. } => {
            explain_status(*status, &String::from_utf8_lossy(body), endpoint, profile)
        }
        Failure::JsonRpc(body) => (body.to_string(), String::new()),
        Failure::Answer { problem, detail, .. } => explain_answer(*problem, detail, &host),
    }
}

fn explain_answer(problem: AnswerProblem, detail: &str, host: &str) -> (String, String) {
    let (message, hint) = match problem {
        AnswerProblem::Broken => (
            format!("the answer from {host} broke off: {detail}"),
            "the connection dropped mid-answer (a crash, a timeout or the network); the call ran on the server, check its logs before retrying",
        ),
        AnswerProblem::Stalled => (
            format!("the answer from {host} stalled: {detail}"),
            "raise --timeout if the function streams slowly, or check the function's logs",
        ),
        AnswerProblem::TooLarge => (
            format!("the answer from {host} is too large: {detail}"),
            "ask for less (a smaller range, a row limit), or raise --max-answer-bytes",
        ),
        AnswerProblem::NotJson => (
            format!("the answer from {host} is not JSON: {detail}"),
            "the endpoint may not be an MCP server, or something in between changed the answer: check --endpoint and the function's logs",
        ),
        AnswerProblem::ContentType => (
            format!("the answer from {host} is neither JSON nor an event stream: {detail}"),
            "check that --endpoint is the MCP endpoint (it usually ends in /mcp), not a web page or a captive portal",
        ),
        AnswerProblem::Empty => (
            format!("{host} answered with an empty body: {detail}"),
            "the MCP server sent no JSON-RPC response: check the function's logs",
        ),
        AnswerProblem::NotTheResponse => (
            format!("the answer from {host} is not the response to this request: {detail}"),
            "the MCP server answered with another id or no id: check the server (or what sits in front of it)",
        ),
        AnswerProblem::Spool => (
            format!("the proxy could not hold the answer: {detail}"),
            "large answers go to a temporary file: check that TMPDIR (or /tmp) is writable and has space",
        ),
        AnswerProblem::StreamBroken => (
            format!("the event stream from {host} broke before the response: {detail}"),
            "the connection dropped mid-stream (a crash, a timeout or the network); check the function's logs",
        ),
        AnswerProblem::StreamStalled => (
            format!("the event stream from {host} stalled: {detail}"),
            "raise --timeout if the tool is slow between progress events, or check the function's logs",
        ),
        AnswerProblem::EventTooLarge => (
            format!("an event from {host} is too large: {detail}"),
            "ask for less (a smaller range, a row limit), or raise --max-answer-bytes",
        ),
        AnswerProblem::StreamEnded => (
            format!("the event stream from {host} ended before the response: {detail}"),
            "the MCP server closed the stream without answering: check the function's logs",
        ),
    };
    (message, hint.to_owned())
}

fn explain_status(status: StatusCode, body: &str, endpoint: &Endpoint, profile: &str) -> (String, String) {
    let message = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|value| {
            value.get("message").or_else(|| value.get("Message")).and_then(Value::as_str).map(str::to_owned)
        })
        .unwrap_or_else(|| body.trim().chars().take(300).collect());
    let lower = message.to_ascii_lowercase();
    let code = status.as_u16();
    let hint = match code {
        403 if lower.contains("missing authentication token") => format!(
            "API Gateway has no route for {}: check the URL includes the stage and the path, e.g. https://<api-id>.execute-api.<region>.amazonaws.com/<stage>/mcp",
            endpoint.path()
        ),
        403 if lower.contains("expired") => format!(
            "your AWS credentials have expired: refresh them, e.g. `aws sso login --profile {profile}`"
        ),
        403 if lower.contains("signature") => format!(
            "the signature did not match: check --region ({}) and --service ({}) match the endpoint, and that this machine's clock is right",
            endpoint.region, endpoint.service
        ),
        403 if lower.contains("security token") && lower.contains("invalid") => format!(
            "AWS does not recognise these credentials: check AWS_PROFILE ({profile}) and that the access key is active"
        ),
        403 if lower.contains("not authorized") || lower.contains("explicit deny") => {
            "your IAM identity may not call this API: attach the stack's invoke policy (output InvokePolicyArn) to your user or role".into()
        }
        403 => "access denied by the endpoint: check the IAM policy and the endpoint URL".into(),
        404 => "no such resource: check the endpoint path (it usually ends in /mcp)".into(),
        413 => "the request is too large for the endpoint (API Gateway allows 10 MB): send less data per call".into(),
        429 => "throttled by API Gateway after several retries: slow down, or raise the stage's throttling limits".into(),
        502 => "the function failed or returned a malformed response: check its CloudWatch logs".into(),
        504 => "the function did not answer within the integration timeout: raise the function timeout or narrow the request".into(),
        500..=599 => "the endpoint had an internal error: try again, and check the function's CloudWatch logs".into(),
        _ => "the endpoint refused the request".into(),
    };
    (format!("HTTP {code} from the endpoint: {message}"), hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint() -> Endpoint {
        Endpoint::new("https://abc.execute-api.us-east-1.amazonaws.com/prod/mcp", None, None)
            .unwrap_or_else(|error| panic!("{error}"))
    }

    fn hint_for(status: u16, body: &str) -> String {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::IM_A_TEAPOT);
        explain_status(status, body, &endpoint(), "dev").1
    }

    #[test]
    fn api_gateway_messages_get_actionable_hints() {
        assert!(hint_for(403, r#"{"message":"Missing Authentication Token"}"#).contains("stage"));
        assert!(
            hint_for(403, r#"{"message":"The security token included in the request is expired"}"#)
                .contains("aws sso login --profile dev")
        );
        assert!(
            hint_for(
                403,
                r#"{"message":"The request signature we calculated does not match the signature you provided."}"#
            )
            .contains("--region (us-east-1)")
        );
        assert!(
            hint_for(403, r#"{"message":"The security token included in the request is invalid."}"#)
                .contains("AWS_PROFILE")
        );
        assert!(
            hint_for(
                403,
                r#"{"Message":"User: arn:aws:iam::1:user/x is not authorized to perform: execute-api:Invoke"}"#
            )
            .contains("InvokePolicyArn")
        );
        assert!(hint_for(413, "").contains("10 MB"));
        assert!(hint_for(429, r#"{"message":"Too Many Requests"}"#).contains("throttl"));
        assert!(hint_for(504, r#"{"message": "Endpoint request timed out"}"#).contains("timeout"));
    }

    #[test]
    fn server_error_bodies_are_kept() {
        let failure = Failure::Status {
            status: StatusCode::BAD_GATEWAY,
            body: Bytes::from("upstream exploded"),
            retry_after: None,
        };
        let line = to_rpc_error(&json!(7), &failure, &endpoint(), "default");
        let value: Value = serde_json::from_slice(&line).unwrap_or_default();
        assert_eq!(value["id"], 7);
        assert_eq!(value["error"]["code"], TRANSPORT_ERROR);
        assert_eq!(value["error"]["data"]["body"], "upstream exploded");
        assert_eq!(value["error"]["data"]["status"], 502);
    }

    #[test]
    fn the_servers_own_errors_answer_this_request_on_one_line() {
        let answer = json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": "Parse error"}});
        let line = to_rpc_error(&json!("a"), &Failure::JsonRpc(answer), &endpoint(), "default");
        assert!(!line.contains(&b'\n'));
        let value: Value = serde_json::from_slice(&line).unwrap_or_default();
        assert_eq!((&value["id"], &value["error"]["code"]), (&json!("a"), &json!(-32700)));
    }

    #[test]
    fn broken_answers_say_what_broke_with_a_reason_and_a_hint() {
        let failure = Failure::answer(AnswerProblem::Broken, "after 100 bytes: connection closed");
        assert_eq!(failure.kind(), retry::Failure::MayHaveRun);
        let line = to_rpc_error(&json!(3), &failure, &endpoint(), "default");
        let value: Value = serde_json::from_slice(&line).unwrap_or_default();
        assert_eq!(value["error"]["code"], TRANSPORT_ERROR);
        assert_eq!(value["error"]["data"]["reason"], "answer-broken");
        assert!(value["error"]["message"].as_str().is_some_and(|message| message.contains("after 100 bytes")));
        assert!(value["error"]["data"]["hint"].as_str().is_some_and(|hint| !hint.is_empty()));
        assert_eq!(Failure::answer(AnswerProblem::Stalled, "").kind(), retry::Failure::Timeout);
        assert_eq!(Failure::answer(AnswerProblem::NotJson, "").kind(), retry::Failure::Rejected);
    }

    /// Regression: every reqwest error that was not a timeout counted as a connect failure, so a
    /// connection that broke after the request was sent was retried even for calls with side
    /// effects (the call could run twice).
    #[tokio::test]
    async fn a_connection_broken_after_sending_is_not_retried_for_calls_with_side_effects() {
        use tokio::io::AsyncReadExt as _;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|error| panic!("{error}"));
        let address = listener.local_addr().unwrap_or_else(|error| panic!("{error}"));
        tokio::spawn(async move {
            if let Ok((mut socket, _)) = listener.accept().await {
                // Read the whole request (it has reached the server), then hang up without a word.
                let mut request = Vec::new();
                let mut buffer = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") || !request.ends_with(b"{}") {
                    match socket.read(&mut buffer).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
            }
        });
        let failure = failed_post(address).await;
        assert!(!retry::should_retry(failure.kind(), retry::Effect::MayWrite), "{failure}");
        assert!(retry::should_retry(failure.kind(), retry::Effect::SideEffectFree), "{failure}");
    }

    /// The failure of one POST to `address`, which must fail.
    async fn failed_post(address: std::net::SocketAddr) -> Failure {
        let sent = reqwest::Client::new().post(format!("http://{address}/mcp")).body("{}").send().await;
        Failure::from_reqwest(sent.err().unwrap_or_else(|| panic!("the POST to {address} succeeded")))
    }

    #[tokio::test]
    async fn a_refused_connection_is_retried_whatever_the_call() {
        let address = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|error| panic!("{error}"));
            listener.local_addr().unwrap_or_else(|error| panic!("{error}"))
        };
        let failure = failed_post(address).await;
        assert!(retry::should_retry(failure.kind(), retry::Effect::MayWrite), "{failure}");
    }
}

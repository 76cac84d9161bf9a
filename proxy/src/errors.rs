//! Failures of one forwarded request, and the JSON-RPC errors (with a fix) the client sees.

use std::{fmt, time::Duration};

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
    /// Connection refused or reset.
    Refused,
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
    /// DNS, TLS or TCP failure.
    Connect { kind: ConnectKind, detail: String },
    /// A non-success status whose body is not a JSON-RPC message.
    Status { status: StatusCode, body: Bytes, retry_after: Option<Duration> },
    /// A JSON-RPC error body from the MCP server, passed through unchanged.
    JsonRpc(Bytes),
}

impl Failure {
    /// Classifies a reqwest error.
    pub fn from_reqwest(error: reqwest::Error) -> Self {
        let detail = crate::credentials::aws_error_chain(&error);
        if error.is_timeout() {
            return Self::Timeout(Duration::ZERO);
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

    /// The retry class of this failure.
    pub fn kind(&self) -> retry::Failure {
        match self {
            Self::Connect { .. } => retry::Failure::Connect,
            Self::Timeout(_) => retry::Failure::Timeout,
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
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Credentials(message) | Self::Signing(message) => f.write_str(message),
            Self::Timeout(limit) => write!(f, "timed out after {} s", limit.as_secs()),
            Self::Connect { kind, detail } => write!(f, "{kind:?} failure: {detail}"),
            Self::Status { status, body, .. } => {
                write!(f, "HTTP {status}: {}", String::from_utf8_lossy(body))
            }
            Self::JsonRpc(body) => write!(f, "{}", String::from_utf8_lossy(body)),
        }
    }
}

/// The JSON-RPC error line for `failure`, answering request `id`.
pub fn to_rpc_error(id: &Value, failure: &Failure, endpoint: &Endpoint, profile: &str) -> Vec<u8> {
    if let Failure::JsonRpc(body) = failure {
        return body.to_vec();
    }
    let (message, hint) = explain(failure, endpoint, profile);
    let mut data = json!({ "hint": hint, "endpoint": endpoint.url });
    if let Failure::Status { status, body, .. } = failure {
        data["status"] = json!(status.as_u16());
        data["body"] = json!(String::from_utf8_lossy(body));
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
        Failure::Status { status, body, .. } => {
            explain_status(*status, &String::from_utf8_lossy(body), endpoint, profile)
        }
        Failure::JsonRpc(body) => (String::from_utf8_lossy(body).into_owned(), String::new()),
    }
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
}

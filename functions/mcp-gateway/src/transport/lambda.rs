//! AWS Lambda: API Gateway (REST v1, HTTP API v2) and Function URL events into the axum router.
//!
//! Streamed and buffered integrations expect different response formats, so the mode is an
//! explicit setting (`MCP_LAMBDA_RESPONSE_MODE`), never guessed per request:
//! - `streaming`: API Gateway REST with `ResponseTransferMode: STREAM`, or a Function URL with
//!   `InvokeMode: RESPONSE_STREAM`. SSE events reach the client as they are produced.
//! - `buffered` (default): REST v1, HTTP API v2 and Function URL in `BUFFERED` mode. The whole
//!   response (JSON, or an SSE body ending with the final result) is returned at once.

use std::str::FromStr;

use axum::Router;

/// How the function returns responses to its integration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResponseMode {
    /// One complete response per invocation.
    #[default]
    Buffered,
    /// Lambda response streaming (HTTP prelude, then body chunks).
    Streaming,
}

impl FromStr for ResponseMode {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.to_ascii_lowercase().as_str() {
            "buffered" | "buffer" => Ok(Self::Buffered),
            "streaming" | "stream" | "response_stream" => Ok(Self::Streaming),
            other => Err(format!("unknown Lambda response mode `{other}`: use `buffered` or `streaming`")),
        }
    }
}

/// Runs the Lambda runtime loop with `router` until the runtime stops.
pub async fn run(router: Router, mode: ResponseMode) -> Result<(), lambda_http::Error> {
    tracing::info!(?mode, "starting the Lambda runtime");
    match mode {
        ResponseMode::Buffered => lambda_http::run(router).await,
        ResponseMode::Streaming => lambda_http::run_with_streaming_response(router).await,
    }
}

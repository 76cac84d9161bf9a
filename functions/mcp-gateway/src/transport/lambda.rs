//! AWS Lambda: API Gateway (REST v1, HTTP API v2) and Function URL events into the axum router.
//!
//! Streamed and buffered integrations expect different response formats, so the mode is an
//! explicit setting (`MCP_LAMBDA_RESPONSE_MODE`), never guessed per request:
//! - `streaming`: API Gateway REST with `ResponseTransferMode: STREAM`, or a Function URL with
//!   `InvokeMode: RESPONSE_STREAM`. SSE events reach the client as they are produced.
//! - `buffered` (default): REST v1, HTTP API v2 and Function URL in `BUFFERED` mode. The whole
//!   response (JSON, or an SSE body ending with the final result) is returned at once.

use axum::Router;

/// How the function returns responses to its integration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
#[value(rename_all = "lower")]
pub enum ResponseMode {
    /// One complete response per invocation.
    #[default]
    #[value(alias = "buffer")]
    Buffered,
    /// Lambda response streaming (HTTP prelude, then body chunks).
    #[value(alias = "stream", alias = "response_stream")]
    Streaming,
}

/// Runs the Lambda runtime loop with `router` until the runtime stops.
pub async fn run(router: Router, mode: ResponseMode) -> Result<(), lambda_http::Error> {
    tracing::info!(?mode, "starting the Lambda runtime");
    match mode {
        ResponseMode::Buffered => lambda_http::run(router).await,
        ResponseMode::Streaming => lambda_http::run_with_streaming_response(router).await,
    }
}

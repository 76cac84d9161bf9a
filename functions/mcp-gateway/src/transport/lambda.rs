//! AWS Lambda: API Gateway (REST v1, HTTP API v2) and Function URL events into the axum router.
//!
//! Streamed and buffered integrations expect different response formats, so the mode is an
//! explicit setting (`MCP_LAMBDA_RESPONSE_MODE`), never guessed per request:
//! - `streaming`: API Gateway REST with `ResponseTransferMode: STREAM`, or a Function URL with
//!   `InvokeMode: RESPONSE_STREAM`. SSE events reach the client as they are produced.
//! - `buffered` (default): REST v1, HTTP API v2 and Function URL in `BUFFERED` mode. The whole
//!   response (JSON, or an SSE body ending with the final result) is returned at once.

use std::{
    collections::VecDeque,
    time::{Duration, Instant},
};

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

/// How many times the runtime loop is started again after it fails, within [`RESTART_WINDOW`].
const RESTARTS: usize = 3;
/// The window [`RESTARTS`] counts in.
const RESTART_WINDOW: Duration = Duration::from_secs(60);

/// Runs the Lambda runtime loop with `router` until the runtime stops.
///
/// The loop ends with an error when a call to the Runtime API fails (e.g. a kept-alive connection
/// the API closed just as the next poll reused it, which `cargo lambda watch` does after a streamed
/// response). Such a failure is not the function's: the loop is started again on a new connection
/// (keeping the warm caches and upstream connections) up to [`RESTARTS`] times a minute; past
/// that the error ends the process, and Lambda starts a new one.
pub async fn run(router: Router, mode: ResponseMode) -> Result<(), lambda_http::Error> {
    tracing::info!(?mode, "starting the Lambda runtime");
    let mut failures: VecDeque<Instant> = VecDeque::with_capacity(RESTARTS + 1);
    loop {
        let ended = match mode {
            ResponseMode::Buffered => lambda_http::run(router.clone()).await,
            ResponseMode::Streaming => lambda_http::run_with_streaming_response(router.clone()).await,
        };
        let Err(error) = ended else { return Ok(()) };
        let now = Instant::now();
        failures.retain(|failed| now.duration_since(*failed) < RESTART_WINDOW);
        failures.push_back(now);
        if failures.len() > RESTARTS {
            return Err(error);
        }
        tracing::error!(%error, restart = failures.len(), of = RESTARTS, "the Lambda runtime loop failed; starting it again");
    }
}

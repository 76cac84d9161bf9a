//! `mcp-gateway stdio`: newline-delimited JSON-RPC on stdin/stdout. Logs go to stderr only, so
//! stdout carries nothing but protocol messages.
//!
//! The same front door as HTTP: each line is read with a bound (a longer one is skipped, never held
//! whole), parsed and checked (`message`) before rmcp sees it. Refused lines are answered here with
//! their JSON-RPC error and logged with the reason; rmcp's answers and ours reach stdout through
//! one writer, a whole line at a time, so they never interleave.

use mcp_wire::line::{Line, LineReader};
use rmcp::{ServiceExt as _, model::ErrorCode};
use serde_json::Value;
use tokio::{
    io::{AsyncRead, AsyncWrite, AsyncWriteExt as _, BufReader},
    sync::mpsc,
};

use super::message::{self, Rejected};
use crate::server::Gateway;

/// The longest message accepted on stdin (rmcp's own line limit).
pub const MAX_MESSAGE_BYTES: usize = 16 << 20;
/// rmcp's answers are split into lines again before they are written; they are ours and may be
/// large (a file read), so this is only a guard against a runaway line.
const MAX_ANSWER_BYTES: usize = 1 << 30;

/// Serves one client on stdin/stdout until stdin closes.
pub async fn run(gateway: Gateway) -> anyhow::Result<()> {
    tracing::info!("serving MCP over stdio");
    serve(gateway, tokio::io::stdin(), tokio::io::stdout()).await
}

/// Serves one client reading `input` and writing `output` until `input` ends.
pub async fn serve(
    gateway: Gateway,
    input: impl AsyncRead + Unpin + Send + 'static,
    output: impl AsyncWrite + Unpin + Send + 'static,
) -> anyhow::Result<()> {
    let (to_server, server_input) = tokio::io::duplex(1 << 20);
    let (server_output, from_server) = tokio::io::duplex(1 << 20);
    let (lines, pending) = mpsc::channel::<Vec<u8>>(64);
    let writer = tokio::spawn(write_lines(pending, output));
    tokio::spawn(forward_answers(from_server, lines.clone()));
    tokio::spawn(check_requests(input, to_server, lines));
    let served: anyhow::Result<()> = match gateway.serve((server_input, server_output)).await {
        Ok(service) => match service.waiting().await {
            Ok(reason) => {
                tracing::info!(?reason, "stdio client went away");
                Ok(())
            }
            Err(error) => Err(error.into()),
        },
        Err(error) => Err(error.into()),
    };
    // Every answer, ours and rmcp's, is written before we return.
    writer.await?;
    served
}

/// Reads the client's lines; checked ones go on to rmcp, refused ones are answered here.
async fn check_requests(
    input: impl AsyncRead + Unpin,
    mut to_server: impl AsyncWrite + Unpin,
    lines: mpsc::Sender<Vec<u8>>,
) {
    let mut reader = LineReader::new(BufReader::new(input), MAX_MESSAGE_BYTES);
    loop {
        let line = match reader.next_line().await {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(error) => {
                tracing::warn!(%error, "cannot read stdin");
                break;
            }
        };
        let refused = match line {
            Line::TooLong { bytes } => Err(Rejected::new(
                ErrorCode::INVALID_REQUEST,
                format!("the message is {bytes} bytes; the limit is {MAX_MESSAGE_BYTES}"),
            )),
            Line::Complete(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => continue,
            Line::Complete(bytes) => check_line(&bytes).map(|()| bytes),
        };
        match refused {
            Ok(mut bytes) => {
                bytes.push(b'\n');
                if to_server.write_all(&bytes).await.is_err() {
                    break;
                }
            }
            Err(rejected) => {
                tracing::info!(
                    target: "mcp_gateway::request",
                    transport = "stdio",
                    rpc_id = (!rejected.id.is_null()).then(|| rejected.id.to_string()),
                    error_code = rejected.code.0,
                    reason = %rejected.message,
                    outcome = "error",
                );
                if lines.send(rejected.to_json().to_string().into_bytes()).await.is_err() {
                    break;
                }
            }
        }
    }
    // Closing rmcp's input ends the session once it has answered what it has.
    let _ = to_server.shutdown().await;
}

/// The checks a line must pass before rmcp sees it.
fn check_line(bytes: &[u8]) -> Result<(), Rejected> {
    let value = message::parse(bytes)?;
    if let Value::Array(_) = value {
        return Err(Rejected::new(
            ErrorCode::INVALID_REQUEST,
            "JSON-RPC batches are not supported on stdio; send one message per line",
        ));
    }
    message::check(&value).map(drop)
}

/// Passes rmcp's answers on to the writer, one line each.
async fn forward_answers(from_server: impl AsyncRead + Unpin, lines: mpsc::Sender<Vec<u8>>) {
    let mut reader = LineReader::new(BufReader::new(from_server), MAX_ANSWER_BYTES);
    while let Ok(Some(line)) = reader.next_line().await {
        match line {
            Line::Complete(bytes) => {
                if lines.send(bytes).await.is_err() {
                    break;
                }
            }
            Line::TooLong { bytes } => tracing::error!(bytes, "an answer past 1 GiB was dropped"),
        }
    }
}

/// Writes each line whole, then its newline.
async fn write_lines(mut pending: mpsc::Receiver<Vec<u8>>, mut output: impl AsyncWrite + Unpin) {
    while let Some(mut line) = pending.recv().await {
        line.push(b'\n');
        let written = async {
            output.write_all(&line).await?;
            output.flush().await
        };
        if let Err(error) = written.await {
            tracing::warn!(%error, "cannot write to stdout; the client has gone");
            break;
        }
    }
}

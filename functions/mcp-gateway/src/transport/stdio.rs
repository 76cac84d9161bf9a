//! `mcp-gateway stdio`: newline-delimited JSON-RPC on stdin/stdout. Logs go to stderr only, so
//! stdout carries nothing but protocol messages.

use rmcp::ServiceExt as _;

use crate::server::Gateway;

/// Serves one client on stdin/stdout until stdin closes.
pub async fn run(gateway: Gateway) -> anyhow::Result<()> {
    tracing::info!("serving MCP over stdio");
    let service = gateway.serve(rmcp::transport::stdio()).await?;
    let reason = service.waiting().await?;
    tracing::info!(?reason, "stdio client went away");
    Ok(())
}

//! `mcp-gateway serve`: the router on a TCP listener, for EC2, containers and local use, with
//! graceful shutdown on SIGTERM or Ctrl-C.

use std::net::SocketAddr;

use axum::{Router, serve::ListenerExt as _};
use tokio_util::sync::CancellationToken;

/// Serves `router` on `addr` until SIGTERM/Ctrl-C, then drains open requests.
pub async fn run(router: Router, addr: SocketAddr, shutdown: CancellationToken) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|error| std::io::Error::new(error.kind(), format!("cannot listen on {addr}: {error}")))?;
    let local = listener.local_addr()?;
    // SSE events are small writes that must leave at once, not wait for Nagle's algorithm.
    let listener = listener.tap_io(|stream| {
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
    });
    tracing::info!(addr = %local, url = %format!("http://{local}/mcp"), "serving MCP over Streamable HTTP");
    let signal = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested; finishing open requests");
        signal.cancel();
    });
    axum::serve(listener, router).with_graceful_shutdown(shutdown.cancelled_owned()).await
}

async fn wait_for_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

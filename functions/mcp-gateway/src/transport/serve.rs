//! `mcp-gateway serve`: the router on a TCP listener, for EC2, containers and local use, with
//! graceful shutdown on SIGTERM or Ctrl-C.
//!
//! Our own accept loop over hyper rather than `axum::serve`, for the bounds a public listener
//! needs: a connection cap (more clients wait to be accepted), a time limit on request headers
//! (hyper's header timeout needs a timer, which `axum::serve` does not give it) and a size limit
//! on them (431 past it). The body has its own time limit in `guard`.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::Router;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
    service::TowerToHyperService,
};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Bounds on connections.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once; further clients wait in the listen backlog.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers (also ends idle keep-alive waits).
    pub header_read_timeout: Duration,
    /// The largest request head (request line and headers); larger ones get 431.
    pub max_header_bytes: usize,
    /// How long open requests may take to finish after a shutdown signal.
    pub drain_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 64 * 1024,
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// What accepts TLS connections (`super::tls`, the `edge` feature's).
#[cfg(feature = "edge")]
pub type Tls = tokio_rustls::TlsAcceptor;
/// A build without the `edge` feature has no TLS: there is no value of this type.
#[cfg(not(feature = "edge"))]
#[derive(Debug, Clone)]
pub enum Tls {}

/// Serves `router` on `addr` (over TLS with `tls`) until SIGTERM/Ctrl-C (or `shutdown`), then
/// drains open requests.
pub async fn run(
    router: Router,
    addr: SocketAddr,
    limits: Limits,
    shutdown: CancellationToken,
    tls: Option<Tls>,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|error| std::io::Error::new(error.kind(), format!("cannot listen on {addr}: {error}")))?;
    let local = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(addr = %local, url = %format!("{scheme}://{local}/mcp"), "serving MCP over Streamable HTTP");
    let signal = shutdown.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutdown requested; finishing open requests");
        signal.cancel();
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(limits.max_header_bytes);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = shutdown.cancelled() => break,
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait, don't spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        // SSE events are small writes that must leave at once, not wait for Nagle's algorithm.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        // The peer address rides along in each request's extensions (`strategy = "hash"` on
        // `client_ip`, the access log).
        let service = TowerToHyperService::new(tower::ServiceExt::map_request(
            router.clone(),
            move |mut request: http::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(super::http::PeerAddr(remote));
                request
            },
        ));
        let watcher = graceful.watcher();
        let http = http.clone();
        let tls = tls.clone();
        #[cfg(feature = "edge")]
        let handshake_limit = limits.header_read_timeout;
        tokio::spawn(async move {
            let served = match tls {
                None => watcher.watch(http.serve_connection(TokioIo::new(stream), service)).await,
                #[cfg(feature = "edge")]
                Some(tls) => match tokio::time::timeout(handshake_limit, tls.accept(stream)).await {
                    Ok(Ok(stream)) => watcher.watch(http.serve_connection(TokioIo::new(stream), service)).await,
                    Ok(Err(error)) => {
                        tracing::info!(target: "mcp_gateway::connection", %remote, reason = %error, "TLS handshake failed");
                        drop(slot);
                        return;
                    }
                    Err(_) => {
                        let reason = format!("no TLS handshake within {} s", handshake_limit.as_secs());
                        tracing::info!(target: "mcp_gateway::connection", %remote, %reason, "TLS handshake failed");
                        drop(slot);
                        return;
                    }
                },
            };
            if let Err(error) = served {
                // Refused before any request reached the router: malformed or oversized heads
                // (hyper answers those with 400/431), header timeouts, resets.
                tracing::info!(
                    target: "mcp_gateway::connection",
                    %remote,
                    reason = %crate::storage::error_chain(&error),
                    "connection ended with an error"
                );
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.drain_timeout, graceful.shutdown()).await.is_err() {
        tracing::warn!(seconds = limits.drain_timeout.as_secs(), "open requests did not finish in time");
    }
    Ok(())
}

/// Resolves on Ctrl-C, or SIGTERM on Unix: when a server (`serve`, or a host service embedding the
/// router) should drain and stop.
pub async fn shutdown_signal() {
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

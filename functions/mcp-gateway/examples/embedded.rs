//! An existing axum web service that adds MCP by mounting the gateway's router under its own
//! prefix: its routes (`/`, `/api/orders`) and its state stay as they were, and
//! `/assistant/mcp` is an MCP endpoint over a data folder, in the same process and port.
//!
//! ```text
//! cargo run -p mcp-gateway --example embedded -- --addr 127.0.0.1:3000 --data-root examples/data
//! ```
//!
//! It prints `listening on http://ADDR` on stdout (port 0 picks a free one), logs JSON lines on
//! stderr, and stops on Ctrl-C or SIGTERM after the open requests finish.
//!
//! What a host service takes on, beside `Router::nest`:
//! - the gateway accepts only the `Host` names in its settings (`HttpSettings::local()`: loopback);
//!   served under another name, list it (`--allowed-host` here);
//! - with the `data` feature the `db` tool runs each query in a child process of the running
//!   binary, so `main` calls `run_if_requested` first, and the heap-capping allocator is installed
//!   so the query's memory cap holds;
//! - the gateway's `shutdown` token is cancelled on shutdown, so that open SSE streams end.

use std::{io::Write as _, net::SocketAddr, path::PathBuf, process::ExitCode, sync::Arc};

use anyhow::Context as _;
use axum::{
    Json, Router,
    extract::{ConnectInfo, Request, State},
    http::{Method, StatusCode, Uri},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::get,
};
use clap::Parser;
use mcp_gateway::{
    server::Core,
    storage::{LocalRoot, Storage},
    tools::ToolLimits,
    transport::http::{self as gateway, AllowedHosts, HttpSettings, PeerAddr},
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::RwLock;

#[global_allocator]
static ALLOCATOR: mcp_gateway::heap_limit::CappedAllocator = mcp_gateway::heap_limit::CappedAllocator;

/// Where the host service mounts the gateway: the MCP endpoint is `{PREFIX}/mcp`.
const PREFIX: &str = "/assistant";
/// The most orders the in-memory book keeps.
const MAX_ORDERS: usize = 1000;

/// An order service with an MCP assistant mounted at `/assistant/mcp`.
#[derive(Debug, Parser)]
#[command(name = "embedded")]
struct Args {
    /// Address to listen on (port 0: a free port, printed on stdout).
    #[arg(long, default_value = "127.0.0.1:3000")]
    addr: SocketAddr,
    /// Folder the MCP tools read (must exist).
    #[arg(long, default_value = "examples/data")]
    data_root: PathBuf,
    /// A `Host` name the MCP endpoint accepts besides loopback (repeatable), e.g. `shop.example`.
    #[arg(long = "allowed-host", value_name = "NAME")]
    allowed_hosts: Vec<String>,
}

fn main() -> ExitCode {
    // A `db` query's worker process is this binary too: it runs the query and exits.
    #[cfg(feature = "data")]
    if let Some(code) = mcp_gateway::tools::db::worker::run_if_requested() {
        return code;
    }
    let args = Args::parse();
    let info = tracing_subscriber::filter::Targets::new().with_default(tracing::Level::INFO);
    if let Err(message) = mcp_gateway::config::init_logging(&info) {
        eprintln!("embedded: {message}");
        return ExitCode::from(2);
    }
    // Checked before the runtime starts, so that a wrong folder is a usage error (exit 2).
    let root = match LocalRoot::open(&args.data_root) {
        Ok(root) => root,
        Err(error) => {
            eprintln!("embedded: --data-root: {error}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("embedded: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args, root)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("embedded: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args, root: LocalRoot) -> anyhow::Result<()> {
    // The gateway: the built-in tools over the data folder, local HTTP settings.
    let core = Core::with_builtin_tools(Storage::Local(root), ToolLimits::default());
    let mut settings = HttpSettings::local().context("no random bytes for the session key")?;
    if let AllowedHosts::Only(hosts) = &mut settings.allowed_hosts {
        hosts.extend(args.allowed_hosts);
    }
    let gateway_shutdown = settings.shutdown.clone();
    // The TCP peer in the gateway's access log, as `mcp-gateway serve` records it.
    let gateway = gateway::router(Arc::new(core), settings).layer(axum::middleware::from_fn(peer_address));

    // The existing service: its own routes and state. `with_state` comes before `nest`: the
    // gateway's router has its state already (`Router<()>`). `nest_service` mounts it under a
    // router that still needs its state.
    let app = Router::new()
        .route("/", get(index))
        .route("/api/orders", get(list_orders).post(create_order))
        .fallback(not_found)
        .with_state(Shop::default())
        .nest(PREFIX, gateway);

    let listener =
        tokio::net::TcpListener::bind(args.addr).await.with_context(|| format!("cannot listen on {}", args.addr))?;
    let local = listener.local_addr().context("the listening address")?;
    {
        // The one line on stdout (a test reads the port from it); clippy keeps `println!` out.
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on http://{local}")
            .and_then(|()| stdout.flush())
            .context("cannot write to stdout")?;
    }
    tracing::info!(mcp = format!("http://{local}{PREFIX}/mcp"), "serving");
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async move {
            mcp_gateway::transport::serve::shutdown_signal().await;
            tracing::info!("shutdown requested; finishing open requests");
            gateway_shutdown.cancel();
        })
        .await
        .context("the server failed")?;
    Ok(())
}

/// The order book: the host service's own state, which the gateway knows nothing about.
#[derive(Debug, Clone, Default)]
struct Shop {
    orders: Arc<RwLock<Vec<Order>>>,
}

#[derive(Debug, Clone, Serialize)]
struct Order {
    id: usize,
    item: String,
    quantity: u32,
}

#[derive(Debug, Deserialize)]
struct NewOrder {
    item: String,
    quantity: u32,
}

async fn index() -> Json<serde_json::Value> {
    Json(json!({"service": "orders", "routes": ["/api/orders"], "mcp": format!("{PREFIX}/mcp")}))
}

async fn list_orders(State(shop): State<Shop>) -> Json<Vec<Order>> {
    Json(shop.orders.read().await.clone())
}

async fn create_order(State(shop): State<Shop>, Json(new): Json<NewOrder>) -> Response {
    let item = new.item.trim();
    if item.is_empty() || item.len() > 100 || !(1..=1000).contains(&new.quantity) {
        let error = "an order needs an item (1 to 100 bytes) and a quantity from 1 to 1000";
        return (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({"error": error}))).into_response();
    }
    let mut orders = shop.orders.write().await;
    if orders.len() >= MAX_ORDERS {
        let error = format!("the order book is full ({MAX_ORDERS} orders)");
        return (StatusCode::INSUFFICIENT_STORAGE, Json(json!({"error": error}))).into_response();
    }
    let order = Order { id: orders.len() + 1, item: item.to_owned(), quantity: new.quantity };
    orders.push(order.clone());
    (StatusCode::CREATED, Json(order)).into_response()
}

/// The host service's 404, for every path neither it nor the gateway routes.
async fn not_found(method: Method, uri: Uri) -> Response {
    let error = format!("no route for {method} {}", uri.path());
    (StatusCode::NOT_FOUND, Json(json!({"service": "orders", "error": error}))).into_response()
}

/// Puts the connection's peer where the gateway looks for it ([`PeerAddr`]).
async fn peer_address(mut request: Request, next: Next) -> Response {
    if let Some(ConnectInfo(peer)) = request.extensions().get::<ConnectInfo<SocketAddr>>().copied() {
        request.extensions_mut().insert(PeerAddr(peer));
    }
    next.run(request).await
}

//! MCP data tools over stateless Streamable HTTP on AWS Lambda, as a long-lived server, and over
//! stdio: one core ([`server::Core`]) behind three thin transports.
//!
//! Data flows `transport` → `server` (MCP protocol, via rmcp) → `registry` → `tools` → `storage`.
//! Only `transport` and `storage` do IO. See ARCHITECTURE.md for the codemap.
//!
//! ```no_run
//! use std::sync::Arc;
//! use mcp_gateway::{server::Core, storage::{LocalRoot, Storage}, tools, transport::http};
//!
//! # async fn demo() -> anyhow::Result<()> {
//! let storage = Storage::Local(LocalRoot::open("examples/data")?);
//! let core = Core::with_builtin_tools(storage, tools::ToolLimits::default());
//! let router = http::router(Arc::new(core), http::HttpSettings::local()?);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, router).await?;
//! # Ok(()) }
//! ```

pub mod access;
pub mod access_log;
pub mod caller;
pub mod config;
#[cfg(feature = "data")]
pub mod datasets;
pub mod heap_limit;
pub mod metrics;
pub mod outbound;
pub mod progress;
pub mod registry;
pub mod result_cache;
#[cfg(feature = "data")]
pub mod search_index;
pub mod server;
pub mod settings_file;
pub mod storage;
pub mod tools;
pub mod trace_export;
pub mod transport;
pub mod upstream;

//! Command line and environment: every setting has a flag and an environment variable.

use std::{net::SocketAddr, path::PathBuf};

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

use crate::{
    storage::{LocalRoot, S3Root, Storage},
    tools::{ToolLimits, db::DbLimits, file::FileLimits},
    transport::{
        http::{AllowedHosts, HttpSettings, SessionKey},
        lambda::ResponseMode,
    },
};

/// MCP data tools over stateless Streamable HTTP (AWS Lambda or a local server) and stdio.
#[derive(Debug, Parser)]
#[command(name = "mcp-gateway", version, about)]
pub struct Cli {
    /// The data root: a local folder (or, with the S3 backend, `s3://bucket/prefix/`).
    #[arg(long, env = "DATA_ROOT", default_value = "examples/data", global = true)]
    pub data_root: String,

    /// Log filter (`info`, `debug`, `mcp_gateway=debug,rmcp=warn`); `RUST_LOG` overrides it.
    #[arg(long, env = "LOG_LEVEL", default_value = "info,rmcp=warn", global = true)]
    pub log_level: String,

    /// Largest `file` read, in bytes.
    #[arg(long, env = "MAX_READ_BYTES", default_value_t = 1 << 20, global = true)]
    pub max_read_bytes: u64,

    /// Offer the `file_write` tool (create, replace, delete files under the data root).
    #[arg(long, env = "ALLOW_WRITE", global = true)]
    pub allow_write: bool,

    /// The most rows one `db` query may return.
    #[arg(long, env = "MAX_ROWS", default_value_t = 10_000, global = true)]
    pub max_rows: usize,

    /// Seconds one `db` query may run.
    #[arg(long, env = "DB_TIMEOUT", default_value_t = 60, global = true)]
    pub db_timeout: u64,

    /// Seconds one `dataset_metadata` call may run (large CSVs are read in full).
    #[arg(long, env = "METADATA_TIMEOUT", default_value_t = 600, global = true)]
    pub metadata_timeout: u64,

    /// Largest file `file_write` accepts, in bytes.
    #[arg(long, env = "MAX_WRITE_BYTES", default_value_t = 8 << 20, global = true)]
    pub max_write_bytes: usize,

    /// What to run; without one, `lambda` inside AWS Lambda and `serve` elsewhere.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// How the gateway is reached.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve Streamable HTTP on a TCP address (EC2, containers, local use).
    Serve(ServeArgs),
    /// Serve one client over stdin/stdout (newline-delimited JSON-RPC).
    Stdio,
    /// Run inside AWS Lambda (the default when `AWS_LAMBDA_RUNTIME_API` is set).
    Lambda(LambdaArgs),
    /// Build the full-text search index and store it in the data root (`.mcp-index/`).
    Index,
}

/// Options of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "MCP_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    #[command(flatten)]
    pub http: HttpArgs,
}

/// Options of `lambda`.
#[derive(Debug, Args)]
pub struct LambdaArgs {
    /// `buffered` (REST v1, HTTP API v2, Function URL BUFFERED) or `streaming` (REST STREAM,
    /// Function URL RESPONSE_STREAM). Must match the integration.
    #[arg(long, env = "MCP_LAMBDA_RESPONSE_MODE", default_value = "buffered")]
    pub response_mode: ResponseMode,
    #[command(flatten)]
    pub http: HttpArgs,
}

/// HTTP options shared by `serve` and `lambda`.
#[derive(Debug, Args)]
pub struct HttpArgs {
    /// Accepted `Host` header (repeat or comma-separate); default: loopback names for `serve`,
    /// any host on Lambda.
    #[arg(long = "allowed-host", env = "MCP_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,
    /// Accepted browser `Origin` besides the request's own host (repeat or comma-separate).
    #[arg(long = "allowed-origin", env = "MCP_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
    /// Largest request body in bytes (413 above it).
    #[arg(long, env = "MCP_MAX_BODY_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Secret that signs `Mcp-Session-Id` so every instance accepts every other's sessions;
    /// without it each process signs with a random key.
    #[arg(long, env = "MCP_SESSION_SECRET", hide_env_values = true)]
    pub session_secret: Option<String>,
}

impl HttpArgs {
    /// The HTTP settings, with `default_hosts` when no host was configured.
    pub fn settings(&self, default_hosts: AllowedHosts) -> HttpSettings {
        let hosts: Vec<String> = self.allowed_hosts.iter().filter(|h| !h.is_empty()).cloned().collect();
        let allowed_hosts = if hosts.iter().any(|h| h == "*") {
            AllowedHosts::Any
        } else if hosts.is_empty() {
            default_hosts
        } else {
            AllowedHosts::Only(hosts)
        };
        let session_key = match self.session_secret.as_deref().filter(|s| !s.is_empty()) {
            Some(secret) => SessionKey::from_secret(secret),
            None => SessionKey::random(),
        };
        HttpSettings {
            allowed_hosts,
            allowed_origins: self.allowed_origins.iter().filter(|o| !o.is_empty()).cloned().collect(),
            max_body_bytes: self.max_body_bytes,
            session_key,
            ..HttpSettings::local()
        }
    }
}

impl Cli {
    /// The subcommand, or the default for where we run.
    pub fn command(self) -> Command {
        match self.command {
            Some(command) => command,
            None => {
                let default = if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() { "lambda" } else { "serve" };
                // Parse the default subcommand alone so its flags' env variables still apply.
                match Self::try_parse_from(["mcp-gateway", default]).map(|cli| cli.command) {
                    Ok(Some(command)) => command,
                    _ => Command::Stdio,
                }
            }
        }
    }

    /// Opens the data root: `s3://bucket/prefix/` or a local folder.
    pub async fn storage(&self) -> anyhow::Result<Storage> {
        if self.data_root.starts_with("s3://") {
            let root = S3Root::connect(&self.data_root).await.map_err(|error| anyhow::anyhow!(error))?;
            return Ok(Storage::S3(root));
        }
        let path = PathBuf::from(&self.data_root);
        let root = LocalRoot::open(&path).with_context(|| format!("opening the data root {}", path.display()))?;
        Ok(Storage::Local(root))
    }

    /// Tool limits from the flags.
    pub fn tool_limits(&self) -> ToolLimits {
        ToolLimits {
            file: FileLimits { max_read_bytes: self.max_read_bytes, ..FileLimits::default() },
            db: DbLimits {
                max_rows: self.max_rows,
                timeout: std::time::Duration::from_secs(self.db_timeout),
                ..DbLimits::default()
            },
            metadata_timeout: std::time::Duration::from_secs(self.metadata_timeout),
            allow_write: self.allow_write,
            max_write_bytes: self.max_write_bytes,
        }
    }
}

/// JSON logs on stderr; `RUST_LOG` wins over `--log-level`.
pub fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(true)
        .init();
}

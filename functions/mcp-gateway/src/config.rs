//! Command line and environment: every setting has a flag and an environment variable, and a
//! value that does not parse stops the program with a message that names the setting, the value
//! and what is allowed, whether it came from a flag or the environment, for every subcommand and
//! for the one chosen by default.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context as _;
use clap::{
    ArgAction, Args, FromArgMatches as _, Parser, Subcommand,
    builder::BoolishValueParser,
    error::{ContextKind, ContextValue, ErrorKind},
};

#[cfg(feature = "data")]
use crate::{
    datasets::CacheSettings,
    tools::db::{DbLimits, Sandbox, WorkerSettings},
};
use crate::{
    storage::{LocalRoot, S3Root, Storage},
    tools::{ToolLimits, file::FileLimits},
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
    #[arg(long, env = "LOG_LEVEL", default_value = "info,rmcp=warn", global = true, value_parser = log_filter)]
    pub log_level: tracing_subscriber::filter::Targets,

    /// Largest `file` read, in bytes (e.g. `1MiB`).
    #[arg(long, env = "MAX_READ_BYTES", default_value = "1MiB", global = true, value_parser = parse_read_bytes)]
    pub max_read_bytes: u64,

    /// Offer the `file_write` tool (create, replace, delete files under the data root).
    #[arg(long, env = "ALLOW_WRITE", global = true, action = ArgAction::SetTrue,
          value_parser = BoolishValueParser::new())]
    pub allow_write: bool,

    /// Largest file `file_write` accepts, in bytes (e.g. `8MiB`).
    #[arg(long, env = "MAX_WRITE_BYTES", default_value = "8MiB", global = true, value_parser = parse_write_bytes)]
    pub max_write_bytes: u64,

    /// Settings of the data tools (`db`, `dataset_metadata`, `search`).
    #[command(flatten)]
    pub data: DataArgs,

    /// Upstream MCP servers to federate: a TOML file (see examples/upstreams.toml), a local path
    /// or `s3://bucket/key`.
    #[arg(long, env = "MCP_UPSTREAMS", global = true)]
    pub upstreams: Option<String>,

    /// A catalogue written by `mcp-gateway upstreams snapshot` (local path or `s3://bucket/key`):
    /// lists are answered from it at start, without calling any upstream, until it is refreshed.
    #[arg(long, env = "MCP_CATALOGUE_SNAPSHOT", global = true)]
    pub catalogue_snapshot: Option<String>,

    /// Who may call what, and how often: a TOML file with `[auth]` (credentials `serve` accepts),
    /// `[authorization]` rules and `[[limit]]`s (see examples/access.toml); a local path or
    /// `s3://bucket/key`.
    #[arg(long, env = "MCP_ACCESS", global = true)]
    pub access: Option<String>,

    /// Offer no built-in tools (file, search, db, dataset_metadata): a pure federation gateway.
    #[arg(long, env = "MCP_NO_BUILTIN_TOOLS", global = true, action = ArgAction::SetTrue,
          value_parser = BoolishValueParser::new())]
    pub no_builtin_tools: bool,

    /// What to run; without one, `lambda` inside AWS Lambda and `serve` elsewhere.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Settings of the data tools, in builds with the `data` feature.
#[cfg(feature = "data")]
#[derive(Debug, Args)]
pub struct DataArgs {
    /// The most rows one `db` query may return (1 to 1000000).
    #[arg(long, env = "MAX_ROWS", default_value_t = 10_000, global = true,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_rows: u32,

    /// Seconds one `db` query may run (1 to 86400).
    #[arg(long, env = "DB_TIMEOUT", default_value_t = 60, global = true,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub db_timeout: u64,

    /// The most heap one `db` query may use (its worker process is stopped past it); default: half
    /// of the Lambda function's memory on Lambda, 1GiB elsewhere.
    #[arg(long, env = "MCP_DB_MEMORY", global = true, value_parser = parse_memory_bytes)]
    pub db_memory: Option<u64>,

    /// `db` queries running at once (each in its own worker process); more wait (1 to 64).
    #[arg(long, env = "MCP_DB_WORKERS", default_value_t = 2, global = true,
          value_parser = clap::value_parser!(u16).range(1..=64))]
    pub db_workers: u16,

    /// How the `db` worker is sandboxed: `seccomp` (no network sockets) or `off` (for kernels
    /// without seccomp).
    #[arg(long, env = "MCP_DB_SANDBOX", default_value = "seccomp", global = true)]
    pub db_sandbox: Sandbox,

    /// Seconds one `dataset_metadata` call may run (large CSVs are read in full; 1 to 86400).
    #[arg(long, env = "METADATA_TIMEOUT", default_value_t = 600, global = true,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub metadata_timeout: u64,

    /// Seconds between checks of the search index against the data root (new or changed files are
    /// indexed again; 1 to 86400).
    #[arg(long, env = "MCP_INDEX_RECHECK", default_value_t = 10, global = true,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub index_recheck: u64,

    /// Where datasets of an S3 data root are cached for polars (default: a folder in the temp dir).
    #[arg(long, env = "MCP_CACHE_DIR", global = true)]
    pub cache_dir: Option<PathBuf>,

    /// The most disk the S3 dataset cache may use (e.g. `400MiB`; Lambda's /tmp is 512 MB unless
    /// the function's ephemeral storage is raised).
    #[arg(long, env = "MCP_CACHE_MAX_BYTES", default_value = "400MiB", global = true, value_parser = parse_memory_bytes)]
    pub cache_max_bytes: u64,
}

/// Settings of the data tools: none in a build without the `data` feature.
#[cfg(not(feature = "data"))]
#[derive(Debug, Args)]
pub struct DataArgs {}

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
    #[cfg(feature = "data")]
    Index,
    /// Check the upstreams file or write its catalogue (`--upstreams` required).
    Upstreams {
        /// What to do.
        #[command(subcommand)]
        action: UpstreamsAction,
    },
    /// Check the access file, or hash a secret for it (read from stdin, one line).
    Access {
        /// What to do.
        #[command(subcommand)]
        action: AccessAction,
    },
    /// GET a running server's `/health` once: exit 0 on 200, 1 otherwise with the reason on stderr
    /// (a container's health check; needs no curl).
    Health(HealthArgs),
}

/// Options of `health`.
#[derive(Debug, Args)]
pub struct HealthArgs {
    /// URL to GET: `http://` or `https://`, without a user name or password; reached directly,
    /// never through `HTTP_PROXY`/`HTTPS_PROXY`.
    #[arg(long, env = "MCP_HEALTH_URL", default_value = "http://127.0.0.1:8080/health", value_parser = parse_health_url)]
    pub url: reqwest::Url,
    /// Seconds to wait for the answer, connecting included (1 to 60).
    #[arg(long, env = "MCP_HEALTH_TIMEOUT", default_value_t = 3,
          value_parser = clap::value_parser!(u64).range(1..=60))]
    pub timeout: u64,
}

impl HealthArgs {
    /// How long the check may take.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout)
    }
}

/// `mcp-gateway access ...`
#[derive(Debug, Clone, Copy, Subcommand)]
pub enum AccessAction {
    /// Validate the access file (`--access` required) and print what it sets.
    Check,
    /// Print the SHA-256 of an API key read from stdin, for `[[auth.api_key]] sha256`.
    HashKey,
    /// Print an Argon2id hash of a password read from stdin, for `[[auth.basic]] password_hash`.
    HashPassword,
}

/// `mcp-gateway upstreams ...`
#[derive(Debug, Clone, Copy, Subcommand)]
pub enum UpstreamsAction {
    /// Validate the file, connect to every upstream, and print each exposed name (or the error);
    /// exits with 1 when an upstream is down.
    Check,
    /// Write the aggregated catalogue as JSON to stdout, for `--catalogue-snapshot`.
    Snapshot,
}

/// Options of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "MCP_ADDR", default_value = "127.0.0.1:8080", value_parser = parse_addr)]
    pub addr: SocketAddr,
    /// Seconds a client may take to send a request's headers (1 to 3600).
    #[arg(long, env = "MCP_HEADER_TIMEOUT", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub header_timeout: u64,
    /// Connections served at once; more wait to be accepted (1 to 65536).
    #[arg(long, env = "MCP_MAX_CONNECTIONS", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub max_connections: u32,
    /// Token the management API's changes (`/gateway/register`, `/gateway/deregister/...`) must
    /// carry as `Authorization: Bearer`; without it they are refused. At least 16 characters.
    #[arg(long, env = "MCP_ADMIN_TOKEN", hide_env_values = true, value_parser = parse_admin_token)]
    pub admin_token: Option<crate::transport::http::Management>,
    /// PEM certificate chain to serve HTTPS with (with `--tls-key`); read again when it changes.
    #[arg(long, env = "MCP_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `--tls-cert`.
    #[arg(long, env = "MCP_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Seconds between checks of the TLS files for a renewed certificate (1 to 3600).
    #[arg(long, env = "MCP_TLS_RELOAD", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub tls_reload: u64,
    /// Serve a non-loopback address without `[auth]` in the access file (anyone who can reach
    /// the port may call every tool). Without it, `serve` refuses to start that way.
    #[arg(long, env = "MCP_INSECURE_NO_AUTH", action = ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
    pub insecure_no_auth: bool,
    /// Seconds between checks of a local upstreams file for changes (a valid new file replaces the
    /// fleet; SIGHUP reloads at once); 0 turns the check off (1 to 3600, or 0).
    #[arg(long, env = "MCP_UPSTREAMS_RELOAD", default_value_t = 2,
          value_parser = clap::value_parser!(u64).range(0..=3_600))]
    pub upstreams_reload: u64,
    #[command(flatten)]
    pub http: HttpArgs,
}

/// Options of `lambda`.
#[derive(Debug, Args)]
pub struct LambdaArgs {
    /// `buffered` (REST v1, HTTP API v2, Function URL BUFFERED) or `streaming` (REST STREAM,
    /// Function URL RESPONSE_STREAM). Must match the integration.
    #[arg(long, env = "MCP_LAMBDA_RESPONSE_MODE", default_value = "buffered", ignore_case = true)]
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
    /// Largest request body in bytes (413 above it; e.g. `4MiB`).
    #[arg(long, env = "MCP_MAX_BODY_BYTES", default_value = "4MiB", value_parser = parse_body_bytes)]
    pub max_body_bytes: u64,
    /// Seconds a client may take to send a request body (408 past it; 1 to 3600).
    #[arg(long, env = "MCP_BODY_TIMEOUT", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub body_timeout: u64,
    /// Secret that signs `Mcp-Session-Id` so every instance accepts every other's sessions;
    /// without it each process signs with a random key.
    #[arg(long, env = "MCP_SESSION_SECRET", hide_env_values = true)]
    pub session_secret: Option<String>,
}

impl HttpArgs {
    /// The HTTP settings, with `default_hosts` when no host was configured; fails only when the
    /// OS cannot give random bytes for a session key.
    pub fn settings(&self, default_hosts: AllowedHosts) -> anyhow::Result<HttpSettings> {
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
            None => SessionKey::random().context("cannot create a session key")?,
        };
        Ok(HttpSettings {
            allowed_hosts,
            allowed_origins: self.allowed_origins.iter().filter(|o| !o.is_empty()).cloned().collect(),
            max_body_bytes: usize::try_from(self.max_body_bytes).unwrap_or(usize::MAX),
            body_read_timeout: Duration::from_secs(self.body_timeout),
            session_key,
            ..HttpSettings::local()?
        })
    }
}

impl Cli {
    /// Parses the command line and the environment. The subcommand is the one given, or the
    /// default for where we run, parsed with the same rules: a bad setting is an error either way.
    pub fn from_env() -> Result<Self, String> {
        let mut cli = Self::parse_args(std::env::args_os())?;
        if cli.command.is_none() {
            let default = if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() { "lambda" } else { "serve" };
            // The default subcommand alone, so that its flags' environment variables apply.
            cli.command = Self::parse_args(["mcp-gateway", default])?.command;
        }
        Ok(cli)
    }

    fn parse_args<I, T>(args: I) -> Result<Self, String>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let mut command = <Self as clap::CommandFactory>::command();
        let parsed =
            command.try_get_matches_from_mut(args).and_then(|mut matches| Self::from_arg_matches_mut(&mut matches));
        parsed.map_err(|error| {
            if matches!(error.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                // `--help` and `--version` are answers, not errors: clap prints them to stdout
                // and exits with 0.
                error.exit();
            }
            explain(&command, &error)
        })
    }

    /// The subcommand (always set after [`Cli::from_env`]).
    pub fn subcommand(&self) -> Option<&Command> {
        self.command.as_ref()
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

    /// The S3 dataset cache's folder and size.
    #[cfg(feature = "data")]
    pub fn cache_settings(&self) -> CacheSettings {
        let defaults = CacheSettings::default();
        CacheSettings { dir: self.data.cache_dir.clone().unwrap_or(defaults.dir), max_bytes: self.data.cache_max_bytes }
    }

    /// Tool limits from the flags; the SQL worker is this binary.
    pub fn tool_limits(&self) -> anyhow::Result<ToolLimits> {
        #[cfg(feature = "data")]
        let data = &self.data;
        #[cfg(feature = "data")]
        let worker = WorkerSettings::current_exe(
            data.db_memory.unwrap_or_else(default_db_memory),
            usize::from(data.db_workers),
            data.db_sandbox,
        )
        .context("cannot find this program's own path to start SQL workers")?;
        Ok(ToolLimits {
            file: FileLimits { max_read_bytes: self.max_read_bytes, ..FileLimits::default() },
            #[cfg(feature = "data")]
            db: DbLimits {
                max_rows: data.max_rows as usize,
                timeout: Duration::from_secs(data.db_timeout),
                ..DbLimits::new(worker)
            },
            #[cfg(feature = "data")]
            metadata_timeout: Duration::from_secs(data.metadata_timeout),
            allow_write: self.allow_write,
            max_write_bytes: usize::try_from(self.max_write_bytes).unwrap_or(usize::MAX),
            #[cfg(feature = "data")]
            index_recheck: Duration::from_secs(data.index_recheck),
        })
    }
}

/// A setting or file that does not validate: the program stops with exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InvalidSetting(pub String);

#[cfg(feature = "data")]
/// A `db` query's memory cap when none is set: half the Lambda function's memory, or 1 GiB.
fn default_db_memory() -> u64 {
    std::env::var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        .ok()
        .and_then(|megabytes| megabytes.trim().parse::<u64>().ok())
        .map_or(1 << 30, |megabytes| (megabytes << 20) / 2)
}

/// A clap error, with the environment variable behind the setting named (clap names only the
/// flag, but on Lambda the value came from the environment) and, for switches, the values allowed.
fn explain(command: &clap::Command, error: &clap::Error) -> String {
    let rendered = error.render().to_string();
    let message: Vec<&str> = rendered.lines().filter(|line| !line.starts_with("For more information")).collect();
    let message = message.join("\n").trim_end().to_owned();
    let Some(ContextValue::String(arg)) = error.get(ContextKind::InvalidArg) else {
        return message;
    };
    let long = arg.split_whitespace().next().unwrap_or_default().trim_start_matches('-');
    let Some(setting) = std::iter::once(command)
        .chain(command.get_subcommands())
        .flat_map(clap::Command::get_arguments)
        .find(|candidate| candidate.get_long() == Some(long))
    else {
        return message;
    };
    let mut notes = vec![format!("setting --{long}")];
    if let Some(env) = setting.get_env() {
        notes.push(format!("environment variable {}", env.to_string_lossy()));
    }
    if matches!(setting.get_action(), ArgAction::SetTrue) {
        notes.push("allowed: true, false, yes, no, on, off, 1, 0".to_owned());
    }
    format!("{message}\n  ({})", notes.join("; "))
}

/// Parses a byte count: `1048576`, `512KiB`, `64MiB`, `2GiB` (powers of 1024) or `10KB`, `5MB`,
/// `1GB` (powers of 1000).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" | "k" => 1 << 10,
        "mib" | "m" => 1 << 20,
        "gib" | "g" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => u64::MAX,
    };
    number
        .parse::<u64>()
        .ok()
        .filter(|_| multiplier != u64::MAX)
        .and_then(|number| number.checked_mul(multiplier))
        .ok_or_else(|| format!("`{text}` is not a byte count; use e.g. 1048576, 512KiB, 64MiB or 2GiB"))
}

/// A byte count within `min..=max`.
fn bytes_in(text: &str, min: u64, max: u64) -> Result<u64, String> {
    let bytes = parse_bytes(text)?;
    if (min..=max).contains(&bytes) {
        Ok(bytes)
    } else {
        Err(format!("{bytes} bytes is out of range; allowed: {} to {}", show_bytes(min), show_bytes(max)))
    }
}

fn show_bytes(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{}GiB", b >> 30),
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{}MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{}KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

fn parse_read_bytes(text: &str) -> Result<u64, String> {
    bytes_in(text, 1, 1 << 30)
}

fn parse_write_bytes(text: &str) -> Result<u64, String> {
    bytes_in(text, 1, 1 << 30)
}

fn parse_body_bytes(text: &str) -> Result<u64, String> {
    bytes_in(text, 1 << 10, 1 << 30)
}

#[cfg(feature = "data")]
fn parse_memory_bytes(text: &str) -> Result<u64, String> {
    bytes_in(text, 16 << 20, 1 << 40)
}

/// An IP address and port to listen on.
fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    text.trim().parse().map_err(|_| {
        format!("`{text}` is not an address to listen on; use IP:PORT, e.g. 127.0.0.1:8080, 0.0.0.0:8080 or [::1]:8080")
    })
}

/// A URL for `health` to GET: `http` or `https`, with no user name or password (they would be
/// printed with every failure).
pub fn parse_health_url(text: &str) -> Result<reqwest::Url, String> {
    const EXAMPLE: &str = "use e.g. http://127.0.0.1:8080/health";
    let url =
        reqwest::Url::parse(text.trim()).map_err(|error| format!("`{text}` is not a URL ({error}); {EXAMPLE}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("`{text}` is not an http:// or https:// URL; {EXAMPLE}"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("the URL carries a user name or password, which a health check does not need; {EXAMPLE}"));
    }
    Ok(url)
}

/// An admin token of at least 16 visible ASCII characters.
fn parse_admin_token(text: &str) -> Result<crate::transport::http::Management, String> {
    crate::transport::http::Management::token(text)
}

/// `level` or `target=level` directives, comma-separated (`info`, `mcp_gateway=debug,rmcp=warn`):
/// tracing's `Targets` filter (`RUST_LOG`'s span and field filters are not supported). A target
/// must be a module path: tracing would take any other text (`info,[`) as a target no event has.
fn log_filter(text: &str) -> Result<tracing_subscriber::filter::Targets, String> {
    const USE: &str = "use e.g. info, debug or mcp_gateway=debug,rmcp=warn";
    let module_path = |target: &str| {
        !target.is_empty() && target.bytes().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b':'))
    };
    for directive in text.trim().split(',') {
        let target = directive.split_once('=').map_or(directive, |(target, _)| target).trim();
        // (tracing reads an empty level as `error`)
        let bare_level = !target.is_empty()
            && !directive.contains('=')
            && target.parse::<tracing::level_filters::LevelFilter>().is_ok();
        if !bare_level && !module_path(target) {
            return Err(format!("is not a log filter (`{directive}` names no module path); {USE}"));
        }
        if directive.split_once('=').is_some_and(|(_, level)| level.trim().is_empty()) {
            return Err(format!("is not a log filter (`{directive}` names no level); {USE}"));
        }
    }
    text.trim().parse().map_err(|error| format!("is not a log filter ({error}); {USE}"))
}

/// JSON logs on stderr; `RUST_LOG` wins over `--log-level`. A `RUST_LOG` that does not parse is
/// an error naming it.
///
/// rmcp's HTTP client worker is always silent: its error lines hold reqwest's error with an
/// upstream's whole URL, query (which may be a key) included; the gateway logs each upstream
/// failure itself, with the query cut.
pub fn init_logging(level: &tracing_subscriber::filter::Targets) -> Result<(), String> {
    use tracing_subscriber::{layer::SubscriberExt as _, util::SubscriberInitExt as _};
    let filter = match std::env::var("RUST_LOG") {
        Ok(value) if !value.trim().is_empty() => {
            log_filter(&value).map_err(|error| format!("RUST_LOG={value:?} {error}"))?
        }
        _ => level.clone(),
    };
    let filter = filter.with_target("rmcp::transport::worker", tracing::level_filters::LevelFilter::OFF);
    let stderr = tracing_subscriber::fmt::layer()
        .json()
        .with_writer(std::io::stderr)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(true);
    tracing_subscriber::registry().with(stderr).with(filter).init();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_parse_with_units_and_refuse_nonsense() {
        assert_eq!(parse_bytes("1048576"), Ok(1 << 20));
        assert_eq!(parse_bytes("64MiB"), Ok(64 << 20));
        assert_eq!(parse_bytes("2gib"), Ok(2 << 30));
        assert_eq!(parse_bytes("5MB"), Ok(5_000_000));
        for bad in ["", "MiB", "-1", "1.5GiB", "12 parsecs", "99999999999999999999", "18446744073709551615GiB"] {
            assert!(parse_bytes(bad).is_err(), "{bad:?} parsed");
        }
        assert!(parse_body_bytes("10").is_err_and(|error| error.contains("1KiB to 1GiB")));
    }

    fn error_of(args: &[&str]) -> String {
        match Cli::parse_args(args.iter().copied()) {
            Ok(cli) => panic!("{args:?} parsed: {cli:?}"),
            Err(error) => error,
        }
    }

    #[test]
    fn bad_values_name_the_setting_its_variable_and_what_is_allowed() {
        let error = error_of(&["mcp-gateway", "lambda", "--response-mode", "streming"]);
        assert!(error.contains("streming") && error.contains("buffered") && error.contains("streaming"), "{error}");
        assert!(error.contains("MCP_LAMBDA_RESPONSE_MODE"), "{error}");
        let error = error_of(&["mcp-gateway", "--max-read-bytes", "lots", "stdio"]);
        assert!(error.contains("MAX_READ_BYTES") && error.contains("64MiB"), "{error}");
        #[cfg(feature = "data")]
        {
            let error = error_of(&["mcp-gateway", "--max-rows", "0", "stdio"]);
            assert!(error.contains("MAX_ROWS") && error.contains("1..=1000000"), "{error}");
            let error = error_of(&["mcp-gateway", "--db-sandbox", "none", "stdio"]);
            assert!(error.contains("seccomp") && error.contains("MCP_DB_SANDBOX"), "{error}");
        }
        let error = error_of(&["mcp-gateway", "--log-level", "info,=", "stdio"]);
        assert!(error.contains("LOG_LEVEL"), "{error}");
    }

    #[test]
    fn log_filters_are_levels_and_module_path_targets() {
        for good in ["info", " debug ", "info,rmcp=warn", "mcp_gateway::upstream=trace,warn", "rmcp"] {
            assert!(log_filter(good).is_ok(), "{good}");
        }
        for bad in ["info,[", "info,=", "=debug", "rmcp=", "info,mcp_gateway=loud", "a=b=c", "info,,warn"] {
            let error = log_filter(bad).err().unwrap_or_else(|| panic!("{bad} accepted"));
            assert!(error.starts_with("is not a log filter"), "{error}");
        }
    }

    #[test]
    fn health_urls_must_be_http_or_https_without_credentials() {
        for good in
            ["http://127.0.0.1:8080/health", "https://gateway.example.com/v1/health", " http://[::1]:9000/live "]
        {
            let url = parse_health_url(good).unwrap_or_else(|error| panic!("{good:?}: {error}"));
            assert!(matches!(url.scheme(), "http" | "https"), "{url}");
        }
        for (bad, says) in [
            ("", "is not a URL"),
            ("127.0.0.1:8080/health", "is not a URL"),
            ("localhost:8080", "not an http:// or https:// URL"),
            ("ftp://127.0.0.1/health", "not an http:// or https:// URL"),
            ("file:///etc/passwd", "not an http:// or https:// URL"),
            ("http://", "is not a URL"),
            ("http://[::1/health", "is not a URL"),
            ("http://user:secret@127.0.0.1:8080/health", "user name or password"),
        ] {
            let error = match parse_health_url(bad) {
                Ok(url) => panic!("{bad:?} parsed as {url}"),
                Err(error) => error,
            };
            assert!(error.contains(says) && error.contains("http://127.0.0.1:8080/health"), "{bad:?}: {error}");
            assert!(!error.contains("secret"), "the password is echoed: {error}");
        }
    }

    #[test]
    fn health_defaults_to_the_image_port_and_bounds_its_flags() {
        let cli = Cli::parse_args(["mcp-gateway", "health"]).unwrap_or_else(|error| panic!("{error}"));
        let Some(Command::Health(args)) = cli.command else { panic!("not health: {cli:?}") };
        assert_eq!(args.url.as_str(), "http://127.0.0.1:8080/health");
        assert_eq!(args.timeout(), Duration::from_secs(3));
        let error = error_of(&["mcp-gateway", "health", "--url", "ftp://127.0.0.1/health"]);
        assert!(error.contains("--url") && error.contains("MCP_HEALTH_URL"), "{error}");
        for timeout in ["0", "61", "3s"] {
            let error = error_of(&["mcp-gateway", "health", "--timeout", timeout]);
            assert!(error.contains("--timeout") && error.contains("MCP_HEALTH_TIMEOUT"), "{timeout}: {error}");
        }
    }

    #[test]
    fn response_mode_accepts_its_names_and_aliases_in_any_case() {
        for (text, mode) in [
            ("buffered", ResponseMode::Buffered),
            ("STREAMING", ResponseMode::Streaming),
            ("stream", ResponseMode::Streaming),
        ] {
            let cli = Cli::parse_args(["mcp-gateway", "lambda", "--response-mode", text]);
            let parsed = cli.ok().and_then(|cli| match cli.command {
                Some(Command::Lambda(args)) => Some(args.response_mode),
                _ => None,
            });
            assert_eq!(parsed, Some(mode), "{text}");
        }
    }
}

//! The `mcp-sigv4-proxy` command line.

use std::{path::PathBuf, process::ExitCode, sync::Arc, time::Duration};

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use http::{HeaderName, HeaderValue};
use mcp_sigv4_proxy::{
    credentials::CredentialSource,
    doctor,
    endpoint::Endpoint,
    filter::ToolFilter,
    forward::{Auth, Options, Proxy},
    process::{self, Out},
};
use mcp_wire::line::{Line, LineReader};
use tokio::{io::BufReader, sync::mpsc, task::JoinSet};

/// Local stdio MCP server that signs each request with AWS SigV4 and forwards it to an
/// IAM-protected MCP endpoint.
#[derive(Debug, Parser)]
#[command(name = "mcp-sigv4-proxy", version, about)]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check credentials, clock, DNS/TLS and a signed request, and say how to fix what fails.
    Doctor,
}

#[derive(Debug, Args)]
struct Common {
    /// The MCP endpoint URL, e.g. https://<api-id>.execute-api.<region>.amazonaws.com/prod/mcp
    #[arg(long, env = "API_GATEWAY_URL", global = true)]
    endpoint: Option<String>,
    /// AWS region to sign for (default: from the URL).
    #[arg(long, env = "AWS_REGION", global = true)]
    region: Option<String>,
    /// AWS profile for credentials.
    #[arg(long, env = "AWS_PROFILE", global = true)]
    profile: Option<String>,
    /// SigV4 service name (default: from the URL; `execute-api` for custom domains).
    #[arg(long, global = true)]
    service: Option<String>,
    /// Seconds to wait for response headers, and between events of a streamed answer.
    #[arg(long, default_value_t = 60, global = true)]
    timeout: u64,
    /// Extra header for every request, `K=V` (repeatable).
    #[arg(long = "header", value_name = "K=V", global = true)]
    headers: Vec<String>,
    /// Only expose tools annotated read-only (`readOnlyHint`).
    #[arg(long, global = true)]
    read_only: bool,
    /// Only expose tools matching these globs (comma-separated or repeated).
    #[arg(long, value_delimiter = ',', global = true)]
    allow_tools: Vec<String>,
    /// Hide and refuse tools matching these globs (comma-separated or repeated).
    #[arg(long, value_delimiter = ',', global = true)]
    deny_tools: Vec<String>,
    /// The longest message accepted on stdin, in bytes (`K`, `M`, `G` suffixes: KiB, MiB, GiB).
    /// A longer line gets a parse error and is skipped without being held in memory.
    #[arg(long, default_value = "16M", value_parser = parse_message_bytes, global = true)]
    max_message_bytes: u64,
    /// The largest answer, and the largest event of a streamed answer, in bytes (`K`, `M`, `G`
    /// suffixes). Answers over 256 KiB wait in a temporary file until complete.
    #[arg(long, default_value = "256M", value_parser = parse_answer_bytes, global = true)]
    max_answer_bytes: u64,
    /// How requests prove the caller's IAM identity: `sigv4` (sign each request: API Gateway with
    /// AWS_IAM) or `sts` (send a signed STS GetCallerIdentity request as a token: `mcp-gateway serve` with
    /// `[auth.iam]`, e.g. on EC2).
    #[arg(long, env = "MCP_PROXY_AUTH", default_value = "sigv4", value_parser = ["sigv4", "sts"], global = true)]
    auth: String,
    /// `--auth sts`: the gateway's id the token is bound to (its `[auth.iam] gateway_id`);
    /// default: the endpoint's host (and port).
    #[arg(long, env = "MCP_GATEWAY_ID", global = true)]
    gateway_id: Option<String>,
    /// `--auth sts`: the STS endpoint the token is signed for (default:
    /// `https://sts.<region>.amazonaws.com/`).
    #[arg(long, env = "MCP_STS_ENDPOINT", global = true)]
    sts_endpoint: Option<String>,
    /// Log filter for stderr: a level, or `target=level` directives (`info`, `mcp_sigv4_proxy=debug`).
    #[arg(long, env = "MCP_PROXY_LOG", default_value = "warn", global = true, value_parser = parse_log_filter)]
    log_level: tracing_subscriber::filter::Targets,
    /// Also append logs to this file.
    #[arg(long, global = true)]
    log_file: Option<PathBuf>,
}

fn main() -> ExitCode {
    process::tune_allocator();
    let cli = Cli::parse();
    init_logging(cli.common.log_level.clone(), cli.common.log_file.as_deref());
    // One thread is plenty for a stdio bridge (messages still run concurrently as tasks) and keeps
    // the footprint small: no second allocator arena or worker stack.
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("mcp-sigv4-proxy: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let (endpoint, credentials) = setup(&cli.common)?;
        match cli.command {
            Some(Command::Doctor) => {
                let timeout = Duration::from_secs(cli.common.timeout);
                Ok(doctor::run(&endpoint, &credentials, timeout, std::io::stdout()).await)
            }
            None => run(&cli.common, endpoint, credentials).await.map(|()| true),
        }
    });
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "mcp-sigv4-proxy failed");
            eprintln!("mcp-sigv4-proxy: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn setup(common: &Common) -> anyhow::Result<(Endpoint, CredentialSource)> {
    let url = common
        .endpoint
        .as_deref()
        .context("no endpoint: pass --endpoint https://<api-id>.execute-api.<region>.amazonaws.com/<stage>/mcp or set API_GATEWAY_URL")?;
    let region = common.region.clone().or_else(|| std::env::var("AWS_DEFAULT_REGION").ok());
    let endpoint = Endpoint::new(url, common.service.as_deref(), region.as_deref())?;
    let credentials = CredentialSource::new(common.profile.clone(), endpoint.region.clone());
    Ok((endpoint, credentials))
}

async fn run(common: &Common, endpoint: Endpoint, credentials: CredentialSource) -> anyhow::Result<()> {
    let max_message_bytes =
        usize::try_from(common.max_message_bytes).context("--max-message-bytes does not fit this machine")?;
    let options = Options {
        timeout: Duration::from_secs(common.timeout.max(1)),
        headers: parse_headers(&common.headers)?,
        filter: ToolFilter::new(common.read_only, &common.allow_tools, &common.deny_tools)
            .context("invalid --allow-tools/--deny-tools glob")?,
        max_message_bytes,
        max_answer_bytes: common.max_answer_bytes,
        auth: match common.auth.as_str() {
            "sts" => {
                let sts_endpoint = match &common.sts_endpoint {
                    Some(url) => format!("{}/", url.trim_end_matches('/')),
                    None => mcp_sigv4::sts_token::regional_endpoint(&endpoint.region),
                };
                Auth::Sts {
                    gateway_id: common.gateway_id.clone().unwrap_or_else(|| endpoint.authority()),
                    sts_endpoint,
                }
            }
            _ => Auth::SigV4,
        },
    };
    tracing::info!(%endpoint, "forwarding stdio to the endpoint");
    let (out, lines) = mpsc::channel::<Out>(1024);
    let writer_done = process::spawn_stdout_writer(lines).context("starting the stdout writer thread")?;
    let proxy = Arc::new(Proxy::new(endpoint, credentials, options, out)?);
    let mut stdin = LineReader::new(BufReader::new(tokio::io::stdin()), max_message_bytes);
    let mut tasks = JoinSet::new();
    while let Some(line) = stdin.next_line().await.context("reading stdin")? {
        if let Line::Complete(bytes) = &line
            && bytes.iter().all(u8::is_ascii_whitespace)
        {
            continue;
        }
        tasks.spawn(proxy.clone().handle_line(line));
        while tasks.try_join_next().is_some() {}
    }
    tracing::info!(in_flight = tasks.len(), "stdin closed; finishing in-flight requests");
    while tasks.join_next().await.is_some() {}
    drop(proxy);
    writer_done.await.ok();
    Ok(())
}

fn parse_message_bytes(text: &str) -> Result<u64, String> {
    parse_bytes(text, 1024, 1 << 30)
}

fn parse_answer_bytes(text: &str) -> Result<u64, String> {
    parse_bytes(text, 1024, 1 << 40)
}

/// A size in bytes, `K`/`M`/`G` (or `KiB`/`MiB`/`GiB`) meaning powers of 1024, within bounds.
fn parse_bytes(text: &str, min: u64, max: u64) -> Result<u64, String> {
    let text = text.trim();
    let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: u64 = number.parse().map_err(|_| format!("`{text}` is not a size such as 16M or 1048576"))?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        _ => return Err(format!("`{text}`: the unit must be K, M or G (powers of 1024)")),
    };
    let bytes = number.checked_mul(scale).ok_or_else(|| format!("`{text}` is too large"))?;
    if !(min..=max).contains(&bytes) {
        return Err(format!("{bytes} bytes is outside {min}..={max}"));
    }
    Ok(bytes)
}

fn parse_headers(raw: &[String]) -> anyhow::Result<Vec<(HeaderName, HeaderValue)>> {
    raw.iter()
        .map(|pair| {
            let (name, value) = pair.split_once('=').with_context(|| format!("--header `{pair}` is not K=V"))?;
            let name = HeaderName::try_from(name.trim()).with_context(|| format!("bad header name in `{pair}`"))?;
            let value = HeaderValue::try_from(value.trim()).with_context(|| format!("bad header value in `{pair}`"))?;
            Ok((name, value))
        })
        .collect()
}

/// A log filter tracing accepts (its `Targets` syntax).
fn parse_log_filter(text: &str) -> Result<tracing_subscriber::filter::Targets, String> {
    text.trim()
        .parse()
        .map_err(|error| format!("not a log filter ({error}); use e.g. warn, info or mcp_sigv4_proxy=debug"))
}

fn init_logging(filter: tracing_subscriber::filter::Targets, file: Option<&std::path::Path>) {
    use tracing_subscriber::{fmt, layer::SubscriberExt as _, util::SubscriberInitExt as _};
    let stderr = fmt::layer().json().with_writer(std::io::stderr).with_current_span(false).with_span_list(false);
    let file_layer = file.and_then(|path| match std::fs::OpenOptions::new().create(true).append(true).open(path) {
        Ok(file) => Some(fmt::layer().json().with_writer(std::sync::Mutex::new(file))),
        Err(error) => {
            eprintln!("mcp-sigv4-proxy: cannot open log file {}: {error}", path.display());
            None
        }
    });
    tracing_subscriber::registry().with(filter).with(stderr).with(file_layer).init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_filters_are_levels_or_target_levels_and_a_bad_one_is_refused() {
        for good in ["warn", " debug ", "mcp_sigv4_proxy=debug,warn", "rmcp=off"] {
            assert!(parse_log_filter(good).is_ok(), "{good}");
        }
        for bad in ["mcp_sigv4_proxy=loud", "=loud", "a=b=c"] {
            let error = parse_log_filter(bad).err().unwrap_or_else(|| panic!("{bad} accepted"));
            assert!(error.starts_with("not a log filter"), "{error}");
        }
    }

    #[test]
    fn sizes_take_units_and_stay_in_bounds() {
        assert_eq!(parse_message_bytes("16M"), Ok(16 << 20));
        assert_eq!(parse_answer_bytes("256MiB"), Ok(256 << 20));
        assert_eq!(parse_answer_bytes("65536"), Ok(65536));
        assert_eq!(parse_message_bytes("2k"), Ok(2048));
        assert!(parse_message_bytes("0").is_err());
        assert!(parse_message_bytes("2G").is_err());
        assert!(parse_answer_bytes("12 parsecs").is_err());
        assert!(parse_answer_bytes("-5").is_err());
        assert!(parse_answer_bytes("99999999999999999999G").is_err());
    }
}

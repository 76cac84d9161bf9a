//! `mcp-gateway`: MCP data tools over stateless Streamable HTTP on AWS Lambda, as a long-lived
//! server (`serve`), and over `stdio`. See ARCHITECTURE.md for the codemap.

use std::{io::Write as _, process::ExitCode, sync::Arc};

use mcp_gateway::{
    access,
    config::{self, Cli, Command},
    server::{Core, Gateway},
    transport,
};

#[global_allocator]
static ALLOCATOR: mcp_gateway::heap_limit::CappedAllocator = mcp_gateway::heap_limit::CappedAllocator;

/// Threads for blocking work; see `main`.
const MAX_BLOCKING_THREADS: usize = 16;

fn main() -> ExitCode {
    // A `db` query's worker process is this binary too; it runs the query and exits.
    #[cfg(feature = "data")]
    if let Some(code) = mcp_gateway::tools::db::worker::run_if_requested() {
        return code;
    }
    let cli = match mcp_gateway::heap_limit::configure_from_env().and_then(|()| Cli::from_env()) {
        Ok(cli) => cli,
        Err(message) => {
            eprintln!("mcp-gateway: {}", message.trim_end());
            return ExitCode::from(2);
        }
    };
    // Before logging and the server's runtime: stderr gets the one line that says why, nothing else.
    if let Some(Command::Health(args)) = cli.subcommand() {
        return health_command(args);
    }
    if let Err(message) = config::init_logging(&cli.log_level) {
        eprintln!("mcp-gateway: {message}");
        return ExitCode::from(2);
    }
    // Blocking work (search queries, polars, large reads, listings) is CPU- or disk-bound, so more
    // threads than this only add stacks and malloc arenas under load (tokio's default is 512).
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.downcast_ref::<config::InvalidSetting>().is_some() => {
            eprintln!("mcp-gateway: {error:#}");
            ExitCode::from(2)
        }
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "mcp-gateway failed");
            eprintln!("mcp-gateway: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let invalid = |message: String| anyhow::Error::new(config::InvalidSetting(message));
    let access = match &cli.access {
        Some(source) => Some(access::load(source).await.map_err(|error| invalid(error.to_string()))?),
        None => None,
    };
    if let Some(Command::Access { action }) = cli.subcommand() {
        return access_command(access.as_ref(), *action);
    }
    #[cfg(feature = "data")]
    mcp_gateway::datasets::configure_cache(cli.cache_settings());
    let mut core = build_core(&cli).await?;
    if let Some(access) = &access {
        core.policy = access::Policy::new(access);
        core.cache = mcp_gateway::result_cache::ResultCache::new(access.cache.clone());
    }
    let core = Arc::new(core);
    let Some(command) = cli.subcommand() else { anyhow::bail!("no subcommand") };
    if matches!(command, Command::Serve(_) | Command::Lambda(_)) {
        let export = mcp_gateway::trace_export::ExportSettings::from_env(|name| std::env::var(name).ok());
        if let Some(settings) = export.map_err(invalid)? {
            mcp_gateway::trace_export::start(settings)
                .map_err(|error| anyhow::anyhow!("cannot make the HTTP client for OTLP export: {error}"))?;
        }
    }
    match command {
        Command::Serve(args) => {
            preload_index(&core);
            let mut settings = args.http.settings(transport::http::AllowedHosts::loopback())?;
            settings.tls = args.tls_cert.is_some();
            if let Some(token) = &args.admin_token {
                settings.management = token.clone();
            }
            match access.and_then(|access| access.auth) {
                Some(auth) => {
                    let authenticator = access::authn::Authenticator::new(auth)
                        .map_err(|error| anyhow::anyhow!("cannot make the HTTP client for JWT keys: {error}"))?;
                    settings.auth = Some(Arc::new(authenticator));
                }
                None if !args.addr.ip().is_loopback() && !args.insecure_no_auth => {
                    return Err(invalid(format!(
                        "serve would listen on {}, which is not a loopback address, with no authentication: add \
                         [auth] to the access file (--access / MCP_ACCESS), or pass --insecure-no-auth \
                         (MCP_INSECURE_NO_AUTH=true) to let anyone who reaches the port call every tool",
                        args.addr
                    )));
                }
                None => {}
            }
            let shutdown = settings.shutdown.clone();
            if let (Some(source), Some(catalogue)) = (&cli.upstreams, core.registry.upstreams()) {
                let interval =
                    (args.upstreams_reload > 0).then(|| std::time::Duration::from_secs(args.upstreams_reload));
                tokio::spawn(mcp_gateway::upstream::watch(catalogue.clone(), source.clone(), interval));
                tokio::spawn(mcp_gateway::upstream::probe(catalogue.clone()));
            }
            let router = transport::http::router(core, settings);
            let limits = transport::serve::Limits {
                max_connections: args.max_connections as usize,
                header_read_timeout: std::time::Duration::from_secs(args.header_timeout),
                ..Default::default()
            };
            let tls = match (&args.tls_cert, &args.tls_key) {
                #[cfg(not(feature = "edge"))]
                (Some(_), _) => {
                    return Err(invalid(
                        "--tls-cert (MCP_TLS_CERT): this build has no TLS (the `edge` feature, which the \
                         federation-only build leaves out): terminate TLS in front of it (a load balancer) or use \
                         the full build"
                            .to_owned(),
                    ));
                }
                #[cfg(feature = "edge")]
                (Some(cert), Some(key)) => {
                    let files = transport::tls::TlsFiles {
                        cert: cert.clone(),
                        key: key.clone(),
                        reload: std::time::Duration::from_secs(args.tls_reload),
                    };
                    Some(transport::tls::acceptor(files).map_err(|error| {
                        invalid(format!("--tls-cert/--tls-key (MCP_TLS_CERT/MCP_TLS_KEY): {error}"))
                    })?)
                }
                _ => None,
            };
            transport::serve::run(router, args.addr, limits, shutdown, tls).await?;
            tracing::info!(peak_heap_bytes = mcp_gateway::heap_limit::peak_bytes(), "stopped");
        }
        // Boxed: rmcp's stdio service is a large future, kept off this function's stack frame.
        Command::Stdio => {
            if let Some(catalogue) = core.registry.upstreams() {
                tokio::spawn(mcp_gateway::upstream::probe(catalogue.clone()));
            }
            Box::pin(transport::stdio::run(Gateway::new(core))).await?;
        }
        #[cfg(feature = "data")]
        Command::Index => {
            use mcp_gateway::search_index;
            let started = std::time::Instant::now();
            let progress = mcp_gateway::progress::Progress::disabled();
            let info = search_index::build_and_store(&core.storage, &progress).await?;
            let mut stdout = std::io::stdout();
            writeln!(
                stdout,
                "indexed {} files ({} passages) into {}/{} in {:.1} s",
                info.files,
                info.documents,
                core.storage.describe().trim_end_matches('/'),
                search_index::INDEX_DIR,
                started.elapsed().as_secs_f64()
            )?;
        }
        Command::Upstreams { action } => {
            let Some(catalogue) = core.registry.upstreams() else {
                return Err(anyhow::Error::new(config::InvalidSetting(
                    "`upstreams` needs an upstreams file: --upstreams PATH or MCP_UPSTREAMS".to_owned(),
                )));
            };
            upstreams_command(catalogue, *action).await?;
        }
        Command::Access { .. } | Command::Health(_) => {}
        Command::Lambda(args) => {
            if access.as_ref().is_some_and(|access| access.auth.is_some()) {
                tracing::info!(
                    "the access file's [auth] is not used on Lambda: API Gateway's AWS_IAM check authenticates \
                     callers (the rules and limits apply to the IAM principal)"
                );
            }
            preload_index(&core);
            mcp_gateway::metrics::enable_emf();
            let mut settings = args.http.settings(transport::http::AllowedHosts::Any)?;
            settings.management = transport::http::Management::ReadOnly;
            let router = transport::http::router(core, settings);
            transport::lambda::run(router, args.response_mode).await.map_err(|error| anyhow::anyhow!(error))?;
        }
    }
    Ok(())
}

/// `mcp-gateway access check|hash-key|hash-password`.
fn access_command(access: Option<&access::AccessConfig>, action: config::AccessAction) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    let secret = || -> anyhow::Result<String> {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        let secret = line.trim_end_matches(['\r', '\n']).to_owned();
        anyhow::ensure!(!secret.is_empty(), "give the secret on stdin (one line)");
        Ok(secret)
    };
    match action {
        config::AccessAction::HashKey => writeln!(stdout, "{}", access::authn::hash_key(&secret()?))?,
        #[cfg(feature = "edge")]
        config::AccessAction::HashPassword => writeln!(stdout, "{}", access::authn::hash_password(&secret()?)?)?,
        #[cfg(not(feature = "edge"))]
        config::AccessAction::HashPassword => anyhow::bail!(
            "hash-password: this build has no HTTP Basic (the `edge` feature, which the federation-only build \
             leaves out); use the full build"
        ),
        config::AccessAction::Check => {
            let Some(access) = access else {
                return Err(anyhow::Error::new(config::InvalidSetting(
                    "`access check` needs an access file: --access PATH or MCP_ACCESS".to_owned(),
                )));
            };
            let auth = access.auth.as_ref().map_or_else(|| "none".to_owned(), access::config::AuthConfig::summary);
            writeln!(stdout, "auth: {auth}")?;
            writeln!(stdout, "authorization: {} rules, default {:?}", access.rules.rules.len(), access.rules.default)?;
            for limit in &access.limits {
                writeln!(
                    stdout,
                    "limit `{}`: {:?}, {} per {:?}, burst {}",
                    limit.name, limit.scope, limit.rate, limit.per, limit.burst
                )?;
            }
        }
    }
    Ok(())
}

/// `mcp-gateway health`: one GET; 0 on 200 OK, 1 with a one-line reason on stderr otherwise.
fn health_command(args: &config::HealthArgs) -> ExitCode {
    let checked = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start the async runtime: {error}"))
        .and_then(|runtime| runtime.block_on(check_health(&args.url, args.timeout())));
    match checked {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            eprintln!("mcp-gateway health: {}", reason.replace(['\r', '\n'], " "));
            ExitCode::FAILURE
        }
    }
}

/// GETs `url` within `timeout` with the gateway's outbound client (no redirects followed), directly:
/// an `HTTP_PROXY` set for the server's own calls must not carry a check of the server itself.
async fn check_health(url: &reqwest::Url, timeout: std::time::Duration) -> Result<(), String> {
    let client = mcp_gateway::outbound::direct_client(timeout)
        .map_err(|error| format!("cannot make the HTTP client: {error}"))?;
    let response = client.get(url.clone()).send().await.map_err(|error| {
        if error.is_timeout() {
            return format!("GET {url}: no answer within {} s (--timeout)", timeout.as_secs());
        }
        let error = error.without_url();
        let causes = std::iter::successors(Some(&error as &dyn std::error::Error), |error| error.source());
        format!("GET {url}: {}", causes.map(ToString::to_string).collect::<Vec<_>>().join(": "))
    })?;
    match response.status() {
        reqwest::StatusCode::OK => Ok(()),
        status => Err(format!("GET {url} answered {status}, not 200 OK")),
    }
}

/// `mcp-gateway upstreams check|snapshot`.
async fn upstreams_command(
    catalogue: &mcp_gateway::upstream::Catalogue,
    action: config::UpstreamsAction,
) -> anyhow::Result<()> {
    let refreshed = catalogue.refresh().await;
    let mut stdout = std::io::stdout().lock();
    match action {
        config::UpstreamsAction::Snapshot => {
            let snapshot = refreshed?;
            if let Some((name, reason)) = snapshot.left_out.iter().next() {
                anyhow::bail!("upstream `{name}` is down ({reason}); a snapshot must hold every upstream");
            }
            serde_json::to_writer_pretty(&mut stdout, &catalogue.save())?;
            writeln!(stdout)?;
        }
        config::UpstreamsAction::Check => {
            let snapshot = refreshed?;
            for upstream in catalogue.upstreams().iter() {
                let status = upstream.status();
                match snapshot.left_out.get(upstream.name()) {
                    Some(reason) => writeln!(stdout, "{}: down: {reason}", upstream.name())?,
                    None => writeln!(
                        stdout,
                        "{}: up ({}, {} tools, {:.1} ms)",
                        upstream.name(),
                        status.protocol.as_deref().unwrap_or("?"),
                        status.tools,
                        status.latency_ms.unwrap_or_default()
                    )?,
                }
                for (name, entry) in snapshot.tools.iter().filter(|(_, entry)| entry.upstream.name() == upstream.name())
                {
                    writeln!(stdout, "  {name}  ({})", entry.original)?;
                }
            }
            if !snapshot.left_out.is_empty() {
                anyhow::bail!("{} of {} upstreams are down", snapshot.left_out.len(), catalogue.upstreams().len());
            }
        }
    }
    Ok(())
}

/// Loads the stored search index in the background, so a cold start is not delayed by it.
#[cfg(feature = "data")]
fn preload_index(core: &Arc<Core>) {
    let core = core.clone();
    tokio::spawn(async move { core.search_index.preload(&core.storage).await });
}

/// Without the `data` feature there is no search index to load.
#[cfg(not(feature = "data"))]
fn preload_index(_core: &Arc<Core>) {}

async fn build_core(cli: &Cli) -> anyhow::Result<Core> {
    let invalid = |message: String| anyhow::Error::new(config::InvalidSetting(message));
    let lambda = matches!(cli.subcommand(), Some(Command::Lambda(_)));
    let upstreams = match &cli.upstreams {
        Some(source) => {
            let mut config = mcp_gateway::upstream::load(source).await.map_err(|error| invalid(error.to_string()))?;
            config.listen = !lambda;
            Some(config)
        }
        None => None,
    };
    if let Some(config) = &upstreams
        && lambda
        && let Some(stdio) = config.upstreams.iter().find(|upstream| upstream.is_stdio())
    {
        return Err(invalid(format!(
            "upstream `{}` is a stdio upstream, which needs a long-lived process: on Lambda use http upstreams \
             (run stdio ones under `serve` or `stdio`)",
            stdio.name
        )));
    }
    let core = Core::new(cli.storage().await?, cli.tool_limits()?, !cli.no_builtin_tools, upstreams);
    if let (Some(source), Some(catalogue)) = (&cli.catalogue_snapshot, core.registry.upstreams()) {
        let text = mcp_gateway::upstream::read_text(source).await.map_err(|error| invalid(error.to_string()))?;
        let saved = serde_json::from_str(&text)
            .map_err(|error| invalid(format!("{source}: not a catalogue snapshot: {error}")))?;
        catalogue.load(saved).map_err(|error| invalid(format!("{source}: {error}")))?;
    }
    // A long-lived process fills the catalogue now (unless a snapshot did): two tools exposed
    // under one name stop it here, naming both. On Lambda the first list does it, so cold starts
    // stay short.
    if matches!(cli.subcommand(), Some(Command::Serve(_) | Command::Stdio))
        && cli.catalogue_snapshot.is_none()
        && let Some(catalogue) = core.registry.upstreams()
        && let Err(error @ mcp_gateway::upstream::catalogue::CatalogueError::Collision { .. }) =
            catalogue.refresh().await
    {
        return Err(invalid(error.to_string()));
    }
    tracing::debug!(root = %core.storage.describe(), tools = ?core.registry, "core ready");
    Ok(core)
}

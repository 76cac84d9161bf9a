//! `mcp-gateway`: MCP data tools over stateless Streamable HTTP on AWS Lambda, as a long-lived
//! server (`serve`), and over `stdio`. See ARCHITECTURE.md for the codemap.

use std::{process::ExitCode, sync::Arc};

use clap::Parser as _;

use mcp_gateway::{
    config::{self, Cli, Command},
    server::{Core, Gateway},
    transport,
};

fn main() -> ExitCode {
    let cli = Cli::parse();
    config::init_logging(&cli.log_level);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
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
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "mcp-gateway failed");
            eprintln!("mcp-gateway: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let core = Arc::new(build_core(&cli).await?);
    match cli.command() {
        Command::Serve(args) => {
            let settings = args
                .http
                .settings(transport::http::AllowedHosts::loopback());
            let shutdown = settings.shutdown.clone();
            let router = transport::http::router(core, settings);
            transport::serve::run(router, args.addr, shutdown).await?;
        }
        Command::Stdio => transport::stdio::run(Gateway::new(core)).await?,
        Command::Lambda(args) => {
            let settings = args.http.settings(transport::http::AllowedHosts::Any);
            let router = transport::http::router(core, settings);
            transport::lambda::run(router, args.response_mode)
                .await
                .map_err(|error| anyhow::anyhow!(error))?;
        }
    }
    Ok(())
}

async fn build_core(cli: &Cli) -> anyhow::Result<Core> {
    let core = Core::with_builtin_tools(cli.storage().await?, cli.tool_limits());
    tracing::debug!(root = %core.storage.describe(), tools = ?core.registry, "core ready");
    Ok(core)
}

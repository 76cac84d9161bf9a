//! The `mcp-compare` command line (see the library's documentation for what it measures).

use std::{path::PathBuf, process::ExitCode, time::Duration};

use anyhow::{Context as _, bail};
use clap::{Parser, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mcp_compare::{cost, load, mcp, report, stats, svg, target};

/// Compare MCP endpoints (Lambda, EC2, local): latency, errors and cost per million calls.
///
/// Example: mcp-compare --target lambda=https://abc.execute-api.us-east-1.amazonaws.com/dev/mcp
/// --target ec2=http://10.0.0.5:8080/mcp --method tools/call --tool search
/// --arguments '{"query":"revenue"}' -n 500 -c 8 --svg cdf.svg --json results.json
#[derive(Debug, Parser)]
#[command(name = "mcp-compare", version, about, long_about = None)]
struct Cli {
    /// An endpoint to measure, `NAME=URL` (repeat for each endpoint).
    #[arg(long = "target", value_name = "NAME=URL", required_unless_present = "cost_table")]
    targets: Vec<String>,
    /// Send nothing: print what a Lambda deployment (this cost model, e.g.
    /// `lambda,memory=1024,api=rest`) and an EC2 one (--ec2-instance) cost a month at --rates, and
    /// the rate at which they cost the same.
    #[arg(long, value_name = "LAMBDA_MODEL", conflicts_with = "targets")]
    cost_table: Option<String>,
    /// --cost-table: Lambda's billed duration per call, in ms (REPORT lines say; 1 ms minimum).
    #[arg(long, default_value_t = 3.0)]
    billed_ms: f64,
    /// --cost-table: steady request rates, calls per second.
    #[arg(long, value_delimiter = ',', default_value = "0.1,1,10,100")]
    rates: Vec<f64>,
    /// Measured requests per endpoint.
    #[arg(long, short = 'n', default_value_t = 200)]
    requests: usize,
    /// Requests in flight at once, per endpoint.
    #[arg(long, short = 'c', default_value_t = 1)]
    concurrency: usize,
    /// Unmeasured requests per endpoint before the measured ones (0 keeps cold starts in the sample).
    #[arg(long, default_value_t = 0)]
    warmup: usize,
    /// JSON-RPC method to call.
    #[arg(long, default_value = "tools/list")]
    method: String,
    /// Tool to call when the method is tools/call.
    #[arg(long)]
    tool: Option<String>,
    /// The tool's arguments, a JSON object (tools/call).
    #[arg(long, default_value = "{}")]
    arguments: String,
    /// The request's `params` as JSON, for any method (replaces --tool and --arguments).
    #[arg(long)]
    params: Option<String>,
    /// MCP revision: 2026-07-28 is stateless (no handshake); an earlier one initializes once per
    /// endpoint first (untimed) and keeps its session.
    #[arg(long, default_value = mcp::LATEST)]
    protocol: String,
    /// Sign requests with AWS SigV4: for AWS endpoint URLs only (auto), always, or never.
    #[arg(long, value_enum, default_value_t = SignMode::Auto)]
    sign: SignMode,
    /// AWS region to sign for (default: from the URL).
    #[arg(long, env = "AWS_REGION")]
    region: Option<String>,
    /// A target that takes STS identity tokens, `NAME=GATEWAY_ID` (`mcp-gateway serve` with
    /// `[auth.iam] gateway_id`, e.g. the EC2 stack; as `mcp-sigv4-proxy --auth sts`). Needs --region.
    #[arg(long = "sts", value_name = "NAME=GATEWAY_ID")]
    sts: Vec<String>,
    /// The STS endpoint --sts tokens are signed for (default: https://sts.<region>.amazonaws.com/).
    #[arg(long)]
    sts_endpoint: Option<String>,
    /// AWS profile for credentials.
    #[arg(long, env = "AWS_PROFILE")]
    profile: Option<String>,
    /// SigV4 service name (default: from the URL; execute-api for custom domains).
    #[arg(long)]
    service: Option<String>,
    /// Seconds before one request counts as timed out.
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
    /// Cost model of an endpoint: `NAME=lambda[,memory=MB][,arch=arm64|x86_64][,api=rest|http|url|none]`,
    /// `NAME=ec2[,instance=TYPE]` or `NAME=none`. Default: lambda (1024 MB, arm64; api=rest for
    /// execute-api URLs, url for Function URLs) for AWS URLs, ec2 with --ec2-instance otherwise.
    #[arg(long = "cost", value_name = "NAME=MODEL")]
    costs: Vec<String>,
    /// EC2 instance type assumed for endpoints that are not AWS Lambda URLs.
    #[arg(long, default_value = "t4g.small")]
    ec2_instance: String,
    /// Lambda `REPORT` log lines for an endpoint, `NAME=FILE` (e.g. saved from `sam logs`):
    /// billed duration and memory size come from them instead of the measured latency.
    #[arg(long = "lambda-report", value_name = "NAME=FILE")]
    lambda_reports: Vec<String>,
    /// Price table (JSON, same shape as benches/compare/prices.json); default: the built-in one.
    #[arg(long)]
    prices: Option<PathBuf>,
    /// Write every figure as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the latency CDF as an SVG plot here.
    #[arg(long)]
    svg: Option<PathBuf>,
    /// No progress bar.
    #[arg(long, short = 'q')]
    quiet: bool,
}

/// When to sign requests with SigV4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SignMode {
    /// Sign requests to AWS endpoint URLs (execute-api, lambda-url, bedrock-agentcore).
    Auto,
    /// Sign every request (e.g. a custom domain in front of API Gateway; needs --region).
    Always,
    /// Never sign.
    Never,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mcp-compare: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    if cli.requests == 0 || cli.concurrency == 0 {
        bail!("--requests and --concurrency must be at least 1");
    }
    let prices = match &cli.prices {
        Some(path) => cost::Prices::load(path)?,
        None => cost::Prices::builtin()?,
    };
    if let Some(lambda) = &cli.cost_table {
        if !(1.0..=900_000.0).contains(&cli.billed_ms) {
            bail!("--billed-ms must be 1 to 900000 (Lambda bills at least 1 ms, at most 15 minutes)");
        }
        if cli.rates.is_empty() || cli.rates.iter().any(|rate| !rate.is_finite() || *rate < 0.0 || *rate > 1e6) {
            bail!("--rates must be calls per second from 0 to 1000000, comma-separated");
        }
        let ec2 = cost::Model::Ec2 { instance: cli.ec2_instance.clone() };
        let lambda = cost::Model::parse(lambda)?;
        return report::print_cost_table(
            &lambda,
            &ec2,
            &prices,
            cli.billed_ms,
            &cli.rates,
            &mut std::io::stdout().lock(),
        );
    }
    let template = mcp::RequestTemplate::new(&cli.method, request_params(&cli)?, &cli.protocol)?;
    let signing =
        target::Signing { region: cli.region.clone(), profile: cli.profile.clone(), service: cli.service.clone() };
    let sts_endpoint = match &cli.sts_endpoint {
        None => None,
        Some(url) => {
            target::http_url(url).context("--sts-endpoint")?;
            // Tokens are signed for the endpoint's root, as the gateway checks them.
            Some(if url.ends_with('/') { url.clone() } else { format!("{url}/") })
        }
    };
    let mut sts = Vec::new();
    for spec in &cli.sts {
        let (name, gateway_id) = split_pair(spec, "--sts", "NAME=GATEWAY_ID")?;
        if !cli.targets.iter().any(|target| target.split_once('=').is_some_and(|(target, _)| target == name)) {
            bail!("--sts names `{name}`, which is not a --target");
        }
        let auth = target::StsAuth { gateway_id: gateway_id.to_owned(), sts_endpoint: sts_endpoint.clone() };
        sts.push((name, auth));
    }
    let mut targets = Vec::new();
    for spec in &cli.targets {
        let (name, url) = split_pair(spec, "--target", "NAME=URL")?;
        let mode = match sts.iter().find(|(target, _)| *target == name) {
            Some((_, auth)) => target::AuthMode::Sts(auth.clone()),
            None => match cli.sign {
                SignMode::Always => target::AuthMode::SigV4,
                SignMode::Never => target::AuthMode::None,
                SignMode::Auto if target::is_aws_endpoint(url) => target::AuthMode::SigV4,
                SignMode::Auto => target::AuthMode::None,
            },
        };
        targets.push(target::Target::new(name, url, &mode, &signing)?);
    }
    let mut models = cost::default_models(&targets, &cli.ec2_instance);
    for spec in &cli.costs {
        let (name, model) = split_pair(spec, "--cost", "NAME=MODEL")?;
        let slot = models.iter_mut().find(|(target, _)| target == name);
        let Some((_, slot)) = slot else { bail!("--cost names `{name}`, which is not a --target") };
        *slot = cost::Model::parse(model)?;
    }
    for (name, model) in &models {
        if let cost::Model::Ec2 { instance } = model
            && !prices.ec2_per_hour.contains_key(instance)
        {
            let known: Vec<&str> = prices.ec2_per_hour.keys().map(String::as_str).collect();
            bail!(
                "target `{name}`: EC2 instance type `{instance}` is not in the price table (known: {}); add it to \
                 a copy of benches/compare/prices.json and pass --prices",
                known.join(", ")
            );
        }
    }
    let mut reports = Vec::new();
    for spec in &cli.lambda_reports {
        let (name, file) = split_pair(spec, "--lambda-report", "NAME=FILE")?;
        let text = std::fs::read_to_string(file).with_context(|| format!("reading Lambda REPORT lines from {file}"))?;
        reports.push((name.to_owned(), cost::LambdaReport::parse(&text)?));
    }

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs_f64(cli.timeout))
        .tcp_nodelay(true)
        .pool_max_idle_per_host(cli.concurrency)
        .build()
        .context("building the HTTP client")?;
    let plan = load::Plan { requests: cli.requests, concurrency: cli.concurrency, warmup: cli.warmup };
    let mut results = Vec::new();
    for target in &targets {
        let bar = progress_bar(&cli, &target.name, plan.requests);
        let run = load::run(&client, target, &template, &plan, &bar).await?;
        bar.finish_and_clear();
        let summary = stats::Summary::of(&run);
        let model = models.iter().find(|(name, _)| name == &target.name).map(|(_, model)| model.clone());
        let report = reports.iter().find(|(name, _)| name == &target.name).map(|(_, report)| report);
        let estimate = model.and_then(|model| cost::estimate(&model, &prices, &summary, report));
        eprintln!(
            "{}: {} of {} succeeded, {:.0} requests/s",
            target.name, summary.ok, summary.count, summary.requests_per_second
        );
        results.push(report::TargetResult {
            name: target.name.clone(),
            url: target.url.clone(),
            signed: target.signed(),
            auth: target.auth(),
            run,
            summary,
            estimate,
        });
    }

    let comparison = report::Comparison::new(&cli.method, template.name(), &cli.protocol, plan, &prices, results);
    report::print_table(&comparison, &mut std::io::stdout().lock())?;
    if let Some(path) = &cli.json {
        let json = serde_json::to_vec_pretty(&comparison).context("encoding the JSON report")?;
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &cli.svg {
        std::fs::write(path, svg::latency_cdf(&comparison)).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// The `params` of the request, from --params or from --tool and --arguments.
fn request_params(cli: &Cli) -> anyhow::Result<serde_json::Value> {
    if let Some(params) = &cli.params {
        return serde_json::from_str(params).context("--params is not JSON");
    }
    if cli.method != "tools/call" {
        return Ok(serde_json::json!({}));
    }
    let Some(tool) = &cli.tool else { bail!("--method tools/call needs --tool NAME (or --params)") };
    let arguments: serde_json::Value = serde_json::from_str(&cli.arguments).context("--arguments is not JSON")?;
    if !arguments.is_object() {
        bail!("--arguments must be a JSON object, e.g. '{{\"query\": \"revenue\"}}'");
    }
    Ok(serde_json::json!({ "name": tool, "arguments": arguments }))
}

/// Splits `NAME=VALUE`, naming the flag and the expected shape when it does not fit.
fn split_pair<'a>(spec: &'a str, flag: &str, shape: &str) -> anyhow::Result<(&'a str, &'a str)> {
    match spec.split_once('=') {
        Some((name, value)) if !name.is_empty() && !value.is_empty() => Ok((name, value)),
        _ => bail!("{flag} `{spec}` is not {shape}"),
    }
}

fn progress_bar(cli: &Cli, name: &str, requests: usize) -> ProgressBar {
    let total = u64::try_from(requests + cli.warmup).unwrap_or(u64::MAX);
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if cli.quiet {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    let style = ProgressStyle::with_template("{prefix:>12} [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
        .map(|style| style.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_prefix(name.to_owned());
    bar
}

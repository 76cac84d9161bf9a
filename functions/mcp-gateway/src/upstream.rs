//! Federation: upstream MCP servers behind the gateway. Their tools join the registry under
//! exposed names (`<upstream>__<tool>`), and calls to them are routed by the registry; the
//! transports and the MCP server layer do not know the difference.
//!
//! `config` reads the upstreams file; `pool` is one upstream: its instances, each an rmcp client
//! (`client`) behind a circuit breaker (`breaker`), one picked per request by the upstream's
//! strategy (`balance`); `sigv4` signs for upstreams behind AWS IAM, `names` makes exposed names,
//! `catalogue` aggregates the tools, and `status` is the `gateway_status` tool. **Invariant:** the
//! state kept here (connections, legacy sessions, breakers, the catalogue) is per upstream
//! instance and per process, never per client, and a client's identity reaches an upstream only
//! through headers the file names (the caller's identity only picks the instance, for
//! `strategy = "hash"`).

pub mod balance;
pub mod breaker;
pub mod catalogue;
pub mod client;
pub mod config;
pub mod names;
pub mod pool;
pub mod registration;
pub mod sigv4;
pub mod status;

use std::sync::Arc;

pub use crate::settings_file::read_text;
pub use catalogue::Catalogue;
pub use config::{ConfigError, UpstreamsConfig};

/// Reads and validates the upstreams file at `source`: a local path or `s3://bucket/key`.
pub async fn load(source: &str) -> Result<UpstreamsConfig, ConfigError> {
    config::parse(source, &read_text(source).await?)
}

/// Reloads the upstreams file at `source` while the process runs (`serve`): at once on SIGHUP,
/// and, for a local file, when its modification time or size changes (checked every `interval`;
/// never without one). A valid new file replaces the fleet (see [`Catalogue::reconfigure`]:
/// unchanged instances keep their connections, calls under way finish); a file that does not
/// parse, validate or build a catalogue is refused with a log line naming the problem, and the
/// old fleet keeps serving.
pub async fn watch(catalogue: Arc<Catalogue>, source: String, interval: Option<std::time::Duration>) {
    let local = !source.starts_with("s3://");
    let fingerprint =
        |source: &str| std::fs::metadata(source).ok().map(|metadata| (metadata.modified().ok(), metadata.len()));
    let mut seen = fingerprint(&source);
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut ticks = tokio::time::interval(interval.unwrap_or(std::time::Duration::from_secs(3600)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        #[cfg(unix)]
        let hung_up = async {
            match hangup.as_mut() {
                Some(signal) => signal.recv().await,
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let hung_up = std::future::pending::<Option<()>>();
        let reason = tokio::select! {
            Some(()) = hung_up => "SIGHUP",
            _ = ticks.tick(), if local && interval.is_some() => {
                let now = fingerprint(&source);
                if now == seen {
                    continue;
                }
                seen = now;
                "the file changed"
            }
        };
        let outcome = match load(&source).await {
            Ok(config) => catalogue.reconfigure(|_| Ok(config)).await.map_err(|problem| problem.to_string()),
            Err(problem) => Err(problem.to_string()),
        };
        match outcome {
            Ok(summary) => tracing::info!(
                target: "mcp_gateway::upstream",
                source = %source, reason,
                upstreams = summary.upstreams, tools = summary.tools, left_out = summary.left_out.len(),
                "the upstreams file was reloaded"
            ),
            Err(problem) => tracing::warn!(
                target: "mcp_gateway::upstream",
                source = %source, reason, %problem,
                "the upstreams file was not reloaded; the fleet is as it was"
            ),
        }
    }
}

/// Runs the active health checks of every upstream that asks for them (`probe` in
/// `[upstream.health]`), for a long-lived process (`serve`, `stdio`), over whatever the fleet is
/// at each turn. It wakes when the next check is due, and at least every
/// [`PROBE_FLEET_INTERVAL`] to see a changed fleet (a reload, a registration); a fleet without
/// active checks costs one wake-up per [`PROBE_FLEET_INTERVAL`].
pub async fn probe(catalogue: Arc<Catalogue>) {
    loop {
        let now = std::time::Instant::now();
        let next = catalogue.upstreams().iter().filter_map(|upstream| upstream.probe_due(now)).min();
        let wake = next.unwrap_or(now + PROBE_FLEET_INTERVAL).min(now + PROBE_FLEET_INTERVAL);
        // At least a few milliseconds apart, whatever the checks' intervals.
        tokio::time::sleep_until(wake.max(now + PROBE_MIN_SLEEP).into()).await;
    }
}

/// How long the health-check task sleeps at most, so that it sees a changed fleet.
const PROBE_FLEET_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);
/// How long it sleeps at least between two turns.
const PROBE_MIN_SLEEP: std::time::Duration = std::time::Duration::from_millis(10);

/// The upstreams of one gateway process and their catalogue.
#[derive(Debug, Clone)]
pub struct Federation {
    /// The aggregated tools.
    pub catalogue: Arc<Catalogue>,
}

impl Federation {
    /// Upstreams from `config`, none contacted yet; `reserved` are the built-in names.
    pub fn new(config: UpstreamsConfig, reserved: catalogue::Reserved) -> Self {
        Self { catalogue: Arc::new(Catalogue::new(config, reserved)) }
    }
}

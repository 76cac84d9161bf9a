//! `gateway_status`: every upstream's state, last error, latency and tool count, as this process
//! sees them (read-only; offered when the gateway has upstreams).

use std::sync::Arc;

use rmcp::model::ToolAnnotations;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Catalogue, client::Status, config::FailureMode, pool::InstanceReport};
use crate::registry::{CallContext, Output, ToolError, TypedTool};

/// The `gateway_status` tool.
#[derive(Debug, Clone)]
pub struct StatusTool {
    catalogue: Arc<Catalogue>,
}

impl StatusTool {
    /// Its name, reserved from the upstreams' exposed names.
    pub const NAME_FOR_RESERVATION: &'static str = <Self as TypedTool>::NAME;

    /// A status tool over `catalogue`.
    pub fn new(catalogue: Arc<Catalogue>) -> Self {
        Self { catalogue }
    }
}

/// Arguments of `gateway_status` (none).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusInput {
    /// Contact every upstream now instead of answering from the cached catalogue.
    #[serde(default)]
    pub refresh: bool,
}

/// One upstream's line of the report.
#[derive(Debug, Serialize, JsonSchema)]
pub struct UpstreamReport {
    /// Its name.
    pub name: String,
    /// `http` or `stdio`.
    pub transport: String,
    /// `open` or `closed`.
    pub failure_mode: String,
    /// How a call picks an instance (`round_robin`, `weighted` ...).
    pub strategy: String,
    /// Why its tools are not listed right now, if they are not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub left_out: Option<String>,
    /// What this process knows about it.
    #[serde(flatten)]
    pub status: Status,
    /// Each instance: its breaker, calls, errors, latency and share of traffic.
    pub instances: Vec<InstanceReport>,
}

/// Result of `gateway_status`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct StatusOutput {
    /// Every upstream, in file order.
    pub upstreams: Vec<UpstreamReport>,
    /// Tools exposed from upstreams.
    pub upstream_tools: usize,
    /// Why the last refresh of the catalogue was refused, if it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catalogue_error: Option<String>,
}

impl TypedTool for StatusTool {
    type Input = StatusInput;
    type Output = StatusOutput;
    const NAME: &'static str = "gateway_status";
    const TITLE: &'static str = "Upstream servers";
    const DESCRIPTION: &'static str = "The state of every upstream MCP server behind this gateway: up or down, \
        the protocol revision, the last error, latency and how many tools it offers, and for each of its \
        instances the circuit breaker, calls, errors, latency and share of traffic. refresh=true contacts \
        every upstream now.";

    fn annotations(&self) -> ToolAnnotations {
        ToolAnnotations::new().read_only(true).destructive(false).idempotent(true).open_world(false)
    }

    async fn run(&self, input: StatusInput, _context: CallContext) -> Result<Output<StatusOutput>, ToolError> {
        let refreshed = if input.refresh { self.catalogue.refresh().await.err() } else { None };
        let snapshot = self.catalogue.tools().await.ok();
        let left_out = snapshot.as_ref().map(|snapshot| snapshot.left_out.clone()).unwrap_or_default();
        let upstreams: Vec<UpstreamReport> = self
            .catalogue
            .upstreams()
            .iter()
            .map(|upstream| UpstreamReport {
                name: upstream.name().to_owned(),
                transport: upstream.config.transport_kind().into(),
                failure_mode: match upstream.config.failure_mode {
                    FailureMode::Open => "open".into(),
                    FailureMode::Closed => "closed".into(),
                },
                strategy: upstream.strategy().into(),
                left_out: left_out.get(upstream.name()).cloned(),
                status: upstream.status(),
                instances: upstream.instances(),
            })
            .collect();
        let catalogue_error = refreshed.or_else(|| self.catalogue.last_error()).map(|error| error.to_string());
        let text = upstreams
            .iter()
            .map(|report| {
                let mut line = format!("{}: {} ({} tools", report.name, report.status.state, report.status.tools);
                if let Some(latency) = report.status.latency_ms {
                    line.push_str(&format!(", {latency:.1} ms"));
                }
                line.push(')');
                if let Some(error) = report.left_out.as_ref().or(report.status.last_error.as_ref()) {
                    line.push_str(&format!(" — {error}"));
                }
                if report.instances.len() > 1 {
                    for instance in &report.instances {
                        line.push_str(&format!(
                            "\n  {}: {}, breaker {}, {} calls ({:.0} %), {} errors",
                            instance.id,
                            instance.state,
                            instance.breaker,
                            instance.requests,
                            instance.share * 100.0,
                            instance.errors
                        ));
                    }
                }
                line
            })
            .collect::<Vec<_>>()
            .join("\n");
        let upstream_tools = snapshot.map_or(0, |snapshot| snapshot.tools.len());
        Ok(Output { structured: StatusOutput { upstreams, upstream_tools, catalogue_error }, text })
    }
}

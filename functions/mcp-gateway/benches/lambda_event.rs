//! The warm cost of one API Gateway event, in process: a saved REST v1 event (events/rest-v1)
//! through lambda_http's adapter into the gateway's router and back, as the Lambda runtime calls
//! it (event parsed from JSON, response serialized to JSON), without the runtime API's HTTP hop.
//! Prints one JSON line per event with mean, p50 and p99 in microseconds. `ITERATIONS` (default
//! 5000) sets the sample size.

#[path = "support/summary.rs"]
mod summary;

use std::{io::Write as _, path::PathBuf, sync::Arc, time::Instant};

use lambda_http::{Adapter, Context, LambdaEvent, Service as _, request::LambdaRequest};
use mcp_gateway::{
    server::Core,
    storage::{LocalRoot, Storage},
    tools::ToolLimits,
    transport::http::{self, AllowedHosts, HttpSettings},
};

const EVENTS: [&str; 3] = ["tools-list", "tools-call-file-info", "tools-call-file"];

fn main() -> anyhow::Result<()> {
    let iterations: usize = std::env::var("ITERATIONS").ok().and_then(|n| n.parse().ok()).unwrap_or(5000);
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let storage = Storage::Local(LocalRoot::open(repo.join("examples/data"))?);
    let core = Arc::new(Core::with_builtin_tools(storage, ToolLimits::default()));
    let router = http::router(core, HttpSettings { allowed_hosts: AllowedHosts::Any, ..HttpSettings::local()? });
    // Lambda hands the function one event at a time; a current-thread loop measures the handler's
    // own cost, without work-stealing between threads.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    for name in EVENTS {
        let text = std::fs::read_to_string(repo.join("events/rest-v1").join(format!("{name}.json")))?;
        let mut adapter = Adapter::from(router.clone());
        let mut micros = Vec::with_capacity(iterations);
        runtime.block_on(async {
            for i in 0..iterations + iterations / 10 {
                let started = Instant::now();
                // As the runtime does: parse the event it received, handle it, serialize the answer.
                let event: LambdaRequest = serde_json::from_str(&text)?;
                let Ok(response) = adapter.call(LambdaEvent::new(event, Context::default())).await;
                // The runtime serializes the response to send it back; that is part of the cost.
                let wire = serde_json::to_vec(&response)?;
                let elapsed = started.elapsed().as_secs_f64() * 1e6;
                let ok = wire.windows(16).any(|window| window == b"\"statusCode\":200");
                anyhow::ensure!(ok, "{name}: not a 200 answer: {}", String::from_utf8_lossy(&wire));
                // The first tenth warms caches and is not counted.
                if i >= iterations / 10 {
                    micros.push(elapsed);
                }
            }
            anyhow::Ok(())
        })?;
        let (mean, p50, p99) = summary::summary(&mut micros);
        let line = serde_json::json!({ "event": name, "iterations": micros.len(), "mean_us": mean, "p50_us": p50, "p99_us": p99 });
        writeln!(std::io::stdout().lock(), "{line}")?;
    }
    Ok(())
}

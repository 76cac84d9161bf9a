//! What the access file costs per request, in process: the same `tools/list` and `file` info
//! requests through the gateway's router (`serve`'s whole HTTP stack but the socket) with no
//! access file, with an API key, rules and rate limits, and with a JWT (RS256, verified once and
//! then remembered, as a client reuses its token), rules and rate limits. Request metrics are
//! counted in every case. Prints one JSON line per case and request with mean, p50 and p99 in
//! microseconds. `ITERATIONS` (default 5000) sets the sample size.

#[path = "support/summary.rs"]
mod summary;

use std::{io::Write as _, path::PathBuf, sync::Arc, time::Instant};

use axum::body::Body;
use mcp_gateway::{
    access::{self, authn::Authenticator},
    server::Core,
    storage::{LocalRoot, Storage},
    tools::ToolLimits,
    transport::http::{self, HttpSettings},
};
use tower::ServiceExt as _;

/// A case: its name, whether the access file is on, and the credential header sent.
type Case<'a> = (&'a str, bool, Option<(&'a str, &'a str)>);

const API_KEY: &str = "bench-key-0123456789abcdef";
const META: &str = r#""_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}"#;

/// The access file both halves of the access bench use (`benches/fixtures/bench-access.toml`).
fn access_file(repo: &std::path::Path) -> anyhow::Result<String> {
    let fixtures = repo.join("functions/mcp-gateway/benches/fixtures");
    let text = std::fs::read_to_string(fixtures.join("bench-access.toml"))?;
    let jwks = fixtures.join("bench-jwks.json");
    Ok(text.replace("@KEY_SHA256@", &access::authn::hash_key(API_KEY)).replace("@JWKS@", &jwks.to_string_lossy()))
}

fn token(repo: &std::path::Path) -> anyhow::Result<String> {
    let der = std::fs::read(repo.join("functions/mcp-gateway/benches/fixtures/bench-rs256.der"))?;
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("bench".to_owned());
    let exp = jsonwebtoken::get_current_timestamp() + 3600;
    let claims = serde_json::json!({"iss": "https://issuer.bench/", "aud": "mcp-gateway", "sub": "bench-user", "exp": exp, "groups": ["staff"]});
    Ok(jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_rsa_der(&der))?)
}

fn main() -> anyhow::Result<()> {
    let iterations: usize = std::env::var("ITERATIONS").ok().and_then(|n| n.parse().ok()).unwrap_or(5000);
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let config = access::config::parse("bench", &access_file(&repo)?).map_err(|error| anyhow::anyhow!("{error}"))?;
    let bearer = format!("Bearer {}", token(&repo)?);
    let cases: [Case<'_>; 3] = [
        ("open", false, None),
        ("api key + rules + limits", true, Some(("x-api-key", API_KEY))),
        ("jwt + rules + limits", true, Some(("authorization", bearer.as_str()))),
    ];
    let requests = [
        (
            "tools-list",
            "tools/list",
            None,
            format!(r#"{{"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {{{META}}}}}"#),
        ),
        (
            "tools-call-file-info",
            "tools/call",
            Some("file"),
            format!(
                r#"{{"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {{"name": "file", "arguments": {{"action": "info", "path": "sales/regions.csv"}}, {META}}}}}"#
            ),
        ),
    ];
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let _enter = runtime.enter();
    let mut open_p50 = std::collections::HashMap::new();
    for (case, with_access, credential) in cases {
        let storage = Storage::Local(LocalRoot::open(repo.join("examples/data"))?);
        let mut core = Core::with_builtin_tools(storage, ToolLimits::default());
        let mut settings = HttpSettings::local()?;
        if with_access {
            core.policy = access::Policy::new(&config);
            let auth = config.auth.clone().ok_or_else(|| anyhow::anyhow!("no [auth]"))?;
            settings.auth = Some(Arc::new(Authenticator::new(auth)?));
        }
        let router = http::router(Arc::new(core), settings);
        for (name, method, tool, body) in &requests {
            let mut micros = Vec::with_capacity(iterations);
            runtime.block_on(async {
                for i in 0..iterations + iterations / 10 {
                    let mut request = ::http::Request::post("/mcp")
                        .header("host", "127.0.0.1:8080")
                        .header("content-type", "application/json")
                        .header("accept", "application/json, text/event-stream")
                        .header("mcp-protocol-version", "2026-07-28")
                        .header("mcp-method", *method);
                    if let Some(tool) = tool {
                        request = request.header("mcp-name", *tool);
                    }
                    if let Some((header, value)) = credential {
                        request = request.header(header, value);
                    }
                    let request = request.body(Body::from(body.clone()))?;
                    let started = Instant::now();
                    let response = router.clone().oneshot(request).await?;
                    let status = response.status();
                    let bytes = axum::body::to_bytes(response.into_body(), 1 << 24).await?;
                    let elapsed = started.elapsed().as_secs_f64() * 1e6;
                    anyhow::ensure!(
                        status == 200 && !bytes.windows(8).any(|window| window == b"\"error\":"),
                        "{case} {name}: {status} {}",
                        String::from_utf8_lossy(&bytes)
                    );
                    if i >= iterations / 10 {
                        micros.push(elapsed);
                    }
                }
                anyhow::Ok(())
            })?;
            let (mean, p50, p99) = summary::summary(&mut micros);
            if !with_access {
                open_p50.insert(*name, p50);
            }
            let overhead = open_p50.get(name).map(|open| p50 - open);
            let line = serde_json::json!({
                "case": case, "request": name, "iterations": micros.len(), "mean_us": mean, "p50_us": p50,
                "p99_us": p99, "overhead_p50_us": overhead,
            });
            writeln!(std::io::stdout().lock(), "{line}")?;
        }
    }
    Ok(())
}

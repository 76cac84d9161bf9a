//! The saved API Gateway events in `events/` (REST v1 with an IAM identity, HTTP API v2, Function
//! URL) drive the Lambda handler in-process, through lambda_http's own adapters, in both
//! response modes.

use std::{path::PathBuf, sync::Arc};

use futures::StreamExt as _;
use lambda_http::{Adapter, Context, LambdaEvent, Service as _, StreamAdapter, request::LambdaRequest};
use mcp_gateway::{
    server::Core,
    storage::{LocalRoot, Storage},
    tools::ToolLimits,
    transport::http::{self, AllowedHosts, HttpSettings},
};
use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn router() -> axum::Router {
    let storage = match LocalRoot::open(repo().join("examples/data")) {
        Ok(root) => Storage::Local(root),
        Err(error) => panic!("examples/data must exist: {error}"),
    };
    let core = Arc::new(Core::with_builtin_tools(storage, ToolLimits::default()));
    let settings = HttpSettings::local().unwrap_or_else(|error| panic!("no session key: {error}"));
    http::router(core, HttpSettings { allowed_hosts: AllowedHosts::Any, ..settings })
}

fn event(kind: &str, name: &str) -> LambdaRequest {
    let path = repo().join("events").join(kind).join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// What each event must produce: HTTP status and a check on the JSON body.
/// An event name, the status it must get, and a check on its JSON body.
type Expectation = (&'static str, u16, fn(&Value) -> bool);

fn expectations() -> Vec<Expectation> {
    vec![
        ("initialize", 200, |b| b["result"]["protocolVersion"] == "2025-11-25"),
        ("discover", 200, |b| {
            b["result"]["supportedVersions"].as_array().is_some_and(|v| v.iter().any(|v| v == "2026-07-28"))
        }),
        ("tools-list", 200, |b| {
            b["result"]["tools"].as_array().is_some_and(|tools| tools.iter().any(|t| t["name"] == "file"))
                && b["result"]["ttlMs"].is_u64()
        }),
        ("tools-call-file", 200, |b| {
            b["result"]["structuredContent"]["text"].as_str().is_some_and(|t| t.starts_with("code,name,manager\n"))
                && b["result"]["isError"] == false
        }),
        ("health", 200, |b| b["status"] == "ok"),
        ("malformed", 400, |b| b["error"]["code"] == -32700),
    ]
}

const KINDS: [&str; 3] = ["rest-v1", "http-v2", "function-url"];

#[tokio::test]
async fn buffered_events_answer_in_the_integration_format() {
    for kind in KINDS {
        for (name, status, check) in expectations() {
            let mut adapter = Adapter::from(router());
            let response = adapter.call(LambdaEvent::new(event(kind, name), Context::default())).await;
            let Ok(response) = response;
            let wire = serde_json::to_value(&response).unwrap_or_default();
            assert_eq!(wire["statusCode"], status, "{kind}/{name}: {wire}");
            let body = wire["body"].as_str().unwrap_or_default();
            let json: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{kind}/{name}: {e}: {body}"));
            assert!(check(&json), "{kind}/{name}: unexpected body {json}");
            if name == "initialize" {
                let session =
                    ["headers", "multiValueHeaders"].iter().any(|key| wire[key].get("mcp-session-id").is_some());
                assert!(session, "{kind}/initialize: no session id in {wire}");
            }
        }
    }
}

#[tokio::test]
async fn streaming_events_answer_with_a_prelude_and_body() {
    for kind in KINDS {
        for (name, status, check) in expectations() {
            let mut adapter = StreamAdapter::from(router());
            let Ok(response) = adapter.call(LambdaEvent::new(event(kind, name), Context::default())).await;
            assert_eq!(response.metadata_prelude.status_code.as_u16(), status, "{kind}/{name}");
            let mut body = Vec::new();
            let mut stream = response.stream;
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(bytes) => body.extend_from_slice(&bytes),
                    Err(error) => panic!("{kind}/{name}: body stream failed: {error:?}"),
                }
            }
            let json: Value = serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{kind}/{name}: {e}"));
            assert!(check(&json), "{kind}/{name}: unexpected body {json}");
        }
    }
}

/// Every JSON log line this test binary writes (a global subscriber into a buffer, installed once:
/// a thread-scoped one misses events when other tests run in parallel).
fn captured_logs() -> Vec<Value> {
    #[derive(Clone, Default)]
    struct Buffer(Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    static LOGS: std::sync::OnceLock<Buffer> = std::sync::OnceLock::new();
    let buffer = LOGS.get_or_init(|| {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt().json().with_writer(move || writer.clone()).finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        buffer
    });
    let bytes = buffer.0.lock().map(|bytes| bytes.clone()).unwrap_or_default();
    String::from_utf8_lossy(&bytes).lines().filter_map(|line| serde_json::from_str(line).ok()).collect()
}

/// Regression: this test used to read the identity straight from the parsed event, so it passed
/// whether or not the gateway ever recorded the caller. Now the event goes through the handler
/// and the access-log line it writes must name the caller.
#[tokio::test]
async fn rest_event_log_fields_carry_the_iam_caller() {
    captured_logs();
    let mut adapter = Adapter::from(router());
    let mut context = Context::default();
    context.request_id = "caller-test-request".to_owned();
    let Ok(response) = adapter.call(LambdaEvent::new(event("rest-v1", "tools-call-file"), context)).await;
    assert_eq!(serde_json::to_value(&response).unwrap_or_default()["statusCode"], 200);
    let logs = captured_logs();
    let access: Vec<&Value> = logs
        .iter()
        .filter(|line| {
            line["target"] == "mcp_gateway::request" && line["fields"]["request_id"] == "caller-test-request"
        })
        .collect();
    assert_eq!(access.len(), 1, "one access-log line for the request: {logs:?}");
    let fields = &access[0]["fields"];
    assert_eq!(fields["principal"], "arn:aws:iam::123456789012:user/alice", "{fields}");
    assert_eq!(fields["tool"], "file", "{fields}");
}

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
    http::router(core, HttpSettings { allowed_hosts: AllowedHosts::Any, ..HttpSettings::local() })
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

#[tokio::test]
async fn rest_event_log_fields_carry_the_iam_caller() {
    // The REST v1 event's identity reaches the handler as the lambda_http request context.
    let request: lambda_http::Request = event("rest-v1", "tools-call-file").into();
    let context = request.extensions().get::<lambda_http::request::RequestContext>().cloned();
    let Some(lambda_http::request::RequestContext::ApiGatewayV1(context)) = context else {
        panic!("REST v1 event without an API Gateway v1 context")
    };
    assert_eq!(context.identity.user_arn.as_deref(), Some("arn:aws:iam::123456789012:user/alice"));
}

//! `GET /openapi.json` (OpenAPI 3.1) and `GET /docs` (a page that renders it, with no script or
//! style from elsewhere): the HTTP routes of the gateway, their bodies' schemas generated with
//! schemars from the very types the handlers read and write. A unit test sends every operation
//! of the document to the router, so a route and its description cannot drift apart.

use std::sync::{Arc, OnceLock};

use axum::{
    Router,
    http::{HeaderValue, header},
    response::{Html, IntoResponse, Response},
    routing::get,
};
use schemars::{JsonSchema, SchemaGenerator, generate::SchemaSettings};
use serde_json::{Map, Value, json};

use super::{
    AppState,
    manage::{Change, ErrorBody, Health, Registry, Stats},
    rest::{ResourceRead, ToolCall, UpstreamHealth},
};
use crate::upstream::registration::Registration;

/// The routes, also under an API Gateway stage prefix.
pub(super) fn routes() -> Router<Arc<AppState>> {
    let mut router = Router::new();
    for prefix in ["", "/{stage}"] {
        router =
            router.route(&format!("{prefix}/openapi.json"), get(openapi)).route(&format!("{prefix}/docs"), get(docs));
    }
    router
}

/// The document; mounted by a host service under a prefix (`Router::nest`), with that prefix as
/// its server, as the paths are relative to it (the default server is the host's root).
async fn openapi(request: axum::extract::Request) -> Response {
    let prefix = super::mount_prefix(request.uri(), request.extensions());
    let mut response = if prefix.is_empty() {
        axum::Json(document()).into_response()
    } else {
        let mut document = document().clone();
        document["servers"] = json!([{ "url": prefix }]);
        axum::Json(document).into_response()
    };
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    response
}

async fn docs() -> Html<&'static str> {
    Html(DOCS_PAGE)
}

/// One operation of the document.
struct Operation {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    /// The request body's schema (a `$ref`), if it has one.
    body: Option<Value>,
    /// Status → (description, schema).
    responses: Vec<(&'static str, &'static str, Option<Value>)>,
    /// Whether it needs the admin token.
    admin: bool,
}

/// The OpenAPI document (built once).
pub fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(build)
}

fn build() -> Value {
    let settings = |contract| {
        let mut settings = SchemaSettings::draft2020_12();
        settings.definitions_path = "/components/schemas".into();
        settings.meta_schema = None;
        settings.contract = contract;
        settings
    };
    let mut requests = settings(schemars::generate::Contract::Deserialize).into_generator();
    let mut answers = settings(schemars::generate::Contract::Serialize).into_generator();
    fn schema<T: JsonSchema>(generator: &mut SchemaGenerator) -> Option<Value> {
        Some(generator.subschema_for::<T>().to_value())
    }
    let error = schema::<ErrorBody>(&mut answers);
    let object = || Some(json!({ "type": "object" }));
    let refusals = |codes: &[(&'static str, &'static str)]| -> Vec<(&'static str, &'static str, Option<Value>)> {
        codes.iter().map(|(code, why)| (*code, *why, error.clone())).collect()
    };
    let admin_refusals = [
        ("401", "The admin token is missing or wrong"),
        ("403", "Changes are off (no MCP_ADMIN_TOKEN), or this is Lambda"),
        ("404", "No such upstream or instance"),
        ("409", "The new fleet's catalogue was refused; the fleet is as it was"),
        ("422", "The change is not valid"),
    ];
    let change = schema::<Change>(&mut answers);
    let upstream_refusals = [("404", "No such upstream (or tool)"), ("502", "The upstream failed")];
    let mut operations = vec![
        Operation {
            method: "post",
            path: "/mcp",
            summary: "The MCP endpoint (Streamable HTTP, every revision from 2024-11-05 to 2026-07-28): JSON-RPC",
            body: object(),
            responses: vec![("200", "A JSON-RPC answer (JSON, or SSE with progress)", object())],
            admin: false,
        },
        Operation {
            method: "post",
            path: "/mcp/{upstream}",
            summary: "The MCP endpoint of one upstream alone: its tools and prompts under their own names",
            body: object(),
            responses: vec![("200", "A JSON-RPC answer", object()), ("404", "No such upstream", object())],
            admin: false,
        },
        Operation {
            method: "get",
            path: "/health",
            summary: "Liveness: name, version and protocol revisions",
            body: None,
            responses: vec![("200", "Alive", object())],
            admin: false,
        },
        Operation {
            method: "get",
            path: "/gateway/health",
            summary: "Healthy instances per upstream",
            body: None,
            responses: vec![("200", "ok or degraded", schema::<Health>(&mut answers))],
            admin: false,
        },
        Operation {
            method: "get",
            path: "/gateway/stats",
            summary: "Per upstream and instance: calls, errors, in flight, p50/p99, breaker, checks, share",
            body: None,
            responses: vec![("200", "The numbers of this process", schema::<Stats>(&mut answers))],
            admin: false,
        },
        Operation {
            method: "get",
            path: "/gateway/registry",
            summary: "Upstreams, their instances and their tools under exposed names",
            body: None,
            responses: vec![("200", "The fleet", schema::<Registry>(&mut answers))],
            admin: false,
        },
        Operation {
            method: "post",
            path: "/gateway/register",
            summary: "Adds an http instance to an upstream (a new upstream under a new name)",
            body: schema::<Registration>(&mut requests),
            responses: [vec![("200", "Registered", change.clone())], refusals(&admin_refusals)].concat(),
            admin: true,
        },
        Operation {
            method: "delete",
            path: "/gateway/deregister/{upstream}",
            summary: "Removes an upstream",
            body: None,
            responses: [vec![("200", "Deregistered", change.clone())], refusals(&admin_refusals)].concat(),
            admin: true,
        },
        Operation {
            method: "delete",
            path: "/gateway/deregister/{upstream}/{instance}",
            summary: "Removes an instance (the upstream with its last one)",
            body: None,
            responses: [vec![("200", "Deregistered", change)], refusals(&admin_refusals)].concat(),
            admin: true,
        },
        Operation {
            method: "get",
            path: "/mcp/{upstream}/tools/list",
            summary: "The upstream's tools under their own names",
            body: None,
            responses: [
                vec![("200", "`{\"tools\": [...]}` (MCP Tool objects)", object())],
                refusals(&upstream_refusals),
            ]
            .concat(),
            admin: false,
        },
        Operation {
            method: "post",
            path: "/mcp/{upstream}/tools/call",
            summary: "Calls one of its tools",
            body: schema::<ToolCall>(&mut requests),
            responses: [
                vec![("200", "The MCP CallToolResult (isError for tool failures)", object())],
                refusals(&upstream_refusals),
            ]
            .concat(),
            admin: false,
        },
        Operation {
            method: "get",
            path: "/mcp/{upstream}/resources/list",
            summary: "Its resources and resource templates under their own URIs",
            body: None,
            responses: [
                vec![("200", "`{\"resources\": [...], \"resourceTemplates\": [...]}`", object())],
                refusals(&upstream_refusals),
            ]
            .concat(),
            admin: false,
        },
        Operation {
            method: "post",
            path: "/mcp/{upstream}/resources/read",
            summary: "Reads one of its resources by its own URI",
            body: schema::<ResourceRead>(&mut requests),
            responses: [vec![("200", "The MCP ReadResourceResult", object())], refusals(&upstream_refusals)].concat(),
            admin: false,
        },
        Operation {
            method: "get",
            path: "/mcp/{upstream}/health",
            summary: "Its health and each instance's numbers",
            body: None,
            responses: [
                vec![("200", "Its health", schema::<UpstreamHealth>(&mut answers))],
                refusals(&upstream_refusals),
            ]
            .concat(),
            admin: false,
        },
        Operation {
            method: "get",
            path: "/openapi.json",
            summary: "This document",
            body: None,
            responses: vec![("200", "OpenAPI 3.1", object())],
            admin: false,
        },
        Operation {
            method: "get",
            path: "/docs",
            summary: "This document, rendered",
            body: None,
            responses: vec![("200", "HTML", None)],
            admin: false,
        },
    ];
    let mut paths = Map::new();
    for operation in operations.drain(..) {
        let parameters: Vec<Value> = operation
            .path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
            .collect();
        let mut responses = Map::new();
        for (status, description, schema) in operation.responses {
            let mut response = json!({ "description": description });
            if let Some(schema) = schema {
                response["content"] = json!({ "application/json": { "schema": schema } });
            }
            responses.insert(status.to_owned(), response);
        }
        let mut item = json!({ "summary": operation.summary, "operationId": operation_id(operation.method, operation.path), "responses": responses });
        if !parameters.is_empty() {
            item["parameters"] = Value::Array(parameters);
        }
        if let Some(body) = operation.body {
            item["requestBody"] = json!({ "required": true, "content": { "application/json": { "schema": body } } });
        }
        if operation.admin {
            item["security"] = json!([{ "adminToken": [] }]);
        }
        let path = paths.entry(operation.path.to_owned()).or_insert_with(|| json!({}));
        path[operation.method] = item;
    }
    let mut schemas = requests.take_definitions(true);
    schemas.extend(answers.take_definitions(true));
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "mcp-gateway",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "MCP tools over a data root and federated MCP servers: the MCP endpoints, the \
                management API over the upstreams, and REST routes to each upstream. On Lambda every route \
                is behind API Gateway's AWS_IAM check, and changes to the fleet are refused.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "adminToken": { "type": "http", "scheme": "bearer", "description": "MCP_ADMIN_TOKEN" },
            },
        },
    })
}

/// `getGatewayStats`, `postMcpUpstreamToolsCall` ...: the method and the path's words.
fn operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_owned();
    for word in path.split(['/', '.', '_']).filter(|word| !word.is_empty()) {
        let word = word.trim_start_matches('{').trim_end_matches('}');
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            id.push(first.to_ascii_uppercase());
            id.extend(chars);
        }
    }
    id
}

/// The `/docs` page: fetches `openapi.json` next to it and lists every operation with its
/// schemas. Self-contained, so it works offline and under any stage prefix.
const DOCS_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>mcp-gateway API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
h1{font-size:1.6rem}h2{font-size:1.1rem;margin:1.6rem 0 .4rem;font-family:ui-monospace,monospace}
.m{display:inline-block;min-width:4.5rem;font-weight:700;text-transform:uppercase}
.get{color:#0a6}.post{color:#06c}.delete{color:#c33}
pre{background:#f5f5f5;padding:.6rem;overflow:auto;font-size:13px}details{margin:.3rem 0}
.lock{color:#a60;font-size:.85rem}
</style></head><body>
<h1>mcp-gateway API</h1><p id="about"></p><div id="ops">Loading openapi.json…</div>
<script>
fetch("openapi.json").then(r => r.json()).then(doc => {
  const esc = s => String(s).replace(/[&<>"]/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;","\"":"&quot;"}[c]));
  document.getElementById("about").textContent = doc.info.description + " Version " + doc.info.version + ".";
  const schemas = doc.components.schemas, shown = new Set();
  const block = (title, schema) => {
    if (!schema) return "";
    const ref = schema.$ref && schema.$ref.split("/").pop();
    const body = ref ? schemas[ref] : schema;
    return `<details><summary>${esc(title)}${ref ? " · " + esc(ref) : ""}</summary><pre>${esc(JSON.stringify(body, null, 2))}</pre></details>`;
  };
  let html = "";
  for (const [path, item] of Object.entries(doc.paths)) for (const [method, op] of Object.entries(item)) {
    html += `<h2><span class="m ${method}">${method}</span>${esc(path)}</h2><div>${esc(op.summary)}`;
    if (op.security) html += ` <span class="lock">· needs the admin token</span>`;
    html += `</div>`;
    if (op.requestBody) html += block("Request body", op.requestBody.content["application/json"].schema);
    for (const [status, answer] of Object.entries(op.responses)) {
      const content = answer.content && answer.content["application/json"];
      html += content ? block(`${status}: ${answer.description}`, content.schema) : `<div>${esc(status)}: ${esc(answer.description)}</div>`;
    }
  }
  document.getElementById("ops").innerHTML = html;
}).catch(e => { document.getElementById("ops").textContent = "Cannot load openapi.json: " + e; });
</script></body></html>
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_has_an_id_and_every_reference_a_schema() {
        let document = document();
        let schemas = document["components"]["schemas"].as_object().cloned().unwrap_or_default();
        let text = document.to_string();
        for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = reference.split('"').next().unwrap_or_default();
            assert!(schemas.contains_key(name), "{name} is referenced but not defined");
        }
        assert!(schemas.contains_key("Registration") && schemas.contains_key("InstanceReport"), "{schemas:?}");
        assert_eq!(operation_id("post", "/mcp/{upstream}/tools/call"), "postMcpUpstreamToolsCall");
    }

    #[tokio::test]
    async fn nested_under_a_prefix_the_document_names_it_as_its_server() {
        use tower::ServiceExt as _;
        let root = crate::storage::LocalRoot::open(std::env::temp_dir()).unwrap_or_else(|error| panic!("{error}"));
        let core = crate::server::Core::new(
            crate::storage::Storage::Local(root),
            crate::tools::ToolLimits::default(),
            false,
            None,
        );
        let settings = super::super::HttpSettings::local().unwrap_or_else(|error| panic!("{error}"));
        let gateway = super::super::router(Arc::new(core), settings);
        for (app, uri, servers) in [
            (gateway.clone(), "/openapi.json", Value::Null),
            (Router::new().nest("/assistant", gateway), "/assistant/openapi.json", json!([{ "url": "/assistant" }])),
        ] {
            let request = axum::http::Request::builder()
                .uri(uri)
                .header("host", "localhost")
                .body(axum::body::Body::empty())
                .unwrap_or_else(|error| panic!("{error}"));
            let response = app.oneshot(request).await.unwrap_or_else(|error| match error {});
            assert_eq!(response.status(), axum::http::StatusCode::OK, "{uri}");
            let body = axum::body::to_bytes(response.into_body(), 1 << 22).await.unwrap_or_default();
            let document: Value = serde_json::from_slice(&body).unwrap_or_default();
            assert_eq!(document["servers"], servers, "{uri}");
            assert!(document["paths"].get("/mcp").is_some(), "{uri}");
        }
    }

    #[tokio::test]
    async fn every_operation_of_the_document_is_a_route_of_the_router() {
        use tower::ServiceExt as _;
        let root = std::env::temp_dir();
        let storage = crate::storage::Storage::Local(
            crate::storage::LocalRoot::open(&root).unwrap_or_else(|error| panic!("{error}")),
        );
        let core = Arc::new(crate::server::Core::new(storage, crate::tools::ToolLimits::default(), false, None));
        let settings = super::super::HttpSettings::local().unwrap_or_else(|error| panic!("{error}"));
        let router = super::super::router(core, settings);
        let paths = document()["paths"].as_object().cloned().unwrap_or_default();
        assert!(paths.len() >= 15, "{}", paths.len());
        for prefix in ["", "/prod"] {
            for (path, item) in &paths {
                for method in item.as_object().map(|item| item.keys().cloned().collect::<Vec<_>>()).unwrap_or_default()
                {
                    let uri = format!("{prefix}{}", path.replace("{upstream}", "docs").replace("{instance}", "a"));
                    let request = axum::http::Request::builder()
                        .method(method.to_uppercase().as_str())
                        .uri(&uri)
                        .header("host", "localhost")
                        .body(axum::body::Body::from("{}"))
                        .unwrap_or_else(|error| panic!("{error}"));
                    let response = router.clone().oneshot(request).await.unwrap_or_else(|error| match error {});
                    let status = response.status();
                    let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap_or_default();
                    // The router's own "no route" is an empty 404 or a 405; our refusals say why.
                    let routed = status != axum::http::StatusCode::METHOD_NOT_ALLOWED
                        && !(status == axum::http::StatusCode::NOT_FOUND && body.is_empty());
                    assert!(routed, "{method} {uri}: {status} {}", String::from_utf8_lossy(&body));
                }
            }
        }
    }
}

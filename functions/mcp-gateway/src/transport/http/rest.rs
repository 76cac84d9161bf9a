//! Per-upstream REST routes, for scripts and humans: one upstream's tools and resources by their
//! own names and URIs, as plain JSON over HTTP (no JSON-RPC, no protocol headers):
//! `GET /mcp/{upstream}/tools/list`, `POST /mcp/{upstream}/tools/call` (`{"name", "arguments"}`),
//! `GET /mcp/{upstream}/resources/list`, `POST /mcp/{upstream}/resources/read` (`{"uri"}`) and
//! `GET /mcp/{upstream}/health`. Each goes through the same registry as an MCP call (the same
//! breaker, balancer, time limits and access log line).

use std::{collections::HashMap, sync::Arc};

use axum::{
    Json, Router,
    extract::{Path, Request, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use rmcp::model::{CallToolRequestParams, JsonObject, ResourceContents};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::{
    AppState,
    manage::{Refusal, json_body},
};
use crate::{
    access::Target,
    access_log::RequestRecord,
    progress::Progress,
    registry::CallContext,
    upstream::{Catalogue, names, pool::InstanceReport},
};

/// The routes, also under an API Gateway stage prefix.
pub(super) fn routes() -> Router<Arc<AppState>> {
    let mut router = Router::new();
    for prefix in ["", "/{stage}"] {
        router = router
            .route(&format!("{prefix}/mcp/{{upstream}}/tools/list"), get(tools_list))
            .route(&format!("{prefix}/mcp/{{upstream}}/tools/call"), post(tools_call))
            .route(&format!("{prefix}/mcp/{{upstream}}/resources/list"), get(resources_list))
            .route(&format!("{prefix}/mcp/{{upstream}}/resources/read"), post(resources_read))
            .route(&format!("{prefix}/mcp/{{upstream}}/health"), get(health));
    }
    router
}

/// `POST /mcp/{upstream}/tools/call`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolCall {
    /// The tool's name on the upstream.
    pub name: String,
    /// Its arguments.
    #[serde(default)]
    pub arguments: Option<JsonObject>,
}

/// `POST /mcp/{upstream}/resources/read`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceRead {
    /// The resource's URI on the upstream.
    pub uri: String,
}

/// `GET /mcp/{upstream}/health`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct UpstreamHealth {
    /// The upstream.
    pub name: String,
    /// `up`, `down` or `unknown` (not contacted yet).
    pub state: String,
    /// Instances that may be called now.
    pub healthy_instances: usize,
    /// Each instance.
    pub instances: Vec<InstanceReport>,
}

/// One REST request under way: its access log line, written when it is answered.
struct Call {
    record: RequestRecord,
    upstream: String,
    catalogue: Arc<Catalogue>,
}

impl Call {
    /// Checks `Host` and `Origin` and that the upstream exists.
    fn start(
        state: &AppState,
        params: &HashMap<String, String>,
        request: &Request,
        method: &str,
    ) -> Result<Self, Box<Response>> {
        let record =
            RequestRecord::start(request.method().as_str()).with_deadline(super::guard::lambda_deadline(request));
        super::guard::record_identity(request, &record);
        record.update(|fields| fields.method = Some(method.to_owned()));
        let upstream = params.get("upstream").cloned().unwrap_or_default();
        if let Some((status, message)) = super::guard::host_and_origin_refusal(&state.settings, request.headers()) {
            return Err(Box::new(finish(&record, Err(Refusal(status, message)))));
        }
        let catalogue = state.core.registry.upstreams().filter(|catalogue| catalogue.upstream(&upstream).is_some());
        let Some(catalogue) = catalogue else {
            let message = format!("no upstream named `{upstream}`; GET /gateway/registry lists them");
            return Err(Box::new(finish(&record, Err(Refusal(StatusCode::NOT_FOUND, message)))));
        };
        Ok(Self { record, upstream, catalogue: catalogue.clone() })
    }

    fn answer(self, outcome: Result<Response, Refusal>) -> Response {
        finish(&self.record, outcome)
    }

    fn context(&self) -> CallContext {
        CallContext {
            cancel: CancellationToken::new(),
            progress: Progress::disabled(),
            deadline: self.record.deadline(),
            caller: self.record.caller(),
            trace: self.record.trace(),
        }
    }
}

/// The response of `outcome`, its access log line written.
fn finish(record: &RequestRecord, outcome: Result<Response, Refusal>) -> Response {
    let response = outcome.unwrap_or_else(|Refusal(status, message)| {
        record.update(|fields| fields.reason = Some(message.clone()));
        Refusal(status, message).into_response()
    });
    record.update(|fields| fields.status = response.status().as_u16());
    record.emit();
    response
}

fn internal(error: impl std::fmt::Display) -> Refusal {
    Refusal(StatusCode::BAD_GATEWAY, error.to_string())
}

async fn tools_list(
    State(state): State<Arc<AppState>>,
    Path(params): Path<HashMap<String, String>>,
    request: Request,
) -> Response {
    let call = match Call::start(&state, &params, &request, "rest tools/list") {
        Ok(call) => call,
        Err(refused) => return *refused,
    };
    let listed = state.core.registry.tools_of(&call.upstream).await;
    let outcome = match listed {
        Ok(tools) => {
            let (rules, caller) = (&state.core.policy.rules, call.record.caller());
            let mut allowed = Vec::with_capacity(tools.len());
            for tool in tools {
                let exposed = state.core.registry.exposed_tool(&call.upstream, &tool.name).await;
                if rules.is_open() || exposed.is_some_and(|exposed| rules.allows(&caller, Target::Tool(&exposed))) {
                    allowed.push(tool);
                }
            }
            Ok(Json(serde_json::json!({ "tools": allowed })).into_response())
        }
        Err(error) => Err(internal(error)),
    };
    call.answer(outcome)
}

async fn tools_call(
    State(state): State<Arc<AppState>>,
    Path(params): Path<HashMap<String, String>>,
    request: Request,
) -> Response {
    let call = match Call::start(&state, &params, &request, "rest tools/call") {
        Ok(call) => call,
        Err(refused) => return *refused,
    };
    let outcome = async {
        let shape = r#"{"name": TOOL, "arguments": {...}}"#;
        let asked: ToolCall = json_body(&state.settings, request, state.settings.max_body_bytes, shape).await?;
        call.record.set_tool(&asked.name);
        let registry = &state.core.registry;
        let Some(exposed) = registry.exposed_tool(&call.upstream, &asked.name).await else {
            return Err(Refusal(
                StatusCode::NOT_FOUND,
                format!("upstream `{}` has no tool `{}`; GET tools/list shows them", call.upstream, asked.name),
            ));
        };
        let caller = call.record.caller();
        let policy = &state.core.policy;
        policy
            .rules
            .check(&caller, Target::Tool(&exposed))
            .map_err(|why| Refusal(StatusCode::FORBIDDEN, why.to_string()))?;
        if let Err(limited) = policy.limits.admit(&caller, Some(&exposed)) {
            call.record.update(|fields| fields.reason = Some(limited.to_string()));
            let mut response = Refusal(StatusCode::TOO_MANY_REQUESTS, limited.to_string()).into_response();
            let retry_after = http::HeaderValue::from(limited.retry_after_secs());
            response.headers_mut().insert(http::header::RETRY_AFTER, retry_after);
            return Ok(response);
        }
        let mut params = CallToolRequestParams::new(exposed);
        params.arguments = asked.arguments;
        match registry.call(params, call.context()).await {
            Some(Ok(response)) => {
                use rmcp::model::CallToolResponse;
                let body = match &response {
                    CallToolResponse::Complete(result) => {
                        call.record.set_tool_error(result.is_error == Some(true), None);
                        serde_json::to_value(result)
                    }
                    CallToolResponse::InputRequired(result) => serde_json::to_value(result),
                    CallToolResponse::Task(result) => serde_json::to_value(result),
                    _ => {
                        return Err(internal(
                            "the upstream answered with a kind of result this route does not pass on",
                        ));
                    }
                };
                body.map(|body| Json(body).into_response()).map_err(internal)
            }
            Some(Err(error)) => Err(Refusal(
                StatusCode::BAD_GATEWAY,
                format!("the upstream answered {}: {}", error.code.0, error.message),
            )),
            None => Err(Refusal(
                StatusCode::NOT_FOUND,
                format!("upstream `{}` has no tool `{}`", call.upstream, asked.name),
            )),
        }
    }
    .await;
    call.answer(outcome)
}

async fn resources_list(
    State(state): State<Arc<AppState>>,
    Path(params): Path<HashMap<String, String>>,
    request: Request,
) -> Response {
    let call = match Call::start(&state, &params, &request, "rest resources/list") {
        Ok(call) => call,
        Err(refused) => return *refused,
    };
    let outcome = state.core.registry.resources().await.map_err(internal).map(|(resources, templates)| {
        let own =
            |uri: &str| names::parse_resource_uri(uri).filter(|(owner, _)| *owner == call.upstream).map(|(_, uri)| uri);
        let (rules, caller) = (&state.core.policy.rules, call.record.caller());
        let resources: Vec<_> = resources
            .into_iter()
            .filter(|resource| rules.allows(&caller, Target::Resource(&resource.uri)))
            .filter_map(|mut resource| {
                resource.uri = own(&resource.uri)?;
                Some(resource)
            })
            .collect();
        let templates: Vec<_> = templates
            .into_iter()
            .filter_map(|mut template| {
                template.uri_template = own(&template.uri_template)?;
                Some(template)
            })
            .collect();
        Json(serde_json::json!({ "resources": resources, "resourceTemplates": templates })).into_response()
    });
    call.answer(outcome)
}

async fn resources_read(
    State(state): State<Arc<AppState>>,
    Path(params): Path<HashMap<String, String>>,
    request: Request,
) -> Response {
    let call = match Call::start(&state, &params, &request, "rest resources/read") {
        Ok(call) => call,
        Err(refused) => return *refused,
    };
    let outcome = async {
        let limit = state.settings.max_body_bytes;
        let asked: ResourceRead = json_body(&state.settings, request, limit, r#"{"uri": URI}"#).await?;
        let exposed = names::resource_uri(&call.upstream, &asked.uri);
        let rules = &state.core.policy.rules;
        rules
            .check(&call.record.caller(), Target::Resource(&exposed))
            .map_err(|why| Refusal(StatusCode::FORBIDDEN, why.to_string()))?;
        match state.core.registry.read_resource(&exposed, call.context()).await {
            Some(Ok(mut result)) => {
                for contents in &mut result.contents {
                    own_uri(contents);
                }
                Ok(Json(result).into_response())
            }
            Some(Err(error)) => Err(Refusal(
                StatusCode::BAD_GATEWAY,
                format!("the upstream answered {}: {}", error.code.0, error.message),
            )),
            None => Err(Refusal(StatusCode::NOT_FOUND, format!("`{}` is not a resource URI", asked.uri))),
        }
    }
    .await;
    call.answer(outcome)
}

/// A read resource's URI back to the upstream's own.
fn own_uri(contents: &mut ResourceContents) {
    match contents {
        ResourceContents::TextResourceContents { uri, .. } | ResourceContents::BlobResourceContents { uri, .. } => {
            if let Some((_, own)) = names::parse_resource_uri(uri) {
                *uri = own;
            }
        }
        #[allow(unreachable_patterns)]
        _ => {}
    }
}

async fn health(
    State(state): State<Arc<AppState>>,
    Path(params): Path<HashMap<String, String>>,
    request: Request,
) -> Response {
    let call = match Call::start(&state, &params, &request, "rest health") {
        Ok(call) => call,
        Err(refused) => return *refused,
    };
    let outcome = call.catalogue.upstream(&call.upstream).map(|upstream| {
        let instances = upstream.instances();
        Json(UpstreamHealth {
            name: upstream.name().to_owned(),
            state: upstream.status().state,
            healthy_instances: instances.iter().filter(|instance| super::manage::healthy(instance)).count(),
            instances,
        })
        .into_response()
    });
    let missing = format!("no upstream named `{}`", call.upstream);
    call.answer(outcome.ok_or(Refusal(StatusCode::NOT_FOUND, missing)))
}

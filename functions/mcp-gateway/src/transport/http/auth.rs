//! The door of `serve` with `[auth]`: every request but the health checks and the
//! protected-resource metadata must carry a credential that verifies; its [`Identity`] goes into
//! the request's extensions for the access log, authorization, rate limits and load balancing.
//!
//! **Invariant:** a request without a valid credential never reaches a handler: it is answered
//! 401 with the `WWW-Authenticate` challenges (the MCP authorization spec's `resource_metadata`
//! pointer when JWTs are accepted), or 503 when the issuer's keys are out of reach, and logged.

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::{Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::get,
};
use http::{HeaderMap, StatusCode, header};
use serde_json::json;

use super::AppState;
use crate::{
    access::authn::{AuthError, METADATA_PATH},
    access_log::RequestRecord,
};

/// The protected-resource metadata (RFC 9728), at the root and under a resource path
/// (`/.well-known/oauth-protected-resource/mcp`), as MCP clients look for either.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new().route(METADATA_PATH, get(metadata)).route(&format!("{METADATA_PATH}/{{*resource}}"), get(metadata))
}

async fn metadata(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let metadata = state.settings.auth.as_ref().and_then(|auth| auth.resource_metadata(&request_base_url(&request)));
    match metadata {
        Some(metadata) => Json(metadata).into_response(),
        None => {
            (StatusCode::NOT_FOUND, Json(json!({"error": "this gateway does not accept OAuth tokens"}))).into_response()
        }
    }
}

/// Routes anyone may call: liveness, readiness and where to get a token.
/// `/health` is open also under an API Gateway stage (`/{stage}/health`), but `/mcp/health` is
/// the endpoint of an upstream named `health` and `/gateway/health` the management API's.
fn is_open(path: &str) -> bool {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    path.starts_with(METADATA_PATH)
        || matches!(segments.as_slice(), ["", "health" | "live" | "ready"])
        || matches!(segments.as_slice(), ["", stage, "health"] if !matches!(*stage, "mcp" | "gateway"))
}

/// The middleware: authenticates, or answers for the handler.
pub(super) async fn authenticate(State(state): State<Arc<AppState>>, mut request: Request, next: Next) -> Response {
    let Some(authenticator) = &state.settings.auth else {
        return next.run(request).await;
    };
    if is_open(request.uri().path()) {
        return next.run(request).await;
    }
    let error = match authenticator.authenticate(request.headers()).await {
        Ok(identity) => {
            request.extensions_mut().insert(identity);
            return next.run(request).await;
        }
        Err(error) => error,
    };
    let record = RequestRecord::start(request.method().as_str());
    super::guard::record_identity(&request, &record);
    let status = match error {
        AuthError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        AuthError::Missing(_) | AuthError::Invalid { .. } => StatusCode::UNAUTHORIZED,
    };
    let message = error.to_string();
    let jsonrpc = {
        let mut segments = request.uri().path().trim_end_matches('/').rsplit('/');
        segments.next() == Some("mcp") || segments.next() == Some("mcp")
    };
    let body = if jsonrpc {
        json!({"jsonrpc": "2.0", "id": null, "error": {"code": rmcp::model::ErrorCode::INVALID_REQUEST.0, "message": message}})
    } else {
        json!({"error": message})
    };
    let mut response = (status, Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        for challenge in authenticator.challenges(&request_base_url(&request), &error) {
            response.headers_mut().append(header::WWW_AUTHENTICATE, challenge);
        }
    }
    crate::metrics::global().auth_refused();
    record.update(|fields| {
        fields.status = status.as_u16();
        fields.reason = Some(format!("{} {}: {message}", request.method(), request.uri().path()));
    });
    record.emit();
    response
}

/// [`base_url`] of the gateway that `request` reached.
fn request_base_url(request: &Request) -> String {
    base_url(request.headers(), &super::mount_prefix(request.uri(), request.extensions()))
}

/// `<scheme>://<host><prefix>` of the gateway as the client reached it (`X-Forwarded-Proto` from a
/// load balancer in front, `http` otherwise; `prefix` where a host service mounted the router, see
/// [`super::mount_prefix`]), for links in challenges and metadata.
fn base_url(headers: &HeaderMap, prefix: &str) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .filter(|host| !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c)))
        .unwrap_or("localhost");
    let scheme = match headers.get("x-forwarded-proto").and_then(|proto| proto.to_str().ok()) {
        Some("https") => "https",
        _ => "http",
    };
    format!("{scheme}://{host}{prefix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_health_and_metadata_are_open() {
        for open in [
            "/health",
            "/live",
            "/ready",
            "/prod/health",
            "/.well-known/oauth-protected-resource",
            "/.well-known/oauth-protected-resource/mcp",
        ] {
            assert!(is_open(open), "{open}");
        }
        for closed in
            ["/mcp", "/metrics", "/mcp/health", "/gateway/health", "/a/b/health", "/openapi.json", "/mcp/github/health"]
        {
            assert!(!is_open(closed), "{closed}");
        }
    }

    /// Mounted by a host service (`Router::nest("/assistant", gateway)`), the 401's
    /// `resource_metadata` pointer and the metadata's `resource` keep the prefix: at the root they
    /// would name routes the host service does not have.
    #[tokio::test]
    async fn nested_under_a_prefix_the_oauth_links_keep_the_prefix() {
        use tower::ServiceExt as _;
        let config = crate::access::config::parse(
            "access.toml",
            "[auth.jwt]\nissuer = \"https://issuer.example\"\naudience = \"mcp\"\njwks_url = \"https://issuer.example/jwks\"\n",
        )
        .unwrap_or_else(|error| panic!("{error:?}"));
        let auth = config.auth.unwrap_or_else(|| panic!("no [auth]"));
        let authenticator = crate::access::authn::Authenticator::new(auth).unwrap_or_else(|error| panic!("{error}"));
        let root = crate::storage::LocalRoot::open(std::env::temp_dir()).unwrap_or_else(|error| panic!("{error}"));
        let core = crate::server::Core::with_builtin_tools(
            crate::storage::Storage::Local(root),
            crate::tools::ToolLimits::default(),
        );
        let mut settings = super::super::HttpSettings::local().unwrap_or_else(|error| panic!("{error}"));
        settings.auth = Some(Arc::new(authenticator));
        let gateway = super::super::router(Arc::new(core), settings);
        let get = |uri: String| {
            http::Request::builder()
                .uri(uri)
                .header(header::HOST, "localhost")
                .body(axum::body::Body::empty())
                .unwrap_or_else(|error| panic!("{error}"))
        };
        for (app, prefix) in [(gateway.clone(), ""), (Router::new().nest("/assistant", gateway), "/assistant")] {
            let refused =
                app.clone().oneshot(get(format!("{prefix}/mcp"))).await.unwrap_or_else(|error| match error {});
            assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "{prefix}");
            let challenge = refused.headers().get(header::WWW_AUTHENTICATE).and_then(|value| value.to_str().ok());
            let pointer = format!("http://localhost{prefix}{METADATA_PATH}");
            assert!(
                challenge.is_some_and(|challenge| challenge.contains(&format!("resource_metadata=\"{pointer}\""))),
                "{challenge:?}"
            );
            let answer = app
                .clone()
                .oneshot(get(format!("{prefix}{METADATA_PATH}")))
                .await
                .unwrap_or_else(|error| match error {});
            assert_eq!(answer.status(), StatusCode::OK, "{pointer}");
            let body = axum::body::to_bytes(answer.into_body(), 1 << 16).await.unwrap_or_default();
            let metadata: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            assert_eq!(metadata["resource"], format!("http://localhost{prefix}/mcp"), "{metadata}");
        }
    }

    #[test]
    fn the_base_url_ignores_hosts_that_could_break_a_header() {
        let headers = |host: &str, proto: Option<&str>| {
            let mut headers = HeaderMap::new();
            headers.insert(header::HOST, host.parse().unwrap_or_else(|error| panic!("{error:?}")));
            if let Some(proto) = proto {
                headers.insert("x-forwarded-proto", proto.parse().unwrap_or_else(|error| panic!("{error:?}")));
            }
            headers
        };
        assert_eq!(base_url(&headers("mcp.example.com", Some("https")), ""), "https://mcp.example.com");
        assert_eq!(base_url(&headers("127.0.0.1:8080", None), ""), "http://127.0.0.1:8080");
        assert_eq!(base_url(&headers("a\"b", None), ""), "http://localhost");
        assert_eq!(base_url(&headers("shop.example", Some("https")), "/assistant"), "https://shop.example/assistant");
    }
}

//! Headers every answer carries: CORS for the browser origins on the `--allowed-origin` list
//! (preflights answered here, before authentication, as browsers send them without
//! credentials), and the usual security headers (`nosniff`, no framing, no caching by
//! intermediaries, a strict Content-Security-Policy; HSTS when `serve` speaks TLS).
//!
//! **Invariant:** a cross-origin browser request gets `Access-Control-Allow-Origin` only for a
//! listed origin, and never `*`; the Host/Origin checks of the routes still apply.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::Response,
};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};

use super::AppState;

/// Request headers a browser MCP client may send.
const ALLOWED_HEADERS: &str = "content-type, accept, authorization, x-api-key, mcp-protocol-version, \
                               mcp-session-id, mcp-method, mcp-name, last-event-id, traceparent";
/// Response headers a browser MCP client may read.
const EXPOSED_HEADERS: &str = "mcp-session-id, www-authenticate, retry-after";
/// The `/docs` page's own scripts and styles are inline.
const DOCS_POLICY: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'";
const API_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";

/// The middleware.
pub(super) async fn cors_and_security(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|origin| origin.to_str().ok())
        .filter(|origin| super::guard::origin_listed(&state.settings, origin))
        .and_then(|origin| HeaderValue::from_str(origin).ok());
    let is_docs = request.uri().path().ends_with("/docs");
    let preflight =
        request.method() == Method::OPTIONS && request.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = match (&origin, preflight) {
        (Some(_), true) => {
            let mut response = Response::new(axum::body::Body::empty());
            *response.status_mut() = StatusCode::NO_CONTENT;
            let headers = response.headers_mut();
            headers
                .insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, DELETE, OPTIONS"));
            headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(ALLOWED_HEADERS));
            headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
            response
        }
        _ => next.run(request).await,
    };
    let headers = response.headers_mut();
    if let Some(origin) = origin {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSED_HEADERS));
    }
    headers.append(header::VARY, HeaderValue::from_static("origin"));
    security_headers(headers, is_docs, state.settings.tls);
    response
}

fn security_headers(headers: &mut HeaderMap, is_docs: bool, tls: bool) {
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(if is_docs { DOCS_POLICY } else { API_POLICY }),
    );
    headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    if tls {
        headers.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    }
}

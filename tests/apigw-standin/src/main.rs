//! A local stand-in for API Gateway with `AWS_IAM` auth, for the proxy's end-to-end tests.
//!
//! It verifies every request's SigV4 signature with `scratchstack-aws-signature` (an
//! implementation independent of the proxy's `aws-sigv4`) against a credentials file that is
//! re-read on every request (so tests can rotate or expire keys), answers failures with API
//! Gateway's own messages, and forwards valid requests to an upstream MCP server, streaming the
//! answer back. It also answers STS `GetCallerIdentity` at `/` for `doctor` (a signed POST).
//!
//! Test controls (unsigned, loopback only): `POST /_standin/throttle?n=N` makes the next N
//! signed requests fail with 429; `GET /_standin/stats` counts verified requests.

use std::{
    collections::HashMap,
    convert::Infallible,
    io::Write as _,
    net::SocketAddr,
    path::PathBuf,
    str::FromStr as _,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use anyhow::Context as _;
use axum::{
    Router,
    body::{Body, Bytes},
    extract::{Query, Request, State},
    response::{IntoResponse, Response},
    routing::{any, get, post},
};
use clap::Parser;
use futures::TryStreamExt as _;
use http::StatusCode;
use scratchstack_aws_principal::User;
use scratchstack_aws_signature::{
    GetSigningKeyRequest, GetSigningKeyResponse, KSecretKey, NO_ADDITIONAL_SIGNED_HEADERS, SignatureError,
    SignatureOptions, service_for_signing_key_fn, sigv4_validate_request,
};
use serde::Deserialize;
use serde_json::json;

/// API Gateway stand-in that verifies SigV4 and forwards to an MCP server.
#[derive(Debug, Parser)]
struct Cli {
    /// Address to listen on (port 0 picks a free port; it is printed on stdout).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// The MCP endpoint requests are forwarded to.
    #[arg(long)]
    upstream: String,
    /// JSON file: `{"<access key>": {"secret": "<40 chars>", "session_token": "...", "expired": false, "user": "alice"}}`.
    #[arg(long)]
    credentials: PathBuf,
    /// The stage prefix of the path (`/<stage>/mcp`).
    #[arg(long, default_value = "prod")]
    stage: String,
    /// Region the signature must be scoped to.
    #[arg(long, default_value = "us-east-1")]
    region: String,
}

#[derive(Debug, Clone, Deserialize)]
struct Credential {
    secret: String,
    session_token: Option<String>,
    #[serde(default)]
    expired: bool,
    #[serde(default = "default_user")]
    user: String,
}

fn default_user() -> String {
    "alice".to_owned()
}

struct AppState {
    cli: Cli,
    http: reqwest::Client,
    throttle: AtomicU64,
    verified: AtomicU64,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let listener = tokio::net::TcpListener::bind(cli.listen).await.context("binding")?;
    let address = listener.local_addr()?;
    let stage = cli.stage.clone();
    let state = Arc::new(AppState {
        cli,
        http: reqwest::Client::new(),
        throttle: AtomicU64::new(0),
        verified: AtomicU64::new(0),
    });
    let app = Router::new()
        .route("/_standin/throttle", post(set_throttle))
        .route("/_standin/stats", get(stats))
        .route("/", post(sts).get(sts))
        .fallback(any(gateway))
        .with_state(state);
    // The test harness reads the URL from the first stdout line.
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening on http://{address}/{stage}/mcp")?;
    stdout.flush()?;
    let listener = axum::serve::ListenerExt::tap_io(listener, |stream| {
        let _ = stream.set_nodelay(true);
    });
    axum::serve(listener, app).await?;
    Ok(())
}

#[derive(Deserialize)]
struct Throttle {
    n: u64,
}

async fn set_throttle(State(state): State<Arc<AppState>>, Query(throttle): Query<Throttle>) -> StatusCode {
    state.throttle.store(throttle.n, Ordering::SeqCst);
    StatusCode::NO_CONTENT
}

async fn stats(State(state): State<Arc<AppState>>) -> axum::Json<serde_json::Value> {
    axum::Json(json!({"verified": state.verified.load(Ordering::SeqCst)}))
}

fn apigw_error(status: StatusCode, message: &str) -> Response {
    let mut response = (status, axum::Json(json!({ "message": message }))).into_response();
    response.headers_mut().insert("x-amzn-errortype", http::HeaderValue::from_static("AccessDeniedException"));
    response
}

/// Verifies the signature of `request` for `service`; returns the caller's user name.
async fn verify(
    state: &AppState,
    request: http::Request<Bytes>,
    service: &str,
) -> Result<(http::request::Parts, Bytes, String), Response> {
    if !request.headers().contains_key("authorization") {
        return Err(apigw_error(StatusCode::FORBIDDEN, "Missing Authentication Token"));
    }
    let credentials: HashMap<String, Credential> = std::fs::read(&state.cli.credentials)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    let region = state.cli.region.clone();
    let lookup = move |request: GetSigningKeyRequest| {
        let credentials = credentials.clone();
        let region = region.clone();
        async move {
            let Some(credential) = credentials.get(request.access_key()) else {
                return Err(SignatureError::InvalidClientTokenId(
                    "The security token included in the request is invalid.".into(),
                )
                .into());
            };
            if credential.session_token.as_deref() != request.session_token() {
                return Err(SignatureError::InvalidClientTokenId(
                    "The security token included in the request is invalid.".into(),
                )
                .into());
            }
            if credential.expired {
                return Err(SignatureError::ExpiredToken(
                    "The security token included in the request is expired".into(),
                )
                .into());
            }
            let user = User::new("aws", "123456789012", "/", &credential.user)?;
            let secret = KSecretKey::from_str(&credential.secret)?;
            let signing_key = secret.to_ksigning(request.request_date(), &region, request.service());
            Ok(GetSigningKeyResponse::builder().principal(user).signing_key(signing_key).build()?)
        }
    };
    let mut service_fn = service_for_signing_key_fn(lookup);
    let now = chrono::Utc::now();
    let result = sigv4_validate_request(
        request,
        &state.cli.region,
        service,
        &mut service_fn,
        now,
        &NO_ADDITIONAL_SIGNED_HEADERS,
        SignatureOptions::default(),
    )
    .await;
    match result {
        Ok((parts, body, auth)) => {
            state.verified.fetch_add(1, Ordering::SeqCst);
            let caller = auth.principal().to_string();
            let caller = caller.trim_start_matches("Principal(").trim_end_matches(')').to_owned();
            Ok((parts, body, caller))
        }
        Err(error) => {
            let message = match error.downcast_ref::<SignatureError>() {
                Some(SignatureError::ExpiredToken(_)) => "The security token included in the request is expired".to_owned(),
                Some(SignatureError::InvalidClientTokenId(_)) => "The security token included in the request is invalid.".to_owned(),
                Some(SignatureError::SignatureDoesNotMatch(Some(message))) => message.clone(),
                Some(SignatureError::SignatureDoesNotMatch(None)) => "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.".to_owned(),
                Some(SignatureError::MissingAuthenticationToken(_)) => "Missing Authentication Token".to_owned(),
                _ => error.to_string(),
            };
            eprintln!("standin: rejected request: {message}");
            Err(apigw_error(StatusCode::FORBIDDEN, &message))
        }
    }
}

async fn collect(request: Request) -> Result<http::Request<Bytes>, Response> {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 10 * 1024 * 1024)
        .await
        .map_err(|_| apigw_error(StatusCode::PAYLOAD_TOO_LARGE, "Request Too Long"))?;
    Ok(http::Request::from_parts(parts, bytes))
}

async fn gateway(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let stage = &state.cli.stage;
    let is_mcp = path == format!("/{stage}/mcp") || path == format!("/{stage}/mcp/");
    let is_health = path == format!("/{stage}/health");
    if !is_mcp && !is_health {
        return apigw_error(StatusCode::FORBIDDEN, "Missing Authentication Token");
    }
    let request = match collect(request).await {
        Ok(request) => request,
        Err(response) => return response,
    };
    let (parts, body, caller) = match verify(&state, request, "execute-api").await {
        Ok(verified) => verified,
        Err(response) => return response,
    };
    if state.throttle.load(Ordering::SeqCst) > 0 {
        state.throttle.fetch_sub(1, Ordering::SeqCst);
        let mut response = apigw_error(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests");
        response.headers_mut().insert("retry-after", http::HeaderValue::from_static("0"));
        return response;
    }
    let upstream = if is_health {
        state.cli.upstream.trim_end_matches("/mcp").to_owned() + "/health"
    } else {
        state.cli.upstream.clone()
    };
    let mut forward = state.http.request(parts.method.clone(), upstream).body(body);
    for name in
        ["content-type", "accept", "mcp-session-id", "mcp-protocol-version", "mcp-method", "mcp-name", "traceparent"]
    {
        if let Some(value) = parts.headers.get(name) {
            forward = forward.header(name, value.clone());
        }
    }
    let upstream_response = match forward.send().await {
        Ok(response) => response,
        Err(error) => {
            eprintln!("standin: upstream failed: {error}");
            return apigw_error(StatusCode::BAD_GATEWAY, "Internal server error");
        }
    };
    let mut response = Response::builder().status(upstream_response.status());
    for (name, value) in upstream_response.headers() {
        if name != "transfer-encoding" && name != "content-length" && name != "connection" {
            response = response.header(name, value);
        }
    }
    response = response.header("x-standin-caller", caller);
    let stream = upstream_response.bytes_stream().map_err(|error| std::io::Error::other(error.to_string()));
    response
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| apigw_error(StatusCode::BAD_GATEWAY, "Internal server error"))
}

fn caller_identity(caller: &str) -> Response {
    let xml = format!(
        "<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>{caller}</Arn><UserId>AIDASTANDIN</UserId><Account>123456789012</Account></GetCallerIdentityResult></GetCallerIdentityResponse>"
    );
    ([("content-type", "text/xml")], xml).into_response()
}

async fn sts(State(state): State<Arc<AppState>>, request: Request) -> Result<Response, Infallible> {
    let request = match collect(request).await {
        Ok(request) => request,
        Err(response) => return Ok(response),
    };
    match verify(&state, request, "sts").await {
        Ok((_, body, caller)) if body.starts_with(b"Action=GetCallerIdentity") => Ok(caller_identity(&caller)),
        Ok(_) => Ok(apigw_error(StatusCode::BAD_REQUEST, "unsupported STS action")),
        Err(response) => Ok(response),
    }
}

//! rmcp's reqwest client for Streamable HTTP upstreams, with SigV4 signing for upstreams behind
//! AWS IAM (API Gateway, Lambda function URLs, Bedrock AgentCore).
//!
//! Signing uses `mcp-sigv4`, the signer and credential chain `mcp-sigv4-proxy` uses. rmcp's
//! client serializes each message with `serde_json::to_vec` (reqwest's `json`); the signature is
//! computed over the same bytes and its headers are handed to rmcp's request as custom headers.

use std::{collections::HashMap, sync::Arc};

use bytes::Bytes;
use futures::stream::BoxStream;
use http::{HeaderMap, HeaderName, HeaderValue};
use mcp_sigv4::{credentials::CredentialSource, endpoint::Endpoint, sign};
use rmcp::{
    model::ClientJsonRpcMessage,
    transport::streamable_http_client::{
        StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse, StreamableHttpResponseLimits,
    },
};
use sse_stream::{Error as SseError, Sse};

/// rmcp's reqwest client, signing each request when the upstream wants SigV4.
#[derive(Debug, Clone)]
pub struct SigV4Client {
    http: reqwest::Client,
    signer: Option<Arc<Signer>>,
}

#[derive(Debug)]
struct Signer {
    endpoint: Endpoint,
    credentials: CredentialSource,
}

type Failure = StreamableHttpError<reqwest::Error>;

impl SigV4Client {
    /// No signing.
    pub fn plain() -> Self {
        Self { http: client(), signer: None }
    }

    /// Signs for `url`'s service and region (inferred unless given), with the default credential
    /// chain or, given `role_arn`, that role assumed from it.
    pub async fn signing(
        url: &str,
        service: Option<&str>,
        region: Option<&str>,
        role_arn: Option<&str>,
    ) -> Result<Self, mcp_sigv4::endpoint::EndpointError> {
        let endpoint = Endpoint::new(url, service, region)?;
        let credentials = match role_arn {
            Some(role) => CredentialSource::assuming(role, endpoint.region.clone()),
            None => CredentialSource::new(None, endpoint.region.clone()),
        };
        Ok(Self { http: client(), signer: Some(Arc::new(Signer { endpoint, credentials })) })
    }

    /// The signature headers for a request, added to `headers`.
    async fn sign(
        &self,
        method: &str,
        uri: &str,
        body: Bytes,
        headers: &mut HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), Failure> {
        let Some(signer) = &self.signer else { return Ok(()) };
        let credentials = signer.credentials.get().await.map_err(|error| {
            Failure::UnexpectedServerResponse(format!("no AWS credentials: {}", error.message).into())
        })?;
        let signed = sign::signed_request(
            &signer.endpoint,
            method,
            uri,
            HeaderMap::new(),
            body,
            &credentials,
            std::time::SystemTime::now(),
        )
        .map_err(|error| Failure::UnexpectedServerResponse(format!("SigV4: {error}").into()))?;
        for (name, value) in signed.headers() {
            headers.insert(name.clone(), value.clone());
        }
        Ok(())
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .user_agent(concat!("mcp-gateway/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

impl StreamableHttpClient for SigV4Client {
    type Error = reqwest::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, Failure> {
        self.post_message_with_response_limits(
            uri,
            message,
            session_id,
            auth_header,
            custom_headers,
            StreamableHttpResponseLimits::default(),
        )
        .await
    }

    async fn post_message_with_response_limits(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        mut custom_headers: HashMap<HeaderName, HeaderValue>,
        limits: StreamableHttpResponseLimits,
    ) -> Result<StreamableHttpPostResponse, Failure> {
        if self.signer.is_some() {
            // The exact bytes reqwest's `json` will send.
            let body = serde_json::to_vec(&message)?;
            self.sign("POST", &uri, Bytes::from(body), &mut custom_headers).await?;
        }
        self.http.post_message_with_response_limits(uri, message, session_id, auth_header, custom_headers, limits).await
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_header: Option<String>,
        mut custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), Failure> {
        self.sign("DELETE", &uri, Bytes::new(), &mut custom_headers).await?;
        self.http.delete_session(uri, session_id, auth_header, custom_headers).await
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        mut custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, Failure> {
        self.sign("GET", &uri, Bytes::new(), &mut custom_headers).await?;
        self.http.get_stream(uri, session_id, last_event_id, auth_header, custom_headers).await
    }
}

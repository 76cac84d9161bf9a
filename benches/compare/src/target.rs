//! One named endpoint, and sending a request to it (SigV4-signed when it is an AWS endpoint).

use std::sync::Arc;

use anyhow::Context as _;
use bytes::Bytes;
use http::HeaderMap;
use mcp_sigv4::{
    credentials::CredentialSource,
    endpoint, sign,
    sts_token::{self, TokenCache},
};

/// Overrides for signing (flags win over what the URL says).
#[derive(Debug, Clone, Default)]
pub struct Signing {
    pub region: Option<String>,
    pub profile: Option<String>,
    pub service: Option<String>,
}

/// A gateway that takes STS identity tokens (`serve` with `[auth.iam]`, e.g. the EC2 stack).
#[derive(Debug, Clone)]
pub struct StsAuth {
    /// The gateway's `[auth.iam] gateway_id`.
    pub gateway_id: String,
    /// The STS endpoint tokens are signed for (default: the region's).
    pub sts_endpoint: Option<String>,
}

/// How a target's requests are to prove the caller's IAM identity.
#[derive(Debug, Clone)]
pub enum AuthMode {
    None,
    /// Sign each request with SigV4.
    SigV4,
    /// Send STS identity tokens.
    Sts(StsAuth),
}

/// A named MCP endpoint.
#[derive(Debug)]
pub struct Target {
    pub name: String,
    pub url: String,
    auth: Auth,
}

/// How a target's requests prove the caller's IAM identity.
#[derive(Debug)]
enum Auth {
    None,
    /// Each request signed (API Gateway with AWS_IAM, Function URLs).
    SigV4 {
        endpoint: endpoint::Endpoint,
        credentials: Arc<CredentialSource>,
    },
    /// An STS token as `Authorization: Bearer`, made again every few minutes.
    Sts {
        tokens: TokenCache,
        credentials: Arc<CredentialSource>,
    },
}

/// An HTTP answer, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub session: Option<String>,
    pub body: Bytes,
}

/// Why no answer came back.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("timed out")]
    Timeout,
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("could not sign the request: {0}")]
    Sign(String),
}

/// `url` parsed, if it is an `http://` or `https://` URL with a host.
pub fn http_url(url: &str) -> anyhow::Result<http::Uri> {
    let uri = http::Uri::try_from(url).with_context(|| format!("`{url}` is not a URL"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
        anyhow::bail!("`{url}` is not an http:// or https:// URL");
    }
    Ok(uri)
}

/// Whether the URL is an AWS endpoint that expects SigV4 (API Gateway, Function URL, AgentCore).
pub fn is_aws_endpoint(url: &str) -> bool {
    let host = http::Uri::try_from(url).ok().and_then(|uri| uri.host().map(str::to_owned)).unwrap_or_default();
    endpoint::infer(&host).service.is_some()
}

impl Target {
    /// The endpoint `name` at `url`, authenticated by `mode` with the credentials, region and
    /// service of `signing` (STS tokens need a region).
    pub fn new(name: &str, url: &str, mode: &AuthMode, signing: &Signing) -> anyhow::Result<Self> {
        http_url(url).with_context(|| format!("target `{name}`"))?;
        let auth = match mode {
            AuthMode::None => Auth::None,
            AuthMode::SigV4 => {
                let endpoint = endpoint::Endpoint::new(url, signing.service.as_deref(), signing.region.as_deref())
                    .with_context(|| format!("target `{name}`"))?;
                let credentials = CredentialSource::new(signing.profile.clone(), endpoint.region.clone());
                Auth::SigV4 { endpoint, credentials: Arc::new(credentials) }
            }
            AuthMode::Sts(sts) => {
                let Some(region) = signing.region.clone() else {
                    anyhow::bail!("target `{name}`: --sts needs the region of STS (--region or AWS_REGION)")
                };
                let sts_endpoint = sts.sts_endpoint.clone().unwrap_or_else(|| sts_token::regional_endpoint(&region));
                let tokens = TokenCache::new(&region, &sts_endpoint, &sts.gateway_id);
                Auth::Sts { tokens, credentials: Arc::new(CredentialSource::new(signing.profile.clone(), region)) }
            }
        };
        Ok(Self { name: name.to_owned(), url: url.to_owned(), auth })
    }

    /// Whether requests to this target are signed with SigV4.
    pub fn signed(&self) -> bool {
        matches!(self.auth, Auth::SigV4 { .. })
    }

    /// How requests to this target are authenticated: `sigv4`, `sts` or `none`.
    pub fn auth(&self) -> &'static str {
        match self.auth {
            Auth::None => "none",
            Auth::SigV4 { .. } => "sigv4",
            Auth::Sts { .. } => "sts",
        }
    }

    /// POSTs `body` with `headers` and reads the whole answer.
    pub async fn post(&self, client: &reqwest::Client, headers: HeaderMap, body: Bytes) -> Result<Answer, SendError> {
        let request = match &self.auth {
            Auth::None => client.post(&self.url).headers(headers).body(body),
            Auth::SigV4 { endpoint, credentials } => {
                let credentials = credentials.get().await.map_err(|error| SendError::Sign(error.to_string()))?;
                let signed = sign::signed_post(endpoint, headers, body, &credentials)
                    .map_err(|error| SendError::Sign(error.to_string()))?;
                let (parts, body) = signed.into_parts();
                client.post(&self.url).headers(parts.headers).body(body)
            }
            Auth::Sts { tokens, credentials } => {
                let credentials = credentials.get().await.map_err(|error| SendError::Sign(error.to_string()))?;
                let token = tokens.token(&credentials).await.map_err(|error| SendError::Sign(error.to_string()))?;
                client.post(&self.url).headers(headers).bearer_auth(token).body(body)
            }
        };
        let response = request.send().await.map_err(send_error)?;
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let content_type = header("content-type").unwrap_or_default();
        let session = header("mcp-session-id");
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(send_error)?;
        Ok(Answer { status, content_type, session, body })
    }
}

fn send_error(error: reqwest::Error) -> SendError {
    if error.is_timeout() { SendError::Timeout } else { SendError::Connect(error.to_string()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_urls_are_signed_others_are_not() {
        assert!(is_aws_endpoint("https://abc123.execute-api.eu-west-1.amazonaws.com/dev/mcp"));
        assert!(is_aws_endpoint("https://xyz.lambda-url.us-east-1.on.aws/mcp"));
        assert!(!is_aws_endpoint("http://10.0.0.5:8080/mcp"));
        assert!(!is_aws_endpoint("http://127.0.0.1:8080/mcp"));
    }

    #[test]
    fn bad_urls_are_refused_with_the_target_name() {
        let Err(error) = Target::new("ec2", "ftp://host/mcp", &AuthMode::None, &Signing::default()) else {
            panic!("ftp:// was accepted")
        };
        assert!(error.to_string().contains("target `ec2`"), "{error}");
    }
}

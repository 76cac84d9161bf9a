//! AWS IAM callers of `serve` without API Gateway: the bearer token is a signed STS
//! `GetCallerIdentity` request (`mcp_sigv4::sts_token`), bound to this gateway by a signed header.
//! The gateway sends it to STS with its own id in that header and takes the caller's ARN and
//! account from the answer; STS checks the signature, so a token made for another gateway (or
//! altered) is refused by STS itself.
//!
//! **Invariants:** the gateway sends nothing to STS but the one request a token's shape allows
//! (`GetCallerIdentity`, an allowed endpoint, signed within 5 minutes, no redirects). An
//! answer is cached under the token's SHA-256 until the token expires, at most
//! [`MAX_CACHED`] of them.

use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use mcp_sigv4::sts_token::{self, GATEWAY_ID_HEADER};
use serde_json::{Map, Value};

use super::{
    authn::{TokenError, Verified},
    config::IamConfig,
    remembered::{self, Flights, Remembered},
};

/// Answers kept.
pub const MAX_CACHED: usize = 10_000;
/// How long STS may take to answer.
const STS_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest STS answer read.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Checks STS identity tokens.
#[derive(Debug)]
pub struct IamVerifier {
    config: IamConfig,
    client: reqwest::Client,
    cache: Remembered<Verified>,
    /// Requests that arrive together with one new token share one STS call and its answer.
    asking: Flights<Result<Verified, TokenError>>,
}

impl IamVerifier {
    /// A verifier for `config`.
    pub fn new(config: IamConfig) -> Result<Self, reqwest::Error> {
        let client = crate::outbound::client(STS_TIMEOUT)?;
        Ok(Self { config, client, cache: Remembered::new(MAX_CACHED), asking: Flights::default() })
    }

    /// Whether `scheme://authority` is an STS endpoint this gateway sends tokens to.
    fn trusted(&self, endpoint: &str) -> bool {
        if self.config.sts_endpoints.iter().any(|trusted| trusted == endpoint) {
            return true;
        }
        let Some(host) = endpoint.strip_prefix("https://") else { return false };
        let region = host.strip_prefix("sts.").and_then(|rest| rest.strip_suffix(".amazonaws.com"));
        host == "sts.amazonaws.com"
            || region.is_some_and(|region| {
                (4..=30).contains(&region.len())
                    && region.bytes().all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
            })
    }

    /// The caller a token names.
    pub async fn verify(&self, token: &str) -> Result<Verified, TokenError> {
        let key = remembered::key(&[token.as_bytes()]);
        if let Some(verified) = self.cache.get(&key, SystemTime::now()) {
            return Ok(verified);
        }
        self.asking.run(key, || self.ask_sts(token, key)).await
    }

    /// Checks the token's shape, asks STS who signed it, and remembers the answer under `key`.
    async fn ask_sts(&self, token: &str, key: [u8; 32]) -> Result<Verified, TokenError> {
        let now = SystemTime::now();
        let checked = sts_token::check_token(token, now, |endpoint| self.trusted(endpoint))
            .map_err(|error| TokenError::Invalid(error.0))?;
        let mut request = self
            .client
            .post(&checked.url)
            .header(reqwest::header::CONTENT_TYPE, sts_token::CONTENT_TYPE)
            .header(GATEWAY_ID_HEADER, &self.config.gateway_id)
            .body(sts_token::BODY);
        for (name, value) in &checked.headers {
            request = request.header(*name, value);
        }
        let response = request
            .send()
            .await
            .map_err(|error| TokenError::KeysUnavailable(format!("STS did not answer: {error}")))?;
        let status = response.status();
        let body = read_bounded(response).await?;
        if !status.is_success() {
            let detail = match (element(&body, "Code"), element(&body, "Message")) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                _ => body.chars().take(200).collect::<String>().trim().to_owned(),
            };
            return Err(if status.is_client_error() {
                TokenError::Invalid(format!(
                    "STS refused the token ({detail}); it may be for another gateway (the proxy's --gateway-id must be \
                     `{}`)",
                    self.config.gateway_id
                ))
            } else {
                TokenError::KeysUnavailable(format!("STS answered HTTP {status}"))
            });
        }
        let (Some(arn), Some(account)) = (element(&body, "Arn"), element(&body, "Account")) else {
            return Err(TokenError::KeysUnavailable("STS answered without an Arn and Account".to_owned()));
        };
        if !self.config.accounts.is_empty() && !self.config.accounts.contains(&account) {
            return Err(TokenError::Invalid(format!("callers of AWS account {account} are not accepted")));
        }
        let mut claims = Map::new();
        claims.insert("account".to_owned(), Value::String(account));
        claims.insert("arn".to_owned(), Value::String(arn.clone()));
        let verified: Verified = (arn.into(), Arc::new(claims));
        self.cache.insert(key, verified.clone(), Some(checked.expires), now);
        Ok(verified)
    }
}

async fn read_bounded(mut response: reqwest::Response) -> Result<String, TokenError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|error| TokenError::KeysUnavailable(error.to_string()))? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(TokenError::KeysUnavailable("STS's answer is too large".to_owned()));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// The text of the first `<name>…</name>` in an STS answer (plain values: ARNs, account ids,
/// error codes; XML entities decoded for the five predefined ones).
fn element(xml: &str, name: &str) -> Option<String> {
    let start = xml.find(&format!("<{name}>"))? + name.len() + 2;
    let end = start + xml[start..].find(&format!("</{name}>"))?;
    let text = xml[start..end].trim();
    Some(
        text.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sts_endpoints_are_trusted() {
        let verifier = IamVerifier::new(IamConfig {
            gateway_id: "g".into(),
            accounts: Vec::new(),
            sts_endpoints: vec!["http://127.0.0.1:4566".into()],
        })
        .unwrap_or_else(|error| panic!("{error}"));
        for trusted in ["https://sts.amazonaws.com", "https://sts.eu-west-1.amazonaws.com", "http://127.0.0.1:4566"] {
            assert!(verifier.trusted(trusted), "{trusted}");
        }
        for untrusted in [
            "http://sts.amazonaws.com",
            "https://sts.eu-west-1.amazonaws.com.evil.com",
            "https://evil.com/sts.amazonaws.com",
            "https://sts.a.b.amazonaws.com",
            "https://sts..amazonaws.com",
            "https://169.254.169.254",
            "http://127.0.0.1:4567",
        ] {
            assert!(!verifier.trusted(untrusted), "{untrusted}");
        }
    }

    #[test]
    fn sts_answers_give_their_elements() {
        let xml = "<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/a&amp;b</Arn>\
                   <Account>123456789012</Account></GetCallerIdentityResult></GetCallerIdentityResponse>";
        assert_eq!(element(xml, "Arn").as_deref(), Some("arn:aws:iam::123456789012:user/a&b"));
        assert_eq!(element(xml, "Account").as_deref(), Some("123456789012"));
        assert_eq!(element(xml, "UserId"), None);
    }
}

//! Authentication in `serve`: who the caller is, from the request's credentials: an API key
//! (`X-API-Key`, or `Authorization: Bearer` when it is not a JWT), HTTP Basic, a JWT bearer
//! token, or an STS identity token (`aws-sts.…`, AWS IAM through [`super::iam`]). On Lambda, API
//! Gateway's AWS_IAM check does this and the transport reads the IAM ARN from the event instead.
//! JWT and Basic are the `edge` feature's (the federation-only build has API keys and IAM).
//!
//! **Invariants:** secrets are never kept: API keys as their SHA-256, passwords as Argon2 hashes.
//! A credential that does not verify is refused, never ignored (no fall-back to anonymous).
//! Argon2 runs on the blocking pool, at most [`MAX_PASSWORD_CHECKS`] at once, and a verified
//! user and password is remembered (as a SHA-256) so that each request does not pay for it.

use std::{collections::HashMap, sync::Arc};

#[cfg(feature = "edge")]
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
#[cfg(feature = "edge")]
use base64::Engine as _;
use http::{HeaderMap, HeaderValue, header};
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use super::{config::AuthConfig, iam::IamVerifier};
#[cfg(feature = "edge")]
use super::{
    jwt::Verifier,
    remembered::{self, Remembered},
};

/// The longest credential header read (a JWT with many claims fits).
pub const MAX_CREDENTIAL_BYTES: usize = 16 * 1024;
/// Argon2 checks running at once; more wait.
#[cfg(feature = "edge")]
pub const MAX_PASSWORD_CHECKS: usize = 2;
/// Verified user and password pairs remembered.
#[cfg(feature = "edge")]
const MAX_REMEMBERED: usize = 1_024;
/// The header an API key may come in.
pub const API_KEY_HEADER: &str = "x-api-key";

/// How a caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    /// AWS IAM: API Gateway's SigV4 check on Lambda, an STS identity token in `serve`.
    Iam,
    /// A JWT bearer token.
    Jwt,
    /// An API key.
    ApiKey,
    /// HTTP Basic.
    Basic,
}

impl AuthKind {
    /// The name in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Iam => "iam",
            Self::Jwt => "jwt",
            Self::ApiKey => "api_key",
            Self::Basic => "basic",
        }
    }
}

/// An authenticated caller, put in the request's extensions.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// The IAM ARN, the token's subject, `key:<name>` or `user:<name>`.
    pub principal: Arc<str>,
    /// How they proved it.
    pub kind: AuthKind,
    /// A JWT's claims (for rules on claim values).
    pub claims: Option<Arc<Map<String, Value>>>,
}

/// A verified bearer token's principal and claims (a JWT's, or the STS answer's).
pub type Verified = (Arc<str>, Arc<Map<String, Value>>);

/// Why a bearer token (a JWT or an STS identity token) was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The token is not valid; the words say why.
    #[error("{0}")]
    Invalid(String),
    /// What checks tokens (the issuer's keys, STS) is out of reach, so no token can be checked now.
    #[error("the issuer's keys could not be fetched: {0}")]
    KeysUnavailable(String),
}

/// Why a request was not authenticated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No credential at all.
    #[error("this gateway needs credentials: {0}")]
    Missing(String),
    /// A credential that does not verify; `bearer` when it came as a bearer token.
    #[error("{message}")]
    Invalid {
        /// What is wrong with it.
        message: String,
        /// Whether it was a bearer token (the challenge then says `invalid_token`).
        bearer: bool,
    },
    /// The credential cannot be checked now (the issuer's keys are out of reach).
    #[error("{0}")]
    Unavailable(String),
}

/// Checks credentials against `[auth]`.
#[derive(Debug)]
pub struct Authenticator {
    api_keys: HashMap<[u8; 32], Arc<str>>,
    #[cfg(feature = "edge")]
    basic: Basic,
    #[cfg(feature = "edge")]
    jwt: Option<Verifier>,
    iam: Option<IamVerifier>,
}

/// HTTP Basic users, their Argon2 hashes, and the pairs that verified.
#[cfg(feature = "edge")]
#[derive(Debug)]
struct Basic {
    users: HashMap<String, String>,
    remembered: Remembered<Arc<str>>,
    password_checks: tokio::sync::Semaphore,
}

impl Authenticator {
    /// An authenticator for `config`.
    pub fn new(config: AuthConfig) -> Result<Self, reqwest::Error> {
        Ok(Self {
            api_keys: config.api_keys.into_iter().map(|(name, hash)| (hash, format!("key:{name}").into())).collect(),
            #[cfg(feature = "edge")]
            basic: Basic {
                users: config.users.into_iter().collect(),
                remembered: Remembered::new(MAX_REMEMBERED),
                password_checks: tokio::sync::Semaphore::new(MAX_PASSWORD_CHECKS),
            },
            #[cfg(feature = "edge")]
            jwt: config.jwt.map(Verifier::new).transpose()?,
            iam: config.iam.map(IamVerifier::new).transpose()?,
        })
    }

    /// Who sent `headers`.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Identity, AuthError> {
        let text = |name: header::HeaderName| -> Result<Option<&str>, AuthError> {
            let Some(value) = headers.get(&name) else { return Ok(None) };
            if value.len() > MAX_CREDENTIAL_BYTES {
                return Err(self.invalid(format!("the {name} header is longer than {MAX_CREDENTIAL_BYTES} bytes")));
            }
            value.to_str().map(Some).map_err(|_| self.invalid(format!("the {name} header is not ASCII")))
        };
        if let Some(key) = text(header::HeaderName::from_static(API_KEY_HEADER))? {
            return self.api_key(key.trim(), false);
        }
        let Some(authorization) = text(header::AUTHORIZATION)? else {
            return Err(AuthError::Missing(self.accepted()));
        };
        let (scheme, credential) = authorization.trim().split_once(' ').unwrap_or((authorization, ""));
        let credential = credential.trim();
        #[cfg(feature = "edge")]
        if scheme.eq_ignore_ascii_case("basic") && self.takes_basic() {
            return self.basic(credential).await;
        }
        if scheme.eq_ignore_ascii_case("bearer") {
            if let Some(iam) = &self.iam
                && credential.starts_with(mcp_sigv4::sts_token::TOKEN_PREFIX)
            {
                return match iam.verify(credential).await {
                    Ok((principal, claims)) => Ok(Identity { principal, kind: AuthKind::Iam, claims: Some(claims) }),
                    Err(TokenError::Invalid(message)) => Err(AuthError::Invalid { message, bearer: true }),
                    Err(TokenError::KeysUnavailable(message)) => Err(AuthError::Unavailable(message)),
                };
            }
            #[cfg(feature = "edge")]
            if let Some(jwt) = &self.jwt
                && credential.matches('.').count() == 2
            {
                return match jwt.verify(credential).await {
                    Ok((principal, claims)) => Ok(Identity { principal, kind: AuthKind::Jwt, claims: Some(claims) }),
                    Err(TokenError::Invalid(message)) => Err(AuthError::Invalid { message, bearer: true }),
                    Err(error @ TokenError::KeysUnavailable(_)) => Err(AuthError::Unavailable(error.to_string())),
                };
            }
            self.api_key(credential, true)
        } else {
            Err(self.invalid(format!("`Authorization: {scheme}` is not accepted; {}", self.accepted())))
        }
    }

    fn invalid(&self, message: String) -> AuthError {
        AuthError::Invalid { message, bearer: false }
    }

    /// Whether JWTs are accepted.
    fn takes_jwt(&self) -> bool {
        #[cfg(feature = "edge")]
        return self.jwt.is_some();
        #[cfg(not(feature = "edge"))]
        false
    }

    /// Whether HTTP Basic is accepted.
    fn takes_basic(&self) -> bool {
        #[cfg(feature = "edge")]
        return !self.basic.users.is_empty();
        #[cfg(not(feature = "edge"))]
        false
    }

    /// The credentials accepted, in words.
    fn accepted(&self) -> String {
        let mut kinds = Vec::new();
        if self.takes_jwt() {
            kinds.push("a JWT as `Authorization: Bearer <token>`");
        }
        if !self.api_keys.is_empty() {
            kinds.push("an API key as `X-API-Key: <key>` or `Authorization: Bearer <key>`");
        }
        if self.takes_basic() {
            kinds.push("a user and password as `Authorization: Basic`");
        }
        if self.iam.is_some() {
            kinds.push("AWS IAM credentials through `mcp-sigv4-proxy --auth sts`");
        }
        format!("send {}", kinds.join(", or "))
    }

    fn api_key(&self, key: &str, bearer: bool) -> Result<Identity, AuthError> {
        let hash: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        match self.api_keys.get(&hash) {
            Some(principal) => Ok(Identity { principal: principal.clone(), kind: AuthKind::ApiKey, claims: None }),
            None if self.api_keys.is_empty() => {
                let message = if self.takes_jwt() {
                    "the bearer token is not a JWT"
                } else {
                    "the bearer token is not an STS identity token (`mcp-sigv4-proxy --auth sts` makes them)"
                };
                Err(AuthError::Invalid { message: message.to_owned(), bearer })
            }
            None => Err(AuthError::Invalid { message: "unknown API key".to_owned(), bearer }),
        }
    }

    #[cfg(feature = "edge")]
    async fn basic(&self, credential: &str) -> Result<Identity, AuthError> {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(credential)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| self.invalid("`Authorization: Basic` must carry base64 of `user:password`".to_owned()))?;
        let (user, password) = decoded
            .split_once(':')
            .ok_or_else(|| self.invalid("`Authorization: Basic` must carry base64 of `user:password`".to_owned()))?;
        let wrong = || self.invalid("wrong user name or password".to_owned());
        let Some(hash) = self.basic.users.get(user) else { return Err(wrong()) };
        let pair = remembered::key(&[user.as_bytes(), password.as_bytes()]);
        if let Some(principal) = self.basic.remembered.get(&pair, std::time::SystemTime::now()) {
            return Ok(Identity { principal, kind: AuthKind::Basic, claims: None });
        }
        let _permit = self.basic.password_checks.acquire().await.map_err(|_| wrong())?;
        let (hash, password) = (hash.clone(), password.to_owned());
        let verified = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash)
                .is_ok_and(|parsed| argon2::Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
        })
        .await
        .unwrap_or(false);
        if !verified {
            return Err(wrong());
        }
        let principal: Arc<str> = format!("user:{user}").into();
        self.basic.remembered.insert(pair, principal.clone(), None, std::time::SystemTime::now());
        Ok(Identity { principal, kind: AuthKind::Basic, claims: None })
    }

    /// The `WWW-Authenticate` challenges of a 401 answering `error`, for a gateway reached at
    /// `base` (`https://host`): the MCP authorization spec's `resource_metadata` pointer when JWTs
    /// are accepted.
    pub fn challenges(&self, base: &str, error: &AuthError) -> Vec<HeaderValue> {
        let quoted = |text: &str| text.replace(['"', '\\'], "'");
        let bearer_error = match error {
            AuthError::Invalid { message, bearer: true } => {
                format!(", error=\"invalid_token\", error_description=\"{}\"", quoted(message))
            }
            _ => String::new(),
        };
        let mut challenges = Vec::new();
        if self.takes_jwt() {
            challenges.push(format!("Bearer resource_metadata=\"{base}{METADATA_PATH}\"{bearer_error}"));
        } else if !self.api_keys.is_empty() || self.iam.is_some() {
            challenges.push(format!("Bearer realm=\"mcp-gateway\"{bearer_error}"));
        }
        if self.takes_basic() {
            challenges.push("Basic realm=\"mcp-gateway\", charset=\"UTF-8\"".to_owned());
        }
        challenges.into_iter().filter_map(|challenge| HeaderValue::from_str(&challenge).ok()).collect()
    }

    /// OAuth 2.0 protected-resource metadata (RFC 9728) for a gateway reached at `base`, when it
    /// accepts JWTs.
    pub fn resource_metadata(&self, base: &str) -> Option<Value> {
        #[cfg(feature = "edge")]
        if let Some(jwt) = &self.jwt {
            let config = jwt.config();
            let resource = config.resource.clone().unwrap_or_else(|| format!("{base}/mcp"));
            let mut metadata = serde_json::json!({
                "resource": resource,
                "authorization_servers": config.authorization_servers,
                "bearer_methods_supported": ["header"],
                "resource_name": "mcp-gateway",
            });
            if !config.scopes.is_empty() {
                metadata["scopes_supported"] = serde_json::json!(config.scopes);
            }
            return Some(metadata);
        }
        let _ = base; // only JWT issuers have metadata
        None
    }
}

/// Where the protected-resource metadata is served.
pub const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

/// The hex SHA-256 of an API key, for `[[auth.api_key]] sha256`.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.trim().as_bytes()))
}

/// An Argon2id hash (PHC string) of `password`, for `[[auth.basic]] password_hash`.
#[cfg(feature = "edge")]
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|error| anyhow::anyhow!("no random bytes for the salt: {error}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|error| anyhow::anyhow!("{error}"))?;
    let hash = argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|error| anyhow::anyhow!("cannot hash the password: {error}"))?;
    Ok(hash.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::config::parse;

    fn authenticator(text: &str) -> Authenticator {
        Authenticator::new(
            parse("access.toml", text)
                .unwrap_or_else(|error| panic!("{error:?}"))
                .auth
                .unwrap_or_else(|| panic!("no [auth]")),
        )
        .unwrap_or_else(|error| panic!("{error:?}"))
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| {
                (
                    header::HeaderName::from_bytes(name.as_bytes()).unwrap_or_else(|error| panic!("{error:?}")),
                    HeaderValue::from_str(value).unwrap_or_else(|error| panic!("{error:?}")),
                )
            })
            .collect()
    }

    #[tokio::test]
    async fn api_keys_verify_only_their_own_secret() {
        let authenticator =
            authenticator(&format!("[auth]\n[[auth.api_key]]\nname = \"ci\"\nsha256 = \"{}\"\n", hash_key("k-123")));
        let by_header = authenticator
            .authenticate(&headers(&[("x-api-key", "k-123")]))
            .await
            .unwrap_or_else(|error| panic!("{error:?}"));
        assert_eq!((&*by_header.principal, by_header.kind), ("key:ci", AuthKind::ApiKey));
        let by_bearer = authenticator
            .authenticate(&headers(&[("authorization", "Bearer k-123")]))
            .await
            .unwrap_or_else(|error| panic!("{error:?}"));
        assert_eq!(&*by_bearer.principal, "key:ci");
        let wrong = authenticator
            .authenticate(&headers(&[("x-api-key", "k-124")]))
            .await
            .err()
            .unwrap_or_else(|| panic!("accepted"));
        assert_eq!(wrong.to_string(), "unknown API key");
        let missing = authenticator.authenticate(&HeaderMap::new()).await.err().unwrap_or_else(|| panic!("accepted"));
        assert!(matches!(missing, AuthError::Missing(_)), "{missing:?}");
        let challenges = authenticator.challenges("http://127.0.0.1:8080", &missing);
        assert_eq!(challenges.len(), 1, "{challenges:?}");
        assert!(authenticator.resource_metadata("http://x").is_none());
    }

    #[cfg(feature = "edge")]
    #[tokio::test]
    async fn passwords_verify_only_their_own_secret() {
        let password_hash = hash_password("correct horse").unwrap_or_else(|error| panic!("{error:?}"));
        let authenticator = authenticator(&format!(
            "[auth]\n[[auth.api_key]]\nname = \"ci\"\nsha256 = \"{}\"\n[[auth.basic]]\nuser = \"alice\"\npassword_hash = \"{password_hash}\"\n",
            hash_key("k-123")
        ));
        let basic = |user_password: &str| {
            let encoded = base64::engine::general_purpose::STANDARD.encode(user_password);
            headers(&[("authorization", &format!("Basic {encoded}"))])
        };
        for _ in 0..2 {
            let alice = authenticator
                .authenticate(&basic("alice:correct horse"))
                .await
                .unwrap_or_else(|error| panic!("{error:?}"));
            assert_eq!((&*alice.principal, alice.kind), ("user:alice", AuthKind::Basic));
        }
        let wrong =
            authenticator.authenticate(&basic("alice:correct horsE")).await.err().unwrap_or_else(|| panic!("accepted"));
        assert_eq!(wrong.to_string(), "wrong user name or password");
        assert!(authenticator.authenticate(&basic("bob:correct horse")).await.is_err());

        let missing = authenticator.authenticate(&HeaderMap::new()).await.err().unwrap_or_else(|| panic!("accepted"));
        let challenges = authenticator.challenges("http://127.0.0.1:8080", &missing);
        assert_eq!(challenges.len(), 2, "{challenges:?}");
    }
}

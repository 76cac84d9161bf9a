//! JWT bearer tokens: the signature against the issuer's keys (a JWKS document from a URL or a
//! file), the algorithm allow-list, `exp`/`nbf` (with leeway), `iss` and `aud`.
//!
//! **Invariants:** a token signed with an algorithm outside the allow-list, by a key not in the
//! key set, or missing `exp`, `iss` or `aud` is refused. Keys fetched from a URL are kept for
//! [`KEYS_MAX_AGE`] and fetched again at once for a token naming an unknown `kid` (a rotation),
//! at most once per [`REFETCH_INTERVAL`], so tokens with made-up `kid`s cannot make the gateway
//! hammer the issuer. A token that verified is remembered (under its SHA-256, at most
//! [`MAX_REMEMBERED`]) until its `exp`, and forgotten whenever the key set changes, so a client
//! reusing its token pays for the signature check once.

use std::{
    sync::{Arc, RwLock},
    time::{Duration, Instant, SystemTime},
};

use jsonwebtoken::{
    DecodingKey, Validation, decode, decode_header,
    errors::ErrorKind,
    jwk::{Jwk, JwkSet},
};
use serde_json::{Map, Value};

use super::{
    authn::{TokenError, Verified},
    config::{JwtConfig, KeySource},
};

/// How long fetched keys are used before they are fetched again.
pub const KEYS_MAX_AGE: Duration = Duration::from_secs(600);
/// The least time between two fetches of the key set.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(5);
/// The largest JWKS document read.
const MAX_JWKS_BYTES: usize = 1 << 20;
/// How long a fetch of the key set may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Verified tokens remembered.
pub const MAX_REMEMBERED: usize = 10_000;

/// Checks JWTs of one issuer configuration.
#[derive(Debug)]
pub struct Verifier {
    config: JwtConfig,
    /// One validation per accepted algorithm: the library refuses a key whose family differs
    /// from any algorithm of the validation, so each token is checked against its own.
    validations: Vec<(jsonwebtoken::Algorithm, Validation)>,
    keys: Keys,
    /// SHA-256 of a verified token → who it names, and its `exp` (seconds since the epoch).
    remembered: super::remembered::Remembered<Verified>,
}

#[derive(Debug)]
enum Keys {
    Fixed(Arc<JwkSet>),
    Fetched { url: String, client: reqwest::Client, state: RwLock<Fetched>, fetching: tokio::sync::Mutex<()> },
}

#[derive(Debug, Default)]
struct Fetched {
    set: Option<(Arc<JwkSet>, Instant)>,
    last_attempt: Option<Instant>,
}

impl Verifier {
    /// A verifier for `config`.
    pub fn new(config: JwtConfig) -> Result<Self, reqwest::Error> {
        let validations = config
            .algorithms
            .iter()
            .map(|&algorithm| {
                let mut validation = Validation::new(algorithm);
                validation.set_issuer(&config.issuers);
                validation.set_audience(&config.audiences);
                validation.set_required_spec_claims(&["exp", "iss", "aud"]);
                validation.validate_nbf = true;
                validation.leeway = config.leeway.as_secs();
                (algorithm, validation)
            })
            .collect();
        let keys = match &config.keys {
            KeySource::File(set) => Keys::Fixed(Arc::new(set.clone())),
            KeySource::Url(url) => Keys::Fetched {
                url: url.clone(),
                client: crate::outbound::client(FETCH_TIMEOUT)?,
                state: RwLock::new(Fetched::default()),
                fetching: tokio::sync::Mutex::new(()),
            },
        };
        Ok(Self { config, validations, keys, remembered: super::remembered::Remembered::new(MAX_REMEMBERED) })
    }

    /// The configuration (for the protected-resource metadata).
    pub fn config(&self) -> &JwtConfig {
        &self.config
    }

    /// The token's principal and claims when it is valid.
    pub async fn verify(&self, token: &str) -> Result<Verified, TokenError> {
        let key = super::remembered::key(&[token.as_bytes()]);
        let now = SystemTime::now();
        if let Some(verified) = self.remembered.get(&key, now) {
            return Ok(verified);
        }
        let verified = self.check(token).await?;
        let exp = verified.1.get("exp").and_then(Value::as_u64).unwrap_or(0);
        let until = SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(exp));
        self.remembered.insert(key, verified.clone(), Some(until.unwrap_or(now)), now);
        Ok(verified)
    }

    /// Checks a token: signature, algorithm, claims.
    async fn check(&self, token: &str) -> Result<Verified, TokenError> {
        let invalid = |message: &str| TokenError::Invalid(message.to_owned());
        let header = decode_header(token).map_err(|_| {
            invalid("the bearer token is not a JWT this gateway can check (malformed, or an algorithm such as `none`)")
        })?;
        let Some((_, validation)) = self.validations.iter().find(|(algorithm, _)| *algorithm == header.alg) else {
            return Err(TokenError::Invalid(format!("tokens signed with {:?} are not accepted", header.alg)));
        };
        let jwk = self.key(header.kid.as_deref()).await?;
        let key = DecodingKey::from_jwk(&jwk).map_err(|_| invalid("the issuer's key for this token is unusable"))?;
        let data = decode::<Map<String, Value>>(token, &key, validation).map_err(|error| {
            TokenError::Invalid(match error.kind() {
                ErrorKind::ExpiredSignature => "the token has expired".to_owned(),
                ErrorKind::ImmatureSignature => "the token is not valid yet (`nbf`)".to_owned(),
                ErrorKind::InvalidAudience => "the token is meant for another audience (`aud`)".to_owned(),
                ErrorKind::InvalidIssuer => "the token comes from an issuer this gateway does not trust".to_owned(),
                ErrorKind::InvalidSignature => "the token's signature does not verify".to_owned(),
                ErrorKind::InvalidAlgorithm => "the token's algorithm does not match its key".to_owned(),
                ErrorKind::MissingRequiredClaim(claim) => format!("the token has no `{claim}` claim"),
                _ => format!("the token is not valid: {error}"),
            })
        })?;
        let claim = &self.config.principal_claim;
        let principal = match data.claims.get(claim) {
            Some(Value::String(principal)) if !principal.is_empty() && principal.len() <= 512 => principal.as_str(),
            _ => return Err(TokenError::Invalid(format!("the token has no `{claim}` claim naming the caller"))),
        };
        Ok((principal.into(), Arc::new(data.claims)))
    }

    /// The key `kid` names (or the only key, for a token without `kid`).
    async fn key(&self, kid: Option<&str>) -> Result<Jwk, TokenError> {
        let unknown = || match kid {
            Some(kid) => TokenError::Invalid(format!("the token names key `{kid}`, which the issuer does not list")),
            None => TokenError::Invalid("the token names no key (`kid`) and the issuer lists several".to_owned()),
        };
        let (url, client, state, fetching) = match &self.keys {
            Keys::Fixed(set) => return find(set, kid).ok_or_else(unknown),
            Keys::Fetched { url, client, state, fetching } => (url, client, state, fetching),
        };
        let cached = |state: &RwLock<Fetched>| {
            let state = state.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            let fresh = state.set.as_ref().filter(|(_, at)| at.elapsed() < KEYS_MAX_AGE);
            (fresh.and_then(|(set, _)| find(set, kid)), state.last_attempt)
        };
        if let (Some(jwk), _) = cached(state) {
            return Ok(jwk);
        }
        let _one_fetch_at_a_time = fetching.lock().await;
        let (found, last_attempt) = cached(state);
        if let Some(jwk) = found {
            return Ok(jwk); // another request fetched them meanwhile
        }
        if last_attempt.is_some_and(|at| at.elapsed() < REFETCH_INTERVAL) {
            let stale = state.read().unwrap_or_else(std::sync::PoisonError::into_inner).set.clone();
            return match stale {
                Some((set, _)) => find(&set, kid).ok_or_else(unknown),
                None => Err(TokenError::KeysUnavailable("the last fetch failed; trying again shortly".to_owned())),
            };
        }
        let fetched = fetch(client, url).await;
        let mut state = state.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        state.last_attempt = Some(Instant::now());
        match fetched {
            Ok(set) => {
                tracing::info!(url = %url, keys = set.keys.len(), "fetched the JWT issuer's keys");
                let changed = state.set.as_ref().is_none_or(|(old, _)| **old != set);
                if changed {
                    // Tokens of a retired key must not outlive it here.
                    self.remembered.clear();
                }
                let set = Arc::new(set);
                state.set = Some((set.clone(), Instant::now()));
                find(&set, kid).ok_or_else(unknown)
            }
            Err(error) => {
                tracing::warn!(url = %url, %error, "cannot fetch the JWT issuer's keys");
                match &state.set {
                    Some((set, _)) => find(set, kid).ok_or_else(unknown),
                    None => Err(TokenError::KeysUnavailable(error)),
                }
            }
        }
    }
}

fn find(set: &JwkSet, kid: Option<&str>) -> Option<Jwk> {
    match kid {
        Some(kid) => set.find(kid).cloned(),
        None if set.keys.len() == 1 => set.keys.first().cloned(),
        None => None,
    }
}

async fn fetch(client: &reqwest::Client, url: &str) -> Result<JwkSet, String> {
    let response = client.get(url).send().await.map_err(|error| format!("GET {url}: {error}"))?;
    if !response.status().is_success() {
        return Err(format!("GET {url}: HTTP {}", response.status()));
    }
    if response.content_length().is_some_and(|length| length > MAX_JWKS_BYTES as u64) {
        return Err(format!("GET {url}: the key set is larger than {MAX_JWKS_BYTES} bytes"));
    }
    let mut body = Vec::new();
    let mut response = response;
    while let Some(chunk) = response.chunk().await.map_err(|error| format!("GET {url}: {error}"))? {
        if body.len() + chunk.len() > MAX_JWKS_BYTES {
            return Err(format!("GET {url}: the key set is larger than {MAX_JWKS_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|error| format!("GET {url}: not a JWKS document: {error}"))
}

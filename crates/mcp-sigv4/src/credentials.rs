//! AWS credentials: the full default chain (env, profile, SSO, assume-role, credential_process,
//! container and instance roles), built lazily on first use and cached until shortly before
//! they expire.

use std::time::{Duration, SystemTime};

use aws_config::{BehaviorVersion, Region, default_provider::credentials::DefaultCredentialsChain};
use aws_credential_types::{
    Credentials,
    provider::{ProvideCredentials, error::CredentialsError},
};
use tokio::sync::{Mutex, OnceCell};

/// Refresh credentials this long before they expire (less for very short-lived ones).
const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// Lazily resolved, cached credentials.
#[derive(Debug)]
pub struct CredentialSource {
    profile: Option<String>,
    region: String,
    /// A role assumed with the chain's credentials, when set.
    role_arn: Option<String>,
    chain: OnceCell<DefaultCredentialsChain>,
    assumed: OnceCell<aws_config::sts::AssumeRoleProvider>,
    cached: Mutex<Option<Cached>>,
}

#[derive(Debug, Clone)]
struct Cached {
    credentials: Credentials,
    fetched: SystemTime,
}

impl Cached {
    fn fresh(&self, now: SystemTime) -> bool {
        let Some(expiry) = self.credentials.expiry() else {
            return true;
        };
        let lifetime = expiry.duration_since(self.fetched).unwrap_or_default();
        let margin = REFRESH_MARGIN.min(lifetime / 2);
        now + margin < expiry
    }
}

/// Why no credentials could be had, with what to do about it.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct NoCredentials {
    /// What went wrong and how to fix it.
    pub message: String,
}

impl CredentialSource {
    /// A source for `profile` (or the default chain's choice) in `region`; does no IO.
    pub fn new(profile: Option<String>, region: String) -> Self {
        Self {
            profile,
            region,
            role_arn: None,
            chain: OnceCell::new(),
            assumed: OnceCell::new(),
            cached: Mutex::new(None),
        }
    }

    /// Credentials of `role_arn`, assumed (STS `AssumeRole`) with the default chain's; does no IO.
    pub fn assuming(role_arn: &str, region: String) -> Self {
        Self { role_arn: Some(role_arn.to_owned()), ..Self::new(None, region) }
    }

    /// Current credentials, resolving or refreshing them when needed.
    pub async fn get(&self) -> Result<Credentials, NoCredentials> {
        let mut cached = self.cached.lock().await;
        let now = SystemTime::now();
        if let Some(entry) = cached.as_ref().filter(|entry| entry.fresh(now)) {
            return Ok(entry.credentials.clone());
        }
        let credentials = self.resolve().await?;
        tracing::debug!(
            access_key = %mask(credentials.access_key_id()),
            expires = ?credentials.expiry(),
            "resolved AWS credentials"
        );
        *cached = Some(Cached { credentials: credentials.clone(), fetched: now });
        Ok(credentials)
    }

    /// Drops the cached credentials so the next request resolves them again.
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }

    /// The profile in use, for hints.
    pub fn profile(&self) -> &str {
        self.profile.as_deref().unwrap_or("default")
    }

    async fn resolve(&self) -> Result<Credentials, NoCredentials> {
        if let Some(role) = &self.role_arn {
            let provider = self
                .assumed
                .get_or_init(|| async {
                    aws_config::sts::AssumeRoleProvider::builder(role.clone())
                        .session_name("mcp-gateway")
                        .region(Region::new(self.region.clone()))
                        .build()
                        .await
                })
                .await;
            return provider.provide_credentials().await.map_err(|error| NoCredentials {
                message: format!("could not assume the role {role}: {}", aws_error_chain(&error)),
            });
        }
        // The default chain takes environment keys first; when they are set and no profile was
        // asked for, read them directly instead of building every provider of the chain (which
        // loads TLS roots and config files: tens of milliseconds at start-up).
        if self.profile.is_none() && std::env::var_os("AWS_ACCESS_KEY_ID").is_some() {
            let environment = aws_config::environment::credentials::EnvironmentVariableCredentialsProvider::new();
            if let Ok(credentials) = environment.provide_credentials().await {
                return Ok(credentials);
            }
        }
        let chain = self
            .chain
            .get_or_init(|| async {
                let config = aws_config::provider_config::ProviderConfig::default()
                    .with_region(Some(Region::new(self.region.clone())))
                    .with_behavior_version(Some(BehaviorVersion::latest()));
                let mut builder = DefaultCredentialsChain::builder().configure(config);
                if let Some(profile) = &self.profile {
                    builder = builder.profile_name(profile);
                }
                builder.build().await
            })
            .await;
        chain.provide_credentials().await.map_err(|error| NoCredentials { message: explain(&error, self.profile()) })
    }
}

fn explain(error: &CredentialsError, profile: &str) -> String {
    let detail = aws_error_chain(error);
    match error {
        CredentialsError::CredentialsNotLoaded(_) => format!(
            "no AWS credentials found ({detail}); set AWS_PROFILE, run `aws configure`, or `aws sso login --profile {profile}`"
        ),
        CredentialsError::ProviderTimedOut(_) => {
            format!("timed out loading AWS credentials ({detail}); check network access to the credential source")
        }
        _ if cfg!(not(feature = "sso")) => format!(
            "could not load AWS credentials for profile `{profile}`: {detail}; this build has no SSO support (the \
             federation-only build for Lambda): use environment credentials, a role, or the full build"
        ),
        _ => format!(
            "could not load AWS credentials for profile `{profile}`: {detail}; if it uses SSO, run `aws sso login --profile {profile}`"
        ),
    }
}

/// The error and its sources, joined.
pub fn aws_error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
        source = inner.source();
    }
    parts.join(": ")
}

/// `AKIA…MPLE`: enough to recognise a key, not to use it.
pub fn mask(access_key: &str) -> String {
    if access_key.len() <= 8 {
        return "****".to_owned();
    }
    format!("{}…{}", &access_key[..4], &access_key[access_key.len() - 4..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials(expiry: Option<SystemTime>) -> Credentials {
        Credentials::new("AKIAIOSFODNN7EXAMPLE", "secret", None, expiry, "test")
    }

    #[test]
    fn cache_refreshes_before_expiry() {
        let now = SystemTime::now();
        let long = Cached { credentials: credentials(Some(now + Duration::from_secs(3600))), fetched: now };
        assert!(long.fresh(now));
        assert!(long.fresh(now + Duration::from_secs(3600 - 301)));
        assert!(!long.fresh(now + Duration::from_secs(3600 - 299)));
        let short = Cached { credentials: credentials(Some(now + Duration::from_secs(4))), fetched: now };
        assert!(short.fresh(now + Duration::from_secs(1)));
        assert!(!short.fresh(now + Duration::from_secs(3)));
        let static_keys = Cached { credentials: credentials(None), fetched: now };
        assert!(static_keys.fresh(now + Duration::from_secs(86_400)));
    }

    #[test]
    fn masks_keys() {
        assert_eq!(mask("AKIAIOSFODNN7EXAMPLE"), "AKIA…MPLE");
        assert_eq!(mask("short"), "****");
    }
}

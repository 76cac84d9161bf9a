//! Who may call what, and how often: the access file (`--access` / `MCP_ACCESS`).
//!
//! `config` reads the file; `authn` (with `jwt`, the `edge` feature's, and `iam`) turns a request's credentials into an
//! [`authn::Identity`] in `serve` (the HTTP transport runs it before any route but the health and
//! metadata ones); `rules` decides whether a caller may see and call a tool, resource or prompt;
//! `limits` keeps token buckets per principal, tool and globally. [`Policy`] (rules and limits)
//! is part of the core, so Lambda, `serve` and `stdio` apply the same rules.

pub mod authn;
pub mod config;
pub mod iam;
#[cfg(feature = "edge")]
pub mod jwt;
pub mod limits;
pub mod remembered;
pub mod rules;

pub use config::AccessConfig;
pub use limits::{Limited, Limits};
pub use rules::{Denied, Rules, Target};

use crate::settings_file::{ConfigError, read_text};

/// The rules and limits every request passes.
#[derive(Debug, Default)]
pub struct Policy {
    /// Who may call what.
    pub rules: Rules,
    /// How often.
    pub limits: Limits,
}

impl Policy {
    /// The policy of an access file.
    pub fn new(config: &AccessConfig) -> Self {
        Self { rules: Rules::new(config.rules.clone()), limits: Limits::new(config.limits.clone()) }
    }
}

/// Reads and validates the access file at `source`: a local path or `s3://bucket/key`.
pub async fn load(source: &str) -> Result<AccessConfig, ConfigError> {
    config::parse(source, &read_text(source).await?)
}

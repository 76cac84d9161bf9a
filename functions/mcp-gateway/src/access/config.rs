//! The access file (TOML, `--access` / `MCP_ACCESS`): `[auth]` (who the caller is),
//! `[authorization]` (what they may call) and `[[limit]]` (how often), validated whole before
//! anything starts. Every problem is reported with the file and line.

use std::{collections::BTreeMap, time::Duration};

use globset::{Glob, GlobMatcher};
use serde::Deserialize;
use toml::Spanned;

use crate::settings_file::{ConfigError, Lines};

/// The most API keys, users, rules or limits one file may hold.
const MAX_ENTRIES: usize = 1_000;
/// The most requests per period one limit may allow, and the largest burst.
const MAX_RATE: u32 = 1_000_000;

/// The whole access file, validated.
#[derive(Debug, Clone, Default)]
pub struct AccessConfig {
    /// How `serve` authenticates callers; `None` when the file has no `[auth]`.
    pub auth: Option<AuthConfig>,
    /// Who may call what.
    pub rules: RulesConfig,
    /// Rate limits, in file order.
    pub limits: Vec<LimitConfig>,
    /// The result cache.
    pub cache: crate::result_cache::CacheConfig,
}

/// `[auth]`: the credentials `serve` accepts (any of them; at least one kind).
#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    /// API keys: the SHA-256 of each key and its name (the principal is `key:<name>`).
    pub api_keys: Vec<(String, [u8; 32])>,
    /// HTTP Basic users: name and Argon2 PHC hash of the password (the principal is `user:<name>`).
    #[cfg(feature = "edge")]
    pub users: Vec<(String, String)>,
    /// JWT bearer tokens.
    #[cfg(feature = "edge")]
    pub jwt: Option<JwtConfig>,
    /// AWS IAM through signed STS `GetCallerIdentity` tokens (`mcp-sigv4-proxy --auth sts`).
    pub iam: Option<IamConfig>,
}

impl AuthConfig {
    /// What `[auth]` accepts, in one line (`access check`).
    pub fn summary(&self) -> String {
        let mut parts = vec![format!("{} API keys", self.api_keys.len())];
        #[cfg(feature = "edge")]
        {
            parts.push(format!("{} users", self.users.len()));
            parts.push(match &self.jwt {
                Some(jwt) => format!("JWT from {}", jwt.issuers.join(", ")),
                None => "JWT off".to_owned(),
            });
        }
        parts.push(match &self.iam {
            Some(iam) => format!("IAM for gateway id `{}`", iam.gateway_id),
            None => "IAM off".to_owned(),
        });
        parts.join(", ")
    }
}

/// `[auth.iam]`.
#[derive(Debug, Clone)]
pub struct IamConfig {
    /// The id tokens must be bound to (the proxy's `--gateway-id`, by default its endpoint's
    /// host and port).
    pub gateway_id: String,
    /// The AWS accounts whose callers are accepted; empty: any.
    pub accounts: Vec<String>,
    /// STS endpoints trusted besides `https://sts.amazonaws.com` and
    /// `https://sts.<region>.amazonaws.com` (`scheme://host[:port]`, e.g. a VPC endpoint).
    pub sts_endpoints: Vec<String>,
}

/// `[auth.jwt]`.
#[cfg(feature = "edge")]
#[derive(Debug, Clone)]
pub struct JwtConfig {
    /// The issuers accepted (`iss`).
    pub issuers: Vec<String>,
    /// The audiences accepted (`aud`; a token must name one).
    pub audiences: Vec<String>,
    /// The signature algorithms accepted.
    pub algorithms: Vec<jsonwebtoken::Algorithm>,
    /// Where the verification keys come from.
    pub keys: KeySource,
    /// The claim naming the principal (`sub` by default).
    pub principal_claim: String,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway: Duration,
    /// This resource's identifier for RFC 9728 metadata (default: `<scheme>://<host>/mcp` of the
    /// request).
    pub resource: Option<String>,
    /// The authorization servers clients are sent to (default: the issuers).
    pub authorization_servers: Vec<String>,
    /// The scopes advertised in the metadata (none by default).
    pub scopes: Vec<String>,
}

/// Where JWT verification keys come from.
#[cfg(feature = "edge")]
#[derive(Debug, Clone)]
pub enum KeySource {
    /// A JWKS document fetched over HTTP(S), cached, fetched again on an unknown `kid`.
    Url(String),
    /// A JWKS document read once from a file.
    File(jsonwebtoken::jwk::JwkSet),
}

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// The rule lets the call through.
    Allow,
    /// The rule refuses it.
    Deny,
}

/// `[authorization]`: the default and the rules.
#[derive(Debug, Clone)]
pub struct RulesConfig {
    /// What happens when no rule matches.
    pub default: Effect,
    /// The rules, in file order (deny wins whatever the order).
    pub rules: Vec<RuleConfig>,
}

impl Default for RulesConfig {
    fn default() -> Self {
        Self { default: Effect::Allow, rules: Vec::new() }
    }
}

/// One `[[authorization.rule]]`: it matches a call when every part it has matches.
#[derive(Debug, Clone)]
pub struct RuleConfig {
    /// The 1-based position of the rule in the file (named in refusals and logs).
    pub number: usize,
    /// Allow or deny.
    pub effect: Effect,
    /// Principal globs (any matches); `None`: any caller, anonymous ones too.
    pub principals: Option<Vec<GlobMatcher>>,
    /// JWT claims and the values accepted for each (every claim must hold one of its values).
    pub claims: BTreeMap<String, Vec<String>>,
    /// Tool name globs (exposed names); `None`: the rule says nothing about tools.
    pub tools: Option<Vec<GlobMatcher>>,
    /// Resource URI globs.
    pub resources: Option<Vec<GlobMatcher>>,
    /// Prompt name globs.
    pub prompts: Option<Vec<GlobMatcher>>,
}

/// What a limit keeps a bucket per.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LimitScope {
    /// One bucket for everybody.
    Global,
    /// One bucket per principal (per client address for anonymous callers).
    Principal,
    /// One bucket per tool.
    Tool,
}

/// One `[[limit]]`: a token bucket (or one per key) refilled at `rate` per `per`.
#[derive(Debug, Clone)]
pub struct LimitConfig {
    /// Its name, in refusals and metrics.
    pub name: String,
    /// What it keeps a bucket per.
    pub scope: LimitScope,
    /// Only `tools/call` of these tools count; `None`: every request counts.
    pub tools: Option<Vec<GlobMatcher>>,
    /// Requests allowed per `per`.
    pub rate: u32,
    /// The period of `rate`.
    pub per: Duration,
    /// Requests allowed at once after a quiet spell.
    pub burst: u32,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    auth: Option<Spanned<RawAuth>>,
    #[serde(default)]
    authorization: Option<RawAuthorization>,
    #[serde(default)]
    limit: Vec<Spanned<RawLimit>>,
    cache: Option<RawCache>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCache {
    max_entries: Option<Spanned<i64>>,
    max_mib: Option<Spanned<i64>>,
    resources: Option<bool>,
    #[serde(default)]
    tool: Vec<Spanned<RawToolCaching>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToolCaching {
    tools: Vec<Spanned<String>>,
    ttl: Spanned<String>,
    scope: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    #[serde(default)]
    api_key: Vec<Spanned<RawApiKey>>,
    #[serde(default)]
    basic: Vec<Spanned<RawUser>>,
    jwt: Option<Spanned<RawJwt>>,
    iam: Option<Spanned<RawIam>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIam {
    gateway_id: Spanned<String>,
    #[serde(default)]
    accounts: Vec<Spanned<String>>,
    #[serde(default)]
    sts_endpoints: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApiKey {
    name: Spanned<String>,
    sha256: Spanned<String>,
}

// Read only by the `edge` feature; without it the section is refused by where it is.
#[cfg_attr(not(feature = "edge"), allow(dead_code))]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    user: Spanned<String>,
    password_hash: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(one) => vec![one],
            Self::Many(many) => many,
        }
    }
}

// Read only by the `edge` feature; without it the section is refused by where it is.
#[cfg_attr(not(feature = "edge"), allow(dead_code))]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJwt {
    issuer: Spanned<OneOrMany>,
    audience: Spanned<OneOrMany>,
    #[serde(default)]
    algorithms: Option<Spanned<Vec<String>>>,
    jwks_url: Option<Spanned<String>>,
    jwks_file: Option<Spanned<String>>,
    principal_claim: Option<String>,
    leeway: Option<Spanned<String>>,
    resource: Option<Spanned<String>>,
    authorization_servers: Option<Vec<String>>,
    #[serde(default)]
    scopes: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuthorization {
    default: Option<Effect>,
    #[serde(default)]
    rule: Vec<Spanned<RawRule>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    effect: Effect,
    principals: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    claims: BTreeMap<String, OneOrMany>,
    tools: Option<Vec<Spanned<String>>>,
    resources: Option<Vec<Spanned<String>>>,
    prompts: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimit {
    name: Option<String>,
    scope: LimitScope,
    tools: Option<Vec<Spanned<String>>>,
    rate: Spanned<i64>,
    per: Option<Spanned<String>>,
    burst: Option<Spanned<i64>>,
}

/// Parses and validates the access file's `text` (`source_name` names it in errors).
pub fn parse(source_name: &str, text: &str) -> Result<AccessConfig, ConfigError> {
    let lines = Lines::new(source_name, text);
    let raw: RawFile = toml::from_str(text).map_err(|error| {
        let message = error.message().trim_end_matches('\n').to_owned();
        lines.error(error.span().map(|span| span.start), message)
    })?;
    let auth = raw.auth.map(|auth| auth_config(&lines, auth)).transpose()?;
    let rules = match raw.authorization {
        None => RulesConfig::default(),
        Some(authorization) => {
            let mut rules = Vec::new();
            if authorization.rule.len() > MAX_ENTRIES {
                return Err(lines.error(None, format!("more than {MAX_ENTRIES} rules")));
            }
            for (index, rule) in authorization.rule.into_iter().enumerate() {
                rules.push(rule_config(&lines, index + 1, rule)?);
            }
            RulesConfig { default: authorization.default.unwrap_or(Effect::Allow), rules }
        }
    };
    if raw.limit.len() > MAX_ENTRIES {
        return Err(lines.error(None, format!("more than {MAX_ENTRIES} limits")));
    }
    let mut limits: Vec<LimitConfig> = Vec::new();
    for (index, limit) in raw.limit.into_iter().enumerate() {
        let start = limit.span().start;
        let limit = limit_config(&lines, index + 1, limit.into_inner())?;
        if limits.iter().any(|other| other.name == limit.name) {
            return Err(lines.error(Some(start), format!("two limits are named `{}`", limit.name)));
        }
        limits.push(limit);
    }
    let cache = raw.cache.map(|cache| cache_config(&lines, cache)).transpose()?.unwrap_or_default();
    Ok(AccessConfig { auth, rules, limits, cache })
}

fn cache_config(lines: &Lines<'_>, raw: RawCache) -> Result<crate::result_cache::CacheConfig, ConfigError> {
    use crate::result_cache::{CacheConfig, ToolCaching};
    let defaults = CacheConfig::default();
    let bounded = |value: Option<&Spanned<i64>>, max: i64, what: &str| match value {
        None => Ok(None),
        Some(value) => Some(*value.get_ref())
            .filter(|count| (0..=max).contains(count))
            .and_then(|count| usize::try_from(count).ok())
            .map(Some)
            .ok_or_else(|| lines.at(value, format!("`{what}` must be 0 to {max}"))),
    };
    let max_entries = bounded(raw.max_entries.as_ref(), 1_000_000, "max_entries")?.unwrap_or(defaults.max_entries);
    let max_bytes = bounded(raw.max_mib.as_ref(), 4_096, "max_mib")?.map_or(defaults.max_bytes, |mib| mib << 20);
    let mut tools = Vec::new();
    for rule in raw.tool {
        let start = rule.span().start;
        let rule = rule.into_inner();
        // Required: the default is never used.
        let ttl = lines.duration(Some(&rule.ttl), Duration::ZERO)?;
        let scope = match rule.scope.as_deref() {
            None | Some("private") => rmcp::model::CacheScope::Private,
            Some("public") => rmcp::model::CacheScope::Public,
            Some(other) => {
                return Err(lines.error(Some(start), format!("cache scope `{other}`: use `private` or `public`")));
            }
        };
        let tools_globs = globs(lines, Some(rule.tools))?.unwrap_or_default();
        tools.push(ToolCaching { tools: tools_globs, ttl, scope });
    }
    Ok(CacheConfig { max_entries, max_bytes, resources: raw.resources.unwrap_or(defaults.resources), tools })
}

fn auth_config(lines: &Lines<'_>, raw: Spanned<RawAuth>) -> Result<AuthConfig, ConfigError> {
    let start = raw.span().start;
    let raw = raw.into_inner();
    if raw.api_key.len() > MAX_ENTRIES || raw.basic.len() > MAX_ENTRIES {
        return Err(lines.error(Some(start), format!("more than {MAX_ENTRIES} API keys or users")));
    }
    let mut api_keys: Vec<(String, [u8; 32])> = Vec::new();
    for key in raw.api_key {
        let name = key.get_ref().name.get_ref().clone();
        if !valid_credential_name(&name) {
            return Err(lines.at(&key.get_ref().name, format!("`{name}` is not a key name: {NAME_RULE}")));
        }
        let hex = key.get_ref().sha256.get_ref();
        let digest = parse_sha256(hex).ok_or_else(|| {
            lines.at(
                &key.get_ref().sha256,
                "`sha256` must be 64 hex digits: the SHA-256 of the key (`mcp-gateway access hash-key`)".to_owned(),
            )
        })?;
        if api_keys.iter().any(|(other, hash)| *other == name || *hash == digest) {
            return Err(lines.at(&key.get_ref().name, format!("API key `{name}` is listed twice")));
        }
        api_keys.push((name, digest));
    }
    #[cfg(feature = "edge")]
    let (users, jwt) = (basic_users(lines, raw.basic)?, raw.jwt.map(|jwt| jwt_config(lines, jwt)).transpose()?);
    #[cfg(not(feature = "edge"))]
    if let Some(first) = raw.basic.first() {
        return Err(lines.at(first, without_edge("[[auth.basic]]")));
    } else if let Some(jwt) = &raw.jwt {
        return Err(lines.at(jwt, without_edge("[auth.jwt]")));
    }
    let iam = raw.iam.map(|iam| iam_config(lines, iam.into_inner())).transpose()?;
    #[cfg(feature = "edge")]
    let others = !users.is_empty() || jwt.is_some();
    #[cfg(not(feature = "edge"))]
    let others = false;
    if api_keys.is_empty() && !others && iam.is_none() {
        return Err(lines.error(
            Some(start),
            "[auth] accepts no credential: add [[auth.api_key]], [[auth.basic]], [auth.jwt] or [auth.iam]".to_owned(),
        ));
    }
    Ok(AuthConfig {
        api_keys,
        #[cfg(feature = "edge")]
        users,
        #[cfg(feature = "edge")]
        jwt,
        iam,
    })
}

/// Why `section` is refused by a build without the `edge` feature.
#[cfg(not(feature = "edge"))]
fn without_edge(section: &str) -> String {
    format!(
        "{section} needs the `edge` feature (JWT, Basic and TLS for `serve` standing alone), which this build \
         (the federation-only one) leaves out: use the full build, or API keys or [auth.iam]"
    )
}

#[cfg(feature = "edge")]
fn basic_users(lines: &Lines<'_>, raw: Vec<Spanned<RawUser>>) -> Result<Vec<(String, String)>, ConfigError> {
    let mut users: Vec<(String, String)> = Vec::new();
    for user in raw {
        let name = user.get_ref().user.get_ref().clone();
        if !valid_credential_name(&name) {
            return Err(lines.at(&user.get_ref().user, format!("`{name}` is not a user name: {NAME_RULE}")));
        }
        let hash = user.get_ref().password_hash.get_ref().clone();
        if argon2::PasswordHash::new(&hash).map(|parsed| parsed.algorithm.as_str().starts_with("argon2")) != Ok(true) {
            return Err(lines.at(
                &user.get_ref().password_hash,
                "`password_hash` must be an Argon2 hash (`$argon2id$...`): make one with `mcp-gateway access hash-password`"
                    .to_owned(),
            ));
        }
        if users.iter().any(|(other, _)| *other == name) {
            return Err(lines.at(&user.get_ref().user, format!("user `{name}` is listed twice")));
        }
        users.push((name, hash));
    }
    Ok(users)
}

fn iam_config(lines: &Lines<'_>, raw: RawIam) -> Result<IamConfig, ConfigError> {
    let gateway_id = raw.gateway_id.get_ref().clone();
    if gateway_id.is_empty() || gateway_id.len() > 255 || !gateway_id.bytes().all(|byte| byte.is_ascii_graphic()) {
        return Err(lines.at(
            &raw.gateway_id,
            "`gateway_id` must be 1 to 255 visible ASCII characters (e.g. the gateway's host name)".to_owned(),
        ));
    }
    let mut accounts = Vec::new();
    for account in raw.accounts {
        if account.get_ref().len() != 12 || !account.get_ref().bytes().all(|byte| byte.is_ascii_digit()) {
            return Err(lines.at(&account, format!("`{}` is not a 12-digit AWS account id", account.get_ref())));
        }
        accounts.push(account.into_inner());
    }
    let mut sts_endpoints = Vec::new();
    for endpoint in raw.sts_endpoints {
        check_key_url(endpoint.get_ref()).map_err(|message| lines.at(&endpoint, message))?;
        let uri: http::Uri = endpoint.get_ref().parse().map_err(|_| lines.at(&endpoint, "not a URL".to_owned()))?;
        match (uri.scheme_str(), uri.authority()) {
            (Some(scheme), Some(authority)) if matches!(uri.path(), "" | "/") => {
                sts_endpoints.push(format!("{scheme}://{authority}"));
            }
            _ => {
                return Err(lines.at(
                    &endpoint,
                    format!("`{}` must be an endpoint's root, e.g. https://sts.example.com", endpoint.get_ref()),
                ));
            }
        }
    }
    Ok(IamConfig { gateway_id, accounts, sts_endpoints })
}

const NAME_RULE: &str = "1 to 64 characters of a-z, A-Z, 0-9, `.`, `_`, `@` or `-`";

fn valid_credential_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-'))
}

fn parse_sha256(text: &str) -> Option<[u8; 32]> {
    let mut digest = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut digest).ok()?;
    Some(digest)
}

#[cfg(feature = "edge")]
fn jwt_config(lines: &Lines<'_>, raw: Spanned<RawJwt>) -> Result<JwtConfig, ConfigError> {
    let start = raw.span().start;
    let raw = raw.into_inner();
    let issuers = raw.issuer.get_ref();
    let issuers = match issuers {
        OneOrMany::One(one) => vec![one.clone()],
        OneOrMany::Many(many) => many.clone(),
    };
    if issuers.is_empty() || issuers.iter().any(String::is_empty) {
        return Err(lines.at(&raw.issuer, "`issuer` must name the token issuer (`iss`)".to_owned()));
    }
    let audiences = match raw.audience.get_ref() {
        OneOrMany::One(one) => vec![one.clone()],
        OneOrMany::Many(many) => many.clone(),
    };
    if audiences.is_empty() || audiences.iter().any(String::is_empty) {
        return Err(lines.at(&raw.audience, "`audience` must name this gateway as tokens do (`aud`)".to_owned()));
    }
    let algorithms = match &raw.algorithms {
        None => vec![jsonwebtoken::Algorithm::RS256, jsonwebtoken::Algorithm::ES256],
        Some(names) => {
            let mut algorithms = Vec::new();
            for name in names.get_ref() {
                let algorithm: jsonwebtoken::Algorithm = name.parse().map_err(|_| {
                    lines.at(names, format!("`{name}` is not a JWT algorithm (RS256, PS256, ES256, EdDSA, ...)"))
                })?;
                if matches!(
                    algorithm,
                    jsonwebtoken::Algorithm::HS256 | jsonwebtoken::Algorithm::HS384 | jsonwebtoken::Algorithm::HS512
                ) {
                    return Err(lines.at(
                        names,
                        format!(
                            "`{name}` is a shared-secret algorithm; use an asymmetric one (RS256, ES256, EdDSA, ...)"
                        ),
                    ));
                }
                algorithms.push(algorithm);
            }
            if algorithms.is_empty() {
                return Err(lines.at(names, "`algorithms` is empty; list at least one".to_owned()));
            }
            algorithms
        }
    };
    let keys = match (&raw.jwks_url, &raw.jwks_file) {
        (Some(url), None) => {
            check_key_url(url.get_ref()).map_err(|message| lines.at(url, message))?;
            KeySource::Url(url.get_ref().clone())
        }
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path.get_ref())
                .map_err(|error| lines.at(path, format!("`{}` cannot be read: {error}", path.get_ref())))?;
            let set: jsonwebtoken::jwk::JwkSet = serde_json::from_str(&text)
                .map_err(|error| lines.at(path, format!("`{}` is not a JWKS document: {error}", path.get_ref())))?;
            KeySource::File(set)
        }
        _ => {
            return Err(
                lines.error(Some(start), "[auth.jwt] needs exactly one of `jwks_url` or `jwks_file`".to_owned())
            );
        }
    };
    let leeway = lines.duration(raw.leeway.as_ref(), Duration::from_secs(30))?;
    if let Some(resource) = &raw.resource {
        check_key_url(resource.get_ref()).map_err(|message| lines.at(resource, message))?;
    }
    let principal_claim = raw.principal_claim.unwrap_or_else(|| "sub".to_owned());
    Ok(JwtConfig {
        authorization_servers: raw.authorization_servers.unwrap_or_else(|| issuers.clone()),
        issuers,
        audiences,
        algorithms,
        keys,
        principal_claim,
        leeway,
        resource: raw.resource.map(Spanned::into_inner),
        scopes: raw.scopes,
    })
}

/// An `https://` URL, or `http://` to a loopback address (tests, a local issuer).
fn check_key_url(url: &str) -> Result<(), String> {
    let uri = url.parse::<http::Uri>().map_err(|_| format!("`{url}` is not a URL"))?;
    let host = uri.host().unwrap_or_default();
    let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    match uri.scheme_str() {
        Some("https") => Ok(()),
        Some("http") if loopback => Ok(()),
        _ => Err(format!("`{url}` must be an https:// URL (http:// only to a loopback address)")),
    }
}

fn globs(lines: &Lines<'_>, patterns: Option<Vec<Spanned<String>>>) -> Result<Option<Vec<GlobMatcher>>, ConfigError> {
    let Some(patterns) = patterns else { return Ok(None) };
    if patterns.is_empty() || patterns.len() > MAX_ENTRIES {
        return Err(lines.error(None, format!("a list of globs must hold 1 to {MAX_ENTRIES} patterns")));
    }
    let mut matchers = Vec::new();
    for pattern in patterns {
        let glob = Glob::new(pattern.get_ref())
            .map_err(|error| lines.at(&pattern, format!("`{}` is not a glob: {error}", pattern.get_ref())))?;
        matchers.push(glob.compile_matcher());
    }
    Ok(Some(matchers))
}

fn rule_config(lines: &Lines<'_>, number: usize, raw: Spanned<RawRule>) -> Result<RuleConfig, ConfigError> {
    let start = raw.span().start;
    let raw = raw.into_inner();
    if raw.tools.is_none() && raw.resources.is_none() && raw.prompts.is_none() {
        return Err(lines.error(
            Some(start),
            format!("rule {number} names nothing to allow or deny: give `tools`, `resources` or `prompts` (globs)"),
        ));
    }
    let claims = raw.claims.into_iter().map(|(claim, values)| (claim, values.into_vec())).collect();
    Ok(RuleConfig {
        number,
        effect: raw.effect,
        principals: globs(lines, raw.principals)?,
        claims,
        tools: globs(lines, raw.tools)?,
        resources: globs(lines, raw.resources)?,
        prompts: globs(lines, raw.prompts)?,
    })
}

fn limit_config(lines: &Lines<'_>, number: usize, raw: RawLimit) -> Result<LimitConfig, ConfigError> {
    let count = |value: &Spanned<i64>, what: &str| {
        u32::try_from(*value.get_ref())
            .ok()
            .filter(|count| (1..=MAX_RATE).contains(count))
            .ok_or_else(|| lines.at(value, format!("`{what}` must be 1 to {MAX_RATE}")))
    };
    let rate = count(&raw.rate, "rate")?;
    let burst = raw.burst.as_ref().map(|burst| count(burst, "burst")).transpose()?.unwrap_or(rate);
    let per = lines.duration(raw.per.as_ref(), Duration::from_secs(1))?;
    let scope_name = match raw.scope {
        LimitScope::Global => "global",
        LimitScope::Principal => "principal",
        LimitScope::Tool => "tool",
    };
    Ok(LimitConfig {
        name: raw.name.unwrap_or_else(|| format!("{scope_name}-{number}")),
        scope: raw.scope,
        tools: globs(lines, raw.tools)?,
        rate,
        per,
        burst,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        match parse("access.toml", text) {
            Ok(config) => panic!("parsed: {config:?}"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn an_empty_file_allows_everything_and_authenticates_nobody() {
        let config = parse("access.toml", "").unwrap_or_else(|error| panic!("{error:?}"));
        assert!(config.auth.is_none() && config.limits.is_empty());
        assert_eq!(config.rules.default, Effect::Allow);
    }

    #[cfg(feature = "edge")]
    #[test]
    fn the_example_file_parses() {
        let text = include_str!("../../../../examples/access.toml");
        let config = parse("examples/access.toml", text).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(config.rules.rules.len(), 2);
        assert_eq!(config.limits.len(), 2);
    }

    #[test]
    fn every_part_parses() {
        let key = "a".repeat(64);
        let text = format!(
            r#"
[auth]
[[auth.api_key]]
name = "ci"
sha256 = "{key}"

[authorization]
default = "deny"
[[authorization.rule]]
effect = "allow"
principals = ["key:*"]
claims = {{ groups = "admins" }}
tools = ["file", "github__*"]

[[limit]]
scope = "principal"
rate = 10
per = "1m"
"#
        );
        let config = parse("access.toml", &text).unwrap_or_else(|error| panic!("{error:?}"));
        let auth = config.auth.unwrap_or_else(|| panic!("no [auth]"));
        assert_eq!(auth.api_keys, vec![("ci".to_owned(), [0xaa; 32])]);
        assert_eq!(config.rules.default, Effect::Deny);
        assert_eq!(config.rules.rules[0].claims["groups"], vec!["admins".to_owned()]);
        assert_eq!(config.limits[0].name, "principal-1");
        assert_eq!((config.limits[0].rate, config.limits[0].burst), (10, 10));
        assert_eq!(config.limits[0].per, Duration::from_secs(60));
    }

    #[test]
    fn mistakes_are_named_with_their_line() {
        assert!(error("[auth]\n").contains("line 1: [auth] accepts no credential"), "{}", error("[auth]\n"));
        let bad_hash = error("[auth]\n[[auth.api_key]]\nname = \"ci\"\nsha256 = \"abc\"\n");
        assert!(bad_hash.contains("line 4: `sha256` must be 64 hex digits"), "{bad_hash}");
        let no_target = error("[authorization]\n[[authorization.rule]]\neffect = \"deny\"\n");
        assert!(no_target.contains("rule 1 names nothing"), "{no_target}");
        let rate = error("[[limit]]\nscope = \"global\"\nrate = 0\n");
        assert!(rate.contains("line 3: `rate` must be 1 to"), "{rate}");
        let scope = error("[[limit]]\nscope = \"everyone\"\nrate = 1\n");
        assert!(scope.contains("line 2") && scope.contains("everyone"), "{scope}");
        let unknown = error("[auth]\nkeys = 1\n");
        assert!(unknown.contains("unknown field `keys`"), "{unknown}");
    }

    #[cfg(feature = "edge")]
    #[test]
    fn jwt_and_basic_mistakes_are_named_with_their_line() {
        let bad_password = error("[auth]\n[[auth.basic]]\nuser = \"al\"\npassword_hash = \"secret\"\n");
        assert!(bad_password.contains("line 4: `password_hash` must be an Argon2 hash"), "{bad_password}");
        let url = error("[auth.jwt]\nissuer = \"i\"\naudience = \"a\"\njwks_url = \"http://example.com/jwks\"\n");
        assert!(url.contains("line 4") && url.contains("must be an https:// URL"), "{url}");
        let hs = error(
            "[auth.jwt]\nissuer = \"i\"\naudience = \"a\"\nalgorithms = [\"HS256\"]\njwks_url = \"https://i/jwks\"\n",
        );
        assert!(hs.contains("shared-secret"), "{hs}");
    }
}

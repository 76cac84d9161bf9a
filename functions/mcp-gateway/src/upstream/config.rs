//! The upstreams file (TOML): which MCP servers the gateway federates and how to reach them,
//! validated whole before anything starts. Every problem is reported with the file and line.

use std::{collections::BTreeMap, fmt, path::PathBuf, time::Duration};

use globset::{Glob, GlobSet, GlobSetBuilder};
use http::{HeaderName, HeaderValue};
use serde::Deserialize;
use toml::Spanned;

use crate::settings_file::Lines;
pub use crate::settings_file::{ConfigError, parse_duration};

/// The most characters of an upstream name.
pub const MAX_NAME_CHARS: usize = 32;

/// The whole file, validated.
#[derive(Debug, Clone)]
pub struct UpstreamsConfig {
    /// Every upstream, in file order.
    pub upstreams: Vec<UpstreamConfig>,
    /// How long the aggregated catalogue is reused before a background refresh.
    pub catalogue_ttl: Duration,
    /// The file's `[defaults]` call and list time-outs (for upstreams registered at run time).
    pub defaults: (Duration, Duration),
    /// Whether to hold a `subscriptions/listen` stream open to each 2026-07-28 upstream that
    /// announces list changes. Not from the file: the process sets it (`serve` and `stdio` do;
    /// a Lambda function, frozen between invocations, cannot hold a stream and relies on the TTL).
    pub listen: bool,
}

/// One upstream MCP server: one name for one or more instances of the same server.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// `[a-z0-9][a-z0-9-]*`, the prefix of its exposed names.
    pub name: String,
    /// Its instances (at least one), in file order; all of one transport kind.
    pub instances: Vec<InstanceConfig>,
    /// How a request picks an instance.
    pub strategy: Strategy,
    /// When an instance counts as unhealthy, and when it is tried again.
    pub health: HealthConfig,
    /// Tools whose calls may be retried on another instance (they cannot have had an effect
    /// twice); lists, `resources/read` and `prompts/get` always may.
    pub retry_tools: Option<Patterns>,
    /// How long one call may take.
    pub timeout: Duration,
    /// How long a list waits for it.
    pub list_timeout: Duration,
    /// Tools exposed: all when `None`.
    pub allow_tools: Option<Patterns>,
    /// Tools never exposed (wins over `allow_tools`).
    pub deny_tools: Option<Patterns>,
    /// What a list does while it is down.
    pub failure_mode: FailureMode,
    /// Whether its tools are exposed as `<name>__<tool>` (the default) or by their own names.
    pub prefix: bool,
}

impl UpstreamConfig {
    /// Whether it is reached over stdio (long-lived child processes).
    pub fn is_stdio(&self) -> bool {
        self.instances.iter().any(|instance| matches!(instance.transport, Transport::Stdio(_)))
    }

    /// `http` or `stdio`.
    pub fn transport_kind(&self) -> &'static str {
        if self.is_stdio() { "stdio" } else { "http" }
    }

    /// Whether a call of its tool `name` may be retried on another instance.
    pub fn retries(&self, name: &str) -> bool {
        self.retry_tools.as_ref().is_some_and(|retry| retry.set.is_match(name))
    }

    /// Whether the upstream's tool `name` is exposed.
    pub fn exposes(&self, name: &str) -> bool {
        let allowed = self.allow_tools.as_ref().is_none_or(|allow| allow.set.is_match(name));
        let denied = self.deny_tools.as_ref().is_some_and(|deny| deny.set.is_match(name));
        allowed && !denied
    }
}

/// Globs with the text they came from.
#[derive(Debug, Clone)]
pub struct Patterns {
    /// The globs as written.
    pub text: Vec<String>,
    set: GlobSet,
}

/// The id an upstream's only instance gets when the file lists none (`url` or `command` on the
/// upstream itself).
pub const DEFAULT_INSTANCE: &str = "default";

/// The largest weight of an instance.
pub const MAX_WEIGHT: u32 = 1000;

/// The most instances of one upstream.
pub const MAX_INSTANCES: usize = 64;

/// One instance of an upstream.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceConfig {
    /// `[a-z0-9][a-z0-9-]*`, unique within its upstream.
    pub id: String,
    /// How to reach it.
    pub transport: Transport,
    /// Its share of traffic with `strategy = "weighted"` (and `hash`), 1 to [`MAX_WEIGHT`].
    pub weight: u32,
    /// Labels for operators (zone, version ...), reported as given.
    pub metadata: BTreeMap<String, String>,
}

/// How a request picks one of an upstream's healthy instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Each in turn.
    RoundRobin,
    /// The one with the fewest calls in flight.
    LeastConnections,
    /// In proportion to the weights (smooth weighted round robin).
    Weighted,
    /// Uniformly at random.
    Random,
    /// The faster of two picked at random, by latency (EWMA) times calls in flight.
    LeastLatency,
    /// The same instance for the same key, while it is healthy (weighted rendezvous hashing).
    Hash(HashKey),
}

/// What `strategy = "hash"` hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashKey {
    /// The caller's identity (the IAM principal on Lambda), else its address.
    Principal,
    /// The caller's IP address.
    ClientIp,
}

/// Passive health and the circuit breaker of every instance of an upstream.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthConfig {
    /// Failures in a row that open an instance's breaker.
    pub failures: u32,
    /// The share of failed calls within `window` that opens it ...
    pub error_rate: f64,
    /// ... over this window ...
    pub window: Duration,
    /// ... once the window holds at least this many calls.
    pub min_calls: u32,
    /// How long an open breaker stays open before it lets probes through (half-open).
    pub cooldown: Duration,
    /// Calls let through at once while half-open.
    pub half_open_calls: u32,
    /// Successes while half-open that close it again.
    pub successes: u32,
    /// Active health checks (`serve`, `stdio`), when the file asks for them.
    pub probe: Option<Probe>,
}

/// An active health check of every instance of an upstream.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// What is asked.
    pub kind: ProbeKind,
    /// How often.
    pub interval: Duration,
    /// How long one check may take.
    pub timeout: Duration,
    /// Checks passed in a row that make an unhealthy instance healthy.
    pub healthy_threshold: u32,
    /// Checks failed in a row that make a healthy instance unhealthy.
    pub unhealthy_threshold: u32,
}

/// What an active health check asks an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeKind {
    /// `ping` on its connection; any answer counts (a 2026-07-28 server, which has no `ping`,
    /// answers "method not found").
    Mcp,
    /// `GET` of this path on the instance's host (http instances), answered with a 2xx.
    Http(String),
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            failures: 5,
            error_rate: 0.5,
            window: Duration::from_secs(30),
            min_calls: 10,
            cooldown: Duration::from_secs(10),
            half_open_calls: 1,
            successes: 2,
            probe: None,
        }
    }
}

/// How an upstream is reached.
#[derive(Debug, Clone, PartialEq)]
pub enum Transport {
    /// Streamable HTTP.
    Http(HttpConfig),
    /// A local command over stdio.
    Stdio(StdioConfig),
}

/// A Streamable HTTP upstream.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpConfig {
    /// The MCP endpoint.
    pub url: String,
    /// Which protocol era to speak.
    pub protocol: Protocol,
    /// Headers sent with every request.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// How requests are authenticated.
    pub auth: Auth,
}

/// Which protocol an HTTP upstream speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protocol {
    /// `server/discover` first (2026-07-28), then `initialize` when the server is older.
    Auto,
    /// Exactly this revision.
    Version(String),
}

/// How requests to an HTTP upstream are authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// Not at all.
    None,
    /// `Authorization: Bearer <token>`, the token read from an environment variable at start.
    Bearer {
        /// The environment variable.
        token_env: String,
    },
    /// Any header, its value read from an environment variable at start.
    Header {
        /// The header.
        header: HeaderName,
        /// The environment variable.
        value_env: String,
    },
    /// AWS SigV4 with the gateway's credentials (API Gateway IAM, Lambda function URLs, Bedrock
    /// AgentCore).
    SigV4 {
        /// The signing name; inferred from the host when absent.
        service: Option<String>,
        /// The region; inferred from the host when absent.
        region: Option<String>,
        /// A role to assume first.
        role_arn: Option<String>,
    },
}

/// A stdio upstream.
#[derive(Debug, Clone, PartialEq)]
pub struct StdioConfig {
    /// The program.
    pub command: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Variables it inherits from the gateway, beside the minimal set every stdio upstream gets.
    pub inherit_env: Vec<String>,
    /// Variables set for it.
    pub env: BTreeMap<String, String>,
    /// Its working folder.
    pub cwd: Option<PathBuf>,
}

/// What an aggregated list does while an upstream is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureMode {
    /// Leave its tools out (and report it in `gateway_status`).
    Open,
    /// Fail the list.
    Closed,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    defaults: RawDefaults,
    #[serde(default)]
    upstream: Vec<Spanned<RawUpstream>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    timeout: Option<Spanned<String>>,
    list_timeout: Option<Spanned<String>>,
    catalogue_ttl: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpstream {
    name: Spanned<String>,
    transport: Spanned<String>,
    #[serde(default)]
    instance: Vec<Spanned<RawInstance>>,
    strategy: Option<Spanned<String>>,
    hash_key: Option<Spanned<String>>,
    health: Option<Spanned<RawHealth>>,
    retry_tools: Option<Spanned<Vec<String>>>,
    url: Option<Spanned<String>>,
    protocol: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    list_timeout: Option<Spanned<String>>,
    allow_tools: Option<Spanned<Vec<String>>>,
    deny_tools: Option<Spanned<Vec<String>>>,
    failure_mode: Option<Spanned<String>>,
    prefix: Option<bool>,
    headers: Option<Spanned<BTreeMap<String, String>>>,
    auth: Option<Spanned<RawAuth>>,
    command: Option<Spanned<String>>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    inherit_env: Option<Spanned<Vec<String>>>,
    cwd: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInstance {
    id: Spanned<String>,
    url: Option<Spanned<String>>,
    command: Option<Spanned<String>>,
    args: Option<Vec<String>>,
    weight: Option<Spanned<i64>>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHealth {
    failures: Option<Spanned<i64>>,
    error_rate: Option<Spanned<f64>>,
    window: Option<Spanned<String>>,
    min_calls: Option<Spanned<i64>>,
    cooldown: Option<Spanned<String>>,
    half_open_calls: Option<Spanned<i64>>,
    successes: Option<Spanned<i64>>,
    probe: Option<Spanned<String>>,
    interval: Option<Spanned<String>>,
    probe_timeout: Option<Spanned<String>>,
    healthy_threshold: Option<Spanned<i64>>,
    unhealthy_threshold: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
enum RawAuth {
    None,
    Bearer { token_env: String },
    Header { header: String, value_env: String },
    Sigv4 { service: Option<String>, region: Option<String>, role_arn: Option<String> },
}

/// The protocol revisions an upstream may be pinned to.
const REVISIONS: &[&str] = &["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"];

/// Parses and validates the upstreams file `text`, read from `source_name`.
pub fn parse(source_name: &str, text: &str) -> Result<UpstreamsConfig, ConfigError> {
    let lines = Lines::new(source_name, text);
    let raw: RawFile = toml::from_str(text).map_err(|error| {
        let message = error.message().trim_end_matches('\n').to_owned();
        lines.error(error.span().map(|span| span.start), message)
    })?;
    let timeout = lines.duration(raw.defaults.timeout.as_ref(), Duration::from_secs(60))?;
    let list_timeout = lines.duration(raw.defaults.list_timeout.as_ref(), Duration::from_secs(5))?;
    let catalogue_ttl = lines.duration(raw.defaults.catalogue_ttl.as_ref(), Duration::from_secs(60))?;
    let mut upstreams: Vec<UpstreamConfig> = Vec::new();
    for entry in raw.upstream {
        let start = entry.span().start;
        let upstream = upstream(&lines, entry.into_inner(), timeout, list_timeout)?;
        if upstreams.iter().any(|other| other.name == upstream.name) {
            return Err(lines.error(Some(start), format!("upstream `{}` is defined twice", upstream.name)));
        }
        upstreams.push(upstream);
    }
    Ok(UpstreamsConfig { upstreams, catalogue_ttl, defaults: (timeout, list_timeout), listen: true })
}

fn upstream(
    lines: &Lines<'_>,
    raw: RawUpstream,
    default_timeout: Duration,
    default_list_timeout: Duration,
) -> Result<UpstreamConfig, ConfigError> {
    let name = raw.name.get_ref();
    if !valid_name(name) {
        return Err(lines.at(
            &raw.name,
            format!(
                "upstream name `{name}` must match [a-z0-9][a-z0-9-]* and have at most {MAX_NAME_CHARS} characters"
            ),
        ));
    }
    let name = name.clone();
    let failure_mode = match raw.failure_mode.as_ref().map(|mode| mode.get_ref().as_str()) {
        None | Some("open") => FailureMode::Open,
        Some("closed") => FailureMode::Closed,
        Some(other) => {
            let span = raw.failure_mode.as_ref().map(|mode| mode.span().start);
            return Err(lines.error(span, format!("failure_mode `{other}` is not one of: open, closed")));
        }
    };
    let kind = raw.transport.get_ref().as_str();
    if !matches!(kind, "http" | "stdio") {
        return Err(lines.at(&raw.transport, format!("transport `{kind}` is not one of: http, stdio")));
    }
    let stdio = kind == "stdio";
    if stdio {
        if let Some(url) = &raw.url {
            return Err(lines.at(url, "`url` belongs to http upstreams".to_owned()));
        }
        if let Some(auth) = &raw.auth {
            return Err(lines.at(auth, "`auth` belongs to http upstreams".to_owned()));
        }
    } else if let Some(command) = &raw.command {
        return Err(lines.at(command, "`command` belongs to stdio upstreams".to_owned()));
    }
    // What every instance shares.
    let shared = if stdio {
        Transport::Stdio(StdioConfig {
            command: String::new(),
            args: raw.args.clone(),
            inherit_env: raw.inherit_env.map(Spanned::into_inner).unwrap_or_default(),
            env: raw.env,
            cwd: raw.cwd.map(PathBuf::from),
        })
    } else {
        Transport::Http(HttpConfig {
            url: String::new(),
            protocol: protocol(lines, raw.protocol.as_ref())?,
            headers: headers(lines, raw.headers.as_ref())?,
            auth: auth(lines, raw.auth)?,
        })
    };
    let instances = if raw.instance.is_empty() {
        let place = raw.url.as_ref().or(raw.command.as_ref()).ok_or_else(|| {
            let needs = if stdio { "a stdio upstream needs `command`" } else { "an http upstream needs `url`" };
            lines.at(&raw.transport, format!("upstream `{name}`: {needs} (or `[[upstream.instance]]` tables)"))
        })?;
        vec![InstanceConfig {
            id: DEFAULT_INSTANCE.to_owned(),
            transport: reach(lines, &shared, place, None)?,
            weight: 1,
            metadata: BTreeMap::new(),
        }]
    } else {
        if let Some(place) = raw.url.as_ref().or(raw.command.as_ref()) {
            return Err(lines.at(
                place,
                format!("upstream `{name}` lists instances; give each its own `url` or `command` instead"),
            ));
        }
        if raw.instance.len() > MAX_INSTANCES {
            return Err(lines.at(&raw.name, format!("upstream `{name}` has more than {MAX_INSTANCES} instances")));
        }
        let mut instances: Vec<InstanceConfig> = Vec::with_capacity(raw.instance.len());
        for entry in raw.instance {
            let at = entry.span().start;
            let instance = entry.into_inner();
            let id = instance.id.get_ref();
            if !valid_name(id) {
                return Err(lines.at(
                    &instance.id,
                    format!(
                        "instance id `{id}` must match [a-z0-9][a-z0-9-]* and have at most {MAX_NAME_CHARS} characters"
                    ),
                ));
            }
            if instances.iter().any(|other| &other.id == id) {
                return Err(lines.at(&instance.id, format!("upstream `{name}` lists instance `{id}` twice")));
            }
            let (place, other) = if stdio {
                (instance.command.as_ref(), instance.url.as_ref().map(|url| (url, "`url` belongs to http instances")))
            } else {
                (
                    instance.url.as_ref(),
                    instance.command.as_ref().map(|command| (command, "`command` belongs to stdio instances")),
                )
            };
            if let Some((place, message)) = other {
                return Err(lines.at(place, message.to_owned()));
            }
            let place = place.ok_or_else(|| {
                let needs = if stdio { "`command`" } else { "`url`" };
                lines.error(Some(at), format!("instance `{id}` of upstream `{name}` needs {needs}"))
            })?;
            let weight = match &instance.weight {
                None => 1,
                Some(weight) => u32::try_from(*weight.get_ref())
                    .ok()
                    .filter(|weight| (1..=MAX_WEIGHT).contains(weight))
                    .ok_or_else(|| lines.at(weight, format!("weight must be 1 to {MAX_WEIGHT}")))?,
            };
            instances.push(InstanceConfig {
                id: id.clone(),
                transport: reach(lines, &shared, place, instance.args)?,
                weight,
                metadata: instance.metadata,
            });
        }
        instances
    };
    let strategy = strategy(lines, raw.strategy.as_ref(), raw.hash_key.as_ref())?;
    Ok(UpstreamConfig {
        name,
        instances,
        strategy,
        health: health(lines, raw.health.as_ref(), stdio)?,
        retry_tools: patterns(lines, raw.retry_tools.as_ref())?,
        timeout: lines.duration(raw.timeout.as_ref(), default_timeout)?,
        list_timeout: lines.duration(raw.list_timeout.as_ref(), default_list_timeout)?,
        allow_tools: patterns(lines, raw.allow_tools.as_ref())?,
        deny_tools: patterns(lines, raw.deny_tools.as_ref())?,
        failure_mode,
        prefix: raw.prefix.unwrap_or(true),
    })
}

/// An upstream's URL: http:// or https://, with a host, without a user name or password.
pub(super) fn check_url(url: &str) -> Result<(), String> {
    let valid_url = url
        .parse::<http::Uri>()
        .ok()
        .filter(|uri| matches!(uri.scheme_str(), Some("http" | "https")) && uri.authority().is_some());
    let Some(valid_url) = valid_url else {
        return Err(format!("`{url}` is not an http:// or https:// URL"));
    };
    if valid_url.authority().is_some_and(|authority| authority.as_str().contains('@')) {
        return Err(
            "the URL holds a user name or password; put credentials in `auth` (read from the environment)".to_owned()
        );
    }
    Ok(())
}

/// `[a-z0-9][a-z0-9-]*`, at most [`MAX_NAME_CHARS`] characters: upstream names and instance ids.
pub(super) fn valid_name(name: &str) -> bool {
    name.len() <= MAX_NAME_CHARS
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The transport of one instance: `shared` with its `url` (http) or `command` (stdio) at `place`,
/// and its own `args` when it has some.
fn reach(
    lines: &Lines<'_>,
    shared: &Transport,
    place: &Spanned<String>,
    args: Option<Vec<String>>,
) -> Result<Transport, ConfigError> {
    Ok(match shared {
        Transport::Http(http) => {
            let url = place.get_ref();
            check_url(url).map_err(|message| lines.at(place, message))?;
            Transport::Http(HttpConfig { url: url.clone(), ..http.clone() })
        }
        Transport::Stdio(stdio) => {
            if place.get_ref().trim().is_empty() {
                return Err(lines.at(place, "`command` is empty".to_owned()));
            }
            Transport::Stdio(StdioConfig {
                command: place.get_ref().clone(),
                args: args.unwrap_or_else(|| stdio.args.clone()),
                ..stdio.clone()
            })
        }
    })
}

fn strategy(
    lines: &Lines<'_>,
    raw: Option<&Spanned<String>>,
    hash_key: Option<&Spanned<String>>,
) -> Result<Strategy, ConfigError> {
    let strategy = match raw.map(|raw| raw.get_ref().as_str()) {
        None | Some("round_robin") => Strategy::RoundRobin,
        Some("least_connections") => Strategy::LeastConnections,
        Some("weighted") => Strategy::Weighted,
        Some("random") => Strategy::Random,
        Some("least_latency") => Strategy::LeastLatency,
        Some("hash") => Strategy::Hash(match hash_key.map(|key| key.get_ref().as_str()) {
            None | Some("principal") => HashKey::Principal,
            Some("client_ip") => HashKey::ClientIp,
            Some(other) => {
                let at = hash_key.map(|key| key.span().start);
                return Err(lines.error(at, format!("hash_key `{other}` is not one of: principal, client_ip")));
            }
        }),
        Some(other) => {
            let at = raw.map(|raw| raw.span().start);
            return Err(lines.error(
                at,
                format!(
                    "strategy `{other}` is not one of: round_robin, least_connections, weighted, random, \
                     least_latency, hash"
                ),
            ));
        }
    };
    if let Some(key) = hash_key.filter(|_| !matches!(strategy, Strategy::Hash(_))) {
        return Err(lines.at(key, "`hash_key` belongs to `strategy = \"hash\"`".to_owned()));
    }
    Ok(strategy)
}

fn health(lines: &Lines<'_>, raw: Option<&Spanned<RawHealth>>, stdio: bool) -> Result<HealthConfig, ConfigError> {
    let defaults = HealthConfig::default();
    let Some(raw) = raw else { return Ok(defaults) };
    let raw = raw.get_ref();
    let count = |value: Option<&Spanned<i64>>, default: u32, what: &str| match value {
        None => Ok(default),
        Some(value) => u32::try_from(*value.get_ref())
            .ok()
            .filter(|count| (1..=10_000).contains(count))
            .ok_or_else(|| lines.at(value, format!("{what} must be 1 to 10000"))),
    };
    let error_rate = match &raw.error_rate {
        None => defaults.error_rate,
        Some(rate) if *rate.get_ref() > 0.0 && *rate.get_ref() <= 1.0 => *rate.get_ref(),
        Some(rate) => return Err(lines.at(rate, "error_rate must be above 0 and at most 1 (0.5 is half)".to_owned())),
    };
    Ok(HealthConfig {
        failures: count(raw.failures.as_ref(), defaults.failures, "failures")?,
        error_rate,
        window: lines.duration(raw.window.as_ref(), defaults.window)?,
        min_calls: count(raw.min_calls.as_ref(), defaults.min_calls, "min_calls")?,
        cooldown: lines.duration(raw.cooldown.as_ref(), defaults.cooldown)?,
        half_open_calls: count(raw.half_open_calls.as_ref(), defaults.half_open_calls, "half_open_calls")?,
        successes: count(raw.successes.as_ref(), defaults.successes, "successes")?,
        probe: probe(lines, raw, stdio, &count)?,
    })
}

/// The active health check of `[upstream.health]`: `probe = "mcp"` or an HTTP path.
fn probe(
    lines: &Lines<'_>,
    raw: &RawHealth,
    stdio: bool,
    count: &impl Fn(Option<&Spanned<i64>>, u32, &str) -> Result<u32, ConfigError>,
) -> Result<Option<Probe>, ConfigError> {
    let Some(kind) = &raw.probe else {
        let stray = [raw.interval.as_ref(), raw.probe_timeout.as_ref()].into_iter().flatten().next();
        if let Some(stray) = stray {
            return Err(
                lines.at(stray, "`interval` and `probe_timeout` belong to an active check: set `probe`".to_owned())
            );
        }
        return Ok(None);
    };
    let kind = match kind.get_ref().as_str() {
        "mcp" => ProbeKind::Mcp,
        path if path.starts_with('/') && !stdio && path.parse::<http::uri::PathAndQuery>().is_ok() => {
            ProbeKind::Http(path.to_owned())
        }
        other => {
            let allowed = if stdio {
                "\"mcp\" (a stdio upstream has no HTTP path)"
            } else {
                "\"mcp\" or a path such as \"/health\""
            };
            return Err(lines.at(kind, format!("probe `{other}` is not {allowed}")));
        }
    };
    Ok(Some(Probe {
        kind,
        interval: lines.duration(raw.interval.as_ref(), Duration::from_secs(10))?,
        timeout: lines.duration(raw.probe_timeout.as_ref(), Duration::from_secs(2))?,
        healthy_threshold: count(raw.healthy_threshold.as_ref(), 2, "healthy_threshold")?,
        unhealthy_threshold: count(raw.unhealthy_threshold.as_ref(), 3, "unhealthy_threshold")?,
    }))
}

fn protocol(lines: &Lines<'_>, raw: Option<&Spanned<String>>) -> Result<Protocol, ConfigError> {
    match raw {
        None => Ok(Protocol::Auto),
        Some(value) if value.get_ref() == "auto" => Ok(Protocol::Auto),
        Some(value) if REVISIONS.contains(&value.get_ref().as_str()) => Ok(Protocol::Version(value.get_ref().clone())),
        Some(value) => {
            Err(lines
                .at(value, format!("protocol `{}` is not one of: auto, {}", value.get_ref(), REVISIONS.join(", "))))
        }
    }
}

fn headers(
    lines: &Lines<'_>,
    raw: Option<&Spanned<BTreeMap<String, String>>>,
) -> Result<Vec<(HeaderName, HeaderValue)>, ConfigError> {
    let Some(raw) = raw else { return Ok(Vec::new()) };
    raw.get_ref()
        .iter()
        .map(|(name, value)| {
            let header = HeaderName::try_from(name.as_str())
                .map_err(|_| lines.at(raw, format!("`{name}` is not a header name")))?;
            let value = HeaderValue::try_from(value.as_str())
                .map_err(|_| lines.at(raw, format!("the value of header `{name}` is not a header value")))?;
            Ok((header, value))
        })
        .collect()
}

fn auth(lines: &Lines<'_>, raw: Option<Spanned<RawAuth>>) -> Result<Auth, ConfigError> {
    let Some(raw) = raw else { return Ok(Auth::None) };
    let env_name = |name: &str| {
        let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if valid {
            Ok(name.to_owned())
        } else {
            Err(lines.at(&raw, format!("`{name}` is not an environment variable name")))
        }
    };
    Ok(match raw.get_ref() {
        RawAuth::None => Auth::None,
        RawAuth::Bearer { token_env } => Auth::Bearer { token_env: env_name(token_env)? },
        RawAuth::Header { header, value_env } => Auth::Header {
            header: HeaderName::try_from(header.as_str())
                .map_err(|_| lines.at(&raw, format!("`{header}` is not a header name")))?,
            value_env: env_name(value_env)?,
        },
        RawAuth::Sigv4 { service, region, role_arn } => {
            if let Some(role) = role_arn.as_deref().filter(|role| !role.starts_with("arn:aws")) {
                return Err(
                    lines.at(&raw, format!("role_arn `{role}` is not a role ARN (arn:aws:iam::<account>:role/<name>)"))
                );
            }
            Auth::SigV4 { service: service.clone(), region: region.clone(), role_arn: role_arn.clone() }
        }
    })
}

fn patterns(lines: &Lines<'_>, raw: Option<&Spanned<Vec<String>>>) -> Result<Option<Patterns>, ConfigError> {
    let Some(raw) = raw else { return Ok(None) };
    let mut builder = GlobSetBuilder::new();
    for pattern in raw.get_ref() {
        let glob = Glob::new(pattern).map_err(|error| lines.at(raw, format!("`{pattern}` is not a glob: {error}")))?;
        builder.add(glob);
    }
    let set = builder.build().map_err(|error| lines.at(raw, format!("globs: {error}")))?;
    Ok(Some(Patterns { text: raw.get_ref().clone(), set }))
}

impl fmt::Display for FailureMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Open => "open",
            Self::Closed => "closed",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        match parse("upstreams.toml", text) {
            Ok(config) => panic!("parsed: {config:?}"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn the_example_file_is_valid() {
        let text = include_str!("../../../../examples/upstreams.toml");
        let config = parse("examples/upstreams.toml", text).unwrap_or_else(|error| panic!("{error}"));
        let names: Vec<&str> = config.upstreams.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["docs", "tickets", "vendor", "reports", "everything", "search"]);
        let docs = &config.upstreams[0];
        assert_eq!(docs.timeout, Duration::from_secs(30));
        assert!(docs.exposes("search_docs") && docs.exposes("fetch") && !docs.exposes("other"));
        assert!(!docs.exposes("search_and_delete"), "deny wins");
        assert!(
            matches!(&config.upstreams[3].instances[0].transport, Transport::Http(http) if matches!(http.auth, Auth::SigV4 { .. }))
        );
        assert!(
            matches!(&config.upstreams[4].instances[0].transport, Transport::Stdio(stdio) if stdio.command == "npx")
        );
    }

    #[test]
    fn problems_name_the_line_and_what_is_allowed() {
        let cases = [
            (
                "[[upstream]]\nname = \"Bad_Name\"\ntransport = \"http\"\nurl = \"http://x/mcp\"\n",
                "line 2",
                "[a-z0-9][a-z0-9-]*",
            ),
            ("[[upstream]]\nname = \"a\"\ntransport = \"smoke\"\n", "line 3", "http, stdio"),
            ("[[upstream]]\nname = \"a\"\ntransport = \"http\"\n", "line 3", "needs `url`"),
            ("[[upstream]]\nname = \"a\"\ntransport = \"http\"\nurl = \"ftp://x\"\n", "line 4", "http:// or https://"),
            ("[[upstream]]\nname = \"a\"\ntransport = \"stdio\"\n", "line 3", "needs `command`"),
            (
                "[[upstream]]\nname = \"a\"\ntransport = \"stdio\"\ncommand = \"x\"\ntimeout = \"soon\"\n",
                "line 5",
                "500ms, 30s or 2m",
            ),
            (
                "[[upstream]]\nname = \"a\"\ntransport = \"http\"\nurl = \"http://x/mcp\"\nprotocol = \"2099-01-01\"\n",
                "line 5",
                "2026-07-28",
            ),
            (
                "[[upstream]]\nname = \"a\"\ntransport = \"http\"\nurl = \"http://x/mcp\"\nfailure_mode = \"maybe\"\n",
                "line 5",
                "open, closed",
            ),
            (
                "[[upstream]]\nname = \"a\"\ntransport = \"http\"\nurl = \"http://x/mcp\"\nauth = { kind = \"magic\" }\n",
                "line 5",
                "magic",
            ),
            (
                "[[upstream]]\nname = \"a\"\ntransport = \"http\"\nurl = \"http://x/mcp\"\nsurprise = 1\n",
                "line 5",
                "surprise",
            ),
            (
                "[[upstream]]\nname = \"a\"\ntransport = \"stdio\"\ncommand = \"x\"\n[[upstream]]\nname = \"a\"\ntransport = \"stdio\"\ncommand = \"y\"\n",
                "line 5",
                "defined twice",
            ),
            (
                "[[upstream]]\nname = \"a\"\ntransport = \"http\"\nurl = \"http://x/mcp\"\nallow_tools = [\"a[\"]\n",
                "line 5",
                "not a glob",
            ),
            ("[[upstream]\n", "line 1", ""),
            (
                "[[upstream]]\nname = \"a\"\ntransport = \"http\"\nurl = \"http://x/mcp\"\nstrategy = \"fastest\"\n",
                "line 5",
                "round_robin, least_connections, weighted, random, least_latency, hash",
            ),
            (
                "[[upstream]]\nname = \"a\"\ntransport = \"http\"\nurl = \"http://x/mcp\"\nhash_key = \"client_ip\"\n",
                "line 5",
                "belongs to `strategy = \"hash\"`",
            ),
            (
                "[[upstream]]\nname = \"a\"\ntransport = \"http\"\nstrategy = \"hash\"\nhash_key = \"cookie\"\n[[upstream.instance]]\nid = \"x\"\nurl = \"http://x/mcp\"\n",
                "line 5",
                "principal, client_ip",
            ),
            (
                "[[upstream]]\nname = \"a\"\ntransport = \"http\"\nurl = \"http://x/mcp\"\n[[upstream.instance]]\nid = \"x\"\nurl = \"http://y/mcp\"\n",
                "line 4",
                "give each its own `url`",
            ),
            (
                "[[upstream]]\nname = \"a\"\ntransport = \"http\"\n[[upstream.instance]]\nid = \"x\"\nurl = \"http://x/mcp\"\n[[upstream.instance]]\nid = \"x\"\nurl = \"http://y/mcp\"\n",
                "line 8",
                "lists instance `x` twice",
            ),
            (
                "[[upstream]]\nname = \"a\"\ntransport = \"http\"\n[[upstream.instance]]\nid = \"x\"\nurl = \"http://x/mcp\"\nweight = 0\n",
                "line 7",
                "weight must be 1 to 1000",
            ),
            (
                "[[upstream]]\nname = \"a\"\ntransport = \"http\"\n[[upstream.instance]]\nid = \"X\"\nurl = \"http://x/mcp\"\n",
                "line 5",
                "instance id `X`",
            ),
            (
                "[[upstream]]\nname = \"a\"\ntransport = \"stdio\"\n[[upstream.instance]]\nid = \"x\"\nurl = \"http://x/mcp\"\n",
                "line 6",
                "`url` belongs to http instances",
            ),
            (
                "[[upstream]]\nname = \"a\"\ntransport = \"http\"\n[[upstream.instance]]\nid = \"x\"\n",
                "line 4",
                "instance `x` of upstream `a` needs `url`",
            ),
            (
                "[[upstream]]\nname = \"a\"\ntransport = \"http\"\nurl = \"http://x/mcp\"\n[upstream.health]\nerror_rate = 1.5\n",
                "line 6",
                "error_rate must be above 0 and at most 1",
            ),
            (
                "[[upstream]]\nname = \"a\"\ntransport = \"http\"\nurl = \"http://x/mcp\"\n[upstream.health]\nfailures = 0\n",
                "line 6",
                "failures must be 1 to 10000",
            ),
            (
                "[[upstream]]\nname = \"a\"\ntransport = \"http\"\nurl = \"http://x/mcp\"\n[upstream.health]\nprobe = \"tcp\"\n",
                "line 6",
                "probe `tcp` is not \"mcp\" or a path such as \"/health\"",
            ),
            (
                "[[upstream]]\nname = \"a\"\ntransport = \"stdio\"\ncommand = \"x\"\n[upstream.health]\nprobe = \"/health\"\n",
                "line 6",
                "a stdio upstream has no HTTP path",
            ),
            (
                "[[upstream]]\nname = \"a\"\ntransport = \"http\"\nurl = \"http://x/mcp\"\n[upstream.health]\ninterval = \"1s\"\n",
                "line 6",
                "set `probe`",
            ),
        ];
        for (text, line, says) in cases {
            let message = error(text);
            assert!(message.starts_with(&format!("upstreams.toml {line}:")), "{text:?}: {message}");
            assert!(message.contains(says), "{text:?}: {message}");
        }
    }

    #[test]
    fn instances_share_the_upstreams_transport_settings_and_keep_their_own_weight_and_metadata() {
        let text = r#"
[[upstream]]
name = "search"
transport = "http"
protocol = "2025-11-25"
headers = { "X-Team" = "data" }
strategy = "hash"
hash_key = "client_ip"
retry_tools = ["search_*"]
[upstream.health]
failures = 3
cooldown = "2s"
probe = "/health"
interval = "5s"
[[upstream.instance]]
id = "a"
url = "http://10.0.0.1/mcp"
weight = 3
metadata = { zone = "eu-west-1a" }
[[upstream.instance]]
id = "b"
url = "http://10.0.0.2/mcp"

[[upstream]]
name = "local"
transport = "stdio"
command = "server"
args = ["--quiet"]
"#;
        let config = parse("upstreams.toml", text).unwrap_or_else(|error| panic!("{error}"));
        let search = &config.upstreams[0];
        assert_eq!(search.strategy, Strategy::Hash(HashKey::ClientIp));
        assert!(search.retries("search_docs") && !search.retries("delete_docs"));
        let probe = Probe {
            kind: ProbeKind::Http("/health".into()),
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(2),
            healthy_threshold: 2,
            unhealthy_threshold: 3,
        };
        assert_eq!(
            search.health,
            HealthConfig {
                failures: 3,
                cooldown: Duration::from_secs(2),
                probe: Some(probe),
                ..HealthConfig::default()
            }
        );
        let ids: Vec<(&str, u32)> = search.instances.iter().map(|i| (i.id.as_str(), i.weight)).collect();
        assert_eq!(ids, [("a", 3), ("b", 1)]);
        assert_eq!(search.instances[0].metadata.get("zone").map(String::as_str), Some("eu-west-1a"));
        for (instance, url) in search.instances.iter().zip(["http://10.0.0.1/mcp", "http://10.0.0.2/mcp"]) {
            let Transport::Http(http) = &instance.transport else { panic!("not http") };
            assert_eq!(http.url, url);
            assert_eq!(http.protocol, Protocol::Version("2025-11-25".into()));
            assert_eq!(http.headers.len(), 1);
        }
        let local = &config.upstreams[1];
        assert_eq!(local.strategy, Strategy::RoundRobin);
        assert_eq!(local.instances.len(), 1);
        assert_eq!(local.instances[0].id, DEFAULT_INSTANCE);
        assert!(
            matches!(&local.instances[0].transport, Transport::Stdio(stdio) if stdio.command == "server" && stdio.args == ["--quiet"])
        );
    }

    #[test]
    fn durations_are_bounded() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        for bad in ["", "0s", "5", "s", "2h", "1.5s", "-1s", "99999999999999999999s"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }
}

//! The upstreams file (TOML): which MCP servers the gateway federates and how to reach them,
//! validated whole before anything starts. Every problem is reported with the file and line.

use std::{collections::BTreeMap, fmt, path::PathBuf, time::Duration};

use globset::{Glob, GlobSet, GlobSetBuilder};
use http::{HeaderName, HeaderValue};
use serde::Deserialize;
use toml::Spanned;

/// The most characters of an upstream name.
pub const MAX_NAME_CHARS: usize = 32;

/// A problem with the upstreams file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}{}: {message}", .line.map(|line| format!(" line {line}")).unwrap_or_default())]
pub struct ConfigError {
    /// The file (path or `s3://` URL).
    pub source_name: String,
    /// The 1-based line of the problem, when known.
    pub line: Option<usize>,
    /// What is wrong and what is allowed.
    pub message: String,
}

/// The whole file, validated.
#[derive(Debug, Clone)]
pub struct UpstreamsConfig {
    /// Every upstream, in file order.
    pub upstreams: Vec<UpstreamConfig>,
    /// How long the aggregated catalogue is reused before a background refresh.
    pub catalogue_ttl: Duration,
    /// Whether to hold a `subscriptions/listen` stream open to each 2026-07-28 upstream that
    /// announces list changes. Not from the file: the process sets it (`serve` and `stdio` do;
    /// a Lambda function, frozen between invocations, cannot hold a stream and relies on the TTL).
    pub listen: bool,
}

/// One upstream MCP server.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// `[a-z0-9][a-z0-9-]*`, the prefix of its exposed names.
    pub name: String,
    /// How to reach it.
    pub transport: Transport,
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
    /// Whether it is reached over stdio (a long-lived child process).
    pub fn is_stdio(&self) -> bool {
        matches!(self.transport, Transport::Stdio(_))
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

/// How an upstream is reached.
#[derive(Debug, Clone)]
pub enum Transport {
    /// Streamable HTTP.
    Http(HttpConfig),
    /// A local command over stdio.
    Stdio(StdioConfig),
}

/// A Streamable HTTP upstream.
#[derive(Debug, Clone)]
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
#[derive(Debug, Clone)]
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
    let timeout = duration(&lines, raw.defaults.timeout.as_ref(), Duration::from_secs(60))?;
    let list_timeout = duration(&lines, raw.defaults.list_timeout.as_ref(), Duration::from_secs(5))?;
    let catalogue_ttl = duration(&lines, raw.defaults.catalogue_ttl.as_ref(), Duration::from_secs(60))?;
    let mut upstreams: Vec<UpstreamConfig> = Vec::new();
    for entry in raw.upstream {
        let start = entry.span().start;
        let upstream = upstream(&lines, entry.into_inner(), timeout, list_timeout)?;
        if upstreams.iter().any(|other| other.name == upstream.name) {
            return Err(lines.error(Some(start), format!("upstream `{}` is defined twice", upstream.name)));
        }
        upstreams.push(upstream);
    }
    Ok(UpstreamsConfig { upstreams, catalogue_ttl, listen: true })
}

fn upstream(
    lines: &Lines<'_>,
    raw: RawUpstream,
    default_timeout: Duration,
    default_list_timeout: Duration,
) -> Result<UpstreamConfig, ConfigError> {
    let name = raw.name.get_ref();
    let valid_name = name.len() <= MAX_NAME_CHARS
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid_name {
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
    let transport = match raw.transport.get_ref().as_str() {
        "http" => {
            let url = raw
                .url
                .as_ref()
                .ok_or_else(|| lines.at(&raw.transport, format!("upstream `{name}`: an http upstream needs `url`")))?;
            let valid_url = url
                .get_ref()
                .parse::<http::Uri>()
                .ok()
                .filter(|uri| matches!(uri.scheme_str(), Some("http" | "https")) && uri.authority().is_some());
            let Some(valid_url) = valid_url else {
                return Err(lines.at(url, format!("`{}` is not an http:// or https:// URL", url.get_ref())));
            };
            if valid_url.authority().is_some_and(|authority| authority.as_str().contains('@')) {
                return Err(lines.at(
                    url,
                    "the URL holds a user name or password; put credentials in `auth` (read from the environment)"
                        .to_owned(),
                ));
            }
            if let Some(command) = &raw.command {
                return Err(lines.at(command, "`command` belongs to stdio upstreams".to_owned()));
            }
            Transport::Http(HttpConfig {
                url: url.get_ref().clone(),
                protocol: protocol(lines, raw.protocol.as_ref())?,
                headers: headers(lines, raw.headers.as_ref())?,
                auth: auth(lines, raw.auth)?,
            })
        }
        "stdio" => {
            let command = raw.command.as_ref().ok_or_else(|| {
                lines.at(&raw.transport, format!("upstream `{name}`: a stdio upstream needs `command`"))
            })?;
            if command.get_ref().trim().is_empty() {
                return Err(lines.at(command, "`command` is empty".to_owned()));
            }
            if let Some(url) = &raw.url {
                return Err(lines.at(url, "`url` belongs to http upstreams".to_owned()));
            }
            if let Some(auth) = &raw.auth {
                return Err(lines.at(auth, "`auth` belongs to http upstreams".to_owned()));
            }
            let inherit_env = raw.inherit_env.map(Spanned::into_inner).unwrap_or_default();
            Transport::Stdio(StdioConfig {
                command: command.get_ref().clone(),
                args: raw.args,
                inherit_env,
                env: raw.env,
                cwd: raw.cwd.map(PathBuf::from),
            })
        }
        other => {
            return Err(lines.at(&raw.transport, format!("transport `{other}` is not one of: http, stdio")));
        }
    };
    Ok(UpstreamConfig {
        name,
        transport,
        timeout: duration(lines, raw.timeout.as_ref(), default_timeout)?,
        list_timeout: duration(lines, raw.list_timeout.as_ref(), default_list_timeout)?,
        allow_tools: patterns(lines, raw.allow_tools.as_ref())?,
        deny_tools: patterns(lines, raw.deny_tools.as_ref())?,
        failure_mode,
        prefix: raw.prefix.unwrap_or(true),
    })
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

fn duration(lines: &Lines<'_>, raw: Option<&Spanned<String>>, default: Duration) -> Result<Duration, ConfigError> {
    let Some(raw) = raw else { return Ok(default) };
    parse_duration(raw.get_ref()).ok_or_else(|| {
        lines.at(raw, format!("`{}` is not a duration; write e.g. 500ms, 30s or 2m (at most 1h)", raw.get_ref()))
    })
}

/// `500ms`, `30s`, `2m`, `1h`: a positive duration of at most an hour.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let duration = match unit {
        "ms" => Duration::from_millis(number),
        "s" => Duration::from_secs(number),
        "m" => Duration::from_secs(number.checked_mul(60)?),
        "h" => Duration::from_secs(number.checked_mul(3600)?),
        _ => return None,
    };
    (!duration.is_zero() && duration <= Duration::from_secs(3600)).then_some(duration)
}

/// Byte offsets to line numbers in one file.
struct Lines<'a> {
    source_name: &'a str,
    text: &'a str,
}

impl<'a> Lines<'a> {
    fn new(source_name: &'a str, text: &'a str) -> Self {
        Self { source_name, text }
    }

    fn error(&self, offset: Option<usize>, message: String) -> ConfigError {
        let line = offset.map(|offset| self.text[..offset.min(self.text.len())].matches('\n').count() + 1);
        ConfigError { source_name: self.source_name.to_owned(), line, message }
    }

    fn at<T>(&self, value: &Spanned<T>, message: String) -> ConfigError {
        self.error(Some(value.span().start), message)
    }
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
        assert_eq!(names, ["docs", "tickets", "vendor", "reports", "everything"]);
        let docs = &config.upstreams[0];
        assert_eq!(docs.timeout, Duration::from_secs(30));
        assert!(docs.exposes("search_docs") && docs.exposes("fetch") && !docs.exposes("other"));
        assert!(!docs.exposes("search_and_delete"), "deny wins");
        assert!(
            matches!(&config.upstreams[3].transport, Transport::Http(http) if matches!(http.auth, Auth::SigV4 { .. }))
        );
        assert!(matches!(&config.upstreams[4].transport, Transport::Stdio(stdio) if stdio.command == "npx"));
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
        ];
        for (text, line, says) in cases {
            let message = error(text);
            assert!(message.starts_with(&format!("upstreams.toml {line}:")), "{text:?}: {message}");
            assert!(message.contains(says), "{text:?}: {message}");
        }
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

//! Changes to the fleet at run time (`serve`'s management API): an http instance registered to an
//! upstream (a new upstream when the name is new), an instance or a whole upstream deregistered.
//! Each is an edit of the current configuration, validated like the upstreams file, which
//! [`super::Catalogue::reconfigure`] then applies. The file stays the source of truth: a reload
//! replaces what was registered.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{
    catalogue::CatalogueError,
    config::{
        self, FailureMode, HealthConfig, HttpConfig, InstanceConfig, MAX_INSTANCES, MAX_NAME_CHARS, MAX_WEIGHT,
        Protocol, Strategy, Transport, UpstreamConfig, UpstreamsConfig,
    },
};

/// The most upstreams a gateway holds.
pub const MAX_UPSTREAMS: usize = 256;

/// The most metadata entries of an instance, and the longest key or value.
const MAX_METADATA: (usize, usize) = (32, 256);

/// Why a change was not made; the fleet is as it was.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// No such upstream or instance.
    #[error("{0}")]
    NotFound(String),
    /// The change is not valid (a bad id or URL, a stdio upstream, a duplicate).
    #[error("{0}")]
    Invalid(String),
    /// The new fleet's catalogue was refused (two tools under one name, a fail-closed upstream
    /// down).
    #[error("the change was refused, and the fleet is as it was: {0}")]
    Refused(#[from] CatalogueError),
}

/// `POST /gateway/register`: one http instance.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// The upstream it belongs to; a new name makes a new upstream (round robin, the file's
    /// default time-outs, no authentication).
    pub upstream: String,
    /// Its id, unique within the upstream: `[a-z0-9][a-z0-9-]*`.
    pub id: String,
    /// Its MCP endpoint (http:// or https://).
    pub url: String,
    /// Its weight, 1 to 1000 (default 1).
    #[serde(default)]
    pub weight: Option<u32>,
    /// Labels reported with it.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// `config` with `registration` added.
pub fn register(config: &UpstreamsConfig, registration: Registration) -> Result<UpstreamsConfig, ChangeError> {
    let Registration { upstream: name, id, url, weight, metadata } = registration;
    if !config::valid_name(&id) {
        return Err(ChangeError::Invalid(format!(
            "instance id `{id}` must match [a-z0-9][a-z0-9-]* and have at most {MAX_NAME_CHARS} characters"
        )));
    }
    config::check_url(&url).map_err(ChangeError::Invalid)?;
    let weight = weight.unwrap_or(1);
    if !(1..=MAX_WEIGHT).contains(&weight) {
        return Err(ChangeError::Invalid(format!("weight must be 1 to {MAX_WEIGHT}")));
    }
    let (entries, length) = MAX_METADATA;
    if metadata.len() > entries || metadata.iter().any(|(key, value)| key.len() > length || value.len() > length) {
        return Err(ChangeError::Invalid(format!(
            "metadata may have at most {entries} entries of at most {length} bytes each"
        )));
    }
    let mut config = config.clone();
    match config.upstreams.iter_mut().find(|upstream| upstream.name == name) {
        Some(upstream) => {
            let Some(Transport::Http(shared)) = upstream.instances.first().map(|first| &first.transport) else {
                return Err(ChangeError::Invalid(format!(
                    "upstream `{name}` is a stdio upstream; its instances are commands, configured in the \
                     upstreams file only"
                )));
            };
            if upstream.instances.iter().any(|instance| instance.id == id) {
                return Err(ChangeError::Invalid(format!(
                    "upstream `{name}` already has an instance `{id}`; deregister it first"
                )));
            }
            if upstream.instances.len() >= MAX_INSTANCES {
                return Err(ChangeError::Invalid(format!("upstream `{name}` has {MAX_INSTANCES} instances already")));
            }
            let transport = Transport::Http(HttpConfig { url, ..shared.clone() });
            upstream.instances.push(InstanceConfig { id, transport, weight, metadata });
        }
        None => {
            if !config::valid_name(&name) {
                return Err(ChangeError::Invalid(format!(
                    "upstream name `{name}` must match [a-z0-9][a-z0-9-]* and have at most {MAX_NAME_CHARS} \
                     characters"
                )));
            }
            if config.upstreams.len() >= MAX_UPSTREAMS {
                return Err(ChangeError::Invalid(format!("the gateway has {MAX_UPSTREAMS} upstreams already")));
            }
            let (timeout, list_timeout) = config.defaults;
            let transport = Transport::Http(HttpConfig {
                url,
                protocol: Protocol::Auto,
                headers: Vec::new(),
                auth: config::Auth::None,
            });
            config.upstreams.push(UpstreamConfig {
                name,
                instances: vec![InstanceConfig { id, transport, weight, metadata }],
                strategy: Strategy::RoundRobin,
                health: HealthConfig::default(),
                retry_tools: None,
                timeout,
                list_timeout,
                allow_tools: None,
                deny_tools: None,
                failure_mode: FailureMode::Open,
                prefix: true,
            });
        }
    }
    Ok(config)
}

/// `config` without the instance `instance` of `upstream` (the whole upstream when `instance` is
/// `None`, or when it was its last instance).
pub fn deregister(
    config: &UpstreamsConfig,
    upstream: &str,
    instance: Option<&str>,
) -> Result<UpstreamsConfig, ChangeError> {
    let mut config = config.clone();
    let Some(at) = config.upstreams.iter().position(|candidate| candidate.name == upstream) else {
        return Err(ChangeError::NotFound(format!("no upstream named `{upstream}`")));
    };
    if let Some(id) = instance {
        let instances = &mut config.upstreams[at].instances;
        let Some(found) = instances.iter().position(|candidate| candidate.id == id) else {
            return Err(ChangeError::NotFound(format!("upstream `{upstream}` has no instance `{id}`")));
        };
        instances.remove(found);
        if !instances.is_empty() {
            return Ok(config);
        }
    }
    config.upstreams.remove(at);
    Ok(config)
}

/// `url` as reports show it: without its query or fragment, which may hold a key.
pub fn shown_url(url: &str) -> String {
    match url.find(['?', '#']) {
        Some(at) => format!("{}?…", &url[..at]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> UpstreamsConfig {
        let text = "[[upstream]]\nname = \"web\"\ntransport = \"http\"\nurl = \"http://127.0.0.1:1/mcp\"\n\
                    headers = { \"X-Team\" = \"data\" }\n\n\
                    [[upstream]]\nname = \"cmd\"\ntransport = \"stdio\"\ncommand = \"server\"\n";
        config::parse("test.toml", text).unwrap_or_else(|error| panic!("{error}"))
    }

    fn registration(upstream: &str, id: &str, url: &str) -> Registration {
        Registration {
            upstream: upstream.into(),
            id: id.into(),
            url: url.into(),
            weight: Some(2),
            metadata: BTreeMap::new(),
        }
    }

    #[test]
    fn a_registered_instance_shares_its_upstreams_settings_and_a_new_name_makes_an_upstream() {
        let added = register(&config(), registration("web", "b", "http://127.0.0.1:2/mcp"))
            .unwrap_or_else(|error| panic!("{error}"));
        let web = &added.upstreams[0];
        assert_eq!(web.instances.len(), 2);
        let Transport::Http(http) = &web.instances[1].transport else { panic!("not http") };
        assert_eq!((http.url.as_str(), http.headers.len(), web.instances[1].weight), ("http://127.0.0.1:2/mcp", 1, 2));
        let new = register(&added, registration("fresh", "a", "https://example.com/mcp"))
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(new.upstreams.len(), 3);
        assert_eq!(new.upstreams[2].timeout, new.defaults.0);
    }

    #[test]
    fn registrations_are_validated_like_the_file() {
        let cases = [
            (registration("web", "default", "http://127.0.0.1:2/mcp"), "already has an instance `default`"),
            (registration("web", "B!", "http://127.0.0.1:2/mcp"), "instance id `B!`"),
            (registration("web", "b", "ftp://127.0.0.1/mcp"), "not an http:// or https:// URL"),
            (registration("web", "b", "http://user:pw@127.0.0.1/mcp"), "user name or password"),
            (registration("cmd", "b", "http://127.0.0.1:2/mcp"), "stdio upstream"),
            (registration("Bad Name", "b", "http://127.0.0.1:2/mcp"), "upstream name `Bad Name`"),
            (Registration { weight: Some(0), ..registration("web", "b", "http://127.0.0.1:2/mcp") }, "weight"),
        ];
        for (registration, says) in cases {
            let error = register(&config(), registration.clone()).err().map(|error| error.to_string());
            assert!(error.as_deref().is_some_and(|error| error.contains(says)), "{registration:?}: {error:?}");
        }
    }

    #[test]
    fn deregistering_the_last_instance_removes_the_upstream() {
        let two = register(&config(), registration("web", "b", "http://127.0.0.1:2/mcp"))
            .unwrap_or_else(|error| panic!("{error}"));
        let one = deregister(&two, "web", Some("default")).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(one.upstreams[0].instances.len(), 1);
        let none = deregister(&one, "web", Some("b")).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(none.upstreams.iter().map(|upstream| upstream.name.as_str()).collect::<Vec<_>>(), ["cmd"]);
        assert!(matches!(deregister(&none, "web", None), Err(ChangeError::NotFound(_))));
        assert!(matches!(deregister(&two, "web", Some("zz")), Err(ChangeError::NotFound(_))));
        assert_eq!(shown_url("http://x/mcp?key=1"), "http://x/mcp?…");
    }
}

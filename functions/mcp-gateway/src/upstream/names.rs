//! The names clients see for upstream tools and prompts, and the URIs of upstream resources.
//!
//! A tool `search` of upstream `docs` is `docs__search`: at most 64 characters of
//! `[A-Za-z0-9_-]` (what Claude, Cursor, VS Code and Windsurf accept). Other characters become `_`;
//! a name that is still too long keeps its first characters and ends in `_` and 8 hex digits of a
//! SHA-256 of the upstream and the original name, so it is the same on every instance and every
//! start. The catalogue keeps the mapping from exposed name to (upstream, original name); a name
//! is never parsed back.

use sha2::{Digest as _, Sha256};

/// The longest exposed name.
pub const MAX_NAME_CHARS: usize = 64;
/// Between the upstream and the tool in an exposed name.
pub const SEPARATOR: &str = "__";
/// The scheme of an upstream resource's exposed URI: `gateway-upstream://<upstream>/<its own URI>`.
/// The upstream's URI follows verbatim (so a URI template stays a template); upstream names hold
/// no `/`, so the first one after the name ends it.
pub const RESOURCE_SCHEME: &str = "gateway-upstream://";

/// The exposed name of `upstream`'s tool or prompt `name`.
pub fn exposed(upstream: &str, name: &str, prefix: bool) -> String {
    let joined = if prefix { format!("{upstream}{SEPARATOR}{name}") } else { name.to_owned() };
    let clean: String =
        joined.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect();
    // Replaced characters can make two names the same (`a.b`, `a b`): the catalogue reports
    // such a collision, naming both.
    if clean.len() <= MAX_NAME_CHARS {
        return clean;
    }
    let digest = Sha256::digest(format!("{upstream}/{name}").as_bytes());
    let suffix = hex::encode(&digest[..4]);
    format!("{}_{suffix}", &clean[..MAX_NAME_CHARS - suffix.len() - 1])
}

/// The exposed URI of `upstream`'s resource (or resource template) `uri`.
pub fn resource_uri(upstream: &str, uri: &str) -> String {
    format!("{RESOURCE_SCHEME}{upstream}/{uri}")
}

/// The upstream and its own URI, from an exposed resource URI.
pub fn parse_resource_uri(exposed: &str) -> Option<(String, String)> {
    let rest = exposed.strip_prefix(RESOURCE_SCHEME)?;
    let (upstream, uri) = rest.split_once('/')?;
    Some((upstream.to_owned(), uri.to_owned()))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn names_are_prefixed_cleaned_and_bounded() {
        assert_eq!(exposed("docs", "search", true), "docs__search");
        assert_eq!(exposed("docs", "search", false), "search");
        assert_eq!(exposed("docs", "get.page v2", true), "docs__get_page_v2");
        assert_eq!(exposed("docs", "日本", true), "docs____");
        let long = "x".repeat(100);
        let name = exposed("docs", &long, true);
        assert_eq!(name.len(), MAX_NAME_CHARS);
        assert_eq!(name, exposed("docs", &long, true), "stable");
        assert_ne!(name, exposed("docs", &format!("{long}y"), true), "the hash tells long names apart");
        assert!(name.starts_with("docs__xxxx"));
    }

    proptest! {
        #[test]
        fn every_exposed_name_is_what_clients_accept(upstream in "[a-z0-9][a-z0-9-]{0,31}", name in ".{0,100}") {
            let exposed = exposed(&upstream, &name, true);
            prop_assert!(exposed.len() <= MAX_NAME_CHARS);
            prop_assert!(exposed.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'));
        }

        #[test]
        fn resource_uris_round_trip(upstream in "[a-z0-9][a-z0-9-]{0,31}", uri in ".{0,80}") {
            // The upstream part never holds a `/`, so whatever the URI holds, it comes back.
            let exposed = resource_uri(&upstream, &uri);
            prop_assert_eq!(parse_resource_uri(&exposed), Some((upstream, uri)));
        }
    }
}

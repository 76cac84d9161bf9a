//! The HTTP client of the gateway's own side requests (JWT keys, STS, health checks, span
//! export): one way to make it, so each follows the same rules.
//!
//! **Invariants:** no redirects are followed (a redirect could point a credential-bearing or
//! checked request at another host), every request is bounded by a timeout, and the requests
//! say who sent them (`mcp-gateway/<version>`).

use std::time::Duration;

/// How long connecting may take, at most.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A client whose requests take at most `timeout` each (connecting included).
pub fn client(timeout: Duration) -> reqwest::Result<reqwest::Client> {
    builder(timeout).build()
}

/// [`client`], but connecting directly even when `HTTP_PROXY`/`HTTPS_PROXY`/`ALL_PROXY` are set:
/// for `mcp-gateway health`, whose check of its own server must not go out through a proxy set
/// for the server's calls.
pub fn direct_client(timeout: Duration) -> reqwest::Result<reqwest::Client> {
    builder(timeout).no_proxy().build()
}

fn builder(timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout.min(CONNECT_TIMEOUT))
        .timeout(timeout)
        .user_agent(concat!("mcp-gateway/", env!("CARGO_PKG_VERSION")))
}

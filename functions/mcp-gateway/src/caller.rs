//! Who is calling, as the transport saw it: what authorization rules and rate limits judge, and
//! what `strategy = "hash"` keeps a caller on one upstream instance by. Filled in by the
//! transport (the IAM principal from API Gateway's request context on Lambda; in `serve` the
//! principal `[auth]` verified and the peer address); empty on stdio.

use std::{net::IpAddr, sync::Arc};

use serde_json::{Map, Value};

/// The caller of one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    /// The authenticated identity (the IAM caller's ARN, a token's subject, `key:<name>`,
    /// `user:<name>`), when there is one.
    pub principal: Option<Arc<str>>,
    /// A JWT caller's claims.
    pub claims: Option<Arc<Map<String, Value>>>,
    /// The client's address.
    pub client_ip: Option<IpAddr>,
}

impl Caller {
    /// The key of `strategy = "hash"`: the principal (falling back to the address, when
    /// `principal_first`), or the address.
    pub fn key(&self, principal_first: bool) -> Option<String> {
        let ip = || self.client_ip.map(|ip| ip.to_string());
        if principal_first { self.principal.as_deref().map(str::to_owned).or_else(ip) } else { ip() }
    }
}

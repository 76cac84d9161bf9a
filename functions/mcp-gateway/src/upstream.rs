//! Federation: upstream MCP servers behind the gateway. Their tools join the registry under
//! exposed names (`<upstream>__<tool>`), and calls to them are routed by the registry; the
//! transports and the MCP server layer do not know the difference.
//!
//! `config` reads the upstreams file; `pool` is one upstream: its instances, each an rmcp client
//! (`client`) behind a circuit breaker (`breaker`), one picked per request by the upstream's
//! strategy (`balance`); `sigv4` signs for upstreams behind AWS IAM, `names` makes exposed names,
//! `catalogue` aggregates the tools, and `status` is the `gateway_status` tool. **Invariant:** the
//! state kept here (connections, legacy sessions, breakers, the catalogue) is per upstream
//! instance and per process, never per client, and a client's identity reaches an upstream only
//! through headers the file names (the caller's identity only picks the instance, for
//! `strategy = "hash"`).

pub mod balance;
pub mod breaker;
pub mod catalogue;
pub mod client;
pub mod config;
pub mod names;
pub mod pool;
pub mod sigv4;
pub mod status;

use std::sync::Arc;

use crate::storage::{ObjectPath, S3Root};

pub use catalogue::Catalogue;
pub use config::{ConfigError, UpstreamsConfig};

/// The largest upstreams file read.
const MAX_FILE_BYTES: u64 = 1 << 20;

/// Reads and validates the upstreams file at `source`: a local path or `s3://bucket/key`.
pub async fn load(source: &str) -> Result<UpstreamsConfig, ConfigError> {
    config::parse(source, &read_text(source).await?)
}

/// The text of a small file (at most 1 MiB): a local path or `s3://bucket/key`.
pub async fn read_text(source: &str) -> Result<String, ConfigError> {
    let unreadable = |message: String| ConfigError { source_name: source.to_owned(), line: None, message };
    let text = if let Some(rest) = source.strip_prefix("s3://") {
        let (bucket, key) =
            rest.split_once('/').ok_or_else(|| unreadable("names no object; use s3://bucket/key".into()))?;
        let (folder, file) = key.rsplit_once('/').unwrap_or(("", key));
        let root = S3Root::connect(&format!("s3://{bucket}/{folder}")).await.map_err(unreadable)?;
        let path = ObjectPath::parse(file).map_err(|error| unreadable(error.to_string()))?;
        let entry = root.stat(&path).await.map_err(|error| unreadable(error.to_string()))?;
        if entry.size > MAX_FILE_BYTES {
            return Err(unreadable(format!("is {} bytes; the limit is {MAX_FILE_BYTES}", entry.size)));
        }
        let bytes = root.read_range(&path, 0, entry.size).await.map_err(|error| unreadable(error.to_string()))?;
        String::from_utf8(bytes).map_err(|_| unreadable("is not UTF-8 text".into()))?
    } else {
        let metadata = std::fs::metadata(source).map_err(|error| unreadable(format!("cannot be read: {error}")))?;
        if metadata.len() > MAX_FILE_BYTES {
            return Err(unreadable(format!("is {} bytes; the limit is {MAX_FILE_BYTES}", metadata.len())));
        }
        std::fs::read_to_string(source).map_err(|error| unreadable(format!("cannot be read: {error}")))?
    };
    Ok(text)
}

/// The upstreams of one gateway process and their catalogue.
#[derive(Debug, Clone)]
pub struct Federation {
    /// The aggregated tools.
    pub catalogue: Arc<Catalogue>,
}

impl Federation {
    /// Upstreams from `config`, none contacted yet; `reserved` are the built-in names.
    pub fn new(config: UpstreamsConfig, reserved: catalogue::Reserved) -> Self {
        let listen = config.listen;
        let upstreams =
            config.upstreams.into_iter().map(|upstream| Arc::new(pool::Upstream::new(upstream, listen))).collect();
        Self { catalogue: Arc::new(Catalogue::new(upstreams, config.catalogue_ttl, reserved)) }
    }
}

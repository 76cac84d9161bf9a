//! AWS SigV4 for MCP over HTTP, shared by `mcp-sigv4-proxy`, `mcp-compare` and the gateway's
//! upstream client: where an endpoint is and what to sign it for (`endpoint`), the AWS credential
//! chain with caching and role assumption (`credentials`), signing one request (`sign`), and the
//! signed STS `GetCallerIdentity` tokens that carry IAM identity to a gateway without API
//! Gateway (`sts_token`).
//!
//! ```
//! use mcp_sigv4::endpoint::Endpoint;
//!
//! let endpoint = Endpoint::new("https://abc123.execute-api.eu-west-1.amazonaws.com/prod/mcp", None, None)?;
//! assert_eq!((endpoint.service.as_str(), endpoint.region.as_str()), ("execute-api", "eu-west-1"));
//! # Ok::<(), mcp_sigv4::endpoint::EndpointError>(())
//! ```

pub mod credentials;
pub mod endpoint;
pub mod sign;
pub mod sts_token;

//! `mcp-sigv4-proxy`: a local stdio MCP server that forwards every JSON-RPC message to an
//! IAM-protected MCP endpoint (API Gateway, Lambda Function URL, Bedrock AgentCore), signed
//! with AWS SigV4, and streams the answers back.
//!
//! stdin ([`message`]: bounded lines, checked) → [`forward::Proxy`] (one task per message) →
//! signed POST → [`answer`] (complete and checked before any byte is written) → stdout, one line
//! per JSON-RPC message; logs go to stderr.

pub mod answer;
pub mod doctor;
pub mod errors;
pub mod filter;
pub mod forward;
pub mod message;
pub mod process;
pub mod retry;

// SigV4 lives in `mcp-sigv4`, shared with the gateway and mcp-compare.
pub use mcp_sigv4::{credentials, endpoint, sign};

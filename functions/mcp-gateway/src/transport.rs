//! Transports: the three ways in (Lambda, a long-lived HTTP server, stdio), each a thin adapter
//! over the same [`crate::server::Core`].

pub mod http;
pub mod lambda;
mod message;
pub mod serve;
pub mod stdio;
#[cfg(feature = "edge")]
pub mod tls;

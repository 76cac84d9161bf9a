//! The SQL worker's network sandbox, applied to this test process (its own binary, so nothing
//! else runs in it): after `forbid_network`, no socket can be opened, so no library in the worker
//! (polars' object store and HTTP client included) can reach a URL.

#![cfg(target_os = "linux")]

use std::{
    net::{TcpListener, TcpStream},
    time::Duration,
};

#[test]
fn after_forbid_network_no_connection_can_be_opened() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|error| panic!("bind: {error}"));
    let address = listener.local_addr().unwrap_or_else(|error| panic!("address: {error}"));
    // Before: a connection goes through, so the check below can fail.
    assert!(TcpStream::connect_timeout(&address, Duration::from_secs(5)).is_ok());
    assert!(listener.accept().is_ok());
    let applied = mcp_gateway::tools::db::worker::forbid_network();
    assert!(applied.is_ok(), "{applied:?}");
    let refused = TcpStream::connect_timeout(&address, Duration::from_secs(5));
    let kind = refused.as_ref().err().map(std::io::Error::kind);
    assert_eq!(kind, Some(std::io::ErrorKind::PermissionDenied), "{refused:?}");
    let v6 = std::net::UdpSocket::bind("[::1]:0").err().map(|error| error.kind());
    assert_eq!(v6, Some(std::io::ErrorKind::PermissionDenied));
    listener.set_nonblocking(true).ok();
    assert!(listener.accept().is_err(), "no connection arrived");
}

//! How MCP messages are framed on the wire, read with bounded memory.
//!
//! - [`sse`]: one incremental Server-Sent-Events parser (the WHATWG `text/event-stream` rules)
//!   for every reader of Streamable HTTP answers in the workspace. A single event may hold at
//!   most a given number of bytes, whatever the upstream sends.
//! - [`line`]: a bounded async line reader (stdio transports): a line past the limit is
//!   reported by its length and skipped without being held in memory.
//! - [`trace`]: W3C `traceparent` values, parsed and made (the gateway and the proxy).
//!
//! The crate does no IO of its own: [`sse::EventReader`] is fed byte slices, and
//! [`line::LineReader`] reads only from the reader it is given.
//!
//! ```
//! use mcp_wire::sse::EventReader;
//!
//! let mut reader = EventReader::new(1 << 20);
//! reader.push(b"event: message\r\ndata: {\"jsonrpc\":");
//! assert!(reader.next_event()?.is_none()); // the event is not complete yet
//! reader.push(b"\"2.0\"}\r\n\r\n");
//! let event = reader.next_event()?.ok_or("no event")?;
//! assert_eq!(event.event.as_deref(), Some("message"));
//! assert_eq!(&event.data[..], br#"{"jsonrpc":"2.0"}"#);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod line;
pub mod sse;
pub mod trace;

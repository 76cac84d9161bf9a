//! W3C Trace Context (`traceparent`): `00-<trace id>-<parent span id>-<flags>`, parsed strictly
//! and made anew, so that one request can be followed from the client through the proxy and the
//! gateway to the upstream servers in each one's logs.

use std::fmt;

/// One position in a trace: the trace, the span, and whether it is sampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    /// The trace (16 bytes, not all zero).
    pub trace_id: [u8; 16],
    /// The span (8 bytes, not all zero).
    pub span_id: [u8; 8],
    /// The `sampled` flag.
    pub sampled: bool,
}

impl TraceContext {
    /// A `traceparent` header value, if it is a valid one (version `00`, or a later version
    /// read as `00` as the spec asks: its first four fields).
    pub fn parse(header: &str) -> Option<Self> {
        let header = header.trim();
        let mut fields = header.splitn(5, '-');
        let (version, trace, span, flags) = (fields.next()?, fields.next()?, fields.next()?, fields.next()?);
        let rest = fields.next();
        let lower_hex =
            |text: &str, len: usize| text.len() == len && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !lower_hex(version, 2) || version == "ff" || (version == "00" && rest.is_some()) {
            return None;
        }
        if !lower_hex(trace, 32) || !lower_hex(span, 16) || !lower_hex(flags, 2) {
            return None;
        }
        let mut trace_id = [0u8; 16];
        let mut span_id = [0u8; 8];
        let mut flags_byte = [0u8; 1];
        hex::decode_to_slice(trace, &mut trace_id).ok()?;
        hex::decode_to_slice(span, &mut span_id).ok()?;
        hex::decode_to_slice(flags, &mut flags_byte).ok()?;
        let [flags] = flags_byte;
        (trace_id != [0; 16] && span_id != [0; 8]).then_some(Self { trace_id, span_id, sampled: flags & 1 == 1 })
    }

    /// The start of a new trace (sampled).
    pub fn new_root() -> Self {
        Self { trace_id: nonzero_bytes(), span_id: nonzero_bytes(), sampled: true }
    }

    /// A span of this trace under this one.
    pub fn child(&self) -> Self {
        Self { span_id: nonzero_bytes(), ..*self }
    }

    /// The trace id in hex.
    pub fn trace_id_hex(&self) -> String {
        hex::encode(self.trace_id)
    }

    /// The span id in hex.
    pub fn span_id_hex(&self) -> String {
        hex::encode(self.span_id)
    }
}

impl fmt::Display for TraceContext {
    /// The `traceparent` header value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "00-{}-{}-{:02x}", self.trace_id_hex(), self.span_id_hex(), u8::from(self.sampled))
    }
}

fn nonzero_bytes<const N: usize>() -> [u8; N] {
    loop {
        let mut bytes = [0u8; N];
        for byte in &mut bytes {
            *byte = fastrand::u8(..);
        }
        if bytes != [0; N] {
            return bytes;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_headers_round_trip_and_invalid_ones_are_refused() {
        let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let parsed = TraceContext::parse(header);
        assert_eq!(parsed.map(|context| context.to_string()).as_deref(), Some(header));
        let later_version = TraceContext::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-extra");
        assert!(later_version.is_some_and(|context| !context.sampled));
        for invalid in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "garbage",
        ] {
            assert_eq!(TraceContext::parse(invalid), None, "{invalid}");
        }
    }

    #[test]
    fn a_child_keeps_the_trace_and_gets_a_span_of_its_own() {
        let root = TraceContext::new_root();
        let child = root.child();
        assert_eq!((child.trace_id, child.sampled), (root.trace_id, root.sampled));
        assert_ne!(child.span_id, root.span_id);
        assert_eq!(TraceContext::parse(&child.to_string()), Some(child));
    }
}

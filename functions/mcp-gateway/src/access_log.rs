//! One structured log line per HTTP request (CloudWatch on Lambda, stderr elsewhere), counted in
//! the [metrics](crate::metrics) as it is written.
//!
//! The transport creates a [`RequestRecord`] per request and puts it in the request's extensions;
//! the MCP handler adds what only it knows (the tool and whether it failed); the transport writes
//! the line when the response is ready, and the request's span goes to the
//! [OTLP exporter](crate::trace_export) when one is set.

use std::{
    net::IpAddr,
    sync::{Arc, Mutex},
    time::Instant,
};

use crate::caller::Caller;

/// What is known about one request, filled in as it is handled.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    started: Instant,
    deadline: Option<Instant>,
    fields: Arc<Mutex<Fields>>,
    /// Counts the request as under way in the metrics until the last clone is dropped.
    _in_flight: Arc<crate::metrics::InFlight>,
}

/// The fields of the log line.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Fields {
    /// The HTTP method.
    pub http_method: String,
    /// The JSON-RPC method (`tools/call`, ...), or `batch`.
    pub method: Option<String>,
    /// The tool called, for `tools/call`.
    pub tool: Option<String>,
    /// The protocol revision the request speaks.
    pub protocol_version: Option<String>,
    /// The JSON-RPC id, as JSON text.
    pub rpc_id: Option<String>,
    /// The Lambda (or API Gateway) request id.
    pub request_id: Option<String>,
    /// Who the caller is: the IAM caller from the API Gateway request context on Lambda, the
    /// principal `[auth]` verified in `serve`.
    pub principal: Option<Arc<str>>,
    /// How the principal was authenticated (`iam`, `jwt`, `api_key`, `basic`).
    pub auth: Option<&'static str>,
    /// A JWT caller's claims (not logged; for authorization rules).
    pub claims: Option<Arc<serde_json::Map<String, serde_json::Value>>>,
    /// The client's address (the TCP peer in `serve`, API Gateway's `sourceIp` on Lambda).
    pub client_ip: Option<IpAddr>,
    /// The HTTP status returned.
    pub status: u16,
    /// The JSON-RPC error code returned, if any.
    pub error_code: Option<i64>,
    /// Why the request was refused or failed, in words.
    pub reason: Option<String>,
    /// Whether the tool call returned `isError: true`.
    pub tool_error: bool,
    /// Whether this is one message of a JSON-RPC batch (the batch has a line of its own).
    pub batch: bool,
    /// This request's span of its trace (the client's `traceparent` continued, or a new trace).
    pub trace: Option<mcp_wire::trace::TraceContext>,
    /// The client's span, when it sent a `traceparent`.
    pub parent_span: Option<mcp_wire::trace::TraceContext>,
}

impl RequestRecord {
    /// Starts the record of a request.
    pub fn start(http_method: &str) -> Self {
        let fields = Fields { http_method: http_method.to_owned(), ..Fields::default() };
        Self {
            started: Instant::now(),
            deadline: None,
            fields: Arc::new(Mutex::new(fields)),
            _in_flight: Arc::new(crate::metrics::global().start()),
        }
    }

    /// The record of one message of a JSON-RPC batch carried by this request: its own fields and
    /// log line (its span a child of the request's), with the request's deadline, request id and
    /// caller.
    pub fn element(&self) -> Self {
        let parent = self.fields();
        let fields = Fields {
            http_method: parent.http_method,
            request_id: parent.request_id,
            principal: parent.principal,
            auth: parent.auth,
            claims: parent.claims,
            trace: parent.trace.map(|trace| trace.child()),
            parent_span: parent.trace,
            client_ip: parent.client_ip,
            batch: true,
            ..Fields::default()
        };
        Self {
            started: Instant::now(),
            deadline: self.deadline,
            fields: Arc::new(Mutex::new(fields)),
            _in_flight: Arc::new(crate::metrics::global().start()),
        }
    }

    /// Sets when the request must be answered by (on Lambda: the invocation's deadline).
    pub fn with_deadline(mut self, deadline: Option<Instant>) -> Self {
        self.deadline = deadline;
        self
    }

    /// When the request must be answered by, if the platform sets a limit.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Who made the request.
    pub fn caller(&self) -> Caller {
        let fields = self.fields.lock().ok();
        Caller {
            principal: fields.as_ref().and_then(|fields| fields.principal.clone()),
            claims: fields.as_ref().and_then(|fields| fields.claims.clone()),
            client_ip: fields.and_then(|fields| fields.client_ip),
        }
    }

    /// This request's place in its trace, to pass on to upstreams.
    pub fn trace(&self) -> Option<mcp_wire::trace::TraceContext> {
        self.fields.lock().ok().and_then(|fields| fields.trace)
    }

    /// The record the transport put in rmcp's request extensions, if this call came over HTTP.
    pub fn from_extensions(extensions: &rmcp::model::Extensions) -> Option<Self> {
        extensions.get::<http::request::Parts>().and_then(|parts| parts.extensions.get::<Self>()).cloned()
    }

    /// Changes fields under the lock.
    pub fn update(&self, change: impl FnOnce(&mut Fields)) {
        if let Ok(mut fields) = self.fields.lock() {
            change(&mut fields);
        }
    }

    /// Records the tool called.
    pub fn set_tool(&self, tool: &str) {
        self.update(|fields| fields.tool = Some(tool.to_owned()));
    }

    /// Records whether the tool call failed (`isError: true`), and why.
    pub fn set_tool_error(&self, is_error: bool, reason: Option<String>) {
        self.update(|fields| {
            fields.tool_error = is_error;
            if is_error {
                fields.reason = reason;
            }
        });
    }

    /// A copy of the fields so far.
    pub fn fields(&self) -> Fields {
        self.fields.lock().map(|fields| fields.clone()).unwrap_or_default()
    }

    /// Writes the log line.
    pub fn emit(&self) {
        let fields = self.fields();
        let latency = self.started.elapsed();
        let latency_ms = latency.as_secs_f64() * 1000.0;
        let outcome = outcome(&fields);
        crate::metrics::record(&crate::metrics::Observation {
            method: fields.method.as_deref(),
            tool: fields.tool.as_deref(),
            status: fields.status,
            outcome,
            latency,
        });
        if let Some(trace) = fields.trace.filter(|_| crate::trace_export::enabled()) {
            crate::trace_export::export(span(&fields, trace, latency, outcome));
        }
        tracing::info!(
            target: "mcp_gateway::request",
            http_method = %fields.http_method,
            method = fields.method.as_deref(),
            tool = fields.tool.as_deref(),
            protocol_version = fields.protocol_version.as_deref(),
            rpc_id = fields.rpc_id.as_deref(),
            request_id = fields.request_id.as_deref(),
            principal = fields.principal.as_deref(),
            auth = fields.auth,
            trace_id = fields.trace.map(|trace| trace.trace_id_hex()),
            span_id = fields.trace.map(|trace| trace.span_id_hex()),
            parent_span_id = fields.parent_span.map(|parent| parent.span_id_hex()),
            client_ip = fields.client_ip.map(tracing::field::display),
            status = fields.status,
            error_code = fields.error_code,
            reason = fields.reason.as_deref(),
            batch_element = fields.batch.then_some(true),
            latency_ms,
            outcome,
        );
    }
}

/// The request as a server span, named and described as OpenTelemetry's MCP conventions have it.
fn span(
    fields: &Fields,
    trace: mcp_wire::trace::TraceContext,
    latency: std::time::Duration,
    outcome: &'static str,
) -> crate::trace_export::Span {
    use serde_json::Value;
    let end = std::time::SystemTime::now();
    let name = match (&fields.method, &fields.tool) {
        (Some(method), Some(tool)) => format!("{method} {tool}"),
        (Some(method), None) => method.clone(),
        (None, _) => fields.http_method.clone(),
    };
    let mut attributes = vec![("http.request.method", Value::from(fields.http_method.as_str()))];
    let text = [
        ("mcp.method.name", fields.method.as_deref()),
        ("gen_ai.tool.name", fields.tool.as_deref()),
        ("mcp.protocol.version", fields.protocol_version.as_deref()),
        ("jsonrpc.request.id", fields.rpc_id.as_deref()),
        ("faas.invocation_id", fields.request_id.as_deref()),
        ("enduser.id", fields.principal.as_deref()),
        ("mcp_gateway.auth", fields.auth),
    ];
    attributes.extend(text.into_iter().filter_map(|(key, value)| Some((key, Value::from(value?)))));
    if let Some(ip) = fields.client_ip {
        attributes.push(("client.address", Value::from(ip.to_string())));
    }
    if fields.status > 0 {
        attributes.push(("http.response.status_code", Value::from(fields.status)));
    }
    if let Some(code) = fields.error_code {
        attributes.push(("rpc.jsonrpc.error_code", Value::from(code)));
    }
    attributes.push(("mcp_gateway.outcome", Value::from(outcome)));
    let error = (outcome != "ok").then(|| fields.reason.clone().unwrap_or_else(|| outcome.to_owned()));
    crate::trace_export::Span {
        trace,
        parent: fields.parent_span,
        name,
        start: end.checked_sub(latency).unwrap_or(end),
        end,
        attributes,
        error,
    }
}

fn outcome(fields: &Fields) -> &'static str {
    if fields.error_code.is_some() || fields.status >= 400 {
        "error"
    } else if fields.tool_error {
        "tool_error"
    } else {
        "ok"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: the messages of a batch were logged nowhere and ran without the invocation's
    /// deadline; each element now has its own record with the request's deadline and identity.
    #[test]
    fn batch_elements_keep_the_requests_deadline_and_caller() {
        let deadline = Instant::now() + std::time::Duration::from_secs(30);
        let request = RequestRecord::start("POST").with_deadline(Some(deadline));
        request.update(|fields| {
            fields.principal = Some("arn:aws:iam::1:user/a".into());
            fields.request_id = Some("req-1".to_owned());
            fields.method = Some("batch".to_owned());
        });
        let element = request.element();
        element.set_tool("file");
        assert_eq!(element.deadline(), Some(deadline));
        let fields = element.fields();
        assert_eq!(fields.principal.as_deref(), Some("arn:aws:iam::1:user/a"));
        assert_eq!(fields.request_id.as_deref(), Some("req-1"));
        assert!(fields.batch && fields.method.is_none());
        assert_eq!(request.fields().trace, None);
        let traced = RequestRecord::start("POST");
        let trace = mcp_wire::trace::TraceContext::new_root();
        traced.update(|fields| fields.trace = Some(trace));
        let element = traced.element().fields();
        let (Some(span), Some(parent)) = (element.trace, element.parent_span) else { panic!("{element:?}") };
        assert_eq!((span.trace_id, parent), (trace.trace_id, trace), "a span of its own, under the request's");
        assert_ne!(span.span_id, trace.span_id);
        assert_eq!(request.fields().tool, None, "the element's fields are its own");
    }
}

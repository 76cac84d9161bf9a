//! Optional OTLP export of the gateway's spans: one server span per request (the one the access
//! log's `trace_id`/`span_id` name), sent as OTLP/HTTP JSON to `OTEL_EXPORTER_OTLP_ENDPOINT`
//! (`/v1/traces` appended) or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (as is), with
//! `OTEL_EXPORTER_OTLP_HEADERS` and `OTEL_SERVICE_NAME` as the OpenTelemetry SDKs read them.
//!
//! **Invariants:** the request path never waits on the exporter: a finished span goes into a
//! bounded queue ([`QUEUE`] spans; when it is full the span is dropped and counted), and one
//! background task sends batches of at most [`BATCH`] spans at least every [`INTERVAL`], each POST
//! bounded by [`SEND_TIMEOUT`], never retried (a collector that is down loses those spans, with a
//! warning). Spans of traces the client marked as not sampled are not exported. Nothing is
//! exported unless an endpoint is set.

use std::{
    sync::{
        OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime},
};

use serde_json::{Value, json};
use tokio::sync::mpsc;

/// Spans waiting to be sent, at most.
pub const QUEUE: usize = 4096;
/// Spans per POST, at most.
pub const BATCH: usize = 512;
/// How long a span waits for its batch, at most.
pub const INTERVAL: Duration = Duration::from_secs(1);
/// How long one POST may take.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest endpoint URL and header list accepted.
const MAX_SETTING_BYTES: usize = 4096;

/// Where spans go, read from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSettings {
    /// The full URL spans are POSTed to.
    pub url: String,
    /// Extra headers (a collector's API key), checked when read.
    pub headers: http::HeaderMap,
    /// `service.name` of the resource.
    pub service_name: String,
}

impl ExportSettings {
    /// The settings `get` (an environment lookup) gives, `None` when no endpoint is set, or a
    /// message naming the setting that does not parse.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, String> {
        let get = |name: &str| get(name).filter(|value| !value.trim().is_empty());
        let protocol = get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").or_else(|| get("OTEL_EXPORTER_OTLP_PROTOCOL"));
        if let Some(protocol) = protocol.filter(|protocol| protocol.trim() != "http/json") {
            return Err(format!(
                "OTEL_EXPORTER_OTLP_PROTOCOL={protocol}: mcp-gateway exports OTLP over HTTP as JSON only; set it to \
                 http/json or leave it unset (collectors take JSON on the same port and path)"
            ));
        }
        let url = match (get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), get("OTEL_EXPORTER_OTLP_ENDPOINT")) {
            (Some(url), _) => check_url("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", url.trim())?,
            (None, Some(base)) => {
                let base = check_url("OTEL_EXPORTER_OTLP_ENDPOINT", base.trim())?;
                format!("{}/v1/traces", base.trim_end_matches('/'))
            }
            (None, None) => return Ok(None),
        };
        let headers = match get("OTEL_EXPORTER_OTLP_TRACES_HEADERS").or_else(|| get("OTEL_EXPORTER_OTLP_HEADERS")) {
            Some(list) => parse_headers(&list)?,
            None => http::HeaderMap::new(),
        };
        let service_name = get("OTEL_SERVICE_NAME").unwrap_or_else(|| "mcp-gateway".to_owned());
        if service_name.len() > 256 {
            return Err("OTEL_SERVICE_NAME is longer than 256 bytes".to_owned());
        }
        Ok(Some(Self { url, headers, service_name }))
    }
}

fn check_url(name: &str, url: &str) -> Result<String, String> {
    if url.len() > MAX_SETTING_BYTES {
        return Err(format!("{name} is longer than {MAX_SETTING_BYTES} bytes"));
    }
    let parsed: http::Uri = url.parse().map_err(|_| format!("{name}={url} is not a URL"))?;
    match (parsed.scheme_str(), parsed.authority()) {
        (Some("http" | "https"), Some(_)) => Ok(url.to_owned()),
        _ => Err(format!("{name}={url} must be an http:// or https:// URL (e.g. http://localhost:4318)")),
    }
}

/// `key1=value1,key2=value2` (values percent-decoded, as the OpenTelemetry spec says).
fn parse_headers(list: &str) -> Result<http::HeaderMap, String> {
    if list.len() > MAX_SETTING_BYTES {
        return Err(format!("OTEL_EXPORTER_OTLP_HEADERS is longer than {MAX_SETTING_BYTES} bytes"));
    }
    let mut headers = http::HeaderMap::new();
    for pair in list.split(',').filter(|pair| !pair.trim().is_empty()) {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| "OTEL_EXPORTER_OTLP_HEADERS must be name=value pairs separated by commas".to_owned())?;
        let name = name.trim();
        let value = percent_encoding::percent_decode_str(value.trim()).decode_utf8_lossy();
        let invalid = || format!("OTEL_EXPORTER_OTLP_HEADERS: `{name}` is not a valid HTTP header");
        let header = http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?;
        headers.append(header, http::HeaderValue::from_str(&value).map_err(|_| invalid())?);
    }
    Ok(headers)
}

/// One finished request, as a span.
#[derive(Debug, Clone)]
pub struct Span {
    /// Its place in the trace.
    pub trace: mcp_wire::trace::TraceContext,
    /// The client's span, if it sent one.
    pub parent: Option<mcp_wire::trace::TraceContext>,
    /// `tools/call file`, `tools/list`, `POST` (refused before a method was read).
    pub name: String,
    /// When it started and ended.
    pub start: SystemTime,
    /// When it ended.
    pub end: SystemTime,
    /// Its attributes (string, integer or boolean values).
    pub attributes: Vec<(&'static str, Value)>,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

struct Exporter {
    queue: mpsc::Sender<Span>,
    dropped: AtomicU64,
}

static EXPORTER: OnceLock<Exporter> = OnceLock::new();

/// Starts exporting to `settings` (at most once per process; on a tokio runtime).
pub fn start(settings: ExportSettings) -> Result<(), reqwest::Error> {
    let client = crate::outbound::client(SEND_TIMEOUT)?;
    let (queue, spans) = mpsc::channel(QUEUE);
    if EXPORTER.set(Exporter { queue, dropped: AtomicU64::new(0) }).is_ok() {
        tracing::info!(url = %settings.url, "exporting spans over OTLP/HTTP");
        tokio::spawn(send_batches(spans, client, settings));
    }
    Ok(())
}

/// Whether spans are exported (an endpoint is set).
pub fn enabled() -> bool {
    EXPORTER.get().is_some()
}

/// Queues `span` for export (if exporting, and the trace is sampled); never waits.
pub fn export(span: Span) {
    let Some(exporter) = EXPORTER.get() else { return };
    if !span.trace.sampled {
        return;
    }
    if exporter.queue.try_send(span).is_err() {
        exporter.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

async fn send_batches(mut spans: mpsc::Receiver<Span>, client: reqwest::Client, settings: ExportSettings) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let Some(first) = spans.recv().await else { return };
        batch.push(first);
        let deadline = tokio::time::Instant::now() + INTERVAL;
        while batch.len() < BATCH {
            match tokio::time::timeout_at(deadline, spans.recv()).await {
                Ok(Some(span)) => batch.push(span),
                Ok(None) | Err(_) => break,
            }
        }
        let body = encode(&batch, &settings.service_name);
        let count = batch.len();
        batch.clear();
        let request = client
            .post(&settings.url)
            .headers(settings.headers.clone())
            .header(http::header::CONTENT_TYPE, "application/json");
        let dropped = EXPORTER.get().map_or(0, |exporter| exporter.dropped.swap(0, Ordering::Relaxed));
        if dropped > 0 {
            tracing::warn!(dropped, "spans dropped: the export queue was full");
        }
        match request.body(body).send().await {
            Ok(response) if response.status().is_success() => {}
            Ok(response) => {
                tracing::warn!(spans = count, status = response.status().as_u16(), "the OTLP endpoint refused spans")
            }
            Err(error) => tracing::warn!(spans = count, %error, "spans not exported"),
        }
    }
}

/// The OTLP/HTTP JSON body (`ExportTraceServiceRequest`) for `spans`: ids in hex, times as
/// decimal strings of nanoseconds, as the OTLP spec's JSON encoding has them.
pub fn encode(spans: &[Span], service_name: &str) -> String {
    let nanos =
        |time: SystemTime| time.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |since| since.as_nanos()).to_string();
    let spans: Vec<Value> = spans
        .iter()
        .map(|span| {
            let mut encoded = json!({
                "traceId": span.trace.trace_id_hex(),
                "spanId": span.trace.span_id_hex(),
                "name": span.name,
                "kind": 2,
                "startTimeUnixNano": nanos(span.start),
                "endTimeUnixNano": nanos(span.end),
                "attributes": span.attributes.iter().map(|(key, value)| attribute(key, value)).collect::<Vec<_>>(),
                "status": match &span.error {
                    Some(message) => json!({"code": 2, "message": message}),
                    None => json!({}),
                },
            });
            if let (Some(parent), Some(object)) = (span.parent, encoded.as_object_mut()) {
                object.insert("parentSpanId".to_owned(), Value::String(parent.span_id_hex()));
            }
            encoded
        })
        .collect();
    json!({
        "resourceSpans": [{
            "resource": {"attributes": [
                attribute("service.name", &Value::from(service_name)),
                attribute("service.version", &Value::from(env!("CARGO_PKG_VERSION"))),
            ]},
            "scopeSpans": [{
                "scope": {"name": "mcp-gateway", "version": env!("CARGO_PKG_VERSION")},
                "spans": spans,
            }],
        }],
    })
    .to_string()
}

fn attribute(key: &str, value: &Value) -> Value {
    let value = match value {
        Value::Bool(flag) => json!({"boolValue": flag}),
        Value::Number(number) if number.is_i64() || number.is_u64() => json!({"intValue": number.to_string()}),
        Value::Number(number) => json!({"doubleValue": number}),
        Value::String(text) => json!({"stringValue": text}),
        other => json!({"stringValue": other.to_string()}),
    };
    json!({"key": key, "value": value})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> =
            pairs.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect();
        move |name| pairs.iter().find(|(key, _)| key == name).map(|(_, value)| value.clone())
    }

    #[test]
    fn settings_come_from_the_otel_variables() {
        assert_eq!(ExportSettings::from_env(env(&[])), Ok(None));
        let settings = ExportSettings::from_env(env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318/"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=a%3Db, other = 2"),
            ("OTEL_SERVICE_NAME", "gw"),
        ]))
        .unwrap_or_else(|error| panic!("{error}"));
        let mut headers = http::HeaderMap::new();
        headers.insert("x-api-key", http::HeaderValue::from_static("a=b"));
        headers.insert("other", http::HeaderValue::from_static("2"));
        assert_eq!(
            settings,
            Some(ExportSettings { url: "http://localhost:4318/v1/traces".into(), headers, service_name: "gw".into() })
        );
        let traces = ExportSettings::from_env(env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://collector.example.com/custom"),
        ]));
        assert_eq!(
            traces.map(|settings| settings.map(|settings| settings.url)),
            Ok(Some("https://collector.example.com/custom".into()))
        );
    }

    #[test]
    fn settings_that_do_not_parse_are_named() {
        let cases = [
            (vec![("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4318")], "OTEL_EXPORTER_OTLP_ENDPOINT"),
            (vec![("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "ftp://x/")], "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
            (
                vec![("OTEL_EXPORTER_OTLP_ENDPOINT", "http://x"), ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")],
                "OTEL_EXPORTER_OTLP_PROTOCOL=grpc",
            ),
            (
                vec![("OTEL_EXPORTER_OTLP_ENDPOINT", "http://x"), ("OTEL_EXPORTER_OTLP_HEADERS", "novalue")],
                "name=value",
            ),
            (
                vec![("OTEL_EXPORTER_OTLP_ENDPOINT", "http://x"), ("OTEL_EXPORTER_OTLP_HEADERS", "bad name=1")],
                "`bad name` is not a valid HTTP header",
            ),
        ];
        for (pairs, expected) in cases {
            let error = ExportSettings::from_env(env(&pairs)).err().unwrap_or_default();
            assert!(error.contains(expected), "{pairs:?}: {error}");
        }
    }

    #[test]
    fn spans_encode_as_otlp_json() {
        let trace = mcp_wire::trace::TraceContext::new_root();
        let parent = trace.child();
        let start = SystemTime::UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789);
        let span = Span {
            trace,
            parent: Some(parent),
            name: "tools/call file".into(),
            start,
            end: start + Duration::from_micros(250),
            attributes: vec![
                ("mcp.method.name", Value::from("tools/call")),
                ("http.response.status_code", Value::from(200)),
            ],
            error: Some("no such file".into()),
        };
        let body: Value = serde_json::from_str(&encode(&[span], "gw")).unwrap_or_default();
        let encoded = &body["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        assert_eq!(encoded["traceId"], trace.trace_id_hex());
        assert_eq!(encoded["parentSpanId"], parent.span_id_hex());
        assert_eq!(encoded["startTimeUnixNano"], "1700000000123456789");
        assert_eq!(encoded["endTimeUnixNano"], "1700000000123706789");
        assert_eq!(encoded["attributes"][1], json!({"key": "http.response.status_code", "value": {"intValue": "200"}}));
        assert_eq!(encoded["status"], json!({"code": 2, "message": "no such file"}));
        assert_eq!(body["resourceSpans"][0]["resource"]["attributes"][0]["value"]["stringValue"], "gw");
    }
}

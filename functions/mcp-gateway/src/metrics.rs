//! Request metrics of this process: counted from each access-log record when it is written, read
//! as Prometheus text (`GET /metrics` in `serve`) or written per request as a CloudWatch Embedded
//! Metric Format line (Lambda: CloudWatch extracts the metrics from the log, no API call).
//!
//! **Invariants:** every series is bounded: methods outside MCP's own are counted as `other`, and
//! past [`MAX_SERIES`] distinct (method, tool, status) sets new ones are folded into `tool="_other"`,
//! so clients cannot grow the registry by sending made-up names. Counting takes one short lock.

use std::{
    collections::{BTreeMap, HashMap},
    fmt::Write as _,
    sync::{
        Mutex, OnceLock,
        atomic::{AtomicI64, AtomicU64, Ordering},
    },
    time::Duration,
};

/// The most (method, tool, status) series kept.
pub const MAX_SERIES: usize = 2_000;
/// Latency histogram bucket bounds, in seconds.
const BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0];
/// The methods counted by name; any other is `other`.
const METHODS: [&str; 22] = [
    "initialize",
    "ping",
    "server/discover",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "subscriptions/listen",
    "notifications/initialized",
    "notifications/cancelled",
    "notifications/progress",
    "notifications/roots/list_changed",
    "batch",
    "rest tools/list",
    "rest tools/call",
];

/// One finished request, as the access log saw it.
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    /// The JSON-RPC method (`None`: refused before one was read).
    pub method: Option<&'a str>,
    /// The tool called.
    pub tool: Option<&'a str>,
    /// The HTTP status (0 on stdio).
    pub status: u16,
    /// `ok`, `error` or `tool_error`.
    pub outcome: &'static str,
    /// How long it took.
    pub latency: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Series {
    method: String,
    tool: String,
    status: u16,
    outcome: &'static str,
}

#[derive(Debug, Default, Clone)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// The counters of this process.
#[derive(Debug, Default)]
pub struct Metrics {
    series: Mutex<HashMap<Series, Histogram>>,
    in_flight: AtomicI64,
    rate_limited: Mutex<BTreeMap<String, u64>>,
    auth_refused: AtomicU64,
    /// Result cache lookups: (tool hits, tool misses, resource hits, resource misses).
    cache: [AtomicU64; 4],
}

/// Whether each request also writes an EMF line (on Lambda).
static EMF: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Makes each finished request write a CloudWatch EMF line to stderr (on Lambda).
pub fn enable_emf() {
    EMF.store(true, Ordering::Relaxed);
}

/// Counts a finished request, and on Lambda writes its EMF line.
pub fn record(observation: &Observation<'_>) {
    global().observe(observation);
    if EMF.load(Ordering::Relaxed) {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let mut line = emf_line(observation, now.as_millis());
        line.push('\n');
        // One write per line, so that lines of concurrent requests do not interleave.
        let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), line.as_bytes());
    }
}

/// The process's metrics.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::default)
}

/// Counts a request as under way until the value is dropped.
#[derive(Debug)]
pub struct InFlight(());

impl Drop for InFlight {
    fn drop(&mut self) {
        global().in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    /// A request started.
    pub fn start(&self) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(())
    }

    /// Counts a finished request.
    pub fn observe(&self, observation: &Observation<'_>) {
        let method = match observation.method {
            Some(method) if METHODS.contains(&method) => method,
            Some(_) => "other",
            None => "none",
        };
        let mut series = Series {
            method: method.to_owned(),
            tool: observation.tool.unwrap_or_default().to_owned(),
            status: observation.status,
            outcome: observation.outcome,
        };
        let seconds = observation.latency.as_secs_f64();
        let mut map = self.series.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !map.contains_key(&series) && map.len() >= MAX_SERIES {
            series.tool = "_other".to_owned();
        }
        let histogram = map.entry(series).or_default();
        histogram.count += 1;
        histogram.sum += seconds;
        if let Some(bucket) = BUCKETS.iter().position(|bound| seconds <= *bound) {
            histogram.buckets[bucket] += 1;
        }
    }

    /// Counts a request a rate limit refused (limits are named in the access file: bounded).
    pub fn rate_limited(&self, limit: &str) {
        let mut map = self.rate_limited.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *map.entry(limit.to_owned()).or_default() += 1;
    }

    /// Counts a result cache lookup of `kind` (`tool` or `resource`).
    pub fn cache(&self, kind: &str, hit: bool) {
        let index = usize::from(kind == "resource") * 2 + usize::from(!hit);
        self.cache[index].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a request refused for missing or bad credentials.
    pub fn auth_refused(&self) {
        self.auth_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// The metrics as Prometheus text exposition (version 0.0.4), then `extra` lines.
    pub fn render(&self, extra: &str) -> String {
        let mut out = String::with_capacity(4096);
        let series: Vec<(Series, Histogram)> = {
            let map = self.series.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut series: Vec<_> = map.iter().map(|(key, value)| (key.clone(), value.clone())).collect();
            series.sort_by(|a, b| a.0.cmp(&b.0));
            series
        };
        out.push_str(
            "# HELP mcp_gateway_requests_total Requests answered, by JSON-RPC method, tool, HTTP status and outcome.\n",
        );
        out.push_str("# TYPE mcp_gateway_requests_total counter\n");
        for (key, histogram) in &series {
            let _ = writeln!(out, "mcp_gateway_requests_total{{{}}} {}", labels(key), histogram.count);
        }
        out.push_str("# HELP mcp_gateway_request_duration_seconds Time to answer a request.\n");
        out.push_str("# TYPE mcp_gateway_request_duration_seconds histogram\n");
        for (key, histogram) in &series {
            let labels = labels(key);
            let mut cumulative = 0;
            for (bound, count) in BUCKETS.iter().zip(histogram.buckets) {
                cumulative += count;
                let _ = writeln!(
                    out,
                    "mcp_gateway_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "mcp_gateway_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                histogram.count
            );
            let _ = writeln!(out, "mcp_gateway_request_duration_seconds_sum{{{labels}}} {}", histogram.sum);
            let _ = writeln!(out, "mcp_gateway_request_duration_seconds_count{{{labels}}} {}", histogram.count);
        }
        out.push_str("# HELP mcp_gateway_requests_in_flight Requests under way.\n");
        out.push_str("# TYPE mcp_gateway_requests_in_flight gauge\n");
        let _ = writeln!(out, "mcp_gateway_requests_in_flight {}", self.in_flight.load(Ordering::Relaxed).max(0));
        out.push_str("# HELP mcp_gateway_rate_limited_total Requests refused by a rate limit, by limit.\n");
        out.push_str("# TYPE mcp_gateway_rate_limited_total counter\n");
        for (limit, count) in self.rate_limited.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter() {
            let _ = writeln!(out, "mcp_gateway_rate_limited_total{{limit=\"{}\"}} {count}", escape(limit));
        }
        out.push_str("# HELP mcp_gateway_auth_refused_total Requests refused for missing or bad credentials.\n");
        out.push_str("# TYPE mcp_gateway_auth_refused_total counter\n");
        let _ = writeln!(out, "mcp_gateway_auth_refused_total {}", self.auth_refused.load(Ordering::Relaxed));
        out.push_str("# HELP mcp_gateway_cache_lookups_total Result cache lookups, by kind and outcome.\n");
        out.push_str("# TYPE mcp_gateway_cache_lookups_total counter\n");
        for (index, (kind, outcome)) in
            [("tool", "hit"), ("tool", "miss"), ("resource", "hit"), ("resource", "miss")].into_iter().enumerate()
        {
            let count = self.cache[index].load(Ordering::Relaxed);
            let _ = writeln!(out, "mcp_gateway_cache_lookups_total{{kind=\"{kind}\",outcome=\"{outcome}\"}} {count}");
        }
        out.push_str(extra);
        out
    }
}

fn labels(series: &Series) -> String {
    format!(
        "method=\"{}\",tool=\"{}\",status=\"{}\",outcome=\"{}\"",
        escape(&series.method),
        escape(&series.tool),
        series.status,
        series.outcome
    )
}

/// A label value with `\`, `"` and line feeds escaped.
pub fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// A CloudWatch Embedded Metric Format line for one request (Lambda): requests, errors and
/// latency by method and by method and tool, in namespace `mcp-gateway`.
pub fn emf_line(observation: &Observation<'_>, timestamp_ms: u128) -> String {
    let method = match observation.method {
        Some(method) if METHODS.contains(&method) => method,
        Some(_) => "other",
        None => "none",
    };
    let mut line = serde_json::json!({
        "_aws": {
            "Timestamp": u64::try_from(timestamp_ms).unwrap_or(u64::MAX),
            "CloudWatchMetrics": [{
                "Namespace": "mcp-gateway",
                "Dimensions": [["method"], ["method", "tool"]],
                "Metrics": [
                    {"Name": "Requests", "Unit": "Count"},
                    {"Name": "Errors", "Unit": "Count"},
                    {"Name": "ToolErrors", "Unit": "Count"},
                    {"Name": "RateLimited", "Unit": "Count"},
                    {"Name": "Latency", "Unit": "Milliseconds"},
                ],
            }],
        },
        "method": method,
        "tool": observation.tool.unwrap_or_default(),
        "status": observation.status,
        "Requests": 1,
        "Errors": u8::from(observation.outcome == "error"),
        "ToolErrors": u8::from(observation.outcome == "tool_error"),
        "RateLimited": u8::from(observation.status == 429),
        "Latency": observation.latency.as_secs_f64() * 1000.0,
    });
    if observation.tool.is_none()
        && let Some(object) = line.as_object_mut()
    {
        object.remove("tool");
        line["_aws"]["CloudWatchMetrics"][0]["Dimensions"] = serde_json::json!([["method"]]);
    }
    line.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observe(metrics: &Metrics, method: &str, tool: Option<&str>, millis: u64) {
        metrics.observe(&Observation {
            method: Some(method),
            tool,
            status: 200,
            outcome: "ok",
            latency: Duration::from_millis(millis),
        });
    }

    #[test]
    fn requests_land_in_their_series_and_buckets() {
        let metrics = Metrics::default();
        observe(&metrics, "tools/call", Some("file"), 3);
        observe(&metrics, "tools/call", Some("file"), 200);
        observe(&metrics, "made/up", None, 1);
        let text = metrics.render("");
        let labels = r#"method="tools/call",tool="file",status="200",outcome="ok""#;
        assert!(text.contains(&format!("mcp_gateway_requests_total{{{labels}}} 2\n")), "{text}");
        assert!(text.contains(&format!("mcp_gateway_request_duration_seconds_bucket{{{labels},le=\"0.005\"}} 1\n")));
        assert!(text.contains(&format!("mcp_gateway_request_duration_seconds_bucket{{{labels},le=\"0.25\"}} 2\n")));
        assert!(text.contains(r#"mcp_gateway_requests_total{method="other",tool="",status="200",outcome="ok"} 1"#));
    }

    #[test]
    fn made_up_names_cannot_grow_the_series_past_the_bound() {
        let metrics = Metrics::default();
        for n in 0..MAX_SERIES + 50 {
            observe(&metrics, "tools/call", Some(&format!("tool-{n}")), 1);
        }
        let map = metrics.series.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        assert_eq!(map.len(), MAX_SERIES + 1);
        let other = map.iter().find(|(series, _)| series.tool == "_other").map(|(_, histogram)| histogram.count);
        assert_eq!(other, Some(50));
    }

    #[test]
    fn an_emf_line_names_its_metrics_and_dimensions() {
        let observation = Observation {
            method: Some("tools/call"),
            tool: Some("file"),
            status: 429,
            outcome: "error",
            latency: Duration::from_millis(12),
        };
        let line: serde_json::Value =
            serde_json::from_str(&emf_line(&observation, 1_700_000_000_000)).unwrap_or_else(|error| panic!("{error}"));
        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Dimensions"], serde_json::json!([["method"], ["method", "tool"]]));
        assert_eq!(
            (line["Requests"].as_u64(), line["Errors"].as_u64(), line["RateLimited"].as_u64()),
            (Some(1), Some(1), Some(1))
        );
        assert_eq!(line["tool"], "file");
        assert!((line["Latency"].as_f64().unwrap_or_default() - 12.0).abs() < 1e-9);
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}

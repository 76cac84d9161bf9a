//! `mcp-sigv4-proxy doctor`: checks each link of the chain and prints what to fix.

use std::{
    io::Write,
    time::{Duration, SystemTime},
};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use serde_json::{Value, json};

use crate::{
    credentials::{CredentialSource, mask},
    endpoint::Endpoint,
    errors::{Failure, explain},
    sign,
};

/// How far the local clock may drift before SigV4 fails (AWS allows 5 minutes).
const MAX_SKEW: Duration = Duration::from_secs(5 * 60);

/// The diagnosis, written line by line as checks finish.
struct Report<W> {
    ok: bool,
    out: W,
}

impl<W: Write> Report<W> {
    fn line(&mut self, text: &str) {
        // Stdout may be closed (piped into `head`); the exit code still tells the result.
        let _ = writeln!(self.out, "{text}");
    }

    fn pass(&mut self, what: &str, detail: &str) {
        self.line(&format!("✓ {what}: {detail}"));
    }

    fn fail(&mut self, what: &str, detail: &str, fix: &str) {
        self.ok = false;
        self.line(&format!("✗ {what}: {detail}"));
        if !fix.is_empty() {
            self.line(&format!("  fix: {fix}"));
        }
    }

    fn warn(&mut self, what: &str, detail: &str, note: &str) {
        self.line(&format!("! {what}: {detail}"));
        if !note.is_empty() {
            self.line(&format!("  note: {note}"));
        }
    }
}

/// Runs every check, printing one line each; true when the endpoint is usable.
pub async fn run(endpoint: &Endpoint, credentials: &CredentialSource, timeout: Duration, out: impl Write) -> bool {
    let mut report = Report { ok: true, out };
    report.pass("endpoint", &endpoint.to_string());
    let http = match reqwest::Client::builder().timeout(timeout).build() {
        Ok(http) => http,
        Err(error) => {
            report.fail("http client", &error.to_string(), "");
            return false;
        }
    };

    let creds = match credentials.get().await {
        Ok(creds) => {
            let expiry = creds.expiry().map_or("no expiry (long-term keys)".to_owned(), |expiry| {
                let left = expiry.duration_since(SystemTime::now()).unwrap_or_default();
                format!("expires in {} min", left.as_secs() / 60)
            });
            report.pass("credentials", &format!("access key {} ({expiry})", mask(creds.access_key_id())));
            Some(creds)
        }
        Err(error) => {
            report.fail(
                "credentials",
                &error.message,
                &format!("`aws sso login --profile {}` or `aws configure`", credentials.profile()),
            );
            None
        }
    };

    if let Some(creds) = &creds {
        match who_am_i(endpoint, creds, &http).await {
            Ok(arn) => report.pass("identity", &arn),
            Err(error) => report.warn(
                "identity",
                &error,
                "STS GetCallerIdentity failed; the checks below still test the endpoint itself",
            ),
        }
    }

    let host = endpoint.authority();
    let resolve_target = if host.contains(':') {
        host.clone()
    } else {
        let port = if endpoint.url.starts_with("https") { 443 } else { 80 };
        format!("{host}:{port}")
    };
    match tokio::time::timeout(timeout, tokio::net::lookup_host(resolve_target.as_str())).await {
        Ok(Ok(addresses)) => {
            let addresses: Vec<String> = addresses.map(|a| a.ip().to_string()).collect();
            report.pass("dns", &format!("{host} → {}", addresses.join(", ")));
        }
        Ok(Err(error)) => report.fail(
            "dns",
            &format!("{host}: {error}"),
            "check the API id and region in the URL, and your network/VPN",
        ),
        Err(_) => report.fail("dns", &format!("{host}: lookup timed out"), "check your network/VPN"),
    }

    let Some(creds) = creds else { return report.ok };
    let discover = json!({
        "jsonrpc": "2.0", "id": "doctor", "method": "server/discover",
        "params": {"_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": {"name": "mcp-sigv4-proxy-doctor", "version": env!("CARGO_PKG_VERSION")},
            "io.modelcontextprotocol/clientCapabilities": {}
        }}
    });
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert("accept", HeaderValue::from_static("application/json, text/event-stream"));
    headers.insert("mcp-protocol-version", HeaderValue::from_static("2026-07-28"));
    headers.insert("mcp-method", HeaderValue::from_static("server/discover"));
    let request = match sign::signed_post(endpoint, headers, Bytes::from(discover.to_string()), &creds)
        .map_err(|error| error.to_string())
        .and_then(|request| reqwest::Request::try_from(request).map_err(|error| error.to_string()))
    {
        Ok(request) => request,
        Err(error) => {
            report.fail("signing", &error, "check --region and --service");
            return report.ok;
        }
    };
    let started = std::time::Instant::now();
    match http.execute(request).await {
        Err(error) => {
            let failure = Failure::from_reqwest(error);
            let (message, fix) = explain(&failure, endpoint, credentials.profile());
            report.fail("connection", &message, &fix);
        }
        Ok(response) => {
            let latency = started.elapsed();
            report.pass("tls/connection", &format!("{} answered in {} ms", host, latency.as_millis()));
            check_clock(&mut report, response.headers());
            let status = response.status();
            let body = crate::answer::read_head(response, timeout).await;
            let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            if status.is_success() && value["result"]["supportedVersions"].is_array() {
                let versions = value["result"]["supportedVersions"].to_string();
                let name = value["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]["name"]
                    .as_str()
                    .unwrap_or("?")
                    .to_owned();
                report.pass("signed server/discover", &format!("{name} speaks {versions}"));
            } else if value.get("jsonrpc").is_some() {
                report.pass(
                    "signed request",
                    &format!("the MCP server answered (HTTP {status}): {}", String::from_utf8_lossy(&body)),
                );
            } else {
                let failure = Failure::Status { status, body, retry_after: None };
                let (message, fix) = explain(&failure, endpoint, credentials.profile());
                report.fail("signed server/discover", &message, &fix);
            }
        }
    }
    let verdict = if report.ok {
        "diagnosis: ready — MCP clients can use this endpoint through mcp-sigv4-proxy"
    } else {
        "diagnosis: not ready — fix the ✗ lines above"
    };
    report.line(verdict);
    report.ok
}

fn check_clock(report: &mut Report<impl Write>, headers: &HeaderMap) {
    let Some(date) = headers.get("date").and_then(|v| v.to_str().ok()).and_then(parse_http_date) else {
        report.warn("clock", "the endpoint sent no Date header to compare with", "");
        return;
    };
    let now = SystemTime::now();
    let skew = now.duration_since(date).or_else(|_| date.duration_since(now)).unwrap_or_default();
    if skew > MAX_SKEW {
        report.fail(
            "clock",
            &format!("this machine's clock is off by {} s", skew.as_secs()),
            "sync the system clock (e.g. `sudo timedatectl set-ntp true`)",
        );
    } else {
        report.pass("clock", &format!("within {} s of the endpoint", skew.as_secs().max(1)));
    }
}

/// Calls STS GetCallerIdentity (signed; `AWS_ENDPOINT_URL_STS` or `AWS_ENDPOINT_URL` override the URL).
async fn who_am_i(
    endpoint: &Endpoint,
    creds: &aws_credential_types::Credentials,
    http: &reqwest::Client,
) -> Result<String, String> {
    let url = std::env::var("AWS_ENDPOINT_URL_STS")
        .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
        .unwrap_or_else(|_| format!("https://sts.{}.amazonaws.com/", endpoint.region));
    let sts = Endpoint { url: url.clone(), service: "sts".into(), region: endpoint.region.clone() };
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/x-www-form-urlencoded"));
    let body = Bytes::from_static(b"Action=GetCallerIdentity&Version=2011-06-15");
    let request =
        sign::signed_request(&sts, "POST", &url, headers, body, creds, SystemTime::now()).map_err(|e| e.to_string())?;
    let request = reqwest::Request::try_from(request).map_err(|e| e.to_string())?;
    let response = http.execute(request).await.map_err(|e| crate::credentials::aws_error_chain(&e))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let arn = text.split("<Arn>").nth(1).and_then(|rest| rest.split("</Arn>").next());
    match arn {
        Some(arn) if status.is_success() => Ok(arn.to_owned()),
        _ => Err(format!("HTTP {status}: {}", text.chars().take(200).collect::<String>())),
    }
}

/// Parses an IMF-fixdate (`Mon, 23 Nov 2026 14:35:44 GMT`).
pub fn parse_http_date(value: &str) -> Option<SystemTime> {
    let parts: Vec<&str> = value.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        .iter()
        .position(|m| m == month)? as i64
        + 1;
    let (day, year): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let hms: Vec<i64> = time.split(':').filter_map(|p| p.parse().ok()).collect();
    let [h, m, s] = hms.as_slice() else {
        return None;
    };
    // Days from civil (Howard Hinnant).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + m * 60 + s;
    u64::try_from(secs).ok().map(|secs| SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_http_dates() {
        let parsed = parse_http_date("Mon, 23 Nov 2026 14:35:44 GMT");
        assert_eq!(parsed, Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_444_544)));
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(SystemTime::UNIX_EPOCH));
        assert_eq!(parse_http_date("yesterday"), None);
    }
}

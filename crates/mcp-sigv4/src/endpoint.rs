//! The endpoint: its URL, and the SigV4 service and region inferred from the host name.

use std::fmt;

/// Where requests go and how they are signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The MCP endpoint URL, e.g. `https://abc123.execute-api.us-east-1.amazonaws.com/prod/mcp`.
    pub url: String,
    /// The SigV4 service name (`execute-api`, `lambda`, `bedrock-agentcore`).
    pub service: String,
    /// The AWS region the signature is scoped to.
    pub region: String,
}

/// Why an endpoint could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// Not an http(s) URL.
    #[error("endpoint `{0}` is not an http:// or https:// URL")]
    NotHttp(String),
    /// A custom domain gives no region.
    #[error("cannot tell the AWS region from `{0}` (a custom domain?): pass --region or set AWS_REGION")]
    NoRegion(String),
}

/// What the host name says about the service and region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inferred<'a> {
    /// The SigV4 service, if the host is a known AWS endpoint.
    pub service: Option<&'static str>,
    /// The region embedded in the host name, if any.
    pub region: Option<&'a str>,
}

/// Infers service and region from an AWS endpoint host name.
///
/// - `<id>.execute-api.<region>.amazonaws.com` → `execute-api`
/// - `<id>.lambda-url.<region>.on.aws` → `lambda`
/// - `bedrock-agentcore.<region>.amazonaws.com` → `bedrock-agentcore`
pub fn infer(host: &str) -> Inferred<'_> {
    let labels: Vec<&str> = host.trim_end_matches('.').split('.').collect();
    let find = |service_label: &str, suffix: &[&str]| -> Option<&str> {
        let n = labels.len();
        if n < suffix.len() + 3 || labels[n - suffix.len()..] != *suffix {
            return None;
        }
        let region_index = n - suffix.len() - 1;
        (labels[region_index - 1] == service_label).then(|| labels[region_index])
    };
    if let Some(region) = find("execute-api", &["amazonaws", "com"]) {
        return Inferred { service: Some("execute-api"), region: Some(region) };
    }
    if let Some(region) = find("lambda-url", &["on", "aws"]) {
        return Inferred { service: Some("lambda"), region: Some(region) };
    }
    if labels.len() == 4 && labels[0] == "bedrock-agentcore" && labels[2..] == ["amazonaws", "com"] {
        return Inferred { service: Some("bedrock-agentcore"), region: Some(labels[1]) };
    }
    Inferred { service: None, region: None }
}

impl Endpoint {
    /// Resolves the endpoint from the URL and optional overrides (flags win over the URL).
    pub fn new(url: &str, service: Option<&str>, region: Option<&str>) -> Result<Self, EndpointError> {
        let parsed = http::Uri::try_from(url).map_err(|_| EndpointError::NotHttp(url.to_owned()))?;
        if !matches!(parsed.scheme_str(), Some("http" | "https")) {
            return Err(EndpointError::NotHttp(url.to_owned()));
        }
        let host = parsed.host().unwrap_or_default();
        let inferred = infer(host);
        let region = region
            .filter(|region| !region.is_empty())
            .or(inferred.region)
            .ok_or_else(|| EndpointError::NoRegion(host.to_owned()))?;
        let service = service.filter(|service| !service.is_empty()).or(inferred.service).unwrap_or("execute-api");
        Ok(Self { url: url.to_owned(), service: service.to_owned(), region: region.to_owned() })
    }

    /// The host (and port) part of the URL.
    pub fn authority(&self) -> String {
        http::Uri::try_from(self.url.as_str())
            .ok()
            .and_then(|uri| uri.authority().map(|a| a.to_string()))
            .unwrap_or_default()
    }

    /// The path part of the URL.
    pub fn path(&self) -> String {
        http::Uri::try_from(self.url.as_str()).map(|uri| uri.path().to_owned()).unwrap_or_default()
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} in {})", self.url, self.service, self.region)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infers_service_and_region_from_aws_hosts() {
        let cases = [
            ("abc123.execute-api.us-east-1.amazonaws.com", Some("execute-api"), Some("us-east-1")),
            ("abc123.execute-api.eu-west-3.amazonaws.com.", Some("execute-api"), Some("eu-west-3")),
            ("xyz.lambda-url.ap-southeast-2.on.aws", Some("lambda"), Some("ap-southeast-2")),
            ("bedrock-agentcore.us-west-2.amazonaws.com", Some("bedrock-agentcore"), Some("us-west-2")),
            ("mcp.example.com", None, None),
            ("execute-api.us-east-1.amazonaws.com", None, None),
            ("abc.execute-api.amazonaws.com", None, None),
            ("127.0.0.1", None, None),
            ("", None, None),
        ];
        for (host, service, region) in cases {
            assert_eq!(infer(host), Inferred { service, region }, "{host}");
        }
    }

    #[test]
    fn flags_override_the_url_and_custom_domains_need_a_region() {
        let url = "https://abc.execute-api.us-east-1.amazonaws.com/prod/mcp";
        let endpoint = Endpoint::new(url, None, None);
        assert_eq!(
            endpoint.as_ref().map(|e| (e.service.as_str(), e.region.as_str())),
            Ok(("execute-api", "us-east-1"))
        );
        let endpoint = Endpoint::new(url, Some("lambda"), Some("eu-west-1"));
        assert_eq!(endpoint.as_ref().map(|e| (e.service.as_str(), e.region.as_str())), Ok(("lambda", "eu-west-1")));
        let custom = Endpoint::new("https://mcp.example.com/mcp", None, None);
        assert_eq!(custom, Err(EndpointError::NoRegion("mcp.example.com".into())));
        let custom = Endpoint::new("https://mcp.example.com/mcp", None, Some("us-east-2"));
        assert_eq!(custom.map(|e| (e.service, e.region)), Ok(("execute-api".into(), "us-east-2".into())));
        assert!(matches!(Endpoint::new("ftp://x/mcp", None, Some("r")), Err(EndpointError::NotHttp(_))));
        assert!(matches!(Endpoint::new("not a url", None, Some("r")), Err(EndpointError::NotHttp(_))));
    }
}

//! IAM authentication without API Gateway: a bearer token that is a presigned STS
//! `GetCallerIdentity` URL (the pattern of aws-iam-authenticator and Vault's AWS auth method: the
//! URL travels, never a secret). The client presigns it with its own credentials, binding it to
//! one gateway by a signed `x-mcp-gateway-id` header; the gateway checks the URL's shape, sends it
//! to STS with its own id in that header, and takes the caller's ARN from STS's answer. A token
//! made for one gateway fails STS's signature check when another gateway sends it.
//!
//! Token: `aws-sts.` followed by the URL, base64url without padding.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::{
    http_request::{SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign},
    sign::v4,
};
use base64::Engine as _;

use crate::sign::SignError;

/// What every token starts with.
pub const TOKEN_PREFIX: &str = "aws-sts.";
/// The signed header that binds a token to one gateway.
pub const GATEWAY_ID_HEADER: &str = "x-mcp-gateway-id";
/// How long a token is valid (STS's presigned URLs allow at most 15 minutes here).
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(900);
/// The longest token accepted.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The STS endpoint of `region`: `https://sts.<region>.amazonaws.com/`.
pub fn regional_endpoint(region: &str) -> String {
    format!("https://sts.{region}.amazonaws.com/")
}

/// A token for the gateway named `gateway_id`, presigned at `time` with `credentials` for STS at
/// `sts_endpoint` (a URL ending in `/`) in `region`.
pub fn make_token(
    credentials: &Credentials,
    region: &str,
    sts_endpoint: &str,
    gateway_id: &str,
    time: SystemTime,
) -> Result<String, SignError> {
    let url = format!("{sts_endpoint}?Action=GetCallerIdentity&Version=2011-06-15");
    let identity = credentials.clone().into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(TOKEN_LIFETIME);
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(time)
        .settings(settings)
        .build()
        .map_err(|error| SignError::Params(error.to_string()))?
        .into();
    let headers = [(GATEWAY_ID_HEADER, gateway_id)];
    let signable = SignableRequest::new("GET", &url, headers.into_iter(), SignableBody::Bytes(b""))
        .map_err(|error| SignError::Sign(error.to_string()))?;
    let (instructions, _signature) =
        sign(signable, &params).map_err(|error| SignError::Sign(error.to_string()))?.into_parts();
    let mut request = http::Request::builder()
        .method("GET")
        .uri(&url)
        .body(())
        .map_err(|error| SignError::Request(error.to_string()))?;
    instructions.apply_to_request_http1x(&mut request);
    let presigned = request.uri().to_string();
    Ok(format!("{TOKEN_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(presigned)))
}

/// Why a token is refused before STS is asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TokenShapeError(pub String);

/// A token whose shape was checked: the URL to send to STS, and until when it is valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedToken {
    /// The presigned URL.
    pub url: String,
    /// When the signature expires.
    pub expires: SystemTime,
}

/// Checks that `token` is a presigned `GetCallerIdentity` URL for an allowed STS endpoint,
/// bound to a gateway (the id header signed), not expired and valid at most [`TOKEN_LIFETIME`]:
/// so that the gateway never sends anything but that one request to STS. `allowed` says whether
/// a `scheme://authority` is an STS endpoint the gateway trusts.
pub fn check_token(
    token: &str,
    now: SystemTime,
    allowed: impl Fn(&str) -> bool,
) -> Result<CheckedToken, TokenShapeError> {
    let refuse = |why: &str| TokenShapeError(why.to_owned());
    if token.len() > MAX_TOKEN_BYTES {
        return Err(refuse("the STS token is too long"));
    }
    let encoded = token.strip_prefix(TOKEN_PREFIX).ok_or_else(|| refuse("not an STS token"))?;
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| refuse("the STS token is not base64url of a URL"))?;
    let uri: http::Uri = url.parse().map_err(|_| refuse("the STS token is not a URL"))?;
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return Err(refuse("the STS token is not an absolute URL"));
    };
    if !allowed(&format!("{scheme}://{authority}")) {
        return Err(TokenShapeError(format!("`{scheme}://{authority}` is not an STS endpoint this gateway trusts")));
    }
    if uri.path() != "/" || authority.as_str().contains('@') {
        return Err(refuse("the STS token's URL must be the endpoint's root"));
    }
    let mut seen = std::collections::BTreeMap::new();
    for pair in uri.query().unwrap_or_default().split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if seen.insert(name, value).is_some() {
            return Err(TokenShapeError(format!("the STS token repeats `{name}`")));
        }
    }
    let expected =
        [("Action", "GetCallerIdentity"), ("Version", "2011-06-15"), ("X-Amz-Algorithm", "AWS4-HMAC-SHA256")];
    for (name, value) in expected {
        if seen.get(name) != Some(&value) {
            return Err(TokenShapeError(format!("the STS token must have {name}={value}")));
        }
    }
    let known = [
        "Action",
        "Version",
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
        "X-Amz-Signature",
        "X-Amz-Security-Token",
    ];
    if let Some(other) = seen.keys().find(|name| !known.contains(name)) {
        return Err(TokenShapeError(format!("the STS token has an unexpected parameter `{other}`")));
    }
    let signed = seen.get("X-Amz-SignedHeaders").copied().unwrap_or_default();
    if !signed.split("%3B").flat_map(|part| part.split(';')).any(|header| header == GATEWAY_ID_HEADER) {
        return Err(TokenShapeError(format!(
            "the STS token does not sign `{GATEWAY_ID_HEADER}`: it is not bound to a gateway"
        )));
    }
    let expires_in = seen
        .get("X-Amz-Expires")
        .and_then(|value| value.parse::<u64>().ok())
        .filter(|seconds| (1..=TOKEN_LIFETIME.as_secs()).contains(seconds))
        .ok_or_else(|| refuse("the STS token must expire within 900 s (X-Amz-Expires)"))?;
    let signed_at = seen
        .get("X-Amz-Date")
        .and_then(|date| parse_amz_date(date))
        .ok_or_else(|| refuse("the STS token has no valid X-Amz-Date"))?;
    if signed_at > now + Duration::from_secs(300) {
        return Err(refuse("the STS token was signed in the future (check the client's clock)"));
    }
    let expires = signed_at + Duration::from_secs(expires_in);
    if expires <= now {
        return Err(refuse("the STS token has expired"));
    }
    Ok(CheckedToken { url, expires })
}

/// `20261205T124700Z` as a time.
fn parse_amz_date(date: &str) -> Option<SystemTime> {
    let bytes = date.as_bytes();
    if bytes.len() != 16 || bytes[8] != b'T' || bytes[15] != b'Z' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| date.get(range)?.parse::<u64>().ok();
    let (year, month, day) = (number(0..4)?, number(4..6)?, number(6..8)?);
    let (hour, minute, second) = (number(9..11)?, number(11..13)?, number(13..15)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    // Days since 1970-01-01 (Howard Hinnant's days_from_civil).
    let (y, m) = if month <= 2 { (year - 1, month + 9) } else { (year, month - 3) };
    let era = y / 400;
    let year_of_era = y - era * 400;
    let day_of_year = (153 * m + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = (era * 146_097 + day_of_era).checked_sub(719_468)?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(days * 86_400 + hour * 3600 + minute * 60 + second))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials() -> Credentials {
        Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None, None, "test")
    }

    fn sts(authority: &str) -> bool {
        authority == "https://sts.us-east-1.amazonaws.com"
    }

    #[test]
    fn a_made_token_passes_the_check_until_it_expires() {
        let now = SystemTime::now();
        let token = make_token(&credentials(), "us-east-1", &regional_endpoint("us-east-1"), "mcp.example.com", now)
            .unwrap_or_else(|error| panic!("{error}"));
        let checked = check_token(&token, now, sts).unwrap_or_else(|error| panic!("{error}"));
        assert!(checked.url.starts_with("https://sts.us-east-1.amazonaws.com/?Action=GetCallerIdentity"));
        assert!(checked.url.contains("X-Amz-SignedHeaders=host%3Bx-mcp-gateway-id"), "{}", checked.url);
        let late = now + TOKEN_LIFETIME + Duration::from_secs(1);
        assert_eq!(check_token(&token, late, sts).err().map(|error| error.0), Some("the STS token has expired".into()));
        let other = check_token(&token, now, |_| false).err().map(|error| error.0);
        assert_eq!(
            other,
            Some("`https://sts.us-east-1.amazonaws.com` is not an STS endpoint this gateway trusts".into())
        );
    }

    #[test]
    fn only_a_bound_get_caller_identity_url_passes() {
        let now = SystemTime::now();
        let encode =
            |url: &str| format!("{TOKEN_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url));
        let date = "20261205T124700Z";
        let base = "https://sts.us-east-1.amazonaws.com/?Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=900";
        let cases = [
            (
                format!("{base}&Action=AssumeRole&X-Amz-Date={date}&X-Amz-SignedHeaders=host%3Bx-mcp-gateway-id"),
                "Action=GetCallerIdentity",
            ),
            (
                format!("{base}&Action=GetCallerIdentity&X-Amz-Date={date}&X-Amz-SignedHeaders=host"),
                "not bound to a gateway",
            ),
            (
                format!(
                    "{base}&Action=GetCallerIdentity&X-Amz-Date={date}&X-Amz-SignedHeaders=host%3Bx-mcp-gateway-id&RoleArn=x"
                ),
                "unexpected parameter `RoleArn`",
            ),
            (
                format!(
                    "{base}&Action=GetCallerIdentity&Action=GetCallerIdentity&X-Amz-Date={date}&X-Amz-SignedHeaders=x-mcp-gateway-id"
                ),
                "repeats `Action`",
            ),
        ];
        for (url, why) in cases {
            let error = check_token(&encode(&url), now, sts).err().map(|error| error.0).unwrap_or_default();
            assert!(error.contains(why), "{url}: {error}");
        }
        assert!(check_token("Bearer abc", now, sts).is_err());
    }

    #[test]
    fn amz_dates_parse_to_the_right_second() {
        let parsed = parse_amz_date("20261205T124700Z").map(|time| time.duration_since(SystemTime::UNIX_EPOCH));
        assert_eq!(parsed.and_then(Result::ok), Some(Duration::from_secs(1_796_474_820)));
        assert_eq!(parse_amz_date("2026-12-05T12:47:00Z"), None);
        assert_eq!(parse_amz_date("20261305T124700Z"), None);
    }
}

//! IAM authentication without API Gateway: a bearer token that carries a signed STS
//! `GetCallerIdentity` request (the pattern of Vault's AWS auth method and aws-iam-authenticator:
//! the signed request travels, never a secret). The client signs it with its own credentials,
//! binding it to one gateway by a signed `x-mcp-gateway-id` header; the gateway checks the
//! request's shape, sends it to STS with its own id in that header, and takes the caller's ARN
//! from STS's answer. A token made for one gateway fails STS's signature check when another
//! gateway sends it.
//!
//! The request is a POST of [`BODY`] with its signature in the `Authorization` header (not a
//! presigned URL), so any SigV4 implementation checks it as it checks an SDK's call.
//!
//! Token: `aws-sts.` followed by base64url (no padding) of the lines: the endpoint URL,
//! `X-Amz-Date`, `Authorization` and, for temporary credentials, `X-Amz-Security-Token`.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::{
    http_request::{SignableBody, SignableRequest, SigningSettings, sign},
    sign::v4,
};
use base64::Engine as _;

use crate::sign::SignError;

/// What every token starts with.
pub const TOKEN_PREFIX: &str = "aws-sts.";
/// The signed header that binds a token to one gateway.
pub const GATEWAY_ID_HEADER: &str = "x-mcp-gateway-id";
/// The one request body a token is signed for.
pub const BODY: &str = "Action=GetCallerIdentity&Version=2011-06-15";
/// The body's content type, as signed.
pub const CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";
/// How long a token is used: AWS takes a signed request within 5 minutes of its `X-Amz-Date`.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(300);
/// The longest token accepted.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// The headers a token may sign, besides [`GATEWAY_ID_HEADER`].
const SIGNABLE: [&str; 5] = ["content-type", "host", "x-amz-date", "x-amz-security-token", GATEWAY_ID_HEADER];

/// The STS endpoint of `region`: `https://sts.<region>.amazonaws.com/`.
pub fn regional_endpoint(region: &str) -> String {
    format!("https://sts.{region}.amazonaws.com/")
}

/// A token for the gateway named `gateway_id`, signed at `time` with `credentials` for STS at
/// `sts_endpoint` (a URL ending in `/`) in `region`.
pub fn make_token(
    credentials: &Credentials,
    region: &str,
    sts_endpoint: &str,
    gateway_id: &str,
    time: SystemTime,
) -> Result<String, SignError> {
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|error| SignError::Params(error.to_string()))?
        .into();
    let headers = [("content-type", CONTENT_TYPE), (GATEWAY_ID_HEADER, gateway_id)];
    let signable =
        SignableRequest::new("POST", sts_endpoint, headers.into_iter(), SignableBody::Bytes(BODY.as_bytes()))
            .map_err(|error| SignError::Sign(error.to_string()))?;
    let (instructions, _signature) =
        sign(signable, &params).map_err(|error| SignError::Sign(error.to_string()))?.into_parts();
    let mut request = http::Request::builder()
        .method("POST")
        .uri(sts_endpoint)
        .body(())
        .map_err(|error| SignError::Request(error.to_string()))?;
    instructions.apply_to_request_http1x(&mut request);
    let header = |name: &str| request.headers().get(name).and_then(|value| value.to_str().ok());
    let (Some(date), Some(authorization)) = (header("x-amz-date"), header("authorization")) else {
        return Err(SignError::Sign("the signer gave no X-Amz-Date or Authorization".to_owned()));
    };
    let mut lines = vec![sts_endpoint, date, authorization];
    lines.extend(header("x-amz-security-token"));
    Ok(format!("{TOKEN_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(lines.join("\n"))))
}

/// How long a client reuses a token: a minute short of [`TOKEN_LIFETIME`], so one made just before
/// a request still reaches STS in time. The gateway caches STS's answer per token, so reusing a
/// token costs one STS call per reuse period, not one per request.
pub const TOKEN_REUSE: Duration = Duration::from_secs(240);

/// The token a client sends to one gateway: made again every [`TOKEN_REUSE`], or when the
/// credentials change (a new access key after a role session's refresh).
#[derive(Debug)]
pub struct TokenCache {
    region: String,
    sts_endpoint: String,
    gateway_id: String,
    current: tokio::sync::Mutex<Option<(String, std::time::Instant, String)>>,
}

impl TokenCache {
    /// Tokens for `gateway_id`, signed for STS at `sts_endpoint` in `region`.
    pub fn new(region: &str, sts_endpoint: &str, gateway_id: &str) -> Self {
        Self {
            region: region.to_owned(),
            sts_endpoint: sts_endpoint.to_owned(),
            gateway_id: gateway_id.to_owned(),
            current: tokio::sync::Mutex::new(None),
        }
    }

    /// The token to send with `credentials`.
    pub async fn token(&self, credentials: &Credentials) -> Result<String, SignError> {
        let mut current = self.current.lock().await;
        if let Some((token, made, key)) = current.as_ref()
            && made.elapsed() < TOKEN_REUSE
            && key == credentials.access_key_id()
        {
            return Ok(token.clone());
        }
        let token = make_token(credentials, &self.region, &self.sts_endpoint, &self.gateway_id, SystemTime::now())?;
        tracing::debug!(gateway_id = %self.gateway_id, sts_endpoint = %self.sts_endpoint, "made an STS identity token");
        *current = Some((token.clone(), std::time::Instant::now(), credentials.access_key_id().to_owned()));
        Ok(token)
    }
}

/// Why a token is refused before STS is asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TokenShapeError(pub String);

/// A token whose shape was checked: what to send to STS, and until when it is valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedToken {
    /// The STS endpoint to POST [`BODY`] to (with `Content-Type:` [`CONTENT_TYPE`]).
    pub url: String,
    /// The signature's headers to send with it: `X-Amz-Date`, `Authorization` and maybe
    /// `X-Amz-Security-Token`.
    pub headers: Vec<(&'static str, String)>,
    /// Until when the signature is taken.
    pub expires: SystemTime,
}

/// Checks that `token` is a `GetCallerIdentity` request signed for an allowed STS endpoint,
/// bound to a gateway (the id header signed), signed less than [`TOKEN_LIFETIME`] ago and not
/// more than that ahead of `now`: so that the gateway never sends anything but that one request
/// to STS. `allowed` says whether a `scheme://authority` is an STS endpoint the gateway trusts.
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
    let text = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| refuse("the STS token is not base64url of text"))?;
    if text.bytes().any(|byte| byte != b'\n' && !(0x20..0x7f).contains(&byte)) {
        return Err(refuse("the STS token has characters no HTTP header may carry"));
    }
    let lines: Vec<&str> = text.split('\n').collect();
    let (url, date, authorization, security_token) = match lines[..] {
        [url, date, authorization] => (url, date, authorization, None),
        [url, date, authorization, token] => (url, date, authorization, Some(token)),
        _ => return Err(refuse("the STS token must have 3 or 4 lines: URL, X-Amz-Date, Authorization, token")),
    };
    let uri: http::Uri = url.parse().map_err(|_| refuse("the STS token's first line is not a URL"))?;
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return Err(refuse("the STS token's URL is not absolute"));
    };
    if !allowed(&format!("{scheme}://{authority}")) {
        return Err(TokenShapeError(format!("`{scheme}://{authority}` is not an STS endpoint this gateway trusts")));
    }
    if uri.path_and_query().is_none_or(|path| path.as_str() != "/") || authority.as_str().contains('@') {
        return Err(refuse("the STS token's URL must be the endpoint's root"));
    }
    let signed_at = parse_amz_date(date).ok_or_else(|| refuse("the STS token has no valid X-Amz-Date"))?;
    check_authorization(authorization, date)?;
    if signed_at > now + TOKEN_LIFETIME {
        return Err(refuse("the STS token was signed in the future (check the client's clock)"));
    }
    // Taken until 5 minutes after it was signed, and never longer than 5 minutes from now.
    let expires = (signed_at + TOKEN_LIFETIME).min(now + TOKEN_LIFETIME);
    if expires <= now {
        return Err(refuse("the STS token has expired"));
    }
    let mut headers = vec![("x-amz-date", date.to_owned()), ("authorization", authorization.to_owned())];
    headers.extend(security_token.map(|token| ("x-amz-security-token", token.to_owned())));
    Ok(CheckedToken { url: url.to_owned(), headers, expires })
}

/// Checks an `Authorization` header of a SigV4 signature for STS made on `date`'s day, that
/// signs the gateway id and no header but [`SIGNABLE`] ones.
fn check_authorization(authorization: &str, date: &str) -> Result<(), TokenShapeError> {
    let refuse = |why: &str| TokenShapeError(format!("the STS token's Authorization {why}"));
    let fields = authorization
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or_else(|| refuse("is not an AWS4-HMAC-SHA256 signature"))?;
    let field = |name: &str| fields.split(", ").find_map(|part| part.strip_prefix(name)?.strip_prefix('='));
    let (Some(credential), Some(signed), Some(signature)) =
        (field("Credential"), field("SignedHeaders"), field("Signature"))
    else {
        return Err(refuse("lacks Credential, SignedHeaders or Signature"));
    };
    if fields.split(", ").count() != 3 {
        return Err(refuse("has more than Credential, SignedHeaders and Signature"));
    }
    match credential.split('/').collect::<Vec<_>>()[..] {
        [key, day, region, "sts", "aws4_request"]
            if !key.is_empty() && !region.is_empty() && date.get(..8) == Some(day) => {}
        _ => return Err(refuse("is not signed for STS on the day of its X-Amz-Date")),
    }
    let signed: Vec<&str> = signed.split(';').collect();
    if !signed.contains(&GATEWAY_ID_HEADER) {
        return Err(TokenShapeError(format!(
            "the STS token does not sign `{GATEWAY_ID_HEADER}`: it is not bound to a gateway"
        )));
    }
    if let Some(other) = signed.iter().find(|header| !SIGNABLE.contains(header)) {
        return Err(TokenShapeError(format!("the STS token signs an unexpected header `{other}`")));
    }
    if signature.len() != 64 || !signature.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err(refuse("has no valid Signature"));
    }
    Ok(())
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
        assert_eq!(checked.url, "https://sts.us-east-1.amazonaws.com/");
        let authorization = checked.headers.iter().find(|(name, _)| *name == "authorization").map(|(_, value)| value);
        assert!(
            authorization
                .is_some_and(|value| value.contains("SignedHeaders=content-type;host;x-amz-date;x-mcp-gateway-id")),
            "{authorization:?}"
        );
        let late = now + TOKEN_LIFETIME + Duration::from_secs(1);
        assert_eq!(check_token(&token, late, sts).err().map(|error| error.0), Some("the STS token has expired".into()));
        let other = check_token(&token, now, |_| false).err().map(|error| error.0);
        assert_eq!(
            other,
            Some("`https://sts.us-east-1.amazonaws.com` is not an STS endpoint this gateway trusts".into())
        );
    }

    #[tokio::test]
    async fn the_cache_reuses_a_token_until_the_access_key_changes() {
        let cache = TokenCache::new("us-east-1", &regional_endpoint("us-east-1"), "gateway-a");
        let first = cache.token(&credentials()).await.unwrap_or_else(|error| panic!("{error}"));
        std::thread::sleep(Duration::from_millis(1100)); // a new X-Amz-Date second: a new token would differ
        let again = cache.token(&credentials()).await.unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(first, again);
        let rotated = Credentials::new("AKIDOTHER", "secret", None, None, "test");
        let other = cache.token(&rotated).await.unwrap_or_else(|error| panic!("{error}"));
        assert_ne!(first, other);
        let checked = check_token(&other, SystemTime::now(), sts).unwrap_or_else(|error| panic!("{error}"));
        let authorization = checked.headers.iter().find(|(name, _)| *name == "authorization").map(|(_, value)| value);
        assert!(authorization.is_some_and(|value| value.contains("Credential=AKIDOTHER/")), "{authorization:?}");
    }

    #[test]
    fn temporary_credentials_carry_their_session_token() {
        let now = SystemTime::now();
        let credentials = Credentials::new("ASIAEXAMPLE", "secret", Some("session-token".into()), None, "test");
        let token = make_token(&credentials, "eu-west-1", &regional_endpoint("eu-west-1"), "g", now)
            .unwrap_or_else(|error| panic!("{error}"));
        let checked = check_token(&token, now, |_| true).unwrap_or_else(|error| panic!("{error}"));
        assert!(checked.headers.contains(&("x-amz-security-token", "session-token".to_owned())), "{checked:?}");
    }

    #[test]
    fn only_a_bound_get_caller_identity_signature_passes() {
        let now = SystemTime::now();
        let encode = |lines: &[String]| {
            format!("{TOKEN_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(lines.join("\n")))
        };
        let lines = |parts: &[&str]| parts.iter().map(|part| (*part).to_owned()).collect::<Vec<String>>();
        let url = "https://sts.us-east-1.amazonaws.com/";
        let date = "20261205T124700Z";
        let signature = "0".repeat(64);
        let authorization = |credential: &str, signed: &str| {
            format!("AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders={signed}, Signature={signature}")
        };
        let good_scope = "AKID/20261205/us-east-1/sts/aws4_request";
        let good = authorization(good_scope, "host;x-amz-date;x-mcp-gateway-id");
        // A minute after `date`.
        let then = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_474_880);
        let cases = [
            (lines(&[url, date, good.as_str()]), ""),
            (lines(&["https://sts.us-east-1.amazonaws.com/?Action=AssumeRole", date, &good]), "endpoint's root"),
            (lines(&[url, date, &authorization(good_scope, "host;x-amz-date")]), "not bound to a gateway"),
            (
                lines(&[url, date, &authorization(good_scope, "host;x-amz-date;x-mcp-gateway-id;x-amz-target")]),
                "unexpected header `x-amz-target`",
            ),
            (
                lines(&[url, date, &authorization("AKID/20261205/us-east-1/s3/aws4_request", "x-mcp-gateway-id")]),
                "not signed for STS",
            ),
            (
                lines(&[url, date, &authorization("AKID/20261204/us-east-1/sts/aws4_request", "x-mcp-gateway-id")]),
                "day",
            ),
            (lines(&[url, date, &good.replace(&signature, "zz")]), "no valid Signature"),
            (lines(&[url, date]), "3 or 4 lines"),
            (lines(&[url, date, &format!("{good}\r\nX-Evil: 1")]), "characters no HTTP header"),
        ];
        for (lines, why) in cases {
            let checked = check_token(&encode(&lines), then, sts);
            match checked {
                Ok(_) => assert!(why.is_empty(), "{lines:?} passed"),
                Err(error) => assert!(!why.is_empty() && error.0.contains(why), "{lines:?}: {error}"),
            }
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

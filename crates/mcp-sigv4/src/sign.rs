//! SigV4 signing of one POST (payload hash included).

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::{
    http_request::{PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, sign},
    sign::v4,
};
use bytes::Bytes;
use http::HeaderMap;

use crate::endpoint::Endpoint;

/// Why a request could not be signed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The signing parameters were incomplete.
    #[error("signing parameters: {0}")]
    Params(String),
    /// The signer refused the request.
    #[error("signing: {0}")]
    Sign(String),
    /// The request could not be built.
    #[error("request: {0}")]
    Request(String),
}

/// A POST of `body` to the endpoint with `headers`, signed for the endpoint's service and region.
pub fn signed_post(
    endpoint: &Endpoint,
    headers: HeaderMap,
    body: Bytes,
    credentials: &Credentials,
) -> Result<http::Request<Bytes>, SignError> {
    signed_request(endpoint, "POST", &endpoint.url, headers, body, credentials, SystemTime::now())
}

/// Any request signed at `time` (tests and `doctor` use other methods and URLs).
pub fn signed_request(
    endpoint: &Endpoint,
    method: &str,
    url: &str,
    headers: HeaderMap,
    body: Bytes,
    credentials: &Credentials,
    time: SystemTime,
) -> Result<http::Request<Bytes>, SignError> {
    let mut request = http::Request::builder().method(method).uri(url);
    if let Some(target) = request.headers_mut() {
        *target = headers;
    }
    let mut request = request.body(body).map_err(|error| SignError::Request(error.to_string()))?;
    let identity = credentials.clone().into();
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&endpoint.region)
        .name(&endpoint.service)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|error| SignError::Params(error.to_string()))?
        .into();
    let header_pairs: Vec<(&str, &str)> = request
        .headers()
        .iter()
        .filter_map(|(name, value)| value.to_str().ok().map(|value| (name.as_str(), value)))
        .collect();
    let signable = SignableRequest::new(method, url, header_pairs.into_iter(), SignableBody::Bytes(request.body()))
        .map_err(|error| SignError::Sign(error.to_string()))?;
    let (instructions, _signature) =
        sign(signable, &params).map_err(|error| SignError::Sign(error.to_string()))?.into_parts();
    instructions.apply_to_request_http1x(&mut request);
    Ok(request)
}

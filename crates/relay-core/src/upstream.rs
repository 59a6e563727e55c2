//! The confidential-client side, without the IO: the HTTP Basic client
//! authentication the token endpoint wants, and the judging of its answer.
//!
//! The shells send the request [`crate::Forward`] describes with their own
//! HTTP client (reqwest natively, `fetch` in a Worker) and hand back an
//! [`UpstreamAnswer`] or a [`Transport`] failure. Whatever the token endpoint
//! answered is classified here: tokens, an RFC 6749 error to pass on, or an
//! [`UpstreamError`] that says what went wrong in the relay's own words. An
//! upstream body is never passed on as is: only a parsed token response, or
//! the code and a sanitised description of a parsed OAuth error.

use crate::error::{Outcome, server_error, temporarily_unavailable};
use dance_protocol::token::{ErrorCode, TokenError, TokenResponse};
use dance_protocol::{ClientId, ClientSecret};
use http::{HeaderMap, HeaderValue, StatusCode, header};

/// The largest answer the relay reads from the token endpoint. Bitbucket's
/// are a few hundred bytes (a few kilobytes with today's long tokens).
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// The longest upstream `error_description` passed on.
const MAX_DESCRIPTION_LEN: usize = 300;

/// What can go wrong between the relay and the token endpoint.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UpstreamError {
    /// The token endpoint refused the grant with an RFC 6749 error.
    #[error("{error}")]
    OAuth { status: StatusCode, error: TokenError },
    /// Connection refused, DNS or TLS failure, or a connection that broke.
    #[error("the authorization server could not be reached")]
    Unreachable,
    /// No complete answer within the deadline.
    #[error("the authorization server did not answer in time")]
    Timeout,
    /// A 5xx answer.
    #[error("the authorization server failed (status {0})")]
    Failed(u16),
    /// The token endpoint is rate limiting the relay.
    #[error("the authorization server is rate limiting this relay; retry later")]
    RateLimited { retry_after: Option<u64> },
    /// An answer that is not OAuth.
    #[error("the authorization server sent an answer the relay does not understand ({0})")]
    Invalid(&'static str),
}

impl UpstreamError {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::OAuth { status, .. } => *status,
            Self::Unreachable | Self::Failed(_) | Self::Invalid(_) => StatusCode::BAD_GATEWAY,
            Self::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    pub(crate) fn outcome(&self) -> Outcome {
        match self {
            Self::OAuth { .. } => Outcome::OauthError,
            Self::Unreachable => Outcome::UpstreamUnreachable,
            Self::Timeout => Outcome::UpstreamTimeout,
            Self::Failed(_) => Outcome::UpstreamFailed,
            Self::RateLimited { .. } => Outcome::UpstreamRateLimited,
            Self::Invalid(_) => Outcome::UpstreamInvalid,
        }
    }

    pub(crate) fn body(&self) -> TokenError {
        match self {
            Self::OAuth { error, .. } => error.clone(),
            Self::Invalid(_) => TokenError::new(server_error(), self.to_string()),
            _ => TokenError::new(temporarily_unavailable(), self.to_string()),
        }
    }

    pub(crate) fn retry_after(&self) -> Option<u64> {
        match self {
            Self::RateLimited { retry_after } => *retry_after,
            _ => None,
        }
    }
}

/// Why no answer came back from the token endpoint: what the shell's HTTP
/// client reports to [`crate::Relay::answered`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Connection refused, DNS or TLS failure, or a connection that broke.
    Unreachable,
    /// No complete answer within the upstream deadline.
    TimedOut,
    /// The answer's body was larger than [`MAX_ANSWER_BYTES`]; the shell
    /// stopped reading it.
    TooLarge,
}

impl From<Transport> for UpstreamError {
    fn from(transport: Transport) -> Self {
        match transport {
            Transport::Unreachable => Self::Unreachable,
            Transport::TimedOut => Self::Timeout,
            Transport::TooLarge => Self::Invalid("the answer is too large"),
        }
    }
}

/// The token endpoint's answer as the shell received it.
#[derive(Debug, Clone)]
pub struct UpstreamAnswer {
    /// The HTTP status.
    pub status: StatusCode,
    /// The response headers (only `Retry-After` is read).
    pub headers: HeaderMap,
    /// The whole body, at most [`MAX_ANSWER_BYTES`].
    pub body: Vec<u8>,
}

/// The HTTP Basic credentials of RFC 7617 (Bitbucket wants the id and secret
/// as they are, without the form-encoding of RFC 6749 2.3.1).
pub(crate) fn basic_authorization(
    client_id: &ClientId,
    client_secret: &ClientSecret,
) -> HeaderValue {
    use base64::Engine as _;
    let credentials = format!("{}:{}", client_id.as_str(), client_secret.secret());
    let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
    // Base64 is always a valid header value; the fallback is never used.
    let mut value = HeaderValue::from_str(&format!("Basic {encoded}"))
        .unwrap_or_else(|_| HeaderValue::from_static("Basic"));
    value.set_sensitive(true);
    value
}

/// Turns the token endpoint's answer into tokens or an error.
pub(crate) fn classify(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<TokenResponse, UpstreamError> {
    if status.is_success() {
        return serde_json::from_slice::<TokenResponse>(body).map_err(|_| {
            UpstreamError::Invalid("a success without a valid RFC 6749 token response")
        });
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        let retry_after = headers
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|s| s.min(3600));
        return Err(UpstreamError::RateLimited { retry_after });
    }
    if status.is_server_error() {
        return Err(UpstreamError::Failed(status.as_u16()));
    }
    if status.is_redirection() {
        return Err(UpstreamError::Invalid("a redirect; check the token URL"));
    }
    if status.is_client_error() {
        let error = serde_json::from_slice::<TokenError>(body)
            .ok()
            .and_then(sanitize)
            .ok_or(UpstreamError::Invalid("an error status without an RFC 6749 error body"))?;
        let status = if status == StatusCode::UNAUTHORIZED {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::BAD_REQUEST
        };
        return Err(UpstreamError::OAuth { status, error });
    }
    Err(UpstreamError::Invalid("an unexpected status"))
}

/// Keeps an upstream OAuth error only if its code is a well-formed RFC 6749
/// code, and its description only if it is short, printable ASCII text (the
/// RFC's character set). `error_uri` is dropped: it could point anywhere.
fn sanitize(error: TokenError) -> Option<TokenError> {
    let code = error.error.as_str();
    let code_ok = !code.is_empty()
        && code.len() <= 64
        && code.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !code_ok {
        return None;
    }
    let description = error.error_description.filter(|d| {
        d.len() <= MAX_DESCRIPTION_LEN
            && d.bytes().all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E))
    });
    Some(TokenError {
        error: ErrorCode::from(code),
        error_description: description,
        error_uri: None,
        // Bitbucket has no such member; whatever it sends is not ours to relay.
        reason: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify_body(status: u16, body: &str) -> Result<TokenResponse, UpstreamError> {
        classify(StatusCode::from_u16(status).expect("status"), &HeaderMap::new(), body.as_bytes())
    }

    #[test]
    fn success_is_normalized() {
        let tokens = classify_body(
            200,
            r#"{"access_token":"a","scopes":"account","expires_in":"7200","token_type":"Bearer"}"#,
        )
        .expect("tokens");
        assert_eq!((tokens.expires_in, tokens.scope.as_deref()), (Some(7200), Some("account")));
        assert!(matches!(classify_body(200, "<html>ok</html>"), Err(UpstreamError::Invalid(_))));
        assert!(matches!(classify_body(200, "{}"), Err(UpstreamError::Invalid(_))));
    }

    #[test]
    fn oauth_errors_pass_through_with_a_normalized_status() {
        let Err(UpstreamError::OAuth { status, error }) = classify_body(
            400,
            r#"{"error_description":"Invalid refresh_token","error":"invalid_request"}"#,
        ) else {
            panic!("expected an OAuth error");
        };
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(error.error, ErrorCode::InvalidRequest);
        assert_eq!(error.error_description.as_deref(), Some("Invalid refresh_token"));

        let Err(UpstreamError::OAuth { status, .. }) =
            classify_body(401, r#"{"error":"invalid_client"}"#)
        else {
            panic!("expected an OAuth error");
        };
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let Err(UpstreamError::OAuth { status, .. }) = classify_body(403, r#"{"error":"x"}"#)
        else {
            panic!("expected an OAuth error");
        };
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn upstream_internals_are_never_passed_on() {
        let Err(UpstreamError::OAuth { error, .. }) = classify_body(
            400,
            r#"{"error":"invalid_grant","error_description":"Traceback (most recent call last):\n  File \"/srv/app.py\"","error_uri":"https://evil.example/"}"#,
        ) else {
            panic!("expected an OAuth error");
        };
        assert_eq!((error.error_description, error.error_uri), (None, None));
        for (status, body) in [
            (400, "<html>Bad Request</html>"),
            (404, r#"{"type":"error","error":{"message":"Resource not found"}}"#),
            (400, r#"{"error":"<script>alert(1)</script>"}"#),
            (302, ""),
            (101, ""),
        ] {
            let error = classify_body(status, body).expect_err("refused");
            assert!(matches!(error, UpstreamError::Invalid(_)), "{status} {body}: {error:?}");
            assert_eq!(error.body().error.as_str(), "server_error");
        }
        let error = classify_body(503, "<html>down for maintenance</html>").expect_err("refused");
        assert_eq!(
            (error.status(), error.body().error.as_str()),
            (StatusCode::BAD_GATEWAY, "temporarily_unavailable")
        );
        assert!(!error.to_string().contains("maintenance"));
    }

    #[test]
    fn basic_credentials_are_encoded_once_and_hidden_from_debug() {
        let value =
            basic_authorization(&ClientId::new("demo-client"), &ClientSecret::new("demo-secret"));
        assert_eq!(value.to_str().expect("ASCII"), "Basic ZGVtby1jbGllbnQ6ZGVtby1zZWNyZXQ=");
        assert!(value.is_sensitive());
        let mut config =
            crate::Config::new(ClientId::new("demo-client"), ClientSecret::new("demo-secret"));
        config.token_url = "http://127.0.0.1:9/token".parse().expect("url");
        let printed = format!("{:?}", crate::Relay::new(&config));
        assert!(
            !printed.contains("ZGVtby1jbGllbnQ6ZGVtby1zZWNyZXQ")
                && !printed.contains("demo-secret"),
            "{printed}"
        );
    }

    #[test]
    fn rate_limits_carry_retry_after() {
        let mut headers = HeaderMap::new();
        headers.insert(header::RETRY_AFTER, "30".parse().expect("value"));
        let error = classify(StatusCode::TOO_MANY_REQUESTS, &headers, b"").expect_err("limited");
        assert_eq!(error.retry_after(), Some(30));
        assert_eq!(error.status(), StatusCode::TOO_MANY_REQUESTS);
    }
}

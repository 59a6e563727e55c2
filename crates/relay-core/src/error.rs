//! Every way a request can end, and the RFC 6749 5.2 answer for each failure.
//!
//! [`Outcome`] names how a request ended; it labels the metrics and the access
//! log, and every answer that ends a request carries it as an extension.
//! [`RelayError`] is the one error type of the request path: it knows its
//! status, its RFC 6749 5.2 body and its outcome, and turns into an answer
//! that never carries upstream internals or any secret. The crate README's
//! error table documents the same mapping for the SPA.

use crate::Answer;
use crate::dpop::ProofError;
use crate::upstream::UpstreamError;
use dance_protocol::dpop::reason;
use dance_protocol::token::{ErrorCode, TokenError, TokenRequestError};
use http::{HeaderValue, StatusCode, header};

/// How a request to the relay ended. The label is stable: it is a metric label
/// value and a log field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Tokens were returned.
    Ok,
    /// The token endpoint refused the grant (its RFC 6749 error passed through).
    OauthError,
    /// A CORS preflight from an allowed origin was answered.
    Preflight,
    /// The `Origin` header was missing or not allowed.
    RefusedOrigin,
    /// The client address went over its rate limit.
    RateLimited,
    /// The form body was malformed or missing fields.
    BadRequest,
    /// A grant other than `authorization_code` or `refresh_token`.
    UnsupportedGrantType,
    /// The `redirect_uri` is not allowlisted.
    RefusedRedirectUri,
    /// The `Content-Type` is not a form.
    BadContentType,
    /// The body or the headers are over their limit.
    TooLarge,
    /// The body did not arrive in time.
    BodyTimeout,
    /// No concurrency slot freed up in time.
    Busy,
    /// The token endpoint could not be reached.
    UpstreamUnreachable,
    /// The token endpoint did not answer in time.
    UpstreamTimeout,
    /// The token endpoint answered with a 5xx status.
    UpstreamFailed,
    /// The token endpoint answered something that is not OAuth.
    UpstreamInvalid,
    /// The token endpoint is rate limiting the relay.
    UpstreamRateLimited,
    /// The DPoP proof was missing or wrong, or made by another key than
    /// the refresh token's.
    BadProof,
    /// The refresh token was not sealed by this relay (or its key retired).
    Unsealed,
    /// The session reached its absolute lifetime.
    SessionEnded,
    /// Unknown path.
    NotFound,
    /// Wrong method on a known path.
    MethodNotAllowed,
}

impl Outcome {
    /// Every outcome, in the order metrics list them.
    pub const ALL: [Outcome; 22] = [
        Self::Ok,
        Self::OauthError,
        Self::Preflight,
        Self::RefusedOrigin,
        Self::RateLimited,
        Self::BadRequest,
        Self::UnsupportedGrantType,
        Self::RefusedRedirectUri,
        Self::BadContentType,
        Self::TooLarge,
        Self::BodyTimeout,
        Self::Busy,
        Self::UpstreamUnreachable,
        Self::UpstreamTimeout,
        Self::UpstreamFailed,
        Self::UpstreamInvalid,
        Self::UpstreamRateLimited,
        Self::BadProof,
        Self::Unsealed,
        Self::SessionEnded,
        Self::NotFound,
        Self::MethodNotAllowed,
    ];

    /// The label used in metrics and logs.
    pub fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::OauthError => "oauth_error",
            Self::Preflight => "preflight",
            Self::RefusedOrigin => "refused_origin",
            Self::RateLimited => "rate_limited",
            Self::BadRequest => "bad_request",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::RefusedRedirectUri => "refused_redirect_uri",
            Self::BadContentType => "bad_content_type",
            Self::TooLarge => "too_large",
            Self::BodyTimeout => "body_timeout",
            Self::Busy => "busy",
            Self::UpstreamUnreachable => "upstream_unreachable",
            Self::UpstreamTimeout => "upstream_timeout",
            Self::UpstreamFailed => "upstream_failed",
            Self::UpstreamInvalid => "upstream_invalid",
            Self::UpstreamRateLimited => "upstream_rate_limited",
            Self::BadProof => "bad_proof",
            Self::Unsealed => "unsealed",
            Self::SessionEnded => "session_ended",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
        }
    }

    /// The position of this outcome in [`Outcome::ALL`].
    pub fn index(self) -> usize {
        Self::ALL.iter().position(|o| *o == self).unwrap_or(0)
    }
}

/// Why the relay refused or failed a request.
///
/// Messages are written for the developer reading the JSON; they name fields
/// and settings but never contain a secret, a code, a token or an upstream body.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RelayError {
    #[error("the request has no Origin header; this relay serves browsers only")]
    OriginMissing,
    #[error("the request has more than one Origin header")]
    OriginRepeated,
    #[error("the origin {0} is not on the relay's allowlist")]
    OriginNotAllowed(String),
    #[error("too many requests from this address; retry in {retry_after} s")]
    RateLimited { retry_after: u64 },
    #[error("Content-Type must be application/x-www-form-urlencoded (UTF-8)")]
    UnsupportedMediaType,
    #[error("the request body is larger than {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("the request headers are larger than {limit} bytes")]
    HeadersTooLarge { limit: usize },
    #[error("the request body did not arrive in time")]
    BodyTimeout,
    #[error("the request body could not be read")]
    BodyUnreadable,
    #[error("{0}")]
    Form(#[from] TokenRequestError),
    #[error("redirect_uri is not on the relay's allowlist")]
    RedirectUriNotAllowed,
    #[error(transparent)]
    Proof(#[from] ProofError),
    #[error(
        "the refresh token was not issued by this relay, or its sealing key was retired; sign in again"
    )]
    RefreshTokenNotSealed,
    #[error("the session reached the longest time this relay lets one last; sign in again")]
    SessionEnded,
    #[error("the DPoP proof was made by another key than the one this refresh token is bound to")]
    WrongKey,
    #[error("the relay is at its limit of exchanges in flight; retry shortly")]
    Busy,
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error("no such endpoint; the token endpoint is POST /token")]
    NotFound,
    #[error("use POST (or OPTIONS for a CORS preflight) on /token")]
    MethodNotAllowed,
}

impl RelayError {
    /// The HTTP status of the answer.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::OriginMissing | Self::OriginRepeated | Self::OriginNotAllowed(_) => {
                StatusCode::FORBIDDEN
            }
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::HeadersTooLarge { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::BodyUnreadable
            | Self::Form(_)
            | Self::RedirectUriNotAllowed
            | Self::Proof(_)
            | Self::RefreshTokenNotSealed
            | Self::SessionEnded
            | Self::WrongKey => StatusCode::BAD_REQUEST,
            Self::Busy => StatusCode::SERVICE_UNAVAILABLE,
            Self::Upstream(e) => e.status(),
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    /// How the request ended.
    pub(crate) fn outcome(&self) -> Outcome {
        match self {
            Self::OriginMissing | Self::OriginRepeated | Self::OriginNotAllowed(_) => {
                Outcome::RefusedOrigin
            }
            Self::RateLimited { .. } => Outcome::RateLimited,
            Self::UnsupportedMediaType => Outcome::BadContentType,
            Self::BodyTooLarge { .. } | Self::HeadersTooLarge { .. } => Outcome::TooLarge,
            Self::BodyTimeout => Outcome::BodyTimeout,
            Self::Form(TokenRequestError::UnsupportedGrantType(_)) => Outcome::UnsupportedGrantType,
            Self::BodyUnreadable | Self::Form(_) => Outcome::BadRequest,
            Self::RedirectUriNotAllowed => Outcome::RefusedRedirectUri,
            Self::Proof(_) | Self::WrongKey => Outcome::BadProof,
            Self::RefreshTokenNotSealed => Outcome::Unsealed,
            Self::SessionEnded => Outcome::SessionEnded,
            Self::Busy => Outcome::Busy,
            Self::Upstream(e) => e.outcome(),
            Self::NotFound => Outcome::NotFound,
            Self::MethodNotAllowed => Outcome::MethodNotAllowed,
        }
    }

    /// The RFC 6749 5.2 body.
    pub(crate) fn body(&self) -> TokenError {
        match self {
            Self::Form(e) => TokenError::new(e.code(), e.to_string()),
            Self::Upstream(e) => e.body(),
            Self::RateLimited { .. } | Self::Busy => {
                TokenError::new(temporarily_unavailable(), self.to_string())
            }
            Self::Proof(ProofError::Stale | ProofError::Ahead) => {
                TokenError::new(ErrorCode::InvalidDpopProof, self.to_string())
                    .with_reason(reason::CLOCK)
            }
            Self::Proof(_) => TokenError::new(ErrorCode::InvalidDpopProof, self.to_string()),
            Self::WrongKey => TokenError::new(ErrorCode::InvalidDpopProof, self.to_string())
                .with_reason(reason::WRONG_KEY),
            Self::RefreshTokenNotSealed => {
                TokenError::new(ErrorCode::InvalidGrant, self.to_string())
                    .with_reason(reason::NOT_SEALED)
            }
            Self::SessionEnded => TokenError::new(ErrorCode::InvalidGrant, self.to_string())
                .with_reason(reason::SESSION_ENDED),
            Self::RedirectUriNotAllowed => {
                TokenError::new(ErrorCode::InvalidRequest, self.to_string())
                    .with_reason(reason::REDIRECT_URI_NOT_ALLOWED)
            }
            Self::OriginMissing | Self::OriginRepeated | Self::OriginNotAllowed(_) => {
                TokenError::new(ErrorCode::InvalidRequest, self.to_string())
                    .with_reason(reason::ORIGIN_NOT_ALLOWED)
            }
            _ => TokenError::new(ErrorCode::InvalidRequest, self.to_string()),
        }
    }
}

/// The `temporarily_unavailable` code (RFC 6749 4.1.2.1), used for every
/// "try again later" answer.
pub(crate) fn temporarily_unavailable() -> ErrorCode {
    ErrorCode::Other("temporarily_unavailable".to_owned())
}

/// The `server_error` code (RFC 6749 4.1.2.1), used when the token endpoint
/// answered something the relay cannot pass on.
pub(crate) fn server_error() -> ErrorCode {
    ErrorCode::Other("server_error".to_owned())
}

impl RelayError {
    /// The answer: status, RFC 6749 5.2 body, and the headers this error needs.
    pub(crate) fn into_answer(self) -> Answer {
        let mut response = json_response(self.status(), &self.body(), self.outcome());
        let retry_after = match &self {
            Self::RateLimited { retry_after } => Some(*retry_after),
            Self::Upstream(e) => e.retry_after(),
            _ => None,
        };
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if matches!(self, Self::MethodNotAllowed) {
            response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST, OPTIONS"));
        }
        response
    }
}

/// A JSON response marked with its outcome, never cached and never sniffed.
pub(crate) fn json_response(
    status: StatusCode,
    body: &impl serde::Serialize,
    outcome: Outcome,
) -> Answer {
    // Our bodies are plain structs of strings and numbers, which always
    // serialize; the fallback only keeps the type system honest.
    let bytes =
        serde_json::to_vec(body).unwrap_or_else(|_| br#"{"error":"server_error"}"#.to_vec());
    let mut response = Answer::new(bytes);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response.extensions_mut().insert(outcome);
    response
}

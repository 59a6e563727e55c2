//! Token requests and responses (RFC 6749 4.1.3, 5.1, 5.2 and 6).
//!
//! Requests are strict: the relay parses what browsers send with
//! [`TokenRequest::parse_form`], which refuses anything ambiguous. Responses
//! are tolerant: [`TokenResponse`] reads Bitbucket's answers whichever of
//! its historic spellings they use, and always writes the RFC 6749 form.

use crate::pkce::VerifierError;
use crate::secret::{AccessToken, AuthorizationCode, PkceVerifier, RefreshToken};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Cow;
use std::fmt;
use thiserror::Error;

/// The longest value accepted for any token request field: room for a
/// refresh token the relay sealed around a 4,096-byte Bitbucket one (about
/// 5,600 characters; Bitbucket's own regularly exceed 2,500).
pub const MAX_FIELD_LEN: usize = 6144;

/// A token request from a public client, before client authentication is added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenRequest {
    /// Exchange an authorization code (RFC 6749 4.1.3, RFC 7636 4.5).
    AuthorizationCode {
        /// The code from the redirect.
        code: AuthorizationCode,
        /// The redirect URI used in the authorization request.
        redirect_uri: String,
        /// The PKCE verifier whose challenge was sent at authorization.
        code_verifier: PkceVerifier,
    },
    /// Exchange a refresh token for new tokens (RFC 6749 6).
    RefreshToken {
        /// The current refresh token; Bitbucket retires it on use.
        refresh_token: RefreshToken,
    },
}

/// Why a token request body was refused. Messages name fields, never values.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TokenRequestError {
    /// The body is not valid `application/x-www-form-urlencoded` UTF-8.
    #[error("the request body is not valid UTF-8 form encoding")]
    NotUtf8,
    /// A field appears more than once (RFC 6749 3.2 forbids it).
    #[error("the field `{0}` appears more than once")]
    Duplicate(String),
    /// A required field is missing.
    #[error("the field `{0}` is missing")]
    Missing(&'static str),
    /// A field is present but empty.
    #[error("the field `{0}` is empty")]
    Empty(&'static str),
    /// A field is longer than [`MAX_FIELD_LEN`].
    #[error("the field `{0}` is too long")]
    TooLong(String),
    /// `grant_type` names a grant this client may not use.
    #[error("grant_type `{0}` is not supported; use authorization_code or refresh_token")]
    UnsupportedGrantType(String),
    /// `code_verifier` breaks RFC 7636's rules.
    #[error(transparent)]
    InvalidVerifier(#[from] VerifierError),
}

impl TokenRequestError {
    /// The RFC 6749 5.2 error code this refusal maps to.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::UnsupportedGrantType(_) => ErrorCode::UnsupportedGrantType,
            _ => ErrorCode::InvalidRequest,
        }
    }
}

impl TokenRequest {
    /// Parses a form body strictly: valid UTF-8 after percent-decoding, no
    /// field twice, every required field present and non-empty, only the two
    /// grants a browser may use. Unknown fields are ignored (RFC 6749 3.2),
    /// and so never forwarded.
    pub fn parse_form(body: &[u8]) -> Result<Self, TokenRequestError> {
        let mut fields: Vec<(String, String)> = Vec::new();
        for pair in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
            let (key, value) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            let key = decode_component(key)?;
            if fields.iter().any(|(k, _)| *k == key) {
                return Err(TokenRequestError::Duplicate(printable(&key)));
            }
            if value.len() > MAX_FIELD_LEN * 3 {
                return Err(TokenRequestError::TooLong(printable(&key)));
            }
            let value = decode_component(value)?;
            if value.len() > MAX_FIELD_LEN {
                return Err(TokenRequestError::TooLong(printable(&key)));
            }
            fields.push((key, value));
        }
        let get = |name: &'static str| -> Result<&str, TokenRequestError> {
            match fields.iter().find(|(k, _)| k == name) {
                None => Err(TokenRequestError::Missing(name)),
                Some((_, v)) if v.is_empty() => Err(TokenRequestError::Empty(name)),
                Some((_, v)) => Ok(v.as_str()),
            }
        };
        match get("grant_type")? {
            "authorization_code" => Ok(Self::AuthorizationCode {
                code: AuthorizationCode::new(get("code")?),
                redirect_uri: get("redirect_uri")?.to_owned(),
                code_verifier: PkceVerifier::parse(get("code_verifier")?)?,
            }),
            "refresh_token" => {
                Ok(Self::RefreshToken { refresh_token: RefreshToken::new(get("refresh_token")?) })
            }
            other => Err(TokenRequestError::UnsupportedGrantType(printable(other))),
        }
    }

    /// The `grant_type` value of this request.
    pub fn grant_type(&self) -> &'static str {
        match self {
            Self::AuthorizationCode { .. } => "authorization_code",
            Self::RefreshToken { .. } => "refresh_token",
        }
    }

    /// The request as a form body with a DPoP proof in the
    /// [`dpop::FIELD`](crate::dpop::FIELD) field.
    pub fn to_form_with_proof(&self, proof: &str) -> String {
        let mut form = self.to_form();
        form.push('&');
        form.push_str(
            &form_urlencoded::Serializer::new(String::new())
                .append_pair(crate::dpop::FIELD, proof)
                .finish(),
        );
        form
    }

    /// The request as an `application/x-www-form-urlencoded` body.
    pub fn to_form(&self) -> String {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", self.grant_type());
        match self {
            Self::AuthorizationCode { code, redirect_uri, code_verifier } => {
                form.append_pair("code", code.secret())
                    .append_pair("redirect_uri", redirect_uri)
                    .append_pair("code_verifier", code_verifier.secret());
            }
            Self::RefreshToken { refresh_token } => {
                form.append_pair("refresh_token", refresh_token.secret());
            }
        }
        form.finish()
    }
}

/// Percent-decodes one form component (`+` is a space), refusing invalid UTF-8
/// instead of replacing it.
fn decode_component(raw: &[u8]) -> Result<String, TokenRequestError> {
    let plus_as_space: Cow<'_, [u8]> = if raw.contains(&b'+') {
        Cow::Owned(raw.iter().map(|&b| if b == b'+' { b' ' } else { b }).collect())
    } else {
        Cow::Borrowed(raw)
    };
    percent_encoding::percent_decode(&plus_as_space)
        .decode_utf8()
        .map(Cow::into_owned)
        .map_err(|_| TokenRequestError::NotUtf8)
}

/// A field name or grant type fit to appear in an error message: short and
/// without control characters.
fn printable(value: &str) -> String {
    value.chars().take(40).map(|c| if c.is_control() { '?' } else { c }).collect()
}

/// A successful token response (RFC 6749 5.1).
///
/// Reading is tolerant, as Bitbucket requires: `scope` or the legacy
/// `scopes`, `expires_in` as a number or a numeric string, `token_type` in any
/// case (stored lower-case). Writing always uses the RFC's spelling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: AccessToken,
    /// The token type, lower-case; `bearer` for Bitbucket.
    pub token_type: String,
    /// Seconds until the access token expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
    /// The refresh token; a rotated one after a refresh.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<RefreshToken>,
    /// Space-separated scopes granted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

impl<'de> Deserialize<'de> for TokenResponse {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// `expires_in` as a number or a numeric string. A hand-written
        /// visitor rather than an untagged enum: it keeps serde's buffering
        /// machinery out of the SPA's bundle.
        struct Seconds(u64);
        impl<'de> Deserialize<'de> for Seconds {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_any(SecondsVisitor)
            }
        }
        struct SecondsVisitor;
        impl serde::de::Visitor<'_> for SecondsVisitor {
            type Value = Seconds;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("expires_in as a number or a numeric string")
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Seconds, E> {
                Ok(Seconds(n))
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Seconds, E> {
                u64::try_from(n).map(Seconds).map_err(|_| E::custom("expires_in is negative"))
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Seconds, E> {
                text.trim()
                    .parse()
                    .map(Seconds)
                    .map_err(|_| E::custom("expires_in is neither a number nor a numeric string"))
            }
        }
        #[derive(Deserialize)]
        struct Wire {
            access_token: AccessToken,
            token_type: String,
            #[serde(default)]
            expires_in: Option<Seconds>,
            #[serde(default)]
            refresh_token: Option<RefreshToken>,
            #[serde(default)]
            scope: Option<String>,
            #[serde(default)]
            scopes: Option<String>,
        }
        let wire = Wire::deserialize(deserializer)?;
        Ok(Self {
            access_token: wire.access_token,
            token_type: wire.token_type.to_ascii_lowercase(),
            expires_in: wire.expires_in.map(|Seconds(n)| n),
            refresh_token: wire.refresh_token,
            scope: wire.scope.or(wire.scopes),
        })
    }
}

/// An RFC 6749 5.2 error code.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// `invalid_request`: malformed or missing parameters.
    InvalidRequest,
    /// `invalid_client`: client authentication failed.
    InvalidClient,
    /// `invalid_grant`: the code or refresh token is invalid, expired, used or
    /// was issued to another client or redirect URI.
    InvalidGrant,
    /// `unauthorized_client`: this client may not use this grant.
    UnauthorizedClient,
    /// `unsupported_grant_type`.
    UnsupportedGrantType,
    /// `invalid_scope`.
    InvalidScope,
    /// `invalid_dpop_proof` (RFC 9449 5): the DPoP proof is missing or wrong.
    InvalidDpopProof,
    /// Any other code, such as `temporarily_unavailable` or `access_denied`.
    Other(String),
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::InvalidDpopProof => "invalid_dpop_proof",
            Self::Other(code) => code,
        }
    }
}

impl From<&str> for ErrorCode {
    fn from(code: &str) -> Self {
        match code {
            "invalid_request" => Self::InvalidRequest,
            "invalid_client" => Self::InvalidClient,
            "invalid_grant" => Self::InvalidGrant,
            "unauthorized_client" => Self::UnauthorizedClient,
            "unsupported_grant_type" => Self::UnsupportedGrantType,
            "invalid_scope" => Self::InvalidScope,
            "invalid_dpop_proof" => Self::InvalidDpopProof,
            other => Self::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = Cow::<'de, str>::deserialize(deserializer)?;
        Ok(Self::from(code.as_ref()))
    }
}

/// An error response from a token endpoint (RFC 6749 5.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenError {
    /// The error code.
    pub error: ErrorCode,
    /// Human-readable text for the developer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
    /// A page about the error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_uri: Option<String>,
    /// Why, for a program: one of [`crate::dpop::reason`]'s values, added by
    /// the relay where `error` alone is too coarse (an extension member,
    /// RFC 6749 5.2 allows them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl TokenError {
    /// An error with a description.
    pub fn new(error: ErrorCode, description: impl Into<String>) -> Self {
        Self { error, error_description: Some(description.into()), error_uri: None, reason: None }
    }

    /// The same error with a `reason` for programs.
    pub fn with_reason(self, reason: &'static str) -> Self {
        Self { reason: Some(reason.to_owned()), ..self }
    }
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.error_description {
            Some(description) => write!(f, "{}: {description}", self.error),
            None => write!(f, "{}", self.error),
        }
    }
}

impl std::error::Error for TokenError {}

#[cfg(test)]
mod tests {
    use super::*;

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

    #[test]
    fn parses_an_exchange_and_writes_it_back() {
        let body = format!(
            "grant_type=authorization_code&code=a%2Bb&redirect_uri=https%3A%2F%2Fx.test%2Frepo%2F&code_verifier={VERIFIER}&client_id=ignored"
        );
        let request = TokenRequest::parse_form(body.as_bytes()).expect("valid");
        let TokenRequest::AuthorizationCode { code, redirect_uri, code_verifier } = &request else {
            panic!("wrong grant: {request:?}");
        };
        assert_eq!(code.secret(), "a+b");
        assert_eq!(redirect_uri, "https://x.test/repo/");
        assert_eq!(code_verifier.secret(), VERIFIER);
        assert_eq!(TokenRequest::parse_form(request.to_form().as_bytes()), Ok(request.clone()));
        assert!(!request.to_form().contains("client_id"));
    }

    #[test]
    fn parses_a_refresh() {
        let request = TokenRequest::parse_form(b"refresh_token=r+1&grant_type=refresh_token");
        assert_eq!(
            request,
            Ok(TokenRequest::RefreshToken { refresh_token: RefreshToken::new("r 1") })
        );
    }

    #[test]
    fn refuses_every_malformed_body() {
        use TokenRequestError as E;
        let cases: Vec<(Vec<u8>, E)> = vec![
            (b"".to_vec(), E::Missing("grant_type")),
            (b"grant_type=".to_vec(), E::Empty("grant_type")),
            (
                b"grant_type=client_credentials".to_vec(),
                E::UnsupportedGrantType("client_credentials".into()),
            ),
            (
                b"grant_type=password&username=a&password=b".to_vec(),
                E::UnsupportedGrantType("password".into()),
            ),
            (
                b"grant_type=refresh_token&grant_type=refresh_token&refresh_token=x".to_vec(),
                E::Duplicate("grant_type".into()),
            ),
            (b"grant_type=refresh_token".to_vec(), E::Missing("refresh_token")),
            (
                b"grant_type=authorization_code&code=c&redirect_uri=r".to_vec(),
                E::Missing("code_verifier"),
            ),
            (
                format!("grant_type=authorization_code&code=c&code_verifier={VERIFIER}")
                    .into_bytes(),
                E::Missing("redirect_uri"),
            ),
            (
                b"grant_type=authorization_code&code=c&redirect_uri=r&code_verifier=short".to_vec(),
                E::InvalidVerifier(VerifierError::TooShort(5)),
            ),
            (b"grant_type=refresh_token&refresh_token=%FF".to_vec(), E::NotUtf8),
            (b"grant_type=refresh_token&refresh_token=\xff".to_vec(), E::NotUtf8),
        ];
        for (body, expected) in cases {
            assert_eq!(
                TokenRequest::parse_form(&body),
                Err(expected),
                "{}",
                String::from_utf8_lossy(&body)
            );
        }
        let huge =
            format!("grant_type=refresh_token&refresh_token={}", "x".repeat(MAX_FIELD_LEN + 1));
        assert_eq!(
            TokenRequest::parse_form(huge.as_bytes()),
            Err(E::TooLong("refresh_token".into()))
        );
        assert_eq!(E::UnsupportedGrantType("x".into()).code(), ErrorCode::UnsupportedGrantType);
        assert_eq!(E::Missing("code").code(), ErrorCode::InvalidRequest);
    }

    #[test]
    fn token_response_accepts_bitbucket_spellings() {
        let current: TokenResponse = serde_json::from_str(
            r#"{"access_token":"a","scope":"account email","expires_in":7200,"refresh_token":"r","token_type":"bearer"}"#,
        ).expect("current shape");
        let legacy: TokenResponse = serde_json::from_str(
            r#"{"access_token":"a","scopes":"account email","expires_in":"7200","refresh_token":"r","token_type":"Bearer"}"#,
        ).expect("legacy shape");
        assert_eq!(current, legacy);
        assert_eq!(current.scope.as_deref(), Some("account email"));
        assert_eq!(legacy.expires_in, Some(7200));
        assert_eq!(legacy.token_type, "bearer");

        let json = serde_json::to_value(&legacy).expect("serializes");
        assert_eq!(
            json,
            serde_json::json!({
                "access_token": "a", "token_type": "bearer", "expires_in": 7200,
                "refresh_token": "r", "scope": "account email"
            })
        );
        let minimal: TokenResponse =
            serde_json::from_str(r#"{"access_token":"a","token_type":"bearer"}"#).expect("minimal");
        assert_eq!((minimal.expires_in, minimal.refresh_token, minimal.scope), (None, None, None));
    }

    #[test]
    fn token_response_refuses_nonsense() {
        for body in [
            r#"{"access_token":"a","token_type":"bearer","expires_in":"soon"}"#,
            r#"{"access_token":"a","token_type":"bearer","expires_in":-5}"#,
            r#"{"token_type":"bearer"}"#,
            r#"<html>502 Bad Gateway</html>"#,
        ] {
            assert!(serde_json::from_str::<TokenResponse>(body).is_err(), "{body}");
        }
    }

    #[test]
    fn token_errors_round_trip() {
        for (body, code) in [
            (
                r#"{"error_description": "Unsupported grant type: None", "error": "invalid_grant"}"#,
                ErrorCode::InvalidGrant,
            ),
            (
                r#"{"error_description":"Invalid refresh_token","error":"invalid_request"}"#,
                ErrorCode::InvalidRequest,
            ),
            (
                r#"{"error":"temporarily_unavailable"}"#,
                ErrorCode::Other("temporarily_unavailable".into()),
            ),
        ] {
            let error: TokenError = serde_json::from_str(body).expect(body);
            assert_eq!(error.error, code);
            let again: TokenError =
                serde_json::from_str(&serde_json::to_string(&error).expect("ser")).expect("de");
            assert_eq!(again, error);
        }
        let e = TokenError::new(ErrorCode::InvalidClient, "bad secret");
        assert_eq!(e.to_string(), "invalid_client: bad secret");
        assert_eq!(
            serde_json::to_value(&e).expect("ser"),
            serde_json::json!({"error":"invalid_client","error_description":"bad secret"})
        );
    }

    #[test]
    fn debug_of_requests_and_responses_redacts() {
        let request = TokenRequest::parse_form(
            format!(
                "grant_type=authorization_code&code=CODE123&redirect_uri=r&code_verifier={VERIFIER}"
            )
            .as_bytes(),
        )
        .expect("valid");
        let printed = format!("{request:?}");
        assert!(!printed.contains("CODE123") && !printed.contains(VERIFIER), "{printed}");
        let response: TokenResponse = serde_json::from_str(
            r#"{"access_token":"AT-SECRET","token_type":"bearer","refresh_token":"RT-SECRET"}"#,
        )
        .expect("valid");
        let printed = format!("{response:?}");
        assert!(!printed.contains("AT-SECRET") && !printed.contains("RT-SECRET"), "{printed}");
    }
}

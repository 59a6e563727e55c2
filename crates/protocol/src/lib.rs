//! Wire types and pure logic shared by every part of oauth-dance.
//!
//! This crate does no IO: it compiles for `wasm32-unknown-unknown` (the SPA) and
//! for native targets (the relay, fakebucket, tests) alike. Its only contact
//! with the outside world is randomness, taken from the operating system or,
//! in the browser, from `crypto.getRandomValues` (both through `getrandom`).
//!
//! Map of the modules:
//! - [`secret`]: one newtype per protocol value (client id and secret, state,
//!   PKCE verifier and challenge, code, tokens). The secret ones redact
//!   themselves in `Debug` and `Display`, so a stray log line leaks nothing.
//! - [`pkce`]: RFC 7636 verifier generation and validation, and the S256 challenge.
//! - [`authorize`]: the authorization request URL (RFC 6749 4.1.1) and the
//!   parser for the redirect that comes back (4.1.2 and 4.1.2.1).
//! - [`token`]: token requests (4.1.3, 6), successful responses (5.1) in the
//!   tolerant shape Bitbucket needs, and error responses (5.2).
//! - [`bitbucket`]: Bitbucket Cloud's `user`, `email`, paginated and error bodies.

pub mod authorize;
pub mod bitbucket;
pub mod pkce;
pub mod secret;
pub mod token;

pub use pkce::VerifierError;
pub use secret::{
    AccessToken, AuthorizationCode, ClientId, ClientSecret, PkceChallenge, PkceVerifier,
    RefreshToken, State,
};

/// Fills `buf` with cryptographically secure random bytes.
///
/// On wasm32 this is `crypto.getRandomValues`; elsewhere the operating
/// system's generator. A machine without a working generator cannot run an
/// OAuth client safely at all, so failure panics with a clear message rather
/// than falling back to something weaker.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    #[allow(clippy::expect_used)]
    getrandom::getrandom(&mut buf).expect("no secure random number generator is available");
    buf
}

/// Encodes bytes as base64url without padding (RFC 4648 section 5), the
/// alphabet of PKCE verifiers, challenges and our `state` values.
pub(crate) fn base64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

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
//! - [`dpop`]: the shapes and names of the DPoP proofs (RFC 9449) that
//!   bind a session's refresh token to a key only its browser holds.
//! - [`bitbucket`]: Bitbucket Cloud's `user`, `email`, paginated and error bodies.
//! - [`deployment`]: the deployment contract the SPA, the relay, `cargo xtask`
//!   and the doctor share: which hosts may use plain http, the app's base
//!   URL, `config.json` (its fields, their checks and its writer) and what a
//!   built `index.html` must say.

pub mod authorize;
pub mod bitbucket;
pub mod deployment;
pub mod dpop;
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
    // Not `expect`: that would print the error with its `Debug`, which drags
    // getrandom's and std's error tables into the SPA's bundle.
    if getrandom::getrandom(&mut buf).is_err() {
        panic!("no secure random number generator is available");
    }
    buf
}

/// Encodes bytes as base64url without padding (RFC 4648 section 5), the
/// alphabet of PKCE verifiers, challenges, our `state` values and JWS (the
/// SPA's DPoP proofs).
///
/// Written out here (a dozen lines) rather than taken from the `base64`
/// crate, whose generic engine costs the SPA's bundle several kilobytes; a
/// test checks it against that crate.
pub fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        // Three bytes make 24 bits, written as four 6-bit digits; a short
        // last chunk writes only the digits its bits reach (no padding).
        let bits =
            chunk.iter().enumerate().fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
        for digit in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(bits >> (18 - 6 * digit) & 0x3f) as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    #[test]
    fn base64url_matches_the_base64_crate() {
        let reference = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut bytes = Vec::new();
        for n in 0..300u32 {
            assert_eq!(super::base64url(&bytes), reference.encode(&bytes), "{bytes:?}");
            bytes.push((n.wrapping_mul(167) ^ (n >> 3)) as u8);
        }
        assert_eq!(super::base64url(&[0xff, 0xfe, 0xfd]), "__79");
        assert_eq!(super::base64url(b"foobar"), "Zm9vYmFy", "RFC 4648 10, unpadded");
        assert_eq!(super::base64url(b""), "");
    }
}

//! Random codes and tokens, shaped like Bitbucket's.
//!
//! Authorization codes and refresh tokens are runs of letters and digits;
//! access tokens are base64url strings that end in `=` padding. Copying
//! those shapes makes clients that forget to percent-encode a token (or trim
//! the `=`) fail here rather than in production.
//!
//! By default both tokens are as long as Bitbucket's are since 2026, over
//! 2,500 characters each ([`ACCESS_TOKEN_LEN`], [`REFRESH_TOKEN_LEN`]), so
//! that a client's header, cookie, storage or body limits meet real sizes in
//! tests. [`Config::short_tokens`](crate::Config::short_tokens) brings back
//! the old sizes. Either way every character is from the operating system's
//! secure generator.

use crate::config::{
    ACCESS_TOKEN_LEN, REFRESH_TOKEN_LEN, SHORT_ACCESS_TOKEN_LEN, SHORT_REFRESH_TOKEN_LEN,
};
use base64::Engine as _;

/// Bytes from the operating system's secure generator. A machine without one
/// cannot mint tokens at all, so fakebucket stops rather than fall back.
fn bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    #[allow(clippy::expect_used)]
    getrandom::getrandom(&mut buf).expect("no secure random number generator is available");
    buf
}

/// `len` random characters from `[A-Za-z0-9]`, without modulo bias.
pub(crate) fn alphanumeric(len: usize) -> String {
    const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(len);
    while out.len() < len {
        for b in bytes(len * 2) {
            // 248 = 4 * 62: bytes at or above it would favour the first letters.
            if b < 248 && out.len() < len {
                out.push(char::from(ALPHABET[usize::from(b % 62)]));
            }
        }
    }
    out
}

/// How many random bytes make a padded base64url string of `len`
/// characters ending in `==` (`len` a multiple of four).
const fn padded_bytes(len: usize) -> usize {
    len / 4 * 3 - 2
}

/// An access token: random bytes as padded base64url ending in `==`,
/// [`ACCESS_TOKEN_LEN`] characters (1,948 bytes), or
/// [`SHORT_ACCESS_TOKEN_LEN`] (64 bytes) when `short`.
pub(crate) fn access_token(short: bool) -> String {
    let len = if short { SHORT_ACCESS_TOKEN_LEN } else { ACCESS_TOKEN_LEN };
    base64::engine::general_purpose::URL_SAFE.encode(bytes(padded_bytes(len)))
}

/// A refresh token: [`REFRESH_TOKEN_LEN`] letters and digits, or
/// [`SHORT_REFRESH_TOKEN_LEN`] (about 143 bits) when `short`.
pub(crate) fn refresh_token(short: bool) -> String {
    alphanumeric(if short { SHORT_REFRESH_TOKEN_LEN } else { REFRESH_TOKEN_LEN })
}

/// An authorization code: 20 letters and digits (about 119 bits).
pub(crate) fn code() -> String {
    alphanumeric(20)
}

/// The id of a pending consent page (not a secret to the user, but it must
/// not be guessable by another page).
pub(crate) fn transaction() -> String {
    alphanumeric(32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_their_sizes_and_shapes() {
        for (short, access_len, refresh_len) in [
            (false, ACCESS_TOKEN_LEN, REFRESH_TOKEN_LEN),
            (true, SHORT_ACCESS_TOKEN_LEN, SHORT_REFRESH_TOKEN_LEN),
        ] {
            let access = access_token(short);
            assert_eq!(access.len(), access_len);
            assert!(access.ends_with("==") && !access[..access_len - 2].contains('='));
            let refresh = refresh_token(short);
            assert_eq!(refresh.len(), refresh_len);
            assert!(refresh.bytes().all(|b| b.is_ascii_alphanumeric()));
            assert_ne!(refresh_token(short), refresh, "random");
        }
    }
}

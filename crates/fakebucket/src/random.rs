//! Random codes and tokens, shaped like Bitbucket's.
//!
//! Bitbucket's authorization codes and refresh tokens are short runs of
//! letters and digits; its access tokens are long base64url strings that end
//! in `=` padding. Copying those shapes makes clients that forget to
//! percent-encode a token (or trim the `=`) fail here rather than in
//! production.

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

/// An access token: 64 random bytes as padded base64url (88 characters
/// ending in `==`).
pub(crate) fn access_token() -> String {
    base64::engine::general_purpose::URL_SAFE.encode(bytes(64))
}

/// A refresh token: 24 letters and digits (about 143 bits).
pub(crate) fn refresh_token() -> String {
    alphanumeric(24)
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

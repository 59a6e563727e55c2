//! DPoP proofs (RFC 9449) as the SPA writes them and the relay reads them.
//!
//! Bitbucket binds no token to a key, so the relay does: every token request
//! carries a proof, a compact JWS signed with a P-256 key the browser made
//! with `extractable: false`. The relay checks the proof and seals the
//! thumbprint of its key into the refresh token it hands out; a refresh is
//! forwarded only with a proof by the same key.
//!
//! This module holds the shapes and the names, no cryptography: the SPA signs
//! with WebCrypto, the relay verifies with RustCrypto. A proof is
//! `base64url(header) "." base64url(claims) "." base64url(r || s)`:
//!
//! - header: `{"typ":"dpop+jwt","alg":"ES256","jwk":{"kty":"EC","crv":"P-256","x":…,"y":…}}`
//! - claims: `{"jti":…,"htm":"POST","htu":<the relay's token URL>,"iat":<seconds>}`
//!
//! The proof travels in the form field [`FIELD`] (a form POST stays a CORS
//! "simple request", so no preflight) or, as RFC 9449 writes it, in the
//! [`HEADER`] header; a request with both is refused.

use serde::{Deserialize, Serialize};

/// The form field that carries the proof.
pub const FIELD: &str = "dpop";
/// The header RFC 9449 puts the proof in.
pub const HEADER: &str = "DPoP";
/// The JWS `typ` of a proof.
pub const TYP: &str = "dpop+jwt";
/// The only signature algorithm used and accepted: ECDSA P-256 with SHA-256.
pub const ALG: &str = "ES256";
/// The longest proof accepted, in bytes. A P-256 proof is about 450.
pub const MAX_LEN: usize = 2048;

/// The protected header of a proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Always [`TYP`].
    pub typ: String,
    /// Always [`ALG`].
    pub alg: String,
    /// The public key that signed the proof.
    pub jwk: Jwk,
}

/// A P-256 public key as a JSON Web Key (RFC 7517, 7518 6.2).
///
/// Reading keeps `d` only to refuse it: a proof must never carry a private
/// key (RFC 9449 4.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// Always `EC`.
    pub kty: String,
    /// Always `P-256`.
    pub crv: String,
    /// The x coordinate, base64url of 32 bytes.
    pub x: String,
    /// The y coordinate, base64url of 32 bytes.
    pub y: String,
    /// A private key, which must be absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub d: Option<String>,
}

impl Jwk {
    /// The RFC 7638 thumbprint: base64url of the SHA-256 of the required
    /// members in lexicographic order, without spaces.
    pub fn thumbprint(&self) -> String {
        use sha2::{Digest as _, Sha256};
        // The members are base64url or fixed names, so no JSON escaping
        // can be needed; serde_json writes them exactly as RFC 7638 wants.
        let canonical = serde_json::json!({
            "crv": self.crv, "kty": self.kty, "x": self.x, "y": self.y,
        });
        crate::base64url(&Sha256::digest(canonical.to_string().as_bytes()))
    }
}

/// The claims of a proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// A unique id for this proof (at least 96 bits of randomness).
    pub jti: String,
    /// The HTTP method of the request: `POST`.
    pub htm: String,
    /// The request's URL without query or fragment.
    pub htu: String,
    /// When the proof was made, in seconds since the epoch.
    pub iat: u64,
}

/// Values of the `reason` member the relay adds to some error answers, so
/// the SPA and `cargo xtask doctor` can tell them apart without reading
/// prose (the `error_description` may be reworded at any time).
pub mod reason {
    /// The `redirect_uri` of a code exchange is not on the relay's
    /// allowlist (`DANCE_ALLOWED_REDIRECT_URIS`).
    pub const REDIRECT_URI_NOT_ALLOWED: &str = "redirect_uri_not_allowed";
    /// The request's `Origin` is missing or not on the relay's allowlist
    /// (`DANCE_ALLOWED_ORIGINS`); answered with 403.
    pub const ORIGIN_NOT_ALLOWED: &str = "origin_not_allowed";
    /// The session reached the absolute lifetime the relay allows; the
    /// person must sign in again.
    pub const SESSION_ENDED: &str = "session_ended";
    /// The refresh token is not one the relay sealed, or was sealed with a
    /// key it no longer has.
    pub const NOT_SEALED: &str = "not_sealed";
    /// The proof's key is not the key the refresh token is bound to.
    pub const WRONG_KEY: &str = "wrong_key";
    /// The proof's time is too far from the relay's clock: one of the two
    /// clocks is off. Other proof refusals carry no reason.
    pub const CLOCK: &str = "clock";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprint_of_the_rfc_9449_example_key() {
        // The example key of RFC 9449 4.1; its canonical form, then the
        // `jkt` that RFC 9449 6.1 and 10.1 give for it.
        let jwk = Jwk {
            kty: "EC".into(),
            crv: "P-256".into(),
            x: "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs".into(),
            y: "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA".into(),
            d: None,
        };
        let canonical = serde_json::json!({
            "crv": jwk.crv, "kty": jwk.kty, "x": jwk.x, "y": jwk.y,
        })
        .to_string();
        assert_eq!(
            canonical,
            r#"{"crv":"P-256","kty":"EC","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"}"#
        );
        assert_eq!(jwk.thumbprint(), "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I");
    }

    #[test]
    fn a_header_with_a_private_key_still_parses_so_it_can_be_refused() {
        let header: Header = serde_json::from_str(
            r#"{"typ":"dpop+jwt","alg":"ES256","jwk":{"kty":"EC","crv":"P-256","x":"a","y":"b","d":"c"}}"#,
        )
        .expect("parses");
        assert_eq!(header.jwk.d.as_deref(), Some("c"));
    }
}

//! Checking a DPoP proof (RFC 9449 4.3) against the request it came with.
//!
//! The relay accepts exactly what the SPA makes: a compact JWS with
//! `typ: dpop+jwt`, `alg: ES256` and a P-256 public `jwk` in its header, and
//! `jti`, `htm`, `htu`, `iat` in its claims. Anything else is refused before
//! the signature is even looked at, so `alg: none`, HMAC with the public key
//! as secret, and other JOSE pitfalls have no code path to slip through.
//!
//! `jti` is not remembered: the relay keeps no state. A proof can therefore
//! be replayed within its [`MAX_AGE`], to the same relay URL, by someone who
//! also holds the sealed refresh token it goes with; see the README's
//! security section for what that leaves open.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dance_protocol::dpop::{ALG, Claims, Header, MAX_LEN, TYP};

/// How old a proof may be: its `iat` at most this many seconds ago.
pub const MAX_AGE: u64 = 60;
/// How far ahead of the relay's clock a proof's `iat` may be (the browser's
/// clock running slightly fast).
pub const MAX_AHEAD: u64 = 60;

/// The request a proof must match.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expected<'a> {
    /// The request's method.
    pub(crate) htm: &'a str,
    /// The request's `Host` header: the authority the browser called.
    pub(crate) host: Option<&'a str>,
    /// The request's path.
    pub(crate) path: &'a str,
    /// The relay's clock, seconds since the epoch.
    pub(crate) now: u64,
}

/// Why a proof was refused. The messages go to the developer reading the
/// JSON answer; they name the check, never the proof's content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// No proof came with the request.
    #[error(
        "the request carries no DPoP proof (RFC 9449): send one in the `dpop` form field or the DPoP header"
    )]
    Missing,
    /// Both the form field and the header carry one.
    #[error("the request carries two DPoP proofs (form field and header); send one")]
    Twice,
    /// Not three base64url parts of JSON, or too long.
    #[error("the DPoP proof is not a compact JWS of JSON objects")]
    Malformed,
    /// `typ` is not `dpop+jwt`.
    #[error("the DPoP proof's typ must be dpop+jwt")]
    Typ,
    /// `alg` is not ES256.
    #[error("the DPoP proof's alg must be ES256")]
    Alg,
    /// The `jwk` is not a P-256 public key, or carries a private key.
    #[error("the DPoP proof's jwk must be a P-256 public key and nothing more")]
    Key,
    /// The signature does not verify with the `jwk`.
    #[error("the DPoP proof's signature does not verify")]
    Signature,
    /// `htm` is not the request's method.
    #[error("the DPoP proof's htm is not this request's method")]
    Htm,
    /// `htu` is not this relay's URL.
    #[error("the DPoP proof's htu is not this relay's token URL")]
    Htu,
    /// `iat` is too far in the past.
    #[error("the DPoP proof is more than {MAX_AGE} s old; is the computer's clock right?")]
    Stale,
    /// `iat` is too far in the future.
    #[error(
        "the DPoP proof was made more than {MAX_AHEAD} s in the future; is the computer's clock right?"
    )]
    Ahead,
    /// `jti` is missing randomness or absurdly long.
    #[error("the DPoP proof's jti must be 16 to 128 characters")]
    Jti,
}

/// A proof that passed every check but its signature's, which the shell
/// checks ([`Unverified::verify_here`], or a verifier of its runtime: the
/// Worker uses `crypto.subtle`) before calling
/// [`Relay::verified`](crate::Relay::verified).
#[derive(Clone)]
pub struct Unverified {
    thumbprint: String,
    public_key: [u8; 65],
    message: Vec<u8>,
    signature: Vec<u8>,
}

impl std::fmt::Debug for Unverified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unverified").field("thumbprint", &self.thumbprint).finish_non_exhaustive()
    }
}

impl Unverified {
    /// The proof's public key: an uncompressed SEC1 point on P-256
    /// (`0x04 ‖ x ‖ y`), already known to be on the curve.
    pub fn public_key(&self) -> &[u8; 65] {
        &self.public_key
    }

    /// What was signed: `base64url(header) "." base64url(claims)`.
    pub fn message(&self) -> &[u8] {
        &self.message
    }

    /// The signature as the proof carries it: `r ‖ s`, 64 bytes when well
    /// formed (anything else does not verify).
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// The RFC 7638 thumbprint of the proof's key.
    pub(crate) fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// Checks the ES256 signature here: ring natively (about 40 µs on the
    /// benchmark machine, where p256 takes 400), p256 in wasm.
    pub fn verify_here(&self) -> bool {
        verify_es256(&self.public_key, &self.message, &self.signature)
    }
}

/// Checks `proof` against the request, all but its signature.
pub(crate) fn check(proof: &str, expected: Expected<'_>) -> Result<Unverified, ProofError> {
    if proof.len() > MAX_LEN {
        return Err(ProofError::Malformed);
    }
    let mut parts = proof.split('.');
    let (Some(header_b64), Some(claims_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ProofError::Malformed);
    };
    let header: Header = decode_json(header_b64)?;
    if header.typ != TYP {
        return Err(ProofError::Typ);
    }
    if header.alg != ALG {
        return Err(ProofError::Alg);
    }
    let public_key = public_key(&header)?;
    let signature = URL_SAFE_NO_PAD.decode(signature_b64).map_err(|_| ProofError::Signature)?;
    let claims: Claims = decode_json(claims_b64)?;
    if !(16..=128).contains(&claims.jti.len()) {
        return Err(ProofError::Jti);
    }
    if claims.htm != expected.htm {
        return Err(ProofError::Htm);
    }
    if !htu_matches(&claims.htu, expected) {
        return Err(ProofError::Htu);
    }
    if claims.iat.saturating_add(MAX_AGE) < expected.now {
        return Err(ProofError::Stale);
    }
    if claims.iat > expected.now.saturating_add(MAX_AHEAD) {
        return Err(ProofError::Ahead);
    }
    Ok(Unverified {
        thumbprint: header.jwk.thumbprint(),
        public_key,
        message: proof.as_bytes()[..header_b64.len() + 1 + claims_b64.len()].to_vec(),
        signature,
    })
}

/// Checks `proof` entirely, here; the thumbprint of its key.
#[cfg(test)]
fn verify(proof: &str, expected: Expected<'_>) -> Result<String, ProofError> {
    let proof = check(proof, expected)?;
    if proof.verify_here() { Ok(proof.thumbprint) } else { Err(ProofError::Signature) }
}

fn decode_json<T: serde::de::DeserializeOwned>(part: &str) -> Result<T, ProofError> {
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| ProofError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| ProofError::Malformed)
}

/// The header's `jwk` as an uncompressed SEC1 point, refusing anything but a
/// bare public key on P-256, on the curve.
fn public_key(header: &Header) -> Result<[u8; 65], ProofError> {
    let jwk = &header.jwk;
    if jwk.kty != "EC" || jwk.crv != "P-256" || jwk.d.is_some() {
        return Err(ProofError::Key);
    }
    let coordinate = |text: &str| -> Result<[u8; 32], ProofError> {
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| ProofError::Key)?;
        bytes.try_into().map_err(|_| ProofError::Key)
    };
    let mut sec1 = [0u8; 65];
    sec1[0] = 0x04;
    sec1[1..33].copy_from_slice(&coordinate(&jwk.x)?);
    sec1[33..].copy_from_slice(&coordinate(&jwk.y)?);
    if p256::PublicKey::from_sec1_bytes(&sec1).is_err() {
        return Err(ProofError::Key);
    }
    Ok(sec1)
}

/// Checks an ES256 signature (`r || s`, 64 bytes) with ring, which rustls
/// already brings.
#[cfg(not(target_arch = "wasm32"))]
fn verify_es256(sec1: &[u8; 65], message: &[u8], signature: &[u8]) -> bool {
    use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, sec1).verify(message, signature).is_ok()
}

/// Checks an ES256 signature (`r || s`, 64 bytes) with p256: pure Rust, so
/// the Worker builds without a C toolchain for wasm32 (it prefers its
/// runtime's `crypto.subtle`, which is faster).
#[cfg(target_arch = "wasm32")]
fn verify_es256(sec1: &[u8; 65], message: &[u8], signature: &[u8]) -> bool {
    use p256::ecdsa::signature::Verifier as _;
    use p256::ecdsa::{Signature, VerifyingKey};
    let (Ok(key), Ok(signature)) =
        (VerifyingKey::from_sec1_bytes(sec1), Signature::from_slice(signature))
    else {
        return false;
    };
    key.verify(message, &signature).is_ok()
}

/// Whether `htu` names this request: the authority the browser called (the
/// `Host` header), https (or http for a loopback host), and the relay's
/// path, or that path under a prefix (`/dance/token` for a proxy that
/// forwards `/dance/*` to the relay's root; the host must match anyway).
/// The query and fragment are ignored (RFC 9449 4.3).
fn htu_matches(htu: &str, expected: Expected<'_>) -> bool {
    let (Ok(htu), Some(host)) = (url::Url::parse(htu), expected.host) else {
        return false;
    };
    let secure = match htu.scheme() {
        "https" => true,
        "http" => crate::config::is_loopback_host(&htu),
        _ => false,
    };
    let Some(htu_host) = htu.host_str() else { return false };
    let Some(htu_port) = htu.port_or_known_default() else { return false };
    // The Host header is `host[:port]`; its port defaults to the scheme's.
    let Ok(called) = url::Url::parse(&format!("{}://{host}", htu.scheme())) else {
        return false;
    };
    secure
        && called.host_str().is_some_and(|h| h.eq_ignore_ascii_case(htu_host))
        && called.port_or_known_default() == Some(htu_port)
        && called.path() == "/"
        && path_matches(htu.path(), expected.path)
}

/// `path` itself, or `path` under a prefix of whole segments.
fn path_matches(htu_path: &str, path: &str) -> bool {
    match htu_path.strip_suffix(path) {
        Some("") => true,
        Some(prefix) => prefix.starts_with('/') && !prefix.ends_with('/'),
        None => false,
    }
}

/// Making proofs outside a browser, for tests (feature `testing`): the
/// relay's own tests, its integration tests, and the end-to-end replay of a
/// lifted refresh token.
#[cfg(any(test, feature = "testing"))]
pub mod testing {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use dance_protocol::dpop::{ALG, Claims, Header, Jwk, TYP};
    use p256::ecdsa::signature::Signer as _;
    use p256::ecdsa::{Signature, SigningKey};

    /// A P-256 key that makes DPoP proofs the way the SPA does.
    pub struct ProofKey {
        key: SigningKey,
    }

    impl std::fmt::Debug for ProofKey {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "ProofKey({})", self.jwk().thumbprint())
        }
    }

    impl Default for ProofKey {
        fn default() -> Self {
            Self::new()
        }
    }

    impl ProofKey {
        /// A fresh random key.
        pub fn new() -> Self {
            Self { key: SigningKey::random(&mut rand_core::OsRng) }
        }

        /// The public key as the proof's header carries it.
        pub fn jwk(&self) -> Jwk {
            let point = self.key.verifying_key().to_encoded_point(false);
            let coordinate = |c: Option<&p256::FieldBytes>| {
                URL_SAFE_NO_PAD.encode(c.map(|c| c.as_slice()).unwrap_or_default())
            };
            Jwk {
                kty: "EC".into(),
                crv: "P-256".into(),
                x: coordinate(point.x()),
                y: coordinate(point.y()),
                d: None,
            }
        }

        /// A proof for `POST htu` made at `iat` (seconds since the epoch).
        pub fn proof(&self, htu: &str, iat: u64) -> String {
            self.proof_with(htu, iat, |_, _| {})
        }

        /// A proof for `POST htu` at `iat`, after `change` had its way with
        /// the header and the claims.
        pub fn proof_with(
            &self,
            htu: &str,
            iat: u64,
            change: impl FnOnce(&mut Header, &mut Claims),
        ) -> String {
            let mut header = Header { typ: TYP.into(), alg: ALG.into(), jwk: self.jwk() };
            let mut jti = [0u8; 16];
            if getrandom::getrandom(&mut jti).is_err() {
                panic!("no secure random number generator is available");
            }
            let mut claims = Claims {
                jti: URL_SAFE_NO_PAD.encode(jti),
                htm: "POST".into(),
                htu: htu.into(),
                iat,
            };
            change(&mut header, &mut claims);
            // Plain structs of strings and numbers always serialize.
            let header = serde_json::to_vec(&header).unwrap_or_default();
            let claims = serde_json::to_vec(&claims).unwrap_or_default();
            self.sign(&header, &claims)
        }

        /// A compact JWS over these exact header and claims bytes.
        pub fn sign(&self, header: &[u8], claims: &[u8]) -> String {
            let input =
                format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims));
            let signature: Signature = self.key.sign(input.as_bytes());
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use dance_protocol::dpop::Jwk;

    pub(crate) const HOST: &str = "relay.example";
    pub(crate) const HTU: &str = "https://relay.example/token";
    pub(crate) const NOW: u64 = 1_800_000_000;

    /// A browser's key, for tests: [`testing::ProofKey`] with this
    /// module's URL and time.
    pub(crate) struct Browser(testing::ProofKey);

    impl Browser {
        pub(crate) fn new() -> Self {
            Self(testing::ProofKey::new())
        }

        pub(crate) fn jwk(&self) -> Jwk {
            self.0.jwk()
        }

        pub(crate) fn proof(&self) -> String {
            self.0.proof(HTU, NOW)
        }

        /// A proof for `POST HTU` at `NOW`, after `change` had its way with
        /// the header and the claims.
        pub(crate) fn proof_with(&self, change: impl FnOnce(&mut Header, &mut Claims)) -> String {
            self.0.proof_with(HTU, NOW, change)
        }
    }

    pub(crate) fn expected() -> Expected<'static> {
        Expected { htm: "POST", host: Some(HOST), path: "/token", now: NOW }
    }

    #[test]
    fn a_proof_as_the_spa_makes_it_passes_and_names_its_key() {
        let browser = Browser::new();
        assert_eq!(verify(&browser.proof(), expected()), Ok(browser.jwk().thumbprint()));
        // Within the window on both sides, and with a query on htu.
        for iat in [NOW - MAX_AGE, NOW + MAX_AHEAD] {
            let proof = browser.proof_with(|_, c| c.iat = iat);
            assert!(verify(&proof, expected()).is_ok(), "iat {iat}");
        }
        let proof = browser.proof_with(|_, c| c.htu = format!("{HTU}?x=1#y"));
        assert!(verify(&proof, expected()).is_ok());
        let loopback = browser.proof_with(|_, c| c.htu = "http://127.0.0.1:8787/token".into());
        let expected_loopback = Expected { host: Some("127.0.0.1:8787"), ..expected() };
        assert!(verify(&loopback, expected_loopback).is_ok());
        let explicit_port = Expected { host: Some("relay.example:443"), ..expected() };
        assert!(verify(&browser.proof(), explicit_port).is_ok());
        // Behind a proxy that forwards a path prefix to the relay's root.
        let prefixed =
            browser.proof_with(|_, c| c.htu = "https://relay.example/dance/token".into());
        assert!(verify(&prefixed, expected()).is_ok());
    }

    #[test]
    fn every_wrong_proof_is_refused_for_its_reason() {
        let browser = Browser::new();
        let refused = |proof: String, why: ProofError| {
            assert_eq!(verify(&proof, expected()), Err(why.clone()), "{why:?}");
        };
        for path in ["/other", "/tokens", "/x-token", "//token", "/token/x"] {
            let htu = format!("https://relay.example{path}");
            refused(browser.proof_with(|_, c| c.htu = htu), ProofError::Htu);
        }
        refused(
            browser.proof_with(|_, c| c.htu = "https://evil.example/token".into()),
            ProofError::Htu,
        );
        refused(
            browser.proof_with(|_, c| c.htu = "http://relay.example/token".into()),
            ProofError::Htu,
        );
        refused(
            browser.proof_with(|_, c| c.htu = "https://relay.example:8443/token".into()),
            ProofError::Htu,
        );
        refused(browser.proof_with(|_, c| c.htm = "GET".into()), ProofError::Htm);
        refused(browser.proof_with(|_, c| c.iat = NOW - MAX_AGE - 1), ProofError::Stale);
        refused(browser.proof_with(|_, c| c.iat = NOW + MAX_AHEAD + 1), ProofError::Ahead);
        refused(browser.proof_with(|_, c| c.jti = "short".into()), ProofError::Jti);
        refused(browser.proof_with(|h, _| h.typ = "JWT".into()), ProofError::Typ);
        refused(browser.proof_with(|h, _| h.alg = "none".into()), ProofError::Alg);
        refused(browser.proof_with(|h, _| h.alg = "HS256".into()), ProofError::Alg);
        refused(browser.proof_with(|h, _| h.jwk.crv = "P-384".into()), ProofError::Key);
        refused(browser.proof_with(|h, _| h.jwk.d = Some("private".into())), ProofError::Key);
        refused(
            browser.proof_with(|h, _| h.jwk.x = URL_SAFE_NO_PAD.encode([1u8; 32])),
            ProofError::Key,
        );
        // Another key's jwk in the header: the signature does not verify.
        let other = Browser::new();
        refused(browser.proof_with(|h, _| h.jwk = other.jwk()), ProofError::Signature);
        // A signature changed, cut or removed.
        let proof = browser.proof();
        let (input, signature) = proof.rsplit_once('.').expect("three parts");
        let mut bytes = URL_SAFE_NO_PAD.decode(signature).expect("base64url");
        bytes[10] ^= 1;
        refused(format!("{input}.{}", URL_SAFE_NO_PAD.encode(&bytes)), ProofError::Signature);
        refused(format!("{input}.{}", URL_SAFE_NO_PAD.encode(&bytes[..63])), ProofError::Signature);
        refused(format!("{input}."), ProofError::Signature);
        // `alg: none` the way attackers write it: no signature at all.
        let none = br#"{"typ":"dpop+jwt","alg":"none"}"#;
        let claims = br#"{"jti":"e1j3V_bKic8-LAEB_lccD0G","htm":"POST","htu":"https://relay.example/token","iat":1800000000}"#;
        refused(
            format!("{}.{}.", URL_SAFE_NO_PAD.encode(none), URL_SAFE_NO_PAD.encode(claims)),
            ProofError::Malformed,
        );
        // Claims changed after signing.
        let (header, rest) = proof.split_once('.').expect("parts");
        let (_, signature) = rest.split_once('.').expect("parts");
        let forged = URL_SAFE_NO_PAD.encode(br#"{"jti":"e1j3V_bKic8-LAEB_lccD0G","htm":"POST","htu":"https://relay.example/token","iat":1800000001}"#);
        refused(format!("{header}.{forged}.{signature}"), ProofError::Signature);
        for junk in ["", "a.b", "a.b.c.d", "....", &"a".repeat(MAX_LEN + 1)] {
            refused(junk.to_owned(), ProofError::Malformed);
        }
    }

    #[test]
    fn htu_needs_the_host_header() {
        let browser = Browser::new();
        let no_host = Expected { host: None, ..expected() };
        assert_eq!(verify(&browser.proof(), no_host), Err(ProofError::Htu));
        let other_host = Expected { host: Some("relay.example.evil"), ..expected() };
        assert_eq!(verify(&browser.proof(), other_host), Err(ProofError::Htu));
        let junk_host = Expected { host: Some("relay.example/x"), ..expected() };
        assert_eq!(verify(&browser.proof(), junk_host), Err(ProofError::Htu));
    }
}

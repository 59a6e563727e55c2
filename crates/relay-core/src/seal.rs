//! Sealed refresh tokens: Bitbucket's refresh token, encrypted by the relay,
//! bound to the browser's key and to an absolute end.
//!
//! The browser never holds a Bitbucket refresh token. In its place it gets a
//! blob only the relay can open, which says: this upstream refresh token,
//! for the key with this RFC 7638 thumbprint, in a session that began then
//! and ends then. A refresh is forwarded only when the blob opens, the
//! session has not reached its end, and the request's DPoP proof was made
//! by that key. The relay stays stateless: everything it needs to decide is
//! in the blob, and any copy holding the key decides the same way.
//!
//! # The blob
//! `base64url(version ‖ key id ‖ nonce ‖ ciphertext)`:
//! - version: one byte, [`VERSION`];
//! - key id: four bytes of SHA-256 over the key, so a relay with several
//!   keys (rotation: seal with the first, open with any) knows which to try;
//! - nonce: 24 random bytes (XChaCha20-Poly1305, so random nonces are safe
//!   for any number of seals);
//! - ciphertext of `began ‖ ends ‖ thumbprint ‖ refresh token` (two
//!   big-endian u64 seconds since the epoch, the 43-character thumbprint,
//!   the upstream token's bytes), with the Poly1305 tag.
//!
//! The associated data is the version, the key id and the consumer's client
//! id: a blob sealed for another consumer does not open, even under the same
//! key.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest as _, Sha256};
use std::fmt;

/// The blob format's version byte.
pub const VERSION: u8 = 1;
/// The length of a thumbprint: base64url of 32 bytes.
const THUMBPRINT_LEN: usize = 43;
/// Version, key id, nonce.
const HEADER_LEN: usize = 1 + 4 + 24;
/// The longest upstream refresh token the relay seals. Bitbucket's regularly
/// exceed 2,500 characters; sealed, 4,096 bytes become about 5,600
/// characters, which still fit a token request field and the default body
/// limit with a proof beside them.
pub const MAX_UPSTREAM_LEN: usize = 4096;

/// A 32-byte sealing key. `Debug` does not print it.
#[derive(Clone, PartialEq, Eq)]
pub struct SealingKey([u8; 32]);

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealingKey(id {})", hex(&self.id()))
    }
}

impl SealingKey {
    /// A fresh key from the operating system's (or, in a Worker, the
    /// runtime's) secure random generator.
    ///
    /// # Panics
    /// When no secure random generator is available.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        if getrandom::getrandom(&mut bytes).is_err() {
            panic!("no secure random number generator is available");
        }
        Self(bytes)
    }

    /// Reads a key written as base64url (as `dance-relay keygen` prints it)
    /// or standard base64, with or without padding. The message never
    /// contains the text, which may be a real key with a typo.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let unpadded = text.trim_end_matches('=');
        let bytes = URL_SAFE_NO_PAD
            .decode(unpadded)
            .or_else(|_| STANDARD.decode(text))
            .map_err(|_| "a sealing key must be base64 (`dance-relay keygen` prints one)")?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            format!(
                "a sealing key must be 32 bytes, this one is {} (`dance-relay keygen` prints one)",
                b.len()
            )
        })?;
        Ok(Self(bytes))
    }

    /// The key as base64url, the form [`SealingKey::parse`] reads.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    fn id(&self) -> [u8; 4] {
        let digest = Sha256::new_with_prefix(b"dance-relay sealing key id\0")
            .chain_update(self.0)
            .finalize();
        [digest[0], digest[1], digest[2], digest[3]]
    }
}

/// What a sealed blob holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// When the session began (seconds since the epoch).
    pub began: u64,
    /// When the session must end (seconds since the epoch).
    pub ends: u64,
    /// The RFC 7638 thumbprint of the key the session is bound to.
    pub thumbprint: String,
    /// Bitbucket's refresh token.
    pub refresh_token: String,
}

/// Why a value could not be sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The upstream refresh token is longer than [`MAX_UPSTREAM_LEN`].
    #[error("the token endpoint's refresh token is longer than {MAX_UPSTREAM_LEN} bytes")]
    TooLong,
    /// The thumbprint is not 43 base64url characters.
    #[error("the key thumbprint is malformed")]
    Thumbprint,
}

/// The sealing keys of one relay and the consumer they seal for.
#[derive(Clone)]
pub struct Sealer {
    /// `(id, cipher)`; the first seals.
    keys: Vec<([u8; 4], XChaCha20Poly1305)>,
    client_id: String,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<String> = self.keys.iter().map(|(id, _)| hex(id)).collect();
        f.debug_struct("Sealer").field("key_ids", &ids).finish_non_exhaustive()
    }
}

impl Sealer {
    /// A sealer with `keys` (the first seals, all open), or `None` without
    /// keys.
    pub fn new(keys: &[SealingKey], client_id: &str) -> Option<Self> {
        if keys.is_empty() {
            return None;
        }
        let keys =
            keys.iter().map(|key| (key.id(), XChaCha20Poly1305::new((&key.0).into()))).collect();
        Some(Self { keys, client_id: client_id.to_owned() })
    }

    /// Seals `value` with the first key.
    pub fn seal(&self, value: &Sealed) -> Result<String, SealError> {
        if value.refresh_token.len() > MAX_UPSTREAM_LEN {
            return Err(SealError::TooLong);
        }
        if value.thumbprint.len() != THUMBPRINT_LEN {
            return Err(SealError::Thumbprint);
        }
        let (id, cipher) = &self.keys[0];
        let mut nonce = [0u8; 24];
        if getrandom::getrandom(&mut nonce).is_err() {
            panic!("no secure random number generator is available");
        }
        let mut plain = Vec::with_capacity(16 + THUMBPRINT_LEN + value.refresh_token.len());
        plain.extend_from_slice(&value.began.to_be_bytes());
        plain.extend_from_slice(&value.ends.to_be_bytes());
        plain.extend_from_slice(value.thumbprint.as_bytes());
        plain.extend_from_slice(value.refresh_token.as_bytes());
        let mut blob = Vec::with_capacity(HEADER_LEN + plain.len() + 16);
        blob.push(VERSION);
        blob.extend_from_slice(id);
        blob.extend_from_slice(&nonce);
        let aad = self.aad(&blob[..5]);
        let sealed = cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: &plain, aad: &aad })
            // XChaCha20-Poly1305 fails only past 256 GiB of plaintext.
            .map_err(|_| SealError::TooLong)?;
        blob.extend_from_slice(&sealed);
        Ok(URL_SAFE_NO_PAD.encode(blob))
    }

    /// Opens a blob sealed by any of the keys, or `None` when it was not
    /// sealed by one of them for this consumer (or was changed since).
    pub fn open(&self, blob: &str) -> Option<Sealed> {
        let bytes = URL_SAFE_NO_PAD.decode(blob).ok()?;
        if bytes.len() < HEADER_LEN + 16 + 16 + THUMBPRINT_LEN || bytes[0] != VERSION {
            return None;
        }
        let (_, cipher) = self.keys.iter().find(|(id, _)| id[..] == bytes[1..5])?;
        let aad = self.aad(&bytes[..5]);
        let plain = cipher
            .decrypt(
                XNonce::from_slice(&bytes[5..HEADER_LEN]),
                Payload { msg: &bytes[HEADER_LEN..], aad: &aad },
            )
            .ok()?;
        let (began, rest) = plain.split_first_chunk::<8>()?;
        let (ends, rest) = rest.split_first_chunk::<8>()?;
        let (thumbprint, token) = rest.split_at_checked(THUMBPRINT_LEN)?;
        Some(Sealed {
            began: u64::from_be_bytes(*began),
            ends: u64::from_be_bytes(*ends),
            thumbprint: String::from_utf8(thumbprint.to_vec()).ok()?,
            refresh_token: String::from_utf8(token.to_vec()).ok()?,
        })
    }

    fn aad(&self, header: &[u8]) -> Vec<u8> {
        let mut aad = Vec::with_capacity(header.len() + self.client_id.len());
        aad.extend_from_slice(header);
        aad.extend_from_slice(self.client_id.as_bytes());
        aad
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const THUMB: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";

    fn value() -> Sealed {
        Sealed {
            began: 1_700_000_000,
            ends: 1_702_592_000,
            thumbprint: THUMB.into(),
            refresh_token: "bitbucket-refresh-token".into(),
        }
    }

    #[test]
    fn seals_and_opens() {
        let sealer = Sealer::new(&[SealingKey::generate()], "key").expect("one key");
        let blob = sealer.seal(&value()).expect("seals");
        assert!(!blob.contains("bitbucket"), "the token is not readable in the blob");
        assert_eq!(sealer.open(&blob), Some(value()));
        // Two seals of the same value differ (random nonce).
        assert_ne!(sealer.seal(&value()).expect("seals"), blob);
    }

    #[test]
    fn rotation_seals_with_the_first_and_opens_with_any() {
        let (old, new) = (SealingKey::generate(), SealingKey::generate());
        let before = Sealer::new(std::slice::from_ref(&old), "key").expect("key");
        let during = Sealer::new(&[new.clone(), old], "key").expect("keys");
        let after = Sealer::new(&[new], "key").expect("key");
        let old_blob = before.seal(&value()).expect("seals");
        assert_eq!(during.open(&old_blob), Some(value()));
        let new_blob = during.seal(&value()).expect("seals");
        assert_eq!(after.open(&new_blob), Some(value()));
        assert_eq!(before.open(&new_blob), None, "sealed with the new key");
        assert_eq!(after.open(&old_blob), None, "the old key was retired");
    }

    #[test]
    fn anything_else_does_not_open() {
        let key = SealingKey::generate();
        let sealer = Sealer::new(std::slice::from_ref(&key), "key").expect("key");
        let blob = sealer.seal(&value()).expect("seals");
        let other_consumer = Sealer::new(&[key], "other").expect("key");
        assert_eq!(other_consumer.open(&blob), None);
        let mut bytes = URL_SAFE_NO_PAD.decode(&blob).expect("base64url");
        for i in [0, 1, 5, HEADER_LEN, bytes.len() - 1] {
            bytes[i] ^= 1;
            assert_eq!(sealer.open(&URL_SAFE_NO_PAD.encode(&bytes)), None, "byte {i} flipped");
            bytes[i] ^= 1;
        }
        assert_eq!(sealer.open(&URL_SAFE_NO_PAD.encode(&bytes[..bytes.len() - 1])), None);
        for junk in ["", "bitbucket-refresh-token", "%%%", &"A".repeat(200)] {
            assert_eq!(sealer.open(junk), None, "{junk}");
        }
    }

    #[test]
    fn bitbucket_sized_tokens_fit_a_token_request() {
        let sealer = Sealer::new(&[SealingKey::generate()], "key").expect("key");
        let long = Sealed { refresh_token: "r".repeat(MAX_UPSTREAM_LEN), ..value() };
        let blob = sealer.seal(&long).expect("seals");
        assert!(blob.len() <= dance_protocol::token::MAX_FIELD_LEN, "{}", blob.len());
        assert_eq!(sealer.open(&blob), Some(long));
        let too_long = Sealed { refresh_token: "r".repeat(MAX_UPSTREAM_LEN + 1), ..value() };
        assert_eq!(sealer.seal(&too_long), Err(SealError::TooLong));
    }

    #[test]
    fn keys_parse_and_never_print() {
        let key = SealingKey::generate();
        assert_eq!(SealingKey::parse(&key.encode()), Ok(key.clone()));
        assert_eq!(SealingKey::parse(&STANDARD.encode(key.0)), Ok(key.clone()));
        assert_eq!(SealingKey::parse(&format!(" {} ", key.encode())), Ok(key.clone()));
        assert!(!format!("{key:?}").contains(&key.encode()));
        let short = SealingKey::parse(&URL_SAFE_NO_PAD.encode([7u8; 16])).expect_err("16 bytes");
        assert!(short.contains("32 bytes") && short.contains("16"), "{short}");
        assert!(SealingKey::parse("not base64!").is_err());
    }
}

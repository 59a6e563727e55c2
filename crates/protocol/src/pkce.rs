//! Proof Key for Code Exchange (RFC 7636) with the S256 method.
//!
//! The SPA makes a fresh [`PkceVerifier`] per sign-in attempt and sends its
//! [`PkceChallenge`] in the authorization request; the relay checks that what
//! it is handed looks like a verifier before forwarding it.

use crate::secret::{PkceChallenge, PkceVerifier};
use sha2::{Digest as _, Sha256};
use thiserror::Error;

/// The shortest verifier RFC 7636 4.1 allows.
pub const MIN_VERIFIER_LEN: usize = 43;
/// The longest verifier RFC 7636 4.1 allows.
pub const MAX_VERIFIER_LEN: usize = 128;

/// Why a string is not a valid PKCE code verifier.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VerifierError {
    /// Shorter than 43 characters.
    #[error("code_verifier is {0} characters long; RFC 7636 requires at least 43")]
    TooShort(usize),
    /// Longer than 128 characters.
    #[error("code_verifier is {0} characters long; RFC 7636 allows at most 128")]
    TooLong(usize),
    /// Contains a character outside `[A-Za-z0-9-._~]`.
    #[error(
        "code_verifier has a character outside A-Z, a-z, 0-9, '-', '.', '_', '~' at position {0}"
    )]
    BadCharacter(usize),
}

impl PkceVerifier {
    /// A fresh verifier from 32 random bytes: 43 base64url characters, the
    /// form RFC 7636 4.1 recommends.
    pub fn generate() -> Self {
        Self::from_bytes(&crate::random_bytes::<32>())
    }

    /// The verifier made from the given random bytes (base64url, no padding).
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        Self::new(crate::base64url(bytes))
    }

    /// Checks a verifier received from elsewhere against RFC 7636 4.1.
    ///
    /// The error names the position of a bad character but never echoes the
    /// value, since a verifier is a secret.
    pub fn parse(value: &str) -> Result<Self, VerifierError> {
        let len = value.len();
        if let Some(pos) = value.bytes().position(|b| !is_unreserved(b)) {
            return Err(VerifierError::BadCharacter(pos));
        }
        if len < MIN_VERIFIER_LEN {
            return Err(VerifierError::TooShort(len));
        }
        if len > MAX_VERIFIER_LEN {
            return Err(VerifierError::TooLong(len));
        }
        Ok(Self::new(value))
    }

    /// The S256 challenge of this verifier: `BASE64URL(SHA256(ASCII(verifier)))`.
    pub fn challenge(&self) -> PkceChallenge {
        PkceChallenge::new(crate::base64url(&Sha256::digest(self.secret().as_bytes())))
    }
}

impl PkceChallenge {
    /// The only challenge method this project uses or accepts.
    pub const METHOD: &'static str = "S256";
}

/// RFC 3986 unreserved characters, the verifier alphabet.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7636 Appendix B: these 32 octets give this verifier, whose S256
    /// challenge is this. (Some write-ups quote a longer verifier whose hash
    /// is something else; the RFC's text is the reference.)
    const RFC_OCTETS: [u8; 32] = [
        116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212, 37,
        77, 105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121,
    ];
    const RFC_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const RFC_CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn rfc7636_appendix_b() {
        let verifier = PkceVerifier::parse(RFC_VERIFIER).expect("the RFC's verifier is valid");
        assert_eq!(verifier.challenge().as_str(), RFC_CHALLENGE);
    }

    #[test]
    fn rfc7636_appendix_b_from_octets() {
        let verifier = PkceVerifier::from_bytes(&RFC_OCTETS);
        assert_eq!(verifier.secret(), RFC_VERIFIER);
        assert_eq!(verifier.challenge().as_str(), RFC_CHALLENGE);
    }

    #[test]
    fn generated_verifiers_are_valid_and_fresh() {
        let a = PkceVerifier::generate();
        let b = PkceVerifier::generate();
        assert_eq!(a.secret().len(), 43);
        assert!(PkceVerifier::parse(a.secret()).is_ok());
        assert_ne!(a, b);
    }

    #[test]
    fn verifier_rules() {
        assert_eq!(PkceVerifier::parse(&"a".repeat(42)), Err(VerifierError::TooShort(42)));
        assert!(PkceVerifier::parse(&"a".repeat(43)).is_ok());
        assert!(PkceVerifier::parse(&"~._-".repeat(32)).is_ok());
        assert_eq!(PkceVerifier::parse(&"a".repeat(129)), Err(VerifierError::TooLong(129)));
        let mut bad = "a".repeat(50);
        bad.replace_range(7..8, "+");
        assert_eq!(PkceVerifier::parse(&bad), Err(VerifierError::BadCharacter(7)));
        assert_eq!(
            PkceVerifier::parse(&format!("{}é", "a".repeat(50))),
            Err(VerifierError::BadCharacter(50))
        );
        assert_eq!(PkceVerifier::parse(""), Err(VerifierError::TooShort(0)));
    }

    #[test]
    fn errors_never_echo_the_value() {
        let value = format!("{}%secret", "x".repeat(40));
        let message = PkceVerifier::parse(&value).expect_err("invalid").to_string();
        assert!(!message.contains("secret"), "{message}");
    }
}

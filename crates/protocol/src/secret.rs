//! Newtypes for every value the OAuth 2.0 dance passes around.
//!
//! A newtype per concept keeps a client id from being sent where a secret
//! belongs, and lets the sensitive ones hide themselves: `Debug` and `Display`
//! of a [`ClientSecret`], [`State`], [`PkceVerifier`], [`AuthorizationCode`],
//! [`AccessToken`] or [`RefreshToken`] print a fixed placeholder, never the
//! value. Reading the value takes an explicit call to `secret()`.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What a redacted value prints as.
pub const REDACTED: &str = "[redacted]";

/// Declares a public newtype over `String` that prints its value.
macro_rules! public_value {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a value.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The value itself.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple(stringify!($name)).field(&self.0).finish()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// Declares a public newtype over `String` whose `Debug` and `Display` redact it.
macro_rules! secret_value {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a value.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The secret value itself. Never log it.
            pub fn secret(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({REDACTED})", stringify!($name))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(REDACTED)
            }
        }
    };
}

public_value!(
    /// The OAuth client identifier: Bitbucket calls it the consumer's "Key".
    /// It is public: it appears in every authorization URL.
    ClientId
);

public_value!(
    /// The PKCE code challenge (RFC 7636 4.2): `BASE64URL(SHA256(verifier))`.
    /// It travels in the authorization URL, so it is public by design.
    PkceChallenge
);

secret_value!(
    /// The OAuth client secret: Bitbucket calls it the consumer's "Secret".
    /// Only the relay holds it; the SPA never sees it.
    ClientSecret
);

secret_value!(
    /// The anti-CSRF `state` value of one authorization attempt (RFC 6749 10.12).
    ///
    /// Generate it with [`State::generate`] and compare what comes back with
    /// [`State::matches`], which takes the same time whatever the input.
    State
);

secret_value!(
    /// A PKCE code verifier (RFC 7636 4.1): 43 to 128 characters of
    /// `[A-Za-z0-9-._~]`. Create one with [`PkceVerifier::generate`] or check
    /// one from the wire with [`PkceVerifier::parse`].
    PkceVerifier
);

secret_value!(
    /// A single-use authorization code (RFC 6749 4.1.2).
    AuthorizationCode
);

secret_value!(
    /// A bearer access token (RFC 6750).
    AccessToken
);

secret_value!(
    /// A refresh token (RFC 6749 1.5). Bitbucket rotates them: each use returns
    /// a new one and the old one dies.
    RefreshToken
);

impl State {
    /// A fresh state of 32 random bytes (256 bits), base64url-encoded to 43
    /// characters, twice the 128 bits RFC 9700 asks for.
    pub fn generate() -> Self {
        Self(crate::base64url(&crate::random_bytes::<32>()))
    }

    /// Whether `candidate` equals this state, compared in constant time so that
    /// the comparison's duration says nothing about how much of it matched.
    pub fn matches(&self, candidate: &str) -> bool {
        use subtle::ConstantTimeEq as _;
        self.0.as_bytes().ct_eq(candidate.as_bytes()).into()
    }
}

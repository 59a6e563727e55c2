//! Secrets and tokens never print themselves.

use dance_protocol::{
    AccessToken, AuthorizationCode, ClientId, ClientSecret, PkceChallenge, PkceVerifier,
    RefreshToken, State,
};

/// Asserts that neither `{:?}` nor `{}` of `value` shows `raw`.
fn check_redacted<T: std::fmt::Debug + std::fmt::Display>(value: &T, raw: &str) {
    let debug = format!("{value:?}");
    let display = format!("{value}");
    let pretty = format!("{value:#?}");
    for printed in [&debug, &display, &pretty] {
        assert!(!printed.contains(raw), "{printed} shows the secret");
        assert!(printed.contains("[redacted]"), "{printed} does not say it is redacted");
    }
}

#[test]
fn secret_values_redact_in_debug_and_display() {
    let raw = "s3cr3t-VALUE-123";
    check_redacted(&ClientSecret::new(raw), raw);
    check_redacted(&State::new(raw), raw);
    check_redacted(&PkceVerifier::new(raw), raw);
    check_redacted(&AuthorizationCode::new(raw), raw);
    check_redacted(&AccessToken::new(raw), raw);
    check_redacted(&RefreshToken::new(raw), raw);
    // Redaction survives nesting in other types' derived Debug.
    let nested = format!("{:?}", (Some(AccessToken::new(raw)), vec![RefreshToken::new(raw)]));
    assert!(!nested.contains(raw), "{nested}");
}

#[test]
fn secret_values_still_serialize_for_the_wire() {
    let token = AccessToken::new("abc");
    assert_eq!(serde_json::to_string(&token).expect("serializes"), r#""abc""#);
    assert_eq!(token.secret(), "abc");
}

#[test]
fn public_values_print_themselves() {
    assert_eq!(ClientId::new("key").to_string(), "key");
    assert_eq!(format!("{:?}", ClientId::new("key")), r#"ClientId("key")"#);
    assert_eq!(PkceChallenge::new("chal").to_string(), "chal");
}

#[test]
fn states_are_fresh_long_and_compared_exactly() {
    let a = State::generate();
    let b = State::generate();
    assert_ne!(a, b);
    assert_eq!(a.secret().len(), 43, "32 random bytes, base64url");
    assert!(a.matches(a.secret()));
    assert!(!a.matches(b.secret()));
    assert!(!a.matches(""));
    assert!(!a.matches(&a.secret()[..42]));
    assert!(!a.matches(&format!("{}x", a.secret())));
}

//! Every real payload captured from Bitbucket parses into our types.

use dance_protocol::bitbucket::{ApiError, Email, Paginated, User};
use dance_protocol::token::{ErrorCode, TokenError, TokenResponse};
use serde_json::Value;

fn examples() -> serde_json::Map<String, Value> {
    let text = include_str!("../data/api-schemas.json");
    let mut all: Value = serde_json::from_str(text).expect("api-schemas.json is JSON");
    let Value::Object(map) = all["observed_examples"].take() else {
        panic!("observed_examples is an object");
    };
    map
}

/// The examples whose key starts with `prefix`; fails when there are none, so
/// a renamed fixture cannot make a test silently vacuous.
fn with_prefix(prefix: &str) -> Vec<(String, Value)> {
    let found: Vec<_> = examples().into_iter().filter(|(k, _)| k.starts_with(prefix)).collect();
    assert!(!found.is_empty(), "no observed example starts with {prefix:?}");
    found
}

#[test]
fn users_parse() {
    for (name, body) in with_prefix("GET /2.0/user") {
        if name.starts_with("GET /2.0/user/emails") {
            continue;
        }
        let user: User = serde_json::from_value(body.clone()).expect(&name);
        assert_eq!(user.kind.as_deref(), Some("user"), "{name}");
        assert_eq!(user.display_name.as_deref(), body["display_name"].as_str(), "{name}");
        assert!(user.uuid.as_deref().is_some_and(|u| u.starts_with('{')), "{name}");
        assert!(user.member_since().is_some(), "{name}");
    }
    let (_, captured) = &with_prefix("GET /2.0/user (captured")[0];
    let user: User = serde_json::from_value(captured.clone()).expect("captured user");
    assert_eq!(user.has_2fa_enabled, None);
    assert_eq!(user.account_id.as_deref(), Some("5c65cab48bcc9e016aeece31"));
    assert!(user.links.avatar.is_some_and(|l| l.href.starts_with("https://")));
    assert!(user.links.html.is_some());
}

#[test]
fn partial_user_without_links_parses() {
    let (_, body) = &with_prefix("GET /2.0/users/evzijst")[0];
    let user: User = serde_json::from_value(body.clone()).expect("partial user");
    assert_eq!(user.location, None);
    assert_eq!(user.website.as_deref(), Some(""));
    assert_eq!(user.links.avatar, None);
}

#[test]
fn emails_parse() {
    for (name, body) in with_prefix("GET /2.0/user/emails") {
        let page: Paginated<Email> = serde_json::from_value(body).expect(&name);
        assert_eq!(page.values.len(), 1);
        assert!(page.values[0].is_primary && page.values[0].is_confirmed);
        assert_eq!(page.next, None);
        assert_eq!(page.pagelen, Some(10));
    }
}

#[test]
fn api_errors_parse() {
    let errors = with_prefix("error:");
    assert!(errors.len() >= 3);
    for (name, body) in errors {
        let error: ApiError = serde_json::from_value(body).expect(&name);
        assert!(!error.error.message.is_empty(), "{name}");
        assert_eq!(error.is_token_expired(), name.contains("expired access token"), "{name}");
    }
}

#[test]
fn token_bodies_parse() {
    let (_, success) = &with_prefix("token success")[0];
    let response: TokenResponse = serde_json::from_value(success.clone()).expect("legacy success");
    assert_eq!(response.scope.as_deref(), Some("repository"));
    assert_eq!(response.expires_in, Some(7200));

    let errors = with_prefix("token error:");
    assert_eq!(errors.len(), 3);
    for (name, body) in errors {
        let error: TokenError = serde_json::from_value(body).expect(&name);
        assert!(
            matches!(error.error, ErrorCode::InvalidRequest | ErrorCode::InvalidGrant),
            "{name}"
        );
        assert!(error.error_description.is_some(), "{name}");
    }
}

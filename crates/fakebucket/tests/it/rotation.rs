//! Refresh tokens over time: rotation with an optional grace window after
//! the first use, and expiry after three months without use, both measured
//! on fakebucket's own clock (moved through the admin API, as a test in
//! another process would).

use crate::{DEMO_KEY, DEMO_SECRET, start_with, test_config};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

const DEMO: Option<(&str, &str)> = Some((DEMO_KEY, DEMO_SECRET));
const INVALID: &str = r#"{"error_description":"Invalid refresh_token","error":"invalid_request"}"#;
const DAY: u64 = 24 * 3600;

/// `POST /_fakebucket/clock/advance`.
async fn advance(fb: &crate::Fb, seconds: u64) {
    let response = fb
        .http
        .post(fb.handle.admin_url().join("clock/advance").expect("path"))
        .json(&json!({ "seconds": seconds }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
}

/// Refreshes with `token`: the answer.
async fn refresh(fb: &crate::Fb, token: &str) -> crate::Answer {
    fb.token(DEMO, &[("grant_type", "refresh_token"), ("refresh_token", token)]).await
}

/// Refreshes with `token`, which must work: the new token response.
async fn refreshed(fb: &crate::Fb, token: &str) -> Value {
    let answer = refresh(fb, token).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    answer.json()
}

fn refresh_token_of(body: &Value) -> String {
    body["refresh_token"].as_str().expect("a refresh token").to_owned()
}

async fn grace_server(seconds: u64) -> crate::Fb {
    let mut config = test_config();
    config.refresh_grace = Duration::from_secs(seconds);
    start_with(config).await
}

#[tokio::test]
async fn without_grace_a_used_refresh_token_is_refused_at_once() {
    let fb = start_with(test_config()).await;
    let first = refresh_token_of(&fb.tokens((DEMO_KEY, DEMO_SECRET), "ada").await);
    refreshed(&fb, &first).await;
    let again = refresh(&fb, &first).await;
    assert_eq!((again.status, again.text.as_str()), (StatusCode::BAD_REQUEST, INVALID));
}

#[tokio::test]
async fn within_the_grace_window_a_used_refresh_token_still_works() {
    let fb = grace_server(600).await;
    let first = refresh_token_of(&fb.tokens((DEMO_KEY, DEMO_SECRET), "grace").await);
    let a = refreshed(&fb, &first).await;

    // Ten seconds short of the window: the reuse is answered like a first
    // use, with new tokens that work.
    advance(&fb, 590).await;
    let b = refreshed(&fb, &first).await;
    assert_eq!(b["state"], "refresh_token");
    assert_ne!(b["access_token"], a["access_token"]);
    assert_ne!(b["refresh_token"], a["refresh_token"]);
    let user = fb.api("user", b["access_token"].as_str()).await;
    assert_eq!(user.json()["nickname"], "grace");

    // The window runs from the first use; reusing does not stretch it.
    advance(&fb, 11).await;
    let late = refresh(&fb, &first).await;
    assert_eq!((late.status, late.text.as_str()), (StatusCode::BAD_REQUEST, INVALID));

    // Both successors are ordinary refresh tokens with windows of their own.
    let from_a = refreshed(&fb, &refresh_token_of(&a)).await;
    let from_b = refreshed(&fb, &refresh_token_of(&b)).await;
    assert_ne!(from_a["refresh_token"], from_b["refresh_token"]);
    let counters = fb.handle.counters();
    assert_eq!(counters.token("refresh_token", "ok"), 4);
    assert_eq!(counters.token("refresh_token", "invalid_request"), 1);
}

#[tokio::test]
async fn a_code_replay_revokes_refresh_tokens_in_their_grace_window_too() {
    let fb = grace_server(600).await;
    let code = fb.code(DEMO_KEY, "ada").await;
    let fields = [("grant_type", "authorization_code"), ("code", code.as_str())];
    let first = refresh_token_of(&fb.token(DEMO, &fields).await.json());
    refreshed(&fb, &first).await;
    assert_eq!(fb.token(DEMO, &fields).await.status, StatusCode::BAD_REQUEST, "replayed");
    assert_eq!(refresh(&fb, &first).await.text, INVALID);
}

#[tokio::test]
async fn another_consumer_neither_uses_nor_starts_the_window() {
    let fb = grace_server(60).await;
    let first = refresh_token_of(&fb.tokens((DEMO_KEY, DEMO_SECRET), "ada").await);
    let stolen = fb
        .token(
            Some(("account-only", "s1")),
            &[("grant_type", "refresh_token"), ("refresh_token", &first)],
        )
        .await;
    assert_eq!(stolen.text, INVALID);
    // An hour later the token is still unused, so it still works.
    advance(&fb, 3600).await;
    refreshed(&fb, &first).await;
}

#[tokio::test]
async fn refresh_tokens_die_after_three_months_without_use() {
    let fb = start_with(test_config()).await;
    let first = refresh_token_of(&fb.tokens((DEMO_KEY, DEMO_SECRET), "ada").await);
    let spare = refresh_token_of(&fb.tokens((DEMO_KEY, DEMO_SECRET), "grace").await);

    // Used a second before its three months are up, it still works, and
    // the new token it brings has three months of its own.
    advance(&fb, 90 * DAY - 1).await;
    let second = refresh_token_of(&refreshed(&fb, &first).await);
    advance(&fb, 2).await;
    assert_eq!(refresh(&fb, &spare).await.text, INVALID, "unused for 90 days and a second");
    advance(&fb, 90 * DAY - 10).await;
    let third = refresh_token_of(&refreshed(&fb, &second).await);

    // Left alone for three months, the session is over.
    advance(&fb, 90 * DAY + 1).await;
    let answer = refresh(&fb, &third).await;
    assert_eq!((answer.status, answer.text.as_str()), (StatusCode::BAD_REQUEST, INVALID));
}

#[tokio::test]
async fn the_grace_window_never_outlives_the_token() {
    // A token first used just before its three months are up keeps its
    // grace only until then.
    let fb = grace_server(600).await;
    let first = refresh_token_of(&fb.tokens((DEMO_KEY, DEMO_SECRET), "ada").await);
    advance(&fb, 90 * DAY - 60).await;
    refreshed(&fb, &first).await;
    advance(&fb, 30).await;
    refreshed(&fb, &first).await;
    advance(&fb, 31).await;
    assert_eq!(refresh(&fb, &first).await.text, INVALID);
}

#[tokio::test]
async fn the_refresh_lifetime_is_configurable() {
    let mut config = test_config();
    config.refresh_token_lifetime = Duration::from_secs(3600);
    let fb = start_with(config).await;
    let first = refresh_token_of(&fb.tokens((DEMO_KEY, DEMO_SECRET), "ada").await);
    let second = refresh_token_of(&fb.tokens((DEMO_KEY, DEMO_SECRET), "ada").await);
    advance(&fb, 3599).await;
    refreshed(&fb, &first).await;
    advance(&fb, 1).await;
    assert_eq!(refresh(&fb, &second).await.text, INVALID);
}

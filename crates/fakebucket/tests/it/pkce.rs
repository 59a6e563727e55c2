//! PKCE: ignored like Bitbucket Cloud by default, enforced (S256) like
//! Bitbucket Data Center in `require` mode.

use crate::{DEMO_KEY, DEMO_SECRET, id, location, param, start, start_with, test_config};
use dance_protocol::PkceVerifier;
use fakebucket::PkceMode;
use reqwest::StatusCode;

const DEMO: Option<(&str, &str)> = Some((DEMO_KEY, DEMO_SECRET));

async fn code_with_challenge(fb: &crate::Fb, challenge: &str, method: &str) -> String {
    let callback = fb
        .grant_with(
            &[
                ("client_id", DEMO_KEY),
                ("response_type", "code"),
                ("code_challenge", challenge),
                ("code_challenge_method", method),
            ],
            &id("ada"),
        )
        .await;
    param(&callback, "code").expect("code")
}

#[tokio::test]
async fn ignored_by_default() {
    let fb = start().await;
    let verifier = PkceVerifier::generate();
    let code = code_with_challenge(&fb, verifier.challenge().as_str(), "S256").await;
    let wrong = PkceVerifier::generate();
    let answer = fb
        .token(
            DEMO,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", wrong.secret()),
            ],
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "Bitbucket Cloud does not check the verifier");
    let plain = fb.code(DEMO_KEY, "ada").await;
    let answer = fb.token(DEMO, &[("grant_type", "authorization_code"), ("code", &plain)]).await;
    assert_eq!(answer.status, StatusCode::OK);
}

fn require() -> fakebucket::Config {
    let mut config = test_config();
    config.pkce = PkceMode::Require;
    config
}

#[tokio::test]
async fn require_mode_needs_an_s256_challenge_at_authorize() {
    let fb = start_with(require()).await;
    let challenge = PkceVerifier::generate().challenge();
    for params in [
        vec![("client_id", DEMO_KEY), ("response_type", "code"), ("state", "s")],
        vec![
            ("client_id", DEMO_KEY),
            ("response_type", "code"),
            ("state", "s"),
            ("code_challenge", challenge.as_str()),
        ],
        vec![
            ("client_id", DEMO_KEY),
            ("response_type", "code"),
            ("state", "s"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "plain"),
        ],
    ] {
        let response = fb.get(fb.authorize_url(&params)).await;
        assert_eq!(response.status(), StatusCode::FOUND);
        let target = location(&response);
        assert_eq!(param(&target, "error").as_deref(), Some("invalid_request"));
        assert_eq!(param(&target, "state").as_deref(), Some("s"));
    }
}

#[tokio::test]
async fn require_mode_checks_the_verifier() {
    let fb = start_with(require()).await;
    let verifier = PkceVerifier::generate();
    let code = code_with_challenge(&fb, verifier.challenge().as_str(), "S256").await;
    let base = [("grant_type", "authorization_code"), ("code", code.as_str())];

    let missing = fb.token(DEMO, &base).await;
    assert_eq!(
        (missing.status, missing.json()["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    let other = PkceVerifier::generate();
    for bad in
        [other.secret(), "short", "has spaces in it and is long enough to pass the length check ok"]
    {
        let mut fields = base.to_vec();
        fields.push(("code_verifier", bad));
        let answer = fb.token(DEMO, &fields).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST);
        assert_eq!(answer.json()["error"], "invalid_grant");
    }
    let mut fields = base.to_vec();
    fields.push(("code_verifier", verifier.secret()));
    let answer = fb.token(DEMO, &fields).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
}

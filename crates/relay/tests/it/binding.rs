//! Sealed refresh tokens bound to a DPoP key, through a relay with a
//! sealing key in front of fakebucket: the browser never sees Bitbucket's
//! refresh token, and the sealed one refreshes only with a proof by the key
//! it was issued to.

use crate::{
    ORIGIN, Relay, client, code_form, error_of, mint_code, post_token, refresh_form, relay_config,
};
use dance_protocol::PkceVerifier;
use dance_relay_core::SealingKey;
use dance_relay_core::dpop::testing::ProofKey;
use serde_json::Value;
use std::time::{SystemTime, UNIX_EPOCH};

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

/// A form with its proof in the `dpop` field.
fn with_proof(form: String, proof: &str) -> String {
    format!("{form}&dpop={proof}")
}

/// Signs in through `relay` with `key`: the sealed refresh token.
async fn sign_in(
    http: &reqwest::Client,
    fakebucket: &fakebucket::Handle,
    relay: &Relay,
    key: &ProofKey,
) -> String {
    let verifier = PkceVerifier::generate();
    let code = mint_code(http, fakebucket, &verifier).await;
    let proof = key.proof(&relay.url("/token"), now());
    let response = post_token(http, relay, with_proof(code_form(&code, &verifier), &proof)).await;
    assert_eq!(response.status(), 200, "{}", relay.log());
    let json: Value = response.json().await.expect("JSON");
    json["refresh_token"].as_str().expect("a refresh token").to_owned()
}

crate::on_both_targets! {
    /// The whole point: a sealed refresh token lifted from the browser is
    /// refused without the browser's key, and nothing reaches Bitbucket.
    async fn a_lifted_refresh_token_needs_the_browsers_key(target) {
        let fakebucket = dance_testkit::start_fakebucket(fakebucket::Config::default()).await.expect("fakebucket");
        let mut config = relay_config(&fakebucket);
        config.sealing_keys = vec![SealingKey::generate()];
        let relay = Relay::start_on(target, config).await;
        let http = client();
        let key = ProofKey::new();
        let sealed = sign_in(&http, &fakebucket, &relay, &key).await;
        assert!(sealed.len() > 100, "a sealed blob, not fakebucket's token: {}", sealed.len());
        let url = relay.url("/token");
        let before = fakebucket.counters().token_requests_total;

        let thief = ProofKey::new();
        // The browser's own proof with its signature changed: every check
        // passes but the signature's (the Worker checks it with WebCrypto).
        let forged = {
            let proof = key.proof(&url, now());
            let (input, signature) = proof.rsplit_once('.').expect("three parts");
            let flipped = if signature.starts_with('A') { 'B' } else { 'A' };
            format!("{input}.{flipped}{}", &signature[1..])
        };
        let attempts = [
            ("a forged signature", with_proof(refresh_form(&sealed), &forged), "invalid_dpop_proof", None),
            ("no proof", refresh_form(&sealed), "invalid_dpop_proof", None),
            ("a fresh key", with_proof(refresh_form(&sealed), &thief.proof(&url, now())), "invalid_dpop_proof", Some("wrong_key")),
            ("a proof for another URL", with_proof(refresh_form(&sealed), &key.proof("https://relay.example/token", now())), "invalid_dpop_proof", None),
            ("an old proof", with_proof(refresh_form(&sealed), &key.proof(&url, now() - 3600)), "invalid_dpop_proof", Some("clock")),
            ("Bitbucket-style token", with_proof(refresh_form("fakebucket-token"), &key.proof(&url, now())), "invalid_grant", Some("not_sealed")),
        ];
        for (what, form, error, reason) in attempts {
            let response = post_token(&http, &relay, form).await;
            assert_eq!(response.status(), 400, "{what}");
            assert_eq!(response.headers()["access-control-allow-origin"], ORIGIN, "{what}");
            let json: Value = response.json().await.expect("JSON");
            assert_eq!(json["error"], error, "{what}: {json}");
            assert_eq!(json["reason"].as_str(), reason, "{what}: {json}");
        }
        assert_eq!(fakebucket.counters().token_requests_total, before, "nothing was forwarded");

        // The rightful browser still refreshes, with the proof in the header
        // this time, and gets a new sealed token (Bitbucket rotated its own).
        let response = http
            .post(&url)
            .header("origin", ORIGIN)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("dpop", key.proof(&url, now()))
            .body(refresh_form(&sealed))
            .send()
            .await
            .expect("the relay answers");
        assert_eq!(response.status(), 200);
        let json: Value = response.json().await.expect("JSON");
        let resealed = json["refresh_token"].as_str().expect("a new refresh token");
        assert_ne!(resealed, sealed);
        assert_eq!(fakebucket.counters().token("refresh_token", "ok"), 1);
        // The old sealed token holds Bitbucket's rotated-out token: refused
        // upstream, as Bitbucket would.
        let stale = with_proof(refresh_form(&sealed), &key.proof(&url, now()));
        let response = post_token(&http, &relay, stale).await;
        let json: Value = response.json().await.expect("JSON");
        assert_eq!(error_of(&json), "invalid_request", "{json}");
    }

    /// Without a sealing key the relay is what it always was: refresh
    /// tokens pass through as Bitbucket issued them, proofs or not.
    async fn without_a_sealing_key_tokens_pass_through(target) {
        let fakebucket = dance_testkit::start_fakebucket(fakebucket::Config::default()).await.expect("fakebucket");
        let relay = Relay::start_on(target, relay_config(&fakebucket)).await;
        let http = client();
        let key = ProofKey::new();
        let refresh_token = sign_in(&http, &fakebucket, &relay, &key).await;
        let response = post_token(&http, &relay, refresh_form(&refresh_token)).await;
        assert_eq!(response.status(), 200, "no proof needed");
        assert_eq!(fakebucket.counters().token("refresh_token", "ok"), 1);
    }

    /// Bitbucket's refresh tokens are now over 2,500 characters (fakebucket's
    /// are 2,560). Sealed, form-encoded and sent with a DPoP proof, one
    /// still fits the relay's default limits, and refreshes, again and again.
    async fn a_bitbucket_sized_sealed_refresh_token_refreshes(target) {
        let fakebucket = dance_testkit::start_fakebucket(fakebucket::Config::default()).await.expect("fakebucket");
        let mut config = relay_config(&fakebucket);
        config.sealing_keys = vec![SealingKey::generate()];
        let body_limit = config.limits.max_body_bytes;
        let relay = Relay::start_on(target, config).await;
        let http = client();
        let key = ProofKey::new();
        let url = relay.url("/token");

        let verifier = PkceVerifier::generate();
        let code = mint_code(&http, &fakebucket, &verifier).await;
        let form = with_proof(code_form(&code, &verifier), &key.proof(&url, now()));
        let response = post_token(&http, &relay, form).await;
        assert_eq!(response.status(), 200, "{}", relay.log());
        let json: Value = response.json().await.expect("JSON");
        let access = json["access_token"].as_str().expect("an access token");
        assert_eq!(access.len(), fakebucket::ACCESS_TOKEN_LEN, "passed on whole");
        let mut sealed = json["refresh_token"].as_str().expect("a refresh token").to_owned();
        // 2,560 characters sealed: base64url of 2,560 + 104 bytes.
        assert_eq!(sealed.len(), ((fakebucket::REFRESH_TOKEN_LEN + 104) * 4).div_ceil(3));

        for round in 1..=3 {
            let proof = key.proof(&url, now());
            let form = with_proof(refresh_form(&sealed), &proof);
            assert!(form.len() <= body_limit, "{} bytes", form.len());
            eprintln!(
                "refresh {round}: sealed token {} characters, proof {}, body {} of {body_limit} bytes",
                sealed.len(),
                proof.len(),
                form.len()
            );
            let response = post_token(&http, &relay, form).await;
            assert_eq!(response.status(), 200, "round {round}: {}", relay.log());
            let json: Value = response.json().await.expect("JSON");
            let access = json["access_token"].as_str().map(str::len);
            assert_eq!(access, Some(fakebucket::ACCESS_TOKEN_LEN));
            let resealed = json["refresh_token"].as_str().expect("a new refresh token");
            assert_ne!(resealed, sealed);
            sealed = resealed.to_owned();
        }
        assert_eq!(fakebucket.counters().token("refresh_token", "ok"), 3);
    }

    /// A browser that sends the proof as a header needs a preflight: the
    /// relay allows the header.
    async fn the_preflight_allows_the_dpop_header(target) {
        let fakebucket = dance_testkit::start_fakebucket(fakebucket::Config::default()).await.expect("fakebucket");
        let relay = Relay::start_on(target, relay_config(&fakebucket)).await;
        let response = client()
            .request(reqwest::Method::OPTIONS, relay.url("/token"))
            .header("origin", ORIGIN)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type,dpop")
            .send()
            .await
            .expect("the relay answers");
        assert_eq!(response.status(), 204);
        let allowed = response.headers()["access-control-allow-headers"].to_str().expect("text");
        assert!(allowed.split(',').any(|h| h.trim().eq_ignore_ascii_case("dpop")), "{allowed}");
    }
}

//! Good exchanges and refreshes through the relay to fakebucket, and the
//! OAuth errors fakebucket answers, passed through.

use crate::{
    ORIGIN, REDIRECT_URI, Relay, client, code_form, description_of, error_of, mint_code,
    post_token, refresh_form, relay_config,
};
use dance_protocol::PkceVerifier;
use serde_json::Value;

/// The keys of an RFC 6749 5.1 answer, and only those.
fn assert_normalized(json: &Value) {
    let mut keys: Vec<&str> =
        json.as_object().expect("an object").keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["access_token", "expires_in", "refresh_token", "scope", "token_type"],
        "{json}"
    );
    assert_eq!(json["token_type"], "bearer");
    assert_eq!(json["expires_in"], 7200);
    assert_eq!(json["scope"], "account email");
}

crate::on_both_targets! {
    async fn a_code_exchange_returns_working_tokens(target) {
        let fakebucket = dance_testkit::start_fakebucket(fakebucket::Config::default()).await.expect("fakebucket");
        let relay = Relay::start_on(target, relay_config(&fakebucket)).await;
        let http = client();
        let verifier = PkceVerifier::generate();
        let code = mint_code(&http, &fakebucket, &verifier).await;

        let response = post_token(&http, &relay, code_form(&code, &verifier)).await;
        assert_eq!(response.status(), 200);
        let headers = response.headers().clone();
        assert_eq!(headers["cache-control"], "no-store");
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(headers["access-control-allow-origin"], ORIGIN);
        assert!(crate::vary_of(&headers).iter().any(|v| v == "origin"));
        assert!(headers.get("access-control-allow-credentials").is_none());
        let json: Value = response.json().await.expect("JSON");
        assert_normalized(&json);
        assert_eq!(fakebucket.counters().token("authorization_code", "ok"), 1);

        // The access token really works against the API.
        let user = http
            .get(fakebucket.api_base().join("user").expect("url"))
            .bearer_auth(json["access_token"].as_str().expect("token"))
            .send()
            .await
            .expect("the API answers");
        assert_eq!(user.status(), 200);

        // The native relay also counts what happened; a Worker has no /metrics.
        if relay.is_native() {
            let metrics = http.get(relay.metrics_url()).send().await.expect("metrics");
            let text = metrics.text().await.expect("text");
            assert!(text.contains("dance_relay_requests_total{outcome=\"ok\"} 1\n"), "{text}");
            assert!(text.contains("dance_relay_upstream_duration_seconds_count 1\n"), "{text}");
        }
        relay.stop().await;
    }

    async fn refresh_tokens_rotate_and_the_old_one_dies(target) {
        let fakebucket = dance_testkit::start_fakebucket(fakebucket::Config::default()).await.expect("fakebucket");
        let relay = Relay::start_on(target, relay_config(&fakebucket)).await;
        let http = client();
        let verifier = PkceVerifier::generate();
        let code = mint_code(&http, &fakebucket, &verifier).await;
        let first: Value =
            post_token(&http, &relay, code_form(&code, &verifier)).await.json().await.expect("JSON");
        let old_refresh = first["refresh_token"].as_str().expect("a refresh token").to_owned();

        let response = post_token(&http, &relay, refresh_form(&old_refresh)).await;
        assert_eq!(response.status(), 200);
        let second: Value = response.json().await.expect("JSON");
        assert_normalized(&second);
        let new_refresh = second["refresh_token"].as_str().expect("a rotated refresh token").to_owned();
        assert_ne!(new_refresh, old_refresh);
        assert_ne!(second["access_token"], first["access_token"]);

        // Bitbucket answers a dead refresh token with invalid_request; it passes through.
        let response = post_token(&http, &relay, refresh_form(&old_refresh)).await;
        assert_eq!(response.status(), 400);
        assert_eq!(response.headers()["access-control-allow-origin"], ORIGIN);
        let json: Value = response.json().await.expect("JSON");
        assert_eq!(error_of(&json), "invalid_request");
        assert_eq!(description_of(&json), "Invalid refresh_token");

        let response = post_token(&http, &relay, refresh_form(&new_refresh)).await;
        assert_eq!(response.status(), 200);
        assert_eq!(fakebucket.counters().token("refresh_token", "ok"), 2);
    }

    async fn a_replayed_code_is_invalid_grant(target) {
        let fakebucket = dance_testkit::start_fakebucket(fakebucket::Config::default()).await.expect("fakebucket");
        let relay = Relay::start_on(target, relay_config(&fakebucket)).await;
        let http = client();
        let verifier = PkceVerifier::generate();
        let code = mint_code(&http, &fakebucket, &verifier).await;
        assert_eq!(post_token(&http, &relay, code_form(&code, &verifier)).await.status(), 200);
        let replay = post_token(&http, &relay, code_form(&code, &verifier)).await;
        assert_eq!(replay.status(), 400);
        let json: Value = replay.json().await.expect("JSON");
        assert_eq!(error_of(&json), "invalid_grant");
        let unknown = post_token(&http, &relay, code_form("no-such-code", &verifier)).await;
        assert_eq!(unknown.status(), 400);
        assert_eq!(error_of(&unknown.json().await.expect("JSON")), "invalid_grant");
    }

    async fn the_verifier_is_forwarded_so_a_pkce_server_can_check_it(target) {
        let config = fakebucket::Config { pkce: fakebucket::PkceMode::Require, ..Default::default() };
        let fakebucket = dance_testkit::start_fakebucket(config).await.expect("fakebucket");
        let relay = Relay::start_on(target, relay_config(&fakebucket)).await;
        let http = client();
        let verifier = PkceVerifier::generate();
        let code = mint_code(&http, &fakebucket, &verifier).await;
        let wrong = post_token(&http, &relay, code_form(&code, &PkceVerifier::generate())).await;
        assert_eq!(wrong.status(), 400);
        assert_eq!(error_of(&wrong.json().await.expect("JSON")), "invalid_grant");

        let code = mint_code(&http, &fakebucket, &verifier).await;
        let right = post_token(&http, &relay, code_form(&code, &verifier)).await;
        assert_eq!(right.status(), 200);
    }

    async fn the_legacy_scopes_field_is_normalized_to_scope(target) {
        let config = fakebucket::Config { legacy_scopes_field: true, ..Default::default() };
        let fakebucket = dance_testkit::start_fakebucket(config).await.expect("fakebucket");
        let relay = Relay::start_on(target, relay_config(&fakebucket)).await;
        let http = client();
        let verifier = PkceVerifier::generate();
        let code = mint_code(&http, &fakebucket, &verifier).await;
        let response = post_token(&http, &relay, code_form(&code, &verifier)).await;
        assert_eq!(response.status(), 200);
        assert_normalized(&response.json().await.expect("JSON"));
    }

    async fn a_wrong_secret_is_invalid_client_and_never_shown(target) {
        let fakebucket = dance_testkit::start_fakebucket(fakebucket::Config::default()).await.expect("fakebucket");
        let mut config = relay_config(&fakebucket);
        config.client_secret = dance_protocol::ClientSecret::new("not-the-demo-secret");
        let relay = Relay::start_on(target, config).await;
        let http = client();
        let verifier = PkceVerifier::generate();
        let code = mint_code(&http, &fakebucket, &verifier).await;
        let response = post_token(&http, &relay, code_form(&code, &verifier)).await;
        assert_eq!(response.status(), 401);
        assert_eq!(response.headers()["access-control-allow-origin"], ORIGIN);
        let text = response.text().await.expect("text");
        assert!(!text.contains("not-the-demo-secret"), "{text}");
        let json: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(error_of(&json), "invalid_client");
        assert_eq!(fakebucket.counters().token("authorization_code", "invalid_client"), 1);
    }

    async fn a_redirect_uri_other_than_the_authorized_one_is_refused_upstream(target) {
        let fakebucket = dance_testkit::start_fakebucket(fakebucket::Config::default()).await.expect("fakebucket");
        let mut config = relay_config(&fakebucket);
        let other = format!("{REDIRECT_URI}other");
        config.allowed_redirect_uris.push(other.clone());
        let relay = Relay::start_on(target, config).await;
        let http = client();
        let verifier = PkceVerifier::generate();
        let code = mint_code(&http, &fakebucket, &verifier).await;
        let form = code_form(&code, &verifier).replace(
            &url::form_urlencoded::byte_serialize(REDIRECT_URI.as_bytes()).collect::<String>(),
            &url::form_urlencoded::byte_serialize(other.as_bytes()).collect::<String>(),
        );
        let response = post_token(&http, &relay, form).await;
        assert_eq!(response.status(), 400);
        assert_eq!(error_of(&response.json().await.expect("JSON")), "invalid_grant");
    }

    /// docs/security.md: the relay keeps no state, so any number of copies
    /// behind any load balancer behave as one. Two copies, as a round-robin balancer would use them: the
    /// code is exchanged through one, each refresh goes through the other, and
    /// every answer is the same as from a single relay.
    async fn two_copies_behind_a_balancer_behave_as_one(target) {
        let fakebucket = dance_testkit::start_fakebucket(fakebucket::Config::default()).await.expect("fakebucket");
        let copies = [
            Relay::start_on(target, relay_config(&fakebucket)).await,
            Relay::start_on(target, relay_config(&fakebucket)).await,
        ];
        let http = client();
        let verifier = PkceVerifier::generate();
        let code = mint_code(&http, &fakebucket, &verifier).await;

        let response = post_token(&http, &copies[0], code_form(&code, &verifier)).await;
        assert_eq!(response.status(), 200, "the exchange through the first copy");
        let tokens: Value = response.json().await.expect("JSON");
        let mut refresh = tokens["refresh_token"].as_str().expect("a refresh token").to_owned();

        for round in 1..=4 {
            let relay = &copies[round % 2];
            let response = post_token(&http, relay, refresh_form(&refresh)).await;
            assert_eq!(response.status(), 200, "refresh {round} through copy {}", round % 2);
            let json: Value = response.json().await.expect("JSON");
            assert_normalized(&json);
            let rotated = json["refresh_token"].as_str().expect("a rotated refresh token").to_owned();
            assert_ne!(rotated, refresh, "refresh {round} rotated the token");
            refresh = rotated;
        }

        // The code is spent everywhere, not only on the copy that exchanged it.
        let response = post_token(&http, &copies[1], code_form(&code, &verifier)).await;
        assert_eq!(response.status(), 400, "a replay through the other copy");
        let json: Value = response.json().await.expect("JSON");
        assert_eq!(error_of(&json), "invalid_grant");
        assert_eq!(fakebucket.counters().token("refresh_token", "ok"), 4);
    }
}

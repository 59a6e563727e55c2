//! The token endpoint.

use crate::{DEMO_KEY, DEMO_SECRET, form, id, param, start, start_with, test_config};
use reqwest::StatusCode;
use std::time::Duration;

const DEMO: Option<(&str, &str)> = Some((DEMO_KEY, DEMO_SECRET));

#[tokio::test]
async fn code_exchange_answers_like_bitbucket() {
    let fb = start().await;
    let code = fb.code(DEMO_KEY, "ada").await;
    let answer = fb.token(DEMO, &[("grant_type", "authorization_code"), ("code", &code)]).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert!(
        answer.header("access-control-allow-origin").is_none(),
        "the token endpoint has no CORS"
    );
    let body = answer.json();
    let keys: Vec<&str> = body.as_object().expect("object").keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["access_token", "scope", "expires_in", "token_type", "state", "refresh_token"]
    );
    assert_eq!(body["scope"], "account email");
    assert_eq!(body["expires_in"], 7200);
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["state"], "authorization_code");
    let access = body["access_token"].as_str().expect("string");
    assert!(access.ends_with('='), "Bitbucket-style padded access token: {access}");
    assert!(body["refresh_token"].as_str().is_some_and(|r| r.len() > 2500));
    let counters = fb.handle.counters();
    assert_eq!(counters.token("authorization_code", "ok"), 1);
    assert_eq!(counters.token_requests_total, 1);
}

#[tokio::test]
async fn client_authentication_is_basic_only() {
    let fb = start().await;
    let code = fb.code(DEMO_KEY, "ada").await;
    let fields = [("grant_type", "authorization_code"), ("code", code.as_str())];
    for basic in [
        None,
        Some((DEMO_KEY, "wrong")),
        Some(("nobody", DEMO_SECRET)),
        Some(("account-only", DEMO_SECRET)),
    ] {
        let answer = fb.token(basic, &fields).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{basic:?}");
        assert_eq!(answer.json()["error"], "invalid_client");
        assert!(answer.header("www-authenticate").is_some_and(|v| v.starts_with("Basic")));
        assert_eq!(answer.header("cache-control"), Some("no-store"));
    }
    // Credentials in the body (client_secret_post) are not accepted.
    let in_body = [
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("client_id", DEMO_KEY),
        ("client_secret", DEMO_SECRET),
    ];
    assert_eq!(fb.token(None, &in_body).await.status, StatusCode::UNAUTHORIZED);
    // Nor is another scheme, or garbage after Basic.
    for header in [format!("Bearer {DEMO_SECRET}"), "Basic !!!".to_owned(), "Basic".to_owned()] {
        let response = fb
            .http
            .post(fb.handle.token_url())
            .header("authorization", header.as_str())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&fields))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{header}");
    }
    // The code was never consumed by the failed attempts.
    assert_eq!(fb.token(DEMO, &fields).await.status, StatusCode::OK);
    assert_eq!(fb.handle.counters().token("authorization_code", "invalid_client"), 8);
}

#[tokio::test]
async fn json_body_is_an_unsupported_grant_type_none() {
    let fb = start().await;
    let code = fb.code(DEMO_KEY, "ada").await;
    let response = fb
        .http
        .post(fb.handle.token_url())
        .basic_auth(DEMO_KEY, Some(DEMO_SECRET))
        .json(&serde_json::json!({ "grant_type": "authorization_code", "code": code }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(
        response.text().await.expect("body"),
        r#"{"error_description":"Unsupported grant type: None","error":"invalid_grant"}"#
    );
    assert_eq!(fb.handle.counters().token("none", "invalid_grant"), 1);
}

#[tokio::test]
async fn unknown_grant_types_are_refused() {
    let fb = start().await;
    for grant in ["password", "implicit", "urn:ietf:params:oauth:grant-type:device_code"] {
        let answer =
            fb.token(DEMO, &[("grant_type", grant), ("username", "ada"), ("password", "x")]).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST);
        assert_eq!(answer.json()["error"], "invalid_grant");
        assert_eq!(answer.json()["error_description"], format!("Unsupported grant type: {grant}"));
    }
    assert_eq!(fb.handle.counters().token("other", "invalid_grant"), 3);
}

#[tokio::test]
async fn consumer_without_callback_gets_bitbucket_words() {
    let fb = start().await;
    for grant in ["authorization_code", "client_credentials", "refresh_token"] {
        let answer =
            fb.token(Some(("no-callback", "s4")), &[("grant_type", grant), ("code", "x")]).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            answer.text,
            r#"{"error_description":"No callback uri defined for the OAuth client.","error":"invalid_request"}"#
        );
    }
}

#[tokio::test]
async fn code_replay_fails_and_revokes_the_tokens_issued_from_it() {
    let fb = start().await;
    let code = fb.code(DEMO_KEY, "ada").await;
    let fields = [("grant_type", "authorization_code"), ("code", code.as_str())];
    let first = fb.token(DEMO, &fields).await.json();
    let access = first["access_token"].as_str().expect("access");
    let refresh = first["refresh_token"].as_str().expect("refresh");
    assert_eq!(fb.api("user", Some(access)).await.status, StatusCode::OK);

    // A refreshed descendant belongs to the same grant and dies too.
    let refreshed =
        fb.token(DEMO, &[("grant_type", "refresh_token"), ("refresh_token", refresh)]).await.json();
    let access2 = refreshed["access_token"].as_str().expect("access");
    let refresh2 = refreshed["refresh_token"].as_str().expect("refresh");

    let replay = fb.token(DEMO, &fields).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST);
    assert_eq!(replay.json()["error"], "invalid_grant");

    for token in [access, access2] {
        let answer = fb.api("user", Some(token)).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    }
    let answer =
        fb.token(DEMO, &[("grant_type", "refresh_token"), ("refresh_token", refresh2)]).await;
    assert_eq!(
        answer.text,
        r#"{"error_description":"Invalid refresh_token","error":"invalid_request"}"#
    );
}

#[tokio::test]
async fn codes_expire() {
    let fb = start().await;
    let code = fb.code(DEMO_KEY, "ada").await;
    fb.handle.advance_clock(Duration::from_secs(601));
    let answer = fb.token(DEMO, &[("grant_type", "authorization_code"), ("code", &code)]).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.json()["error"], "invalid_grant");
    assert_eq!(answer.json()["error_description"], "The authorization code has expired.");
}

#[tokio::test]
async fn codes_belong_to_their_client_and_must_be_sent() {
    let fb = start().await;
    let code = fb.code(DEMO_KEY, "ada").await;
    let stolen = fb
        .token(
            Some(("account-only", "s1")),
            &[("grant_type", "authorization_code"), ("code", &code)],
        )
        .await;
    assert_eq!(stolen.status, StatusCode::BAD_REQUEST);
    assert_eq!(stolen.json()["error"], "invalid_grant");
    let made_up = fb
        .token(DEMO, &[("grant_type", "authorization_code"), ("code", "AAAAAAAAAAAAAAAAAAAA")])
        .await;
    assert_eq!(made_up.json()["error"], "invalid_grant");
    let missing = fb.token(DEMO, &[("grant_type", "authorization_code")]).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(missing.json()["error"], "invalid_request");
    // The rightful owner can still use it.
    assert_eq!(
        fb.token(DEMO, &[("grant_type", "authorization_code"), ("code", &code)]).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn redirect_uri_must_be_repeated_exactly_when_it_was_sent() {
    let fb = start().await;
    let redirect = "http://127.0.0.1:8080/app/";
    let code = || async {
        let callback = fb
            .grant_with(
                &[("client_id", DEMO_KEY), ("response_type", "code"), ("redirect_uri", redirect)],
                &id("ada"),
            )
            .await;
        param(&callback, "code").expect("code")
    };
    let c = code().await;
    for wrong in [None, Some("http://127.0.0.1:8080/"), Some("http://127.0.0.1:8080/app")] {
        let mut fields = vec![("grant_type", "authorization_code"), ("code", c.as_str())];
        if let Some(w) = wrong {
            fields.push(("redirect_uri", w));
        }
        let answer = fb.token(DEMO, &fields).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{wrong:?}");
        assert_eq!(answer.json()["error"], "invalid_grant");
    }
    let fields =
        [("grant_type", "authorization_code"), ("code", c.as_str()), ("redirect_uri", redirect)];
    assert_eq!(fb.token(DEMO, &fields).await.status, StatusCode::OK);

    // When none was sent at authorize, any redirect_uri (or none) is accepted.
    let plain = fb.code(DEMO_KEY, "ada").await;
    let fields = [
        ("grant_type", "authorization_code"),
        ("code", plain.as_str()),
        ("redirect_uri", "http://127.0.0.1:8080/"),
    ];
    assert_eq!(fb.token(DEMO, &fields).await.status, StatusCode::OK);
}

#[tokio::test]
async fn refresh_tokens_rotate() {
    let fb = start().await;
    let first = fb.tokens((DEMO_KEY, DEMO_SECRET), "grace").await;
    let old = first["refresh_token"].as_str().expect("refresh");
    let answer = fb.token(DEMO, &[("grant_type", "refresh_token"), ("refresh_token", old)]).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    let second = answer.json();
    assert_eq!(second["state"], "refresh_token");
    assert_eq!(second["scope"], "account email");
    let new = second["refresh_token"].as_str().expect("new refresh");
    assert_ne!(new, old);
    assert_ne!(second["access_token"], first["access_token"]);
    let user = fb.api("user", second["access_token"].as_str()).await;
    assert_eq!(user.json()["nickname"], "grace");

    let reused = fb.token(DEMO, &[("grant_type", "refresh_token"), ("refresh_token", old)]).await;
    assert_eq!(reused.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reused.text,
        r#"{"error_description":"Invalid refresh_token","error":"invalid_request"}"#
    );
    assert_eq!(
        fb.token(DEMO, &[("grant_type", "refresh_token"), ("refresh_token", new)]).await.status,
        StatusCode::OK
    );
    let counters = fb.handle.counters();
    assert_eq!(counters.token("refresh_token", "ok"), 2);
    assert_eq!(counters.token("refresh_token", "invalid_request"), 1);
}

#[tokio::test]
async fn bad_refresh_tokens_get_bitbucket_words() {
    let fb = start().await;
    let tokens = fb.tokens((DEMO_KEY, DEMO_SECRET), "ada").await;
    let refresh = tokens["refresh_token"].as_str().expect("refresh");
    let expected = r#"{"error_description":"Invalid refresh_token","error":"invalid_request"}"#;
    for fields in [
        vec![("grant_type", "refresh_token"), ("refresh_token", "nonsense")],
        vec![("grant_type", "refresh_token")],
    ] {
        let answer = fb.token(DEMO, &fields).await;
        assert_eq!((answer.status, answer.text.as_str()), (StatusCode::BAD_REQUEST, expected));
    }
    // Another consumer cannot use it, and the attempt does not burn it.
    let other = fb
        .token(
            Some(("account-only", "s1")),
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        )
        .await;
    assert_eq!(other.text, expected);
    // Unused refresh tokens die after three months.
    fb.handle.advance_clock(Duration::from_secs(91 * 24 * 3600));
    let late = fb.token(DEMO, &[("grant_type", "refresh_token"), ("refresh_token", refresh)]).await;
    assert_eq!(late.text, expected);
}

#[tokio::test]
async fn client_credentials_only_for_private_consumers() {
    let fb = start().await;
    let answer = fb.token(Some(("private", "s3")), &[("grant_type", "client_credentials")]).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let body = answer.json();
    assert!(body.get("refresh_token").is_none(), "client credentials get no refresh token");
    assert_eq!(body["state"], "client_credentials");
    let user = fb.api("user", body["access_token"].as_str()).await;
    assert_eq!(user.json()["nickname"], "ada", "a private consumer acts for its owner");

    let refused = fb.token(DEMO, &[("grant_type", "client_credentials")]).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.json()["error"], "unauthorized_client");
    let counters = fb.handle.counters();
    assert_eq!(counters.token("client_credentials", "ok"), 1);
    assert_eq!(counters.token("client_credentials", "unauthorized_client"), 1);
}

#[tokio::test]
async fn legacy_scopes_field_and_lifetime_are_configurable() {
    let mut config = test_config();
    config.legacy_scopes_field = true;
    config.token_lifetime = Duration::from_secs(60);
    let fb = start_with(config).await;
    let body = fb.tokens((DEMO_KEY, DEMO_SECRET), "ada").await;
    assert_eq!(body["scopes"], "account email");
    assert!(body.get("scope").is_none());
    assert_eq!(body["expires_in"], 60);
}

#[tokio::test]
async fn preflight_on_the_token_endpoint_fails_like_bitbucket() {
    let fb = start().await;
    let response = fb
        .http
        .request(reqwest::Method::OPTIONS, fb.handle.token_url())
        .header("origin", "http://127.0.0.1:8080")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization, content-type")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(response.headers().get("access-control-allow-origin").is_none());
    assert!(!crate::api::browser_allows(&response, "POST", &["authorization"]));

    let get = fb.http.get(fb.handle.token_url()).send().await.expect("request");
    assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(get.headers()["allow"], "POST");
}

#[tokio::test]
async fn repeated_fields_take_the_last_value_as_bitbucket_does() {
    let fb = start().await;
    let code = fb.code(DEMO_KEY, "ada").await;
    let answer = fb
        .token(
            DEMO,
            &[("grant_type", "password"), ("grant_type", "authorization_code"), ("code", &code)],
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
}

#[tokio::test]
async fn tokens_are_as_long_as_bitbucket_s() {
    // Bitbucket's access and refresh tokens now regularly exceed 2,500
    // characters each; fakebucket's do too, so size limits meet real sizes.
    let fb = start().await;
    let body = fb.tokens((DEMO_KEY, DEMO_SECRET), "ada").await;
    let access = body["access_token"].as_str().expect("access");
    let refresh = body["refresh_token"].as_str().expect("refresh");
    assert_eq!(access.len(), fakebucket::ACCESS_TOKEN_LEN);
    assert_eq!(refresh.len(), fakebucket::REFRESH_TOKEN_LEN);
    assert!(access.len() > 2500 && refresh.len() > 2500);
    let body_part = access.trim_end_matches('=');
    assert_eq!(access.len() - body_part.len(), 2, "padded base64url: {access}");
    assert!(body_part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    assert!(refresh.bytes().all(|b| b.is_ascii_alphanumeric()));
    // The long access token works in a header, and the long refresh token
    // in a form body, and what comes back is as long again.
    assert_eq!(fb.api("user", Some(access)).await.json()["nickname"], "ada");
    let answer =
        fb.token(DEMO, &[("grant_type", "refresh_token"), ("refresh_token", refresh)]).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let again = answer.json();
    assert_eq!(again["access_token"].as_str().map(str::len), Some(fakebucket::ACCESS_TOKEN_LEN));
    assert_eq!(again["refresh_token"].as_str().map(str::len), Some(fakebucket::REFRESH_TOKEN_LEN));
    // Random, not padded out: a second sign-in shares no long run with the first.
    let other = fb.tokens((DEMO_KEY, DEMO_SECRET), "ada").await;
    let other_access = other["access_token"].as_str().expect("access");
    assert!(!other_access.contains(&access[..32]) && !access.contains(&other_access[..32]));
    let other_refresh = other["refresh_token"].as_str().expect("refresh");
    assert!(!other_refresh.contains(&refresh[..32]));
    // Private consumers' client-credentials tokens are as long.
    let answer = fb.token(Some(("private", "s3")), &[("grant_type", "client_credentials")]).await;
    let access = answer.json()["access_token"].as_str().map(str::len);
    assert_eq!(access, Some(fakebucket::ACCESS_TOKEN_LEN));
}

#[tokio::test]
async fn short_tokens_keep_the_old_sizes() {
    let mut config = test_config();
    config.short_tokens = true;
    let fb = start_with(config).await;
    let body = fb.tokens((DEMO_KEY, DEMO_SECRET), "ada").await;
    let access = body["access_token"].as_str().expect("access");
    let refresh = body["refresh_token"].as_str().expect("refresh");
    assert_eq!((access.len(), refresh.len()), (88, 24));
    assert_eq!((fakebucket::SHORT_ACCESS_TOKEN_LEN, fakebucket::SHORT_REFRESH_TOKEN_LEN), (88, 24));
    assert!(access.ends_with("=="));
    let answer =
        fb.token(DEMO, &[("grant_type", "refresh_token"), ("refresh_token", refresh)]).await;
    assert_eq!(answer.json()["refresh_token"].as_str().map(str::len), Some(24));
}

#[tokio::test]
async fn consumer_credentials_of_any_length_work() {
    // Older consumers have an 18-character key and a 32-character secret,
    // newer ones 32 and about 76 (the demo's); nothing checks the length.
    let mut config = test_config();
    let callback = url::Url::parse("http://127.0.0.1:8080/").ok();
    let old = ("AbCdEfGhIjKlMnOpQr", "AbCdEfGhIjKlMnOpQrStUvWxYz012345");
    config.consumers.push(fakebucket::Consumer::new(old.0, old.1, callback));
    let fb = start_with(config).await;
    assert_eq!((DEMO_KEY.len(), DEMO_SECRET.len()), (32, 76));
    for client in [(DEMO_KEY, DEMO_SECRET), old] {
        let body = fb.tokens(client, "ada").await;
        assert!(body["access_token"].is_string());
    }
}

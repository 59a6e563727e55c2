//! The authorization endpoint and the consent page.

use crate::{DEMO_CALLBACK, DEMO_KEY, hidden, id, location, param, start};
use reqwest::StatusCode;

async fn refused(fb: &crate::Fb, params: &[(&str, &str)], text: &str) {
    let response = fb.get(fb.authorize_url(params)).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get("location").is_none(), "an error page must never redirect");
    let page = response.text().await.expect("page");
    assert!(page.contains(text), "{page}");
}

#[tokio::test]
async fn unknown_or_missing_client_gets_an_error_page() {
    let fb = start().await;
    refused(
        &fb,
        &[("client_id", "nobody"), ("response_type", "code"), ("state", "s")],
        "Invalid client_id",
    )
    .await;
    refused(&fb, &[("response_type", "code")], "Invalid client_id").await;
    assert_eq!(fb.handle.counters().authorize("refused"), 2);
}

#[tokio::test]
async fn bad_redirect_uri_gets_an_error_page() {
    let fb = start().await;
    for bad in ["https://evil.example/", "http://127.0.0.1:8081/", "not a url"] {
        let params = [("client_id", DEMO_KEY), ("response_type", "code"), ("redirect_uri", bad)];
        refused(&fb, &params, "Invalid redirect_uri").await;
    }
}

#[tokio::test]
async fn redirect_uri_is_compared_as_sent_not_as_parsed() {
    // Bitbucket compares text: the redirect_uri as sent must start with the
    // registered callback, character for character. These all parse to a
    // URL that starts with the callback, and all are refused.
    let fb = start().await;
    for (client, bad) in [
        (DEMO_KEY, "http://127.0.0.1:8080"),
        (DEMO_KEY, "HTTP://127.0.0.1:8080/"),
        (DEMO_KEY, "http://127.0.0.1:08080/"),
        ("other", "https://other.example/app"),
        ("other", "https://OTHER.example/app/"),
    ] {
        let params = [("client_id", client), ("response_type", "code"), ("redirect_uri", bad)];
        refused(&fb, &params, "Invalid redirect_uri").await;
    }
    assert_eq!(fb.handle.counters().authorize("refused"), 5);
    assert_eq!(fb.handle.counters().authorize("page"), 0);
    // The callback itself, and anything longer, passes.
    for good in [DEMO_CALLBACK, "http://127.0.0.1:8080/#", "http://127.0.0.1:8080/?a=b"] {
        fb.consent_page(&[
            ("client_id", DEMO_KEY),
            ("response_type", "code"),
            ("redirect_uri", good),
        ])
        .await;
    }
    let other = [
        ("client_id", "other"),
        ("response_type", "code"),
        ("redirect_uri", "https://other.example/app/deeper"),
    ];
    fb.consent_page(&other).await;
}

#[tokio::test]
async fn redirect_uri_only_has_to_start_with_the_callback() {
    // Bitbucket's rule is a prefix match, so a longer URL is accepted; the
    // relay, not the provider, must enforce an exact allowlist.
    let fb = start().await;
    let redirect = "http://127.0.0.1:8080/callback/deeper?keep=1";
    let callback = fb
        .grant_with(
            &[
                ("client_id", DEMO_KEY),
                ("response_type", "code"),
                ("redirect_uri", redirect),
                ("state", "x"),
            ],
            &id("ada"),
        )
        .await;
    assert_eq!(callback.path(), "/callback/deeper");
    assert_eq!(param(&callback, "keep").as_deref(), Some("1"));
    assert!(param(&callback, "code").is_some());
}

#[tokio::test]
async fn consumer_without_callback_gets_an_error_page() {
    let fb = start().await;
    refused(
        &fb,
        &[("client_id", "no-callback"), ("response_type", "code")],
        "No callback uri defined",
    )
    .await;
}

#[tokio::test]
async fn implicit_grant_and_other_response_types_are_sent_back_as_errors() {
    let fb = start().await;
    for (response_type, error) in [
        (Some("token"), "unsupported_response_type"),
        (Some("id_token"), "unsupported_response_type"),
        (None, "invalid_request"),
    ] {
        let mut params = vec![("client_id", DEMO_KEY), ("state", "keep me")];
        if let Some(rt) = response_type {
            params.push(("response_type", rt));
        }
        let response = fb.get(fb.authorize_url(&params)).await;
        assert_eq!(response.status(), StatusCode::FOUND);
        let target = location(&response);
        assert!(target.as_str().starts_with(DEMO_CALLBACK));
        assert_eq!(param(&target, "error").as_deref(), Some(error));
        assert!(param(&target, "error_description").is_some());
        assert_eq!(param(&target, "state").as_deref(), Some("keep me"));
        assert!(param(&target, "code").is_none());
        assert!(target.fragment().is_none(), "never a token in a fragment");
    }
}

#[tokio::test]
async fn consent_page_names_app_permissions_and_users() {
    let fb = start().await;
    let page = fb
        .consent_page(&[("client_id", DEMO_KEY), ("response_type", "code"), ("state", "s")])
        .await;
    assert!(page.starts_with("<!doctype html>"));
    assert!(page.contains("<strong id=\"app-name\">oauth-dance demo</strong>"));
    assert!(page.contains("Read your account information"));
    assert!(page.contains("Read your account&#39;s primary email address"));
    for needed in
        ["id=\"grant\"", "id=\"cancel\"", "<select id=\"user\" name=\"user\">", "name=\"txn\""]
    {
        assert!(page.contains(needed), "missing {needed}");
    }
    for user in fakebucket::fixtures::default_users() {
        assert!(
            page.contains(&format!("<option value=\"{}\">", user.account_id)),
            "{}",
            user.nickname
        );
        assert!(page.contains(&format!("{}avatars/{}/128", fb.base(), user.account_id)));
    }
    // No external assets: every src/href points back at fakebucket.
    for attribute in ["src=\"", "href=\""] {
        for (i, _) in page.match_indices(attribute) {
            assert!(
                page[i + attribute.len()..].starts_with(fb.base().as_str()),
                "external asset near {}",
                &page[i..i + 60]
            );
        }
    }
    assert!(!page.contains("<script"), "no scripts at all");
}

#[tokio::test]
async fn consent_page_escapes_every_reflected_value() {
    let fb = start().await;
    let page = fb
        .consent_page(&[
            ("client_id", "hostile"),
            ("response_type", "code"),
            ("redirect_uri", "http://127.0.0.1:8080/\"><script>alert(1)</script>"),
            ("state", "\"><img src=x onerror=alert(2)>"),
        ])
        .await;
    assert!(!page.contains("<script>"), "{page}");
    assert!(!page.contains("<img src=x"), "{page}");
    assert!(page.contains("&lt;script&gt;alert(&quot;app&quot;)&lt;/script&gt; &amp; Co"));
    assert!(page.contains("Zoë &quot;Zed&quot; O&#39;Brien &lt;script&gt;"));
    assert!(!page.contains("onerror=alert(2)"), "state is never shown");
}

#[tokio::test]
async fn cancel_redirects_with_access_denied_and_the_same_state() {
    let fb = start().await;
    let page = fb
        .consent_page(&[("client_id", DEMO_KEY), ("response_type", "code"), ("state", "a b&c=d/é")])
        .await;
    let response = fb.decide(&hidden(&page, "txn"), &id("ada"), "cancel").await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let target = location(&response);
    assert!(target.as_str().starts_with(DEMO_CALLBACK));
    assert_eq!(param(&target, "error").as_deref(), Some("access_denied"));
    assert!(param(&target, "error_description").is_some_and(|d| !d.is_empty()));
    assert_eq!(param(&target, "state").as_deref(), Some("a b&c=d/é"));
    assert!(param(&target, "code").is_none());
    assert_eq!(fb.handle.counters().authorize("denied"), 1);
}

#[tokio::test]
async fn grant_redirects_with_code_and_the_same_state() {
    let fb = start().await;
    let target = fb
        .grant_with(
            &[("client_id", DEMO_KEY), ("response_type", "code"), ("state", "Zx9_-.~ +/")],
            &id("grace"),
        )
        .await;
    assert!(target.as_str().starts_with(DEMO_CALLBACK));
    assert_eq!(param(&target, "state").as_deref(), Some("Zx9_-.~ +/"));
    let code = param(&target, "code").expect("code");
    assert!(code.len() >= 16 && code.chars().all(|c| c.is_ascii_alphanumeric()), "{code}");
    assert_eq!(fb.handle.counters().authorize("granted"), 1);
    assert_eq!(fb.handle.counters().authorize("page"), 1);
}

#[tokio::test]
async fn no_state_means_no_state_in_the_redirect() {
    let fb = start().await;
    let target =
        fb.grant_with(&[("client_id", DEMO_KEY), ("response_type", "code")], &id("ada")).await;
    assert!(param(&target, "state").is_none());
    assert!(param(&target, "code").is_some());
}

#[tokio::test]
async fn a_consent_page_can_be_answered_once() {
    let fb = start().await;
    let page = fb.consent_page(&[("client_id", DEMO_KEY), ("response_type", "code")]).await;
    let txn = hidden(&page, "txn");
    assert_eq!(fb.decide(&txn, &id("ada"), "grant").await.status(), StatusCode::FOUND);
    let again = fb.decide(&txn, &id("ada"), "grant").await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    assert!(again.headers().get("location").is_none());
}

#[tokio::test]
async fn consent_page_expires() {
    let fb = start().await;
    let page = fb.consent_page(&[("client_id", DEMO_KEY), ("response_type", "code")]).await;
    fb.handle.advance_clock(std::time::Duration::from_secs(601));
    let response = fb.decide(&hidden(&page, "txn"), &id("ada"), "grant").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.text().await.expect("page").contains("expired"));
}

#[tokio::test]
async fn bad_consent_answers_get_an_error_page() {
    let fb = start().await;
    let page = fb.consent_page(&[("client_id", DEMO_KEY), ("response_type", "code")]).await;
    let txn = hidden(&page, "txn");
    assert_eq!(fb.decide(&txn, "no-such-user", "grant").await.status(), StatusCode::BAD_REQUEST);
    let page = fb.consent_page(&[("client_id", DEMO_KEY), ("response_type", "code")]).await;
    assert_eq!(
        fb.decide(&hidden(&page, "txn"), &id("ada"), "maybe").await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(fb.decide("made-up", &id("ada"), "grant").await.status(), StatusCode::BAD_REQUEST);
    let raw = fb
        .http
        .post(fb.handle.authorize_url())
        .body(vec![0xff, 0xfe, 0x00])
        .send()
        .await
        .expect("request");
    assert_eq!(raw.status(), StatusCode::BAD_REQUEST);
    let put = fb.http.put(fb.handle.authorize_url()).send().await.expect("request");
    assert_eq!(put.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn avatars_and_profiles_are_served_locally() {
    let fb = start().await;
    for user in fakebucket::fixtures::default_users() {
        let url = fb.base().join(&format!("avatars/{}/128", user.account_id)).expect("url");
        let response = fb.get(url).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "image/svg+xml");
        let svg = response.text().await.expect("svg");
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.contains(&format!(">{}</text>", user.initials())), "{svg}");
        assert!(!svg.contains("<script"), "{svg}");
    }
    assert_eq!(fixture_initials("ada"), "AL");
    let missing = fb.get(fb.base().join("avatars/nobody/128").expect("url")).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    let grace = crate::fixture("grace");
    let profile = fb
        .get(
            fb.base()
                .join(&format!("%7B{}%7D/", grace.uuid.trim_matches(['{', '}'])))
                .expect("url"),
        )
        .await;
    assert_eq!(profile.status(), StatusCode::OK);
    assert!(profile.text().await.expect("page").contains("Grace Hopper"));
    let index = fb.get(fb.base()).await;
    assert_eq!(index.status(), StatusCode::OK);
    assert!(index.text().await.expect("page").contains(DEMO_KEY));
    assert_eq!(
        fb.get(fb.base().join("nothing/here").expect("url")).await.status(),
        StatusCode::NOT_FOUND
    );
}

fn fixture_initials(nickname: &str) -> String {
    crate::fixture(nickname).initials()
}

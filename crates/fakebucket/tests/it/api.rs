//! `/2.0/user`, `/2.0/user/emails`, errors, CORS and the rate limit.

use crate::{Answer, DEMO_KEY, DEMO_SECRET, fixture, start, start_with, test_config};
use fakebucket::RateLimit;
use reqwest::StatusCode;
use std::time::Duration;

/// What a browser concludes from a preflight answer (Fetch standard, CORS
/// check and preflight checks): may it now send `method` with these
/// non-safelisted request headers from another origin?
pub(crate) fn browser_allows(response: &reqwest::Response, method: &str, headers: &[&str]) -> bool {
    let h = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    let list =
        |value: &str| value.split(',').map(|s| s.trim().to_ascii_lowercase()).collect::<Vec<_>>();
    response.status().is_success()
        && (h("access-control-allow-origin") == "*"
            || h("access-control-allow-origin") == "http://127.0.0.1:8080")
        && (["GET", "HEAD", "POST"].contains(&method)
            || list(h("access-control-allow-methods")).contains(&method.to_ascii_lowercase()))
        && headers.iter().all(|wanted| {
            list(h("access-control-allow-headers")).contains(&wanted.to_ascii_lowercase())
        })
}

async fn preflight(fb: &crate::Fb, path: &str, headers: &str) -> reqwest::Response {
    fb.http
        .request(reqwest::Method::OPTIONS, fb.handle.api_base().join(path).expect("path"))
        .header("origin", "http://127.0.0.1:8080")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", headers)
        .send()
        .await
        .expect("request")
}

#[tokio::test]
async fn user_answers_with_the_fixture_account() {
    let fb = start().await;
    let token = fb.access_token("ada").await;
    let answer = fb.api("user", Some(&token)).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.header("access-control-allow-origin"), Some("*"));
    let user = answer.json();
    let ada = fixture("ada");
    assert_eq!(user["type"], "user");
    assert_eq!(user["uuid"], ada.uuid);
    assert!(user["uuid"].as_str().is_some_and(|u| u.starts_with('{') && u.ends_with('}')));
    assert_eq!(user["account_id"], ada.account_id);
    assert_eq!(user["display_name"], "Ada Lovelace");
    assert_eq!(user["nickname"], "ada");
    assert_eq!(user["account_status"], "active");
    assert_eq!(user["has_2fa_enabled"], true);
    assert_eq!(user["is_staff"], false);
    assert_eq!(user["location"], "London");
    assert_eq!(user["website"], "https://ada.example.com/");
    assert!(user.get("username").is_none(), "no username since 2019");
    let created = user["created_on"].as_str().expect("created_on");
    time::OffsetDateTime::parse(created, &time::format_description::well_known::Rfc3339)
        .expect("RFC 3339");
    let fraction = created.split('.').nth(1).expect("fraction");
    assert_eq!(fraction.find(['+', '-']), Some(6), "microseconds and an offset: {created}");
    let base = fb.base();
    let uuid = "%7B8a1c5f2e-3b4d-4e6f-9a0b-1c2d3e4f5a6b%7D";
    let links = &user["links"];
    assert_eq!(links["self"]["href"], format!("{base}2.0/users/{uuid}"));
    assert_eq!(links["html"]["href"], format!("{base}{uuid}/"));
    assert_eq!(links["avatar"]["href"], format!("{base}avatars/{}/128", ada.account_id));
    assert_eq!(links["repositories"]["href"], format!("{base}2.0/repositories/{uuid}"));
    assert_eq!(links["snippets"]["href"], format!("{base}2.0/snippets/{uuid}"));
    assert_eq!(links["hooks"]["href"], format!("{base}2.0/users/{uuid}/hooks"));
    // The avatar link works.
    let avatar = fb
        .get(url::Url::parse(links["avatar"]["href"].as_str().expect("href")).expect("url"))
        .await;
    assert_eq!(avatar.status(), StatusCode::OK);
}

#[tokio::test]
async fn null_and_absent_fields_are_sent_as_bitbucket_sends_them() {
    let fb = start().await;
    let grace = fb.api("user", Some(&fb.access_token("grace").await)).await.json();
    assert!(grace["has_2fa_enabled"].is_null() && grace.get("has_2fa_enabled").is_some());
    assert!(grace["location"].is_null() && grace.get("location").is_some());
    assert!(grace.get("website").is_none());
    assert!(grace["created_on"].as_str().is_some_and(|c| c.ends_with("-08:00")));
    let mei = fb.api("user", Some(&fb.access_token("mei.tanaka").await)).await.json();
    assert_eq!(mei["website"], "");
    assert!(mei["account_id"].as_str().is_some_and(|a| a.starts_with("712020:")));
    let zoe = fb.api("user", Some(&fb.access_token("zoe_obrien").await)).await.json();
    assert_eq!(zoe["website"], "javascript:alert(document.domain)");
    assert!(zoe["display_name"].as_str().is_some_and(|d| d.contains("<script>")));
}

#[tokio::test]
async fn emails_are_paginated() {
    let fb = start().await;
    let token = fb.access_token("mei.tanaka").await;
    let first = fb.api("user/emails", Some(&token)).await;
    assert_eq!(first.status, StatusCode::OK);
    let first = first.json();
    assert_eq!(first["pagelen"], 10);
    assert_eq!(first["page"], 1);
    assert_eq!(first["size"], 14);
    let values = first["values"].as_array().expect("values");
    assert_eq!(values.len(), 10);
    assert_eq!(values[2]["is_primary"], true, "the primary address is not necessarily first");
    assert_eq!(values[1]["is_confirmed"], false);
    assert!(first.get("previous").is_none());
    let next = first["next"].as_str().expect("next");
    assert!(next.starts_with(fb.handle.api_base().as_str()));

    let second = fb.api_url(url::Url::parse(next).expect("url"), Some(&token)).await.json();
    assert_eq!(second["page"], 2);
    let rest = second["values"].as_array().expect("values");
    assert_eq!(rest.len(), 4);
    assert!(second.get("next").is_none(), "the last page has no next");
    assert!(second["previous"].as_str().is_some());
    let mut all: Vec<String> =
        values.iter().chain(rest).map(|v| v["email"].as_str().expect("email").to_owned()).collect();
    all.dedup();
    assert_eq!(all.len(), 14);
    assert_eq!(
        all,
        fixture("mei.tanaka").emails.iter().map(|e| e.email.clone()).collect::<Vec<_>>()
    );

    let small = fb.api("user/emails?pagelen=5&page=3", Some(&token)).await.json();
    assert_eq!(small["values"].as_array().map(Vec::len), Some(4));
    assert!(small.get("next").is_none());
    let big = fb.api("user/emails?pagelen=500", Some(&token)).await.json();
    assert_eq!(big["pagelen"], 100);
    assert_eq!(big["values"].as_array().map(Vec::len), Some(14));
    let beyond = fb.api("user/emails?page=9", Some(&token)).await.json();
    assert_eq!(beyond["values"].as_array().map(Vec::len), Some(0));
    for bad in ["pagelen=0", "pagelen=ten", "page=0", "page=-1"] {
        let answer = fb.api(&format!("user/emails?{bad}"), Some(&token)).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(answer.json()["type"], "error");
    }
}

#[tokio::test]
async fn one_email_resource() {
    let fb = start().await;
    let token = fb.access_token("ada").await;
    let list = fb.api("user/emails", Some(&token)).await.json();
    let primary = &list["values"][0];
    assert_eq!(
        primary,
        &serde_json::json!({
            "is_primary": true, "is_confirmed": true, "type": "email", "email": "ada@example.com",
            "links": { "self": { "href": format!("{}user/emails/ada@example.com", fb.handle.api_base()) } },
        })
    );
    let one = fb
        .api_url(
            url::Url::parse(primary["links"]["self"]["href"].as_str().expect("href")).expect("url"),
            Some(&token),
        )
        .await;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(&one.json(), primary);
    assert_eq!(
        fb.api("user/emails/grace@example.net", Some(&token)).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn missing_scope_is_a_403_with_bitbucket_body() {
    let fb = start().await;
    let account_only = fb.tokens(("account-only", "s1"), "ada").await;
    let token = account_only["access_token"].as_str().expect("token");
    assert_eq!(account_only["scope"], "account");
    assert_eq!(fb.api("user", Some(token)).await.status, StatusCode::OK);
    let answer = fb.api("user/emails", Some(token)).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(answer.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        answer.text,
        r#"{"type":"error","error":{"message":"Your credentials lack one or more required privilege scopes.","detail":{"granted":["account"],"required":["email"]}}}"#
    );
    let email_only = fb.tokens(("email-only", "s2"), "ada").await;
    let answer = fb.api("user", email_only["access_token"].as_str()).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(answer.json()["error"]["detail"]["required"][0], "account");
}

#[tokio::test]
async fn expired_access_tokens_get_bitbucket_words_and_refresh_recovers() {
    let fb = start().await;
    let tokens = fb.tokens((DEMO_KEY, DEMO_SECRET), "ada").await;
    let access = tokens["access_token"].as_str().expect("access");
    fb.handle.advance_clock(Duration::from_secs(7199));
    assert_eq!(fb.api("user", Some(access)).await.status, StatusCode::OK);
    fb.handle.advance_clock(Duration::from_secs(1));
    let answer = fb.api("user", Some(access)).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.text, r#"{"type":"error","error":{"message":"Access token expired."}}"#);
    assert_eq!(answer.header("access-control-allow-origin"), Some("*"));
    let refreshed = fb
        .token(
            Some((DEMO_KEY, DEMO_SECRET)),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", tokens["refresh_token"].as_str().expect("r")),
            ],
        )
        .await
        .json();
    assert_eq!(fb.api("user", refreshed["access_token"].as_str()).await.status, StatusCode::OK);
}

#[tokio::test]
async fn only_the_authorization_header_carries_a_token() {
    let fb = start().await;
    let token = fb.access_token("ada").await;
    let mut url = fb.handle.api_base().join("user").expect("url");
    url.query_pairs_mut().append_pair("access_token", &token);
    let in_query = fb.api_url(url, None).await;
    assert_eq!(in_query.status, StatusCode::UNAUTHORIZED);
    assert_eq!(in_query.json()["type"], "error");
    assert!(!in_query.text.contains("Ada"));

    let none = fb.api("user", None).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    let unknown = fb.api("user", Some("not-a-token")).await;
    assert_eq!(
        unknown.text,
        r#"{"type":"error","error":{"message":"Token is invalid, expired, or not supported for this endpoint."}}"#
    );
    let basic = fb
        .http
        .get(fb.handle.api_base().join("user").expect("url"))
        .basic_auth("ada", Some(&token))
        .send()
        .await
        .expect("request");
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
    let lowercase = fb
        .http
        .get(fb.handle.api_base().join("user").expect("url"))
        .header("authorization", format!("bearer {token}"))
        .send()
        .await
        .expect("request");
    assert_eq!(lowercase.status(), StatusCode::OK, "the scheme is case-insensitive (RFC 7235)");
}

#[tokio::test]
async fn unknown_paths_are_resource_not_found() {
    let fb = start().await;
    let token = fb.access_token("ada").await;
    for path in ["repositories", "user/", "users/ada", "user/emails/a/b"] {
        let answer: Answer = fb.api(path, Some(&token)).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(answer.header("access-control-allow-origin"), Some("*"));
        assert_eq!(
            answer.text,
            r#"{"type":"error","error":{"message":"Resource not found","detail":"There is no API hosted at this URL.\n\nFor information about our API's, please refer to the documentation at: https://developer.atlassian.com/bitbucket/api/2/reference/"}}"#
        );
    }
    let post = fb
        .http
        .post(fb.handle.api_base().join("user").expect("url"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("request");
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(post.headers()["access-control-allow-origin"], "*");
}

#[tokio::test]
async fn cors_preflight_allows_authorization_and_nothing_custom() {
    let fb = start().await;
    let response = preflight(&fb, "user", "authorization").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    assert_eq!(response.headers()["access-control-max-age"], "86400");
    assert_eq!(
        response.headers()["access-control-allow-methods"],
        "GET, POST, PUT, PATCH, DELETE, OPTIONS"
    );
    assert!(browser_allows(&response, "GET", &["authorization"]));
    assert!(browser_allows(&response, "GET", &["authorization", "content-type", "accept"]));
    assert!(!browser_allows(&response, "GET", &["authorization", "user-agent"]));
    assert!(
        !browser_allows(&response, "GET", &["x-requested-with"]),
        "Bitbucket's list lacks a comma there"
    );
    assert!(!browser_allows(&response, "GET", &["x-client-version"]));
    // Unknown paths answer preflights the same way, and none is counted as a call.
    let elsewhere = preflight(&fb, "user/emails", "authorization").await;
    assert!(browser_allows(&elsewhere, "GET", &["authorization"]));
    let counters = fb.handle.counters();
    assert_eq!((counters.api_preflights, counters.api_requests_total), (2, 0));
}

#[tokio::test]
async fn rate_limit_is_per_user_and_rolling() {
    let mut config = test_config();
    config.rate_limit = RateLimit { requests: 3, window: Duration::from_secs(3600) };
    let fb = start_with(config).await;
    let ada = fb.access_token("ada").await;
    for _ in 0..3 {
        assert_eq!(fb.api("user", Some(&ada)).await.status, StatusCode::OK);
    }
    let limited = fb.api("user/emails", Some(&ada)).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.json()["type"], "error");
    assert!(
        limited
            .header("retry-after")
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|s| (1..=3600).contains(&s))
    );
    assert_eq!(limited.header("access-control-allow-origin"), Some("*"));
    // Another user is not affected.
    let grace = fb.access_token("grace").await;
    assert_eq!(fb.api("user", Some(&grace)).await.status, StatusCode::OK);
    // A new token for the same user does not reset the count.
    let ada2 = fb.access_token("ada").await;
    assert_eq!(fb.api("user", Some(&ada2)).await.status, StatusCode::TOO_MANY_REQUESTS);
    fb.handle.advance_clock(Duration::from_secs(3600));
    assert_eq!(fb.api("user", Some(&ada2)).await.status, StatusCode::OK);
    assert_eq!(fb.handle.counters().api(429), 2);
}

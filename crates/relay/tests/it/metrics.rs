//! `GET /metrics` is served on the metrics listener and nowhere else: the
//! public listener, which a reverse proxy may expose to the world, answers
//! it like any unknown path, whether the metrics listener is on or off.

use crate::{ORIGIN, Relay, client, error_of, oneshot, post_token, relay_config};
use axum::body::Body;
use axum::http::Request;
use dance_protocol::PkceVerifier;
use serde_json::Value;

/// `GET path` on the relay's public listener: the status and the JSON body
/// (`Null` if the body is not JSON).
async fn public_get(relay: &Relay, path: &str) -> (u16, Value) {
    let response = client().get(relay.url(path)).send().await.expect("the relay answers");
    let status = response.status().as_u16();
    let bytes = response.bytes().await.expect("a body");
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// A code exchange for a redirect URI that is not allowed: refused by the
/// relay itself, and counted.
fn refused_exchange() -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "authorization_code")
        .append_pair("code", "some-code")
        .append_pair("redirect_uri", "https://evil.example/")
        .append_pair("code_verifier", PkceVerifier::generate().secret())
        .finish()
}

#[tokio::test]
async fn the_metrics_listener_serves_the_public_listeners_counters() {
    let fakebucket =
        dance_testkit::start_fakebucket(fakebucket::Config::default()).await.expect("fakebucket");
    let relay = Relay::start(relay_config(&fakebucket)).await;
    let http = client();
    assert_eq!(post_token(&http, &relay, refused_exchange()).await.status(), 400);
    assert_eq!(public_get(&relay, "/metrics").await.0, 404);
    assert_eq!(http.get(relay.url("/healthz")).send().await.expect("healthz").status(), 200);

    let response = http.get(relay.metrics_url()).send().await.expect("the metrics listener");
    assert_eq!(response.status(), 200);
    let headers = response.headers();
    assert_eq!(headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    assert_eq!(headers["cache-control"], "no-store");
    let text = response.text().await.expect("text");
    for line in [
        "dance_relay_requests_total{outcome=\"refused_redirect_uri\"} 1\n",
        // The public listener's answer to /metrics, counted as what it is.
        "dance_relay_requests_total{outcome=\"not_found\"} 1\n",
        "# TYPE dance_relay_upstream_duration_seconds histogram\n",
        "dance_relay_upstream_in_flight 0\n",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    relay.stop().await;
}

#[tokio::test]
async fn the_public_listener_answers_metrics_like_an_unknown_path() {
    let fakebucket =
        dance_testkit::start_fakebucket(fakebucket::Config::default()).await.expect("fakebucket");
    for metrics_on in [false, true] {
        let relay = Relay::start_with_metrics(relay_config(&fakebucket), metrics_on).await;
        let unknown = public_get(&relay, "/no-such-path").await;
        assert_eq!((unknown.0, error_of(&unknown.1)), (404, "invalid_request"));
        for path in ["/metrics", "/metrics/", "/Metrics"] {
            assert_eq!(public_get(&relay, path).await, unknown, "{path}, metrics on: {metrics_on}");
        }
        assert_eq!(relay.metrics_addr.is_some(), metrics_on);
        relay.stop().await;
    }
    // The router alone, as embedders and `oneshot` tests get it, has none either.
    let app = dance_relay::app(relay_config(&fakebucket));
    let (response, json) =
        oneshot(&app, Request::get("/metrics").body(Body::empty()).expect("request")).await;
    assert_eq!((response.status().as_u16(), error_of(&json)), (404, "invalid_request"));
}

#[tokio::test]
async fn the_metrics_listener_serves_nothing_but_metrics() {
    let fakebucket =
        dance_testkit::start_fakebucket(fakebucket::Config::default()).await.expect("fakebucket");
    let relay = Relay::start(relay_config(&fakebucket)).await;
    let metrics_addr = relay.metrics_addr.expect("a metrics listener");
    let http = client();
    let healthz = http.get(format!("http://{metrics_addr}/healthz")).send().await.expect("answer");
    assert_eq!(healthz.status(), 404);
    let token = http
        .post(format!("http://{metrics_addr}/token"))
        .header("origin", ORIGIN)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(refused_exchange())
        .send()
        .await
        .expect("answer");
    assert_eq!(token.status(), 404, "the metrics listener is no token endpoint");
    let posted = http.post(relay.metrics_url()).send().await.expect("answer");
    assert_eq!(posted.status(), 405);
    assert_eq!(fakebucket.counters().token_requests_total, 0);
    relay.stop().await;
}

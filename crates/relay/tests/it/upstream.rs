//! The token endpoint down, slow, failing, rate limiting or answering
//! nonsense: the relay says what went wrong in its own words, with 502, 503,
//! 504 or 429, and never echoes what upstream sent.

use crate::{
    ORIGIN, Relay, client, description_of, error_of, post_token, refresh_form, relay_config,
};
use fakebucket::{Fault, FaultTarget};
use serde_json::Value;
use std::time::Duration;

/// Posts a refresh and returns status, headers and JSON.
async fn refresh(relay: &Relay) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = post_token(&client(), relay, refresh_form("whatever")).await;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("a body");
    assert!(!text.contains("<"), "upstream HTML leaked: {text}");
    (status, headers, serde_json::from_str(&text).expect("a JSON body"))
}

/// Polls the relay's metrics until `in_flight` exchanges wait on upstream.
/// Each round is a real request, so this waits on the relay's state, not on
/// time; it gives up after a bounded number of rounds.
pub(crate) async fn wait_for_in_flight(relay: &Relay, in_flight: u32) {
    let http = client();
    let line = format!("dance_relay_upstream_in_flight {in_flight}\n");
    for _ in 0..10_000 {
        let text = http
            .get(relay.metrics_url())
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        if text.contains(&line) {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("never saw {line:?}");
}

#[tokio::test]
async fn a_full_relay_answers_503_when_no_slot_frees_up() {
    let fakebucket =
        dance_testkit::start_fakebucket(fakebucket::Config::default()).await.expect("fakebucket");
    let mut config = relay_config(&fakebucket);
    config.limits.max_concurrency = 1;
    config.limits.slot_timeout = Duration::from_millis(100);
    config.limits.upstream_timeout = Duration::from_secs(30);
    let relay = Relay::start(config).await;
    fakebucket
        .inject_fault(Fault::delay(FaultTarget::Token, Duration::from_secs(60)))
        .expect("a valid fault");
    let url = relay.url("/token");
    let held = tokio::spawn(async move {
        client()
            .post(url)
            .header("origin", ORIGIN)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(refresh_form("whatever"))
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    wait_for_in_flight(&relay, 1).await;
    let (status, _, json) = refresh(&relay).await;
    assert_eq!(status, 503);
    assert_eq!(error_of(&json), "temporarily_unavailable");
    // Stopping fakebucket cuts its delay short and frees the held request.
    fakebucket.shutdown().await.expect("fakebucket stops");
    let _ = held.await;
}

#[tokio::test]
async fn shutdown_lets_the_exchange_in_flight_finish() {
    let fakebucket =
        dance_testkit::start_fakebucket(fakebucket::Config::default()).await.expect("fakebucket");
    let relay = Relay::start(relay_config(&fakebucket)).await;
    let addr = relay.addr;
    fakebucket
        .inject_fault(Fault::delay(FaultTarget::Token, Duration::from_millis(300)))
        .expect("a valid fault");
    let url = relay.url("/token");
    let in_flight = tokio::spawn(async move {
        client()
            .post(url)
            .header("origin", ORIGIN)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(refresh_form("unknown"))
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    wait_for_in_flight(&relay, 1).await;
    relay.stop().await;
    // The request that was in flight got fakebucket's real answer...
    assert_eq!(in_flight.await.expect("task").expect("an answer"), 400);
    // ...and the relay no longer accepts connections.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

crate::on_both_targets! {
    async fn upstream_down_is_502_temporarily_unavailable(target) {
        let fakebucket = dance_testkit::start_fakebucket(fakebucket::Config::default()).await.expect("fakebucket");
        let mut config = relay_config(&fakebucket);
        // A port that was just free: nothing listens there any more.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = closed.local_addr().expect("address").port();
        drop(closed);
        config.token_url =
            format!("http://127.0.0.1:{port}/site/oauth2/access_token").parse().expect("url");
        let relay = Relay::start_on(target, config).await;
        let (status, headers, json) = refresh(&relay).await;
        assert_eq!(status, 502);
        assert_eq!(error_of(&json), "temporarily_unavailable");
        assert_eq!(description_of(&json), "the authorization server could not be reached");
        assert_eq!(headers["access-control-allow-origin"], ORIGIN);
    }

    async fn upstream_slow_is_504(target) {
        let fakebucket = dance_testkit::start_fakebucket(fakebucket::Config::default()).await.expect("fakebucket");
        let mut config = relay_config(&fakebucket);
        config.limits.upstream_timeout = Duration::from_millis(200);
        let relay = Relay::start_on(target, config).await;
        fakebucket
            .inject_fault(Fault::delay(FaultTarget::Token, Duration::from_secs(30)))
            .expect("a valid fault");
        let (status, _, json) = refresh(&relay).await;
        assert_eq!(status, 504);
        assert_eq!(error_of(&json), "temporarily_unavailable");
        assert!(description_of(&json).contains("did not answer in time"), "{json}");
        relay.stop().await;
        fakebucket.shutdown().await.expect("fakebucket stops");
    }

    async fn upstream_failures_and_nonsense_are_502(target) {
        let fakebucket = dance_testkit::start_fakebucket(fakebucket::Config::default()).await.expect("fakebucket");
        let relay = Relay::start_on(target, relay_config(&fakebucket)).await;
        // (fault, status, error, description words)
        let cases = [
            (
                Fault::status(FaultTarget::Token, 500),
                502,
                "temporarily_unavailable",
                "failed (status 500)",
            ),
            (
                Fault::status(FaultTarget::Token, 503).html(),
                502,
                "temporarily_unavailable",
                "failed (status 503)",
            ),
            (Fault::status(FaultTarget::Token, 400).html(), 502, "server_error", "does not understand"),
            (
                Fault::status(FaultTarget::Token, 404).html(),
                502,
                "server_error",
                "without an RFC 6749 error body",
            ),
        ];
        for (fault, status, error, words) in cases {
            fakebucket.inject_fault(fault.clone()).expect("a valid fault");
            let (got, _, json) = refresh(&relay).await;
            assert_eq!(got, status, "{fault:?}: {json}");
            assert_eq!(error_of(&json), error, "{fault:?}: {json}");
            assert!(description_of(&json).contains(words), "{fault:?}: {json}");
            assert!(!description_of(&json).contains("fakebucket"), "upstream text leaked: {json}");
        }
        // A JSON OAuth error injected with a 4xx passes through, normalized to 400.
        fakebucket.inject_fault(Fault::status(FaultTarget::Token, 403)).expect("a valid fault");
        let (got, _, json) = refresh(&relay).await;
        assert_eq!((got, error_of(&json)), (400, "invalid_request"));
        // Upstream rate limiting: 429 for the browser too.
        fakebucket.inject_fault(Fault::status(FaultTarget::Token, 429)).expect("a valid fault");
        let (got, _, json) = refresh(&relay).await;
        assert_eq!((got, error_of(&json)), (429, "temporarily_unavailable"));

        // The native relay also counts what happened; a Worker has no /metrics.
        if relay.is_native() {
            let metrics = client().get(relay.metrics_url()).send().await.expect("metrics");
            let text = metrics.text().await.expect("text");
            for line in [
                "dance_relay_requests_total{outcome=\"upstream_failed\"} 2\n",
                "dance_relay_requests_total{outcome=\"upstream_invalid\"} 2\n",
                "dance_relay_requests_total{outcome=\"upstream_rate_limited\"} 1\n",
                "dance_relay_upstream_duration_seconds_count 6\n",
            ] {
                assert!(text.contains(line), "missing {line:?} in\n{text}");
            }
        }
    }
}

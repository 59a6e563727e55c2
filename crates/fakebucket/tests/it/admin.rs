//! The test-control API and the Handle methods that mirror it.

use crate::{Answer, DEMO_KEY, DEMO_SECRET, start, test_config};
use fakebucket::{Fault, FaultTarget};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

const DEMO: Option<(&str, &str)> = Some((DEMO_KEY, DEMO_SECRET));

async fn admin(fb: &crate::Fb, method: reqwest::Method, path: &str, body: Option<Value>) -> Answer {
    let mut request = fb.http.request(method, fb.handle.admin_url().join(path).expect("path"));
    if let Some(body) = body {
        request = request.json(&body);
    }
    Answer::from(request.send().await.expect("request")).await
}

#[tokio::test]
async fn clock_advances_over_http() {
    let fb = start().await;
    let token = fb.access_token("ada").await;
    let answer =
        admin(&fb, reqwest::Method::POST, "clock/advance", Some(json!({ "seconds": 7200 }))).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json()["offset_seconds"], 7200);
    assert_eq!(
        fb.api("user", Some(&token)).await.json()["error"]["message"],
        "Access token expired."
    );
    let bad =
        admin(&fb, reqwest::Method::POST, "clock/advance", Some(json!({ "seconds": -1 }))).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.json()["error"].is_string());
    let huge = json!({ "seconds": u64::MAX });
    let too_far = admin(&fb, reqwest::Method::POST, "clock/advance", Some(huge)).await;
    assert_eq!(too_far.status, StatusCode::BAD_REQUEST);
    let message = too_far.json()["error"].as_str().expect("a message").to_owned();
    assert!(message.contains("at most 3153600000 seconds"), "{message}");
    let after = admin(&fb, reqwest::Method::GET, "clock", None).await;
    assert_eq!(after.json()["offset_seconds"], 7200, "the refused advance moved nothing");
}

#[tokio::test]
async fn token_faults_fail_the_next_calls_then_stop() {
    let fb = start().await;
    let fault = json!({ "target": "token", "count": 2, "status": 503 });
    let answer = admin(&fb, reqwest::Method::POST, "faults", Some(fault)).await;
    assert_eq!(answer.status, StatusCode::CREATED);
    assert_eq!(answer.json()["body"], "json");
    let code = fb.code(DEMO_KEY, "ada").await;
    let fields = [("grant_type", "authorization_code"), ("code", code.as_str())];
    for _ in 0..2 {
        let failed = fb.token(DEMO, &fields).await;
        assert_eq!(failed.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(failed.json()["error"], "server_error");
    }
    assert_eq!(fb.token(DEMO, &fields).await.status, StatusCode::OK, "the code survives faults");
    let counters = admin(&fb, reqwest::Method::GET, "counters", None).await.json();
    assert_eq!(counters["token_requests"]["authorization_code"], json!({ "fault": 2, "ok": 1 }));
    assert_eq!(counters["token_requests_total"], 3);
    assert_eq!(counters["faults_served"], 2);
}

#[tokio::test]
async fn api_faults_can_answer_html() {
    let fb = start().await;
    let token = fb.access_token("ada").await;
    fb.handle.inject_fault(Fault::status(FaultTarget::Api, 502).html()).expect("valid");
    let answer = fb.api("user", Some(&token)).await;
    assert_eq!(answer.status, StatusCode::BAD_GATEWAY);
    assert!(answer.header("content-type").is_some_and(|c| c.starts_with("text/html")));
    assert!(serde_json::from_str::<Value>(&answer.text).is_err(), "not JSON");
    assert_eq!(answer.header("access-control-allow-origin"), Some("*"));
    assert_eq!(fb.api("user", Some(&token)).await.status, StatusCode::OK);
    let counters = fb.handle.counters();
    assert_eq!((counters.api(502), counters.api(200), counters.api_requests_total), (1, 1, 2));
}

#[tokio::test]
async fn delay_only_faults_still_answer() {
    let fb = start().await;
    fb.handle
        .inject_fault(Fault::delay(FaultTarget::Token, Duration::from_millis(20)))
        .expect("valid");
    let code = fb.code(DEMO_KEY, "ada").await;
    let answer = fb.token(DEMO, &[("grant_type", "authorization_code"), ("code", &code)]).await;
    assert_eq!(answer.status, StatusCode::OK);
    let counters = fb.handle.counters();
    assert_eq!((counters.faults_served, counters.token("authorization_code", "ok")), (1, 1));
}

#[tokio::test]
async fn bad_faults_are_refused() {
    let fb = start().await;
    for body in [
        json!({ "target": "nowhere", "status": 500 }),
        json!({ "target": "api", "status": 200 }),
        json!({ "target": "api", "status": 500, "count": 0 }),
        json!({ "target": "api" }),
        json!({ "target": "api", "status": 500, "delay_ms": 3_600_000 }),
        json!({ "target": "api", "status": 500, "body": "xml" }),
        json!({ "target": "api", "status": 500, "colour": "red" }),
    ] {
        let answer = admin(&fb, reqwest::Method::POST, "faults", Some(body.clone())).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{body}");
    }
    assert!(fb.handle.inject_fault(Fault::status(FaultTarget::Api, 302)).is_err());
    assert_eq!(admin(&fb, reqwest::Method::GET, "faults", None).await.json(), json!([]));
}

#[tokio::test]
async fn faults_can_be_listed_and_cleared() {
    let fb = start().await;
    fb.handle.inject_fault(Fault::status(FaultTarget::Api, 500).times(3)).expect("valid");
    let listed = admin(&fb, reqwest::Method::GET, "faults", None).await.json();
    assert_eq!(listed[0]["count"], 3);
    assert_eq!(
        admin(&fb, reqwest::Method::DELETE, "faults", None).await.status,
        StatusCode::NO_CONTENT
    );
    let token = fb.access_token("ada").await;
    assert_eq!(fb.api("user", Some(&token)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn reset_forgets_everything() {
    let fb = start().await;
    let token = fb.access_token("ada").await;
    fb.handle.advance_clock(Duration::from_secs(10));
    fb.handle.inject_fault(Fault::status(FaultTarget::Token, 500)).expect("valid");
    assert_eq!(
        admin(&fb, reqwest::Method::POST, "reset", None).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(fb.handle.counters(), fakebucket::Counters::default());
    assert_eq!(fb.handle.config().clock.offset(), Duration::ZERO);
    assert_eq!(fb.api("user", Some(&token)).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(admin(&fb, reqwest::Method::GET, "faults", None).await.json(), json!([]));
    assert_eq!(admin(&fb, reqwest::Method::GET, "nope", None).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn admin_api_is_off_unless_enabled() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(fakebucket::run(listener, test_config(), async move {
        let _ = stopped.await;
    }));
    let base = format!("http://{addr}/");
    let counters = reqwest::get(format!("{base}_fakebucket/counters")).await.expect("request");
    assert_eq!(counters.status(), StatusCode::NOT_FOUND);
    let advance = reqwest::Client::new()
        .post(format!("{base}_fakebucket/clock/advance"))
        .body("{\"seconds\":1}")
        .send()
        .await
        .expect("request");
    assert_eq!(advance.status(), StatusCode::NOT_FOUND);
    // The rest of the server is up.
    assert_eq!(reqwest::get(base).await.expect("request").status(), StatusCode::OK);
    stop.send(()).expect("server still running");
    server.await.expect("joined").expect("clean shutdown");
}

#[tokio::test]
async fn run_refuses_an_invalid_config() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let mut config = test_config();
    config.users.clear();
    let error =
        fakebucket::run(listener, config, std::future::pending()).await.expect_err("no users");
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
}

#[tokio::test]
async fn shutdown_cuts_injected_delays_short() {
    let fb = start().await;
    let token = fb.access_token("ada").await;
    fb.handle
        .inject_fault(Fault::delay(FaultTarget::Api, Duration::from_secs(600)))
        .expect("valid");
    let url = fb.handle.api_base().join("user").expect("url");
    let http = fb.http.clone();
    let pending = tokio::spawn(async move { http.get(url).bearer_auth(token).send().await });
    // Wait (without sleeping) until the server has picked the fault up.
    let picked_up = async {
        while fb.handle.counters().faults_served == 0 {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), picked_up)
        .await
        .expect("request reached the server");
    let crate::Fb { handle, .. } = fb;
    tokio::time::timeout(Duration::from_secs(30), handle.shutdown())
        .await
        .expect("shutdown must not wait for the 600 s delay")
        .expect("clean shutdown");
    let _ = pending.await;
}

//! Every request the relay must refuse gets a precise 4xx JSON error, and
//! none of them reaches the token endpoint (fakebucket's counters prove it).

use crate::{
    ORIGIN, REDIRECT_URI, Relay, Subject, client, description_of, error_of, form_request, oneshot,
    post_token, refresh_form, relay_config,
};
use axum::body::Body;
use axum::http::Request;
use dance_protocol::dpop::reason::{ORIGIN_NOT_ALLOWED, REDIRECT_URI_NOT_ALLOWED};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

fn exchange_with(redirect_uri: &str, verifier: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "authorization_code")
        .append_pair("code", "some-code")
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("code_verifier", verifier)
        .finish()
}

fn post(origin: Option<&str>, content_type: Option<&str>, body: impl Into<Body>) -> Request<Body> {
    let mut builder = Request::post("/token");
    if let Some(origin) = origin {
        builder = builder.header("origin", origin);
    }
    if let Some(content_type) = content_type {
        builder = builder.header("content-type", content_type);
    }
    builder.body(body.into()).expect("a valid request")
}

const FORM: Option<&str> = Some("application/x-www-form-urlencoded");

#[tokio::test]
async fn forwarded_for_counts_only_behind_a_trusted_proxy() {
    let fakebucket =
        dance_testkit::start_fakebucket(fakebucket::Config::default()).await.expect("fakebucket");
    for trust_proxy in [false, true] {
        let mut config = relay_config(&fakebucket);
        config.limits.rate_limit_per_minute = 1;
        config.trust_proxy = trust_proxy;
        let app = dance_relay::app(config);
        let from = |address: &str| {
            let mut request = form_request("grant_type=refresh_token");
            request.headers_mut().insert("x-forwarded-for", address.parse().expect("value"));
            request
        };
        // Missing refresh_token: a 400 from the relay itself, after the rate limit.
        let (first, _) = oneshot(&app, from("203.0.113.1")).await;
        let (second, _) = oneshot(&app, from("203.0.113.2")).await;
        let (third, _) = oneshot(&app, from("203.0.113.1")).await;
        assert_eq!(first.status(), 400);
        let expected = if trust_proxy { [400, 429] } else { [429, 429] };
        assert_eq!(
            [second.status().as_u16(), third.status().as_u16()],
            expected,
            "trust_proxy={trust_proxy}"
        );
    }
}

/// Sends raw bytes on a fresh connection and reads until the server closes
/// it or a full response head and `body_bytes` have arrived.
async fn raw(relay: &Relay, request: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(relay.addr).await.expect("connect");
    // The server may answer and close before reading everything: ignore
    // write errors and read what it said.
    let _ = stream.write_all(request).await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn oversized_headers_get_431_on_the_wire() {
    let fakebucket =
        dance_testkit::start_fakebucket(fakebucket::Config::default()).await.expect("fakebucket");
    let relay = Relay::start(relay_config(&fakebucket)).await;
    // Between the limit and twice the limit: the relay's JSON answer.
    let request = format!(
        "POST /token HTTP/1.1\r\nhost: x\r\norigin: {ORIGIN}\r\nx-padding: {}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
        "p".repeat(10_000)
    );
    let answer = raw(&relay, request.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
    assert!(answer.contains("headers are larger than 8192 bytes"), "{answer}");
    // Far beyond: hyper cuts it off before buffering it.
    let request =
        format!("POST /token HTTP/1.1\r\nhost: x\r\nx-padding: {}\r\n\r\n", "p".repeat(40_000));
    let answer = raw(&relay, request.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
    assert_eq!(fakebucket.counters().token_requests_total, 0);
}

#[tokio::test]
async fn a_body_that_never_arrives_gets_408() {
    let fakebucket =
        dance_testkit::start_fakebucket(fakebucket::Config::default()).await.expect("fakebucket");
    let mut config = relay_config(&fakebucket);
    config.limits.body_timeout = std::time::Duration::from_millis(200);
    let relay = Relay::start(config).await;
    let mut stream = tokio::net::TcpStream::connect(relay.addr).await.expect("connect");
    let head = format!(
        "POST /token HTTP/1.1\r\nhost: x\r\norigin: {ORIGIN}\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 100\r\n\r\ngrant_type"
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    // The connection stays open; the relay answers on its own.
    let mut buffer = vec![0u8; 4096];
    let n = stream.read(&mut buffer).await.expect("read");
    let answer = String::from_utf8_lossy(&buffer[..n]);
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    assert!(answer.contains("did not arrive in time"), "{answer}");
    assert_eq!(fakebucket.counters().token_requests_total, 0);
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_the_header_deadline() {
    let fakebucket =
        dance_testkit::start_fakebucket(fakebucket::Config::default()).await.expect("fakebucket");
    let mut config = relay_config(&fakebucket);
    config.limits.header_timeout = std::time::Duration::from_millis(200);
    let relay = Relay::start(config).await;
    // Never a byte: closed before hyper ever sees it.
    let mut silent = tokio::net::TcpStream::connect(relay.addr).await.expect("connect");
    let mut buffer = [0u8; 64];
    assert_eq!(silent.read(&mut buffer).await.expect("read"), 0, "closed without an answer");
    // Half a request line: hyper's own header deadline closes it.
    let mut slow = tokio::net::TcpStream::connect(relay.addr).await.expect("connect");
    slow.write_all(b"POST /tok").await.expect("write");
    let mut answer = Vec::new();
    let _ = slow.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer}");
}

#[tokio::test]
async fn shutdown_does_not_wait_for_silent_connections() {
    let fakebucket =
        dance_testkit::start_fakebucket(fakebucket::Config::default()).await.expect("fakebucket");
    let mut config = relay_config(&fakebucket);
    config.limits.header_timeout = std::time::Duration::from_secs(600);
    let relay = Relay::start(config).await;
    let _silent = tokio::net::TcpStream::connect(relay.addr).await.expect("connect");
    // Make sure the relay accepted it: a request on a second connection is
    // answered only after the accept loop has taken the first one.
    let health = client().get(relay.url("/healthz")).send().await.expect("healthz");
    assert_eq!(health.status(), 200);
    tokio::time::timeout(std::time::Duration::from_secs(60), relay.stop())
        .await
        .expect("shutdown must not wait for a connection that never spoke");
}

crate::on_both_targets! {
    async fn every_refusal_is_precise_and_nothing_is_forwarded(target) {
        let fakebucket = dance_testkit::start_fakebucket(fakebucket::Config::default()).await.expect("fakebucket");
        let app = Subject::new(target, relay_config(&fakebucket)).await;
        let good = exchange_with(REDIRECT_URI, VERIFIER);
        let mut two_origins = form_request(good.clone());
        two_origins.headers_mut().append("origin", "https://evil.example".parse().expect("value"));
        let mut huge_header = form_request(good.clone());
        huge_header.headers_mut().insert("x-padding", "p".repeat(9000).parse().expect("value"));

        // (request, status, error, words in the description, CORS headers expected)
        let cases: Vec<(Request<Body>, u16, &str, &str, bool)> = vec![
            (post(None, FORM, good.clone()), 403, "invalid_request", "no Origin header", false),
            (
                post(Some("https://evil.example"), FORM, good.clone()),
                403,
                "invalid_request",
                "`https://evil.example` is not on the relay's allowlist",
                false,
            ),
            (
                post(Some("http://127.0.0.1:8080/"), FORM, good.clone()),
                403,
                "invalid_request",
                "not on the relay's allowlist",
                false,
            ),
            (
                post(Some("null"), FORM, good.clone()),
                403,
                "invalid_request",
                "not on the relay's allowlist",
                false,
            ),
            (two_origins, 403, "invalid_request", "more than one Origin header", false),
            (
                form_request("grant_type=client_credentials"),
                400,
                "unsupported_grant_type",
                "client_credentials",
                true,
            ),
            (
                form_request("grant_type=password&username=u&password=p"),
                400,
                "unsupported_grant_type",
                "password",
                true,
            ),
            (form_request("grant_type=implicit"), 400, "unsupported_grant_type", "implicit", true),
            (form_request("code=x"), 400, "invalid_request", "`grant_type` is missing", true),
            (form_request(""), 400, "invalid_request", "`grant_type` is missing", true),
            (
                post(Some(ORIGIN), Some("application/json"), r#"{"grant_type":"refresh_token"}"#),
                415,
                "invalid_request",
                "application/x-www-form-urlencoded",
                true,
            ),
            (
                post(Some(ORIGIN), Some("text/plain"), good.clone()),
                415,
                "invalid_request",
                "Content-Type",
                true,
            ),
            (
                post(Some(ORIGIN), Some("multipart/form-data; boundary=x"), good.clone()),
                415,
                "invalid_request",
                "Content-Type",
                true,
            ),
            (
                post(
                    Some(ORIGIN),
                    Some("application/x-www-form-urlencoded; charset=iso-8859-1"),
                    good.clone(),
                ),
                415,
                "invalid_request",
                "UTF-8",
                true,
            ),
            (post(Some(ORIGIN), None, good.clone()), 415, "invalid_request", "Content-Type", true),
            (
                form_request(format!("{good}&pad={}", "x".repeat(9000))),
                413,
                "invalid_request",
                "larger than 8192 bytes",
                true,
            ),
            (
                form_request(format!("{good}&code=again")),
                400,
                "invalid_request",
                "`code` appears more than once",
                true,
            ),
            (
                form_request("grant_type=refresh_token&refresh_token=%FF%FE"),
                400,
                "invalid_request",
                "UTF-8",
                true,
            ),
            (
                form_request(b"grant_type=refresh_token&refresh_token=\xff\xfe".to_vec()),
                400,
                "invalid_request",
                "UTF-8",
                true,
            ),
            (
                form_request("grant_type=refresh_token&refresh_token="),
                400,
                "invalid_request",
                "`refresh_token` is empty",
                true,
            ),
            (
                form_request(format!("grant_type=refresh_token&refresh_token={}", "r".repeat(dance_protocol::token::MAX_FIELD_LEN + 1))),
                400,
                "invalid_request",
                "`refresh_token` is too long",
                true,
            ),
            (
                form_request(exchange_with(REDIRECT_URI, "short")),
                400,
                "invalid_request",
                "RFC 7636 requires at least 43",
                true,
            ),
            (
                form_request(exchange_with(REDIRECT_URI, &format!("{VERIFIER}+/"))),
                400,
                "invalid_request",
                "character outside",
                true,
            ),
            (
                form_request(exchange_with(REDIRECT_URI, &"v".repeat(129))),
                400,
                "invalid_request",
                "at most 128",
                true,
            ),
            (
                form_request("grant_type=authorization_code&code=c&redirect_uri=x"),
                400,
                "invalid_request",
                "`code_verifier` is missing",
                true,
            ),
            (
                form_request(exchange_with("https://evil.example/", VERIFIER)),
                400,
                "invalid_request",
                "redirect_uri is not on the relay's allowlist",
                true,
            ),
            (
                form_request(exchange_with("http://127.0.0.1:8080", VERIFIER)),
                400,
                "invalid_request",
                "redirect_uri is not on the relay's allowlist",
                true,
            ),
            (
                form_request(exchange_with("http://127.0.0.1:8080/?x=1", VERIFIER)),
                400,
                "invalid_request",
                "redirect_uri is not on the relay's allowlist",
                true,
            ),
            (huge_header, 431, "invalid_request", "headers are larger than 8192 bytes", true),
            (
                Request::get("/token").header("origin", ORIGIN).body(Body::empty()).expect("request"),
                405,
                "invalid_request",
                "use POST",
                false,
            ),
            (
                Request::put("/token")
                    .header("origin", ORIGIN)
                    .body(Body::from(good.clone()))
                    .expect("request"),
                405,
                "invalid_request",
                "use POST",
                false,
            ),
            (
                Request::get("/token?code=abc").body(Body::empty()).expect("request"),
                405,
                "invalid_request",
                "use POST",
                false,
            ),
            (
                Request::post("/oauth/token").body(Body::from(good.clone())).expect("request"),
                404,
                "invalid_request",
                "POST /token",
                false,
            ),
        ];
        for (request, status, error, words, cors) in cases {
            let label = format!("{} {}", request.method(), request.uri());
            let (response, json) = app.send(request).await;
            assert_eq!(response.status().as_u16(), status, "{label}: {json}");
            assert_eq!(error_of(&json), error, "{label}: {json}");
            assert!(description_of(&json).contains(words), "{label}: {json}");
            // The refusals the SPA and the doctor must tell apart carry a
            // typed `reason`, so that neither reads the sentence.
            let reason = json["reason"].as_str();
            if status == 403 {
                assert_eq!(reason, Some(ORIGIN_NOT_ALLOWED), "{label}: {json}");
            } else if words.contains("allowlist") {
                assert_eq!(reason, Some(REDIRECT_URI_NOT_ALLOWED), "{label}: {json}");
            }
            assert_eq!(response.headers()["cache-control"], "no-store", "{label}");
            assert_eq!(response.headers()["content-type"], "application/json", "{label}");
            let acao = response.headers().get("access-control-allow-origin");
            assert_eq!(acao.is_some(), cors, "{label}: CORS headers {acao:?}");
            if status == 405 {
                assert_eq!(response.headers()["allow"], "POST, OPTIONS");
            }
        }
        assert_eq!(fakebucket.counters().token_requests_total, 0, "a refusal reached upstream");
    }

    async fn preflight_is_answered_only_for_allowed_origins(target) {
        let fakebucket = dance_testkit::start_fakebucket(fakebucket::Config::default()).await.expect("fakebucket");
        let app = Subject::new(target, relay_config(&fakebucket)).await;
        let preflight = |origin: Option<&str>| {
            let mut builder = Request::options("/token")
                .header("access-control-request-method", "POST")
                .header("access-control-request-headers", "content-type");
            if let Some(origin) = origin {
                builder = builder.header("origin", origin);
            }
            builder.body(Body::empty()).expect("request")
        };

        let (response, _) = app.send(preflight(Some(ORIGIN))).await;
        assert_eq!(response.status(), 204);
        let headers = response.headers();
        assert_eq!(headers["access-control-allow-origin"], ORIGIN);
        assert_eq!(headers["access-control-allow-methods"], "POST");
        assert_eq!(headers["access-control-allow-headers"], "content-type, dpop");
        assert_eq!(headers["access-control-max-age"], "600");
        assert!(headers.get("access-control-allow-credentials").is_none());
        let vary = crate::vary_of(headers);
        assert!(vary.iter().any(|v| v == "origin"), "{vary:?}");

        for origin in [Some("https://evil.example"), Some("http://127.0.0.1:8080/"), None] {
            let (response, json) = app.send(preflight(origin)).await;
            assert_eq!(response.status(), 403, "{origin:?}");
            assert_eq!(error_of(&json), "invalid_request");
            assert!(
                response.headers().keys().all(|k| !k.as_str().starts_with("access-control-")),
                "{origin:?}: {:?}",
                response.headers()
            );
        }
        assert_eq!(fakebucket.counters().token_requests_total, 0);
    }

    async fn requests_without_origin_pass_only_when_allowed(target) {
        let fakebucket = dance_testkit::start_fakebucket(fakebucket::Config::default()).await.expect("fakebucket");
        let mut config = relay_config(&fakebucket);
        config.allow_missing_origin = true;
        let app = Subject::new(target, config).await;
        let (response, json) = app.send(post(None, FORM, refresh_form("unknown"))).await;
        // Forwarded: fakebucket's own answer to an unknown refresh token.
        assert_eq!(response.status(), 400);
        assert_eq!(description_of(&json), "Invalid refresh_token");
        assert!(response.headers().get("access-control-allow-origin").is_none());
        // A wrong origin is still refused.
        let (response, _) =
            app.send(post(Some("https://evil.example"), FORM, refresh_form("unknown"))).await;
        assert_eq!(response.status(), 403);
        assert_eq!(fakebucket.counters().token_requests_total, 1);
    }

    async fn the_rate_limit_answers_429_with_retry_after(target) {
        let fakebucket = dance_testkit::start_fakebucket(fakebucket::Config::default()).await.expect("fakebucket");
        let mut config = relay_config(&fakebucket);
        config.limits.rate_limit_per_minute = 2;
        let relay = Relay::start_on(target, config).await;
        let http = client();
        for _ in 0..2 {
            let response = post_token(&http, &relay, refresh_form("unknown")).await;
            assert_eq!(response.status(), 400, "forwarded and refused upstream");
        }
        let response = post_token(&http, &relay, refresh_form("unknown")).await;
        assert_eq!(response.status(), 429);
        let headers = response.headers().clone();
        assert_eq!(headers["retry-after"], "30");
        assert_eq!(headers["access-control-allow-origin"], ORIGIN);
        assert_eq!(headers["access-control-expose-headers"], "retry-after");
        let json: serde_json::Value = response.json().await.expect("JSON");
        assert_eq!(error_of(&json), "temporarily_unavailable");
        assert_eq!(
            fakebucket.counters().token_requests_total,
            2,
            "the limited request was not forwarded"
        );
        // The native relay also counts what happened; a Worker has no /metrics.
        if relay.is_native() {
            let metrics =
                http.get(relay.metrics_url()).send().await.expect("metrics").text().await.expect("text");
            assert!(
                metrics.contains("dance_relay_requests_total{outcome=\"rate_limited\"} 1\n"),
                "{metrics}"
            );
            assert!(
                metrics.contains("dance_relay_requests_total{outcome=\"oauth_error\"} 2\n"),
                "{metrics}"
            );
        }
    }

    /// docs/security.md: the relay never offers client credentials, even when the
    /// consumer behind it is private and Bitbucket would mint a token for it.
    /// Here fakebucket's consumer is private: asked directly with the secret,
    /// fakebucket answers 200; asked through the relay, nothing is forwarded.
    async fn client_credentials_are_refused_even_for_a_private_consumer(target) {
        let mut config = fakebucket::Config::default();
        for consumer in &mut config.consumers {
            consumer.private = true;
        }
        let fakebucket = dance_testkit::start_fakebucket(config).await.expect("fakebucket");
        let http = client();

        let direct = http
            .post(fakebucket.token_url())
            .basic_auth(fakebucket::DEMO_KEY, Some(fakebucket::DEMO_SECRET))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .expect("fakebucket answers");
        assert_eq!(direct.status(), 200, "a private consumer may use client credentials upstream");

        let relay = Relay::start_on(target, relay_config(&fakebucket)).await;
        let before = fakebucket.counters().token_requests_total;
        let response = post_token(&http, &relay, "grant_type=client_credentials".to_owned()).await;
        assert_eq!(response.status(), 400);
        let json: serde_json::Value = response.json().await.expect("JSON");
        assert_eq!(error_of(&json), "unsupported_grant_type");
        assert!(json.to_string().find("access_token").is_none(), "{json}");
        assert_eq!(fakebucket.counters().token_requests_total, before, "nothing was forwarded");
    }

    /// `/healthz` answers `ok` and is never cached; other methods get 405.
    async fn healthz_answers_ok(target) {
        let fakebucket = dance_testkit::start_fakebucket(fakebucket::Config::default()).await.expect("fakebucket");
        let relay = Relay::start_on(target, relay_config(&fakebucket)).await;
        let health = client().get(relay.url("/healthz")).send().await.expect("healthz");
        assert_eq!(health.status(), 200);
        assert_eq!(health.headers()["cache-control"], "no-store");
        assert_eq!(health.text().await.expect("text"), "ok\n");
        let post = client().post(relay.url("/healthz")).send().await.expect("healthz");
        assert_eq!(post.status(), 405);
    }
}

/// A Worker whose settings have errors answers every request with the
/// report `dance-relay check` prints for the same settings, and forwards
/// nothing (the native relay refuses to start instead: see `binary`).
#[tokio::test]
#[ignore = "needs the built Worker and workerd: `cargo xtask test` runs it"]
async fn a_misconfigured_worker_answers_with_the_check_report() {
    let fakebucket =
        dance_testkit::start_fakebucket(fakebucket::Config::default()).await.expect("fakebucket");
    let mut config = relay_config(&fakebucket);
    config.allowed_origins = vec!["https://user.github.io/".to_owned()];
    config.client_secret = dance_protocol::ClientSecret::new("");
    let (_, problems) = dance_relay::Config::from_vars(|name| {
        config.to_vars().into_iter().find(|(k, _)| *k == name).map(|(_, v)| v)
    });
    let (expected, ok) = dance_relay::config::report(&problems);
    assert!(!ok, "{expected}");
    let relay = Relay::start_on(crate::Target::Worker, config).await;
    for (method, path) in [("POST", "/token"), ("GET", "/healthz"), ("OPTIONS", "/token")] {
        let response = client()
            .request(method.parse().expect("method"), relay.url(path))
            .header("origin", ORIGIN)
            .send()
            .await
            .expect("an answer");
        assert_eq!(response.status(), 500, "{method} {path}");
        assert_eq!(response.headers()["content-type"], "text/plain; charset=utf-8");
        let text = response.text().await.expect("text");
        assert!(text.ends_with(&expected), "{method} {path}:\n{text}\nexpected:\n{expected}");
        assert!(
            text.contains("DANCE_ALLOWED_ORIGINS: `https://user.github.io/` has a trailing slash"),
            "{text}"
        );
    }
    assert_eq!(fakebucket.counters().token_requests_total, 0);
}

//! Property tests: whatever bytes, fields, content types and headers arrive
//! at `/token`, the answer is a 4xx with an RFC 6749 JSON error, never a 5xx,
//! a panic or a hang. The router runs without a socket; its token URL points
//! at a closed port, so the only way to get a 5xx is a request valid enough to
//! be forwarded, which the assertions allow for explicitly.

use crate::{ORIGIN, REDIRECT_URI};
use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Request};
use dance_protocol::token::TokenRequest;
use dance_protocol::{ClientId, ClientSecret};
use proptest::prelude::*;
use std::sync::OnceLock;
use tower::ServiceExt as _;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime")
    })
}

fn app() -> &'static axum::Router {
    static APP: OnceLock<axum::Router> = OnceLock::new();
    APP.get_or_init(|| {
        let mut config = dance_relay::Config::new(
            ClientId::new(fakebucket::DEMO_KEY),
            ClientSecret::new(fakebucket::DEMO_SECRET),
        );
        config.token_url = "http://127.0.0.1:9/site/oauth2/access_token".parse().expect("url");
        config.allowed_origins = vec![ORIGIN.to_owned()];
        config.allowed_redirect_uris = vec![REDIRECT_URI.to_owned()];
        config.allow_missing_origin = true;
        config.limits.rate_limit_per_minute = 0;
        config.limits.upstream_timeout = std::time::Duration::from_secs(2);
        // Building the app spawns nothing, but reqwest's client wants a runtime around.
        let _entered = runtime().enter();
        dance_relay::app(config)
    })
}

/// Sends the request and checks the answer; returns the status.
fn check(request: Request<Body>, body: &[u8]) -> Result<u16, TestCaseError> {
    let response = runtime().block_on(async {
        let response = app().clone().oneshot(request).await.expect("infallible");
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("a body");
        (status, bytes)
    });
    let (status, bytes) = response;
    let json: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|_| TestCaseError::fail(format!("{status}: not JSON: {bytes:?}")))?;
    let error = json["error"].as_str().unwrap_or_default();
    prop_assert!(!error.is_empty(), "{status}: no error field: {json}");
    if status >= 500 {
        // Only a well-formed request reaches the (closed) upstream.
        prop_assert_eq!(status, 502);
        prop_assert_eq!(error, "temporarily_unavailable");
        prop_assert!(TokenRequest::parse_form(body).is_ok(), "a malformed body was forwarded");
    } else {
        prop_assert!((400..500).contains(&status), "{}: {}", status, json);
    }
    Ok(status)
}

fn form_request(body: Vec<u8>, content_type: &str, origin: Option<&str>) -> Request<Body> {
    let mut builder = Request::post("/token").header("content-type", content_type);
    if let Some(origin) = origin {
        builder = builder.header("origin", origin);
    }
    builder.body(Body::from(body)).expect("a valid request")
}

/// Form-like bodies: known and unknown field names with awkward values.
fn form_body() -> impl Strategy<Value = Vec<u8>> {
    let name = prop_oneof![
        Just("grant_type".to_owned()),
        Just("code".to_owned()),
        Just("redirect_uri".to_owned()),
        Just("code_verifier".to_owned()),
        Just("refresh_token".to_owned()),
        Just("client_id".to_owned()),
        Just("client_secret".to_owned()),
        "[a-z_%+=&]{0,12}",
    ];
    let value = prop_oneof![
        Just("authorization_code".to_owned()),
        Just("refresh_token".to_owned()),
        Just("client_credentials".to_owned()),
        Just(url::form_urlencoded::byte_serialize(REDIRECT_URI.as_bytes()).collect::<String>()),
        Just("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".to_owned()),
        "[ -~]{0,64}",
        "(%[0-9A-Fa-f]{2}){0,8}",
        "\\PC{0,20}",
    ];
    proptest::collection::vec((name, value), 0..6).prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("&")
            .into_bytes()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_get_a_4xx(body in proptest::collection::vec(any::<u8>(), 0..12_000)) {
        check(form_request(body.clone(), "application/x-www-form-urlencoded", Some(ORIGIN)), &body)?;
    }

    #[test]
    fn form_like_bodies_get_a_4xx_unless_valid(body in form_body(), origin in prop_oneof![Just(Some(ORIGIN)), Just(None), Just(Some("https://evil.example"))]) {
        let status = check(form_request(body.clone(), "application/x-www-form-urlencoded", origin), &body)?;
        if origin == Some("https://evil.example") {
            prop_assert_eq!(status, 403);
        }
    }

    #[test]
    fn arbitrary_content_types_get_a_4xx(content_type in "[ -~]{0,80}", body in form_body()) {
        let Ok(value) = HeaderValue::from_str(&content_type) else { return Ok(()); };
        let mut request = form_request(body.clone(), "x/y", Some(ORIGIN));
        request.headers_mut().insert("content-type", value);
        check(request, &body)?;
    }

    #[test]
    fn arbitrary_headers_get_a_4xx(
        headers in proptest::collection::vec(
            (prop_oneof![
                Just("origin".to_owned()), Just("content-type".to_owned()), Just("content-length".to_owned()),
                Just("transfer-encoding".to_owned()), Just("x-forwarded-for".to_owned()), Just("expect".to_owned()),
                Just("authorization".to_owned()), "[a-z][a-z0-9-]{0,20}",
            ], proptest::collection::vec(any::<u8>(), 0..200)),
            0..8,
        ),
        body in form_body(),
    ) {
        let mut request = form_request(body.clone(), "application/x-www-form-urlencoded", Some(ORIGIN));
        for (name, value) in headers {
            let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_bytes(&value)) else { continue };
            request.headers_mut().append(name, value);
        }
        check(request, &body)?;
    }
}

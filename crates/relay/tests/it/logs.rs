//! Captures every log line of a full sign-in (code exchange, refresh, a
//! replayed code, a dead refresh token, an upstream failure) at TRACE level,
//! and proves that no secret, code, verifier or token appears in them.

use crate::{Relay, client, code_form, mint_code, post_token, refresh_form, relay_config};
use base64::Engine as _;
use dance_protocol::PkceVerifier;
use std::io;
use std::sync::{Arc, Mutex};

/// A log sink shared by every writer the subscriber makes.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl io::Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

// A current-thread runtime (the default of `tokio::test`): the relay,
// fakebucket and the client all run on this thread, under this subscriber.
#[tokio::test]
async fn no_secret_code_verifier_or_token_is_ever_logged() {
    let capture = Capture::default();
    let sink = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let fakebucket = fakebucket::spawn(fakebucket::Config::default()).await.expect("fakebucket");
    let relay = Relay::start(relay_config(&fakebucket)).await;
    let http = client();
    let verifier = PkceVerifier::generate();
    let code = mint_code(&http, &fakebucket, &verifier).await;
    let first: serde_json::Value =
        post_token(&http, &relay, code_form(&code, &verifier)).await.json().await.expect("JSON");
    let refresh_1 = first["refresh_token"].as_str().expect("refresh token").to_owned();
    let second: serde_json::Value =
        post_token(&http, &relay, refresh_form(&refresh_1)).await.json().await.expect("JSON");
    let dead = post_token(&http, &relay, refresh_form(&refresh_1)).await;
    assert_eq!(dead.status(), 400);
    // Replaying the code is refused (and revokes its tokens upstream).
    let replay = post_token(&http, &relay, code_form(&code, &verifier)).await;
    assert_eq!(replay.status(), 400);
    fakebucket
        .inject_fault(fakebucket::Fault::status(fakebucket::FaultTarget::Token, 502).html())
        .expect("a valid fault");
    let refresh_2 = second["refresh_token"].as_str().expect("refresh token").to_owned();
    assert_eq!(post_token(&http, &relay, refresh_form(&refresh_2)).await.status(), 502);
    assert!(fakebucket.counters().token_requests_total >= 5);
    relay.stop().await;
    drop(_guard);

    let logs = String::from_utf8(capture.0.lock().unwrap_or_else(|e| e.into_inner()).clone())
        .expect("UTF-8 logs");
    // The capture works: the access lines of the exchanges are there.
    assert!(logs.contains("outcome=\"ok\"") || logs.contains("outcome=ok"), "{logs}");
    assert!(logs.contains("upstream_failed"), "{logs}");
    let basic = base64::engine::general_purpose::STANDARD.encode("demo-client:demo-secret");
    let secrets = [
        ("client secret", "demo-secret".to_owned()),
        ("basic credentials", basic),
        ("code", code.clone()),
        ("verifier", verifier.secret().to_owned()),
        ("access token 1", first["access_token"].as_str().expect("token").to_owned()),
        ("refresh token 1", refresh_1),
        ("access token 2", second["access_token"].as_str().expect("token").to_owned()),
        ("refresh token 2", refresh_2),
    ];
    for (what, value) in secrets {
        assert!(value.len() >= 8, "{what} is too short to search for");
        assert!(!logs.contains(&value), "the {what} appears in the logs:\n{logs}");
    }
}

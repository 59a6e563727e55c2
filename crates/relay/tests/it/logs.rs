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

/// The process-wide default subscriber while this test runs: it wants every
/// event and drops them all.
///
/// `tracing` decides once per call site, for the whole process, whether
/// anybody is interested in it, and asks the subscriber of whichever thread
/// first reaches it. The other tests of this binary run on other threads
/// with no subscriber; when one of them reached, say, the relay's access
/// log line first, that line was marked "nobody listens" and this test's
/// thread-local capture never saw it (one run in a few, in the full suite).
/// With this one as the global default, every call site is always of
/// interest: events on other threads come here and vanish; those on the
/// test's thread go to its capture.
struct Keeper;

impl tracing::Subscriber for Keeper {
    fn register_callsite(
        &self,
        _: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        tracing::subscriber::Interest::always()
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::TRACE)
    }

    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, _: &tracing::Event<'_>) {}

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

// A current-thread runtime (the default of `tokio::test`): the relay,
// fakebucket and the client all run on this thread, under this subscriber.
#[tokio::test]
async fn no_secret_code_verifier_or_token_is_ever_logged() {
    // Only this test sets a global default in this binary. Installing it
    // re-asks every call site known so far.
    tracing::subscriber::set_global_default(Keeper)
        .expect("no other test of this binary sets a global subscriber");
    let capture = Capture::default();
    let sink = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    // Re-ask once more, now that both subscribers are in place: a call site
    // first reached by another thread in the instant before the keeper was
    // installed may have been marked uninteresting after all.
    tracing::callsite::rebuild_interest_cache();

    let fakebucket =
        dance_testkit::start_fakebucket(fakebucket::Config::default()).await.expect("fakebucket");
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
    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        fakebucket::DEMO_KEY,
        fakebucket::DEMO_SECRET
    ));
    let secrets = [
        ("client secret", fakebucket::DEMO_SECRET.to_owned()),
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

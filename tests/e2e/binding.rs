//! Refresh tokens only this browser can use, seen from outside: the stacks'
//! relays seal refresh tokens and bind them to the page's key (as the demo
//! and the deploy examples do).
//!
//! - A refresh token lifted from session storage is refused by the relay
//!   from anywhere else (a forged Origin, a fresh key, no proof), nothing
//!   reaches fakebucket, and the rightful tab still refreshes.
//! - Past the relay's session lifetime, the tab is signed out with a reason
//!   in plain words.
//! - Another page of the same origin, in a tab of its own, can neither pull
//!   the session over the cross-tab channel, plant one, nor sign the app out.

use crate::harness::{ADA, Mount, Stack, origin_of, scenario, show};
use anyhow::{Context as _, Result, ensure};
use dance_relay_core::dpop::testing::ProofKey;
use serde_json::Value;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Past the 7200 s lifetime of fakebucket's access tokens.
const PAST_EXPIRY: Duration = Duration::from_secs(7201);
/// Past the relay's default session lifetime of 30 days.
const PAST_SESSION_LIFETIME: Duration = Duration::from_secs(31 * 24 * 3600);

/// The stored session of the current tab, as JSON.
async fn stored_session(stack: &Stack) -> Result<Value> {
    let storage = stack.browser.session_storage().await?;
    let (_, json) = storage
        .iter()
        .find(|(k, _)| k == "oauth-dance:session")
        .context("no oauth-dance:session in session storage")?;
    serde_json::from_str(json).context("the stored session is not JSON")
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

/// What the relay answers a refresh with `form`, sent from outside the
/// browser with the SPA's Origin: status, `error` and `reason`.
async fn replay(stack: &Stack, form: String) -> Result<(u16, String, Option<String>)> {
    let response = reqwest::Client::new()
        .post(stack.relay.token_url())
        // From outside a browser, Origin is whatever the sender writes.
        .header("origin", origin_of(stack.spa()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .context("the relay answers")?;
    let status = response.status().as_u16();
    let json: Value = response.json().await.context("a JSON answer")?;
    Ok((
        status,
        json["error"].as_str().unwrap_or_default().to_owned(),
        json["reason"].as_str().map(str::to_owned),
    ))
}

/// Sign in, lift the sealed refresh token out of session storage, and
/// replay it from outside the browser: refused every way, nothing
/// forwarded; then the rightful tab refreshes as if nothing happened.
#[tokio::test]
#[ignore = "end-to-end: run by cargo xtask test"]
async fn a_lifted_refresh_token_is_refused_outside_the_browser() {
    scenario("a_lifted_refresh_token_is_refused_outside_the_browser", Mount::Root, async |stack| {
        stack.open_landing("").await?;
        stack.sign_in().await?;
        let session = stored_session(stack).await?;
        let lifted = session["refresh_token"].as_str().context("a refresh token")?.to_owned();
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "refresh_token")
            .append_pair("refresh_token", &lifted)
            .finish();
        let htu = stack.relay.token_url().to_string();
        let before = stack.counters();

        let thief = ProofKey::new();
        for (what, body, error, reason) in [
            ("no proof", form.clone(), "invalid_dpop_proof", None),
            (
                "a proof by a fresh key",
                format!("{form}&dpop={}", thief.proof(&htu, now())),
                "invalid_dpop_proof",
                Some("wrong_key"),
            ),
        ] {
            let (status, got_error, got_reason) = replay(stack, body).await?;
            ensure!(
                (status, got_error.as_str(), got_reason.as_deref()) == (400, error, reason),
                "{what}: the relay answered {status} {got_error} {got_reason:?}"
            );
        }
        let after = stack.counters();
        ensure!(
            after.token_requests_total == before.token_requests_total,
            "a replay reached fakebucket: {} then {}",
            show(&before),
            show(&after)
        );

        // The rightful tab is unaffected: its next refresh goes through.
        stack.fakebucket.advance_clock(PAST_EXPIRY);
        stack.browser.reload().await?;
        stack.wait_profile(ADA).await?;
        ensure!(
            stack.counters().token("refresh_token", "ok") == 1,
            "the rightful refresh did not happen: {}",
            show(&stack.counters())
        );
        let renewed = stored_session(stack).await?;
        ensure!(renewed["refresh_token"].as_str() != Some(lifted.as_str()), "not rotated");
        Ok(())
    })
    .await;
}

/// Past the session lifetime the relay refuses to refresh; the tab says
/// why, in plain words, and offers to sign in again.
#[tokio::test]
#[ignore = "end-to-end: run by cargo xtask test"]
async fn a_session_ends_at_the_relays_lifetime() {
    scenario("a_session_ends_at_the_relays_lifetime", Mount::Root, async |stack| {
        stack.open_landing("").await?;
        stack.sign_in().await?;
        stack.relay.advance_clock(PAST_SESSION_LIFETIME)?;
        stack.fakebucket.advance_clock(PAST_SESSION_LIFETIME);
        stack.browser.reload().await?;
        let text = stack.browser.wait_problem("session-limit").await?;
        ensure!(text.contains("time limit") || text.contains("longest"), "unclear: {text}");
        stack.browser.wait_id("sign-in").await?;
        let counters = stack.counters();
        ensure!(
            !counters.token_requests.contains_key("refresh_token"),
            "the refresh reached fakebucket: {}",
            show(&counters)
        );
        stack.screenshot("a_session_ends_at_the_relays_lifetime").await?;
        Ok(())
    })
    .await;
}

/// A page of the same origin at another path, in a tab of its own (so with
/// a session storage of its own), tries the attacks a plaintext channel
/// allowed: list the lock names, ask for the session, plant one, sign the
/// app out. The app's tab ignores every message and counts it.
#[tokio::test]
#[ignore = "end-to-end: run by cargo xtask test"]
async fn another_page_of_the_origin_cannot_use_the_channel() {
    scenario("another_page_of_the_origin_cannot_use_the_channel", Mount::Root, async |stack| {
        stack.open_landing("").await?;
        stack.sign_in().await?;
        // One refresh, so the tab holds the Web Lock of its generation (the
        // tab that refreshed keeps it): there is a lock name to look at.
        stack.fakebucket.advance_clock(PAST_EXPIRY);
        stack.browser.reload().await?;
        stack.wait_profile(ADA).await?;
        let session = stored_session(stack).await?;
        let access = session["access_token"].as_str().context("an access token")?.to_owned();
        let lineage = session["lineage"].as_str().context("a lineage")?.to_owned();
        ensure!(!lineage.is_empty(), "the session has an empty lineage");
        let client = &stack.browser.client;
        let app = client.window().await?;

        // A fresh tab, not opened by the app: it shares the origin, not the
        // session storage.
        let other = client.new_window(true).await?;
        client.switch_to_window(other.handle.clone()).await?;
        stack.browser.goto(&stack.spa_join("config.json")?).await?;
        let script = format!(
            r#"
                const done = arguments[arguments.length - 1];
                (async () => {{
                const lineage = {lineage:?};
                const heard = [];
                const channel = new BroadcastChannel("oauth-dance");
                channel.onmessage = (event) => heard.push(event.data);
                const locks = navigator.locks ? await navigator.locks.query() : {{held: [], pending: []}};
                const names = [...locks.held, ...locks.pending].map((l) => l.name);
                const planted = {{
                    access_token: "planted", refresh_token: "planted", lineage, generation: 99,
                }};
                for (const message of [
                    {{lineage, generation: 0, ask: true}},
                    {{lineage, generation: 99, session: planted}},
                    {{lineage, generation: 99}},
                    "junk",
                ]) {{
                    channel.postMessage(message);
                }}
                setTimeout(() => done({{names, heard: JSON.stringify(heard)}}), 1500);
                }})().catch((e) => done({{names: [], heard: "failed: " + e}}));
                "#
        );
        let heard = client.execute_async(&script, vec![]).await?;
        let names = heard["names"].to_string();
        ensure!(names.contains("oauth-dance:refresh:"), "the app's lock is not listed: {names}");
        ensure!(!names.contains(&lineage), "a lock name reveals the lineage {lineage}: {names}");
        let heard = heard["heard"].as_str().unwrap_or_default().to_owned();
        ensure!(!heard.contains(&access), "the session was sent to another page: {heard}");
        ensure!(!heard.contains("access_token"), "a session went out in the clear: {heard}");
        client.close_window().await?;

        client.switch_to_window(app).await?;
        ensure!(stack.browser.has("sign-out").await?, "the app was signed out by another page");
        let kept = stored_session(stack).await?;
        ensure!(
            kept["access_token"].as_str() == Some(access.as_str()),
            "another page planted a session: {kept}"
        );
        let rejected = stack
            .browser
            .js("return document.documentElement.dataset.channelRejected || '0';")
            .await?;
        let rejected: u32 = rejected.as_str().and_then(|n| n.parse().ok()).unwrap_or_default();
        ensure!(rejected >= 4, "the app counted {rejected} rejected messages, not 4");
        stack.screenshot("another_page_of_the_origin_cannot_use_the_channel").await?;
        Ok(())
    })
    .await;
}

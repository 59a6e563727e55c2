//! A signed-in session over time: token expiry (also with the Worker as the
//! relay), two tabs at expiry, signing out, and refreshes that fail.

use crate::harness::{ADA, Mount, RelayTarget, Stack, scenario, scenario_on, show};
use anyhow::{Context as _, Result, ensure};
use fakebucket::{Fault, FaultTarget};
use fantoccini::wd::WindowHandle;
use serde_json::Value;
use std::time::Duration;

/// Past the 7200 s lifetime of fakebucket's access tokens.
const PAST_EXPIRY: Duration = Duration::from_secs(7201);

/// Refresh requests by outcome, and their total.
fn refreshes(stack: &Stack) -> (u64, u64) {
    let counters = stack.counters();
    let total = counters.token_requests.get("refresh_token").map(|m| m.values().sum()).unwrap_or(0);
    (counters.token("refresh_token", "ok"), total)
}

/// The access and refresh tokens in this tab's session storage.
async fn stored_tokens(stack: &Stack) -> Result<(String, String)> {
    let session = stack.browser.session_storage().await?;
    let (_, json) =
        session.iter().find(|(k, _)| k == "oauth-dance:session").with_context(|| {
            format!("no oauth-dance:session in session storage; keys: {:?}", keys(&session))
        })?;
    let value: Value = serde_json::from_str(json).context("the stored session is not JSON")?;
    let access =
        value["access_token"].as_str().context("no access_token in the stored session")?.to_owned();
    let refresh = value["refresh_token"]
        .as_str()
        .context("no refresh_token in the stored session")?
        .to_owned();
    Ok((access, refresh))
}

fn keys(pairs: &[(String, String)]) -> Vec<&str> {
    pairs.iter().map(|(k, _)| k.as_str()).collect()
}

/// Once fakebucket's clock is past `expires_in`, the next API
/// call is refreshed silently with exactly one refresh request; a second
/// expiry refreshes again with the rotated token.
#[tokio::test]
#[ignore = "end-to-end: run by cargo xtask test"]
async fn token_expiry_refreshes_silently() {
    scenario("token_expiry_refreshes_silently", Mount::Root, sign_in_then_refresh_twice).await;
}

/// The same with the relay as a Cloudflare Worker, in a local workerd: the
/// whole dance (sign-in, the profile, two refreshes with rotation) through
/// the Worker.
#[tokio::test]
#[ignore = "end-to-end: run by cargo xtask test"]
async fn token_expiry_refreshes_silently_through_the_worker() {
    scenario_on(
        "token_expiry_refreshes_silently_through_the_worker",
        RelayTarget::Worker,
        sign_in_then_refresh_twice,
    )
    .await;
}

/// Signs in, then moves fakebucket's clock past expiry twice; each reload
/// must refresh exactly once, silently, with the rotated token.
async fn sign_in_then_refresh_twice(stack: &mut Stack) -> Result<()> {
    {
        stack.open_landing("").await?;
        stack.sign_in().await?;
        let (access_1, refresh_1) = stored_tokens(stack).await?;

        stack.fakebucket.advance_clock(PAST_EXPIRY);
        // Reloading makes the app call the API again with its stored token.
        stack.browser.reload().await?;
        stack.wait_profile(ADA).await?;
        ensure!(
            !stack.browser.has("problem").await?,
            "the refresh was not silent: a problem is shown"
        );
        let (ok, total) = refreshes(stack);
        ensure!(ok == 1 && total == 1, "expected exactly one refresh: {}", show(&stack.counters()));
        let (access_2, refresh_2) = stored_tokens(stack).await?;
        ensure!(access_2 != access_1, "the access token was not replaced by the refresh");
        ensure!(refresh_2 != refresh_1, "the rotated refresh token was not kept");

        // Rotation honoured: the next refresh presents the new refresh token
        // (fakebucket refuses the old one, which it has forgotten).
        stack.fakebucket.advance_clock(PAST_EXPIRY);
        stack.browser.reload().await?;
        stack.wait_profile(ADA).await?;
        let (ok, total) = refreshes(stack);
        ensure!(
            ok == 2 && total == 2,
            "the second refresh did not succeed with the rotated token: {}",
            show(&stack.counters())
        );
        let counters = stack.counters();
        ensure!(
            counters.token("authorization_code", "ok") == 1,
            "signed in again instead of refreshing: {}",
            show(&counters)
        );
        Ok(())
    }
}

/// Signs in, then opens a second tab from the page, as "duplicate tab" or
/// a link opened in a new tab does, which starts with a copy of the first
/// tab's session storage. Returns the two tabs, the second one current.
async fn two_tabs(stack: &Stack) -> Result<(WindowHandle, WindowHandle)> {
    stack.open_landing("").await?;
    stack.sign_in().await?;
    let client = &stack.browser.client;
    let first = client.window().await?;
    let before: Vec<WindowHandle> = client.windows().await?;
    stack
        .browser
        .js(&format!("window.open({:?}, '_blank'); return true;", stack.spa().as_str()))
        .await?;
    let after: Vec<WindowHandle> = client.windows().await?;
    let second = after
        .into_iter()
        .find(|w| !before.contains(w))
        .context("window.open did not open a second tab")?;
    client.switch_to_window(second.clone()).await?;
    stack.wait_profile(ADA).await?;
    let counters = stack.counters();
    ensure!(
        counters.token_requests_total == 1,
        "the second tab needed token requests of its own: {}",
        show(&counters)
    );
    Ok((first, second))
}

/// Two tabs share a session when the token expires. The
/// second tab's next API call refreshes; the first tab adopts the rotated
/// tokens (it must not present the dead refresh token), so there is one
/// refresh in total and both tabs keep working.
#[tokio::test]
#[ignore = "end-to-end: run by cargo xtask test"]
async fn two_tabs_one_refresh() {
    scenario("two_tabs_one_refresh", Mount::Root, async |stack| {
        let (first, second) = two_tabs(stack).await?;
        let client = &stack.browser.client;
        let (_, old_refresh) = stored_tokens(stack).await?;

        stack.fakebucket.advance_clock(PAST_EXPIRY);
        stack.browser.reload().await?;
        stack.wait_profile(ADA).await?;
        let (ok, total) = refreshes(stack);
        ensure!(
            ok == 1 && total == 1,
            "the second tab did not refresh once: {}",
            show(&stack.counters())
        );
        let (_, new_refresh) = stored_tokens(stack).await?;
        ensure!(new_refresh != old_refresh, "the second tab kept the dead refresh token");

        // The first tab, open all along, got the rotated session.
        client.switch_to_window(first.clone()).await?;
        let (_, first_refresh) = stored_tokens(stack).await?;
        ensure!(
            first_refresh == new_refresh,
            "the first tab did not adopt the rotated refresh token (it still holds {})",
            if first_refresh == old_refresh { "the dead one" } else { "another one" }
        );
        stack.browser.reload().await?;
        stack.wait_profile(ADA).await?;
        ensure!(
            !stack.browser.has("problem").await?,
            "the first tab shows a problem after the expiry"
        );

        client.switch_to_window(second.clone()).await?;
        stack.browser.reload().await?;
        stack.wait_profile(ADA).await?;
        let (ok, total) = refreshes(stack);
        let counters = stack.counters();
        ensure!(ok == 1 && total == 1, "expected one refresh in total: {}", show(&counters));
        ensure!(
            counters.token_requests_total == 2,
            "unexpected token requests: {}",
            show(&counters)
        );
        Ok(())
    })
    .await;
}

/// [`two_tabs_one_refresh`], harder: the first tab is not running while the second one
/// refreshes (it was navigated away, as a reloading tab or one the browser
/// discarded to save memory). When it comes back it still holds the dead
/// refresh token; it must get the rotated session rather than sign the
/// person out, with still one refresh in total.
#[tokio::test]
#[ignore = "end-to-end: run by cargo xtask test"]
async fn two_tabs_one_was_away_during_the_refresh() {
    scenario("two_tabs_one_was_away_during_the_refresh", Mount::Root, async |stack| {
        let (first, second) = two_tabs(stack).await?;
        let client = &stack.browser.client;

        client.switch_to_window(first.clone()).await?;
        stack.browser.goto(&url::Url::parse("about:blank")?).await?;

        stack.fakebucket.advance_clock(PAST_EXPIRY);
        client.switch_to_window(second.clone()).await?;
        stack.browser.reload().await?;
        stack.wait_profile(ADA).await?;
        stack.wait_counters("one refresh", |c| c.token("refresh_token", "ok") == 1).await?;

        client.switch_to_window(first.clone()).await?;
        stack.browser.goto(stack.spa()).await?;
        let shown = stack.browser.wait_any(&["display-name", "problem", "sign-in"]).await?;
        let counters = stack.counters();
        ensure!(
            shown == "display-name",
            "the tab that was away lost the session (it shows #{shown}); fakebucket saw {}",
            show(&counters)
        );
        let (ok, total) = refreshes(stack);
        ensure!(ok == 1 && total == 1, "expected one refresh in total: {}", show(&counters));
        Ok(())
    })
    .await;
}

/// Signing out while a refresh is on its way: when the answer arrives, its
/// tokens are not stored, so the sign-out stands and a reload shows the
/// landing page.
#[tokio::test]
#[ignore = "end-to-end: run by cargo xtask test"]
async fn sign_out_while_a_refresh_is_in_flight() {
    scenario("sign_out_while_a_refresh_is_in_flight", Mount::Root, async |stack| {
        stack.open_landing("").await?;
        stack.sign_in().await?;
        stack
            .fakebucket
            .inject_fault(Fault::delay(FaultTarget::Token, REFRESH_DELAY))
            .map_err(|e| anyhow::anyhow!("injecting a fault: {e}"))?;
        stack.fakebucket.advance_clock(PAST_EXPIRY);
        stack.browser.reload().await?;
        // fakebucket has the refresh request and holds it.
        stack.wait_counters("the refresh request", |c| c.faults_served == 1).await?;
        stack.browser.click("sign-out").await?;
        stack.browser.wait_id("sign-in").await?;
        ensure!(refreshes(stack).1 == 0, "the refresh was answered before the sign-out");
        stack
            .wait_counters("the refresh answered", |c| c.token("refresh_token", "ok") == 1)
            .await?;
        // The relay passes the answer on within milliseconds; give the page
        // ample time to (wrongly) keep it.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let session = stack.browser.session_storage().await?;
        ensure!(
            !keys(&session).contains(&"oauth-dance:session"),
            "the refreshed session was stored after signing out"
        );
        let before = stack.counters().api_requests_total;
        stack.browser.reload().await?;
        stack.browser.wait_id("sign-in").await?;
        ensure!(!stack.browser.has("display-name").await?, "signed in again after a reload");
        ensure!(
            stack.counters().api_requests_total == before,
            "the API was called after signing out: {}",
            show(&stack.counters())
        );
        Ok(())
    })
    .await;
}

/// How long fakebucket holds the refresh in
/// [`sign_out_while_a_refresh_is_in_flight`]: long enough to sign out first.
const REFRESH_DELAY: Duration = Duration::from_secs(3);

/// Signing out removes the tokens from storage, and a reload
/// shows the landing page.
#[tokio::test]
#[ignore = "end-to-end: run by cargo xtask test"]
async fn sign_out() {
    scenario("sign_out", Mount::Root, async |stack| {
        stack.open_landing("").await?;
        stack.sign_in().await?;
        let (access, refresh) = stored_tokens(stack).await?;

        stack.browser.click("sign-out").await?;
        stack.browser.wait_id("sign-in").await?;
        let check_storage = async || -> Result<()> {
            let session = stack.browser.session_storage().await?;
            let local = stack.browser.local_storage().await?;
            for (key, value) in session.iter().chain(&local) {
                ensure!(
                    key != "oauth-dance:session",
                    "the session is still stored after signing out"
                );
                ensure!(
                    !value.contains(&access) && !value.contains(&refresh),
                    "a token is still in storage under {key:?} after signing out"
                );
            }
            let cookies = stack.browser.js("return document.cookie").await?;
            ensure!(cookies.as_str() == Some(""), "the page has cookies: {cookies}");
            Ok(())
        };
        check_storage().await?;

        stack.browser.reload().await?;
        stack.browser.wait_id("sign-in").await?;
        ensure!(
            !stack.browser.has("display-name").await?,
            "the profile is shown after signing out and reloading"
        );
        ensure!(!stack.browser.has("sign-out").await?, "\"Sign out\" is offered after signing out");
        check_storage().await?;
        let counters = stack.counters();
        ensure!(
            counters.token_requests_total == 1,
            "signing out made token requests: {}",
            show(&counters)
        );
        Ok(())
    })
    .await;
}

/// Past the 90-day lifetime of fakebucket's refresh tokens (and so past the
/// access token's too).
const PAST_REFRESH_EXPIRY: Duration = Duration::from_secs(91 * 24 * 3600);

/// A refused refresh (Bitbucket's `invalid_request` "Invalid refresh_token")
/// ends in a clear signed-out state: the landing page says the session
/// ended, the tokens are gone, and nothing is retried in a loop.
#[tokio::test]
#[ignore = "end-to-end: run by cargo xtask test"]
async fn a_refused_refresh_ends_signed_out() {
    scenario("a_refused_refresh_ends_signed_out", Mount::Root, async |stack| {
        stack.open_landing("").await?;
        stack.sign_in().await?;
        let (access, refresh) = stored_tokens(stack).await?;

        stack.fakebucket.advance_clock(PAST_REFRESH_EXPIRY);
        stack.browser.reload().await?;
        stack.browser.wait_problem("session-expired").await?;
        stack.browser.wait_id("sign-in").await?;
        ensure!(
            !stack.browser.has("sign-out").await?,
            "\"Sign out\" is offered after the session ended"
        );
        let session = stack.browser.session_storage().await?;
        ensure!(
            !session.iter().any(|(_, v)| v.contains(&access) || v.contains(&refresh)),
            "a token is still stored after the refresh was refused: keys {:?}",
            keys(&session)
        );
        // No loop: the one refused refresh, and no further calls.
        let settled = stack.counters();
        tokio::time::sleep(Duration::from_secs(3)).await;
        let later = stack.counters();
        let (ok, total) = refreshes(stack);
        ensure!(ok == 0 && total == 1, "expected one refused refresh: {}", show(&later));
        ensure!(
            later.token_requests_total == settled.token_requests_total
                && later.api_requests_total == settled.api_requests_total,
            "requests went on after the session ended: {} then {}",
            show(&settled),
            show(&later)
        );
        stack.screenshot("a_refused_refresh_ends_signed_out-landing").await?;
        Ok(())
    })
    .await;
}

/// A refresh that can't reach the relay is a problem with two ways out:
/// "Try again" (which refreshes once the relay is back) and "Sign out".
#[tokio::test]
#[ignore = "end-to-end: run by cargo xtask test"]
async fn a_refresh_without_the_relay_offers_retry_and_sign_out() {
    scenario("a_refresh_without_the_relay_offers_retry_and_sign_out", Mount::Root, async |stack| {
        stack.open_landing("").await?;
        stack.sign_in().await?;

        stack.relay.stop().await;
        stack.fakebucket.advance_clock(PAST_EXPIRY);
        stack.browser.reload().await?;
        stack.browser.wait_problem("relay-unreachable").await?;
        ensure!(stack.browser.has("retry").await?, "no \"Try again\" for a relay that is down");
        ensure!(stack.browser.has("sign-out").await?, "no \"Sign out\" while tokens are stored");
        stack.screenshot("a_refresh_without_the_relay-problem").await?;

        stack.relay.restart().await?;
        stack.browser.click("retry").await?;
        stack.wait_profile(ADA).await?;
        let (ok, total) = refreshes(stack);
        ensure!(
            ok == 1 && total == 1,
            "expected one refresh after the retry: {}",
            show(&stack.counters())
        );

        // And "Sign out" from the problem view ends the session.
        stack.relay.stop().await;
        stack.fakebucket.advance_clock(PAST_EXPIRY);
        stack.browser.reload().await?;
        stack.browser.wait_problem("relay-unreachable").await?;
        stack.browser.click("sign-out").await?;
        stack.browser.wait_id("sign-in").await?;
        let session = stack.browser.session_storage().await?;
        ensure!(
            !session.iter().any(|(k, _)| k == "oauth-dance:session"),
            "the session is still stored after signing out from the problem view"
        );
        Ok(())
    })
    .await;
}

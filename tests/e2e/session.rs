//! A signed-in session over time: token expiry (scenario 6), two tabs at
//! expiry (7) and signing out (10).

use crate::harness::{ADA, Mount, Stack, scenario, show};
use anyhow::{Context as _, Result, ensure};
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
    let (_, json) = session
        .iter()
        .find(|(k, _)| k == "oauth-dance:session")
        .with_context(|| format!("no oauth-dance:session in session storage; keys: {:?}", keys(&session)))?;
    let value: Value = serde_json::from_str(json).context("the stored session is not JSON")?;
    let access = value["access_token"].as_str().context("no access_token in the stored session")?.to_owned();
    let refresh = value["refresh_token"].as_str().context("no refresh_token in the stored session")?.to_owned();
    Ok((access, refresh))
}

fn keys(pairs: &[(String, String)]) -> Vec<&str> {
    pairs.iter().map(|(k, _)| k.as_str()).collect()
}

/// Scenario 6: once fakebucket's clock is past `expires_in`, the next API
/// call is refreshed silently with exactly one refresh request; a second
/// expiry refreshes again with the rotated token.
#[tokio::test]
#[ignore = "end-to-end: run by cargo xtask test"]
async fn token_expiry_refreshes_silently() {
    scenario("token_expiry_refreshes_silently", Mount::Root, async |stack| {
        stack.open_landing("").await?;
        stack.sign_in().await?;
        let (access_1, refresh_1) = stored_tokens(stack).await?;

        stack.fakebucket.advance_clock(PAST_EXPIRY);
        // Reloading makes the app call the API again with its stored token.
        stack.browser.reload().await?;
        stack.wait_profile(ADA).await?;
        ensure!(!stack.browser.has("problem").await?, "the refresh was not silent: a problem is shown");
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
        ensure!(counters.token("authorization_code", "ok") == 1, "signed in again instead of refreshing: {}", show(&counters));
        Ok(())
    })
    .await;
}

/// Scenario 7: two tabs share a session (the second opened from the first)
/// when the token expires: one refresh in total, and both tabs keep
/// working.
#[tokio::test]
#[ignore = "end-to-end: run by cargo xtask test"]
async fn two_tabs_one_refresh() {
    scenario("two_tabs_one_refresh", Mount::Root, async |stack| {
        stack.open_landing("").await?;
        stack.sign_in().await?;
        let client = &stack.browser.client;
        let first = client.window().await?;

        // A tab opened by the page starts with a copy of its session storage,
        // like a duplicated tab.
        let before: Vec<WindowHandle> = client.windows().await?;
        stack.browser.js(&format!("window.open({:?}, '_blank'); return true;", stack.spa().as_str())).await?;
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

        stack.fakebucket.advance_clock(PAST_EXPIRY);
        // Both tabs call the API with the expired token at about the same
        // time: reload one without waiting, then the other.
        stack.browser.js("setTimeout(() => location.reload(), 0); return true;").await?;
        client.switch_to_window(first.clone()).await?;
        stack.browser.js("setTimeout(() => location.reload(), 0); return true;").await?;
        for (name, tab) in [("first", &first), ("second", &second)] {
            client.switch_to_window(tab.clone()).await?;
            stack
                .browser
                .wait_js(
                    "return performance.getEntriesByType('navigation').length > 0 \
                     && document.readyState === 'complete' \
                     && !!document.getElementById('display-name');",
                    &format!("the {name} tab's profile after the expiry"),
                )
                .await?;
            stack.wait_profile(ADA).await?;
            ensure!(!stack.browser.has("problem").await?, "the {name} tab shows a problem after the expiry");
        }
        stack.wait_counters("one refresh", |c| c.token("refresh_token", "ok") == 1).await?;
        let (ok, total) = refreshes(stack);
        ensure!(ok == 1 && total == 1, "expected one refresh in total: {}", show(&stack.counters()));

        // Both tabs keep working: each shows the profile again after a reload,
        // with no further token request.
        for tab in [&second, &first] {
            client.switch_to_window(tab.clone()).await?;
            stack.browser.reload().await?;
            stack.wait_profile(ADA).await?;
        }
        let counters = stack.counters();
        ensure!(
            counters.token_requests_total == 2 && counters.api(401) <= 2,
            "the tabs did not both adopt the refreshed session: {}",
            show(&counters)
        );
        Ok(())
    })
    .await;
}

/// Scenario 10: signing out removes the tokens from storage, and a reload
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
                ensure!(key != "oauth-dance:session", "the session is still stored after signing out");
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
        ensure!(!stack.browser.has("display-name").await?, "the profile is shown after signing out and reloading");
        ensure!(!stack.browser.has("sign-out").await?, "\"Sign out\" is offered after signing out");
        check_storage().await?;
        let counters = stack.counters();
        ensure!(counters.token_requests_total == 1, "signing out made token requests: {}", show(&counters));
        Ok(())
    })
    .await;
}

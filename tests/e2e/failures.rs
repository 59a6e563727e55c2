//! Things breaking on the way: the relay down during the return, Bitbucket's
//! API answering 500 or 429 to the profile call, and a consumer without the
//! email permission.

use crate::harness::{
    ADA, DESKTOP, Mount, Stack, ensure_clean_address, scenario, scenario_with, show,
};
use anyhow::{Result, ensure};
use fakebucket::{Fault, FaultTarget};

/// With the relay down when the browser comes back, a clear
/// error with "Try again"; once the relay is back on the same port, trying
/// again signs in.
#[tokio::test]
#[ignore = "end-to-end: run by cargo xtask test"]
async fn relay_down_then_retry() {
    scenario("relay_down_then_retry", Mount::Root, async |stack| {
        stack.open_landing("").await?;
        stack.go_to_consent().await?;
        stack.relay.stop().await;
        ensure!(stack.relay.is_down().await, "the relay still accepts connections after stopping");

        stack.grant().await?;
        let title = stack.browser.wait_problem("relay-unreachable").await?;
        ensure!(
            title.to_lowercase().contains("relay"),
            "the error does not say what failed: {title:?}"
        );
        stack.browser.wait_id("retry").await?;
        ensure_clean_address(&stack.browser.url().await?)?;
        let counters = stack.counters();
        ensure!(
            counters.token_requests_total == 0,
            "a token request got through a stopped relay: {}",
            show(&counters)
        );
        stack.screenshot("relay_down_then_retry-error").await?;

        stack.relay.restart().await?;
        stack.browser.click("retry").await?;
        stack.wait_profile(ADA).await?;
        ensure_clean_address(&stack.browser.url().await?)?;
        let counters = stack.counters();
        ensure!(
            counters.token("authorization_code", "ok") == 1 && counters.token_requests_total == 1,
            "retrying did not exchange the code exactly once: {}",
            show(&counters)
        );
        Ok(())
    })
    .await;
}

/// Signs in with the profile calls failing with `status`; expects the
/// problem view of `kind`, then "Try again" loads the profile.
async fn api_fails_then_retry(stack: &mut Stack, status: u16, kind: &str) -> Result<()> {
    stack.open_landing("").await?;
    stack.go_to_consent().await?;
    // The profile and the email addresses are fetched together: both fail.
    stack
        .fakebucket
        .inject_fault(Fault::status(FaultTarget::Api, status).times(2))
        .map_err(|e| anyhow::anyhow!("injecting a fault: {e}"))?;
    stack.grant().await?;
    let title = stack.browser.wait_problem(kind).await?;
    ensure!(!title.is_empty(), "the {status} problem view has no title");
    stack.browser.wait_id("retry").await?;
    ensure_clean_address(&stack.browser.url().await?)?;
    let counters = stack.counters();
    ensure!(counters.api(status) >= 1, "fakebucket did not answer {status}: {}", show(&counters));
    ensure!(
        counters.token("authorization_code", "ok") == 1,
        "the sign-in itself failed: {}",
        show(&counters)
    );
    stack.screenshot(&format!("api_{status}_then_retry-error")).await?;

    // Whatever of the fault the first attempt did not use is dropped, so the
    // retry meets a healthy API.
    stack.fakebucket.clear_faults();
    stack.browser.click("retry").await?;
    stack.wait_profile(ADA).await?;
    stack.browser.wait_text("emails", "ada@example.com").await?;
    let counters = stack.counters();
    ensure!(
        counters.token_requests_total == 1,
        "retrying the profile made token requests (signed in again?): {}",
        show(&counters)
    );
    Ok(())
}

/// The API answers 500: "Bitbucket is having trouble", and
/// "Try again" works.
#[tokio::test]
#[ignore = "end-to-end: run by cargo xtask test"]
async fn api_500_then_retry() {
    scenario("api_500_then_retry", Mount::Root, async |stack| {
        api_fails_then_retry(stack, 500, "api-server").await
    })
    .await;
}

/// The API answers 429: "slow down", and "Try again" works.
#[tokio::test]
#[ignore = "end-to-end: run by cargo xtask test"]
async fn api_429_then_retry() {
    scenario("api_429_then_retry", Mount::Root, async |stack| {
        api_fails_then_retry(stack, 429, "api-rate-limited").await
    })
    .await;
}

/// A consumer without the "Account: Email" permission: the profile still
/// shows, and the emails section says which permission to add, with
/// "Sign in again" as the way out.
#[tokio::test]
#[ignore = "end-to-end: run by cargo xtask test"]
async fn a_consumer_without_the_email_permission() {
    let account_only =
        |consumer: &mut fakebucket::Consumer| consumer.scopes = vec!["account".into()];
    scenario_with(
        "a_consumer_without_the_email_permission",
        Mount::Root,
        account_only,
        async |stack| {
            stack.open_landing("").await?;
            stack.sign_in().await?;
            stack.browser.wait_id("emails-problem").await?;
            let explanation = stack.browser.text("emails-problem-explanation").await?;
            ensure!(
                explanation.contains("Account: Email"),
                "the permission is not named: {explanation:?}"
            );
            ensure!(
                stack.browser.has("emails-problem-sign-in-again").await?,
                "no way out in the emails notice"
            );
            ensure!(
                !stack.browser.has("problem").await?,
                "the whole page failed for want of emails"
            );
            let counters = stack.counters();
            ensure!(
                counters.api(403) == 1,
                "expected one 403 from /2.0/user/emails: {}",
                show(&counters)
            );
            // The whole page, emails notice included.
            let height = stack.browser.js("return document.documentElement.scrollHeight").await?;
            let height = height.as_u64().and_then(|h| u32::try_from(h).ok()).unwrap_or(DESKTOP.1);
            stack.browser.resize((DESKTOP.0, height.max(DESKTOP.1))).await?;
            stack.screenshot("a_consumer_without_the_email_permission-profile").await?;
            stack.browser.resize(DESKTOP).await
        },
    )
    .await;
}

//! Things breaking on the way: the relay down during the return (scenario
//! 8), and Bitbucket's API answering 500 or 429 to the profile call (9).

use crate::harness::{ADA, Mount, Stack, ensure_clean_address, scenario, show};
use anyhow::{Result, ensure};
use fakebucket::{Fault, FaultTarget};

/// Scenario 8: with the relay down when the browser comes back, a clear
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

/// Scenario 9a: the API answers 500: "Bitbucket is having trouble", and
/// "Try again" works.
#[tokio::test]
#[ignore = "end-to-end: run by cargo xtask test"]
async fn api_500_then_retry() {
    scenario("api_500_then_retry", Mount::Root, async |stack| {
        api_fails_then_retry(stack, 500, "api-server").await
    })
    .await;
}

/// Scenario 9b: the API answers 429: "slow down", and "Try again" works.
#[tokio::test]
#[ignore = "end-to-end: run by cargo xtask test"]
async fn api_429_then_retry() {
    scenario("api_429_then_retry", Mount::Root, async |stack| {
        api_fails_then_retry(stack, 429, "api-rate-limited").await
    })
    .await;
}

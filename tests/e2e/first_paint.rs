//! The page before the app runs: `index.html` carries the first screens,
//! rendered at build time from the app's views, and `assets/screen.js`
//! picks one before the first paint.

use crate::harness::{Mount, scenario};
use anyhow::{Context as _, Result, ensure};
use serde_json::{Value, json};

/// Records, at `DOMContentLoaded` (before the app's module script has even
/// started loading the wasm), which screen a person would see.
const RECORD_FIRST_SCREEN: &str = "document.addEventListener('DOMContentLoaded', () => {
  const shown = (id) => {
    const element = document.getElementById(id);
    return !!element && getComputedStyle(element).display !== 'none'
      && element.getBoundingClientRect().height > 0;
  };
  sessionStorage.setItem('e2e:first-screen', JSON.stringify({
    landing: shown('landing'), signing_in: shown('loading'),
    text: document.getElementById('loading')?.textContent ?? '',
    app_started: document.documentElement.hasAttribute('data-app'),
  }));
});";

/// With JavaScript off, the landing page is all there: headline, text and
/// the sign-in button, from the HTML alone.
#[tokio::test]
#[ignore = "end-to-end: run by cargo xtask test"]
async fn the_landing_paints_from_the_html_alone() {
    scenario("the_landing_paints_from_the_html_alone", Mount::Root, async |stack| {
        let browser = &stack.browser;
        browser.cdp("Emulation.setScriptExecutionDisabled", json!({ "value": true })).await?;
        browser.goto(stack.spa()).await?;
        let title = browser.wait_built_in("landing-title").await?;
        ensure!(title.is_displayed().await?, "the headline is hidden");
        ensure!(title.text().await? == "See your Bitbucket profile", "the headline");
        let button = browser.wait_built_in("sign-in").await?;
        ensure!(button.is_displayed().await?, "the sign-in button is hidden");
        ensure!(button.text().await?.contains("Sign in with Bitbucket"), "the button's label");
        let loading = browser.wait_built_in("loading").await?;
        ensure!(!loading.is_displayed().await?, "\"Signing you in…\" shows on the landing");
        stack.screenshot("the_landing_paints_from_the_html_alone").await?;
        // (The wasm is still preloaded: `<link rel=preload>` needs no script.)
        Ok(())
    })
    .await;
}

/// The first paint is the right screen: the landing page on a first visit,
/// and "Signing you in…" (never the landing page) on a return from
/// Bitbucket, already at `DOMContentLoaded`, before the app runs.
#[tokio::test]
#[ignore = "end-to-end: run by cargo xtask test"]
async fn the_first_screen_is_right_before_the_app_runs() {
    scenario("the_first_screen_is_right_before_the_app_runs", Mount::Root, async |stack| {
        let browser = &stack.browser;
        browser
            .cdp("Page.addScriptToEvaluateOnNewDocument", json!({ "source": RECORD_FIRST_SCREEN }))
            .await?;
        let first_screen = async |url: &str| -> Result<Value> {
            browser.goto(&url.parse()?).await?;
            let recorded = browser
                .js("return sessionStorage.getItem('e2e:first-screen');")
                .await?
                .as_str()
                .context("nothing recorded at DOMContentLoaded")?
                .to_owned();
            Ok(serde_json::from_str(&recorded)?)
        };
        let landing = first_screen(stack.spa().as_str()).await?;
        ensure!(landing["landing"] == true && landing["signing_in"] == false, "{landing}");
        ensure!(landing["app_started"] == false, "the app ran first: {landing}");
        // A return from Bitbucket (a made-up code: the app then explains
        // that this sign-in was not started here; what matters is the
        // screen before that).
        let back = stack.spa().join("?code=made-up&state=made-up")?;
        let returning = first_screen(back.as_str()).await?;
        ensure!(returning["landing"] == false, "the landing shows on the way back: {returning}");
        ensure!(returning["signing_in"] == true, "{returning}");
        ensure!(returning["text"] == "Signing you in…", "{returning}");
        ensure!(returning["app_started"] == false, "the app ran first: {returning}");
        Ok(())
    })
    .await;
}

/// "Sign in" pressed before the app runs is not lost: the app, once it
/// runs, goes on to Bitbucket. The network is slowed so that the wasm is
/// still on its way when the button is pressed.
#[tokio::test]
#[ignore = "end-to-end: run by cargo xtask test"]
async fn a_sign_in_click_before_the_app_runs_is_followed() {
    scenario("a_sign_in_click_before_the_app_runs_is_followed", Mount::Root, async |stack| {
        let browser = &stack.browser;
        let slow = json!({
            "offline": false, "latency": 50,
            // ~140 KB of gzipped wasm: about seven seconds.
            "downloadThroughput": 20_000, "uploadThroughput": 20_000,
        });
        browser.cdp("Network.enable", json!({})).await?;
        browser.cdp("Network.emulateNetworkConditions", slow).await?;
        browser.goto(stack.spa()).await?;
        browser.wait_built_in("sign-in").await?.click().await?;
        let state = browser
            .js("return [document.documentElement.getAttribute('data-queued'),
                         document.documentElement.hasAttribute('data-app')];")
            .await?;
        ensure!(state == json!(["sign-in", false]), "the click was not kept for the app: {state}");
        ensure!(browser.url().await?.as_str() == stack.spa().as_str(), "the click navigated");
        let fast = json!({
            "offline": false, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1,
        });
        browser.cdp("Network.emulateNetworkConditions", fast).await?;
        // The app starts and follows the click to Bitbucket's consent page.
        browser.wait_id("grant").await?;
        let url = browser.url().await?;
        ensure!(
            url.as_str().starts_with(stack.fakebucket.authorize_url().as_str()),
            "not at the consent page: {url}"
        );
        Ok(())
    })
    .await;
}

//! The page before the app runs: `index.html` carries the first screens,
//! rendered at build time from the app's views, and `assets/screen.js`
//! picks one before the first paint.

use crate::harness::{Browser, Mount, scenario};
use anyhow::{Context as _, Result, ensure};
use serde_json::{Value, json};

/// Records, at the first contentful paint (`assets/screen.js` asks for the
/// app's files only after it), which screen a person saw first.
const RECORD_FIRST_SCREEN: &str = "new PerformanceObserver((list, observer) => {
  if (!list.getEntriesByName('first-contentful-paint').length) return;
  observer.disconnect();
  const shown = (id) => {
    const element = document.getElementById(id);
    return !!element && getComputedStyle(element).display !== 'none'
      && element.getBoundingClientRect().height > 0;
  };
  sessionStorage.setItem('e2e:first-screen', JSON.stringify({
    landing: shown('landing'), signing_in: shown('loading'),
    text: document.getElementById('loading')?.textContent ?? '',
    app_started: document.documentElement.hasAttribute('data-app'),
    app_requested: performance.getEntriesByType('resource').some((e) => e.name.endsWith('.wasm')),
  }));
}).observe({ type: 'paint', buffered: true });";

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
/// Bitbucket, at the first contentful paint, before the app runs. Nothing
/// of the app (the wasm) has been asked for by then: it never competes with
/// that paint.
#[tokio::test]
#[ignore = "end-to-end: run by cargo xtask test"]
async fn the_first_screen_is_right_before_the_app_runs() {
    scenario("the_first_screen_is_right_before_the_app_runs", Mount::Root, async |stack| {
        let browser = &stack.browser;
        browser
            .cdp("Page.addScriptToEvaluateOnNewDocument", json!({ "source": RECORD_FIRST_SCREEN }))
            .await?;
        let first_screen = async |url: &str| -> Result<Value> {
            // (sessionStorage outlives the navigation: forget the last record.)
            browser.js("sessionStorage.removeItem('e2e:first-screen');").await?;
            browser.goto(&url.parse()?).await?;
            browser
                .wait_js(
                    "return sessionStorage.getItem('e2e:first-screen') !== null;",
                    "the first contentful paint",
                )
                .await?;
            let recorded = browser
                .js("return sessionStorage.getItem('e2e:first-screen');")
                .await?
                .as_str()
                .context("nothing recorded at the first paint")?
                .to_owned();
            Ok(serde_json::from_str(&recorded)?)
        };
        let landing = first_screen(stack.spa().as_str()).await?;
        ensure!(landing["landing"] == true && landing["signing_in"] == false, "{landing}");
        ensure!(landing["app_started"] == false, "the app ran first: {landing}");
        ensure!(landing["app_requested"] == false, "the wasm was asked for first: {landing}");
        // A return from Bitbucket (a made-up code: the app then explains
        // that this sign-in was not started here; what matters is the
        // screen before that).
        let back = stack.spa().join("?code=made-up&state=made-up")?;
        let returning = first_screen(back.as_str()).await?;
        ensure!(returning["landing"] == false, "the landing shows on the way back: {returning}");
        ensure!(returning["signing_in"] == true, "{returning}");
        ensure!(returning["text"] == "Signing you in…", "{returning}");
        ensure!(returning["app_started"] == false, "the app ran first: {returning}");
        ensure!(returning["app_requested"] == false, "the wasm was asked for first: {returning}");
        Ok(())
    })
    .await;
}

/// Keyboard focus on the built-in "Sign in" survives the app's take-over:
/// the app's own "Sign in" has it afterwards, so a keyboard user who tabbed
/// there while the wasm loaded presses Enter on the right button. The
/// network is slowed so that the wasm is still on its way at the Tab.
#[tokio::test]
#[ignore = "end-to-end: run by cargo xtask test"]
async fn focus_survives_the_take_over() {
    scenario("focus_survives_the_take_over", Mount::Root, async |stack| {
        let browser = &stack.browser;
        open_on_a_slow_network(browser, stack.spa()).await?;
        let button = browser.wait_built_in("sign-in").await?;
        // Focused from the page, as Tab would: the built-in copy.
        browser.js("document.querySelector('.prerendered #sign-in').focus();").await?;
        let before = browser
            .js("return [document.activeElement.id, !!document.activeElement.closest('.prerendered'),
                         document.documentElement.hasAttribute('data-app')];")
            .await?;
        ensure!(before == json!(["sign-in", true, false]), "not focused before the app: {before}");
        drop(button);
        browser.cdp("Network.emulateNetworkConditions", fast_network()).await?;
        browser.wait_js("return document.documentElement.hasAttribute('data-app');", "the app").await?;
        let after = browser
            .js("return [document.activeElement.id, !!document.activeElement.closest('.prerendered'),
                         document.activeElement.isConnected];")
            .await?;
        ensure!(after == json!(["sign-in", false, true]), "focus lost in the take-over: {after}");
        Ok(())
    })
    .await;
}

/// Opens `url` on a network slow enough that the wasm (about 140 KB
/// gzipped) takes about seven seconds, so the page waits for the app;
/// [`fast_network`] lifts it.
async fn open_on_a_slow_network(browser: &Browser, url: &url::Url) -> Result<()> {
    let slow = json!({
        "offline": false, "latency": 50, "downloadThroughput": 20_000, "uploadThroughput": 20_000,
    });
    browser.cdp("Network.enable", json!({})).await?;
    browser.cdp("Network.emulateNetworkConditions", slow).await?;
    browser.goto(url).await
}

/// No throttling.
fn fast_network() -> Value {
    json!({ "offline": false, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1 })
}

/// "Sign in" pressed before the app runs is not lost: the app, once it
/// runs, goes on to Bitbucket. The network is slowed so that the wasm is
/// still on its way when the button is pressed.
#[tokio::test]
#[ignore = "end-to-end: run by cargo xtask test"]
async fn a_sign_in_click_before_the_app_runs_is_followed() {
    scenario("a_sign_in_click_before_the_app_runs_is_followed", Mount::Root, async |stack| {
        let browser = &stack.browser;
        open_on_a_slow_network(browser, stack.spa()).await?;
        browser.wait_built_in("sign-in").await?.click().await?;
        let state = browser
            .js("return [document.documentElement.getAttribute('data-queued'),
                         document.documentElement.hasAttribute('data-app')];")
            .await?;
        ensure!(state == json!(["sign-in", false]), "the click was not kept for the app: {state}");
        ensure!(browser.url().await?.as_str() == stack.spa().as_str(), "the click navigated");
        browser.cdp("Network.emulateNetworkConditions", fast_network()).await?;
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

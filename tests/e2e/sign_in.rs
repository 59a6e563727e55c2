//! Signing in: the happy path, cancelling at the consent page, a deep link,
//! a sub-path deployment, keyboard only, no framing and no string-taking DOM
//! sinks.

use crate::harness::{
    ADA, DESKTOP, Mount, PHONE, Stack, ensure_clean_address, query_pairs, scenario, show,
};
use anyhow::{Context as _, Result, ensure};
use fantoccini::Locator;
use fantoccini::key::Key;
use url::Url;

/// Grace Hopper's account id in fakebucket's fixtures.
const GRACE_ID: &str = "60a7b8c9d0e1f2a3b4c5d6e7";

/// Checks the authorization request the SPA sent: the authorization code
/// flow with PKCE S256, a `state`, and the SPA's base as redirect URI.
fn ensure_authorize_request(url: &Url, stack: &Stack) -> Result<()> {
    let pairs = query_pairs(url);
    let get = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    ensure!(get("response_type") == Some("code"), "response_type is not code: {url}");
    ensure!(
        get("client_id") == Some(fakebucket::DEMO_KEY),
        "client_id is not the demo consumer's key: {url}"
    );
    ensure!(get("code_challenge_method") == Some("S256"), "PKCE is not S256: {url}");
    ensure!(
        get("code_challenge").is_some_and(|c| c.len() == 43),
        "no 43-character S256 code_challenge: {url}"
    );
    ensure!(get("state").is_some_and(|s| s.len() >= 22), "no state of 128 bits or more: {url}");
    ensure!(
        get("redirect_uri") == Some(stack.spa().as_str()),
        "redirect_uri is not the SPA's base {}: {url}",
        stack.spa()
    );
    Ok(())
}

/// Takes the desktop and phone screenshots of one step of the happy path.
async fn both_widths(stack: &Stack, step: &str) -> Result<()> {
    stack.screenshot(&format!("happy-{step}-desktop")).await?;
    stack.browser.resize(PHONE).await?;
    stack.screenshot(&format!("happy-{step}-phone")).await?;
    stack.browser.resize(DESKTOP).await
}

/// Fails unless exactly one code exchange, and nothing else, reached the
/// token endpoint.
fn ensure_one_exchange(stack: &Stack) -> Result<()> {
    let counters = stack.counters();
    ensure!(
        counters.token("authorization_code", "ok") == 1 && counters.token_requests_total == 1,
        "expected exactly one successful code exchange and no other token request: {}",
        show(&counters)
    );
    Ok(())
}

/// Landing, sign in, consent, and a profile with the user's
/// display name, avatar and primary email; the address bar holds no code
/// or state.
#[tokio::test]
#[ignore = "end-to-end: run by cargo xtask test"]
async fn happy_path() {
    scenario("happy_path", Mount::Root, async |stack| {
        stack.open_landing("").await?;
        let title = stack.browser.text("landing-title").await?;
        ensure!(!title.is_empty(), "the landing page has no title");
        ensure!(!stack.browser.has("sign-out").await?, "a signed-out page offers to sign out");
        both_widths(stack, "landing").await?;

        let authorize = stack.go_to_consent().await?;
        ensure_authorize_request(&authorize, stack)?;
        let app = stack.browser.text("app-name").await?;
        ensure!(app == "oauth-dance e2e", "the consent page names the application {app:?}");
        both_widths(stack, "consent").await?;

        stack.grant().await?;
        stack.wait_profile(ADA).await?;
        let avatar = stack.browser.wait_id("avatar").await?;
        ensure!(avatar.tag_name().await?.eq_ignore_ascii_case("img"), "the avatar is not an image");
        let src = avatar.attr("src").await?.unwrap_or_default();
        let avatars = stack.fakebucket.url().join("avatars/")?;
        ensure!(src.starts_with(avatars.as_str()), "the avatar comes from {src:?}, not fakebucket's {avatars}");
        stack
            .browser
            .wait_js(
                "const a = document.getElementById('avatar'); return a.complete && a.naturalWidth > 0;",
                "the avatar image to load",
            )
            .await?;
        let primary = stack
            .browser
            .wait_xpath(
                "//*[@id='emails']//li[contains(., 'ada@example.com')][contains(., 'Primary')]",
                "ada@example.com marked Primary in #emails",
            )
            .await?;
        ensure!(primary.is_displayed().await?, "the primary email is not visible");
        ensure!(stack.browser.has("sign-out").await?, "the profile offers no way to sign out");

        let here = stack.browser.url().await?;
        ensure_clean_address(&here)?;
        ensure!(here == *stack.spa(), "after signing in the address is {here}, not {}", stack.spa());
        // No request left this page while the code was in its address:
        // every fetch started after the app cleaned it (docs/security.md). The
        // one exception is loading the page itself: assets/screen.js fetches
        // the app's own wasm file (same origin, and the page sends no
        // referrer), as it must before the app can clean anything.
        let order = stack
            .browser
            .js("const cleaned = performance.getEntriesByName('dance:callback-start')[0]; \
                 const wasm = new URL(document.getElementById('dance-app').dataset.wasm, \
                   document.baseURI).href; \
                 const fetches = performance.getEntriesByType('resource') \
                   .filter(e => e.initiatorType === 'fetch' && e.name !== wasm) \
                   .map(e => [e.name, e.startTime]); \
                 return { cleaned: cleaned ? cleaned.startTime : null, fetches };")
            .await?;
        let cleaned = order["cleaned"].as_f64().context("no dance:callback-start mark")?;
        let fetches = order["fetches"].as_array().context("no resource timings")?;
        ensure!(!fetches.is_empty(), "no fetch was timed: {order}");
        for fetch in fetches {
            let started = fetch[1].as_f64().unwrap_or(f64::NEG_INFINITY);
            ensure!(
                started >= cleaned,
                "{} was fetched at {started} ms, before the address was cleaned at {cleaned} ms",
                fetch[0]
            );
        }

        ensure_one_exchange(stack)?;
        let counters = stack.counters();
        ensure!(counters.authorize("granted") == 1, "fakebucket did not record one grant: {}", show(&counters));
        ensure!(
            counters.api(200) >= 2 && counters.api_requests_total == counters.api(200),
            "the profile calls did not all succeed: {}",
            show(&counters)
        );

        let session = stack.browser.session_storage().await?;
        ensure!(
            !session.iter().any(|(k, _)| k == "oauth-dance:flow"),
            "the sign-in attempt (state, verifier) is still in session storage after use"
        );
        let local = stack.browser.local_storage().await?;
        ensure!(local.is_empty(), "the app wrote to localStorage: {local:?}");
        both_widths(stack, "profile").await?;
        // The whole profile page, emails included, for the documentation.
        for (label, size) in [("desktop", DESKTOP), ("phone", PHONE)] {
            stack.browser.resize(size).await?;
            let height = stack.browser.js("return document.documentElement.scrollHeight").await?;
            let height = height.as_u64().and_then(|h| u32::try_from(h).ok()).unwrap_or(size.1).max(size.1);
            stack.browser.resize((size.0, height)).await?;
            stack.screenshot(&format!("happy-profile-{label}-full")).await?;
        }
        stack.browser.resize(DESKTOP).await
    })
    .await;
}

/// "Cancel" on the consent page gives a clear "access was
/// denied" view; signing in again from there works.
#[tokio::test]
#[ignore = "end-to-end: run by cargo xtask test"]
async fn cancel_then_sign_in_again() {
    scenario("cancel_then_sign_in_again", Mount::Root, async |stack| {
        stack.open_landing("").await?;
        stack.go_to_consent().await?;
        stack.browser.click("cancel").await?;
        let title = stack.browser.wait_problem("access-denied").await?;
        ensure!(title.to_lowercase().contains("allow"), "the denial's title is unclear: {title:?}");
        ensure_clean_address(&stack.browser.url().await?)?;
        let counters = stack.counters();
        ensure!(
            counters.authorize("denied") == 1,
            "fakebucket recorded no denial: {}",
            show(&counters)
        );
        ensure!(
            counters.token_requests_total == 0,
            "a denial led to a token request: {}",
            show(&counters)
        );
        stack.screenshot("cancel_then_sign_in_again-denied").await?;

        stack.browser.click("sign-in-again").await?;
        stack.browser.wait_id("grant").await?;
        stack.grant().await?;
        stack.wait_profile(ADA).await?;
        ensure_clean_address(&stack.browser.url().await?)?;
        ensure_one_exchange(stack)
    })
    .await;
}

/// Starting from a deep link, `/some/page?x=1`, the app comes
/// back there after signing in (here as another user, Grace).
#[tokio::test]
#[ignore = "end-to-end: run by cargo xtask test"]
async fn deep_link() {
    scenario("deep_link", Mount::Root, async |stack| {
        stack.open_landing("some/page?x=1").await?;
        let authorize = stack.go_to_consent().await?;
        ensure_authorize_request(&authorize, stack)?;
        let user = stack.browser.wait_id("user").await?;
        user.select_by_value(GRACE_ID).await.context("choosing Grace on the consent page")?;
        stack.grant().await?;
        stack.wait_profile("Grace Hopper").await?;
        let here = stack.browser.url().await?;
        ensure_clean_address(&here)?;
        ensure!(
            here.path() == "/some/page" && here.query() == Some("x=1"),
            "after signing in the app is at {here}, not back at /some/page?x=1"
        );
        ensure_one_exchange(stack)
    })
    .await;
}

/// Served under a sub-path (`/repo/`) as on GitHub Pages, the
/// happy path still works and the redirect URI is the sub-path.
#[tokio::test]
#[ignore = "end-to-end: run by cargo xtask test"]
async fn under_a_sub_path() {
    scenario("under_a_sub_path", Mount::SubPath, async |stack| {
        ensure!(
            stack.spa().path() == "/repo/",
            "the stack is not mounted under /repo/: {}",
            stack.spa()
        );
        stack.open_landing("").await?;
        let authorize = stack.go_to_consent().await?;
        ensure_authorize_request(&authorize, stack)?;
        stack.grant().await?;
        stack.wait_profile(ADA).await?;
        let here = stack.browser.url().await?;
        ensure_clean_address(&here)?;
        ensure!(
            here == *stack.spa(),
            "after signing in the address is {here}, not {}",
            stack.spa()
        );
        let outside: Vec<String> =
            stack.site.requests().into_iter().filter(|r| !r.starts_with("/repo/")).collect();
        ensure!(outside.is_empty(), "the app requested files outside /repo/: {outside:?}");
        ensure_one_exchange(stack)
    })
    .await;
}

/// The happy path with the keyboard only (Tab and Enter), and
/// signing out the same way.
#[tokio::test]
#[ignore = "end-to-end: run by cargo xtask test"]
async fn keyboard_only() {
    scenario("keyboard_only", Mount::Root, async |stack| {
        stack.open_landing("").await?;
        stack.browser.tab_to("sign-in", 15).await?;
        stack.browser.press(Key::Enter).await?;
        stack.browser.wait_id("grant").await?;
        stack.browser.tab_to("grant", 15).await?;
        stack.screenshot("keyboard_only-consent-focus").await?;
        stack.browser.press(Key::Enter).await?;
        stack.wait_profile(ADA).await?;
        ensure_clean_address(&stack.browser.url().await?)?;
        ensure_one_exchange(stack)?;

        stack.browser.tab_to("sign-out", 25).await?;
        stack.browser.press(Key::Enter).await?;
        stack.browser.wait_id("sign-in").await?;
        let signed_in = stack.browser.client.find_all(Locator::Id("display-name")).await?;
        ensure!(signed_in.is_empty(), "the profile is still shown after signing out");
        Ok(())
    })
    .await;
}

/// [`deep_link`] under a sub-path, the GitHub Pages way: the deep link has no
/// file, so the static host answers with `404.html` and status 404; that page
/// must still start the app, and after signing in the person is back at the
/// deep link.
#[tokio::test]
#[ignore = "end-to-end: run by cargo xtask test"]
async fn deep_link_under_a_sub_path() {
    scenario("deep_link_under_a_sub_path", Mount::SubPath, async |stack| {
        stack.open_landing("some/page?x=1").await?;
        let not_found: Vec<String> = stack
            .site
            .requests()
            .into_iter()
            .filter(|r| r.starts_with("/repo/some/page"))
            .collect();
        ensure!(!not_found.is_empty(), "the deep link was never requested: {not_found:?}");
        let authorize = stack.go_to_consent().await?;
        ensure_authorize_request(&authorize, stack)?;
        stack.grant().await?;
        stack.wait_profile(ADA).await?;
        let here = stack.browser.url().await?;
        ensure_clean_address(&here)?;
        ensure!(
            here.path() == "/repo/some/page" && here.query() == Some("x=1"),
            "after signing in the app is at {here}, not back at /repo/some/page?x=1"
        );
        ensure_one_exchange(stack)
    })
    .await;
}

/// Framed by another page (clickjacking the sign-in or sign-out button),
/// the app does not start: it says why in plain words, shows no button and
/// makes no request of its own.
#[tokio::test]
#[ignore = "end-to-end: run by cargo xtask test"]
async fn the_app_does_not_run_in_a_frame() {
    scenario("the_app_does_not_run_in_a_frame", Mount::Root, async |stack| {
        let client = &stack.browser.client;
        // Another page on loopback (Chromium keeps public pages, about:blank
        // included, from framing loopback ones): the relay's plain-text
        // health page, which sets no policy of its own.
        stack.browser.goto(&stack.relay.token_url().join("healthz")?).await?;
        let script = format!(
            "const frame = document.createElement('iframe');
             frame.src = {:?}; frame.width = 800; frame.height = 400;
             document.body.append(frame); return true;",
            stack.spa().as_str()
        );
        stack.browser.js(&script).await?;
        client.enter_frame(0).await?;
        let note = stack.browser.wait_id("framed").await?.text().await?;
        ensure!(note.contains("tab of its own"), "unclear: {note}");
        // Long enough for a started app to have rendered its landing page.
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        ensure!(!stack.browser.has("sign-in").await?, "the framed app offers to sign in");
        client.enter_parent_frame().await?;
        let requests = stack.site.requests();
        ensure!(
            !requests.iter().any(|r| r.contains("config.json")),
            "the framed app asked for its settings: {requests:?}"
        );
        ensure!(stack.counters().token_requests_total == 0, "a token request was made");
        Ok(())
    })
    .await;
}

/// The page runs under Trusted Types with no policy: a DOM sink that would
/// parse a string as markup or script (innerHTML, a script's src, eval)
/// throws instead, so an injected string cannot become code. The app itself
/// needs none of them: it renders, and signs in, under that policy (every
/// other scenario).
#[tokio::test]
#[ignore = "end-to-end: run by cargo xtask test"]
async fn dom_sinks_take_no_strings() {
    scenario("dom_sinks_take_no_strings", Mount::Root, async |stack| {
        stack.browser.goto(stack.spa()).await?;
        stack.browser.wait_id("sign-in").await?;
        let outcome = stack
            .browser
            .js("const outcome = {};
                 const attempt = (name, sink) => {
                   try { sink(); outcome[name] = 'allowed'; } catch (e) { outcome[name] = e.name; }
                 };
                 attempt('innerHTML', () => {
                   document.createElement('div').innerHTML = '<img src=x>';
                 });
                 attempt('script', () => {
                   document.createElement('script').src = 'data:text/javascript,1';
                 });
                 attempt('policy', () => trustedTypes.createPolicy('mine', {}));
                 return outcome;")
            .await?;
        for sink in ["innerHTML", "script", "policy"] {
            ensure!(
                outcome[sink] == "TypeError",
                "{sink} was not refused under the page's policy: {outcome}"
            );
        }
        Ok(())
    })
    .await;
}

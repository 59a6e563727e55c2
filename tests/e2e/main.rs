//! End-to-end tests: a real headless Chromium, driven over ChromeDriver with
//! fantoccini, goes through the real pages of the trunk-built SPA, the real
//! relay and fakebucket (the Bitbucket emulator), the way a person would.
//!
//! Every test is `#[ignore]`d because it needs a built SPA and a browser;
//! `cargo xtask test` builds both dists and runs
//! `cargo test -p oauth-dance --test e2e -- --include-ignored` with
//! `DANCE_E2E_DIST` (and `DANCE_E2E_DIST_SUBPATH`, a build made with
//! `--public-url /repo/`) set. `DANCE_E2E_BROWSERS` caps how many browsers
//! run at once (default 2).
//!
//! Each test asserts on what a person sees (texts of elements with stable
//! ids) and on fakebucket's counters (what really crossed the wire), and
//! leaves a screenshot of its last screen in `target/e2e/<test>.png`.
//!
//! The scenarios, by module, each with what it proves:
//!
//! [`sign_in`], signing in:
//! - `happy_path`: landing, "Sign in", consent, and a profile with the
//!   user's name, avatar and primary email; the authorization request is the
//!   code flow with PKCE S256 and a `state`; exactly one code exchange; no
//!   request leaves the page while the code is in its address, and the
//!   address ends clean.
//! - `cancel_then_sign_in_again`: "Cancel" on the consent page gives a clear
//!   "access was denied" view, and signing in again from there works.
//! - `deep_link`: signing in from `/some/page?x=1` comes back there.
//! - `under_a_sub_path`: served under `/repo/`, as on GitHub Pages, the
//!   happy path works and the redirect URI is the sub-path.
//! - `deep_link_under_a_sub_path`: a deep link under the sub-path, answered
//!   with the `404.html` a GitHub Pages site serves, still starts the app
//!   and comes back to the deep link after signing in.
//! - `keyboard_only`: signing in and out with Tab and Enter alone.
//! - `the_app_does_not_run_in_a_frame`: framed by another page, the app
//!   says why in plain words, shows no button and sends no request.
//! - `dom_sinks_take_no_strings`: under Trusted Types, a DOM sink fed a
//!   string throws, and the app still renders.
//!
//! [`callback`], the return from Bitbucket:
//! - `tampered_state`: a changed `state` gives an error view and no token
//!   request; the genuine callback opened afterwards is refused too (the
//!   stored state is gone after its first use).
//! - `reload_after_return`: a reload after the return stays signed in, with
//!   exactly one code exchange.
//! - `code_replay`: the callback URL opened again attempts no second
//!   exchange; signed in, the profile stays, signed out, a "state missing"
//!   problem with a way out.
//!
//! [`session`], a signed-in session over time:
//! - `token_expiry_refreshes_silently`: past `expires_in`, the next call
//!   refreshes once, silently, and a second expiry uses the rotated token.
//! - `token_expiry_refreshes_silently_through_the_worker`: the same whole
//!   dance with the relay as a Cloudflare Worker in workerd.
//! - `two_tabs_one_refresh`: two tabs sharing a session at expiry make one
//!   refresh in total; the other tab adopts the rotated tokens.
//! - `two_tabs_one_was_away_during_the_refresh`: a tab that was not running
//!   during the other's refresh comes back to the rotated session instead
//!   of being signed out, still with one refresh in total.
//! - `sign_out_while_a_refresh_is_in_flight`: the late answer's tokens are
//!   not kept, and the sign-out stands.
//! - `sign_out`: signing out removes the tokens from storage, and a reload
//!   shows the landing page.
//! - `a_refused_refresh_ends_signed_out`: a refused refresh ends in a clear
//!   signed-out state, without retrying in a loop.
//! - `a_refresh_without_the_relay_offers_retry_and_sign_out`: a refresh
//!   that can't reach the relay offers "Try again" and "Sign out".
//!
//! [`binding`], refresh tokens only this browser can use:
//! - `a_lifted_refresh_token_is_refused_outside_the_browser`: the sealed
//!   refresh token replayed from outside the browser is refused every way
//!   and nothing reaches fakebucket; the rightful tab still refreshes.
//! - `a_session_ends_at_the_relays_lifetime`: past the relay's session
//!   lifetime the tab is signed out with the reason in plain words.
//! - `another_page_of_the_origin_cannot_use_the_channel`: another page of
//!   the origin can neither pull, plant nor end the session over the
//!   cross-tab channel.
//!
//! [`failures`], things breaking on the way:
//! - `relay_down_then_retry`: the relay down during the return gives a
//!   clear error, and "Try again" signs in once it is back.
//! - `api_500_then_retry`: the API answering 500 gives "Bitbucket is having
//!   trouble", and "Try again" works.
//! - `api_429_then_retry`: the API answering 429 gives "slow down", and
//!   "Try again" works.
//! - `a_consumer_without_the_email_permission`: the profile still shows,
//!   and the emails section names the permission to add.
//!
//! [`first_paint`], the page before the app runs:
//! - `the_landing_paints_from_the_html_alone`: with JavaScript off, the
//!   landing page is all there.
//! - `the_first_screen_is_right_before_the_app_runs`: at the first
//!   contentful paint, the landing page on a first visit and "Signing you
//!   in…" on a return from Bitbucket, with no wasm asked for yet.
//! - `focus_survives_the_take_over`: keyboard focus on the built-in
//!   "Sign in" moves to the app's own button.
//! - `a_sign_in_click_before_the_app_runs_is_followed`: "Sign in" pressed
//!   while the wasm loads still leads to Bitbucket.
//!
//! [`bench`]: `browser_timing`, the browser timing of the sign-in (a
//! benchmark, not a test: `cargo xtask bench browser` runs it, and
//! `cargo xtask test` skips it with `--skip bench::`).
//!
//! [`harness`] starts the stack and wraps the browser.

#![cfg(not(target_arch = "wasm32"))]

mod bench;
mod binding;
mod callback;
// Chromium's flags, shared with `cargo xtask bench lighthouse`.
#[path = "../support/chromium.rs"]
mod chromium;
mod failures;
mod first_paint;
mod harness;
mod session;
mod sign_in;

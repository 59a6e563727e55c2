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
//! The scenarios, numbered as each test's documentation cites them, by module:
//! - [`sign_in`]: 1 happy path, 2 cancel, 11 deep link, 12 sub-path (also a deep
//!   link there, through the `404.html` a GitHub Pages site answers with), 13
//!   keyboard only;
//! - [`callback`]: 3 tampered state, 4 reload after the return, 5 code replay;
//! - [`session`]: 6 token expiry, 7 two tabs, 10 sign out;
//! - [`binding`]: a lifted refresh token replayed from outside the browser,
//!   the relay's session lifetime, another page of the origin on the
//!   cross-tab channel;
//! - [`failures`]: 8 relay down during the return, 9 API 500 and 429;
//! - [`first_paint`]: the first screen from the HTML alone (no JavaScript),
//!   the right one on a return from Bitbucket before the app runs, and a
//!   click on "Sign in" made before the app runs;
//! - [`bench`]: the browser timing (a benchmark, not a test: `cargo xtask
//!   bench browser` runs it, and `cargo xtask test` skips it with
//!   `--skip bench::`).
//!
//! [`harness`] starts the stack and wraps the browser.

#![cfg(not(target_arch = "wasm32"))]

mod bench;
mod binding;
mod callback;
mod failures;
mod first_paint;
mod harness;
mod session;
mod sign_in;

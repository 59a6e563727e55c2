//! The one list of Chromium's command-line flags for a browser on a machine
//! without internet access, shared by every headless Chromium the project
//! starts: the end-to-end suite's (`tests/e2e/harness.rs`, through this
//! crate) and Lighthouse's (`xtask/src/lighthouse.rs`, which compiles this
//! file as a module of its own with `#[path]`, so that xtask does not
//! depend on the test kit). It must stay a file of plain constants, with no
//! `use` of anything outside the standard library.
//!
//! `webdriver.json` (the wasm browser tests' capabilities, JSON that Rust
//! cannot include) repeats these flags but `--no-sandbox`; change both.

/// Chromium's flags besides the headless mode, the profile and the window:
/// no sandbox (tests run as root in containers), no GPU, and nothing that
/// would reach for the network on its own (QUIC, first-run pings,
/// background networking, component updates, sync), which on a closed
/// network only fills the logs with refused connections.
pub const OFFLINE_FLAGS: [&str; 7] = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

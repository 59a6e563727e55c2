//! Chromium's command-line flags for a browser on a machine without
//! internet access: one home, used by the end-to-end suite's ChromeDriver
//! sessions (`tests/e2e/harness.rs`) and by `cargo xtask bench lighthouse`
//! (`xtask/src/lighthouse.rs`). Both include this file as a module
//! (`#[path]`, as `budget.rs` beside it), so neither keeps a copy and xtask
//! needs no test crate. Plain constants only: it compiles in both.
//!
//! `webdriver.json` (the wasm browser tests' capabilities, which Rust does
//! not read) repeats these flags but `--no-sandbox`; change both.

/// Chromium's flags besides the headless mode, the profile and the window:
/// no sandbox (tests run as root in containers), no GPU, and nothing that
/// reaches for the network on its own (QUIC, first-run pings, background
/// networking, component updates, sync), which on a closed network only
/// fills the logs with refused connections.
pub(crate) const OFFLINE_FLAGS: [&str; 7] = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

//! `config.json`, the SPA's settings: the one description of the file that
//! the SPA (reading it), `cargo xtask` and the test stacks (writing it) and
//! the doctor (checking a deployed one) share.

/// The name of the settings file, beside the app's `index.html`.
pub const FILE: &str = "config.json";

/// The scopes the app asks the consumer for (and `scopes`' default).
pub const APP_SCOPES: [&str; 2] = ["account", "email"];

//! What the deployment looks like from the page: the exact values a
//! set-up checklist names ([`crate::problem::Setting`]).
//!
//! Built from the page's base URL and `config.json` (a few strings, made
//! again by each step that needs it), and handed to whatever may fail because of the
//! deployment (the relay, the API, the authorize page), so a problem can
//! say "add `https://user.github.io` to `DANCE_ALLOWED_ORIGINS`" rather
//! than "check the relay's settings".

use crate::config::Config;
use crate::flow;
use crate::weburl::WebUrl;

/// What the deployment looks like from the page, for naming exact values in
/// checklists. Every field is plain text meant for display.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Deployment {
    /// This page's origin, as the relay's `DANCE_ALLOWED_ORIGINS` must list it.
    pub origin: String,
    /// The redirect URI the app sends, as `DANCE_ALLOWED_REDIRECT_URIS` must list it.
    pub redirect_uri: String,
    /// The relay's token URL from `config.json`.
    pub relay_url: String,
    /// The API base from `config.json`.
    pub api_base: String,
}

impl Deployment {
    /// The values a checklist names, from the app's base URL and the
    /// settings (empty until they are in).
    pub fn new(base: &WebUrl, config: Option<&Config>) -> Self {
        Self {
            origin: flow::origin_of(base),
            redirect_uri: flow::redirect_uri(base).to_string(),
            relay_url: config.map(|c| c.relay_url.to_string()).unwrap_or_default(),
            api_base: config.map(|c| c.api_base.to_string()).unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_page_and_the_settings() {
        let base = WebUrl::parse("https://user.github.io/repo/").expect("base");
        let bare = Deployment::new(&base, None);
        assert_eq!(bare.origin, "https://user.github.io");
        assert_eq!(bare.redirect_uri, "https://user.github.io/repo/");
        assert_eq!((bare.relay_url.as_str(), bare.api_base.as_str()), ("", ""));
        let config = Config::parse(include_str!("../config.json")).expect("demo config");
        let full = Deployment::new(&base, Some(&config));
        assert_eq!(full.relay_url, config.relay_url.to_string());
        assert_eq!(full.api_base, config.api_base.to_string());
    }
}

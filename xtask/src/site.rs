//! What a built site holds besides trunk's output, shared by `demo` and
//! `pages` (the doctor, `crates/doctor`, checks the same with the
//! deployment contract of `dance_protocol::deployment`): the SPA's `config.json`, the origins named by the
//! Content-Security-Policy in `index.html`, and `404.html`.
//!
//! The CSP lives in a `<meta http-equiv="Content-Security-Policy">` tag of
//! `index.html`; its `connect-src` must name the relay and the API, and its
//! `img-src` the avatar hosts, so each deployment rewrites those two
//! directives at build time ([`point_csp`]).
//!
//! `404.html` is a byte-for-byte copy of the final `index.html`
//! ([`write_not_found_page`]). GitHub Pages answers every path that is not a
//! file with it, so a deep link such as `/repo/some/page` loads the app with
//! the address bar untouched: trunk's `<base href="/repo/">` makes every asset
//! and `config.json` resolve from the app's base whatever the depth, and the
//! SPA takes its base (and the redirect URI) from `document.baseURI`, so it
//! behaves exactly as at `/repo/`. No redirect, no inline script (the CSP
//! forbids those), no change to the SPA.

use std::path::Path;

use anyhow::{Context, Result};
use url::Url;

use dance_protocol::deployment::config::{self, Settings};
use dance_protocol::deployment::page::set_csp_sources;

use crate::util::step;

pub(crate) use dance_protocol::deployment::{
    BITBUCKET_API_BASE, BITBUCKET_AUTHORIZE_URL, BITBUCKET_TOKEN_URL,
};
/// Where Bitbucket's avatars come from (the SPA's index.html lists the same).
pub(crate) const BITBUCKET_IMAGE_ORIGINS: &[&str] = &[
    "https://avatar-management--avatars.us-west-2.prod.public.atl-paas.net",
    "https://secure.gravatar.com",
    "https://bitbucket.org",
];

/// The values a built SPA carries for one deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SiteSettings {
    /// The Bitbucket OAuth consumer's key.
    pub(crate) client_id: String,
    /// The authorization endpoint.
    pub(crate) authorize_url: Url,
    /// The relay's token endpoint.
    pub(crate) relay_url: Url,
    /// The API base, ending in `/`.
    pub(crate) api_base: Url,
    /// Origins the page may fetch from besides itself (CSP `connect-src`).
    pub(crate) connect_origins: Vec<String>,
    /// Origins the page may load images from besides itself (CSP `img-src`).
    pub(crate) img_origins: Vec<String>,
}

impl SiteSettings {
    /// The SPA's `config.json`, for the deployment contract's writer.
    pub(crate) fn config(&self) -> Settings {
        Settings::new(
            &self.client_id,
            self.authorize_url.as_str(),
            self.relay_url.as_str(),
            self.api_base.as_str(),
        )
    }

    /// Writes `config.json` and points the CSP of `index.html` in `dist` at
    /// these origins.
    pub(crate) fn apply(&self, dist: &Path) -> Result<()> {
        write_config(dist, &self.config())?;
        if point_csp(dist, &self.connect_origins, &self.img_origins)? {
            step(format!(
                "pointed the Content-Security-Policy in {} at {}",
                dist.join("index.html").display(),
                self.connect_origins.join(" ")
            ));
        }
        Ok(())
    }
}

/// Writes `dist/config.json` ([`Settings::to_json`]).
pub(crate) fn write_config(dist: &Path, config: &Settings) -> Result<()> {
    let path = dist.join(config::FILE);
    std::fs::write(&path, config.to_json())
        .with_context(|| format!("could not write {}", path.display()))?;
    step(format!("wrote {}", path.display()));
    Ok(())
}

/// Points `connect-src` and `img-src` of the CSP in `dist/index.html` at
/// `'self'` plus the given origins. Returns whether the file changed.
pub(crate) fn point_csp(dist: &Path, connect: &[String], img: &[String]) -> Result<bool> {
    let path = dist.join("index.html");
    let html = std::fs::read_to_string(&path)
        .with_context(|| format!("could not read {}", path.display()))?;
    let patched = set_csp_sources(&html, "connect-src", connect);
    let patched = set_csp_sources(&patched, "img-src", img);
    if patched == html {
        return Ok(false);
    }
    std::fs::write(&path, patched)
        .with_context(|| format!("could not write {}", path.display()))?;
    Ok(true)
}

/// Copies the final `dist/index.html` to `dist/404.html` (see the module
/// documentation for why a copy is all GitHub Pages needs).
pub(crate) fn write_not_found_page(dist: &Path) -> Result<()> {
    let index = dist.join("index.html");
    let page = dist.join("404.html");
    std::fs::copy(&index, &page)
        .with_context(|| format!("could not copy {} to {}", index.display(), page.display()))?;
    step(format!("wrote {} (a copy of index.html: deep links load the app)", page.display()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use dance_protocol::deployment::page::csp_sources;

    /// docs/security.md, for the SPA's own `index.html`: no referrer, and a
    /// Content-Security-Policy that allows only the page's own scripts and
    /// styles, `'wasm-unsafe-eval'`, and `connect-src` limited to the relay
    /// and the API (the demo's loopback origins, which `demo`, `pages` and the
    /// end-to-end harness replace); no inline or third-party script or style.
    #[test]
    fn the_apps_index_html_keeps_the_browser_rules() {
        let path = crate::util::root().join("index.html");
        let html = std::fs::read_to_string(&path).expect("index.html is readable");
        assert!(
            html.contains(r#"<meta name="referrer" content="no-referrer">"#),
            "index.html must send no referrer"
        );
        let sources = |directive: &str| {
            csp_sources(&html, directive)
                .unwrap_or_else(|| panic!("the CSP of index.html has no {directive}"))
        };
        assert_eq!(sources("default-src"), ["'none'"]);
        assert_eq!(sources("script-src"), ["'self'", "'wasm-unsafe-eval'"]);
        assert_eq!(sources("style-src"), ["'self'"]);
        assert_eq!(sources("base-uri"), ["'self'"]);
        assert_eq!(sources("form-action"), ["'none'"]);
        // DOM XSS sinks (innerHTML, script URLs, eval) take no strings, and
        // no policy may be made to turn strings into trusted values.
        assert_eq!(sources("require-trusted-types-for"), ["'script'"]);
        assert_eq!(sources("trusted-types"), ["'none'"]);
        assert_eq!(
            sources("connect-src"),
            ["'self'", "http://127.0.0.1:8787", "http://127.0.0.1:9090"],
            "connect-src: the page itself (config.json), the demo relay and the demo API only"
        );
        let lower = html.to_ascii_lowercase();
        for needle in ["unsafe-inline", "'unsafe-eval'", "<style", "style=", "onclick=", "onload="]
        {
            assert!(!lower.contains(needle), "index.html must not contain {needle:?}");
        }
        // The one script tag is the site's own file, assets/screen.js, which
        // picks the first screen and then imports the wasm glue:
        // none is inline and none comes from elsewhere.
        for (at, _) in lower.match_indices("<script") {
            let tag = &lower[at..at + lower[at..].find('>').expect("a closed tag")];
            let own = ["data-trunk", "src=\"screen.js\""];
            assert!(own.iter().any(|source| tag.contains(source)), "{tag}");
            let end = at + lower[at..].find("</script>").expect("a closed script");
            assert!(lower[at..end].ends_with('>'), "an inline script: {}", &lower[at..end]);
        }
        assert!(!lower.contains("src=\"http"), "no third-party script or image");
        assert!(!lower.contains("href=\"http"), "no third-party style sheet or link");
    }

    #[test]
    fn settings_write_config_csp_and_the_not_found_page() {
        let dir = std::env::temp_dir().join(format!("xtask-site-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create");
        // The app's own page, as trunk copies it into dist/.
        std::fs::copy(crate::util::root().join("index.html"), dir.join("index.html"))
            .expect("copy index.html");
        let settings = SiteSettings {
            client_id: "key".to_owned(),
            authorize_url: Url::parse(BITBUCKET_AUTHORIZE_URL).expect("url"),
            relay_url: Url::parse("https://relay.example/token").expect("url"),
            api_base: Url::parse(BITBUCKET_API_BASE).expect("url"),
            connect_origins: vec!["https://relay.example".to_owned()],
            img_origins: vec!["https://secure.gravatar.com".to_owned()],
        };
        settings.apply(&dir).expect("apply");
        write_not_found_page(&dir).expect("404");
        let config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).expect("read"))
                .expect("json");
        assert_eq!(config["relay_url"], "https://relay.example/token");
        assert_eq!(config["scopes"], serde_json::json!(["account", "email"]));
        let index = std::fs::read_to_string(dir.join("index.html")).expect("read");
        assert!(index.contains("connect-src 'self' https://relay.example;"), "{index}");
        assert!(index.contains("img-src 'self' https://secure.gravatar.com;"), "{index}");
        assert_eq!(std::fs::read_to_string(dir.join("404.html")).expect("read"), index);
        std::fs::remove_dir_all(dir).expect("clean up");
    }
}

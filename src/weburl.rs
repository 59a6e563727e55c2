//! URLs, parsed by the browser itself.
//!
//! In the browser, [`WebUrl`] asks the page's own `URL` class (WHATWG URL
//! Standard) to parse, resolve and normalise; the app ships no URL parser of
//! its own, which keeps the `url` crate and its IDNA code out of the bundle.
//! Native builds (the unit tests) use the `url` crate, which implements the
//! same standard, so the pure logic built on top is tested natively and the
//! browser tests exercise the browser's parser.
//!
//! A [`WebUrl`] is immutable: the serialised `href` plus the parts the app
//! reads, captured once at parse time.

use std::fmt;

/// An absolute URL, normalised by the WHATWG URL Standard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebUrl {
    /// The full serialisation (`URL.href`).
    href: String,
    /// The origin as browsers send it in `Origin`; `null` for opaque ones.
    origin: String,
    /// The scheme, without the `:`.
    scheme: String,
    /// The host, without the port (`[::1]` for IPv6); empty when none.
    host: String,
    /// The path (`URL.pathname`).
    path: String,
    /// Whether a user name or password is present.
    has_credentials: bool,
}

impl WebUrl {
    /// Parses an absolute URL.
    pub fn parse(input: &str) -> Option<Self> {
        backend::parse(input, None)
    }

    /// Resolves `input` (absolute, or relative to this URL), as `new URL(input, this)`.
    pub fn join(&self, input: &str) -> Option<Self> {
        backend::parse(input, Some(&self.href))
    }

    /// The full serialisation.
    pub fn as_str(&self) -> &str {
        &self.href
    }

    /// The origin, as browsers send it in `Origin` (no trailing slash).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The scheme, such as `https`.
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// The host without the port (IPv6 in brackets), such as `127.0.0.1`;
    /// empty when the URL has none.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The path, such as `/repo/`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The query without the `?`, when there is one (even empty).
    pub fn query(&self) -> Option<&str> {
        let before_fragment = self.href.split('#').next().unwrap_or_default();
        before_fragment.split_once('?').map(|(_, query)| query)
    }

    /// The fragment without the `#`, when there is one (even empty).
    pub fn fragment(&self) -> Option<&str> {
        self.href.split_once('#').map(|(_, fragment)| fragment)
    }

    /// Whether a user name or password is present.
    pub fn has_credentials(&self) -> bool {
        self.has_credentials
    }

    /// This URL without its query and fragment.
    pub fn without_query_and_fragment(&self) -> Self {
        let end = self.href.find(['?', '#']).unwrap_or(self.href.len());
        Self::parse(&self.href[..end]).unwrap_or_else(|| self.clone())
    }

    /// Whether the host is the local machine, where plain http is accepted
    /// ([`dance_protocol::deployment::is_loopback_host`], the rule the relay
    /// and `cargo xtask` apply too).
    pub fn is_loopback(&self) -> bool {
        dance_protocol::deployment::is_loopback_host(&self.host)
    }
}

impl fmt::Display for WebUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.href)
    }
}

impl From<WebUrl> for String {
    fn from(url: WebUrl) -> Self {
        url.href
    }
}

/// The browser's `URL`.
#[cfg(target_arch = "wasm32")]
mod backend {
    use super::WebUrl;

    /// `new URL(input)` or `new URL(input, base)`.
    pub(super) fn parse(input: &str, base: Option<&str>) -> Option<WebUrl> {
        let url = match base {
            Some(base) => web_sys::Url::new_with_base(input, base),
            None => web_sys::Url::new(input),
        }
        .ok()?;
        let protocol = url.protocol();
        Some(WebUrl {
            href: url.href(),
            origin: url.origin(),
            scheme: protocol.strip_suffix(':').unwrap_or(&protocol).to_owned(),
            host: url.hostname(),
            path: url.pathname(),
            has_credentials: !url.username().is_empty() || !url.password().is_empty(),
        })
    }
}

/// The `url` crate, for native tests.
#[cfg(not(target_arch = "wasm32"))]
mod backend {
    use super::WebUrl;

    /// `Url::parse(input)` or `base.join(input)`.
    pub(super) fn parse(input: &str, base: Option<&str>) -> Option<WebUrl> {
        let url = match base {
            Some(base) => url::Url::parse(base).and_then(|base| base.join(input)),
            None => url::Url::parse(input),
        }
        .ok()?;
        Some(WebUrl {
            href: url.as_str().to_owned(),
            origin: url.origin().ascii_serialization(),
            scheme: url.scheme().to_owned(),
            host: url.host_str().unwrap_or_default().to_owned(),
            path: url.path().to_owned(),
            has_credentials: !url.username().is_empty() || url.password().is_some(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> WebUrl {
        WebUrl::parse(s).expect("test URL")
    }

    #[test]
    fn parts_are_read() {
        let u = url("https://User:pw@Example.test:8443/a/b?x=1&y#frag");
        assert_eq!(u.as_str(), "https://User:pw@example.test:8443/a/b?x=1&y#frag");
        assert_eq!(u.origin(), "https://example.test:8443");
        assert_eq!((u.scheme(), u.host(), u.path()), ("https", "example.test", "/a/b"));
        assert_eq!((u.query(), u.fragment()), (Some("x=1&y"), Some("frag")));
        assert!(u.has_credentials());
        let plain = url("http://127.0.0.1:8080");
        assert_eq!((plain.path(), plain.query(), plain.fragment()), ("/", None, None));
        assert_eq!(url("https://a.test/?#").query(), Some(""));
        assert_eq!(url("https://a.test/?#").fragment(), Some(""));
        assert_eq!(url("javascript:alert(1)").origin(), "null");
        assert_eq!(WebUrl::parse("not a url"), None);
    }

    #[test]
    fn joins_like_the_browser() {
        let base = url("https://user.github.io/repo/index.html?x#y");
        assert_eq!(
            base.join("config.json").map(String::from).as_deref(),
            Some("https://user.github.io/repo/config.json")
        );
        assert_eq!(base.join("//evil.example/").expect("joins").origin(), "https://evil.example");
        assert_eq!(
            base.without_query_and_fragment().as_str(),
            "https://user.github.io/repo/index.html"
        );
    }

    #[test]
    fn loopback_hosts() {
        for yes in [
            "http://127.0.0.1:8787/",
            "http://127.1/",
            "http://[::1]/",
            "http://localhost/",
            "http://a.localhost/",
        ] {
            assert!(url(yes).is_loopback(), "{yes}");
        }
        for no in [
            "http://10.0.0.1/",
            "http://[::2]/",
            "http://localhost.example/",
            "http://127.0.0.1.example/",
        ] {
            assert!(!url(no).is_loopback(), "{no}");
        }
    }
}

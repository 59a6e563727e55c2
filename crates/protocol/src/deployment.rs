//! The deployment rules every party applies the same way: the SPA (checking
//! `config.json` and its own address), the relay (checking its allowlists),
//! `cargo xtask` (writing a site) and the doctor (`dance-doctor`, checking a
//! deployment from outside). One function per rule, on plain strings, so the
//! browser (whose `URL` serialises hosts) and native code (the `url` crate,
//! which follows the same WHATWG standard) share it.
//!
//! - [`config`]: `config.json`, the SPA's settings: its fields, their checks
//!   and the writer every tool uses.
//! - [`app_base`]: the app's base URL (and redirect URI) from a page's address.
//! - [`page`]: what a built `index.html` must say (its Content-Security-Policy,
//!   its `<base href>`).

pub mod config;
pub mod page;

/// Bitbucket Cloud's authorization endpoint (docs/bitbucket.md).
pub const BITBUCKET_AUTHORIZE_URL: &str = "https://bitbucket.org/site/oauth2/authorize";
/// Bitbucket Cloud's token endpoint, where the relay forwards exchanges.
pub const BITBUCKET_TOKEN_URL: &str = "https://bitbucket.org/site/oauth2/access_token";
/// Bitbucket Cloud's API base.
pub const BITBUCKET_API_BASE: &str = "https://api.bitbucket.org/2.0/";

/// Whether `host`, as a WHATWG URL serialises it (lowercase; IPv4 in dotted
/// decimal; IPv6 in brackets), is the local machine: `localhost` or a name
/// under it, 127.0.0.0/8, or `[::1]`. These are the hosts browsers treat as
/// potentially trustworthy over plain http (W3C Secure Contexts), so the one
/// place where `http:` is accepted instead of `https:`.
pub fn is_loopback_host(host: &str) -> bool {
    // A host whose last label is a number is an IPv4 address (anything else
    // fails to parse as a URL), so `127.` and a numeric end is 127.0.0.0/8.
    let last_label = host.rsplit('.').next().unwrap_or_default();
    let ipv4_loopback = host.starts_with("127.")
        && !last_label.is_empty()
        && last_label.bytes().all(|b| b.is_ascii_digit());
    ipv4_loopback || host == "[::1]" || host == "localhost" || host.ends_with(".localhost")
}

/// Whether an address with this `scheme` and `host` (as a WHATWG URL
/// serialises them) may serve the app, the relay or the API: `https`, or
/// `http` on a loopback host ([`is_loopback_host`]).
pub fn is_secure_enough(scheme: &str, host: &str) -> bool {
    scheme == "https" || (scheme == "http" && is_loopback_host(host))
}

/// The app's base URL from the address of one of its pages (the SPA reads
/// `document.baseURI`; the doctor the page it fetched): that address without
/// query and fragment, up to and including the last `/` of its path, so a
/// file name such as `index.html` is dropped. This is also the redirect URI
/// the SPA sends, which the relay's allowlist and the consumer's callback
/// must name byte for byte.
///
/// `url` is an absolute URL as a WHATWG parser serialises it (the browser's
/// `URL.href`, `url::Url::as_str`): there a `?` or `#` always starts the
/// query or the fragment, and a hierarchical URL's path starts with `/`.
/// An address without a path (not a serialisation) gets `/`.
pub fn app_base(url: &str) -> String {
    // Slices and single characters only: no substring search and no
    // formatting, which would cost the SPA's bundle more than this rule.
    let end = url.find(['?', '#']).unwrap_or(url.len());
    let url = &url[..end];
    let authority = match url.find(':') {
        Some(colon) if url[colon + 1..].starts_with("//") => colon + 3,
        // An opaque address (`data:`, `blob:`) has no directory.
        _ => return url.to_owned(),
    };
    let mut base = match url[authority..].rfind('/') {
        Some(at) => url[..=authority + at].to_owned(),
        None => url.to_owned(),
    };
    if !base.ends_with('/') {
        base.push('/');
    }
    base
}

/// [`is_secure_enough`] for a parsed URL.
#[cfg(feature = "url")]
pub fn is_secure_url(url: &url::Url) -> bool {
    is_secure_enough(url.scheme(), url.host_str().unwrap_or_default())
}

/// [`is_loopback_host`] for a parsed URL.
#[cfg(feature = "url")]
pub fn is_loopback_url(url: &url::Url) -> bool {
    url.host_str().is_some_and(is_loopback_host)
}

/// The origin of a URL as browsers send it in `Origin` (no trailing slash),
/// the form the relay's `DANCE_ALLOWED_ORIGINS` and a CSP source take.
#[cfg(feature = "url")]
pub fn origin(url: &url::Url) -> String {
    url.origin().ascii_serialization()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_as_urls_serialise_them() {
        for host in
            ["127.0.0.1", "127.0.0.53", "127.255.255.255", "[::1]", "localhost", "a.localhost"]
        {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "",
            "128.0.0.1",
            "10.0.0.1",
            "[::2]",
            "[::ffff:7f00:1]",
            "localhost.example",
            "127.0.0.1.example",
            "notlocalhost",
            "user.github.io",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn https_or_http_on_loopback() {
        assert!(is_secure_enough("https", "relay.example"));
        assert!(is_secure_enough("http", "127.0.0.1"));
        assert!(is_secure_enough("http", "localhost"));
        assert!(is_secure_enough("http", "[::1]"));
        assert!(!is_secure_enough("http", "relay.example"));
        assert!(!is_secure_enough("http", "10.0.0.1"));
        assert!(!is_secure_enough("ftp", "relay.example"));
        assert!(!is_secure_enough("ftp", "127.0.0.1"));
    }

    #[cfg(feature = "url")]
    #[test]
    fn parsed_urls_follow_the_same_rules() {
        let url = |text: &str| url::Url::parse(text).expect("url");
        assert!(is_secure_url(&url("https://relay.example/token")));
        assert!(is_secure_url(&url("http://127.0.0.1:8787/token")));
        assert!(is_secure_url(&url("http://localhost:8080/")));
        assert!(!is_secure_url(&url("http://relay.example/token")));
        assert!(!is_secure_url(&url("file:///tmp/x")));
        assert!(is_secure_url(&url("http://[::1]:8080/")));
        assert!(!is_secure_url(&url("http://10.0.0.1/")));
        assert!(!is_secure_url(&url("ftp://relay.example/")));
        assert!(is_loopback_url(&url("http://[::1]:8080/")));
        assert!(!is_loopback_url(&url("https://user.github.io/")));
        assert_eq!(origin(&url("https://User.GitHub.io/repo/")), "https://user.github.io");
        assert_eq!(origin(&url("http://127.0.0.1:8080/a?b#c")), "http://127.0.0.1:8080");
    }

    #[test]
    fn the_app_base_is_the_directory_without_query_or_fragment() {
        for (page, base) in [
            ("https://user.github.io/repo/", "https://user.github.io/repo/"),
            ("https://user.github.io/repo", "https://user.github.io/"),
            ("https://user.github.io/repo/index.html?x=1#y", "https://user.github.io/repo/"),
            ("http://127.0.0.1:8080/?code=a&state=b", "http://127.0.0.1:8080/"),
            ("http://127.0.0.1:8080/a/b/c?next=/x/y#/z/", "http://127.0.0.1:8080/a/b/"),
            ("https://u:p@host.example/a/b", "https://u:p@host.example/a/"),
            ("https://host.example#x/y/", "https://host.example/"),
            ("file:///srv/site/index.html", "file:///srv/site/"),
            ("data:text/html,x/y", "data:text/html,x/y"),
        ] {
            assert_eq!(app_base(page), base, "{page}");
        }
    }

    /// The rule on strings gives what the `url` crate's own resolution gives
    /// (`./` against the page, without query and fragment), which is what
    /// the browser's `URL` gives too: both follow the WHATWG standard.
    #[test]
    fn the_app_base_agrees_with_resolving_dot_slash() {
        let by_url = |page: &url::Url| {
            let mut base = page.clone();
            base.set_query(None);
            base.set_fragment(None);
            if !base.path().ends_with('/') {
                base = base.join("./").expect("a hierarchical URL");
            }
            base.to_string()
        };
        for text in [
            "https://user.github.io/repo/",
            "https://user.github.io/repo",
            "https://USER.github.io/a/./b/../c/index.html?x=1#y",
            "http://127.0.0.1:8080/?code=a&state=b",
            "http://[::1]:8080/x/y?next=/a/b#/c/",
            "https://u:p%2Fq@host.example/a/b",
            "https://host.example",
            "https://host.example/a%2Fb/c%3Fd",
            "https://host.example/a/b?#",
            "file:///srv/site/index.html",
        ] {
            let page = url::Url::parse(text).expect("url");
            assert_eq!(app_base(page.as_str()), by_url(&page), "{text}");
        }
    }

    /// The rule agrees with the `url` crate's own reading of the addresses
    /// it parses, for every spelling a person might write.
    #[test]
    fn agrees_with_parsed_addresses() {
        for (text, loopback) in [
            ("http://127.1/", true),
            ("http://0x7f.1/", true),
            ("http://[0:0::1]/", true),
            ("http://LOCALHOST/", true),
            ("http://App.LocalHost:8080/", true),
            ("http://0.0.0.0/", false),
            ("http://[::]/", false),
        ] {
            let url = url::Url::parse(text).expect("url");
            assert_eq!(is_loopback_host(url.host_str().unwrap_or_default()), loopback, "{text}");
        }
    }
}

//! The deployment rules every party applies the same way: the SPA (checking
//! `config.json` and its own address), the relay (checking its allowlists),
//! and `cargo xtask` (writing a site, the doctor). One function per rule, on
//! plain strings, so the browser (whose `URL` serialises hosts) and native
//! code (the `url` crate, which follows the same WHATWG standard) share it.

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

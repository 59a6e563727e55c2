//! What the deployment contract asks of a built site's `index.html`, on
//! plain text: its Content-Security-Policy (a `<meta http-equiv>` tag whose
//! `connect-src` must name the relay and the API, and `img-src` the avatar
//! hosts) and trunk's `<base href>`, the app's base path. `cargo xtask`
//! rewrites the policy for each deployment ([`set_csp_sources`]) and the
//! doctor reads it back ([`csp_sources`], [`base_href`]), with the same
//! reading of HTML start tags ([`tags`], [`attribute`]).

/// The byte range of the `content` value of the CSP meta tag in `html`.
/// Attributes may come in any order and any quoting: the release build's
/// minified `index.html` has `content="..." http-equiv=Content-Security-Policy`.
fn csp_content_range(html: &str) -> Option<std::ops::Range<usize>> {
    let lower = html.to_ascii_lowercase();
    tags(&lower, "meta").find_map(|tag| {
        let equiv = attribute(&lower, tag.clone(), "http-equiv")?;
        (lower[equiv].trim() == "content-security-policy")
            .then(|| attribute(&lower, tag, "content"))
            .flatten()
    })
}

/// The byte ranges of every `<name ...>` start tag in `lower` (an
/// ASCII-lowercased page), from `<` to just before `>`.
pub fn tags<'a>(
    lower: &'a str,
    name: &'a str,
) -> impl Iterator<Item = std::ops::Range<usize>> + 'a {
    let open = format!("<{name}");
    lower.match_indices(open.as_str()).map(|(at, _)| at).collect::<Vec<_>>().into_iter().filter_map(
        move |at| {
            let after = at + open.len();
            // `<basefont>` is not `<base>`.
            if !lower[after..]
                .starts_with(|c: char| c.is_ascii_whitespace() || c == '>' || c == '/')
            {
                return None;
            }
            Some(at..lower[at..].find('>').map_or(lower.len(), |end| at + end))
        },
    )
}

/// The byte range of the value of attribute `name` in the start tag at
/// `tag` of `lower`: quoted with `"` or `'`, or bare up to a space.
pub fn attribute(
    lower: &str,
    tag: std::ops::Range<usize>,
    name: &str,
) -> Option<std::ops::Range<usize>> {
    let text = &lower[tag.clone()];
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(found) = text[from..].find(name).map(|at| from + at) {
        from = found + name.len();
        // A whole attribute name: after a space, followed by `=`.
        if found == 0 || !bytes[found - 1].is_ascii_whitespace() {
            continue;
        }
        let rest = text[from..].trim_start();
        let Some(value) = rest.strip_prefix('=').map(str::trim_start) else { continue };
        let start = text.len() - value.len();
        let (start, len) = match value.chars().next() {
            Some(quote @ ('"' | '\'')) => {
                (start + 1, value[1..].find(quote).unwrap_or(value.len() - 1))
            }
            _ => (start, value.find(|c: char| c.is_ascii_whitespace()).unwrap_or(value.len())),
        };
        return Some(tag.start + start..tag.start + start + len);
    }
    None
}

/// The sources of `directive` in the CSP meta tag of `html`: `None` when
/// there is no such tag or directive.
pub fn csp_sources(html: &str, directive: &str) -> Option<Vec<String>> {
    let range = csp_content_range(html)?;
    html[range].split(';').map(str::trim).find_map(|part| {
        let mut words = part.split_whitespace();
        (words.next() == Some(directive)).then(|| words.map(str::to_owned).collect())
    })
}

/// Sets `directive` of the `<meta http-equiv="Content-Security-Policy">` in
/// `html` to `'self'` plus `origins` (added when absent). HTML without such a
/// meta tag comes back unchanged.
pub fn set_csp_sources(html: &str, directive: &str, origins: &[String]) -> String {
    let Some(range) = csp_content_range(html) else {
        return html.to_owned();
    };
    let value = std::iter::once("'self'".to_owned())
        .chain(origins.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    let mut found = false;
    let mut directives: Vec<String> = html[range.clone()]
        .split(';')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            if part.split_whitespace().next() == Some(directive) {
                found = true;
                format!("{directive} {value}")
            } else {
                part.to_owned()
            }
        })
        .collect();
    if !found {
        directives.push(format!("{directive} {value}"));
    }
    format!("{}{}{}", &html[..range.start], directives.join("; "), &html[range.end..])
}

/// The `href` of the first `<base>` tag in `html` (trunk writes the public
/// URL there).
pub fn base_href(html: &str) -> Option<String> {
    let lower = html.to_ascii_lowercase();
    let tag = tags(&lower, "base").next()?;
    attribute(&lower, tag, "href").map(|value| html[value].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "<head><meta charset=\"utf-8\">\n<meta http-equiv=\"Content-Security-Policy\" \
                        content=\"default-src 'none'; img-src 'self' http://127.0.0.1:9090; \
                        connect-src 'self' http://127.0.0.1:8787 http://127.0.0.1:9090\">\
                        <base href=\"/repo/\"></head>";

    #[test]
    fn csp_directives_are_replaced_or_added_and_the_rest_kept() {
        let origins = ["http://127.0.0.1:1".to_owned(), "https://api.bitbucket.org".to_owned()];
        let patched = set_csp_sources(PAGE, "connect-src", &origins);
        let patched = set_csp_sources(&patched, "font-src", &[]);
        assert_eq!(
            patched,
            "<head><meta charset=\"utf-8\">\n<meta http-equiv=\"Content-Security-Policy\" \
             content=\"default-src 'none'; img-src 'self' http://127.0.0.1:9090; \
             connect-src 'self' http://127.0.0.1:1 https://api.bitbucket.org; font-src 'self'\">\
             <base href=\"/repo/\"></head>"
        );
        assert_eq!(set_csp_sources("<p>no policy</p>", "img-src", &origins), "<p>no policy</p>");
    }

    #[test]
    fn csp_sources_are_read_back() {
        assert_eq!(
            csp_sources(PAGE, "connect-src"),
            Some(vec![
                "'self'".to_owned(),
                "http://127.0.0.1:8787".to_owned(),
                "http://127.0.0.1:9090".to_owned()
            ])
        );
        assert_eq!(csp_sources(PAGE, "font-src"), None);
        assert_eq!(csp_sources("<p>none</p>", "connect-src"), None);
    }

    #[test]
    fn a_minified_page_with_attributes_in_any_order_is_read_and_patched() {
        // What trunk's release minifier writes (`minify = "on_release"`).
        let page = "<meta content=no-referrer name=referrer><meta content=\"default-src 'none'; \
                    connect-src 'self' http://127.0.0.1:8787\" http-equiv=Content-Security-Policy>\
                    <base href=/repo/>";
        assert_eq!(
            csp_sources(page, "connect-src"),
            Some(vec!["'self'".to_owned(), "http://127.0.0.1:8787".to_owned()])
        );
        assert_eq!(csp_sources(page, "default-src"), Some(vec!["'none'".to_owned()]));
        let patched = set_csp_sources(page, "connect-src", &["https://relay.example".to_owned()]);
        assert!(
            patched.contains(
                "content=\"default-src 'none'; connect-src 'self' https://relay.example\" \
                 http-equiv=Content-Security-Policy>"
            ),
            "{patched}"
        );
        assert_eq!(base_href(page).as_deref(), Some("/repo/"));
        // A `content` that is only part of another attribute's value is not one.
        assert_eq!(
            csp_sources("<meta name=x http-equiv=content-security-policy>", "img-src"),
            None
        );
        assert_eq!(csp_sources("<meta http-equiv=refresh content=\"img-src x\">", "img-src"), None);
    }

    #[test]
    fn base_href_is_found_in_any_quoting() {
        assert_eq!(base_href(PAGE).as_deref(), Some("/repo/"));
        assert_eq!(base_href("<BASE HREF='/a/'>").as_deref(), Some("/a/"));
        assert_eq!(base_href("<base href=/b/ >").as_deref(), Some("/b/"));
        assert_eq!(base_href("<basefont size=3><base href=\"/c/\">").as_deref(), Some("/c/"));
        assert_eq!(base_href("<head></head>"), None);
        assert_eq!(base_href("<base target=_blank>"), None);
    }
}

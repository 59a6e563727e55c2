//! Authorization codes minted the way a person gets one: open the authorize
//! URL, read the consent page's form, submit it with "Grant access", and
//! read `code` from the redirect. The form is read with a WHATWG tokenizer
//! (html5gum) and submitted as a browser submits it (every hidden input,
//! each select's chosen option, the pressed button's name and value), so a
//! change of fakebucket's page that a browser would not notice changes
//! nothing here, and one it would gets a [`ConsentError::PageChanged`] that
//! says what is missing.

use crate::Authorization;
use dance_protocol::authorize::Callback;
use html5gum::{Token, Tokenizer};
use std::collections::BTreeMap;
use url::Url;

/// The fields fakebucket's `POST /site/oauth2/authorize` reads besides the
/// pressed button (`crates/fakebucket/src/oauth.rs`, `decide`).
const REQUIRED_FIELDS: [&str; 2] = ["txn", "user"];

/// The `id` of the consent page's "Grant access" button.
const GRANT_ID: &str = "grant";

/// Why no code could be minted.
#[derive(Debug, thiserror::Error)]
pub enum ConsentError {
    /// fakebucket could not be reached, or its answer not read.
    #[error("cannot {step} at {url}: {source}")]
    Http {
        /// What the kit was doing: `open the consent page`, `grant access`.
        step: &'static str,
        /// Where.
        url: String,
        /// The HTTP client's error.
        #[source]
        source: reqwest::Error,
    },
    /// fakebucket answered, but not with what a valid request gets.
    #[error("{step}: fakebucket answered HTTP {status}: {detail}")]
    Refused {
        /// What the kit was doing.
        step: &'static str,
        /// The answer's status.
        status: u16,
        /// Its `Location` or the start of its page.
        detail: String,
    },
    /// The consent page no longer has what the kit submits.
    #[error(
        "fakebucket's consent page at {url} has changed: {what}. The test kit submits it as a \
         browser would and expects one <form method=\"post\"> with the fields {REQUIRED_FIELDS:?} \
         (a hidden input and a <select>) and a submit button with id=\"{GRANT_ID}\"; bring \
         crates/testkit/src/consent.rs in line with the page (`consent_page` in \
         crates/fakebucket/src/oauth.rs)"
    )]
    PageChanged {
        /// The consent page's address.
        url: String,
        /// What is missing or different.
        what: String,
    },
    /// The grant redirected, but without a code.
    #[error("the grant redirected without a code: {location}")]
    NoCode {
        /// The redirect's target.
        location: String,
    },
}

/// The consent page's form, as a browser would submit it by pressing the
/// grant button.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentForm {
    /// Where the form posts to: its `action`, resolved against the page.
    pub action: Url,
    /// What a browser sends, in document order: every named input (hidden
    /// or text; checkboxes and radios when checked), each select's selected
    /// option (the first one unless another is `selected`), and last the
    /// grant button's name and value.
    pub fields: Vec<(String, String)>,
}

impl ConsentForm {
    /// The value of the field `name`, if the form sends it.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// A form being read.
#[derive(Default)]
struct Reading {
    action: Option<String>,
    post: bool,
    fields: Vec<(String, String)>,
    grant: Option<(String, String)>,
    /// The select being read: its name, its first option, its selected one.
    select: Option<(String, Option<String>, Option<String>)>,
    /// An option with no `value`, whose text is its value: (selected, text).
    option_text: Option<(bool, String)>,
}

impl Reading {
    /// Ends an option whose value is its text.
    fn end_option(&mut self) {
        if let Some((selected, text)) = self.option_text.take() {
            self.choose(text.trim().to_owned(), selected);
        }
    }

    fn choose(&mut self, value: String, selected: bool) {
        if let Some((_, first, chosen)) = &mut self.select {
            if first.is_none() {
                *first = Some(value.clone());
            }
            if selected {
                *chosen = Some(value);
            }
        }
    }

    fn end_select(&mut self) {
        self.end_option();
        if let Some((name, first, chosen)) = self.select.take()
            && let Some(value) = chosen.or(first)
        {
            self.fields.push((name, value));
        }
    }
}

/// Reads the consent page `html`, served at `page`: the form holding the
/// grant button, as pressing that button would submit it.
///
/// # Errors
///
/// [`ConsentError::PageChanged`] when no form holds a button with
/// `id="grant"`, when that form does not post, or when it would not send
/// `txn` and `user`.
pub fn read_consent_page(html: &str, page: &Url) -> Result<ConsentForm, ConsentError> {
    let changed = |what: String| ConsentError::PageChanged { url: page.to_string(), what };
    let mut form: Option<Reading> = None;
    let mut found: Option<Reading> = None;
    for Ok(token) in Tokenizer::new(html) {
        let Some(reading) = form.as_mut() else {
            if let Token::StartTag(tag) = token
                && tag.name.as_slice() == b"form"
            {
                let attributes = attributes(&tag.attributes);
                form = Some(Reading {
                    action: attributes.get("action").cloned(),
                    post: attributes.get("method").is_some_and(|m| m.eq_ignore_ascii_case("post")),
                    ..Reading::default()
                });
            }
            continue;
        };
        match token {
            Token::StartTag(tag) => {
                let attributes = attributes(&tag.attributes);
                let attribute = |name: &str| attributes.get(name).cloned();
                let name = attribute("name");
                let disabled = attributes.contains_key("disabled");
                match tag.name.as_slice() {
                    b"input" if !disabled => {
                        let kind = attribute("type").unwrap_or_default().to_ascii_lowercase();
                        let checked = attributes.contains_key("checked");
                        let value = match kind.as_str() {
                            "checkbox" | "radio" if checked => {
                                Some(attribute("value").unwrap_or_else(|| "on".to_owned()))
                            }
                            "checkbox" | "radio" | "submit" | "button" | "image" | "reset"
                            | "file" => None,
                            _ => Some(attribute("value").unwrap_or_default()),
                        };
                        if let (Some(name), Some(value)) = (name, value) {
                            reading.fields.push((name, value));
                        }
                    }
                    b"select" if !disabled => {
                        reading.end_select();
                        if let Some(name) = name {
                            reading.select = Some((name, None, None));
                        }
                    }
                    b"option" if !disabled => {
                        reading.end_option();
                        let selected = attributes.contains_key("selected");
                        match attribute("value") {
                            Some(value) => reading.choose(value, selected),
                            None => reading.option_text = Some((selected, String::new())),
                        }
                    }
                    b"button"
                        if attribute("id").as_deref() == Some(GRANT_ID)
                            && attribute("type")
                                .is_none_or(|kind| kind.eq_ignore_ascii_case("submit")) =>
                    {
                        reading.grant = Some((
                            name.unwrap_or_default(),
                            attribute("value").unwrap_or_default(),
                        ));
                    }
                    _ => {}
                }
            }
            Token::String(text) => {
                if let Some((_, option)) = &mut reading.option_text {
                    option.push_str(&String::from_utf8_lossy(&text));
                }
            }
            Token::EndTag(tag) => match tag.name.as_slice() {
                b"option" => reading.end_option(),
                b"select" => reading.end_select(),
                b"form" => {
                    reading.end_select();
                    let ended = form.take();
                    if ended.as_ref().is_some_and(|f| f.grant.is_some()) {
                        found = ended;
                        break;
                    }
                }
                _ => {}
            },
            _ => {}
        }
    }
    // A form left open at the end of the page ends there, as in a browser.
    if found.is_none()
        && let Some(mut open) = form.filter(|f| f.grant.is_some())
    {
        open.end_select();
        found = Some(open);
    }
    let Some(Reading { action, post, mut fields, grant, .. }) = found else {
        return Err(changed(format!("no form holds a submit button with id=\"{GRANT_ID}\"")));
    };
    if !post {
        return Err(changed("the grant button's form does not post".to_owned()));
    }
    let missing: Vec<&str> = REQUIRED_FIELDS
        .into_iter()
        .filter(|required| !fields.iter().any(|(name, _)| name == required))
        .collect();
    if !missing.is_empty() {
        let sent: Vec<&str> = fields.iter().map(|(name, _)| name.as_str()).collect();
        return Err(changed(format!("its form would not send {missing:?} (it sends {sent:?})")));
    }
    let action = match action.filter(|a| !a.is_empty()) {
        Some(action) => page
            .join(&action)
            .map_err(|e| changed(format!("the form's action {action:?} is not a URL: {e}")))?,
        None => page.clone(),
    };
    if let Some((name, value)) = grant
        && !name.is_empty()
    {
        fields.push((name, value));
    }
    Ok(ConsentForm { action, fields })
}

/// A tag's attributes as text (html5gum has decoded character references).
fn attributes<V: std::ops::Deref<Target = html5gum::HtmlString>>(
    attributes: &BTreeMap<html5gum::HtmlString, V>,
) -> BTreeMap<String, String> {
    attributes
        .iter()
        .map(|(name, value)| {
            let value: &html5gum::HtmlString = value;
            (
                String::from_utf8_lossy(name).to_ascii_lowercase(),
                String::from_utf8_lossy(value).into_owned(),
            )
        })
        .collect()
}

/// Mints an authorization code for `request` as a person would: opens its
/// authorize URL, reads the consent page ([`read_consent_page`]), presses
/// "Grant access" as the preselected user, and returns the `code` of the
/// redirect.
///
/// `http` must not follow redirects ([`crate::http_client`]): the redirect
/// goes to the SPA, which need not be running.
///
/// # Errors
///
/// [`ConsentError`]: fakebucket unreachable, the request refused (a wrong
/// `redirect_uri`, say), the page changed, or no code in the redirect.
pub async fn mint_code(
    http: &reqwest::Client,
    request: &Authorization,
) -> Result<String, ConsentError> {
    let page_url = request.to_url();
    let http_error = |step, url: &Url| {
        let url = url.to_string();
        move |source| ConsentError::Http { step, url, source }
    };
    const OPEN: &str = "open the consent page";
    let page = http.get(page_url.clone()).send().await.map_err(http_error(OPEN, &page_url))?;
    if page.status() != reqwest::StatusCode::OK {
        return Err(refused(OPEN, page).await);
    }
    let html = page.text().await.map_err(http_error(OPEN, &page_url))?;
    let form = read_consent_page(&html, &page_url)?;

    const GRANT: &str = "grant access";
    let answer = http
        .post(form.action.clone())
        .form(&form.fields)
        .send()
        .await
        .map_err(http_error(GRANT, &form.action))?;
    if answer.status() != reqwest::StatusCode::FOUND {
        return Err(refused(GRANT, answer).await);
    }
    // Read as the SPA reads its own address: the protocol's callback parser.
    let location = location(&answer).unwrap_or_default();
    let query = Url::parse(&location).ok().and_then(|url| url.query().map(str::to_owned));
    match query.as_deref().map(Callback::from_query) {
        Some(Ok(Callback::Code { code, .. })) => Ok(code.secret().to_owned()),
        _ => Err(ConsentError::NoCode { location }),
    }
}

/// The `Location` of an answer, if it has one.
fn location(answer: &reqwest::Response) -> Option<String> {
    answer.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// [`ConsentError::Refused`] for an unexpected answer: its redirect target,
/// or the start of its page.
async fn refused(step: &'static str, answer: reqwest::Response) -> ConsentError {
    let status = answer.status().as_u16();
    let detail = match location(&answer) {
        Some(location) => format!("redirected to {location}"),
        None => {
            let body = answer.text().await.unwrap_or_default();
            body.chars().take(600).collect()
        }
    };
    ConsentError::Refused { step, status, detail }
}

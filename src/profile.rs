//! The profile page's model: what to show from Bitbucket's `user` and
//! `emails` answers, decided without touching the DOM.
//!
//! Rules, each tested below:
//! - A field that is absent, null or empty is not shown at all.
//! - Everything is text. A value becomes a link only when it is an `https`
//!   URL; anything else (including `http`, which fakebucket serves on
//!   loopback) is shown as plain text, so a hostile profile can never plant a
//!   `javascript:` or plain-http link.
//! - The avatar is shown when its URL is `https`, or `http` on a loopback
//!   host (the local demo); otherwise the view falls back to initials.
//! - "Member since" is the calendar date of `created_on` in words.

use crate::problem::Problem;
use crate::weburl::WebUrl;
use dance_protocol::bitbucket::{Email, User};

/// A value of the profile, as text or as an https link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// Plain text.
    Text(String),
    /// A link whose target is an https URL.
    Link {
        /// The https target.
        href: String,
        /// The link text.
        text: String,
    },
}

/// One labelled line of the profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    /// The element id of the value, stable for tests (such as `account-id`).
    pub id: &'static str,
    /// The label shown next to it.
    pub label: &'static str,
    /// The value.
    pub value: Value,
}

/// One email address with its badges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailRow {
    /// The address.
    pub address: String,
    /// Whether it is the primary address.
    pub primary: bool,
    /// Whether it is confirmed.
    pub confirmed: bool,
}

/// Everything the profile view shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    /// The heading: display name, else nickname, else a neutral label.
    pub display_name: String,
    /// Up to two initials for the avatar placeholder.
    pub initials: String,
    /// The avatar image URL, when safe to load.
    pub avatar: Option<String>,
    /// The labelled fields, in display order, only those present.
    pub fields: Vec<Field>,
    /// The email addresses (primary first), or why they couldn't be loaded;
    /// `None` when this site doesn't ask for them (`email` is not among the
    /// scopes of its config.json).
    pub emails: Option<Result<Vec<EmailRow>, Problem>>,
}

impl Profile {
    /// Builds the model from the API's answers.
    pub fn new(user: &User, emails: Result<Vec<Email>, Problem>) -> Self {
        Self::build(user, Some(emails))
    }

    /// The model of a site that doesn't read email addresses.
    pub fn without_emails(user: &User) -> Self {
        Self::build(user, None)
    }

    fn build(user: &User, emails: Option<Result<Vec<Email>, Problem>>) -> Self {
        let display_name = present(&user.display_name)
            .or_else(|| present(&user.nickname))
            .unwrap_or("Bitbucket user")
            .to_owned();
        let mut fields = Vec::new();
        let mut text = |id, label, value: Option<String>| {
            if let Some(value) = value {
                fields.push(Field { id, label, value: Value::Text(value) });
            }
        };
        text("nickname", "Nickname", present(&user.nickname).map(str::to_owned));
        text("account-id", "Account ID", present(&user.account_id).map(str::to_owned));
        text("uuid", "UUID", present(&user.uuid).map(str::to_owned));
        text("account-status", "Account status", present(&user.account_status).map(capitalise));
        text(
            "member-since",
            "Member since",
            user.member_since().map(|d| human_date(d.year, d.month, d.day)),
        );
        text(
            "two-factor",
            "Two-step verification",
            user.has_2fa_enabled.map(|on| if on { "On" } else { "Off" }.to_owned()),
        );
        text("location", "Location", present(&user.location).map(str::to_owned));
        if let Some(website) = present(&user.website) {
            fields.push(Field {
                id: "website",
                label: "Website",
                value: link_or_text(website, website),
            });
        }
        if let Some(html) = user.links.html.as_ref().and_then(|l| present_str(&l.href)) {
            fields.push(Field {
                id: "bitbucket-profile",
                label: "Bitbucket profile",
                value: link_or_text(html, "View on Bitbucket"),
            });
        }

        let avatar = user.links.avatar.as_ref().and_then(|l| safe_image(&l.href));
        let emails = emails.map(|emails| {
            emails.map(|list| {
                let mut rows: Vec<EmailRow> = list
                    .into_iter()
                    .filter(|e| !e.email.trim().is_empty())
                    .map(|e| EmailRow {
                        address: e.email,
                        primary: e.is_primary,
                        confirmed: e.is_confirmed,
                    })
                    .collect();
                // Primary first, the rest in Bitbucket's order (a partition,
                // not a sort: sorting code would weigh more than this list).
                let (mut first, rest): (Vec<EmailRow>, Vec<EmailRow>) =
                    rows.drain(..).partition(|row| row.primary);
                first.extend(rest);
                first
            })
        });
        Self { initials: initials(&display_name), display_name, avatar, fields, emails }
    }

    /// The field with this id, if shown.
    pub fn field(&self, id: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.id == id)
    }
}

/// The trimmed value when it is present and not blank.
fn present(value: &Option<String>) -> Option<&str> {
    value.as_deref().and_then(present_str)
}

/// The trimmed string when not blank.
fn present_str(value: &str) -> Option<&str> {
    let trimmed = value.trim();
    (!trimmed.is_empty()).then_some(trimmed)
}

/// `active` → `Active`. ASCII only: Unicode case tables would add ~12 KB
/// to the bundle for a value that is always ASCII.
fn capitalise(value: &str) -> String {
    let mut out = value.to_owned();
    if let Some(first) = out.get_mut(..1) {
        first.make_ascii_uppercase();
    }
    out
}

/// A link when `href` is an https URL, otherwise the raw value as text.
fn link_or_text(href: &str, text: &str) -> Value {
    match https_url(href) {
        Some(href) => Value::Link { href, text: text.to_owned() },
        None => Value::Text(href.to_owned()),
    }
}

/// The normalised URL when `candidate` is an absolute https URL with a host
/// and no credentials.
pub fn https_url(candidate: &str) -> Option<String> {
    let url = WebUrl::parse(candidate.trim())?;
    (url.scheme() == "https" && !url.host().is_empty() && !url.has_credentials())
        .then(|| url.into())
}

/// The avatar URL when it is https, or http on loopback (the local demo).
pub fn safe_image(candidate: &str) -> Option<String> {
    if let Some(url) = https_url(candidate) {
        return Some(url);
    }
    let url = WebUrl::parse(candidate.trim())?;
    (url.scheme() == "http" && url.is_loopback() && !url.has_credentials()).then(|| url.into())
}

/// Up to two initials from a name; ASCII letters upper-cased (see
/// [`capitalise`]), other characters kept as they are.
fn initials(name: &str) -> String {
    name.split_whitespace()
        .filter_map(|word| word.chars().next())
        .take(2)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// `2019, 2, 19` → `19 February 2019`.
pub fn human_date(year: u16, month: u8, day: u8) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let name = MONTHS.get(usize::from(month.saturating_sub(1))).copied().unwrap_or("?");
    format!("{day} {name} {year}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problem::Permission;

    /// The captured `GET /2.0/user` sample from
    /// `crates/protocol/tests/data/api-schemas.json`.
    const CAPTURED: &str = r#"{
      "display_name": "Ilka Guigova", "has_2fa_enabled": null,
      "links": {
        "self": {"href": "https://api.bitbucket.org/2.0/users/%7B768f8c62-7f2a-4914-bf33-3f412fc1d3a4%7D"},
        "html": {"href": "https://bitbucket.org/%7B768f8c62-7f2a-4914-bf33-3f412fc1d3a4%7D/"},
        "avatar": {"href": "https://avatar-management--avatars.us-west-2.prod.public.atl-paas.net/5c65cab48bcc9e016aeece31/5f898db1-fbf6-456c-a2a5-32f917de04bf/128"}
      },
      "nickname": "Ilka Guigova", "account_id": "5c65cab48bcc9e016aeece31",
      "created_on": "2019-02-19T10:36:46.361566-08:00", "is_staff": false,
      "account_status": "active", "type": "user", "uuid": "{768f8c62-7f2a-4914-bf33-3f412fc1d3a4}"
    }"#;

    fn user(json: &str) -> User {
        serde_json::from_str(json).expect("valid user JSON")
    }

    fn email(address: &str, primary: bool, confirmed: bool) -> Email {
        Email {
            email: address.into(),
            is_primary: primary,
            is_confirmed: confirmed,
            kind: Some("email".into()),
        }
    }

    fn text(profile: &Profile, id: &str) -> Option<String> {
        match &profile.field(id)?.value {
            Value::Text(t) => Some(t.clone()),
            Value::Link { text, .. } => Some(text.clone()),
        }
    }

    #[test]
    fn the_captured_profile() {
        let profile =
            Profile::new(&user(CAPTURED), Ok(vec![email("iguigova@logonlabs.com", true, true)]));
        assert_eq!(profile.display_name, "Ilka Guigova");
        assert_eq!(profile.initials, "IG");
        assert_eq!(text(&profile, "member-since").as_deref(), Some("19 February 2019"));
        assert_eq!(text(&profile, "account-status").as_deref(), Some("Active"));
        assert_eq!(
            text(&profile, "uuid").as_deref(),
            Some("{768f8c62-7f2a-4914-bf33-3f412fc1d3a4}")
        );
        assert_eq!(profile.field("two-factor"), None, "null 2FA is not shown");
        assert_eq!(profile.field("location"), None);
        assert_eq!(profile.field("website"), None);
        assert!(matches!(
            &profile.field("bitbucket-profile").expect("shown").value,
            Value::Link { href, .. } if href.starts_with("https://bitbucket.org/")
        ));
        assert!(
            profile.avatar.as_deref().is_some_and(|a| a.starts_with("https://avatar-management"))
        );
        assert_eq!(profile.emails.as_ref().map(|e| e.as_ref().map(Vec::len)), Some(Ok(1)));
    }

    #[test]
    fn absent_null_and_empty_fields_are_hidden() {
        let profile =
            Profile::new(&user(r#"{"website":"","location":"  ","links":null}"#), Ok(vec![]));
        assert_eq!(profile.display_name, "Bitbucket user");
        assert!(profile.fields.is_empty(), "{:?}", profile.fields);
        assert_eq!(profile.avatar, None);
    }

    #[test]
    fn links_only_for_https() {
        let p = Profile::new(
            &user(
                r#"{"website":"javascript:alert(1)","links":{"html":{"href":"http://127.0.0.1:9090/alice/"}}}"#,
            ),
            Ok(vec![]),
        );
        assert_eq!(
            p.field("website").map(|f| &f.value),
            Some(&Value::Text("javascript:alert(1)".into()))
        );
        assert_eq!(
            p.field("bitbucket-profile").map(|f| &f.value),
            Some(&Value::Text("http://127.0.0.1:9090/alice/".into())),
            "fakebucket's http profile link is shown as text"
        );
        let p = Profile::new(&user(r#"{"website":"https://alice.example/blog"}"#), Ok(vec![]));
        assert_eq!(
            p.field("website").map(|f| &f.value),
            Some(&Value::Link {
                href: "https://alice.example/blog".into(),
                text: "https://alice.example/blog".into()
            })
        );
        assert_eq!(https_url("https://user:pw@x.example/"), None);
        assert_eq!(https_url("example.com"), None);
    }

    #[test]
    fn avatars_https_or_loopback_http() {
        assert!(safe_image("http://127.0.0.1:9090/avatars/alice.svg").is_some());
        assert!(safe_image("http://localhost:9090/a.png").is_some());
        assert_eq!(safe_image("http://evil.example/a.png"), None);
        assert_eq!(safe_image("data:image/png;base64,AAAA"), None);
        assert_eq!(safe_image("javascript:alert(1)"), None);
    }

    #[test]
    fn two_factor_and_emails() {
        let p = Profile::new(
            &user(r#"{"has_2fa_enabled":true,"nickname":"ali"}"#),
            Ok(vec![
                email("b@x.test", false, false),
                email("", true, true),
                email("a@x.test", true, true),
            ]),
        );
        assert_eq!(p.display_name, "ali");
        assert_eq!(text(&p, "two-factor").as_deref(), Some("On"));
        let rows = p.emails.expect("asked for").expect("emails");
        assert_eq!(rows.len(), 2, "blank addresses are dropped");
        assert_eq!(rows[0].address, "a@x.test", "primary first");
        assert!(!rows[1].confirmed);

        let off = Profile::new(
            &user(r#"{"has_2fa_enabled":false}"#),
            Err(Problem::api_forbidden(Permission::Email, "no")),
        );
        assert_eq!(text(&off, "two-factor").as_deref(), Some("Off"));
        assert!(off.emails.is_some_and(|e| e.is_err()));
        let unasked = Profile::without_emails(&user(r#"{"display_name":"Ali"}"#));
        assert!(unasked.emails.is_none(), "a site that doesn't ask shows no emails section");
        assert_eq!(unasked.display_name, "Ali");
    }

    #[test]
    fn dates_in_words() {
        assert_eq!(human_date(2010, 7, 7), "7 July 2010");
        assert_eq!(human_date(2024, 12, 31), "31 December 2024");
        let p = Profile::new(&user(r#"{"created_on":"not a date"}"#), Ok(vec![]));
        assert_eq!(p.field("member-since"), None);
    }
}

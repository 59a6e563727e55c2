//! Bitbucket Cloud's API bodies for `GET /2.0/user` and `GET /2.0/user/emails`.
//!
//! Shapes follow the official `user`, `link` and `error` schemas and the
//! payloads captured in `tests/data/api-schemas.json` (see
//! `docs/bitbucket.md` at the repository's root). Bitbucket omits
//! or nulls many fields (`has_2fa_enabled`, `location`, `website`, and all
//! `links` with `?fields=-links`), so everything but an email's address is
//! optional here and absent, null and missing all read as `None`.

use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::SerializeMap as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A hyperlink object: `{"href": "...", "name": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// The target URL.
    pub href: String,
    /// An optional label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The `links` object of a user.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserLinks {
    /// The API URL of this user.
    #[serde(rename = "self", default, skip_serializing_if = "Option::is_none")]
    pub self_: Option<Link>,
    /// The user's profile page on bitbucket.org.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<Link>,
    /// The avatar image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar: Option<Link>,
    /// The user's repositories (API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repositories: Option<Link>,
    /// The user's snippets (API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snippets: Option<Link>,
    /// The user's webhooks (API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<Link>,
}

/// A Bitbucket `user` object, as `GET /2.0/user` returns it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Always `"user"` for this endpoint.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The UUID in braces, such as `{768f8c62-...}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// The Atlassian account id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// The name to show.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The handle; not unique.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nickname: Option<String>,
    /// `"active"`, or another status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_status: Option<String>,
    /// When the account was created, RFC 3339 with offset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_on: Option<String>,
    /// Whether two-step verification is on; Bitbucket often sends null.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_2fa_enabled: Option<bool>,
    /// Whether this is an Atlassian staff account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_staff: Option<bool>,
    /// Free-text location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Free-text website; may be empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    /// Related links.
    #[serde(default, deserialize_with = "null_as_default")]
    pub links: UserLinks,
}

/// A calendar date, as shown for "member since".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CalendarDate {
    /// The year, such as 2019.
    pub year: u16,
    /// The month, 1 to 12.
    pub month: u8,
    /// The day of the month, 1 to 31.
    pub day: u8,
}

impl User {
    /// The date part of `created_on`, as written (in the account's offset),
    /// or `None` when the field is absent or not an RFC 3339 date.
    pub fn member_since(&self) -> Option<CalendarDate> {
        let text = self.created_on.as_deref()?;
        let date = text.get(..10)?;
        let bytes = date.as_bytes();
        if bytes[4] != b'-' || bytes[7] != b'-' {
            return None;
        }
        let year: u16 = date[..4].parse().ok()?;
        let month: u8 = date[5..7].parse().ok()?;
        let day: u8 = date[8..10].parse().ok()?;
        let rest = &text[10..];
        let well_formed = rest.is_empty() || rest.starts_with('T') || rest.starts_with('t');
        ((1..=12).contains(&month) && (1..=31).contains(&day) && well_formed)
            .then_some(CalendarDate { year, month, day })
    }
}

/// One of the user's email addresses, from `GET /2.0/user/emails`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Email {
    /// The address.
    pub email: String,
    /// Whether this is the primary address.
    #[serde(default, deserialize_with = "null_as_default")]
    pub is_primary: bool,
    /// Whether the user confirmed the address.
    #[serde(default, deserialize_with = "null_as_default")]
    pub is_confirmed: bool,
    /// Always `"email"`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// A page of results. Only `values` and `next` are guaranteed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Paginated<T> {
    /// The items of this page.
    pub values: Vec<T>,
    /// The URL of the next page, absent on the last one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// The URL of the previous page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    /// This page's number, from 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<u64>,
    /// Items per page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagelen: Option<u64>,
    /// The total number of items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// The error body of Bitbucket's API: `{"type":"error","error":{...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// Always `"error"`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// What went wrong.
    pub error: ApiErrorDetail,
}

/// The `error` object inside an [`ApiError`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiErrorDetail {
    /// A short message, such as `Access token expired.`.
    pub message: String,
    /// More about the error, when there is any: usually text, but an object
    /// for a missing scope (`{"required": [...], "granted": [...]}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<ErrorDetail>,
}

impl ApiErrorDetail {
    /// The scopes a 403 says the endpoint requires, when its `detail` is
    /// Bitbucket's `{"required": [...]}` object; empty otherwise.
    pub fn required_scopes(&self) -> Vec<String> {
        match &self.detail {
            Some(ErrorDetail::Scopes { required, .. }) => required.clone(),
            _ => Vec::new(),
        }
    }
}

/// The `detail` of an [`ApiErrorDetail`].
///
/// Read by a small hand-written visitor instead of into a
/// `serde_json::Value`, which would bring a whole JSON tree (and a B-tree
/// map) into the SPA's bundle for one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorDetail {
    /// Text, the usual form.
    Text(String),
    /// The object a 403 for a missing scope carries:
    /// `{"required": [...], "granted": [...]}` (other keys are ignored,
    /// and entries that aren't strings are skipped).
    Scopes {
        /// The scopes the endpoint requires.
        required: Vec<String>,
        /// The scopes the token has.
        granted: Vec<String>,
    },
    /// Any other JSON value; its content is not kept.
    Other,
}

impl Serialize for ErrorDetail {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Text(text) => serializer.serialize_str(text),
            Self::Scopes { required, granted } => {
                let mut map = serializer.serialize_map(Some(2))?;
                map.serialize_entry("granted", granted)?;
                map.serialize_entry("required", required)?;
                map.end()
            }
            Self::Other => serializer.serialize_unit(),
        }
    }
}

impl<'de> Deserialize<'de> for ErrorDetail {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(DetailVisitor)
    }
}

/// Reads an [`ErrorDetail`] from any JSON value.
struct DetailVisitor;

impl<'de> Visitor<'de> for DetailVisitor {
    type Value = ErrorDetail;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an error detail")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<ErrorDetail, E> {
        Ok(ErrorDetail::Text(text.to_owned()))
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<ErrorDetail, E> {
        Ok(ErrorDetail::Text(text))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ErrorDetail, A::Error> {
        let (mut required, mut granted) = (None, None);
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "required" => required = Some(map.next_value::<Scopes>()?.0),
                "granted" => granted = Some(map.next_value::<Scopes>()?.0),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(if required.is_none() && granted.is_none() {
            ErrorDetail::Other
        } else {
            ErrorDetail::Scopes {
                required: required.unwrap_or_default(),
                granted: granted.unwrap_or_default(),
            }
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ErrorDetail, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(ErrorDetail::Other)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<ErrorDetail, E> {
        Ok(ErrorDetail::Other)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<ErrorDetail, E> {
        Ok(ErrorDetail::Other)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<ErrorDetail, E> {
        Ok(ErrorDetail::Other)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<ErrorDetail, E> {
        Ok(ErrorDetail::Other)
    }

    fn visit_unit<E: de::Error>(self) -> Result<ErrorDetail, E> {
        Ok(ErrorDetail::Other)
    }
}

/// A list of scope names; entries that aren't strings are skipped, and
/// anything but a list reads as empty.
struct Scopes(Vec<String>);

impl<'de> Deserialize<'de> for Scopes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScopesVisitor;
        impl<'de> Visitor<'de> for ScopesVisitor {
            type Value = Scopes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of scopes")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scopes, A::Error> {
                let mut scopes = Vec::new();
                while let Some(item) = seq.next_element::<ErrorDetail>()? {
                    if let ErrorDetail::Text(scope) = item {
                        scopes.push(scope);
                    }
                }
                Ok(Scopes(scopes))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scopes, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scopes(Vec::new()))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Scopes, E> {
                Ok(Scopes(Vec::new()))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Scopes, E> {
                Ok(Scopes(Vec::new()))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Scopes, E> {
                Ok(Scopes(Vec::new()))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Scopes, E> {
                Ok(Scopes(Vec::new()))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Scopes, E> {
                Ok(Scopes(Vec::new()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Scopes, E> {
                Ok(Scopes(Vec::new()))
            }
        }
        deserializer.deserialize_any(ScopesVisitor)
    }
}

/// The exact message Bitbucket sends with a 401 for an expired access token.
pub const ACCESS_TOKEN_EXPIRED: &str = "Access token expired.";

impl ApiError {
    /// An error body with just a message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            kind: Some("error".into()),
            error: ApiErrorDetail { message: message.into(), detail: None },
        }
    }

    /// Whether this is Bitbucket's "Access token expired." answer, after
    /// which a client refreshes once and retries.
    pub fn is_token_expired(&self) -> bool {
        self.error.message == ACCESS_TOKEN_EXPIRED
    }
}

/// Reads `null` as the type's default, for fields Bitbucket sometimes nulls.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_and_null_fields_are_tolerated() {
        let user: User = serde_json::from_str(
            r#"{"type":"user","display_name":null,"location":null,"has_2fa_enabled":null,"links":null}"#,
        ).expect("tolerant");
        assert_eq!(user, User { kind: Some("user".into()), ..User::default() });
        let user: User = serde_json::from_str("{}").expect("empty object");
        assert_eq!(user.member_since(), None);
        let email: Email =
            serde_json::from_str(r#"{"email":"a@b.test","is_primary":null}"#).expect("tolerant");
        assert!(!email.is_primary && !email.is_confirmed);
        assert!(
            serde_json::from_str::<Email>(r#"{"is_primary":true}"#).is_err(),
            "an email needs an address"
        );
    }

    #[test]
    fn member_since_reads_the_date() {
        let mut user =
            User { created_on: Some("2019-02-19T10:36:46.361566-08:00".into()), ..User::default() };
        assert_eq!(user.member_since(), Some(CalendarDate { year: 2019, month: 2, day: 19 }));
        for bad in
            ["", "yesterday", "2019-13-01T00:00:00Z", "2019/02/19", "2019-02-19junk", "20é9-02-19"]
        {
            user.created_on = Some(bad.into());
            assert_eq!(user.member_since(), None, "{bad}");
        }
    }

    #[test]
    fn expired_token_is_recognised() {
        let error: ApiError =
            serde_json::from_str(r#"{"type":"error","error":{"message":"Access token expired."}}"#)
                .expect("valid");
        assert!(error.is_token_expired());
        assert!(!ApiError::new("Resource not found").is_token_expired());
    }

    #[test]
    fn missing_scope_detail_is_an_object() {
        let error: ApiError = serde_json::from_str(
            r#"{"type":"error","error":{"message":"Your credentials lack one or more required privilege scopes.","detail":{"granted":["account"],"required":["email"]}}}"#,
        )
        .expect("403 body parses");
        assert_eq!(error.error.required_scopes(), vec!["email".to_owned()]);
        assert_eq!(
            error.error.detail,
            Some(ErrorDetail::Scopes {
                required: vec!["email".into()],
                granted: vec!["account".into()]
            })
        );
        assert!(ApiError::new("x").error.required_scopes().is_empty());
        let round_trip: ApiError =
            serde_json::from_str(&serde_json::to_string(&error).expect("serialises"))
                .expect("parses");
        assert_eq!(round_trip, error);
    }

    #[test]
    fn any_detail_shape_is_tolerated() {
        let detail = |json: &str| {
            let body = format!(r#"{{"type":"error","error":{{"message":"m","detail":{json}}}}}"#);
            serde_json::from_str::<ApiError>(&body).map(|e| e.error.detail)
        };
        assert_eq!(detail(r#""text""#).ok(), Some(Some(ErrorDetail::Text("text".into()))));
        assert_eq!(detail("null").ok(), Some(None));
        for other in ["1", "-1", "1.5", "true", "[1,{}]", r#"{"x":{"y":[1]}}"#] {
            assert_eq!(detail(other).ok(), Some(Some(ErrorDetail::Other)), "{other}");
        }
        assert_eq!(
            detail(r#"{"required":["a",1,null,"b"],"granted":{"odd":true},"x":[]}"#).ok(),
            Some(Some(ErrorDetail::Scopes {
                required: vec!["a".into(), "b".into()],
                granted: Vec::new(),
            }))
        );
        assert!(detail("[").is_err(), "broken JSON is still an error");
    }
}

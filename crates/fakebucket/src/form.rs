//! Reading `application/x-www-form-urlencoded` query strings and bodies the
//! way Bitbucket (a Django application) does: when a name repeats, the last
//! value wins.

use std::collections::HashMap;

/// The fields of a urlencoded string, last value winning.
pub(crate) fn parse(raw: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(raw).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

/// A field's value, with an empty value read as absent.
pub(crate) fn get<'a>(fields: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    fields.get(name).map(String::as_str).filter(|v| !v.is_empty())
}

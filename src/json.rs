//! JSON, parsed by the browser itself.
//!
//! In the browser, [`from_str`] asks the page's own `JSON.parse` to read the
//! text, copies the result into a [`Json`] tree, and lets the type's serde
//! `Deserialize` (the derives of `dance-protocol`, the same code the relay
//! and fakebucket run) read that tree. The bundle carries no JSON parser of
//! its own: serde_json's parser, number tables and error messages were about
//! a tenth of the wasm. Native builds (the unit tests) read the text with
//! serde_json into the same tree, so everything from the tree on is tested
//! natively, and the browser tests exercise `JSON.parse`.
//!
//! What follows from reading through `JSON.parse`, on both sides alike:
//! - numbers are `f64`s: integers are exact up to 2^53 and `1.0` reads as `1`
//!   (serde_json refuses `7200.0` where an integer is wanted; we read 7200);
//! - a key given twice keeps its first position and its last value (serde_json
//!   refuses a repeated field of a struct);
//! - nesting deeper than [`MAX_DEPTH`] is refused rather than recursed into;
//! - syntax errors say where, never quote the text (it may hold a token).
//!
//! And what only the browser does, which the app never meets in practice:
//! a lone surrogate escape (`"\ud800"`) reads as U+FFFD where serde_json
//! refuses it; `1e400` reads as infinity where serde_json refuses it; and
//! `Object.entries` lists integer-like keys (`"2"`) first.
//!
//! Serialising (the app's own session records) still goes through
//! `serde_json::to_string`, whose writer is small.

use serde::de::{self, DeserializeOwned, IntoDeserializer, Unexpected, Visitor};
use std::fmt;

/// How deeply arrays and objects may nest (below serde_json's own 128).
pub const MAX_DEPTH: usize = 100;

/// A parsed JSON document.
#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, as JavaScript holds it.
    Number(f64),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<Json>),
    /// An object: its keys in order (in the browser, integer-like keys
    /// first), each once.
    Object(Vec<(String, Json)>),
}

/// Why a text could not be read as the type asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonError(String);

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for JsonError {}

impl de::Error for JsonError {
    fn custom<T: fmt::Display>(message: T) -> Self {
        Self(message.to_string())
    }

    // serde's default formats the unexpected value itself, which for a float
    // would bring float printing into the bundle; the kind of value is what
    // a reader needs.
    fn invalid_type(unexpected: Unexpected<'_>, expected: &dyn de::Expected) -> Self {
        Self(format!("invalid type: {}, expected {expected}", kind(&unexpected)))
    }

    fn invalid_value(unexpected: Unexpected<'_>, expected: &dyn de::Expected) -> Self {
        Self(format!("invalid value: {}, expected {expected}", kind(&unexpected)))
    }
}

/// The kind of an unexpected value, without printing it.
fn kind(unexpected: &Unexpected<'_>) -> &'static str {
    match unexpected {
        Unexpected::Bool(_) => "a boolean",
        Unexpected::Unsigned(_) | Unexpected::Signed(_) | Unexpected::Float(_) => "a number",
        Unexpected::Char(_) | Unexpected::Str(_) => "a string",
        Unexpected::Unit | Unexpected::Option => "null",
        Unexpected::Seq => "an array",
        Unexpected::Map => "an object",
        _ => "another kind of value",
    }
}

/// Parses `text` and reads it as a `T`.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, JsonError> {
    T::deserialize(parse(text)?)
}

/// Parses `text` into a [`Json`] tree.
pub fn parse(text: &str) -> Result<Json, JsonError> {
    backend::parse(text)
}

impl Json {
    /// The kind of this value, as messages name it: "a string", "an array"...
    pub fn kind(&self) -> &'static str {
        kind(&self.unexpected())
    }

    /// The error for a visitor that wanted another kind of value.
    fn invalid<'de, V: Visitor<'de>>(&self, visitor: &V) -> JsonError {
        de::Error::invalid_type(self.unexpected(), visitor)
    }

    fn unexpected(&self) -> Unexpected<'_> {
        match self {
            Self::Null => Unexpected::Unit,
            Self::Bool(b) => Unexpected::Bool(*b),
            Self::Number(n) => Unexpected::Float(*n),
            Self::String(s) => Unexpected::Str(s),
            Self::Array(_) => Unexpected::Seq,
            Self::Object(_) => Unexpected::Map,
        }
    }
}

impl<'de> de::Deserializer<'de> for Json {
    type Error = JsonError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, JsonError> {
        match self {
            Self::Null => visitor.visit_unit(),
            Self::Bool(b) => visitor.visit_bool(b),
            // Whole non-negative numbers go to the integer visitor. JSON.parse
            // can't tell `7200.0` from `7200`, so unlike serde_json both read
            // as an integer; negative numbers go to the float visitor (no
            // type the app reads holds a negative integer).
            Self::Number(n)
                if n.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&n) =>
            {
                visitor.visit_u64(n as u64)
            }
            Self::Number(n) => visitor.visit_f64(n),
            Self::String(s) => visitor.visit_string(s),
            Self::Array(items) => visitor.visit_seq(Items(items.into_iter())),
            Self::Object(entries) => visitor.visit_map(Entries(entries.into_iter(), None)),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, JsonError> {
        match self {
            Self::Null => visitor.visit_none(),
            other => visitor.visit_some(other),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, JsonError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, JsonError> {
        // Unit variants, written as their name; nothing the app reads has others.
        match self {
            Self::String(name) => visitor.visit_enum(name.into_deserializer()),
            other => Err(de::Error::invalid_type(other.unexpected(), &"a string")),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, JsonError> {
        visitor.visit_unit()
    }

    // A type that says what it wants gets only that: its visitor's other
    // methods (a struct's `visit_seq`, say) are then never called, and stay
    // out of the bundle. Unlike serde_json, an array is never read as a struct.
    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, JsonError> {
        match self {
            Self::Bool(b) => visitor.visit_bool(b),
            other => Err(other.invalid(&visitor)),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, JsonError> {
        match self {
            Self::String(s) => visitor.visit_string(s),
            other => Err(other.invalid(&visitor)),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, JsonError> {
        self.deserialize_string(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, JsonError> {
        self.deserialize_string(visitor)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, JsonError> {
        match self {
            Self::Array(items) => visitor.visit_seq(Items(items.into_iter())),
            other => Err(other.invalid(&visitor)),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, JsonError> {
        match self {
            Self::Object(entries) => visitor.visit_map(Entries(entries.into_iter(), None)),
            other => Err(other.invalid(&visitor)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, JsonError> {
        self.deserialize_map(visitor)
    }

    serde::forward_to_deserialize_any! {
        i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char
        bytes byte_buf unit unit_struct tuple tuple_struct
    }
}

/// The items of an array, for a visitor. (serde's `SeqDeserializer` would
/// also count them for a length check that no type the app reads needs; this
/// is smaller, and it is instantiated once per type.)
struct Items(std::vec::IntoIter<Json>);

impl<'de> de::SeqAccess<'de> for Items {
    type Error = JsonError;

    fn next_element_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, JsonError> {
        self.0.next().map(|item| seed.deserialize(item)).transpose()
    }
}

/// The entries of an object, for a visitor, and the value of the key just read.
struct Entries(std::vec::IntoIter<(String, Json)>, Option<Json>);

impl<'de> de::MapAccess<'de> for Entries {
    type Error = JsonError;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, JsonError> {
        let Some((key, value)) = self.0.next() else { return Ok(None) };
        self.1 = Some(value);
        seed.deserialize(key.into_deserializer()).map(Some)
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, JsonError> {
        seed.deserialize(self.1.take().unwrap_or(Json::Null))
    }
}

#[cfg(target_arch = "wasm32")]
mod backend {
    use super::{Json, JsonError, MAX_DEPTH};
    use wasm_bindgen::{JsCast as _, JsValue};

    pub(super) fn parse(text: &str) -> Result<Json, JsonError> {
        let value = js_sys::JSON::parse(text).map_err(|error| {
            let message = error.dyn_ref::<js_sys::Error>().map(|e| String::from(e.message()));
            JsonError(syntax_error(message.as_deref().unwrap_or_default()))
        })?;
        tree(&value, 0)
    }

    /// JSON.parse's message without the text it quotes (Chromium quotes up
    /// to the whole input, which may be a token response): only where.
    fn syntax_error(message: &str) -> String {
        match message.find(" at position ") {
            Some(at) => format!("not valid JSON{}", &message[at..]),
            None => "not valid JSON".to_owned(),
        }
    }

    fn tree(value: &JsValue, depth: usize) -> Result<Json, JsonError> {
        if let Some(b) = value.as_bool() {
            return Ok(Json::Bool(b));
        }
        if let Some(n) = value.as_f64() {
            return Ok(Json::Number(n));
        }
        if let Some(s) = value.as_string() {
            return Ok(Json::String(s));
        }
        if !value.is_object() {
            return Ok(Json::Null);
        }
        if depth == MAX_DEPTH {
            return Err(JsonError(format!("nested more than {MAX_DEPTH} levels deep")));
        }
        if let Some(array) = value.dyn_ref::<js_sys::Array>() {
            return array
                .iter()
                .map(|item| tree(&item, depth + 1))
                .collect::<Result<_, _>>()
                .map(Json::Array);
        }
        let mut entries = Vec::new();
        for entry in js_sys::Object::entries(value.unchecked_ref()).iter() {
            let entry: js_sys::Array = entry.unchecked_into();
            let key = entry.get(0).as_string().unwrap_or_default();
            entries.push((key, tree(&entry.get(1), depth + 1)?));
        }
        Ok(Json::Object(entries))
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod backend {
    //! serde_json reads the text; this visitor builds the tree with the
    //! browser's rules (numbers as f64, a repeated key keeps its place and
    //! takes the last value, nesting limited).
    use super::{Json, JsonError, MAX_DEPTH};
    use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
    use std::fmt;

    pub(super) fn parse(text: &str) -> Result<Json, JsonError> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let json = Tree(0).deserialize(&mut deserializer).map_err(|e| JsonError(e.to_string()))?;
        deserializer.end().map_err(|e| JsonError(e.to_string()))?;
        Ok(json)
    }

    /// A value at this depth.
    #[derive(Clone, Copy)]
    struct Tree(usize);

    impl<'de> DeserializeSeed<'de> for Tree {
        type Value = Json;

        fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Json, D::Error> {
            deserializer.deserialize_any(self)
        }
    }

    impl Tree {
        fn deeper<E: de::Error>(self) -> Result<Self, E> {
            if self.0 == MAX_DEPTH {
                return Err(E::custom(format!("nested more than {MAX_DEPTH} levels deep")));
            }
            Ok(Self(self.0 + 1))
        }
    }

    impl<'de> Visitor<'de> for Tree {
        type Value = Json;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON value")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Json, E> {
            Ok(Json::Null)
        }
        fn visit_bool<E: de::Error>(self, b: bool) -> Result<Json, E> {
            Ok(Json::Bool(b))
        }
        fn visit_u64<E: de::Error>(self, n: u64) -> Result<Json, E> {
            Ok(Json::Number(n as f64))
        }
        fn visit_i64<E: de::Error>(self, n: i64) -> Result<Json, E> {
            Ok(Json::Number(n as f64))
        }
        fn visit_f64<E: de::Error>(self, n: f64) -> Result<Json, E> {
            Ok(Json::Number(n))
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<Json, E> {
            Ok(Json::String(s.to_owned()))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
            let inner = self.deeper()?;
            let mut items = Vec::new();
            while let Some(item) = seq.next_element_seed(inner)? {
                items.push(item);
            }
            Ok(Json::Array(items))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
            let inner = self.deeper()?;
            let mut entries = Vec::new();
            while let Some(key) = map.next_key::<String>()? {
                let value = map.next_value_seed(inner)?;
                // A repeated key keeps its place and takes the new value, as in JavaScript.
                match entries.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, slot)) => *slot = value,
                    None => entries.push((key, value)),
                }
            }
            Ok(Json::Object(entries))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dance_protocol::bitbucket::{ApiError, Email, Paginated, User};
    use dance_protocol::token::{TokenError, TokenResponse};
    use serde::de::DeserializeOwned;

    /// Reads `text` both ways: through the tree, and with serde_json directly
    /// (what the relay does); they must agree.
    /// The one difference: serde_json also reads a struct from an array of
    /// its fields in order; the tree never does.
    fn both<T: DeserializeOwned + PartialEq + fmt::Debug>(text: &str) -> Result<T, JsonError> {
        let ours = from_str::<T>(text);
        let direct = serde_json::from_str::<T>(text);
        if ours.is_err() && direct.is_ok() && text.starts_with('[') {
            return ours;
        }
        assert_eq!(ours.as_ref().ok(), direct.as_ref().ok(), "{text}");
        ours
    }

    #[test]
    fn trees_keep_order_and_take_the_last_of_a_repeated_key() {
        assert_eq!(
            parse(r#"{"b": [1, -2, 0.5, "x", null, true], "a": {}, "b": false}"#),
            Ok(Json::Object(vec![
                ("b".to_owned(), Json::Bool(false)),
                ("a".to_owned(), Json::Object(vec![])),
            ]))
        );
        assert!(parse("{").is_err());
        assert!(parse("[] []").is_err(), "trailing characters");
        assert_eq!(parse("\"\\u00e9\""), Ok(Json::String("é".to_owned())));
    }

    #[test]
    fn nesting_is_limited() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(parse(&deep(MAX_DEPTH)).is_ok());
        let error = parse(&deep(MAX_DEPTH + 1)).expect_err("too deep");
        assert!(error.to_string().contains("nested"), "{error}");
    }

    #[test]
    fn every_captured_payload_reads_as_serde_json_reads_it() {
        let schemas: serde_json::Value =
            serde_json::from_str(include_str!("../crates/protocol/tests/data/api-schemas.json"))
                .expect("api-schemas.json");
        let mut seen = 0;
        let mut visit = vec![&schemas];
        while let Some(value) = visit.pop() {
            match value {
                serde_json::Value::Object(map) => visit.extend(map.values()),
                serde_json::Value::Array(items) => visit.extend(items),
                _ => continue,
            }
            let text = value.to_string();
            let _ = both::<User>(&text);
            let _ = both::<Email>(&text);
            let _ = both::<Paginated<Email>>(&text);
            let _ = both::<ApiError>(&text);
            let _ = both::<TokenResponse>(&text);
            let _ = both::<TokenError>(&text);
            seen += 1;
        }
        assert!(seen > 50, "only {seen} values in api-schemas.json");
    }

    #[test]
    fn token_answers_in_every_spelling_read_alike() {
        for text in [
            r#"{"access_token":"a","token_type":"bearer","expires_in":7200,"refresh_token":"r","scopes":"account email"}"#,
            r#"{"access_token":"a","token_type":"bearer","expires_in":"7200","scope":"account"}"#,
            r#"{"access_token":"a","token_type":"bearer","expires_in":7200.5}"#,
            r#"{"access_token":"a","token_type":"bearer","expires_in":-1}"#,
            r#"{"access_token":"a","token_type":"bearer","expires_in":null}"#,
            r#"{"access_token":"","token_type":"bearer"}"#,
            r#"{"token_type":"bearer"}"#,
            r#"{"error":"invalid_grant","error_description":"used"}"#,
            r#"{"error":"something_new"}"#,
            r#"{"error":42}"#,
            r#"[]"#,
        ] {
            let _ = both::<TokenResponse>(text);
            let _ = both::<TokenError>(text);
        }
    }

    #[test]
    fn api_errors_and_users_with_nulls_and_wrong_types_read_alike() {
        for text in [
            r#"{"type":"error","error":{"message":"Access token expired."}}"#,
            r#"{"type":"error","error":{"message":"m","detail":{"required":["email"],"granted":["account"]}}}"#,
            r#"{"type":"error","error":{"message":"m","detail":"text"}}"#,
            r#"{"type":"error","error":{"message":"m","detail":[1,2]}}"#,
            r#"{"type":"error","error":{"message":"m","detail":{"required":"email"}}}"#,
            r#"{"type":"error","error":{}}"#,
            r#"{"display_name":null,"has_2fa_enabled":null,"links":null}"#,
            r#"{"display_name":5}"#,
            r#"{"links":{"avatar":{"href":"https://a.test/x.png"},"html":{"href":7}}}"#,
            r#"{"values":[{"email":"a@b.test","is_primary":null,"is_confirmed":true}],"next":null}"#,
            r#"{"values":[{"is_primary":true}]}"#,
            r#"{"values":{}}"#,
        ] {
            let _ = both::<ApiError>(text);
            let _ = both::<User>(text);
            let _ = both::<Paginated<Email>>(text);
        }
    }

    #[test]
    fn whole_numbers_read_as_integers_however_written() {
        // JSON.parse can't tell these apart; serde_json refuses the second.
        let read = |text: &str| from_str::<TokenResponse>(text).map(|t| t.expires_in);
        let at =
            |n: &str| format!(r#"{{"access_token":"a","token_type":"bearer","expires_in":{n}}}"#);
        assert_eq!(read(&at("7200")), Ok(Some(7200)));
        assert_eq!(read(&at("7200.0")), Ok(Some(7200)));
        assert!(serde_json::from_str::<TokenResponse>(&at("7200.0")).is_err());
        // The largest whole numbers still read as integers (rounded, as f64s).
        assert_eq!(read(&at("18446744073709549568")), Ok(Some(18_446_744_073_709_549_568)));
        assert!(read(&at("7200.5")).is_err());
        assert!(read(&at("-1")).is_err());
    }

    #[test]
    fn errors_name_the_kind_of_value_not_the_value() {
        let error = from_str::<Paginated<Email>>(r#"{"values": 1.5}"#).expect_err("not a list");
        assert!(error.to_string().starts_with("invalid type: a number, expected"), "{error}");
        let error = from_str::<User>(r#"{"display_name": ["x"]}"#).expect_err("not a string");
        assert!(error.to_string().starts_with("invalid type: an array, expected"), "{error}");
    }
}

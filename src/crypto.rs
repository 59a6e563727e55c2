//! The browser's WebCrypto (`crypto.subtle`): every key, signature and
//! cipher the app uses, and base64url.
//!
//! The bundle carries no cryptography of its own: a P-256 or AES
//! implementation compiled to wasm would cost tens of kilobytes, and only the
//! browser can make a key whose private half no script can read
//! (`extractable: false`). The one exception is SHA-256, which
//! `dance-protocol` computes synchronously for PKCE's challenge, and which
//! the refresh locks' names reuse ([`crate::tabs::lock_name`]).
//!
//! Algorithm parameters are written as JSON text and read with `JSON.parse`:
//! one call where building the object would take a call per member. Every
//! function here fails with the browser's error instead of panicking;
//! callers turn it into a [`Problem`](crate::problem::Problem) or, for the
//! cross-tab channel, drop the message.

use js_sys::{Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::{JsCast as _, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{CryptoKey, SubtleCrypto};

/// base64url without padding (RFC 4648 5), as JWS wants: the protocol
/// crate's, already in the bundle for PKCE.
pub use dance_protocol::base64url;

/// A result whose error is what the browser threw or rejected with.
pub type JsResult<T> = Result<T, JsValue>;

/// `crypto.subtle`. Browsers offer it only to secure contexts (https pages,
/// and http on localhost): elsewhere it is missing, and so is signing in.
pub fn subtle() -> JsResult<SubtleCrypto> {
    let crypto = web_sys::window().ok_or("no window")?.crypto()?;
    let subtle = Reflect::get(&crypto, &JsValue::from_str("subtle"))?;
    if subtle.is_undefined() {
        return Err("crypto.subtle is missing".into());
    }
    Ok(subtle.unchecked_into())
}

/// A parameter object (or array) written as JSON.
fn params(json: &str) -> Object {
    js_sys::JSON::parse(json).map_or_else(|_| Object::new(), JsValue::unchecked_into)
}

/// A WebCrypto call's promise, to await.
fn settle(promise: JsResult<Promise>) -> JsResult<JsFuture> {
    promise.map(JsFuture::from)
}

/// The bytes of an `ArrayBuffer`.
fn bytes(buffer: JsValue) -> Vec<u8> {
    Uint8Array::new(&buffer).to_vec()
}

/// A fresh P-256 ECDSA key pair (a `CryptoKeyPair`) for signing. Its private
/// key can't be extracted; its public key can always be exported.
pub async fn signing_key_pair() -> JsResult<JsValue> {
    let algorithm = params(r#"{"name":"ECDSA","namedCurve":"P-256"}"#);
    settle(subtle()?.generate_key_with_object(&algorithm, false, &params(r#"["sign"]"#)))?.await
}

/// The `x` and `y` members of a public key exported as a JWK.
pub async fn public_xy(key: &CryptoKey) -> JsResult<(String, String)> {
    let jwk = settle(subtle()?.export_key("jwk", key))?.await?;
    let member = |name: &str| {
        Reflect::get(&jwk, &JsValue::from_str(name))?
            .as_string()
            .ok_or_else(|| JsValue::from_str("the exported key has no x or y"))
    };
    Ok((member("x")?, member("y")?))
}

/// An ECDSA P-256 SHA-256 signature of `data`: the 64 bytes `r || s`,
/// exactly what a JWS wants.
pub async fn sign(key: &CryptoKey, data: &[u8]) -> JsResult<Vec<u8>> {
    let algorithm = params(r#"{"name":"ECDSA","hash":"SHA-256"}"#);
    settle(subtle()?.sign_with_object_and_u8_array(&algorithm, key, data))?.await.map(bytes)
}

/// Encrypts and authenticates `plain` with the AES-GCM key whose bytes `k`
/// holds in base64url, under a fresh random 12-byte IV: `{iv: Uint8Array,
/// data: ArrayBuffer}`, ready for `postMessage` (both clone as they are: no
/// encoding needed).
pub async fn seal(k: &str, plain: &[u8]) -> JsResult<JsValue> {
    let mut iv = [0u8; 12];
    getrandom::getrandom(&mut iv).map_err(|_| JsValue::from_str("no random numbers"))?;
    let iv = JsValue::from(Uint8Array::from(&iv[..]));
    let data = aes_gcm(true, k, &iv, Uint8Array::from(plain).into()).await?;
    let sealed = Object::new();
    Reflect::set(&sealed, &JsValue::from_str("iv"), &iv)?;
    Reflect::set(&sealed, &JsValue::from_str("data"), &data)?;
    Ok(sealed.into())
}

/// Opens what [`seal`] made with the same key. Anything else fails: another
/// key, a changed byte of `iv` or `data` (the GCM tag no longer matches), or
/// a value of any other shape.
pub async fn open(k: &str, sealed: &JsValue) -> JsResult<Vec<u8>> {
    let iv = Reflect::get(sealed, &JsValue::from_str("iv"))?;
    let data = Reflect::get(sealed, &JsValue::from_str("data"))?;
    aes_gcm(false, k, &iv, data.unchecked_into()).await.map(bytes)
}

/// AES-GCM encryption (or decryption) of `data` under `iv`, with the key
/// whose bytes `k` holds in base64url. The key is imported as a JWK, so
/// WebCrypto decodes it (this code has no base64 decoder), and can't be
/// extracted.
async fn aes_gcm(encrypt: bool, k: &str, iv: &JsValue, data: Object) -> JsResult<JsValue> {
    let subtle = subtle()?;
    let jwk = params(&format!(r#"{{"kty":"oct","k":"{k}"}}"#));
    let usages = params(r#"["encrypt","decrypt"]"#);
    let key: CryptoKey =
        settle(subtle.import_key_with_str("jwk", &jwk, "AES-GCM", false, &usages))?
            .await?
            .unchecked_into();
    let algorithm = params(r#"{"name":"AES-GCM"}"#);
    Reflect::set(&algorithm, &JsValue::from_str("iv"), iv)?;
    settle(if encrypt {
        subtle.encrypt_with_object_and_buffer_source(&algorithm, &key, &data)
    } else {
        subtle.decrypt_with_object_and_buffer_source(&algorithm, &key, &data)
    })?
    .await
}

//! The session's signing key, kept in IndexedDB.
//!
//! The relay binds every refresh token it hands out to a key of this
//! browser (see [`crate::dpop`]): a P-256 ECDSA key pair that WebCrypto
//! makes with `extractable: false`, so its private key never leaves the
//! browser's key store, not to this code and not to a script injected into
//! the page later. A stolen refresh token is worthless without it.
//!
//! Session storage only holds strings, and a non-extractable key can't
//! become one; IndexedDB stores the `CryptoKeyPair` itself (structured
//! clone). Layout: database [`DATABASE`] (version 1), object store
//! [`STORE`], one record per session lineage, keyed by the lineage id
//! ([`crate::session::Session::lineage`]) with the `CryptoKeyPair` as value.
//!
//! IndexedDB is shared by the origin's tabs and outlives them: a reloaded or
//! duplicated tab finds its lineage's key there. The record is made at
//! sign-in, in the background while the code is exchanged, and deleted at sign-out, when the
//! session ends for good, and when the exchange fails for good. (A tab
//! closed while signed in leaves its record behind: nothing marks the
//! moment a session storage dies.)

use crate::crypto::{self, JsResult};
use crate::problem::Problem;
use js_sys::Promise;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast as _, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{CryptoKey, IdbDatabase, IdbRequest, IdbTransactionMode};

/// The IndexedDB database of this app.
pub const DATABASE: &str = "oauth-dance";
/// The object store of the session keys, keyed by lineage.
pub const STORE: &str = "keys";

/// A session's key pair (a `CryptoKeyPair`). Cheap to clone.
#[derive(Clone, Debug)]
pub struct KeyPair(JsValue);

impl KeyPair {
    /// A key pair that holds nothing, for native tests that only carry one
    /// around.
    #[cfg(test)]
    pub(crate) fn placeholder() -> Self {
        Self(JsValue::NULL)
    }

    /// The private key, which signs and can't be extracted.
    pub fn private_key(&self) -> JsResult<CryptoKey> {
        self.member("privateKey")
    }

    /// The public key, which goes into every proof.
    pub fn public_key(&self) -> JsResult<CryptoKey> {
        self.member("publicKey")
    }

    fn member(&self, name: &str) -> JsResult<CryptoKey> {
        js_sys::Reflect::get(&self.0, &JsValue::from_str(name)).map(JsValue::unchecked_into)
    }
}

/// Whether this browser can make and keep a key (WebCrypto and IndexedDB
/// are there), checked before leaving for Bitbucket so that a sign-in never
/// fails only after the consent page.
pub fn check() -> Result<(), Problem> {
    crypto::subtle().map_err(unavailable)?;
    factory().map(drop).map_err(unavailable)
}

/// Makes the key pair of the sign-in `lineage` and stores it.
pub async fn create(lineage: &str) -> Result<KeyPair, Problem> {
    let pair = generate().await?;
    store(lineage, &pair).await?;
    Ok(pair)
}

/// Makes a key pair, not yet stored: WebCrypto's part of [`create`], about
/// a millisecond.
pub async fn generate() -> Result<KeyPair, Problem> {
    crypto::signing_key_pair().await.map(KeyPair).map_err(unavailable)
}

/// Stores `pair` as the key of the sign-in `lineage`: IndexedDB's part of
/// [`create`], which takes longer (opening the database the first time
/// creates it), so the callback does it in the background.
pub async fn store(lineage: &str, pair: &KeyPair) -> Result<(), Problem> {
    request(Op::Put(&pair.0), lineage).await.map(drop).map_err(unavailable)
}

/// The stored key pair of `lineage`, or `None` when there is none (never
/// made, deleted, or the browser's site data was cleared).
pub async fn load(lineage: &str) -> Result<Option<KeyPair>, Problem> {
    let found = request(Op::Get, lineage).await.map_err(unavailable)?;
    Ok(found.is_object().then_some(KeyPair(found)))
}

/// Deletes the key pair of `lineage`, if there is one, in the background.
/// Best effort: a browser that refuses leaves nothing this app could do.
pub fn delete(lineage: &str) {
    let lineage = lineage.to_owned();
    wasm_bindgen_futures::spawn_local(async move {
        let _ = request(Op::Delete, &lineage).await;
    });
}

/// The problem for a browser without WebCrypto or IndexedDB, or whose
/// WebCrypto or IndexedDB failed.
pub fn unavailable(error: JsValue) -> Problem {
    Problem::key_unavailable(crate::browser::is_secure(), crate::browser::error_text(&error))
}

/// `indexedDB`, missing in very old browsers and refused in some private
/// modes.
fn factory() -> JsResult<web_sys::IdbFactory> {
    web_sys::window().ok_or("no window")?.indexed_db()?.ok_or_else(|| "indexedDB is missing".into())
}

/// Opens the database, creating the store the first time.
async fn database() -> JsResult<IdbDatabase> {
    let open = factory()?.open_with_u32(DATABASE, 1)?;
    let upgrading = open.clone();
    let upgrade = Closure::once(move || {
        if let Ok(db) = upgrading.result() {
            let _ = db.unchecked_into::<IdbDatabase>().create_object_store(STORE);
        }
    });
    open.set_onupgradeneeded(Some(upgrade.as_ref().unchecked_ref()));
    // The upgrade, when there is one, runs before the success event.
    let db = done(&open).await;
    drop(upgrade);
    db.map(JsValue::unchecked_into)
}

/// What to do with a lineage's record.
enum Op<'a> {
    Put(&'a JsValue),
    Get,
    Delete,
}

/// One request on `lineage`'s record, in a transaction of its own; its
/// result. (One function for the three, not generic: the bundle carries
/// its state machine once.)
async fn request(op: Op<'_>, lineage: &str) -> JsResult<JsValue> {
    let db = database().await?;
    let key = JsValue::from_str(lineage);
    let mode = match op {
        Op::Get => IdbTransactionMode::Readonly,
        Op::Put(_) | Op::Delete => IdbTransactionMode::Readwrite,
    };
    let store = db.transaction_with_str_and_mode(STORE, mode).and_then(|t| t.object_store(STORE));
    let request = store.and_then(|store| match op {
        Op::Put(value) => store.put_with_key(value, &key),
        Op::Get => store.get(&key),
        Op::Delete => store.delete(&key),
    });
    let result = match request {
        Ok(request) => done(&request).await,
        Err(error) => Err(error),
    };
    // Closing waits for the transaction to finish.
    db.close();
    result
}

/// Waits for an IndexedDB request to succeed; its result, or its error.
async fn done(request: &IdbRequest) -> JsResult<JsValue> {
    let settled = Promise::new(&mut |resolve, reject| {
        request.set_onsuccess(Some(&resolve));
        request.set_onerror(Some(&reject));
    });
    match JsFuture::from(settled).await {
        Ok(_) => request.result(),
        Err(_) => Err(js_sys::Reflect::get(request, &JsValue::from_str("error"))?),
    }
}

//! This tab's storage: `sessionStorage` and nothing else.
//!
//! The app keeps two values, under keys namespaced `oauth-dance:` so that
//! sign-out can remove exactly ours and nothing of another app on the same
//! origin:
//! - [`Key::Flow`]: the sign-in in progress (state, PKCE verifier, redirect
//!   URI, return path), written when leaving for Bitbucket and deleted on
//!   the way back whether or not it matched.
//! - [`Key::Session`]: the tokens and the lineage's channel key, so a reload
//!   of the tab stays signed in (and a duplicated tab inherits both).
//!
//! Never `localStorage` (it outlives the tab and is shared by every tab)
//! and never cookies: the browser-based-apps draft allows tokens in memory
//! and, at most, in session storage. Each tab has its own session storage;
//! how tabs still agree on rotated tokens is explained in [`crate::tokens`].
//! The session's signing key is no token and can't be written as text: it
//! lives in IndexedDB ([`crate::keys`]).

use crate::problem::Problem;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The prefix of every key this app writes.
pub const PREFIX: &str = "oauth-dance:";

/// The keys this app uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// The sign-in in progress.
    Flow,
    /// The tokens.
    Session,
}

impl Key {
    /// The full storage key.
    pub fn name(self) -> &'static str {
        match self {
            Key::Flow => "oauth-dance:flow",
            Key::Session => "oauth-dance:session",
        }
    }
}

/// A handle on this tab's `sessionStorage`.
#[derive(Clone, Debug)]
pub struct SessionStore {
    storage: web_sys::Storage,
}

impl SessionStore {
    /// Opens `sessionStorage`, which a browser may refuse (private modes,
    /// blocked site data).
    pub fn open() -> Result<Self, Problem> {
        let storage = web_sys::window()
            .and_then(|w| w.session_storage().ok().flatten())
            .ok_or_else(Problem::storage_unavailable)?;
        // Some browsers hand out a storage object that throws on write.
        let probe = "oauth-dance:probe";
        storage.set_item(probe, "1").map_err(|_| Problem::storage_unavailable())?;
        let _ = storage.remove_item(probe);
        Ok(Self { storage })
    }

    /// The raw value under `key`.
    pub fn get(&self, key: Key) -> Option<String> {
        self.storage.get_item(key.name()).ok().flatten()
    }

    /// Stores a raw value.
    pub fn set(&self, key: Key, value: &str) -> Result<(), Problem> {
        self.storage.set_item(key.name(), value).map_err(|_| Problem::storage_unavailable())
    }

    /// Deletes the value under `key`.
    pub fn remove(&self, key: Key) {
        let _ = self.storage.remove_item(key.name());
    }

    /// Reads and deletes the value under `key` in one step: a value taken
    /// this way can never be used twice.
    pub fn take(&self, key: Key) -> Option<String> {
        let value = self.get(key);
        self.remove(key);
        value
    }

    /// Reads a JSON value; an unreadable one counts as absent.
    pub fn get_json<T: DeserializeOwned>(&self, key: Key) -> Option<T> {
        crate::json::from_str(&self.get(key)?).ok()
    }

    /// Reads and deletes a JSON value; an unreadable one counts as absent
    /// (and is deleted all the same).
    pub fn take_json<T: DeserializeOwned>(&self, key: Key) -> Option<T> {
        crate::json::from_str(&self.take(key)?).ok()
    }

    /// Stores a JSON value.
    pub fn set_json<T: Serialize>(&self, key: Key, value: &T) -> Result<(), Problem> {
        let text = serde_json::to_string(value).map_err(|_| Problem::storage_unavailable())?;
        self.set(key, &text)
    }

    /// Removes every key of this app (those starting with [`PREFIX`]) and
    /// leaves other apps' keys alone.
    pub fn clear_ours(&self) {
        let count = self.storage.length().unwrap_or(0);
        let ours: Vec<String> = (0..count)
            .filter_map(|i| self.storage.key(i).ok().flatten())
            .filter(|key| key.starts_with(PREFIX))
            .collect();
        for key in ours {
            let _ = self.storage.remove_item(&key);
        }
    }
}

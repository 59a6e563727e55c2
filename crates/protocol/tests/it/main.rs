//! Integration tests of `dance-protocol`: its public API as the SPA, the relay
//! and fakebucket use it.
#![cfg(not(target_arch = "wasm32"))]

mod observed;
mod props;
mod redaction;

//! Browser tests of `dance-protocol`: randomness comes from WebCrypto in
//! wasm32, and PKCE gives the same answers there as natively.
#![cfg(target_arch = "wasm32")]

use dance_protocol::{PkceVerifier, State};
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
fn browser_randomness_gives_fresh_values() {
    let (a, b) = (State::generate(), State::generate());
    assert_ne!(a, b);
    assert_eq!(a.secret().len(), 43);
    let verifier = PkceVerifier::generate();
    assert!(PkceVerifier::parse(verifier.secret()).is_ok());
}

#[wasm_bindgen_test]
fn s256_matches_rfc7636_in_the_browser() {
    let verifier =
        PkceVerifier::parse("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk").expect("valid");
    assert_eq!(verifier.challenge().as_str(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
}

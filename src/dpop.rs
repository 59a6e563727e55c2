//! DPoP proofs (RFC 9449): the browser's half of binding a session to its key.
//!
//! Bitbucket's refresh tokens work for whoever holds them. The relay
//! therefore hands the SPA a sealed token in their place, bound to the
//! thumbprint of the key pair the sign-in made ([`crate::keys`]), and
//! forwards a refresh only with a proof signed by that same key. Every token
//! request, the code exchange as well as each refresh, carries a fresh proof:
//!
//! ```text
//! base64url(header) "." base64url(claims) "." base64url(r || s)
//! header: {"typ":"dpop+jwt","alg":"ES256","jwk":{"kty":"EC","crv":"P-256","x":…,"y":…}}
//! claims: {"jti":<32 random bytes>,"htm":"POST","htu":<relay_url, no query or fragment>,"iat":<s>}
//! ```
//!
//! WebCrypto signs (ECDSA P-256, SHA-256; its 64-byte `r || s` is what JWS
//! wants) with the non-extractable private key. The proof travels in the
//! form field `dpop` ([`TokenRequest::to_form_with_proof`]), never in a
//! `DPoP` header, so the POST stays a CORS simple request without a
//! preflight. `iat` is the computer's clock: one that is more than a minute
//! off makes the relay refuse the proof ([`Problem::proof_rejected`]).
//!
//! [`TokenRequest::to_form_with_proof`]: dance_protocol::token::TokenRequest::to_form_with_proof

use crate::crypto::{self, JsResult, base64url};
use crate::keys::KeyPair;
use crate::problem::Problem;
use crate::weburl::WebUrl;
use dance_protocol::State;
use dance_protocol::dpop::{ALG, Claims, Header, Jwk, TYP};

/// The header of a proof signed by the public key with these coordinates:
/// only the four members RFC 7518 6.2 requires, never a private part.
pub fn header(x: String, y: String) -> Header {
    Header {
        typ: TYP.to_owned(),
        alg: ALG.to_owned(),
        jwk: Jwk { kty: "EC".to_owned(), crv: "P-256".to_owned(), x, y, d: None },
    }
}

/// The claims of a proof for a `POST` to `htu`, made at `now_ms`, with the
/// unique id `jti`. The query and fragment of `htu` are left out, as RFC
/// 9449 4.2 asks; `iat` is in whole seconds.
pub fn claims(htu: &WebUrl, now_ms: u64, jti: String) -> Claims {
    Claims {
        jti,
        htm: "POST".to_owned(),
        htu: htu.without_query_and_fragment().to_string(),
        iat: now_ms / 1000,
    }
}

/// What is signed: `base64url(header) "." base64url(claims)`, the JSON
/// written without spaces.
pub fn signing_input(header: &Header, claims: &Claims) -> String {
    let json =
        |value: Result<String, serde_json::Error>| base64url(value.unwrap_or_default().as_bytes());
    format!("{}.{}", json(serde_json::to_string(header)), json(serde_json::to_string(claims)))
}

/// A fresh proof for a token request to `htu`, signed by `keys`.
pub async fn proof(keys: &KeyPair, htu: &WebUrl) -> Result<String, Problem> {
    sign(keys, htu).await.map_err(crate::keys::unavailable)
}

async fn sign(keys: &KeyPair, htu: &WebUrl) -> JsResult<String> {
    let (x, y) = crypto::public_xy(&keys.public_key()?).await?;
    let now_ms = crate::browser::now_ms().max(0.0) as u64;
    // 32 random bytes, base64url: RFC 9449 asks for at least 96 bits.
    let jti = State::generate().secret().to_owned();
    let input = signing_input(&header(x, y), &claims(htu, now_ms, jti));
    let signature = crypto::sign(&keys.private_key()?, input.as_bytes()).await?;
    Ok(format!("{input}.{}", base64url(&signature)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_carries_only_the_public_members() {
        let header = header("xx".into(), "yy".into());
        assert_eq!(
            serde_json::to_string(&header).expect("writes"),
            r#"{"typ":"dpop+jwt","alg":"ES256","jwk":{"kty":"EC","crv":"P-256","x":"xx","y":"yy"}}"#
        );
    }

    #[test]
    fn claims_name_the_relay_without_query_or_fragment_and_whole_seconds() {
        let htu = WebUrl::parse("https://relay.example/token?debug=1#x").expect("url");
        let claims = claims(&htu, 1_700_000_000_999, "j".repeat(43));
        assert_eq!(claims.htu, "https://relay.example/token");
        assert_eq!(claims.htm, "POST");
        assert_eq!(claims.iat, 1_700_000_000, "seconds, rounded down");
        assert_eq!(
            serde_json::to_string(&claims).expect("writes"),
            format!(
                r#"{{"jti":"{}","htm":"POST","htu":"https://relay.example/token","iat":1700000000}}"#,
                "j".repeat(43)
            )
        );
    }

    #[test]
    fn the_signing_input_is_base64url_of_the_compact_json() {
        let htu = WebUrl::parse("http://127.0.0.1:8787/token").expect("url");
        let header = header("xx".into(), "yy".into());
        let claims = claims(&htu, 5_000, "id".into());
        let input = signing_input(&header, &claims);
        let (h, c) = input.split_once('.').expect("two parts");
        assert_eq!(h, base64url(serde_json::to_string(&header).expect("json").as_bytes()));
        assert_eq!(
            c,
            base64url(br#"{"jti":"id","htm":"POST","htu":"http://127.0.0.1:8787/token","iat":5}"#)
        );
        assert!(!input.contains(['=', '+', '/']), "base64url without padding: {input}");
    }
}

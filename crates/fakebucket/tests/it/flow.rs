//! A plain, non-browser OAuth client completes the whole dance: it reads the
//! consent page's form like a scraper would (no knowledge of fakebucket's
//! internals beyond the documented ids), submits it, follows the redirect,
//! exchanges the code and calls the API, using the public Handle URLs only.

use crate::{DEMO_CALLBACK, DEMO_KEY, DEMO_SECRET, param, start};
use dance_protocol::{PkceVerifier, State};
use reqwest::StatusCode;
use url::Url;

/// Undoes the HTML escaping of an attribute value.
fn unescape(value: &str) -> String {
    value
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The value of attribute `name` in the tag that starts at `tag`.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let end = tag.find('>')?;
    let tag = &tag[..end];
    let marker = format!(" {name}=\"");
    let start = tag.find(&marker)? + marker.len();
    let stop = tag[start..].find('"')? + start;
    Some(unescape(&tag[start..stop]))
}

/// Every tag of this kind in the page.
fn tags<'a>(page: &'a str, kind: &str) -> Vec<&'a str> {
    page.match_indices(&format!("<{kind} ")).map(|(i, _)| &page[i..]).collect()
}

#[tokio::test]
async fn a_plain_http_client_completes_the_dance() {
    let fb = start().await;
    let state = State::generate();
    let verifier = PkceVerifier::generate();
    let mut authorize = fb.handle.authorize_url();
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", DEMO_KEY)
        .append_pair("redirect_uri", DEMO_CALLBACK)
        .append_pair("state", state.secret())
        .append_pair("code_challenge", verifier.challenge().as_str())
        .append_pair("code_challenge_method", "S256");

    // 1. The consent page, read as a form.
    let page = fb.get(authorize).await.text().await.expect("page");
    let form = tags(&page, "form").into_iter().next().expect("a form");
    assert_eq!(attribute(form, "method").as_deref(), Some("post"));
    let action = Url::parse(&attribute(form, "action").expect("action")).expect("absolute action");
    let mut fields: Vec<(String, String)> = tags(&page, "input")
        .into_iter()
        .filter(|t| attribute(t, "type").as_deref() == Some("hidden"))
        .map(|t| (attribute(t, "name").expect("name"), attribute(t, "value").expect("value")))
        .collect();
    let select = tags(&page, "select")
        .into_iter()
        .find(|t| attribute(t, "id").as_deref() == Some("user"))
        .expect("#user");
    let user_field = attribute(select, "name").expect("name");
    let mei = tags(&page, "option")
        .into_iter()
        .find(|t| t[t.find('>').expect("tag end")..].starts_with(">Mei Tanaka"))
        .and_then(|t| attribute(t, "value"))
        .expect("Mei is offered");
    fields.push((user_field, mei));
    let grant = tags(&page, "button")
        .into_iter()
        .find(|t| attribute(t, "id").as_deref() == Some("grant"))
        .expect("#grant");
    fields
        .push((attribute(grant, "name").expect("name"), attribute(grant, "value").expect("value")));

    // 2. Submit it; the answer is a redirect to the application.
    let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&fields).finish();
    let response = fb
        .http
        .post(action)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::FOUND);
    let callback = crate::location(&response);
    assert!(callback.as_str().starts_with(DEMO_CALLBACK));
    assert!(state.matches(&param(&callback, "state").expect("state")));
    let code = param(&callback, "code").expect("code");

    // 3. Exchange the code (with the verifier, which Bitbucket Cloud ignores).
    let response = fb
        .http
        .post(fb.handle.token_url())
        .basic_auth(DEMO_KEY, Some(DEMO_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", DEMO_CALLBACK),
            ("code_verifier", verifier.secret()),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    let tokens: serde_json::Value = response.json().await.expect("json");
    let access = tokens["access_token"].as_str().expect("access_token");

    // 4. Call the API as Mei.
    let user: serde_json::Value = fb
        .http
        .get(fb.handle.api_base().join("user").expect("url"))
        .bearer_auth(access)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(user["display_name"], "Mei Tanaka");
    let emails: serde_json::Value = fb
        .http
        .get(fb.handle.api_base().join("user/emails").expect("url"))
        .bearer_auth(access)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(emails["size"], 14);
}

#[tokio::test]
async fn the_protocol_crate_parses_fakebucket_answers() {
    // The SPA's own parsers against fakebucket's hand-written JSON: a
    // disagreement shows up here, not in a browser.
    let fb = start().await;
    let tokens = fb.tokens((DEMO_KEY, DEMO_SECRET), "grace").await;
    let parsed: dance_protocol::token::TokenResponse =
        serde_json::from_value(tokens).expect("TokenResponse");
    assert_eq!(parsed.token_type, "bearer");
    assert_eq!(parsed.expires_in, Some(7200));
    assert_eq!(parsed.scope.as_deref(), Some("account email"));
    let access = parsed.access_token.secret().to_owned();
    let user: dance_protocol::bitbucket::User =
        serde_json::from_value(fb.api("user", Some(&access)).await.json()).expect("User");
    assert_eq!(user.display_name.as_deref(), Some("Grace Hopper"));
    assert_eq!(user.has_2fa_enabled, None);
    let emails: dance_protocol::bitbucket::Paginated<dance_protocol::bitbucket::Email> =
        serde_json::from_value(fb.api("user/emails", Some(&access)).await.json())
            .expect("Paginated<Email>");
    assert_eq!(emails.values.len(), 1);
    let expired: dance_protocol::bitbucket::ApiError = {
        fb.handle.advance_clock(std::time::Duration::from_secs(7200));
        serde_json::from_value(fb.api("user", Some(&access)).await.json()).expect("ApiError")
    };
    assert!(expired.is_token_expired());
}

//! Integration tests: fakebucket on `127.0.0.1:0`, driven over real HTTP by
//! reqwest (which, like any OAuth client library, knows nothing of fakebucket).

mod admin;
mod api;
mod authorize;
mod binary;
mod config;
mod flow;
mod pkce;
mod rotation;
mod schema;
mod token;

use fakebucket::{Config, Consumer, FixtureUser};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;
use url::Url;

/// The demo consumer's credentials and callback.
pub(crate) use fakebucket::{DEMO_CALLBACK, DEMO_KEY, DEMO_SECRET};

/// A fixture user by nickname.
pub(crate) fn fixture(nickname: &str) -> FixtureUser {
    fakebucket::fixtures::default_users()
        .into_iter()
        .find(|u| u.nickname == nickname)
        .unwrap_or_else(|| panic!("no fixture user {nickname}"))
}

/// The account id of a fixture user.
pub(crate) fn id(nickname: &str) -> String {
    fixture(nickname).account_id
}

/// The default config plus a few consumers the tests need.
pub(crate) fn test_config() -> Config {
    let mut config = Config::default();
    let callback = Url::parse("http://127.0.0.1:8080/").ok();
    config.consumers.extend([
        Consumer::new("account-only", "s1", callback.clone()).with_scopes(&["account"]),
        Consumer::new("email-only", "s2", callback.clone()).with_scopes(&["email"]),
        Consumer::new("private", "s3", callback.clone()).private(),
        Consumer::new("no-callback", "s4", None),
        Consumer::new("other", "s5", Url::parse("https://other.example/app/").ok()),
        Consumer::new("hostile", "s6", callback).with_name("<script>alert(\"app\")</script> & Co"),
    ]);
    config
}

/// A running fakebucket and a client that does not follow redirects.
pub(crate) struct Fb {
    pub(crate) handle: fakebucket::Handle,
    pub(crate) http: reqwest::Client,
}

/// A token-endpoint or API answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) text: String,
}

impl Answer {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub(crate) async fn from(response: reqwest::Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        Self { status, headers, text }
    }
}

pub(crate) async fn start() -> Fb {
    start_with(test_config()).await
}

pub(crate) async fn start_with(config: Config) -> Fb {
    let handle = fakebucket::spawn(config).await.expect("fakebucket starts");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    Fb { handle, http }
}

/// A query parameter of a URL.
pub(crate) fn param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// The value of `<input ... name="NAME" value="...">` in a page.
pub(crate) fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker).unwrap_or_else(|| panic!("no field {name}")) + marker.len();
    let end = page[start..].find('"').expect("closing quote") + start;
    page[start..end].to_owned()
}

impl Fb {
    pub(crate) fn base(&self) -> Url {
        self.handle.url()
    }

    /// The authorize URL with these query parameters.
    pub(crate) fn authorize_url(&self, params: &[(&str, &str)]) -> Url {
        let mut url = self.handle.authorize_url();
        url.query_pairs_mut().extend_pairs(params);
        url
    }

    pub(crate) async fn get(&self, url: Url) -> reqwest::Response {
        self.http.get(url).send().await.expect("request")
    }

    /// Opens the consent page, asserting it is shown, and returns the page.
    pub(crate) async fn consent_page(&self, params: &[(&str, &str)]) -> String {
        let response = self.get(self.authorize_url(params)).await;
        assert_eq!(response.status(), StatusCode::OK, "consent page expected");
        response.text().await.expect("page")
    }

    /// Posts the consent form.
    pub(crate) async fn decide(&self, txn: &str, user: &str, decision: &str) -> reqwest::Response {
        self.http
            .post(self.handle.authorize_url())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[("txn", txn), ("user", user), ("decision", decision)]))
            .send()
            .await
            .expect("request")
    }

    /// Runs the consent page for `params` and grants as `user`; returns the
    /// callback URL fakebucket redirected to.
    pub(crate) async fn grant_with(&self, params: &[(&str, &str)], user: &str) -> Url {
        let page = self.consent_page(params).await;
        let response = self.decide(&hidden(&page, "txn"), user, "grant").await;
        assert_eq!(response.status(), StatusCode::FOUND);
        location(&response)
    }

    /// A code for the demo consumer and `user` (no redirect_uri sent).
    pub(crate) async fn code(&self, client: &str, user: &str) -> String {
        let callback = self
            .grant_with(
                &[("client_id", client), ("response_type", "code"), ("state", "st")],
                &id(user),
            )
            .await;
        param(&callback, "code").expect("code in callback")
    }

    /// POSTs a form to the token endpoint with optional Basic credentials.
    pub(crate) async fn token(
        &self,
        basic: Option<(&str, &str)>,
        fields: &[(&str, &str)],
    ) -> Answer {
        let mut request = self
            .http
            .post(self.handle.token_url())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(fields));
        if let Some((key, secret)) = basic {
            request = request.basic_auth(key, Some(secret));
        }
        Answer::from(request.send().await.expect("request")).await
    }

    /// The whole dance for `client` and `user`: the token response.
    pub(crate) async fn tokens(&self, client: (&str, &str), user: &str) -> Value {
        let code = self.code(client.0, user).await;
        let answer = self
            .token(Some(client), &[("grant_type", "authorization_code"), ("code", &code)])
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        answer.json()
    }

    /// A demo-consumer access token for `user`.
    pub(crate) async fn access_token(&self, user: &str) -> String {
        let tokens = self.tokens((DEMO_KEY, DEMO_SECRET), user).await;
        tokens["access_token"].as_str().expect("access_token").to_owned()
    }

    /// GET an API path (relative to `/2.0/`) with a Bearer token.
    pub(crate) async fn api(&self, path: &str, token: Option<&str>) -> Answer {
        let url = self.handle.api_base().join(path).expect("path");
        self.api_url(url, token).await
    }

    pub(crate) async fn api_url(&self, url: Url, token: Option<&str>) -> Answer {
        let mut request = self.http.get(url).header("origin", "http://127.0.0.1:8080");
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        Answer::from(request.send().await.expect("request")).await
    }
}

/// A urlencoded body.
pub(crate) fn form(fields: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish()
}

/// The `Location` of a redirect, as a URL.
pub(crate) fn location(response: &reqwest::Response) -> Url {
    let value =
        response.headers().get("location").expect("Location header").to_str().expect("ascii");
    Url::parse(value).expect("absolute Location")
}

//! The relay as a sans-IO state machine: the shell reads, the core decides.
//!
//! A request moves through at most three steps, each a plain function call
//! with no IO, no clock and no runtime:
//!
//! 1. [`Relay::request`] sees the method, path, headers, the client's
//!    address and the time. It routes (`/token`, `/healthz`, anything else)
//!    and runs the gates that need no body, in this order: header size (431),
//!    origin (403, nothing else happens), rate limit (429), content type
//!    (415). It returns an [`Answer`] or asks for the body ([`Step::ReadBody`]).
//! 2. [`Relay::read`] gets the body the shell read, at most
//!    [`Relay::body_limit`] bytes, or why it could not be read (413, 408,
//!    400). It parses the form, checks the grant (400) and the
//!    `redirect_uri` allowlist (400). With sealing keys, a refresh's sealed
//!    token must open and its session must not have ended (400
//!    `invalid_grant`); then the DPoP proof must hold (400
//!    `invalid_dpop_proof`), made by the key the token is bound to. Its
//!    signature is checked last, by the shell ([`AfterBody::Verify`], then
//!    [`Relay::verified`]): the native relay with ring, the Worker with its
//!    runtime's WebCrypto. It returns
//!    an [`Answer`] or the request to forward ([`AfterBody::Forward`]),
//!    which carries Bitbucket's own refresh token.
//! 3. [`Relay::answered`] gets what the token endpoint answered, or why
//!    nothing came back, and returns the normalised [`Answer`], with the
//!    new refresh token sealed when sealing is on.
//!
//! A shell may refuse a [`Forward`] with [`Relay::busy`] (503) when it has no
//! capacity left; the native binary does so when its concurrency slots stay
//! taken. Every answer that ends a request carries its
//! [`Outcome`](crate::Outcome) as an extension, for metrics and logs.

use crate::Answer;
use crate::config::Config;
use crate::cors::{self, OriginPolicy};
use crate::dpop::{self, ProofError, Unverified};
use crate::error::{Outcome, RelayError, json_response};
use crate::limits::{self, RateLimiter};
use crate::seal::{Sealed, Sealer};
use crate::upstream::{self, Transport, UpstreamAnswer, UpstreamError};
use dance_protocol::RefreshToken;
use dance_protocol::token::TokenRequest;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use std::collections::HashSet;
use std::net::IpAddr;
use std::time::Duration;
use url::Url;

/// The relay's rules over one configuration. Build it once and share it by
/// every request: it holds the rate limiter's table.
///
/// `Debug` is safe to print: the client authentication is marked sensitive.
#[derive(Debug)]
pub struct Relay {
    origins: OriginPolicy,
    redirect_uris: HashSet<String>,
    limiter: Option<RateLimiter>,
    trust_proxy: bool,
    max_body_bytes: usize,
    max_header_bytes: usize,
    token_url: Url,
    /// `Basic base64(id:secret)`, built once and marked sensitive (its
    /// `Debug` prints `Sensitive`).
    authorization: HeaderValue,
    /// Seals and opens refresh tokens; `None` without sealing keys.
    sealer: Option<Sealer>,
    /// [`Config::session_lifetime`] in seconds.
    session_lifetime: u64,
}

/// What to do after [`Relay::request`].
#[derive(Debug)]
#[must_use]
pub enum Step {
    /// Send this answer; the request is over.
    Answer(Answer),
    /// A token request that passed every gate of its head: read the body
    /// (at most [`Relay::body_limit`] bytes) and call [`Relay::read`].
    ReadBody(ReadBody),
}

/// A token request waiting for its body.
#[derive(Debug)]
#[must_use]
pub struct ReadBody {
    origin: Option<HeaderValue>,
    /// The `Host` header, which a proof's `htu` must name.
    host: Option<String>,
    /// The proof in the `DPoP` header, if any (`Err` when repeated).
    header_proof: Result<Option<String>, ProofError>,
    /// The relay's clock at the request, seconds since the epoch.
    now: u64,
}

/// The body of a token request, as the shell could read it.
#[derive(Debug, Clone, Copy)]
pub enum Body<'a> {
    /// The whole body, within the limit.
    Read(&'a [u8]),
    /// The body is longer than [`Relay::body_limit`].
    TooLarge,
    /// The body did not arrive within the shell's deadline.
    TimedOut,
    /// The body could not be read (the connection broke, say).
    Unreadable,
}

/// What to do after [`Relay::read`].
#[derive(Debug)]
#[must_use]
pub enum AfterBody {
    /// Send this answer; the request is over.
    Answer(Answer),
    /// Send [`Forward`]'s request to the token endpoint, then call
    /// [`Relay::answered`].
    Forward(Forward),
    /// Check the signature of [`Verify::proof`] (its own
    /// [`Unverified::verify_here`], or the runtime's ES256 verifier), then
    /// call [`Relay::verified`].
    Verify(Verify),
}

/// What to do after [`Relay::verified`].
#[derive(Debug)]
#[must_use]
pub enum Verified {
    /// The signature does not hold: send this refusal.
    Answer(Answer),
    /// Send [`Forward`]'s request, then call [`Relay::answered`].
    Forward(Forward),
}

/// A token request whose DPoP proof passed every check but its signature.
#[derive(Debug)]
#[must_use]
pub struct Verify {
    origin: Option<HeaderValue>,
    form: TokenRequest,
    binding: Binding,
    proof: Unverified,
}

impl Verify {
    /// The proof whose signature is to be checked.
    pub fn proof(&self) -> &Unverified {
        &self.proof
    }
}

/// The request to send to the token endpoint, with client authentication.
#[derive(Debug)]
#[must_use]
pub struct Forward {
    origin: Option<HeaderValue>,
    headers: HeaderMap,
    body: Vec<u8>,
    url: Url,
    /// The session to seal the new refresh token into, when sealing is on.
    binding: Option<Binding>,
}

/// What a sealed refresh token binds, less the token itself.
#[derive(Debug, Clone)]
struct Binding {
    thumbprint: String,
    began: u64,
    ends: u64,
}

impl Forward {
    /// Where to send it (a `POST`).
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Its headers: `Authorization` (marked sensitive), `Accept` and
    /// `Content-Type`.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// Its form body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }
}

impl Relay {
    /// The rules of `config`, used as given: validate it first (the native
    /// relay refuses to start on errors, the Worker answers them instead).
    pub fn new(config: &Config) -> Self {
        let limits = &config.limits;
        Self {
            origins: OriginPolicy::new(&config.allowed_origins, config.allow_missing_origin),
            redirect_uris: config.allowed_redirect_uris.iter().cloned().collect(),
            limiter: (limits.rate_limit_per_minute > 0)
                .then(|| RateLimiter::new(limits.rate_limit_per_minute)),
            trust_proxy: config.trust_proxy,
            max_body_bytes: limits.max_body_bytes,
            max_header_bytes: limits.max_header_bytes,
            token_url: config.token_url.clone(),
            authorization: upstream::basic_authorization(&config.client_id, &config.client_secret),
            sealer: Sealer::new(&config.sealing_keys, config.client_id.as_str()),
            session_lifetime: config.session_lifetime.as_secs(),
        }
    }

    /// Whether refresh tokens are sealed and bound (sealing keys are set).
    pub fn seals(&self) -> bool {
        self.sealer.is_some()
    }

    /// Step 1: route a request and run the gates of its head.
    ///
    /// `peer` is the client's address as the shell knows it (the TCP peer,
    /// or the address Cloudflare reports); with `trust_proxy` set the last
    /// `X-Forwarded-For` entry wins. `now` is the wall clock, as time since
    /// the Unix epoch: proofs and sealed refresh tokens are judged by it.
    pub fn request(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        peer: Option<IpAddr>,
        now: Duration,
    ) -> Step {
        if limits::header_bytes(headers) > self.max_header_bytes {
            let mut answer =
                RelayError::HeadersTooLarge { limit: self.max_header_bytes }.into_answer();
            let origin = self.origins.check(headers).ok().flatten();
            cors::decorate(&mut answer, origin.as_ref());
            return Step::Answer(answer);
        }
        match (path, method) {
            ("/token", &Method::POST) => self.token_head(headers, peer, now),
            ("/token", &Method::OPTIONS) => Step::Answer(cors::preflight(&self.origins, headers)),
            ("/token", _) => Step::Answer(RelayError::MethodNotAllowed.into_answer()),
            ("/healthz", &Method::GET | &Method::HEAD) => Step::Answer(healthz()),
            ("/healthz", _) => Step::Answer(wrong_method("GET, HEAD")),
            _ => Step::Answer(RelayError::NotFound.into_answer()),
        }
    }

    /// The gates of a `POST /token` head: origin, rate limit, content type.
    fn token_head(&self, headers: &HeaderMap, peer: Option<IpAddr>, now: Duration) -> Step {
        let origin = match self.origins.check(headers) {
            Ok(origin) => origin,
            Err(refusal) => return Step::Answer(refuse(refusal, None)),
        };
        if let Some(limiter) = &self.limiter {
            let client = limits::client_ip(headers, peer, self.trust_proxy);
            if let Err(retry_after) = limiter.check(client, now) {
                return Step::Answer(refuse(
                    RelayError::RateLimited { retry_after },
                    origin.as_ref(),
                ));
            }
        }
        if !is_form(headers) {
            return Step::Answer(refuse(RelayError::UnsupportedMediaType, origin.as_ref()));
        }
        let mut proofs = headers.get_all(dance_protocol::dpop::HEADER).iter();
        let header_proof = match (proofs.next(), proofs.next()) {
            (None, _) => Ok(None),
            (Some(value), None) => {
                value.to_str().map(|v| Some(v.to_owned())).map_err(|_| ProofError::Malformed)
            }
            (Some(_), Some(_)) => Err(ProofError::Twice),
        };
        Step::ReadBody(ReadBody {
            origin,
            host: headers.get(header::HOST).and_then(|h| h.to_str().ok()).map(str::to_owned),
            header_proof,
            now: now.as_secs(),
        })
    }

    /// The most bytes of body a token request may have.
    pub fn body_limit(&self) -> usize {
        self.max_body_bytes
    }

    /// Step 2: judge the body of a token request. With sealing keys, a
    /// request that passes every check but its proof's signature comes back
    /// as [`AfterBody::Verify`]: check the signature and call
    /// [`Relay::verified`].
    pub fn read(&self, request: ReadBody, body: Body<'_>) -> AfterBody {
        let origin = request.origin.clone();
        let (form, field_proof) = match self.form(body) {
            Ok(parsed) => parsed,
            Err(error) => return AfterBody::Answer(refuse(error, origin.as_ref())),
        };
        let Some(sealer) = &self.sealer else {
            return AfterBody::Forward(self.forward(form, None, origin));
        };
        match self.bind(sealer, form, field_proof, &request) {
            Ok((form, binding, proof)) => {
                AfterBody::Verify(Verify { origin, form, binding, proof })
            }
            Err(error) => AfterBody::Answer(refuse(error, origin.as_ref())),
        }
    }

    /// Step 2½, with sealing keys: given whether the proof's signature holds
    /// (`valid`), the request to forward, or the refusal to answer with.
    pub fn verified(&self, verify: Verify, valid: bool) -> Verified {
        let Verify { origin, form, binding, proof: _ } = verify;
        if valid {
            Verified::Forward(self.forward(form, Some(binding), origin))
        } else {
            Verified::Answer(refuse(ProofError::Signature.into(), origin.as_ref()))
        }
    }

    fn forward(
        &self,
        form: TokenRequest,
        binding: Option<Binding>,
        origin: Option<HeaderValue>,
    ) -> Forward {
        Forward {
            headers: self.upstream_headers(),
            body: form.to_form().into_bytes(),
            url: self.token_url.clone(),
            origin,
            binding,
        }
    }

    /// Checks the proof but its signature, and for a refresh opens the
    /// sealed token: the request to forward (with Bitbucket's refresh token
    /// in it), the session its answer will be sealed into, and the proof
    /// whose signature is still to be checked.
    fn bind(
        &self,
        sealer: &Sealer,
        form: TokenRequest,
        field_proof: Option<String>,
        request: &ReadBody,
    ) -> Result<(TokenRequest, Binding, Unverified), RelayError> {
        let now = request.now;
        // A refresh token that is not ours, or whose session is over, is
        // refused whatever the proof: nothing could make it usable.
        let sealed = match &form {
            TokenRequest::RefreshToken { refresh_token } => {
                let sealed =
                    sealer.open(refresh_token.secret()).ok_or(RelayError::RefreshTokenNotSealed)?;
                if now >= sealed.ends {
                    return Err(RelayError::SessionEnded);
                }
                Some(sealed)
            }
            TokenRequest::AuthorizationCode { .. } => None,
        };
        let proof = match (field_proof, request.header_proof.clone()?) {
            (Some(_), Some(_)) => return Err(ProofError::Twice.into()),
            (Some(proof), None) | (None, Some(proof)) => proof,
            (None, None) => return Err(ProofError::Missing.into()),
        };
        let expected =
            dpop::Expected { htm: "POST", host: request.host.as_deref(), path: "/token", now };
        let proof = dpop::check(&proof, expected)?;
        let thumbprint = proof.thumbprint().to_owned();
        match sealed {
            None => {
                let ends = now.saturating_add(self.session_lifetime);
                Ok((form, Binding { thumbprint, began: now, ends }, proof))
            }
            Some(sealed) => {
                if sealed.thumbprint != thumbprint {
                    return Err(RelayError::WrongKey);
                }
                let binding = Binding { thumbprint, began: sealed.began, ends: sealed.ends };
                let upstream = RefreshToken::new(sealed.refresh_token);
                Ok((TokenRequest::RefreshToken { refresh_token: upstream }, binding, proof))
            }
        }
    }

    /// The body parsed and checked: a token request the relay may forward,
    /// and the DPoP proof of its `dpop` field, if any.
    fn form(&self, body: Body<'_>) -> Result<(TokenRequest, Option<String>), RelayError> {
        let bytes = match body {
            Body::Read(bytes) if bytes.len() <= self.max_body_bytes => bytes,
            Body::Read(_) | Body::TooLarge => {
                return Err(RelayError::BodyTooLarge { limit: self.max_body_bytes });
            }
            Body::TimedOut => return Err(RelayError::BodyTimeout),
            Body::Unreadable => return Err(RelayError::BodyUnreadable),
        };
        let request = TokenRequest::parse_form(bytes)?;
        if let TokenRequest::AuthorizationCode { redirect_uri, .. } = &request
            && !self.redirect_uris.contains(redirect_uri)
        {
            return Err(RelayError::RedirectUriNotAllowed);
        }
        // `parse_form` refused repeated fields and bad encoding already. Only
        // a relay with sealing keys reads the proof (decoding the whole form
        // again was a third of this step's cost).
        let proof = self.sealer.as_ref().and_then(|_| {
            url::form_urlencoded::parse(bytes)
                .find(|(name, _)| name == dance_protocol::dpop::FIELD)
                .map(|(_, value)| value.into_owned())
        });
        Ok((request, proof))
    }

    fn upstream_headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::with_capacity(3);
        headers.insert(header::AUTHORIZATION, self.authorization.clone());
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        headers
    }

    /// Refuses a request the shell has no capacity to forward (503, retry
    /// shortly).
    pub fn busy(&self, forward: Forward) -> Answer {
        refuse(RelayError::Busy, forward.origin.as_ref())
    }

    /// Step 3: the answer to the browser, from what the token endpoint said.
    pub fn answered(&self, forward: Forward, answer: Result<UpstreamAnswer, Transport>) -> Answer {
        let result = answer
            .map_err(UpstreamError::from)
            .and_then(|a| upstream::classify(a.status, &a.headers, &a.body));
        let sealed = result.map_err(RelayError::Upstream).and_then(|tokens| {
            match (&self.sealer, &forward.binding) {
                (Some(sealer), Some(binding)) => seal_refresh_token(sealer, binding, tokens),
                _ => Ok(tokens),
            }
        });
        let mut response = match sealed {
            Ok(tokens) => json_response(StatusCode::OK, &tokens, Outcome::Ok),
            Err(error) => error.into_answer(),
        };
        cors::decorate(&mut response, forward.origin.as_ref());
        response
    }
}

/// The token endpoint's answer with its refresh token sealed for the
/// session. An answer without one keeps the sealed token the browser has
/// (RFC 6749 6).
fn seal_refresh_token(
    sealer: &Sealer,
    binding: &Binding,
    mut tokens: dance_protocol::token::TokenResponse,
) -> Result<dance_protocol::token::TokenResponse, RelayError> {
    if let Some(upstream) = tokens.refresh_token.take() {
        let sealed = sealer
            .seal(&Sealed {
                began: binding.began,
                ends: binding.ends,
                thumbprint: binding.thumbprint.clone(),
                refresh_token: upstream.secret().to_owned(),
            })
            // Only a refresh token past `MAX_UPSTREAM_LEN` cannot be sealed.
            .map_err(|_| {
                RelayError::Upstream(UpstreamError::Invalid(
                    "its refresh token is too long to seal",
                ))
            })?;
        tokens.refresh_token = Some(RefreshToken::new(sealed));
    }
    Ok(tokens)
}

/// The refusal's answer, with CORS headers for an allowed origin.
fn refuse(error: RelayError, origin: Option<&HeaderValue>) -> Answer {
    let mut answer = error.into_answer();
    cors::decorate(&mut answer, origin);
    answer
}

/// `GET /healthz`: a plain `ok`, never cached.
fn healthz() -> Answer {
    let mut answer = Answer::new(b"ok\n".to_vec());
    let headers = answer.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    answer
}

/// An empty 405 for a known path that is not the token endpoint.
fn wrong_method(allow: &'static str) -> Answer {
    let mut answer = Answer::default();
    *answer.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    answer.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
    answer
}

/// Whether the `Content-Type` is a UTF-8 form: the media type in any case,
/// optionally with a `charset` of UTF-8 and other parameters.
fn is_form(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(header::CONTENT_TYPE).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return false;
    };
    let Ok(text) = value.to_str() else {
        return false;
    };
    let mut parts = text.split(';');
    let media_type = parts.next().unwrap_or_default().trim();
    if !media_type.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return false;
    }
    parts.all(|param| match param.split_once('=') {
        Some((name, value)) if name.trim().eq_ignore_ascii_case("charset") => {
            let value = value.trim().trim_matches('"');
            value.eq_ignore_ascii_case("utf-8") || value.eq_ignore_ascii_case("utf8")
        }
        Some(_) => true,
        None => param.trim().is_empty(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use dance_protocol::{ClientId, ClientSecret};

    const ORIGIN: &str = "https://user.github.io";

    fn relay() -> Relay {
        let mut config = Config::new(ClientId::new("key"), ClientSecret::new("secret"));
        config.allowed_origins = vec![ORIGIN.into()];
        config.allowed_redirect_uris = vec!["https://user.github.io/repo/".into()];
        config.limits.rate_limit_per_minute = 2;
        Relay::new(&config)
    }

    fn form(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, value.parse().expect("value"));
        headers
    }

    fn token_headers() -> HeaderMap {
        let mut headers = form("application/x-www-form-urlencoded");
        headers.insert(header::ORIGIN, ORIGIN.parse().expect("value"));
        headers
    }

    fn outcome(answer: &Answer) -> Option<Outcome> {
        answer.extensions().get::<Outcome>().copied()
    }

    #[test]
    fn content_types() {
        for ok in [
            "application/x-www-form-urlencoded",
            "Application/X-WWW-Form-Urlencoded",
            "application/x-www-form-urlencoded;charset=UTF-8",
            "application/x-www-form-urlencoded; charset=\"utf-8\"",
            "application/x-www-form-urlencoded; foo=bar",
        ] {
            assert!(is_form(&form(ok)), "{ok}");
        }
        for bad in [
            "application/json",
            "text/plain",
            "multipart/form-data; boundary=x",
            "application/x-www-form-urlencoded; charset=latin1",
            "application/x-www-form-urlencoded; junk",
            "application/x-www-form-urlencodedx",
            "",
        ] {
            assert!(!is_form(&form(bad)), "{bad}");
        }
        assert!(!is_form(&HeaderMap::new()));
        let mut twice = form("application/x-www-form-urlencoded");
        twice.append(header::CONTENT_TYPE, "application/x-www-form-urlencoded".parse().expect("v"));
        assert!(!is_form(&twice));
    }

    #[test]
    fn a_code_exchange_walks_all_three_steps() {
        let relay = relay();
        let now = Duration::from_secs(5);
        let Step::ReadBody(read) =
            relay.request(&Method::POST, "/token", &token_headers(), None, now)
        else {
            panic!("the head passes");
        };
        let body = b"grant_type=authorization_code&code=c0de&redirect_uri=https%3A%2F%2Fuser.github.io%2Frepo%2F&code_verifier=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let AfterBody::Forward(forward) = relay.read(read, Body::Read(body)) else {
            panic!("the body passes");
        };
        assert_eq!(forward.url().as_str(), crate::DEFAULT_TOKEN_URL);
        assert_eq!(forward.headers()[header::AUTHORIZATION], "Basic a2V5OnNlY3JldA==");
        assert!(forward.headers()[header::AUTHORIZATION].is_sensitive());
        assert_eq!(
            std::str::from_utf8(forward.body()).expect("text"),
            "grant_type=authorization_code&code=c0de&redirect_uri=https%3A%2F%2Fuser.github.io%2Frepo%2F&code_verifier=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        );
        let answer = relay.answered(
            forward,
            Ok(UpstreamAnswer {
                status: StatusCode::OK,
                headers: HeaderMap::new(),
                body: br#"{"access_token":"a","refresh_token":"r","scopes":"account","expires_in":7200,"token_type":"bearer"}"#.to_vec(),
            }),
        );
        assert_eq!(answer.status(), 200);
        assert_eq!(outcome(&answer), Some(Outcome::Ok));
        assert_eq!(answer.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], ORIGIN);
        assert_eq!(
            std::str::from_utf8(answer.body()).expect("text"),
            r#"{"access_token":"a","token_type":"bearer","expires_in":7200,"refresh_token":"r","scope":"account"}"#
        );
    }

    #[test]
    fn the_head_gates_run_in_order() {
        let relay = relay();
        let now = Duration::from_secs(5);
        let answer_of = |step: Step| match step {
            Step::Answer(answer) => answer,
            Step::ReadBody(_) => panic!("expected an answer"),
        };
        // A foreign origin is refused before anything else, without CORS.
        let mut foreign = token_headers();
        foreign.insert(header::ORIGIN, "https://evil.example".parse().expect("v"));
        let answer = answer_of(relay.request(&Method::POST, "/token", &foreign, None, now));
        assert_eq!(
            (answer.status(), outcome(&answer)),
            (StatusCode::FORBIDDEN, Some(Outcome::RefusedOrigin))
        );
        assert!(answer.headers().get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
        // The rate limit counts before the content type is looked at.
        let mut json = token_headers();
        json.insert(header::CONTENT_TYPE, "application/json".parse().expect("v"));
        for _ in 0..2 {
            let answer = answer_of(relay.request(&Method::POST, "/token", &json, None, now));
            assert_eq!(answer.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        }
        let answer = answer_of(relay.request(&Method::POST, "/token", &json, None, now));
        assert_eq!(answer.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(answer.headers()[header::RETRY_AFTER], "30");
        // Other addresses have their own budget.
        let other = Some(IpAddr::from([192, 0, 2, 1]));
        assert!(matches!(
            relay.request(&Method::POST, "/token", &token_headers(), other, now),
            Step::ReadBody(_)
        ));
    }

    #[test]
    fn bodies_that_cannot_be_forwarded_are_refused() {
        let relay = relay();
        let read = || ReadBody {
            origin: Some(HeaderValue::from_static(ORIGIN)),
            host: None,
            header_proof: Ok(None),
            now: 0,
        };
        let status = |after: AfterBody| match after {
            AfterBody::Answer(answer) => answer.status().as_u16(),
            AfterBody::Forward(_) | AfterBody::Verify(_) => 0,
        };
        let too_long = vec![b'a'; relay.body_limit() + 1];
        assert_eq!(status(relay.read(read(), Body::Read(&too_long))), 413);
        assert_eq!(status(relay.read(read(), Body::TooLarge)), 413);
        assert_eq!(status(relay.read(read(), Body::TimedOut)), 408);
        assert_eq!(status(relay.read(read(), Body::Unreadable)), 400);
        assert_eq!(status(relay.read(read(), Body::Read(b"grant_type=password"))), 400);
        let elsewhere = b"grant_type=authorization_code&code=c&redirect_uri=https%3A%2F%2Fevil.example%2F&code_verifier=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(status(relay.read(read(), Body::Read(elsewhere))), 400);
        assert_eq!(
            status(relay.read(read(), Body::Read(b"grant_type=refresh_token&refresh_token=r"))),
            0
        );
    }

    #[test]
    fn routes() {
        let relay = relay();
        let now = Duration::ZERO;
        let answer = |method: Method, path: &str| match relay.request(
            &method,
            path,
            &HeaderMap::new(),
            None,
            now,
        ) {
            Step::Answer(answer) => answer,
            Step::ReadBody(_) => panic!("expected an answer"),
        };
        let health = answer(Method::GET, "/healthz");
        assert_eq!((health.status().as_u16(), health.body().as_slice()), (200, &b"ok\n"[..]));
        assert_eq!(answer(Method::POST, "/healthz").headers()[header::ALLOW], "GET, HEAD");
        assert_eq!(answer(Method::GET, "/token").headers()[header::ALLOW], "POST, OPTIONS");
        assert_eq!(answer(Method::GET, "/metrics").status(), 404);
        assert_eq!(outcome(&answer(Method::GET, "/nope")), Some(Outcome::NotFound));
    }

    #[test]
    fn transport_failures_become_rfc_6749_errors() {
        let relay = relay();
        for (transport, status, code) in [
            (Transport::Unreachable, 502, "temporarily_unavailable"),
            (Transport::TimedOut, 504, "temporarily_unavailable"),
            (Transport::TooLarge, 502, "server_error"),
        ] {
            let forward = Forward {
                origin: None,
                headers: HeaderMap::new(),
                body: Vec::new(),
                url: relay.token_url.clone(),
                binding: None,
            };
            let answer = relay.answered(forward, Err(transport));
            assert_eq!(answer.status().as_u16(), status, "{transport:?}");
            let json: serde_json::Value = serde_json::from_slice(answer.body()).expect("JSON");
            assert_eq!(json["error"], code, "{transport:?}");
        }
    }

    mod sealed {
        use super::*;
        use crate::dpop::tests::{Browser, HOST, NOW};
        use crate::seal::SealingKey;

        const CODE: &[u8] = b"grant_type=authorization_code&code=c0de&redirect_uri=https%3A%2F%2Fuser.github.io%2Frepo%2F&code_verifier=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        const DAY: u64 = 24 * 3600;

        fn sealing_relay(key: &SealingKey) -> Relay {
            let mut config = Config::new(ClientId::new("key"), ClientSecret::new("secret"));
            config.allowed_origins = vec![ORIGIN.into()];
            config.allowed_redirect_uris = vec!["https://user.github.io/repo/".into()];
            config.sealing_keys = vec![key.clone()];
            config.session_lifetime = Duration::from_secs(30 * DAY);
            Relay::new(&config)
        }

        fn head(relay: &Relay, now: u64, header_proof: Option<&str>) -> ReadBody {
            let mut headers = token_headers();
            headers.insert(header::HOST, HOST.parse().expect("host"));
            if let Some(proof) = header_proof {
                headers.insert("dpop", proof.parse().expect("header value"));
            }
            match relay.request(&Method::POST, "/token", &headers, None, Duration::from_secs(now)) {
                Step::ReadBody(read) => read,
                Step::Answer(answer) => panic!("head refused: {}", answer.status()),
            }
        }

        /// Step 2 with the proof in the form, when given, and the
        /// signature check as the native shell does it.
        fn body(relay: &Relay, now: u64, form: &[u8], proof: Option<&str>) -> AfterBody {
            let mut form = form.to_vec();
            if let Some(proof) = proof {
                form.extend_from_slice(format!("&dpop={proof}").as_bytes());
            }
            settle(relay, relay.read(head(relay, now, None), Body::Read(&form)))
        }

        /// Checks a pending signature here, as the native shell does.
        fn settle(relay: &Relay, after: AfterBody) -> AfterBody {
            match after {
                AfterBody::Verify(verify) => {
                    let valid = verify.proof().verify_here();
                    match relay.verified(verify, valid) {
                        Verified::Forward(forward) => AfterBody::Forward(forward),
                        Verified::Answer(answer) => AfterBody::Answer(answer),
                    }
                }
                other => other,
            }
        }

        fn refused(after: AfterBody) -> (u16, String, Option<String>, Option<Outcome>) {
            let AfterBody::Answer(answer) = after else { panic!("forwarded, expected a refusal") };
            let json: serde_json::Value = serde_json::from_slice(answer.body()).expect("JSON");
            (
                answer.status().as_u16(),
                json["error"].as_str().unwrap_or_default().to_owned(),
                json["reason"].as_str().map(str::to_owned),
                outcome(&answer),
            )
        }

        fn upstream(refresh_token: &str) -> UpstreamAnswer {
            UpstreamAnswer {
                status: StatusCode::OK,
                headers: HeaderMap::new(),
                body: format!(r#"{{"access_token":"a","refresh_token":"{refresh_token}","expires_in":7200,"token_type":"bearer"}}"#).into_bytes(),
            }
        }

        /// Signs in with `browser` at `NOW`: the sealed refresh token.
        fn sign_in(relay: &Relay, browser: &Browser) -> String {
            let AfterBody::Forward(forward) = body(relay, NOW, CODE, Some(&browser.proof())) else {
                panic!("the exchange is forwarded");
            };
            assert!(
                !String::from_utf8_lossy(forward.body()).contains("dpop"),
                "the proof stays here"
            );
            let answer = relay.answered(forward, Ok(upstream("bitbucket-rt-1")));
            assert_eq!(answer.status(), 200);
            let json: serde_json::Value = serde_json::from_slice(answer.body()).expect("JSON");
            let sealed = json["refresh_token"].as_str().expect("a refresh token").to_owned();
            assert!(!sealed.contains("bitbucket"), "the browser never sees Bitbucket's token");
            assert_eq!(json["access_token"], "a");
            sealed
        }

        fn refresh_form(token: &str) -> Vec<u8> {
            format!("grant_type=refresh_token&refresh_token={token}").into_bytes()
        }

        #[test]
        fn the_rightful_browser_refreshes_with_the_real_token_and_gets_a_new_sealed_one() {
            let key = SealingKey::generate();
            let relay = sealing_relay(&key);
            let browser = Browser::new();
            let sealed = sign_in(&relay, &browser);
            let later = NOW + 2 * 3600;
            let proof = browser.proof_with(|_, c| c.iat = later);
            let AfterBody::Forward(forward) =
                body(&relay, later, &refresh_form(&sealed), Some(&proof))
            else {
                panic!("the refresh is forwarded");
            };
            assert_eq!(
                std::str::from_utf8(forward.body()).expect("text"),
                "grant_type=refresh_token&refresh_token=bitbucket-rt-1"
            );
            let answer = relay.answered(forward, Ok(upstream("bitbucket-rt-2")));
            let json: serde_json::Value = serde_json::from_slice(answer.body()).expect("JSON");
            let resealed = json["refresh_token"].as_str().expect("token");
            let opened = Sealer::new(&[key], "key").expect("key").open(resealed).expect("opens");
            assert_eq!(opened.refresh_token, "bitbucket-rt-2");
            assert_eq!(
                (opened.began, opened.ends),
                (NOW, NOW + 30 * DAY),
                "the session keeps its end"
            );
            assert_eq!(opened.thumbprint, browser.jwk().thumbprint());
            // The RFC 9449 header works as well as the form field.
            let read = head(&relay, later, Some(&proof));
            let after = relay.read(read, Body::Read(&refresh_form(resealed)));
            assert!(matches!(settle(&relay, after), AfterBody::Forward(_)));
        }

        #[test]
        fn a_lifted_token_is_useless_anywhere_else() {
            let relay = sealing_relay(&SealingKey::generate());
            let browser = Browser::new();
            let sealed = sign_in(&relay, &browser);
            let form = refresh_form(&sealed);
            let cases = [
                (None, (400, "invalid_dpop_proof".into(), None, Some(Outcome::BadProof))),
                (
                    Some(Browser::new().proof()),
                    (
                        400,
                        "invalid_dpop_proof".into(),
                        Some("wrong_key".into()),
                        Some(Outcome::BadProof),
                    ),
                ),
            ];
            for (proof, expected) in cases {
                assert_eq!(refused(body(&relay, NOW, &form, proof.as_deref())), expected);
            }
            for proof in [
                browser.proof_with(|_, c| c.htu = "https://elsewhere.example/token".into()),
                browser.proof_with(|_, c| c.htm = "GET".into()),
                browser.proof_with(|h, _| h.alg = "none".into()),
            ] {
                assert_eq!(
                    refused(body(&relay, NOW, &form, Some(&proof))),
                    (400, "invalid_dpop_proof".into(), None, Some(Outcome::BadProof))
                );
            }
            // A proof out of time says so, for the SPA to name the clock.
            for iat in [NOW - 3600, NOW + 3600] {
                let proof = browser.proof_with(|_, c| c.iat = iat);
                assert_eq!(
                    refused(body(&relay, NOW, &form, Some(&proof))),
                    (
                        400,
                        "invalid_dpop_proof".into(),
                        Some("clock".into()),
                        Some(Outcome::BadProof)
                    )
                );
            }
            // Two proofs, one in the form and one in the header.
            let read = head(&relay, NOW, Some(&browser.proof()));
            let both = [form.clone(), format!("&dpop={}", browser.proof()).into_bytes()].concat();
            assert_eq!(refused(relay.read(read, Body::Read(&both))).1, "invalid_dpop_proof");
            // A token the relay did not seal (Bitbucket's own, or another relay's).
            let mut unsealed = vec![("bitbucket-rt-1".to_owned(), "not sealed")];
            let other_relay = sealing_relay(&SealingKey::generate());
            unsealed.push((sign_in(&other_relay, &browser), "another key"));
            for (token, why) in unsealed {
                assert_eq!(
                    refused(body(&relay, NOW, &refresh_form(&token), Some(&browser.proof()))),
                    (
                        400,
                        "invalid_grant".into(),
                        Some("not_sealed".into()),
                        Some(Outcome::Unsealed)
                    ),
                    "{why}"
                );
            }
        }

        #[test]
        fn a_signature_the_shell_finds_wrong_is_refused_and_nothing_forwarded() {
            let relay = sealing_relay(&SealingKey::generate());
            let browser = Browser::new();
            let form = refresh_form(&sign_in(&relay, &browser));
            let proof = browser.proof();
            let read = head(&relay, NOW, None);
            let body = [form, format!("&dpop={proof}").into_bytes()].concat();
            let AfterBody::Verify(verify) = relay.read(read, Body::Read(&body)) else {
                panic!("a sealing relay asks for the signature to be checked");
            };
            assert!(verify.proof().verify_here());
            assert_eq!(verify.proof().signature().len(), 64);
            assert_eq!(verify.proof().public_key()[0], 0x04);
            let Verified::Answer(refusal) = relay.verified(verify, false) else {
                panic!("a bad signature is refused");
            };
            assert_eq!(
                refused(AfterBody::Answer(refusal)),
                (400, "invalid_dpop_proof".into(), None, Some(Outcome::BadProof))
            );
        }

        #[test]
        fn a_session_ends_at_its_absolute_lifetime() {
            let relay = sealing_relay(&SealingKey::generate());
            let browser = Browser::new();
            let form = refresh_form(&sign_in(&relay, &browser));
            let last = NOW + 30 * DAY - 1;
            let proof = browser.proof_with(|_, c| c.iat = last);
            assert!(matches!(body(&relay, last, &form, Some(&proof)), AfterBody::Forward(_)));
            let end = NOW + 30 * DAY;
            // Whatever the proof: a proof made then, or none at all.
            assert_eq!(refused(body(&relay, end, &form, None)).2.as_deref(), Some("session_ended"));
            let proof = browser.proof_with(|_, c| c.iat = end);
            assert_eq!(
                refused(body(&relay, end, &form, Some(&proof))),
                (
                    400,
                    "invalid_grant".into(),
                    Some("session_ended".into()),
                    Some(Outcome::SessionEnded)
                )
            );
        }

        /// Bitbucket's refresh tokens now exceed 2,500 characters. The
        /// longest one the relay seals and the longest proof it accepts
        /// still fit the default body limit of 8,192 bytes:
        ///
        /// ```text
        /// grant_type=refresh_token                              24
        /// &refresh_token=                                       15
        /// the sealed token: base64url of 104 + 4,096 bytes   5,600
        ///   (version 1, key id 4, nonce 24, began 8, ends 8,
        ///    thumbprint 43, tag 16: 104 bytes around the token)
        /// &dpop=                                                 6
        /// the proof, at most dpop::MAX_LEN                   2,048
        ///                                                   ------
        ///                                                    7,693
        /// ```
        ///
        /// Base64url and a compact JWS are made of characters form encoding
        /// leaves alone, so encoding adds nothing.
        #[test]
        fn the_longest_sealed_token_and_proof_fit_the_default_body_limit() {
            let relay = sealing_relay(&SealingKey::generate());
            let browser = Browser::new();
            let AfterBody::Forward(forward) = body(&relay, NOW, CODE, Some(&browser.proof()))
            else {
                panic!("the exchange is forwarded");
            };
            let longest = "R".repeat(crate::seal::MAX_UPSTREAM_LEN);
            let answer = relay.answered(forward, Ok(upstream(&longest)));
            assert_eq!(answer.status(), 200);
            let json: serde_json::Value = serde_json::from_slice(answer.body()).expect("JSON");
            let sealed = json["refresh_token"].as_str().expect("a refresh token");
            assert_eq!(sealed.len(), 5600);
            let form = refresh_form(sealed);
            let worst = form.len() + "&dpop=".len() + dance_protocol::dpop::MAX_LEN;
            assert_eq!(worst, 7693);
            assert!(worst <= crate::Limits::default().max_body_bytes);
            assert!(sealed.len() <= dance_protocol::token::MAX_FIELD_LEN);
            // And the refresh itself goes through with the whole token.
            let AfterBody::Forward(forward) = body(&relay, NOW, &form, Some(&browser.proof()))
            else {
                panic!("the refresh is forwarded");
            };
            let expected = format!("grant_type=refresh_token&refresh_token={longest}");
            assert_eq!(forward.body(), expected.as_bytes());
        }

        #[test]
        fn an_exchange_needs_a_proof_and_without_keys_nothing_changes() {
            let relay = sealing_relay(&SealingKey::generate());
            assert_eq!(refused(body(&relay, NOW, CODE, None)).1, "invalid_dpop_proof");
            // No keys: proofs are not needed, and tokens pass through as issued.
            let plain = super::relay();
            let read = ReadBody { origin: None, host: None, header_proof: Ok(None), now: NOW };
            let AfterBody::Forward(forward) = plain.read(read, Body::Read(CODE)) else {
                panic!("forwarded without a proof");
            };
            let answer = plain.answered(forward, Ok(upstream("bitbucket-rt-1")));
            let json: serde_json::Value = serde_json::from_slice(answer.body()).expect("JSON");
            assert_eq!(json["refresh_token"], "bitbucket-rt-1");
            assert!(!plain.seals() && relay.seals());
        }
    }
}

//! The fetch handler: the Workers runtime on one side, the relay core on the
//! other.
//!
//! Per isolate, the settings are read once from the Worker's vars and
//! secrets (the `DANCE_*` names of `dance_relay_core::vars`) and kept with
//! the core's [`Relay`], whose rate limiter therefore counts per isolate. A
//! Worker whose settings have errors answers every request with a 500 whose
//! body is the report `dance-relay check` would print, and never forwards
//! anything.
//!
//! What differs from the native shell, and why:
//! - The client address is `CF-Connecting-IP`, which Cloudflare sets and a
//!   client cannot choose; `X-Forwarded-For` is never read.
//! - A body is refused as too large from its `Content-Length` before it is
//!   read, and by its length after; Cloudflare's front end enforces header
//!   sizes and slow-client deadlines, so there is no body deadline here.
//! - There is no concurrency cap: each request runs in whichever isolate
//!   Cloudflare picks, and the platform scales them.
//! - A DPoP proof's signature is checked with the runtime's `crypto.subtle`
//!   (native code) instead of the core's p256 compiled to wasm, a millisecond
//!   of CPU per proof less; the core checks everything else about it.
//! - No `/metrics`: Workers has its own analytics; one log line per request
//!   goes to the Workers log (`wrangler tail`), with the same fields as the
//!   native access log and nothing from bodies or headers.

use dance_relay_core::{
    AfterBody, Answer, Body, Config, Forward, MAX_ANSWER_BYTES, Outcome, Relay, Step, Transport,
    Unverified, UpstreamAnswer, Verified, config, vars,
};
use futures::future::{Either, select};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use std::net::IpAddr;
use std::pin::pin;
use std::sync::OnceLock;
use std::time::Duration;
use worker::js_sys;
use worker::wasm_bindgen::JsValue;
use worker::{
    AbortController, Context, Date, Delay, Env, Fetch, Headers, Request, RequestInit,
    RequestRedirect, Response, event,
};

/// The relay of this isolate, or the report of what is wrong with its settings.
static RELAY: OnceLock<Result<Shell, String>> = OnceLock::new();

/// The core and the one setting the shell itself needs.
struct Shell {
    relay: Relay,
    upstream_timeout: Duration,
}

/// Reads the settings from the Worker's environment.
fn configure(env: &Env) -> Result<Shell, String> {
    let lookup = |name: &str| {
        env.var(name)
            .map(|var| var.to_string())
            .or_else(|_| env.secret(name).map(|secret| secret.to_string()))
            .ok()
    };
    let (config, problems): (Config, _) = Config::from_vars(lookup);
    let (report, ok) = config::report(&problems);
    if !ok {
        return Err(report);
    }
    for problem in &problems {
        worker::console_warn!("{problem}");
    }
    for warning in vars::ignored_by_the_worker(lookup) {
        worker::console_warn!("{warning}");
    }
    Ok(Shell { relay: Relay::new(&config), upstream_timeout: config.limits.upstream_timeout })
}

#[event(fetch)]
async fn fetch(request: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    let started = Date::now().as_millis();
    let method = request.inner().method();
    let path: String = request.path().chars().take(64).collect();
    match RELAY.get_or_init(|| configure(&env)) {
        Ok(shell) => {
            let answer = shell.handle(request).await;
            let outcome = answer.extensions().get::<Outcome>().map_or("-", |o| o.label());
            let latency_ms = Date::now().as_millis().saturating_sub(started);
            worker::console_log!(
                "{method} {path} status={} outcome={outcome} latency_ms={latency_ms}",
                answer.status().as_u16()
            );
            into_response(answer)
        }
        Err(report) => {
            worker::console_error!("{method} {path}: the relay is misconfigured:\n{report}");
            misconfigured(report)
        }
    }
}

impl Shell {
    /// The core's three steps with the runtime's IO between them.
    async fn handle(&self, mut request: Request) -> Answer {
        // The raw verb: `worker::Method` would read any unknown one as GET.
        let method = Method::from_bytes(request.inner().method().as_bytes()).unwrap_or_default();
        let headers = header_map(request.headers());
        let peer = headers
            .get("cf-connecting-ip")
            .and_then(|value| value.to_str().ok())
            .and_then(|text| text.trim().parse::<IpAddr>().ok());
        let now = Duration::from_millis(Date::now().as_millis());
        let read = match self.relay.request(&method, &request.path(), &headers, peer, now) {
            Step::Answer(answer) => return answer,
            Step::ReadBody(read) => read,
        };
        let declared = headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|text| text.parse::<u64>().ok());
        let limit = self.relay.body_limit();
        let bytes = match declared {
            Some(length) if length > limit as u64 => Err(Body::TooLarge),
            _ => request.bytes().await.map_err(|_| Body::Unreadable),
        };
        let body = match &bytes {
            Ok(bytes) => Body::Read(bytes),
            Err(failure) => *failure,
        };
        let forward = match self.relay.read(read, body) {
            AfterBody::Answer(answer) => return answer,
            AfterBody::Forward(forward) => forward,
            AfterBody::Verify(verify) => {
                let valid = verify_es256(verify.proof()).await;
                match self.relay.verified(verify, valid) {
                    Verified::Forward(forward) => forward,
                    Verified::Answer(answer) => return answer,
                }
            }
        };
        let answer = self.send(&forward).await;
        self.relay.answered(forward, answer)
    }

    /// Sends the exchange with the runtime's `fetch`, redirects not
    /// followed, the whole answer within the upstream deadline.
    async fn send(&self, forward: &Forward) -> Result<UpstreamAnswer, Transport> {
        let headers = Headers::new();
        for (name, value) in forward.headers() {
            let value = value.to_str().map_err(|_| Transport::Unreachable)?;
            headers.append(name.as_str(), value).map_err(|_| Transport::Unreachable)?;
        }
        let mut init = RequestInit::new();
        init.with_method(worker::Method::Post)
            .with_headers(headers)
            .with_redirect(RequestRedirect::Manual)
            .with_body(Some(js_sys::Uint8Array::from(forward.body()).into()));
        let request = Request::new_with_init(forward.url().as_str(), &init)
            .map_err(|_| Transport::Unreachable)?;
        let controller = AbortController::default();
        let signal = controller.signal();
        let exchange = async {
            let fetch = Fetch::Request(request);
            let mut response =
                fetch.send_with_signal(&signal).await.map_err(|_| Transport::Unreachable)?;
            let status =
                StatusCode::from_u16(response.status_code()).map_err(|_| Transport::Unreachable)?;
            let headers = header_map(response.headers());
            let body = response.bytes().await.map_err(|_| Transport::Unreachable)?;
            if body.len() > MAX_ANSWER_BYTES {
                return Err(Transport::TooLarge);
            }
            Ok(UpstreamAnswer { status, headers, body })
        };
        match select(pin!(exchange), Delay::from(self.upstream_timeout)).await {
            Either::Left((answer, _)) => answer,
            Either::Right(((), _)) => {
                controller.abort();
                worker::console_warn!("token endpoint timed out");
                Err(Transport::TimedOut)
            }
        }
    }
}

/// Checks a DPoP proof's ES256 signature with the runtime's WebCrypto
/// (`crypto.subtle`, native code in workerd) rather than the core's p256
/// compiled to wasm, which costs about a millisecond of CPU per proof. A
/// runtime without it, or that cannot import the key, falls back to the
/// core's own check, so nothing is forwarded unverified.
async fn verify_es256(proof: &Unverified) -> bool {
    match subtle_verify(proof).await {
        Ok(valid) => valid,
        Err(error) => {
            worker::console_warn!(
                "crypto.subtle could not check a proof ({error:?}); checking it in wasm"
            );
            proof.verify_here()
        }
    }
}

/// `crypto.subtle.importKey("raw", point, ECDSA P-256)` then `verify`.
async fn subtle_verify(proof: &Unverified) -> Result<bool, JsValue> {
    use js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array};
    use worker::wasm_bindgen::JsCast as _;
    use worker::wasm_bindgen_futures::JsFuture;
    let get = |target: &JsValue, name: &str| Reflect::get(target, &JsValue::from_str(name));
    let subtle = get(&get(&js_sys::global(), "crypto")?, "subtle")?;
    let call = |name: &str, args: &Array| -> Result<Promise, JsValue> {
        let method: Function = get(&subtle, name)?.dyn_into()?;
        method.apply(&subtle, args)?.dyn_into()
    };
    let algorithm = Object::new();
    Reflect::set(&algorithm, &"name".into(), &"ECDSA".into())?;
    Reflect::set(&algorithm, &"namedCurve".into(), &"P-256".into())?;
    Reflect::set(&algorithm, &"hash".into(), &"SHA-256".into())?;
    let point = Uint8Array::from(&proof.public_key()[..]);
    let usages = Array::of1(&"verify".into());
    let import = Array::of5(&"raw".into(), &point.into(), &algorithm, &JsValue::FALSE, &usages);
    let key = JsFuture::from(call("importKey", &import)?).await?;
    let verify = Array::of4(
        &algorithm,
        &key,
        &Uint8Array::from(proof.signature()).into(),
        &Uint8Array::from(proof.message()).into(),
    );
    Ok(JsFuture::from(call("verify", &verify)?).await?.as_bool().unwrap_or(false))
}

/// The runtime's headers as an `http` map; names or values `http` cannot
/// hold are left out (the runtime has validated them already).
fn header_map(headers: &Headers) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in headers.entries() {
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(&value))
        {
            map.append(name, value);
        }
    }
    map
}

/// The core's answer as a runtime response.
fn into_response(answer: Answer) -> worker::Result<Response> {
    let (parts, body) = answer.into_parts();
    let headers = Headers::new();
    for (name, value) in &parts.headers {
        if let Ok(value) = value.to_str() {
            headers.append(name.as_str(), value)?;
        }
    }
    // A body must be null for 204 and similar statuses, or the runtime
    // throws. The headers are set last: `from_bytes` would add its own
    // content type.
    let response = if body.is_empty() { Response::empty()? } else { Response::from_bytes(body)? };
    Ok(response.with_status(parts.status.as_u16()).with_headers(headers))
}

/// Every request's answer while the settings have errors.
fn misconfigured(report: &str) -> worker::Result<Response> {
    let headers = Headers::new();
    headers.append("content-type", "text/plain; charset=utf-8")?;
    headers.append("cache-control", "no-store")?;
    let body = format!(
        "dance-relay-worker is misconfigured; fix these settings (wrangler.toml [vars], or \
         `wrangler secret put` for the secret) and deploy again:\n\n{report}"
    );
    Ok(Response::from_bytes(body.into_bytes())?.with_status(500).with_headers(headers))
}

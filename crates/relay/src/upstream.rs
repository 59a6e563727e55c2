//! The native transport to the token endpoint: one pooled
//! [`reqwest::Client`] (rustls, no redirects, a total deadline per exchange)
//! sends what the core's [`Forward`] describes and reads the answer back.
//! What the answer means is decided by the core.

use crate::metrics::Metrics;
use dance_relay_core::{Forward, MAX_ANSWER_BYTES, Transport, UpstreamAnswer, is_loopback_host};
use std::time::{Duration, Instant};
use url::Url;

/// The HTTP client for the token endpoint.
#[derive(Debug)]
pub(crate) struct Upstream {
    client: reqwest::Client,
}

impl Upstream {
    /// A client for `token_url` with a pool sized for `max_concurrency`.
    pub(crate) fn new(
        token_url: &Url,
        timeout: Duration,
        max_concurrency: usize,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .https_only(!is_loopback_host(token_url))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(max_concurrency)
            .tcp_nodelay(true)
            .user_agent(concat!("dance-relay/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { client })
    }

    /// Sends `forward`'s request and reads the whole answer, timing it.
    pub(crate) async fn send(
        &self,
        forward: &Forward,
        metrics: &Metrics,
    ) -> Result<UpstreamAnswer, Transport> {
        let _in_flight = metrics.upstream_started();
        let started = Instant::now();
        let answer = self.exchange(forward).await;
        metrics.observe_upstream(started.elapsed());
        answer
    }

    async fn exchange(&self, forward: &Forward) -> Result<UpstreamAnswer, Transport> {
        let mut response = self
            .client
            .post(forward.url().clone())
            .headers(forward.headers().clone())
            .body(forward.body().to_vec())
            .send()
            .await
            .map_err(|e| transport_error(&e))?;
        let status = response.status();
        let headers = std::mem::take(response.headers_mut());
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| transport_error(&e))? {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(Transport::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(UpstreamAnswer { status, headers, body })
    }
}

/// Maps a transport failure, logging its kind (never a body or a header).
fn transport_error(error: &reqwest::Error) -> Transport {
    if error.is_timeout() {
        tracing::warn!("token endpoint timed out");
        Transport::TimedOut
    } else {
        // reqwest's message names the URL and the cause (connection refused,
        // DNS, TLS); the URL is configuration and holds no credentials.
        let mut cause = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(inner) = source {
            cause.push_str(": ");
            cause.push_str(&inner.to_string());
            source = inner.source();
        }
        tracing::warn!(%cause, "token endpoint unreachable");
        Transport::Unreachable
    }
}

//! Prometheus metrics, kept in atomics and rendered by hand in the text
//! exposition format (version 0.0.4).
//!
//! - `dance_relay_requests_total{outcome}`: requests by [`Outcome`] (every
//!   outcome is listed from the start, at zero).
//! - `dance_relay_upstream_duration_seconds`: histogram of the time from
//!   sending an exchange to the token endpoint until its answer was read.
//! - `dance_relay_upstream_in_flight`: exchanges waiting on the token endpoint.

use dance_relay_core::Outcome;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency histogram's buckets, in seconds.
const BUCKETS: [f64; 12] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// The relay's counters. One instance per [`crate::app`].
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    requests: [AtomicU64; Outcome::ALL.len()],
    /// Per-bucket counts (not cumulative); the last slot is `+Inf`.
    upstream_buckets: [AtomicU64; BUCKETS.len() + 1],
    upstream_nanos: AtomicU64,
    upstream_count: AtomicU64,
    upstream_in_flight: AtomicU64,
}

/// Decrements the in-flight gauge when an exchange ends, however it ends.
pub(crate) struct InFlight<'a>(&'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    /// Counts one finished request.
    pub(crate) fn count(&self, outcome: Outcome) {
        self.requests[outcome.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Marks an exchange as sent; the guard marks it done.
    pub(crate) fn upstream_started(&self) -> InFlight<'_> {
        self.upstream_in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(&self.upstream_in_flight)
    }

    /// Records how long the token endpoint took.
    pub(crate) fn observe_upstream(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let slot = BUCKETS.iter().position(|bound| seconds <= *bound).unwrap_or(BUCKETS.len());
        self.upstream_buckets[slot].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.upstream_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.upstream_count.fetch_add(1, Ordering::Relaxed);
    }

    /// The number of requests that ended with `outcome` so far.
    pub(crate) fn requests(&self, outcome: Outcome) -> u64 {
        self.requests[outcome.index()].load(Ordering::Relaxed)
    }

    /// The metrics in Prometheus text format.
    pub(crate) fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        out.push_str("# HELP dance_relay_requests_total Requests to the relay by outcome.\n");
        out.push_str("# TYPE dance_relay_requests_total counter\n");
        for outcome in Outcome::ALL {
            let _ = writeln!(
                out,
                "dance_relay_requests_total{{outcome=\"{}\"}} {}",
                outcome.label(),
                self.requests(outcome)
            );
        }
        out.push_str(
            "# HELP dance_relay_upstream_duration_seconds Time from sending an exchange to the \
             token endpoint until its answer was read.\n",
        );
        out.push_str("# TYPE dance_relay_upstream_duration_seconds histogram\n");
        let mut cumulative = 0;
        for (i, bound) in BUCKETS.iter().enumerate() {
            cumulative += self.upstream_buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "dance_relay_upstream_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        cumulative += self.upstream_buckets[BUCKETS.len()].load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "dance_relay_upstream_duration_seconds_bucket{{le=\"+Inf\"}} {cumulative}"
        );
        let sum = self.upstream_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "dance_relay_upstream_duration_seconds_sum {sum}");
        let _ = writeln!(
            out,
            "dance_relay_upstream_duration_seconds_count {}",
            self.upstream_count.load(Ordering::Relaxed)
        );
        out.push_str(
            "# HELP dance_relay_upstream_in_flight Exchanges waiting on the token endpoint.\n",
        );
        out.push_str("# TYPE dance_relay_upstream_in_flight gauge\n");
        let _ = writeln!(
            out,
            "dance_relay_upstream_in_flight {}",
            self.upstream_in_flight.load(Ordering::Relaxed)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_a_cumulative_histogram() {
        let metrics = Metrics::default();
        metrics.count(Outcome::Ok);
        metrics.count(Outcome::Ok);
        metrics.count(Outcome::RefusedOrigin);
        metrics.observe_upstream(Duration::from_micros(800));
        metrics.observe_upstream(Duration::from_millis(30));
        metrics.observe_upstream(Duration::from_secs(20));
        {
            let _guard = metrics.upstream_started();
            assert!(metrics.render().contains("dance_relay_upstream_in_flight 1\n"));
        }
        let text = metrics.render();
        for line in [
            "dance_relay_requests_total{outcome=\"ok\"} 2\n",
            "dance_relay_requests_total{outcome=\"refused_origin\"} 1\n",
            "dance_relay_requests_total{outcome=\"busy\"} 0\n",
            "dance_relay_upstream_duration_seconds_bucket{le=\"0.001\"} 1\n",
            "dance_relay_upstream_duration_seconds_bucket{le=\"0.025\"} 1\n",
            "dance_relay_upstream_duration_seconds_bucket{le=\"0.05\"} 2\n",
            "dance_relay_upstream_duration_seconds_bucket{le=\"10\"} 2\n",
            "dance_relay_upstream_duration_seconds_bucket{le=\"+Inf\"} 3\n",
            "dance_relay_upstream_duration_seconds_count 3\n",
            "dance_relay_upstream_in_flight 0\n",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert_eq!(text.matches("dance_relay_requests_total{").count(), Outcome::ALL.len());
    }
}

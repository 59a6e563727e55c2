//! fakebucket's sense of time, which tests can move forward.
//!
//! Every expiry in the emulator (authorization codes, access and refresh
//! tokens, pending consent pages, the rate-limit window) is measured on a
//! [`Clock`] rather than on [`Instant::now`] directly. The clock follows real
//! time plus an offset that only ever grows, so a test can "wait two hours" by
//! calling [`Clock::advance`] (or `POST /_fakebucket/clock/advance`) instead
//! of sleeping.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A monotonic clock that runs with real time and can be pushed forward.
///
/// Clones share the same offset: keep a clone of the clock you put in
/// [`crate::Config::clock`] and advancing it moves the running server's time.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset: Arc<Mutex<Duration>>,
}

impl Clock {
    /// A clock that starts at real time with no offset.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current instant: real time plus every advance so far.
    pub fn now(&self) -> Instant {
        Instant::now() + self.offset()
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut offset = self.offset.lock().unwrap_or_else(PoisonError::into_inner);
        *offset = offset.saturating_add(by);
    }

    /// The total amount the clock has been advanced.
    pub fn offset(&self) -> Duration {
        *self.offset.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts the clock back to real time. Only [`crate::Handle::reset`] and the
    /// admin reset use this, after throwing away every grant measured on the
    /// old offset.
    pub(crate) fn reset(&self) {
        *self.offset.lock().unwrap_or_else(PoisonError::into_inner) = Duration::ZERO;
    }
}

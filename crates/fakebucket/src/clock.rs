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

/// An advance that would move the clock past [`Clock::MAX_OFFSET`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the clock can move at most {} seconds in all; it has moved {} already",
    Clock::MAX_OFFSET.as_secs(),
    offset.as_secs()
)]
pub struct TooFar {
    /// The offset the clock keeps.
    pub offset: Duration,
}

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

    /// Moves the clock forward by `by`, or refuses when the total offset
    /// would pass [`Clock::MAX_OFFSET`] (the clock is left as it was).
    pub fn advance(&self, by: Duration) -> Result<Duration, TooFar> {
        let mut offset = self.offset.lock().unwrap_or_else(PoisonError::into_inner);
        let moved = offset.checked_add(by).filter(|moved| *moved <= Self::MAX_OFFSET);
        *offset = moved.ok_or(TooFar { offset: *offset })?;
        Ok(*offset)
    }

    /// How far the clock may be pushed in all: a hundred years, far beyond
    /// any lifetime fakebucket measures, and far from where `Instant`
    /// arithmetic overflows.
    pub const MAX_OFFSET: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advances_add_up_and_stop_at_the_limit() {
        let clock = Clock::new();
        assert_eq!(clock.advance(Duration::from_secs(7200)), Ok(Duration::from_secs(7200)));
        let too_far = clock.advance(Clock::MAX_OFFSET).expect_err("past the limit");
        assert_eq!(too_far.offset, Duration::from_secs(7200));
        assert_eq!(clock.offset(), Duration::from_secs(7200), "a refused advance moves nothing");
        assert!(clock.advance(Duration::MAX).is_err(), "no overflow");
        let rest = Clock::MAX_OFFSET - clock.offset();
        assert_eq!(clock.advance(rest), Ok(Clock::MAX_OFFSET));
        assert!(clock.now() > Instant::now(), "the furthest clock still reads");
    }
}

//! The hub's time: the latest instant any input brought (time never runs backwards inside the
//! hub), and the anchor that turns an instant into wall-clock milliseconds.

use std::time::Instant;

/// The hub's time.
#[derive(Debug)]
pub(super) struct Clock {
    /// The latest time seen.
    pub(super) now: Instant,
    /// An instant and the wall-clock milliseconds (since the Unix epoch) at it.
    epoch: (Instant, u64),
}

impl Clock {
    pub(super) fn new(now: Instant, unix_ms: u64) -> Self {
        Self { now, epoch: (now, unix_ms) }
    }

    /// Moves the clock to `now` unless it is earlier than what the hub has seen; returns the
    /// hub's time.
    pub(super) fn advance(&mut self, now: Instant) -> Instant {
        self.now = self.now.max(now);
        self.now
    }

    /// Wall-clock milliseconds at `at`.
    pub(super) fn unix_ms(&self, at: Instant) -> u64 {
        let since = at.saturating_duration_since(self.epoch.0).as_millis();
        self.epoch.1.saturating_add(u64::try_from(since).unwrap_or(u64::MAX))
    }
}

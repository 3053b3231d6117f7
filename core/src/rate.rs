//! The per-connection rate limit, as a generic cell rate algorithm (GCRA).
//!
//! GCRA is a token bucket written with one timestamp instead of a counter and a refill time:
//! no floating point, no periodic refill, O(1) per frame.

use std::time::{Duration, Instant};

use crate::config::RateLimit;

/// The limit turned into the two durations GCRA works with.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pace {
    /// Time one frame "costs": 1 / rate.
    interval: Duration,
    /// How far ahead of real time the theoretical arrival time may run: (burst - 1) × interval.
    tolerance: Duration,
}

impl Pace {
    pub(crate) fn new(limit: RateLimit) -> Self {
        let interval = Duration::from_secs(1) / limit.per_second.max(1);
        let tolerance = interval * limit.burst.saturating_sub(1);
        Self { interval, tolerance }
    }
}

/// One connection's bucket: the theoretical arrival time of its next frame.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Bucket {
    tat: Option<Instant>,
}

impl Bucket {
    /// Takes one token at `now`; `false` when the bucket is empty (the frame is over the limit).
    pub(crate) fn take(&mut self, pace: Pace, now: Instant) -> bool {
        let tat = self.tat.map_or(now, |tat| tat.max(now));
        if tat.saturating_duration_since(now) > pace.tolerance {
            return false;
        }
        self.tat = Some(tat + pace.interval);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_is_allowed_at_once_and_the_next_frame_is_refused() {
        let pace = Pace::new(RateLimit { per_second: 100, burst: 200 });
        let now = Instant::now();
        let mut bucket = Bucket::default();
        for _ in 0..200 {
            assert!(bucket.take(pace, now));
        }
        assert!(!bucket.take(pace, now));
    }

    #[test]
    fn bucket_refills_at_the_sustained_rate() {
        let pace = Pace::new(RateLimit { per_second: 10, burst: 1 });
        let start = Instant::now();
        let mut bucket = Bucket::default();
        assert!(bucket.take(pace, start));
        assert!(!bucket.take(pace, start + Duration::from_millis(50)));
        assert!(bucket.take(pace, start + Duration::from_millis(100)));
        // A steady 10/s goes on being accepted forever.
        for i in 2..100 {
            assert!(bucket.take(pace, start + Duration::from_millis(100 * i)));
        }
    }
}

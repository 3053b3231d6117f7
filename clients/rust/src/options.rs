//! How the client connects and reconnects.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// Reconnection: exponential backoff with full jitter.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// The first retry waits up to this long (default 500 ms); each next one up to twice as long.
    pub initial: Duration,
    /// The longest wait (default 30 s).
    pub max: Duration,
    /// Attempts in a row before giving up (default: unbounded).
    pub max_attempts: u32,
    /// The least wait after the server asked to slow down (default 5 s).
    pub pause: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
            max_attempts: u32::MAX,
            pause: Duration::from_secs(5),
        }
    }
}

impl Backoff {
    /// The wait before attempt `attempt` (0-based): random in `0..=min(max, initial × 2^attempt)`,
    /// so that the clients of a restarted server do not all come back at once.
    pub(crate) fn delay(&self, attempt: u32, pause: bool) -> Duration {
        let bound = self.initial.saturating_mul(1u32 << attempt.min(20)).min(self.max);
        let delay = bound.mul_f64(random_unit());
        if pause { delay.max(self.pause) } else { delay }
    }
}

/// A random number in `[0, 1)`, from the standard library's randomly seeded hasher.
fn random_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0);
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// Where tokens come from.
pub(crate) type TokenSource =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Option<String>> + Send>> + Send + Sync>;

/// Everything the connection task runs with.
#[derive(Clone)]
pub(crate) struct Options {
    pub(crate) url: String,
    pub(crate) token: Option<String>,
    pub(crate) token_source: Option<TokenSource>,
    pub(crate) backoff: Option<Backoff>,
    pub(crate) heartbeat: Duration,
    pub(crate) buffer: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_stay_within_the_exponential_bound_and_pauses_last_at_least_the_pause() {
        let backoff = Backoff::default();
        for attempt in 0..40 {
            let bound =
                Duration::from_millis(500).saturating_mul(1 << attempt.min(20)).min(backoff.max);
            let delay = backoff.delay(attempt, false);
            assert!(delay <= bound, "{attempt}: {delay:?} > {bound:?}");
            assert!(backoff.delay(attempt, true) >= backoff.pause);
        }
        let spread: std::collections::HashSet<_> =
            (0..20).map(|_| backoff.delay(5, false)).collect();
        assert!(spread.len() > 1, "jitter: the delays differ");
    }
}

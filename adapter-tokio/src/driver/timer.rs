//! The hub task's clocks: its deadlines met on ticks ([`Timer`]), and the idle shrink
//! ([`IdleTimer`]).

use super::*;

/// The hub's deadlines are met on ticks of this length: a deadline is rounded up to the next
/// tick, so that the deadlines of many connections (their pings, mostly) that fall within one
/// tick are met in one turn, with one write round and one batch of pongs, instead of one wake-up
/// of the hub task each. A ping or a close is at most this late; the heartbeat bound
/// (`heartbeat_timeout`, 30 s by default) is counted from the connection's last activity as before.
pub(super) const TIMER_TICK: Duration = Duration::from_millis(100);

/// The hub task's timer: sleeps until the hub's next deadline, rounded up to a [`TIMER_TICK`],
/// or forever when it has none.
pub(super) struct Timer {
    /// Where the ticks are counted from.
    origin: Instant,
    at: Option<Instant>,
    sleep: Pin<Box<Sleep>>,
}

impl Timer {
    pub(super) fn new(at: Option<Instant>) -> Self {
        let origin = Instant::now();
        let at = at.map(|at| on_tick(origin, at));
        let sleep = Box::pin(tokio::time::sleep_until(Self::until(at)));
        Self { origin, at, sleep }
    }

    /// A deadline far enough away to stand for "none".
    pub(super) fn until(at: Option<Instant>) -> tokio::time::Instant {
        at.map_or_else(
            || tokio::time::Instant::now() + Duration::from_secs(86_400 * 365),
            Into::into,
        )
    }

    /// Moves the timer, only when the deadline moved to another tick.
    pub(super) fn reset(&mut self, at: Option<Instant>) {
        let at = at.map(|at| on_tick(self.origin, at));
        if at != self.at {
            self.at = at;
            self.sleep.as_mut().reset(Self::until(at));
        }
    }

    /// Completes at the deadline; never, when there is none.
    pub(super) async fn fired(&mut self) {
        match self.at {
            Some(_) => self.sleep.as_mut().await,
            None => std::future::pending().await,
        }
    }
}

/// `at`, rounded up to the next [`TIMER_TICK`] counted from `origin`.
pub(super) fn on_tick(origin: Instant, at: Instant) -> Instant {
    let Some(since) = at.checked_duration_since(origin) else {
        return at;
    };
    let tick = TIMER_TICK.as_nanos();
    let ticks = since.as_nanos().div_ceil(tick);
    let rounded = u64::try_from(ticks * tick).unwrap_or(u64::MAX);
    origin.checked_add(Duration::from_nanos(rounded)).unwrap_or(at)
}

/// Fires once, [`SHRINK_AFTER`] after the hub task last wrote sockets or saw connections come or
/// go; then not again until it does. Moved at most once per [`SHRINK_AFTER`], not on every turn.
/// (Turns that do neither, such as a metrics query, do not count: they change none of what it
/// gives back. Departures count: after a storm leaves, what the hub sized for it goes back.)
pub(super) struct IdleTimer {
    last_busy: tokio::time::Instant,
    armed: bool,
    sleep: Pin<Box<Sleep>>,
}

impl Default for IdleTimer {
    fn default() -> Self {
        let now = tokio::time::Instant::now();
        Self { last_busy: now, armed: false, sleep: Box::pin(tokio::time::sleep_until(now)) }
    }
}

impl IdleTimer {
    /// The task finished a turn at `at`.
    pub(super) fn busy(&mut self, at: Instant) {
        self.last_busy = at.into();
        if !self.armed {
            self.armed = true;
            self.sleep.as_mut().reset(self.last_busy + SHRINK_AFTER);
        }
    }

    /// Completes once the task has been idle for [`SHRINK_AFTER`] since it was last busy.
    pub(super) async fn fired(&mut self) {
        loop {
            if !self.armed {
                return std::future::pending().await;
            }
            self.sleep.as_mut().await;
            let due = self.last_busy + SHRINK_AFTER;
            if due <= tokio::time::Instant::now() {
                self.armed = false;
                return;
            }
            self.sleep.as_mut().reset(due);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_round_up_to_the_next_tick_and_never_earlier() {
        let origin = Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(on_tick(origin, origin), origin);
        assert_eq!(on_tick(origin, origin + Duration::from_nanos(1)), origin + TIMER_TICK);
        assert_eq!(on_tick(origin, origin + TIMER_TICK), origin + TIMER_TICK);
        assert_eq!(on_tick(origin, origin + ms(150)), origin + ms(200));
        assert_eq!(on_tick(origin, origin + ms(10_001)), origin + ms(10_100));
        // A deadline before the origin (already due) is met at once.
        if let Some(before) = origin.checked_sub(ms(5)) {
            assert_eq!(on_tick(origin, before), before);
        }
        for n in 0..1_000u64 {
            let at = origin + Duration::from_micros(n * 997);
            let tick = on_tick(origin, at);
            assert!(tick >= at && tick - at < TIMER_TICK, "{n}");
        }
    }
}

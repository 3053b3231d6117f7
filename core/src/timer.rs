//! Per-connection deadlines in one binary heap.
//!
//! Each connection has at most one *live* entry: the earliest of its deadlines (auth, heartbeat,
//! next ping). Activity only stores a timestamp; it does not touch the heap. When an entry comes
//! due the hub recomputes the connection's real deadline and, if it moved, schedules it again.
//! Entries whose deadline no longer matches the connection's (it moved, or the connection left)
//! are skipped when popped. Every operation is O(log n); nothing scans all connections.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use crate::id::ConnId;

/// A min-heap of `(deadline, sequence, connection)`. The sequence number breaks ties in
/// insertion order, so that equal deadlines fire in a repeatable order.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, u64, ConnId)>>,
    seq: u64,
}

impl Timers {
    pub(crate) fn schedule(&mut self, at: Instant, conn: ConnId) {
        self.seq += 1;
        self.heap.push(Reverse((at, self.seq, conn)));
    }

    /// The earliest deadline, live or stale.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    /// The earliest entry, if it is due at `now`. It stays in the heap until [`pop`](Self::pop)
    /// or [`replace_top`](Self::replace_top).
    pub(crate) fn peek_due(&self, now: Instant) -> Option<(Instant, ConnId)> {
        match self.heap.peek() {
            Some(Reverse((at, _, conn))) if *at <= now => Some((*at, *conn)),
            _ => None,
        }
    }

    /// Removes the earliest entry.
    pub(crate) fn pop(&mut self) {
        self.heap.pop();
    }

    /// Reschedules the earliest entry in place: one sift-down instead of a pop and a push.
    pub(crate) fn replace_top(&mut self, at: Instant, conn: ConnId) {
        self.seq += 1;
        if let Some(mut top) = self.heap.peek_mut() {
            *top = Reverse((at, self.seq, conn));
        }
    }

    /// Drops stale entries from the top, so that `next` is not needlessly early.
    pub(crate) fn prune(&mut self, mut is_live: impl FnMut(Instant, ConnId) -> bool) {
        while let Some(Reverse((at, _, conn))) = self.heap.peek() {
            if is_live(*at, *conn) {
                break;
            }
            self.heap.pop();
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Drops every stale entry, wherever it sits, and gives back the heap's spare room. O(n):
    /// for when the hub is idle, not for every turn.
    pub(crate) fn shrink_to_fit(&mut self, mut is_live: impl FnMut(Instant, ConnId) -> bool) {
        self.heap.retain(|Reverse((at, _, conn))| is_live(*at, *conn));
        self.heap.shrink_to_fit();
    }

    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.heap.capacity()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn equal_deadlines_pop_in_scheduling_order() {
        let t = Instant::now();
        let mut timers = Timers::default();
        timers.schedule(t + Duration::from_secs(2), ConnId::from_u128(9));
        timers.schedule(t + Duration::from_secs(1), ConnId::from_u128(5));
        timers.schedule(t + Duration::from_secs(1), ConnId::from_u128(3));
        assert_eq!(timers.next(), Some(t + Duration::from_secs(1)));
        assert_eq!(timers.peek_due(t), None);
        let later = t + Duration::from_secs(5);
        let order: Vec<_> = std::iter::from_fn(|| {
            let due = timers.peek_due(later);
            timers.pop();
            due
        })
        .map(|(_, c)| c)
        .collect();
        assert_eq!(order, [ConnId::from_u128(5), ConnId::from_u128(3), ConnId::from_u128(9)]);
    }

    #[test]
    fn replacing_the_top_keeps_heap_order() {
        let t = Instant::now();
        let mut timers = Timers::default();
        for (secs, n) in [(1, 1), (2, 2), (3, 3)] {
            timers.schedule(t + Duration::from_secs(secs), ConnId::from_u128(n));
        }
        timers.replace_top(t + Duration::from_secs(10), ConnId::from_u128(1));
        assert_eq!(timers.next(), Some(t + Duration::from_secs(2)));
        assert_eq!(timers.len(), 3);
    }

    #[test]
    fn shrinking_drops_stale_entries_anywhere_and_keeps_order() {
        let t = Instant::now();
        let mut timers = Timers::default();
        for n in 1..=1000 {
            timers.schedule(t + Duration::from_secs(n), ConnId::from_u128(u128::from(n)));
        }
        timers.shrink_to_fit(|_, conn| conn.as_uuid().as_u128() % 100 == 0);
        assert_eq!(timers.len(), 10);
        assert!(timers.capacity() < 1000);
        let later = t + Duration::from_secs(2000);
        let order: Vec<_> = std::iter::from_fn(|| {
            let due = timers.peek_due(later);
            timers.pop();
            due
        })
        .map(|(_, c)| c.as_uuid().as_u128())
        .collect();
        assert_eq!(order, (1..=10).map(|n| n * 100).collect::<Vec<_>>());
    }
}

//! Counting live sockets, so that a shutdown can wait until every one has flushed and closed.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

/// Counts live sockets. A socket enters before its connection is handed to the hub (so that a
/// client told `connected` is already counted, for `max_connections`) and leaves when it is
/// closed, or at once if the hub did not take it; the hub task waits for [`idle`](Self::idle) on
/// shutdown.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    live: AtomicUsize,
    changed: Notify,
}

impl Tracker {
    pub(crate) fn enter(&self) {
        self.live.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn leave(&self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    /// Sockets live now.
    pub(crate) fn live(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }

    /// Completes when no socket is live.
    pub(crate) async fn idle(&self) {
        loop {
            let changed = self.changed.notified();
            if self.live.load(Ordering::SeqCst) == 0 {
                return;
            }
            changed.await;
        }
    }
}

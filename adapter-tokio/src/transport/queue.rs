//! One socket's outbound queue: bounded, filled by the hub task, drained by the socket's writer.
//!
//! Cheaper than a general-purpose channel on the hot path of every delivery: a push is one
//! uncontended lock; the writer is woken only when the queue goes from empty to non-empty, and
//! takes everything queued in one swap.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::Notify;

/// What the socket's writer is asked to send.
#[derive(Debug)]
pub(crate) enum Item {
    /// A text frame, already serialized.
    Frame(Bytes),
    /// A binary frame (echoed in conformance testing only).
    Binary(Bytes),
    /// A ping.
    Ping,
}

/// Why a push failed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PushError {
    /// The queue holds its capacity: the socket is a slow consumer.
    Full,
    /// The writer is gone.
    Closed,
}

#[derive(Debug)]
struct Slots {
    frames: VecDeque<Item>,
    /// The hub dropped its end (the connection is gone), or the writer did.
    closed: bool,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<Slots>,
    ready: Notify,
    capacity: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Slots> {
        // Nothing panics while holding this lock; recover the state if something ever did.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The hub's end. Dropping it closes the queue: the writer sends what is left and ends.
#[derive(Debug)]
pub(crate) struct Sender(Arc<Shared>);

/// The writer's end.
#[derive(Debug)]
pub(crate) struct Receiver(Arc<Shared>);

/// A queue holding at most `capacity` frames.
pub(crate) fn queue(capacity: usize) -> (Sender, Receiver) {
    let shared = Arc::new(Shared {
        state: Mutex::new(Slots { frames: VecDeque::new(), closed: false }),
        ready: Notify::new(),
        capacity: capacity.max(1),
    });
    (Sender(shared.clone()), Receiver(shared))
}

impl Sender {
    pub(crate) fn push(&self, item: Item) -> Result<(), PushError> {
        let mut state = self.0.lock();
        if state.closed {
            return Err(PushError::Closed);
        }
        if state.frames.len() >= self.0.capacity {
            return Err(PushError::Full);
        }
        state.frames.push_back(item);
        let was_empty = state.frames.len() == 1;
        drop(state);
        if was_empty {
            self.0.ready.notify_one();
        }
        Ok(())
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.0.lock().closed = true;
        self.0.ready.notify_one();
    }
}

impl Receiver {
    /// Moves every queued frame into `into` (which must be empty), waiting for one if there is
    /// none. `false` once the queue is closed and empty.
    pub(crate) async fn take_all(&self, into: &mut VecDeque<Item>) -> bool {
        loop {
            {
                let mut state = self.0.lock();
                if !state.frames.is_empty() {
                    std::mem::swap(into, &mut state.frames);
                    return true;
                }
                if state.closed {
                    return false;
                }
            }
            // A push between the check and here leaves a permit: this returns at once.
            self.0.ready.notified().await;
        }
    }

    /// Takes whatever is queued now, without waiting.
    pub(crate) fn take_now(&self, into: &mut VecDeque<Item>) {
        let mut state = self.0.lock();
        into.append(&mut state.frames);
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.0.lock().closed = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_come_out_in_order_and_the_bound_holds() {
        let (tx, rx) = queue(2);
        assert_eq!(tx.push(Item::Frame(Bytes::from_static(b"a"))), Ok(()));
        assert_eq!(tx.push(Item::Ping), Ok(()));
        assert_eq!(tx.push(Item::Ping), Err(PushError::Full));
        let mut got = VecDeque::new();
        assert!(rx.take_all(&mut got).await);
        assert!(matches!(got.pop_front(), Some(Item::Frame(f)) if f == "a"));
        assert!(matches!(got.pop_front(), Some(Item::Ping)));
        drop(tx);
        assert!(!rx.take_all(&mut got).await, "closed and empty");
    }

    #[tokio::test]
    async fn a_waiting_writer_wakes_on_the_first_push() {
        let (tx, rx) = queue(8);
        let writer = tokio::spawn(async move {
            let mut got = VecDeque::new();
            rx.take_all(&mut got).await;
            got.len()
        });
        tokio::task::yield_now().await;
        tx.push(Item::Ping).unwrap_or_default();
        assert_eq!(writer.await.unwrap_or(0), 1);
    }
}

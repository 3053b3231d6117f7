//! Where the hub task's events go: the application's event stream (without the silent loss of
//! a bounded channel), and what it hands the dispatcher of the application's handlers.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use roomcast_core::{ConnId, Event};
use tokio::sync::mpsc;

use crate::transport::request::UpgradeRequest;

/// Application events ([`Event::Message`], [`Event::Connected`], [`Event::Disconnected`], ...),
/// in the hub's order. Consume them, or drop this to ignore them: once it is dropped, nothing is
/// queued for it, and a client request no handler takes is answered with an error of code
/// `unknown_event` at once.
///
/// Nothing is dropped silently. Lifecycle events (`Connected`, `Joined`, `Left`,
/// `Disconnected`, ...) always arrive, so that an application's own maps of connections stay
/// true. A client's message is refused when `event_queue` events already wait here unread: the
/// client is closed with 4009 (the application is behind), and the refusal is counted
/// ([`Snapshot::events_dropped`](crate::Snapshot::events_dropped)). With handlers
/// ([`Builder::on`](crate::Builder::on)), messages go to them and this stream carries the rest.
#[derive(Debug)]
pub struct Events {
    events: mpsc::UnboundedReceiver<Event>,
    waiting: Arc<AtomicUsize>,
}

impl Events {
    /// The next event; `None` once the instance has stopped.
    pub async fn recv(&mut self) -> Option<Event> {
        let event = self.events.recv().await?;
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        Some(event)
    }
}

/// The hub's end of [`Events`].
#[derive(Debug, Clone)]
pub(crate) struct EventSender {
    events: mpsc::UnboundedSender<Event>,
    waiting: Arc<AtomicUsize>,
    /// Unread events past which a client's message is refused.
    limit: usize,
}

impl EventSender {
    /// Hands an event over; nothing happens if [`Events`] was dropped.
    pub(crate) fn send(&self, event: Event) {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        if self.events.send(event).is_err() {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Whether the application dropped its [`Events`]: nobody will read what is sent.
    pub(crate) fn is_closed(&self) -> bool {
        self.events.is_closed()
    }

    /// Whether as many events wait unread as a client's message may find.
    pub(crate) fn is_full(&self) -> bool {
        self.waiting.load(Ordering::Relaxed) >= self.limit
    }
}

/// A new stream and its sender; `limit` unread events refuse clients' messages.
pub(crate) fn events(limit: usize) -> (EventSender, Events) {
    let (tx, rx) = mpsc::unbounded_channel();
    let waiting = Arc::new(AtomicUsize::new(0));
    let sender = EventSender { events: tx, waiting: waiting.clone(), limit: limit.max(1) };
    (sender, Events { events: rx, waiting })
}

/// What the hub task hands the dispatcher, in the hub's order.
#[derive(Debug)]
pub(crate) enum ToApp {
    /// A connection opened, with the request that opened it (before any of its events).
    Opened { conn: ConnId, request: Option<Arc<UpgradeRequest>> },
    /// An event of the hub.
    Event(Event),
}

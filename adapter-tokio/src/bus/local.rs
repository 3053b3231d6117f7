//! The in-process bus: instances in one process that share a [`LocalBus`] behave as one cluster.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::bus::Bus;
use crate::bus::inbox::BusInbox;

/// An in-process bus: instances in one process that share a `LocalBus` behave as one cluster,
/// with the same exact-interest rules as Redis. A single instance on its own bus (the default)
/// needs nothing else.
#[derive(Clone, Debug, Default)]
pub struct LocalBus {
    shared: Arc<Mutex<Registry>>,
}

#[derive(Debug, Default)]
struct Registry {
    next: u64,
    inboxes: HashMap<u64, BusInbox>,
    channels: HashMap<String, HashSet<u64>>,
}

impl LocalBus {
    /// A new, empty in-process bus.
    pub fn new() -> Self {
        Self::default()
    }

    /// Attaches one instance; pass it to [`Builder::bus`](crate::Builder::bus).
    pub fn port(&self, inbox: BusInbox) -> LocalPort {
        let mut registry = self.lock();
        registry.next += 1;
        let id = registry.next;
        registry.inboxes.insert(id, inbox);
        LocalPort { id, bus: self.clone() }
    }

    /// How many instances are attached (their hub tasks still run).
    pub fn instances(&self) -> usize {
        self.lock().inboxes.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        // A panic while holding this lock cannot leave the maps half-updated in a way that
        // matters: every update is a single insert or remove.
        self.shared.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// One instance's attachment to a [`LocalBus`].
#[derive(Debug)]
pub struct LocalPort {
    id: u64,
    bus: LocalBus,
}

impl Bus for LocalPort {
    fn publish(&mut self, channel: String, payload: Bytes) {
        let registry = self.bus.lock();
        let Some(subscribers) = registry.channels.get(&channel) else { return };
        // Unlike Redis, the publisher does not hear itself: it delivered locally already.
        for id in subscribers.iter().filter(|id| **id != self.id) {
            if let Some(inbox) = registry.inboxes.get(id) {
                inbox.try_deliver(channel.clone(), payload.clone());
            }
        }
    }

    fn subscribe(&mut self, channel: String) {
        self.bus.lock().channels.entry(channel).or_default().insert(self.id);
    }

    fn unsubscribe(&mut self, channel: String) {
        let mut registry = self.bus.lock();
        if let Some(subscribers) = registry.channels.get_mut(&channel) {
            subscribers.remove(&self.id);
            if subscribers.is_empty() {
                registry.channels.remove(&channel);
            }
        }
    }
}

impl Drop for LocalPort {
    fn drop(&mut self) {
        let mut registry = self.bus.lock();
        registry.inboxes.remove(&self.id);
        registry.channels.retain(|_, subscribers| {
            subscribers.remove(&self.id);
            !subscribers.is_empty()
        });
    }
}

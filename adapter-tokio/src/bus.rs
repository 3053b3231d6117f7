//! The bus between instances: a trait the hub task drives, and the in-process bus.
//!
//! The hub task calls [`Bus`] methods synchronously, in output order; an implementation that
//! talks to a network (Redis) hands them to its own task. Envelopes arriving for this instance go
//! into its [`BusInbox`].

use std::collections::{HashMap, HashSet};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::driver::Command;

/// Carries the core's bus outputs.
pub trait Bus: Send + 'static {
    /// Publishes an envelope on `channel`.
    fn publish(&mut self, channel: String, payload: Bytes);
    /// This instance now needs the envelopes of `channel`.
    fn subscribe(&mut self, channel: String);
    /// This instance no longer needs `channel`.
    fn unsubscribe(&mut self, channel: String);

    /// The bus's own counters, for `/metrics`. None by default.
    fn metrics(&self) -> BusMetrics {
        BusMetrics::default()
    }

    /// The instance is shutting down, every socket closed and the hub's goodbye handed to
    /// [`publish`](Self::publish) just before: send what is queued, then withdraw what the
    /// instance left on the bus (the Redis bus removes its lease, so that whoever reads the
    /// leases afterwards does not count it). Nothing by default.
    fn retire(&mut self) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(std::future::ready(()))
    }
}

/// Counters of a bus.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BusMetrics {
    /// Whether the bus is connected (`None`: it has no connection, e.g. in-process).
    pub connected: Option<bool>,
    /// Envelopes dropped on the way out (the bus was down, or its queue full).
    pub publish_dropped: u64,
    /// Envelopes dropped on the way in (the hub did not take them in time).
    pub received_dropped: u64,
    /// Times the bus reconnected.
    pub reconnects: u64,
}

/// Where a bus delivers envelopes for one instance.
///
/// It does not keep the instance alive: once every [`Handle`](crate::Handle) and socket is gone,
/// deliveries fail and the bus can let go.
#[derive(Clone, Debug)]
pub struct BusInbox {
    pub(crate) commands: mpsc::WeakSender<Command>,
}

impl BusInbox {
    /// Hands an envelope that arrived on `channel` to the instance, waiting while its queue is
    /// full. `false` once the instance has stopped.
    pub async fn deliver(&self, channel: String, payload: Bytes) -> bool {
        match self.commands.upgrade() {
            Some(commands) => commands.send(Command::Bus { channel, payload }).await.is_ok(),
            None => false,
        }
    }

    /// Reports that the bus may have lost envelopes (it reconnected): members of every room are
    /// told to resync. `false` once the instance has stopped.
    pub async fn gap(&self) -> bool {
        match self.commands.upgrade() {
            Some(commands) => commands.send(Command::BusGap).await.is_ok(),
            None => false,
        }
    }

    /// Reports that another instance holds a lease for `remaining` from now (cluster presence).
    pub async fn lease(&self, server_id: String, remaining: std::time::Duration) -> bool {
        match self.commands.upgrade() {
            Some(commands) => {
                commands.send(Command::PeerLease { server_id, remaining }).await.is_ok()
            }
            None => false,
        }
    }

    /// Hands an envelope over without waiting; `false` if the queue is full (the envelope is
    /// dropped: delivery is at most once) or the instance has stopped.
    pub fn try_deliver(&self, channel: String, payload: Bytes) -> bool {
        self.commands
            .upgrade()
            .is_some_and(|c| c.try_send(Command::Bus { channel, payload }).is_ok())
    }
}

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

#[cfg(feature = "redis")]
mod redis_impl {
    use std::pin::Pin;

    use bytes::Bytes;
    use roomcast_redis::{Arrival, RedisBus, RedisConfig};

    use super::{Bus, BusInbox, BusMetrics};

    impl Bus for RedisBus {
        fn publish(&mut self, channel: String, payload: Bytes) {
            RedisBus::publish(self, channel, payload);
        }

        fn subscribe(&mut self, channel: String) {
            RedisBus::subscribe(self, channel);
        }

        fn unsubscribe(&mut self, channel: String) {
            RedisBus::unsubscribe(self, channel);
        }

        fn retire(&mut self) -> Pin<Box<dyn Future<Output = ()> + Send>> {
            Box::pin(RedisBus::retire(self))
        }

        fn metrics(&self) -> BusMetrics {
            let stats = self.stats();
            BusMetrics {
                connected: Some(stats.connected),
                publish_dropped: stats.publish_dropped,
                received_dropped: stats.received_dropped,
                reconnects: stats.reconnects,
            }
        }
    }

    /// The Redis bus for [`Builder::bus`](crate::Builder::bus): starts a [`RedisBus`] and
    /// forwards what arrives from Redis into the instance (waiting while the hub is busy),
    /// including the gaps after a reconnection.
    pub fn redis_bus(config: RedisConfig) -> impl FnOnce(BusInbox) -> RedisBus + Send + 'static {
        move |inbox| {
            let (bus, mut inbound) = RedisBus::start(config);
            tokio::spawn(async move {
                while let Some(arrival) = inbound.recv().await {
                    let open = match arrival {
                        Arrival::Message { channel, payload } => {
                            inbox.deliver(channel, payload).await
                        }
                        Arrival::Resubscribed => inbox.gap().await,
                        Arrival::Lease { server_id, remaining } => {
                            inbox.lease(server_id, remaining).await
                        }
                    };
                    if !open {
                        break;
                    }
                }
            });
            bus
        }
    }
}

#[cfg(feature = "redis")]
pub use redis_impl::redis_bus;

//! The bus between instances, as the hub task sees it: a trait it drives with the core's bus
//! outputs.
//!
//! The hub task calls [`Bus`] methods synchronously, in output order; an implementation that
//! talks to a network (Redis) hands them to its own task. Envelopes arriving for this instance go
//! the other way, into its [`BusInbox`](crate::BusInbox).

pub(crate) mod inbox;
pub(crate) mod local;
#[cfg(feature = "redis")]
pub(crate) mod redis;

use std::pin::Pin;

use bytes::Bytes;

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
    fn withdraw(&mut self) -> Pin<Box<dyn Future<Output = ()> + Send>> {
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

#[cfg(feature = "redis")]
mod redis_impl {
    use std::pin::Pin;

    use bytes::Bytes;
    use roomcast_redis::RedisBus;

    use super::{Bus, BusMetrics};

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

        fn withdraw(&mut self) -> Pin<Box<dyn Future<Output = ()> + Send>> {
            Box::pin(RedisBus::withdraw(self))
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
}

//! The Redis bus (roomcast-redis) wired to an instance: what Redis delivers goes into the
//! instance's inbox.

use roomcast_redis::{Arrival, RedisBus, RedisConfig};

use crate::bus::inbox::BusInbox;

/// The Redis bus for [`Builder::bus`](crate::Builder::bus): starts a [`RedisBus`] and
/// forwards what arrives from Redis into the instance (waiting while the hub is busy),
/// including the gaps after a reconnection.
pub fn redis_bus(config: RedisConfig) -> impl FnOnce(BusInbox) -> RedisBus + Send + 'static {
    move |inbox| {
        let (bus, mut inbound) = RedisBus::start(config);
        tokio::spawn(async move {
            while let Some(arrival) = inbound.recv().await {
                let open = match arrival {
                    Arrival::Message { channel, payload } => inbox.deliver(channel, payload).await,
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

//! Where Redis is, and how to behave when it is not there.

use std::time::Duration;

/// A single Redis node, or a Redis Cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Topology {
    /// One node (or a proxy): `PUBLISH` / `SUBSCRIBE`.
    Single(String),
    /// A Redis Cluster (Redis 7+), given one or more seed nodes: sharded pub/sub with
    /// `SPUBLISH` / `SSUBSCRIBE`, so that each channel lives on one shard.
    Cluster(Vec<String>),
}

/// Configuration of a [`RedisBus`](crate::RedisBus) or an [`Emitter`](crate::Emitter).
#[derive(Clone, Debug)]
pub struct RedisConfig {
    /// Where Redis is.
    pub topology: Topology,
    /// Channel prefix, as the hubs use (default `ws`).
    pub channel_prefix: String,
    /// First delay before reconnecting after a failure; doubles up to `backoff_max`.
    pub backoff_min: Duration,
    /// Longest delay between reconnection attempts.
    pub backoff_max: Duration,
    /// Publishes waiting for Redis before new ones are dropped (and counted).
    pub publish_queue: usize,
    /// Arriving messages waiting for the hub before new ones are dropped (and counted).
    pub inbound_queue: usize,
    /// Timeout of connecting and of each command.
    pub timeout: Duration,
    /// This instance's lease (cluster presence): its server id, and how long a lease lasts.
    /// `None`: no lease is held or read.
    pub lease: Option<(String, Duration)>,
}

impl RedisConfig {
    /// A single node at `url` (`redis://host:port`), with defaults.
    pub fn single(url: impl Into<String>) -> Self {
        Self::new(Topology::Single(url.into()))
    }

    /// A cluster reached through `seeds`, with defaults.
    pub fn cluster(seeds: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self::new(Topology::Cluster(seeds.into_iter().map(Into::into).collect()))
    }

    fn new(topology: Topology) -> Self {
        Self {
            topology,
            channel_prefix: "ws".into(),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            publish_queue: 64 * 1024,
            inbound_queue: 64 * 1024,
            timeout: Duration::from_secs(5),
            lease: None,
        }
    }
}

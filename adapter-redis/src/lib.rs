//! roomcast-redis: many roomcast instances as one, over Redis pub/sub.
//!
//! - [`RedisBus`] carries an instance's bus outputs to Redis: `Publish` becomes `PUBLISH` (or
//!   `SPUBLISH` on a Redis Cluster), `Subscribe` / `Unsubscribe` become exact channel
//!   subscriptions (never a pattern: a node only hears the rooms it has members in). Messages
//!   from Redis come back through [`Inbound`]. It reconnects with capped backoff and subscribes
//!   to everything again; publishes made while Redis is down are dropped and counted (delivery
//!   is at most once), and reports the gap ([`Arrival::Resubscribed`]) so that clients can be
//!   told to resync.
//! - [`Emitter`] publishes to clients from processes without sockets, in the envelope format of
//!   roomcast (and of ignis emitters).
//!
//! roomcast-tokio plugs the bus in with its `redis` feature (`roomcast serve --redis URL`).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod bus;
mod config;
mod connection;
mod emitter;

pub use bus::{Arrival, BusStats, Inbound, RedisBus};
pub use config::{RedisConfig, Topology};
pub use emitter::{EmitError, Emitter};

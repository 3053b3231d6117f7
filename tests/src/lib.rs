//! roomcast's cross-crate test support, and a blocking driver of the core.
//!
//! [`blocking`] runs [`roomcast_core::Hub`] with nothing but `std::net` and tungstenite: a thread
//! per socket and one thread that owns the hub. It proves that the core drives from any runtime,
//! and is a complete single-node server in its own right (see `examples/blocking_server.rs`).
//!
//! [`redis`] starts real `redis-server` processes for the tests; [`client`] is a WebSocket
//! client for end-to-end tests.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod blocking;
pub mod client;
pub mod http;
pub mod port;
pub mod redis;
pub mod server;

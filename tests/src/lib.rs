//! roomcast's cross-crate test support.
//!
//! [`redis`] starts real `redis-server` processes for the tests; [`client`] is a WebSocket
//! client for end-to-end tests.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod client;
pub mod http;
pub mod port;
pub mod redis;
pub mod server;

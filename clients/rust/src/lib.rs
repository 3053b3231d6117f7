//! A tokio client for roomcast servers (wire protocol v1): rooms, publish, requests, the
//! server's events as a stream, and a connection that stays up: reconnect with exponential
//! backoff and full jitter, authenticate again (fetching a fresh token when one is needed),
//! rejoin every room, refresh expiring tokens, and say when messages may have been missed.
//!
//! ```no_run
//! use roomcast_client::{Client, Event};
//!
//! # async fn run() -> Result<(), roomcast_client::Error> {
//! let (client, mut events) = Client::builder("ws://127.0.0.1:8080/ws")
//!     .token_source(|| async { Some("a JWT".to_owned()) })
//!     .connect();
//! client.join(["lobby"]).await?;
//! client.publish("lobby", "chat", &serde_json::json!({"text": "hi"})).await?;
//! let profile: serde_json::Value = client.request("getProfile", &7).await?;
//! while let Some(event) = events.recv().await {
//!     match event {
//!         Event::Message(message) => println!("{} in {:?}: {}", message.event, message.room, message.data),
//!         Event::Resync { room, .. } => println!("refetch {room}"),
//!         other => println!("{other:?}"),
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! The semantics are those of the TypeScript client (`roomcast-client` on npm): the same
//! reconnection policy per close code ([`retry_policy`]), the same offline buffer, the same
//! errors. Plain `ws://` only (put a TLS-terminating proxy in front for `wss://`).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod client;
mod connection;
mod error;
mod event;
mod options;
mod policy;

pub use client::{Builder, Client, Events, PublishOptions};
pub use error::{Error, ServerError};
pub use event::{Event, Member, Message};
pub use options::Backoff;
pub use policy::{Retry, retry_policy};

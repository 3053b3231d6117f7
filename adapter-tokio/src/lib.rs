//! roomcast-tokio: runs [`roomcast_core`] on tokio and tungstenite.
//!
//! One task owns the [`Hub`](roomcast_core::Hub) and is the only one that touches it. On the fast
//! path ([`serve`], `serve_app` with the feature `axum`, [`Handle::serve_tcp`]) roomcast frames
//! the upgraded TCP stream itself: the hub task appends each frame to the socket's buffer and,
//! once per round of commands, writes every changed buffer straight into its socket; each
//! socket's own task reads, and waits for the socket to drain when the kernel's buffer is full. Sockets of other
//! WebSocket implementations ([`Handle::serve_socket`]) get a writer task with a bounded queue.
//! A socket that holds too much unwritten (a client that stopped reading) is closed with 4005 and
//! never slows the others. The hub's bus outputs go to a [`Bus`]: the in-process
//! [`LocalBus`] by default, or Redis with roomcast-redis.
//!
//! ```no_run
//! use roomcast_tokio::{Roomcast, serve};
//! use roomcast_core::Event;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let (handle, mut events) = Roomcast::builder().start()?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! tokio::spawn(serve(listener, handle.clone()));
//! while let Some(event) = events.recv().await {
//!     if let Event::Message { conn, event, id: Some(id), .. } = event {
//!         if event == "ping" {
//!             handle.reply(conn, id, &"pong").await?;
//!         }
//!     }
//! }
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod admit;
mod app;
mod auth;
#[cfg(feature = "axum")]
pub mod axum;
mod budget;
mod buffer_pool;
mod builder;
mod bus;
mod codec;
mod context;
mod deflate;
mod dispatch;
mod driver;
mod events;
mod extensions;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod handle;
mod handler;
mod inbox;
#[cfg(feature = "jwt")]
mod jwt;
mod link;
mod link_task;
mod listen;
mod local_bus;
mod message;
mod metrics;
mod options;
mod queue;
#[cfg(feature = "redis")]
mod redis_bus;
mod request;
mod round;
mod router;
mod socket;
mod tracker;
mod upgrade;
mod write_buffer;
mod writers;

pub use admit::{Admit, Refuse};
pub use auth::{AuthDenied, AuthFuture, AuthRequest, Authenticator};
pub use builder::{Builder, Roomcast};
pub use bus::{Bus, BusMetrics};
pub use context::{Broadcast, Socket};
pub use events::Events;
pub use extensions::Extensions;
pub use handle::{Connection, Error, Handle, Member};
pub use handler::{
    Data, EventContext, EventName, Extension, FromEvent, Handler, HandlerError, Id, IntoReply,
    MessagePath, RawData, State,
};
pub use inbox::BusInbox;
#[cfg(feature = "jwt")]
pub use jwt::JwtAuth;
pub use listen::serve;
#[cfg(feature = "axum")]
pub use listen::serve_app;
pub use local_bus::{LocalBus, LocalPort};
pub use message::{Incoming, WsError, WsMessage};
pub use metrics::Snapshot;
pub use options::{Options, websocket_config};
#[cfg(feature = "redis")]
pub use redis_bus::redis_bus;
pub use request::UpgradeRequest;
pub use roomcast_core;
#[cfg(feature = "redis")]
pub use roomcast_redis;
pub use router::{Params, Pattern, PatternError};

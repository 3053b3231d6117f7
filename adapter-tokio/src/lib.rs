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

mod app;
#[cfg(feature = "axum")]
pub mod axum;
mod bus;
mod driver;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod options;
mod transport;

pub use app::auth::{AuthDenied, AuthFuture, AuthRequest, Authenticator};
pub use app::builder::{Builder, Roomcast};
pub use app::context::{Broadcast, Socket};
pub use app::extensions::Extensions;
pub use app::handle::{Error, Handle};
pub use app::handler::{
    Data, EventContext, EventName, Extension, FromEvent, Handler, HandlerError, Id, IntoReply,
    MessagePath, RawData, State,
};
#[cfg(feature = "jwt")]
pub use app::jwt::JwtAuth;
pub use app::on_connect::{Admit, Refuse};
pub use app::router::{Params, Pattern, PatternError};
pub use app::views::{Connection, Member};
pub use bus::inbox::BusInbox;
pub use bus::local::{LocalBus, LocalPort};
#[cfg(feature = "redis")]
pub use bus::redis::redis_bus;
pub use bus::{Bus, BusMetrics};
pub use driver::events::Events;
pub use driver::metrics::Snapshot;
pub use options::{Options, websocket_config};
pub use roomcast_core;
#[cfg(feature = "redis")]
pub use roomcast_redis;
pub use transport::listen::serve;
#[cfg(feature = "axum")]
pub use transport::listen::serve_app;
pub use transport::message::{Incoming, WsError, WsMessage};
pub use transport::request::UpgradeRequest;

//! roomcast-tokio: runs [`roomcast_core`] on tokio and tungstenite.
//!
//! # Who runs where
//!
//! | Task | Runs | Owns |
//! |---|---|---|
//! | **the hub task** (`driver/`) | one per instance, spawned by [`Builder::start`] | the [`Hub`](roomcast_core::Hub), every socket's write side, the bus, the timers |
//! | **a socket's task** (`transport/`) | one per connection | its socket's read side, its frame decoder |
//! | **a writer task** (`transport/stream.rs`) | one per socket of another WebSocket implementation ([`Handle::serve_socket`]) | that socket's sink, fed by a bounded queue |
//! | **the listener** ([`serve`], `serve_app` with `axum`) | one per listening socket | accepting, the HTTP upgrade ([`UpgradeRequest`], `on_connect`) |
//! | **the dispatcher** (`app/dispatch.rs`) | one per instance with handlers | a lane per connection running its handlers in order |
//! | **the bus's tasks** | inside a [`Bus`] that talks to a network (Redis) | its connections |
//!
//! # What crosses between them
//!
//! - **Into the hub task**, one channel of `ToHub` commands (`driver/to_hub.rs`): a socket's
//!   task sends `Connect`, the frames it read, `Alive`, violations and its end; the bus's
//!   [`BusInbox`] sends envelopes, gaps and peer leases; a [`Handle`] sends calls (a closure run
//!   on the hub) and waits for their answer on a oneshot. Readers wait when the channel is full:
//!   that is TCP backpressure, never a drop.
//! - **Out of the hub task**: frames go straight into each fast-path socket's write buffer
//!   (`transport/link.rs`, one lock per socket) and are written once per round of commands,
//!   split over threads when a round touches many sockets (`driver/write_threads.rs`); other
//!   sockets get them through their bounded queue (`transport/queue.rs`). Bus outputs go to the
//!   [`Bus`] synchronously, in order. Application events go to the [`Events`] stream or to the
//!   dispatcher, which answers through a [`Handle`] like any application code.
//! - A socket that holds too much unwritten (a client that stopped reading) is closed with 4005
//!   and never slows the others; all sockets together are held to one byte budget
//!   (`transport/budget.rs`).
//!
//! # The modules
//!
//! Four folders, each documented in its `mod.rs`: `app/` (the application's API: [`Builder`],
//! handlers and extractors, hooks, [`Handle`]), `driver/` (the hub task: commands, the round,
//! outputs, writes, auth tasks, timers, events, metrics), `transport/` (listening, the upgrade,
//! framing, deflate, write buffers, the socket tasks), `bus/` ([`Bus`], [`LocalBus`], Redis,
//! [`BusInbox`]). [`Options`] holds every setting. Imports run down from `app` to `driver` to
//! `transport` and `bus`, with three kinds of arrows back up, each a door and nothing more: the
//! transport and the bus reach the hub task only through `driver/to_hub.rs`; the hub task reads
//! the answers of the application's hooks (`Admit`, `AuthDenied`) as data; the listener and the
//! socket attach take a [`Handle`] to hand a socket over.
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

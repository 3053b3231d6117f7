//! roomcast-core: the deterministic, sans-IO heart of roomcast, a rooms & broadcasting engine
//! for WebSocket servers.
//!
//! A [`Hub`] holds every connection, room, user and deadline of one server instance and decides
//! *who gets what*. It does no I/O, reads no clock and spawns nothing: a driver (the tokio adapter,
//! a thread-per-socket server, a test) feeds it inputs and carries out its outputs. The same
//! inputs always give the same outputs, byte for byte.
//!
//! # The run loop
//!
//! The one rule: **after any call that changes the hub, drain [`Hub::poll_output`] until it
//! returns `None`.** Several inputs may be fed before a drain (a driver that batches does), but
//! outputs must be carried out in the order they come: a `Subscribe` before the `Publish` that
//! needs it, a `Transmit` before the `Close` of the same connection. A driver's loop is:
//!
//! 1. Feed what happened, with the current time. The inputs, by kind:
//!    - from a connection's socket: [`Hub::handle_connect`], [`Hub::handle_frame`] (one whole
//!      text message), [`Hub::handle_pong`], [`Hub::handle_violation`] (binary, too large, a
//!      framing error, text not UTF-8: the hub picks the close code), [`Hub::handle_slow_consumer`]
//!      (the socket holds too much unwritten), [`Hub::handle_disconnect`];
//!    - from the bus: [`Hub::handle_bus`] (an envelope or peer message),
//!      [`Hub::handle_bus_gap`] (the bus may have lost messages), [`Hub::handle_peer_lease`]
//!      (another instance's lease, cluster presence);
//!    - from the clock: [`Hub::handle_timeout`];
//!    - from the application: [`Hub::join`], [`Hub::leave`], [`Hub::send`],
//!      [`Hub::send_to_user`], [`Hub::broadcast_room`], [`Hub::broadcast_all`], [`Hub::reply`],
//!      [`Hub::accept_auth`], [`Hub::reject_auth`], [`Hub::close`], [`Hub::close_all`],
//!      [`Hub::query`] (a cluster query), [`Hub::retire`] (this instance leaves the cluster).
//! 2. Drain [`Hub::poll_output`], carrying out each [`Output`]: write a [`Transmit`]'s frame
//!    (one shared buffer) to each of its connections, send pings, close sockets with the code
//!    given, hand `Publish` / `Subscribe` / `Unsubscribe` to the bus, and pass `Event`s to the
//!    application (an application that decides authentication answers `Authenticate` with
//!    [`Hub::accept_auth`] or [`Hub::reject_auth`], which is step 1 again).
//! 3. Wait until [`Hub::poll_timeout`] or the next input, whichever comes first. Go to 1.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use roomcast_core::{ConnId, Exclude, Hub, HubConfig, Output};
//!
//! let start = Instant::now();
//! let mut hub = Hub::new(HubConfig::default(), start, 1_700_000_000_000)?;
//! let (alice, bob) = (ConnId::from_u128(1), ConnId::from_u128(2));
//! hub.handle_connect(alice, start)?; // anonymous mode: both get `connected` at once
//! hub.handle_connect(bob, start)?;
//! hub.handle_frame(alice, br#"{"event":"join","data":{"rooms":["lobby"]},"id":1}"#, start);
//! hub.join(bob, "lobby", start)?; // the application may join connections too
//! hub.handle_frame(alice, br#"{"event":"publish","data":{"room":"lobby","event":"hi"}}"#, start);
//!
//! let mut to_bob = Vec::new();
//! while let Some(output) = hub.poll_output() {
//!     match output {
//!         Output::Transmit(t) if t.to == [bob] => to_bob.push(t.frame),
//!         _ => {} // a real driver writes frames, pings, closes and talks to the bus here
//!     }
//! }
//! assert_eq!(to_bob.last().map(|f| &f[..]), Some(&br#"{"event":"hi","room":"lobby"}"#[..]));
//!
//! // Nothing is due before the first ping.
//! assert_eq!(hub.poll_timeout(), Some(start + Duration::from_secs(10)));
//! # Ok::<(), roomcast_core::HubError>(())
//! ```
//!
//! A whole driver around real sockets is short: roomcast-blocking (`adapter-blocking/`) runs
//! this loop with one thread per socket, and roomcast-tokio runs it on tokio.
//!
//! ## Time
//!
//! Time is an input: every input takes `now` as an [`Instant`](std::time::Instant), and the hub
//! never reads a clock. Time never runs backwards inside the hub (an earlier `now` counts as the
//! latest seen), and an early or repeated [`Hub::handle_timeout`] does nothing harmful. Deadlines
//! (authentication, heartbeats, pings, peers' leases, cluster queries) cost O(log n) each; no
//! call scans every connection.
//!
//! ## Errors and panics
//!
//! Bad input from a client or from the bus is a protocol outcome, never an `Err` and never a
//! panic: an `error` frame to that client, a close with a documented code
//! ([`CloseCode`]), or a malformed envelope dropped and counted ([`HubStats`]). A [`HubError`] is
//! returned only when the embedding code misuses the API (an unknown connection, an invalid
//! configuration, a user id out of bounds), and the hub stays consistent after it. No input
//! makes the hub panic; the fuzz targets and the model test look for one.
//!
//! # What is where
//!
//! - [`wire`]: wire protocol v1, client frames in, server frames out.
//! - [`envelope`]: the bus envelope between instances (and from emitters).
//! - [`sim`]: a deterministic in-memory cluster of hubs, for tests of apps built on roomcast.
//! - [`channel`]: the names of the bus channels.
//! - `fuzzing` (feature `fuzzing`): one untrusted input through parsers and a hub, checking
//!   invariants; the fuzz targets and the corpus replay call it.
//!
//! The full protocol is in `docs/protocol.md` of the repository.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod channel;
mod close;
mod config;
pub mod envelope;
mod error;
mod fanout;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod hub;
mod id;
mod identity;
mod members;
mod output;
mod pattern;
mod peer;
mod policy;
mod presence;
mod query;
mod rate;
pub mod sim;
mod timer;
pub mod wire;

pub use channel::Channels;
pub use close::{AuthDenied, CloseCode, Violation};
pub use config::{AuthMode, HubConfig, PresenceEvents, RateLimit};
pub use error::HubError;
pub use hub::{ConnInfo, ConnState, Exclude, HistoryPage, HistoryUsage, Hub, HubStats, Sent};
pub use id::{ConnId, RequestId};
pub use identity::{Identity, MAX_USER_ID_BYTES, RoomAcl};
pub use output::{DisconnectReason, Event, Output, PublishRequest, Transmit};
pub use pattern::RoomPattern;
pub use policy::{
    HistoryPolicy, JoinPolicy, PresencePolicy, PublishPolicy, RoomPolicies, RoomPolicy,
};
pub use presence::PresenceEntry;
pub use query::{ClusterMember, ClusterRoom, MetadataFilter, Query, QueryId, QueryResult, Target};

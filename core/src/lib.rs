//! roomcast-core: the deterministic, sans-IO heart of roomcast, a rooms & broadcasting engine
//! for WebSocket servers.
//!
//! A [`Hub`] holds every connection, room, user and deadline of one server instance and decides
//! *who gets what*. It does no I/O, reads no clock and spawns nothing: a driver (the tokio adapter,
//! a thread-per-socket server, a test) feeds it inputs and carries out its outputs. The same
//! inputs always give the same outputs, byte for byte.
//!
//! # Driving a hub
//!
//! 1. Feed an input: [`Hub::handle_connect`], [`Hub::handle_frame`], [`Hub::handle_pong`],
//!    [`Hub::handle_binary`], [`Hub::handle_oversized`], [`Hub::handle_disconnect`], [`Hub::handle_bus`],
//!    [`Hub::handle_timeout`], or an application call ([`Hub::join`], [`Hub::broadcast_room`],
//!    [`Hub::accept_auth`], ...). Each takes the current time as an [`Instant`](std::time::Instant).
//! 2. Drain [`Hub::poll_output`] until it returns `None`, carrying out each [`Output`]:
//!    write [`Transmit`] frames to their sockets (one shared buffer for all recipients), send
//!    pings, close sockets, and hand `Publish` / `Subscribe` / `Unsubscribe` to the bus.
//! 3. Ask [`Hub::poll_timeout`] for the next deadline, and wait until it comes or another input
//!    arrives; at the deadline call [`Hub::handle_timeout`]. Go to 2.
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
//! # What is where
//!
//! - [`wire`]: wire protocol v1, client frames in, server frames out.
//! - [`envelope`]: the bus envelope between instances, and channel names.
//! - [`sim`]: a deterministic in-memory cluster of hubs, for tests of apps built on roomcast.
//! - [`probe`]: one untrusted input through parsers and a hub, checking invariants (fuzzing).
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
mod peer;
mod presence;
mod rate;
pub mod sim;
mod timer;
pub mod wire;

pub use channel::Channels;
pub use close::{CloseCode, Violation};
pub use config::{AuthMode, HubConfig, PresenceEvents, RateLimit};
pub use error::HubError;
pub use hub::{
    ClusterMember, ConnInfo, ConnState, Exclude, Hub, HubStats, MAX_USER_ID_BYTES, Query, QueryId,
    QueryResult, Target,
};
pub use id::{ConnId, RequestId};
pub use identity::{Identity, RoomAcl};
pub use output::{DisconnectReason, Event, Output, Transmit};
pub use presence::PresenceEntry;

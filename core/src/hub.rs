//! The hub: all state of one server instance, and its inputs and outputs.
//!
//! The state is held by parts that each own theirs, as str0m's `Rtc` is made of its ice, dtls
//! and sctp: [`registry`] (connections, rooms, users), [`clock`] (the hub's time),
//! `timer::Timers` (each connection's next deadline), [`cluster`] (peers and their members),
//! [`queries`] (cluster queries in flight). `Hub` composes them with the configuration and the
//! output queue. The behaviour that spans parts lives in files named after what it does:
//! [`membership`] (join, leave, bus interest, presence notices), [`delivery`] (the one path of
//! every send), [`sends`] (the application's sends), [`app`] (the application's other calls),
//! [`client`] (client frames), [`socket`] (socket events), [`bus`] (envelopes), [`time`]
//! (deadlines), [`views`] (getters).

mod app;
mod bus;
mod client;
mod clock;
mod cluster;
mod delivery;
mod history;
mod membership;
mod queries;
mod registry;
mod sends;
mod socket;
mod time;
mod views;

use std::borrow::Cow;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::value::RawValue;

use crate::channel::Channels;
use crate::close::CloseCode;
use crate::config::{HubConfig, PresenceEvents};
use crate::envelope::{Envelope, TargetKind};
use crate::error::HubError;
use crate::fanout::{Exclusion, recipients};
use crate::id::{ConnId, RequestId};
use crate::identity::Identity;
use crate::members::{Hasher, shrink_map, shrink_set};
use crate::output::{DisconnectReason, Event, Output, Transmit};
use crate::peer;
use crate::presence::{self, PresenceEntry};
use crate::rate::Pace;
use crate::timer::Timers;
use crate::wire::{self, ErrorCode};
use clock::Clock;
use cluster::Cluster;
use history::History;
use queries::Queries;
use registry::{Conn, Registry, Stage};

use crate::identity::MAX_USER_ID_BYTES;
use delivery::Delivery;
pub use delivery::Sent;
pub use sends::Exclude;
pub use views::{ConnInfo, ConnState, HistoryPage, HistoryUsage, HubStats};

/// The close reason of a shutdown.
const SHUTDOWN_REASON: &str = "server shutting down";

/// All state of one server instance: connections, rooms, users, deadlines and bus interest.
///
/// A `Hub` does no I/O and reads no clock. Its methods are of four kinds, and the files of
/// `hub/` follow them:
///
/// - **Getters** read state and change nothing: [`connection`](Self::connection),
///   [`rooms_of`](Self::rooms_of), [`room_members`](Self::room_members),
///   [`presence`](Self::presence), [`subscriptions`](Self::subscriptions),
///   [`stats`](Self::stats), ... (`hub/views.rs`).
/// - **Inputs**, `handle_*`, say what happened: from a socket
///   ([`handle_connect`](Self::handle_connect), [`handle_violation`](Self::handle_violation), ...
///   in `hub/socket.rs`; [`handle_frame`](Self::handle_frame) in `hub/client.rs`), from the bus
///   ([`handle_bus`](Self::handle_bus), `hub/bus.rs`; [`handle_peer_lease`](Self::handle_peer_lease),
///   `hub/cluster.rs`), from the clock ([`handle_timeout`](Self::handle_timeout),
///   `hub/time.rs`).
/// - **Application changes** do what the application asks: [`join`](Self::join),
///   [`broadcast_room`](Self::broadcast_room), [`accept_auth`](Self::accept_auth),
///   [`close`](Self::close), ... (`hub/app.rs`, the sends in `hub/sends.rs`), [`query`](Self::query)
///   (`hub/queries.rs`), [`retire`](Self::retire) (`hub/cluster.rs`).
/// - **Outputs**: [`poll_output`](Self::poll_output), drained until `None` after every input or
///   change and carried out in order, and [`poll_timeout`](Self::poll_timeout), the next time
///   [`handle_timeout`](Self::handle_timeout) is due.
///
/// Call them in that rhythm: inputs and changes (as many as the driver has at hand), then the
/// whole drain, then wait for the timeout or the next input. See the [crate
/// documentation](crate) for the loop.
#[derive(Debug)]
pub struct Hub {
    config: HubConfig,
    pace: Option<Pace>,
    channels: Channels,
    /// The hub's time, which never runs backwards.
    clock: Clock,
    /// Connections, rooms, users: who is where.
    registry: Registry,
    /// Every connection's next deadline.
    timers: Timers,
    /// Cluster presence: the peers and their members.
    cluster: Cluster,
    /// Cluster queries waiting for answers.
    queries: Queries,
    /// Rooms' histories: their offsets, epochs and kept messages.
    history: History,
    /// [`shut_down`](Self::shut_down) was called: new connections are closed at once.
    shutting_down: bool,
    out: VecDeque<Output>,
    stats: HubStats,
}

impl Hub {
    /// Creates a hub. `now` and `unix_ms` anchor the hub's time: `unix_ms` is the wall-clock time
    /// (milliseconds since the Unix epoch) at `now`, used for the `time` field of `connected`.
    pub fn new(mut config: HubConfig, now: Instant, unix_ms: u64) -> Result<Self, HubError> {
        config.validate()?;
        // A lone instance has nobody to replicate presence to: its presence is its own, and it
        // sends no heartbeats or presence updates into a bus nobody hears.
        config.cluster_presence &= !config.standalone;
        let hasher = Hasher::with_seed(config.hash_seed);
        let channels = Channels::new(config.channel_prefix.clone());
        let mut out = VecDeque::new();
        if config.cluster_presence {
            out.push_back(Output::BusSubscribe(channels.server(&config.server_id)));
            out.push_back(Output::BusSubscribe(channels.peers()));
        }
        let keeps = config.rooms.histories().next().is_some();
        Ok(Self {
            pace: config.rate_limit.map(Pace::new),
            channels,
            clock: Clock::new(now, unix_ms),
            registry: Registry::new(&hasher),
            timers: Timers::default(),
            cluster: Cluster::new(&hasher, config.cluster_presence.then_some(now)),
            queries: Queries::new(&hasher),
            history: History::new(&hasher, format!("{unix_ms:x}"), keeps, config.max_history_bytes),
            shutting_down: false,
            out,
            stats: HubStats::default(),
            config,
        })
    }

    /// The configuration the hub runs with.
    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    /// The channel names this hub uses.
    pub fn channels(&self) -> &Channels {
        &self.channels
    }

    /// The next output to carry out, or `None` when there is nothing left to do.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should be called next; `None` when no
    /// connection has a deadline. Calling it earlier is harmless.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let history = self.history.next_expiry();
        [self.timers.next(), self.cluster.deadline(), self.queries.deadline(), history]
            .into_iter()
            .flatten()
            .min()
    }

    /// Gives back the memory the hub kept from its busiest moment: the output queue's room, and
    /// the deadline heap's stale entries (which otherwise wait until they come due) and room.
    /// The indexes shrink by themselves as they empty. O(connections): call it when the driver
    /// is idle (`roomcast-tokio` does, a second after its last turn), not on every turn.
    pub fn shrink_to_fit(&mut self) {
        self.out.shrink_to_fit();
        let conns = &self.registry.conns;
        self.timers.shrink_to_fit(|at, id| time::is_live(conns, at, id));
        self.queries.pending.shrink_to_fit();
        self.cluster.remote.shrink_to_fit();
    }

    fn advance(&mut self, now: Instant) -> Instant {
        self.clock.advance(now)
    }

    fn unix_ms(&self, now: Instant) -> u64 {
        self.clock.unix_ms(now)
    }

    /// Makes a connection authenticated with `identity`: indexes its user, begins bus interest,
    /// sends `connected`.
    fn authenticate_as(
        &mut self,
        id: ConnId,
        identity: Identity,
        now: Instant,
    ) -> Result<(), HubError> {
        identity.check()?;
        let time = self.unix_ms(now);
        let Some(c) = self.registry.conns.get_mut(&id) else {
            return Err(HubError::UnknownConn(id));
        };
        if c.stage.is_authenticated() {
            return Err(HubError::AlreadyAuthenticated(id));
        }
        c.stage = Stage::Authenticated { expires: identity.expires_in.map(|d| now + d) };
        c.metadata = identity.metadata;
        c.acl = identity.rooms;
        if let Some(user) = &identity.user_id {
            let inserted = self.registry.users.insert(user, id);
            c.user = Some(inserted.name);
            if inserted.new_group {
                self.interest(true, |c| c.user(user));
            }
        }
        self.interest(true, |c| c.client(id));
        if self.registry.everyone.insert(id) && self.registry.everyone.len() == 1 {
            self.interest(true, Channels::broadcast);
        }
        let frame = wire::connected_frame(id, identity.user_id.as_deref(), time);
        self.transmit(vec![id], frame);
        self.event(Event::Connected { conn: id, user_id: identity.user_id });
        if self.config.own_room {
            // Left out only when the configuration's limits forbid it (no room at all, or names
            // shorter than an id): nothing a client can cause.
            let _ = self.join_room(id, &id.to_string(), false);
        }
        self.arm(id);
        Ok(())
    }

    /// Sends a close command and forgets the connection.
    fn close_conn(&mut self, id: ConnId, code: CloseCode, reason: impl Into<Cow<'static, str>>) {
        if !self.registry.conns.contains_key(&id) {
            return;
        }
        *self.stats.closes.entry(code.as_u16()).or_default() += 1;
        self.out.push_back(Output::Close { conn: id, code, reason: close_reason(reason.into()) });
        self.drop_conn(id, DisconnectReason::Closed(code));
    }

    /// Removes every trace of a connection, ending bus interest that only it held.
    fn drop_conn(&mut self, id: ConnId, reason: DisconnectReason) {
        let Some(conn) = self.registry.conns.swap_remove(&id) else {
            return;
        };
        shrink_map(&mut self.registry.conns);
        for room in &conn.rooms {
            let emptied = self.registry.rooms.remove(room, id) == Some(true);
            self.event(Event::Left { conn: id, room: room.to_string() });
            self.presence_notice("member_left", room, id, Some(&conn));
            if emptied {
                self.room_interest_ends(room);
            }
        }
        if let Some(user) = &conn.user
            && self.registry.users.remove(user, id) == Some(true)
        {
            self.interest(false, |c| c.user(user));
        }
        if conn.stage.is_authenticated() {
            self.interest(false, |c| c.client(id));
            let left = self.registry.everyone.swap_remove(&id);
            shrink_set(&mut self.registry.everyone);
            if left && self.registry.everyone.is_empty() {
                self.interest(false, Channels::broadcast);
            }
        }
        self.event(Event::Disconnected { conn: id, reason });
    }

    fn event(&mut self, event: Event) {
        self.out.push_back(Output::Event(event));
    }

    fn transmit(&mut self, to: Vec<ConnId>, frame: Bytes) {
        if to.is_empty() {
            return;
        }
        self.stats.transmits += 1;
        self.stats.deliveries += to.len() as u64;
        self.out.push_back(Output::Transmit(Transmit { to, frame }));
    }

    fn error(
        &mut self,
        id: ConnId,
        code: ErrorCode,
        message: &str,
        room: Option<&str>,
        req: Option<&RequestId>,
    ) {
        self.stats.errors_sent += 1;
        let frame = wire::error_frame(code, message, room, req);
        self.transmit(vec![id], frame);
    }
}

/// Why a join was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Unknown,
    Unauthenticated,
    InvalidRoom,
    Forbidden,
    TooMany,
}

/// WebSocket close reasons are at most 123 bytes; cut at a character boundary.
fn close_reason(reason: Cow<'static, str>) -> Cow<'static, str> {
    const MAX: usize = 123;
    if reason.len() <= MAX {
        return reason;
    }
    let mut end = MAX;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(reason[..end].to_owned())
}

/// Three times the auth timeout: how long the application has to decide.
fn decision_window(auth_timeout: Duration) -> Duration {
    auth_timeout.saturating_mul(3)
}

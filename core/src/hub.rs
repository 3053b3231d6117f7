//! The hub: all state of one server instance, and its inputs and outputs.

mod app;
mod bus;
mod client;
mod cluster;
mod cluster_query;
mod socket;
mod time;
mod views;

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use indexmap::IndexMap;
use serde_json::value::RawValue;

use crate::channel::Channels;
use crate::envelope::{Envelope, TargetKind};
use crate::fanout::{Exclusion, recipients};
use crate::members::{Hasher, MemberIndex, MemberSet, shrink_map, shrink_set};
use crate::peer;
use crate::presence::{self, PresenceEntry};
use crate::rate::{Bucket, Pace};
use crate::timer::Timers;
use crate::wire::{self, ErrorCode};
use crate::{
    CloseCode, ConnId, DisconnectReason, Event, HubConfig, HubError, Identity, Output,
    PresenceEvents, RequestId, RoomAcl, Transmit,
};

pub use app::Exclude;
pub use cluster_query::{
    ClusterMember, ClusterRoom, MetadataFilter, Query, QueryId, QueryResult, Target,
};
pub use views::{ConnInfo, ConnState, HubStats};

/// The close reason of a shutdown.
const SHUTDOWN_REASON: &str = "server shutting down";

/// Longest user id, in bytes.
pub const MAX_USER_ID_BYTES: usize = 256;

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
///   [`close`](Self::close), ... (`hub/app.rs`), [`query`](Self::query)
///   (`hub/cluster_query.rs`), [`retire`](Self::retire) (`hub/cluster.rs`).
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
    /// The latest time seen; time never runs backwards inside the hub.
    now: Instant,
    /// Maps `Instant`s to wall-clock milliseconds for the `time` of `connected`.
    epoch: (Instant, u64),
    conns: IndexMap<ConnId, Conn, Hasher>,
    rooms: MemberIndex,
    users: MemberIndex,
    /// Every authenticated connection: the target of server-wide broadcasts.
    everyone: MemberSet,
    timers: Timers,
    /// Cluster presence: the other instances' members of rooms this one has members in.
    remote: cluster::Replica,
    /// Cluster presence: live peers and the end of their lease.
    peers: IndexMap<Arc<str>, Instant, Hasher>,
    /// Cluster presence: peers that said goodbye, and until when a lease of theirs is stale.
    departed: IndexMap<Arc<str>, Instant, Hasher>,
    /// Cluster presence: when this instance's next heartbeat is due.
    next_heartbeat: Option<Instant>,
    /// Cluster queries waiting for answers, by request number.
    queries: IndexMap<u64, cluster_query::Pending, Hasher>,
    next_query: u64,
    /// [`shut_down`](Self::shut_down) was called: new connections are closed at once.
    shutting_down: bool,
    out: VecDeque<Output>,
    stats: HubStats,
}

/// One connection's state.
#[derive(Debug)]
struct Conn {
    stage: Stage,
    user: Option<Arc<str>>,
    metadata: Option<Box<RawValue>>,
    acl: RoomAcl,
    /// Rooms in the order they were joined (at most `max_rooms_per_conn`).
    rooms: Vec<Arc<str>>,
    connected_at: Instant,
    last_activity: Instant,
    last_ping: Instant,
    /// The deadline of this connection's live timer entry.
    scheduled: Option<Instant>,
    bucket: Bucket,
}

/// Where a connection is in its authentication.
#[derive(Debug, Clone, Copy)]
enum Stage {
    /// Waiting for `authenticate` until the deadline.
    AwaitingAuth { deadline: Instant },
    /// `authenticate` received; waiting for the application's decision until the deadline.
    Authenticating { deadline: Instant },
    /// Authenticated (or anonymous), with when its credentials expire, if they do.
    Authenticated { expires: Option<Instant> },
    /// Authenticated, and told that its credentials expire at `expires` (`token_expiring`):
    /// waiting for a `refresh`.
    Expiring { expires: Instant },
}

impl Stage {
    fn is_authenticated(self) -> bool {
        matches!(self, Self::Authenticated { .. } | Self::Expiring { .. })
    }
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
        Ok(Self {
            pace: config.rate_limit.map(Pace::new),
            channels,
            now,
            epoch: (now, unix_ms),
            conns: IndexMap::with_hasher(hasher.clone()),
            rooms: MemberIndex::new(hasher.clone()),
            users: MemberIndex::new(hasher.clone()),
            everyone: MemberSet::with_hasher(hasher.clone()),
            timers: Timers::default(),
            remote: cluster::Replica::with_hasher(hasher.clone()),
            peers: IndexMap::with_hasher(hasher.clone()),
            departed: IndexMap::with_hasher(hasher.clone()),
            next_heartbeat: config.cluster_presence.then_some(now),
            queries: IndexMap::with_hasher(hasher.clone()),
            next_query: 0,
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
        [self.timers.next(), self.cluster_deadline(), self.queries_deadline()]
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
        let conns = &self.conns;
        self.timers.shrink_to_fit(|at, id| time::is_live(conns, at, id));
        self.queries.shrink_to_fit();
        self.remote.shrink_to_fit();
    }

    fn advance(&mut self, now: Instant) -> Instant {
        self.now = self.now.max(now);
        self.now
    }

    fn unix_ms(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.epoch.0).as_millis();
        self.epoch.1.saturating_add(u64::try_from(since).unwrap_or(u64::MAX))
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
        let Some(c) = self.conns.get_mut(&id) else {
            return Err(HubError::UnknownConn(id));
        };
        if c.stage.is_authenticated() {
            return Err(HubError::AlreadyAuthenticated(id));
        }
        c.stage = Stage::Authenticated { expires: identity.expires_in.map(|d| now + d) };
        c.metadata = identity.metadata;
        c.acl = identity.rooms;
        if let Some(user) = &identity.user_id {
            let inserted = self.users.insert(user, id);
            c.user = Some(inserted.name);
            if inserted.new_group {
                self.interest(true, |c| c.user(user));
            }
        }
        self.interest(true, |c| c.client(id));
        if self.everyone.insert(id) && self.everyone.len() == 1 {
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

    /// Adds `id` to `room`. `Ok(false)` if it was already a member.
    /// `check_policy`: a client's own join, which the room's policy and the connection's
    /// [`RoomAcl`] must allow.
    fn join_room(&mut self, id: ConnId, room: &str, check_policy: bool) -> Result<bool, Refusal> {
        if !self.valid_room(room) {
            return Err(Refusal::InvalidRoom);
        }
        let allowed = !check_policy || self.may_join(id, room);
        let Some(c) = self.conns.get_mut(&id) else {
            return Err(Refusal::Unknown);
        };
        if !c.stage.is_authenticated() {
            return Err(Refusal::Unauthenticated);
        }
        if self.rooms.contains(room, &id) {
            return Ok(false);
        }
        if !allowed {
            return Err(Refusal::Forbidden);
        }
        if c.rooms.len() >= self.config.max_rooms_per_conn {
            return Err(Refusal::TooMany);
        }
        let inserted = self.rooms.insert(room, id);
        c.rooms.push(inserted.name);
        if inserted.new_group {
            self.interest(true, |c| c.room(room));
            if self.config.cluster_presence {
                self.presence_interest_begins(room);
            }
        }
        self.event(Event::Joined { conn: id, room: room.to_owned() });
        self.presence_notice("member_joined", room, id, None);
        Ok(true)
    }

    /// Whether the room's policy lets this connection join `room` (and leave it) by itself: the
    /// one rule for a client's `join` and `leave`.
    fn may_join(&self, conn: ConnId, room: &str) -> bool {
        self.conns
            .get(&conn)
            .is_some_and(|c| self.config.rooms.for_room(room).join.allows(&c.acl, room))
    }

    /// Removes `id` from `room`; `false` if it was not a member.
    fn leave_room(&mut self, id: ConnId, room: &str) -> bool {
        let Some(c) = self.conns.get_mut(&id) else {
            return false;
        };
        let Some(pos) = c.rooms.iter().position(|r| &**r == room) else {
            return false;
        };
        c.rooms.remove(pos);
        let emptied = self.rooms.remove(room, id) == Some(true);
        self.event(Event::Left { conn: id, room: room.to_owned() });
        self.presence_notice("member_left", room, id, None);
        if emptied {
            self.room_interest_ends(room);
        }
        true
    }

    /// Bus interest in a channel begins or ends. A standalone hub has no bus: it names no
    /// channel and outputs nothing (a subscription per connection would be kept for nobody).
    fn interest(&mut self, begins: bool, channel: impl FnOnce(&Channels) -> String) {
        if self.config.standalone {
            return;
        }
        let channel = channel(&self.channels);
        self.out.push_back(if begins {
            Output::BusSubscribe(channel)
        } else {
            Output::BusUnsubscribe(channel)
        });
    }

    /// The last local member of `room` left: bus interest in it ends.
    fn room_interest_ends(&mut self, room: &str) {
        self.interest(false, |c| c.room(room));
        if self.config.cluster_presence {
            self.presence_interest_ends(room);
        }
    }

    /// A local connection joined or left `room`: the other local members are told, as the
    /// presence settings ask, and (with cluster presence) so are the other instances. `gone` is
    /// the connection's state when it has already left the hub.
    fn presence_notice(
        &mut self,
        event: &'static str,
        room: &str,
        who: ConnId,
        gone: Option<&Conn>,
    ) {
        let cluster = self.config.cluster_presence;
        if self.config.presence_events == PresenceEvents::Off && !cluster {
            return;
        }
        let Some(c) = gone.or_else(|| self.conns.get(&who)) else { return };
        let entry = PresenceEntry {
            conn: who,
            user_id: c.user.as_deref(),
            metadata: c.metadata.as_deref(),
        };
        let notice = self.notice_for(event, room, &entry);
        let delta = cluster.then(|| {
            let op =
                if event == "member_joined" { peer::PeerOp::Join } else { peer::PeerOp::Leave };
            self.presence_payload(op, room, vec![peer::WireMember::from(&entry)])
        });
        if let Some((to, frame)) = notice {
            self.transmit(to, frame);
        }
        if let Some(payload) = delta {
            let channel = self.channels.presence(room);
            self.push_publish(channel, payload);
        }
    }

    /// The notice telling the local members of `room` (all but `entry` itself) that it joined or
    /// left, if the presence settings ask for one.
    fn notice_for(
        &self,
        event: &'static str,
        room: &str,
        entry: &PresenceEntry<'_>,
    ) -> Option<(Vec<ConnId>, Bytes)> {
        let mode = self.config.presence_events;
        if mode == PresenceEvents::Off || !self.config.presence_rooms.allows(room) {
            return None;
        }
        let members = self.rooms.get(room)?;
        if mode == PresenceEvents::Users
            && let Some(user) = entry.user_id
        {
            // The person is still (or already) here through another session: no notice.
            if self.user_in_room(room, user, entry.conn) {
                return None;
            }
        }
        let to: Vec<ConnId> = members.iter().filter(|m| **m != entry.conn).copied().collect();
        if to.is_empty() {
            return None;
        }
        Some((to, presence::notice(event, room, entry)))
    }

    /// Whether `user` is in `room` through a session other than `except`, here or elsewhere.
    fn user_in_room(&self, room: &str, user: &str, except: ConnId) -> bool {
        let members = self.rooms.get(room);
        let local = self.users.get(user).is_some_and(|sessions| {
            sessions.iter().any(|s| *s != except && members.is_some_and(|m| m.contains(s)))
        });
        local || self.remote_presence(room).any(|e| e.conn != except && e.user_id == Some(user))
    }

    fn valid_room(&self, room: &str) -> bool {
        (1..=self.config.max_room_name_bytes).contains(&room.len())
    }

    /// Sends a close command and forgets the connection.
    fn close_conn(&mut self, id: ConnId, code: CloseCode, reason: impl Into<Cow<'static, str>>) {
        if !self.conns.contains_key(&id) {
            return;
        }
        *self.stats.closes.entry(code.as_u16()).or_default() += 1;
        self.out.push_back(Output::Close { conn: id, code, reason: close_reason(reason.into()) });
        self.drop_conn(id, DisconnectReason::Closed(code));
    }

    /// Removes every trace of a connection, ending bus interest that only it held.
    fn drop_conn(&mut self, id: ConnId, reason: DisconnectReason) {
        let Some(conn) = self.conns.swap_remove(&id) else {
            return;
        };
        shrink_map(&mut self.conns);
        for room in &conn.rooms {
            let emptied = self.rooms.remove(room, id) == Some(true);
            self.event(Event::Left { conn: id, room: room.to_string() });
            self.presence_notice("member_left", room, id, Some(&conn));
            if emptied {
                self.room_interest_ends(room);
            }
        }
        if let Some(user) = &conn.user
            && self.users.remove(user, id) == Some(true)
        {
            self.interest(false, |c| c.user(user));
        }
        if conn.stage.is_authenticated() {
            self.interest(false, |c| c.client(id));
            let left = self.everyone.swap_remove(&id);
            shrink_set(&mut self.everyone);
            if left && self.everyone.is_empty() {
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

    /// Delivers to this instance's connections: the path of every send, whether it comes from
    /// the application, a client's `publish`, or the bus. The frame is serialized once, and only
    /// if somebody here receives it. `every_room`: a send to several rooms delivers to the members
    /// of all of them (the sender's instance), not only of its target (an envelope that came on
    /// one room's channel).
    fn deliver_local(&mut self, d: &Delivery<'_>, every_room: bool) -> usize {
        let mut exclusion = Exclusion::new(
            d.exclude_conns.iter().copied(),
            d.exclude_users.iter().copied(),
            &self.users,
        );
        if !d.except_rooms.is_empty() {
            exclusion = exclusion.with_rooms(d.except_rooms.iter().copied(), &self.rooms);
        }
        let target = d.target.unwrap_or_default();
        let to = match d.kind {
            TargetKind::Client => match target.parse::<ConnId>() {
                Ok(id) if self.conns.contains_key(&id) && !exclusion.contains(&id) => vec![id],
                _ => Vec::new(),
            },
            TargetKind::User => {
                self.users.get(target).map(|set| recipients(set, &exclusion)).unwrap_or_default()
            }
            TargetKind::Room if d.rooms.len() > 1 => {
                self.rooms_recipients(d, every_room, &exclusion)
            }
            TargetKind::Room => {
                self.rooms.get(target).map(|set| recipients(set, &exclusion)).unwrap_or_default()
            }
            TargetKind::Broadcast => recipients(&self.everyone, &exclusion),
        };
        if to.is_empty() {
            return 0;
        }
        let room = if d.kind == TargetKind::Room && d.rooms.len() <= 1 { d.target } else { None };
        let frame =
            wire::ServerFrame { event: d.event, room, path: d.path, data: d.data, id: None }
                .encode();
        let reached = to.len();
        self.transmit(to, frame);
        reached
    }

    /// The recipients of a send to several rooms: each room's members that are in none of the
    /// rooms before it (so each connection once), minus the exclusion. All the rooms, or only the
    /// target's share.
    fn rooms_recipients(
        &self,
        d: &Delivery<'_>,
        every_room: bool,
        exclusion: &Exclusion,
    ) -> Vec<ConnId> {
        let mut to = Vec::new();
        for (i, room) in d.rooms.iter().enumerate() {
            if !every_room && Some(*room) != d.target {
                continue;
            }
            let Some(set) = self.rooms.get(room) else { continue };
            let earlier: Vec<_> = d.rooms[..i].iter().filter_map(|r| self.rooms.get(r)).collect();
            to.extend(
                recipients(set, exclusion)
                    .into_iter()
                    .filter(|c| !earlier.iter().any(|e| e.contains(c))),
            );
            if !every_room {
                break;
            }
        }
        to
    }

    /// Delivers locally first, then publishes for the other instances, if there can be any: a
    /// send to several rooms once on each room's channel.
    fn deliver(&mut self, d: &Delivery<'_>) -> Sent {
        let local = self.deliver_local(d, true);
        if self.config.standalone {
            return Sent { local, published: false };
        }
        if d.kind == TargetKind::Room && d.rooms.len() > 1 {
            for room in d.rooms {
                self.publish(&Delivery { target: Some(room), ..*d });
            }
        } else {
            self.publish(d);
        }
        Sent { local, published: true }
    }

    fn publish(&mut self, d: &Delivery<'_>) {
        self.stats.published += 1;
        let envelope = d.envelope(&self.config.server_id);
        let channel = self.channels.for_target(d.kind, d.target);
        self.out.push_back(Output::BusPublish { channel, payload: envelope.encode() });
    }
}

/// One send: what, to whom, and who is left out. The same path serves local sends, client
/// publishes and envelopes from the bus.
#[derive(Debug, Clone, Copy)]
struct Delivery<'a> {
    kind: TargetKind,
    target: Option<&'a str>,
    event: &'a str,
    data: Option<&'a RawValue>,
    exclude_conns: &'a [ConnId],
    exclude_users: &'a [&'a str],
    /// A send to several rooms: all of them, in order (`target` is one of them); empty otherwise.
    rooms: &'a [&'a str],
    /// Rooms whose members are left out.
    except_rooms: &'a [&'a str],
    /// The frame's `path`, if the application gave one.
    path: Option<&'a str>,
}

impl<'a> Delivery<'a> {
    fn envelope(&self, server_id: &'a str) -> Envelope<'a> {
        Envelope {
            server_id: Cow::Borrowed(server_id),
            kind: self.kind,
            target: self.target.map(Cow::Borrowed),
            event: Cow::Borrowed(self.event),
            data: self.data,
            exclude: self.exclude_conns.iter().map(|c| Cow::Owned(c.to_string())).collect(),
            exclude_users: self.exclude_users.iter().map(|u| Cow::Borrowed(*u)).collect(),
            rooms: self.rooms.iter().map(|r| Cow::Borrowed(*r)).collect(),
            except_rooms: self.except_rooms.iter().map(|r| Cow::Borrowed(*r)).collect(),
            path: self.path.map(Cow::Borrowed),
        }
    }
}

/// What a send did: how many connections of this instance it reached, and whether it went out
/// on the bus for the others (whose recipients this instance cannot count). A send that reached
/// nobody here and was not published (`Sent::default()`, a standalone instance) reached nobody
/// at all: a user with no session, an unknown connection, an empty room.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sent {
    /// Connections of this instance the frame was queued for.
    pub local: usize,
    /// Published on the bus: connections of other instances may receive it too.
    pub published: bool,
}

impl Sent {
    /// Whether it reached nobody anywhere: nobody here, and no other instance to ask.
    pub fn reached_nobody(self) -> bool {
        self.local == 0 && !self.published
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

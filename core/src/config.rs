//! Limits, timeouts and switches of one hub, with the defaults of the protocol.

use std::time::Duration;

use crate::error::HubError;

/// How connections become authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AuthMode {
    /// Every connection is authenticated (anonymously) when it connects and gets `connected` at
    /// once.
    #[default]
    Anonymous,
    /// A connection must send `authenticate` within `auth_timeout`; the application decides with
    /// [`Hub::accept_auth`](crate::Hub::accept_auth) or [`Hub::reject_auth`](crate::Hub::reject_auth).
    Required,
}

/// Presence notices: the other members of a room are told when someone joins or leaves it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PresenceEvents {
    /// No notices (the default).
    #[default]
    Off,
    /// `member_joined` / `member_left` for every connection.
    Connections,
    /// Per user: `member_joined` when a user's first session joins, `member_left` when the last
    /// one leaves (one person with three tabs is one member). Anonymous connections count as
    /// users of their own.
    Users,
}

/// A per-connection rate limit on incoming frames: a token bucket refilled at `per_second`
/// that holds at most `burst` tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained frames per second.
    pub per_second: u32,
    /// Frames that may arrive at once after a quiet period.
    pub burst: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self { per_second: 100, burst: 200 }
    }
}

/// The configuration of one [`Hub`](crate::Hub).
///
/// Build it with struct update syntax over [`HubConfig::default`]:
///
/// ```
/// use std::time::Duration;
/// use roomcast_core::{AuthMode, HubConfig};
///
/// let config = HubConfig {
///     server_id: "node-a".into(),
///     auth: AuthMode::Required,
///     auth_timeout: Duration::from_secs(2),
///     ..HubConfig::default()
/// };
/// assert_eq!(config.max_rooms_per_conn, 100);
/// ```
#[derive(Clone, Debug)]
pub struct HubConfig {
    /// This instance's id on the bus; envelopes carrying it are ignored when they come back.
    /// Must be unique per instance, and not `"emitter"`. Adapters use a UUID.
    pub server_id: String,
    /// Prefix of every bus channel (`{prefix}:room:{room}`, ...). Default `ws`.
    pub channel_prefix: String,
    /// Whether connections must authenticate. Default: anonymous.
    pub auth: AuthMode,
    /// Time a new connection has to send `authenticate` (default 5 s); the application then has
    /// 3 × this long to decide.
    pub auth_timeout: Duration,
    /// A connection with no frame and no pong for this long is closed with 4002 (default 30 s).
    pub heartbeat_timeout: Duration,
    /// A connection silent for this long is sent a WebSocket ping (default 10 s).
    pub ping_interval: Duration,
    /// Frames larger than this are refused with close 1009 (default 64 KiB).
    pub max_frame_bytes: usize,
    /// Rooms one connection may be in at once (default 100).
    pub max_rooms_per_conn: usize,
    /// Longest room name in bytes of UTF-8 (default 256).
    pub max_room_name_bytes: usize,
    /// Per-connection limit on incoming frames; `None` switches it off. Default 100/s, burst 200.
    pub rate_limit: Option<RateLimit>,
    /// Presence notices to the other members of a room (default: off).
    pub presence_events: PresenceEvents,
    /// The rooms presence notices apply to (default: all of them when `presence_events` is on).
    pub presence_rooms: crate::identity::RoomAcl,
    /// Replicate presence across instances over the bus (default: off). Each instance then
    /// knows every member of the rooms it has members in, on any instance, and drops the members
    /// of an instance whose lease (see [`Hub::handle_peer_lease`](crate::Hub::handle_peer_lease))
    /// runs out. Ignored by a [`standalone`](Self::standalone) hub: alone, its presence is
    /// its own.
    pub cluster_presence: bool,
    /// How long a peer instance heard from, but with no lease reported, counts as alive.
    pub peer_timeout: Duration,
    /// Seed of the hash function of the hub's indexes. Output order never depends on it; an
    /// adapter facing the internet should pass a random value so that clients cannot aim for
    /// hash collisions with chosen room names.
    pub hash_seed: u64,
    /// This instance is alone: no bus connects it to other instances or to an emitter, so
    /// sends are delivered locally and not published (no envelope is encoded per send), and no
    /// bus interest is output (no channel is named per connection, room or user).
    /// Default: `false`. The tokio adapter sets it when it runs with no bus.
    pub standalone: bool,
    /// Every connection joins a room named by its own id when it is authenticated, as ignis
    /// does, so that a send to that room (an emitter's `toRoom(clientId)`) reaches it. The
    /// room counts toward `max_rooms_per_conn` and is listed in its rooms, but the client is
    /// not told with `joined` (it did not ask, and a client rejoining after a reconnect must
    /// not rejoin its old id). Default: `false`.
    pub own_room: bool,
    /// The bytes every room's history may hold together (messages as sent, and their
    /// bookkeeping); past it the oldest messages of any room are dropped first. Default 64 MiB.
    pub max_history_bytes: usize,
    /// How long before its credentials expire (an [`Identity::expires_in`](crate::Identity))
    /// a connection is sent `token_expiring`, so that it can send a fresh token with `refresh`
    /// (default 30 s). Without one in time it is closed with 4004 at the expiry.
    pub token_refresh_notice: Duration,
    /// What clients may do with each room by themselves (join, leave, publish, ask its
    /// presence), by room-name pattern: see [`RoomPolicies`](crate::RoomPolicies). Default: every
    /// room [`open`](crate::RoomPolicy::open), as protocol v1 has it. A room whose policy is
    /// [`PublishPolicy::Checked`](crate::PublishPolicy::Checked) hands each member's publish to
    /// the application first ([`Event::Publish`](crate::Event::Publish)).
    pub rooms: crate::policy::RoomPolicies,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            server_id: "roomcast".into(),
            channel_prefix: "ws".into(),
            auth: AuthMode::Anonymous,
            auth_timeout: Duration::from_secs(5),
            heartbeat_timeout: Duration::from_secs(30),
            ping_interval: Duration::from_secs(10),
            max_frame_bytes: 64 * 1024,
            max_rooms_per_conn: 100,
            max_room_name_bytes: 256,
            rate_limit: Some(RateLimit::default()),
            presence_events: PresenceEvents::Off,
            presence_rooms: crate::identity::RoomAcl::Any,
            token_refresh_notice: Duration::from_secs(30),
            rooms: crate::policy::RoomPolicies::default(),
            cluster_presence: false,
            peer_timeout: Duration::from_secs(10),
            hash_seed: 0,
            standalone: false,
            own_room: false,
            max_history_bytes: 64 * 1024 * 1024,
        }
    }
}

impl HubConfig {
    pub(crate) fn validate(&self) -> Result<(), HubError> {
        let fail = |what| Err(HubError::InvalidConfig(what));
        if self.server_id.is_empty() || self.server_id == crate::envelope::EMITTER_ID {
            return fail("server_id must be non-empty and not \"emitter\"");
        }
        if self.channel_prefix.is_empty() {
            return fail("channel_prefix must be non-empty");
        }
        if self.auth_timeout.is_zero() || self.heartbeat_timeout.is_zero() {
            return fail("timeouts must be non-zero");
        }
        if self.ping_interval.is_zero() {
            return fail("ping_interval must be non-zero");
        }
        if self.max_frame_bytes == 0 || self.max_room_name_bytes == 0 {
            return fail("size limits must be non-zero");
        }
        if let Some(limit) = self.rate_limit
            && (limit.per_second == 0 || limit.burst == 0)
        {
            return fail("rate_limit needs per_second and burst of at least 1");
        }
        if self.rooms.histories().any(|h| h.size == 0 || h.ttl.is_zero()) {
            return fail("a room history needs a size and a ttl of at least 1");
        }
        if self.rooms.histories().next().is_some() && !self.standalone {
            // Each instance would number a room's messages on its own: the offsets would not
            // be the same everywhere. History across instances needs a shared store.
            return fail("room history is kept by a standalone hub only (one instance, no bus)");
        }
        Ok(())
    }
}

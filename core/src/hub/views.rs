//! Read-only views of the hub: connections, rooms, users, bus interest, counters.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use serde_json::value::RawValue;

use super::{Hub, Stage};
use crate::id::ConnId;
use crate::presence::PresenceEntry;

/// Where a connection is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    /// Connected, `authenticate` not received yet.
    Unauthenticated,
    /// `authenticate` received, waiting for the application's decision.
    Authenticating,
    /// Authenticated (or anonymous): may join rooms and receive broadcasts.
    Authenticated,
}

/// What the hub knows of one connection.
#[derive(Debug, Clone, Copy)]
pub struct ConnInfo<'a> {
    /// Its lifecycle state.
    pub state: ConnState,
    /// Its user, if authenticated as one.
    pub user_id: Option<&'a str>,
    /// The metadata the application gave in [`Identity`](crate::Identity), or set since.
    pub metadata: Option<&'a RawValue>,
    /// When it connected (the `now` of [`Hub::handle_connect`]).
    pub connected_at: Instant,
    /// When it was last active: a frame, a pong, or its connection.
    pub last_activity: Instant,
    rooms: &'a [Arc<str>],
}

impl<'a> ConnInfo<'a> {
    /// The rooms it is in, in the order it joined them.
    pub fn rooms(&self) -> impl ExactSizeIterator<Item = &'a str> + 'a {
        self.rooms.iter().map(|r| &**r)
    }
}

/// Counters since the hub was created, for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HubStats {
    /// Text frames received from clients.
    pub frames_in: u64,
    /// Client frames refused as `bad_frame`.
    pub bad_frames: u64,
    /// `error` frames sent.
    pub errors_sent: u64,
    /// `Transmit` outputs (one per serialized frame).
    pub transmits: u64,
    /// Frames handed to connections (one per recipient of each transmit).
    pub deliveries: u64,
    /// Envelopes published to the bus.
    pub published: u64,
    /// Envelopes received from the bus.
    pub bus_in: u64,
    /// Bytes received from the bus (channel and payload).
    pub bus_bytes_in: u64,
    /// Envelopes dropped as malformed.
    pub bus_invalid: u64,
    /// Envelopes dropped because this instance sent them.
    pub bus_own: u64,
    /// Connections closed by the hub, by close code: every close the hub decides, whatever the
    /// cause (a violation, a timeout, a slow consumer, the application, a shutdown).
    pub closes: BTreeMap<u16, u64>,
}

/// A page of a room's history ([`Hub::history`]).
#[derive(Debug, Clone)]
pub struct HistoryPage {
    /// The room's epoch.
    pub epoch: String,
    /// The room's newest offset.
    pub offset: u64,
    /// The messages, oldest first, each a frame as its members got it.
    pub messages: Vec<bytes::Bytes>,
}

/// What the rooms' histories hold, together ([`Hub::history_usage`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HistoryUsage {
    /// Messages kept.
    pub messages: usize,
    /// Bytes they hold (frames and bookkeeping), under `max_history_bytes`.
    pub bytes: usize,
    /// Messages dropped before their ttl because all rooms together held too many bytes.
    pub dropped: u64,
}

impl Hub {
    /// What the rooms' histories hold.
    pub fn history_usage(&self) -> HistoryUsage {
        let (messages, bytes) = self.history.usage();
        HistoryUsage { messages, bytes, dropped: self.history.dropped }
    }

    /// A room's history as a join would tell it: its newest offset and its epoch. `None` for a
    /// room without history, or with nothing kept and nobody in it here.
    pub fn history_position(&self, room: &str) -> Option<(u64, &str)> {
        self.history.position(room)
    }

    /// A room's kept messages after `since` (an offset), at most `limit`, oldest first, as
    /// their members were sent them (`offset` included). `None` for a room without history,
    /// or with nothing kept and nobody in it here.
    pub fn history(&self, room: &str, since: u64, limit: usize) -> Option<HistoryPage> {
        let (epoch, offset, messages) = self.history.page(room, since, limit)?;
        Some(HistoryPage { epoch: epoch.to_owned(), offset, messages })
    }

    /// Forgets a room's history, messages and numbering: the next message into it starts a new
    /// epoch, so clients that recover from an old offset are told `recovered: false`. `false`
    /// if the room had none.
    pub fn remove_history(&mut self, room: &str) -> bool {
        self.history.remove(room)
    }

    /// How many connections this instance holds.
    pub fn connection_count(&self) -> usize {
        self.registry.conns.len()
    }

    /// How many rooms have at least one local member.
    pub fn room_count(&self) -> usize {
        self.registry.rooms.len()
    }

    /// How many users have at least one local session.
    pub fn user_count(&self) -> usize {
        self.registry.users.len()
    }

    /// Every local connection.
    pub fn connections(&self) -> impl ExactSizeIterator<Item = ConnId> + '_ {
        self.registry.conns.keys().copied()
    }

    /// One local connection.
    pub fn connection(&self, conn: ConnId) -> Option<ConnInfo<'_>> {
        self.registry.conns.get(&conn).map(|c| ConnInfo {
            state: match c.stage {
                Stage::AwaitingAuth { .. } => ConnState::Unauthenticated,
                Stage::Authenticating { .. } => ConnState::Authenticating,
                Stage::Authenticated { .. } | Stage::Expiring { .. } => ConnState::Authenticated,
            },
            user_id: c.user.as_deref(),
            metadata: c.metadata.as_deref(),
            connected_at: c.connected_at,
            last_activity: c.last_activity,
            rooms: &c.rooms,
        })
    }

    /// Every room with local members.
    pub fn rooms(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.registry.rooms.names()
    }

    /// The local members of `room` (none if it has none).
    pub fn room_members(&self, room: &str) -> impl Iterator<Item = ConnId> + '_ {
        self.registry.rooms.get(room).into_iter().flatten().copied()
    }

    /// How many local members `room` has.
    pub fn room_size(&self, room: &str) -> usize {
        self.registry.rooms.get(room).map_or(0, |m| m.len())
    }

    /// The rooms `conn` is in, in the order it joined them.
    pub fn rooms_of(&self, conn: ConnId) -> impl Iterator<Item = &str> + '_ {
        self.registry.conns.get(&conn).into_iter().flat_map(|c| c.rooms.iter().map(|r| &**r))
    }

    /// Whether a local connection is in `room`: one lookup in the room's member set, however
    /// many rooms the connection is in.
    pub(crate) fn is_member(&self, conn: ConnId, room: &str) -> bool {
        self.registry.rooms.contains(room, &conn)
    }

    /// Every user with local sessions.
    pub fn users(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.registry.users.names()
    }

    /// The local sessions of `user_id`.
    pub fn user_connections(&self, user_id: &str) -> impl Iterator<Item = ConnId> + '_ {
        self.registry.users.get(user_id).into_iter().flatten().copied()
    }

    /// The members of `room`, with their user and metadata: the local ones, and with cluster
    /// presence the other instances' too (local first).
    pub fn presence(&self, room: &str) -> Vec<PresenceEntry<'_>> {
        let mut all = self.local_presence(room);
        all.extend(self.remote_presence(room));
        all
    }

    /// The local members of `room`.
    pub(crate) fn local_presence(&self, room: &str) -> Vec<PresenceEntry<'_>> {
        self.room_members(room)
            .filter_map(|conn| {
                let c = self.registry.conns.get(&conn)?;
                Some(PresenceEntry {
                    conn,
                    user_id: c.user.as_deref(),
                    metadata: c.metadata.as_deref(),
                })
            })
            .collect()
    }

    /// The local connections whose metadata matches `filter`, in the order they connected
    /// (authenticated ones only: the others have no metadata yet). For every instance, use
    /// [`Query::Connections`](crate::Query::Connections).
    pub fn connections_matching(
        &self,
        filter: &crate::query::MetadataFilter,
    ) -> Vec<PresenceEntry<'_>> {
        self.registry
            .conns
            .iter()
            .filter(|(_, c)| c.stage.is_authenticated())
            .filter(|(_, c)| filter.matches(c.metadata.as_deref()))
            .map(|(conn, c)| PresenceEntry {
                conn: *conn,
                user_id: c.user.as_deref(),
                metadata: c.metadata.as_deref(),
            })
            .collect()
    }

    /// Whether `user_id` has a local session, or (with cluster presence) a session elsewhere in a
    /// room this instance has members in.
    pub fn user_online(&self, user_id: &str) -> bool {
        self.registry.users.get(user_id).is_some()
            || self
                .cluster
                .remote
                .values()
                .any(|r| r.values().any(|m| m.user.as_deref() == Some(user_id)))
    }

    /// Every bus channel this instance has interest in right now: what `Subscribe` outputs
    /// minus `Unsubscribe` outputs add up to. A bus that reconnects subscribes to these again.
    pub fn subscriptions(&self) -> Vec<String> {
        let ch = &self.channels;
        let mut all: Vec<String> = self.registry.rooms.names().map(|r| ch.room(r)).collect();
        all.extend(self.registry.users.names().map(|u| ch.user(u)));
        all.extend(self.registry.everyone.iter().map(|c| ch.client(*c)));
        if !self.registry.everyone.is_empty() {
            all.push(ch.broadcast());
        }
        if self.config.cluster_presence {
            all.extend(self.registry.rooms.names().map(|r| ch.presence(r)));
            all.push(ch.server(&self.config.server_id));
            all.push(ch.peers());
        }
        all
    }

    /// Counters since the hub was created.
    pub fn stats(&self) -> &HubStats {
        &self.stats
    }

    /// Entries the hub's indexes (connections, rooms, users, everyone) have room for. They shrink
    /// as they empty, so a burst (a million rooms joined and left) does not keep its memory.
    /// Exposed so that tests and metrics can check it.
    pub fn index_capacity(&self) -> usize {
        self.registry.conns.capacity()
            + self.registry.rooms.capacity()
            + self.registry.users.capacity()
            + self.registry.everyone.capacity()
    }

    /// Entries in the deadline heap, live and stale; at most a small multiple of the connection
    /// count. Exposed so that tests and metrics can check that it stays bounded.
    pub fn timer_entries(&self) -> usize {
        self.timers.len()
    }
}

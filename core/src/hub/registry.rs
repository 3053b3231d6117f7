//! Who is where: the connections and their state, the rooms and the users as indexes of
//! connections, and everyone authenticated (the target of server-wide broadcasts). The indexes
//! and each connection's own list of rooms are kept in step by the hub's join and leave.

use std::sync::Arc;
use std::time::Instant;

use indexmap::IndexMap;
use serde_json::value::RawValue;

use crate::id::ConnId;
use crate::identity::RoomAcl;
use crate::members::{Hasher, MemberIndex, MemberSet};
use crate::rate::Bucket;

/// Connections, rooms and users.
#[derive(Debug)]
pub(super) struct Registry {
    pub(super) conns: IndexMap<ConnId, Conn, Hasher>,
    pub(super) rooms: MemberIndex,
    pub(super) users: MemberIndex,
    /// Every authenticated connection.
    pub(super) everyone: MemberSet,
}

impl Registry {
    pub(super) fn new(hasher: &Hasher) -> Self {
        Self {
            conns: IndexMap::with_hasher(hasher.clone()),
            rooms: MemberIndex::new(hasher.clone()),
            users: MemberIndex::new(hasher.clone()),
            everyone: MemberSet::with_hasher(hasher.clone()),
        }
    }

    /// Whether another local session of `user` than `except` is in `room`.
    pub(super) fn user_in_room(&self, room: &str, user: &str, except: ConnId) -> bool {
        let members = self.rooms.get(room);
        self.users.get(user).is_some_and(|sessions| {
            sessions.iter().any(|s| *s != except && members.is_some_and(|m| m.contains(s)))
        })
    }
}

/// One connection's state.
#[derive(Debug)]
pub(super) struct Conn {
    pub(super) stage: Stage,
    pub(super) user: Option<Arc<str>>,
    pub(super) metadata: Option<Box<RawValue>>,
    pub(super) acl: RoomAcl,
    /// Rooms in the order they were joined (at most `max_rooms_per_conn`).
    pub(super) rooms: Vec<Arc<str>>,
    pub(super) connected_at: Instant,
    pub(super) last_activity: Instant,
    pub(super) last_ping: Instant,
    /// The deadline of this connection's live timer entry.
    pub(super) scheduled: Option<Instant>,
    pub(super) bucket: Bucket,
}

/// Where a connection is in its authentication.
#[derive(Debug, Clone, Copy)]
pub(super) enum Stage {
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
    pub(super) fn is_authenticated(self) -> bool {
        matches!(self, Self::Authenticated { .. } | Self::Expiring { .. })
    }
}

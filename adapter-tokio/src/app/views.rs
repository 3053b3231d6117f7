//! What the [`Handle`](crate::Handle)'s queries answer: a connection, a room's member.

use std::time::SystemTime;

use roomcast_core::{ConnId, PresenceEntry};
use serde_json::value::RawValue;

/// A connection as [`Handle::connection`](crate::Handle::connection) and [`Socket::info`](crate::Socket::info) report it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Connection {
    /// The connection.
    pub conn: ConnId,
    /// Its user, if authenticated as one.
    pub user_id: Option<String>,
    /// Its rooms, in the order it joined them.
    pub rooms: Vec<String>,
    /// Its metadata.
    pub metadata: Option<Box<RawValue>>,
    /// When it connected.
    pub connected_at: SystemTime,
    /// When it was last active (a frame or a pong).
    pub last_activity: SystemTime,
}

impl From<&PresenceEntry<'_>> for Member {
    fn from(e: &PresenceEntry<'_>) -> Self {
        Member {
            conn: e.conn,
            user_id: e.user_id.map(str::to_owned),
            metadata: e.metadata.map(RawValue::to_owned),
        }
    }
}

/// One member of a room, as [`Handle::presence`](crate::Handle::presence) reports it.
#[derive(Debug, Clone)]
pub struct Member {
    /// The connection.
    pub conn: ConnId,
    /// Its user, if authenticated as one.
    pub user_id: Option<String>,
    /// The metadata given at authentication.
    pub metadata: Option<Box<RawValue>>,
}

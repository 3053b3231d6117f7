//! Errors returned to the embedding code when it misuses the API.
//!
//! Bad input from a client or from the bus is never an error here: it becomes an `error` frame,
//! a close, or a dropped envelope, and the hub carries on.

use crate::id::ConnId;

/// Misuse of the [`Hub`](crate::Hub) API by the embedding application or adapter.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HubError {
    /// The configuration cannot work (a zero interval, an empty server id, ...).
    #[error("invalid configuration: {0}")]
    InvalidConfig(&'static str),
    /// `handle_connect` was called twice with the same id.
    #[error("connection {0} is already connected")]
    DuplicateConn(ConnId),
    /// The connection is not (or no longer) connected to this hub.
    #[error("connection {0} is not connected to this hub")]
    UnknownConn(ConnId),
    /// The connection has already been authenticated.
    #[error("connection {0} is already authenticated")]
    AlreadyAuthenticated(ConnId),
    /// The operation needs an authenticated connection.
    #[error("connection {0} is not authenticated")]
    NotAuthenticated(ConnId),
    /// A room name outside 1..=`max_room_name_bytes` bytes.
    #[error("invalid room name (must be 1..={max} bytes)")]
    InvalidRoom {
        /// The configured maximum.
        max: usize,
    },
    /// Joining would take the connection over `max_rooms_per_conn`.
    #[error("connection {conn} is already in {max} rooms")]
    RoomLimit {
        /// The connection.
        conn: ConnId,
        /// The configured maximum.
        max: usize,
    },
    /// An event name outside 1..=128 bytes.
    #[error("invalid event name (must be 1..=128 bytes)")]
    InvalidEvent,
    /// A frame path outside 1..=256 bytes.
    #[error("invalid path (must be 1..=256 bytes)")]
    InvalidPath,
    /// A user id outside 1..=256 bytes.
    #[error("invalid user id (must be 1..=256 bytes)")]
    InvalidUser,
    /// The application's data could not be serialized to JSON.
    #[error("data is not serializable to JSON: {0}")]
    Serialize(#[from] serde_json::Error),
}

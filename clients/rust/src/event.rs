//! What the client tells the application.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::Error;

/// A message of the application from the server: `{"event","room"?,"data"?}`.
#[derive(Debug, Clone)]
pub struct Message {
    /// The event name.
    pub event: String,
    /// The room it was delivered for, if it was a room broadcast.
    pub room: Option<String>,
    /// The data, as the server sent it (`null` when none).
    pub data: Box<RawValue>,
}

impl Message {
    /// The data, deserialized.
    pub fn data<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        Ok(serde_json::from_str(self.data.get())?)
    }
}

/// A member of a room, as `presence` answers.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    /// The connection.
    pub id: String,
    /// Its user, if any.
    #[serde(default)]
    pub user_id: Option<String>,
    /// Its metadata, if any.
    #[serde(default)]
    pub info: Option<Box<RawValue>>,
}

/// What happens to the connection, and the server's messages, in order.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// Connected (and authenticated), as `id`; `reconnected` after the first time.
    Connected {
        /// The connection id.
        id: String,
        /// The user, if authenticated as one.
        user_id: Option<String>,
        /// Whether this follows a disconnection.
        reconnected: bool,
    },
    /// The connection closed with `code`; `will_reconnect` says what comes next.
    Disconnected {
        /// The close code (1006 when the connection was lost without one).
        code: u16,
        /// The close reason.
        reason: String,
        /// Whether the client will try again.
        will_reconnect: bool,
    },
    /// The next attempt comes after `delay`.
    Reconnecting {
        /// Attempts so far.
        attempt: u32,
        /// The wait before it.
        delay: std::time::Duration,
    },
    /// Messages for `room` may have been missed (a reconnection, or the server's bus
    /// reconnected): refetch what depends on them.
    Resync {
        /// The room.
        room: String,
        /// `reconnected` or the server's reason (`bus_reconnected`).
        reason: String,
    },
    /// The credentials expire in `expires_in` seconds; the client refreshes them itself when
    /// it has a token source.
    TokenExpiring {
        /// Seconds left.
        expires_in: u64,
    },
    /// A server error that no request waited for.
    Error(crate::error::ServerError),
    /// A message of the application.
    Message(Message),
}

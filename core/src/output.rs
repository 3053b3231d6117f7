//! What the hub asks its driver to do: the outputs drained with [`Hub::poll_output`](crate::Hub::poll_output).

use std::borrow::Cow;

use bytes::Bytes;
use serde_json::value::RawValue;

use crate::close::CloseCode;
use crate::id::{ConnId, RequestId};

/// One command for the driver.
#[derive(Debug)]
#[must_use]
pub enum Output {
    /// Send `frame` as a WebSocket text frame to every connection in `to`.
    Transmit(Transmit),
    /// Send a WebSocket ping to this connection.
    Ping(ConnId),
    /// Send queued frames, then close the socket with this code. The hub has already forgotten the
    /// connection: later inputs for it are ignored.
    Close {
        /// The connection to close.
        conn: ConnId,
        /// The close code.
        code: CloseCode,
        /// A short reason for the close frame (at most 123 bytes, as WebSocket allows).
        reason: Cow<'static, str>,
    },
    /// Hand `payload` (a bus envelope, JSON) to the bus on `channel`.
    BusPublish {
        /// The channel, e.g. `ws:room:lobby`.
        channel: String,
        /// The serialized envelope.
        payload: Bytes,
    },
    /// This instance now has local interest in `channel`: subscribe to it on the bus.
    BusSubscribe(String),
    /// This instance no longer has local interest in `channel`: unsubscribe.
    BusUnsubscribe(String),
    /// Something the application may act on.
    Event(Event),
}

/// One already-serialized frame for many connections.
///
/// `frame` is a shared, reference-counted buffer: the payload is serialized once and never copied
/// per recipient. `to` is never empty and names each connection once.
#[derive(Debug, Clone)]
pub struct Transmit {
    /// The recipients.
    pub to: Vec<ConnId>,
    /// The text frame, UTF-8 JSON.
    pub frame: Bytes,
}

/// What happened, for the application.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// The client sent `authenticate`; decide with [`Hub::accept_auth`](crate::Hub::accept_auth)
    /// or [`Hub::reject_auth`](crate::Hub::reject_auth) within 3 × `auth_timeout`.
    Authenticate {
        /// The connection.
        conn: ConnId,
        /// The `token` field of the frame's data.
        token: String,
        /// The frame's whole `data` object, for authenticators that want more than the token.
        credentials: Box<RawValue>,
    },
    /// A member's `publish`, valid, waiting for the application's decision (the room's policy
    /// is [`PublishPolicy::Checked`](crate::PublishPolicy::Checked)).
    Publish(Box<PublishRequest>),
    /// An authenticated connection sent `refresh` with fresh credentials (servers that
    /// authenticate only); decide with [`Hub::accept_refresh`](crate::Hub::accept_refresh) or
    /// [`Hub::reject_refresh`](crate::Hub::reject_refresh).
    Refresh {
        /// The connection.
        conn: ConnId,
        /// The `token` field of the frame's data.
        token: String,
        /// The frame's whole `data` object.
        credentials: Box<RawValue>,
        /// The request's id, for the answer.
        id: Option<RequestId>,
    },
    /// The connection is authenticated and has been sent `connected`.
    Connected {
        /// The connection.
        conn: ConnId,
        /// Its user, if not anonymous.
        user_id: Option<String>,
    },
    /// A client event that is not a system event.
    Message {
        /// The sender.
        conn: ConnId,
        /// The event name.
        event: String,
        /// The data, as the client sent it (never re-parsed).
        data: Option<Box<RawValue>>,
        /// The request id, to answer with [`Hub::reply`](crate::Hub::reply).
        id: Option<RequestId>,
        /// The frame's `path`, if it had one (moost-style routing).
        path: Option<Box<str>>,
    },
    /// The connection joined a room (by its own `join` or by the application).
    Joined {
        /// The connection.
        conn: ConnId,
        /// The room.
        room: String,
    },
    /// The connection left a room (by `leave`, by the application, or because it went away).
    Left {
        /// The connection.
        conn: ConnId,
        /// The room.
        room: String,
    },
    /// Another instance stopped renewing its lease, or said goodbye (cluster presence): its
    /// members were removed.
    PeerGone {
        /// Its server id.
        server_id: String,
    },
    /// A cluster query ([`Hub::query`](crate::Hub::query)) is complete, or its deadline came.
    QueryDone(Box<crate::query::QueryResult>),
    /// The connection is gone; the hub holds nothing of it any more.
    Disconnected {
        /// The connection.
        conn: ConnId,
        /// Why.
        reason: DisconnectReason,
    },
}

/// Why a connection went away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The driver reported the socket gone ([`Hub::handle_disconnect`](crate::Hub::handle_disconnect)).
    Gone,
    /// The hub closed it with this code (a protocol violation, a timeout, or the application).
    Closed(CloseCode),
}

/// A client's `publish` for the application to decide ([`Event::Publish`]).
#[derive(Debug, Clone)]
pub struct PublishRequest {
    /// The sender.
    pub conn: ConnId,
    /// The room, of which the sender is a member.
    pub room: String,
    /// The event to deliver.
    pub event: String,
    /// Its data, as the client sent it.
    pub data: Option<Box<RawValue>>,
    /// Leave the sender out.
    pub exclude_self: bool,
    /// Leave every session of the sender's user out.
    pub exclude_user: bool,
    /// The request's id, for a refusal.
    pub id: Option<RequestId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Outputs are queued by the thousand during a busy tick: keep them small. Grow this bound
    /// only on purpose (box the large variant instead). Grown once, from 72 and 80, for the
    /// `path` of `Event::Message` (16 bytes more per queued output, against a box and a pointer
    /// chase per client message).
    #[test]
    fn output_and_event_sizes_are_pinned() {
        assert!(size_of::<Event>() <= 88, "Event is {} bytes", size_of::<Event>());
        assert!(size_of::<Output>() <= 96, "Output is {} bytes", size_of::<Output>());
    }
}

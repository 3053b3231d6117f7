//! How the application's `on_connect` hook answers an upgrade request: let the connection in
//! ([`Admit`]: as whom, with what, into which rooms) or turn it away ([`Refuse`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use hyper::StatusCode;
use roomcast_core::{CloseCode, Identity};
use serde::Serialize;

use crate::transport::request::UpgradeRequest;

/// The `on_connect` hook, erased.
pub(crate) type ConnectHook = Arc<
    dyn Fn(Arc<UpgradeRequest>) -> Pin<Box<dyn Future<Output = Result<Admit, Refuse>> + Send>>
        + Send
        + Sync,
>;

/// `on_connect` lets a connection in: how it starts. The default starts it as the server's
/// authentication mode says (anonymous, or waiting for `authenticate`).
#[derive(Debug, Default, Clone)]
#[must_use]
pub struct Admit {
    pub(crate) identity: Option<Identity>,
    pub(crate) rooms: Vec<String>,
    /// Set by a [`Refuse::close`]: upgraded only to be closed.
    pub(crate) close: Option<(CloseCode, String)>,
}

impl Admit {
    /// Lets the connection in; it authenticates as the server's mode says.
    pub fn new() -> Self {
        Self::default()
    }

    /// Authenticated at once as `user_id` (a cookie or a header checked at the upgrade): it is
    /// sent `connected` with that user, and need not send `authenticate`. A user id is 1 to
    /// [`MAX_USER_ID_BYTES`](roomcast_core::MAX_USER_ID_BYTES) (256) bytes: the upgrade of one
    /// outside that is refused with `400 Bad Request` naming the limit.
    pub fn user(mut self, user_id: impl Into<String>) -> Self {
        self.identity.get_or_insert_with(Identity::anonymous).user_id = Some(user_id.into());
        self
    }

    /// Authenticated at once, anonymous (without a user), even when the server requires
    /// `authenticate`.
    pub fn anonymous(mut self) -> Self {
        self.identity.get_or_insert_with(Identity::anonymous);
        self
    }

    /// Authenticated at once with a whole [`Identity`] (user, metadata, rooms it may join).
    pub fn identity(mut self, identity: Identity) -> Self {
        self.identity = Some(identity);
        self
    }

    /// Sets the connection's metadata (and authenticates it at once, as [`anonymous`](Self::anonymous)
    /// if no user was given). Metadata that does not serialize is left out.
    pub fn metadata<T: Serialize + ?Sized>(mut self, metadata: &T) -> Self {
        let identity = self.identity.get_or_insert_with(Identity::anonymous);
        identity.metadata = serde_json::value::to_raw_value(metadata).ok();
        self
    }

    /// Joins `room` as soon as the connection is in (e.g. the room named in the URL). A room
    /// that cannot be joined (an invalid name, too many rooms) is left out, and logged.
    pub fn join(mut self, room: impl Into<String>) -> Self {
        self.rooms.push(room.into());
        self
    }
}

/// `on_connect` turns the connection away: with an HTTP status instead of 101 (no WebSocket is
/// opened), or with a WebSocket close code right after the upgrade (for clients that cannot
/// read an HTTP status, as browsers cannot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refuse {
    pub(crate) how: Refusal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    Status(StatusCode, String),
    Close(CloseCode, String),
}

impl Refuse {
    /// Refuses with `status` (e.g. 401, 403, 404) and a short message as the response body.
    /// A status that is not a client or server error becomes 403.
    pub fn status(status: u16, message: impl Into<String>) -> Self {
        let status = StatusCode::from_u16(status)
            .ok()
            .filter(|s| s.is_client_error() || s.is_server_error())
            .unwrap_or(StatusCode::FORBIDDEN);
        Self { how: Refusal::Status(status, message.into()) }
    }

    /// 401 Unauthorized.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::status(401, message)
    }

    /// 403 Forbidden.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::status(403, message)
    }

    /// Upgrades, then closes at once with `code` (e.g. 4003) and `reason`, before anything else
    /// is sent.
    pub fn close(code: u16, reason: impl Into<String>) -> Self {
        Self { how: Refusal::Close(CloseCode(code), reason.into()) }
    }
}

//! What an application registers: handlers by event pattern, a fallback, hooks around a
//! connection's life, and state for the extractors.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use hyper::StatusCode;
use roomcast_core::{DisconnectReason, Identity};
use serde::Serialize;

use crate::context::Socket;
use crate::handler::{BoxHandler, StateMap};
use crate::request::UpgradeRequest;
use crate::router::Router;

/// A boxed, sendable future.
pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// The `on_connect` hook, erased.
pub(crate) type ConnectHook =
    Arc<dyn Fn(Arc<UpgradeRequest>) -> BoxFuture<Result<Admit, Refuse>> + Send + Sync>;

/// The `on_disconnect` hook, erased.
pub(crate) type DisconnectHook =
    Arc<dyn Fn(Socket, DisconnectReason) -> BoxFuture<()> + Send + Sync>;

/// Everything the application registered.
#[derive(Default)]
pub(crate) struct App {
    pub(crate) router: Router<BoxHandler>,
    /// Routes on a frame's `path`, by event name (moost's `@Message("join", "/chat/:room")`).
    pub(crate) paths: HashMap<String, Router<BoxHandler>>,
    pub(crate) on_connect: Option<ConnectHook>,
    pub(crate) on_disconnect: Option<DisconnectHook>,
    pub(crate) state: Arc<StateMap>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("routes", &!self.router.is_empty())
            .field("on_connect", &self.on_connect.is_some())
            .field("on_disconnect", &self.on_disconnect.is_some())
            .field("state", &self.state)
            .finish()
    }
}

impl App {
    /// The route of an event: on its path first (when it has one and routes are given for the
    /// event), else on its name, else the fallback.
    pub(crate) fn route<'a>(
        &'a self,
        event: &str,
        path: Option<&str>,
    ) -> Option<crate::router::Route<'a, BoxHandler>> {
        let on_path = path.and_then(|path| {
            let routes = self.paths.get(event)?;
            routes.find(path.strip_prefix('/').unwrap_or(path))
        });
        on_path.or_else(|| self.router.find(event))
    }

    /// Whether events go to handlers (rather than only to the [`Events`](crate::Events) stream).
    pub(crate) fn routes_events(&self) -> bool {
        !self.router.is_empty() || !self.paths.is_empty() || self.on_disconnect.is_some()
    }
}

/// `on_connect` lets a connection in: how it starts. The default starts it as the server's
/// authentication mode says (anonymous, or waiting for `authenticate`).
#[derive(Debug, Default, Clone)]
#[must_use]
pub struct Admit {
    pub(crate) identity: Option<Identity>,
    pub(crate) rooms: Vec<String>,
}

impl Admit {
    /// Lets the connection in; it authenticates as the server's mode says.
    pub fn new() -> Self {
        Self::default()
    }

    /// Authenticated at once as `user_id` (a cookie or a header checked at the upgrade): it is
    /// sent `connected` with that user, and need not send `authenticate`.
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

/// `on_connect` turns the connection away: the upgrade is answered with an HTTP status instead
/// of 101, and no WebSocket is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refuse {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

impl Refuse {
    /// Refuses with `status` (e.g. 401, 403, 404) and a short message as the response body.
    /// A status that is not a client or server error becomes 403.
    pub fn status(status: u16, message: impl Into<String>) -> Self {
        let status = StatusCode::from_u16(status)
            .ok()
            .filter(|s| s.is_client_error() || s.is_server_error())
            .unwrap_or(StatusCode::FORBIDDEN);
        Self { status, message: message.into() }
    }

    /// 401 Unauthorized.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::status(401, message)
    }

    /// 403 Forbidden.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::status(403, message)
    }
}

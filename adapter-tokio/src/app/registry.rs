//! What an application registers: handlers by event pattern, a fallback, hooks around a
//! connection's life, and state for the extractors.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use roomcast_core::{DisconnectReason, PublishRequest};

use crate::app::context::Socket;
use crate::app::handler::{BoxHandler, StateMap};
use crate::app::on_connect::ConnectHook;
use crate::app::router::Router;

/// A boxed, sendable future.
pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// The `on_disconnect` hook, erased.
pub(crate) type DisconnectHook =
    Arc<dyn Fn(Socket, DisconnectReason) -> BoxFuture<()> + Send + Sync>;

/// The `on_connected` hook, erased.
pub(crate) type ConnectedHook = Arc<dyn Fn(Socket) -> BoxFuture<()> + Send + Sync>;

/// The `on_publish` hook, erased.
pub(crate) type PublishHook =
    Arc<dyn Fn(Socket, PublishRequest) -> BoxFuture<Result<(), crate::HandlerError>> + Send + Sync>;

/// Everything the application registered.
#[derive(Default)]
pub(crate) struct App {
    pub(crate) router: Router<BoxHandler>,
    /// Routes on a frame's `path`, by event name (moost's `@Message("join", "/chat/:room")`).
    pub(crate) paths: HashMap<String, Router<BoxHandler>>,
    pub(crate) on_connect: Option<ConnectHook>,
    pub(crate) on_connected: Option<ConnectedHook>,
    pub(crate) on_disconnect: Option<DisconnectHook>,
    pub(crate) on_publish: Option<PublishHook>,
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
    ) -> Option<crate::app::router::Route<'a, BoxHandler>> {
        let on_path = path.and_then(|path| {
            let routes = self.paths.get(event)?;
            routes.find(path.strip_prefix('/').unwrap_or(path))
        });
        on_path.or_else(|| self.router.find(event))
    }

    /// Whether events go to handlers (rather than only to the [`Events`](crate::Events) stream).
    pub(crate) fn routes_events(&self) -> bool {
        !self.router.is_empty()
            || !self.paths.is_empty()
            || self.on_connected.is_some()
            || self.on_disconnect.is_some()
            || self.on_publish.is_some()
    }
}

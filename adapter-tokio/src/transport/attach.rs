//! Attaching sockets to a running instance: the [`Handle`] methods that hand an upgraded socket
//! to the hub task (the fast path's [`Link`] and its reading task, or another implementation's
//! socket with its writer task), and the `on_connect` hook they run first.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::{Sink, Stream};
use roomcast_core::ConnId;
use tokio::net::TcpStream;

use crate::app::handle::Handle;
use crate::app::on_connect::{Admit, Refuse};
use crate::driver::{Arrival, Outbox, ToHub, submit};
use crate::transport::deflate::Agreed;
use crate::transport::link::Link;
use crate::transport::link_task;
use crate::transport::message::{WsError, WsMessage};
use crate::transport::request::UpgradeRequest;
use crate::transport::stream;

impl Handle {
    /// Sockets open now (counted from the hub's taking them until they are closed).
    pub fn live_sockets(&self) -> usize {
        self.shared().tracker.live()
    }

    /// Whether connections need their upgrade request kept (for hooks and handlers).
    pub(crate) fn keeps_requests(&self) -> bool {
        self.shared().keeps_requests
    }

    /// Runs the application's `on_connect` hook, if any, on an upgrade request.
    pub(crate) async fn on_connect(
        &self,
        request: &Option<Arc<UpgradeRequest>>,
    ) -> Result<Admit, Refuse> {
        match (&self.shared().on_connect, request) {
            (Some(hook), Some(request)) => hook(request.clone()).await,
            _ => Ok(Admit::new()),
        }
    }

    /// Serves one upgraded WebSocket until it closes (tokio-tungstenite's `WebSocketStream`, or
    /// axum's `WebSocket` with the `axum` feature).
    pub async fn serve_socket<S, M, E>(&self, socket: S)
    where
        S: Stream<Item = Result<M, E>> + Sink<M, Error = E> + Send + Unpin + 'static,
        M: WsMessage,
        E: WsError,
    {
        self.serve_socket_as(socket, None).await;
    }

    pub(crate) async fn serve_socket_as<S, M, E>(&self, socket: S, arrival: Option<Box<Arrival>>)
    where
        S: Stream<Item = Result<M, E>> + Sink<M, Error = E> + Send + Unpin + 'static,
        M: WsMessage,
        E: WsError,
    {
        let shared = self.shared();
        let (commands, tracker) = (shared.commands.clone(), shared.tracker.clone());
        stream::serve(socket, commands, tracker, &shared.options, arrival).await;
    }

    /// Serves one WebSocket whose HTTP upgrade is done, on its plain TCP stream, until it closes.
    /// `leftover` holds bytes the client sent right behind its upgrade request (hyper's
    /// `Parts::read_buf`). This is the fast path: roomcast frames and writes the stream itself,
    /// and the hub task writes a fan-out straight into each socket.
    pub async fn serve_tcp(&self, stream: TcpStream, leftover: Bytes) {
        self.serve_tcp_as(stream, leftover, None, None).await;
    }

    /// The task of a fast-path socket, built before it first runs (see [`link_task::serve`]).
    pub(crate) fn serve_tcp_as(
        &self,
        stream: TcpStream,
        leftover: Bytes,
        arrival: Option<Box<Arrival>>,
        deflate: Option<Agreed>,
    ) -> impl Future<Output = ()> + Send + 'static {
        let shared = self.shared();
        let _ = stream.set_nodelay(true);
        forget_wakers(&stream);
        let conn = ConnId::from_uuid(uuid::Uuid::new_v4());
        let link = Arc::new(Link::new(stream, shared.budget.clone(), deflate));
        let connect = ToHub::Connect { conn, outbox: Outbox::link(link.clone()), arrival };
        // Counted before the hub can take it: once its client has `connected`, the next upgrade
        // sees it among the live sockets (`max_connections`).
        shared.tracker.enter();
        let connecting = submit(&shared.commands, connect);
        let (tracker, commands) = (shared.tracker.clone(), shared.commands.clone());
        link_task::serve(link, conn, leftover, connecting, tracker, commands, &shared.options)
    }
}

/// Drops the wakers that the stream's previous owner (the HTTP server's connection task) left in
/// its readiness slots. Each holds that finished task's memory, about 1.4 KiB, for as long as
/// the connection lives; a no-op waker takes their place.
fn forget_wakers(stream: &TcpStream) {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let _ = stream.poll_read_ready(&mut cx);
    let _ = stream.poll_write_ready(&mut cx);
}

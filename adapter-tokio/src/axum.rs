//! Mounting roomcast on a route of an axum app.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use axum::{Router, routing::get};
//! use roomcast_tokio::Roomcast;
//!
//! let (handle, _events) = Roomcast::builder().start()?;
//! let app = Router::new()
//!     .route("/ws", get(roomcast_tokio::axum::upgrade))
//!     .with_state(handle.clone());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! // `serve_app` lets roomcast write to the upgraded TCP streams itself (the fast path);
//! // `axum::serve(listener, app)` works too, with sockets served through tungstenite.
//! roomcast_tokio::serve_app(listener, app, handle).await?;
//! # Ok(()) }
//! ```

use std::net::SocketAddr;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};

use crate::app::handle::Handle;
use crate::transport::upgrade;

/// An axum handler that upgrades the request and serves the socket with `handle`: the
/// application's `on_connect` hook sees the request first (its peer address too, under
/// [`serve_app`](crate::serve_app) or axum's `into_make_service_with_connect_info`). Frame limits
/// come from the handle's options.
pub async fn upgrade(State(handle): State<Handle>, request: Request) -> Response {
    let (parts, _body) = request.into_parts();
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0);
    upgrade::answer(parts, peer, handle).await.into_response()
}

/// Applies the handle's frame limits and buffer sizes to axum's own upgrade, for apps that write
/// their own handler around [`Handle::serve_socket`].
pub fn configure(ws: WebSocketUpgrade, handle: &Handle) -> WebSocketUpgrade {
    let t = handle.options().transport();
    ws.read_buffer_size(t.read_buffer)
        .write_buffer_size(t.write_buffer)
        .max_write_buffer_size(t.max_write_buffer)
        .max_message_size(t.max_message)
        .max_frame_size(t.max_message)
}

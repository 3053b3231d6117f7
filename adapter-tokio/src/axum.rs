//! Mounting roomcast on a route of an axum app.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use axum::{Router, routing::get};
//! use roomcast_tokio::Roomcast;
//!
//! let (handle, _events) = Roomcast::builder().start()?;
//! let app = Router::new().route("/ws", get(roomcast_tokio::axum::upgrade)).with_state(handle);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```

use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::response::Response;

use crate::Handle;

/// An axum handler that upgrades the request and serves the socket with `handle`. Frame limits
/// and buffer sizes come from the handle's options.
pub async fn upgrade(State(handle): State<Handle>, ws: WebSocketUpgrade) -> Response {
    configure(ws, &handle)
        .on_upgrade(move |socket| async move { handle.serve_socket(socket).await })
}

/// Applies the handle's frame limits and buffer sizes to an upgrade, for apps that write their
/// own handler around [`Handle::serve_socket`].
pub fn configure(ws: WebSocketUpgrade, handle: &Handle) -> WebSocketUpgrade {
    let options = handle.options();
    let max = options.hub.max_frame_bytes;
    ws.read_buffer_size(options.read_buffer_bytes)
        .write_buffer_size(options.write_buffer_bytes)
        .max_write_buffer_size(options.max_write_buffer_bytes())
        .max_message_size(max)
        .max_frame_size(max)
}

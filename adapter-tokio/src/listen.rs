//! Accepting WebSocket connections on a TCP listener with tokio-tungstenite.

use std::time::Duration;

use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::{Handle, Options};

/// How long to wait after a failed accept (e.g. no file descriptor left) before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// How long a client may take to complete the WebSocket handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The tungstenite configuration for `options`: frame limits enforced by the transport, and small
/// buffers so that an idle connection holds little memory.
pub fn websocket_config(options: &Options) -> WebSocketConfig {
    let max = options.hub.max_frame_bytes;
    WebSocketConfig::default()
        .read_buffer_size(options.read_buffer_bytes)
        .write_buffer_size(options.write_buffer_bytes)
        .max_write_buffer_size(options.max_write_buffer_bytes())
        .max_message_size(Some(max))
        .max_frame_size(Some(max))
}

/// Accepts connections on `listener` and serves each as a WebSocket, until `handle` shuts down.
/// Every path is accepted; a request that is not a WebSocket upgrade is refused by the handshake.
pub async fn serve(listener: TcpListener, handle: Handle) -> std::io::Result<()> {
    let config = websocket_config(handle.options());
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, or a connection reset before accept: keep serving.
                tracing::warn!(error = %e, "accept failed; retrying");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        if handle.is_stopped() {
            return Ok(());
        }
        let _ = stream.set_nodelay(true);
        let handle = handle.clone();
        tokio::spawn(async move {
            let accepted = tokio::time::timeout(
                HANDSHAKE_TIMEOUT,
                tokio_tungstenite::accept_async_with_config(stream, Some(config)),
            )
            .await;
            match accepted {
                Ok(Ok(socket)) => handle.serve_socket(socket).await,
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "handshake failed"),
                Err(_) => tracing::debug!(%peer, "handshake timed out"),
            }
        });
    }
}

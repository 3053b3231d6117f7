//! Settings of the driver around the core's [`HubConfig`], and the one place that turns them into
//! the WebSocket transport's limits.

use std::time::Duration;

use roomcast_core::HubConfig;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Everything a [`Roomcast`](crate::Roomcast) instance runs with.
#[derive(Clone, Debug)]
pub struct Options {
    /// The core's limits and timeouts. Its `server_id` defaults to a fresh UUID v4 and its
    /// `hash_seed` to a random value when left at the core's defaults.
    pub hub: HubConfig,
    /// Frames queued for one socket before it counts as a slow consumer and is closed with 4005.
    pub queue_frames: usize,
    /// Frames a socket writer sends per flush at most (one syscall for the whole batch).
    pub batch_frames: usize,
    /// Commands queued for the hub task; readers wait (TCP backpressure) when it is full.
    pub command_queue: usize,
    /// Unread events in the [`Events`](crate::Events) stream past which a client's message is
    /// refused: its connection is closed with 4009 (lifecycle events are never refused).
    pub event_queue: usize,
    /// A connection's events waiting for the application's handlers past which it is closed
    /// with 4009: the client sends faster than the application answers. Default 256; raised to
    /// the rate limit's burst + 1 when lower, so that a burst the rate limit allows never closes
    /// a client, and a client over its rate is closed with 4008, not 4009.
    pub max_pending_events: usize,
    /// How long a socket may take to flush its last frames and the close frame.
    pub close_timeout: Duration,
    /// tungstenite read buffer per socket, bytes. Small: most frames are small, and the buffer
    /// grows for a large one.
    pub read_buffer_bytes: usize,
    /// tungstenite write buffer per socket, bytes: writes are flushed once it holds this much.
    pub write_buffer_bytes: usize,
    /// How long a client may take to send its HTTP request headers (the upgrade request
    /// included); a connection that has not sent them by then is dropped.
    pub header_timeout: Duration,
    /// The most the request line and headers of an HTTP request may hold, in bytes: larger ones
    /// are answered `431 Request Header Fields Too Large` and the connection is closed (on
    /// roomcast's own listener, [`serve`](crate::serve) and `serve_app` (feature `axum`)).
    /// Default: 16 KiB, as Node's HTTP server.
    pub max_header_bytes: usize,
    /// The most that every socket's write buffer may hold together, in bytes: the memory that
    /// clients who stop reading can cost the server. Past it, the connections furthest behind
    /// (the most bytes unwritten) are closed with 4005 first (what they held is dropped), until
    /// the total is back under nine tenths of it. Each socket also has its own limit
    /// ([`max_write_buffer_bytes`](Self::max_write_buffer_bytes)). Default: 256 MiB.
    pub max_queued_bytes: usize,
    /// permessage-deflate (RFC 7692), negotiated with each client that offers it, on
    /// roomcast's own listener ([`serve`](crate::serve), `serve_app` (feature `axum`)). A
    /// message is compressed once for every recipient that negotiated it (the server keeps no
    /// context between messages). Default: `false`.
    pub compression: bool,
    /// Messages shorter than this many bytes go out uncompressed, even to clients that
    /// negotiated compression: compressing them costs more than it saves. Default: 256.
    pub compression_threshold: usize,
    /// For conformance testing only (the `autobahn-echo` binary): every text and binary message
    /// is sent back to its sender as it came, through the same framing and writes as every
    /// frame, instead of being handed to the hub's protocol. Default: `false`.
    pub echo: bool,
    /// The `Origin`s a browser may open a connection from: exact origins
    /// (`https://app.example.com`), origins with a wildcard subdomain
    /// (`https://*.example.com`), or `*`. A request from any other origin is refused with 403
    /// at the upgrade; a request without `Origin` (not a browser) is let in. Default: `None`,
    /// any origin.
    pub allowed_origins: Option<Vec<String>>,
    /// Open connections past which an upgrade is refused with 503. Default: `None`, no limit
    /// (the process's file descriptors are the limit).
    pub max_connections: Option<usize>,
    /// Threads a round's socket writes may be split over, the hub task's own included. Nearly
    /// all of a fan-out's time is the kernel's send path, one `send` per socket per round, so a
    /// room of thousands takes that many sends whatever the batching; with more than one, a
    /// round of at least 512 sockets is written in parts on that many threads at once (each part
    /// 256 sockets at least). Set it to the cores the server may use. Default: 1 (every write on
    /// the hub task's thread).
    pub write_threads: usize,
}

impl Options {
    /// Whether a browser page from `origin` may connect (see
    /// [`allowed_origins`](Self::allowed_origins)).
    pub fn origin_allowed(&self, origin: &str) -> bool {
        let Some(allowed) = &self.allowed_origins else { return true };
        allowed.iter().any(|pattern| origin_matches(pattern, origin))
    }

    /// The most a socket's write buffer may hold while the peer is slow: 64 flushes' worth, and
    /// at least two of the largest frames.
    pub fn max_write_buffer_bytes(&self) -> usize {
        self.write_buffer_bytes.saturating_mul(64).max(self.hub.max_frame_bytes.saturating_mul(2))
    }
}

/// The limits and buffer sizes of a socket served through a WebSocket implementation (tungstenite,
/// or axum's upgrade): the frame limit is enforced by the transport, and the buffers are small so
/// that an idle connection holds little memory.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Transport {
    pub(crate) read_buffer: usize,
    pub(crate) write_buffer: usize,
    pub(crate) max_write_buffer: usize,
    /// The largest frame, and the largest message.
    pub(crate) max_message: usize,
}

impl Options {
    pub(crate) fn transport(&self) -> Transport {
        Transport {
            read_buffer: self.read_buffer_bytes,
            write_buffer: self.write_buffer_bytes,
            max_write_buffer: self.max_write_buffer_bytes(),
            max_message: self.hub.max_frame_bytes,
        }
    }
}

/// The tungstenite configuration for `options`, for sockets served through tungstenite
/// ([`Handle::serve_socket`](crate::Handle::serve_socket)): frame limits enforced by the
/// transport, and small buffers so that an idle connection holds little memory.
pub fn websocket_config(options: &Options) -> WebSocketConfig {
    let t = options.transport();
    WebSocketConfig::default()
        .read_buffer_size(t.read_buffer)
        .write_buffer_size(t.write_buffer)
        .max_write_buffer_size(t.max_write_buffer)
        .max_message_size(Some(t.max_message))
        .max_frame_size(Some(t.max_message))
}

impl Default for Options {
    fn default() -> Self {
        Self {
            hub: HubConfig::default(),
            queue_frames: 1024,
            batch_frames: 64,
            command_queue: 16 * 1024,
            event_queue: 16 * 1024,
            max_pending_events: 256,
            close_timeout: Duration::from_secs(5),
            read_buffer_bytes: 4 * 1024,
            write_buffer_bytes: 16 * 1024,
            header_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            max_queued_bytes: 256 * 1024 * 1024,
            compression: false,
            compression_threshold: 256,
            echo: false,
            allowed_origins: None,
            max_connections: None,
            write_threads: 1,
        }
    }
}

/// Whether `origin` matches `pattern`: equal (ignoring ASCII case), `*`, or
/// `scheme://*.domain` for any subdomain of `domain` (not `domain` itself).
fn origin_matches(pattern: &str, origin: &str) -> bool {
    if pattern == "*" || pattern.eq_ignore_ascii_case(origin) {
        return true;
    }
    let Some((scheme, domain)) = pattern.split_once("://*.") else { return false };
    let Some(host) = origin
        .get(..scheme.len() + 3)
        .filter(|prefix| prefix.eq_ignore_ascii_case(&format!("{scheme}://")))
        .and_then(|_| origin.get(scheme.len() + 3..))
    else {
        return false;
    };
    let suffix = format!(".{domain}");
    host.len() > suffix.len()
        && host.get(host.len() - suffix.len()..).is_some_and(|s| s.eq_ignore_ascii_case(&suffix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_match_exactly_by_wildcard_subdomain_or_star_and_nothing_else() {
        let options = Options {
            allowed_origins: Some(vec![
                "https://app.example.com".into(),
                "https://*.example.org".into(),
            ]),
            ..Options::default()
        };
        assert!(options.origin_allowed("https://app.example.com"));
        assert!(options.origin_allowed("HTTPS://APP.EXAMPLE.COM"));
        assert!(options.origin_allowed("https://a.example.org"));
        assert!(options.origin_allowed("https://a.b.example.org"));
        assert!(!options.origin_allowed("https://example.org"), "the wildcard needs a subdomain");
        assert!(!options.origin_allowed("http://a.example.org"), "the scheme counts");
        assert!(!options.origin_allowed("https://evilexample.org"));
        assert!(!options.origin_allowed("https://app.example.com.evil.net"));
        assert!(!options.origin_allowed("null"));
        assert!(Options::default().origin_allowed("https://anything"));
        let star = Options { allowed_origins: Some(vec!["*".into()]), ..Options::default() };
        assert!(star.origin_allowed("https://anything"));
    }
}

//! Settings of the driver around the core's [`HubConfig`].

use std::time::Duration;

use roomcast_core::HubConfig;

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
    /// Application events queued before new ones are dropped (and counted).
    pub event_queue: usize,
    /// How long a socket may take to flush its last frames and the close frame.
    pub close_timeout: Duration,
    /// tungstenite read buffer per socket, bytes. Small: most frames are small, and the buffer
    /// grows for a large one.
    pub read_buffer_bytes: usize,
    /// tungstenite write buffer per socket, bytes: writes are flushed once it holds this much.
    pub write_buffer_bytes: usize,
}

impl Options {
    /// The most a socket's write buffer may hold while the peer is slow: 64 flushes' worth, and
    /// at least two of the largest frames.
    pub fn max_write_buffer_bytes(&self) -> usize {
        self.write_buffer_bytes.saturating_mul(64).max(self.hub.max_frame_bytes.saturating_mul(2))
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            hub: HubConfig::default(),
            queue_frames: 1024,
            batch_frames: 64,
            command_queue: 16 * 1024,
            event_queue: 16 * 1024,
            close_timeout: Duration::from_secs(5),
            read_buffer_bytes: 4 * 1024,
            write_buffer_bytes: 16 * 1024,
        }
    }
}

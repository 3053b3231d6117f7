//! One budget for the bytes that every fast-path socket holds unwritten, together: what lets a
//! server stay within its memory when thousands of clients stop reading at once.
//!
//! Each socket's limit (`queue_frames`, `Options::max_write_buffer_bytes`) bounds what one slow
//! client costs; this bounds what all of them cost. Each write buffer counts its capacity here as
//! it grows and shrinks; past the limit, the hub task closes the connections furthest behind
//! (the most bytes unwritten) with 4005 first, dropping what they held, until the total is back
//! under nine tenths of it.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The bytes held by every fast-path socket's write buffer, and their limit.
#[derive(Debug)]
pub(crate) struct Budget {
    held: AtomicUsize,
    limit: usize,
}

impl Budget {
    pub(crate) fn new(limit: usize) -> Self {
        Self { held: AtomicUsize::new(0), limit }
    }

    /// Bytes held now.
    pub(crate) fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// Moves what one buffer holds from `before` to `after` bytes.
    pub(crate) fn change(&self, before: usize, after: usize) {
        if after > before {
            self.held.fetch_add(after - before, Ordering::Relaxed);
        } else if before > after {
            self.held.fetch_sub(before - after, Ordering::Relaxed);
        }
    }

    /// The most they may hold.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// Where shedding stops: nine tenths of the limit, so that the next few frames do not
    /// start it again at once.
    pub(crate) fn target(&self) -> usize {
        self.limit / 10 * 9
    }
}

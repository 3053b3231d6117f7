//! The bytes a fast-path socket has yet to write: whole frames, counted, so that the socket's
//! limits hold in frames as in bytes. The frames of the hub's current round are not here: the hub
//! keeps them (ranges of its batch buffer) and hands them over when it writes the socket.

use std::ops::Range;

use crate::driver::round::Round;
use crate::transport::buffer_pool::BufferPool;
use crate::transport::codec;

/// Past this many bytes already written, the buffer's unwritten tail moves to its front.
const COMPACT_AFTER: usize = 64 * 1024;

/// How much a socket may hold unwritten before it counts as a slow consumer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) frames: usize,
    pub(crate) bytes: usize,
}

/// How much of a round fits within a socket's limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fit {
    pub(crate) frames: usize,
    pub(crate) bytes: usize,
}

/// A socket's outbound bytes and its state, shared by the hub task and the socket's task.
#[derive(Debug, Default)]
pub(crate) struct WriteBuffer {
    /// Frames not yet wholly written, from `sent` on, owned by this socket.
    pub(crate) buf: Vec<u8>,
    pub(crate) sent: usize,
    /// Where the first frame not yet wholly written ends.
    pub(crate) next_end: usize,
    /// How many frames are not yet wholly written.
    pub(crate) frames: usize,
    /// The last write found the kernel's buffer full: the socket's task waits until it drains.
    pub(crate) blocked: bool,
    /// A close frame is queued: nothing more is appended.
    pub(crate) closing: bool,
    /// Writing failed or the socket's task ended: nothing more is written.
    pub(crate) broken: bool,
    /// The capacity of `buf` as last counted in the server's [`Budget`](crate::transport::budget::Budget).
    pub(crate) counted: usize,
}

impl WriteBuffer {
    pub(crate) fn pending(&self) -> usize {
        self.buf.len() - self.sent
    }

    /// Whether `frames` more frames of `bytes` in all fit within `limits` behind what is
    /// unwritten.
    pub(crate) fn fits(&self, frames: usize, bytes: usize, limits: Limits) -> bool {
        self.frames + frames <= limits.frames && self.pending() + bytes <= limits.bytes
    }

    /// How much of the hub's `round` (whole frames of its `batch`) fits within `limits` behind
    /// what is unwritten: the frames and bytes of its longest prefix that does.
    pub(crate) fn fitting(&self, batch: &[u8], round: &Round, limits: Limits) -> Fit {
        let (frames, bytes) = round.size();
        let (frames, bytes) = (frames as usize, bytes as usize);
        if self.fits(frames, bytes, limits) {
            return Fit { frames, bytes };
        }
        let mut fit = Fit { frames: 0, bytes: 0 };
        for run in round.runs() {
            let mut at = run.start;
            while at < run.end {
                let len = codec::frame_len(&batch[at..run.end]).unwrap_or(run.end - at);
                if !self.fits(fit.frames + 1, fit.bytes + len, limits) {
                    return fit;
                }
                fit.frames += 1;
                fit.bytes += len;
                at += len;
            }
        }
        fit
    }

    /// Takes the first `take` bytes of `runs` (whole frames of the hub's batch, already counted
    /// in `frames`), of which the first `written` bytes are out: what is not, is kept in `buf`
    /// behind what it holds.
    pub(crate) fn keep(
        &mut self,
        batch: &[u8],
        runs: &[Range<usize>],
        (take, written): (usize, usize),
        pool: &mut BufferPool,
    ) {
        let (mut left, mut skip) = (take, written);
        for run in runs {
            if left == 0 {
                break;
            }
            let run = run.start..run.start + run.len().min(left);
            left -= run.len();
            let out = skip.min(run.len());
            skip -= out;
            self.absorb(&batch[run], out, pool);
        }
    }

    /// Takes a run of whole frames (already counted in `frames`) of which `written` bytes are
    /// out: counts the frames that completed, and keeps the rest in `buf`, after what it holds.
    pub(crate) fn absorb(&mut self, run: &[u8], written: usize, pool: &mut BufferPool) {
        let mut at = 0;
        while at < run.len() {
            let len = codec::frame_len(&run[at..]).unwrap_or(run.len() - at);
            if at + len > written {
                break;
            }
            at += len;
            self.frames = self.frames.saturating_sub(1);
        }
        let rest = &run[written.min(run.len())..];
        if rest.is_empty() {
            return;
        }
        if self.pending() == 0 {
            if self.buf.capacity() == 0 {
                self.buf = pool.take();
            }
            self.buf.clear();
            self.sent = 0;
            let first = codec::frame_len(&run[at..]).unwrap_or(run.len() - at);
            self.next_end = at + first - written;
        }
        self.buf.extend_from_slice(rest);
    }

    pub(crate) fn append(&mut self, head: &[u8], payload: &[u8]) {
        if self.buf.is_empty() {
            self.buf.reserve((head.len() + payload.len()).max(256));
            self.next_end = head.len() + payload.len();
        }
        self.buf.extend_from_slice(head);
        self.buf.extend_from_slice(payload);
        self.frames += 1;
    }

    /// Frees the buffer once everything is written (off the hub task, which pools them).
    pub(crate) fn release_if_drained(&mut self) {
        if self.pending() == 0 {
            self.buf = Vec::new();
        }
    }

    /// Counts the frames that `sent` has passed.
    pub(crate) fn advance(&mut self, written: usize) {
        self.sent += written;
        while self.frames > 0 && self.next_end <= self.sent {
            self.frames -= 1;
            self.next_end += codec::frame_len(&self.buf[self.next_end..]).unwrap_or(0);
        }
        if self.sent == self.buf.len() {
            // Everything is out. The hub takes the empty buffer back into its pool; an idle
            // socket holds none.
            self.buf.clear();
            self.sent = 0;
            self.next_end = 0;
            self.frames = 0;
        } else if self.sent >= COMPACT_AFTER && self.sent * 2 >= self.buf.len() {
            self.buf.drain(..self.sent);
            self.next_end -= self.sent;
            self.sent = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::codec::Head;

    fn append_text(out: &mut WriteBuffer, payload: &[u8]) {
        out.append(Head::text(payload.len()).as_bytes(), payload);
    }

    #[test]
    fn partial_writes_count_the_frames_they_complete_and_a_drained_buffer_is_released() {
        let mut out = WriteBuffer::default();
        append_text(&mut out, b"first");
        append_text(&mut out, &[b'x'; 300]);
        append_text(&mut out, b"third");
        assert_eq!(out.frames, 3);
        out.advance(3); // inside the first frame (2 + 5 bytes)
        assert_eq!(out.frames, 3);
        out.advance(4); // the first frame's last byte
        assert_eq!(out.frames, 2);
        out.advance(4 + 300); // the second frame, with its 4-byte header
        assert_eq!(out.frames, 1);
        out.advance(out.pending());
        assert_eq!((out.frames, out.pending()), (0, 0));
        let mut pool = BufferPool::default();
        pool.put(std::mem::take(&mut out.buf));
        assert_eq!(out.buf.capacity(), 0, "an idle socket holds no buffer");
        assert!(pool.take().capacity() >= 300, "the next batch reuses it");
        assert_eq!(pool.held(), 0);
    }

    #[test]
    fn a_long_unwritten_tail_moves_to_the_front() {
        let mut out = WriteBuffer::default();
        for _ in 0..3 {
            append_text(&mut out, &[b'x'; 40_000]);
        }
        out.advance(2 * (40_000 + 4));
        assert_eq!((out.sent, out.frames, out.pending()), (0, 1, 40_004), "compacted");
        assert_eq!(codec::frame_len(&out.buf), Some(40_004));
        assert_eq!(out.next_end, 40_004);
    }
}

//! One socket that roomcast drives itself, the fast path after an HTTP upgrade on a plain TCP
//! stream, as uWebSockets does it: its write side, shared by the hub task and the socket's own
//! task ([`link_task`](crate::transport::link_task)).
//!
//! The hub task writes each server frame once into its batch buffer and notes, per socket, where
//! the socket's frames of the round are (no per-recipient channel, message, copy or lock). At the
//! end of the round it hands each socket its frames once: frames that follow each other in the
//! batch (a fan-out's) are written straight from it, scattered ones (many small rooms) are
//! gathered into one warm buffer and written with one plain `write`. What the kernel's send
//! buffer cannot take is kept in the socket's [`WriteBuffer`], and the socket's own task takes
//! over and waits for it to drain. So a round costs one `write` per socket that got frames, and
//! no task wake-up at all.

use std::future::Future;
use std::io;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;

use socket2::SockRef;
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Sleep;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Control, OpCode};

use crate::driver::round::Round;
use crate::transport::budget::Budget;
use crate::transport::buffer_pool::BufferPool;
use crate::transport::codec::{self, Decoded, Decoder, Head};
use crate::transport::deflate::Agreed;
use crate::transport::write_buffer::Limits;
use crate::transport::write_buffer::WriteBuffer;

/// How much one read takes from the socket, into a buffer on the stack.
const READ_CHUNK: usize = 16 * 1024;

/// An empty ping frame: its two header bytes.
const PING_FRAME_BYTES: usize = 2;

/// A socket shared by the hub task (which appends and writes) and the socket's task (which reads,
/// and writes when the socket was full).
#[derive(Debug)]
pub(crate) struct Link {
    pub(crate) stream: TcpStream,
    out: Mutex<WriteBuffer>,
    /// Wakes the socket's task: the socket became full, closing began, or writing failed.
    wake: Notify,
    /// What every socket's buffer holds, together.
    budget: Arc<Budget>,
    /// permessage-deflate, if the client and the server agreed on it at the upgrade.
    pub(crate) deflate: Option<Agreed>,
}

/// The write side, locked; what its buffer holds is counted in the budget when it is let go,
/// whatever changed it.
struct Locked<'a> {
    out: MutexGuard<'a, WriteBuffer>,
    budget: &'a Budget,
}

impl Deref for Locked<'_> {
    type Target = WriteBuffer;

    fn deref(&self) -> &WriteBuffer {
        &self.out
    }
}

impl DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut WriteBuffer {
        &mut self.out
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        let now = self.out.buf.capacity();
        if now != self.out.counted {
            self.budget.change(self.out.counted, now);
            self.out.counted = now;
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        let out = self.out.get_mut().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.budget.change(out.counted, 0);
    }
}

impl Link {
    pub(crate) fn new(stream: TcpStream, budget: Arc<Budget>, deflate: Option<Agreed>) -> Self {
        let out = Mutex::new(WriteBuffer::default());
        Self { stream, out, wake: Notify::new(), budget, deflate }
    }

    fn lock(&self) -> Locked<'_> {
        // Nothing panics while holding this lock; recover the state if something ever did.
        let out = self.out.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        Locked { out, budget: &self.budget }
    }

    /// How far behind it is: the bytes it has not written yet, unless it is closing already.
    /// (Not its buffer's capacity: a reader a frame behind may hold a large pooled buffer, and
    /// it is not the one to close.)
    pub(crate) fn sheddable(&self) -> Option<usize> {
        let out = self.lock();
        (!out.closing && !out.broken).then(|| out.pending())
    }

    /// The server is over its budget and this socket is among the furthest behind: what it has
    /// not begun to write is dropped and its memory freed. Only the rest of a frame it has begun
    /// to write is kept (in a buffer of its size), so that the close frame that follows is still
    /// framed right. Its connection is closed next.
    pub(crate) fn shed(&self) {
        let mut out = self.lock();
        let begun = out.sent > 0 && out.next_end > out.sent && out.next_end <= out.buf.len();
        let rest = if begun { out.buf[out.sent..out.next_end].to_vec() } else { Vec::new() };
        out.frames = usize::from(begun);
        out.next_end = rest.len();
        out.sent = 0;
        out.buf = rest;
    }

    /// Appends the close frame behind what is queued and tells the socket's task; `true` when
    /// the socket must be written. (The hub writes its round's frames first, with
    /// [`flush`](Self::flush); when the socket's task closes, on a protocol violation, the
    /// frames of the hub's round are dropped at its next write.)
    pub(crate) fn push_close(&self, code: u16, reason: &str) -> bool {
        let mut out = self.lock();
        if out.closing || out.broken {
            return false;
        }
        let mut frame = Vec::new();
        codec::put_close(&mut frame, code, reason);
        out.append(&frame, &[]);
        out.closing = true;
        drop(out);
        self.wake.notify_one();
        true
    }

    /// Whether a ping (one more frame, [`PING_FRAME_BYTES`]) fits within `limits` behind what
    /// the socket holds and the `round` (frames, bytes) the hub has for it.
    pub(crate) fn has_room(&self, limits: Limits, round: (u32, u32)) -> bool {
        let out = self.lock();
        let (frames, bytes) = (round.0 as usize, round.1 as usize);
        !out.closing && !out.broken && out.fits(frames + 1, bytes + PING_FRAME_BYTES, limits)
    }

    /// Writes the hub's frames of this `round` (whole frames of its `batch`) behind what the
    /// socket holds, as many as fit within `limits`; `false` if some did not (a slow consumer:
    /// the rest are dropped). One run of frames (a fan-out's) with nothing waiting before it goes
    /// out straight from the batch, and only what the socket cannot take is copied; scattered
    /// frames (many small rooms) are gathered into the socket's buffer, a pooled one that is
    /// warm from the socket written just before, and go out with one plain write.
    pub(crate) fn flush(
        &self,
        batch: &[u8],
        round: &Round,
        limits: Limits,
        pool: &mut BufferPool,
    ) -> bool {
        let mut out = self.lock();
        if out.broken {
            return true;
        }
        let mut fits = true;
        // A socket whose task closed it (a protocol violation) after these frames were queued
        // sends nothing behind its close frame.
        if !out.closing && round.size().0 > 0 {
            let fit = out.fitting(batch, round, limits);
            fits = fit.frames == round.size().0 as usize;
            out.frames += fit.frames;
            let written = match round.runs() {
                [run] if !out.blocked && out.pending() == 0 => {
                    self.write_straight(&mut out, &batch[run.start..run.start + fit.bytes])
                }
                _ => 0,
            };
            if out.broken {
                return fits;
            }
            out.keep(batch, round.runs(), (fit.bytes, written), pool);
        }
        if out.blocked {
            return fits;
        }
        self.write_out(&mut out);
        if out.pending() == 0 {
            pool.put(std::mem::take(&mut out.buf));
        }
        fits
    }

    /// Writes `bytes` straight from the batch buffer, as much as the socket takes; returns how
    /// much went out. A full socket is handed to its task, as in `write_out`.
    fn write_straight(&self, out: &mut Locked<'_>, bytes: &[u8]) -> usize {
        let mut written = 0;
        while written < bytes.len() {
            match self.send_some(&bytes[written..]) {
                Sent::Some(n) => written += n,
                stalled => {
                    self.stalled(out, stalled);
                    break;
                }
            }
        }
        written
    }

    /// Writes until the buffer is empty or the socket is full. On a full socket, the socket's
    /// task is told to wait for it to drain.
    fn write_out(&self, out: &mut Locked<'_>) {
        while out.pending() > 0 {
            match self.send_some(&out.buf[out.sent..]) {
                Sent::Some(n) => out.advance(n),
                stalled => return self.stalled(out, stalled),
            }
        }
        out.blocked = false;
    }

    /// One non-blocking write.
    fn send_some(&self, bytes: &[u8]) -> Sent {
        match self.stream.try_write(bytes) {
            Ok(0) => Sent::Failed,
            Ok(n) => Sent::Some(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Sent::Full,
            Err(_) => Sent::Failed,
        }
    }

    /// A write made no progress: a full socket is left to its task, which waits for it to
    /// drain; a failed one is broken, and its task ends.
    fn stalled(&self, out: &mut Locked<'_>, sent: Sent) {
        match sent {
            Sent::Full if out.blocked => return,
            Sent::Full => out.blocked = true,
            Sent::Failed | Sent::Some(_) => out.broken = true,
        }
        self.wake.notify_one();
    }

    /// Appends a frame from the socket's task (a pong, or the close answering the peer's) and
    /// writes it at once, unless the socket is full.
    pub(crate) fn send_now(&self, opcode: OpCode, payload: &[u8]) {
        let mut out = self.lock();
        if out.closing || out.broken {
            return;
        }
        let close = opcode == OpCode::Control(Control::Close);
        out.append(Head::new(opcode, payload.len()).as_bytes(), payload);
        out.closing |= close;
        drop(out);
        self.write_now();
    }

    /// The socket that was full can take bytes again: writes what is queued, from the socket's
    /// task.
    pub(crate) fn write_drained(&self) {
        let mut out = self.lock();
        self.write_out(&mut out);
        out.release_if_drained();
    }

    /// Writes what is queued from the socket's task, unless the socket is full.
    fn write_now(&self) {
        let mut out = self.lock();
        if !out.blocked && !out.broken {
            self.write_out(&mut out);
            out.release_if_drained();
        }
    }

    /// The write side's state, for the socket's task.
    pub(crate) fn status(&self) -> Status {
        let out = self.lock();
        Status {
            blocked: out.blocked,
            closing: out.closing,
            broken: out.broken,
            idle: out.pending() == 0,
        }
    }

    /// Waits for the next thing the socket's task acts on. Readiness is polled through the
    /// stream's own waker slots (only this task polls them), so waiting costs no waiter node.
    pub(crate) fn next_event<'a>(
        &'a self,
        blocked: bool,
        deadline: Option<&'a mut Pin<Box<Sleep>>>,
    ) -> impl Future<Output = Wake> + Send + 'a {
        // Not an async fn, which would hold its arguments twice in every connection's task.
        let mut deadline = deadline;
        async move {
            let woken = self.wake.notified();
            let mut woken = std::pin::pin!(woken);
            std::future::poll_fn(|cx| {
                if woken.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Wake::Woken);
                }
                if blocked {
                    match self.stream.poll_write_ready(cx) {
                        Poll::Ready(Ok(())) => return Poll::Ready(Wake::Writable),
                        Poll::Ready(Err(_)) => return Poll::Ready(Wake::Failed),
                        Poll::Pending => {}
                    }
                }
                match self.stream.poll_read_ready(cx) {
                    Poll::Ready(Ok(())) => return Poll::Ready(Wake::Readable),
                    Poll::Ready(Err(_)) => return Poll::Ready(Wake::Failed),
                    Poll::Pending => {}
                }
                let due = deadline.as_mut().is_some_and(|sleep| sleep.as_mut().poll(cx).is_ready());
                if due { Poll::Ready(Wake::Deadline) } else { Poll::Pending }
            })
            .await
        }
    }

    /// The socket's task is ending: nothing more is written, and the buffer is freed.
    pub(crate) fn end(&self) {
        let mut out = self.lock();
        out.broken = true;
        out.buf = Vec::new();
    }

    /// One read into a buffer on the stack; decodes it unless `decode` is off (then the bytes
    /// are dropped: the connection is closing and its stream may not be decodable any more).
    ///
    /// A read that does not fill the buffer has drained the socket, so it clears the stream's
    /// read readiness itself: without that, the task would come back for a second read only to
    /// be told `EAGAIN` (one wasted system call and one wake per message, for a client that
    /// sends one frame at a time). This is race-free: tokio clears only the readiness it saw
    /// before the read, and bytes that arrive after it raise a new edge, hence new readiness.
    pub(crate) fn read(
        &self,
        decoder: &mut Decoder,
        decoded: &mut Vec<Decoded>,
        decode: bool,
    ) -> Read {
        let mut buf = [0u8; READ_CHUNK];
        let mut filled = 0;
        let result = self.stream.try_io(Interest::READABLE, || {
            filled = io::Read::read(&mut &*SockRef::from(&self.stream), &mut buf)?;
            if filled > 0 && filled < buf.len() {
                return Err(io::ErrorKind::WouldBlock.into()); // drained: clear the readiness
            }
            Ok(filled)
        });
        match result {
            Ok(0) => return Read::Eof,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Read::Failed(e),
        }
        if decode && filled > 0 {
            // A violation ends `decoded`, after the frames before it.
            let _ = decoder.feed(&buf[..filled], decoded);
        }
        Read::Some
    }
}

/// What the socket's task needs to know of the write side.
#[derive(Debug)]
pub(crate) struct Status {
    pub(crate) blocked: bool,
    pub(crate) closing: bool,
    pub(crate) broken: bool,
    /// Nothing is left to write.
    pub(crate) idle: bool,
}

/// What one non-blocking write did.
#[derive(Debug)]
enum Sent {
    Some(usize),
    /// The kernel's send buffer is full.
    Full,
    /// The connection is gone.
    Failed,
}

/// What the socket's task wakes up for.
#[derive(Debug)]
pub(crate) enum Wake {
    /// The hub or the other side of this link has news (closing, a full socket, a failure).
    Woken,
    Writable,
    Readable,
    /// The socket's readiness could not be polled.
    Failed,
    /// The close handshake took too long.
    Deadline,
}

/// What one read did.
#[derive(Debug)]
pub(crate) enum Read {
    Some,
    Eof,
    Failed(io::Error),
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests;

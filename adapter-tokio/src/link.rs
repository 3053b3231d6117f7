//! One socket that roomcast drives itself, the fast path after an HTTP upgrade on a plain TCP
//! stream, as uWebSockets does it.
//!
//! The hub task appends each server frame to the socket's byte buffer (no per-recipient
//! channel, message or reference count), and once per batch of commands it writes every buffer
//! that changed straight into its socket. Only when the kernel's send buffer is full does the
//! socket's own task take over, waiting for the socket to drain. So a fan-out costs one copy and
//! one `write` per socket per batch, and no task wake-up at all.
//!
//! The socket's task reads: it waits for readability, reads into a buffer on its stack and
//! decodes frames (see [`codec`](crate::codec)), so an idle connection holds no read buffer.

use std::future::Future;
use std::io;
use std::net::Shutdown;
use std::ops::Range;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard};
use std::task::Poll;

use bytes::Bytes;
use roomcast_core::ConnId;
use socket2::SockRef;
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc};
use tokio::time::Sleep;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Control, OpCode};

use crate::codec::{self, Decoded, Decoder, Head, Violation};
use crate::driver::Command;
use crate::options::Options;

/// How much one read takes from the socket, into a buffer on the stack.
const READ_CHUNK: usize = 16 * 1024;

/// Past this many bytes already written, the buffer's unwritten tail moves to its front.
const COMPACT_AFTER: usize = 64 * 1024;

/// A socket's outbound bytes and its state, shared by the hub task and the socket's task.
#[derive(Debug, Default)]
struct Out {
    /// Frames of this batch that nothing has been written of yet: a contiguous run of whole
    /// frames in the hub's batch buffer, shared with every socket they go to. Only used while
    /// `buf` is empty; written with no copy, and copied into `buf` only if the socket is full.
    shared: Option<Range<usize>>,
    /// Frames not yet wholly written, from `sent` on, owned by this socket.
    buf: Vec<u8>,
    sent: usize,
    /// Where the first frame not yet wholly written ends.
    next_end: usize,
    /// How many frames are not yet wholly written.
    frames: usize,
    /// The last write found the kernel's buffer full: the socket's task waits until it drains.
    blocked: bool,
    /// On the hub's list of sockets to write at the end of the batch.
    dirty: bool,
    /// A close frame is queued: nothing more is appended.
    closing: bool,
    /// Writing failed or the socket's task ended: nothing more is written.
    broken: bool,
}

impl Out {
    fn pending(&self) -> usize {
        self.buf.len() - self.sent
    }

    fn shared_len(&self) -> usize {
        self.shared.as_ref().map_or(0, |run| run.len())
    }

    /// Takes a run of whole frames (already counted in `frames`) of which `written` bytes are
    /// out: counts the frames that completed, and keeps the rest in `buf`, after what it holds.
    fn absorb(&mut self, run: &[u8], written: usize, pool: &mut Buffers) {
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

    fn append(&mut self, head: &[u8], payload: &[u8]) {
        if self.buf.is_empty() {
            self.buf.reserve((head.len() + payload.len()).max(256));
            self.next_end = head.len() + payload.len();
        }
        self.buf.extend_from_slice(head);
        self.buf.extend_from_slice(payload);
        self.frames += 1;
    }

    /// Frees the buffer once everything is written (off the hub task, which pools them).
    fn release_if_drained(&mut self) {
        if self.pending() == 0 {
            self.buf = Vec::new();
        }
    }

    /// Counts the frames that `sent` has passed.
    fn advance(&mut self, written: usize) {
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

/// Empty write buffers kept by the hub task between batches, so that a busy socket does not
/// allocate (and fault in) a fresh buffer for every batch. Bounded in bytes; a buffer that grew
/// past [`Buffers::MAX_KEPT`] is freed instead.
#[derive(Debug, Default)]
pub(crate) struct Buffers {
    free: Vec<Vec<u8>>,
    bytes: usize,
}

impl Buffers {
    /// The largest buffer worth keeping.
    const MAX_KEPT: usize = 64 * 1024;
    /// The most the pool holds in all.
    const BUDGET: usize = 16 * 1024 * 1024;

    fn take(&mut self) -> Vec<u8> {
        let buf = self.free.pop().unwrap_or_default();
        self.bytes -= buf.capacity();
        buf
    }

    fn put(&mut self, mut buf: Vec<u8>) {
        let capacity = buf.capacity();
        if capacity == 0 || capacity > Self::MAX_KEPT || self.bytes + capacity > Self::BUDGET {
            return;
        }
        buf.clear();
        self.bytes += capacity;
        self.free.push(buf);
    }
}

/// What became of a frame the hub appended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Push {
    /// Queued; `first` when this socket was not yet on the list to write.
    Queued { first: bool },
    /// The socket holds its limit of unwritten frames or bytes: it is a slow consumer.
    Full,
    /// The socket is closing or gone.
    Gone,
}

/// How much a socket may hold unwritten before it counts as a slow consumer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) frames: usize,
    pub(crate) bytes: usize,
}

/// A socket shared by the hub task (which appends and writes) and the socket's task (which reads,
/// and writes when the socket was full).
#[derive(Debug)]
pub(crate) struct Link {
    stream: TcpStream,
    out: Mutex<Out>,
    /// Wakes the socket's task: the socket became full, closing began, or writing failed.
    wake: Notify,
}

impl Link {
    pub(crate) fn new(stream: TcpStream) -> Self {
        Self { stream, out: Mutex::new(Out::default()), wake: Notify::new() }
    }

    fn lock(&self) -> MutexGuard<'_, Out> {
        // Nothing panics while holding this lock; recover the state if something ever did.
        self.out.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues the whole frame `batch[frame]` for the hub, within `limits`. A socket with
    /// nothing unwritten only notes where the frame is; one that is behind gets a copy.
    pub(crate) fn push(
        &self,
        batch: &[u8],
        frame: Range<usize>,
        limits: Limits,
        pool: &mut Buffers,
    ) -> Push {
        let mut out = self.lock();
        if out.closing || out.broken {
            return Push::Gone;
        }
        let queued = out.pending() + out.shared_len();
        if out.frames >= limits.frames || queued + frame.len() > limits.bytes {
            return Push::Full;
        }
        out.frames += 1;
        let behind = out.pending() > 0 || out.blocked;
        match out.shared.take() {
            None if !behind => out.shared = Some(frame),
            Some(run) if !behind && run.end == frame.start => {
                out.shared = Some(run.start..frame.end)
            }
            run => {
                // Not contiguous with the run, or the socket is behind: copy, in order.
                if let Some(run) = run {
                    out.absorb(&batch[run], 0, pool);
                }
                out.absorb(&batch[frame], 0, pool);
            }
        }
        Push::Queued { first: !std::mem::replace(&mut out.dirty, true) }
    }

    /// Appends the close frame and tells the socket's task; `true` when the socket must be
    /// written. From the hub (with its batch buffer), the close goes behind every queued frame;
    /// from the socket's task, which closes on a protocol violation, frames of the batch that
    /// were not written yet are dropped.
    pub(crate) fn push_close(
        &self,
        code: u16,
        reason: &str,
        hub: Option<(&[u8], &mut Buffers)>,
    ) -> bool {
        let mut out = self.lock();
        if out.closing || out.broken {
            return false;
        }
        if let (Some(run), Some((batch, pool))) = (out.shared.take(), hub) {
            out.absorb(&batch[run], 0, pool);
        }
        let mut frame = Vec::new();
        codec::put_close(&mut frame, code, reason);
        out.append(&frame, &[]);
        out.closing = true;
        drop(out);
        self.wake.notify_one();
        true
    }

    /// Writes what is queued, for the hub at the end of a batch.
    pub(crate) fn flush(&self, batch: &[u8], pool: &mut Buffers) {
        let mut out = self.lock();
        out.dirty = false;
        if out.broken {
            out.shared = None;
            return;
        }
        if let Some(run) = out.shared.take() {
            if out.closing {
                // The socket's task closed (a protocol violation) after these frames were
                // queued: nothing goes out behind a close frame.
            } else if out.blocked || out.pending() > 0 {
                out.absorb(&batch[run], 0, pool);
            } else {
                let written = self.write_run(&mut out, &batch[run.clone()]);
                out.absorb(&batch[run], written, pool);
            }
        }
        if out.blocked {
            return;
        }
        self.write_out(&mut out);
        if out.pending() == 0 {
            pool.put(std::mem::take(&mut out.buf));
        }
    }

    /// Writes a shared run straight from the batch buffer; returns how much went out. A full
    /// socket is handed to its task, as in `write_out`.
    fn write_run(&self, out: &mut Out, run: &[u8]) -> usize {
        let mut written = 0;
        while written < run.len() {
            match self.send_some(&run[written..]) {
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
    fn write_out(&self, out: &mut Out) {
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
    fn stalled(&self, out: &mut Out, sent: Sent) {
        match sent {
            Sent::Full if out.blocked => return,
            Sent::Full => out.blocked = true,
            Sent::Failed | Sent::Some(_) => out.broken = true,
        }
        self.wake.notify_one();
    }

    /// Appends a frame from the socket's task (a pong, or the close answering the peer's) and
    /// writes it at once, unless the socket is full.
    fn send_now(&self, opcode: OpCode, payload: &[u8]) {
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

    /// Writes what is queued from the socket's task, unless the socket is full.
    fn write_now(&self) {
        let mut out = self.lock();
        if !out.blocked && !out.broken {
            self.write_out(&mut out);
            out.release_if_drained();
        }
    }

    fn state(&self) -> State {
        let out = self.lock();
        State {
            blocked: out.blocked,
            closing: out.closing,
            broken: out.broken,
            idle: out.pending() == 0,
        }
    }

    /// Waits for the next thing the socket's task acts on. Readiness is polled through the
    /// stream's own waker slots (only this task polls them), so waiting costs no waiter node.
    async fn next_event(&self, blocked: bool, deadline: Option<&mut Pin<Box<Sleep>>>) -> Event {
        let woken = self.wake.notified();
        let mut woken = std::pin::pin!(woken);
        let mut deadline = deadline;
        std::future::poll_fn(|cx| {
            if woken.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Event::Woken);
            }
            if blocked {
                match self.stream.poll_write_ready(cx) {
                    Poll::Ready(Ok(())) => return Poll::Ready(Event::Writable),
                    Poll::Ready(Err(_)) => return Poll::Ready(Event::Failed),
                    Poll::Pending => {}
                }
            }
            match self.stream.poll_read_ready(cx) {
                Poll::Ready(Ok(())) => return Poll::Ready(Event::Readable),
                Poll::Ready(Err(_)) => return Poll::Ready(Event::Failed),
                Poll::Pending => {}
            }
            let due = deadline.as_mut().is_some_and(|sleep| sleep.as_mut().poll(cx).is_ready());
            if due { Poll::Ready(Event::Deadline) } else { Poll::Pending }
        })
        .await
    }

    /// The socket's task is ending: nothing more is written.
    fn retire(&self) {
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
    fn read(&self, decoder: &mut Decoder, decoded: &mut Vec<Decoded>, decode: bool) -> Read {
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
            if let Err(violation) = decoder.feed(&buf[..filled], decoded) {
                return Read::Violation(violation);
            }
        }
        Read::Some
    }
}

#[derive(Debug)]
struct State {
    blocked: bool,
    closing: bool,
    broken: bool,
    /// Nothing is left to write.
    idle: bool,
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
enum Event {
    /// The hub or the other side of this link has news (closing, a full socket, a failure).
    Woken,
    Writable,
    Readable,
    /// The socket's readiness could not be polled.
    Failed,
    /// The close handshake took too long.
    Deadline,
}

#[derive(Debug)]
enum Read {
    Some,
    Eof,
    Failed(io::Error),
    Violation(Violation),
}

/// Where the socket's task is in the connection's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    /// Frames go to the hub.
    Open,
    /// The close handshake is under way: frames are decoded only to see the peer's close.
    Closing,
    /// The stream cannot be decoded any more: bytes are read and dropped until the peer leaves.
    Draining,
}

/// Runs the socket's task until the connection is over. `leftover` holds bytes the client sent
/// right behind its upgrade request.
pub(crate) async fn run(
    link: std::sync::Arc<Link>,
    conn: ConnId,
    leftover: Bytes,
    commands: mpsc::Sender<Command>,
    options: &Options,
) {
    let mut task = Task {
        link,
        conn,
        commands,
        decoder: Decoder::new(options.hub.max_frame_bytes),
        phase: Phase::Open,
        hub_told: false,
        peer_closed: false,
    };
    let mut decoded = Vec::new();
    // The leftover may be a slice of the HTTP server's read buffer: let that go now, not with
    // the connection.
    let early = task.decoder.feed(&leftover, &mut decoded);
    drop(leftover);
    if let Err(violation) = early {
        if let Some(command) = task.violation(violation) {
            send(&task.commands, command).await;
        }
    }
    // Boxed, and only once closing begins: most connections never need it, and every byte of
    // this task's state is held by every connection for its whole life.
    let mut deadline: Option<Pin<Box<Sleep>>> = None;
    let mut shut = false;
    loop {
        for item in std::mem::take(&mut decoded) {
            // Waits while the hub's queue is full: backpressure reaches the client through TCP.
            if let Some(command) = task.act(item) {
                send(&task.commands, command).await;
            }
        }
        let state = task.link.state();
        if state.broken {
            break;
        }
        if state.closing || task.phase == Phase::Draining {
            // After an oversized frame the hub closes; and the peer may never answer.
            deadline.get_or_insert_with(|| Box::pin(tokio::time::sleep(options.close_timeout)));
        }
        if state.closing {
            task.phase = task.phase.max(Phase::Closing);
            if state.idle && !shut {
                // Our close frame is out: the peer answers with its own, then leaves.
                let _ = SockRef::from(&task.link.stream).shutdown(Shutdown::Write);
                shut = true;
            }
            if shut && task.peer_closed {
                break;
            }
        }
        match task.link.next_event(state.blocked, deadline.as_mut()).await {
            Event::Woken => {}
            Event::Writable => {
                let mut out = task.link.lock();
                task.link.write_out(&mut out);
                out.release_if_drained();
            }
            Event::Readable => {
                let decode = task.phase != Phase::Draining;
                match task.link.read(&mut task.decoder, &mut decoded, decode) {
                    Read::Some => {}
                    Read::Eof => break,
                    Read::Failed(e) => {
                        tracing::debug!(conn = %task.conn, error = %e, "socket read ended");
                        break;
                    }
                    Read::Violation(violation) => {
                        if let Some(command) = task.violation(violation) {
                            send(&task.commands, command).await;
                        }
                    }
                }
            }
            Event::Failed => break,
            Event::Deadline => {
                tracing::debug!(conn = %task.conn, "close handshake timed out");
                break;
            }
        }
    }
    task.link.retire();
    if let Some(command) = task.for_hub(Command::Disconnect(task.conn)) {
        send(&task.commands, command).await;
    }
}

/// The socket task's state between reads.
struct Task {
    link: std::sync::Arc<Link>,
    conn: ConnId,
    commands: mpsc::Sender<Command>,
    decoder: Decoder,
    phase: Phase,
    /// The hub was told the connection is gone.
    hub_told: bool,
    /// The peer's close frame arrived.
    peer_closed: bool,
}

impl Task {
    /// Acts on a decoded frame; returns what the hub is to be told.
    fn act(&mut self, item: Decoded) -> Option<Command> {
        let command = match item {
            Decoded::Ping(payload) => {
                self.link.send_now(OpCode::Control(Control::Pong), &payload);
                Command::Alive(self.conn)
            }
            Decoded::Pong => Command::Alive(self.conn),
            Decoded::Close(code) => {
                self.peer_closed = true;
                // Answer with the peer's code (RFC 6455, 5.5.1), unless our close went first.
                let payload = code.map(u16::to_be_bytes);
                self.link.send_now(
                    OpCode::Control(Control::Close),
                    payload.as_ref().map_or(&[][..], |p| &p[..]),
                );
                self.phase = self.phase.max(Phase::Closing);
                Command::Disconnect(self.conn)
            }
            _ if self.phase != Phase::Open => return None,
            Decoded::Text(frame) => Command::Frame { conn: self.conn, frame },
            Decoded::Binary => Command::Binary(self.conn),
        };
        self.for_hub(command)
    }

    /// The client broke the protocol: the hub decides the close of an oversized frame (1009);
    /// anything else is closed here, with 1002 or 1007.
    /// Returns what the hub is to be told.
    fn violation(&mut self, violation: Violation) -> Option<Command> {
        tracing::debug!(conn = %self.conn, %violation, "client frame refused");
        self.phase = Phase::Draining;
        if violation == Violation::TooBig {
            return self.for_hub(Command::Oversized(self.conn));
        }
        if self.link.push_close(violation.close_code(), &violation.to_string(), None) {
            self.link.write_now();
        }
        self.for_hub(Command::Disconnect(self.conn))
    }

    /// `command`, unless the hub was already told the connection is gone.
    fn for_hub(&mut self, command: Command) -> Option<Command> {
        if self.hub_told {
            return None;
        }
        self.hub_told = matches!(command, Command::Disconnect(_));
        Some(command)
    }
}

/// Sends a command to the hub task. The wait for room in its queue is boxed: it is rare, and
/// an inline send future would make every connection's task (idle ones included) larger by its
/// whole size.
pub(crate) async fn send(commands: &mpsc::Sender<Command>, command: Command) -> bool {
    match commands.try_send(command) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(command)) => {
            Box::pin(commands.send(command)).await.is_ok()
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn append_text(out: &mut Out, payload: &[u8]) {
        out.append(Head::text(payload.len()).as_bytes(), payload);
    }

    #[test]
    fn partial_writes_count_the_frames_they_complete_and_a_drained_buffer_is_released() {
        let mut out = Out::default();
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
        let mut pool = Buffers::default();
        pool.put(std::mem::take(&mut out.buf));
        assert_eq!(out.buf.capacity(), 0, "an idle socket holds no buffer");
        assert!(pool.take().capacity() >= 300, "the next batch reuses it");
        assert_eq!(pool.bytes, 0);
    }

    #[test]
    fn the_pool_keeps_neither_oversized_buffers_nor_more_than_its_budget() {
        let mut pool = Buffers::default();
        pool.put(Vec::with_capacity(Buffers::MAX_KEPT + 1));
        assert!(pool.free.is_empty());
        for _ in 0..Buffers::BUDGET / Buffers::MAX_KEPT + 10 {
            pool.put(Vec::with_capacity(Buffers::MAX_KEPT));
        }
        assert!(pool.bytes <= Buffers::BUDGET);
    }

    #[test]
    fn a_long_unwritten_tail_moves_to_the_front() {
        let mut out = Out::default();
        for _ in 0..3 {
            append_text(&mut out, &[b'x'; 40_000]);
        }
        out.advance(2 * (40_000 + 4));
        assert_eq!((out.sent, out.frames, out.pending()), (0, 1, 40_004), "compacted");
        assert_eq!(codec::frame_len(&out.buf), Some(40_004));
        assert_eq!(out.next_end, 40_004);
    }
}

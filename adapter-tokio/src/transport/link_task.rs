//! The task of one fast-path socket: it reads and decodes the client's frames and hands them to
//! the hub task, answers pings, waits for a full socket to drain, and carries the close handshake
//! to its end.

use std::future::Future;
use std::net::Shutdown;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use roomcast_core::ConnId;
use socket2::SockRef;
use tokio::sync::mpsc;
use tokio::time::Sleep;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Control, OpCode};

use roomcast_core::Violation;

use crate::driver::{Submitted, ToHub, submit};
use crate::options::Options;
use crate::transport::codec::{Decoded, Decoder};
use crate::transport::link::{Link, Read, Status, Wake};
use crate::transport::tracker::Tracker;

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

/// The socket's task until the connection is over. The state it keeps for the connection's
/// whole life is built here, before the future, so that the future holds each piece once (an
/// async fn keeps its arguments for as long as it runs, beside whatever they were moved into):
/// every connection holds this future. `leftover` holds bytes the client sent right behind its
/// upgrade request; `connecting` is what became of the connection's `Connect` command, submitted
/// once the socket was counted in `tracker` (which the task leaves when it ends).
pub(crate) fn serve(
    link: Arc<Link>,
    conn: ConnId,
    leftover: Bytes,
    connecting: Submitted,
    tracker: Arc<Tracker>,
    commands: mpsc::Sender<ToHub>,
    options: &Options,
) -> impl Future<Output = ()> + Send + 'static {
    let mut task = Task::new(link, conn, commands, options);
    let mut decoded = Vec::new();
    task.take_leftover(leftover, &mut decoded);
    async move {
        // The caller counted the socket in `tracker` before submitting its `Connect`.
        if !connecting.accepted().await {
            tracker.leave();
            return;
        }
        loop {
            // Waits while the hub's queue is full: backpressure reaches the client through TCP.
            for item in std::mem::take(&mut decoded) {
                if let Some(command) = task.act(item) {
                    submit(&task.commands, command).accepted().await;
                }
            }
            let status = task.link.status();
            if task.is_over(&status) {
                break;
            }
            match task.link.next_event(status.blocked, task.deadline.as_mut()).await {
                Wake::Woken => {}
                Wake::Writable => task.link.write_drained(),
                Wake::Readable => {
                    if !task.read(&mut decoded) {
                        break;
                    }
                }
                Wake::Failed => break,
                Wake::Deadline => {
                    tracing::debug!(conn = %task.conn, "close handshake timed out");
                    break;
                }
            }
        }
        task.link.end();
        if let Some(command) = task.for_hub(ToHub::Disconnect(task.conn)) {
            submit(&task.commands, command).accepted().await;
        }
        tracker.leave();
    }
}

/// The socket task's state between reads.
struct Task {
    link: Arc<Link>,
    conn: ConnId,
    commands: mpsc::Sender<ToHub>,
    decoder: Decoder,
    phase: Phase,
    /// The hub was told the connection is gone.
    hub_told: bool,
    /// The peer's close frame arrived.
    peer_closed: bool,
    close_timeout: Duration,
    /// When the close handshake gives up. Boxed, and only once closing begins: most connections
    /// never need it, and every byte of this task's state is held by every connection for its
    /// whole life.
    deadline: Option<Pin<Box<Sleep>>>,
    /// Our side of the TCP stream is shut (our close frame is out).
    shut: bool,
    /// Conformance testing: messages are echoed, not handed to the hub's protocol.
    echo: bool,
}

impl Task {
    fn new(
        link: Arc<Link>,
        conn: ConnId,
        commands: mpsc::Sender<ToHub>,
        options: &Options,
    ) -> Self {
        let mut decoder = Decoder::new(options.hub.max_frame_bytes);
        if let Some(agreed) = link.deflate {
            decoder.inflate(agreed);
        }
        Self {
            link,
            conn,
            commands,
            decoder,
            phase: Phase::Open,
            hub_told: false,
            peer_closed: false,
            close_timeout: options.close_timeout,
            deadline: None,
            shut: false,
            echo: options.echo,
        }
    }

    /// Decodes the bytes that came behind the upgrade request (a violation among them ends
    /// `decoded`). The leftover may be a slice of the HTTP server's read buffer: it is let go
    /// now, not with the connection.
    fn take_leftover(&mut self, leftover: Bytes, decoded: &mut Vec<Decoded>) {
        let _ = self.decoder.feed(&leftover, decoded);
        drop(leftover);
    }

    /// Moves the close handshake on; `true` when the connection is over: writing failed, or
    /// both close frames have been exchanged and our side is shut.
    fn is_over(&mut self, status: &Status) -> bool {
        if status.broken {
            return true;
        }
        if status.closing || self.phase == Phase::Draining {
            // After a violation the hub closes; and the peer may never answer.
            let timeout = self.close_timeout;
            self.deadline.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        }
        if !status.closing {
            return false;
        }
        self.phase = self.phase.max(Phase::Closing);
        if status.idle && !self.shut {
            // Our close frame is out: the peer answers with its own, then leaves.
            let _ = SockRef::from(&self.link.stream).shutdown(Shutdown::Write);
            self.shut = true;
        }
        self.shut && self.peer_closed
    }

    /// One read into `decoded` (a violation ends it); `false` when the stream ended.
    fn read(&mut self, decoded: &mut Vec<Decoded>) -> bool {
        let decode = self.phase != Phase::Draining;
        match self.link.read(&mut self.decoder, decoded, decode) {
            Read::Some => true,
            Read::Eof => false,
            Read::Failed(e) => {
                tracing::debug!(conn = %self.conn, error = %e, "socket read ended");
                false
            }
        }
    }

    /// Acts on a decoded frame; returns what the hub is to be told.
    fn act(&mut self, item: Decoded) -> Option<ToHub> {
        let command = match item {
            Decoded::Ping(payload) => {
                self.link.send_now(OpCode::Control(Control::Pong), &payload);
                ToHub::Alive(self.conn)
            }
            Decoded::Pong => ToHub::Alive(self.conn),
            // After the frames decoded before it, which reached the hub first.
            Decoded::Violation(violation) => return self.violation(violation),
            Decoded::Close(code) => {
                self.peer_closed = true;
                // Answer with the peer's code (RFC 6455, 5.5.1), unless our close went first.
                let payload = code.map(u16::to_be_bytes);
                self.link.send_now(
                    OpCode::Control(Control::Close),
                    payload.as_ref().map_or(&[][..], |p| &p[..]),
                );
                self.phase = self.phase.max(Phase::Closing);
                ToHub::Disconnect(self.conn)
            }
            _ if self.phase != Phase::Open => return None,
            Decoded::Text(payload) if self.echo => ToHub::EchoText { conn: self.conn, payload },
            Decoded::Binary(payload) if self.echo => ToHub::EchoBinary { conn: self.conn, payload },
            Decoded::Text(frame) => ToHub::Frame { conn: self.conn, frame },
            Decoded::Binary(_) => {
                ToHub::Violation { conn: self.conn, violation: Violation::Binary }
            }
        };
        self.for_hub(command)
    }

    /// The client broke the protocol: the stream cannot be decoded any further, so the task
    /// only drains it from now on, and the hub decides the close.
    /// Returns what the hub is to be told.
    fn violation(&mut self, violation: Violation) -> Option<ToHub> {
        tracing::debug!(conn = %self.conn, %violation, "client frame refused");
        self.phase = Phase::Draining;
        self.for_hub(ToHub::Violation { conn: self.conn, violation })
    }

    /// `command`, unless the hub was already told the connection is gone.
    fn for_hub(&mut self, command: ToHub) -> Option<ToHub> {
        if self.hub_told {
            return None;
        }
        self.hub_told = matches!(command, ToHub::Disconnect(_));
        Some(command)
    }
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpStream;

    use crate::transport::budget::Budget;

    use super::*;

    /// Every connection holds this task's future for its whole life: keep it small. Grow the
    /// bound only on purpose (box the rare state instead).
    #[tokio::test]
    async fn the_socket_tasks_future_stays_small() {
        let listener =
            tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let stream = TcpStream::connect(addr).await.unwrap_or_else(|e| panic!("{e}"));
        let (commands, _inbox) = mpsc::channel(1);
        let options = Options::default();
        let link = Arc::new(Link::new(stream, Arc::new(Budget::new(usize::MAX)), None));
        let tracker = Arc::new(Tracker::default());
        let connecting = submit(&commands, ToHub::Disconnect(ConnId::from_u128(1)));
        let conn = ConnId::from_u128(1);
        let task = serve(link, conn, Bytes::new(), connecting, tracker, commands, &options);
        let size = size_of_val(&task);
        eprintln!("socket task future: {size} bytes");
        assert!(size <= 384, "the socket task's future is {size} bytes");
    }
}

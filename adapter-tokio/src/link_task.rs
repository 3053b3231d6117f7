//! The task of one fast-path socket: it reads and decodes the client's frames and hands them to
//! the hub task, answers pings, waits for a full socket to drain, and carries the close handshake
//! to its end.

use std::net::Shutdown;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use roomcast_core::ConnId;
use socket2::SockRef;
use tokio::sync::mpsc;
use tokio::time::Sleep;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Control, OpCode};

use roomcast_core::Violation;

use crate::codec::{Decoded, Decoder};
use crate::driver::{Command, submit};
use crate::link::{Link, Read, Wake};
use crate::options::Options;

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
pub(crate) async fn serve(
    link: Arc<Link>,
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
            submit(&task.commands, command).await;
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
                submit(&task.commands, command).await;
            }
        }
        let state = task.link.status();
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
            Wake::Woken => {}
            Wake::Writable => {
                let mut out = task.link.lock();
                task.link.write_out(&mut out);
                out.release_if_drained();
            }
            Wake::Readable => {
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
                            submit(&task.commands, command).await;
                        }
                    }
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
    if let Some(command) = task.for_hub(Command::Disconnect(task.conn)) {
        submit(&task.commands, command).await;
    }
}

/// The socket task's state between reads.
struct Task {
    link: Arc<Link>,
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
            Decoded::Binary => Command::Violation { conn: self.conn, violation: Violation::Binary },
        };
        self.for_hub(command)
    }

    /// The client broke the protocol: the stream cannot be decoded any further, so the task
    /// only drains it from now on, and the hub decides the close.
    fn violation(&mut self, violation: Violation) -> Option<Command> {
        tracing::debug!(conn = %self.conn, %violation, "client frame refused");
        self.phase = Phase::Draining;
        self.for_hub(Command::Violation { conn: self.conn, violation })
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

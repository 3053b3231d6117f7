//! What crosses into the hub task: the [`ToHub`]s sockets, the bus and the application send
//! it, a connection's [`Arrival`], the hub's side of a socket ([`Outbox`]), and [`submit`].

use super::*;

/// How a connection arrived: the request that opened it (kept when the application has hooks or
/// handlers), and how its `on_connect` hook let it in.
#[derive(Debug, Default)]
pub(crate) struct Arrival {
    pub(crate) request: Option<Arc<UpgradeRequest>>,
    pub(crate) admit: Admit,
}

/// What the hub task is asked to do.
pub(crate) enum ToHub {
    /// A socket opened; frames for it go into `outbox`.
    Connect { conn: ConnId, outbox: Outbox, arrival: Option<Box<Arrival>> },
    /// A text frame.
    Frame { conn: ConnId, frame: Bytes },
    /// Conformance testing (`Options::echo`): send this text message back to its sender.
    EchoText { conn: ConnId, payload: Bytes },
    /// Conformance testing (`Options::echo`): send this binary message back to its sender.
    EchoBinary { conn: ConnId, payload: Bytes },
    /// The client broke the protocol; the hub decides the close.
    Violation { conn: ConnId, violation: Violation },
    /// A ping or pong from the peer.
    Alive(ConnId),
    /// The socket is gone.
    Disconnect(ConnId),
    /// An envelope from the bus.
    Bus { channel: String, payload: Bytes },
    /// The bus may have lost envelopes (it reconnected).
    BusGap,
    /// Another instance holds a lease for this long from now.
    PeerLease { server_id: String, remaining: Duration },
    /// An application call, run against the driver's state.
    Call(Box<dyn FnOnce(&mut Driver) + Send>),
    /// Close everyone with 1001, then report when every socket has flushed and closed.
    Shutdown(oneshot::Sender<()>),
}

impl std::fmt::Debug for ToHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Connect { conn, .. } => write!(f, "Connect({conn})"),
            Self::Frame { conn, frame } => write!(f, "Frame({conn}, {} bytes)", frame.len()),
            Self::Violation { conn, violation } => write!(f, "Violation({conn}, {violation})"),
            Self::EchoText { conn, payload } | Self::EchoBinary { conn, payload } => {
                write!(f, "Echo({conn}, {} bytes)", payload.len())
            }
            Self::Alive(conn) => write!(f, "Alive({conn})"),
            Self::Disconnect(conn) => write!(f, "Disconnect({conn})"),
            Self::Bus { channel, .. } => write!(f, "Bus({channel})"),
            Self::BusGap => f.write_str("BusGap"),
            Self::PeerLease { server_id, .. } => write!(f, "PeerLease({server_id})"),
            Self::Call(_) => f.write_str("Call"),
            Self::Shutdown(_) => f.write_str("Shutdown"),
        }
    }
}

/// The hub's side of one socket.
#[derive(Debug)]
pub(crate) enum Outbox {
    /// A socket the driver frames and writes itself (the fast path), and its frames of this
    /// round: where they are in the batch buffer.
    Link { link: Arc<Link>, round: Round },
    /// A socket of another WebSocket implementation: a bounded frame queue to its writer task,
    /// and the close signal.
    Queue { frames: crate::transport::queue::Sender, close: oneshot::Sender<(u16, String)> },
}

impl Outbox {
    /// A fast-path socket, with nothing queued.
    pub(crate) fn link(link: Arc<Link>) -> Self {
        Self::Link { link, round: Round::default() }
    }
}

/// Sends a command to the hub task, at once if its queue has room. The wait for room is boxed:
/// it is rare, and an inline send future would make every connection's task (idle ones
/// included) larger by its whole size.
pub(crate) fn submit(commands: &mpsc::Sender<ToHub>, command: ToHub) -> Submitted {
    match commands.try_send(command) {
        Ok(()) => Submitted::Sent,
        Err(mpsc::error::TrySendError::Full(command)) => {
            let commands = commands.clone();
            Submitted::Waiting(Box::pin(async move { commands.send(command).await.is_ok() }))
        }
        Err(mpsc::error::TrySendError::Closed(_)) => Submitted::Stopped,
    }
}

/// What became of a command handed to [`submit`].
pub(crate) enum Submitted {
    /// The hub task has it.
    Sent,
    /// Its queue was full: the command goes in once there is room.
    Waiting(Pin<Box<dyn Future<Output = bool> + Send>>),
    /// The hub task has stopped.
    Stopped,
}

impl Submitted {
    /// Whether the hub task took the command (waiting for room in its queue if need be). Not an
    /// async fn, which would hold `self` twice in every connection's task.
    #[allow(clippy::manual_async_fn)]
    pub(crate) fn accepted(self) -> impl Future<Output = bool> + Send {
        async move {
            match self {
                Self::Sent => true,
                Self::Waiting(send) => send.await,
                Self::Stopped => false,
            }
        }
    }
}

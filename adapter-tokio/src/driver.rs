//! The hub task: the one owner of the [`Hub`]. It applies commands from sockets, the bus and the
//! application, carries out the hub's outputs, and sleeps until the next deadline.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use foldhash::fast::RandomState;
use std::time::Instant;

use bytes::Bytes;
use roomcast_core::wire::ErrorCode;
use roomcast_core::{ConnId, Event, Hub, Output, RequestId, Violation};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Sleep;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Control, Data, OpCode};

use crate::admit::Admit;
use crate::auth::{AuthDenied, AuthRequest, Authenticator};
use crate::budget::Budget;
use crate::buffer_pool::BufferPool;
use crate::bus::Bus;
use crate::codec::{put_compressed, put_frame};
use crate::deflate::Deflate;
use crate::events::{EventSender, ToApp};
use crate::link::Link;
use crate::metrics::Metrics;
use crate::queue::{Item, PushError};
use crate::request::UpgradeRequest;
use crate::round::{Round, Spare};
use crate::tracker::Tracker;
use crate::write_buffer::Limits;
use crate::writers::{self, Job};

/// How a connection arrived: the request that opened it (kept when the application has hooks or
/// handlers), and how its `on_connect` hook let it in.
#[derive(Debug, Default)]
pub(crate) struct Arrival {
    pub(crate) request: Option<Arc<UpgradeRequest>>,
    pub(crate) admit: Admit,
}

/// What the hub task is asked to do.
pub(crate) enum Command {
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

impl std::fmt::Debug for Command {
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
    Queue { frames: crate::queue::Sender, close: oneshot::Sender<(u16, String)> },
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
pub(crate) fn submit(commands: &mpsc::Sender<Command>, command: Command) -> Submitted {
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

/// How many waiting commands the hub task applies before it writes to the sockets: when it is
/// busy, each socket gets one write for many frames.
const COMMAND_BATCH: usize = 128;

/// How many commands a round applies at most before it writes. High enough never to be what
/// limits a round under load: a round of 2,000 sockets' writes lasts ~25 ms, in which 160,000
/// messages a second bring 4,000 commands, and a cap below what arrives per round leaves a
/// backlog that only grows (10,000 rooms at 140,000 msg/s: p99 61-411 ms with 4,096, 62-97 ms
/// with this). A socket's limits and [`ROUND_BYTES`] still end a round early.
const ROUND_COMMANDS: usize = 16 * 1024;

/// A round ends once a socket has this many bytes queued in it: about what a loopback socket
/// takes in one write, so that a reader keeping up never holds much of a round in its buffer.
const ROUND_BYTES: u32 = 256 * 1024;

/// A round ends once its batch buffer holds this much: the frames of a round are held there
/// until its end (a socket's own buffer gets only what its kernel buffer did not take), and a
/// round of many big messages to different sockets would otherwise hold up to
/// [`ROUND_COMMANDS`] of them. The size up to which the buffer is kept for the next round.
const ROUND_BATCH_BYTES: usize = MAX_BATCH_KEPT;

/// How long a shutdown waits for the bus to withdraw this instance (its lease in Redis).
const WITHDRAW_TIMEOUT: Duration = Duration::from_secs(2);

/// A batch buffer grown past this is freed after its batch rather than kept.
const MAX_BATCH_KEPT: usize = 4 * 1024 * 1024;

/// How long the hub task is idle before it gives back what it kept for busy rounds (the batch
/// buffer, pooled write buffers, spare lists, the room its maps grew to; see
/// [`Driver::shrink_to_fit`]). Long enough that a steady load never pays for it, short enough
/// that memory comes back soon after a storm.
const SHRINK_AFTER: Duration = Duration::from_secs(1);

/// The hub task's state. Application calls run as closures against it.
pub(crate) struct Driver {
    pub(crate) hub: Hub,
    pub(crate) metrics: Metrics,
    outboxes: HashMap<ConnId, Outbox, RandomState>,
    /// Sockets with frames in this round.
    dirty: Vec<ConnId>,
    /// Empty lists of frames, for the sockets of the next rounds.
    spare_rounds: Spare,
    /// The most frames, and the most bytes, any socket got in this round.
    round_queued: (u32, u32),
    /// The frames of this batch, each written once and shared by every socket it goes to.
    batch: Vec<u8>,
    /// Sockets' own write buffers, once written.
    buffers: BufferPool,
    /// Threads a round's writes may be split over, the hub's own included.
    write_threads: usize,
    /// The write buffers of the other threads of a split round, one pool each.
    write_pools: Vec<BufferPool>,
    limits: Limits,
    bus: Box<dyn Bus>,
    events: EventSender,
    /// With the application's handlers: where its events go (the dispatcher's task).
    to_app: Option<mpsc::UnboundedSender<ToApp>>,
    auth: Option<Arc<dyn Authenticator>>,
    /// The upgrade requests of connections that have not authenticated yet, for an
    /// authenticator that asks for them (taken at the `authenticate`, dropped at the close).
    awaiting_auth: HashMap<ConnId, Arc<UpgradeRequest>, RandomState>,
    /// For authentication tasks to hand their decision back; weak, so that it never keeps the
    /// hub task alive on its own.
    commands: mpsc::WeakSender<Command>,
    tracker: Arc<Tracker>,
    /// What every fast-path socket holds unwritten, together, and its limit.
    budget: Arc<Budget>,
    /// The compressor of messages for clients that negotiated permessage-deflate (with
    /// `Options::compression`), and the size under which messages go out uncompressed.
    deflate: Option<Box<Deflate>>,
    compression_threshold: usize,
    /// The total past which the next shedding begins: the budget, or more while the sockets
    /// closed by the last one still hold their last bytes.
    shed_above: usize,
    slow: Vec<ConnId>,
    /// Callers waiting for a cluster query's result.
    pub(crate) queries:
        HashMap<roomcast_core::QueryId, oneshot::Sender<roomcast_core::QueryResult>>,
}

impl Driver {
    pub(crate) fn new(
        hub: Hub,
        bus: Box<dyn Bus>,
        events: EventSender,
        auth: Option<Arc<dyn Authenticator>>,
        commands: mpsc::WeakSender<Command>,
        tracker: Arc<Tracker>,
        limits: Limits,
    ) -> Self {
        Self {
            hub,
            metrics: Metrics::default(),
            outboxes: HashMap::default(),
            dirty: Vec::new(),
            spare_rounds: Spare::default(),
            round_queued: (0, 0),
            batch: Vec::new(),
            buffers: BufferPool::default(),
            write_threads: 1,
            write_pools: Vec::new(),
            limits,
            bus,
            events,
            to_app: None,
            auth,
            awaiting_auth: HashMap::default(),
            commands,
            tracker,
            budget: Arc::new(Budget::new(usize::MAX)),
            deflate: None,
            compression_threshold: usize::MAX,
            shed_above: usize::MAX,
            slow: Vec::new(),
            queries: HashMap::new(),
        }
    }

    /// Compresses messages over `threshold` bytes for clients that negotiated it.
    pub(crate) fn compression(&mut self, threshold: usize) {
        self.deflate = Some(Box::default());
        self.compression_threshold = threshold;
    }

    /// Splits rounds of many sockets' writes over up to `threads` threads, the hub's included.
    pub(crate) fn write_threads(&mut self, threads: usize) {
        self.write_threads = threads.max(1);
    }

    /// Counts every fast-path socket's buffer against `budget` (the links share it).
    pub(crate) fn budget(&mut self, budget: Arc<Budget>) {
        self.shed_above = budget.limit();
        self.budget = budget;
    }

    /// Hands application events to the dispatcher (the application's handlers) from now on.
    pub(crate) fn route_to(&mut self, to_app: mpsc::UnboundedSender<ToApp>) {
        self.to_app = Some(to_app);
    }

    /// Runs until every handle and socket is gone, or until a shutdown completes. Each turn
    /// takes a round of commands (or the deadline), carries out what the hub decided, writes
    /// every socket that got frames once, and sets the timer to the hub's next deadline.
    pub(crate) async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut timer = Timer::new(self.hub.poll_timeout());
        let mut idle = IdleTimer::default();
        let mut shutdown: Option<oneshot::Sender<()>> = None;
        loop {
            let started;
            let before = (self.metrics.socket_writes, self.hub.connection_count());
            tokio::select! {
                biased;
                command = commands.recv() => {
                    let Some(command) = command else { break };
                    started = Instant::now();
                    self.round(command, &mut commands, &mut shutdown).await;
                }
                () = timer.fired() => {
                    started = Instant::now();
                    self.hub.handle_timeout(started);
                }
                () = idle.fired() => {
                    self.shrink_to_fit();
                    continue;
                }
                () = self.tracker.idle(), if shutdown.is_some() => {
                    self.leave_cluster().await;
                    if let Some(done) = shutdown.take() {
                        let _ = done.send(());
                    }
                    break;
                }
            }
            self.carry_out();
            let writing = Instant::now();
            self.flush();
            if !self.slow.is_empty() {
                // Closed for the budget while writing: their closes go out now.
                self.carry_out();
                self.flush();
            }
            let done = Instant::now();
            self.metrics.rounds += 1;
            self.metrics.busy += done - started;
            self.metrics.writing += done - writing;
            timer.reset(self.hub.poll_timeout());
            if (self.metrics.socket_writes, self.hub.connection_count()) != before {
                idle.busy(done);
            }
        }
    }

    /// Gives back the memory kept for busy rounds: the batch buffer, the pooled write buffers,
    /// the spare lists of frames, and the room the hub's and the driver's maps grew to. Run when
    /// the task has been idle for [`SHRINK_AFTER`], so that a storm's or a burst's peak does not
    /// stay resident; the next busy round grows them again.
    fn shrink_to_fit(&mut self) {
        self.metrics.idle_shrinks += 1;
        self.hub.shrink_to_fit();
        self.batch = Vec::new();
        self.buffers = BufferPool::default();
        self.write_pools = Vec::new();
        self.spare_rounds = Spare::default();
        self.dirty = Vec::new();
        self.slow = Vec::new();
        self.outboxes.shrink_to_fit();
        self.awaiting_auth.shrink_to_fit();
        self.queries.shrink_to_fit();
    }

    /// Applies the commands of one round, whose frames are then written with one write per
    /// socket. A round takes what is waiting; if that gave any socket frames, it waits until
    /// tokio has polled the I/O driver (`yield_now`, which tokio defers to that poll) and then
    /// until the socket tasks that poll woke have run ([`behind_queued_tasks`]), and takes what
    /// they sent meanwhile too. That is an event loop's "read every ready socket, then write
    /// each once", and it keeps reads apace with writes: the busier the server, the more each
    /// write carries. A round ends at
    /// [`ROUND_COMMANDS`], once a socket has half its frame limit or [`ROUND_BYTES`] queued in it
    /// (so that a round never makes a reader that keeps up hold much, or look slow), or once the
    /// batch holds [`ROUND_BATCH_BYTES`].
    async fn round(
        &mut self,
        first: Command,
        commands: &mut mpsc::Receiver<Command>,
        shutdown: &mut Option<oneshot::Sender<()>>,
    ) {
        self.take_batch(first, commands, shutdown);
        if self.dirty.is_empty() {
            return;
        }
        tokio::task::yield_now().await;
        behind_queued_tasks().await;
        let most_frames = u32::try_from(self.limits.frames / 2).unwrap_or(u32::MAX);
        for _ in COMMAND_BATCH..ROUND_COMMANDS {
            if self.round_queued.0 >= most_frames
                || self.round_queued.1 >= ROUND_BYTES
                || self.batch.len() >= ROUND_BATCH_BYTES
            {
                break;
            }
            let Ok(command) = commands.try_recv() else { break };
            self.receive(command, shutdown);
        }
    }

    /// Applies `first` and up to [`COMMAND_BATCH`] - 1 more commands that are already waiting,
    /// carrying out the hub's outputs after each.
    fn take_batch(
        &mut self,
        first: Command,
        commands: &mut mpsc::Receiver<Command>,
        shutdown: &mut Option<oneshot::Sender<()>>,
    ) {
        self.receive(first, shutdown);
        for _ in 1..COMMAND_BATCH {
            let Ok(command) = commands.try_recv() else { break };
            self.receive(command, shutdown);
        }
    }

    fn receive(&mut self, command: Command, shutdown: &mut Option<oneshot::Sender<()>>) {
        if let Command::Shutdown(done) = command {
            self.hub.shut_down(Instant::now());
            *shutdown = Some(done);
        } else {
            self.apply(command);
        }
        self.carry_out();
    }

    /// Every socket is closed: let the other instances know this one is gone (the hub's goodbye
    /// on the bus, then the bus withdraws what it holds, such as the lease; in that order).
    async fn leave_cluster(&mut self) {
        self.hub.retire(Instant::now());
        self.carry_out();
        let _ = tokio::time::timeout(WITHDRAW_TIMEOUT, self.bus.withdraw()).await;
    }

    /// Writes every socket that has frames in this round, one write each. What a socket cannot
    /// take is copied into its buffer: the budget is checked after each. A socket that cannot
    /// hold them all within its limits is a slow consumer.
    fn flush(&mut self) {
        if self.budget.held() <= self.budget.limit() {
            self.shed_above = self.budget.limit();
        }
        let mut dirty = std::mem::take(&mut self.dirty);
        self.metrics.socket_writes += dirty.len() as u64;
        let parts = writers::parts(dirty.len(), self.write_threads);
        if parts > 1 {
            self.metrics.split_rounds += 1;
            let left = self.write_split(&dirty, parts);
            self.write_alone(left);
        } else {
            self.write_alone(dirty.drain(..));
        }
        dirty.clear();
        self.dirty = dirty;
        self.round_queued = (0, 0);
        self.batch.clear();
        if self.batch.capacity() > MAX_BATCH_KEPT {
            self.batch = Vec::new();
        }
    }

    /// Writes the sockets `conns` on this thread, one after the other, checking the budget
    /// after each.
    fn write_alone(&mut self, conns: impl IntoIterator<Item = ConnId>) {
        for conn in conns {
            // Gone meanwhile (closed, disconnected): its frames went with it.
            let Some(Outbox::Link { link, round }) = self.outboxes.get_mut(&conn) else {
                continue;
            };
            if !link.flush(&self.batch, round, self.limits, &mut self.buffers) {
                self.slow.push(conn);
            }
            round.clear(&mut self.spare_rounds);
            if self.budget.held() > self.shed_above {
                self.shed();
            }
        }
    }

    /// Writes the sockets `dirty` in `parts` parts on as many threads ([`writers`]); returns
    /// those left unwritten because the budget went over, for [`write_alone`](Self::write_alone).
    fn write_split(&mut self, dirty: &[ConnId], parts: usize) -> Vec<ConnId> {
        let jobs: Vec<Job<'_>> = dirty
            .iter()
            .filter_map(|&conn| match self.outboxes.get(&conn) {
                Some(Outbox::Link { link, round }) => Some(Job { conn, link, round }),
                // Gone meanwhile (closed, disconnected): its frames went with it.
                _ => None,
            })
            .collect();
        if self.write_pools.len() < parts - 1 {
            self.write_pools.resize_with(parts - 1, BufferPool::default);
        }
        let shared = writers::Shared {
            batch: &self.batch,
            limits: self.limits,
            budget: &self.budget,
            shed_above: self.shed_above,
        };
        let pools = &mut self.write_pools[..parts - 1];
        let written = writers::write_split(&jobs, shared, &mut self.buffers, pools);
        drop(jobs);
        for conn in &written.done {
            if let Some(Outbox::Link { round, .. }) = self.outboxes.get_mut(conn) {
                round.clear(&mut self.spare_rounds);
            }
        }
        self.slow.extend(written.slow);
        // Over the budget with every socket written: shed now, as after the last socket of a
        // round written alone.
        if written.left.is_empty() && self.budget.held() > self.shed_above {
            self.shed();
        }
        written.left
    }

    /// Feeds one command to the hub.
    fn apply(&mut self, command: Command) {
        let now = Instant::now();
        match command {
            Command::Connect { conn, outbox, arrival } => self.connect(conn, outbox, arrival),
            Command::Frame { conn, frame } => self.hub.handle_frame(conn, &frame, now),
            Command::EchoText { conn, payload } => self.echo(conn, false, payload),
            Command::EchoBinary { conn, payload } => self.echo(conn, true, payload),
            Command::Violation { conn, violation } => {
                self.hub.handle_violation(conn, violation, now);
            }
            Command::Alive(conn) => self.hub.handle_pong(conn, now),
            Command::Disconnect(conn) => {
                self.forget(conn);
                self.awaiting_auth.remove(&conn);
                self.hub.handle_disconnect(conn, now);
            }
            Command::Bus { channel, payload } => self.hub.handle_bus(&channel, &payload, now),
            Command::BusGap => self.hub.handle_bus_gap(now),
            Command::PeerLease { server_id, remaining } => {
                self.hub.handle_peer_lease(&server_id, now + remaining, now);
            }
            Command::Call(call) => call(self),
            Command::Shutdown(_) => {}
        }
    }

    /// A socket opened: the hub takes it, as its `on_connect` hook let it in (identified at
    /// once, joining rooms), and the dispatcher learns of its request before any of its events.
    fn connect(&mut self, conn: ConnId, outbox: Outbox, arrival: Option<Box<Arrival>>) {
        let now = Instant::now();
        self.metrics.connections_opened += 1;
        self.outboxes.insert(conn, outbox);
        let Arrival { request, admit } = arrival.map(|a| *a).unwrap_or_default();
        let refused = admit.close.is_some();
        let opened = match (admit.close, admit.identity) {
            (Some((code, reason)), _) => self.hub.handle_connect_refused(conn, code, reason, now),
            (None, Some(identity)) => self.hub.handle_connect_as(conn, identity, now),
            (None, None) => self.hub.handle_connect(conn, now),
        };
        if let Err(e) = opened {
            // A duplicate id, or an identity the hub refuses (checked at the upgrade already).
            tracing::warn!(%conn, error = %e, "connection refused by the hub");
            self.forget(conn);
            return;
        }
        if let Some(request) = &request
            && !refused
            && self.auth.as_ref().is_some_and(|auth| auth.wants_request())
        {
            self.awaiting_auth.insert(conn, request.clone());
        }
        // Before the hub's outputs of this connection are carried out (its `Connected`).
        if let Some(to_app) = &self.to_app {
            let _ = to_app.send(ToApp::Opened { conn, request });
        }
        if refused {
            return;
        }
        for room in &admit.rooms {
            if let Err(e) = self.hub.join(conn, room, now) {
                tracing::warn!(%conn, %room, error = %e, "on_connect: room not joined");
            }
        }
    }

    /// Every socket together holds more than the budget: the connections furthest behind (the
    /// most bytes unwritten) are closed with 4005 (what they held dropped), until the total is
    /// under nine tenths of the budget. A scan of every socket, but only when over the budget,
    /// and then it frees a tenth of it at least.
    fn shed(&mut self) {
        let mut holders: Vec<(usize, ConnId)> = self
            .outboxes
            .iter()
            .filter_map(|(conn, outbox)| match outbox {
                Outbox::Link { link, .. } => Some((link.sheddable()?, *conn)),
                Outbox::Queue { .. } => None,
            })
            .filter(|(held, _)| *held > 0)
            .collect();
        holders.sort_unstable_by(|a, b| b.cmp(a));
        let target = self.budget.target();
        for (_, conn) in holders {
            if self.budget.held() <= target {
                break;
            }
            if let Some(Outbox::Link { link, round }) = self.outboxes.get_mut(&conn) {
                link.shed();
                round.clear(&mut self.spare_rounds);
                self.metrics.budget_closes += 1;
                self.slow.push(conn);
            }
        }
        // What closing sockets still hold (a frame they had begun, their close frame) is freed
        // when they end: until the total grows by another tenth, the next scan could free
        // nothing more.
        self.shed_above = self.budget.limit().max(self.budget.held() + self.budget.limit() / 10);
    }

    /// Drains the hub's outputs, in order, and reports the sockets that overflowed meanwhile
    /// (which gives more outputs: their closes).
    fn carry_out(&mut self) {
        loop {
            while let Some(output) = self.hub.poll_output() {
                self.output(output);
            }
            if self.slow.is_empty() {
                return;
            }
            // Sockets that hold too much unwritten: the hub closes them, nobody waits for them.
            for conn in std::mem::take(&mut self.slow) {
                // A socket found slow twice before its close (in a round's writes, then by the
                // budget) is one socket closed.
                if self.hub.connection(conn).is_some() {
                    self.metrics.queue_overflows += 1;
                }
                self.hub.handle_slow_consumer(conn, Instant::now());
            }
        }
    }

    fn output(&mut self, output: Output) {
        match output {
            Output::Transmit(t) => self.transmit(&t.to, &t.frame),
            Output::Ping(conn) => self.ping(conn),
            Output::Close { conn, code, reason } => self.close(conn, code.as_u16(), &reason),
            Output::Publish { channel, payload } => self.bus.publish(channel, payload),
            Output::Subscribe(channel) => self.bus.subscribe(channel),
            Output::Unsubscribe(channel) => self.bus.unsubscribe(channel),
            Output::Event(event) => self.event(event),
        }
    }

    /// Queues a text `frame` for each of `to`. On the fast path the frame is written into the
    /// batch once, and each socket's round only notes where it is (its limits are checked when
    /// the round is written); a queue that is full is noted as slow at once.
    fn transmit(&mut self, to: &[ConnId], frame: &Bytes) {
        self.queue_frames(to, Data::Text, frame);
    }

    /// Sends a message back to its sender as it came (conformance testing only), through the
    /// same writes as every frame.
    fn echo(&mut self, conn: ConnId, binary: bool, payload: Bytes) {
        self.queue_frames(&[conn], if binary { Data::Binary } else { Data::Text }, &payload);
    }

    fn queue_frames(&mut self, to: &[ConnId], data: Data, payload: &Bytes) {
        let item = |payload: &Bytes| match data {
            Data::Binary => Item::Binary(payload.clone()),
            _ => Item::Frame(payload.clone()),
        };
        let mut framed = None;
        // Compressed once, for every recipient that negotiated compression.
        let mut compressed = None;
        let compress = self.deflate.is_some() && payload.len() >= self.compression_threshold;
        for conn in to {
            match self.outboxes.get_mut(conn) {
                Some(Outbox::Link { link, round }) => {
                    let frame = match (
                        &mut self.deflate,
                        compress && link.deflate.is_some_and(|a| a.fits(payload.len())),
                    ) {
                        (Some(deflate), true) => compressed
                            .get_or_insert_with(|| {
                                let bytes = deflate.message(payload);
                                put_compressed(&mut self.batch, OpCode::Data(data), &bytes)
                            })
                            .clone(),
                        _ => framed
                            .get_or_insert_with(|| {
                                put_frame(&mut self.batch, OpCode::Data(data), payload)
                            })
                            .clone(),
                    };
                    if round.push(frame, &mut self.spare_rounds) {
                        self.dirty.push(*conn);
                    }
                    let (frames, bytes) = round.size();
                    self.round_queued.0 = self.round_queued.0.max(frames);
                    self.round_queued.1 = self.round_queued.1.max(bytes);
                }
                Some(Outbox::Queue { frames, .. })
                    if frames.push(item(payload)) == Err(PushError::Full) =>
                {
                    self.slow.push(*conn);
                }
                Some(Outbox::Queue { .. }) => {}
                None => {}
            }
        }
    }

    /// Queues a ping. A socket that is full is busy anyway: its ping waits for the next round.
    fn ping(&mut self, conn: ConnId) {
        match self.outboxes.get_mut(&conn) {
            Some(Outbox::Link { link, round }) => {
                if !link.has_room(self.limits, round.size()) {
                    return;
                }
                let ping = put_frame(&mut self.batch, OpCode::Control(Control::Ping), &[]);
                if round.push(ping, &mut self.spare_rounds) {
                    self.dirty.push(conn);
                }
            }
            Some(Outbox::Queue { frames, .. }) => {
                let _ = frames.push(Item::Ping);
            }
            None => {}
        }
    }

    /// Removes a socket's outbox; the map gives back half its room once it is less than a
    /// quarter full (amortized O(1) per removal), so that it follows the connections down after
    /// a storm.
    fn forget(&mut self, conn: ConnId) -> Option<Outbox> {
        let outbox = self.outboxes.remove(&conn);
        if self.outboxes.capacity() > 64 && self.outboxes.len() < self.outboxes.capacity() / 4 {
            self.outboxes.shrink_to(self.outboxes.len() * 2);
        }
        outbox
    }

    /// Sends the close frame the hub decided, behind what the socket has queued, and forgets
    /// the socket. Written at once: closes are rare.
    fn close(&mut self, conn: ConnId, code: u16, reason: &str) {
        self.awaiting_auth.remove(&conn);
        match self.forget(conn) {
            Some(Outbox::Link { link, mut round }) => {
                // Its frames of this round go first (those within its limits), then the close.
                link.flush(&self.batch, &round, self.limits, &mut self.buffers);
                round.clear(&mut self.spare_rounds);
                if link.push_close(code, reason) {
                    link.flush(&self.batch, &Round::default(), self.limits, &mut self.buffers);
                }
            }
            Some(Outbox::Queue { close, .. }) => {
                let _ = close.send((code, reason.to_owned()));
            }
            None => {}
        }
    }

    /// Hands an event to whoever waits for it: the authenticator, the caller of a cluster query,
    /// the application's handlers, or its event stream. A client's message that the event stream
    /// has no room for is refused: its sender is closed with 4009, never dropped silently.
    fn event(&mut self, event: Event) {
        match event {
            Event::Authenticate { conn, token, credentials } if self.auth.is_some() => {
                let request = self.awaiting_auth.remove(&conn);
                self.authenticate(AuthRequest { conn, token, credentials, request });
            }
            Event::Refresh { conn, token, credentials, id } if self.auth.is_some() => {
                self.refresh(AuthRequest { conn, token, credentials, request: None }, id);
            }
            Event::QueryDone(result) if self.queries.contains_key(&result.id) => {
                if let Some(waiting) = self.queries.remove(&result.id) {
                    let _ = waiting.send(*result);
                }
            }
            event if self.to_app.is_some() => {
                if let Some(to_app) = &self.to_app {
                    let _ = to_app.send(ToApp::Event(event));
                }
            }
            Event::Message { conn, event, id: Some(id), .. } if self.events.is_closed() => {
                // Nobody listens (the application dropped its events, and no handler took
                // this one): answered now, so that the client does not wait for a reply that
                // cannot come.
                let message = format!("no handler for {event:?}");
                let now = Instant::now();
                let _ = self.hub.reply_error(
                    conn,
                    Some(&id),
                    ErrorCode::UnknownEvent.as_str(),
                    &message,
                    now,
                );
            }
            Event::Message { conn, .. } if self.events.is_full() => {
                self.metrics.events_dropped += 1;
                self.hub.handle_overload(conn, Instant::now());
            }
            event => self.events.send(event),
        }
    }

    /// Runs the authenticator in its own task and feeds its decision back as a call.
    fn authenticate(&mut self, request: AuthRequest) {
        let (Some(auth), Some(commands)) = (self.auth.clone(), self.commands.upgrade()) else {
            return;
        };
        tokio::spawn(async move {
            let conn = request.conn;
            let decision = auth.authenticate(request).await;
            let call: Box<dyn FnOnce(&mut Driver) + Send> =
                Box::new(move |d: &mut Driver| d.decide(conn, decision));
            let _ = commands.send(Command::Call(call)).await;
        });
    }

    /// Runs the authenticator on a `refresh` in its own task, and applies its decision: the
    /// connection's credentials are renewed, or the refresh is refused (the connection keeps its
    /// current ones until they expire).
    fn refresh(&mut self, request: AuthRequest, id: Option<RequestId>) {
        let (Some(auth), Some(commands)) = (self.auth.clone(), self.commands.upgrade()) else {
            return;
        };
        tokio::spawn(async move {
            let conn = request.conn;
            let decision = auth.authenticate(request).await;
            let call: Box<dyn FnOnce(&mut Driver) + Send> = Box::new(move |d: &mut Driver| {
                let now = Instant::now();
                let id = id.as_ref();
                let _ = match decision {
                    Ok(Admit { identity, .. }) => {
                        d.hub.accept_refresh(conn, identity.unwrap_or_default(), id, now)
                    }
                    Err(denied) => d.hub.reject_refresh(conn, denied.close().1, id, now),
                };
            });
            let _ = commands.send(Command::Call(call)).await;
        });
    }

    /// Applies an authenticator's decision. The connection may have timed out or gone
    /// meanwhile: nothing to decide then.
    fn decide(&mut self, conn: ConnId, decision: Result<Admit, AuthDenied>) {
        let now = Instant::now();
        match decision {
            Ok(Admit { close: Some((code, reason)), .. }) => {
                let _ = self.hub.close(conn, code, reason, now);
            }
            Ok(Admit { identity, rooms, close: None }) => {
                if self.hub.accept_auth(conn, identity.unwrap_or_default(), now).is_ok() {
                    for room in &rooms {
                        if let Err(e) = self.hub.join(conn, room, now) {
                            tracing::warn!(%conn, %room, error = %e, "authenticate: room not joined");
                        }
                    }
                }
            }
            Err(AuthDenied::Rejected(reason)) => {
                let _ = self.hub.reject_auth(conn, reason, now);
            }
            Err(denied) => {
                let (code, reason) = denied.close();
                let _ = self.hub.close(conn, code, reason.to_owned(), now);
            }
        }
    }

    /// Bytes kept for busy rounds: what [`shrink_to_fit`](Self::shrink_to_fit) gives back.
    fn kept_bytes(&self) -> usize {
        self.batch.capacity()
            + self.buffers.held()
            + self.write_pools.iter().map(BufferPool::held).sum::<usize>()
            + self.spare_rounds.held()
            + (self.dirty.capacity() + self.slow.capacity()) * size_of::<ConnId>()
    }

    /// Counters of the hub and of this driver.
    pub(crate) fn snapshot(&self) -> crate::metrics::Snapshot {
        crate::metrics::Snapshot {
            connections: self.hub.connection_count(),
            rooms: self.hub.room_count(),
            users: self.hub.user_count(),
            hub: self.hub.stats().clone(),
            driver: Metrics {
                queued_bytes: self.budget.held(),
                kept_bytes: self.kept_bytes(),
                ..self.metrics.clone()
            },
            bus: self.bus.metrics(),
        }
    }
}

/// The hub's deadlines are met on ticks of this length: a deadline is rounded up to the next
/// tick, so that the deadlines of many connections (their pings, mostly) that fall within one
/// tick are met in one turn, with one write round and one batch of pongs, instead of one wake-up
/// of the hub task each. A ping or a close is at most this late; the heartbeat bound
/// (`heartbeat_timeout`, 30 s by default) is counted from the connection's last activity as before.
const TIMER_TICK: Duration = Duration::from_millis(100);

/// The hub task's timer: sleeps until the hub's next deadline, rounded up to a [`TIMER_TICK`],
/// or forever when it has none.
struct Timer {
    /// Where the ticks are counted from.
    origin: Instant,
    at: Option<Instant>,
    sleep: Pin<Box<Sleep>>,
}

impl Timer {
    fn new(at: Option<Instant>) -> Self {
        let origin = Instant::now();
        let at = at.map(|at| on_tick(origin, at));
        let sleep = Box::pin(tokio::time::sleep_until(Self::until(at)));
        Self { origin, at, sleep }
    }

    /// A deadline far enough away to stand for "none".
    fn until(at: Option<Instant>) -> tokio::time::Instant {
        at.map_or_else(
            || tokio::time::Instant::now() + Duration::from_secs(86_400 * 365),
            Into::into,
        )
    }

    /// Moves the timer, only when the deadline moved to another tick.
    fn reset(&mut self, at: Option<Instant>) {
        let at = at.map(|at| on_tick(self.origin, at));
        if at != self.at {
            self.at = at;
            self.sleep.as_mut().reset(Self::until(at));
        }
    }

    /// Completes at the deadline; never, when there is none.
    async fn fired(&mut self) {
        match self.at {
            Some(_) => self.sleep.as_mut().await,
            None => std::future::pending().await,
        }
    }
}

/// `at`, rounded up to the next [`TIMER_TICK`] counted from `origin`.
fn on_tick(origin: Instant, at: Instant) -> Instant {
    let Some(since) = at.checked_duration_since(origin) else {
        return at;
    };
    let tick = TIMER_TICK.as_nanos();
    let ticks = since.as_nanos().div_ceil(tick);
    let rounded = u64::try_from(ticks * tick).unwrap_or(u64::MAX);
    origin.checked_add(Duration::from_nanos(rounded)).unwrap_or(at)
}

/// Fires once, [`SHRINK_AFTER`] after the hub task last wrote sockets or saw connections come or
/// go; then not again until it does. Moved at most once per [`SHRINK_AFTER`], not on every turn.
/// (Turns that do neither, such as a metrics query, do not count: they change none of what it
/// gives back. Departures count: after a storm leaves, what the hub sized for it goes back.)
struct IdleTimer {
    last_busy: tokio::time::Instant,
    armed: bool,
    sleep: Pin<Box<Sleep>>,
}

impl Default for IdleTimer {
    fn default() -> Self {
        let now = tokio::time::Instant::now();
        Self { last_busy: now, armed: false, sleep: Box::pin(tokio::time::sleep_until(now)) }
    }
}

impl IdleTimer {
    /// The task finished a turn at `at`.
    fn busy(&mut self, at: Instant) {
        self.last_busy = at.into();
        if !self.armed {
            self.armed = true;
            self.sleep.as_mut().reset(self.last_busy + SHRINK_AFTER);
        }
    }

    /// Completes once the task has been idle for [`SHRINK_AFTER`] since it was last busy.
    async fn fired(&mut self) {
        loop {
            if !self.armed {
                return std::future::pending().await;
            }
            self.sleep.as_mut().await;
            let due = self.last_busy + SHRINK_AFTER;
            if due <= tokio::time::Instant::now() {
                self.armed = false;
                return;
            }
            self.sleep.as_mut().reset(due);
        }
    }
}

/// Returns once the tasks already queued on this worker have run: the task wakes itself and
/// goes to the back of the run queue. (`tokio::task::yield_now` waits for the I/O driver's poll
/// instead, and the task then runs before the socket tasks that poll woke.)
async fn behind_queued_tasks() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if std::mem::replace(&mut yielded, true) {
            return std::task::Poll::Ready(());
        }
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_round_up_to_the_next_tick_and_never_earlier() {
        let origin = Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(on_tick(origin, origin), origin);
        assert_eq!(on_tick(origin, origin + Duration::from_nanos(1)), origin + TIMER_TICK);
        assert_eq!(on_tick(origin, origin + TIMER_TICK), origin + TIMER_TICK);
        assert_eq!(on_tick(origin, origin + ms(150)), origin + ms(200));
        assert_eq!(on_tick(origin, origin + ms(10_001)), origin + ms(10_100));
        // A deadline before the origin (already due) is met at once.
        if let Some(before) = origin.checked_sub(ms(5)) {
            assert_eq!(on_tick(origin, before), before);
        }
        for n in 0..1_000u64 {
            let at = origin + Duration::from_micros(n * 997);
            let tick = on_tick(origin, at);
            assert!(tick >= at && tick - at < TIMER_TICK, "{n}");
        }
    }
}

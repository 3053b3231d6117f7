//! The hub task: the one owner of the [`Hub`]. It applies commands from sockets, the bus and the
//! application, carries out the hub's outputs, and sleeps until the next deadline.
//!
//! Its parts: [`to_hub`] (what crosses into the task: the commands, and how a socket's task
//! submits one), `outputs` (carrying out the hub's outputs: frames queued per socket, pings,
//! closes, events for the application), `writes` (the write round: flushing the sockets a round
//! touched, on one thread or several, and shedding when the budget is exceeded), `auth` (the
//! authenticator's tasks and their decisions), `timer` (the hub's deadlines on ticks, and the idle
//! shrink), `round` and `write_threads` (a round's frames and their writes over threads),
//! `events` (the application's event stream), `metrics` (the counters and their snapshot).

mod auth;
pub(crate) mod events;
pub(crate) mod metrics;
mod outputs;
pub(crate) mod round;
mod timer;
pub(crate) mod to_hub;
pub(crate) mod write_threads;
mod writes;

use timer::{IdleTimer, Timer};
pub(crate) use to_hub::{Arrival, Outbox, Submitted, ToHub, submit};

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

use crate::app::auth::{AuthDenied, AuthRequest, Authenticator};
use crate::app::on_connect::Admit;
use crate::bus::Bus;
use crate::driver::events::{EventSender, ToApp};
use crate::driver::metrics::Metrics;
use crate::driver::round::{Round, Spare};
use crate::transport::budget::Budget;
use crate::transport::buffer_pool::BufferPool;
use crate::transport::codec::{put_compressed, put_frame};
use crate::transport::deflate::Deflate;
use crate::transport::link::Link;
use crate::transport::queue::{Item, PushError};
use crate::transport::request::UpgradeRequest;
use crate::transport::tracker::Tracker;
use crate::transport::write_buffer::Limits;
use write_threads::Job;

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
    commands: mpsc::WeakSender<ToHub>,
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
        commands: mpsc::WeakSender<ToHub>,
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
    pub(crate) async fn run(mut self, mut commands: mpsc::Receiver<ToHub>) {
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
        first: ToHub,
        commands: &mut mpsc::Receiver<ToHub>,
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
        first: ToHub,
        commands: &mut mpsc::Receiver<ToHub>,
        shutdown: &mut Option<oneshot::Sender<()>>,
    ) {
        self.receive(first, shutdown);
        for _ in 1..COMMAND_BATCH {
            let Ok(command) = commands.try_recv() else { break };
            self.receive(command, shutdown);
        }
    }

    fn receive(&mut self, command: ToHub, shutdown: &mut Option<oneshot::Sender<()>>) {
        if let ToHub::Shutdown(done) = command {
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

    /// Feeds one command to the hub.
    fn apply(&mut self, command: ToHub) {
        let now = Instant::now();
        match command {
            ToHub::Connect { conn, outbox, arrival } => self.connect(conn, outbox, arrival),
            ToHub::Frame { conn, frame } => self.hub.handle_frame(conn, &frame, now),
            ToHub::EchoText { conn, payload } => self.echo(conn, false, payload),
            ToHub::EchoBinary { conn, payload } => self.echo(conn, true, payload),
            ToHub::Violation { conn, violation } => {
                self.hub.handle_violation(conn, violation, now);
            }
            ToHub::Alive(conn) => self.hub.handle_pong(conn, now),
            ToHub::Disconnect(conn) => {
                self.forget(conn);
                self.awaiting_auth.remove(&conn);
                self.hub.handle_disconnect(conn, now);
            }
            ToHub::Bus { channel, payload } => self.hub.handle_bus(&channel, &payload, now),
            ToHub::BusGap => self.hub.handle_bus_gap(now),
            ToHub::PeerLease { server_id, remaining } => {
                self.hub.handle_peer_lease(&server_id, now + remaining, now);
            }
            ToHub::Call(call) => call(self),
            ToHub::Shutdown(_) => {}
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

    /// Bytes kept for busy rounds: what [`shrink_to_fit`](Self::shrink_to_fit) gives back.
    fn kept_bytes(&self) -> usize {
        self.batch.capacity()
            + self.buffers.held()
            + self.write_pools.iter().map(BufferPool::held).sum::<usize>()
            + self.spare_rounds.held()
            + (self.dirty.capacity() + self.slow.capacity()) * size_of::<ConnId>()
    }

    /// Counters of the hub and of this driver.
    pub(crate) fn snapshot(&self) -> metrics::Snapshot {
        metrics::Snapshot {
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

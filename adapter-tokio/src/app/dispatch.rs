//! Runs the application's handlers, off the hub task: each connection's events reach its handlers
//! in order, one at a time, and a slow handler delays only its own connection.
//!
//! The dispatcher task takes what the hub task hands it, finds the route, and appends a job to
//! the connection's lane; a lane with jobs has one worker task, which runs them in order and ends
//! when the lane is empty (an idle connection holds no task here). A lane holding more than
//! `max_pending_events` jobs means the client sends faster than the application answers: the hub
//! closes it with 4009, and nothing of it is lost silently.

use std::collections::{HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use futures_util::FutureExt;
use roomcast_core::wire::ErrorCode;
use roomcast_core::{ConnId, DisconnectReason, Event, PublishRequest, RequestId};
use serde_json::value::RawValue;
use tokio::sync::mpsc;

use crate::app::context::Socket;
use crate::app::extensions::Extensions;
use crate::app::handle::WeakHandle;
use crate::app::handler::{EventContext, HandlerError, Outcome};
use crate::app::registry::{App, PublishHook};
use crate::driver::events::ToApp;
use crate::transport::request::UpgradeRequest;

/// One thing a connection's lane runs.
enum Job {
    /// A handler on an event.
    Handle(EventContext, crate::app::handler::BoxHandler),
    /// An event nobody handles: answered with `unknown_event`.
    Unknown { event: String, id: Option<RequestId> },
    /// The connection is in: the `on_connected` hook.
    Connected,
    /// The connection is gone: the `on_disconnect` hook.
    Gone(DisconnectReason),
    /// A publish for the `on_publish` hook to decide.
    Publish(Box<PublishRequest>),
}

/// A connection's jobs, and whether a worker runs them.
#[derive(Default)]
struct Lane {
    jobs: VecDeque<Job>,
    running: bool,
    /// The hub was asked to close it for overload: its further events are dropped.
    overloaded: bool,
}

type SharedLane = Arc<Mutex<Lane>>;

fn lock(lane: &SharedLane) -> MutexGuard<'_, Lane> {
    // A handler never runs under this lock; recover the state if something ever panicked here.
    lane.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What the dispatcher knows of a connection.
struct Slot {
    user: Option<Arc<str>>,
    request: Option<Arc<UpgradeRequest>>,
    connected_at: SystemTime,
    extensions: Extensions,
    lane: SharedLane,
}

impl Slot {
    fn new(request: Option<Arc<UpgradeRequest>>) -> Self {
        Self {
            user: None,
            request,
            connected_at: SystemTime::now(),
            extensions: Extensions::default(),
            lane: SharedLane::default(),
        }
    }
}

/// The dispatcher task's state.
pub(crate) struct Dispatcher {
    app: Arc<App>,
    /// Weak: handlers must not keep the instance alive once the application let go of it.
    handle: WeakHandle,
    conns: HashMap<ConnId, Slot>,
    /// Events the handlers do not take, for the [`Events`](crate::Events) stream.
    rest: Option<crate::driver::events::EventSender>,
    max_pending: usize,
}

impl Dispatcher {
    pub(crate) fn new(
        app: Arc<App>,
        handle: WeakHandle,
        rest: Option<crate::driver::events::EventSender>,
        max_pending: usize,
    ) -> Self {
        Self { app, handle, conns: HashMap::new(), rest, max_pending: max_pending.max(1) }
    }

    /// Runs until the hub task stops.
    pub(crate) async fn run(mut self, mut from_hub: mpsc::UnboundedReceiver<ToApp>) {
        while let Some(item) = from_hub.recv().await {
            match item {
                ToApp::Opened { conn, request } => self.opened(conn, request),
                ToApp::Event(event) => self.event(event),
            }
        }
    }

    fn opened(&mut self, conn: ConnId, request: Option<Arc<UpgradeRequest>>) {
        self.conns.insert(conn, Slot::new(request));
    }

    fn event(&mut self, event: Event) {
        match event {
            Event::Connected { conn, user_id } => {
                let slot = self.conns.entry(conn).or_insert_with(|| Slot::new(None));
                slot.user = user_id.as_deref().map(Arc::from);
                if self.app.on_connected.is_some()
                    && let Some(slot) = self.conns.get(&conn)
                    && let Some(socket) = self.socket(conn, slot)
                {
                    let lane = slot.lane.clone();
                    self.enqueue(conn, &lane, socket, Job::Connected);
                }
                self.pass_on(Event::Connected { conn, user_id });
            }
            Event::Message { conn, event, data, id, path } => {
                self.message(conn, event, data, id, path);
            }
            Event::Disconnected { conn, reason } => {
                if let Some(slot) = self.conns.remove(&conn)
                    && self.app.on_disconnect.is_some()
                    && let Some(socket) = self.socket(conn, &slot)
                {
                    self.enqueue(conn, &slot.lane, socket, Job::Gone(reason));
                }
                self.pass_on(Event::Disconnected { conn, reason });
            }
            Event::Publish(request) if self.app.on_publish.is_some() => {
                let conn = request.conn;
                let Some(slot) = self.conns.get(&conn) else { return };
                let Some(socket) = self.socket(conn, slot) else { return };
                let lane = slot.lane.clone();
                self.enqueue(conn, &lane, socket, Job::Publish(request));
            }
            other => self.pass_on(other),
        }
    }

    /// Routes a client's event to its handler, in the connection's lane.
    fn message(
        &mut self,
        conn: ConnId,
        event: String,
        data: Option<Box<RawValue>>,
        id: Option<RequestId>,
        path: Option<Box<str>>,
    ) {
        let Some(slot) = self.conns.get(&conn) else { return };
        let Some(socket) = self.socket(conn, slot) else { return };
        let lane = slot.lane.clone();
        let job = match self.app.route(&event, path.as_deref()) {
            Some(route) => {
                let handler = route.target.clone();
                let cx = EventContext {
                    socket: socket.clone(),
                    event,
                    path,
                    data,
                    id,
                    params: route.params,
                    state: self.app.state.clone(),
                };
                Job::Handle(cx, handler)
            }
            None => Job::Unknown { event, id },
        };
        self.enqueue(conn, &lane, socket, job);
    }

    /// The connection for a handler; `None` once the application has let go of every handle
    /// (the instance is going away: nothing more runs).
    fn socket(&self, conn: ConnId, slot: &Slot) -> Option<Socket> {
        let handle = self.handle.upgrade()?;
        Some(Socket::new(
            conn,
            slot.user.clone(),
            slot.request.clone(),
            slot.connected_at,
            slot.extensions.clone(),
            handle,
        ))
    }

    /// Appends a job to a lane, and starts its worker if none runs.
    fn enqueue(&self, conn: ConnId, lane: &SharedLane, socket: Socket, job: Job) {
        let mut guard = lock(lane);
        let gone = matches!(job, Job::Gone(_));
        if guard.overloaded && !gone {
            return;
        }
        if !gone && guard.jobs.len() >= self.max_pending {
            guard.overloaded = true;
            drop(guard);
            if let Some(handle) = self.handle.upgrade() {
                tokio::spawn(async move {
                    let _ = handle.overload(conn).await;
                });
            }
            return;
        }
        guard.jobs.push_back(job);
        if guard.running {
            return;
        }
        guard.running = true;
        drop(guard);
        tokio::spawn(work(lane.clone(), socket, self.app.clone()));
    }

    fn pass_on(&self, event: Event) {
        if let Some(rest) = &self.rest {
            rest.send(event);
        }
    }
}

/// A lane's worker: runs its jobs in order, then ends.
async fn work(lane: SharedLane, socket: Socket, app: Arc<App>) {
    loop {
        let job = {
            let mut guard = lock(&lane);
            match guard.jobs.pop_front() {
                Some(job) => job,
                None => {
                    guard.running = false;
                    return;
                }
            }
        };
        match job {
            Job::Handle(cx, handler) => {
                let id = cx.id.clone();
                let event = cx.event.clone();
                let outcome =
                    AssertUnwindSafe(handler(cx)).catch_unwind().await.unwrap_or_else(|_| {
                        tracing::error!(conn = %socket.id(), %event, "a handler panicked");
                        Err(HandlerError::new(ErrorCode::Internal.as_str(), "the handler failed"))
                    });
                answer(&socket, id, outcome).await;
            }
            Job::Unknown { event, id } => {
                let message = format!("no handler for event {event:?}");
                answer(
                    &socket,
                    id,
                    Err(HandlerError::new(ErrorCode::UnknownEvent.as_str(), message)),
                )
                .await;
            }
            Job::Publish(request) => {
                if let Some(hook) = &app.on_publish {
                    decide_publish(&socket, hook, *request).await;
                }
            }
            Job::Connected => {
                if let Some(hook) = &app.on_connected {
                    let ran = AssertUnwindSafe(hook(socket.clone())).catch_unwind().await;
                    if ran.is_err() {
                        tracing::error!(conn = %socket.id(), "the on_connected hook panicked");
                    }
                }
            }
            Job::Gone(reason) => {
                if let Some(hook) = &app.on_disconnect {
                    let ran = AssertUnwindSafe(hook(socket.clone(), reason)).catch_unwind().await;
                    if ran.is_err() {
                        tracing::error!(conn = %socket.id(), "the on_disconnect hook panicked");
                    }
                }
            }
        }
    }
}

/// Runs the `on_publish` hook on a client's publish and applies its decision: the publish goes
/// out, or the client gets the hook's error.
async fn decide_publish(socket: &Socket, hook: &PublishHook, request: PublishRequest) {
    let decided = AssertUnwindSafe(hook(socket.clone(), request.clone()))
        .catch_unwind()
        .await
        .unwrap_or_else(|_| {
            tracing::error!(conn = %socket.id(), "the on_publish hook panicked");
            Err(HandlerError::new(ErrorCode::Internal.as_str(), "the publish check failed"))
        });
    let sent = match decided {
        Ok(()) => socket.handle().accept_publish(request).await,
        Err(error) => {
            let (conn, id) = (socket.id(), request.id.clone());
            socket.handle().reply_error(conn, id, error.code(), error.message()).await
        }
    };
    if let Err(e) = sent {
        tracing::debug!(conn = %socket.id(), error = %e, "publish decision not applied");
    }
}

/// Sends a handler's outcome: a reply to a request, or an error. A connection gone meanwhile
/// gets nothing.
async fn answer(socket: &Socket, id: Option<RequestId>, outcome: Outcome) {
    let sent = match (outcome, id) {
        (Ok(data), Some(id)) => socket.handle().reply_raw(socket.id(), id, data).await,
        (Ok(_), None) => Ok(()),
        (Err(error), id) => {
            socket.handle().reply_error(socket.id(), id, error.code(), error.message()).await
        }
    };
    if let Err(e) = sent {
        tracing::debug!(conn = %socket.id(), error = %e, "answer not sent");
    }
}

//! Starting an instance, and the handle applications use to talk to it.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::{Sink, Stream};
use roomcast_core::{
    CloseCode, ConnId, Event, Exclude, Hub, HubConfig, HubError, Identity, RequestId,
};
use serde::Serialize;
use serde_json::value::RawValue;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use crate::auth::Authenticator;
use crate::bus::Bus;
use crate::driver::{Command, Driver, Outbox, submit};
use crate::inbox::BusInbox;
use crate::link::{Limits, Link};
use crate::link_task;
use crate::local_bus::LocalBus;
use crate::message::{WsError, WsMessage};
use crate::metrics::Snapshot;
use crate::options::Options;
use crate::socket;
use crate::tracker::Tracker;

/// Errors of the [`Handle`] API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The hub refused the call.
    #[error(transparent)]
    Hub(#[from] HubError),
    /// The data could not be serialized to JSON.
    #[error("data is not serializable to JSON: {0}")]
    Serialize(#[from] serde_json::Error),
    /// The instance has stopped.
    #[error("the roomcast instance has stopped")]
    Stopped,
}

type BusFactory = Box<dyn FnOnce(BusInbox) -> Box<dyn Bus> + Send>;

/// Entry point: `Roomcast::builder().start()`.
#[derive(Debug)]
pub struct Roomcast;

impl Roomcast {
    /// A builder with default options, the in-process bus and no authenticator.
    pub fn builder() -> Builder {
        Builder { options: Options::default(), bus: None, auth: None }
    }
}

/// Configures and starts one instance.
pub struct Builder {
    options: Options,
    bus: Option<BusFactory>,
    auth: Option<Arc<dyn Authenticator>>,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder").field("options", &self.options).finish_non_exhaustive()
    }
}

impl Builder {
    /// Sets every option.
    pub fn options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }

    /// Sets the bus: `make` receives this instance's inbox and returns its [`Bus`].
    /// Default: a private in-process bus (a single node).
    pub fn bus<B: Bus>(mut self, make: impl FnOnce(BusInbox) -> B + Send + 'static) -> Self {
        self.bus = Some(Box::new(move |inbox| Box::new(make(inbox)) as Box<dyn Bus>));
        self
    }

    /// Decides `authenticate` frames with `auth` instead of handing them to the application.
    pub fn authenticator(mut self, auth: impl Authenticator) -> Self {
        self.auth = Some(Arc::new(auth));
        self
    }

    /// Starts the hub task. Must be called inside a tokio runtime.
    pub fn start(self) -> Result<(Handle, Events), Error> {
        let mut options = self.options;
        let defaults = HubConfig::default();
        if options.hub.server_id == defaults.server_id {
            options.hub.server_id = uuid::Uuid::new_v4().to_string();
        }
        if options.hub.hash_seed == defaults.hash_seed {
            options.hub.hash_seed = uuid::Uuid::new_v4().as_u64_pair().0;
        }
        // With no bus, nothing can hear a publish: the hub skips encoding one per send.
        options.hub.standalone |= self.bus.is_none();
        let unix_ms =
            SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let hub = Hub::new(options.hub.clone(), Instant::now(), unix_ms)?;
        let (commands, inbox) = mpsc::channel(options.command_queue.max(1));
        let (events_tx, events) = mpsc::channel(options.event_queue.max(1));
        let bus_inbox = BusInbox { commands: commands.downgrade() };
        let bus = match self.bus {
            Some(make) => make(bus_inbox),
            None => Box::new(LocalBus::new().port(bus_inbox)),
        };
        let tracker = Arc::new(Tracker::default());
        let limits =
            Limits { frames: options.queue_frames.max(1), bytes: options.max_write_buffer_bytes() };
        let driver = Driver::new(
            hub,
            bus,
            events_tx,
            self.auth,
            commands.downgrade(),
            tracker.clone(),
            limits,
        );
        tokio::spawn(driver.run(inbox));
        let handle = Handle { shared: Arc::new(Shared { commands, tracker, options }) };
        Ok((handle, Events { events }))
    }
}

#[derive(Debug)]
struct Shared {
    commands: mpsc::Sender<Command>,
    tracker: Arc<Tracker>,
    options: Options,
}

/// Application events ([`Event::Message`], [`Event::Connected`], [`Event::Disconnected`], ...).
/// Consume them, or drop this to ignore them (events are then discarded).
#[derive(Debug)]
pub struct Events {
    events: mpsc::Receiver<Event>,
}

impl Events {
    /// The next event; `None` once the instance has stopped.
    pub async fn recv(&mut self) -> Option<Event> {
        self.events.recv().await
    }
}

/// A cloneable handle to a running instance: attach sockets, call the hub, shut down.
#[derive(Clone, Debug)]
pub struct Handle {
    shared: Arc<Shared>,
}

impl Handle {
    /// The instance's options (with the generated server id).
    pub fn options(&self) -> &Options {
        &self.shared.options
    }

    /// Serves one upgraded WebSocket until it closes (tokio-tungstenite's `WebSocketStream`, or
    /// axum's `WebSocket` with the `axum` feature).
    pub async fn serve_socket<S, M, E>(&self, socket: S)
    where
        S: Stream<Item = Result<M, E>> + Sink<M, Error = E> + Send + Unpin + 'static,
        M: WsMessage,
        E: WsError,
    {
        let shared = &self.shared;
        socket::serve(socket, shared.commands.clone(), shared.tracker.clone(), &shared.options)
            .await;
    }

    /// Serves one WebSocket whose HTTP upgrade is done, on its plain TCP stream, until it closes.
    /// `leftover` holds bytes the client sent right behind its upgrade request (hyper's
    /// `Parts::read_buf`). This is the fast path: roomcast frames and writes the stream itself,
    /// and the hub task writes a fan-out straight into each socket.
    pub async fn serve_tcp(&self, stream: TcpStream, leftover: Bytes) {
        let shared = &self.shared;
        let _ = stream.set_nodelay(true);
        forget_wakers(&stream);
        let conn = ConnId::from_uuid(uuid::Uuid::new_v4());
        let link = Arc::new(Link::new(stream));
        let connect = Command::Connect { conn, outbox: Outbox::Link(link.clone()) };
        if !submit(&shared.commands, connect).await {
            return;
        }
        shared.tracker.enter();
        link_task::serve(link, conn, leftover, shared.commands.clone(), &shared.options).await;
        shared.tracker.leave();
    }

    /// Runs `call` on the hub task and returns its result.
    async fn call<R: Send + 'static>(
        &self,
        call: impl FnOnce(&mut Driver) -> R + Send + 'static,
    ) -> Result<R, Error> {
        let (tx, rx) = oneshot::channel();
        let command = Command::Call(Box::new(move |driver: &mut Driver| {
            let _ = tx.send(call(driver));
        }));
        self.shared.commands.send(command).await.map_err(|_| Error::Stopped)?;
        rx.await.map_err(|_| Error::Stopped)
    }

    async fn hub<R: Send + 'static>(
        &self,
        call: impl FnOnce(&mut Hub, Instant) -> Result<R, HubError> + Send + 'static,
    ) -> Result<R, Error> {
        Ok(self.call(move |d| call(&mut d.hub, Instant::now())).await??)
    }

    /// Accepts a connection's authentication with `identity`.
    pub async fn accept_auth(&self, conn: ConnId, identity: Identity) -> Result<(), Error> {
        self.hub(move |hub, now| hub.accept_auth(conn, identity, now)).await
    }

    /// Rejects a connection's authentication: close 4003 with `reason`.
    pub async fn reject_auth(
        &self,
        conn: ConnId,
        reason: impl Into<Cow<'static, str>>,
    ) -> Result<(), Error> {
        let reason = reason.into();
        self.hub(move |hub, now| hub.reject_auth(conn, reason, now)).await
    }

    /// Makes a local connection join `room`; `false` if it was a member already.
    pub async fn join(&self, conn: ConnId, room: &str) -> Result<bool, Error> {
        let room = room.to_owned();
        self.hub(move |hub, now| hub.join(conn, &room, now)).await
    }

    /// Makes a local connection leave `room`; `false` if it was not a member.
    pub async fn leave(&self, conn: ConnId, room: &str) -> Result<bool, Error> {
        let room = room.to_owned();
        self.hub(move |hub, now| hub.leave(conn, &room, now)).await
    }

    /// Sends `{"event","data"}` to one connection, on any instance.
    pub async fn send<T: Serialize + ?Sized>(
        &self,
        conn: ConnId,
        event: &str,
        data: &T,
    ) -> Result<(), Error> {
        let (event, data) = (event.to_owned(), raw(data)?);
        self.hub(move |hub, now| hub.send(conn, &event, &*data, now)).await
    }

    /// Sends `{"event","data"}` to every session of a user, on every instance.
    pub async fn send_to_user<T: Serialize + ?Sized>(
        &self,
        user_id: &str,
        event: &str,
        data: &T,
    ) -> Result<(), Error> {
        let (user, event, data) = (user_id.to_owned(), event.to_owned(), raw(data)?);
        self.hub(move |hub, now| hub.send_to_user(&user, &event, &*data, now)).await
    }

    /// Sends `{"event","room","data"}` to every member of `room` on every instance, except those
    /// `exclude` names.
    pub async fn broadcast_room<T: Serialize + ?Sized>(
        &self,
        room: &str,
        event: &str,
        data: &T,
        exclude: Exclude,
    ) -> Result<(), Error> {
        let (room, event, data) = (room.to_owned(), event.to_owned(), raw(data)?);
        self.hub(move |hub, now| hub.broadcast_room(&room, &event, &*data, &exclude, now)).await
    }

    /// Sends `{"event","data"}` to every authenticated connection on every instance.
    pub async fn broadcast_all<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
        exclude: Exclude,
    ) -> Result<(), Error> {
        let (event, data) = (event.to_owned(), raw(data)?);
        self.hub(move |hub, now| hub.broadcast_all(&event, &*data, &exclude, now)).await
    }

    /// Answers a client's request with `{"event":"reply","id":<id>,"data":..}`.
    pub async fn reply<T: Serialize + ?Sized>(
        &self,
        conn: ConnId,
        id: RequestId,
        data: &T,
    ) -> Result<(), Error> {
        let data = raw(data)?;
        self.hub(move |hub, now| hub.reply(conn, &id, &*data, now)).await
    }

    /// Closes a local connection with `code` and `reason`.
    pub async fn close(
        &self,
        conn: ConnId,
        code: CloseCode,
        reason: impl Into<Cow<'static, str>>,
    ) -> Result<(), Error> {
        let reason = reason.into();
        self.hub(move |hub, now| hub.close(conn, code, reason, now)).await
    }

    /// Every local connection.
    pub async fn connections(&self) -> Result<Vec<ConnId>, Error> {
        self.call(|d| d.hub.connections().collect()).await
    }

    /// The local members of `room`.
    pub async fn room_members(&self, room: &str) -> Result<Vec<ConnId>, Error> {
        let room = room.to_owned();
        self.call(move |d| d.hub.room_members(&room).collect()).await
    }

    /// The rooms a local connection is in, in join order.
    pub async fn rooms_of(&self, conn: ConnId) -> Result<Vec<String>, Error> {
        self.call(move |d| d.hub.rooms_of(conn).map(str::to_owned).collect()).await
    }

    /// The local sessions of a user.
    pub async fn user_connections(&self, user_id: &str) -> Result<Vec<ConnId>, Error> {
        let user = user_id.to_owned();
        self.call(move |d| d.hub.user_connections(&user).collect()).await
    }

    /// The members of `room`, with their user id and metadata: this instance's, and with cluster
    /// presence on ([`HubConfig::cluster_presence`](roomcast_core::HubConfig::cluster_presence))
    /// the other instances' too, local ones first. For an answer that names the instances that
    /// did not reply, use [`cluster_query`](Self::cluster_query).
    pub async fn presence(&self, room: &str) -> Result<Vec<Member>, Error> {
        let room = room.to_owned();
        self.call(move |d| {
            d.hub
                .presence(&room)
                .iter()
                .map(|e| Member {
                    conn: e.conn,
                    user_id: e.user_id.map(str::to_owned),
                    metadata: e.metadata.map(RawValue::to_owned),
                })
                .collect()
        })
        .await
    }

    /// Whether a user has a session on this instance or, with cluster presence on, a session on
    /// another instance in a room this instance has members in.
    pub async fn user_online(&self, user_id: &str) -> Result<bool, Error> {
        let user = user_id.to_owned();
        self.call(move |d| d.hub.user_online(&user)).await
    }

    /// Runs a query or order on every instance (see [`Query`](roomcast_core::Query)); answers
    /// within `timeout` with what came back, naming the instances that did not answer.
    pub async fn cluster_query(
        &self,
        query: roomcast_core::Query,
        timeout: std::time::Duration,
    ) -> Result<roomcast_core::QueryResult, Error> {
        let (tx, rx) = oneshot::channel();
        self.call(move |d| {
            let id = d.hub.query(query, timeout, Instant::now());
            d.queries.insert(id, tx);
        })
        .await?;
        rx.await.map_err(|_| Error::Stopped)
    }

    /// Every counter of this instance.
    pub async fn metrics(&self) -> Result<Snapshot, Error> {
        self.call(|d| d.snapshot()).await
    }

    /// Closes every connection with 1001 after its queued frames, waits until every socket has
    /// closed (each gets `close_timeout` at most), and stops the hub task.
    pub async fn shutdown(&self) {
        let (done, finished) = oneshot::channel();
        if self.shared.commands.send(Command::Shutdown(done)).await.is_ok() {
            let _ = finished.await;
        }
    }

    /// Whether `shutdown` has completed (or the hub task ended).
    pub fn is_stopped(&self) -> bool {
        self.shared.commands.is_closed()
    }
}

/// One member of a room, as [`Handle::presence`] reports it.
#[derive(Debug, Clone)]
pub struct Member {
    /// The connection.
    pub conn: ConnId,
    /// Its user, if authenticated as one.
    pub user_id: Option<String>,
    /// The metadata given at authentication.
    pub metadata: Option<Box<RawValue>>,
}

/// Serializes once, in the caller's task, so the hub task only copies raw JSON.
fn raw<T: Serialize + ?Sized>(data: &T) -> Result<Box<RawValue>, Error> {
    Ok(serde_json::value::to_raw_value(data)?)
}

/// Drops the wakers that the stream's previous owner (the HTTP server's connection task) left in
/// its readiness slots. Each holds that finished task's memory, about 1.4 KiB, for as long as
/// the connection lives; a no-op waker takes their place.
fn forget_wakers(stream: &TcpStream) {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let _ = stream.poll_read_ready(&mut cx);
    let _ = stream.poll_write_ready(&mut cx);
}

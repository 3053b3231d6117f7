//! The handle applications use to talk to a running instance.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use roomcast_core::{
    CloseCode, ConnId, Exclude, HistoryPage, Hub, HubError, Identity, MetadataFilter,
    PublishRequest, RequestId, Sent,
};
use serde::Serialize;
use serde_json::value::RawValue;
use tokio::sync::{mpsc, oneshot};

use crate::app::on_connect::ConnectHook;
use crate::app::views::{Connection, Member};
use crate::driver::metrics::Snapshot;
use crate::driver::{Driver, ToHub};
use crate::options::Options;
use crate::transport::budget::Budget;
use crate::transport::tracker::Tracker;

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

/// What every clone of a [`Handle`] shares.
pub(crate) struct Shared {
    pub(crate) commands: mpsc::Sender<ToHub>,
    pub(crate) tracker: Arc<Tracker>,
    pub(crate) options: Options,
    /// The application's `on_connect` hook.
    pub(crate) on_connect: Option<ConnectHook>,
    /// Whether connections keep their upgrade request (the application has hooks or handlers).
    pub(crate) keeps_requests: bool,
    /// What every fast-path socket holds unwritten, together.
    pub(crate) budget: Arc<Budget>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("options", &self.options)
            .field("on_connect", &self.on_connect.is_some())
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub(crate) fn new(
        commands: mpsc::Sender<ToHub>,
        tracker: Arc<Tracker>,
        options: Options,
        on_connect: Option<ConnectHook>,
        keeps_requests: bool,
        budget: Arc<Budget>,
    ) -> Self {
        Self { commands, tracker, options, on_connect, keeps_requests, budget }
    }
}

/// A cloneable handle to a running instance: attach sockets, call the hub, shut down.
#[derive(Clone, Debug)]
pub struct Handle {
    shared: Arc<Shared>,
}

/// A [`Handle`] that does not keep the instance running, for the application's own tasks
/// (the dispatcher of handlers): the instance stops when the last real handle and socket are
/// gone, as without handlers.
#[derive(Clone, Debug)]
pub(crate) struct WeakHandle(std::sync::Weak<Shared>);

impl WeakHandle {
    pub(crate) fn upgrade(&self) -> Option<Handle> {
        self.0.upgrade().map(|shared| Handle { shared })
    }
}

impl Handle {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// What every clone shares (for the socket attach in `transport::attach`).
    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    pub(crate) fn downgrade(&self) -> WeakHandle {
        WeakHandle(Arc::downgrade(&self.shared))
    }

    /// The instance's options (with the generated server id).
    pub fn options(&self) -> &Options {
        &self.shared.options
    }

    /// Runs `call` on the hub task and returns its result.
    async fn call<R: Send + 'static>(
        &self,
        call: impl FnOnce(&mut Driver) -> R + Send + 'static,
    ) -> Result<R, Error> {
        let (tx, rx) = oneshot::channel();
        let command = ToHub::Call(Box::new(move |driver: &mut Driver| {
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

    /// Accepts a connection's `refresh` ([`Event::Refresh`](roomcast_core::Event::Refresh)):
    /// its credentials now expire as `identity` says; it is answered `refreshed`.
    pub async fn accept_refresh(
        &self,
        conn: ConnId,
        identity: Identity,
        id: Option<RequestId>,
    ) -> Result<(), Error> {
        self.hub(move |hub, now| hub.accept_refresh(conn, identity, id.as_ref(), now)).await
    }

    /// Fans out a client's publish the application approved
    /// ([`Event::Publish`](roomcast_core::Event::Publish)); refuse one with
    /// [`reply_error`](Self::reply_error) and its `id`.
    pub async fn accept_publish(&self, request: PublishRequest) -> Result<(), Error> {
        self.hub(move |hub, now| hub.accept_publish(&request, now)).await
    }

    /// Refuses a connection's `refresh`: an `error` with code `refresh_rejected`; it keeps its
    /// credentials until they expire.
    pub async fn reject_refresh(
        &self,
        conn: ConnId,
        id: Option<RequestId>,
        reason: &str,
    ) -> Result<(), Error> {
        let reason = reason.to_owned();
        self.hub(move |hub, now| hub.reject_refresh(conn, &reason, id.as_ref(), now)).await
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
    ///
    /// Every send answers what it did ([`Sent`]): how many connections of this instance it
    /// reached, and whether it was published for the other instances. On an instance without a
    /// bus, `Sent { local: 0, published: false }` means nobody got it: an unknown or closed
    /// connection, a user with no session (`send_to_user("ghost")`), an empty room.
    pub async fn send<T: Serialize + ?Sized>(
        &self,
        conn: ConnId,
        event: &str,
        data: &T,
    ) -> Result<Sent, Error> {
        let (event, data) = (event.to_owned(), raw(data)?);
        self.hub(move |hub, now| hub.send(conn, &event, &*data, now)).await
    }

    /// Sends `{"event","data"}` to every session of a user, on every instance.
    pub async fn send_to_user<T: Serialize + ?Sized>(
        &self,
        user_id: &str,
        event: &str,
        data: &T,
    ) -> Result<Sent, Error> {
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
    ) -> Result<Sent, Error> {
        let (room, event, data) = (room.to_owned(), event.to_owned(), raw(data)?);
        self.hub(move |hub, now| hub.broadcast_room(&room, &event, &*data, &exclude, now)).await
    }

    /// Sends `{"event","data"}` to every authenticated connection on every instance.
    pub async fn broadcast_all<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
        exclude: Exclude,
    ) -> Result<Sent, Error> {
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

    /// A room's kept messages after the offset `since`, at most `limit`, oldest first
    /// ([`Hub::history`]). `None` for a room without history, or with nothing kept and nobody
    /// in it.
    pub async fn history(
        &self,
        room: &str,
        since: u64,
        limit: usize,
    ) -> Result<Option<HistoryPage>, Error> {
        let room = room.to_owned();
        self.call(move |d| d.hub.history(&room, since, limit)).await
    }

    /// A room's newest offset and its epoch, if it keeps a history and has a stream
    /// ([`Hub::history_position`]).
    pub async fn history_position(&self, room: &str) -> Result<Option<(u64, String)>, Error> {
        let room = room.to_owned();
        self.call(move |d| d.hub.history_position(&room).map(|(o, e)| (o, e.to_owned()))).await
    }

    /// Forgets a room's history, messages and numbering ([`Hub::remove_history`]); `false` if
    /// it had none.
    pub async fn remove_history(&self, room: &str) -> Result<bool, Error> {
        let room = room.to_owned();
        self.call(move |d| d.hub.remove_history(&room)).await
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
        self.call(move |d| d.hub.presence(&room).iter().map(Member::from).collect()).await
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

    /// What the hub knows of a local connection now: user, rooms, metadata, times. `None` if it
    /// is not on this instance (any more).
    pub async fn connection(&self, conn: ConnId) -> Result<Option<Connection>, Error> {
        self.call(move |d| {
            let info = d.hub.connection(conn)?;
            let (now, wall) = (Instant::now(), SystemTime::now());
            let wall_of = |at: Instant| wall - now.saturating_duration_since(at);
            Some(Connection {
                conn,
                user_id: info.user_id.map(str::to_owned),
                rooms: info.rooms().map(str::to_owned).collect(),
                metadata: info.metadata.map(RawValue::to_owned),
                connected_at: wall_of(info.connected_at),
                last_activity: wall_of(info.last_activity),
            })
        })
        .await
    }

    /// Replaces a local connection's metadata (`null` clears it).
    pub async fn set_metadata<T: Serialize + ?Sized>(
        &self,
        conn: ConnId,
        metadata: &T,
    ) -> Result<(), Error> {
        let metadata = raw(metadata)?;
        self.hub(move |hub, now| hub.set_metadata(conn, &*metadata, now)).await
    }

    /// The local connections whose metadata matches `filter`. For every instance, use
    /// [`cluster_query`](Self::cluster_query) with
    /// [`Query::Connections`](roomcast_core::Query::Connections).
    pub async fn connections_matching(&self, filter: MetadataFilter) -> Result<Vec<Member>, Error> {
        self.call(move |d| d.hub.connections_matching(&filter).iter().map(Member::from).collect())
            .await
    }

    /// Sends `{"event","data"}` to each of `conns` once, wherever they are.
    pub async fn send_to_conns<T: Serialize + ?Sized>(
        &self,
        conns: Vec<ConnId>,
        event: &str,
        data: &T,
    ) -> Result<Sent, Error> {
        let (event, data) = (event.to_owned(), raw(data)?);
        self.hub(move |hub, now| hub.send_to_conns(&conns, &event, &*data, now)).await
    }

    /// Sends to the members of `rooms` (everyone if it is empty), each connection once, minus
    /// the members of `except_rooms` and those `exclude` names, on every instance.
    pub async fn broadcast_rooms<T: Serialize + ?Sized>(
        &self,
        rooms: Vec<String>,
        except_rooms: Vec<String>,
        event: &str,
        data: &T,
        exclude: Exclude,
    ) -> Result<Sent, Error> {
        self.broadcast_rooms_path(rooms, except_rooms, event, None, data, exclude).await
    }

    /// [`broadcast_rooms`](Self::broadcast_rooms), with a `path` in the frame.
    pub(crate) async fn broadcast_rooms_path<T: Serialize + ?Sized>(
        &self,
        rooms: Vec<String>,
        except_rooms: Vec<String>,
        event: &str,
        path: Option<String>,
        data: &T,
        exclude: Exclude,
    ) -> Result<Sent, Error> {
        let (event, data) = (event.to_owned(), raw(data)?);
        self.hub(move |hub, now| {
            let rooms: Vec<&str> = rooms.iter().map(String::as_str).collect();
            let except: Vec<&str> = except_rooms.iter().map(String::as_str).collect();
            let path = path.as_deref();
            hub.broadcast_rooms_path(&rooms, &except, &event, path, &*data, &exclude, now)
        })
        .await
    }

    /// Sends `{"event","path","data"}` to one connection, on any instance: a frame its client
    /// routes on `path` (1 to 256 bytes), as moost's `send(event, path, data)`.
    pub async fn send_path<T: Serialize + ?Sized>(
        &self,
        conn: ConnId,
        event: &str,
        path: &str,
        data: &T,
    ) -> Result<Sent, Error> {
        let (event, path, data) = (event.to_owned(), path.to_owned(), raw(data)?);
        self.hub(move |hub, now| hub.send_path(conn, &event, Some(&path), &*data, now)).await
    }

    /// Answers a request with already-serialized data (none: a reply without `data`).
    pub(crate) async fn reply_raw(
        &self,
        conn: ConnId,
        id: RequestId,
        data: Option<Box<RawValue>>,
    ) -> Result<(), Error> {
        self.hub(move |hub, now| match data {
            Some(data) => hub.reply(conn, &id, &*data, now),
            None => hub.reply(conn, &id, &(), now),
        })
        .await
    }

    /// Answers a client's event with an error of the application's own code; with the
    /// request's `id` if it had one. The connection stays open.
    pub async fn reply_error(
        &self,
        conn: ConnId,
        id: Option<RequestId>,
        code: &str,
        message: &str,
    ) -> Result<(), Error> {
        let (code, message) = (code.to_owned(), message.to_owned());
        self.hub(move |hub, now| hub.reply_error(conn, id.as_ref(), &code, &message, now)).await
    }

    /// The application cannot keep up with this connection's events: the hub closes it (4009).
    pub(crate) async fn overload(&self, conn: ConnId) -> Result<(), Error> {
        self.call(move |d| d.hub.handle_overload(conn, Instant::now())).await
    }

    /// Every counter of this instance.
    pub async fn metrics(&self) -> Result<Snapshot, Error> {
        self.call(|d| d.snapshot()).await
    }

    /// Closes every connection with 1001 after its queued frames, waits until every socket has
    /// closed (each gets `close_timeout` at most), and stops the hub task.
    pub async fn shutdown(&self) {
        let (done, finished) = oneshot::channel();
        if self.shared.commands.send(ToHub::Shutdown(done)).await.is_ok() {
            let _ = finished.await;
        }
    }

    /// Whether `shutdown` has completed (or the hub task ended).
    pub fn is_stopped(&self) -> bool {
        self.shared.commands.is_closed()
    }
}

/// Serializes once, in the caller's task, so the hub task only copies raw JSON.
fn raw<T: Serialize + ?Sized>(data: &T) -> Result<Box<RawValue>, Error> {
    Ok(serde_json::value::to_raw_value(data)?)
}

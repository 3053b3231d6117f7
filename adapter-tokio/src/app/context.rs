//! A connection as a handler sees it ([`Socket`]), and sends to rooms with exceptions
//! ([`Broadcast`], as socketioxide's `io.to(room).except(..).emit(..)`).

use std::sync::Arc;
use std::time::SystemTime;

use roomcast_core::{CloseCode, ConnId, Exclude};
use serde::Serialize;

use crate::app::extensions::Extensions;
use crate::app::handle::{Error, Handle};
use crate::app::views::Connection;
use crate::transport::request::UpgradeRequest;

/// One connection, in a handler or a hook: who it is, the request that opened it, and what can
/// be done to it. Cheap to clone. Calls go to the hub task; a connection that has gone meanwhile
/// makes them fail with [`Error::Hub`].
#[derive(Clone, Debug)]
pub struct Socket {
    conn: ConnId,
    user_id: Option<Arc<str>>,
    request: Option<Arc<UpgradeRequest>>,
    connected_at: SystemTime,
    extensions: Extensions,
    handle: Handle,
}

impl Socket {
    pub(crate) fn new(
        conn: ConnId,
        user_id: Option<Arc<str>>,
        request: Option<Arc<UpgradeRequest>>,
        connected_at: SystemTime,
        extensions: Extensions,
        handle: Handle,
    ) -> Self {
        Self { conn, user_id, request, connected_at, extensions, handle }
    }

    /// The connection's typed state: values of the application's own types, kept for as long as
    /// it lives, without a trip to the hub (a session, a player, a rate counter). Also read with
    /// the [`Extension`](crate::Extension) extractor.
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    /// The connection's id.
    pub fn id(&self) -> ConnId {
        self.conn
    }

    /// Its user, once authenticated as one.
    pub fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }

    /// The HTTP request that opened it: path, query, headers, cookies, peer address. `None` for
    /// sockets handed over without one ([`Handle::serve_socket`], [`Handle::serve_tcp`]).
    pub fn request(&self) -> Option<&UpgradeRequest> {
        self.request.as_deref()
    }

    /// When it connected, by the wall clock.
    pub fn connected_at(&self) -> SystemTime {
        self.connected_at
    }

    /// The instance it is on.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Sends `{"event","data"}` to this connection.
    pub async fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), Error> {
        self.handle.send(self.conn, event, data).await.map(drop)
    }

    /// Sends `{"event","path","data"}` to this connection: a frame its client routes on `path`
    /// (moost's `send(event, path, data)`), 1 to 256 bytes.
    pub async fn emit_path<T: Serialize + ?Sized>(
        &self,
        event: &str,
        path: &str,
        data: &T,
    ) -> Result<(), Error> {
        self.handle.send_path(self.conn, event, path, data).await.map(drop)
    }

    /// Joins `room`; the client is told with `joined`. `false` if it was in it already.
    pub async fn join(&self, room: &str) -> Result<bool, Error> {
        self.handle.join(self.conn, room).await
    }

    /// Leaves `room`; the client is told with `left`. `false` if it was not in it.
    pub async fn leave(&self, room: &str) -> Result<bool, Error> {
        self.handle.leave(self.conn, room).await
    }

    /// The rooms it is in, in the order it joined them.
    pub async fn rooms(&self) -> Result<Vec<String>, Error> {
        self.handle.rooms_of(self.conn).await
    }

    /// Everything the hub knows of it now: user, rooms, metadata, last activity.
    pub async fn info(&self) -> Result<Connection, Error> {
        self.handle
            .connection(self.conn)
            .await?
            .ok_or(Error::Hub(roomcast_core::HubError::UnknownConn(self.conn)))
    }

    /// Replaces its metadata (PXL's `updateClient`): presence and metadata queries see the new
    /// value.
    pub async fn set_metadata<T: Serialize + ?Sized>(&self, metadata: &T) -> Result<(), Error> {
        self.handle.set_metadata(self.conn, metadata).await
    }

    /// A send to the members of `room`, this connection excepted (as socket.io's
    /// `socket.to(room)`); add rooms and exceptions, then [`emit`](Broadcast::emit).
    pub fn to(&self, room: impl Into<String>) -> Broadcast {
        self.handle.to(room).except(self.conn)
    }

    /// A send to every connection of the server but this one.
    pub fn broadcast(&self) -> Broadcast {
        self.handle.broadcast().except(self.conn)
    }

    /// Closes the connection with 1000 and `reason`.
    pub async fn disconnect(&self, reason: &str) -> Result<(), Error> {
        self.handle.close(self.conn, CloseCode::NORMAL, reason.to_owned()).await
    }
}

/// A send to rooms (or to everyone), with exceptions; made by [`Handle::to`],
/// [`Handle::broadcast`], [`Socket::to`] or [`Socket::broadcast`]. Each connection gets the
/// message once, even if it is in several of the rooms; exceptions hold on every instance.
#[derive(Debug, Clone)]
#[must_use = "a Broadcast does nothing until emit"]
pub struct Broadcast {
    handle: Handle,
    /// `None`: everyone.
    rooms: Option<Vec<String>>,
    except_rooms: Vec<String>,
    exclude: Exclude,
    path: Option<String>,
}

impl Broadcast {
    pub(crate) fn new(handle: Handle, rooms: Option<Vec<String>>) -> Self {
        Self { handle, rooms, except_rooms: Vec::new(), exclude: Exclude::none(), path: None }
    }

    /// Puts a `path` in the frame (`{"event","room","path","data"}`), for clients that route on
    /// it (moost's `send(event, path, data)`): 1 to 256 bytes.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// Adds a room (ignored for a send to everyone).
    pub fn to(mut self, room: impl Into<String>) -> Self {
        if let Some(rooms) = &mut self.rooms {
            rooms.push(room.into());
        }
        self
    }

    /// Adds rooms (ignored for a send to everyone).
    pub fn to_rooms<I: IntoIterator<Item = R>, R: Into<String>>(mut self, rooms: I) -> Self {
        if let Some(all) = &mut self.rooms {
            all.extend(rooms.into_iter().map(Into::into));
        }
        self
    }

    /// Leaves out one connection.
    pub fn except(mut self, conn: ConnId) -> Self {
        self.exclude.conns.push(conn);
        self
    }

    /// Leaves out every session of a user.
    pub fn except_user(mut self, user_id: impl Into<String>) -> Self {
        self.exclude.users.push(user_id.into());
        self
    }

    /// Leaves out the members of a room.
    pub fn except_room(mut self, room: impl Into<String>) -> Self {
        self.except_rooms.push(room.into());
        self
    }

    /// Sends `{"event","room"?,"data"}`: serialized once, delivered once per connection.
    pub async fn emit<T: Serialize + ?Sized>(self, event: &str, data: &T) -> Result<(), Error> {
        self.emit_counted(event, data).await.map(drop)
    }

    /// [`emit`](Self::emit), answering whom it reached ([`Sent`](roomcast_core::Sent)).
    pub async fn emit_counted<T: Serialize + ?Sized>(
        self,
        event: &str,
        data: &T,
    ) -> Result<roomcast_core::Sent, Error> {
        let rooms = self.rooms.unwrap_or_default();
        let (except, exclude, path) = (self.except_rooms, self.exclude, self.path);
        self.handle.broadcast_rooms_path(rooms, except, event, path, data, exclude).await
    }
}

impl Handle {
    /// A send to the members of `room`; add rooms and exceptions, then
    /// [`emit`](Broadcast::emit).
    pub fn to(&self, room: impl Into<String>) -> Broadcast {
        Broadcast::new(self.clone(), Some(vec![room.into()]))
    }

    /// A send to the members of every room in `rooms`, each connection once.
    pub fn to_rooms<I: IntoIterator<Item = R>, R: Into<String>>(&self, rooms: I) -> Broadcast {
        Broadcast::new(self.clone(), Some(rooms.into_iter().map(Into::into).collect()))
    }

    /// A send to every authenticated connection, on every instance.
    pub fn broadcast(&self) -> Broadcast {
        Broadcast::new(self.clone(), None)
    }
}

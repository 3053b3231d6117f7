//! Calls of the application (or of the server's authenticator) into the hub.

use std::borrow::Cow;
use std::time::Instant;

use serde::Serialize;
use serde_json::value::RawValue;

use super::{Delivery, Hub, Refusal, Sent, Stage};
use crate::envelope::TargetKind;
use crate::wire::{self, ErrorCode, ServerFrame};
use crate::{AuthDenied, CloseCode, ConnId, HubError, Identity, PublishRequest, RequestId};

/// Who to leave out of a broadcast, on every instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exclude {
    /// These connections.
    pub conns: Vec<ConnId>,
    /// Every session of these users.
    pub users: Vec<String>,
}

impl Exclude {
    /// Leave out nobody.
    pub fn none() -> Self {
        Self::default()
    }

    /// Leave out one connection (typically the sender).
    pub fn conn(conn: ConnId) -> Self {
        Self { conns: vec![conn], users: Vec::new() }
    }

    /// Leave out every session of one user.
    pub fn user(user_id: impl Into<String>) -> Self {
        Self { conns: Vec::new(), users: vec![user_id.into()] }
    }
}

impl Hub {
    /// Accepts a connection's authentication (after [`Event::Authenticate`](crate::Event), or
    /// at any time before it, e.g. for a cookie checked at the HTTP upgrade): it gets
    /// `connected`, joins its user's sessions, and may now join rooms.
    pub fn accept_auth(
        &mut self,
        conn: ConnId,
        identity: Identity,
        now: Instant,
    ) -> Result<(), HubError> {
        let now = self.advance(now);
        self.authenticate_as(conn, identity, now)
    }

    /// Rejects a connection's authentication: it is closed with 4003 and `reason`.
    pub fn reject_auth(
        &mut self,
        conn: ConnId,
        reason: impl Into<Cow<'static, str>>,
        now: Instant,
    ) -> Result<(), HubError> {
        self.deny_closing(conn, CloseCode::AUTH_REJECTED, reason.into(), now)
    }

    /// Denies a connection's authentication for any of the [`AuthDenied`] reasons: it is
    /// closed with the code the reason calls for (4003 refused, 1013 authority unavailable,
    /// 1011 authority failed).
    pub fn deny_auth(
        &mut self,
        conn: ConnId,
        denied: AuthDenied,
        now: Instant,
    ) -> Result<(), HubError> {
        let code = denied.close_code();
        let reason = match denied {
            AuthDenied::Rejected(r) | AuthDenied::Unavailable(r) | AuthDenied::Failed(r) => r,
        };
        self.deny_closing(conn, code, Cow::Owned(reason), now)
    }

    fn deny_closing(
        &mut self,
        conn: ConnId,
        code: CloseCode,
        reason: Cow<'static, str>,
        now: Instant,
    ) -> Result<(), HubError> {
        self.advance(now);
        match self.conns.get(&conn).map(|c| c.stage) {
            None => Err(HubError::UnknownConn(conn)),
            Some(stage) if stage.is_authenticated() => Err(HubError::AlreadyAuthenticated(conn)),
            Some(_) => {
                self.close_conn(conn, code, reason);
                Ok(())
            }
        }
    }

    /// Accepts a connection's `refresh` ([`Event::Refresh`](crate::Event::Refresh)): its
    /// credentials now expire as `identity` says, and its room permissions are `identity`'s. It
    /// is answered `refreshed` (with the request's `id`). The user cannot change: an identity
    /// of another user is refused as [`reject_refresh`](Self::reject_refresh) would. Its
    /// metadata stays what it was.
    pub fn accept_refresh(
        &mut self,
        conn: ConnId,
        identity: Identity,
        id: Option<&RequestId>,
        now: Instant,
    ) -> Result<(), HubError> {
        let now = self.advance(now);
        let c = self.conns.get_mut(&conn).ok_or(HubError::UnknownConn(conn))?;
        if !c.stage.is_authenticated() {
            return Err(HubError::NotAuthenticated(conn));
        }
        if c.user.as_deref() != identity.user_id.as_deref() {
            let message = "a refresh cannot change the user";
            self.error(conn, ErrorCode::RefreshRejected, message, None, id);
            return Ok(());
        }
        c.stage = Stage::Authenticated { expires: identity.expires_in.map(|d| now + d) };
        c.acl = identity.rooms;
        let frame = wire::expiry_frame("refreshed", id, identity.expires_in);
        self.transmit(vec![conn], frame);
        // The expiry may have moved either way: the timer follows at its next firing, or now.
        self.arm(conn);
        Ok(())
    }

    /// Fans out a client's publish that the application approved
    /// ([`Event::Publish`](crate::Event::Publish), in a room whose policy is
    /// [`PublishPolicy::Checked`](crate::PublishPolicy::Checked)), as the hub would have at once
    /// without the check. A sender that has left the room (or the connection) meanwhile is
    /// answered `forbidden` instead. To refuse one, answer with
    /// [`reply_error`](Self::reply_error) and the request's `id`.
    pub fn accept_publish(
        &mut self,
        request: &PublishRequest,
        now: Instant,
    ) -> Result<(), HubError> {
        self.local(request.conn, now)?;
        if !self.is_member(request.conn, &request.room) {
            let message = "only members of a room may publish to it";
            let (room, id) = (Some(request.room.as_str()), request.id.as_ref());
            self.error(request.conn, ErrorCode::Forbidden, message, room, id);
            return Ok(());
        }
        self.publish_from(
            request.conn,
            &request.room,
            &request.event,
            request.data.as_deref(),
            request.exclude_self,
            request.exclude_user,
        );
        Ok(())
    }

    /// Refuses a connection's `refresh`: it is answered with an `error` (code
    /// `refresh_rejected`, the request's `id`) and keeps its credentials until they expire.
    pub fn reject_refresh(
        &mut self,
        conn: ConnId,
        reason: &str,
        id: Option<&RequestId>,
        now: Instant,
    ) -> Result<(), HubError> {
        self.local(conn, now)?;
        self.error(conn, ErrorCode::RefreshRejected, reason, None, id);
        Ok(())
    }

    /// Makes an authenticated local connection join `room`, whatever the room's policy and the
    /// connection's [`RoomAcl`](crate::RoomAcl).
    /// `Ok(false)` if it was a member already. The client is told with `joined` (without an
    /// `id`: nobody asked) listing all its rooms, so that a client always knows its rooms.
    pub fn join(&mut self, conn: ConnId, room: &str, now: Instant) -> Result<bool, HubError> {
        self.advance(now);
        let joined = self.join_room(conn, room, false).map_err(|refusal| match refusal {
            Refusal::Unknown => HubError::UnknownConn(conn),
            Refusal::InvalidRoom => HubError::InvalidRoom { max: self.config.max_room_name_bytes },
            Refusal::TooMany => HubError::RoomLimit { conn, max: self.config.max_rooms_per_conn },
            Refusal::Unauthenticated | Refusal::Forbidden => HubError::NotAuthenticated(conn),
        })?;
        if joined {
            self.answer_rooms(conn, "joined", None);
        }
        Ok(joined)
    }

    /// Makes a local connection leave `room`. `Ok(false)` if it was not a member. The client is
    /// told with `left` (without an `id`) listing the rooms it is still in.
    pub fn leave(&mut self, conn: ConnId, room: &str, now: Instant) -> Result<bool, HubError> {
        self.local(conn, now)?;
        let left = self.leave_room(conn, room);
        if left {
            self.answer_rooms(conn, "left", None);
        }
        Ok(left)
    }

    /// Replaces a local connection's metadata (what [`Identity::metadata`](crate::Identity) gave at
    /// authentication): presence answers, notices and cluster queries see the new value from
    /// now on; with cluster presence, the other instances' replicas are told too.
    pub fn set_metadata<T: Serialize + ?Sized>(
        &mut self,
        conn: ConnId,
        metadata: &T,
        now: Instant,
    ) -> Result<(), HubError> {
        self.advance(now);
        let metadata = to_data("metadata", metadata)?;
        let Some(c) = self.conns.get_mut(&conn) else {
            return Err(HubError::UnknownConn(conn));
        };
        c.metadata = metadata;
        if self.config.cluster_presence {
            self.announce_update(conn);
        }
        Ok(())
    }

    /// Sends `{"event","data"}` to each of `conns` once, wherever they are: the local ones in one
    /// frame serialized once, each of the others through the bus (an envelope per connection).
    /// A connection named twice gets it once.
    pub fn send_to_conns<T: Serialize + ?Sized>(
        &mut self,
        conns: &[ConnId],
        event: &str,
        data: &T,
        now: Instant,
    ) -> Result<Sent, HubError> {
        self.advance(now);
        let data = to_data(event, data)?;
        let mut unique = crate::members::MemberSet::with_hasher(self.conns.hasher().clone());
        unique.extend(conns.iter().copied());
        let (local, remote): (Vec<ConnId>, Vec<ConnId>) =
            unique.into_iter().partition(|conn| self.conns.contains_key(conn));
        let sent = Sent { local: local.len(), published: !remote.is_empty() };
        if !local.is_empty() {
            let frame =
                ServerFrame { event, room: None, path: None, data: data.as_deref(), id: None }
                    .encode();
            self.transmit(local, frame);
        }
        if self.config.standalone {
            return Ok(Sent { published: false, ..sent });
        }
        for conn in remote {
            let target = conn.to_string();
            self.publish(&Delivery {
                kind: TargetKind::Client,
                target: Some(&target),
                event,
                data: data.as_deref(),
                exclude_conns: &[],
                exclude_users: &[],
                rooms: &[],
                except_rooms: &[],
                path: None,
            });
        }
        Ok(sent)
    }

    /// Sends `{"event","data"}` to one connection, on this instance or (through the bus) on any
    /// other. `data` is serialized once; `()` or `null` sends no `data`. [`Sent`] says whether
    /// the connection is here (`local: 1`), or the send went to the bus for another instance.
    pub fn send<T: Serialize + ?Sized>(
        &mut self,
        conn: ConnId,
        event: &str,
        data: &T,
        now: Instant,
    ) -> Result<Sent, HubError> {
        self.send_path(conn, event, None, data, now)
    }

    /// [`send`](Self::send) with a `path` in the frame (`{"event","path","data"}`), for clients
    /// that route on it (moost's `send(event, path, data)`); `None` is a plain send.
    pub fn send_path<T: Serialize + ?Sized>(
        &mut self,
        conn: ConnId,
        event: &str,
        path: Option<&str>,
        data: &T,
        now: Instant,
    ) -> Result<Sent, HubError> {
        self.advance(now);
        check_path(path)?;
        // Connection ids are unique cluster-wide: a local one needs no envelope and no publish.
        if self.conns.contains_key(&conn) {
            let data = to_data(event, data)?;
            let frame =
                ServerFrame { event, room: None, path, id: None, data: data.as_deref() }.encode();
            self.transmit(vec![conn], frame);
            return Ok(Sent { local: 1, published: false });
        }
        let target = conn.to_string();
        let exclude = Exclude::none();
        self.send_to_rooms(TargetKind::Client, Some(&target), &[], &[], event, path, data, &exclude)
    }

    /// Sends `{"event","data"}` to every session of `user_id`, on every instance.
    pub fn send_to_user<T: Serialize + ?Sized>(
        &mut self,
        user_id: &str,
        event: &str,
        data: &T,
        now: Instant,
    ) -> Result<Sent, HubError> {
        self.advance(now);
        if !(1..=super::MAX_USER_ID_BYTES).contains(&user_id.len()) {
            return Err(HubError::InvalidUser);
        }
        self.send_out(TargetKind::User, Some(user_id), event, data, &Exclude::none())
    }

    /// Sends `{"event","room","data"}` to every member of `room` on every instance, except those
    /// `exclude` names.
    pub fn broadcast_room<T: Serialize + ?Sized>(
        &mut self,
        room: &str,
        event: &str,
        data: &T,
        exclude: &Exclude,
        now: Instant,
    ) -> Result<Sent, HubError> {
        self.advance(now);
        if !self.valid_room(room) {
            return Err(HubError::InvalidRoom { max: self.config.max_room_name_bytes });
        }
        self.send_out(TargetKind::Room, Some(room), event, data, exclude)
    }

    /// Sends `{"event","data"}` to every authenticated connection on every instance, except
    /// those `exclude` names.
    pub fn broadcast_all<T: Serialize + ?Sized>(
        &mut self,
        event: &str,
        data: &T,
        exclude: &Exclude,
        now: Instant,
    ) -> Result<Sent, HubError> {
        self.advance(now);
        self.send_out(TargetKind::Broadcast, None, event, data, exclude)
    }

    /// Sends `{"event","room"?,"data"}` to the members of every room in `rooms` on every
    /// instance, each connection once even if it is in several (PXL's `sendToRooms`), except the
    /// members of `except_rooms` and those `exclude` names. An empty `rooms` sends to every
    /// authenticated connection instead. The frame carries `room` only when there is one room.
    pub fn broadcast_rooms<T: Serialize + ?Sized>(
        &mut self,
        rooms: &[&str],
        except_rooms: &[&str],
        event: &str,
        data: &T,
        exclude: &Exclude,
        now: Instant,
    ) -> Result<Sent, HubError> {
        self.broadcast_rooms_path(rooms, except_rooms, event, None, data, exclude, now)
    }

    /// [`broadcast_rooms`](Self::broadcast_rooms) with a `path` in the frame, for clients that
    /// route on it; `None` is a plain send.
    #[allow(clippy::too_many_arguments)]
    pub fn broadcast_rooms_path<T: Serialize + ?Sized>(
        &mut self,
        rooms: &[&str],
        except_rooms: &[&str],
        event: &str,
        path: Option<&str>,
        data: &T,
        exclude: &Exclude,
        now: Instant,
    ) -> Result<Sent, HubError> {
        self.advance(now);
        check_path(path)?;
        if rooms.iter().chain(except_rooms).any(|r| !self.valid_room(r)) {
            return Err(HubError::InvalidRoom { max: self.config.max_room_name_bytes });
        }
        let mut unique: Vec<&str> = Vec::with_capacity(rooms.len());
        for room in rooms {
            if !unique.contains(room) {
                unique.push(room);
            }
        }
        match unique.as_slice() {
            [] => self.send_to_rooms(
                TargetKind::Broadcast,
                None,
                &[],
                except_rooms,
                event,
                path,
                data,
                exclude,
            ),
            [one] => self.send_to_rooms(
                TargetKind::Room,
                Some(one),
                &[],
                except_rooms,
                event,
                path,
                data,
                exclude,
            ),
            many => self.send_to_rooms(
                TargetKind::Room,
                Some(many[0]),
                many,
                except_rooms,
                event,
                path,
                data,
                exclude,
            ),
        }
    }

    /// Answers a client's request: `{"event":"reply","id":<id>,"data":..}`.
    pub fn reply<T: Serialize + ?Sized>(
        &mut self,
        conn: ConnId,
        id: &RequestId,
        data: &T,
        now: Instant,
    ) -> Result<(), HubError> {
        self.local(conn, now)?;
        let data = to_data("reply", data)?;
        let frame = ServerFrame {
            event: "reply",
            room: None,
            path: None,
            data: data.as_deref(),
            id: Some(id.as_raw()),
        }
        .encode();
        self.transmit(vec![conn], frame);
        Ok(())
    }

    /// Answers a client's event with an error of the application's own `code` (e.g.
    /// `not_found`): `{"event":"error","id"?:<id>,"data":{"code","message"}}`. The connection
    /// stays open.
    pub fn reply_error(
        &mut self,
        conn: ConnId,
        id: Option<&RequestId>,
        code: &str,
        message: &str,
        now: Instant,
    ) -> Result<(), HubError> {
        self.local(conn, now)?;
        self.stats.errors_sent += 1;
        let frame = wire::app_error_frame(code, message, id);
        self.transmit(vec![conn], frame);
        Ok(())
    }

    /// Closes a local connection with `code` and `reason` (cut to 123 bytes).
    pub fn close(
        &mut self,
        conn: ConnId,
        code: CloseCode,
        reason: impl Into<Cow<'static, str>>,
        now: Instant,
    ) -> Result<(), HubError> {
        self.local(conn, now)?;
        self.close_conn(conn, code, reason);
        Ok(())
    }

    /// The server is shutting down: every connection is closed with 1001
    /// ([`CloseCode::GOING_AWAY`]), and so is every connection that opens from now on. Follow with
    /// [`retire`](Self::retire) once the sockets are closed, to tell the other instances.
    pub fn shut_down(&mut self, now: Instant) {
        self.shutting_down = true;
        self.close_all(CloseCode::GOING_AWAY, super::SHUTDOWN_REASON, now);
    }

    /// Closes every connection, e.g. with [`CloseCode::GOING_AWAY`] on shutdown.
    pub fn close_all(&mut self, code: CloseCode, reason: &'static str, now: Instant) {
        self.advance(now);
        let all: Vec<ConnId> = self.conns.keys().copied().collect();
        for conn in all {
            self.close_conn(conn, code, reason);
        }
    }
}

impl Hub {
    /// Moves time to `now`, and checks that `conn` is a connection of this instance.
    fn local(&mut self, conn: ConnId, now: Instant) -> Result<(), HubError> {
        self.advance(now);
        if self.conns.contains_key(&conn) { Ok(()) } else { Err(HubError::UnknownConn(conn)) }
    }

    /// The path of every application send that may reach other instances: serialize once,
    /// deliver locally, publish.
    fn send_out<T: Serialize + ?Sized>(
        &mut self,
        kind: TargetKind,
        target: Option<&str>,
        event: &str,
        data: &T,
        exclude: &Exclude,
    ) -> Result<Sent, HubError> {
        self.send_to_rooms(kind, target, &[], &[], event, None, data, exclude)
    }

    #[allow(clippy::too_many_arguments)]
    fn send_to_rooms<T: Serialize + ?Sized>(
        &mut self,
        kind: TargetKind,
        target: Option<&str>,
        rooms: &[&str],
        except_rooms: &[&str],
        event: &str,
        path: Option<&str>,
        data: &T,
        exclude: &Exclude,
    ) -> Result<Sent, HubError> {
        let data = to_data(event, data)?;
        let users: Vec<&str> = exclude.users.iter().map(String::as_str).collect();
        Ok(self.deliver(&Delivery {
            kind,
            target,
            event,
            data: data.as_deref(),
            exclude_conns: &exclude.conns,
            exclude_users: &users,
            rooms,
            except_rooms,
            path,
        }))
    }
}

/// Checks a frame's path, if it has one.
fn check_path(path: Option<&str>) -> Result<(), HubError> {
    match path {
        Some(path) if !wire::valid_path(path) => Err(HubError::InvalidPath),
        _ => Ok(()),
    }
}

/// Checks the event name and serializes `data` once; `null` becomes "no data".
fn to_data<T: Serialize + ?Sized>(
    event: &str,
    data: &T,
) -> Result<Option<Box<RawValue>>, HubError> {
    if !wire::valid_event(event) {
        return Err(HubError::InvalidEvent);
    }
    let raw = serde_json::value::to_raw_value(data)?;
    Ok((raw.get() != "null").then_some(raw))
}

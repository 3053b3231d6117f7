//! The application's sends: to connections, a user's sessions, rooms, everyone, and replies to a
//! client's request. Each serializes once and goes the one way of every delivery
//! (`hub/delivery.rs`): local members, then the bus.

use std::time::Instant;

use serde::Serialize;
use serde_json::value::RawValue;

use super::{Delivery, Hub, Sent};
use crate::envelope::TargetKind;
use crate::error::HubError;
use crate::id::{ConnId, RequestId};
use crate::wire::{self, ServerFrame};

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
        let mut unique =
            crate::members::MemberSet::with_hasher(self.registry.conns.hasher().clone());
        unique.extend(conns.iter().copied());
        let (local, remote): (Vec<ConnId>, Vec<ConnId>) =
            unique.into_iter().partition(|conn| self.registry.conns.contains_key(conn));
        let sent = Sent { local: local.len(), published: !remote.is_empty(), offset: None };
        if !local.is_empty() {
            let frame = ServerFrame {
                event,
                room: None,
                path: None,
                data: data.as_deref(),
                id: None,
                offset: None,
            }
            .encode();
            self.transmit(local, frame);
        }
        if self.config.standalone {
            return Ok(Sent { published: false, ..sent });
        }
        for conn in remote {
            let target = conn.to_string();
            self.publish_to_bus(&Delivery {
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
        if self.registry.conns.contains_key(&conn) {
            let data = to_data(event, data)?;
            let frame = ServerFrame {
                event,
                room: None,
                path,
                id: None,
                offset: None,
                data: data.as_deref(),
            }
            .encode();
            self.transmit(vec![conn], frame);
            return Ok(Sent { local: 1, published: false, offset: None });
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
            offset: None,
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
pub(super) fn to_data<T: Serialize + ?Sized>(
    event: &str,
    data: &T,
) -> Result<Option<Box<RawValue>>, HubError> {
    if !wire::valid_event(event) {
        return Err(HubError::InvalidEvent);
    }
    let raw = serde_json::value::to_raw_value(data)?;
    Ok((raw.get() != "null").then_some(raw))
}

//! Frames from clients: the system events of wire protocol v1, and everything else for the app.

use std::time::Instant;

use serde_json::value::RawValue;

use super::history::{Recovery, Wanted};
use super::{Delivery, Hub, Refusal, Stage, decision_window};
use crate::close::CloseCode;
use crate::config::AuthMode;
use crate::envelope::TargetKind;
use crate::id::{ConnId, RequestId};
use crate::output::{Event, PublishRequest};
use crate::policy::{PresencePolicy, PublishPolicy};
use crate::wire::{self, AuthData, ClientFrame, ErrorCode, PresenceData, PublishData, RoomsData};

impl Hub {
    /// One complete text frame from a client. Anything wrong with it becomes an `error` frame or
    /// a close; frames of unknown or already closed connections are ignored.
    pub fn handle_frame(&mut self, conn: ConnId, bytes: &[u8], now: Instant) {
        let now = self.advance(now);
        let (pace, max_bytes) = (self.pace, self.config.max_frame_bytes);
        let Some(c) = self.registry.conns.get_mut(&conn) else {
            return;
        };
        c.last_activity = now;
        self.stats.frames_in += 1;
        if bytes.len() > max_bytes {
            return self.close_conn(conn, CloseCode::MESSAGE_TOO_BIG, "frame too large");
        }
        if let Some(pace) = pace
            && !c.bucket.take(pace, now)
        {
            return self.close_conn(conn, CloseCode::RATE_LIMITED, "rate limit exceeded");
        }
        let authenticated = c.stage.is_authenticated();
        let frame = match wire::parse_client_frame(bytes) {
            Ok(frame) => frame,
            Err(e) => {
                self.stats.bad_frames += 1;
                // The request's id, when it can be read, so that the client's request ends.
                let id = wire::request_id(bytes);
                return self.error(conn, ErrorCode::BadFrame, &e.to_string(), None, id.as_ref());
            }
        };
        match &*frame.event {
            "heartbeat" => {}
            "authenticate" => self.on_authenticate(conn, &frame, now),
            _ if !authenticated => {
                let id = frame.id.as_ref();
                self.error(conn, ErrorCode::Unauthenticated, "authenticate first", None, id);
            }
            // A frame with a `path` is the application's, whatever its name (moost's `join`
            // on `/chat/general`): system events never carry one.
            "join" if frame.path.is_none() => self.on_join(conn, &frame),
            "leave" if frame.path.is_none() => self.on_leave(conn, &frame),
            "publish" if frame.path.is_none() => self.on_publish(conn, &frame),
            "presence" if frame.path.is_none() => self.on_presence(conn, &frame),
            // With authentication on; in anonymous mode the name is the application's.
            "refresh" if frame.path.is_none() && self.config.auth == AuthMode::Required => {
                self.on_refresh(conn, &frame);
            }
            _ => self.event(Event::Message {
                conn,
                event: frame.event.into_owned(),
                data: frame.data.map(RawValue::to_owned),
                id: frame.id,
                path: frame.path.map(String::into_boxed_str),
            }),
        }
    }

    fn on_authenticate(&mut self, conn: ConnId, frame: &ClientFrame<'_>, now: Instant) {
        let id = frame.id.as_ref();
        let awaiting = self
            .registry
            .conns
            .get(&conn)
            .is_some_and(|c| matches!(c.stage, Stage::AwaitingAuth { .. }));
        if !awaiting {
            let message = "already authenticated, or authentication in progress";
            return self.error(conn, ErrorCode::AlreadyAuthenticated, message, None, id);
        }
        let token = match wire::parse_data::<AuthData<'_>>(frame.data) {
            Ok(auth) => auth.token.into_owned(),
            Err(message) => return self.error(conn, ErrorCode::BadFrame, &message, None, id),
        };
        let (Some(data), Some(c)) = (frame.data, self.registry.conns.get_mut(&conn)) else {
            return;
        };
        c.stage =
            Stage::Authenticating { deadline: now + decision_window(self.config.auth_timeout) };
        self.event(Event::Authenticate { conn, token, credentials: data.to_owned() });
        self.arm(conn);
    }

    fn on_refresh(&mut self, conn: ConnId, frame: &ClientFrame<'_>) {
        let id = frame.id.as_ref();
        let token = match wire::parse_data::<AuthData<'_>>(frame.data) {
            Ok(auth) => auth.token.into_owned(),
            Err(message) => return self.error(conn, ErrorCode::BadFrame, &message, None, id),
        };
        let Some(data) = frame.data else { return };
        let (credentials, id) = (data.to_owned(), frame.id.clone());
        self.event(Event::Refresh { conn, token, credentials, id });
    }

    /// Parses `{"rooms":[..]}`, or answers `bad_frame` / `too_many_rooms` and returns `None`.
    fn rooms_request<'f>(
        &mut self,
        conn: ConnId,
        frame: &'f ClientFrame<'_>,
    ) -> Option<RoomsData<'f>> {
        let id = frame.id.as_ref();
        let request = match wire::parse_data::<RoomsData<'_>>(frame.data) {
            Ok(request) => request,
            Err(message) => {
                self.error(conn, ErrorCode::BadFrame, &message, None, id);
                return None;
            }
        };
        // One request answers at most max_rooms_per_conn errors: no amplification.
        let max = self.config.max_rooms_per_conn;
        if request.rooms.len() > max {
            let message = format!("a request may name at most {max} rooms");
            self.error(conn, ErrorCode::TooManyRooms, &message, None, id);
            return None;
        }
        Some(request)
    }

    fn on_join(&mut self, conn: ConnId, frame: &ClientFrame<'_>) {
        let Some(request) = self.rooms_request(conn, frame) else {
            return;
        };
        let id = frame.id.as_ref();
        let mut recoveries = Vec::new();
        for room in &request.rooms {
            match self.join_room(conn, room, true) {
                Err(refusal) => self.refuse(conn, refusal, room, id),
                Ok(_) if self.history.enabled => {
                    let wanted = match request.recover.get(room) {
                        Some(r) if r.latest => Wanted::Latest,
                        Some(wire::Recover {
                            offset: Some(offset), epoch: Some(epoch), ..
                        }) => Wanted::Since { offset: *offset, epoch },
                        _ => Wanted::Nothing,
                    };
                    let user = self.registry.conns.get(&conn).and_then(|c| c.user.as_deref());
                    if let Some(recovery) = self.history.recover(room, wanted, user) {
                        recoveries.push((&**room, recovery));
                    }
                }
                Ok(_) => {}
            }
        }
        if recoveries.is_empty() {
            return self.answer_rooms(conn, "joined", id);
        }
        self.answer_recovered(conn, id, recoveries);
    }

    /// Answers a join that named rooms with history: `joined` with each one's stream (its
    /// epoch, its newest offset, whether the client's recovery succeeded), then the recovered
    /// messages, room by room, oldest first.
    fn answer_recovered(
        &mut self,
        conn: ConnId,
        id: Option<&RequestId>,
        recoveries: Vec<(&str, Recovery)>,
    ) {
        let Some(c) = self.registry.conns.get(&conn) else { return };
        let streams: Vec<_> = recoveries
            .iter()
            .map(|(room, r)| {
                let info =
                    wire::StreamInfo { epoch: &r.epoch, offset: r.top, recovered: r.recovered };
                (*room, info)
            })
            .collect();
        let joined = wire::joined_frame(id, c.rooms.iter().map(|r| &**r), &streams);
        self.transmit(vec![conn], joined);
        for (_, recovery) in recoveries {
            for frame in recovery.frames {
                self.transmit(vec![conn], frame);
            }
        }
    }

    fn on_leave(&mut self, conn: ConnId, frame: &ClientFrame<'_>) {
        let Some(request) = self.rooms_request(conn, frame) else {
            return;
        };
        let id = frame.id.as_ref();
        for room in &request.rooms {
            if !self.valid_room(room) {
                self.refuse(conn, Refusal::InvalidRoom, room, id);
            } else if !self.may_join(conn, room) {
                // A room the client could not join by itself, it cannot leave by itself either:
                // the application put it there.
                let message = "not allowed to leave this room";
                self.error(conn, ErrorCode::Forbidden, message, Some(room), id);
            } else {
                self.leave_room(conn, room);
            }
        }
        self.answer_rooms(conn, "left", id);
    }

    fn on_publish(&mut self, conn: ConnId, frame: &ClientFrame<'_>) {
        let id = frame.id.as_ref();
        let publish = match wire::parse_data::<PublishData<'_>>(frame.data) {
            Ok(publish) => publish,
            Err(message) => return self.error(conn, ErrorCode::BadFrame, &message, None, id),
        };
        let room = &*publish.room;
        if !self.valid_room(room) {
            return self.refuse(conn, Refusal::InvalidRoom, room, id);
        }
        if !wire::valid_event(&publish.event) {
            let message = "\"event\" must be a string of 1 to 128 bytes";
            return self.error(conn, ErrorCode::BadFrame, message, Some(room), id);
        }
        if wire::RESERVED_EVENTS.contains(&&*publish.event) {
            let message = "this event name is reserved for the server";
            return self.error(conn, ErrorCode::Forbidden, message, Some(room), id);
        }
        let policy = self.config.rooms.for_room(room).publish;
        if policy == PublishPolicy::Server {
            let message = "only the server publishes to this room";
            return self.error(conn, ErrorCode::Forbidden, message, Some(room), id);
        }
        if !self.is_member(conn, room) {
            let message = "only members of a room may publish to it";
            return self.error(conn, ErrorCode::Forbidden, message, Some(room), id);
        }
        if policy == PublishPolicy::Checked {
            return self.event(Event::Publish(Box::new(PublishRequest {
                conn,
                room: room.to_owned(),
                event: publish.event.into_owned(),
                data: publish.data.map(RawValue::to_owned),
                exclude_self: publish.exclude_self,
                exclude_user: publish.exclude_user,
                id: frame.id.clone(),
            })));
        }
        self.publish_from(
            conn,
            room,
            &publish.event,
            publish.data,
            publish.exclude_self,
            publish.exclude_user,
        );
    }

    /// Fans out a member's publish: to the room on every instance, minus the sender
    /// (`exclude_self`) and its user's sessions (`exclude_user`).
    pub(super) fn publish_from(
        &mut self,
        conn: ConnId,
        room: &str,
        event: &str,
        data: Option<&RawValue>,
        exclude_self: bool,
        exclude_user: bool,
    ) {
        let Some(c) = self.registry.conns.get(&conn) else { return };
        let user = if exclude_user { c.user.clone() } else { None };
        let exclude_users: Vec<&str> = user.as_deref().into_iter().collect();
        let sender = [conn];
        let exclude_conns: &[ConnId] = if exclude_self { &sender } else { &[] };
        let _ = self.deliver(&Delivery {
            kind: TargetKind::Room,
            target: Some(room),
            event,
            data,
            exclude_conns,
            exclude_users: &exclude_users,
            rooms: &[],
            except_rooms: &[],
            path: None,
        });
    }

    /// `{"event":"presence","data":{"room":..}}`: who is in a room the connection is in.
    fn on_presence(&mut self, conn: ConnId, frame: &ClientFrame<'_>) {
        let id = frame.id.as_ref();
        let request = match wire::parse_data::<PresenceData<'_>>(frame.data) {
            Ok(request) => request,
            Err(message) => return self.error(conn, ErrorCode::BadFrame, &message, None, id),
        };
        let room = &*request.room;
        if !self.valid_room(room) {
            return self.refuse(conn, Refusal::InvalidRoom, room, id);
        }
        if self.config.rooms.for_room(room).presence == PresencePolicy::Server {
            let message = "only the server may ask who is in this room";
            return self.error(conn, ErrorCode::Forbidden, message, Some(room), id);
        }
        if !self.is_member(conn, room) {
            let message = "only members of a room may ask who is in it";
            return self.error(conn, ErrorCode::Forbidden, message, Some(room), id);
        }
        let answer = crate::presence::answer(room, &self.presence(room), &[], id);
        self.transmit(vec![conn], answer);
    }

    fn refuse(&mut self, conn: ConnId, refusal: Refusal, room: &str, id: Option<&RequestId>) {
        let (code, message) = match refusal {
            Refusal::InvalidRoom => (ErrorCode::InvalidRoom, "invalid room name"),
            Refusal::Forbidden => (ErrorCode::Forbidden, "not allowed to join this room"),
            Refusal::TooMany => (ErrorCode::TooManyRooms, "room limit of this connection reached"),
            Refusal::Unauthenticated => (ErrorCode::Unauthenticated, "authenticate first"),
            Refusal::Unknown => return,
        };
        self.error(conn, code, message, Some(room), id);
    }

    /// Answers `joined` / `left` with every room the connection is now in.
    pub(super) fn answer_rooms(
        &mut self,
        conn: ConnId,
        event: &'static str,
        id: Option<&RequestId>,
    ) {
        let Some(c) = self.registry.conns.get(&conn) else {
            return;
        };
        let frame = wire::rooms_frame(event, id, c.rooms.iter().map(|r| &**r));
        self.transmit(vec![conn], frame);
    }
}

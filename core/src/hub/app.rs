//! Calls of the application (or of the server's authenticator) into the hub.

use std::borrow::Cow;
use std::time::Instant;

use serde::Serialize;

use super::sends::to_data;
use super::{Hub, Refusal, Stage};
use crate::close::{AuthDenied, CloseCode};
use crate::error::HubError;
use crate::id::{ConnId, RequestId};
use crate::identity::Identity;
use crate::output::PublishRequest;
use crate::wire::{self, ErrorCode};

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
        match self.registry.conns.get(&conn).map(|c| c.stage) {
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
        let c = self.registry.conns.get_mut(&conn).ok_or(HubError::UnknownConn(conn))?;
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
        let Some(c) = self.registry.conns.get_mut(&conn) else {
            return Err(HubError::UnknownConn(conn));
        };
        c.metadata = metadata;
        if self.config.cluster_presence {
            self.announce_update(conn);
        }
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
        let all: Vec<ConnId> = self.registry.conns.keys().copied().collect();
        for conn in all {
            self.close_conn(conn, code, reason);
        }
    }
}

impl Hub {
    /// Moves time to `now`, and checks that `conn` is a connection of this instance.
    pub(super) fn local(&mut self, conn: ConnId, now: Instant) -> Result<(), HubError> {
        self.advance(now);
        if self.registry.conns.contains_key(&conn) {
            Ok(())
        } else {
            Err(HubError::UnknownConn(conn))
        }
    }
}

//! Inputs from a connection's socket, other than its frames ([`client`](super::client)): it
//! opened, it is alive, it broke the protocol, it stopped reading, it is gone.

use std::borrow::Cow;
use std::time::Instant;

use super::{Conn, Hub, Stage};
use crate::close::{CloseCode, Violation};
use crate::config::AuthMode;
use crate::error::HubError;
use crate::id::ConnId;
use crate::identity::{Identity, RoomAcl};
use crate::output::DisconnectReason;
use crate::rate::Bucket;

/// How a connection starts.
enum Opening {
    /// As the configuration's [`AuthMode`] says.
    AsConfigured,
    /// Authenticated at once with this identity.
    As(Identity),
    /// Closed at once with this code and reason.
    Refused(CloseCode, Cow<'static, str>),
}

impl Hub {
    /// A socket opened. With [`AuthMode::Anonymous`] the connection is authenticated at once and
    /// sent `connected`; otherwise it has `auth_timeout` to send `authenticate`.
    pub fn handle_connect(&mut self, conn: ConnId, now: Instant) -> Result<(), HubError> {
        self.open(conn, Opening::AsConfigured, now)
    }

    /// A socket opened that the application turns away at once (its upgrade hook chose a close
    /// code rather than an HTTP status): the connection is closed with `code` and `reason`
    /// before anything else is sent to it, and the application sees it go with
    /// [`DisconnectReason::Closed`].
    pub fn handle_connect_refused(
        &mut self,
        conn: ConnId,
        code: CloseCode,
        reason: impl Into<Cow<'static, str>>,
        now: Instant,
    ) -> Result<(), HubError> {
        self.open(conn, Opening::Refused(code, reason.into()), now)
    }

    /// A socket opened whose client the driver or the application already identified (at the
    /// upgrade: a cookie, a header, a token in the query): the connection is authenticated at
    /// once with `identity`, whatever the [`AuthMode`], and sent `connected`. An invalid user id
    /// is refused ([`HubError::InvalidUser`]) and the connection is not opened.
    pub fn handle_connect_as(
        &mut self,
        conn: ConnId,
        identity: Identity,
        now: Instant,
    ) -> Result<(), HubError> {
        identity.check()?;
        self.open(conn, Opening::As(identity), now)
    }

    fn open(&mut self, conn: ConnId, opening: Opening, now: Instant) -> Result<(), HubError> {
        let now = self.advance(now);
        if self.registry.conns.contains_key(&conn) {
            return Err(HubError::DuplicateConn(conn));
        }
        let deadline = now + self.config.auth_timeout;
        self.registry.conns.insert(
            conn,
            Conn {
                stage: Stage::AwaitingAuth { deadline },
                user: None,
                metadata: None,
                acl: RoomAcl::Any,
                rooms: Vec::new(),
                connected_at: now,
                last_activity: now,
                last_ping: now,
                scheduled: None,
                bucket: Bucket::default(),
            },
        );
        if self.shutting_down {
            self.close_conn(conn, CloseCode::GOING_AWAY, super::SHUTDOWN_REASON);
            return Ok(());
        }
        match opening {
            Opening::As(identity) => self.authenticate_as(conn, identity, now)?,
            Opening::AsConfigured if self.config.auth == AuthMode::Anonymous => {
                self.authenticate_as(conn, Identity::anonymous(), now)?;
            }
            Opening::AsConfigured => {}
            Opening::Refused(code, reason) => {
                self.close_conn(conn, code, reason);
                return Ok(());
            }
        }
        self.arm(conn);
        Ok(())
    }

    /// A WebSocket pong arrived: the connection is alive.
    pub fn handle_pong(&mut self, conn: ConnId, now: Instant) {
        let now = self.advance(now);
        if let Some(c) = self.registry.conns.get_mut(&conn) {
            c.last_activity = now;
        }
    }

    /// The client broke the protocol in a way the driver's transport saw: a binary message, a
    /// frame over `max_frame_bytes`, a framing error, text that is not UTF-8. The connection is
    /// closed with the code the violation calls for ([`Violation::close_code`]); the application
    /// sees [`DisconnectReason::Closed`] with it.
    pub fn handle_violation(&mut self, conn: ConnId, violation: Violation, now: Instant) {
        self.advance(now);
        let reason = match violation {
            Violation::Framing(what) => Cow::Borrowed(what),
            other => Cow::Owned(other.to_string()),
        };
        self.close_conn(conn, violation.close_code(), reason);
    }

    /// A binary frame arrived: the same as [`handle_violation`](Self::handle_violation) with
    /// [`Violation::Binary`] (close 1003).
    pub fn handle_binary(&mut self, conn: ConnId, now: Instant) {
        self.handle_violation(conn, Violation::Binary, now);
    }

    /// The transport refused a frame over `max_frame_bytes` before reading it whole: the same as
    /// [`handle_violation`](Self::handle_violation) with [`Violation::TooLarge`] (close 1009).
    pub fn handle_oversized(&mut self, conn: ConnId, now: Instant) {
        self.handle_violation(conn, Violation::TooLarge, now);
    }

    /// The connection holds more unwritten data than the driver allows (a client that stopped
    /// reading): it is closed with 4005, and the other connections never wait for it.
    pub fn handle_slow_consumer(&mut self, conn: ConnId, now: Instant) {
        self.advance(now);
        self.close_conn(conn, CloseCode::SLOW_CONSUMER, "slow consumer");
    }

    /// The application cannot keep up with what this client sends: more of its events wait for
    /// their handlers than the driver allows. The connection is closed with 4009, and the other
    /// connections are not affected.
    pub fn handle_overload(&mut self, conn: ConnId, now: Instant) {
        self.advance(now);
        self.close_conn(conn, CloseCode::OVERLOADED, "too many events pending");
    }

    /// The socket is gone: the connection leaves every room and is forgotten. Unknown (or
    /// already closed) connections are ignored, so a driver may always report a socket's end.
    pub fn handle_disconnect(&mut self, conn: ConnId, now: Instant) {
        self.advance(now);
        self.drop_conn(conn, DisconnectReason::Gone);
    }
}

//! WebSocket close codes the protocol uses.

use std::fmt;

/// A WebSocket close code, as sent in a close frame.
///
/// The constants are the codes of wire protocol v1 (see `docs/protocol.md`); the application may
/// close with any other code through [`Hub::close`](crate::Hub::close).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: a normal close, asked for by the application.
    pub const NORMAL: Self = Self(1000);
    /// 1001: the server is shutting down.
    pub const GOING_AWAY: Self = Self(1001);
    /// 1003: the client sent a binary frame; the protocol is text only.
    pub const UNSUPPORTED_DATA: Self = Self(1003);
    /// 1009: a frame larger than `max_frame_bytes`.
    pub const MESSAGE_TOO_BIG: Self = Self(1009);
    /// 4001: no `authenticate` within `auth_timeout`, or no decision within 3 × `auth_timeout`.
    pub const AUTH_TIMEOUT: Self = Self(4001);
    /// 4002: no activity (a frame or a pong) within `heartbeat_timeout`.
    pub const HEARTBEAT_TIMEOUT: Self = Self(4002);
    /// 4003: authentication rejected.
    pub const AUTH_REJECTED: Self = Self(4003);
    /// 4005: slow consumer: the connection's outbound queue overflowed.
    pub const SLOW_CONSUMER: Self = Self(4005);
    /// 4008: rate limit exceeded.
    pub const RATE_LIMITED: Self = Self(4008);

    /// The number itself.
    pub const fn as_u16(self) -> u16 {
        self.0
    }
}

impl fmt::Debug for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CloseCode({})", self.0)
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> Self {
        code.0
    }
}

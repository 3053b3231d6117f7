//! WebSocket close codes the protocol uses, the client misbehaviours that call for them, and the
//! ways an authentication can fail.

use std::borrow::Cow;
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
    /// 1002: the client broke RFC 6455 (an unmasked frame, reserved bits or opcodes, bad
    /// fragmentation, a malformed close frame).
    pub const PROTOCOL_ERROR: Self = Self(1002);
    /// 1003: the client sent a binary frame; the protocol is text only.
    pub const UNSUPPORTED_DATA: Self = Self(1003);
    /// 1007: a text message (or a close reason) that is not UTF-8.
    pub const INVALID_PAYLOAD: Self = Self(1007);
    /// 1009: a frame larger than `max_frame_bytes`.
    pub const MESSAGE_TOO_BIG: Self = Self(1009);
    /// 1013 (try again later): whoever decides authentication could not be reached in time
    /// (an authenticate proxy's backend down or slow). The client may retry after a pause.
    pub const TRY_AGAIN_LATER: Self = Self(1013);
    /// 1011 (internal error): whoever decides authentication answered something unusable (an
    /// authenticate proxy's backend answered an error status or garbage).
    pub const INTERNAL_ERROR: Self = Self(1011);
    /// 4001: no `authenticate` within `auth_timeout`, or no decision within 3 × `auth_timeout`.
    pub const AUTH_TIMEOUT: Self = Self(4001);
    /// 4002: no activity (a frame or a pong) within `heartbeat_timeout`.
    pub const HEARTBEAT_TIMEOUT: Self = Self(4002);
    /// 4003: authentication rejected.
    pub const AUTH_REJECTED: Self = Self(4003);
    /// 4004: the connection's credentials expired and no `refresh` was accepted in time.
    pub const TOKEN_EXPIRED: Self = Self(4004);
    /// 4005: slow consumer: the connection's outbound queue overflowed.
    pub const SLOW_CONSUMER: Self = Self(4005);
    /// 4009: more of the client's events wait for the application's handlers than allowed.
    pub const OVERLOADED: Self = Self(4009);
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

/// How a client broke the protocol, as the driver's WebSocket transport saw it. The driver
/// reports it with [`Hub::handle_violation`](crate::Hub::handle_violation); the hub decides the
/// close code ([`Violation::close_code`]) and the reason, closes the connection, and tells the
/// application ([`DisconnectReason::Closed`](crate::DisconnectReason::Closed)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Violation {
    /// A binary message: wire protocol v1 is text only.
    #[error("binary frames are not supported")]
    Binary,
    /// A frame, or a fragmented message in all, over `max_frame_bytes`.
    #[error("frame too large")]
    TooLarge,
    /// Not WebSocket as RFC 6455 has it; the text says what was wrong.
    #[error("protocol error: {0}")]
    Framing(&'static str),
    /// A text message, or a close frame's reason, that is not UTF-8.
    #[error("text message is not UTF-8")]
    InvalidUtf8,
}

impl Violation {
    /// The close code the hub answers this violation with.
    pub const fn close_code(self) -> CloseCode {
        match self {
            Self::Binary => CloseCode::UNSUPPORTED_DATA,
            Self::TooLarge => CloseCode::MESSAGE_TOO_BIG,
            Self::Framing(_) => CloseCode::PROTOCOL_ERROR,
            Self::InvalidUtf8 => CloseCode::INVALID_PAYLOAD,
        }
    }
}

/// Why an authentication did not succeed, and so how the connection is closed
/// ([`Hub::deny_auth`](crate::Hub::deny_auth); a refused `refresh` gets an error frame with the
/// reason instead, and the connection stays).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthDenied {
    /// The credentials are refused: close 4003 with this reason.
    Rejected(String),
    /// The authority could not be asked in time (a backend down or slow): close 1013
    /// (try again later) with this reason.
    Unavailable(String),
    /// The authority answered something unusable (an error status, garbage): close 1011
    /// (internal error) with this reason.
    Failed(String),
}

impl AuthDenied {
    /// The close code the connection gets.
    pub const fn close_code(&self) -> CloseCode {
        match self {
            Self::Rejected(_) => CloseCode::AUTH_REJECTED,
            Self::Unavailable(_) => CloseCode::TRY_AGAIN_LATER,
            Self::Failed(_) => CloseCode::INTERNAL_ERROR,
        }
    }

    /// The reason, for the close frame or a refused refresh's error.
    pub fn reason(&self) -> &str {
        match self {
            Self::Rejected(reason) | Self::Unavailable(reason) | Self::Failed(reason) => reason,
        }
    }

    /// The close code and reason the connection gets.
    pub fn close(&self) -> (CloseCode, &str) {
        (self.close_code(), self.reason())
    }
}

impl From<String> for AuthDenied {
    fn from(reason: String) -> Self {
        Self::Rejected(reason)
    }
}

impl From<&str> for AuthDenied {
    fn from(reason: &str) -> Self {
        Self::Rejected(reason.to_owned())
    }
}

impl From<Cow<'_, str>> for AuthDenied {
    fn from(reason: Cow<'_, str>) -> Self {
        Self::Rejected(reason.into_owned())
    }
}

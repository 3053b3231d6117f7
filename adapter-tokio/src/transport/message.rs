//! The messages and errors of every WebSocket implementation (tokio-tungstenite's, axum's), seen
//! one way through two traits, so that one reader and writer (`transport/stream.rs`) serve them
//! all.

use bytes::Bytes;
use roomcast_core::Violation;

/// What arrived on a socket, as the driver needs it.
#[derive(Debug)]
pub enum Incoming {
    /// A text frame.
    Text(Bytes),
    /// A binary message (refused by the protocol; echoed in conformance testing).
    Binary(Bytes),
    /// A ping or a pong: the peer is alive.
    Alive,
    /// The peer closed.
    Close,
    /// Nothing the driver acts on.
    Other,
}

/// A WebSocket message type the driver can read and write.
pub trait WsMessage: Send + Sized + 'static {
    /// A text frame from an already-serialized UTF-8 buffer; `None` if it is not UTF-8.
    fn text(frame: Bytes) -> Option<Self>;
    /// A binary message.
    fn binary(payload: Bytes) -> Self;
    /// A ping.
    fn ping() -> Self;
    /// A close frame.
    fn close(code: u16, reason: &str) -> Self;
    /// What this message means to the driver.
    fn incoming(self) -> Incoming;
}

/// A WebSocket error type the driver can classify.
pub trait WsError: std::fmt::Display + Send + 'static {
    /// How the peer broke the protocol, if this error says it did (a frame over the configured
    /// maximum size, a framing error, text that is not UTF-8); `None` for I/O errors and the
    /// like. The hub decides the close for a violation.
    fn violation(&self) -> Option<Violation>;
}

mod tungstenite_impl {
    use bytes::Bytes;
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    use tokio_tungstenite::tungstenite::{Error, Message, Utf8Bytes};

    use super::{Incoming, Violation, WsError, WsMessage};

    impl WsMessage for Message {
        fn text(frame: Bytes) -> Option<Self> {
            Utf8Bytes::try_from(frame).ok().map(Message::Text)
        }

        fn binary(payload: Bytes) -> Self {
            Message::Binary(payload)
        }

        fn ping() -> Self {
            Message::Ping(Bytes::new())
        }

        fn close(code: u16, reason: &str) -> Self {
            Message::Close(Some(CloseFrame { code: code.into(), reason: reason.into() }))
        }

        fn incoming(self) -> Incoming {
            match self {
                Message::Text(text) => Incoming::Text(text.into()),
                Message::Binary(payload) => Incoming::Binary(payload),
                Message::Ping(_) | Message::Pong(_) => Incoming::Alive,
                Message::Close(_) => Incoming::Close,
                Message::Frame(_) => Incoming::Other,
            }
        }
    }

    impl WsError for Error {
        fn violation(&self) -> Option<Violation> {
            match self {
                Error::Capacity(_) => Some(Violation::TooLarge),
                Error::Utf8(_) => Some(Violation::InvalidUtf8),
                Error::Protocol(_) => Some(Violation::Framing("invalid WebSocket framing")),
                _ => None,
            }
        }
    }
}

#[cfg(feature = "axum")]
mod axum_impl {
    use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};
    use bytes::Bytes;

    use super::{Incoming, Violation, WsError, WsMessage};

    impl WsMessage for Message {
        fn text(frame: Bytes) -> Option<Self> {
            Utf8Bytes::try_from(frame).ok().map(Message::Text)
        }

        fn binary(payload: Bytes) -> Self {
            Message::Binary(payload)
        }

        fn ping() -> Self {
            Message::Ping(Bytes::new())
        }

        fn close(code: u16, reason: &str) -> Self {
            Message::Close(Some(CloseFrame { code, reason: reason.into() }))
        }

        fn incoming(self) -> Incoming {
            match self {
                Message::Text(text) => Incoming::Text(text.into()),
                Message::Binary(payload) => Incoming::Binary(payload),
                Message::Ping(_) | Message::Pong(_) => Incoming::Alive,
                Message::Close(_) => Incoming::Close,
            }
        }
    }

    impl WsError for axum::Error {
        fn violation(&self) -> Option<Violation> {
            // axum wraps tungstenite's error; the workspace uses the same tungstenite version.
            let mut source: Option<&(dyn std::error::Error + 'static)> =
                std::error::Error::source(self);
            while let Some(e) = source {
                if let Some(e) = e.downcast_ref::<tokio_tungstenite::tungstenite::Error>() {
                    return e.violation();
                }
                source = e.source();
            }
            None
        }
    }
}

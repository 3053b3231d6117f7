//! What can go wrong.

use serde::Deserialize;

/// An `error` frame of the server: its code, message and room.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ServerError {
    /// `forbidden`, `invalid_room`, `unknown_event`, the application's own code, ...
    pub code: String,
    /// What the server said.
    #[serde(default)]
    pub message: String,
    /// The room it is about, if any.
    #[serde(default)]
    pub room: Option<String>,
}

/// Errors of the [`Client`](crate::Client).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered with an error.
    #[error("{}: {}", .0.code, .0.message)]
    Server(ServerError),
    /// Not connected: the request was made while disconnected, or was in flight when the
    /// connection went away (the server may or may not have acted on it).
    #[error("not connected")]
    Disconnected,
    /// No answer within the request's timeout.
    #[error("no answer in time")]
    Timeout,
    /// The offline buffer is full: the message was not kept.
    #[error("the offline buffer is full")]
    BufferFull,
    /// The client was closed.
    #[error("the client was closed")]
    Closed,
    /// Data that could not be serialized, or an answer that did not deserialize.
    #[error("JSON: {0}")]
    Json(String),
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Self::Json(e.to_string())
    }
}

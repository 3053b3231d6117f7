//! Handlers and their extractors: a handler names what it needs in its arguments, as in axum, and
//! its return value is the answer.
//!
//! ```no_run
//! use roomcast_tokio::{Data, HandlerError, Roomcast, Socket};
//!
//! #[derive(serde::Deserialize)]
//! struct Move { x: u32, y: u32 }
//!
//! async fn play(socket: Socket, Data(m): Data<Move>) -> Result<u32, HandlerError> {
//!     if m.x > 7 || m.y > 7 {
//!         return Err(HandlerError::new("off_board", "that square is not on the board"));
//!     }
//!     socket.to("game").emit("moved", &(m.x, m.y)).await?;
//!     Ok(m.x * 8 + m.y) // the reply to a request with an `id`
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let (handle, _events) = Roomcast::builder().on("game:move", play).start()?;
//! # Ok(()) }
//! ```

use std::any::{Any, TypeId};
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use roomcast_core::wire::ErrorCode;
use roomcast_core::{HubError, RequestId};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use crate::app::context::Socket;
use crate::app::router::Params;

/// What a handler's call ends with: the reply's data (none: a reply without `data`), or an error
/// for the client.
pub(crate) type Outcome = Result<Option<Box<RawValue>>, HandlerError>;

/// A boxed handler future.
pub(crate) type BoxFuture = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// A handler with its argument types erased, as the route table holds it.
pub(crate) type BoxHandler = Arc<dyn Fn(EventContext) -> BoxFuture + Send + Sync>;

/// An error for the client: sent as `{"event":"error","id":<the request's id>,"data":{"code",
/// "message"}}`. The connection stays open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerError {
    code: Cow<'static, str>,
    message: String,
}

impl HandlerError {
    /// An error with a machine-readable `code` and a message for people.
    pub fn new(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self { code: code.into(), message: message.into() }
    }

    /// The error's code.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The error's message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for HandlerError {}

/// A [`Handle`](crate::Handle) call that failed inside a handler becomes an error for the client:
/// what the client asked for was refused (`refused`: an unknown connection, an invalid room or
/// user id, a room limit), or the server is stopping (`unavailable`).
impl From<crate::app::handle::Error> for HandlerError {
    fn from(error: crate::app::handle::Error) -> Self {
        match error {
            // The codes a client's own request would get for the same refusal.
            crate::app::handle::Error::Hub(HubError::RoomLimit { max, .. }) => Self::new(
                ErrorCode::TooManyRooms.as_str(),
                format!("room limit of this connection ({max}) reached"),
            ),
            crate::app::handle::Error::Hub(e @ HubError::InvalidRoom { .. }) => {
                Self::new(ErrorCode::InvalidRoom.as_str(), e.to_string())
            }
            crate::app::handle::Error::Hub(HubError::NotAuthenticated(_)) => {
                Self::new(ErrorCode::Unauthenticated.as_str(), "authenticate first")
            }
            crate::app::handle::Error::Hub(e) => {
                Self::new(ErrorCode::Refused.as_str(), e.to_string())
            }
            crate::app::handle::Error::Serialize(e) => {
                Self::new(ErrorCode::Internal.as_str(), e.to_string())
            }
            crate::app::handle::Error::Stopped => {
                Self::new(ErrorCode::Unavailable.as_str(), "the server is stopping")
            }
        }
    }
}

/// Everything a handler can extract from: the event, its connection, the route's parameters,
/// the application's state.
#[derive(Debug)]
pub struct EventContext {
    pub(crate) socket: Socket,
    pub(crate) event: String,
    pub(crate) path: Option<Box<str>>,
    pub(crate) data: Option<Box<RawValue>>,
    pub(crate) id: Option<RequestId>,
    pub(crate) params: Params,
    pub(crate) state: Arc<StateMap>,
}

/// The application's state values, by type.
#[derive(Default)]
pub(crate) struct StateMap(HashMap<TypeId, Box<dyn Any + Send + Sync>>);

impl fmt::Debug for StateMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StateMap({} values)", self.0.len())
    }
}

impl StateMap {
    pub(crate) fn insert<T: Clone + Send + Sync + 'static>(&mut self, value: T) {
        self.0.insert(TypeId::of::<T>(), Box::new(value));
    }

    pub(crate) fn get<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.0.get(&TypeId::of::<T>()).and_then(|v| v.downcast_ref::<T>()).cloned()
    }
}

/// A value a handler can take as an argument, built from the event. A failure is sent to the
/// client as an error and the handler is not called.
pub trait FromEvent: Sized + Send + 'static {
    /// Extracts the value.
    fn from_event(cx: &EventContext) -> Result<Self, HandlerError>;
}

impl FromEvent for Socket {
    fn from_event(cx: &EventContext) -> Result<Self, HandlerError> {
        Ok(cx.socket.clone())
    }
}

impl FromEvent for crate::app::handle::Handle {
    fn from_event(cx: &EventContext) -> Result<Self, HandlerError> {
        Ok(cx.socket.handle().clone())
    }
}

impl FromEvent for Params {
    fn from_event(cx: &EventContext) -> Result<Self, HandlerError> {
        Ok(cx.params.clone())
    }
}

/// The event's `data`, decoded as JSON into `T`. Data that does not decode is answered with an
/// error of code `invalid_data` naming what was wrong; absent data decodes as `null` (so
/// `Data<Option<T>>` accepts it).
#[derive(Debug, Clone)]
pub struct Data<T>(pub T);

impl<T: DeserializeOwned + Send + 'static> FromEvent for Data<T> {
    fn from_event(cx: &EventContext) -> Result<Self, HandlerError> {
        let raw = cx.data.as_deref().map_or("null", RawValue::get);
        serde_json::from_str(raw).map(Data).map_err(|e| {
            HandlerError::new(
                ErrorCode::InvalidData.as_str(),
                format!("data of {:?}: {e}", cx.event),
            )
        })
    }
}

/// The event's `data` as the client sent it, not parsed.
#[derive(Debug, Clone)]
pub struct RawData(pub Option<Box<RawValue>>);

impl FromEvent for RawData {
    fn from_event(cx: &EventContext) -> Result<Self, HandlerError> {
        Ok(Self(cx.data.clone()))
    }
}

/// The event's name, as the client sent it (useful in a fallback, or behind a pattern).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventName(pub String);

impl FromEvent for EventName {
    fn from_event(cx: &EventContext) -> Result<Self, HandlerError> {
        Ok(Self(cx.event.clone()))
    }
}

/// The frame's `path`, if it had one (moost-style: `{"event":"message","path":"/chat/general"}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagePath(pub Option<String>);

impl FromEvent for MessagePath {
    fn from_event(cx: &EventContext) -> Result<Self, HandlerError> {
        Ok(Self(cx.path.as_deref().map(str::to_owned)))
    }
}

/// The request's `id`, if the client asked for an answer. The handler's return value is sent as
/// the reply by itself; this is for handlers that want to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Id(pub Option<RequestId>);

impl FromEvent for Id {
    fn from_event(cx: &EventContext) -> Result<Self, HandlerError> {
        Ok(Self(cx.id.clone()))
    }
}

/// A value of the application's state, given with [`Builder::state`](crate::Builder::state).
/// Asking for a type that was never given is a programming error: the client gets an error of
/// code `internal`, and the log says which type.
#[derive(Debug, Clone)]
pub struct State<T>(pub T);

impl<T: Clone + Send + Sync + 'static> FromEvent for State<T> {
    fn from_event(cx: &EventContext) -> Result<Self, HandlerError> {
        cx.state.get::<T>().map(State).ok_or_else(|| {
            let name = std::any::type_name::<T>();
            tracing::error!(state = name, "a handler asks for state that was never given");
            HandlerError::new(ErrorCode::Internal.as_str(), "the server is misconfigured")
        })
    }
}

/// A value of the connection's typed state ([`Socket::extensions`]), put there by a hook or an
/// earlier handler: read without a trip to the hub. A handler that asks for a type the connection
/// does not hold is answered with an error of code `missing_extension` naming the type (ask for
/// `Option<Extension<T>>` to handle its absence yourself).
#[derive(Debug, Clone)]
pub struct Extension<T>(pub T);

impl<T: Clone + Send + Sync + 'static> FromEvent for Extension<T> {
    fn from_event(cx: &EventContext) -> Result<Self, HandlerError> {
        cx.socket.extensions().get::<T>().map(Extension).ok_or_else(|| {
            let name = std::any::type_name::<T>();
            HandlerError::new(
                ErrorCode::MissingExtension.as_str(),
                format!("this connection holds no {name}"),
            )
        })
    }
}

impl<T: Clone + Send + Sync + 'static> FromEvent for Option<Extension<T>> {
    fn from_event(cx: &EventContext) -> Result<Self, HandlerError> {
        Ok(cx.socket.extensions().get::<T>().map(Extension))
    }
}

/// What a handler returns, turned into the answer: `()` and `Ok(())` answer a request with a
/// reply without data; `Ok(value)` with a reply carrying `value`; `Err(error)` with an error
/// frame carrying the request's `id`. Without an `id`, nothing is sent on success, and an error
/// is still sent (the client should know its event failed).
pub trait IntoReply {
    /// The reply's data, or the error.
    fn into_reply(self) -> Result<Option<Box<RawValue>>, HandlerError>;
}

impl IntoReply for () {
    fn into_reply(self) -> Result<Option<Box<RawValue>>, HandlerError> {
        Ok(None)
    }
}

impl<T: Serialize> IntoReply for Result<T, HandlerError> {
    fn into_reply(self) -> Result<Option<Box<RawValue>>, HandlerError> {
        let value = self?;
        let raw = serde_json::value::to_raw_value(&value).map_err(|e| {
            HandlerError::new(ErrorCode::Internal.as_str(), format!("reply not serializable: {e}"))
        })?;
        Ok((raw.get() != "null").then_some(raw))
    }
}

impl IntoReply for HandlerError {
    fn into_reply(self) -> Result<Option<Box<RawValue>>, HandlerError> {
        Err(self)
    }
}

/// An async function usable as a handler: up to eight [`FromEvent`] arguments, returning an
/// [`IntoReply`].
pub trait Handler<Args>: Clone + Send + Sync + 'static {
    /// Runs the handler on one event.
    fn call(&self, cx: EventContext) -> BoxFuture;
}

macro_rules! impl_handler {
    ($($arg:ident),*) => {
        impl<F, Fut, R, $($arg,)*> Handler<($($arg,)*)> for F
        where
            F: Fn($($arg),*) -> Fut + Clone + Send + Sync + 'static,
            Fut: Future<Output = R> + Send + 'static,
            R: IntoReply,
            $($arg: FromEvent,)*
        {
            #[allow(non_snake_case)]
            fn call(&self, cx: EventContext) -> BoxFuture {
                let extracted = <($($arg,)*) as FromEvent>::from_event(&cx);
                let f = self.clone();
                Box::pin(async move {
                    let ($($arg,)*) = extracted?;
                    f($($arg),*).await.into_reply()
                })
            }
        }
    };
}

/// Extractors in a tuple, extracted left to right; the first failure wins.
macro_rules! impl_from_event_tuple {
    ($($arg:ident),*) => {
        impl<$($arg: FromEvent,)*> FromEvent for ($($arg,)*) {
            #[allow(unused_variables)]
            fn from_event(cx: &EventContext) -> Result<Self, HandlerError> {
                Ok(($($arg::from_event(cx)?,)*))
            }
        }
    };
}

impl_from_event_tuple!();
impl_from_event_tuple!(A1);
impl_from_event_tuple!(A1, A2);
impl_from_event_tuple!(A1, A2, A3);
impl_from_event_tuple!(A1, A2, A3, A4);
impl_from_event_tuple!(A1, A2, A3, A4, A5);
impl_from_event_tuple!(A1, A2, A3, A4, A5, A6);
impl_from_event_tuple!(A1, A2, A3, A4, A5, A6, A7);
impl_from_event_tuple!(A1, A2, A3, A4, A5, A6, A7, A8);

impl_handler!();
impl_handler!(A1);
impl_handler!(A1, A2);
impl_handler!(A1, A2, A3);
impl_handler!(A1, A2, A3, A4);
impl_handler!(A1, A2, A3, A4, A5);
impl_handler!(A1, A2, A3, A4, A5, A6);
impl_handler!(A1, A2, A3, A4, A5, A6, A7);
impl_handler!(A1, A2, A3, A4, A5, A6, A7, A8);

/// Erases a handler's argument types.
pub(crate) fn boxed<H: Handler<Args>, Args: 'static>(handler: H) -> BoxHandler {
    Arc::new(move |cx| handler.call(cx))
}

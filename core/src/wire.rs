//! Wire protocol v1: parsing client frames and writing server frames.
//!
//! Client → server: `{"event": string, "data"?: any, "id"?: string | number}`, `event` 1..=128
//! bytes. Server → client: `{"event": string, "room"?: string, "data"?: any, "id"?: ...}`.
//! `data` is kept as raw JSON ([`RawValue`]): the hub forwards it without parsing it again.

use std::borrow::Cow;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::id::RequestId;

/// Longest event name, in bytes.
pub const MAX_EVENT_BYTES: usize = 128;

/// Deepest nesting of arrays and objects in a frame or an envelope, the frame itself included.
///
/// Forwarded `data` is never parsed into values, so without a limit one client could send every
/// member of a room a frame nested 30,000 levels deep, which crashes recursive JSON parsers
/// (serde_json stops at 128, Python's `json` near 1,000). Anything within this limit is
/// parseable by all of them.
pub const MAX_DEPTH: usize = 100;

/// Event names the server sends; clients may not `publish` under them, so that no member of a
/// room can forge a system frame for the others.
pub const RESERVED_EVENTS: &[&str] = &[
    "connected",
    "joined",
    "left",
    "error",
    "reply",
    "resync",
    "presence",
    "member_joined",
    "member_left",
    "token_expiring",
    "refreshed",
];

/// One parsed client frame, borrowing from the input bytes.
#[derive(Debug)]
pub struct ClientFrame<'a> {
    /// The event name, 1..=128 bytes.
    pub event: Cow<'a, str>,
    /// The data, unparsed; `None` when absent or `null`.
    pub data: Option<&'a RawValue>,
    /// The request id, a JSON string or number.
    pub id: Option<RequestId>,
    /// An optional path the application routes on (moost-style, e.g. `/chat/general`),
    /// 1..=256 bytes.
    pub path: Option<String>,
}

/// Why a client frame was refused (sent back as the `message` of a `bad_frame` error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// Not JSON, or JSON of the wrong shape.
    #[error("invalid JSON frame: {0}")]
    Json(String),
    /// JSON, but not an object.
    #[error("a frame must be a JSON object")]
    NotAnObject,
    /// `event` is missing, empty or longer than 128 bytes.
    #[error("\"event\" must be a string of 1 to 128 bytes")]
    BadEvent,
    /// `id` is neither a string nor a number.
    #[error("\"id\" must be a string or a number")]
    BadId,
    /// `path` is not a string of 1 to 256 bytes.
    #[error("\"path\" must be a string of 1 to 256 bytes")]
    BadPath,
    /// Arrays and objects nested deeper than [`MAX_DEPTH`].
    #[error("nested deeper than 100 levels")]
    TooDeep,
}

#[derive(Deserialize)]
struct RawFrame<'a> {
    #[serde(borrow, default)]
    event: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    path: Option<&'a RawValue>,
}

/// Parses one client text frame.
///
/// Unknown fields are ignored (room for later protocol versions); duplicate fields, deep nesting
/// beyond serde_json's limit, invalid UTF-8 and lone surrogates in `event` are refused.
pub fn parse_client_frame(bytes: &[u8]) -> Result<ClientFrame<'_>, FrameError> {
    if !starts_object(bytes) {
        return Err(if serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok() {
            FrameError::NotAnObject
        } else {
            FrameError::Json("expected a JSON object".into())
        });
    }
    let raw: RawFrame<'_> =
        serde_json::from_slice(bytes).map_err(|e| FrameError::Json(e.to_string()))?;
    if too_deep(bytes) {
        return Err(FrameError::TooDeep);
    }
    let event = match raw.event {
        Some(event) if valid_event(&event) => event,
        _ => return Err(FrameError::BadEvent),
    };
    let id = match raw.id {
        None => None,
        Some(raw_id) => Some(RequestId::from_raw(raw_id).ok_or(FrameError::BadId)?),
    };
    let path = match raw.path.map(RawValue::get) {
        None | Some("null") => None,
        Some(json) => match serde_json::from_str::<Cow<'_, str>>(json) {
            Ok(path) if (1..=MAX_PATH_BYTES).contains(&path.len()) => Some(path.into_owned()),
            _ => return Err(FrameError::BadPath),
        },
    };
    Ok(ClientFrame { event, data: raw.data, id, path })
}

/// The `id` of a frame [`parse_client_frame`] refused, when it can still be read: the frame is a
/// JSON object whose `id` is a string or a number (`{"event":"<129 bytes>","id":1}`), so that the
/// client's request is answered rather than left waiting.
pub fn request_id(bytes: &[u8]) -> Option<RequestId> {
    #[derive(Deserialize)]
    struct IdOnly<'a> {
        #[serde(borrow, default)]
        id: Option<&'a RawValue>,
    }
    if !starts_object(bytes) {
        return None;
    }
    let frame: IdOnly<'_> = serde_json::from_slice(bytes).ok()?;
    frame.id.and_then(RequestId::from_raw)
}

/// Longest `path` of a client frame, in bytes.
pub const MAX_PATH_BYTES: usize = 256;

/// Whether `path` is a valid frame path (1..=256 bytes).
pub fn valid_path(path: &str) -> bool {
    (1..=MAX_PATH_BYTES).contains(&path.len())
}

/// Whether `event` is a valid event name (1..=128 bytes).
pub fn valid_event(event: &str) -> bool {
    (1..=MAX_EVENT_BYTES).contains(&event.len())
}

/// Whether valid JSON `bytes` nest arrays and objects deeper than [`MAX_DEPTH`]. One linear pass;
/// only brackets outside strings count.
pub(crate) fn too_deep(bytes: &[u8]) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in bytes {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Whether the first non-whitespace byte opens an object. Serde would also accept a JSON array
/// for a struct (`["join"]`), which the protocol does not allow.
pub(crate) fn starts_object(bytes: &[u8]) -> bool {
    bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

/// Parses the `data` of a system event into `T`, refusing anything but a JSON object.
pub(crate) fn parse_data<'a, T: Deserialize<'a>>(data: Option<&'a RawValue>) -> Result<T, String> {
    let Some(data) = data else {
        return Err("\"data\" is required".into());
    };
    if !starts_object(data.get().as_bytes()) {
        return Err("\"data\" must be an object".into());
    }
    serde_json::from_str(data.get()).map_err(|e| e.to_string())
}

/// `data` of `authenticate`.
#[derive(Deserialize)]
pub(crate) struct AuthData<'a> {
    #[serde(borrow)]
    pub(crate) token: Cow<'a, str>,
}

/// `data` of `join` and `leave`.
#[derive(Deserialize)]
pub(crate) struct RoomsData<'a> {
    #[serde(borrow)]
    pub(crate) rooms: Vec<Cow<'a, str>>,
    /// A join's recovery, per room: `{"r":{"offset":41,"epoch":"e1"}}` or `{"r":{"latest":true}}`.
    #[serde(borrow, default)]
    pub(crate) recover: std::collections::BTreeMap<Cow<'a, str>, Recover<'a>>,
}

/// What a join asks of one room's history.
#[derive(Deserialize, Default)]
pub(crate) struct Recover<'a> {
    /// The last offset the client saw.
    #[serde(default)]
    pub(crate) offset: Option<u64>,
    /// The epoch that offset belongs to.
    #[serde(borrow, default)]
    pub(crate) epoch: Option<Cow<'a, str>>,
    /// Only the room's newest message.
    #[serde(default)]
    pub(crate) latest: bool,
}

/// One room's history as a `joined` answer tells it.
#[derive(Serialize)]
pub(crate) struct StreamInfo<'a> {
    pub(crate) epoch: &'a str,
    pub(crate) offset: u64,
    pub(crate) recovered: bool,
}

/// `data` of `presence`.
#[derive(Deserialize)]
pub(crate) struct PresenceData<'a> {
    #[serde(borrow)]
    pub(crate) room: Cow<'a, str>,
}

/// `data` of `publish`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PublishData<'a> {
    #[serde(borrow)]
    pub(crate) room: Cow<'a, str>,
    #[serde(borrow)]
    pub(crate) event: Cow<'a, str>,
    #[serde(borrow, default)]
    pub(crate) data: Option<&'a RawValue>,
    #[serde(default = "yes")]
    pub(crate) exclude_self: bool,
    /// Extension: also leave out every other session of the sender's user.
    #[serde(default)]
    pub(crate) exclude_user: bool,
}

fn yes() -> bool {
    true
}

/// A server frame, ready to serialize.
#[derive(Serialize)]
pub(crate) struct ServerFrame<'a> {
    pub(crate) event: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) room: Option<&'a str>,
    /// The path the client routes on (moost's `send(event, path, data)`), if the application
    /// gave one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) path: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) id: Option<&'a RawValue>,
    /// The message's offset in its room's history (rooms with history only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) offset: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) data: Option<&'a RawValue>,
}

impl ServerFrame<'_> {
    /// Serializes the frame once into a shared buffer.
    pub(crate) fn encode(&self) -> Bytes {
        to_bytes(self)
    }
}

/// Error codes of `error` frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The frame is not a valid protocol frame, or a system event's data is malformed.
    BadFrame,
    /// Only `authenticate` and `heartbeat` are accepted before authentication.
    Unauthenticated,
    /// Not allowed: joining a room the identity may not join, publishing to a room the
    /// connection is not in, or publishing under a reserved event name.
    Forbidden,
    /// A room name outside 1..=`max_room_name_bytes` bytes.
    InvalidRoom,
    /// Joining would exceed `max_rooms_per_conn`.
    TooManyRooms,
    /// `authenticate` after the connection was already authenticated (or while it is being).
    AlreadyAuthenticated,
    /// A `refresh` whose token was refused (or that would change the user); the connection
    /// keeps its current credentials until they expire.
    RefreshRejected,
    /// An application event no handler takes (and no fallback).
    UnknownEvent,
    /// An event's `data` that does not decode into what its handler asks for.
    InvalidData,
    /// A handler asked for a value of the connection's state it does not hold.
    MissingExtension,
    /// The hub refused what a handler asked of it (other than the codes above).
    Refused,
    /// The server is stopping.
    Unavailable,
    /// A handler or a hook failed (panicked, or the server is misconfigured).
    Internal,
}

impl ErrorCode {
    /// The code as sent in the frame.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadFrame => "bad_frame",
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::InvalidRoom => "invalid_room",
            Self::TooManyRooms => "too_many_rooms",
            Self::AlreadyAuthenticated => "already_authenticated",
            Self::RefreshRejected => "refresh_rejected",
            Self::UnknownEvent => "unknown_event",
            Self::InvalidData => "invalid_data",
            Self::MissingExtension => "missing_extension",
            Self::Refused => "refused",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }
}

#[derive(Serialize)]
struct ErrorData<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    room: Option<&'a str>,
}

/// A frame the server writes itself: `{"event","id"?,"data"}`.
#[derive(Serialize)]
struct SystemFrame<'a, D> {
    event: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a RawValue>,
    data: D,
}

fn system_frame<D: Serialize>(event: &'static str, id: Option<&RequestId>, data: D) -> Bytes {
    to_bytes(&SystemFrame { event, id: id.map(RequestId::as_raw), data })
}

/// `{"event":"error","id"?:..,"data":{"code":..,"message":..,"room"?:..}}`.
pub(crate) fn error_frame(
    code: ErrorCode,
    message: &str,
    room: Option<&str>,
    id: Option<&RequestId>,
) -> Bytes {
    system_frame("error", id, ErrorData { code: code.as_str(), message, room })
}

/// `{"event":"error","id"?:..,"data":{"code","message"}}` with the application's own code.
pub(crate) fn app_error_frame(code: &str, message: &str, id: Option<&RequestId>) -> Bytes {
    system_frame("error", id, ErrorData { code, message, room: None })
}

/// `{"event":"joined"|"left","id"?:..,"data":{"rooms":[..]}}`.
pub(crate) fn rooms_frame<'a>(
    event: &'static str,
    id: Option<&RequestId>,
    rooms: impl Iterator<Item = &'a str>,
) -> Bytes {
    #[derive(Serialize)]
    struct Rooms<'a> {
        rooms: Vec<&'a str>,
    }
    system_frame(event, id, Rooms { rooms: rooms.collect() })
}

/// `{"event":"joined","id"?:..,"data":{"rooms":[..],"streams":{"r":{"epoch","offset","recovered"}}}}`:
/// a join's answer when some of its rooms keep a history.
pub(crate) fn joined_frame<'a>(
    id: Option<&RequestId>,
    rooms: impl Iterator<Item = &'a str>,
    streams: &[(&'a str, StreamInfo<'a>)],
) -> Bytes {
    struct Streams<'s, 'a>(&'s [(&'a str, StreamInfo<'a>)]);
    impl Serialize for Streams<'_, '_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_map(self.0.iter().map(|(room, info)| (room, info)))
        }
    }
    #[derive(Serialize)]
    struct Joined<'s, 'a> {
        rooms: Vec<&'a str>,
        streams: Streams<'s, 'a>,
    }
    system_frame("joined", id, Joined { rooms: rooms.collect(), streams: Streams(streams) })
}

/// `{"event":"connected","data":{"id":..,"userId":..,"time":ms}}`.
pub(crate) fn connected_frame(
    conn: crate::id::ConnId,
    user_id: Option<&str>,
    time_ms: u64,
) -> Bytes {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Data<'a> {
        id: String,
        user_id: Option<&'a str>,
        time: u64,
    }
    system_frame("connected", None, Data { id: conn.to_string(), user_id, time: time_ms })
}

/// `{"event":"token_expiring"|"refreshed","id"?:..,"data":{"expiresIn":seconds|null}}`.
pub(crate) fn expiry_frame(
    event: &'static str,
    id: Option<&RequestId>,
    expires_in: Option<std::time::Duration>,
) -> Bytes {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Expiry {
        expires_in: Option<u64>,
    }
    system_frame(event, id, Expiry { expires_in: expires_in.map(|d| d.as_secs()) })
}

/// Serializes a value made only of strings, numbers and raw JSON.
pub(crate) fn to_bytes<T: Serialize + ?Sized>(value: &T) -> Bytes {
    // Writing strings and raw values into a Vec cannot fail: serde_json fails only on I/O errors
    // or on map keys that are not strings, and none of the frame types has either.
    match serde_json::to_vec(value) {
        Ok(vec) => Bytes::from(vec),
        Err(e) => unreachable!("frame serialization failed: {e}"),
    }
}

#[cfg(test)]
mod tests;

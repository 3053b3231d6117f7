//! Opaque handles: connection ids and request ids.

use std::fmt;
use std::str::FromStr;

use serde_json::value::RawValue;
use uuid::Uuid;

/// The handle of one connection, chosen by the adapter when the socket opens.
///
/// Adapters use UUID v4 so that ids are unique across every instance of a cluster: the bus
/// addresses a connection anywhere by this id (`ws:client:{id}`). The core never makes ids up.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(Uuid);

impl ConnId {
    /// Wraps a UUID chosen by the adapter.
    pub const fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    /// Builds an id from 128 bits; handy in tests and simulations, where ids must be repeatable.
    pub const fn from_u128(value: u128) -> Self {
        Self(Uuid::from_u128(value))
    }

    /// The UUID behind this id.
    pub const fn as_uuid(&self) -> &Uuid {
        &self.0
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

impl fmt::Debug for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnId({})", self.0.hyphenated())
    }
}

impl FromStr for ConnId {
    type Err = uuid::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

impl serde::Serialize for ConnId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0.hyphenated())
    }
}

impl<'de> serde::Deserialize<'de> for ConnId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl From<Uuid> for ConnId {
    fn from(uuid: Uuid) -> Self {
        Self(uuid)
    }
}

/// The `id` a client put on a request frame: a JSON string or number, kept as the exact text the
/// client sent so that the answer echoes it byte for byte (no float rounding of big numbers).
#[derive(Clone)]
pub struct RequestId(Box<RawValue>);

impl PartialEq for RequestId {
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get()
    }
}

impl Eq for RequestId {}

impl RequestId {
    /// The id as raw JSON text, e.g. `"abc"` (with its quotes) or `42`.
    pub fn as_json(&self) -> &str {
        self.0.get()
    }

    /// The id as a raw JSON value, ready to embed in a frame.
    pub fn as_raw(&self) -> &RawValue {
        &self.0
    }

    /// Builds a request id from raw JSON text; `None` unless it is a JSON string or number.
    pub fn from_json(json: &str) -> Option<Self> {
        let raw: Box<RawValue> = serde_json::from_str(json).ok()?;
        Self::from_raw(&raw)
    }

    pub(crate) fn from_raw(raw: &RawValue) -> Option<Self> {
        match raw.get().as_bytes().first() {
            Some(b'"' | b'-' | b'0'..=b'9') => Some(Self(raw.to_owned())),
            _ => None,
        }
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RequestId({})", self.0.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conn_id_round_trips_through_its_text_form() {
        let id = ConnId::from_u128(0x1234_5678_9abc_def0_1234_5678_9abc_def0);
        let text = id.to_string();
        assert_eq!(text, "12345678-9abc-def0-1234-56789abcdef0");
        assert_eq!(text.parse::<ConnId>().ok(), Some(id));
    }

    #[test]
    fn request_id_accepts_only_strings_and_numbers() {
        assert!(RequestId::from_json("\"a\"").is_some());
        assert!(RequestId::from_json("-3").is_some());
        assert!(RequestId::from_json("123456789012345678901234567890").is_some());
        assert!(RequestId::from_json("null").is_none());
        assert!(RequestId::from_json("{}").is_none());
        assert!(RequestId::from_json("[1]").is_none());
        assert!(RequestId::from_json("true").is_none());
    }
}

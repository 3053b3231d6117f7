//! The bus envelope exchanged between instances (and sent by emitters). The channels it travels
//! on are named in [`channel`](crate::channel).
//!
//! ```text
//! {"serverId": string, "type": "client"|"user"|"room"|"broadcast", "target"?: string,
//!  "event": string, "data": any, "exclude"?: [connId], "excludeUsers"?: [userId], "path"?: string}
//! ```
//!
//! Compatible with the ignis seed's envelope; `excludeUsers` is roomcast's extension (instances
//! that do not know it deliver to those users' sessions too).

use std::borrow::Cow;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::id::ConnId;

/// The `serverId` of a process that publishes without holding sockets (an Emitter).
pub const EMITTER_ID: &str = "emitter";

/// Who an envelope is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// One connection, `target` = its id.
    Client,
    /// Every session of a user, `target` = the user id.
    User,
    /// Every member of a room, `target` = the room.
    Room,
    /// Every authenticated connection; no `target`.
    Broadcast,
}

/// One envelope, borrowing from the bytes it was parsed from.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope<'a> {
    /// The publishing instance, or `"emitter"`.
    #[serde(borrow)]
    pub server_id: Cow<'a, str>,
    /// Who it is for.
    #[serde(rename = "type")]
    pub kind: TargetKind,
    /// The connection id, user id or room; absent for broadcasts.
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Cow<'a, str>>,
    /// The event name delivered to clients.
    #[serde(borrow)]
    pub event: Cow<'a, str>,
    /// The data delivered to clients, unparsed (`null` when there is none).
    #[serde(borrow, default, serialize_with = "data_or_null")]
    pub data: Option<&'a RawValue>,
    /// Connections that must not receive it, on any instance.
    #[serde(borrow, default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<Cow<'a, str>>,
    /// Users none of whose sessions may receive it, on any instance (roomcast extension).
    #[serde(borrow, default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_users: Vec<Cow<'a, str>>,
    /// A send to several rooms (roomcast extension): every room of the send, in order. It is
    /// published once on each room's channel with that room as `target`; an instance delivers
    /// to the target's members that are in none of the rooms listed before it, so a connection
    /// in several of them gets it once.
    #[serde(borrow, default, skip_serializing_if = "Vec::is_empty")]
    pub rooms: Vec<Cow<'a, str>>,
    /// Rooms whose members must not receive it, on any instance (roomcast extension).
    #[serde(borrow, default, skip_serializing_if = "Vec::is_empty")]
    pub except_rooms: Vec<Cow<'a, str>>,
    /// The `path` of the frame clients receive (roomcast extension; moost's
    /// `send(event, path, data)`). Instances that do not know it deliver the frame without one.
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub path: Option<Cow<'a, str>>,
}

fn data_or_null<S: serde::Serializer>(data: &Option<&RawValue>, s: S) -> Result<S::Ok, S::Error> {
    match data {
        Some(raw) => raw.serialize(s),
        None => s.serialize_unit(),
    }
}

/// Why an envelope was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// Not JSON, or not of the envelope's shape.
    #[error("invalid envelope: {0}")]
    Json(String),
    /// `target` is missing for a client, user or room envelope, or not a connection id for a
    /// client envelope.
    #[error("envelope target missing or invalid for its type")]
    BadTarget,
    /// `event` is empty or longer than 128 bytes.
    #[error("envelope event must be 1..=128 bytes")]
    BadEvent,
    /// Nested deeper than [`MAX_DEPTH`](crate::wire::MAX_DEPTH).
    #[error("envelope nested too deeply")]
    TooDeep,
}

impl<'a> Envelope<'a> {
    /// Parses and checks an envelope from the bus.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, EnvelopeError> {
        if !crate::wire::starts_object(bytes) {
            return Err(EnvelopeError::Json("expected a JSON object".into()));
        }
        let envelope: Self =
            serde_json::from_slice(bytes).map_err(|e| EnvelopeError::Json(e.to_string()))?;
        if crate::wire::too_deep(bytes) {
            return Err(EnvelopeError::TooDeep);
        }
        if !crate::wire::valid_event(&envelope.event) {
            return Err(EnvelopeError::BadEvent);
        }
        match (envelope.kind, envelope.target.as_deref()) {
            (TargetKind::Broadcast, _) => {}
            (TargetKind::Client, Some(t)) if t.parse::<ConnId>().is_ok() => {}
            (TargetKind::User | TargetKind::Room, Some(t)) if !t.is_empty() => {}
            _ => return Err(EnvelopeError::BadTarget),
        }
        Ok(envelope)
    }

    /// The excluded connections that are well-formed ids (others cannot match anyone).
    pub fn excluded_conns(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.exclude.iter().filter_map(|id| id.parse().ok())
    }

    /// Serializes the envelope once.
    pub fn encode(&self) -> Bytes {
        crate::wire::to_bytes(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_an_ignis_envelope() {
        let bytes = br#"{"serverId":"emitter","type":"room","target":"lobby","event":"news","data":{"x":1}}"#;
        let env = Envelope::parse(bytes).expect("valid envelope");
        assert_eq!(env.server_id, "emitter");
        assert_eq!(env.kind, TargetKind::Room);
        assert_eq!(env.target.as_deref(), Some("lobby"));
        assert_eq!(env.data.map(RawValue::get), Some(r#"{"x":1}"#));
        assert!(env.exclude.is_empty());
    }

    #[test]
    fn refuses_envelopes_without_a_usable_target() {
        for bad in [
            &br#"{"serverId":"a","type":"room","event":"e","data":1}"#[..],
            br#"{"serverId":"a","type":"client","target":"nope","event":"e","data":1}"#,
            br#"{"serverId":"a","type":"user","target":"","event":"e","data":1}"#,
        ] {
            assert_eq!(Envelope::parse(bad).err(), Some(EnvelopeError::BadTarget));
        }
        assert!(Envelope::parse(br#"{"serverId":"a","type":"galaxy","event":"e"}"#).is_err());
        assert!(Envelope::parse(br#"["a"]"#).is_err());
    }

    #[test]
    fn encodes_data_as_null_when_absent_and_round_trips() {
        let env = Envelope {
            server_id: "s1".into(),
            kind: TargetKind::Broadcast,
            target: None,
            event: "tick".into(),
            data: None,
            exclude: vec![],
            exclude_users: vec![],
            rooms: vec![],
            except_rooms: vec![],
            path: None,
        };
        let bytes = env.encode();
        assert_eq!(
            &bytes[..],
            br#"{"serverId":"s1","type":"broadcast","event":"tick","data":null}"#
        );
        assert!(Envelope::parse(&bytes).is_ok());
        let with_path = Envelope { path: Some("/chat/a".into()), ..env };
        let bytes = with_path.encode();
        assert!(bytes.ends_with(br#""data":null,"path":"/chat/a"}"#), "{bytes:?}");
        assert_eq!(Envelope::parse(&bytes).expect("parses").path.as_deref(), Some("/chat/a"));
    }
}

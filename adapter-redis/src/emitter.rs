//! Publishing to clients from a process that holds no sockets (workers, cron jobs, other services).

use std::borrow::Cow;

use roomcast_core::Channels;
use roomcast_core::ConnId;
use roomcast_core::envelope::{EMITTER_ID, Envelope, TargetKind};
use serde::Serialize;

use crate::config::RedisConfig;
use crate::connection::Connection;

/// Errors of the [`Emitter`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmitError {
    /// Redis refused or is unreachable.
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
    /// The data is not serializable to JSON.
    #[error("data is not serializable to JSON: {0}")]
    Serialize(#[from] serde_json::Error),
    /// An event name outside 1..=128 bytes, or an empty target.
    #[error("invalid event name or target")]
    Invalid,
}

/// Sends to clients through Redis with `serverId` `"emitter"`, in the envelope format every
/// roomcast instance (and every ignis emitter) speaks.
///
/// ```no_run
/// # async fn run() -> Result<(), roomcast_redis::EmitError> {
/// use roomcast_redis::{Emitter, RedisConfig};
///
/// let mut emitter = Emitter::connect(&RedisConfig::single("redis://127.0.0.1:6379")).await?;
/// emitter.to_room("lobby", "news", &"the build is green", &[]).await?;
/// emitter.to_user("ann", "invoice", &serde_json::json!({"id": 42})).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Emitter {
    conn: Connection,
    channels: Channels,
}

impl std::fmt::Debug for Emitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emitter").field("channels", &self.channels).finish_non_exhaustive()
    }
}

impl Emitter {
    /// Connects to Redis.
    pub async fn connect(config: &RedisConfig) -> Result<Self, EmitError> {
        let conn = Connection::open(config, None).await?;
        Ok(Self { conn, channels: Channels::new(config.channel_prefix.clone()) })
    }

    /// To one connection, wherever it is.
    pub async fn to_client<T: Serialize + ?Sized>(
        &mut self,
        conn: ConnId,
        event: &str,
        data: &T,
    ) -> Result<(), EmitError> {
        self.emit(TargetKind::Client, Some(&conn.to_string()), event, data, &[]).await
    }

    /// To every session of a user.
    pub async fn to_user<T: Serialize + ?Sized>(
        &mut self,
        user_id: &str,
        event: &str,
        data: &T,
    ) -> Result<(), EmitError> {
        self.emit(TargetKind::User, Some(user_id), event, data, &[]).await
    }

    /// To every member of a room except `exclude`.
    pub async fn to_room<T: Serialize + ?Sized>(
        &mut self,
        room: &str,
        event: &str,
        data: &T,
        exclude: &[ConnId],
    ) -> Result<(), EmitError> {
        self.emit(TargetKind::Room, Some(room), event, data, exclude).await
    }

    /// To every authenticated connection of every instance.
    pub async fn broadcast<T: Serialize + ?Sized>(
        &mut self,
        event: &str,
        data: &T,
    ) -> Result<(), EmitError> {
        self.emit(TargetKind::Broadcast, None, event, data, &[]).await
    }

    async fn emit<T: Serialize + ?Sized>(
        &mut self,
        kind: TargetKind,
        target: Option<&str>,
        event: &str,
        data: &T,
        exclude: &[ConnId],
    ) -> Result<(), EmitError> {
        let message = emission(&self.channels, kind, target, event, data, exclude)?;
        self.conn.publish(&[message]).await?;
        Ok(())
    }
}

/// The channel and the envelope of one emission, as every instance reads them.
fn emission<T: Serialize + ?Sized>(
    channels: &Channels,
    kind: TargetKind,
    target: Option<&str>,
    event: &str,
    data: &T,
    exclude: &[ConnId],
) -> Result<(String, bytes::Bytes), EmitError> {
    if !roomcast_core::wire::valid_event(event) || target.is_some_and(str::is_empty) {
        return Err(EmitError::Invalid);
    }
    let data = serde_json::value::to_raw_value(data)?;
    let envelope = Envelope {
        server_id: Cow::Borrowed(EMITTER_ID),
        kind,
        target: target.map(Cow::Borrowed),
        event: Cow::Borrowed(event),
        data: Some(&data),
        exclude: exclude.iter().map(|c| Cow::Owned(c.to_string())).collect(),
        exclude_users: Vec::new(),
        rooms: vec![],
        except_rooms: vec![],
        path: None,
    };
    Ok((channels.for_target(kind, target), envelope.encode()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn emit(
        kind: TargetKind,
        target: Option<&str>,
        event: &str,
        exclude: &[ConnId],
    ) -> (String, Value) {
        let channels = Channels::new("app".to_owned());
        let (channel, payload) =
            emission(&channels, kind, target, event, &json!({"n": 1}), exclude).expect("valid");
        (channel, serde_json::from_slice(&payload).expect("JSON"))
    }

    #[test]
    fn each_target_goes_to_its_channel_under_the_prefix_as_an_ignis_envelope() {
        let conn = ConnId::from_u128(7);
        let cases = [
            (TargetKind::Room, Some("lobby"), "app:room:lobby", json!("room")),
            (TargetKind::User, Some("ann"), "app:user:ann", json!("user")),
            (TargetKind::Client, Some("c1"), "app:client:c1", json!("client")),
            (TargetKind::Broadcast, None, "app:broadcast", json!("broadcast")),
        ];
        for (kind, target, channel, kind_name) in cases {
            let (got, envelope) = emit(kind, target, "news", &[conn]);
            assert_eq!(got, channel);
            assert_eq!(envelope["serverId"], "emitter", "every instance delivers it");
            assert_eq!(envelope["type"], kind_name);
            assert_eq!(envelope["target"], target.map_or(Value::Null, Value::from));
            assert_eq!(envelope["event"], "news");
            assert_eq!(envelope["data"], json!({"n": 1}));
            assert_eq!(envelope["exclude"], json!([conn.to_string()]));
        }
    }

    #[test]
    fn an_envelope_without_exclusions_names_none() {
        let (_, envelope) = emit(TargetKind::Room, Some("r"), "e", &[]);
        assert!(envelope.get("exclude").is_none_or(|e| e == &json!([])), "{envelope}");
    }

    #[test]
    fn a_bad_event_name_or_an_empty_target_is_refused_before_anything_is_sent() {
        let channels = Channels::new("ws".to_owned());
        let long = "e".repeat(129);
        for (target, event) in [(Some("r"), ""), (Some("r"), long.as_str()), (Some(""), "e")] {
            let result = emission(&channels, TargetKind::Room, target, event, &1, &[]);
            assert!(matches!(result, Err(EmitError::Invalid)), "{target:?} {event:?}");
        }
        assert!(
            emission(&channels, TargetKind::Room, Some("r"), &"e".repeat(128), &1, &[]).is_ok()
        );
    }
}

//! Publishing to clients from a process that holds no sockets (workers, cron jobs, other services).

use std::borrow::Cow;

use roomcast_core::Channels;
use roomcast_core::ConnId;
use roomcast_core::envelope::{EMITTER_ID, Envelope, TargetKind};
use serde::Serialize;

use crate::RedisConfig;
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
        };
        let channel = self.channels.for_target(kind, target);
        self.conn.publish(&[(channel, envelope.encode())]).await?;
        Ok(())
    }
}

//! One connection to Redis, single node or cluster, with pub/sub pushes delivered to a channel.

use bytes::Bytes;
use redis::aio::MultiplexedConnection;
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{
    AsyncConnectionConfig, Client, ProtocolVersion, PushInfo, PushKind, RedisResult, Value,
};
use tokio::sync::mpsc::UnboundedSender;

use crate::config::{RedisConfig, Topology};

/// A live connection (RESP3, so that pub/sub messages arrive as pushes on the same connection
/// that publishes).
#[derive(Clone)]
pub(crate) enum Connection {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl Connection {
    /// Connects; pushes (messages, and the library's `Disconnection`) go to `pushes`.
    pub(crate) async fn open(
        config: &RedisConfig,
        pushes: Option<UnboundedSender<PushInfo>>,
    ) -> RedisResult<Self> {
        match &config.topology {
            Topology::Single(url) => {
                let client = Client::open(resp3(url))?;
                let mut settings = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(config.timeout))
                    .set_response_timeout(Some(config.timeout));
                if let Some(pushes) = pushes {
                    settings = settings.set_push_sender(pushes);
                }
                Ok(Self::Single(
                    client.get_multiplexed_async_connection_with_config(&settings).await?,
                ))
            }
            Topology::Cluster(seeds) => {
                let mut builder = ClusterClientBuilder::new(seeds.iter().map(|s| resp3(s)))
                    .use_protocol(ProtocolVersion::RESP3)
                    .connection_timeout(config.timeout)
                    .response_timeout(config.timeout);
                if let Some(pushes) = pushes {
                    builder = builder.push_sender(pushes);
                }
                Ok(Self::Cluster(builder.build()?.get_async_connection().await?))
            }
        }
    }

    pub(crate) async fn subscribe(&mut self, channel: &str) -> RedisResult<()> {
        match self {
            Self::Single(c) => c.subscribe(channel).await,
            Self::Cluster(c) => c.ssubscribe(channel).await,
        }
    }

    pub(crate) async fn unsubscribe(&mut self, channel: &str) -> RedisResult<()> {
        match self {
            Self::Single(c) => c.unsubscribe(channel).await,
            Self::Cluster(c) => c.sunsubscribe(channel).await,
        }
    }

    /// Publishes every message in order, in one round trip where the topology allows.
    pub(crate) async fn publish(&mut self, messages: &[(String, Bytes)]) -> RedisResult<()> {
        match self {
            Self::Single(c) => {
                let mut pipe = redis::pipe();
                for (channel, payload) in messages {
                    pipe.cmd("PUBLISH").arg(channel).arg(payload.as_ref()).ignore();
                }
                pipe.query_async::<()>(c).await
            }
            Self::Cluster(c) => {
                // Each channel hashes to its own shard: one command each, in order.
                for (channel, payload) in messages {
                    redis::cmd("SPUBLISH")
                        .arg(channel)
                        .arg(payload.as_ref())
                        .query_async::<()>(c)
                        .await?;
                }
                Ok(())
            }
        }
    }
}

impl Connection {
    /// Renews this instance's lease in the sorted set `key` (score: expiry in Redis's own clock,
    /// milliseconds) and returns every live lease with the time it has left.
    pub(crate) async fn renew_lease(
        &mut self,
        key: &str,
        server_id: &str,
        ttl: std::time::Duration,
    ) -> RedisResult<Vec<(String, std::time::Duration)>> {
        let (secs, micros): (u64, u64) = match self {
            Self::Single(c) => redis::cmd("TIME").query_async(c).await?,
            Self::Cluster(c) => redis::cmd("TIME").query_async(c).await?,
        };
        let now_ms = secs * 1000 + micros / 1000;
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        let mut pipe = redis::pipe();
        pipe.cmd("ZADD").arg(key).arg(now_ms.saturating_add(ttl_ms)).arg(server_id).ignore();
        pipe.cmd("ZREMRANGEBYSCORE").arg(key).arg("-inf").arg(now_ms).ignore();
        pipe.cmd("ZRANGEBYSCORE").arg(key).arg(now_ms).arg("+inf").arg("WITHSCORES");
        let (live,): (Vec<(String, u64)>,) = match self {
            Self::Single(c) => pipe.query_async(c).await?,
            Self::Cluster(c) => pipe.query_async(c).await?,
        };
        Ok(live
            .into_iter()
            .map(|(id, until)| (id, std::time::Duration::from_millis(until.saturating_sub(now_ms))))
            .collect())
    }
}

impl Connection {
    /// Removes this instance's lease from the sorted set `key`.
    pub(crate) async fn withdraw_lease(&mut self, key: &str, server_id: &str) -> RedisResult<()> {
        let mut zrem = redis::cmd("ZREM");
        zrem.arg(key).arg(server_id);
        match self {
            Self::Single(c) => zrem.query_async(c).await,
            Self::Cluster(c) => zrem.query_async(c).await,
        }
    }
}

/// The URL with `protocol=3` (RESP3) added.
fn resp3(url: &str) -> String {
    if url.contains("protocol=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&protocol=3")
    } else {
        format!("{url}?protocol=3")
    }
}

/// What a push means for the bus.
pub(crate) enum Push {
    /// A message on a channel.
    Message(String, Bytes),
    /// The connection is gone.
    Disconnected,
    /// Subscription confirmations and the like.
    Other,
}

pub(crate) fn classify(push: PushInfo) -> Push {
    match push.kind {
        PushKind::Message | PushKind::SMessage => {
            let mut data = push.data.into_iter();
            match (data.next(), data.next()) {
                (Some(channel), Some(payload)) => match (text(channel), bytes(payload)) {
                    (Some(channel), Some(payload)) => Push::Message(channel, payload),
                    _ => Push::Other,
                },
                _ => Push::Other,
            }
        }
        PushKind::Disconnection => Push::Disconnected,
        _ => Push::Other,
    }
}

fn text(value: Value) -> Option<String> {
    match value {
        Value::BulkString(b) => String::from_utf8(b).ok(),
        Value::SimpleString(s) => Some(s),
        _ => None,
    }
}

fn bytes(value: Value) -> Option<Bytes> {
    match value {
        Value::BulkString(b) => Some(Bytes::from(b)),
        Value::SimpleString(s) => Some(Bytes::from(s)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(kind: PushKind, data: Vec<Value>) -> PushInfo {
        PushInfo { kind, data }
    }

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn resp3_is_asked_for_in_the_url_unless_a_protocol_is_named() {
        assert_eq!(resp3("redis://h:6379"), "redis://h:6379?protocol=3");
        assert_eq!(resp3("redis://h:6379/0?timeout=1"), "redis://h:6379/0?timeout=1&protocol=3");
        assert_eq!(resp3("redis://h?protocol=2"), "redis://h?protocol=2");
    }

    #[test]
    fn messages_and_sharded_messages_carry_their_channel_and_payload() {
        for kind in [PushKind::Message, PushKind::SMessage] {
            match classify(push(kind.clone(), vec![bulk("ws:room:r"), bulk("{}")])) {
                Push::Message(channel, payload) => {
                    assert_eq!(channel, "ws:room:r");
                    assert_eq!(&payload[..], b"{}");
                }
                _ => panic!("{kind:?} is a message"),
            }
        }
    }

    #[test]
    fn a_disconnection_ends_the_connection_and_anything_else_is_ignored() {
        assert!(matches!(classify(push(PushKind::Disconnection, vec![])), Push::Disconnected));
        let ignored = [
            push(PushKind::Subscribe, vec![bulk("ws:room:r"), Value::Int(1)]),
            push(PushKind::Message, vec![bulk("only a channel")]),
            push(PushKind::Message, vec![Value::Int(3), bulk("payload")]),
            push(PushKind::Message, vec![Value::BulkString(vec![0xff]), bulk("not UTF-8 channel")]),
        ];
        for push in ignored {
            assert!(matches!(classify(push), Push::Other));
        }
    }
}

//! The peer protocol between instances with cluster presence, on the bus: each room's members
//! (join and leave deltas, sync on first interest), heartbeats and goodbye on the peers channel,
//! cluster queries and their answers. JSON, one message per bus payload.

use std::borrow::Cow;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::presence::PresenceEntry;
use crate::query::{ClusterMember, ClusterRoom, Query};
use crate::wire::to_bytes;

/// What one instance tells the others (cluster presence): a room's members, heartbeats, goodbye,
/// queries and their answers.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PeerMessage<'a> {
    #[serde(borrow)]
    pub(crate) server_id: Cow<'a, str>,
    pub(crate) op: PeerOp,
    #[serde(borrow, default, skip_serializing_if = "str::is_empty")]
    pub(crate) room: Cow<'a, str>,
    #[serde(borrow, default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) members: Vec<WireMember<'a>>,
    /// The id of a query, and of its answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) request: Option<u64>,
    /// A query, for every instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) query: Option<Query>,
    /// An answer's connections found (members or sessions).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) found: Vec<ClusterMember>,
    /// An answer's count of connections acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) affected: Option<u64>,
    /// An answer's rooms (a rooms query).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) rooms: Vec<ClusterRoom>,
}

/// The kinds of peer message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum PeerOp {
    /// These members joined the room (on the sender).
    Join,
    /// These members left it.
    Leave,
    /// These members' metadata changed (they stay in the room).
    Update,
    /// The sender has just gained interest in the room: send it your members.
    SyncRequest,
    /// The sender's members of the room, in answer to a sync request.
    Sync,
    /// The sender is alive (sent every third of `peer_timeout` on the peers channel).
    Heartbeat,
    /// The sender is leaving the cluster (a graceful shutdown, its connections already closed):
    /// forget it now rather than after `peer_timeout` (on the peers channel).
    Goodbye,
    /// A cluster query, for every instance (on the peers channel).
    Query,
    /// An instance's answer to a query (on the asker's server channel).
    Answer,
}

/// A member as instances exchange it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireMember<'a> {
    #[serde(borrow)]
    pub(crate) id: Cow<'a, str>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub(crate) user_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub(crate) info: Option<&'a RawValue>,
}

impl<'a> From<&PresenceEntry<'a>> for WireMember<'a> {
    fn from(entry: &PresenceEntry<'a>) -> Self {
        Self {
            id: Cow::Owned(entry.conn.to_string()),
            user_id: entry.user_id.map(Cow::Borrowed),
            info: entry.metadata,
        }
    }
}

impl PeerMessage<'_> {
    pub(crate) fn encode(&self) -> Bytes {
        to_bytes(self)
    }
}

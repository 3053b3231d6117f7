//! Who is in a room: presence entries, notices to the other members, and the `presence` answer.
//!
//! The hub answers from its own members; a clustered deployment adds the other instances'
//! entries (and names the instances that did not answer in `missing`).

use std::borrow::Cow;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::ConnId;
use crate::wire::to_bytes;

/// One member of a room, as presence reports it.
#[derive(Debug, Clone, Copy)]
pub struct PresenceEntry<'a> {
    /// The connection.
    pub conn: ConnId,
    /// Its user, if authenticated as one.
    pub user_id: Option<&'a str>,
    /// The metadata the application gave in [`Identity`](crate::Identity).
    pub metadata: Option<&'a RawValue>,
}

/// The wire form of one member: `{"id","userId","info"?}`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Member<'a> {
    id: String,
    user_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    info: Option<&'a RawValue>,
}

impl<'a> From<&PresenceEntry<'a>> for Member<'a> {
    fn from(entry: &PresenceEntry<'a>) -> Self {
        Self { id: entry.conn.to_string(), user_id: entry.user_id, info: entry.metadata }
    }
}

/// `{"event":"member_joined"|"member_left","room":..,"data":{"id","userId","info"?}}`.
pub(crate) fn notice(event: &'static str, room: &str, entry: &PresenceEntry<'_>) -> Bytes {
    #[derive(Serialize)]
    struct Frame<'a> {
        event: &'static str,
        room: &'a str,
        data: Member<'a>,
    }
    to_bytes(&Frame { event, room, data: Member::from(entry) })
}

/// `{"event":"presence","id"?:..,"data":{"room":..,"members":[..],"missing":[]}}`.
pub(crate) fn answer(
    room: &str,
    members: &[PresenceEntry<'_>],
    missing: &[&str],
    id: Option<&crate::RequestId>,
) -> Bytes {
    #[derive(Serialize)]
    struct Frame<'a> {
        event: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a RawValue>,
        data: Data<'a>,
    }
    #[derive(Serialize)]
    struct Data<'a> {
        room: &'a str,
        members: Vec<Member<'a>>,
        missing: &'a [&'a str],
    }
    to_bytes(&Frame {
        event: "presence",
        id: id.map(crate::RequestId::as_raw),
        data: Data { room, members: members.iter().map(Member::from).collect(), missing },
    })
}

/// What one instance tells the others about a room's presence (cluster presence).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PresenceMessage<'a> {
    #[serde(borrow)]
    pub(crate) server_id: Cow<'a, str>,
    pub(crate) op: PresenceOp,
    #[serde(borrow, default, skip_serializing_if = "str::is_empty")]
    pub(crate) room: Cow<'a, str>,
    #[serde(borrow, default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) members: Vec<WireMember<'a>>,
    /// The id of a query, and of its answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) request: Option<u64>,
    /// A query, for every instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) query: Option<crate::Query>,
    /// An answer's connections found (members or sessions).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) found: Vec<crate::ClusterMember>,
    /// An answer's count of connections acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) affected: Option<u64>,
}

/// The kinds of presence message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum PresenceOp {
    /// These members joined the room (on the sender).
    Join,
    /// These members left it.
    Leave,
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

impl PresenceMessage<'_> {
    pub(crate) fn encode(&self) -> Bytes {
        to_bytes(self)
    }
}

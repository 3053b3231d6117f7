//! Who is in a room: presence entries, notices to the other members, and the `presence` answer.
//!
//! The hub answers from its own members; a clustered deployment adds the other instances'
//! entries (and names the instances that did not answer in `missing`). How instances exchange
//! them is in [`peer`](crate::peer).

use bytes::Bytes;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::id::ConnId;
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
    id: Option<&crate::id::RequestId>,
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
        id: id.map(crate::id::RequestId::as_raw),
        data: Data { room, members: members.iter().map(Member::from).collect(), missing },
    })
}

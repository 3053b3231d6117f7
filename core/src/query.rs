//! Cluster queries and orders as the application and the peer protocol see them: whom they act on
//! ([`Target`]), what they ask ([`Query`], [`MetadataFilter`]), and what they gather
//! ([`QueryResult`], [`ClusterMember`], [`ClusterRoom`]). How the hub runs them is in
//! `hub/queries.rs`.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::id::ConnId;

/// Whom a cluster-wide operation acts on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// One connection, wherever it is.
    Conn(ConnId),
    /// Every session of a user, wherever they are.
    User(String),
}

/// A question or an order for every instance (with cluster presence on).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Query {
    /// The members of a room.
    Members {
        /// The room.
        room: String,
    },
    /// The sessions of a user.
    Sessions {
        /// The user.
        user: String,
    },
    /// The connections whose metadata matches a filter (PXL's `getClients({userType})`).
    Connections {
        /// What the metadata must hold.
        filter: MetadataFilter,
    },
    /// One connection, wherever it is, with the rooms it is in.
    Connection {
        /// The connection.
        conn: ConnId,
    },
    /// Every room with at least one member, and how many members it has, summed over the
    /// instances ([`QueryResult::rooms`]).
    Rooms,
    /// How many connections there are ([`QueryResult::affected`]).
    Count,
    /// Close the target's connections (code 1000, "disconnected by the server").
    Disconnect {
        /// Whom.
        target: Target,
    },
    /// Make the target's connections join a room.
    Join {
        /// Whom.
        target: Target,
        /// The room.
        room: String,
    },
    /// Make the target's connections leave a room.
    Leave {
        /// Whom.
        target: Target,
        /// The room.
        room: String,
    },
}

/// A filter on connections' metadata: every field it names must be present in the metadata (a
/// JSON object) with an equal value. The empty filter matches every connection, with metadata or
/// without.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MetadataFilter(serde_json::Map<String, serde_json::Value>);

// JSON numbers are never NaN: equality is reflexive.
impl Eq for MetadataFilter {}

impl MetadataFilter {
    /// The empty filter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a field the metadata must have, with this value.
    pub fn field(mut self, name: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        self.0.insert(name.into(), value.into());
        self
    }

    /// Whether `metadata` matches.
    pub fn matches(&self, metadata: Option<&RawValue>) -> bool {
        if self.0.is_empty() {
            return true;
        }
        let Some(metadata) = metadata else { return false };
        let Ok(serde_json::Value::Object(fields)) = serde_json::from_str(metadata.get()) else {
            return false;
        };
        self.0.iter().all(|(name, value)| fields.get(name) == Some(value))
    }
}

impl From<serde_json::Map<String, serde_json::Value>> for MetadataFilter {
    fn from(fields: serde_json::Map<String, serde_json::Value>) -> Self {
        Self(fields)
    }
}

/// The handle of a query in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueryId(pub u64);

/// A connection as a cluster query reports it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterMember {
    /// The instance it is on.
    pub server_id: String,
    /// The connection.
    pub conn: ConnId,
    /// Its user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Its metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Box<RawValue>>,
    /// The rooms it is in, in join order (only for [`Query::Connection`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rooms: Option<Vec<String>>,
}

/// A room as [`Query::Rooms`] reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterRoom {
    /// The room's name.
    pub name: String,
    /// Its members, on every instance that answered.
    pub members: u64,
}

/// What a query gathered.
#[derive(Debug, Clone)]
pub struct QueryResult {
    /// The query.
    pub id: QueryId,
    /// The connections found (`Members`, `Sessions`), from every instance that answered.
    pub members: Vec<ClusterMember>,
    /// How many connections were acted on (`Disconnect`, `Join`, `Leave`), or counted
    /// (`Count`).
    pub affected: u64,
    /// The rooms found (`Rooms`), by name, with their members summed over the instances.
    pub rooms: Vec<ClusterRoom>,
    /// Instances that were alive when the query was sent but did not answer by the deadline.
    /// Empty: the answer is complete.
    pub missing: Vec<String>,
}

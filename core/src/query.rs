//! Operations on the whole cluster, answered honestly: within a deadline, with what came back,
//! naming the instances that did not answer.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::ConnId;

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
}

/// What a query gathered.
#[derive(Debug, Clone)]
pub struct QueryResult {
    /// The query.
    pub id: QueryId,
    /// The connections found (`Members`, `Sessions`), from every instance that answered.
    pub members: Vec<ClusterMember>,
    /// How many connections were acted on (`Disconnect`, `Join`, `Leave`).
    pub affected: u64,
    /// Instances that were alive when the query was sent but did not answer by the deadline.
    /// Empty: the answer is complete.
    pub missing: Vec<String>,
}

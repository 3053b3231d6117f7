//! Room policies as `roomcast serve` reads them: the `--default-*` flags' values and the
//! `[[rooms]]` tables of the config file, turned into the core's policies.

use roomcast_tokio::roomcast_core::{JoinPolicy, PresencePolicy, PublishPolicy};
use serde::{Deserialize, Serialize};

/// `join` of a room policy, as written in flags and the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Join {
    Anyone,
    Token,
    Server,
}

/// `publish` of a room policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Publish {
    Members,
    Server,
    Proxy,
}

/// `presence` of a room policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Presence {
    Members,
    Server,
}

/// One `[[rooms]]` table: the policy of the rooms matching `pattern`. A key left out takes the
/// default policy's value (`--default-join`, ...).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomRule {
    pub pattern: String,
    pub join: Option<Join>,
    pub publish: Option<Publish>,
    pub presence: Option<Presence>,
}

impl From<Join> for JoinPolicy {
    fn from(join: Join) -> Self {
        match join {
            Join::Anyone => Self::Anyone,
            Join::Token => Self::Token,
            Join::Server => Self::Server,
        }
    }
}

impl From<Publish> for PublishPolicy {
    fn from(publish: Publish) -> Self {
        match publish {
            Publish::Members => Self::Members,
            Publish::Server => Self::Server,
            Publish::Proxy => Self::Checked,
        }
    }
}

impl From<Presence> for PresencePolicy {
    fn from(presence: Presence) -> Self {
        match presence {
            Presence::Members => Self::Members,
            Presence::Server => Self::Server,
        }
    }
}

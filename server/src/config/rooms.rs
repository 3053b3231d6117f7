//! Room policies as `roomcast serve` reads them: the `--default-*` flags' values and the
//! `[[rooms]]` tables of the config file, turned into the core's policies.

use roomcast_tokio::roomcast_core::{HistoryPolicy, JoinPolicy, PresencePolicy, PublishPolicy};
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
    /// Messages kept per room for clients that come back; 0 or absent: no history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_size: Option<u32>,
    /// How long a kept message lives (`10m`, `30s`, ...); needed with `history_size`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_ttl: Option<String>,
}

impl RoomRule {
    /// The rule's history, checked: both keys or neither.
    pub(crate) fn history(&self) -> Result<Option<HistoryPolicy>, String> {
        let pattern = &self.pattern;
        match (self.history_size.filter(|size| *size > 0), &self.history_ttl) {
            // `history_size = 0` turns history off, whatever the ttl.
            (None, _) if self.history_size == Some(0) => Ok(None),
            (None, None) => Ok(None),
            (Some(size), Some(ttl)) => {
                let ttl = super::duration(ttl)
                    .map_err(|e| format!("room policy {pattern}: history_ttl: {e}"))?;
                if ttl.is_zero() {
                    return Err(format!("room policy {pattern}: history_ttl must be above zero"));
                }
                Ok(Some(HistoryPolicy { size, ttl }))
            }
            (Some(_), None) => {
                Err(format!("room policy {pattern}: history_size needs history_ttl"))
            }
            (None, Some(_)) => {
                Err(format!("room policy {pattern}: history_ttl needs history_size"))
            }
        }
    }
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

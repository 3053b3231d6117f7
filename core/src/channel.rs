//! The names of the bus channels, under one prefix (default `ws`): what an instance subscribes to,
//! and where an envelope or a peer message travels.

use crate::envelope::TargetKind;
use crate::id::ConnId;

/// Builds channel names under one prefix: `{prefix}:room:{room}`, `{prefix}:user:{id}`,
/// `{prefix}:client:{id}`, `{prefix}:broadcast`.
#[derive(Clone, Debug)]
pub struct Channels {
    prefix: String,
}

impl Channels {
    /// Channel names under `prefix` (default `ws`).
    pub fn new(prefix: impl Into<String>) -> Self {
        Self { prefix: prefix.into() }
    }

    /// The channel of a room.
    pub fn room(&self, room: &str) -> String {
        format!("{}:room:{room}", self.prefix)
    }

    /// The channel of a user's sessions.
    pub fn user(&self, user_id: &str) -> String {
        format!("{}:user:{user_id}", self.prefix)
    }

    /// The channel of one connection.
    pub fn client(&self, conn: ConnId) -> String {
        format!("{}:client:{conn}", self.prefix)
    }

    /// The channel of server-wide broadcasts.
    pub fn broadcast(&self) -> String {
        format!("{}:broadcast", self.prefix)
    }

    /// The presence channel of a room (cluster presence).
    pub fn presence(&self, room: &str) -> String {
        format!("{}:presence:{room}", self.prefix)
    }

    /// The private channel of one instance (replies to it).
    pub fn server(&self, server_id: &str) -> String {
        format!("{}:server:{server_id}", self.prefix)
    }

    /// The channel every instance with cluster presence hears: heartbeats.
    pub fn peers(&self) -> String {
        format!("{}:peers", self.prefix)
    }

    /// Whether `channel` carries presence traffic (a room's presence channel, a server's, or the
    /// peers channel).
    pub fn is_presence(&self, channel: &str) -> bool {
        channel.strip_prefix(self.prefix.as_str()).is_some_and(|rest| {
            rest.starts_with(":presence:") || rest.starts_with(":server:") || rest == ":peers"
        })
    }

    /// The channel an envelope for `kind`/`target` travels on.
    pub fn for_target(&self, kind: TargetKind, target: Option<&str>) -> String {
        match (kind, target) {
            (TargetKind::Client, Some(t)) => format!("{}:client:{t}", self.prefix),
            (TargetKind::User, Some(t)) => self.user(t),
            (TargetKind::Room, Some(t)) => self.room(t),
            _ => self.broadcast(),
        }
    }
}

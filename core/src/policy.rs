//! Room policies: who may join a room, publish into it and ask who is in it, by room-name pattern.
//!
//! A client's own `join`, `leave`, `publish` and `presence` frames are checked against the policy
//! of the room they name; the application's own calls ([`Hub::join`](crate::Hub::join),
//! [`Hub::broadcast_room`](crate::Hub::broadcast_room), ...) never are. A room takes the policy of
//! the most specific pattern it matches, or the default policy when it matches none.
//!
//! ```
//! use roomcast_core::{JoinPolicy, PublishPolicy, RoomPolicies, RoomPolicy};
//!
//! // Nothing by default; chat rooms open to every client; news read by anyone, written by the server.
//! let policies = RoomPolicies::new(RoomPolicy::server_only())
//!     .with("chat:*", RoomPolicy::open())
//!     .with("news:*", RoomPolicy { publish: PublishPolicy::Server, ..RoomPolicy::open() });
//! assert_eq!(policies.for_room("chat:lobby").join, JoinPolicy::Anyone);
//! assert_eq!(policies.for_room("news:eu").publish, PublishPolicy::Server);
//! assert_eq!(policies.for_room("admin").join, JoinPolicy::Server);
//! ```

use std::time::Duration;

use crate::identity::RoomAcl;
use crate::pattern::RoomPattern;

/// Who may join a room with a client `join` frame, and so leave it with `leave`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum JoinPolicy {
    /// Any authenticated connection, whatever its identity lists. Written `anyone`.
    #[default]
    Anyone,
    /// Only connections whose identity lists the room ([`Identity::rooms`](crate::Identity):
    /// the JWT's `rooms` claim, the authenticate proxy's `rooms`). Written `token`.
    Token,
    /// No client by itself: the application or the server API puts connections in, and only
    /// they take them out. Written `server`.
    Server,
}

/// Who may publish into a room with a client `publish` frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PublishPolicy {
    /// Its members. Written `members`.
    #[default]
    Members,
    /// No client: only the application, the server API and emitters. Written `server`.
    Server,
    /// Its members, each publish decided by the application first ([`Event::Publish`](crate::Event::Publish),
    /// answered with [`Hub::accept_publish`](crate::Hub::accept_publish) or
    /// [`Hub::reply_error`](crate::Hub::reply_error)). Written `proxy` (`roomcast serve` asks its
    /// publish proxy).
    Checked,
}

/// Who may ask who is in a room with a client `presence` frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PresencePolicy {
    /// Its members. Written `members`.
    #[default]
    Members,
    /// No client: only the application and the server API. Written `server`.
    Server,
}

/// A room's history: how many of its latest messages are kept, and for how long, so that a
/// client that comes back can recover what it missed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryPolicy {
    /// Messages kept (the newest); at least 1.
    pub size: u32,
    /// How long a message is kept after it was published.
    pub ttl: Duration,
}

/// What clients may do with a room by themselves, and whether it keeps a history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RoomPolicy {
    /// Who may join (and leave).
    pub join: JoinPolicy,
    /// Who may publish.
    pub publish: PublishPolicy,
    /// Who may ask for its presence.
    pub presence: PresencePolicy,
    /// Its history; `None` (the default): no history, messages carry no offset.
    pub history: Option<HistoryPolicy>,
}

impl RoomPolicy {
    /// Any client joins, leaves and publishes; members ask who is in it. The protocol's own
    /// default, and `roomcast serve`'s.
    pub const fn open() -> Self {
        Self {
            join: JoinPolicy::Anyone,
            publish: PublishPolicy::Members,
            presence: PresencePolicy::Members,
            history: None,
        }
    }

    /// Clients neither join, leave nor publish by themselves: the application does it for
    /// them. Members may still ask who is in it. The default of an application with handlers.
    pub const fn server_only() -> Self {
        Self {
            join: JoinPolicy::Server,
            publish: PublishPolicy::Server,
            presence: PresencePolicy::Members,
            history: None,
        }
    }
}

/// The policies of every room: rules by pattern, and the default for rooms matching none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoomPolicies {
    /// Most specific first; among equals, in the order they were added.
    rules: Vec<(RoomPattern, RoomPolicy)>,
    default: Option<RoomPolicy>,
}

impl RoomPolicies {
    /// No rules; every room gets `default`.
    pub fn new(default: RoomPolicy) -> Self {
        Self { rules: Vec::new(), default: Some(default) }
    }

    /// Adds (or replaces) the policy of the rooms matching `pattern`.
    #[must_use]
    pub fn with(mut self, pattern: &str, policy: RoomPolicy) -> Self {
        self.set(pattern, policy);
        self
    }

    /// Adds (or replaces) the policy of the rooms matching `pattern`.
    pub fn set(&mut self, pattern: &str, policy: RoomPolicy) {
        if let Some(rule) = self.rules.iter_mut().find(|(p, _)| p.as_str() == pattern) {
            rule.1 = policy;
            return;
        }
        let pattern = RoomPattern::new(pattern);
        let at = self.rules.partition_point(|(p, _)| p.specificity() <= pattern.specificity());
        self.rules.insert(at, (pattern, policy));
    }

    /// Sets the policy of rooms that match no pattern.
    pub fn set_default(&mut self, policy: RoomPolicy) {
        self.default = Some(policy);
    }

    /// Whether a default policy was set ([`new`](Self::new), [`set_default`](Self::set_default));
    /// without one, rooms that match no pattern are [`open`](RoomPolicy::open). An adapter may
    /// choose a stricter default for an application that set none.
    pub fn has_default(&self) -> bool {
        self.default.is_some()
    }

    /// The policy of rooms that match no pattern.
    pub fn default_policy(&self) -> RoomPolicy {
        self.default.unwrap_or_else(RoomPolicy::open)
    }

    /// The rules, most specific first.
    pub fn rules(&self) -> impl Iterator<Item = (&RoomPattern, &RoomPolicy)> {
        self.rules.iter().map(|(p, r)| (p, r))
    }

    /// The history settings of the default and of every rule that keeps one.
    pub fn histories(&self) -> impl Iterator<Item = HistoryPolicy> + '_ {
        let default = self.default.and_then(|p| p.history);
        default.into_iter().chain(self.rules.iter().filter_map(|(_, r)| r.history))
    }

    /// Whether some room's policy asks the application to check publishes.
    pub fn checks_publishes(&self) -> bool {
        self.default_policy().publish == PublishPolicy::Checked
            || self.rules.iter().any(|(_, r)| r.publish == PublishPolicy::Checked)
    }

    /// The policy of `room`: the most specific pattern's it matches, or the default.
    pub fn for_room(&self, room: &str) -> RoomPolicy {
        self.rules
            .iter()
            .find(|(p, _)| p.matches(room))
            .map_or_else(|| self.default_policy(), |(_, policy)| *policy)
    }
}

impl JoinPolicy {
    /// Whether a connection whose identity allows `acl` may join (and leave) `room` by itself.
    pub fn allows(self, acl: &RoomAcl, room: &str) -> bool {
        match self {
            Self::Anyone => true,
            Self::Token => matches!(acl, RoomAcl::Only(_)) && acl.allows(room),
            Self::Server => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_specific_pattern_wins_whatever_the_order_they_were_added_in() {
        let server = RoomPolicy::server_only();
        let open = RoomPolicy::open();
        let members_only = RoomPolicy { join: JoinPolicy::Token, ..open };
        let policies = RoomPolicies::new(server)
            .with("*", members_only)
            .with("chat:*", open)
            .with("chat:admin", server);
        assert_eq!(policies.for_room("chat:lobby"), open);
        assert_eq!(policies.for_room("chat:admin"), server);
        assert_eq!(policies.for_room("other"), members_only);
        let reversed = RoomPolicies::new(server)
            .with("chat:admin", server)
            .with("chat:*", open)
            .with("*", members_only);
        for room in ["chat:lobby", "chat:admin", "other"] {
            assert_eq!(policies.for_room(room), reversed.for_room(room), "{room}");
        }
    }

    #[test]
    fn equally_specific_patterns_keep_their_order_and_a_repeated_pattern_replaces() {
        let open = RoomPolicy::open();
        let server = RoomPolicy::server_only();
        // "a:*" and "*:b" are equally specific: the first added wins.
        let policies = RoomPolicies::new(open).with("a:*", server).with("*:b", open);
        assert_eq!(policies.for_room("a:b"), server);
        let policies = policies.with("a:*", open);
        assert_eq!(policies.for_room("a:b"), open);
        assert_eq!(policies.rules().count(), 2);
    }

    #[test]
    fn rooms_matching_no_pattern_get_the_default_or_open_when_none_was_set() {
        let unset = RoomPolicies::default();
        assert!(!unset.has_default());
        assert_eq!(unset.for_room("x"), RoomPolicy::open());
        let set = RoomPolicies::new(RoomPolicy::server_only());
        assert!(set.has_default());
        assert_eq!(set.for_room("x"), RoomPolicy::server_only());
    }

    #[test]
    fn token_joins_need_a_rooms_list_naming_the_room_and_anyone_means_anyone() {
        let listed = RoomAcl::Only(vec!["team:1:*".into()]);
        assert!(JoinPolicy::Anyone.allows(&RoomAcl::Any, "x"));
        assert!(JoinPolicy::Anyone.allows(&listed, "x"));
        assert!(JoinPolicy::Anyone.allows(&listed, "team:1:a"));
        assert!(!JoinPolicy::Token.allows(&RoomAcl::Any, "team:1:a"));
        assert!(JoinPolicy::Token.allows(&listed, "team:1:a"));
        assert!(!JoinPolicy::Token.allows(&listed, "team:2:a"));
        assert!(!JoinPolicy::Server.allows(&listed, "team:1:a"));
        assert!(!JoinPolicy::Server.allows(&RoomAcl::Any, "x"));
    }
}

//! Who a connection is, once the application (or the server's authenticator) has accepted it.

use serde_json::value::RawValue;

/// Longest user id, in bytes.
pub const MAX_USER_ID_BYTES: usize = 256;

/// The identity the application grants a connection in [`Hub::accept_auth`](crate::Hub::accept_auth).
#[derive(Clone, Debug, Default)]
pub struct Identity {
    /// The user behind the connection; `None` for an anonymous connection. All connections of
    /// one user are reachable at once with [`Hub::send_to_user`](crate::Hub::send_to_user).
    pub user_id: Option<String>,
    /// Anything the application wants to keep with the connection (e.g. a display name); the
    /// hub stores it and hands it back in queries, never reads it.
    pub metadata: Option<Box<RawValue>>,
    /// The rooms this connection may join by itself with a `join` frame where the room's policy
    /// asks for a list ([`JoinPolicy::Token`](crate::JoinPolicy::Token)): `Only(..)` from a
    /// token's `rooms` claim; `Any` (the default) is no list, and joins no such room.
    pub rooms: RoomAcl,
    /// How long the credentials stay valid from their acceptance (a token's `exp`): the
    /// connection is sent `token_expiring` `token_refresh_notice` before, and closed with 4004
    /// at the expiry unless a `refresh` was accepted meanwhile. `None`: they never expire.
    pub expires_in: Option<std::time::Duration>,
}

impl Identity {
    /// An anonymous identity that may join any room.
    pub fn anonymous() -> Self {
        Self::default()
    }

    /// The identity of `user_id`, allowed in any room.
    pub fn user(user_id: impl Into<String>) -> Self {
        Self { user_id: Some(user_id.into()), ..Self::default() }
    }

    /// Whether the hub accepts this identity: a user id, if any, of 1 to
    /// [`MAX_USER_ID_BYTES`](crate::MAX_USER_ID_BYTES) bytes. A driver may check it before it
    /// opens a connection (at the HTTP upgrade, say).
    pub fn check(&self) -> Result<(), crate::error::HubError> {
        match &self.user_id {
            Some(user) if !(1..=MAX_USER_ID_BYTES).contains(&user.len()) => {
                Err(crate::error::HubError::InvalidUser)
            }
            _ => Ok(()),
        }
    }
}

/// Which rooms a client may join with its own `join` frames. The application's own
/// [`Hub::join`](crate::Hub::join) calls are never checked against it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum RoomAcl {
    /// Any room.
    #[default]
    Any,
    /// Only rooms matching one of these patterns, where `*` matches any run of characters
    /// (`"team:42:*"` allows `team:42:general`, `"*:public"` allows `news:public`; a lone `"*"`
    /// allows every room).
    Only(Vec<String>),
}

impl RoomAcl {
    /// Whether `room` may be joined.
    pub fn allows(&self, room: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Only(patterns) => patterns.iter().any(|p| crate::pattern::glob(p, room)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acl_matches_exact_names_and_prefix_patterns() {
        let acl = RoomAcl::Only(vec!["lobby".into(), "team:42:*".into()]);
        assert!(acl.allows("lobby"));
        assert!(!acl.allows("lobby2"));
        assert!(acl.allows("team:42:general"));
        assert!(!acl.allows("team:43:general"));
        assert!(RoomAcl::Only(vec!["*".into()]).allows("anything"));
        assert!(!RoomAcl::Only(vec![]).allows("lobby"));
        assert!(RoomAcl::Any.allows("x"));
        assert!(RoomAcl::Only(vec!["*:public".into()]).allows("news:public"));
    }
}

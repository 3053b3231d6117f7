//! Choosing recipients: a member set minus an exclusion, into one recipient list.
//!
//! This is the hot path of every broadcast. The common cases (no exclusion, or only the sender)
//! cost one copy of a 16-byte id per recipient and one comparison.

use crate::ConnId;
use crate::members::{MemberIndex, MemberSet};

/// Connections that must not receive a delivery, sorted for binary search.
#[derive(Debug, Default)]
pub(crate) struct Exclusion {
    conns: Vec<ConnId>,
}

impl Exclusion {
    /// Excludes `conns`, and every local session of each of `users`.
    pub(crate) fn new<'u>(
        conns: impl IntoIterator<Item = ConnId>,
        users: impl IntoIterator<Item = &'u str>,
        user_index: &MemberIndex,
    ) -> Self {
        let mut list: Vec<ConnId> = conns.into_iter().collect();
        for user in users {
            if let Some(sessions) = user_index.get(user) {
                list.extend(sessions.iter().copied());
            }
        }
        list.sort_unstable();
        list.dedup();
        Self { conns: list }
    }

    pub(crate) fn contains(&self, conn: &ConnId) -> bool {
        match self.conns.as_slice() {
            [] => false,
            [only] => only == conn,
            many => many.binary_search(conn).is_ok(),
        }
    }
}

/// The members of `set` not in `exclusion`, in the set's order.
pub(crate) fn recipients(set: &MemberSet, exclusion: &Exclusion) -> Vec<ConnId> {
    match exclusion.conns.as_slice() {
        [] => set.iter().copied().collect(),
        [only] => {
            let mut to = Vec::with_capacity(set.len());
            to.extend(set.iter().filter(|c| *c != only).copied());
            to
        }
        _ => {
            let mut to = Vec::with_capacity(set.len());
            to.extend(set.iter().filter(|c| !exclusion.contains(c)).copied());
            to
        }
    }
}

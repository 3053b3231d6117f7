//! Choosing recipients: a member set minus an exclusion, into one recipient list.
//!
//! This is the hot path of every broadcast. The common cases (no exclusion, or only the sender)
//! cost one copy of a 16-byte id per recipient and one comparison.

use crate::id::ConnId;
use crate::members::{MemberIndex, MemberSet, position};

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

    /// Also excludes the local members of `rooms`.
    pub(crate) fn with_rooms<'r>(
        mut self,
        rooms: impl IntoIterator<Item = &'r str>,
        room_index: &MemberIndex,
    ) -> Self {
        let before = self.conns.len();
        for room in rooms {
            if let Some(members) = room_index.get(room) {
                self.conns.extend(members.iter().copied());
            }
        }
        if self.conns.len() != before {
            self.conns.sort_unstable();
            self.conns.dedup();
        }
        self
    }

    pub(crate) fn contains(&self, conn: &ConnId) -> bool {
        match self.conns.as_slice() {
            [] => false,
            [only] => only == conn,
            many => many.binary_search(conn).is_ok(),
        }
    }
}

/// The members of `set` not in `exclusion`.
///
/// One copy of the member list, then one hash lookup and an O(1) removal per excluded connection
/// that is a member: the cost per recipient does not grow with the size of the exclusion. The
/// order is the set's, with each removed slot taken by the list's last entry (deterministic).
pub(crate) fn recipients(set: &MemberSet, exclusion: &Exclusion) -> Vec<ConnId> {
    let mut to: Vec<ConnId> = set.iter().copied().collect();
    if exclusion.conns.is_empty() {
        return to;
    }
    let mut slots: Vec<usize> = exclusion.conns.iter().filter_map(|c| position(set, c)).collect();
    // Highest slot first: every entry swapped in from the end is then one that stays.
    slots.sort_unstable_by(|a, b| b.cmp(a));
    for slot in slots {
        to.swap_remove(slot);
    }
    to
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::members::Hasher;

    #[test]
    fn recipients_are_the_members_minus_the_exclusion_each_once() {
        let index = MemberIndex::new(Hasher::with_seed(1));
        let mut set = MemberSet::with_hasher(Hasher::with_seed(1));
        set.extend((0..10).map(ConnId::from_u128));
        for excluded in
            [vec![], vec![9], vec![0], vec![0, 9, 5], vec![3, 4, 5, 6, 42], (0..10).collect()]
        {
            let exclusion =
                Exclusion::new(excluded.iter().map(|&n| ConnId::from_u128(n)), [], &index);
            let mut to = recipients(&set, &exclusion);
            to.sort();
            let expected: Vec<ConnId> =
                (0..10).filter(|n| !excluded.contains(n)).map(ConnId::from_u128).collect();
            assert_eq!(to, expected, "excluding {excluded:?}");
        }
    }
}

//! Named groups of connections: rooms (room → members) and users (user id → sessions).
//!
//! An empty group is removed at once, so the index never holds more entries than there are
//! memberships. Member sets are insertion-ordered ([`IndexSet`]) so that iteration order depends
//! only on the sequence of inputs, never on hashing.

use std::sync::Arc;

use indexmap::{IndexMap, IndexSet};

use crate::id::ConnId;

/// The hasher of every index in the hub: fast, seeded by the configuration.
pub(crate) type Hasher = foldhash::fast::FixedState;

/// The connections of one group.
pub(crate) type MemberSet = IndexSet<ConnId, Hasher>;

/// Sets up to this size are searched by a scan of their entries (contiguous: a few cache lines
/// that a fan-out reads next anyway) rather than through their hash table, one more memory access
/// that in a server with thousands of rooms is likely a cache miss.
const SCAN_UP_TO: usize = 16;

/// Where `conn` is in `set`, if it is a member.
pub(crate) fn position(set: &MemberSet, conn: &ConnId) -> Option<usize> {
    if set.len() <= SCAN_UP_TO {
        set.iter().position(|c| c == conn)
    } else {
        set.get_index_of(conn)
    }
}

/// What [`MemberIndex::insert`] changed.
#[derive(Debug)]
pub(crate) struct Inserted {
    /// The group's shared name, to keep on the connection's side of the index.
    pub(crate) name: Arc<str>,
    /// The group did not exist before: first member.
    pub(crate) new_group: bool,
}

/// Group name → member set.
#[derive(Debug)]
pub(crate) struct MemberIndex {
    groups: IndexMap<Arc<str>, MemberSet, Hasher>,
    hasher: Hasher,
}

impl MemberIndex {
    pub(crate) fn new(hasher: Hasher) -> Self {
        Self { groups: IndexMap::with_hasher(hasher.clone()), hasher }
    }

    /// Adds `conn` to `name` (a no-op if it is a member), creating the group if needed.
    pub(crate) fn insert(&mut self, name: &str, conn: ConnId) -> Inserted {
        if let Some((_, key, members)) = self.groups.get_full_mut(name) {
            members.insert(conn);
            return Inserted { name: key.clone(), new_group: false };
        }
        let key: Arc<str> = Arc::from(name);
        let mut members = MemberSet::with_hasher(self.hasher.clone());
        members.insert(conn);
        self.groups.insert(key.clone(), members);
        Inserted { name: key, new_group: true }
    }

    /// Removes `conn` from `name`; returns `Some(emptied)` if it was a member, where `emptied`
    /// says the group is gone now.
    pub(crate) fn remove(&mut self, name: &str, conn: ConnId) -> Option<bool> {
        let members = self.groups.get_mut(name)?;
        if !members.swap_remove(&conn) {
            return None;
        }
        let emptied = members.is_empty();
        if emptied {
            self.groups.swap_remove(name);
            shrink_map(&mut self.groups);
        } else {
            shrink_set(members);
        }
        Some(emptied)
    }

    /// Entries the index has room for, groups and members: it follows what the index holds, so
    /// that a burst of groups (a million rooms joined and left) does not keep its memory.
    pub(crate) fn capacity(&self) -> usize {
        self.groups.capacity() + self.groups.values().map(IndexSet::capacity).sum::<usize>()
    }

    /// Whether `conn` is in `name`: one lookup of the group, then its member set.
    pub(crate) fn contains(&self, name: &str, conn: &ConnId) -> bool {
        self.groups.get(name).is_some_and(|members| position(members, conn).is_some())
    }

    /// The members of `name`, if it has any.
    pub(crate) fn get(&self, name: &str) -> Option<&MemberSet> {
        self.groups.get(name)
    }

    /// Every group with its members.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &MemberSet)> + '_ {
        self.groups.iter().map(|(k, v)| (&**k, v))
    }

    /// The names of every non-empty group.
    pub(crate) fn names(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.groups.keys().map(|k| &**k)
    }

    /// How many groups exist.
    pub(crate) fn len(&self) -> usize {
        self.groups.len()
    }
}

/// Below this capacity a map or set is never shrunk: small ones are not worth the work.
const SHRINK_ABOVE: usize = 64;

/// Halves what a map holds room for once it is less than a quarter full: amortized O(1) per
/// removal, and memory that follows the contents.
pub(crate) fn shrink_map<K: std::hash::Hash + Eq, V, S: std::hash::BuildHasher>(
    map: &mut IndexMap<K, V, S>,
) {
    if map.capacity() > SHRINK_ABOVE && map.len() < map.capacity() / 4 {
        map.shrink_to(map.len() * 2);
    }
}

/// [`shrink_map`] for a set.
pub(crate) fn shrink_set<T: std::hash::Hash + Eq, S: std::hash::BuildHasher>(
    set: &mut IndexSet<T, S>,
) {
    if set.capacity() > SHRINK_ABOVE && set.len() < set.capacity() / 4 {
        set.shrink_to(set.len() * 2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_agrees_with_the_hash_table_below_and_above_the_scan_size() {
        for size in [0, 1, SCAN_UP_TO - 1, SCAN_UP_TO, SCAN_UP_TO + 1, 100] {
            let mut set = MemberSet::with_hasher(Hasher::with_seed(3));
            set.extend((0..size as u128).map(|n| ConnId::from_u128(n * 7)));
            for n in 0..(size as u128 + 2) * 7 {
                let conn = ConnId::from_u128(n);
                assert_eq!(position(&set, &conn), set.get_index_of(&conn), "size {size}, {n}");
            }
        }
    }

    #[test]
    fn groups_appear_with_their_first_member_and_vanish_with_their_last() {
        let mut index = MemberIndex::new(Hasher::with_seed(0));
        let (a, b) = (ConnId::from_u128(1), ConnId::from_u128(2));
        let first = index.insert("r", a);
        assert!(first.new_group);
        let second = index.insert("r", b);
        assert!(!second.new_group);
        assert!(Arc::ptr_eq(&first.name, &second.name));
        assert_eq!(index.get("r").map(|m| m.len()), Some(2));
        assert_eq!(index.remove("r", a), Some(false));
        assert_eq!(index.remove("r", a), None);
        assert_eq!(index.remove("r", b), Some(true));
        assert_eq!(index.len(), 0);
        assert!(index.get("r").is_none());
    }

    #[test]
    fn the_index_gives_back_its_room_as_groups_and_members_leave() {
        let mut index = MemberIndex::new(Hasher::with_seed(0));
        let a = ConnId::from_u128(1);
        for n in 0..100_000 {
            index.insert(&format!("room-{n}"), a);
        }
        assert!(index.capacity() >= 100_000);
        for n in 0..100_000 {
            index.remove(&format!("room-{n}"), a);
        }
        assert!(index.capacity() <= SHRINK_ABOVE * 2, "{}", index.capacity());
        for n in 0..10_000u128 {
            index.insert("big", ConnId::from_u128(n));
        }
        for n in 1..10_000u128 {
            index.remove("big", ConnId::from_u128(n));
        }
        assert!(index.capacity() <= SHRINK_ABOVE * 4, "{}", index.capacity());
    }
}

//! Joining and leaving rooms: the policy check of a client's own join, the indexes kept in
//! step, bus interest that begins with a room's first local member and ends with its last, and
//! the presence notices a join or a leave sends.

use super::*;

impl Hub {
    /// Adds `id` to `room`. `Ok(false)` if it was already a member.
    /// `check_policy`: a client's own join, which the room's policy and the connection's
    /// [`RoomAcl`](crate::RoomAcl) must allow.
    pub(super) fn join_room(
        &mut self,
        id: ConnId,
        room: &str,
        check_policy: bool,
    ) -> Result<bool, Refusal> {
        if !self.valid_room(room) {
            return Err(Refusal::InvalidRoom);
        }
        let allowed = !check_policy || self.may_join(id, room);
        let Some(c) = self.registry.conns.get_mut(&id) else {
            return Err(Refusal::Unknown);
        };
        if !c.stage.is_authenticated() {
            return Err(Refusal::Unauthenticated);
        }
        if self.registry.rooms.contains(room, &id) {
            return Ok(false);
        }
        if !allowed {
            return Err(Refusal::Forbidden);
        }
        if c.rooms.len() >= self.config.max_rooms_per_conn {
            return Err(Refusal::TooMany);
        }
        let inserted = self.registry.rooms.insert(room, id);
        c.rooms.push(inserted.name);
        if inserted.new_group {
            if self.history.enabled && self.config.rooms.for_room(room).history.is_some() {
                self.history.open(room);
            }
            self.interest(true, |c| c.room(room));
            if self.config.cluster_presence {
                self.presence_interest_begins(room);
            }
        }
        self.event(Event::Joined { conn: id, room: room.to_owned() });
        self.presence_notice("member_joined", room, id, None);
        Ok(true)
    }

    /// Whether the room's policy lets this connection join `room` (and leave it) by itself: the
    /// one rule for a client's `join` and `leave`.
    pub(super) fn may_join(&self, conn: ConnId, room: &str) -> bool {
        self.registry
            .conns
            .get(&conn)
            .is_some_and(|c| self.config.rooms.for_room(room).join.allows(&c.acl, room))
    }

    /// Removes `id` from `room`; `false` if it was not a member.
    pub(super) fn leave_room(&mut self, id: ConnId, room: &str) -> bool {
        let Some(c) = self.registry.conns.get_mut(&id) else {
            return false;
        };
        let Some(pos) = c.rooms.iter().position(|r| &**r == room) else {
            return false;
        };
        c.rooms.remove(pos);
        let emptied = self.registry.rooms.remove(room, id) == Some(true);
        self.event(Event::Left { conn: id, room: room.to_owned() });
        self.presence_notice("member_left", room, id, None);
        if emptied {
            self.room_interest_ends(room);
        }
        true
    }

    /// Bus interest in a channel begins or ends. A standalone hub has no bus: it names no
    /// channel and outputs nothing (a subscription per connection would be kept for nobody).
    pub(super) fn interest(&mut self, begins: bool, channel: impl FnOnce(&Channels) -> String) {
        if self.config.standalone {
            return;
        }
        let channel = channel(&self.channels);
        self.out.push_back(if begins {
            Output::BusSubscribe(channel)
        } else {
            Output::BusUnsubscribe(channel)
        });
    }

    /// The last local member of `room` left: bus interest in it ends.
    pub(super) fn room_interest_ends(&mut self, room: &str) {
        self.history.forget_if_idle(room, false);
        self.interest(false, |c| c.room(room));
        if self.config.cluster_presence {
            self.presence_interest_ends(room);
        }
    }

    /// A local connection joined or left `room`: the other local members are told, as the
    /// presence settings ask, and (with cluster presence) so are the other instances. `gone` is
    /// the connection's state when it has already left the hub.
    pub(super) fn presence_notice(
        &mut self,
        event: &'static str,
        room: &str,
        who: ConnId,
        gone: Option<&Conn>,
    ) {
        let cluster = self.config.cluster_presence;
        if self.config.presence_events == PresenceEvents::Off && !cluster {
            return;
        }
        let Some(c) = gone.or_else(|| self.registry.conns.get(&who)) else { return };
        let entry = PresenceEntry {
            conn: who,
            user_id: c.user.as_deref(),
            metadata: c.metadata.as_deref(),
        };
        let notice = self.notice_for(event, room, &entry);
        let delta = cluster.then(|| {
            let op =
                if event == "member_joined" { peer::PeerOp::Join } else { peer::PeerOp::Leave };
            self.presence_payload(op, room, vec![peer::WireMember::from(&entry)])
        });
        if let Some((to, frame)) = notice {
            self.transmit(to, frame);
        }
        if let Some(payload) = delta {
            let channel = self.channels.presence(room);
            self.push_publish(channel, payload);
        }
    }

    /// The notice telling the local members of `room` (all but `entry` itself) that it joined or
    /// left, if the presence settings ask for one.
    pub(super) fn notice_for(
        &self,
        event: &'static str,
        room: &str,
        entry: &PresenceEntry<'_>,
    ) -> Option<(Vec<ConnId>, Bytes)> {
        let mode = self.config.presence_events;
        if mode == PresenceEvents::Off || !self.config.presence_rooms.allows(room) {
            return None;
        }
        let members = self.registry.rooms.get(room)?;
        if mode == PresenceEvents::Users
            && let Some(user) = entry.user_id
        {
            // The person is still (or already) here through another session: no notice.
            if self.user_in_room(room, user, entry.conn) {
                return None;
            }
        }
        let to: Vec<ConnId> = members.iter().filter(|m| **m != entry.conn).copied().collect();
        if to.is_empty() {
            return None;
        }
        Some((to, presence::notice(event, room, entry)))
    }

    /// Whether `user` is in `room` through a session other than `except`, here or elsewhere.
    pub(super) fn user_in_room(&self, room: &str, user: &str, except: ConnId) -> bool {
        self.registry.user_in_room(room, user, except)
            || self.remote_presence(room).any(|e| e.conn != except && e.user_id == Some(user))
    }

    pub(super) fn valid_room(&self, room: &str) -> bool {
        (1..=self.config.max_room_name_bytes).contains(&room.len())
    }
}

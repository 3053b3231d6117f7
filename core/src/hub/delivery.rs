//! Deliveries: one path for every send, whether it comes from the application, a client's
//! `publish`, or the bus. Local members first (the frame serialized once, only if somebody here
//! receives it), then the bus for the other instances.

use super::*;
use crate::policy::HistoryPolicy;

impl Hub {
    /// Delivers to this instance's connections: the path of every send, whether it comes from
    /// the application, a client's `publish`, or the bus. The frame is serialized once, and only
    /// if somebody here receives it. `every_room`: a send to several rooms delivers to the members
    /// of all of them (the sender's instance), not only of its target (an envelope that came on
    /// one room's channel).
    pub(super) fn deliver_local(&mut self, d: &Delivery<'_>, every_room: bool) -> usize {
        let to = self.local_recipients(d, every_room);
        if to.is_empty() {
            return 0;
        }
        let frame = d.frame(None);
        let reached = to.len();
        self.transmit(to, frame);
        reached
    }

    /// This instance's connections a send reaches.
    fn local_recipients(&self, d: &Delivery<'_>, every_room: bool) -> Vec<ConnId> {
        let mut exclusion = Exclusion::new(
            d.exclude_conns.iter().copied(),
            d.exclude_users.iter().copied(),
            &self.registry.users,
        );
        if !d.except_rooms.is_empty() {
            exclusion = exclusion.with_rooms(d.except_rooms.iter().copied(), &self.registry.rooms);
        }
        let target = d.target.unwrap_or_default();
        match d.kind {
            TargetKind::Client => match target.parse::<ConnId>() {
                Ok(id) if self.registry.conns.contains_key(&id) && !exclusion.contains(&id) => {
                    vec![id]
                }
                _ => Vec::new(),
            },
            TargetKind::User => self
                .registry
                .users
                .get(target)
                .map(|set| recipients(set, &exclusion))
                .unwrap_or_default(),
            TargetKind::Room if d.rooms.len() > 1 => {
                self.rooms_recipients(d, every_room, &exclusion)
            }
            TargetKind::Room => self
                .registry
                .rooms
                .get(target)
                .map(|set| recipients(set, &exclusion))
                .unwrap_or_default(),
            TargetKind::Broadcast => recipients(&self.registry.everyone, &exclusion),
        }
    }

    /// A send into one room whose policy keeps a history: it gets the room's next offset, is
    /// kept (whether anybody here receives it or not), and its members get it with its offset.
    fn deliver_kept(
        &mut self,
        d: &Delivery<'_>,
        room: &str,
        policy: HistoryPolicy,
    ) -> (usize, u64) {
        let offset = self.history.next_offset(room);
        let to = self.local_recipients(d, true);
        let frame = d.frame(Some(offset));
        let now = self.clock.now;
        self.history.keep(room, offset, frame.clone(), d.exclude_users, policy, now);
        let reached = to.len();
        if reached > 0 {
            self.transmit(to, frame);
        }
        (reached, offset)
    }

    /// The history policy of a send's room, if it is a send into one room that keeps one.
    fn kept_in(&self, d: &Delivery<'_>) -> Option<HistoryPolicy> {
        if !self.history.enabled || d.kind != TargetKind::Room || d.rooms.len() > 1 {
            return None;
        }
        self.config.rooms.for_room(d.target?).history
    }

    /// The recipients of a send to several rooms: each room's members that are in none of the
    /// rooms before it (so each connection once), minus the exclusion. All the rooms, or only the
    /// target's share.
    pub(super) fn rooms_recipients(
        &self,
        d: &Delivery<'_>,
        every_room: bool,
        exclusion: &Exclusion,
    ) -> Vec<ConnId> {
        let mut to = Vec::new();
        for (i, room) in d.rooms.iter().enumerate() {
            if !every_room && Some(*room) != d.target {
                continue;
            }
            let Some(set) = self.registry.rooms.get(room) else { continue };
            let earlier: Vec<_> =
                d.rooms[..i].iter().filter_map(|r| self.registry.rooms.get(r)).collect();
            to.extend(
                recipients(set, exclusion)
                    .into_iter()
                    .filter(|c| !earlier.iter().any(|e| e.contains(c))),
            );
            if !every_room {
                break;
            }
        }
        to
    }

    /// Delivers locally first, then publishes for the other instances, if there can be any: a
    /// send to several rooms once on each room's channel.
    pub(super) fn deliver(&mut self, d: &Delivery<'_>) -> Sent {
        let (local, offset) = match (self.kept_in(d), d.target) {
            (Some(policy), Some(room)) => {
                let (local, offset) = self.deliver_kept(d, room, policy);
                (local, Some(offset))
            }
            _ => (self.deliver_local(d, true), None),
        };
        if self.config.standalone {
            return Sent { local, published: false, offset };
        }
        if d.kind == TargetKind::Room && d.rooms.len() > 1 {
            for room in d.rooms {
                self.publish_to_bus(&Delivery { target: Some(room), ..*d });
            }
        } else {
            self.publish_to_bus(d);
        }
        Sent { local, published: true, offset }
    }

    pub(super) fn publish_to_bus(&mut self, d: &Delivery<'_>) {
        self.stats.published += 1;
        let envelope = d.envelope(&self.config.server_id);
        let channel = self.channels.for_target(d.kind, d.target);
        self.out.push_back(Output::BusPublish { channel, payload: envelope.encode() });
    }
}

/// One send: what, to whom, and who is left out. The same path serves local sends, client
/// publishes and envelopes from the bus.
#[derive(Debug, Clone, Copy)]
pub(super) struct Delivery<'a> {
    pub(super) kind: TargetKind,
    pub(super) target: Option<&'a str>,
    pub(super) event: &'a str,
    pub(super) data: Option<&'a RawValue>,
    pub(super) exclude_conns: &'a [ConnId],
    pub(super) exclude_users: &'a [&'a str],
    /// A send to several rooms: all of them, in order (`target` is one of them); empty otherwise.
    pub(super) rooms: &'a [&'a str],
    /// Rooms whose members are left out.
    pub(super) except_rooms: &'a [&'a str],
    /// The frame's `path`, if the application gave one.
    pub(super) path: Option<&'a str>,
}

impl<'a> Delivery<'a> {
    /// The frame its recipients get, serialized once.
    fn frame(&self, offset: Option<u64>) -> Bytes {
        let room =
            if self.kind == TargetKind::Room && self.rooms.len() <= 1 { self.target } else { None };
        let (event, path, data) = (self.event, self.path, self.data);
        wire::ServerFrame { event, room, path, data, id: None, offset }.encode()
    }

    pub(super) fn envelope(&self, server_id: &'a str) -> Envelope<'a> {
        Envelope {
            server_id: Cow::Borrowed(server_id),
            kind: self.kind,
            target: self.target.map(Cow::Borrowed),
            event: Cow::Borrowed(self.event),
            data: self.data,
            exclude: self.exclude_conns.iter().map(|c| Cow::Owned(c.to_string())).collect(),
            exclude_users: self.exclude_users.iter().map(|u| Cow::Borrowed(*u)).collect(),
            rooms: self.rooms.iter().map(|r| Cow::Borrowed(*r)).collect(),
            except_rooms: self.except_rooms.iter().map(|r| Cow::Borrowed(*r)).collect(),
            path: self.path.map(Cow::Borrowed),
        }
    }
}

/// What a send did: how many connections of this instance it reached, and whether it went out
/// on the bus for the others (whose recipients this instance cannot count). A send that reached
/// nobody here and was not published (`Sent::default()`, a standalone instance) reached nobody
/// at all: a user with no session, an unknown connection, an empty room.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sent {
    /// Connections of this instance the frame was queued for.
    pub local: usize,
    /// Published on the bus: connections of other instances may receive it too.
    pub published: bool,
    /// Its offset in its room's history, for a send into a room that keeps one.
    pub offset: Option<u64>,
}

impl Sent {
    /// Whether it reached nobody anywhere: nobody here, and no other instance to ask.
    pub fn reached_nobody(self) -> bool {
        self.local == 0 && !self.published
    }
}

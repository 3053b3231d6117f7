//! Presence across instances: a replica of the other instances' members of the rooms this one
//! has members in, their liveness (heartbeats and leases), and the messages that keep it true.
//!
//! Every decision is here, in the core; the bus only carries the messages:
//! - a local join or leave is published on the room's presence channel;
//! - an instance that gains its first member of a room asks the others for theirs (`sync`);
//! - each instance sends a heartbeat on the peers channel every third of `peer_timeout`; a peer
//!   not heard from (and without a lease) for `peer_timeout` is gone, and its members with it;
//! - an instance that shuts down gracefully says goodbye, and is forgotten at once.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use indexmap::IndexMap;
use serde_json::value::RawValue;

use super::Hub;
use crate::id::ConnId;
use crate::members::Hasher;
use crate::output::{Event, Output};
use crate::peer::{PeerMessage, PeerOp, WireMember};
use crate::presence::PresenceEntry;

/// A member that lives on another instance.
#[derive(Debug)]
pub(crate) struct RemoteMember {
    pub(crate) server: Arc<str>,
    pub(crate) user: Option<Arc<str>>,
    pub(crate) info: Option<Box<RawValue>>,
}

/// Room → remote members.
pub(crate) type Replica = IndexMap<Arc<str>, IndexMap<ConnId, RemoteMember, Hasher>, Hasher>;

/// Cluster presence's state: the other instances' members, the live peers and those gone.
#[derive(Debug)]
pub(super) struct Cluster {
    /// The other instances' members of rooms this one has members in.
    pub(super) remote: Replica,
    /// Live peers and the end of their lease.
    pub(super) peers: IndexMap<Arc<str>, Instant, Hasher>,
    /// Peers that said goodbye, and until when a lease of theirs is stale.
    pub(super) departed: IndexMap<Arc<str>, Instant, Hasher>,
    /// When this instance's next heartbeat is due (`None`: cluster presence is off).
    pub(super) next_heartbeat: Option<Instant>,
}

impl Cluster {
    pub(super) fn new(hasher: &Hasher, next_heartbeat: Option<Instant>) -> Self {
        Self {
            remote: Replica::with_hasher(hasher.clone()),
            peers: IndexMap::with_hasher(hasher.clone()),
            departed: IndexMap::with_hasher(hasher.clone()),
            next_heartbeat,
        }
    }

    /// Extends a peer's life to `until`; returns its shared id.
    fn touch(&mut self, server_id: &str, until: Instant) -> Arc<str> {
        match self.peers.get_full_mut(server_id) {
            Some((_, id, expiry)) => {
                *expiry = (*expiry).max(until);
                id.clone()
            }
            None => {
                let id: Arc<str> = Arc::from(server_id);
                self.peers.insert(id.clone(), until);
                id
            }
        }
    }

    /// The earliest of the peers' lease ends and the next heartbeat.
    pub(super) fn deadline(&self) -> Option<Instant> {
        let lease = self.peers.values().min().copied();
        match (lease, self.next_heartbeat) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

impl Hub {
    /// Another instance holds a lease until `valid_until` (e.g. a Redis key with a TTL): its
    /// members count as present until then. Heartbeats on the bus extend it too.
    pub fn handle_peer_lease(&mut self, server_id: &str, valid_until: Instant, now: Instant) {
        let now = self.advance(now);
        if self.cluster.departed.get(server_id).is_some_and(|until| *until > now) {
            return; // it said goodbye: a lease read before it withdrew it is stale
        }
        self.touch_peer(server_id, valid_until);
    }

    /// This instance is leaving the cluster (a graceful shutdown, after
    /// [`close_all`](Self::close_all), last before the process exits): says goodbye on the peers
    /// channel, so that the other instances forget it at once instead of after `peer_timeout`
    /// (their queries stop waiting for it), and sends no more heartbeats. Does nothing without
    /// cluster presence.
    pub fn retire(&mut self, now: Instant) {
        self.advance(now);
        if self.config.cluster_presence {
            self.cluster.next_heartbeat = None;
            self.publish_presence(self.channels.peers(), PeerOp::Goodbye, "", Vec::new());
        }
    }

    /// The other instances this one knows to be alive, with the end of their lease.
    pub fn peers(&self) -> impl ExactSizeIterator<Item = (&str, Instant)> + '_ {
        self.cluster.peers.iter().map(|(id, until)| (&**id, *until))
    }

    /// Extends a peer's life to `until`; returns its shared id.
    fn touch_peer(&mut self, server_id: &str, until: Instant) -> Option<Arc<str>> {
        if server_id == self.config.server_id {
            return None;
        }
        Some(self.cluster.touch(server_id, until))
    }

    /// Publishes a presence message for `room` on `channel`.
    pub(super) fn publish_presence(
        &mut self,
        channel: String,
        op: PeerOp,
        room: &str,
        members: Vec<WireMember<'_>>,
    ) {
        let payload = self.presence_payload(op, room, members);
        self.push_publish(channel, payload);
    }

    pub(super) fn presence_payload(
        &self,
        op: PeerOp,
        room: &str,
        members: Vec<WireMember<'_>>,
    ) -> bytes::Bytes {
        PeerMessage {
            server_id: Cow::Borrowed(&self.config.server_id),
            op,
            room: Cow::Borrowed(room),
            members,
            request: None,
            query: None,
            found: Vec::new(),
            affected: None,
            rooms: Vec::new(),
        }
        .encode()
    }

    pub(super) fn push_publish(&mut self, channel: String, payload: bytes::Bytes) {
        self.stats.published += 1;
        self.out.push_back(Output::BusPublish { channel, payload });
    }

    /// The first local member of `room` arrived: hear its presence channel, ask for its members.
    pub(super) fn presence_interest_begins(&mut self, room: &str) {
        self.out.push_back(Output::BusSubscribe(self.channels.presence(room)));
        self.publish_presence(self.channels.presence(room), PeerOp::SyncRequest, room, Vec::new());
    }

    /// The last local member of `room` left: the replica of it would go stale, drop it.
    pub(super) fn presence_interest_ends(&mut self, room: &str) {
        self.out.push_back(Output::BusUnsubscribe(self.channels.presence(room)));
        self.cluster.remote.shift_remove(room);
    }

    /// Sends the heartbeat when it is due; returns when the next one is.
    pub(super) fn heartbeat(&mut self, now: Instant) {
        if self.cluster.next_heartbeat.is_some_and(|at| at <= now) {
            self.publish_presence(self.channels.peers(), PeerOp::Heartbeat, "", Vec::new());
            self.cluster.next_heartbeat = Some(now + self.config.peer_timeout / 3);
        }
    }

    /// Forgets peers whose lease ran out, with their members (and tells local members).
    pub(super) fn expire_peers(&mut self, now: Instant) {
        let gone: Vec<Arc<str>> = self
            .cluster
            .peers
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for server in gone {
            self.cluster.peers.shift_remove(&server);
            self.forget_peer(&server);
        }
        self.cluster.departed.retain(|_, until| *until > now);
    }

    /// A peer said goodbye: forget it now, ignore its lease for `peer_timeout` (a lease read
    /// before it was withdrawn would bring it back), and stop waiting for its answers (it has no
    /// connections left to answer with).
    fn peer_said_goodbye(&mut self, server_id: &str, now: Instant) {
        let server = match self.cluster.peers.shift_remove_full(server_id) {
            Some((_, server, _)) => {
                self.forget_peer(&server);
                server
            }
            None => Arc::from(server_id),
        };
        self.stop_expecting(&server);
        self.cluster.departed.insert(server, now + self.config.peer_timeout);
    }

    /// Removes a gone peer's members (local members hear `member_left`), and reports it. They
    /// leave each room in the order of their ids, not of their joins' arrival (which may differ
    /// between instances): with notices per user, every instance then names the same session
    /// when several of one user leave at once.
    fn forget_peer(&mut self, server: &Arc<str>) {
        let rooms: Vec<Arc<str>> = self.cluster.remote.keys().cloned().collect();
        for room in rooms {
            let mut leaving: Vec<ConnId> = self.cluster.remote[&room]
                .iter()
                .filter(|(_, m)| m.server == *server)
                .map(|(c, _)| *c)
                .collect();
            leaving.sort_unstable();
            for conn in leaving {
                self.remote_leaves(&room, conn);
            }
        }
        self.event(Event::PeerGone { server_id: server.to_string() });
    }

    /// A message on a presence channel, a server channel, or the peers channel.
    pub(super) fn on_presence_message(&mut self, payload: &[u8], now: Instant) {
        let message: PeerMessage<'_> = match serde_json::from_slice(payload) {
            Ok(message) if !crate::wire::too_deep(payload) => message,
            _ => {
                self.stats.bus_invalid += 1;
                return;
            }
        };
        if message.op == PeerOp::Goodbye && message.server_id != self.config.server_id {
            self.peer_said_goodbye(&message.server_id, now);
            return;
        }
        if !self.cluster.departed.is_empty() {
            // Heard from again (restarted under the same id): its leases count again.
            self.cluster.departed.shift_remove(&*message.server_id);
        }
        let Some(server) = self.touch_peer(&message.server_id, now + self.config.peer_timeout)
        else {
            self.stats.bus_own += 1;
            return;
        };
        let room = &*message.room;
        match message.op {
            PeerOp::Heartbeat | PeerOp::Goodbye => {}
            PeerOp::Query => self.answer_query(&message, now),
            PeerOp::Answer => self.take_answer(&server, message),
            PeerOp::SyncRequest => self.answer_sync_request(room, &message.server_id),
            PeerOp::Sync | PeerOp::Join | PeerOp::Update => {
                self.remote_members(room, &server, message.op, &message.members);
            }
            PeerOp::Leave => {
                for member in &message.members {
                    if let Ok(conn) = member.id.parse::<ConnId>() {
                        self.remote_leaves(room, conn);
                    }
                }
            }
        }
    }

    /// Another instance gained its first member of `room` and asks for ours: answered on its
    /// own channel, if we have any.
    fn answer_sync_request(&mut self, room: &str, server_id: &str) {
        let mine = self.local_presence(room);
        let reply = (!mine.is_empty()).then(|| {
            self.presence_payload(PeerOp::Sync, room, mine.iter().map(WireMember::from).collect())
        });
        if let Some(payload) = reply {
            let reply_to = self.channels.server(server_id);
            self.push_publish(reply_to, payload);
        }
    }

    /// A peer's members of `room` joined, changed, or (a sync) are all it has there.
    fn remote_members(
        &mut self,
        room: &str,
        server: &Arc<str>,
        op: PeerOp,
        members: &[WireMember<'_>],
    ) {
        if self.registry.rooms.get(room).is_none() {
            return; // no local interest: nothing to keep
        }
        if op == PeerOp::Sync {
            // A sync is the sender's whole truth for the room: replace what we had of it.
            if let Some(replica) = self.cluster.remote.get_mut(room) {
                replica.retain(|_, m| m.server != *server);
            }
        }
        for member in members {
            let Ok(conn) = member.id.parse::<ConnId>() else { continue };
            let remote = RemoteMember {
                server: server.clone(),
                user: member.user_id.as_deref().map(Arc::from),
                info: member.info.map(RawValue::to_owned),
            };
            if op == PeerOp::Update {
                self.remote_updates(room, conn, remote);
            } else {
                self.remote_joins(room, conn, remote, op == PeerOp::Join);
            }
        }
    }

    fn remote_joins(&mut self, room: &str, conn: ConnId, member: RemoteMember, announce: bool) {
        if announce {
            let entry = PresenceEntry {
                conn,
                user_id: member.user.as_deref(),
                metadata: member.info.as_deref(),
            };
            if let Some((to, frame)) = self.notice_for("member_joined", room, &entry) {
                self.transmit(to, frame);
            }
        }
        let key = match self.cluster.remote.get_key_value(room) {
            Some((key, _)) => key.clone(),
            None => Arc::from(room),
        };
        self.cluster.remote.entry(key).or_default().insert(conn, member);
    }

    /// A local connection's metadata changed: the instances with members in its rooms update
    /// their replicas (no notice: nobody joined or left).
    pub(super) fn announce_update(&mut self, conn: ConnId) {
        let Some(c) = self.registry.conns.get(&conn) else { return };
        let entry =
            PresenceEntry { conn, user_id: c.user.as_deref(), metadata: c.metadata.as_deref() };
        let updates: Vec<(String, bytes::Bytes)> = c
            .rooms
            .iter()
            .map(|room| {
                let payload =
                    self.presence_payload(PeerOp::Update, room, vec![WireMember::from(&entry)]);
                (self.channels.presence(room), payload)
            })
            .collect();
        for (channel, payload) in updates {
            self.push_publish(channel, payload);
        }
    }

    /// A remote member's metadata changed: replace it, if the member is known.
    fn remote_updates(&mut self, room: &str, conn: ConnId, member: RemoteMember) {
        if let Some(known) = self.cluster.remote.get_mut(room).and_then(|r| r.get_mut(&conn)) {
            *known = member;
        }
    }

    fn remote_leaves(&mut self, room: &str, conn: ConnId) {
        let Some(replica) = self.cluster.remote.get_mut(room) else { return };
        let Some(member) = replica.shift_remove(&conn) else { return };
        if replica.is_empty() {
            self.cluster.remote.shift_remove(room);
        }
        let entry = PresenceEntry {
            conn,
            user_id: member.user.as_deref(),
            metadata: member.info.as_deref(),
        };
        if let Some((to, frame)) = self.notice_for("member_left", room, &entry) {
            self.transmit(to, frame);
        }
    }

    /// The remote members of `room`.
    pub(super) fn remote_presence(
        &self,
        room: &str,
    ) -> impl Iterator<Item = PresenceEntry<'_>> + '_ {
        self.cluster.remote.get(room).into_iter().flatten().map(|(conn, m)| PresenceEntry {
            conn: *conn,
            user_id: m.user.as_deref(),
            metadata: m.info.as_deref(),
        })
    }
}

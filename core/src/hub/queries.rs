//! Cluster queries and orders, answered honestly: run here and on every live peer, complete
//! when all have answered, or at the deadline with what came back and the silent instances
//! named. Nothing waits forever. The types are in `query.rs`; here, how the hub runs them.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indexmap::IndexMap;

use super::Hub;
use crate::close::CloseCode;
use crate::id::ConnId;
use crate::members::Hasher;
use crate::output::Event;
use crate::peer::{PeerMessage, PeerOp};
use crate::presence::PresenceEntry;
use crate::query::{ClusterMember, ClusterRoom, Query, QueryId, QueryResult, Target};
use serde_json::value::RawValue;

/// Cluster queries in flight.
#[derive(Debug)]
pub(super) struct Queries {
    /// Waiting for answers, by request number.
    pub(super) pending: IndexMap<u64, Pending, Hasher>,
    /// The next request number.
    pub(super) next: u64,
}

impl Queries {
    pub(super) fn new(hasher: &Hasher) -> Self {
        Self { pending: IndexMap::with_hasher(hasher.clone()), next: 0 }
    }

    /// The earliest query deadline.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.pending.values().map(|p| p.deadline).min()
    }
}

/// A query waiting for answers.
#[derive(Debug)]
pub(crate) struct Pending {
    expected: Vec<Arc<str>>,
    answered: Vec<Arc<str>>,
    members: Vec<ClusterMember>,
    affected: u64,
    rooms: BTreeMap<String, u64>,
    deadline: Instant,
}

/// What one instance found or did for a query.
#[derive(Debug, Default)]
struct Found {
    members: Vec<ClusterMember>,
    affected: u64,
    rooms: Vec<ClusterRoom>,
}

impl Pending {
    /// Adds one instance's findings.
    fn add(&mut self, members: Vec<ClusterMember>, affected: u64, rooms: Vec<ClusterRoom>) {
        self.members.extend(members);
        self.affected += affected;
        for room in rooms {
            *self.rooms.entry(room.name).or_default() += room.members;
        }
    }
}

impl Hub {
    /// Runs `query` on this instance and on every live peer (peers are known with cluster
    /// presence on; without it, the query covers this instance only). The result comes as
    /// [`Event::QueryDone`] once every peer has answered, or at `now + timeout` naming the
    /// peers that did not.
    pub fn query(&mut self, query: Query, timeout: Duration, now: Instant) -> QueryId {
        let now = self.advance(now);
        self.queries.next += 1;
        let id = self.queries.next;
        let found = self.run_query(&query, now);
        let expected: Vec<Arc<str>> = self.cluster.peers.keys().cloned().collect();
        if !expected.is_empty() {
            let payload = self.query_message(PeerOp::Query, id, Some(query), Found::default());
            let channel = self.channels.peers();
            self.push_publish(channel, payload);
        }
        let mut pending = Pending {
            expected,
            answered: Vec::new(),
            members: Vec::new(),
            affected: 0,
            rooms: BTreeMap::new(),
            deadline: now + timeout,
        };
        pending.add(found.members, found.affected, found.rooms);
        self.queries.pending.insert(id, pending);
        self.finish_if_answered(id);
        QueryId(id)
    }

    fn query_message(
        &self,
        op: PeerOp,
        request: u64,
        query: Option<Query>,
        found: Found,
    ) -> bytes::Bytes {
        let answer = op == PeerOp::Answer;
        PeerMessage {
            server_id: Cow::Borrowed(&self.config.server_id),
            op,
            room: Cow::Borrowed(""),
            members: Vec::new(),
            request: Some(request),
            query,
            found: found.members,
            affected: answer.then_some(found.affected),
            rooms: found.rooms,
        }
        .encode()
    }

    /// What `query` finds or does on this instance.
    fn run_query(&mut self, query: &Query, now: Instant) -> Found {
        let found = |members| Found { members, ..Found::default() };
        let acted = |affected: usize| Found { affected: affected as u64, ..Found::default() };
        match query {
            Query::Members { room } => found(self.cluster_members(&self.local_presence(room))),
            Query::Connections { filter } => {
                found(self.cluster_members(&self.connections_matching(filter)))
            }
            Query::Sessions { user } => {
                let sessions: Vec<ConnId> = self.user_connections(user).collect();
                found(self.cluster_conns(&sessions))
            }
            Query::Connection { conn } => {
                let mut members = self.cluster_conns(&[*conn]);
                for member in &mut members {
                    member.rooms = Some(self.rooms_of(*conn).map(str::to_owned).collect());
                }
                found(members)
            }
            Query::Rooms => Found {
                rooms: self
                    .rooms()
                    .map(|name| ClusterRoom {
                        name: name.to_owned(),
                        members: self.room_size(name) as u64,
                    })
                    .collect(),
                ..Found::default()
            },
            Query::Count => acted(self.connection_count()),
            Query::Disconnect { target } => {
                let conns = self.target_conns(target);
                for conn in &conns {
                    self.close_conn(*conn, CloseCode::NORMAL, "disconnected by the server");
                }
                acted(conns.len())
            }
            Query::Join { target, room } => {
                let conns = self.target_conns(target);
                acted(conns.iter().filter(|c| self.join(**c, room, now).unwrap_or(false)).count())
            }
            Query::Leave { target, room } => {
                let conns = self.target_conns(target);
                acted(conns.iter().filter(|c| self.leave(**c, room, now).unwrap_or(false)).count())
            }
        }
    }

    /// The local connections among `conns`, as a query reports them.
    fn cluster_conns(&self, conns: &[ConnId]) -> Vec<ClusterMember> {
        let entries: Vec<PresenceEntry<'_>> = conns
            .iter()
            .filter_map(|c| {
                let conn = self.registry.conns.get(c)?;
                Some(PresenceEntry {
                    conn: *c,
                    user_id: conn.user.as_deref(),
                    metadata: conn.metadata.as_deref(),
                })
            })
            .collect();
        self.cluster_members(&entries)
    }

    fn cluster_members(&self, entries: &[PresenceEntry<'_>]) -> Vec<ClusterMember> {
        entries
            .iter()
            .map(|e| ClusterMember {
                server_id: self.config.server_id.clone(),
                conn: e.conn,
                user_id: e.user_id.map(str::to_owned),
                metadata: e.metadata.map(RawValue::to_owned),
                rooms: None,
            })
            .collect()
    }

    /// The local connections a target names.
    fn target_conns(&self, target: &Target) -> Vec<ConnId> {
        match target {
            Target::Conn(conn) if self.registry.conns.contains_key(conn) => vec![*conn],
            Target::Conn(_) => Vec::new(),
            Target::User(user) => self.user_connections(user).collect(),
        }
    }

    /// A peer asks: run its query here and answer on its server channel.
    pub(super) fn answer_query(&mut self, message: &PeerMessage<'_>, now: Instant) {
        let (Some(request), Some(query)) = (message.request, &message.query) else { return };
        let found = self.run_query(query, now);
        let payload = self.query_message(PeerOp::Answer, request, None, found);
        let channel = self.channels.server(&message.server_id);
        self.push_publish(channel, payload);
    }

    /// A peer answers one of our queries.
    pub(super) fn take_answer(&mut self, server: &Arc<str>, message: PeerMessage<'_>) {
        let Some(request) = message.request else { return };
        let Some(pending) = self.queries.pending.get_mut(&request) else { return }; // late: already done
        if !pending.expected.contains(server) || pending.answered.contains(server) {
            return;
        }
        pending.answered.push(server.clone());
        pending.add(message.found, message.affected.unwrap_or(0), message.rooms);
        self.finish_if_answered(request);
    }

    fn finish_if_answered(&mut self, id: u64) {
        if self
            .queries
            .pending
            .get(&id)
            .is_some_and(|p| p.expected.iter().all(|s| p.answered.contains(s)))
        {
            self.finish_query(id);
        }
    }

    /// A peer left the cluster gracefully: the queries waiting for it stop waiting (it is not
    /// named missing: it had nothing left to answer with).
    pub(super) fn stop_expecting(&mut self, server: &Arc<str>) {
        let mut waiting = Vec::new();
        for (id, pending) in &mut self.queries.pending {
            if !pending.answered.contains(server) && pending.expected.contains(server) {
                pending.expected.retain(|s| s != server);
                waiting.push(*id);
            }
        }
        for id in waiting {
            self.finish_if_answered(id);
        }
    }

    fn finish_query(&mut self, id: u64) {
        let Some(pending) = self.queries.pending.shift_remove(&id) else { return };
        let missing = pending
            .expected
            .iter()
            .filter(|s| !pending.answered.contains(s))
            .map(|s| s.to_string())
            .collect();
        let result = QueryResult {
            id: QueryId(id),
            members: pending.members,
            affected: pending.affected,
            rooms: pending
                .rooms
                .into_iter()
                .map(|(name, members)| ClusterRoom { name, members })
                .collect(),
            missing,
        };
        self.event(Event::QueryDone(Box::new(result)));
    }

    /// Completes the queries whose deadline came.
    pub(super) fn expire_queries(&mut self, now: Instant) {
        let due: Vec<u64> = self
            .queries
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.finish_query(id);
        }
    }
}

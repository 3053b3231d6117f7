//! Model-based property test of two hubs wired through a bus (the simulation's in-memory Redis),
//! with authentication required or anonymous (identified at the upgrade, or not), and with or
//! without a rate limit: random clients on either instance, their requests (join, leave, publish with its exclusions,
//! presence, the application's own events and their replies, oversized frames), the
//! application's sends from either instance (to a room with excluded connections and users, to
//! several rooms, to a user, to one connection, to everyone), envelopes from an emitter (good,
//! malformed, or echoing an instance's own id), bus gaps, closes and disconnects, run against a
//! naive model of the whole cluster. Each room has a random policy (who may join and leave,
//! publish, ask its presence; the publish check is the single-hub model's), and a connection's
//! identity may carry a rooms list: a request a policy refuses is answered `forbidden` on
//! whichever instance, so no client hears a room it may not join and no client's publish reaches
//! a room it may not publish to, anywhere in the cluster.
//!
//! Time moves too (the clock the rate limit refills by): jumps of up to 3 s between steps.
//!
//! After every step, every connection has received exactly the frames the model says, in order:
//! answers with their ids, errors, and each delivery once, on whichever instance the recipient
//! is. Each instance's rooms hold exactly its members, and its bus interest is exactly the
//! model's: a channel per room and user with a member or session there, one per authenticated
//! connection, and the broadcast channel while it has any (a leaked subscription fails).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::comparable;
use proptest::prelude::*;
use roomcast_core::sim::Cluster;
use roomcast_core::{
    AuthMode, CloseCode, ConnId, Event, Exclude, HubConfig, Identity, JoinPolicy, PresencePolicy,
    PublishPolicy, RateLimit, RequestId, RoomAcl, RoomPolicies, RoomPolicy,
};
use serde_json::{Value, json};

const NODES: usize = 2;
const CONNS: u128 = 6;
const ROOMS: [&str; 3] = ["a", "b", "c"];
const USERS: [&str; 2] = ["u0", "u1"];
const MAX_FRAME: usize = 512;

/// Connection `c` always lives on node `c % NODES`.
fn node(c: u128) -> usize {
    (c % NODES as u128) as usize
}

fn conn(c: u128) -> ConnId {
    ConnId::from_u128(c + 1)
}

#[derive(Debug, Clone)]
enum Op {
    /// A connection comes in, as a user or not, with a rooms list (room indexes) or none.
    Login(u128, Option<usize>, Option<Vec<usize>>),
    Join(u128, Vec<usize>),
    Leave(u128, Vec<usize>),
    Publish {
        c: u128,
        room: usize,
        exclude_self: bool,
        exclude_user: bool,
    },
    Presence(u128, usize),
    Ask(u128),
    Oversized(u128),
    AppRoom {
        from: usize,
        room: usize,
        conns: Vec<u128>,
        users: Vec<usize>,
    },
    AppRooms {
        from: usize,
        rooms: Vec<usize>,
        except: Vec<usize>,
    },
    AppUser(usize, usize),
    AppConn(usize, u128),
    AppAll {
        from: usize,
        users: Vec<usize>,
    },
    Emitter {
        kind: usize,
        target: usize,
        conns: Vec<u128>,
    },
    Garbage(usize),
    Echo {
        own: usize,
        room: usize,
    },
    BusGap(usize),
    Close(u128),
    Disconnect(u128),
    /// The clock moves on this many milliseconds.
    Advance(u64),
    /// A client sends this many heartbeats at once (answered with nothing, but counted by the
    /// rate limit).
    Heartbeats(u128, u32),
}

fn op() -> impl Strategy<Value = Op> {
    let c = 0..CONNS;
    let n = 0..NODES;
    let room = 0..ROOMS.len();
    let rooms = proptest::collection::vec(0..ROOMS.len(), 1..3);
    let conns = proptest::collection::vec(0..CONNS, 0..3);
    let users = proptest::collection::vec(0..USERS.len(), 0..2);
    prop_oneof![
        6 => (c.clone(), proptest::option::weighted(0.8, 0..USERS.len()), proptest::option::weighted(0.3, proptest::collection::vec(0..ROOMS.len(), 0..3)))
            .prop_map(|(c, u, acl)| Op::Login(c, u, acl)),
        8 => (c.clone(), rooms.clone()).prop_map(|(c, r)| Op::Join(c, r)),
        2 => (c.clone(), rooms.clone()).prop_map(|(c, r)| Op::Leave(c, r)),
        5 => (c.clone(), room.clone(), any::<bool>(), any::<bool>()).prop_map(|(c, room, exclude_self, exclude_user)| Op::Publish { c, room, exclude_self, exclude_user }),
        2 => (c.clone(), room.clone()).prop_map(|(c, r)| Op::Presence(c, r)),
        2 => c.clone().prop_map(Op::Ask),
        1 => c.clone().prop_map(Op::Oversized),
        3 => (n.clone(), room.clone(), conns.clone(), users.clone()).prop_map(|(from, room, conns, users)| Op::AppRoom { from, room, conns, users }),
        2 => (n.clone(), rooms.clone(), proptest::collection::vec(0..ROOMS.len(), 0..2)).prop_map(|(from, rooms, except)| Op::AppRooms { from, rooms, except }),
        2 => (n.clone(), 0..USERS.len()).prop_map(|(n, u)| Op::AppUser(n, u)),
        2 => (n.clone(), c.clone()).prop_map(|(n, c)| Op::AppConn(n, c)),
        1 => (n.clone(), users).prop_map(|(from, users)| Op::AppAll { from, users }),
        3 => (0..4usize, 0..6usize, conns).prop_map(|(kind, target, conns)| Op::Emitter { kind, target, conns }),
        1 => (0..GARBAGE.len()).prop_map(Op::Garbage),
        1 => (n.clone(), room).prop_map(|(own, room)| Op::Echo { own, room }),
        1 => n.prop_map(Op::BusGap),
        1 => c.clone().prop_map(Op::Close),
        1 => c.clone().prop_map(Op::Disconnect),
        3 => (0u64..3_000).prop_map(Op::Advance),
        2 => (c, 1u32..12).prop_map(|(c, n)| Op::Heartbeats(c, n)),
    ]
}

/// A room's policy; the publish check (which waits for the application) is the single-hub
/// model's.
fn policy() -> impl Strategy<Value = RoomPolicy> {
    let join =
        prop_oneof![Just(JoinPolicy::Anyone), Just(JoinPolicy::Token), Just(JoinPolicy::Server)];
    let publish = prop_oneof![Just(PublishPolicy::Members), Just(PublishPolicy::Server)];
    let presence = prop_oneof![Just(PresencePolicy::Members), Just(PresencePolicy::Server)];
    (join, publish, presence).prop_map(|(join, publish, presence)| RoomPolicy {
        join,
        publish,
        presence,
        history: None,
    })
}

/// The policies of rooms `a`, `b` (each by its name) and `c` (the default); mostly open, so that
/// rooms see traffic.
fn policies() -> impl Strategy<Value = [RoomPolicy; 3]> {
    let one = || prop_oneof![2 => Just(RoomPolicy::open()), 1 => policy()];
    [one(), one(), one()]
}

/// Malformed envelopes, on the channels an instance listens to.
const GARBAGE: [(&str, &str); 5] = [
    ("ws:room:a", "not json"),
    ("ws:room:a", r#"{"serverId":"emitter","type":"room","event":"x","data":1}"#),
    ("ws:broadcast", r#"{"serverId":"emitter","type":"broadcast"}"#),
    ("ws:user:u0", r#"{"serverId":"emitter","type":"client","target":"not-a-uuid","event":"x"}"#),
    ("ws:room:b", r#"[1,2,3]"#),
];

/// One connection, as the model knows it.
#[derive(Debug, Clone)]
struct Member {
    user: Option<usize>,
    /// The identity's rooms list, if it has one.
    acl: Option<Vec<usize>>,
    /// Rooms in the order they were joined.
    rooms: Vec<usize>,
}

#[derive(Default)]
struct Model {
    conns: BTreeMap<u128, Member>,
    expected: BTreeMap<u128, Vec<Value>>,
    next_id: u64,
    /// Anonymous mode: connections are in on connect (with an identity only if the upgrade gave
    /// one), and `authenticate` is not needed.
    anonymous: bool,
    /// The rate limit's burst, if on (one frame a second, sustained).
    burst: Option<u32>,
    /// A token bucket per connection: how far below full it is, in milliseconds of refill (a
    /// frame costs 1,000), and when that was.
    deficit: BTreeMap<u128, (u64, u64)>,
    /// The clock, in milliseconds since the start.
    now_ms: u64,
    /// Each room's policy.
    policies: [RoomPolicy; 3],
}

impl Model {
    /// Whether the room's policy lets `c` join (and leave) it by itself.
    fn may_join(&self, c: u128, room: usize) -> bool {
        let listed = self.conns[&c].acl.as_ref().map(|list| list.contains(&room));
        match self.policies[room].join {
            JoinPolicy::Anyone => true,
            JoinPolicy::Token => listed == Some(true),
            JoinPolicy::Server => false,
        }
    }

    fn forbidden(&mut self, c: u128, id: u64, room: usize) {
        self.expect(
            c,
            json!({"event":"error","id":id,"data":{"code":"forbidden","room":ROOMS[room]}}),
        );
    }

    fn expect(&mut self, c: u128, frame: Value) {
        self.expected.entry(c).or_default().push(frame);
    }

    fn members(&self, room: usize) -> Vec<u128> {
        self.conns.iter().filter(|(_, m)| m.rooms.contains(&room)).map(|(c, _)| *c).collect()
    }

    fn sessions(&self, user: usize) -> Vec<u128> {
        self.conns.iter().filter(|(_, m)| m.user == Some(user)).map(|(c, _)| *c).collect()
    }

    /// The channels node `n` must be subscribed to.
    fn interest(&self, n: usize) -> BTreeSet<String> {
        let mut channels = BTreeSet::new();
        for (c, m) in self.conns.iter().filter(|(c, _)| node(**c) == n) {
            channels.insert(format!("ws:client:{}", conn(*c)));
            channels.insert("ws:broadcast".to_owned());
            if let Some(u) = m.user {
                channels.insert(format!("ws:user:{}", USERS[u]));
            }
            for r in &m.rooms {
                channels.insert(format!("ws:room:{}", ROOMS[*r]));
            }
        }
        channels
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn rooms_frame(&self, event: &str, c: u128, id: u64) -> Value {
        let rooms: Vec<&str> = self.conns[&c].rooms.iter().map(|r| ROOMS[*r]).collect();
        json!({"event": event, "id": id, "data": {"rooms": rooms}})
    }
}

fn config(anonymous: bool, burst: Option<u32>, policies: [RoomPolicy; 3]) -> HubConfig {
    HubConfig {
        rooms: RoomPolicies::new(policies[2]).with("a", policies[0]).with("b", policies[1]),
        auth: if anonymous { AuthMode::Anonymous } else { AuthMode::Required },
        rate_limit: burst.map(|burst| RateLimit { per_second: 1, burst }),
        heartbeat_timeout: Duration::from_secs(3600),
        ping_interval: Duration::from_secs(3600),
        max_frame_bytes: MAX_FRAME,
        ..HubConfig::default()
    }
}

/// Sends a client frame; `false` if it was one too many for the rate limit (the connection is
/// then closed with 4008, and nothing else comes of the frame).
fn send(cluster: &mut Cluster, model: &mut Model, c: u128, value: &Value) -> bool {
    cluster.frame(node(c), conn(c), &value.to_string()).unwrap();
    let now = model.now_ms;
    let (deficit, at) = model.deficit.entry(c).or_insert((0, now));
    // The bucket refills at one frame a second up to the burst; a frame needs a whole one.
    let refilled = deficit.saturating_sub(now - *at);
    let allowed = model.burst.is_none_or(|burst| refilled + 1000 <= u64::from(burst) * 1000);
    *deficit = if allowed { refilled + 1000 } else { refilled };
    *at = now;
    if !allowed {
        model.conns.remove(&c);
        model.expect(c, json!({"close": CloseCode::RATE_LIMITED.as_u16()}));
        return false;
    }
    true
}

fn apply(cluster: &mut Cluster, model: &mut Model, op: &Op) {
    let now = cluster.now();
    match op.clone() {
        Op::Login(c, user, acl) => {
            if model.conns.contains_key(&c) {
                return;
            }
            let mut identity = user.map_or_else(Identity::anonymous, |u| Identity::user(USERS[u]));
            // Anonymous and unidentified at the upgrade: no identity, so no list.
            let acl = acl.filter(|_| !model.anonymous || user.is_some());
            if let Some(list) = &acl {
                identity.rooms = RoomAcl::Only(list.iter().map(|r| ROOMS[*r].to_owned()).collect());
            }
            model.deficit.remove(&c);
            if model.anonymous {
                // In at once: as a user identified at the upgrade, or anonymous.
                match user {
                    Some(_) => {
                        cluster.hub(node(c)).handle_connect_as(conn(c), identity, now).unwrap()
                    }
                    None => cluster.hub(node(c)).handle_connect(conn(c), now).unwrap(),
                }
                cluster.drive().unwrap();
            } else {
                cluster.connect(node(c), conn(c)).unwrap();
                let authenticate = json!({"event":"authenticate","data":{"token":"t"}});
                if !send(cluster, model, c, &authenticate) {
                    return;
                }
                cluster.hub(node(c)).accept_auth(conn(c), identity, now).unwrap();
                cluster.drive().unwrap();
            }
            model.conns.insert(c, Member { user, acl, rooms: Vec::new() });
            let user = user.map(|u| USERS[u]);
            model.expect(c, json!({"event":"connected","data":{"id":conn(c).to_string(),"userId":user,"time":null}}));
        }
        Op::Join(c, rooms) | Op::Leave(c, rooms) if !model.conns.contains_key(&c) => {
            let _ = rooms;
        }
        Op::Join(c, rooms) => {
            let id = model.id();
            let names: Vec<&str> = rooms.iter().map(|r| ROOMS[*r]).collect();
            if !send(cluster, model, c, &json!({"event":"join","data":{"rooms":names},"id":id})) {
                return;
            }
            for room in rooms {
                if model.conns[&c].rooms.contains(&room) {
                    continue;
                }
                if model.may_join(c, room) {
                    model.conns.get_mut(&c).unwrap().rooms.push(room);
                } else {
                    model.forbidden(c, id, room);
                }
            }
            let answer = model.rooms_frame("joined", c, id);
            model.expect(c, answer);
        }
        Op::Leave(c, rooms) => {
            let id = model.id();
            let names: Vec<&str> = rooms.iter().map(|r| ROOMS[*r]).collect();
            if !send(cluster, model, c, &json!({"event":"leave","data":{"rooms":names},"id":id})) {
                return;
            }
            for room in rooms {
                if model.may_join(c, room) {
                    model.conns.get_mut(&c).unwrap().rooms.retain(|r| *r != room);
                } else {
                    model.forbidden(c, id, room);
                }
            }
            let answer = model.rooms_frame("left", c, id);
            model.expect(c, answer);
        }
        Op::Publish { c, room, exclude_self, exclude_user } => {
            let Some(sender) = model.conns.get(&c).cloned() else { return };
            let id = model.id();
            let data = json!({"room": ROOMS[room], "event": "chat", "data": id,
                "excludeSelf": exclude_self, "excludeUser": exclude_user});
            if !send(cluster, model, c, &json!({"event":"publish","data":data,"id":id})) {
                return;
            }
            if model.policies[room].publish == PublishPolicy::Server
                || !sender.rooms.contains(&room)
            {
                model.forbidden(c, id, room);
                return;
            }
            for to in model.members(room) {
                // `excludeUser` leaves out every session of the sender's user, the sender's own
                // included whatever `excludeSelf` says.
                let same_user = sender.user.is_some() && model.conns[&to].user == sender.user;
                if (to == c && exclude_self) || (exclude_user && same_user) {
                    continue;
                }
                model.expect(to, json!({"event":"chat","room":ROOMS[room],"data":id}));
            }
        }
        Op::Presence(c, room) => {
            let Some(asker) = model.conns.get(&c).cloned() else { return };
            let id = model.id();
            if !send(
                cluster,
                model,
                c,
                &json!({"event":"presence","data":{"room":ROOMS[room]},"id":id}),
            ) {
                return;
            }
            if model.policies[room].presence == PresencePolicy::Server
                || !asker.rooms.contains(&room)
            {
                model.forbidden(c, id, room);
                return;
            }
            // Without cluster presence, the members of this instance.
            let mut members: Vec<Value> = model
                .members(room)
                .into_iter()
                .filter(|m| node(*m) == node(c))
                .map(|m| json!({"id": conn(m).to_string(), "userId": model.conns[&m].user.map(|u| USERS[u])}))
                .collect();
            members.sort_by_key(|m| m["id"].as_str().unwrap().to_owned());
            model.expect(c, json!({"event":"presence","id":id,"data":{"room":ROOMS[room],"members":members,"missing":[]}}));
        }
        Op::Ask(c) => {
            if !model.conns.contains_key(&c) {
                return;
            }
            let id = model.id();
            if !send(cluster, model, c, &json!({"event":"ask","data":{"n":id},"id":id})) {
                return;
            }
            let events = cluster.take_events(node(c));
            let asked: Vec<RequestId> = events
                .into_iter()
                .filter_map(|e| match e {
                    Event::Message { conn: from, event, id: Some(id), .. }
                        if from == conn(c) && event == "ask" =>
                    {
                        Some(id)
                    }
                    _ => None,
                })
                .collect();
            assert_eq!(asked.len(), 1, "the application gets the request once");
            cluster.hub(node(c)).reply(conn(c), &asked[0], &json!({"ok": id}), now).unwrap();
            cluster.drive().unwrap();
            model.expect(c, json!({"event":"reply","id":id,"data":{"ok":id}}));
        }
        Op::Oversized(c) => {
            if !model.conns.contains_key(&c) {
                return;
            }
            // Refused for its size before the rate limit counts it.
            let big = json!({"event":"x","data":"y".repeat(MAX_FRAME)});
            cluster.frame(node(c), conn(c), &big.to_string()).unwrap();
            model.conns.remove(&c);
            model.expect(c, json!({"close": CloseCode::MESSAGE_TOO_BIG.as_u16()}));
        }
        Op::AppRoom { from, room, conns, users } => {
            let exclude = Exclude {
                conns: conns.iter().map(|c| conn(*c)).collect(),
                users: users.iter().map(|u| USERS[*u].to_owned()).collect(),
            };
            let id = model.id();
            cluster.hub(from).broadcast_room(ROOMS[room], "news", &id, &exclude, now).unwrap();
            cluster.drive().unwrap();
            for to in model.members(room) {
                let user = model.conns[&to].user;
                if conns.contains(&to) || user.is_some_and(|u| users.contains(&u)) {
                    continue;
                }
                model.expect(to, json!({"event":"news","room":ROOMS[room],"data":id}));
            }
        }
        Op::AppRooms { from, rooms, except } => {
            let id = model.id();
            let names: Vec<&str> = rooms.iter().map(|r| ROOMS[*r]).collect();
            let except_names: Vec<&str> = except.iter().map(|r| ROOMS[*r]).collect();
            cluster
                .hub(from)
                .broadcast_rooms(&names, &except_names, "multi", &id, &Exclude::none(), now)
                .unwrap();
            cluster.drive().unwrap();
            let distinct: BTreeSet<usize> = rooms.iter().copied().collect();
            for (to, member) in model.conns.clone() {
                let inside = member.rooms.iter().any(|r| rooms.contains(r));
                let excepted = member.rooms.iter().any(|r| except.contains(r));
                if inside && !excepted {
                    let mut delivered = json!({"event":"multi","data":id});
                    if distinct.len() == 1 {
                        // One room: a room broadcast, which says the room.
                        delivered["room"] = json!(ROOMS[rooms[0]]);
                    }
                    model.expect(to, delivered);
                }
            }
        }
        Op::AppUser(from, user) => {
            let id = model.id();
            cluster.hub(from).send_to_user(USERS[user], "dm", &id, now).unwrap();
            cluster.drive().unwrap();
            for to in model.sessions(user) {
                model.expect(to, json!({"event":"dm","data":id}));
            }
        }
        Op::AppConn(from, c) => {
            let id = model.id();
            cluster.hub(from).send(conn(c), "direct", &id, now).unwrap();
            cluster.drive().unwrap();
            if model.conns.contains_key(&c) {
                model.expect(c, json!({"event":"direct","data":id}));
            }
        }
        Op::AppAll { from, users } => {
            let id = model.id();
            let exclude = Exclude {
                conns: Vec::new(),
                users: users.iter().map(|u| USERS[*u].to_owned()).collect(),
            };
            cluster.hub(from).broadcast_all("all", &id, &exclude, now).unwrap();
            cluster.drive().unwrap();
            for (to, member) in model.conns.clone() {
                if !member.user.is_some_and(|u| users.contains(&u)) {
                    model.expect(to, json!({"event":"all","data":id}));
                }
            }
        }
        Op::Emitter { kind, target, conns } => {
            let id = model.id();
            let exclude: Vec<String> = conns.iter().map(|c| conn(*c).to_string()).collect();
            let (channel, kind_name, target_name, recipients) = match kind {
                0 => {
                    let room = target % ROOMS.len();
                    (
                        format!("ws:room:{}", ROOMS[room]),
                        "room",
                        json!(ROOMS[room]),
                        model.members(room),
                    )
                }
                1 => {
                    let user = target % USERS.len();
                    (
                        format!("ws:user:{}", USERS[user]),
                        "user",
                        json!(USERS[user]),
                        model.sessions(user),
                    )
                }
                2 => {
                    let c = target as u128 % CONNS;
                    let to = if model.conns.contains_key(&c) { vec![c] } else { Vec::new() };
                    (format!("ws:client:{}", conn(c)), "client", json!(conn(c).to_string()), to)
                }
                _ => (
                    "ws:broadcast".to_owned(),
                    "broadcast",
                    Value::Null,
                    model.conns.keys().copied().collect(),
                ),
            };
            let mut envelope = json!({"serverId":"emitter","type":kind_name,"event":"from-emitter","data":id,"exclude":exclude});
            if !target_name.is_null() {
                envelope["target"] = target_name;
            }
            cluster.emit(channel, envelope.to_string());
            cluster.drive().unwrap();
            for to in recipients {
                if conns.contains(&to) {
                    continue;
                }
                let mut delivered = json!({"event":"from-emitter","data":id});
                if kind == 0 {
                    delivered["room"] = json!(ROOMS[target % ROOMS.len()]);
                }
                model.expect(to, delivered);
            }
        }
        Op::Garbage(g) => {
            let (channel, payload) = GARBAGE[g];
            cluster.emit(channel, payload);
            cluster.drive().unwrap();
        }
        Op::Echo { own, room } => {
            // An envelope that claims to come from instance `own`: it delivered it already, so
            // it ignores it; the others deliver it.
            let id = model.id();
            let envelope = json!({"serverId":format!("node-{own}"),"type":"room","target":ROOMS[room],"event":"echo","data":id});
            cluster.emit(format!("ws:room:{}", ROOMS[room]), envelope.to_string());
            cluster.drive().unwrap();
            for to in model.members(room) {
                if node(to) != own {
                    model.expect(to, json!({"event":"echo","room":ROOMS[room],"data":id}));
                }
            }
        }
        Op::BusGap(n) => {
            cluster.hub(n).handle_bus_gap(now);
            cluster.drive().unwrap();
            for (to, member) in model.conns.clone() {
                if node(to) != n {
                    continue;
                }
                let mut rooms: Vec<usize> = member.rooms.clone();
                rooms.sort_unstable();
                for room in rooms {
                    model.expect(to, json!({"event":"resync","room":ROOMS[room],"data":{"reason":"bus_reconnected"}}));
                }
            }
        }
        Op::Close(c) => {
            if model.conns.remove(&c).is_none() {
                return;
            }
            cluster.hub(node(c)).close(conn(c), CloseCode::NORMAL, "bye", now).unwrap();
            cluster.drive().unwrap();
            model.expect(c, json!({"close": 1000}));
        }
        Op::Heartbeats(c, n) => {
            for _ in 0..n {
                if !model.conns.contains_key(&c)
                    || !send(cluster, model, c, &json!({"event":"heartbeat"}))
                {
                    return;
                }
            }
            cluster.drive().unwrap();
        }
        Op::Advance(ms) => {
            cluster.advance(Duration::from_millis(ms)).unwrap();
            model.now_ms += ms;
        }
        Op::Disconnect(c) => {
            if model.conns.remove(&c).is_none() {
                return;
            }
            cluster.hub(node(c)).handle_disconnect(conn(c), now);
            cluster.drive().unwrap();
        }
    }
}

/// What each connection received since the last check: frames (with a few fields normalised)
/// and closes, in order per connection.
fn received(cluster: &mut Cluster) -> BTreeMap<u128, Vec<Value>> {
    let mut got: BTreeMap<u128, Vec<Value>> = BTreeMap::new();
    for c in 0..CONNS {
        for frame in cluster.take_frames(node(c), conn(c)) {
            got.entry(c).or_default().push(comparable(&frame));
        }
    }
    for n in 0..NODES {
        let closes = cluster.take_closes(n);
        for (to, code) in closes {
            let c = (0..CONNS).find(|c| conn(*c) == to).unwrap();
            got.entry(c).or_default().push(json!({"close": code.as_u16()}));
        }
    }
    got
}

/// `resync` frames of one gap come in no particular order of rooms: sorted, run by run.
fn normalize(frames: &mut BTreeMap<u128, Vec<Value>>) {
    for list in frames.values_mut() {
        let mut start = 0;
        while start < list.len() {
            let mut end = start;
            while end < list.len() && list[end]["event"] == "resync" {
                end += 1;
            }
            list[start..end].sort_by_key(|f| f["room"].as_str().unwrap_or("").to_owned());
            start = end.max(start + 1);
        }
    }
}

fn check(cluster: &mut Cluster, model: &mut Model, op: &Op) -> Result<(), TestCaseError> {
    let mut got = received(cluster);
    let mut expected = std::mem::take(&mut model.expected);
    normalize(&mut got);
    normalize(&mut expected);
    prop_assert_eq!(&got, &expected, "after {:?}", op);
    for n in 0..NODES {
        for (r, room) in ROOMS.iter().enumerate() {
            let mut local: Vec<ConnId> = cluster.hub(n).room_members(room).collect();
            local.sort();
            let mut want: Vec<ConnId> =
                model.members(r).into_iter().filter(|c| node(*c) == n).map(conn).collect();
            want.sort();
            prop_assert_eq!(local, want, "members of {} on node {}", room, n);
        }
        prop_assert!(
            cluster.record(n).interest_errors.is_empty(),
            "{:?}",
            cluster.record(n).interest_errors
        );
        let interest = model.interest(n);
        prop_assert_eq!(&cluster.record(n).subscriptions, &interest, "bus interest of node {}", n);
        let told: BTreeSet<String> = cluster.hub(n).subscriptions().into_iter().collect();
        prop_assert_eq!(told, interest, "the interest node {} reports", n);
    }
    Ok(())
}

/// Runs `ops` on two hubs and on the model, checking after every step.
fn run(
    anonymous: bool,
    burst: Option<u32>,
    policies: [RoomPolicy; 3],
    ops: &[Op],
) -> Result<(), TestCaseError> {
    let mut cluster = Cluster::new(NODES, |_| config(anonymous, burst, policies));
    let mut model = Model { anonymous, burst, policies, ..Model::default() };
    for op in ops {
        apply(&mut cluster, &mut model, op);
        check(&mut cluster, &mut model, op)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn two_hubs_on_a_bus_deliver_exactly_what_a_model_of_the_cluster_says(
        anonymous in any::<bool>(),
        burst in proptest::option::weighted(0.3, 4u32..16),
        policies in policies(),
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        run(anonymous, burst, policies, &ops)?;
    }
}

#[test]
fn the_rate_limit_refills_one_frame_a_second_up_to_its_burst() {
    use Op::{Advance, Heartbeats, Login};
    for anonymous in [false, true] {
        let ops = [
            Login(0, None, None),
            Heartbeats(0, 3),
            Advance(1_500),
            Heartbeats(0, 1),
            // Idle far longer than the burst takes to refill: still only the burst at once.
            Advance(10_000),
            Heartbeats(0, 5),
            Login(1, Some(0), None),
            Heartbeats(1, 4),
            Advance(999),
            Heartbeats(1, 1),
        ];
        if let Err(e) = run(anonymous, Some(4), [RoomPolicy::open(); 3], &ops) {
            panic!("anonymous {anonymous}: {e}");
        }
    }
}

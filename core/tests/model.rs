//! Model-based property test: random sequences of connects, authentication, joins, leaves,
//! publishes, application sends, bus envelopes, disconnects and time passing, run against the hub
//! and against a naive reference model. After every step:
//!
//! - every index agrees with the model (rooms, members, rooms of each connection, users, states);
//! - each broadcast reaches exactly the members minus the excluded, once each, in one transmit;
//! - the closes and pings are exactly the model's;
//! - bus interest (Subscribe minus Unsubscribe) equals the set of locally non-empty rooms, users,
//!   authenticated connections and the broadcast channel;
//! - presence equals the model's, and per-user notices go out exactly when a person (a user, or
//!   an anonymous connection) enters a room with a first session or leaves it with the last.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use roomcast_core::{
    AuthMode, CloseCode, ConnId, ConnState, Event, Exclude, Hub, HubConfig, Identity, Output,
    PresenceEvents,
};

const CONNS: u128 = 4;
const ROOMS: [&str; 4] = ["a", "b", "c", "d"];
const USERS: [&str; 2] = ["u0", "u1"];
const MAX_ROOMS: usize = 3;
const AUTH_TIMEOUT: Duration = Duration::from_secs(5);
const HEARTBEAT: Duration = Duration::from_secs(30);
const PING: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
enum Op {
    Connect(u128),
    Authenticate(u128),
    Accept(u128, Option<usize>),
    /// Connect then accept as a user: two steps, so that authenticated sessions are common.
    Login(u128, usize),
    Reject(u128),
    Join(u128, Vec<usize>),
    Leave(u128, Vec<usize>),
    AppJoin(u128, usize),
    AppLeave(u128, usize),
    Publish(u128, usize, bool),
    Broadcast(usize, Vec<u128>),
    SendToUser(usize),
    BroadcastAll(Option<u128>),
    Bus(usize, Vec<u128>),
    Heartbeat(u128),
    Pong(u128),
    Garbage(u128, usize),
    Disconnect(u128),
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    let c = 0..CONNS;
    let room = 0..ROOMS.len();
    // Mostly valid requests (1..=3 rooms); over-long ones are covered by the fixed limit tests.
    let rooms = proptest::collection::vec(0..ROOMS.len(), 1..5);
    let conns = proptest::collection::vec(0..CONNS, 0..3);
    prop_oneof![
        3 => c.clone().prop_map(Op::Connect),
        2 => c.clone().prop_map(Op::Authenticate),
        4 => (c.clone(), proptest::option::weighted(0.8, 0..USERS.len())).prop_map(|(c, u)| Op::Accept(c, u)),
        1 => c.clone().prop_map(Op::Reject),
        4 => (c.clone(), 0..USERS.len()).prop_map(|(c, u)| Op::Login(c, u)),
        8 => (c.clone(), rooms.clone()).prop_map(|(c, r)| Op::Join(c, r)),
        2 => (c.clone(), rooms).prop_map(|(c, r)| Op::Leave(c, r)),
        2 => (c.clone(), room.clone()).prop_map(|(c, r)| Op::AppJoin(c, r)),
        1 => (c.clone(), room.clone()).prop_map(|(c, r)| Op::AppLeave(c, r)),
        4 => (c.clone(), room.clone(), any::<bool>()).prop_map(|(c, r, x)| Op::Publish(c, r, x)),
        2 => (room.clone(), conns.clone()).prop_map(|(r, x)| Op::Broadcast(r, x)),
        1 => (0..USERS.len()).prop_map(Op::SendToUser),
        1 => proptest::option::of(c.clone()).prop_map(Op::BroadcastAll),
        2 => (room, conns).prop_map(|(r, x)| Op::Bus(r, x)),
        1 => c.clone().prop_map(Op::Heartbeat),
        1 => c.clone().prop_map(Op::Pong),
        1 => (c.clone(), 0..GARBAGE.len()).prop_map(|(c, g)| Op::Garbage(c, g)),
        1 => c.prop_map(Op::Disconnect),
        2 => (0u64..4_000).prop_map(Op::Advance),
        // Long jumps: heartbeat and authentication deadlines pass for many at once.
        1 => (0u64..40_000).prop_map(Op::Advance),
    ]
}

const GARBAGE: [&str; 5] = ["", "nope", "[]", r#"{"event":""}"#, r#"{"event":"x","id":true}"#];

/// Room → person → that person's sessions in the room.
type Persons = BTreeMap<String, BTreeMap<String, BTreeSet<ConnId>>>;

/// `(event, room, person)` → `(must hear it, may hear it)`.
type Notices = BTreeMap<(String, String, String), (BTreeSet<ConnId>, BTreeSet<ConnId>)>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MState {
    Awaiting(Instant),
    Authenticating(Instant),
    Authenticated,
}

#[derive(Debug, Clone)]
struct MConn {
    state: MState,
    user: Option<String>,
    rooms: Vec<String>,
    last_activity: Instant,
    last_ping: Instant,
}

/// The naive reference: plain maps, scans everywhere.
#[derive(Debug, Default)]
struct Model {
    conns: BTreeMap<ConnId, MConn>,
}

impl Model {
    fn members(&self, room: &str) -> BTreeSet<ConnId> {
        self.conns
            .iter()
            .filter(|(_, c)| c.rooms.iter().any(|r| r == room))
            .map(|(id, _)| *id)
            .collect()
    }

    fn authenticated(&self) -> BTreeSet<ConnId> {
        self.conns
            .iter()
            .filter(|(_, c)| c.state == MState::Authenticated)
            .map(|(id, _)| *id)
            .collect()
    }

    fn interest(&self) -> BTreeSet<String> {
        let mut all = BTreeSet::new();
        for (id, c) in &self.conns {
            for r in &c.rooms {
                all.insert(format!("ws:room:{r}"));
            }
            if let Some(u) = &c.user {
                all.insert(format!("ws:user:{u}"));
            }
            if c.state == MState::Authenticated {
                all.insert(format!("ws:client:{id}"));
                all.insert("ws:broadcast".to_owned());
            }
        }
        all
    }

    /// Room → person → that person's sessions in the room. A person is a user id, or
    /// `conn:{id}` for an anonymous connection.
    fn persons(&self) -> Persons {
        let mut rooms = Persons::new();
        for (id, c) in &self.conns {
            let person = c.user.clone().unwrap_or_else(|| format!("conn:{id}"));
            for room in &c.rooms {
                rooms
                    .entry(room.clone())
                    .or_default()
                    .entry(person.clone())
                    .or_default()
                    .insert(*id);
            }
        }
        rooms
    }

    fn touch(&mut self, id: ConnId, now: Instant) -> Option<&mut MConn> {
        let c = self.conns.get_mut(&id)?;
        c.last_activity = now;
        Some(c)
    }

    fn join(&mut self, id: ConnId, room: &str) -> bool {
        let Some(c) = self.conns.get_mut(&id) else { return false };
        if c.state != MState::Authenticated
            || c.rooms.iter().any(|r| r == room)
            || c.rooms.len() >= MAX_ROOMS
        {
            return false;
        }
        c.rooms.push(room.to_owned());
        true
    }
}

/// What one step is expected to produce, compared with what the hub produced.
#[derive(Debug, Default)]
struct Expect {
    /// The event name of a fan-out and its exact recipients (`None`: no fan-out expected).
    fanout: Option<(String, BTreeSet<ConnId>)>,
    closes: BTreeSet<(ConnId, CloseCode)>,
    pings: BTreeSet<ConnId>,
    /// `(event, room, person)` → the recipients that must get it, and those that may (members
    /// that left in the same step, e.g. closed by the same timeout, may hear of each other).
    notices: Notices,
}

struct Harness {
    hub: Hub,
    model: Model,
    now: Instant,
    subscribed: BTreeSet<String>,
    step: usize,
}

fn id(n: u128) -> ConnId {
    ConnId::from_u128(n)
}

impl Harness {
    fn new() -> Self {
        let now = Instant::now();
        let config = HubConfig {
            auth: AuthMode::Required,
            rate_limit: None,
            max_rooms_per_conn: MAX_ROOMS,
            auth_timeout: AUTH_TIMEOUT,
            heartbeat_timeout: HEARTBEAT,
            ping_interval: PING,
            presence_events: PresenceEvents::Users,
            ..HubConfig::default()
        };
        Self {
            hub: Hub::new(config, now, 0).unwrap(),
            model: Model::default(),
            now,
            subscribed: BTreeSet::new(),
            step: 0,
        }
    }

    fn frame(&mut self, c: u128, frame: &str) {
        self.hub.handle_frame(id(c), frame.as_bytes(), self.now);
    }

    fn apply(&mut self, op: &Op) {
        if let Op::Login(c, u) = *op {
            self.apply(&Op::Connect(c));
            self.apply(&Op::Accept(c, Some(u)));
            return;
        }
        self.step += 1;
        let now = self.now;
        let event = format!("ev{}", self.step);
        let mut expect = Expect::default();
        let before = self.model.persons();
        match *op {
            Op::Connect(c) => {
                let fresh = !self.model.conns.contains_key(&id(c));
                assert_eq!(self.hub.handle_connect(id(c), now).is_ok(), fresh);
                if fresh {
                    let state = MState::Awaiting(now + AUTH_TIMEOUT);
                    let conn = MConn {
                        state,
                        user: None,
                        rooms: vec![],
                        last_activity: now,
                        last_ping: now,
                    };
                    self.model.conns.insert(id(c), conn);
                }
            }
            Op::Authenticate(c) => {
                self.frame(c, r#"{"event":"authenticate","data":{"token":"t"}}"#);
                if let Some(m) = self.model.touch(id(c), now)
                    && matches!(m.state, MState::Awaiting(_))
                {
                    m.state = MState::Authenticating(now + AUTH_TIMEOUT * 3);
                }
            }
            Op::Accept(c, user) => {
                let identity = match user {
                    Some(u) => Identity::user(USERS[u]),
                    None => Identity::anonymous(),
                };
                let ok = self.hub.accept_auth(id(c), identity, now).is_ok();
                let m = self.model.conns.get_mut(&id(c));
                let expected = m.as_ref().is_some_and(|m| m.state != MState::Authenticated);
                assert_eq!(ok, expected);
                if let Some(m) = m.filter(|_| expected) {
                    m.state = MState::Authenticated;
                    m.user = user.map(|u| USERS[u].to_owned());
                }
            }
            Op::Login(..) => unreachable!("expanded above"),
            Op::Reject(c) => {
                let ok = self.hub.reject_auth(id(c), "no", now).is_ok();
                let expected =
                    self.model.conns.get(&id(c)).is_some_and(|m| m.state != MState::Authenticated);
                assert_eq!(ok, expected);
                if expected {
                    self.model.conns.remove(&id(c));
                    expect.closes.insert((id(c), CloseCode::AUTH_REJECTED));
                }
            }
            Op::Join(c, ref rooms) | Op::Leave(c, ref rooms) => {
                let joining = matches!(op, Op::Join(..));
                let names: Vec<&str> = rooms.iter().map(|r| ROOMS[*r]).collect();
                let verb = if joining { "join" } else { "leave" };
                self.frame(
                    c,
                    &serde_json::json!({"event": verb, "data": {"rooms": names}}).to_string(),
                );
                let authenticated =
                    self.model.touch(id(c), now).is_some_and(|m| m.state == MState::Authenticated);
                if authenticated && names.len() <= MAX_ROOMS {
                    for room in names {
                        if joining {
                            self.model.join(id(c), room);
                        } else if let Some(m) = self.model.conns.get_mut(&id(c)) {
                            m.rooms.retain(|r| r != room);
                        }
                    }
                }
            }
            Op::AppJoin(c, r) => {
                let result = self.hub.join(id(c), ROOMS[r], now);
                let known =
                    self.model.conns.get(&id(c)).is_some_and(|m| m.state == MState::Authenticated);
                let was_member = self.model.members(ROOMS[r]).contains(&id(c));
                let joined = self.model.join(id(c), ROOMS[r]);
                match result {
                    Ok(changed) => assert!(known && changed == joined && (joined || was_member)),
                    Err(_) => assert!(!joined && !was_member),
                }
            }
            Op::AppLeave(c, r) => {
                let result = self.hub.leave(id(c), ROOMS[r], now);
                match self.model.conns.get_mut(&id(c)) {
                    None => assert!(result.is_err()),
                    Some(m) => {
                        let was = m.rooms.iter().any(|x| x == ROOMS[r]);
                        m.rooms.retain(|x| x != ROOMS[r]);
                        assert_eq!(result.ok(), Some(was));
                    }
                }
            }
            Op::Publish(c, r, exclude_self) => {
                let frame = serde_json::json!({"event":"publish","data":{"room":ROOMS[r],"event":event,"excludeSelf":exclude_self}});
                self.frame(c, &frame.to_string());
                let members = self.model.members(ROOMS[r]);
                let allowed =
                    self.model.touch(id(c), now).is_some_and(|m| m.state == MState::Authenticated)
                        && members.contains(&id(c));
                if allowed {
                    let mut to = members;
                    if exclude_self {
                        to.remove(&id(c));
                    }
                    expect.fanout = Some((event.clone(), to));
                }
            }
            Op::Broadcast(r, ref excluded) => {
                let exclude =
                    Exclude { conns: excluded.iter().map(|c| id(*c)).collect(), users: vec![] };
                self.hub.broadcast_room(ROOMS[r], &event, &(), &exclude, now).unwrap();
                let to = self
                    .model
                    .members(ROOMS[r])
                    .into_iter()
                    .filter(|c| !exclude.conns.contains(c))
                    .collect();
                expect.fanout = Some((event.clone(), to));
            }
            Op::Bus(r, ref excluded) => {
                let exclude: Vec<String> = excluded.iter().map(|c| id(*c).to_string()).collect();
                let envelope = serde_json::json!({"serverId":"emitter","type":"room","target":ROOMS[r],"event":event,"data":null,"exclude":exclude});
                self.hub.handle_bus(
                    &format!("ws:room:{}", ROOMS[r]),
                    envelope.to_string().as_bytes(),
                    now,
                );
                let to = self
                    .model
                    .members(ROOMS[r])
                    .into_iter()
                    .filter(|c| !excluded.iter().any(|x| id(*x) == *c))
                    .collect();
                expect.fanout = Some((event.clone(), to));
            }
            Op::SendToUser(u) => {
                self.hub.send_to_user(USERS[u], &event, &(), now).unwrap();
                let to = self
                    .model
                    .conns
                    .iter()
                    .filter(|(_, m)| m.user.as_deref() == Some(USERS[u]))
                    .map(|(c, _)| *c)
                    .collect();
                expect.fanout = Some((event.clone(), to));
            }
            Op::BroadcastAll(excluded) => {
                let exclude =
                    Exclude { conns: excluded.map(id).into_iter().collect(), users: vec![] };
                self.hub.broadcast_all(&event, &(), &exclude, now).unwrap();
                let to = self
                    .model
                    .authenticated()
                    .into_iter()
                    .filter(|c| !exclude.conns.contains(c))
                    .collect();
                expect.fanout = Some((event.clone(), to));
            }
            Op::Heartbeat(c) => {
                self.frame(c, r#"{"event":"heartbeat"}"#);
                self.model.touch(id(c), now);
            }
            Op::Pong(c) => {
                self.hub.handle_pong(id(c), now);
                self.model.touch(id(c), now);
            }
            Op::Garbage(c, g) => {
                self.frame(c, GARBAGE[g]);
                self.model.touch(id(c), now);
            }
            Op::Disconnect(c) => {
                self.hub.handle_disconnect(id(c), now);
                self.model.conns.remove(&id(c));
            }
            Op::Advance(ms) => {
                self.now += Duration::from_millis(ms);
                let now = self.now;
                self.hub.handle_timeout(now);
                let mut closed = Vec::new();
                for (cid, m) in &mut self.model.conns {
                    let code = match m.state {
                        MState::Awaiting(d) | MState::Authenticating(d) if now >= d => {
                            Some(CloseCode::AUTH_TIMEOUT)
                        }
                        _ if now >= m.last_activity + HEARTBEAT => {
                            Some(CloseCode::HEARTBEAT_TIMEOUT)
                        }
                        _ => None,
                    };
                    if let Some(code) = code {
                        expect.closes.insert((*cid, code));
                        closed.push(*cid);
                    } else if now >= m.last_activity.max(m.last_ping) + PING {
                        m.last_ping = now;
                        expect.pings.insert(*cid);
                    }
                }
                for cid in closed {
                    self.model.conns.remove(&cid);
                }
            }
        }
        expect.notices = expected_notices(&before, &self.model.persons());
        self.check_outputs(&expect);
        self.check_indexes();
    }

    fn check_outputs(&mut self, expect: &Expect) {
        let mut fanouts = Vec::new();
        let mut closes = BTreeSet::new();
        let mut pings = BTreeSet::new();
        let mut disconnected = BTreeSet::new();
        let mut notices = BTreeMap::new();
        while let Some(output) = self.hub.poll_output() {
            match output {
                Output::Transmit(t) => {
                    assert!(!t.to.is_empty(), "empty transmit");
                    let frame: serde_json::Value = serde_json::from_slice(&t.frame).unwrap();
                    if frame["event"].as_str().is_some_and(|e| e.starts_with("member_")) {
                        let person = match frame["data"]["userId"].as_str() {
                            Some(user) => user.to_owned(),
                            None => format!("conn:{}", frame["data"]["id"].as_str().unwrap()),
                        };
                        let key = (
                            frame["event"].as_str().unwrap().to_owned(),
                            frame["room"].as_str().unwrap().to_owned(),
                            person,
                        );
                        let to: BTreeSet<ConnId> = t.to.iter().copied().collect();
                        assert_eq!(to.len(), t.to.len(), "a notice recipient twice");
                        assert!(notices.insert(key, to).is_none(), "the same notice twice");
                    } else if frame["event"].as_str().is_some_and(|e| e.starts_with("ev")) {
                        fanouts.push((frame["event"].as_str().unwrap().to_owned(), t.to));
                    }
                }
                Output::Close { conn, code, .. } => {
                    assert!(closes.insert((conn, code)), "closed twice")
                }
                Output::Ping(conn) => assert!(pings.insert(conn), "pinged twice"),
                Output::Subscribe(ch) => {
                    assert!(self.subscribed.insert(ch.clone()), "subscribed twice to {ch}")
                }
                Output::Unsubscribe(ch) => {
                    assert!(self.subscribed.remove(&ch), "unsubscribed from {ch} without interest")
                }
                Output::Event(Event::Disconnected { conn, .. }) => {
                    assert!(disconnected.insert(conn))
                }
                Output::Publish { .. } | Output::Event(_) => {}
            }
        }
        match &expect.fanout {
            Some((event, to)) if !to.is_empty() => {
                assert_eq!(fanouts.len(), 1, "one transmit for {event}");
                let (got_event, got_to) = &fanouts[0];
                assert_eq!(got_event, event);
                let set: BTreeSet<ConnId> = got_to.iter().copied().collect();
                assert_eq!(set.len(), got_to.len(), "a recipient twice");
                assert_eq!(&set, to, "recipients of {event}");
            }
            _ => assert!(fanouts.is_empty(), "unexpected fan-out {fanouts:?}"),
        }
        assert_eq!(closes, expect.closes);
        assert_eq!(pings, expect.pings);
        // A notice is required when some member must hear it; one whose only possible hearers
        // left in the same step may be absent.
        for (key, (must, _)) in &expect.notices {
            assert!(must.is_empty() || notices.contains_key(key), "missing notice {key:?}");
        }
        for (key, to) in &notices {
            let Some((must, may)) = expect.notices.get(key) else {
                panic!("unexpected notice {key:?} to {to:?}")
            };
            assert!(
                must.is_subset(to) && to.is_subset(may),
                "recipients of {key:?}: {to:?}, must {must:?}, may {may:?}"
            );
        }
        for (conn, _) in &closes {
            assert!(disconnected.contains(conn), "a close without Disconnected");
        }
    }

    fn check_indexes(&self) {
        let hub = &self.hub;
        let model = &self.model;
        assert_eq!(hub.connection_count(), model.conns.len());
        let hub_rooms: BTreeSet<&str> = hub.rooms().collect();
        let model_rooms: BTreeSet<&str> =
            model.conns.values().flat_map(|c| c.rooms.iter().map(String::as_str)).collect();
        assert_eq!(hub_rooms, model_rooms);
        for room in ROOMS {
            let members: BTreeSet<ConnId> = hub.room_members(room).collect();
            assert_eq!(members, model.members(room), "members of {room}");
            assert_eq!(hub.room_size(room), members.len());
        }
        for (cid, m) in &model.conns {
            let info = hub.connection(*cid).expect("connection known to the hub");
            let state = match m.state {
                MState::Awaiting(_) => ConnState::Unauthenticated,
                MState::Authenticating(_) => ConnState::Authenticating,
                MState::Authenticated => ConnState::Authenticated,
            };
            assert_eq!(info.state, state);
            assert_eq!(info.user_id, m.user.as_deref());
            assert_eq!(info.rooms().collect::<Vec<_>>(), m.rooms, "rooms of {cid} in join order");
        }
        for user in USERS {
            let sessions: BTreeSet<ConnId> = hub.user_connections(user).collect();
            let expected: BTreeSet<ConnId> = model
                .conns
                .iter()
                .filter(|(_, m)| m.user.as_deref() == Some(user))
                .map(|(c, _)| *c)
                .collect();
            assert_eq!(sessions, expected, "sessions of {user}");
        }
        for room in ROOMS {
            // Presence agrees with the model: the members, each with its user.
            let presence: BTreeMap<ConnId, Option<&str>> =
                hub.presence(room).iter().map(|e| (e.conn, e.user_id)).collect();
            let expected: BTreeMap<ConnId, Option<&str>> = model
                .members(room)
                .into_iter()
                .map(|c| (c, model.conns[&c].user.as_deref()))
                .collect();
            assert_eq!(presence, expected, "presence of {room}");
        }
        for user in USERS {
            assert_eq!(
                hub.user_online(user),
                model.conns.values().any(|m| m.user.as_deref() == Some(user))
            );
        }
        let interest = model.interest();
        assert_eq!(self.subscribed, interest, "bus interest");
        assert_eq!(hub.subscriptions().into_iter().collect::<BTreeSet<_>>(), interest);
    }
}

/// The notices a step must produce: a person who is in a room after the step and was not before
/// joined it; the reverse left it. The other members hear of it: every one that is still there
/// must, and ones that left in the same step may.
fn expected_notices(before: &Persons, after: &Persons) -> Notices {
    let members = |rooms: &BTreeMap<String, BTreeMap<String, BTreeSet<ConnId>>>,
                   room: &str|
     -> BTreeSet<ConnId> {
        rooms.get(room).map(|p| p.values().flatten().copied().collect()).unwrap_or_default()
    };
    let mut notices = BTreeMap::new();
    let rooms: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    for room in rooms {
        let (was, is) = (before.get(room.as_str()), after.get(room.as_str()));
        let (was_members, is_members) = (members(before, room), members(after, room));
        let persons: BTreeSet<&String> = was
            .into_iter()
            .flat_map(|p| p.keys())
            .chain(is.into_iter().flat_map(|p| p.keys()))
            .collect();
        for person in persons {
            let (in_before, in_after) = (
                was.is_some_and(|p| p.contains_key(person)),
                is.is_some_and(|p| p.contains_key(person)),
            );
            let sessions: BTreeSet<ConnId> = [was, is]
                .into_iter()
                .flatten()
                .filter_map(|p| p.get(person))
                .flatten()
                .copied()
                .collect();
            let must: BTreeSet<ConnId> = is_members.difference(&sessions).copied().collect();
            let may: BTreeSet<ConnId> =
                is_members.union(&was_members).copied().filter(|c| !sessions.contains(c)).collect();
            let event = match (in_before, in_after) {
                (false, true) => "member_joined",
                (true, false) => "member_left",
                _ => continue,
            };
            if !may.is_empty() {
                notices.insert((event.to_owned(), room.clone(), person.clone()), (must, may));
            }
        }
    }
    notices
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn hub_agrees_with_the_reference_model_after_every_step(ops in proptest::collection::vec(op(), 1..120)) {
        let mut harness = Harness::new();
        for op in &ops {
            harness.apply(op);
        }
    }
}

/// The failures random generation found in the past, kept as examples: proptest replays a
/// regression file's seeds, which reach other values once a strategy changes.
#[test]
fn past_failures_of_the_model_still_pass() {
    use Op::{Accept, AppJoin, BroadcastAll, Connect, Disconnect};
    let cases = [
        vec![Connect(0), Accept(0, None), BroadcastAll(Some(0))],
        // Found with six connections; the last of today's four takes the same path.
        vec![Connect(3), Accept(3, None), AppJoin(3, 0), Disconnect(3)],
    ];
    for ops in cases {
        let mut harness = Harness::new();
        for op in &ops {
            harness.apply(op);
        }
    }
}

/// Fixed sequences through the same harness, for cases random generation may rarely reach.
#[test]
fn a_second_session_of_a_user_is_not_announced_and_its_last_departure_is() {
    let mut harness = Harness::new();
    for op in [
        Op::Connect(0),
        Op::Connect(1),
        Op::Connect(2),
        Op::Accept(0, Some(0)),
        Op::Accept(1, Some(0)),
        Op::Accept(2, Some(1)),
        Op::Join(2, vec![0]),
        Op::Join(0, vec![0]),
        Op::Join(1, vec![0]),
        Op::Leave(0, vec![0]),
        Op::Disconnect(1),
    ] {
        harness.apply(&op);
    }
}

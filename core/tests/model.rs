//! Model-based property test: random sequences of connects, authentication, joins, leaves,
//! publishes (straight, or through the application's check), presence questions, under random
//! room policies and identities with and without a rooms list, requests and their replies, token
//! refreshes and expiry, application sends, bus envelopes, transport violations, overload, shutdown,
//! disconnects and time passing, run against the hub and against a naive reference model. After
//! every step:
//!
//! - every answer to a request (`joined`, `left`, `reply`, `refreshed`, `presence`, an `error`
//!   with its code and room), and every `token_expiring`, is the model's, to the right connection,
//!   in order: a join, leave, publish or presence question the room's policy refuses is answered
//!   `forbidden` and changes nothing, so no client hears a room it may not join and no client's
//!   publish reaches a room it may not publish to;
//! - every request handed to the application (a message, a refresh, a publish to check) is the
//!   model's;
//! - time moves two ways: jumps of any length, and jumps to exactly the hub's next deadline
//!   (`poll_timeout`), which must never be later than the model's first deadline; what fires
//!   then is exactly what the model says is due, so no deadline fires early and none late;
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
    AuthMode, CloseCode, ConnId, ConnState, Event, Exclude, Hub, HubConfig, Identity, JoinPolicy,
    Output, PresenceEvents, PresencePolicy, PublishPolicy, PublishRequest, RequestId, RoomAcl,
    RoomPolicies, RoomPolicy, Violation,
};
use serde_json::{Value, json};

const CONNS: u128 = 4;
const ROOMS: [&str; 4] = ["a", "b", "c", "d"];
const USERS: [&str; 2] = ["u0", "u1"];
const MAX_ROOMS: usize = 3;
const AUTH_TIMEOUT: Duration = Duration::from_secs(5);
const HEARTBEAT: Duration = Duration::from_secs(30);
const PING: Duration = Duration::from_secs(10);
const NOTICE: Duration = Duration::from_secs(10);
const VIOLATIONS: [Violation; 4] = [
    Violation::Binary,
    Violation::TooLarge,
    Violation::Framing("bad frame"),
    Violation::InvalidUtf8,
];

#[derive(Debug, Clone)]
enum Op {
    Connect(u128),
    Authenticate(u128),
    /// Accept as a user (or anonymous), with a rooms list (exact names) or none.
    Accept(u128, Option<usize>, Option<Vec<usize>>),
    /// Connect then accept as a user: two steps, so that authenticated sessions are common.
    Login(u128, usize, Option<Vec<usize>>),
    Reject(u128),
    Join(u128, Vec<usize>),
    Leave(u128, Vec<usize>),
    AppJoin(u128, usize),
    AppLeave(u128, usize),
    Publish(u128, usize, bool),
    /// `{"event":"presence","data":{"room":..},"id":N}`.
    Presence(u128, usize),
    Broadcast(usize, Vec<u128>),
    SendToUser(usize),
    BroadcastAll(Option<u128>),
    Bus(usize, Vec<u128>),
    Heartbeat(u128),
    Pong(u128),
    Garbage(u128, usize),
    Disconnect(u128),
    Advance(u64),
    /// `{"event":"ask","id":N}`: a request for the application.
    Ask(u128),
    /// The application answers the connection's last request: a reply, or an error of its own.
    Reply(u128, bool),
    /// `{"event":"refresh","data":{"token":"t"},"id":N}`.
    Refresh(u128),
    /// The application accepts the connection's last refresh: as another user (refused), or with
    /// credentials that expire in that many seconds (or never).
    AcceptRefresh(u128, bool, Option<u64>),
    RejectRefresh(u128),
    /// The application lets the connection's last publish through (with the publish check on).
    AcceptPublish(u128),
    SendToConns(Vec<u128>),
    Violation(u128, usize),
    Overload(u128),
    SlowConsumer(u128),
    ConnectRefused(u128),
    CloseAll,
    ShutDown,
    /// Time jumps to the hub's next deadline, `poll_timeout()`, and nowhere else.
    Tick,
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
        4 => (c.clone(), proptest::option::weighted(0.8, 0..USERS.len()), acl())
            .prop_map(|(c, u, acl)| Op::Accept(c, u, acl)),
        1 => c.clone().prop_map(Op::Reject),
        4 => (c.clone(), 0..USERS.len(), acl()).prop_map(|(c, u, acl)| Op::Login(c, u, acl)),
        8 => (c.clone(), rooms.clone()).prop_map(|(c, r)| Op::Join(c, r)),
        2 => (c.clone(), rooms).prop_map(|(c, r)| Op::Leave(c, r)),
        2 => (c.clone(), room.clone()).prop_map(|(c, r)| Op::AppJoin(c, r)),
        1 => (c.clone(), room.clone()).prop_map(|(c, r)| Op::AppLeave(c, r)),
        4 => (c.clone(), room.clone(), any::<bool>()).prop_map(|(c, r, x)| Op::Publish(c, r, x)),
        1 => (c.clone(), room.clone()).prop_map(|(c, r)| Op::Presence(c, r)),
        2 => (room.clone(), conns.clone()).prop_map(|(r, x)| Op::Broadcast(r, x)),
        1 => (0..USERS.len()).prop_map(Op::SendToUser),
        1 => proptest::option::of(c.clone()).prop_map(Op::BroadcastAll),
        2 => (room, conns).prop_map(|(r, x)| Op::Bus(r, x)),
        1 => c.clone().prop_map(Op::Heartbeat),
        1 => c.clone().prop_map(Op::Pong),
        1 => (c.clone(), 0..GARBAGE.len()).prop_map(|(c, g)| Op::Garbage(c, g)),
        1 => c.clone().prop_map(Op::Disconnect),
        2 => (0u64..4_000).prop_map(Op::Advance),
        // Long jumps: heartbeat and authentication deadlines pass for many at once.
        1 => (0u64..40_000).prop_map(Op::Advance),
        4 => Just(Op::Tick),
        2 => c.clone().prop_map(Op::Ask),
        2 => (c.clone(), any::<bool>()).prop_map(|(c, ok)| Op::Reply(c, ok)),
        2 => c.clone().prop_map(Op::Refresh),
        2 => (c.clone(), proptest::bool::weighted(0.2), proptest::option::of(1u64..40))
            .prop_map(|(c, other, secs)| Op::AcceptRefresh(c, other, secs)),
        1 => c.clone().prop_map(Op::RejectRefresh),
        2 => c.clone().prop_map(Op::AcceptPublish),
        1 => proptest::collection::vec(0..CONNS + 1, 0..4).prop_map(Op::SendToConns),
        1 => (c.clone(), 0..VIOLATIONS.len()).prop_map(|(c, v)| Op::Violation(c, v)),
        1 => c.clone().prop_map(Op::Overload),
        1 => c.clone().prop_map(Op::SlowConsumer),
        1 => c.prop_map(Op::ConnectRefused),
    ]
}

/// An identity's rooms list: none (any room the policy allows), or some exact names.
fn acl() -> impl Strategy<Value = Option<Vec<usize>>> {
    proptest::option::weighted(0.4, proptest::collection::vec(0..ROOMS.len(), 0..3))
}

/// Patterns of the policies: an exact name, a prefix, everything. For the rooms `a`..`d`, an
/// exact name is more specific than `c*`, which is more specific than `*`.
const PATTERNS: [&str; 4] = ["a", "b", "c*", "*"];

fn policy() -> impl Strategy<Value = RoomPolicy> {
    let join =
        prop_oneof![Just(JoinPolicy::Anyone), Just(JoinPolicy::Token), Just(JoinPolicy::Server)];
    let publish = prop_oneof![
        Just(PublishPolicy::Members),
        Just(PublishPolicy::Server),
        Just(PublishPolicy::Checked)
    ];
    let presence = prop_oneof![Just(PresencePolicy::Members), Just(PresencePolicy::Server)];
    (join, publish, presence).prop_map(|(join, publish, presence)| RoomPolicy {
        join,
        publish,
        presence,
        history: None,
    })
}

/// A default policy (mostly open, so that rooms see traffic) and policies for some patterns.
#[derive(Debug, Clone)]
struct Policies {
    default: RoomPolicy,
    rules: BTreeMap<&'static str, RoomPolicy>,
}

impl Policies {
    fn open() -> Self {
        Self { default: RoomPolicy::open(), rules: BTreeMap::new() }
    }

    fn all(policy: RoomPolicy) -> Self {
        Self { default: policy, rules: BTreeMap::new() }
    }

    fn hub(&self) -> RoomPolicies {
        let mut policies = RoomPolicies::new(self.default);
        for (pattern, policy) in &self.rules {
            policies.set(pattern, *policy);
        }
        policies
    }

    /// The model's own lookup: the exact name, else `c*`, else `*`, else the default.
    fn of(&self, room: &str) -> RoomPolicy {
        let exact = self.rules.get(room);
        let prefix = self.rules.get("c*").filter(|_| room.starts_with('c'));
        exact.or(prefix).or(self.rules.get("*")).copied().unwrap_or(self.default)
    }
}

fn policies() -> impl Strategy<Value = Policies> {
    let default = prop_oneof![3 => Just(RoomPolicy::open()), 1 => policy()];
    let rules =
        proptest::collection::btree_map(proptest::sample::select(&PATTERNS[..]), policy(), 0..4);
    (default, rules).prop_map(|(default, rules)| Policies { default, rules })
}

/// Whole-hub orders, rare: after one, every later step meets an empty (or closing) hub.
fn op_or_order() -> impl Strategy<Value = Op> {
    prop_oneof![100 => op(), 1 => Just(Op::CloseAll), 1 => Just(Op::ShutDown)]
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
    /// The identity's rooms list, if it has one.
    acl: Option<Vec<String>>,
    last_activity: Instant,
    last_ping: Instant,
    /// When its credentials expire, and whether it was told (`token_expiring`).
    expires: Option<Instant>,
    told: bool,
}

impl MConn {
    fn new(now: Instant) -> Self {
        Self {
            state: MState::Awaiting(now + AUTH_TIMEOUT),
            user: None,
            rooms: vec![],
            acl: None,
            last_activity: now,
            last_ping: now,
            expires: None,
            told: false,
        }
    }

    /// Its first deadline: authentication, expiry (or its notice), heartbeat, next ping.
    fn deadline(&self) -> Instant {
        let idle = self.last_activity + HEARTBEAT;
        let ping = self.last_activity.max(self.last_ping) + PING;
        let mut first = idle.min(ping);
        if let MState::Awaiting(d) | MState::Authenticating(d) = self.state {
            first = first.min(d);
        }
        if let Some(e) = self.expires {
            first = first.min(if self.told { e } else { e - NOTICE });
        }
        first
    }
}

/// The naive reference: plain maps, scans everywhere.
#[derive(Debug)]
struct Model {
    conns: BTreeMap<ConnId, MConn>,
    shutting_down: bool,
    policies: Policies,
}

impl Model {
    /// Whether the room's policy lets `id` join (and leave) it by itself.
    fn may_join(&self, id: ConnId, room: &str) -> bool {
        let Some(c) = self.conns.get(&id) else { return false };
        let listed = c.acl.as_ref().map(|list| list.iter().any(|r| r == room));
        match self.policies.of(room).join {
            JoinPolicy::Anyone => true,
            JoinPolicy::Token => listed == Some(true),
            JoinPolicy::Server => false,
        }
    }

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

    fn authenticated_conn(&self, id: ConnId) -> bool {
        self.conns.get(&id).is_some_and(|m| m.state == MState::Authenticated)
    }

    fn rooms_of(&self, id: ConnId) -> Vec<String> {
        self.conns.get(&id).map(|m| m.rooms.clone()).unwrap_or_default()
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
    /// Answers and notices for one connection each, in order (see [`answer`]).
    answers: BTreeMap<ConnId, Vec<Value>>,
    /// What the application is handed: `(kind, conn, id)`.
    requests: Vec<(String, ConnId, Option<String>)>,
}

impl Expect {
    fn answer(&mut self, to: ConnId, answer: Value) {
        self.answers.entry(to).or_default().push(answer);
    }

    /// An answer that is not an error: `rooms` for `joined` and `left`.
    fn ok(&mut self, to: ConnId, event: &str, id: Option<u64>, rooms: Option<Vec<String>>) {
        let answer = json!({"event": event, "id": id, "code": null, "room": null, "rooms": rooms});
        self.answer(to, answer);
    }

    fn error(&mut self, to: ConnId, id: impl Into<Option<u64>>, code: &str, room: Option<&str>) {
        let id = id.into();
        self.answer(
            to,
            json!({"event": "error", "id": id, "code": code, "room": room, "rooms": null}),
        );
    }
}

/// The parts of an answer frame the model predicts.
fn answer(frame: &Value) -> Value {
    json!({
        "event": frame["event"],
        "id": frame["id"],
        "code": frame["data"]["code"],
        "room": frame["data"]["room"],
        "rooms": frame["data"]["rooms"],
    })
}

struct Harness {
    hub: Hub,
    model: Model,
    now: Instant,
    subscribed: BTreeSet<String>,
    step: usize,
    /// The last request, refresh and publish of each connection handed to the application.
    asked: BTreeMap<ConnId, RequestId>,
    refreshing: BTreeMap<ConnId, Option<RequestId>>,
    publishing: BTreeMap<ConnId, PublishRequest>,
}

fn id(n: u128) -> ConnId {
    ConnId::from_u128(n)
}

impl Harness {
    fn new() -> Self {
        Self::with_policies(Policies::open())
    }

    fn with_policies(policies: Policies) -> Self {
        let now = Instant::now();
        let config = HubConfig {
            token_refresh_notice: NOTICE,
            rooms: policies.hub(),
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
            model: Model { conns: BTreeMap::new(), shutting_down: false, policies },
            now,
            subscribed: BTreeSet::new(),
            step: 0,
            asked: BTreeMap::new(),
            refreshing: BTreeMap::new(),
            publishing: BTreeMap::new(),
        }
    }

    /// A request from `c` that only authenticated connections may make: `Some(true)` if
    /// authenticated, `Some(false)` if answered `unauthenticated`, `None` if unknown.
    fn authenticated_request(&mut self, c: u128, rid: u64, expect: &mut Expect) -> Option<bool> {
        let now = self.now;
        let m = self.model.touch(id(c), now)?;
        let ok = m.state == MState::Authenticated;
        if !ok {
            expect.error(id(c), rid, "unauthenticated", None);
        }
        Some(ok)
    }

    /// Closes `c` in the model, if it is there, expecting the close.
    fn close(&mut self, c: ConnId, code: CloseCode, expect: &mut Expect) {
        if self.model.conns.remove(&c).is_some() {
            expect.closes.insert((c, code));
        }
    }

    /// What the hub must do at `now` by the model: closes, notices and pings that are due.
    fn expire(&mut self, expect: &mut Expect) {
        let now = self.now;
        let mut closed = Vec::new();
        for (cid, m) in &mut self.model.conns {
            let code = match m.state {
                MState::Awaiting(d) | MState::Authenticating(d) if now >= d => {
                    Some(CloseCode::AUTH_TIMEOUT)
                }
                _ if m.expires.is_some_and(|e| now >= e) => Some(CloseCode::TOKEN_EXPIRED),
                _ => None,
            };
            if code.is_none() && !m.told && m.expires.is_some_and(|e| now >= e - NOTICE) {
                m.told = true;
                expect.ok(*cid, "token_expiring", None, None);
            }
            let code = code.or_else(|| {
                (now >= m.last_activity + HEARTBEAT).then_some(CloseCode::HEARTBEAT_TIMEOUT)
            });
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

    fn frame(&mut self, c: u128, frame: &str) {
        self.hub.handle_frame(id(c), frame.as_bytes(), self.now);
    }

    fn apply(&mut self, op: &Op) {
        if let Op::Login(c, u, ref acl) = *op {
            self.apply(&Op::Connect(c));
            self.apply(&Op::Accept(c, Some(u), acl.clone()));
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
                if fresh && self.model.shutting_down {
                    expect.closes.insert((id(c), CloseCode::GOING_AWAY));
                } else if fresh {
                    self.model.conns.insert(id(c), MConn::new(now));
                }
            }
            Op::ConnectRefused(c) => {
                let fresh = !self.model.conns.contains_key(&id(c));
                let result = self.hub.handle_connect_refused(
                    id(c),
                    CloseCode::TRY_AGAIN_LATER,
                    "not now",
                    now,
                );
                assert_eq!(result.is_ok(), fresh);
                if fresh {
                    let code = if self.model.shutting_down {
                        CloseCode::GOING_AWAY
                    } else {
                        CloseCode::TRY_AGAIN_LATER
                    };
                    expect.closes.insert((id(c), code));
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
            Op::Accept(c, user, ref acl) => {
                let mut identity = match user {
                    Some(u) => Identity::user(USERS[u]),
                    None => Identity::anonymous(),
                };
                let acl: Option<Vec<String>> =
                    acl.as_ref().map(|list| list.iter().map(|r| ROOMS[*r].to_owned()).collect());
                if let Some(list) = &acl {
                    identity.rooms = RoomAcl::Only(list.clone());
                }
                let ok = self.hub.accept_auth(id(c), identity, now).is_ok();
                let m = self.model.conns.get_mut(&id(c));
                let expected = m.as_ref().is_some_and(|m| m.state != MState::Authenticated);
                assert_eq!(ok, expected);
                if let Some(m) = m.filter(|_| expected) {
                    m.state = MState::Authenticated;
                    m.user = user.map(|u| USERS[u].to_owned());
                    m.acl = acl;
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
                let rid = self.step as u64;
                let frame = json!({"event": verb, "data": {"rooms": names}, "id": rid});
                self.frame(c, &frame.to_string());
                if self.authenticated_request(c, rid, &mut expect) == Some(true) {
                    if names.len() > MAX_ROOMS {
                        expect.error(id(c), rid, "too_many_rooms", None);
                    } else {
                        for room in names {
                            let member = self.model.members(room).contains(&id(c));
                            if (!joining || !member) && !self.model.may_join(id(c), room) {
                                expect.error(id(c), rid, "forbidden", Some(room));
                            } else if joining {
                                if !self.model.join(id(c), room) && !member {
                                    expect.error(id(c), rid, "too_many_rooms", Some(room));
                                }
                            } else if let Some(m) = self.model.conns.get_mut(&id(c)) {
                                m.rooms.retain(|r| r != room);
                            }
                        }
                        let rooms = self.model.rooms_of(id(c));
                        let answer = if joining { "joined" } else { "left" };
                        expect.ok(id(c), answer, Some(rid), Some(rooms));
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
                let rid = self.step as u64;
                let frame = json!({"event":"publish","data":{"room":ROOMS[r],"event":event,"excludeSelf":exclude_self},"id":rid});
                self.frame(c, &frame.to_string());
                let members = self.model.members(ROOMS[r]);
                let policy = self.model.policies.of(ROOMS[r]).publish;
                if self.authenticated_request(c, rid, &mut expect) == Some(true) {
                    if policy == PublishPolicy::Server || !members.contains(&id(c)) {
                        expect.error(id(c), rid, "forbidden", Some(ROOMS[r]));
                    } else if policy == PublishPolicy::Checked {
                        expect.requests.push(("publish".into(), id(c), Some(rid.to_string())));
                    } else {
                        let mut to = members;
                        if exclude_self {
                            to.remove(&id(c));
                        }
                        expect.fanout = Some((event.clone(), to));
                    }
                }
            }
            Op::Presence(c, r) => {
                let rid = self.step as u64;
                let frame = json!({"event": "presence", "data": {"room": ROOMS[r]}, "id": rid});
                self.frame(c, &frame.to_string());
                let member = self.model.members(ROOMS[r]).contains(&id(c));
                let policy = self.model.policies.of(ROOMS[r]).presence;
                if self.authenticated_request(c, rid, &mut expect) == Some(true) {
                    if policy == PresencePolicy::Server || !member {
                        expect.error(id(c), rid, "forbidden", Some(ROOMS[r]));
                    } else {
                        let answer = json!({"event": "presence", "id": rid, "code": null, "room": ROOMS[r], "rooms": null});
                        expect.answer(id(c), answer);
                    }
                }
            }
            Op::AcceptPublish(c) => {
                let Some(request) = self.publishing.remove(&id(c)) else {
                    return self.finish(expect, before);
                };
                let result = self.hub.accept_publish(&request, now);
                assert_eq!(result.is_ok(), self.model.conns.contains_key(&id(c)));
                let members = self.model.members(&request.room);
                let rid: u64 = request.id.as_ref().map_or(0, |i| i.as_json().parse().unwrap());
                if result.is_ok() && !members.contains(&id(c)) {
                    expect.error(id(c), rid, "forbidden", Some(&request.room));
                } else if result.is_ok() {
                    let mut to = members;
                    if request.exclude_self {
                        to.remove(&id(c));
                    }
                    expect.fanout = Some((request.event.clone(), to));
                }
            }
            Op::Ask(c) => {
                let rid = self.step as u64;
                self.frame(c, &json!({"event": "ask", "id": rid}).to_string());
                if self.authenticated_request(c, rid, &mut expect) == Some(true) {
                    expect.requests.push(("message".into(), id(c), Some(rid.to_string())));
                }
            }
            Op::Reply(c, ok) => {
                let Some(request) = self.asked.get(&id(c)).cloned() else {
                    return self.finish(expect, before);
                };
                let result = if ok {
                    self.hub.reply(id(c), &request, &1, now)
                } else {
                    self.hub.reply_error(id(c), Some(&request), "nope", "no", now)
                };
                assert_eq!(result.is_ok(), self.model.conns.contains_key(&id(c)));
                if result.is_ok() {
                    let rid: u64 = request.as_json().parse().unwrap();
                    if ok {
                        expect.ok(id(c), "reply", Some(rid), None);
                    } else {
                        expect.error(id(c), rid, "nope", None);
                    }
                }
            }
            Op::Refresh(c) => {
                let rid = self.step as u64;
                let frame = json!({"event": "refresh", "data": {"token": "t"}, "id": rid});
                self.frame(c, &frame.to_string());
                if self.authenticated_request(c, rid, &mut expect) == Some(true) {
                    expect.requests.push(("refresh".into(), id(c), Some(rid.to_string())));
                }
            }
            Op::AcceptRefresh(c, other_user, secs) => {
                let Some(request) = self.refreshing.get(&id(c)).cloned() else {
                    return self.finish(expect, before);
                };
                let user = self.model.conns.get(&id(c)).and_then(|m| m.user.clone());
                let user = if other_user {
                    Some(
                        if user.as_deref() == Some(USERS[0]) { USERS[1] } else { USERS[0] }
                            .to_owned(),
                    )
                } else {
                    user
                };
                let identity = Identity {
                    user_id: user,
                    expires_in: secs.map(Duration::from_secs),
                    ..Identity::anonymous()
                };
                let result = self.hub.accept_refresh(id(c), identity, request.as_ref(), now);
                assert_eq!(result.is_ok(), self.model.authenticated_conn(id(c)));
                let rid: Option<u64> = request.as_ref().map(|i| i.as_json().parse().unwrap());
                if result.is_ok() && other_user {
                    expect.error(id(c), rid, "refresh_rejected", None);
                } else if result.is_ok() {
                    expect.ok(id(c), "refreshed", rid, None);
                    let m = self.model.conns.get_mut(&id(c)).unwrap();
                    // The fresh identity has no rooms list.
                    m.acl = None;
                    m.expires = secs.map(|s| now + Duration::from_secs(s));
                    m.told = false;
                }
            }
            Op::RejectRefresh(c) => {
                let Some(request) = self.refreshing.get(&id(c)).cloned() else {
                    return self.finish(expect, before);
                };
                let result = self.hub.reject_refresh(id(c), "no", request.as_ref(), now);
                assert_eq!(result.is_ok(), self.model.conns.contains_key(&id(c)));
                if result.is_ok() {
                    let rid: Option<u64> = request.as_ref().map(|i| i.as_json().parse().unwrap());
                    expect.error(id(c), rid, "refresh_rejected", None);
                }
            }
            Op::SendToConns(ref conns) => {
                let ids: Vec<ConnId> = conns.iter().map(|c| id(*c)).collect();
                self.hub.send_to_conns(&ids, &event, &(), now).unwrap();
                let to = ids.into_iter().filter(|c| self.model.conns.contains_key(c)).collect();
                expect.fanout = Some((event.clone(), to));
            }
            Op::Violation(c, v) => {
                self.hub.handle_violation(id(c), VIOLATIONS[v], now);
                self.close(id(c), VIOLATIONS[v].close_code(), &mut expect);
            }
            Op::Overload(c) => {
                self.hub.handle_overload(id(c), now);
                self.close(id(c), CloseCode::OVERLOADED, &mut expect);
            }
            Op::SlowConsumer(c) => {
                self.hub.handle_slow_consumer(id(c), now);
                self.close(id(c), CloseCode::SLOW_CONSUMER, &mut expect);
            }
            Op::CloseAll => {
                self.hub.close_all(CloseCode::NORMAL, "bye", now);
                for c in self.model.conns.keys().copied().collect::<Vec<_>>() {
                    self.close(c, CloseCode::NORMAL, &mut expect);
                }
            }
            Op::ShutDown => {
                self.hub.shut_down(now);
                self.model.shutting_down = true;
                for c in self.model.conns.keys().copied().collect::<Vec<_>>() {
                    self.close(c, CloseCode::GOING_AWAY, &mut expect);
                }
            }
            Op::Tick => {
                let next = self.hub.poll_timeout();
                let due = self.model.conns.values().map(MConn::deadline).min();
                if let Some(due) = due {
                    // Never late: the hub wakes up no later than the first deadline.
                    assert!(next.is_some_and(|t| t <= due), "poll_timeout {next:?} after {due:?}");
                }
                if let Some(next) = next {
                    self.now = self.now.max(next);
                    self.hub.handle_timeout(self.now);
                    self.expire(&mut expect);
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
                self.hub.handle_timeout(self.now);
                self.expire(&mut expect);
            }
        }
        self.finish(expect, before);
    }

    fn finish(&mut self, mut expect: Expect, before: Persons) {
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
        let mut answers: BTreeMap<ConnId, Vec<Value>> = BTreeMap::new();
        let mut requests = Vec::new();
        while let Some(output) = self.hub.poll_output() {
            match output {
                Output::Transmit(t) => {
                    assert!(!t.to.is_empty(), "empty transmit");
                    let frame: Value = serde_json::from_slice(&t.frame).unwrap();
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
                    } else if frame.get("id").is_some()
                        || ["token_expiring", "refreshed"]
                            .contains(&frame["event"].as_str().unwrap_or(""))
                    {
                        assert_eq!(t.to.len(), 1, "an answer to one connection: {frame}");
                        answers.entry(t.to[0]).or_default().push(answer(&frame));
                    }
                }
                Output::Close { conn, code, .. } => {
                    assert!(closes.insert((conn, code)), "closed twice")
                }
                Output::Ping(conn) => assert!(pings.insert(conn), "pinged twice"),
                Output::BusSubscribe(ch) => {
                    assert!(self.subscribed.insert(ch.clone()), "subscribed twice to {ch}")
                }
                Output::BusUnsubscribe(ch) => {
                    assert!(self.subscribed.remove(&ch), "unsubscribed from {ch} without interest")
                }
                Output::Event(Event::Disconnected { conn, .. }) => {
                    assert!(disconnected.insert(conn))
                }
                Output::Event(Event::Message { conn, id, .. }) => {
                    requests.push((
                        "message".to_owned(),
                        conn,
                        id.as_ref().map(|i| i.as_json().to_owned()),
                    ));
                    if let Some(id) = id {
                        self.asked.insert(conn, id);
                    }
                }
                Output::Event(Event::Refresh { conn, id, .. }) => {
                    requests.push((
                        "refresh".to_owned(),
                        conn,
                        id.as_ref().map(|i| i.as_json().to_owned()),
                    ));
                    self.refreshing.insert(conn, id);
                }
                Output::Event(Event::Publish(request)) => {
                    let id = request.id.as_ref().map(|i| i.as_json().to_owned());
                    requests.push(("publish".to_owned(), request.conn, id));
                    self.publishing.insert(request.conn, *request);
                }
                Output::BusPublish { .. } | Output::Event(_) => {}
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
        assert_eq!(answers, expect.answers, "answers and notices");
        assert_eq!(requests, expect.requests, "requests handed to the application");
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
    fn hub_agrees_with_the_reference_model_after_every_step(
        policies in policies(),
        ops in proptest::collection::vec(op_or_order(), 1..120),
    ) {
        let mut harness = Harness::with_policies(policies);
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
        vec![Connect(0), Accept(0, None, None), BroadcastAll(Some(0))],
        // Found with six connections; the last of today's four takes the same path.
        vec![Connect(3), Accept(3, None, None), AppJoin(3, 0), Disconnect(3)],
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
fn a_checked_publish_accepted_after_its_sender_left_the_room_is_answered_forbidden() {
    let checked = RoomPolicy { publish: PublishPolicy::Checked, ..RoomPolicy::open() };
    let mut harness = Harness::with_policies(Policies::all(checked));
    for op in [
        Op::Login(0, 0, None),
        Op::Login(1, 1, None),
        Op::Join(0, vec![0]),
        Op::Join(1, vec![0]),
        Op::Publish(0, 0, true),
        Op::AcceptPublish(0),
        Op::Publish(0, 0, false),
        Op::Leave(0, vec![0]),
        Op::AcceptPublish(0),
        Op::Publish(1, 0, true),
        Op::Disconnect(1),
        Op::AcceptPublish(1),
    ] {
        harness.apply(&op);
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
        Op::Accept(0, Some(0), None),
        Op::Accept(1, Some(0), None),
        Op::Accept(2, Some(1), None),
        Op::Join(2, vec![0]),
        Op::Join(0, vec![0]),
        Op::Join(1, vec![0]),
        Op::Leave(0, vec![0]),
        Op::Disconnect(1),
    ] {
        harness.apply(&op);
    }
}

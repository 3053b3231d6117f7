//! Rooms with history on one instance: every message gets the room's next offset, a join is told
//! the room's epoch and newest offset, and a client that comes back with the last offset it saw
//! gets exactly what it missed, in order, before anything newer; or is told `recovered: false`
//! when the history no longer reaches back that far or its epoch changed (a restart).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{conn, json};
use proptest::prelude::*;
use roomcast_core::{
    ConnId, Exclude, HistoryPolicy, Hub, HubConfig, HubError, Output, RoomPolicies, RoomPolicy,
};
use serde_json::{Value, json};

const START_MS: u64 = 1_700_000_000_000;

fn kept(size: u32, ttl: Duration) -> RoomPolicy {
    RoomPolicy { history: Some(HistoryPolicy { size, ttl }), ..RoomPolicy::open() }
}

/// `h:*` keeps 5 messages for a minute; every other room keeps none.
fn config() -> HubConfig {
    HubConfig {
        standalone: true,
        rate_limit: None,
        rooms: RoomPolicies::new(RoomPolicy::open()).with("h:*", kept(5, Duration::from_secs(60))),
        ..HubConfig::default()
    }
}

/// One hub and what it sent each connection.
struct Node {
    hub: Hub,
    now: Instant,
}

impl Node {
    fn start(config: HubConfig, now: Instant, unix_ms: u64) -> Self {
        Self { hub: Hub::new(config, now, unix_ms).unwrap(), now }
    }

    /// The frames each connection got, in order.
    fn drain(&mut self) -> Vec<(ConnId, Value)> {
        let mut got = Vec::new();
        while let Some(output) = self.hub.poll_output() {
            if let Output::Transmit(t) = output {
                for to in t.to {
                    got.push((to, json(&t.frame)));
                }
            }
        }
        got
    }

    fn frames_of(&mut self, c: ConnId) -> Vec<Value> {
        self.drain().into_iter().filter(|(to, _)| *to == c).map(|(_, f)| f).collect()
    }

    fn connect(&mut self, c: ConnId) {
        self.hub.handle_connect(c, self.now).unwrap();
        self.drain();
    }

    /// `c` sends `frame`; what `c` got back (everything else sent meanwhile is dropped).
    fn send(&mut self, c: ConnId, frame: Value) -> Vec<Value> {
        self.input(c, frame);
        self.frames_of(c)
    }

    /// `c` sends `frame`; its outputs wait for a drain.
    fn input(&mut self, c: ConnId, frame: Value) {
        self.hub.handle_frame(c, frame.to_string().as_bytes(), self.now);
    }

    /// The application publishes `{"n": n}` into `room` (its frames wait for a drain).
    fn publish(&mut self, room: &str, n: u64) {
        self.hub.broadcast_room(room, "m", &json!({"n": n}), &Exclude::none(), self.now).unwrap();
    }
}

fn offsets(frames: &[Value]) -> Vec<u64> {
    frames.iter().filter_map(|f| f["offset"].as_u64()).collect()
}

#[test]
fn every_message_into_a_room_with_history_carries_the_rooms_next_offset() {
    let mut node = Node::start(config(), Instant::now(), START_MS);
    let (a, b) = (conn(1), conn(2));
    node.connect(a);
    node.connect(b);
    let joined = node.send(a, json!({"event":"join","data":{"rooms":["h:1","plain"]},"id":1}));
    let stream = &joined[0]["data"]["streams"]["h:1"];
    assert_eq!(joined[0]["data"]["rooms"], json!(["h:1", "plain"]));
    assert_eq!((stream["offset"].clone(), stream["recovered"].clone()), (json!(0), json!(false)));
    assert!(stream["epoch"].is_string(), "{joined:?}");
    assert!(joined[0]["data"]["streams"].get("plain").is_none(), "no history: no stream");
    node.send(b, json!({"event":"join","data":{"rooms":["h:1"]}}));
    for n in 1..=3 {
        node.input(b, json!({"event":"publish","data":{"room":"h:1","event":"chat","data":n}}));
    }
    node.publish("h:1", 4);
    node.publish("plain", 5);
    // a received b's three publishes and the application's, numbered 1 to 4, then the plain
    // room's message without an offset.
    let got = node.frames_of(a);
    assert_eq!(offsets(&got), [1, 2, 3, 4]);
    assert_eq!(got[4], json!({"event":"m","room":"plain","data":{"n":5}}));
    node.input(b, json!({"event":"publish","data":{"room":"h:1","event":"chat","data":5}}));
    let got = node.frames_of(a);
    assert_eq!(got, vec![json!({"event":"chat","room":"h:1","offset":5,"data":5})]);
    assert_eq!(node.hub.history_position("h:1").map(|(o, _)| o), Some(5));
    assert_eq!(node.hub.history_position("plain"), None);
}

#[test]
fn a_client_that_comes_back_with_its_offset_gets_exactly_what_it_missed_then_live_ones() {
    let mut node = Node::start(config(), Instant::now(), START_MS);
    let a = conn(1);
    node.connect(a);
    let joined = node.send(a, json!({"event":"join","data":{"rooms":["h:1"]}}));
    let epoch = joined[0]["data"]["streams"]["h:1"]["epoch"].as_str().unwrap().to_owned();
    node.publish("h:1", 1);
    node.publish("h:1", 2);
    assert_eq!(offsets(&node.frames_of(a)), [1, 2]);
    node.hub.handle_disconnect(a, node.now);
    node.drain();
    for n in 3..=5 {
        node.publish("h:1", n);
    }
    let back = conn(2);
    node.connect(back);
    let recover = json!({"h:1":{"offset":2,"epoch":epoch}});
    let got =
        node.send(back, json!({"event":"join","data":{"rooms":["h:1"],"recover":recover},"id":9}));
    assert_eq!(got[0]["event"], "joined");
    assert_eq!(got[0]["id"], 9);
    assert_eq!(
        got[0]["data"]["streams"]["h:1"],
        json!({"epoch":epoch,"offset":5,"recovered":true})
    );
    assert_eq!(offsets(&got[1..]), [3, 4, 5]);
    assert_eq!(got[1], json!({"event":"m","room":"h:1","offset":3,"data":{"n":3}}));
    node.publish("h:1", 6);
    assert_eq!(offsets(&node.frames_of(back)), [6]);
}

#[test]
fn recovery_is_refused_when_the_history_no_longer_reaches_back_or_the_epoch_changed() {
    let start = Instant::now();
    let mut node = Node::start(config(), start, START_MS);
    let a = conn(1);
    node.connect(a);
    let joined = node.send(a, json!({"event":"join","data":{"rooms":["h:1"]}}));
    let epoch = joined[0]["data"]["streams"]["h:1"]["epoch"].as_str().unwrap().to_owned();
    for n in 1..=8 {
        node.publish("h:1", n);
    }
    node.drain();
    let ask = |offset: u64, epoch: &str| json!({"event":"join","data":{"rooms":["h:1"],"recover":{"h:1":{"offset":offset,"epoch":epoch}}}});
    // Five kept (4..=8): from 3 on it reaches; from 2 on, message 3 is gone.
    let got = node.send(a, ask(3, &epoch));
    assert_eq!(got[0]["data"]["streams"]["h:1"]["recovered"], true);
    assert_eq!(offsets(&got[1..]), [4, 5, 6, 7, 8]);
    let got = node.send(a, ask(2, &epoch));
    assert_eq!(got[0]["data"]["streams"]["h:1"]["recovered"], false);
    assert_eq!(got.len(), 1, "nothing sent when recovery fails: the client resyncs");
    let got = node.send(a, ask(8, "another-epoch"));
    assert_eq!(got[0]["data"]["streams"]["h:1"]["recovered"], false);
    let got = node.send(a, ask(9, &epoch));
    assert_eq!(got[0]["data"]["streams"]["h:1"]["recovered"], false, "an offset never given");
    let got = node.send(a, ask(8, &epoch));
    assert_eq!(
        got[0]["data"]["streams"]["h:1"],
        json!({"epoch":epoch,"offset":8,"recovered":true})
    );
    assert_eq!(got.len(), 1, "nothing missed");

    // A restart: a new hub, a new epoch; the old offsets mean nothing.
    let mut node = Node::start(config(), start, START_MS + 1);
    node.connect(a);
    let got = node.send(a, ask(8, &epoch));
    let stream = &got[0]["data"]["streams"]["h:1"];
    assert_eq!(stream["recovered"], false);
    assert_ne!(stream["epoch"], json!(epoch));
    assert_eq!(stream["offset"], 0);
}

#[test]
fn latest_gives_the_rooms_newest_message_only() {
    let mut node = Node::start(config(), Instant::now(), START_MS);
    let a = conn(1);
    node.connect(a);
    let join =
        json!({"event":"join","data":{"rooms":["h:price"],"recover":{"h:price":{"latest":true}}}});
    let got = node.send(a, join.clone());
    assert_eq!(got[0]["data"]["streams"]["h:price"]["recovered"], false, "nothing yet");
    assert_eq!(got.len(), 1);
    for n in 1..=3 {
        node.publish("h:price", n);
    }
    let b = conn(2);
    node.connect(b);
    let got = node.send(b, join);
    assert_eq!(got[0]["data"]["streams"]["h:price"]["recovered"], true);
    assert_eq!(&got[1..], [json!({"event":"m","room":"h:price","offset":3,"data":{"n":3}})]);
}

#[test]
fn messages_expire_after_their_ttl_and_an_idle_room_forgets_its_stream() {
    let start = Instant::now();
    let mut node = Node::start(config(), start, START_MS);
    node.publish("h:1", 1);
    let (top, epoch) = node.hub.history_position("h:1").map(|(o, e)| (o, e.to_owned())).unwrap();
    assert_eq!((top, node.hub.history_usage().messages), (1, 1), "kept with nobody in the room");
    assert!(node.hub.poll_timeout().is_some_and(|at| at <= start + Duration::from_secs(60)));
    node.now = start + Duration::from_secs(61);
    node.hub.handle_timeout(node.now);
    assert_eq!(node.hub.history_usage().messages, 0);
    assert_eq!(node.hub.history_position("h:1"), None, "nothing kept, nobody in it");
    // The room starts again under a new epoch: an old offset cannot be mistaken for a new one.
    node.publish("h:1", 2);
    let (top, new_epoch) = node.hub.history_position("h:1").unwrap();
    assert_eq!(top, 1);
    assert_ne!(new_epoch, epoch);
}

#[test]
fn all_rooms_together_hold_at_most_max_history_bytes_dropping_the_oldest_first() {
    let config = HubConfig { max_history_bytes: 2_000, ..config() };
    let mut node = Node::start(config, Instant::now(), START_MS);
    for n in 0..40 {
        node.publish(&format!("h:{}", n % 10), n);
    }
    let usage = node.hub.history_usage();
    assert!(usage.bytes <= 2_000, "{usage:?}");
    assert!(usage.dropped > 0 && usage.messages > 0, "{usage:?}");
    // The newest message of the newest room is kept; the oldest room's oldest is gone.
    let a = conn(1);
    node.connect(a);
    let latest = json!({"event":"join","data":{"rooms":["h:9"],"recover":{"h:9":{"latest":true}}}});
    let got = node.send(a, latest);
    assert_eq!(got[1]["data"], json!({"n": 39}));
}

#[test]
fn a_hub_on_a_bus_refuses_history_until_instances_share_a_store() {
    let on_a_bus = HubConfig { standalone: false, ..config() };
    let refused = Hub::new(on_a_bus, Instant::now(), START_MS).err();
    assert!(matches!(refused, Some(HubError::InvalidConfig(_))), "{refused:?}");
    let zero = HubConfig { rooms: RoomPolicies::new(kept(0, Duration::from_secs(1))), ..config() };
    assert!(Hub::new(zero, Instant::now(), START_MS).is_err());
}

/// One step of the model: what happens to the room `h:r`, watched by one client that comes and
/// goes.
#[derive(Debug, Clone)]
enum Step {
    /// The application publishes into the room.
    Publish,
    /// The client's connection goes away.
    Leave,
    /// The client comes back and asks to recover from the last offset it saw.
    Return,
    /// The instance restarts: its history is lost.
    Restart,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![6 => Just(Step::Publish), 2 => Just(Step::Leave), 2 => Just(Step::Return), 1 => Just(Step::Restart)]
}

/// The client: what it saw last, and every message it got (by payload).
struct Client {
    conn: Option<ConnId>,
    seen: Option<(u64, String)>,
    got: Vec<u64>,
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// For any sequence of publishes, departures, returns with recovery and restarts: when the
    /// hub says `recovered`, the client has received every message published while it was away,
    /// exactly once and in order; it says so exactly when the room's history (5 messages, on
    /// this instance since its start) still holds them all.
    #[test]
    fn a_client_that_recovers_has_every_message_exactly_once_in_order(
        steps in prop::collection::vec(step(), 1..60),
        size in 1u32..6,
    ) {
        let config = |size| HubConfig {
            standalone: true,
            rate_limit: None,
            rooms: RoomPolicies::new(kept(size, Duration::from_secs(3600))),
            ..HubConfig::default()
        };
        let start = Instant::now();
        let mut restarts = 0;
        let mut node = Node::start(config(size), start, START_MS);
        // The payloads published since the last restart, in order (payload n is the n-th).
        let mut published: Vec<u64> = Vec::new();
        let mut next_payload = 0;
        let mut next_conn = 1;
        let mut client = Client { conn: None, seen: None, got: Vec::new() };
        // The payloads the client must have, in order (those it was told it recovered).
        let mut expected: Vec<u64> = Vec::new();
        for step in steps {
            match step {
                Step::Publish => {
                    next_payload += 1;
                    node.hub.broadcast_room("r", "m", &next_payload, &Exclude::none(), node.now).unwrap();
                    published.push(next_payload);
                    if client.conn.is_some() {
                        expected.push(next_payload);
                    }
                }
                Step::Leave => {
                    if let Some(c) = client.conn.take() {
                        node.hub.handle_disconnect(c, node.now);
                    }
                }
                Step::Restart => {
                    restarts += 1;
                    node = Node::start(config(size), start, START_MS + restarts);
                    published.clear();
                    client.conn = None;
                }
                Step::Return => {
                    if client.conn.is_some() {
                        continue;
                    }
                    let c = conn(next_conn);
                    next_conn += 1;
                    node.connect(c);
                    let recover = match &client.seen {
                        Some((offset, epoch)) => json!({"r":{"offset":offset,"epoch":epoch}}),
                        None => json!({}),
                    };
                    let join = json!({"event":"join","data":{"rooms":["r"],"recover":recover}});
                    node.hub.handle_frame(c, join.to_string().as_bytes(), node.now);
                    client.conn = Some(c);
                    // The model: recovery must succeed exactly when the client saw an offset of
                    // this instance's stream and at most `size` messages came after it.
                    let missed = client
                        .seen
                        .as_ref()
                        .and_then(|(offset, _)| (published.len() as u64).checked_sub(*offset));
                    let reply = node.frames_of(c);
                    let stream = &reply[0]["data"]["streams"]["r"];
                    let recovered = stream["recovered"].as_bool().unwrap();
                    let epoch = stream["epoch"].as_str().unwrap().to_owned();
                    let should = client.seen.as_ref().is_some_and(|(_, e)| *e == epoch)
                        && missed.is_some_and(|m| m <= u64::from(size));
                    prop_assert_eq!(recovered, should, "seen {:?}, published {:?}", client.seen, published);
                    if recovered {
                        let seen = client.seen.as_ref().map_or(0, |(o, _)| *o) as usize;
                        expected.extend_from_slice(&published[seen..]);
                    } else {
                        // The client resyncs: it starts over from what it gets from now on.
                        expected = client.got.clone();
                    }
                    client.seen = Some((stream["offset"].as_u64().unwrap(), epoch));
                    for frame in &reply[1..] {
                        client.got.push(frame["data"].as_u64().unwrap());
                        client.seen = Some((frame["offset"].as_u64().unwrap(), client.seen.take().unwrap().1));
                    }
                }
            }
            // Live messages to the connected client.
            if let Some(c) = client.conn {
                for frame in node.frames_of(c) {
                    if frame["event"] == "m" {
                        client.got.push(frame["data"].as_u64().unwrap());
                        let epoch = client.seen.take().map(|(_, e)| e).unwrap_or_default();
                        client.seen = Some((frame["offset"].as_u64().unwrap(), epoch));
                    }
                }
            } else {
                node.drain();
            }
            prop_assert_eq!(&client.got, &expected);
        }
    }
}

#[test]
fn a_send_reports_its_offset_and_the_history_reads_in_pages_and_can_be_removed() {
    let mut node = Node::start(config(), Instant::now(), START_MS);
    let now = node.now;
    let sent = node.hub.broadcast_room("h:1", "m", &1, &Exclude::none(), now).unwrap();
    assert_eq!(sent.offset, Some(1));
    let plain = node.hub.broadcast_room("plain", "m", &1, &Exclude::none(), now).unwrap();
    assert_eq!(plain.offset, None);
    for n in 2..=4 {
        node.publish("h:1", n);
    }
    let page = node.hub.history("h:1", 1, 2).unwrap();
    assert_eq!(page.offset, 4);
    let got: Vec<Value> = page.messages.iter().map(json).collect();
    assert_eq!(offsets(&got), [2, 3], "after since, at most limit, oldest first");
    assert!(node.hub.history("plain", 0, 10).is_none());
    let epoch = page.epoch;
    assert!(node.hub.remove_history("h:1"));
    assert_eq!(node.hub.history_usage().messages, 0);
    assert!(node.hub.history("h:1", 0, 10).is_none());
    let sent = node.hub.broadcast_room("h:1", "m", &5, &Exclude::none(), now).unwrap();
    assert_eq!(sent.offset, Some(1), "a new numbering");
    assert_ne!(node.hub.history("h:1", 0, 10).unwrap().epoch, epoch, "under a new epoch");
}

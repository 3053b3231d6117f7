//! The fuzz entry points, behind the `fuzzing` feature (not a stable API): probes that run one
//! untrusted input through the parsers and a live hub, and panic if any invariant breaks. The
//! fuzz targets in `fuzz/` are these functions, and the core's test suite replays every file of
//! the fuzz corpora through them on stable Rust.
//!
//! A probe never panics on bad input itself: a panic means a bug in the hub.

use std::time::{Duration, Instant};

use crate::config::{AuthMode, HubConfig};
use crate::envelope::Envelope;
use crate::hub::{Exclude, Hub};
use crate::id::ConnId;
use crate::identity::{Identity, RoomAcl};
use crate::output::Output;
use crate::policy::{JoinPolicy, PresencePolicy, PublishPolicy, RoomPolicies, RoomPolicy};
use crate::wire::{self, MAX_EVENT_BYTES};

/// Parses `bytes` as a client frame, then feeds it to hubs (anonymous and auth-required) from a
/// connection that shares a room with a bystander.
pub fn client_frame(bytes: &[u8]) {
    if let Ok(frame) = wire::parse_client_frame(bytes) {
        assert!((1..=MAX_EVENT_BYTES).contains(&frame.event.len()));
        if let Some(id) = &frame.id {
            assert!(crate::id::RequestId::from_json(id.as_json()).is_some());
        }
    }
    for auth in [AuthMode::Anonymous, AuthMode::Required] {
        let (mut hub, now, sender, bystander) = hub_with_pair(auth);
        hub.handle_frame(sender, bytes, now);
        check_outputs(&mut hub);
        assert!(hub.connection(bystander).is_some(), "a bystander must never be affected");
        check_indexes(&hub);
    }
}

/// Parses `bytes` as a bus envelope; a valid one must survive a round trip. Then feeds it to a
/// hub with members in several rooms.
pub fn bus_envelope(bytes: &[u8]) {
    if let Ok(envelope) = Envelope::parse(bytes) {
        let encoded = envelope.encode();
        let again = Envelope::parse(&encoded).expect("an encoded envelope parses");
        assert_eq!(again.server_id, envelope.server_id);
        assert_eq!(again.kind, envelope.kind);
        assert_eq!(again.target, envelope.target);
        assert_eq!(again.event, envelope.event);
        assert_eq!(again.exclude, envelope.exclude);
        assert_eq!(again.exclude_users, envelope.exclude_users);
    }
    let (mut hub, now, _, _) = hub_with_pair(AuthMode::Anonymous);
    hub.handle_bus("ws:room:r", bytes, now);
    check_outputs(&mut hub);
    assert_eq!(hub.connection_count(), 2, "an envelope never closes a connection");
    check_indexes(&hub);
    // The same bytes as cluster presence traffic, on each kind of presence channel.
    let config =
        HubConfig { cluster_presence: true, server_id: "probe".into(), ..HubConfig::default() };
    if let Ok(mut hub) = Hub::new(config, now, 0) {
        for conn in [ConnId::from_u128(1), ConnId::from_u128(2)] {
            assert!(hub.handle_connect(conn, now).is_ok() && hub.join(conn, "r", now).is_ok());
        }
        for channel in ["ws:presence:r", "ws:server:probe", "ws:peers"] {
            hub.handle_bus(channel, bytes, now);
            check_outputs(&mut hub);
        }
        // Past every peer's timeout (10 s), within the local heartbeat timeout (30 s).
        hub.handle_timeout(now + Duration::from_secs(11));
        check_outputs(&mut hub);
        assert_eq!(hub.presence("r").len(), 2, "remote entries expire with their peer");
        check_indexes(&hub);
    }
}

/// The hub the input fuzzer drives: authentication required, few rooms per connection, and a
/// room of each policy: r0 open (the default), r1 the server's, r2 a token's, r3 published by
/// the server, r4 presence for the server.
fn fuzzed_config() -> HubConfig {
    let open = RoomPolicy::open();
    let rooms = RoomPolicies::new(open)
        .with("r1", RoomPolicy::server_only())
        .with("r2", RoomPolicy { join: JoinPolicy::Token, ..open })
        .with("r3", RoomPolicy { publish: PublishPolicy::Server, ..open })
        .with("r*4", RoomPolicy { presence: PresencePolicy::Server, ..open });
    HubConfig { auth: AuthMode::Required, max_rooms_per_conn: 4, rooms, ..HubConfig::default() }
}

/// Reads `bytes` as a program of hub inputs (connects, frames cut from the input itself,
/// application calls, envelopes, time) and checks the indexes after each.
pub fn hub_inputs(bytes: &[u8]) {
    let start = Instant::now();
    let Ok(mut hub) = Hub::new(fuzzed_config(), start, 0) else { return };
    let mut now = start;
    let mut rest = bytes;
    while let [op, arg, tail @ ..] = rest {
        rest = tail;
        let conn = ConnId::from_u128(u128::from(arg % 8));
        let room = ["r0", "r1", "r2", "r3", "r4"][usize::from(arg % 5)];
        match op % 12 {
            0 => drop(hub.handle_connect(conn, now)),
            1 => {
                // Some identities list rooms (r2, and a pattern).
                let listed = RoomAcl::Only(vec!["r2".into(), "r*".into()]);
                let rooms = if arg % 2 == 0 { RoomAcl::Any } else { listed };
                let identity = Identity { rooms, ..Identity::user(format!("u{}", arg % 3)) };
                drop(hub.accept_auth(conn, identity, now));
            }
            2 => drop(hub.join(conn, room, now)),
            3 => drop(hub.leave(conn, room, now)),
            4 => drop(hub.broadcast_room(room, "e", &arg, &Exclude::conn(conn), now)),
            5 => hub.handle_disconnect(conn, now),
            6 => {
                now += Duration::from_millis(u64::from(*arg) * 100);
                hub.handle_timeout(now);
            }
            7 => {
                // The next `arg` bytes are a frame.
                let len = usize::from(*arg).min(rest.len());
                let (frame, tail) = rest.split_at(len);
                rest = tail;
                hub.handle_frame(conn, frame, now);
            }
            8 => {
                let len = usize::from(*arg).min(rest.len());
                let (payload, tail) = rest.split_at(len);
                rest = tail;
                hub.handle_bus("ws:broadcast", payload, now);
            }
            9 => {
                let frame = format!(r#"{{"event":"join","data":{{"rooms":["{room}"]}}}}"#);
                hub.handle_frame(conn, frame.as_bytes(), now);
            }
            10 => {
                let frame =
                    format!(r#"{{"event":"publish","data":{{"room":"{room}","event":"p"}}}}"#);
                hub.handle_frame(conn, frame.as_bytes(), now);
            }
            _ => hub.handle_frame(conn, br#"{"event":"authenticate","data":{"token":"t"}}"#, now),
        }
        check_outputs(&mut hub);
        check_indexes(&hub);
    }
}

fn hub_with_pair(auth: AuthMode) -> (Hub, Instant, ConnId, ConnId) {
    let now = Instant::now();
    let config = HubConfig { auth, server_id: "probe".into(), ..HubConfig::default() };
    let mut hub = match Hub::new(config, now, 0) {
        Ok(hub) => hub,
        Err(e) => unreachable!("the probe's configuration is valid: {e}"),
    };
    let (sender, bystander) = (ConnId::from_u128(1), ConnId::from_u128(2));
    for conn in [sender, bystander] {
        let connected = hub.handle_connect(conn, now);
        assert!(connected.is_ok());
        if auth == AuthMode::Required && conn == bystander {
            assert!(hub.accept_auth(conn, Identity::user("b"), now).is_ok());
        }
        if hub.connection(conn).is_some_and(|c| c.state == crate::hub::ConnState::Authenticated) {
            assert!(hub.join(conn, "r", now).is_ok());
        }
    }
    while hub.poll_output().is_some() {}
    (hub, now, sender, bystander)
}

/// Every frame is a JSON object with an event; every transmit has distinct recipients that the
/// hub knows (or closed during the same input); a closed connection is forgotten.
fn check_outputs(hub: &mut Hub) {
    let outputs: Vec<Output> = std::iter::from_fn(|| hub.poll_output()).collect();
    let closed: Vec<ConnId> = outputs
        .iter()
        .filter_map(|o| match o {
            Output::Close { conn, reason, .. } => {
                assert!(reason.len() <= 123);
                assert!(hub.connection(*conn).is_none(), "a closed connection is forgotten");
                Some(*conn)
            }
            _ => None,
        })
        .collect();
    for output in &outputs {
        let Output::Transmit(t) = output else { continue };
        assert!(!t.to.is_empty());
        let mut to = t.to.clone();
        to.sort_unstable();
        to.dedup();
        assert_eq!(to.len(), t.to.len(), "a recipient listed twice");
        // Syntax and the event only: data may hold numbers too big for serde_json's values.
        #[derive(serde::Deserialize)]
        struct Frame {
            #[allow(dead_code)]
            event: String,
        }
        assert!(
            serde_json::from_slice::<Frame>(&t.frame).is_ok(),
            "server frames are JSON with an event"
        );
        assert!(!wire::too_deep(&t.frame), "server frames stay within MAX_DEPTH");
        for conn in &t.to {
            assert!(
                hub.connection(*conn).is_some() || closed.contains(conn),
                "transmit to an unknown connection"
            );
        }
    }
}

/// Both sides of the room index agree.
fn check_indexes(hub: &Hub) {
    let mut memberships = 0;
    for room in hub.rooms() {
        for conn in hub.room_members(room) {
            assert!(hub.rooms_of(conn).any(|r| r == room), "room index and connection disagree");
            memberships += 1;
        }
    }
    let from_conns: usize = hub.connections().map(|c| hub.rooms_of(c).count()).sum();
    assert_eq!(memberships, from_conns);
    for conn in hub.connections() {
        assert!(hub.rooms_of(conn).count() <= hub.config().max_rooms_per_conn);
    }
}

//! Fixtures shared by roomcast's benchmarks.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod client;

use std::time::Instant;

use roomcast_core::{ConnId, Hub, HubConfig};

/// A hub with `members` anonymous connections (ids 0..members), all in room `"room"`, with every
/// output drained. The rate limit is off: benchmarks send far faster than any client may.
pub fn hub_with_room(members: u128, now: Instant) -> Hub {
    let config = HubConfig { rate_limit: None, ..HubConfig::default() };
    let mut hub = match Hub::new(config, now, 0) {
        Ok(hub) => hub,
        Err(e) => unreachable!("the default configuration is valid: {e}"),
    };
    for i in 0..members {
        let conn = ConnId::from_u128(i);
        let joined = hub.handle_connect(conn, now).and_then(|()| hub.join(conn, "room", now));
        assert!(joined.is_ok(), "fixture setup failed");
    }
    drain(&mut hub);
    hub
}

/// The many-small-rooms scenario of `roomcast-load rooms`, in the core alone: `rooms` rooms of
/// `members` members (`members - 1` of `subscribers` subscriber connections, spread as the load
/// generator spreads them, and one of `publishers` publisher connections), standalone, outputs
/// drained. Returns the hub and, per publisher, its id and the rooms it is in.
pub fn hub_with_small_rooms(
    rooms: usize,
    members: usize,
    subscribers: usize,
    publishers: usize,
    now: Instant,
) -> (Hub, Vec<(ConnId, Vec<String>)>) {
    let config = HubConfig {
        rate_limit: None,
        standalone: true,
        max_rooms_per_conn: rooms,
        ..HubConfig::default()
    };
    let mut hub = match Hub::new(config, now, 0) {
        Ok(hub) => hub,
        Err(e) => unreachable!("this configuration is valid: {e}"),
    };
    let total = (subscribers + publishers) as u128;
    for i in 0..total {
        let connected = hub.handle_connect(ConnId::from_u128(i), now);
        assert!(connected.is_ok(), "fixture setup failed");
    }
    let mut owners: Vec<(ConnId, Vec<String>)> = (0..publishers)
        .map(|p| (ConnId::from_u128((subscribers + p) as u128), Vec::new()))
        .collect();
    for room in 0..rooms {
        let name = format!("room-{room}");
        let publisher = room % publishers.max(1);
        let mut joined = hub.join(owners[publisher].0, &name, now);
        for m in 0..members.saturating_sub(1) {
            let subscriber = (room * (members - 1) + m) % subscribers.max(1);
            joined = joined.and(hub.join(ConnId::from_u128(subscriber as u128), &name, now));
        }
        assert!(joined.is_ok(), "fixture setup failed");
        owners[publisher].1.push(name);
    }
    drain(&mut hub);
    (hub, owners)
}

/// Drains every output; returns how many recipients the transmits named in all.
pub fn drain(hub: &mut Hub) -> usize {
    let mut recipients = 0;
    while let Some(output) = hub.poll_output() {
        if let roomcast_core::Output::Transmit(t) = output {
            recipients += t.to.len();
        }
    }
    recipients
}

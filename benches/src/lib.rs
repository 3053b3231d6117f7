//! Fixtures shared by roomcast's benchmarks.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod client;

use std::time::Instant;

use roomcast_core::{
    ConnId, Hub, HubConfig, JoinPolicy, PresencePolicy, PublishPolicy, RoomPolicies, RoomPolicy,
};

/// A hub with `members` anonymous connections (ids 0..members), all in room `"room"`, with every
/// output drained. The rate limit is off: benchmarks send far faster than any client may.
pub fn hub_with_room(members: u128, now: Instant) -> Hub {
    hub_with_room_under(members, RoomPolicies::default(), now)
}

/// [`hub_with_room`] under these room policies (`"room"` must stay open to clients).
pub fn hub_with_room_under(members: u128, rooms: RoomPolicies, now: Instant) -> Hub {
    let mut hub = hub(HubConfig { rate_limit: None, rooms, ..HubConfig::default() }, now);
    for i in 0..members {
        let conn = ConnId::from_u128(i);
        let joined = hub.handle_connect(conn, now).and_then(|()| hub.join(conn, "room", now));
        assert!(joined.is_ok(), "fixture setup failed");
    }
    drain(&mut hub);
    hub
}

/// The rooms of `roomcast-load rooms`: room `r` (named `room-r`) has publisher `r % publishers`
/// and subscribers `r·(members−1) + j` (mod `subscribers`) for `j < members − 1`. Returns each
/// subscriber's rooms and each publisher's.
pub fn small_rooms(
    rooms: usize,
    members: usize,
    subscribers: usize,
    publishers: usize,
) -> (Vec<Vec<String>>, Vec<Vec<String>>) {
    let (subscribers, publishers) = (subscribers.max(1), publishers.max(1));
    let mut sub_rooms = vec![Vec::new(); subscribers];
    let mut pub_rooms = vec![Vec::new(); publishers];
    for r in 0..rooms {
        let name = format!("room-{r}");
        for j in 0..members.saturating_sub(1) {
            sub_rooms[(r * (members - 1) + j) % subscribers].push(name.clone());
        }
        pub_rooms[r % publishers].push(name);
    }
    (sub_rooms, pub_rooms)
}

/// The many-small-rooms scenario of `roomcast-load rooms` ([`small_rooms`]) in the core alone:
/// subscribers are connections `0..subscribers`, publishers the ones after; standalone, outputs
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
    let mut hub = hub(config, now);
    let (sub_rooms, pub_rooms) = small_rooms(rooms, members, subscribers, publishers);
    let conns = sub_rooms.iter().chain(&pub_rooms).enumerate();
    for (i, rooms) in conns {
        let conn = ConnId::from_u128(i as u128);
        let mut joined = hub.handle_connect(conn, now).map_err(|e| e.to_string());
        for room in rooms {
            joined = joined.and(hub.join(conn, room, now).map(|_| ()).map_err(|e| e.to_string()));
        }
        assert!(joined.is_ok(), "fixture setup failed: {joined:?}");
    }
    drain(&mut hub);
    let first = sub_rooms.len() as u128;
    let publishers =
        pub_rooms.into_iter().enumerate().map(|(p, r)| (ConnId::from_u128(first + p as u128), r));
    (hub, publishers.collect())
}

/// A hub for a fixture.
fn hub(config: HubConfig, now: Instant) -> Hub {
    match Hub::new(config, now, 0) {
        Ok(hub) => hub,
        Err(e) => unreachable!("the fixtures' configurations are valid: {e}"),
    }
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

/// The eight rules of `benches/room_rules.toml`, none of which matches a bench's rooms: every
/// lookup reads them all before it takes the (open) default, the policy check at its slowest.
pub fn eight_rules() -> RoomPolicies {
    let open = RoomPolicy::open();
    RoomPolicies::new(open)
        .with("news:*", RoomPolicy { publish: PublishPolicy::Server, ..open })
        .with("team:*:chat", RoomPolicy { join: JoinPolicy::Token, ..open })
        .with("admin", RoomPolicy { join: JoinPolicy::Server, ..open })
        .with("ops:*", RoomPolicy::server_only())
        .with("private:*", RoomPolicy { join: JoinPolicy::Token, ..open })
        .with("game:*:state", RoomPolicy { publish: PublishPolicy::Server, ..open })
        .with("*:archive", RoomPolicy { join: JoinPolicy::Server, ..open })
        .with("support-*", RoomPolicy { presence: PresencePolicy::Server, ..open })
}

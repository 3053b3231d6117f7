//! Joining and leaving rooms: answers, limits, validation, and cleanup on disconnect.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use roomcast_core::sim::Cluster;
use roomcast_core::{Event, HubConfig, HubError};
use serde_json::json;

#[test]
fn join_answers_joined_with_every_room_of_the_connection_in_join_order() {
    let mut cluster = Cluster::new(1, |_| HubConfig::default());
    let a = conn(1);
    connect(&mut cluster, 0, a);
    cluster.frame(0, a, r#"{"event":"join","data":{"rooms":["b","a"]},"id":"j1"}"#).unwrap();
    cluster.frame(0, a, r#"{"event":"join","data":{"rooms":["c","a"]},"id":2}"#).unwrap();
    let frames = frames(&mut cluster, 0, a);
    assert_eq!(frames[0], json!({"event":"joined","id":"j1","data":{"rooms":["b","a"]}}));
    assert_eq!(frames[1], json!({"event":"joined","id":2,"data":{"rooms":["b","a","c"]}}));
    let joined: Vec<_> = cluster
        .take_events(0)
        .into_iter()
        .filter_map(|e| match e {
            Event::Joined { room, .. } => Some(room),
            _ => None,
        })
        .collect();
    assert_eq!(joined, ["b", "a", "c"], "a repeated join emits no second Joined");
}

#[test]
fn leave_answers_left_with_the_remaining_rooms_and_ignores_rooms_not_joined() {
    let mut cluster = Cluster::new(1, |_| HubConfig::default());
    let a = conn(1);
    connect(&mut cluster, 0, a);
    join(&mut cluster, 0, a, &["x", "y", "z"]);
    cluster.frame(0, a, r#"{"event":"leave","data":{"rooms":["y","nope"]}}"#).unwrap();
    assert_eq!(frames(&mut cluster, 0, a), [json!({"event":"left","data":{"rooms":["x","z"]}})]);
    assert_eq!(cluster.hub(0).rooms_of(a).collect::<Vec<_>>(), ["x", "z"]);
}

#[test]
fn invalid_room_names_get_invalid_room_and_valid_ones_in_the_same_frame_still_join() {
    let mut cluster =
        Cluster::new(1, |_| HubConfig { max_room_name_bytes: 4, ..HubConfig::default() });
    let a = conn(1);
    connect(&mut cluster, 0, a);
    cluster.frame(0, a, r#"{"event":"join","data":{"rooms":["","ok","toolong"]}}"#).unwrap();
    let frames = frames(&mut cluster, 0, a);
    assert_eq!(frames.len(), 3);
    assert_eq!(frames[0]["data"]["code"], "invalid_room");
    assert_eq!(frames[0]["data"]["room"], "");
    assert_eq!(frames[1]["data"]["room"], "toolong");
    assert_eq!(frames[2], json!({"event":"joined","data":{"rooms":["ok"]}}));
}

#[test]
fn room_limit_per_connection_is_enforced_for_clients_and_the_application() {
    let mut cluster =
        Cluster::new(1, |_| HubConfig { max_rooms_per_conn: 2, ..HubConfig::default() });
    let a = conn(1);
    connect(&mut cluster, 0, a);
    cluster.frame(0, a, r#"{"event":"join","data":{"rooms":["r1","r2"]}}"#).unwrap();
    cluster.frame(0, a, r#"{"event":"join","data":{"rooms":["r3"]}}"#).unwrap();
    cluster.frame(0, a, r#"{"event":"join","data":{"rooms":["r4","r5","r6"]}}"#).unwrap();
    let frames = frames(&mut cluster, 0, a);
    assert_eq!(frames[1]["data"]["code"], "too_many_rooms");
    assert_eq!(frames[1]["data"]["room"], "r3");
    assert_eq!(frames[2], json!({"event":"joined","data":{"rooms":["r1","r2"]}}));
    // A request naming more rooms than the limit is refused whole, with one error.
    assert_eq!(frames.len(), 4);
    assert_eq!(frames[3]["data"]["code"], "too_many_rooms");
    let now = cluster.now();
    assert!(matches!(cluster.hub(0).join(a, "r3", now), Err(HubError::RoomLimit { max: 2, .. })));
}

#[test]
fn malformed_join_data_is_a_bad_frame() {
    let mut cluster = Cluster::new(1, |_| HubConfig::default());
    let a = conn(1);
    connect(&mut cluster, 0, a);
    for bad in [
        r#"{"event":"join"}"#,
        r#"{"event":"join","data":["r"]}"#,
        r#"{"event":"join","data":{"rooms":"r"}}"#,
        r#"{"event":"join","data":{"rooms":[1]}}"#,
        r#"{"event":"leave","data":{}}"#,
    ] {
        cluster.frame(0, a, bad).unwrap();
    }
    let frames = frames(&mut cluster, 0, a);
    assert_eq!(frames.len(), 5);
    assert!(
        frames.iter().all(|f| f["event"] == "error" && f["data"]["code"] == "bad_frame"),
        "{frames:?}"
    );
}

#[test]
fn disconnect_leaves_every_room_and_frees_empty_rooms_and_users() {
    let mut cluster = Cluster::new(1, |_| HubConfig::default());
    let (a, b) = (conn(1), conn(2));
    connect(&mut cluster, 0, a);
    connect(&mut cluster, 0, b);
    join(&mut cluster, 0, a, &["shared", "mine"]);
    join(&mut cluster, 0, b, &["shared"]);
    cluster.take_events(0);
    let now = cluster.now();
    cluster.hub(0).handle_disconnect(a, now);
    cluster.drive().unwrap();
    let hub = cluster.hub(0);
    assert_eq!(hub.rooms().collect::<Vec<_>>(), ["shared"]);
    assert_eq!(hub.room_members("shared").collect::<Vec<_>>(), [b]);
    assert_eq!(hub.room_size("mine"), 0);
    assert_eq!(hub.connection_count(), 1);
    let events = cluster.take_events(0);
    let names: Vec<String> = events
        .iter()
        .map(|e| match e {
            Event::Left { room, .. } => format!("left {room}"),
            Event::Disconnected { .. } => "disconnected".into(),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(names, ["left shared", "left mine", "disconnected"]);
    // A second report of the same socket's end is harmless.
    cluster.hub(0).handle_disconnect(a, now);
    cluster.drive().unwrap();
    assert!(cluster.take_events(0).is_empty());
}

#[test]
fn application_join_and_leave_report_whether_anything_changed() {
    let mut cluster = Cluster::new(1, |_| HubConfig::default());
    let a = conn(1);
    connect(&mut cluster, 0, a);
    let now = cluster.now();
    let hub = cluster.hub(0);
    assert!(hub.join(a, "r", now).unwrap());
    assert!(!hub.join(a, "r", now).unwrap());
    assert!(hub.leave(a, "r", now).unwrap());
    assert!(!hub.leave(a, "r", now).unwrap());
    assert!(matches!(hub.join(a, "", now), Err(HubError::InvalidRoom { .. })));
    assert!(matches!(hub.leave(conn(9), "r", now), Err(HubError::UnknownConn(_))));
    assert_eq!(hub.room_count(), 0);
}

#[test]
fn a_hundred_thousand_rooms_joined_and_left_give_their_memory_back() {
    let now = std::time::Instant::now();
    let mut hub = roomcast_core::Hub::new(HubConfig::default(), now, 0).unwrap();
    let drain = |hub: &mut roomcast_core::Hub| while hub.poll_output().is_some() {};
    let start = hub.index_capacity();
    // A thousand connections in a hundred rooms each (the most one may join): a hundred
    // thousand distinct rooms at once. (A million takes a minute in a debug build; the shrinking
    // is the same, see members.rs.)
    let conns: Vec<_> = (1..=1_000).map(conn).collect();
    for (n, c) in conns.iter().enumerate() {
        hub.handle_connect(*c, now).unwrap();
        for k in 0..100 {
            hub.join(*c, &format!("r{n}-{k}"), now).unwrap();
        }
        drain(&mut hub);
    }
    assert_eq!(hub.room_count(), 100_000);
    assert!(hub.index_capacity() >= 100_000);
    for (n, c) in conns.iter().enumerate() {
        for k in 0..100 {
            hub.leave(*c, &format!("r{n}-{k}"), now).unwrap();
        }
        hub.handle_disconnect(*c, now);
        drain(&mut hub);
    }
    let end = hub.index_capacity();
    assert!(end <= start + 256, "from {start} to {end}: the rooms' memory is given back");
    assert_eq!((hub.room_count(), hub.connection_count()), (0, 0));
}

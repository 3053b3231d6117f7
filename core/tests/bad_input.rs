//! Bad client input: error frames that keep the connection open, and the documented closes
//! (1003, 1009, 4008) that never disturb the other connections.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use roomcast_core::sim::Cluster;
use roomcast_core::{CloseCode, HubConfig};

#[test]
fn garbage_frames_get_bad_frame_errors_and_the_connection_stays_open() {
    let mut cluster = Cluster::new(1, |_| unlimited());
    let a = conn(1);
    connect(&mut cluster, 0, a);
    let garbage: [&[u8]; 10] = [
        b"",
        b"not json",
        b"[1,2,3]",
        b"\"event\"",
        b"{\"data\":1}",
        b"{\"event\":\"\"}",
        b"{\"event\":null}",
        b"{\"event\":\"x\",\"id\":[1]}",
        b"{\"event\":\"x\"",
        b"\xff\xfe{\"event\":\"x\"}",
    ];
    let now = cluster.now();
    for bytes in garbage {
        cluster.hub(0).handle_frame(a, bytes, now);
    }
    cluster.drive().unwrap();
    let frames = frames(&mut cluster, 0, a);
    assert_eq!(frames.len(), garbage.len());
    for f in &frames {
        assert_eq!(f["event"], "error");
        assert_eq!(f["data"]["code"], "bad_frame");
        assert!(f["data"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    assert!(cluster.record(0).closes.is_empty());
    assert_eq!(cluster.hub(0).connection_count(), 1);
    assert_eq!(cluster.hub(0).stats().bad_frames, garbage.len() as u64);
}

#[test]
fn binary_frame_closes_with_1003() {
    let mut cluster = Cluster::new(1, |_| HubConfig::default());
    let (a, b) = (conn(1), conn(2));
    connect(&mut cluster, 0, a);
    connect(&mut cluster, 0, b);
    let now = cluster.now();
    cluster.hub(0).handle_binary(a, now);
    cluster.drive().unwrap();
    assert_eq!(cluster.record(0).closes, [(a, CloseCode::UNSUPPORTED_DATA)]);
    assert_eq!(cluster.hub(0).connections().collect::<Vec<_>>(), [b]);
}

#[test]
fn frame_over_max_frame_bytes_closes_with_1009() {
    let mut cluster =
        Cluster::new(1, |_| HubConfig { max_frame_bytes: 64, ..HubConfig::default() });
    let a = conn(1);
    connect(&mut cluster, 0, a);
    let exactly = format!(r#"{{"event":"heartbeat","data":"{}"}}"#, "x".repeat(64 - 31));
    assert_eq!(exactly.len(), 64);
    cluster.frame(0, a, &exactly).unwrap();
    assert!(cluster.record(0).closes.is_empty(), "the limit itself is allowed");
    cluster.frame(0, a, &format!("{exactly} ")).unwrap();
    assert_eq!(cluster.record(0).closes, [(a, CloseCode::MESSAGE_TOO_BIG)]);
}

#[test]
fn flood_is_closed_with_4008_while_a_neighbour_keeps_receiving() {
    let mut cluster = Cluster::new(1, |_| limited(10, 5));
    let (flooder, neighbour) = (conn(1), conn(2));
    connect(&mut cluster, 0, flooder);
    connect(&mut cluster, 0, neighbour);
    join(&mut cluster, 0, flooder, &["r"]);
    join(&mut cluster, 0, neighbour, &["r"]);
    let publish = r#"{"event":"publish","data":{"room":"r","event":"spam"}}"#;
    // `join` used one token; four more fit in the burst of five, the fifth is over.
    for _ in 0..4 {
        cluster.frame(0, flooder, publish).unwrap();
    }
    assert!(cluster.record(0).closes.is_empty());
    cluster.frame(0, flooder, publish).unwrap();
    assert_eq!(cluster.record(0).closes, [(flooder, CloseCode::RATE_LIMITED)]);
    assert_eq!(events(&mut cluster, 0, neighbour), ["spam"; 4]);
    let now = cluster.now();
    cluster.hub(0).broadcast_room("r", "still-here", &(), &Default::default(), now).unwrap();
    cluster.drive().unwrap();
    assert_eq!(events(&mut cluster, 0, neighbour), ["still-here"]);
}

#[test]
fn frames_for_unknown_or_closed_connections_are_ignored() {
    let mut cluster = Cluster::new(1, |_| HubConfig::default());
    let ghost = conn(404);
    let now = cluster.now();
    let hub = cluster.hub(0);
    hub.handle_frame(ghost, br#"{"event":"join","data":{"rooms":["r"]}}"#, now);
    hub.handle_pong(ghost, now);
    hub.handle_binary(ghost, now);
    hub.handle_disconnect(ghost, now);
    assert!(hub.poll_output().is_none());
}

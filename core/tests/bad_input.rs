//! Bad client input: error frames that keep the connection open, and the documented closes
//! (1002, 1003, 1007, 1009, 4005, 4008) that never disturb the other connections.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use roomcast_core::sim::Cluster;
use roomcast_core::{CloseCode, ConnId, DisconnectReason, Event, HubConfig, Violation};

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

#[test]
fn every_violation_and_a_slow_consumer_close_with_the_hubs_code_and_reason_counted_by_code() {
    let cases = [
        (Violation::Binary, CloseCode::UNSUPPORTED_DATA),
        (Violation::TooLarge, CloseCode::MESSAGE_TOO_BIG),
        (Violation::Framing("client frames must be masked"), CloseCode::PROTOCOL_ERROR),
        (Violation::InvalidUtf8, CloseCode::INVALID_PAYLOAD),
    ];
    let mut cluster = Cluster::new(1, |_| HubConfig::default());
    let bystander = conn(100);
    connect(&mut cluster, 0, bystander);
    let now = cluster.now();
    for (n, (violation, code)) in cases.iter().enumerate() {
        let c = conn(n as u128 + 1);
        connect(&mut cluster, 0, c);
        cluster.hub(0).handle_violation(c, *violation, now);
        assert_eq!(violation.close_code(), *code);
    }
    let slow = conn(50);
    connect(&mut cluster, 0, slow);
    cluster.hub(0).handle_slow_consumer(slow, now);
    cluster.drive().unwrap();

    let mut expected: Vec<(ConnId, CloseCode)> =
        cases.iter().enumerate().map(|(n, (_, code))| (conn(n as u128 + 1), *code)).collect();
    expected.push((slow, CloseCode::SLOW_CONSUMER));
    assert_eq!(cluster.record(0).closes, expected);
    let reasons: Vec<(ConnId, DisconnectReason)> = cluster
        .take_events(0)
        .into_iter()
        .filter_map(|e| match e {
            Event::Disconnected { conn, reason } => Some((conn, reason)),
            _ => None,
        })
        .collect();
    let closed: Vec<(ConnId, DisconnectReason)> =
        expected.iter().map(|(c, code)| (*c, DisconnectReason::Closed(*code))).collect();
    assert_eq!(reasons, closed, "the application sees the code the hub chose");
    let counted = &cluster.hub(0).stats().closes;
    for code in [1003u16, 1009, 1002, 1007, 4005] {
        assert_eq!(counted.get(&code), Some(&1), "closes counted by code: {counted:?}");
    }
    assert_eq!(cluster.hub(0).connections().collect::<Vec<_>>(), [bystander]);

    // A violation reported for a connection already gone changes nothing.
    cluster.hub(0).handle_violation(slow, Violation::Binary, now);
    cluster.drive().unwrap();
    assert_eq!(cluster.record(0).closes.len(), expected.len());
}

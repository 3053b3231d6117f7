//! Presence across instances (cluster presence), in the deterministic three-hub simulation:
//! every instance sees every member of its rooms, notices cross instances, a person with
//! sessions on two instances is one member, and a crashed instance's members leave everywhere
//! within `peer_timeout`.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use roomcast_core::sim::Cluster;
use roomcast_core::{CloseCode, ConnId, Event, HubConfig, PresenceEvents};
use serde_json::{Value, json};

const PEER_TIMEOUT: Duration = Duration::from_secs(10);

fn cluster(events: PresenceEvents) -> Cluster {
    let mut cluster = Cluster::new(3, |_| HubConfig {
        cluster_presence: true,
        presence_events: events,
        peer_timeout: PEER_TIMEOUT,
        rate_limit: None,
        ..auth_config()
    });
    // First heartbeats: every node learns its peers.
    cluster.advance(Duration::ZERO).unwrap();
    cluster
}

fn members(cluster: &mut Cluster, node: usize, room: &str) -> BTreeSet<(ConnId, Option<String>)> {
    cluster
        .hub(node)
        .presence(room)
        .iter()
        .map(|e| (e.conn, e.user_id.map(str::to_owned)))
        .collect()
}

fn notice(event: &str, c: ConnId, user: &str) -> Value {
    json!({"event":event,"room":"r","data":{"id":c.to_string(),"userId":user}})
}

#[test]
fn every_instance_sees_every_member_of_its_rooms() {
    let mut cluster = cluster(PresenceEvents::Off);
    let (a, b, c) = (conn(1), conn(2), conn(3));
    enter(&mut cluster, 0, a, "ann", &["r"]);
    enter(&mut cluster, 1, b, "bob", &["r"]);
    // Node 2 arrives late: its first member makes it ask for the others' members.
    enter(&mut cluster, 2, c, "cat", &["r"]);
    let all: BTreeSet<_> =
        [(a, Some("ann".into())), (b, Some("bob".into())), (c, Some("cat".into()))].into();
    for node in 0..3 {
        assert_eq!(members(&mut cluster, node, "r"), all, "node {node}");
    }
    // The presence request answers with every instance's members.
    cluster.frame(2, c, r#"{"event":"presence","data":{"room":"r"},"id":1}"#).unwrap();
    let answer = frames(&mut cluster, 2, c).pop().unwrap();
    assert_eq!(answer["data"]["members"].as_array().unwrap().len(), 3);
    // A leave travels too.
    cluster.frame(1, b, r#"{"event":"leave","data":{"rooms":["r"]}}"#).unwrap();
    for node in [0, 2] {
        assert_eq!(members(&mut cluster, node, "r").len(), 2, "node {node}");
    }
    for node in 0..3 {
        assert!(cluster.record(node).interest_errors.is_empty());
    }
}

#[test]
fn notices_cross_instances_and_a_user_on_two_instances_is_one_member() {
    let mut cluster = cluster(PresenceEvents::Users);
    let (watcher, ann0, ann1) = (conn(1), conn(2), conn(3));
    enter(&mut cluster, 2, watcher, "wes", &["r"]);
    enter(&mut cluster, 0, ann0, "ann", &["r"]);
    enter(&mut cluster, 1, ann1, "ann", &["r"]);
    assert_eq!(
        frames(&mut cluster, 2, watcher),
        [notice("member_joined", ann0, "ann")],
        "ann counts once"
    );
    assert!(cluster.take_frames(0, ann0).is_empty(), "ann's sessions hear nothing of each other");
    cluster.frame(0, ann0, r#"{"event":"leave","data":{"rooms":["r"]}}"#).unwrap();
    assert!(cluster.take_frames(2, watcher).is_empty(), "ann is still here on node 1");
    cluster.frame(1, ann1, r#"{"event":"leave","data":{"rooms":["r"]}}"#).unwrap();
    assert_eq!(frames(&mut cluster, 2, watcher), [notice("member_left", ann1, "ann")]);
}

#[test]
fn a_crashed_instance_members_leave_everywhere_within_the_peer_timeout() {
    let mut cluster = cluster(PresenceEvents::Connections);
    let (a, b, c) = (conn(1), conn(2), conn(3));
    enter(&mut cluster, 0, a, "ann", &["r"]);
    enter(&mut cluster, 1, b, "bob", &["r"]);
    enter(&mut cluster, 2, c, "cat", &["r"]);
    for node in [0, 2] {
        cluster.take_frames(node, if node == 0 { a } else { c });
        cluster.take_events(node);
    }
    // Keep the survivors' clients alive while time passes.
    cluster.crash(1);
    let crashed_at = cluster.now();
    let mut left_at = None;
    while left_at.is_none() {
        cluster.advance(Duration::from_millis(500)).unwrap();
        for (node, client) in [(0, a), (2, c)] {
            cluster.frame(node, client, r#"{"event":"heartbeat"}"#).unwrap();
        }
        if members(&mut cluster, 0, "r").len() == 2 {
            left_at = Some(cluster.now());
        }
        assert!(
            cluster.now() - crashed_at <= PEER_TIMEOUT + Duration::from_secs(1),
            "bob never left"
        );
    }
    for (node, client) in [(0, a), (2, c)] {
        assert_eq!(members(&mut cluster, node, "r").len(), 2, "node {node}");
        assert_eq!(frames(&mut cluster, node, client), [notice("member_left", b, "bob")]);
        let events = cluster.take_events(node);
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::PeerGone { server_id } if server_id == "node-1"))
        );
    }
}

#[test]
fn leases_keep_a_quiet_peer_alive_and_its_end_removes_it() {
    let mut cluster = cluster(PresenceEvents::Off);
    let (a, b) = (conn(1), conn(2));
    enter(&mut cluster, 0, a, "ann", &["r"]);
    enter(&mut cluster, 1, b, "bob", &["r"]);
    cluster.crash(1);
    // A lease (e.g. a Redis key) says node 1 lives for another 60 s: it outlives heartbeats.
    let now = cluster.now();
    cluster.hub(0).handle_peer_lease("node-1", now + Duration::from_secs(60), now);
    let pass = |cluster: &mut Cluster, secs: u64| {
        for _ in 0..secs / 5 {
            cluster.advance(Duration::from_secs(5)).unwrap();
            cluster.frame(0, a, r#"{"event":"heartbeat"}"#).unwrap(); // the local client lives on
        }
    };
    pass(&mut cluster, 20);
    assert_eq!(members(&mut cluster, 0, "r").len(), 2, "heartbeats stopped, but the lease holds");
    pass(&mut cluster, 45);
    assert_eq!(members(&mut cluster, 0, "r").len(), 1, "the lease ran out");
}

#[test]
fn an_instance_that_says_goodbye_is_forgotten_at_once_and_its_stale_lease_is_ignored() {
    let mut cluster = cluster(PresenceEvents::Off);
    let (a, b) = (conn(1), conn(2));
    enter(&mut cluster, 0, a, "ann", &["r"]);
    enter(&mut cluster, 1, b, "bob", &["r"]);
    assert_eq!(cluster.hub(0).peers().len(), 2);
    // Node 1 shuts down gracefully: closes its connections, says goodbye, and stops.
    let now = cluster.now();
    cluster.hub(1).close_all(CloseCode::GOING_AWAY, "server shutting down", now);
    cluster.hub(1).retire(now);
    cluster.drive().unwrap();
    cluster.crash(1);
    for node in [0, 2] {
        let peers: Vec<String> = cluster.hub(node).peers().map(|(id, _)| id.to_owned()).collect();
        assert_eq!(peers.len(), 1, "node {node} forgot node-1 without waiting: {peers:?}");
        assert!(!peers.contains(&"node-1".to_owned()));
        let events = cluster.take_events(node);
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::PeerGone { server_id } if server_id == "node-1"))
        );
    }
    assert_eq!(members(&mut cluster, 0, "r").len(), 1);
    // A lease read before node 1 withdrew it arrives late: it does not bring node 1 back.
    let now = cluster.now();
    cluster.hub(0).handle_peer_lease("node-1", now + Duration::from_secs(60), now);
    assert_eq!(cluster.hub(0).peers().len(), 1);
}

#[test]
fn a_goodbye_also_removes_members_a_crashing_shutdown_left_behind() {
    let mut cluster = cluster(PresenceEvents::Connections);
    let (a, b) = (conn(1), conn(2));
    enter(&mut cluster, 0, a, "ann", &["r"]);
    enter(&mut cluster, 1, b, "bob", &["r"]);
    cluster.take_frames(0, a);
    // Node 1 says goodbye with a member still in (its sockets could not all be closed).
    let now = cluster.now();
    cluster.hub(1).retire(now);
    cluster.drive().unwrap();
    cluster.crash(1);
    assert_eq!(members(&mut cluster, 0, "r").len(), 1);
    assert_eq!(frames(&mut cluster, 0, a), [notice("member_left", b, "bob")]);
}

//! Three hubs on one in-memory bus: a room spread over all of them behaves as one room, and
//! exclusions hold on every instance.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use common::*;
use roomcast_core::sim::Cluster;
use roomcast_core::{ConnId, Exclude, Identity};
use serde_json::json;

/// Nine connections, three per node; users: conn n belongs to user `u{n % 3}`, so every user has
/// one session on each node. All of them are in room "r"; conns 1, 2 are also in "small".
fn cluster() -> (Cluster, BTreeMap<ConnId, usize>) {
    let mut cluster = Cluster::new(3, |_| unlimited_auth());
    let mut placement = BTreeMap::new();
    for n in 0..9u128 {
        let (c, node) = (conn(n), (n / 3) as usize);
        cluster.connect(node, c).unwrap();
        let now = cluster.now();
        cluster.hub(node).accept_auth(c, Identity::user(format!("u{}", n % 3)), now).unwrap();
        cluster.drive().unwrap();
        cluster.take_frames(node, c);
        join(&mut cluster, node, c, &["r"]);
        placement.insert(c, node);
    }
    join(&mut cluster, 0, conn(1), &["small"]);
    (cluster, placement)
}

fn unlimited_auth() -> roomcast_core::HubConfig {
    roomcast_core::HubConfig { rate_limit: None, ..auth_config() }
}

/// Every frame every connection got, by connection.
fn inbox(
    cluster: &mut Cluster,
    placement: &BTreeMap<ConnId, usize>,
) -> BTreeMap<ConnId, Vec<serde_json::Value>> {
    placement.iter().map(|(&c, &node)| (c, frames(cluster, node, c))).collect()
}

fn expect_exactly(
    inbox: &BTreeMap<ConnId, Vec<serde_json::Value>>,
    frame: &serde_json::Value,
    receivers: &[u128],
) {
    for (c, frames) in inbox {
        let n = c.as_uuid().as_u128();
        let expected = if receivers.contains(&n) { vec![frame.clone()] } else { vec![] };
        assert_eq!(frames, &expected, "connection {n}");
    }
}

#[test]
fn client_publish_reaches_every_member_on_every_node_once_except_the_sender() {
    let (mut cluster, placement) = cluster();
    cluster
        .frame(1, conn(4), r#"{"event":"publish","data":{"room":"r","event":"hi","data":"x"}}"#)
        .unwrap();
    let inbox = inbox(&mut cluster, &placement);
    expect_exactly(&inbox, &json!({"event":"hi","room":"r","data":"x"}), &[0, 1, 2, 3, 5, 6, 7, 8]);
}

#[test]
fn exclusion_of_a_connection_on_another_node_holds_cluster_wide() {
    let (mut cluster, placement) = cluster();
    let now = cluster.now();
    let exclude = Exclude { conns: vec![conn(7), conn(0)], users: vec![] };
    cluster.hub(1).broadcast_room("r", "e", &1, &exclude, now).unwrap();
    cluster.drive().unwrap();
    let inbox = inbox(&mut cluster, &placement);
    expect_exactly(&inbox, &json!({"event":"e","room":"r","data":1}), &[1, 2, 3, 4, 5, 6, 8]);
}

#[test]
fn exclude_user_leaves_out_every_session_of_the_sender_on_every_node() {
    let (mut cluster, placement) = cluster();
    // conn 4 is user u1, whose sessions are 1, 4 and 7.
    cluster
        .frame(
            1,
            conn(4),
            r#"{"event":"publish","data":{"room":"r","event":"e","excludeUser":true}}"#,
        )
        .unwrap();
    let inbox = inbox(&mut cluster, &placement);
    expect_exactly(&inbox, &json!({"event":"e","room":"r"}), &[0, 2, 3, 5, 6, 8]);
}

#[test]
fn user_client_and_server_wide_sends_cross_nodes() {
    let (mut cluster, placement) = cluster();
    let now = cluster.now();
    cluster.hub(2).send_to_user("u2", "to-user", &(), now).unwrap();
    cluster.drive().unwrap();
    expect_exactly(&inbox(&mut cluster, &placement), &json!({"event":"to-user"}), &[2, 5, 8]);

    cluster.hub(2).send(conn(1), "to-client", &(), now).unwrap();
    cluster.drive().unwrap();
    expect_exactly(&inbox(&mut cluster, &placement), &json!({"event":"to-client"}), &[1]);

    cluster.hub(0).broadcast_all("all", &(), &Exclude::conn(conn(8)), now).unwrap();
    cluster.drive().unwrap();
    expect_exactly(
        &inbox(&mut cluster, &placement),
        &json!({"event":"all"}),
        &[0, 1, 2, 3, 4, 5, 6, 7],
    );
}

#[test]
fn a_node_without_members_of_a_room_neither_subscribes_nor_receives_it() {
    let (mut cluster, placement) = cluster();
    assert!(cluster.record(0).subscriptions.contains("ws:room:small"));
    assert!(!cluster.record(1).subscriptions.contains("ws:room:small"));
    let now = cluster.now();
    let node1_bus_in = cluster.hub(1).stats().bus_in;
    cluster.hub(2).broadcast_room("small", "e", &(), &Exclude::none(), now).unwrap();
    cluster.drive().unwrap();
    expect_exactly(&inbox(&mut cluster, &placement), &json!({"event":"e","room":"small"}), &[1]);
    assert_eq!(cluster.hub(1).stats().bus_in, node1_bus_in, "node 1 saw nothing");

    // The last local member leaves: node 0's interest ends, and so does delivery.
    cluster.frame(0, conn(1), r#"{"event":"leave","data":{"rooms":["small"]}}"#).unwrap();
    cluster.take_frames(0, conn(1));
    assert!(!cluster.record(0).subscriptions.contains("ws:room:small"));
    let bus_in = cluster.hub(0).stats().bus_in;
    cluster.hub(2).broadcast_room("small", "e", &(), &Exclude::none(), now).unwrap();
    cluster.drive().unwrap();
    assert_eq!(cluster.hub(0).stats().bus_in, bus_in, "no envelope reached node 0");
    for i in 0..3 {
        assert!(cluster.record(i).interest_errors.is_empty());
    }
}

#[test]
fn order_is_kept_per_publisher_across_nodes() {
    let (mut cluster, _) = cluster();
    for i in 0..20 {
        let frame =
            format!(r#"{{"event":"publish","data":{{"room":"r","event":"seq","data":{i}}}}}"#);
        let now = cluster.now();
        cluster.hub(0).handle_frame(conn(0), frame.as_bytes(), now);
    }
    cluster.drive().unwrap();
    for (node, c) in [(0, conn(1)), (1, conn(3)), (2, conn(8))] {
        let seq: Vec<i64> =
            frames(&mut cluster, node, c).iter().map(|f| f["data"].as_i64().unwrap()).collect();
        assert_eq!(seq, (0..20).collect::<Vec<_>>());
    }
}

//! Cluster-wide queries and orders with honest partial answers, in the three-hub simulation.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use roomcast_core::sim::Cluster;
use roomcast_core::{CloseCode, ConnId, Event, HubConfig, Query, QueryResult, Target};

fn cluster() -> Cluster {
    let mut cluster = Cluster::new(3, |_| HubConfig {
        cluster_presence: true,
        rate_limit: None,
        ..auth_config()
    });
    cluster.advance(Duration::ZERO).unwrap(); // first heartbeats: every node knows the others
    cluster
}

fn result(cluster: &mut Cluster, node: usize) -> Option<QueryResult> {
    cluster.take_events(node).into_iter().find_map(|e| match e {
        Event::QueryDone(result) => Some(*result),
        _ => None,
    })
}

#[test]
fn a_query_completes_as_soon_as_every_instance_has_answered() {
    let mut cluster = cluster();
    for (node, n) in [(0, 1), (1, 2), (2, 3)] {
        enter(&mut cluster, node, conn(n), &format!("u{n}"), &["r"]);
    }
    let now = cluster.now();
    cluster.hub(0).query(Query::Members { room: "r".into() }, Duration::from_secs(5), now);
    cluster.drive().unwrap();
    let answer = result(&mut cluster, 0).expect("complete without waiting for the deadline");
    assert!(answer.missing.is_empty());
    let mut found: Vec<(String, ConnId)> =
        answer.members.iter().map(|m| (m.server_id.clone(), m.conn)).collect();
    found.sort();
    assert_eq!(
        found,
        [("node-0".into(), conn(1)), ("node-1".into(), conn(2)), ("node-2".into(), conn(3))]
    );
}

#[test]
fn an_instance_that_does_not_answer_is_named_missing_at_the_deadline() {
    let mut cluster = cluster();
    enter(&mut cluster, 0, conn(1), "ann", &["r"]);
    enter(&mut cluster, 1, conn(2), "ann", &["r"]);
    enter(&mut cluster, 2, conn(3), "ann", &["r"]);
    cluster.crash(2); // stopped, but its lease has not run out yet
    let now = cluster.now();
    cluster.hub(0).query(Query::Sessions { user: "ann".into() }, Duration::from_secs(2), now);
    cluster.drive().unwrap();
    assert!(result(&mut cluster, 0).is_none(), "still waiting for node-2");
    cluster.advance(Duration::from_secs(2)).unwrap();
    let answer = result(&mut cluster, 0).expect("the deadline completes it");
    assert_eq!(answer.missing, ["node-2"]);
    let mut sessions: Vec<ConnId> = answer.members.iter().map(|m| m.conn).collect();
    sessions.sort();
    assert_eq!(sessions, [conn(1), conn(2)]);
}

#[test]
fn disconnect_join_and_leave_act_on_every_instance() {
    let mut cluster = cluster();
    enter(&mut cluster, 0, conn(1), "ann", &["r"]);
    enter(&mut cluster, 2, conn(2), "ann", &["r"]);
    enter(&mut cluster, 2, conn(3), "bob", &["r"]);
    let now = cluster.now();

    cluster.hub(0).query(
        Query::Join { target: Target::Conn(conn(3)), room: "x".into() },
        Duration::from_secs(5),
        now,
    );
    cluster.drive().unwrap();
    assert_eq!(result(&mut cluster, 0).unwrap().affected, 1);
    assert!(cluster.hub(2).rooms_of(conn(3)).any(|r| r == "x"));

    cluster.hub(0).query(
        Query::Leave { target: Target::Conn(conn(3)), room: "x".into() },
        Duration::from_secs(5),
        now,
    );
    cluster.drive().unwrap();
    assert_eq!(result(&mut cluster, 0).unwrap().affected, 1);
    assert!(!cluster.hub(2).rooms_of(conn(3)).any(|r| r == "x"));

    cluster.hub(1).query(
        Query::Disconnect { target: Target::User("ann".into()) },
        Duration::from_secs(5),
        now,
    );
    cluster.drive().unwrap();
    let answer = result(&mut cluster, 1).unwrap();
    assert_eq!((answer.affected, answer.missing.len()), (2, 0));
    assert_eq!(cluster.record(0).closes.last(), Some(&(conn(1), CloseCode::NORMAL)));
    assert_eq!(cluster.record(2).closes.last(), Some(&(conn(2), CloseCode::NORMAL)));
    assert!(cluster.hub(2).connection(conn(3)).is_some(), "bob stays");
}

#[test]
fn without_peers_a_query_answers_at_once_from_this_instance() {
    let mut cluster = Cluster::new(1, |_| HubConfig { rate_limit: None, ..auth_config() });
    enter(&mut cluster, 0, conn(1), "ann", &["r"]);
    let now = cluster.now();
    cluster.hub(0).query(Query::Members { room: "r".into() }, Duration::from_secs(5), now);
    cluster.drive().unwrap();
    let answer = result(&mut cluster, 0).unwrap();
    assert_eq!((answer.members.len(), answer.missing.len()), (1, 0));
}

#[test]
fn a_query_stops_waiting_for_an_instance_that_says_goodbye_and_does_not_name_it_missing() {
    let mut cluster = cluster();
    for (node, n) in [(0, 1), (1, 2), (2, 3)] {
        enter(&mut cluster, node, conn(n), "ann", &["r"]);
    }
    cluster.crash(2); // silent for now: node 0's query waits for it
    let now = cluster.now();
    cluster.hub(0).query(Query::Sessions { user: "ann".into() }, Duration::from_secs(5), now);
    cluster.drive().unwrap();
    assert!(result(&mut cluster, 0).is_none(), "still waiting for node-2");
    // Node 2's goodbye reaches the bus (as its last words before exiting).
    cluster.emit("ws:peers", r#"{"serverId":"node-2","op":"goodbye"}"#);
    cluster.drive().unwrap();
    let answer = result(&mut cluster, 0).expect("complete at the goodbye, not at the deadline");
    assert!(answer.missing.is_empty(), "{:?}", answer.missing);
    let mut sessions: Vec<ConnId> = answer.members.iter().map(|m| m.conn).collect();
    sessions.sort();
    assert_eq!(sessions, [conn(1), conn(2)]);
}

#[test]
fn a_goodbye_from_an_instance_that_already_answered_changes_nothing() {
    let mut cluster = cluster();
    for (node, n) in [(0, 1), (1, 2), (2, 3)] {
        enter(&mut cluster, node, conn(n), "ann", &["r"]);
    }
    cluster.crash(2);
    let now = cluster.now();
    cluster.hub(0).query(Query::Sessions { user: "ann".into() }, Duration::from_secs(5), now);
    cluster.drive().unwrap();
    // Node 1 answered already; its goodbye must not complete the query while node 2 is silent.
    cluster.emit("ws:peers", r#"{"serverId":"node-1","op":"goodbye"}"#);
    cluster.drive().unwrap();
    assert!(result(&mut cluster, 0).is_none(), "node-2 has still not answered");
    cluster.advance(Duration::from_secs(5)).unwrap();
    assert_eq!(result(&mut cluster, 0).expect("the deadline").missing, ["node-2"]);
}

#[test]
fn rooms_count_and_connection_queries_sum_and_find_across_instances() {
    let mut cluster = cluster();
    enter(&mut cluster, 0, conn(1), "ann", &["r", "s"]);
    enter(&mut cluster, 1, conn(2), "bob", &["r"]);
    enter(&mut cluster, 2, conn(3), "cy", &["t", "r"]);
    let now = cluster.now();
    let timeout = Duration::from_secs(5);

    cluster.hub(1).query(Query::Rooms, timeout, now);
    cluster.drive().unwrap();
    let rooms = result(&mut cluster, 1).unwrap().rooms;
    let rooms: Vec<(&str, u64)> = rooms.iter().map(|r| (r.name.as_str(), r.members)).collect();
    assert_eq!(rooms, [("r", 3), ("s", 1), ("t", 1)], "sorted by name, members summed");

    cluster.hub(1).query(Query::Count, timeout, now);
    cluster.drive().unwrap();
    assert_eq!(result(&mut cluster, 1).unwrap().affected, 3);

    cluster.hub(0).query(Query::Connection { conn: conn(3) }, timeout, now);
    cluster.drive().unwrap();
    let found = result(&mut cluster, 0).unwrap().members;
    assert_eq!(found.len(), 1, "only the instance holding it answers with it");
    assert_eq!(found[0].server_id, "node-2");
    assert_eq!(found[0].user_id.as_deref(), Some("cy"));
    assert_eq!(found[0].rooms.as_deref(), Some(&["t".to_owned(), "r".to_owned()][..]));

    cluster.hub(0).query(Query::Connection { conn: conn(9) }, timeout, now);
    cluster.drive().unwrap();
    let answer = result(&mut cluster, 0).unwrap();
    assert!(
        answer.members.is_empty() && answer.missing.is_empty(),
        "nowhere, and every instance said so"
    );
}

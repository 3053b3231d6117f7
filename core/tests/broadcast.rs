//! Sends: to a room (publish with excludeSelf / excludeUser, application broadcasts with
//! exclusions), to a connection, to every session of a user, to everyone; one serialization each.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use roomcast_core::sim::Cluster;
use roomcast_core::{ConnId, Event, Exclude, HubConfig, Identity, Output, RequestId};
use serde_json::json;

/// Node 0 with connections 1..=n, all in room "r".
fn room_of(n: u128) -> (Cluster, Vec<ConnId>) {
    let mut cluster = Cluster::new(1, |_| HubConfig::default());
    let conns: Vec<ConnId> = (1..=n).map(conn).collect();
    for &c in &conns {
        connect(&mut cluster, 0, c);
        join(&mut cluster, 0, c, &["r"]);
    }
    cluster.take_events(0);
    (cluster, conns)
}

#[test]
fn publish_reaches_every_other_member_with_room_set_and_data_byte_exact() {
    let (mut cluster, conns) = room_of(3);
    let data = r#"{"n":12345678901234567890123,"s":"\u00e9","f":1.50}"#;
    cluster
        .frame(
            0,
            conns[0],
            &format!(r#"{{"event":"publish","data":{{"room":"r","event":"msg","data":{data}}}}}"#),
        )
        .unwrap();
    assert!(cluster.take_frames(0, conns[0]).is_empty(), "sender excluded by default");
    for &c in &conns[1..] {
        let frames = cluster.take_frames(0, c);
        assert_eq!(frames.len(), 1);
        assert_eq!(
            std::str::from_utf8(&frames[0]).unwrap(),
            format!(r#"{{"event":"msg","room":"r","data":{data}}}"#)
        );
    }
}

#[test]
fn publish_with_exclude_self_false_reaches_the_sender_too() {
    let (mut cluster, conns) = room_of(2);
    cluster
        .frame(
            0,
            conns[0],
            r#"{"event":"publish","data":{"room":"r","event":"e","excludeSelf":false}}"#,
        )
        .unwrap();
    for &c in &conns {
        assert_eq!(frames(&mut cluster, 0, c), [json!({"event":"e","room":"r"})]);
    }
}

#[test]
fn publish_with_exclude_user_skips_every_session_of_the_sender() {
    let mut cluster = Cluster::new(1, |_| auth_config());
    let (tab1, tab2, other) = (conn(1), conn(2), conn(3));
    for (c, user) in [(tab1, "ann"), (tab2, "ann"), (other, "bob")] {
        cluster.connect(0, c).unwrap();
        let now = cluster.now();
        cluster.hub(0).accept_auth(c, Identity::user(user), now).unwrap();
        cluster.drive().unwrap();
        join(&mut cluster, 0, c, &["r"]);
    }
    cluster
        .frame(0, tab1, r#"{"event":"publish","data":{"room":"r","event":"e","excludeUser":true}}"#)
        .unwrap();
    assert!(cluster.take_frames(0, tab1).is_empty());
    assert!(cluster.take_frames(0, tab2).is_empty());
    assert_eq!(events(&mut cluster, 0, other), ["e"]);
}

#[test]
fn publish_is_forbidden_to_non_members_and_under_reserved_names() {
    let (mut cluster, conns) = room_of(2);
    let outsider = conn(50);
    connect(&mut cluster, 0, outsider);
    cluster
        .frame(0, outsider, r#"{"event":"publish","data":{"room":"r","event":"e"},"id":1}"#)
        .unwrap();
    cluster
        .frame(0, conns[0], r#"{"event":"publish","data":{"room":"r","event":"error"},"id":2}"#)
        .unwrap();
    let out = frames(&mut cluster, 0, outsider);
    assert_eq!(out[0]["data"]["code"], "forbidden");
    assert_eq!(out[0]["id"], 1);
    let member = frames(&mut cluster, 0, conns[0]);
    assert_eq!(member[0]["data"]["code"], "forbidden");
    assert!(cluster.take_frames(0, conns[1]).is_empty(), "nothing was delivered");
}

#[test]
fn a_broadcast_is_serialized_once_for_all_recipients() {
    let (mut cluster, conns) = room_of(50);
    let now = cluster.now();
    cluster
        .hub(0)
        .broadcast_room("r", "tick", &json!({"k": 1}), &Exclude::conn(conns[7]), now)
        .unwrap();
    let mut transmits = Vec::new();
    while let Some(output) = cluster.hub(0).poll_output() {
        if let Output::Transmit(t) = output {
            transmits.push(t);
        }
    }
    assert_eq!(transmits.len(), 1, "one frame for the whole room");
    let t = &transmits[0];
    assert_eq!(t.to.len(), 49);
    assert!(!t.to.contains(&conns[7]));
    let mut sorted = t.to.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 49, "each recipient once");
    assert_eq!(&t.frame[..], br#"{"event":"tick","room":"r","data":{"k":1}}"#);
}

#[test]
fn application_sends_reach_one_connection_a_users_sessions_and_everyone() {
    let mut cluster = Cluster::new(1, |_| auth_config());
    let (a1, a2, b, pending) = (conn(1), conn(2), conn(3), conn(4));
    for (c, user) in [(a1, "ann"), (a2, "ann"), (b, "bob")] {
        cluster.connect(0, c).unwrap();
        let now = cluster.now();
        cluster.hub(0).accept_auth(c, Identity::user(user), now).unwrap();
        cluster.drive().unwrap();
        cluster.take_frames(0, c);
    }
    cluster.connect(0, pending).unwrap();
    let now = cluster.now();
    let hub = cluster.hub(0);
    hub.send(b, "direct", &"hi", now).unwrap();
    hub.send_to_user("ann", "yours", &(), now).unwrap();
    hub.broadcast_all("all", &1, &Exclude::user("bob"), now).unwrap();
    cluster.drive().unwrap();
    assert_eq!(frames(&mut cluster, 0, b), [json!({"event":"direct","data":"hi"})]);
    for c in [a1, a2] {
        assert_eq!(
            frames(&mut cluster, 0, c),
            [json!({"event":"yours"}), json!({"event":"all","data":1})]
        );
    }
    assert!(
        cluster.take_frames(0, pending).is_empty(),
        "unauthenticated connections get no broadcasts"
    );
}

#[test]
fn unknown_events_go_to_the_application_which_may_reply_with_the_same_id() {
    let (mut cluster, conns) = room_of(1);
    let a = conns[0];
    cluster.frame(0, a, r#"{"event":"getTime","data":{"tz":"UTC"},"id":"req-9"}"#).unwrap();
    let events = cluster.take_events(0);
    let [Event::Message { conn: c, event, data, id, .. }] = events.as_slice() else {
        panic!("expected one Message, got {events:?}");
    };
    assert_eq!((*c, event.as_str()), (a, "getTime"));
    assert_eq!(data.as_deref().map(|d| d.get()), Some(r#"{"tz":"UTC"}"#));
    let id: RequestId = id.clone().unwrap();
    let now = cluster.now();
    cluster.hub(0).reply(a, &id, &json!({"now": 5}), now).unwrap();
    cluster.drive().unwrap();
    assert_eq!(
        std::str::from_utf8(&cluster.take_frames(0, a)[0]).unwrap(),
        r#"{"event":"reply","id":"req-9","data":{"now":5}}"#
    );
}

#[test]
fn application_calls_refuse_invalid_names() {
    let (mut cluster, conns) = room_of(1);
    let now = cluster.now();
    let hub = cluster.hub(0);
    assert!(hub.broadcast_room("", "e", &1, &Exclude::none(), now).is_err());
    assert!(hub.broadcast_all("", &1, &Exclude::none(), now).is_err());
    assert!(hub.send(conns[0], &"x".repeat(129), &1, now).is_err());
    assert!(hub.send_to_user("", "e", &1, now).is_err());
    let bad_map: std::collections::HashMap<Vec<u8>, i32> = [(vec![1u8], 1)].into_iter().collect();
    assert!(
        hub.send(conns[0], "e", &bad_map, now).is_err(),
        "non-JSON data is an error, not a panic"
    );
}

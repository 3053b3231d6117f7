//! Presence: who is in a room (the `presence` request and query), and the opt-in notices to the
//! other members, per connection or per user.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use roomcast_core::sim::Cluster;
use roomcast_core::{HubConfig, Identity, PresenceEvents, RoomAcl};
use serde_json::{Value, json};

fn config(events: PresenceEvents) -> HubConfig {
    HubConfig { presence_events: events, rate_limit: None, ..auth_config() }
}

/// Connects `c` as `user` (with metadata naming it) and joins `rooms`; drops its frames.
fn enter(cluster: &mut Cluster, c: roomcast_core::ConnId, user: &str, rooms: &[&str]) {
    cluster.connect(0, c).unwrap();
    let now = cluster.now();
    let metadata = serde_json::value::to_raw_value(&json!({"name": user})).ok();
    cluster.hub(0).accept_auth(c, Identity { metadata, ..Identity::user(user) }, now).unwrap();
    cluster.drive().unwrap();
    join(cluster, 0, c, rooms);
}

fn notice(event: &str, room: &str, c: roomcast_core::ConnId, user: &str) -> Value {
    json!({"event":event,"room":room,"data":{"id":c.to_string(),"userId":user,"info":{"name":user}}})
}

#[test]
fn presence_request_lists_the_members_with_user_and_metadata() {
    let mut cluster = Cluster::new(1, |_| config(PresenceEvents::Off));
    let (a, b) = (conn(1), conn(2));
    enter(&mut cluster, a, "ann", &["r"]);
    enter(&mut cluster, b, "bob", &["r"]);
    cluster.frame(0, a, r#"{"event":"presence","data":{"room":"r"},"id":9}"#).unwrap();
    let answer = frames(&mut cluster, 0, a).pop().unwrap();
    assert_eq!(answer["event"], "presence");
    assert_eq!(answer["id"], 9);
    assert_eq!(answer["data"]["room"], "r");
    assert_eq!(answer["data"]["missing"], json!([]));
    let mut members = answer["data"]["members"].as_array().unwrap().clone();
    members.sort_by_key(|m| m["userId"].as_str().unwrap_or_default().to_owned());
    assert_eq!(
        members,
        [
            json!({"id":a.to_string(),"userId":"ann","info":{"name":"ann"}}),
            json!({"id":b.to_string(),"userId":"bob","info":{"name":"bob"}})
        ]
    );
    assert!(cluster.hub(0).user_online("ann"));
    assert!(!cluster.hub(0).user_online("carol"));
}

#[test]
fn only_members_may_ask_who_is_in_a_room() {
    let mut cluster = Cluster::new(1, |_| config(PresenceEvents::Off));
    let (a, outsider) = (conn(1), conn(2));
    enter(&mut cluster, a, "ann", &["r"]);
    enter(&mut cluster, outsider, "eve", &["other"]);
    cluster.frame(0, outsider, r#"{"event":"presence","data":{"room":"r"},"id":1}"#).unwrap();
    let refused = frames(&mut cluster, 0, outsider).pop().unwrap();
    assert_eq!(
        (refused["data"]["code"].as_str(), refused["id"].as_i64()),
        (Some("forbidden"), Some(1))
    );
    cluster.frame(0, outsider, r#"{"event":"presence","data":{}}"#).unwrap();
    assert_eq!(frames(&mut cluster, 0, outsider).pop().unwrap()["data"]["code"], "bad_frame");
}

#[test]
fn connection_notices_tell_the_other_members_of_each_join_and_leave() {
    let mut cluster = Cluster::new(1, |_| config(PresenceEvents::Connections));
    let (a, b) = (conn(1), conn(2));
    enter(&mut cluster, a, "ann", &["r"]);
    enter(&mut cluster, b, "bob", &["r"]);
    assert_eq!(frames(&mut cluster, 0, a), [notice("member_joined", "r", b, "bob")]);
    assert!(cluster.take_frames(0, b).is_empty(), "the joiner gets `joined`, not a notice");
    let now = cluster.now();
    cluster.hub(0).handle_disconnect(b, now);
    cluster.drive().unwrap();
    assert_eq!(frames(&mut cluster, 0, a), [notice("member_left", "r", b, "bob")]);
}

#[test]
fn user_notices_count_a_person_with_several_sessions_once() {
    let mut cluster = Cluster::new(1, |_| config(PresenceEvents::Users));
    let (watcher, tab1, tab2) = (conn(1), conn(2), conn(3));
    enter(&mut cluster, watcher, "wes", &["r"]);
    enter(&mut cluster, tab1, "ann", &["r"]);
    enter(&mut cluster, tab2, "ann", &["r"]);
    assert_eq!(frames(&mut cluster, 0, watcher), [notice("member_joined", "r", tab1, "ann")]);
    assert!(cluster.take_frames(0, tab2).is_empty(), "ann's first tab hears nothing of her second");
    cluster.frame(0, tab1, r#"{"event":"leave","data":{"rooms":["r"]}}"#).unwrap();
    assert!(cluster.take_frames(0, watcher).is_empty(), "ann is still here through tab2");
    let now = cluster.now();
    cluster.hub(0).handle_disconnect(tab2, now);
    cluster.drive().unwrap();
    assert_eq!(frames(&mut cluster, 0, watcher), [notice("member_left", "r", tab2, "ann")]);
}

#[test]
fn notices_apply_only_to_the_configured_rooms() {
    let mut cluster = Cluster::new(1, |_| HubConfig {
        presence_rooms: RoomAcl::Only(vec!["chat:*".into()]),
        ..config(PresenceEvents::Connections)
    });
    let (a, b) = (conn(1), conn(2));
    enter(&mut cluster, a, "ann", &["chat:1", "feed"]);
    enter(&mut cluster, b, "bob", &["chat:1", "feed"]);
    assert_eq!(frames(&mut cluster, 0, a), [notice("member_joined", "chat:1", b, "bob")]);
}

#[test]
fn presence_notice_names_cannot_be_published_by_clients() {
    let mut cluster = Cluster::new(1, |_| config(PresenceEvents::Connections));
    let a = conn(1);
    enter(&mut cluster, a, "ann", &["r"]);
    for event in ["member_joined", "member_left", "presence"] {
        let frame = json!({"event":"publish","data":{"room":"r","event":event}}).to_string();
        cluster.frame(0, a, &frame).unwrap();
        assert_eq!(frames(&mut cluster, 0, a).pop().unwrap()["data"]["code"], "forbidden");
    }
}

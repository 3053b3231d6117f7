//! Room policies, one kind at a time: who may join (and leave), publish into and ask the presence
//! of a room, allowed and refused, for anonymous and authenticated connections, on one instance
//! and across two. A refused request is answered `forbidden` with its `id` and changes nothing.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use roomcast_core::sim::Cluster;
use roomcast_core::{
    AuthMode, ConnId, HubConfig, Identity, JoinPolicy, PresencePolicy, PublishPolicy, RoomAcl,
    RoomPolicies, RoomPolicy,
};
use serde_json::{Value, json};

/// `open:*` open, `token:*` joined by a token's list, `server:*` server-only, `news:*` joined by
/// anyone and published by the server, `quiet:*` open but presence for the server, `checked:*`
/// published after the application's check; anything else server-only.
fn policies() -> RoomPolicies {
    let open = RoomPolicy::open();
    RoomPolicies::new(RoomPolicy::server_only())
        .with("open:*", open)
        .with("token:*", RoomPolicy { join: JoinPolicy::Token, ..open })
        .with("server:*", RoomPolicy::server_only())
        .with("news:*", RoomPolicy { publish: PublishPolicy::Server, ..open })
        .with("quiet:*", RoomPolicy { presence: PresencePolicy::Server, ..open })
        .with("checked:*", RoomPolicy { publish: PublishPolicy::Checked, ..open })
}

fn cluster(nodes: usize, auth: AuthMode) -> Cluster {
    Cluster::new(nodes, |_| HubConfig { auth, rooms: policies(), ..unlimited() })
}

/// Connects `c` on `node`: authenticated with `identity`, or anonymous when `None`.
fn enter_as(cluster: &mut Cluster, node: usize, c: ConnId, identity: Option<Identity>) {
    cluster.connect(node, c).unwrap();
    if let Some(identity) = identity {
        let now = cluster.now();
        cluster.hub(node).accept_auth(c, identity, now).unwrap();
        cluster.drive().unwrap();
    }
    cluster.take_frames(node, c);
}

fn send(cluster: &mut Cluster, node: usize, c: ConnId, frame: Value) -> Vec<Value> {
    cluster.frame(node, c, &frame.to_string()).unwrap();
    frames(cluster, node, c)
}

fn forbidden(frame: &Value, id: impl Into<Value>, room: &str) {
    assert_eq!(frame["event"], "error", "{frame}");
    assert_eq!(frame["id"], id.into(), "{frame}");
    assert_eq!(frame["data"]["code"], "forbidden", "{frame}");
    assert_eq!(frame["data"]["room"], room, "{frame}");
}

fn rooms(cluster: &mut Cluster, node: usize, c: ConnId) -> Vec<String> {
    let info = cluster.hub(node).connection(c).unwrap();
    info.rooms().map(str::to_owned).collect()
}

#[test]
fn joins_follow_the_policy_for_anonymous_connections() {
    let mut cluster = cluster(1, AuthMode::Anonymous);
    let a = conn(1);
    cluster.connect(0, a).unwrap();
    cluster.take_frames(0, a);
    let rooms_asked = ["open:1", "token:1", "server:1", "news:1", "other"];
    let got = send(&mut cluster, 0, a, json!({"event":"join","data":{"rooms":rooms_asked},"id":7}));
    // Without a rooms list, `token` rooms are closed; `server` rooms and the default always are.
    forbidden(&got[0], 7, "token:1");
    forbidden(&got[1], 7, "server:1");
    forbidden(&got[2], 7, "other");
    assert_eq!(got[3], json!({"event":"joined","id":7,"data":{"rooms":["open:1","news:1"]}}));
    assert_eq!(got.len(), 4);
    assert_eq!(rooms(&mut cluster, 0, a), ["open:1", "news:1"]);
}

#[test]
fn token_rooms_take_exactly_the_rooms_an_identity_lists_and_anyone_rooms_take_everybody() {
    let mut cluster = cluster(1, AuthMode::Required);
    let (listed, unlisted) = (conn(1), conn(2));
    let list = RoomAcl::Only(vec!["token:team1:*".into(), "open:1".into()]);
    enter_as(&mut cluster, 0, listed, Some(Identity { rooms: list, ..Identity::user("u1") }));
    enter_as(&mut cluster, 0, unlisted, Some(Identity::user("u2")));

    let ask = json!({"event":"join","data":{"rooms":["token:team1:chat","token:team2:chat","open:1","open:2"]},"id":"j"});
    let got = send(&mut cluster, 0, listed, ask.clone());
    forbidden(&got[0], "j", "token:team2:chat");
    // A list does not narrow `anyone` rooms: open:2 is not on it, and open.
    assert_eq!(got[1]["data"]["rooms"], json!(["token:team1:chat", "open:1", "open:2"]));
    assert_eq!(got[1]["id"], "j");

    let got = send(&mut cluster, 0, unlisted, ask);
    forbidden(&got[0], "j", "token:team1:chat");
    forbidden(&got[1], "j", "token:team2:chat");
    assert_eq!(got[2]["data"]["rooms"], json!(["open:1", "open:2"]));
}

#[test]
fn a_server_room_is_joined_by_the_application_and_the_client_cannot_leave_it() {
    let mut cluster = cluster(1, AuthMode::Anonymous);
    let a = conn(1);
    enter_as(&mut cluster, 0, a, None);
    let now = cluster.now();
    cluster.hub(0).join(a, "server:support", now).unwrap();
    cluster.hub(0).join(a, "open:lobby", now).unwrap();
    cluster.drive().unwrap();
    cluster.take_frames(0, a);

    let got = send(
        &mut cluster,
        0,
        a,
        json!({"event":"leave","data":{"rooms":["server:support","open:lobby"]},"id":3}),
    );
    forbidden(&got[0], 3, "server:support");
    assert_eq!(got[1], json!({"event":"left","id":3,"data":{"rooms":["server:support"]}}));
    assert_eq!(rooms(&mut cluster, 0, a), ["server:support"]);
    // Joining again what the server put it in is no error: nothing changes.
    let got = send(
        &mut cluster,
        0,
        a,
        json!({"event":"join","data":{"rooms":["server:support"]},"id":4}),
    );
    assert_eq!(got, [json!({"event":"joined","id":4,"data":{"rooms":["server:support"]}})]);
    // The application takes it out.
    let now = cluster.now();
    assert!(cluster.hub(0).leave(a, "server:support", now).unwrap());
}

#[test]
fn publishes_follow_the_policy_and_a_refused_one_reaches_nobody() {
    for nodes in [1, 2] {
        let mut cluster = cluster(nodes, AuthMode::Anonymous);
        let (a, b) = (conn(1), conn(2));
        enter_as(&mut cluster, 0, a, None);
        enter_as(&mut cluster, nodes - 1, b, None);
        let rooms = ["open:1", "news:1"];
        for (node, c) in [(0, a), (nodes - 1, b)] {
            send(&mut cluster, node, c, json!({"event":"join","data":{"rooms":rooms}}));
        }
        // The forgery of a server notice in a room published by the server only.
        let forge = json!({"event":"publish","data":{"room":"news:1","event":"announcement","data":"forged"},"id":9});
        let got = send(&mut cluster, 0, a, forge);
        assert_eq!(got.len(), 1);
        forbidden(&got[0], 9, "news:1");
        assert!(frames(&mut cluster, nodes - 1, b).is_empty(), "b heard a refused publish");

        let chat =
            json!({"event":"publish","data":{"room":"open:1","event":"chat","data":"hi"},"id":10});
        assert!(send(&mut cluster, 0, a, chat).is_empty());
        assert_eq!(
            frames(&mut cluster, nodes - 1, b),
            [json!({"event":"chat","room":"open:1","data":"hi"})],
            "{nodes} node(s)"
        );
        // The application (or the server API) still publishes into the server's room.
        let now = cluster.now();
        let none = roomcast_core::Exclude::default();
        cluster.hub(0).broadcast_room("news:1", "announcement", &"real", &none, now).unwrap();
        cluster.drive().unwrap();
        assert_eq!(
            frames(&mut cluster, nodes - 1, b),
            [json!({"event":"announcement","room":"news:1","data":"real"})]
        );
    }
}

#[test]
fn a_checked_room_hands_the_publish_to_the_application_and_others_do_not() {
    let mut cluster = cluster(1, AuthMode::Anonymous);
    let a = conn(1);
    enter_as(&mut cluster, 0, a, None);
    send(&mut cluster, 0, a, json!({"event":"join","data":{"rooms":["checked:1","open:1"]}}));
    cluster.take_events(0);
    for room in ["checked:1", "open:1"] {
        let publish = json!({"event":"publish","data":{"room":room,"event":"e"},"id":1});
        send(&mut cluster, 0, a, publish);
    }
    let asked: Vec<String> = cluster
        .take_events(0)
        .into_iter()
        .filter_map(|e| match e {
            roomcast_core::Event::Publish(request) => Some(request.room),
            _ => None,
        })
        .collect();
    assert_eq!(asked, ["checked:1"]);
}

#[test]
fn presence_questions_follow_the_policy() {
    for nodes in [1, 2] {
        let mut cluster = cluster(nodes, AuthMode::Required);
        let a = conn(1);
        enter_as(&mut cluster, 0, a, Some(Identity::user("u")));
        send(&mut cluster, 0, a, json!({"event":"join","data":{"rooms":["open:1","quiet:1"]}}));
        let ask = |room: &str| json!({"event":"presence","data":{"room":room},"id":5});
        let got = send(&mut cluster, 0, a, ask("quiet:1"));
        forbidden(&got[0], 5, "quiet:1");
        let got = send(&mut cluster, 0, a, ask("open:1"));
        assert_eq!(got[0]["event"], "presence");
        assert_eq!(got[0]["data"]["members"][0]["userId"], "u");
        // The application still sees who is there.
        assert_eq!(cluster.hub(0).presence("quiet:1").len(), 1);
    }
}

#[test]
fn a_refused_join_on_one_instance_hears_nothing_published_on_the_other() {
    let mut cluster = cluster(2, AuthMode::Anonymous);
    let (a, b) = (conn(1), conn(2));
    enter_as(&mut cluster, 0, a, None);
    enter_as(&mut cluster, 1, b, None);
    let now = cluster.now();
    cluster.hub(0).join(a, "server:ops", now).unwrap();
    cluster.drive().unwrap();
    cluster.take_frames(0, a);
    let got =
        send(&mut cluster, 1, b, json!({"event":"join","data":{"rooms":["server:ops"]},"id":1}));
    forbidden(&got[0], 1, "server:ops");
    let none = roomcast_core::Exclude::default();
    cluster.hub(0).broadcast_room("server:ops", "secret", &1, &none, now).unwrap();
    cluster.drive().unwrap();
    assert_eq!(events(&mut cluster, 0, a), ["secret"]);
    assert!(frames(&mut cluster, 1, b).is_empty());
}

#[test]
fn an_error_answers_the_id_of_a_frame_it_refuses_whenever_the_id_can_be_read() {
    let mut cluster = cluster(1, AuthMode::Anonymous);
    let a = conn(1);
    enter_as(&mut cluster, 0, a, None);
    let long = "x".repeat(129);
    for (frame, id) in [
        (format!(r#"{{"event":"{long}","id":1}}"#), json!(1)),
        (r#"{"event":"join","path":"","id":4}"#.to_owned(), json!(4)),
        (r#"{"event":"","id":"s"}"#.to_owned(), json!("s")),
        (r#"{"id":2}"#.to_owned(), json!(2)),
        // Unreadable: no id to give back.
        (r#"{"event":"x","id":true}"#.to_owned(), Value::Null),
        ("not json".to_owned(), Value::Null),
    ] {
        cluster.frame(0, a, &frame).unwrap();
        let got = frames(&mut cluster, 0, a);
        assert_eq!(got[0]["data"]["code"], "bad_frame", "{frame}");
        assert_eq!(got[0]["id"], id, "{frame}");
    }
}

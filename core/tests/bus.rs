//! The bus side of one hub: exact interest, envelopes out, envelopes in.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use roomcast_core::sim::Cluster;
use std::time::Duration;

use roomcast_core::{AuthMode, Exclude, HubConfig, Identity, PresenceEvents};
use serde_json::{Value, json};

fn subs(cluster: &Cluster, i: usize) -> Vec<String> {
    cluster.record(i).subscriptions.iter().cloned().collect()
}

#[test]
fn interest_follows_the_first_and_last_local_member_exactly() {
    let mut cluster =
        Cluster::new(1, |_| HubConfig { channel_prefix: "app".into(), ..auth_config() });
    let (a, b) = (conn(1), conn(2));
    for c in [a, b] {
        cluster.connect(0, c).unwrap();
        let now = cluster.now();
        cluster.hub(0).accept_auth(c, Identity::user("u1"), now).unwrap();
        cluster.drive().unwrap();
    }
    join(&mut cluster, 0, a, &["r"]);
    join(&mut cluster, 0, b, &["r", "s"]);
    let mut expected = vec![
        "app:broadcast".to_owned(),
        format!("app:client:{a}"),
        format!("app:client:{b}"),
        "app:room:r".into(),
        "app:room:s".into(),
        "app:user:u1".into(),
    ];
    expected.sort();
    assert_eq!(subs(&cluster, 0), expected);
    let mut from_query = cluster.hub(0).subscriptions();
    from_query.sort();
    assert_eq!(from_query, expected, "subscriptions() agrees with the outputs");

    let now = cluster.now();
    cluster.hub(0).handle_disconnect(b, now);
    cluster.drive().unwrap();
    assert_eq!(
        subs(&cluster, 0),
        [
            "app:broadcast".to_owned(),
            format!("app:client:{a}"),
            "app:room:r".into(),
            "app:user:u1".into()
        ]
    );
    cluster.hub(0).handle_disconnect(a, now);
    cluster.drive().unwrap();
    assert!(subs(&cluster, 0).is_empty());
    assert!(cluster.record(0).interest_errors.is_empty());
}

#[test]
fn unauthenticated_connections_create_no_interest() {
    let mut cluster =
        Cluster::new(1, |_| HubConfig { auth: AuthMode::Required, ..HubConfig::default() });
    cluster.connect(0, conn(1)).unwrap();
    assert!(subs(&cluster, 0).is_empty());
}

#[test]
fn broadcasts_are_published_as_ignis_envelopes_with_exclusions() {
    let mut cluster = Cluster::new(1, |_| HubConfig::default());
    let a = conn(1);
    connect(&mut cluster, 0, a);
    let now = cluster.now();
    let exclude = Exclude { conns: vec![a], users: vec!["u9".into()] };
    cluster.hub(0).broadcast_room("r", "e", &json!([1]), &exclude, now).unwrap();
    cluster.hub(0).send(conn(77), "d", &(), now).unwrap();
    cluster.drive().unwrap();
    let published = &cluster.record(0).published;
    assert_eq!(published.len(), 2);
    assert_eq!(published[0].0, "ws:room:r");
    assert_eq!(
        json(&published[0].1),
        json!({"serverId":"node-0","type":"room","target":"r","event":"e","data":[1],
               "exclude":[a.to_string()],"excludeUsers":["u9"]})
    );
    assert_eq!(published[1].0, format!("ws:client:{}", conn(77)));
    assert_eq!(
        json(&published[1].1),
        json!({"serverId":"node-0","type":"client","target":conn(77).to_string(),"event":"d","data":null})
    );
}

#[test]
fn envelopes_from_emitters_reach_the_right_local_connections_and_own_ones_are_ignored() {
    let mut cluster = Cluster::new(1, |_| auth_config());
    let (a, b) = (conn(1), conn(2));
    for (c, user) in [(a, "ann"), (b, "bob")] {
        cluster.connect(0, c).unwrap();
        let now = cluster.now();
        cluster.hub(0).accept_auth(c, Identity::user(user), now).unwrap();
        cluster.drive().unwrap();
        join(&mut cluster, 0, c, &["r"]);
    }
    let emit = |cluster: &mut Cluster, channel: String, envelope: Value| {
        cluster.emit(channel, envelope.to_string());
        cluster.drive().unwrap();
    };
    emit(
        &mut cluster,
        "ws:room:r".into(),
        json!({"serverId":"emitter","type":"room","target":"r","event":"news","data":{"x":1},"exclude":[b.to_string()]}),
    );
    emit(
        &mut cluster,
        "ws:user:bob".into(),
        json!({"serverId":"emitter","type":"user","target":"bob","event":"dm","data":"hey"}),
    );
    emit(
        &mut cluster,
        format!("ws:client:{a}"),
        json!({"serverId":"other","type":"client","target":a.to_string(),"event":"one","data":null}),
    );
    emit(
        &mut cluster,
        "ws:broadcast".into(),
        json!({"serverId":"emitter","type":"broadcast","event":"all","data":0,"excludeUsers":["ann"]}),
    );
    emit(
        &mut cluster,
        "ws:broadcast".into(),
        json!({"serverId":"node-0","type":"broadcast","event":"mine","data":0}),
    );
    emit(&mut cluster, "ws:broadcast".into(), json!({"serverId":"emitter","type":"broadcast"}));
    cluster.emit("ws:broadcast", "\u{0}garbage");
    cluster.drive().unwrap();
    assert_eq!(
        frames(&mut cluster, 0, a),
        [json!({"event":"news","room":"r","data":{"x":1}}), json!({"event":"one"})]
    );
    assert_eq!(
        frames(&mut cluster, 0, b),
        [json!({"event":"dm","data":"hey"}), json!({"event":"all","data":0})]
    );
    let stats = cluster.hub(0).stats();
    assert_eq!((stats.bus_own, stats.bus_invalid), (1, 2));
}

#[test]
fn a_bus_gap_tells_every_member_of_every_room_to_resync_once() {
    let mut cluster = Cluster::new(1, |_| HubConfig::default());
    let (a, b, loner) = (conn(1), conn(2), conn(3));
    for c in [a, b, loner] {
        connect(&mut cluster, 0, c);
    }
    join(&mut cluster, 0, a, &["r", "s"]);
    join(&mut cluster, 0, b, &["r"]);
    let now = cluster.now();
    cluster.hub(0).handle_bus_gap(now);
    cluster.drive().unwrap();
    let resync =
        |room: &str| json!({"event":"resync","room":room,"data":{"reason":"bus_reconnected"}});
    assert_eq!(frames(&mut cluster, 0, a), [resync("r"), resync("s")]);
    assert_eq!(frames(&mut cluster, 0, b), [resync("r")]);
    assert!(cluster.take_frames(0, loner).is_empty(), "not in a room: nothing to resync");
}

#[test]
fn a_standalone_hub_delivers_locally_and_publishes_nothing() {
    let mut cluster = Cluster::new(1, |_| HubConfig { standalone: true, ..unlimited() });
    let (a, b) = (conn(1), conn(2));
    connect(&mut cluster, 0, a);
    connect(&mut cluster, 0, b);
    join(&mut cluster, 0, a, &["r"]);
    join(&mut cluster, 0, b, &["r"]);
    frames(&mut cluster, 0, b);
    let publish = json!({"event":"publish","data":{"room":"r","event":"chat","data":"hi"}});
    cluster.frame(0, a, &publish.to_string()).unwrap();
    let now = cluster.now();
    cluster.hub(0).broadcast_all("news", &json!(1), &Exclude::none(), now).unwrap();
    cluster.drive().unwrap();
    let got: Vec<String> = frames(&mut cluster, 0, b)
        .iter()
        .map(|f| f["event"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(got, ["chat", "news"]);
    assert!(cluster.record(0).published.is_empty(), "nothing can hear a publish");
    assert_eq!(cluster.hub(0).stats().published, 0);
}

#[test]
fn a_standalone_hub_with_cluster_presence_keeps_presence_local_and_outputs_no_bus_traffic() {
    let config = |_| HubConfig {
        standalone: true,
        cluster_presence: true,
        presence_events: PresenceEvents::Connections,
        ..unlimited()
    };
    let mut cluster = Cluster::new(1, config);
    assert!(!cluster.hub(0).config().cluster_presence, "alone: nothing to replicate to");
    let (a, b) = (conn(1), conn(2));
    connect(&mut cluster, 0, a);
    connect(&mut cluster, 0, b);
    join(&mut cluster, 0, a, &["r"]);
    frames(&mut cluster, 0, a);
    join(&mut cluster, 0, b, &["r"]);
    let told: Vec<String> = frames(&mut cluster, 0, a)
        .iter()
        .map(|f| f["event"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(told, ["member_joined"], "presence notices still reach local members");
    cluster.frame(0, a, r#"{"event":"presence","data":{"room":"r"},"id":1}"#).unwrap();
    cluster.drive().unwrap();
    let answer = frames(&mut cluster, 0, a);
    assert_eq!(answer[0]["data"]["members"].as_array().map(Vec::len), Some(2));
    // Heartbeats would be due every few seconds, and peers would time out: none of it happens.
    // The clients stay active meanwhile (a heartbeat each every 10 s), so they are not dropped.
    for _ in 0..6 {
        cluster.advance(Duration::from_secs(10)).unwrap();
        for c in [a, b] {
            cluster.frame(0, c, r#"{"event":"heartbeat"}"#).unwrap();
        }
        cluster.drive().unwrap();
    }
    cluster.frame(0, b, r#"{"event":"leave","data":{"rooms":["r"]},"id":2}"#).unwrap();
    cluster.drive().unwrap();
    let answer = frames(&mut cluster, 0, b);
    assert_eq!(answer.last().map(|f| f["event"].clone()), Some("left".into()), "{answer:?}");
    let told: Vec<Value> = frames(&mut cluster, 0, a).iter().map(|f| f["event"].clone()).collect();
    assert_eq!(told, ["member_left"], "the leave happened, and was told locally");
    assert!(cluster.record(0).published.is_empty(), "no presence sync or heartbeat published");
    assert!(cluster.record(0).subscriptions.is_empty(), "no presence or peer channel");
    assert!(cluster.record(0).interest_errors.is_empty());
}

//! What the application layer needs from the core: server-side joins the client hears of,
//! metadata that changes and is found by a filter on one instance and across the cluster,
//! connections identified at the upgrade, errors with the application's own codes, and the close
//! of a client whose events pile up.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use roomcast_core::sim::Cluster;
use roomcast_core::{
    AuthMode, CloseCode, ConnState, Event, Exclude, HubConfig, HubError, Identity, MetadataFilter,
    Query, RequestId,
};
use serde_json::json;

#[test]
fn a_join_or_leave_by_the_application_is_told_to_the_client_without_an_id() {
    let mut cluster = Cluster::new(1, |_| HubConfig::default());
    let a = conn(1);
    connect(&mut cluster, 0, a);
    let now = cluster.now();
    assert!(cluster.hub(0).join(a, "lobby", now).unwrap());
    assert!(!cluster.hub(0).join(a, "lobby", now).unwrap(), "already in: nothing to tell");
    assert!(cluster.hub(0).join(a, "game", now).unwrap());
    assert!(cluster.hub(0).leave(a, "lobby", now).unwrap());
    assert!(!cluster.hub(0).leave(a, "lobby", now).unwrap());
    cluster.drive().unwrap();
    assert_eq!(
        frames(&mut cluster, 0, a),
        [
            json!({"event":"joined","data":{"rooms":["lobby"]}}),
            json!({"event":"joined","data":{"rooms":["lobby","game"]}}),
            json!({"event":"left","data":{"rooms":["game"]}}),
        ]
    );
}

#[test]
fn metadata_set_later_is_what_views_presence_and_the_filter_see() {
    let mut cluster = Cluster::new(1, |_| HubConfig::default());
    let (a, b, c) = (conn(1), conn(2), conn(3));
    for x in [a, b, c] {
        connect(&mut cluster, 0, x);
    }
    join(&mut cluster, 0, a, &["r"]);
    let now = cluster.now();
    cluster.hub(0).set_metadata(a, &json!({"userType":"player","team":1}), now).unwrap();
    cluster.hub(0).set_metadata(b, &json!({"userType":"viewer"}), now).unwrap();
    cluster.hub(0).set_metadata(c, &json!({"userType":"player","team":2}), now).unwrap();
    assert!(matches!(
        cluster.hub(0).set_metadata(conn(9), &json!({}), now),
        Err(HubError::UnknownConn(_))
    ));

    let info = cluster.hub(0).connection(a).unwrap();
    assert_eq!(info.state, ConnState::Authenticated);
    let parsed = |m: Option<&serde_json::value::RawValue>| {
        m.map(|m| serde_json::from_str::<serde_json::Value>(m.get()).unwrap())
    };
    assert_eq!(parsed(info.metadata), Some(json!({"userType":"player","team":1})));
    assert_eq!((info.connected_at, info.last_activity), (now, now));
    let presence = cluster.hub(0).presence("r");
    assert_eq!(parsed(presence[0].metadata), Some(json!({"userType":"player","team":1})));

    let players = MetadataFilter::new().field("userType", "player");
    let found: Vec<_> =
        cluster.hub(0).connections_matching(&players).iter().map(|e| e.conn).collect();
    assert_eq!(found, [a, c]);
    let team2 = players.clone().field("team", 2);
    let found: Vec<_> =
        cluster.hub(0).connections_matching(&team2).iter().map(|e| e.conn).collect();
    assert_eq!(found, [c]);
    assert_eq!(cluster.hub(0).connections_matching(&MetadataFilter::new()).len(), 3);

    cluster.hub(0).set_metadata(a, &(), now).unwrap(); // null clears it
    assert!(cluster.hub(0).connection(a).unwrap().metadata.is_none());
    assert_eq!(cluster.hub(0).connections_matching(&players).len(), 1);
}

#[test]
fn a_metadata_query_spans_the_cluster_and_updates_reach_the_other_replicas() {
    let mut cluster = Cluster::new(2, |_| HubConfig {
        cluster_presence: true,
        rate_limit: None,
        ..auth_config()
    });
    cluster.advance(Duration::ZERO).unwrap();
    enter(&mut cluster, 0, conn(1), "ann", &["r"]);
    enter(&mut cluster, 1, conn(2), "bob", &["r"]);
    let now = cluster.now();
    cluster.hub(1).set_metadata(conn(2), &json!({"userType":"player"}), now).unwrap();
    cluster.drive().unwrap();
    // node 0's replica of room r sees bob's new metadata, and nobody was told of a join.
    let remote = cluster.hub(0).presence("r");
    let bob = remote.iter().find(|e| e.conn == conn(2)).unwrap();
    assert_eq!(bob.metadata.map(|m| m.get()), Some(r#"{"userType":"player"}"#));
    assert!(events(&mut cluster, 0, conn(1)).is_empty(), "an update is not a join");

    let filter = MetadataFilter::new().field("userType", "player");
    cluster.hub(0).query(Query::Connections { filter }, Duration::from_secs(5), now);
    cluster.drive().unwrap();
    let result = cluster
        .take_events(0)
        .into_iter()
        .find_map(|e| match e {
            Event::QueryDone(r) => Some(r),
            _ => None,
        })
        .unwrap();
    assert!(result.missing.is_empty());
    let found: Vec<_> = result.members.iter().map(|m| (m.server_id.as_str(), m.conn)).collect();
    assert_eq!(found, [("node-1", conn(2))]);
}

#[test]
fn a_connection_identified_at_the_upgrade_is_authenticated_at_once_in_any_auth_mode() {
    for auth in [AuthMode::Required, AuthMode::Anonymous] {
        let mut cluster = Cluster::new(1, |_| HubConfig { auth, ..HubConfig::default() });
        let a = conn(1);
        let now = cluster.now();
        let identity = Identity { metadata: None, ..Identity::user("ann") };
        cluster.hub(0).handle_connect_as(a, identity, now).unwrap();
        cluster.drive().unwrap();
        let got = frames(&mut cluster, 0, a);
        assert_eq!(got[0]["event"], "connected");
        assert_eq!(got[0]["data"]["userId"], "ann");
        assert_eq!(cluster.hub(0).user_connections("ann").collect::<Vec<_>>(), [a]);

        let bad = Identity::user("");
        assert!(matches!(
            cluster.hub(0).handle_connect_as(conn(2), bad, now),
            Err(HubError::InvalidUser)
        ));
        assert!(cluster.hub(0).connection(conn(2)).is_none(), "a refused connection is not opened");
    }
}

#[test]
fn an_application_error_carries_its_own_code_and_the_request_id() {
    let mut cluster = Cluster::new(1, |_| HubConfig::default());
    let a = conn(1);
    connect(&mut cluster, 0, a);
    let now = cluster.now();
    let id = RequestId::from_json("7").unwrap();
    cluster.hub(0).reply_error(a, Some(&id), "not_found", "no such game", now).unwrap();
    cluster.hub(0).reply_error(a, None, "off_board", "x > 7", now).unwrap();
    cluster.drive().unwrap();
    assert_eq!(
        frames(&mut cluster, 0, a),
        [
            json!({"event":"error","id":7,"data":{"code":"not_found","message":"no such game"}}),
            json!({"event":"error","data":{"code":"off_board","message":"x > 7"}}),
        ]
    );
    assert_eq!(cluster.hub(0).connection_count(), 1, "the connection stays open");
}

#[test]
fn a_client_whose_events_pile_up_is_closed_with_4009_and_nobody_else() {
    let mut cluster = Cluster::new(1, |_| HubConfig::default());
    let (a, b) = (conn(1), conn(2));
    connect(&mut cluster, 0, a);
    connect(&mut cluster, 0, b);
    let now = cluster.now();
    cluster.hub(0).handle_overload(a, now);
    cluster.drive().unwrap();
    assert_eq!(cluster.record(0).closes, [(a, CloseCode::OVERLOADED)]);
    assert_eq!(cluster.hub(0).connections().collect::<Vec<_>>(), [b]);
}

#[test]
fn a_send_to_several_rooms_reaches_each_member_once_on_every_instance_minus_the_excepted() {
    let mut cluster = Cluster::new(2, |_| HubConfig::default());
    // node 0: a in r1+r2, b in r2, c in r1+vip; node 1: d in r1+r2, e in r2+vip, f in r3
    let (a, b, c, d, e, f) = (conn(1), conn(2), conn(3), conn(4), conn(5), conn(6));
    for (node, x, rooms) in [
        (0, a, &["r1", "r2"][..]),
        (0, b, &["r2"][..]),
        (0, c, &["r1", "vip"][..]),
        (1, d, &["r1", "r2"][..]),
        (1, e, &["r2", "vip"][..]),
        (1, f, &["r3"][..]),
    ] {
        connect(&mut cluster, node, x);
        join(&mut cluster, node, x, rooms);
    }
    let now = cluster.now();
    cluster
        .hub(0)
        .broadcast_rooms(&["r1", "r2", "r1"], &["vip"], "news", &1, &Exclude::conn(b), now)
        .unwrap();
    cluster.drive().unwrap();
    let got = |cluster: &mut Cluster, node, x| events(cluster, node, x);
    assert_eq!(got(&mut cluster, 0, a), ["news"], "in two of the rooms, once");
    assert!(got(&mut cluster, 0, b).is_empty(), "excluded");
    assert!(got(&mut cluster, 0, c).is_empty(), "in an excepted room");
    assert_eq!(got(&mut cluster, 1, d), ["news"], "once on the other instance too");
    assert!(got(&mut cluster, 1, e).is_empty(), "in an excepted room, on the other instance");
    assert!(got(&mut cluster, 1, f).is_empty(), "in none of the rooms");

    // One room: the frame names it; no rooms: everyone.
    cluster.hub(0).broadcast_rooms(&["r3"], &[], "one", &(), &Exclude::none(), now).unwrap();
    cluster.hub(0).broadcast_rooms(&[], &["r1", "r2"], "all", &(), &Exclude::none(), now).unwrap();
    cluster.drive().unwrap();
    assert_eq!(
        frames(&mut cluster, 1, f),
        [json!({"event":"one","room":"r3"}), json!({"event":"all"})]
    );
    assert!(got(&mut cluster, 0, a).is_empty());
    assert!(matches!(
        cluster.hub(0).broadcast_rooms(&[""], &[], "x", &(), &Exclude::none(), now),
        Err(HubError::InvalidRoom { .. })
    ));
}

#[test]
fn with_own_rooms_a_connection_is_in_a_room_named_by_its_id_without_being_told() {
    let mut cluster = Cluster::new(1, |_| HubConfig { own_room: true, ..HubConfig::default() });
    let a = conn(1);
    connect(&mut cluster, 0, a);
    let now = cluster.now();
    assert_eq!(cluster.hub(0).rooms_of(a).collect::<Vec<_>>(), [a.to_string()]);
    cluster
        .hub(0)
        .broadcast_rooms(&[&a.to_string()], &[], "direct", &1, &Exclude::none(), now)
        .unwrap();
    cluster.drive().unwrap();
    assert_eq!(
        frames(&mut cluster, 0, a),
        [json!({"event":"direct","room":a.to_string(),"data":1})]
    );
}

#[test]
fn a_frame_with_a_path_is_the_applications_whatever_its_name_and_a_bad_path_is_refused() {
    let mut cluster = Cluster::new(1, |_| HubConfig::default());
    let a = conn(1);
    connect(&mut cluster, 0, a);
    cluster.take_events(0);
    let frame = r#"{"event":"join","path":"/chat/general","data":{"name":"ann"},"id":1}"#;
    cluster.frame(0, a, frame).unwrap();
    let messages: Vec<_> = cluster
        .take_events(0)
        .into_iter()
        .filter_map(|e| match e {
            Event::Message { event, path, .. } => Some((event, path)),
            _ => None,
        })
        .collect();
    assert_eq!(messages, [("join".to_owned(), Some("/chat/general".into()))]);
    assert!(cluster.hub(0).rooms_of(a).next().is_none(), "not the system join");

    for bad in [r#"{"event":"x","path":7}"#, r#"{"event":"x","path":""}"#] {
        cluster.frame(0, a, bad).unwrap();
        let got = frames(&mut cluster, 0, a);
        assert_eq!(got[0]["data"]["code"], "bad_frame", "{bad}");
    }
}

#[test]
fn a_send_to_a_list_of_connections_reaches_each_once_wherever_it_is() {
    let mut cluster = Cluster::new(2, |_| HubConfig::default());
    let (a, b, c, d) = (conn(1), conn(2), conn(3), conn(4));
    connect(&mut cluster, 0, a);
    connect(&mut cluster, 0, b);
    connect(&mut cluster, 1, c);
    connect(&mut cluster, 1, d);
    let now = cluster.now();
    cluster.hub(0).send_to_conns(&[a, c, a, conn(9)], "hi", &1, now).unwrap();
    cluster.drive().unwrap();
    assert_eq!(frames(&mut cluster, 0, a), [json!({"event":"hi","data":1})]);
    assert_eq!(frames(&mut cluster, 1, c), [json!({"event":"hi","data":1})]);
    assert!(frames(&mut cluster, 0, b).is_empty());
    assert!(frames(&mut cluster, 1, d).is_empty());
}

#[test]
fn a_connection_refused_at_the_upgrade_is_closed_before_anything_is_sent_to_it() {
    let mut cluster = Cluster::new(1, |_| HubConfig::default());
    let a = conn(1);
    let now = cluster.now();
    cluster.hub(0).handle_connect_refused(a, CloseCode(4003), "banned", now).unwrap();
    cluster.drive().unwrap();
    assert!(frames(&mut cluster, 0, a).is_empty(), "no connected frame");
    assert_eq!(cluster.record(0).closes, [(a, CloseCode(4003))]);
    let gone = cluster.take_events(0).into_iter().any(|e| {
        matches!(e, Event::Disconnected { conn, reason } if conn == a && reason == roomcast_core::DisconnectReason::Closed(CloseCode(4003)))
    });
    assert!(gone);
    assert_eq!(cluster.hub(0).connection_count(), 0);
}

#[test]
fn a_send_reports_its_local_recipients_and_whether_other_instances_may_have_more() {
    use roomcast_core::Sent;
    let standalone = HubConfig { standalone: true, ..HubConfig::default() };
    let mut alone = Cluster::new(1, |_| standalone.clone());
    let mut pair = Cluster::new(2, |_| HubConfig::default());
    let a = conn(1);
    connect(&mut alone, 0, a);
    connect(&mut pair, 0, a);
    let now = alone.now();
    for cluster in [&mut alone, &mut pair] {
        cluster.hub(0).join(a, "r", now).unwrap();
    }
    let none = Exclude::none();
    // Alone: the count is the whole truth.
    let hub = alone.hub(0);
    assert_eq!(
        hub.broadcast_room("r", "e", &(), &none, now).unwrap(),
        Sent { local: 1, published: false, offset: None }
    );
    assert!(hub.send_to_user("ghost", "e", &(), now).unwrap().reached_nobody());
    assert!(hub.send(conn(9), "e", &(), now).unwrap().reached_nobody());
    assert_eq!(hub.send_to_conns(&[a, conn(9)], "e", &(), now).unwrap().local, 1);
    // With a bus, others may have recipients: the send says it went out.
    let hub = pair.hub(0);
    assert_eq!(
        hub.broadcast_room("r", "e", &(), &none, now).unwrap(),
        Sent { local: 1, published: true, offset: None }
    );
    assert_eq!(
        hub.send(a, "e", &(), now).unwrap(),
        Sent { local: 1, published: false, offset: None },
        "here: no envelope"
    );
    assert_eq!(
        hub.send(conn(9), "e", &(), now).unwrap(),
        Sent { local: 0, published: true, offset: None }
    );
    assert!(!hub.send_to_user("ghost", "e", &(), now).unwrap().reached_nobody());
}

#[test]
fn a_path_given_by_the_application_reaches_clients_on_every_instance() {
    let mut cluster = Cluster::new(2, |_| HubConfig::default());
    let (a, b) = (conn(1), conn(2));
    connect(&mut cluster, 0, a);
    connect(&mut cluster, 1, b);
    let now = cluster.now();
    cluster.hub(0).join(a, "r", now).unwrap();
    cluster.hub(1).join(b, "r", now).unwrap();
    cluster.drive().unwrap();
    cluster.take_frames(0, a);
    cluster.take_frames(1, b);
    let none = Exclude::none();
    cluster.hub(0).broadcast_rooms_path(&["r"], &[], "m", Some("/chat/r"), &1, &none, now).unwrap();
    cluster.hub(0).send_path(b, "d", Some("/dm"), &(), now).unwrap();
    cluster.drive().unwrap();
    let expected = json!({"event":"m","room":"r","path":"/chat/r","data":1});
    assert_eq!(frames(&mut cluster, 0, a), std::slice::from_ref(&expected));
    assert_eq!(frames(&mut cluster, 1, b), [expected, json!({"event":"d","path":"/dm"})]);
    assert!(matches!(
        cluster.hub(0).send_path(a, "d", Some(""), &(), now),
        Err(HubError::InvalidPath)
    ));
}

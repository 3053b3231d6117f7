//! The connection lifecycle: unauthenticated → authenticating → authenticated → gone.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use roomcast_core::sim::Cluster;
use roomcast_core::{
    CloseCode, ConnState, DisconnectReason, Event, HubConfig, HubError, Identity, JoinPolicy,
    RoomAcl, RoomPolicies, RoomPolicy,
};
use serde_json::json;

fn authenticate_frame() -> &'static str {
    r#"{"event":"authenticate","data":{"token":"secret","device":"phone"},"id":"a1"}"#
}

#[test]
fn anonymous_connection_gets_connected_at_once_with_null_user() {
    let mut cluster = Cluster::new(1, |_| HubConfig::default());
    let a = conn(1);
    cluster.connect(0, a).unwrap();
    let frames = frames(&mut cluster, 0, a);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0]["event"], "connected");
    assert_eq!(frames[0]["data"]["id"], a.to_string());
    assert_eq!(frames[0]["data"]["userId"], serde_json::Value::Null);
    assert_eq!(frames[0]["data"]["time"], 1_700_000_000_000u64);
    assert!(matches!(cluster.take_events(0).as_slice(), [Event::Connected { user_id: None, .. }]));
}

#[test]
fn authenticate_frame_surfaces_token_and_accept_sends_connected_with_user() {
    let mut cluster = Cluster::new(1, |_| auth_config());
    let a = conn(1);
    cluster.connect(0, a).unwrap();
    assert!(cluster.take_frames(0, a).is_empty(), "nothing before authentication");
    cluster.frame(0, a, authenticate_frame()).unwrap();
    let events = cluster.take_events(0);
    let [Event::Authenticate { conn: c, token, credentials }] = events.as_slice() else {
        panic!("expected one Authenticate event, got {events:?}");
    };
    assert_eq!((*c, token.as_str()), (a, "secret"));
    assert_eq!(credentials.get(), r#"{"token":"secret","device":"phone"}"#);
    assert_eq!(cluster.hub(0).connection(a).unwrap().state, ConnState::Authenticating);

    cluster.advance(Duration::from_millis(1500)).unwrap();
    let now = cluster.now();
    cluster.hub(0).accept_auth(a, Identity::user("u-7"), now).unwrap();
    cluster.drive().unwrap();
    let frames = frames(&mut cluster, 0, a);
    assert_eq!(
        frames,
        [
            json!({"event":"connected","data":{"id":a.to_string(),"userId":"u-7","time":1_700_000_001_500u64}})
        ]
    );
    assert_eq!(cluster.hub(0).user_connections("u-7").collect::<Vec<_>>(), [a]);
}

#[test]
fn only_authenticate_and_heartbeat_are_accepted_before_authentication() {
    let mut cluster = Cluster::new(1, |_| auth_config());
    let a = conn(1);
    cluster.connect(0, a).unwrap();
    cluster.frame(0, a, r#"{"event":"heartbeat"}"#).unwrap();
    assert!(cluster.take_frames(0, a).is_empty());
    cluster.frame(0, a, r#"{"event":"join","data":{"rooms":["r"]},"id":3}"#).unwrap();
    cluster.frame(0, a, r#"{"event":"chat","data":1}"#).unwrap();
    let frames = frames(&mut cluster, 0, a);
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[0]["data"]["code"], "unauthenticated");
    assert_eq!(frames[0]["id"], 3);
    assert_eq!(frames[1]["data"]["code"], "unauthenticated");
    assert_eq!(cluster.hub(0).room_count(), 0);
    assert!(cluster.take_events(0).is_empty(), "no message reaches the app before auth");
}

#[test]
fn reject_closes_with_4003_and_forgets_the_connection() {
    let mut cluster = Cluster::new(1, |_| auth_config());
    let a = conn(1);
    cluster.connect(0, a).unwrap();
    cluster.frame(0, a, authenticate_frame()).unwrap();
    let now = cluster.now();
    cluster.hub(0).reject_auth(a, "bad token", now).unwrap();
    cluster.drive().unwrap();
    assert_eq!(cluster.record(0).closes, [(a, CloseCode::AUTH_REJECTED)]);
    assert_eq!(cluster.hub(0).connection_count(), 0);
    let events = cluster.take_events(0);
    assert!(matches!(
        events.last(),
        Some(Event::Disconnected {
            reason: DisconnectReason::Closed(CloseCode::AUTH_REJECTED),
            ..
        })
    ));
}

#[test]
fn no_authenticate_within_auth_timeout_closes_with_4001() {
    let mut cluster = Cluster::new(1, |_| auth_config());
    let a = conn(1);
    cluster.connect(0, a).unwrap();
    cluster.advance(Duration::from_millis(4999)).unwrap();
    assert!(cluster.record(0).closes.is_empty());
    cluster.advance(Duration::from_millis(1)).unwrap();
    assert_eq!(cluster.record(0).closes, [(a, CloseCode::AUTH_TIMEOUT)]);
}

#[test]
fn undecided_authentication_closes_with_4001_after_three_auth_timeouts() {
    let mut cluster = Cluster::new(1, |_| auth_config());
    let a = conn(1);
    cluster.connect(0, a).unwrap();
    cluster.advance(Duration::from_secs(4)).unwrap();
    cluster.frame(0, a, authenticate_frame()).unwrap();
    // The application has 15 s from the authenticate frame; the 5 s connect deadline is gone.
    cluster.advance(Duration::from_millis(14_999)).unwrap();
    assert!(cluster.record(0).closes.is_empty());
    cluster.advance(Duration::from_millis(1)).unwrap();
    assert_eq!(cluster.record(0).closes, [(a, CloseCode::AUTH_TIMEOUT)]);
}

#[test]
fn second_authenticate_gets_already_authenticated_error() {
    let mut cluster = Cluster::new(1, |_| auth_config());
    let a = conn(1);
    cluster.connect(0, a).unwrap();
    cluster.frame(0, a, authenticate_frame()).unwrap();
    cluster.frame(0, a, authenticate_frame()).unwrap();
    let frames = frames(&mut cluster, 0, a);
    assert_eq!(frames[0]["data"]["code"], "already_authenticated");
    assert_eq!(frames[0]["id"], "a1");
    let events = cluster.take_events(0);
    assert_eq!(events.iter().filter(|e| matches!(e, Event::Authenticate { .. })).count(), 1);
}

#[test]
fn malformed_authenticate_data_is_a_bad_frame_and_keeps_waiting() {
    let mut cluster = Cluster::new(1, |_| auth_config());
    let a = conn(1);
    cluster.connect(0, a).unwrap();
    for bad in [
        r#"{"event":"authenticate"}"#,
        r#"{"event":"authenticate","data":"tok"}"#,
        r#"{"event":"authenticate","data":{"token":5}}"#,
    ] {
        cluster.frame(0, a, bad).unwrap();
    }
    let frames = frames(&mut cluster, 0, a);
    assert_eq!(frames.len(), 3);
    assert!(frames.iter().all(|f| f["data"]["code"] == "bad_frame"));
    assert_eq!(cluster.hub(0).connection(a).unwrap().state, ConnState::Unauthenticated);
}

#[test]
fn api_misuse_is_a_typed_error() {
    let mut cluster = Cluster::new(1, |_| auth_config());
    let (a, ghost) = (conn(1), conn(99));
    cluster.connect(0, a).unwrap();
    let now = cluster.now();
    let hub = cluster.hub(0);
    assert!(matches!(
        hub.accept_auth(ghost, Identity::anonymous(), now),
        Err(HubError::UnknownConn(_))
    ));
    assert!(matches!(hub.join(a, "r", now), Err(HubError::NotAuthenticated(_))));
    assert!(matches!(hub.accept_auth(a, Identity::user(""), now), Err(HubError::InvalidUser)));
    hub.accept_auth(a, Identity::user("u"), now).unwrap();
    assert!(matches!(
        hub.accept_auth(a, Identity::anonymous(), now),
        Err(HubError::AlreadyAuthenticated(_))
    ));
    assert!(matches!(hub.reject_auth(a, "late", now), Err(HubError::AlreadyAuthenticated(_))));
    assert!(matches!(hub.handle_connect(a, now), Err(HubError::DuplicateConn(_))));
}

#[test]
fn the_identity_rooms_list_limits_client_joins_into_token_rooms_but_not_application_joins() {
    let token = RoomPolicy { join: JoinPolicy::Token, ..RoomPolicy::open() };
    let mut cluster =
        Cluster::new(1, |_| HubConfig { rooms: RoomPolicies::new(token), ..auth_config() });
    let a = conn(1);
    cluster.connect(0, a).unwrap();
    let now = cluster.now();
    let identity =
        Identity { rooms: RoomAcl::Only(vec!["team:1:*".into()]), ..Identity::user("u") };
    cluster.hub(0).accept_auth(a, identity, now).unwrap();
    cluster.drive().unwrap();
    cluster.take_frames(0, a);
    cluster
        .frame(0, a, r#"{"event":"join","data":{"rooms":["team:1:chat","team:2:chat"]},"id":1}"#)
        .unwrap();
    let frames = frames(&mut cluster, 0, a);
    assert_eq!(
        frames[0],
        json!({"event":"error","id":1,"data":{"code":"forbidden","message":"not allowed to join this room","room":"team:2:chat"}})
    );
    assert_eq!(frames[1], json!({"event":"joined","id":1,"data":{"rooms":["team:1:chat"]}}));
    assert!(cluster.hub(0).join(a, "team:2:chat", now).unwrap());
}

//! Credentials that expire while connected: `token_expiring` before the expiry, `refresh` with
//! a fresh token to stay, close 4004 otherwise.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use roomcast_core::sim::Cluster;
use roomcast_core::{CloseCode, ConnId, Event, HubConfig, Identity, RequestId};
use serde_json::json;

/// Authentication on, a 30 s refresh notice, and no heartbeat or ping in the way.
fn cluster() -> Cluster {
    Cluster::new(1, |_| HubConfig {
        heartbeat_timeout: Duration::from_secs(3600),
        ping_interval: Duration::from_secs(3600),
        token_refresh_notice: Duration::from_secs(30),
        rate_limit: None,
        ..auth_config()
    })
}

/// A connection of `user` whose credentials expire in `secs`.
fn expiring(cluster: &mut Cluster, c: ConnId, user: &str, secs: u64) {
    cluster.connect(0, c).unwrap();
    cluster.frame(0, c, r#"{"event":"authenticate","data":{"token":"t"}}"#).unwrap();
    let now = cluster.now();
    let identity = Identity { expires_in: Some(Duration::from_secs(secs)), ..Identity::user(user) };
    cluster.hub(0).accept_auth(c, identity, now).unwrap();
    cluster.drive().unwrap();
    assert_eq!(frames(cluster, 0, c)[0]["event"], "connected");
    cluster.take_events(0);
}

/// The `refresh` events the hub raised: (connection, token, request id).
fn refreshes(cluster: &mut Cluster) -> Vec<(ConnId, String, Option<RequestId>)> {
    cluster
        .take_events(0)
        .into_iter()
        .filter_map(|e| match e {
            Event::Refresh { conn, token, id, .. } => Some((conn, token, id)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_connection_is_told_before_its_token_expires_and_closed_with_4004_at_the_expiry() {
    let mut cluster = cluster();
    let a = conn(1);
    expiring(&mut cluster, a, "ann", 60);
    cluster.advance(Duration::from_secs(29)).unwrap();
    assert!(frames(&mut cluster, 0, a).is_empty(), "not yet");
    cluster.advance(Duration::from_secs(1)).unwrap();
    assert_eq!(
        frames(&mut cluster, 0, a),
        [json!({"event":"token_expiring","data":{"expiresIn":30}})]
    );
    cluster.advance(Duration::from_secs(29)).unwrap();
    assert!(cluster.record(0).closes.is_empty(), "{:?}", cluster.record(0).closes);
    cluster.advance(Duration::from_secs(1)).unwrap();
    assert_eq!(cluster.record(0).closes, [(a, CloseCode::TOKEN_EXPIRED)]);
}

#[test]
fn an_accepted_refresh_moves_the_expiry_and_answers_refreshed_with_the_request_id() {
    let mut cluster = cluster();
    let a = conn(1);
    expiring(&mut cluster, a, "ann", 60);
    cluster.advance(Duration::from_secs(40)).unwrap();
    assert_eq!(frames(&mut cluster, 0, a)[0]["event"], "token_expiring");
    cluster.frame(0, a, r#"{"event":"refresh","data":{"token":"fresh"},"id":"r1"}"#).unwrap();
    let asked = refreshes(&mut cluster);
    assert_eq!(asked.len(), 1);
    assert_eq!((asked[0].0, asked[0].1.as_str()), (a, "fresh"));
    let now = cluster.now();
    let fresh = Identity { expires_in: Some(Duration::from_secs(120)), ..Identity::user("ann") };
    cluster.hub(0).accept_refresh(a, fresh, asked[0].2.as_ref(), now).unwrap();
    cluster.drive().unwrap();
    assert_eq!(
        frames(&mut cluster, 0, a),
        [json!({"event":"refreshed","id":"r1","data":{"expiresIn":120}})]
    );
    // Past the first expiry: still open; told again before the new one, closed at it.
    cluster.advance(Duration::from_secs(89)).unwrap();
    assert!(cluster.record(0).closes.is_empty());
    assert!(frames(&mut cluster, 0, a).is_empty());
    cluster.advance(Duration::from_secs(1)).unwrap();
    assert_eq!(frames(&mut cluster, 0, a)[0]["event"], "token_expiring");
    cluster.advance(Duration::from_secs(30)).unwrap();
    assert_eq!(cluster.record(0).closes, [(a, CloseCode::TOKEN_EXPIRED)]);
}

#[test]
fn a_refused_refresh_or_one_for_another_user_is_an_error_and_the_old_expiry_stands() {
    let mut cluster = cluster();
    let a = conn(1);
    expiring(&mut cluster, a, "ann", 60);
    cluster.frame(0, a, r#"{"event":"refresh","data":{"token":"forged"},"id":1}"#).unwrap();
    let id = refreshes(&mut cluster)[0].2.clone();
    let now = cluster.now();
    cluster.hub(0).reject_refresh(a, "invalid token", id.as_ref(), now).unwrap();
    cluster.drive().unwrap();
    let answer = &frames(&mut cluster, 0, a)[0];
    assert_eq!(answer["id"], 1);
    assert_eq!(answer["data"]["code"], "refresh_rejected");

    cluster.frame(0, a, r#"{"event":"refresh","data":{"token":"bob's"},"id":2}"#).unwrap();
    let id = refreshes(&mut cluster)[0].2.clone();
    let now = cluster.now();
    let other = Identity { expires_in: Some(Duration::from_secs(999)), ..Identity::user("bob") };
    cluster.hub(0).accept_refresh(a, other, id.as_ref(), now).unwrap();
    cluster.drive().unwrap();
    let answer = &frames(&mut cluster, 0, a)[0];
    assert_eq!(
        (answer["id"].as_i64(), answer["data"]["code"].as_str()),
        (Some(2), Some("refresh_rejected"))
    );
    assert_eq!(cluster.hub(0).connection(a).unwrap().user_id, Some("ann"));

    cluster.advance(Duration::from_secs(60)).unwrap();
    assert_eq!(cluster.record(0).closes, [(a, CloseCode::TOKEN_EXPIRED)]);
}

#[test]
fn credentials_without_expiry_never_expire_and_refresh_is_an_application_event_when_anonymous() {
    let mut cluster = cluster();
    let a = conn(1);
    cluster.connect(0, a).unwrap();
    cluster.frame(0, a, r#"{"event":"authenticate","data":{"token":"t"}}"#).unwrap();
    let now = cluster.now();
    cluster.hub(0).accept_auth(a, Identity::user("ann"), now).unwrap();
    cluster.advance(Duration::from_secs(3599)).unwrap(); // the heartbeat's limit
    assert!(cluster.record(0).closes.is_empty());

    let mut anonymous = Cluster::new(1, |_| HubConfig::default());
    let b = conn(2);
    anonymous.connect(0, b).unwrap();
    anonymous.take_events(0);
    anonymous.frame(0, b, r#"{"event":"refresh","data":{"token":"x"}}"#).unwrap();
    let events = anonymous.take_events(0);
    assert!(
        matches!(events.as_slice(), [Event::Message { event, .. }] if event == "refresh"),
        "{events:?}"
    );
}

#[test]
fn clients_cannot_publish_under_the_expiry_events_names() {
    let mut cluster = cluster();
    let a = conn(1);
    expiring(&mut cluster, a, "ann", 600);
    join(&mut cluster, 0, a, &["r"]);
    for event in ["token_expiring", "refreshed"] {
        let frame = json!({"event":"publish","data":{"room":"r","event":event,"data":{}},"id":9});
        cluster.frame(0, a, &frame.to_string()).unwrap();
        assert_eq!(frames(&mut cluster, 0, a)[0]["data"]["code"], "forbidden", "{event}");
    }
}

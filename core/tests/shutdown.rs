//! A shutdown decided by the hub: every connection closes with 1001, and so does every one that
//! opens afterwards, before it is sent anything else.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use roomcast_core::sim::Cluster;
use roomcast_core::{CloseCode, HubConfig};

#[test]
fn a_shutdown_closes_every_connection_and_each_later_one_with_1001() {
    let mut cluster = Cluster::new(1, |_| HubConfig::default());
    let (a, b, late) = (conn(1), conn(2), conn(3));
    connect(&mut cluster, 0, a);
    connect(&mut cluster, 0, b);
    join(&mut cluster, 0, a, &["lobby"]);
    let now = cluster.now();
    cluster.hub(0).shut_down(now);
    cluster.drive().unwrap();
    assert_eq!(cluster.record(0).closes, [(a, CloseCode::GOING_AWAY), (b, CloseCode::GOING_AWAY)]);
    assert_eq!(cluster.hub(0).room_count(), 0);

    frames(&mut cluster, 0, late); // nothing yet
    cluster.hub(0).handle_connect(late, now).unwrap();
    cluster.drive().unwrap();
    assert_eq!(cluster.record(0).closes.last(), Some(&(late, CloseCode::GOING_AWAY)));
    assert!(frames(&mut cluster, 0, late).is_empty(), "no `connected` before the close");
    assert_eq!(cluster.hub(0).connection_count(), 0);
}

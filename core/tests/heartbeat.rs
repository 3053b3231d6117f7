//! Heartbeats and deadlines: pings to silent connections, 4002 for dead ones, and a deadline heap
//! that stays bounded and never scans every connection.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use roomcast_core::sim::Cluster;
use roomcast_core::{CloseCode, Hub, HubConfig};

#[test]
fn silent_connection_is_pinged_every_ping_interval_and_closed_with_4002() {
    let mut cluster = Cluster::new(1, |_| HubConfig::default());
    let a = conn(1);
    connect(&mut cluster, 0, a);
    cluster.advance(Duration::from_secs(10)).unwrap();
    assert_eq!(cluster.record(0).pings, [a]);
    cluster.advance(Duration::from_secs(10)).unwrap();
    assert_eq!(cluster.record(0).pings, [a, a]);
    cluster.advance(Duration::from_millis(9_999)).unwrap();
    assert!(cluster.record(0).closes.is_empty());
    cluster.advance(Duration::from_millis(1)).unwrap();
    assert_eq!(cluster.record(0).closes, [(a, CloseCode::HEARTBEAT_TIMEOUT)]);
    assert_eq!(cluster.hub(0).connection_count(), 0);
}

#[test]
fn pongs_and_frames_keep_a_connection_alive_without_extra_pings() {
    let mut cluster = Cluster::new(1, |_| HubConfig::default());
    let (ponger, talker) = (conn(1), conn(2));
    connect(&mut cluster, 0, ponger);
    connect(&mut cluster, 0, talker);
    for _ in 0..20 {
        cluster.advance(Duration::from_secs(9)).unwrap();
        let now = cluster.now();
        cluster.hub(0).handle_pong(ponger, now);
        cluster.frame(0, talker, r#"{"event":"heartbeat"}"#).unwrap();
    }
    assert!(cluster.record(0).closes.is_empty());
    assert!(cluster.record(0).pings.is_empty(), "active connections need no ping");
    assert_eq!(cluster.hub(0).connection_count(), 2);
}

#[test]
fn early_and_repeated_timeouts_do_nothing() {
    let mut cluster = Cluster::new(1, |_| HubConfig::default());
    let a = conn(1);
    connect(&mut cluster, 0, a);
    let now = cluster.now();
    let deadline = cluster.hub(0).poll_timeout().unwrap();
    for _ in 0..3 {
        cluster.hub(0).handle_timeout(now);
        cluster.hub(0).handle_timeout(now + Duration::from_secs(1));
    }
    assert!(cluster.hub(0).poll_output().is_none());
    assert_eq!(cluster.hub(0).poll_timeout(), Some(deadline));
}

#[test]
fn time_going_backwards_is_treated_as_no_time_passing() {
    let start = std::time::Instant::now();
    let mut hub = Hub::new(HubConfig::default(), start + Duration::from_secs(100), 0).unwrap();
    hub.handle_connect(conn(1), start + Duration::from_secs(100)).unwrap();
    hub.handle_timeout(start);
    hub.handle_frame(conn(1), br#"{"event":"heartbeat"}"#, start);
    while hub.poll_output().is_some() {}
    assert_eq!(hub.poll_timeout(), Some(start + Duration::from_secs(110)));
}

#[test]
fn deadline_heap_stays_bounded_with_many_connections_and_churn() {
    let start = std::time::Instant::now();
    let mut hub = Hub::new(unlimited(), start, 0).unwrap();
    let n = 20_000u128;
    for i in 0..n {
        hub.handle_connect(conn(i), start).unwrap();
    }
    while hub.poll_output().is_some() {}
    assert_eq!(hub.timer_entries(), n as usize, "one entry per connection");
    let mut now = start;
    for round in 0..30u128 {
        now += Duration::from_secs(3);
        // Half of the connections talk; a slice of them churns.
        for i in (0..n).step_by(2) {
            hub.handle_frame(conn(i), br#"{"event":"heartbeat"}"#, now);
        }
        for i in 0..100 {
            hub.handle_disconnect(conn(round * 100 + i), now);
            hub.handle_connect(conn(1_000_000 + round * 100 + i), now).unwrap();
        }
        hub.handle_timeout(now);
        while hub.poll_output().is_some() {}
        assert!(
            hub.timer_entries() <= 2 * hub.connection_count() + 3_000,
            "{} entries for {} connections",
            hub.timer_entries(),
            hub.connection_count()
        );
    }
}

#[test]
fn shrinking_an_idle_hub_drops_the_stale_deadlines_and_keeps_the_live_ones() {
    let start = std::time::Instant::now();
    let mut hub = Hub::new(unlimited(), start, 0).unwrap();
    let n = 10_000u128;
    for i in 0..n {
        hub.handle_connect(conn(i), start).unwrap();
    }
    let now = start + Duration::from_secs(10);
    hub.handle_timeout(now);
    while hub.poll_output().is_some() {}
    // Everyone but one leaves: their entries are stale, and would wait until they come due.
    for i in 1..n {
        hub.handle_disconnect(conn(i), now);
    }
    while hub.poll_output().is_some() {}
    assert_eq!(hub.timer_entries(), n as usize);
    hub.shrink_to_fit();
    assert_eq!(hub.timer_entries(), 1, "only the one live connection's deadline is left");
    // The survivor is still pinged, and still closed when it stays silent.
    assert_eq!(hub.poll_timeout(), Some(now + Duration::from_secs(10)));
    hub.handle_timeout(now + Duration::from_secs(10));
    let mut pinged = false;
    while let Some(output) = hub.poll_output() {
        pinged |= matches!(output, roomcast_core::Output::Ping(c) if c == conn(0));
    }
    assert!(pinged);
}

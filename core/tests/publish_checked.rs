//! In a room whose policy is `PublishPolicy::Checked`, a member's publish waits for the application: accepted, it is fanned
//! out as it would have been; refused, the sender gets the application's error with its id.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use roomcast_core::sim::Cluster;
use roomcast_core::{Event, HubConfig, PublishPolicy, PublishRequest, RoomPolicies, RoomPolicy};
use serde_json::json;

fn checked() -> RoomPolicies {
    RoomPolicies::new(RoomPolicy { publish: PublishPolicy::Checked, ..RoomPolicy::open() })
}

fn requests(cluster: &mut Cluster) -> Vec<PublishRequest> {
    cluster
        .take_events(0)
        .into_iter()
        .filter_map(|e| match e {
            Event::Publish(request) => Some(*request),
            _ => None,
        })
        .collect()
}

#[test]
fn a_publish_waits_for_the_application_and_is_fanned_out_or_refused() {
    let mut cluster = Cluster::new(1, |_| HubConfig { rooms: checked(), ..unlimited() });
    let (a, b) = (conn(1), conn(2));
    for c in [a, b] {
        connect(&mut cluster, 0, c);
        join(&mut cluster, 0, c, &["r"]);
    }
    cluster.take_events(0);
    let publish = r#"{"event":"publish","data":{"room":"r","event":"chat","data":"hi"},"id":7}"#;
    cluster.frame(0, a, publish).unwrap();
    assert!(frames(&mut cluster, 0, b).is_empty(), "nothing before the decision");
    let asked = requests(&mut cluster);
    assert_eq!(asked.len(), 1);
    let request = &asked[0];
    assert_eq!((request.conn, request.room.as_str(), request.event.as_str()), (a, "r", "chat"));
    assert_eq!(request.data.as_deref().map(|d| d.get()), Some(r#""hi""#));
    assert!(request.exclude_self);

    let now = cluster.now();
    cluster.hub(0).accept_publish(request, now).unwrap();
    cluster.drive().unwrap();
    assert_eq!(frames(&mut cluster, 0, b), [json!({"event":"chat","room":"r","data":"hi"})]);
    assert!(frames(&mut cluster, 0, a).is_empty(), "the sender left out, as asked");

    cluster.frame(0, a, publish).unwrap();
    let request = requests(&mut cluster).remove(0);
    cluster.hub(0).reply_error(a, request.id.as_ref(), "not_allowed", "read only", now).unwrap();
    cluster.drive().unwrap();
    assert!(frames(&mut cluster, 0, b).is_empty());
    let refused = &frames(&mut cluster, 0, a)[0];
    assert_eq!(
        (refused["id"].as_i64(), refused["data"]["code"].as_str()),
        (Some(7), Some("not_allowed"))
    );

    // Approved after the sender left the room: not delivered, and the sender is told.
    cluster.frame(0, a, publish).unwrap();
    let request = requests(&mut cluster).remove(0);
    cluster.hub(0).leave(a, "r", now).unwrap();
    cluster.hub(0).accept_publish(&request, now).unwrap();
    cluster.drive().unwrap();
    assert!(frames(&mut cluster, 0, b).is_empty());
    let answers = frames(&mut cluster, 0, a);
    assert_eq!(answers.last().unwrap()["data"]["code"], "forbidden");
}

#[test]
fn invalid_publishes_are_refused_by_the_hub_before_the_application_sees_them() {
    let mut cluster = Cluster::new(1, |_| HubConfig { rooms: checked(), ..unlimited() });
    let a = conn(1);
    connect(&mut cluster, 0, a);
    cluster.take_events(0);
    cluster
        .frame(0, a, r#"{"event":"publish","data":{"room":"r","event":"chat"},"id":1}"#)
        .unwrap();
    assert!(requests(&mut cluster).is_empty(), "not a member: the hub answers");
    assert_eq!(frames(&mut cluster, 0, a)[0]["data"]["code"], "forbidden");
}

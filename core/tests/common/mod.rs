//! Helpers shared by the core's integration tests.
#![allow(dead_code, unreachable_pub)]

use bytes::Bytes;
use roomcast_core::sim::Cluster;
use roomcast_core::{AuthMode, ConnId, HubConfig, RateLimit};
use serde_json::Value;

/// A config with auth required and short, round timeouts.
pub fn auth_config() -> HubConfig {
    HubConfig { auth: AuthMode::Required, ..HubConfig::default() }
}

/// A config with the rate limit off, for tests that send many frames.
pub fn unlimited() -> HubConfig {
    HubConfig { rate_limit: None, ..HubConfig::default() }
}

/// A config with a tight rate limit.
pub fn limited(per_second: u32, burst: u32) -> HubConfig {
    HubConfig { rate_limit: Some(RateLimit { per_second, burst }), ..HubConfig::default() }
}

pub fn conn(n: u128) -> ConnId {
    ConnId::from_u128(n)
}

pub fn json(frame: &Bytes) -> Value {
    serde_json::from_slice(frame).expect("server frames are JSON")
}

/// A server frame as the model tests compare it: parsed, with what varies by design taken out
/// (the `connected` time, an error's human-readable message) and presence members sorted.
pub fn comparable(frame: &Bytes) -> Value {
    let mut value = json(frame);
    if value["event"] == "connected" {
        value["data"]["time"] = Value::Null;
    }
    if value["event"] == "error"
        && let Some(data) = value["data"].as_object_mut()
    {
        data.remove("message");
    }
    if value["event"] == "presence"
        && let Some(members) = value["data"]["members"].as_array_mut()
    {
        members.sort_by_key(|m| m["id"].as_str().unwrap_or_default().to_owned());
    }
    value
}

/// The frames node `i` sent to `c`, parsed.
pub fn frames(cluster: &mut Cluster, i: usize, c: ConnId) -> Vec<Value> {
    cluster.take_frames(i, c).iter().map(json).collect()
}

/// The events of the frames node `i` sent to `c`.
pub fn events(cluster: &mut Cluster, i: usize, c: ConnId) -> Vec<String> {
    frames(cluster, i, c).iter().map(|f| f["event"].as_str().unwrap_or("?").to_owned()).collect()
}

/// Connects `c` to node `i` and throws its `connected` frame away.
pub fn connect(cluster: &mut Cluster, i: usize, c: ConnId) {
    cluster.connect(i, c).expect("connect");
    cluster.take_frames(i, c);
}

/// Joins `c` to `rooms` with a client `join` frame and throws the answer away.
pub fn join(cluster: &mut Cluster, i: usize, c: ConnId, rooms: &[&str]) {
    let frame = serde_json::json!({"event": "join", "data": {"rooms": rooms}}).to_string();
    cluster.frame(i, c, &frame).expect("settles");
    cluster.take_frames(i, c);
}

/// Connects `c` to node `node` as `user`, accepts it, and joins `rooms`; drops its frames.
pub fn enter(cluster: &mut Cluster, node: usize, c: ConnId, user: &str, rooms: &[&str]) {
    cluster.connect(node, c).expect("connect");
    let now = cluster.now();
    cluster.hub(node).accept_auth(c, roomcast_core::Identity::user(user), now).expect("accept");
    cluster.drive().expect("settles");
    join(cluster, node, c, rooms);
}

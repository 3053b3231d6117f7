//! roomcast instances on a real three-master Redis Cluster, started by the test: rooms travel
//! through sharded pub/sub (`SPUBLISH` / `SSUBSCRIBE`), each channel on the shard that owns it.
#![allow(clippy::unwrap_used)]

use roomcast_core::{Exclude, HubConfig};
use roomcast_redis::RedisConfig;
use roomcast_tests::client::Client;
use roomcast_tests::redis::RedisCluster;
use roomcast_tokio::{Options, Roomcast};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_on_a_redis_cluster_reach_every_instance_through_sharded_pubsub() {
    let cluster = tokio::task::block_in_place(RedisCluster::start);
    let mut addrs = Vec::new();
    let mut handles = Vec::new();
    for _ in 0..3 {
        let options = Options {
            hub: HubConfig { rate_limit: None, ..HubConfig::default() },
            ..Options::default()
        };
        let (handle, _events) = Roomcast::builder()
            .options(options)
            .bus(roomcast_tokio::redis_bus(RedisConfig::cluster(cluster.urls())))
            .start()
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        addrs.push(listener.local_addr().unwrap());
        tokio::spawn(roomcast_tokio::serve(listener, handle.clone()));
        handles.push(handle);
    }
    // Several rooms, so that channels land on different shards.
    let rooms = ["alpha", "bravo", "charlie", "delta"];
    let mut clients = Vec::new();
    for addr in &addrs {
        let mut client = Client::connected(*addr).await;
        client.join(&rooms).await;
        clients.push(client);
    }
    for room in rooms {
        tokio::task::block_in_place(|| cluster.wait_shardnumsub(&format!("ws:room:{room}"), 3));
    }
    let shards: std::collections::BTreeSet<u16> = tokio::task::block_in_place(|| {
        rooms.iter().filter_map(|room| cluster.serving_node(&format!("ws:room:{room}"))).collect()
    });
    assert!(shards.len() >= 2, "the rooms should spread over shards: {shards:?}");
    for (i, room) in rooms.iter().enumerate() {
        let from = i % clients.len();
        clients[from]
            .send(json!({"event":"publish","data":{"room":room,"event":"m","data":i}}))
            .await;
        for (j, client) in clients.iter_mut().enumerate() {
            if j != from {
                assert_eq!(client.recv().await, json!({"event":"m","room":room,"data":i}));
            }
        }
        // Exactly once: a marker from the same sender into the same room (one publisher keeps
        // its order on a channel) comes next, so a late duplicate through Redis would show.
        clients[from]
            .send(json!({"event":"publish","data":{"room":room,"event":"marker","data":i}}))
            .await;
        for (j, client) in clients.iter_mut().enumerate() {
            if j != from {
                assert_eq!(client.recv().await, json!({"event":"marker","room":room,"data":i}));
            }
        }
    }
    handles[2].broadcast_room("alpha", "app", &(), Exclude::none()).await.unwrap();
    handles[2].broadcast_room("alpha", "marker", &(), Exclude::none()).await.unwrap();
    for client in &mut clients {
        assert_eq!(client.recv().await, json!({"event":"app","room":"alpha"}));
        assert_eq!(client.recv().await, json!({"event":"marker","room":"alpha"}));
        client.expect_nothing_pending().await;
    }
}

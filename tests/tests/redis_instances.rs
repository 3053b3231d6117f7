//! Several roomcast instances as one, through a real `redis-server` that the test starts (and
//! kills, and restarts).
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use roomcast_core::{AuthMode, Exclude, HubConfig, Identity};
use roomcast_redis::{Emitter, RedisConfig};
use roomcast_tests::client::{Client, PATIENCE};
use roomcast_tests::redis::RedisServer;
use roomcast_tokio::{AuthFuture, AuthRequest, Authenticator, Handle, Options, Roomcast};
use serde_json::json;

/// The token is the user id (a test policy).
struct TokenIsUser;

impl Authenticator for TokenIsUser {
    fn authenticate(&self, request: AuthRequest) -> AuthFuture<'_> {
        Box::pin(async move { Ok(Identity::user(request.token).into()) })
    }
}

struct Instance {
    handle: Handle,
    addr: SocketAddr,
}

async fn instance(redis: &RedisServer, auth: bool) -> Instance {
    let hub = HubConfig {
        rate_limit: None,
        auth: if auth { AuthMode::Required } else { AuthMode::Anonymous },
        ..HubConfig::default()
    };
    let mut builder = Roomcast::builder()
        .options(Options { hub, ..Options::default() })
        .bus(roomcast_tokio::redis_bus(RedisConfig::single(redis.url())));
    if auth {
        builder = builder.authenticator(TokenIsUser);
    }
    let (handle, _events) = builder.start().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(roomcast_tokio::serve(listener, handle.clone()));
    Instance { handle, addr }
}

/// Blocks on `redis` (a std API) without stalling the runtime.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_over_three_instances_gets_each_broadcast_exactly_once_and_exclusions_hold_everywhere()
 {
    let redis = RedisServer::start();
    let mut instances = Vec::new();
    for _ in 0..3 {
        instances.push(instance(&redis, false).await);
    }
    let mut clients = Vec::new();
    for node in &instances {
        for _ in 0..2 {
            let mut client = Client::connected(node.addr).await;
            client.join(&["r"]).await;
            clients.push(client);
        }
    }
    blocking(|| redis.wait_numsub("ws:room:r", 3));

    // A client on instance 0 publishes: the five others get it once, the sender not at all.
    clients[0].send(json!({"event":"publish","data":{"room":"r","event":"hello","data":1}})).await;
    for client in &mut clients[1..] {
        assert_eq!(client.recv().await, json!({"event":"hello","room":"r","data":1}));
    }
    // The application on instance 1 excludes a connection that lives on instance 2.
    let excluded: roomcast_core::ConnId = clients[4].id.as_deref().unwrap().parse().unwrap();
    instances[1].handle.broadcast_room("r", "news", &2, Exclude::conn(excluded)).await.unwrap();
    for (i, client) in clients.iter_mut().enumerate() {
        if i != 4 {
            assert_eq!(client.recv().await, json!({"event":"news","room":"r","data":2}));
        }
    }
    // Exactly once, across instances too: a marker sent after each message by the same sender
    // into the same room (one publisher keeps its order on a channel) comes next for everyone,
    // so a late duplicate through Redis, or a late copy to the excluded one, would show first.
    clients[0].send(json!({"event":"publish","data":{"room":"r","event":"marker","data":1}})).await;
    for client in &mut clients[1..] {
        assert_eq!(client.recv().await, json!({"event":"marker","room":"r","data":1}));
    }
    instances[1].handle.broadcast_room("r", "marker", &2, Exclude::none()).await.unwrap();
    for client in &mut clients {
        assert_eq!(client.recv().await, json!({"event":"marker","room":"r","data":2}));
        client.expect_nothing_pending().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_sends_reach_every_session_across_instances_and_client_sends_only_their_instance() {
    let redis = RedisServer::start();
    let nodes =
        [instance(&redis, true).await, instance(&redis, true).await, instance(&redis, true).await];
    let mut ann0 = Client::authenticated(nodes[0].addr, "ann").await;
    let mut ann2 = Client::authenticated(nodes[2].addr, "ann").await;
    let mut bob1 = Client::authenticated(nodes[1].addr, "bob").await;
    blocking(|| redis.wait_numsub("ws:user:ann", 2));
    let bob: roomcast_core::ConnId = bob1.id.as_deref().unwrap().parse().unwrap();
    blocking(|| redis.wait_numsub(&format!("ws:client:{bob}"), 1));

    nodes[1].handle.send_to_user("ann", "dm", &"hi ann").await.unwrap();
    assert_eq!(ann0.recv().await, json!({"event":"dm","data":"hi ann"}));
    assert_eq!(ann2.recv().await, json!({"event":"dm","data":"hi ann"}));
    nodes[0].handle.send(bob, "direct", &"hi bob").await.unwrap();
    assert_eq!(bob1.recv().await, json!({"event":"direct","data":"hi bob"}));
    for client in [&mut ann0, &mut ann2, &mut bob1] {
        client.expect_nothing_pending().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_subscribes_only_to_rooms_it_has_members_in_and_unsubscribes_after_the_last() {
    let redis = RedisServer::start();
    let (a, b) = (instance(&redis, false).await, instance(&redis, false).await);
    let mut on_a = Client::connected(a.addr).await;
    let mut on_b = Client::connected(b.addr).await;
    let mut on_b2 = Client::connected(b.addr).await;
    on_a.join(&["r"]).await;
    on_b.join(&["r", "only-b"]).await;
    on_b2.join(&["r"]).await;
    blocking(|| redis.wait_numsub("ws:room:r", 2));
    blocking(|| redis.wait_numsub("ws:room:only-b", 1));
    assert_eq!(blocking(|| redis.numsub("ws:room:elsewhere")), 0);
    // No pattern subscriptions, ever.
    assert_eq!(blocking(|| redis.cli(&["PUBSUB", "NUMPAT"])).trim(), "0");

    on_b.send(json!({"event":"leave","data":{"rooms":["r","only-b"]}})).await;
    on_b.recv().await;
    blocking(|| redis.wait_numsub("ws:room:only-b", 0));
    assert_eq!(blocking(|| redis.numsub("ws:room:r")), 2, "b still has a member of r");
    drop(on_b2);
    blocking(|| redis.wait_numsub("ws:room:r", 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_redis_dies_local_delivery_goes_on_and_cross_instance_delivery_resumes_after_restart()
{
    let mut redis = RedisServer::start();
    let (a, b) = (instance(&redis, false).await, instance(&redis, false).await);
    let mut sender = Client::connected(a.addr).await;
    let mut local = Client::connected(a.addr).await;
    let mut remote = Client::connected(b.addr).await;
    for client in [&mut sender, &mut local, &mut remote] {
        client.join(&["r"]).await;
    }
    blocking(|| redis.wait_numsub("ws:room:r", 2));
    sender.send(json!({"event":"publish","data":{"room":"r","event":"m","data":"before"}})).await;
    assert_eq!(local.recv().await["data"], "before");
    assert_eq!(remote.recv().await["data"], "before");
    let tasks_before = tokio::runtime::Handle::current().metrics().num_alive_tasks();

    blocking(|| redis.kill());
    sender.send(json!({"event":"publish","data":{"room":"r","event":"m","data":"during"}})).await;
    assert_eq!(local.recv().await["data"], "during", "local delivery does not need Redis");

    blocking(|| redis.restart());
    // Both instances reconnect, subscribe again on their own, and tell their members that they
    // may have missed messages.
    blocking(|| redis.wait_numsub("ws:room:r", 2));
    let resync = json!({"event":"resync","room":"r","data":{"reason":"bus_reconnected"}});
    for client in [&mut sender, &mut local, &mut remote] {
        assert_eq!(client.recv().await, resync);
    }
    sender.send(json!({"event":"publish","data":{"room":"r","event":"m","data":"after"}})).await;
    assert_eq!(local.recv().await["data"], "after");
    // At most once: the message published during the outage is gone, not delivered late.
    assert_eq!(remote.recv().await["data"], "after");
    remote.expect_nothing_pending().await;
    // No task leaked by the outage: reconnecting replaced the connection, it did not pile up.
    // Tasks of the old connection may still be ending: wait until the count is back (a leak
    // never comes back).
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let tasks_after = tokio::runtime::Handle::current().metrics().num_alive_tasks();
        if tasks_after <= tasks_before {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{tasks_after} tasks alive after recovery, {tasks_before} before the outage"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let metrics = a.handle.metrics().await.unwrap();
    assert_eq!(metrics.bus.connected, Some(true));
    assert_eq!(metrics.bus.reconnects, 1);
    assert!(metrics.bus.publish_dropped >= 1, "the outage's publish was dropped and counted");
    assert!(metrics.to_prometheus().contains("roomcast_bus_reconnects_total 1\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ignis_envelope_published_with_redis_cli_reaches_the_right_clients() {
    let redis = RedisServer::start();
    let node = instance(&redis, false).await;
    let mut member = Client::connected(node.addr).await;
    let mut other = Client::connected(node.addr).await;
    member.join(&["r"]).await;
    blocking(|| redis.wait_numsub("ws:room:r", 1));
    let envelope = json!({"serverId":"emitter","type":"room","target":"r","event":"news","data":{"headline":"hi"}});
    let receivers = blocking(|| redis.cli(&["PUBLISH", "ws:room:r", &envelope.to_string()]));
    assert_eq!(receivers.trim(), "1");
    assert_eq!(member.recv().await, json!({"event":"news","room":"r","data":{"headline":"hi"}}));
    other.expect_nothing_pending().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emitter_reaches_rooms_with_exclusions_users_clients_and_everyone() {
    let redis = RedisServer::start();
    let node = instance(&redis, true).await;
    let mut ann = Client::authenticated(node.addr, "ann").await;
    let mut bob = Client::authenticated(node.addr, "bob").await;
    ann.join(&["r"]).await;
    bob.join(&["r"]).await;
    blocking(|| redis.wait_numsub("ws:room:r", 1));
    let mut emitter = Emitter::connect(&RedisConfig::single(redis.url())).await.unwrap();
    let bob_id: roomcast_core::ConnId = bob.id.as_deref().unwrap().parse().unwrap();
    emitter.to_room("r", "room-news", &1, &[bob_id]).await.unwrap();
    emitter.to_user("bob", "for-bob", &2).await.unwrap();
    emitter.to_client(bob_id, "for-conn", &3).await.unwrap();
    emitter.broadcast("all", &4).await.unwrap();
    assert_eq!(ann.recv().await, json!({"event":"room-news","room":"r","data":1}));
    assert_eq!(ann.recv().await, json!({"event":"all","data":4}));
    assert_eq!(bob.recv().await, json!({"event":"for-bob","data":2}));
    assert_eq!(bob.recv().await, json!({"event":"for-conn","data":3}));
    assert_eq!(bob.recv().await, json!({"event":"all","data":4}));
    ann.expect_nothing_pending().await;
    bob.expect_nothing_pending().await;
}

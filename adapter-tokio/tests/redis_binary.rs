//! `roomcast serve --redis URL`: two server processes on one real `redis-server` behave as one.
#![allow(clippy::unwrap_used)]

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use roomcast_tests::client::Client;
use roomcast_tests::redis::RedisServer;
use serde_json::json;

struct Server(Child, SocketAddr);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(redis: &RedisServer) -> Server {
    spawn_with(redis, &[])
}

fn spawn_with(redis: &RedisServer, extra: &[&str]) -> Server {
    let addr = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_roomcast"))
        .args(["serve", "--listen", &addr.to_string(), "--redis", &redis.url()])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "the server did not come up");
        std::thread::sleep(Duration::from_millis(20));
    }
    Server(child, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_server_processes_on_one_redis_share_a_room() {
    let redis = RedisServer::start();
    let (one, two) = (spawn(&redis), spawn(&redis));
    let mut alice = Client::connected(one.1).await;
    let mut bob = Client::connected(two.1).await;
    alice.join(&["lobby"]).await;
    bob.join(&["lobby"]).await;
    tokio::task::block_in_place(|| redis.wait_numsub("ws:room:lobby", 2));
    alice.send(json!({"event":"publish","data":{"room":"lobby","event":"chat","data":"across processes"}})).await;
    assert_eq!(bob.recv().await, json!({"event":"chat","room":"lobby","data":"across processes"}));
    alice.expect_nothing_pending().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_instance_members_leave_everywhere_within_its_lease() {
    let redis = RedisServer::start();
    let flags = ["--cluster-presence", "--presence-events", "connections", "--peer-timeout", "2"];
    let mut servers: Vec<Server> = (0..3).map(|_| spawn_with(&redis, &flags)).collect();
    let mut clients = Vec::new();
    for (i, server) in servers.iter().enumerate() {
        let mut client = Client::connected(server.1).await;
        client.join(&["r"]).await;
        tokio::task::block_in_place(|| redis.wait_numsub("ws:presence:r", i + 1));
        clients.push(client);
    }
    // Everyone hears of the later members, across processes.
    let ids: Vec<String> = clients.iter().map(|c| c.id.clone().unwrap()).collect();
    assert_eq!(clients[0].recv().await["event"], "member_joined");
    assert_eq!(clients[0].recv().await["data"]["id"], ids[2].as_str());
    assert_eq!(clients[1].recv().await["data"]["id"], ids[2].as_str());
    clients[0].send(json!({"event":"presence","data":{"room":"r"},"id":"who"})).await;
    assert_eq!(clients[0].recv().await["data"]["members"].as_array().unwrap().len(), 3);

    // Each instance holds a lease in Redis.
    let leases = tokio::task::block_in_place(|| redis.cli(&["ZCARD", "ws:leases"]));
    assert_eq!(leases.trim(), "3");

    // kill -9: no goodbye. Its member leaves everywhere once its lease (2 s) runs out.
    let mut dead = servers.pop().unwrap();
    dead.0.kill().unwrap();
    dead.0.wait().unwrap();
    for client in &mut clients[..2] {
        let left = client.recv().await;
        assert_eq!(left["event"], "member_left", "{left}");
        assert_eq!(left["data"]["id"], ids[2].as_str());
    }
    clients[0].send(json!({"event":"presence","data":{"room":"r"},"id":"who"})).await;
    assert_eq!(clients[0].recv().await["data"]["members"].as_array().unwrap().len(), 2);
}

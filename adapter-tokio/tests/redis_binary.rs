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
    let addr = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_roomcast"))
        .args(["serve", "--listen", &addr.to_string(), "--redis", &redis.url()])
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

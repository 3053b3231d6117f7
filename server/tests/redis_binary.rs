//! `roomcast serve --redis URL`: two server processes on one real `redis-server` behave as one.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use roomcast_tests::client::Client;
use roomcast_tests::http::request;
use roomcast_tests::redis::RedisServer;
use roomcast_tests::server::Server;
use serde_json::json;

fn spawn(redis: &RedisServer) -> Server {
    spawn_with(redis, &[])
}

fn spawn_with(redis: &RedisServer, extra: &[&str]) -> Server {
    let url = redis.url();
    let mut args = vec!["--redis", url.as_str()];
    args.extend_from_slice(extra);
    Server::spawn(Path::new(env!("CARGO_BIN_EXE_roomcast")), &args, &[])
}

/// `n` servers with `flags`, and on each a client in room `r`, joined one after the other
/// (each instance's presence subscription in place before the next joins).
async fn with_a_member_each(
    redis: &RedisServer,
    n: usize,
    flags: &[&str],
) -> (Vec<Server>, Vec<Client>) {
    let servers: Vec<Server> = (0..n).map(|_| spawn_with(redis, flags)).collect();
    let mut clients = Vec::new();
    for (i, server) in servers.iter().enumerate() {
        let mut client = Client::connected(server.addr).await;
        client.join(&["r"]).await;
        tokio::task::block_in_place(|| redis.wait_numsub("ws:presence:r", i + 1));
        clients.push(client);
    }
    (servers, clients)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_server_processes_on_one_redis_share_a_room() {
    let redis = RedisServer::start();
    let (one, two) = (spawn(&redis), spawn(&redis));
    let mut alice = Client::connected(one.addr).await;
    let mut bob = Client::connected(two.addr).await;
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
    let (mut servers, mut clients) = with_a_member_each(&redis, 3, &flags).await;
    // Everyone hears of the later members, across processes.
    let ids: Vec<String> = clients.iter().map(|c| c.id.clone().unwrap()).collect();
    assert_eq!(clients[0].recv().await["event"], "member_joined");
    assert_eq!(clients[0].recv().await["data"]["id"], ids[2].as_str());
    assert_eq!(clients[1].recv().await["data"]["id"], ids[2].as_str());
    // Presence agrees on every instance.
    for client in &mut clients {
        client.send(json!({"event":"presence","data":{"room":"r"},"id":"who"})).await;
        let answer = client.recv().await;
        let mut found: Vec<String> = answer["data"]["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect();
        found.sort();
        let mut expected = ids.clone();
        expected.sort();
        assert_eq!(found, expected);
    }

    // Each instance holds a lease in Redis.
    let leases = tokio::task::block_in_place(|| redis.cli(&["ZCARD", "ws:leases"]));
    assert_eq!(leases.trim(), "3");

    // kill -9: no goodbye. Its member leaves everywhere once its lease (2 s) runs out.
    let mut dead = servers.pop().unwrap();
    dead.kill();
    for client in &mut clients[..2] {
        let left = client.recv().await;
        assert_eq!(left["event"], "member_left", "{left}");
        assert_eq!(left["data"]["id"], ids[2].as_str());
    }
    clients[0].send(json!({"event":"presence","data":{"room":"r"},"id":"who"})).await;
    assert_eq!(clients[0].recv().await["data"]["members"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_while_an_instance_is_stopped_answers_in_time_naming_it() {
    let redis = RedisServer::start();
    let flags = ["--cluster-presence", "--api-key", "k", "--peer-timeout", "30"];
    let (mut servers, mut clients) = with_a_member_each(&redis, 3, &flags).await;
    // A deadline long enough for a loaded machine: the stopped instance is named missing
    // whatever the deadline, and the live ones must not be.
    let ask = |addr| {
        let (status, body) =
            request(addr, "GET", "/api/rooms/r/members?timeout_ms=10000", Some("k"))
                .expect("an answer");
        assert!(status.contains("200"), "{status}: {body}");
        serde_json::from_str::<serde_json::Value>(&body).unwrap()
    };
    // Wait until the first instance hears both others (their heartbeats) and all answer. A
    // query that waits for a silent peer takes its whole 10 s: the deadline leaves room for a few.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answer = tokio::task::block_in_place(|| ask(servers[0].addr));
        if answer["members"].as_array().unwrap().len() == 3 && answer["missing"] == json!([]) {
            break;
        }
        assert!(Instant::now() < deadline, "the instances never all answered: {answer}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, info) = request(servers[2].addr, "GET", "/api/info", Some("k")).unwrap();
    let stopped_id = serde_json::from_str::<serde_json::Value>(&info).unwrap()["serverId"].clone();

    // SIGSTOP: alive to its lease, deaf to queries. `freeze` returns once every thread has
    // stopped: `kill` alone returns before, and a thread not yet stopped would still answer.
    tokio::task::block_in_place(|| servers[2].freeze());
    let answer = tokio::task::block_in_place(|| ask(servers[0].addr));
    assert_eq!(answer["missing"], json!([stopped_id]), "{answer}");
    assert_eq!(answer["members"].as_array().unwrap().len(), 2, "what the others answered");
    servers[2].thaw();
    // Orders reach other instances: make the first instance's client join a room from the second.
    let path = format!(
        "/api/rooms/ordered/join?conn={}&timeout_ms=2000",
        clients[0].id.as_deref().unwrap()
    );
    let (status, body) =
        tokio::task::block_in_place(|| request(servers[1].addr, "POST", &path, Some("k"))).unwrap();
    assert!(status.contains("200"), "{status}: {body}");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["affected"], 1);
    clients[0].send(json!({"event":"leave","data":{"rooms":["none"]},"id":"rooms"})).await;
    let rooms = clients[0].recv().await;
    assert_eq!(rooms["data"]["rooms"], json!(["r", "ordered"]));
    // Without the key, the API refuses.
    let (status, _) = request(servers[0].addr, "GET", "/api/info", None).unwrap();
    assert!(status.contains("401"), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gracefully_stopped_instance_says_goodbye_and_withdraws_its_lease_before_it_exits() {
    let redis = RedisServer::start();
    // A long peer timeout: without the goodbye and the withdrawal, the stopped instance would be
    // expected (and its lease counted) long after it exits.
    let flags = ["--cluster-presence", "--peer-timeout", "60", "--api-key", "k"];
    let (mut servers, _clients) = with_a_member_each(&redis, 2, &flags).await;
    let ask = |addr| {
        let (status, body) = request(addr, "GET", "/api/rooms/r/members?timeout_ms=500", Some("k"))
            .expect("an answer");
        assert!(status.contains("200"), "{status}: {body}");
        serde_json::from_str::<serde_json::Value>(&body).unwrap()
    };
    let survivor = servers[1].addr;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let leases = tokio::task::block_in_place(|| redis.cli(&["ZCARD", "ws:leases"]));
        let answer = tokio::task::block_in_place(|| ask(survivor));
        let members = answer["members"].as_array().map_or(0, Vec::len);
        if leases.trim() == "2" && members == 2 && answer["missing"] == json!([]) {
            break; // both hold a lease, and the survivor counts on the other's answers
        }
        assert!(Instant::now() < deadline, "both instances up: {leases} {answer}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut stopping = servers.remove(0); // the survivor stays in `servers`, running
    // SIGTERM, as an orchestrator stops a process: the graceful path.
    let pid = stopping.pid().to_string();
    let signalled = Command::new("sh").args(["-c", &format!("kill -TERM {pid}")]).status().unwrap();
    assert!(signalled.success());
    let status = tokio::task::block_in_place(|| stopping.wait());
    assert!(status.success(), "a graceful exit: {status}");
    let leases = tokio::task::block_in_place(|| redis.cli(&["ZCARD", "ws:leases"]));
    assert_eq!(leases.trim(), "1", "the stopped instance's lease is gone when it exits");
    // The survivor heard the goodbye: its queries stop expecting the stopped instance (without
    // it, the stopped instance would be named missing for the next 60 s).
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let answer = tokio::task::block_in_place(|| ask(survivor));
        if answer["missing"] == json!([]) {
            assert_eq!(answer["members"].as_array().unwrap().len(), 1, "{answer}");
            break;
        }
        assert!(Instant::now() < deadline, "still expected after its goodbye: {answer}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An HS256 token for `user`, as `--jwt-secret api-secret` accepts.
fn token(user: &str) -> String {
    let claims = json!({"sub": user});
    let key = jsonwebtoken::EncodingKey::from_secret(b"api-secret");
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_publish_on_one_instance_reaches_the_room_on_both_minus_the_excluded() {
    let redis = RedisServer::start();
    let flags = ["--api-key", "k", "--jwt-secret", "api-secret", "--cluster-presence"];
    let (one, two) = (spawn_with(&redis, &flags), spawn_with(&redis, &flags));
    let mut ann = Client::authenticated(one.addr, &token("ann")).await;
    let mut bob = Client::authenticated(two.addr, &token("bob")).await;
    let mut cy = Client::authenticated(two.addr, &token("cy")).await;
    let mut dan = Client::authenticated(two.addr, &token("dan")).await;
    for client in [&mut ann, &mut bob, &mut cy, &mut dan] {
        client.join(&["r"]).await;
    }
    tokio::task::block_in_place(|| redis.wait_numsub("ws:room:r", 2));
    let body =
        json!({"event":"news","data":1,"exclude":[cy.id.clone().unwrap()],"excludeUsers":["dan"]});
    let answer = tokio::task::block_in_place(|| {
        roomcast_tests::http::call(
            one.addr,
            "POST",
            "/api/rooms/r/publish",
            Some("k"),
            Some(&body.to_string()),
        )
    })
    .unwrap();
    assert_eq!(answer.status, 200, "{}", answer.body);
    let expected = json!({"event":"news","room":"r","data":1});
    assert_eq!(ann.recv().await, expected, "on the instance that was asked");
    assert_eq!(bob.recv().await, expected, "on the other one");
    for client in [&mut ann, &mut bob, &mut cy, &mut dan] {
        client.expect_nothing_pending().await;
    }
    // The count and the rooms cover both instances.
    let count = tokio::task::block_in_place(|| {
        roomcast_tests::http::call(one.addr, "GET", "/api/count", Some("k"), None)
    })
    .unwrap();
    assert_eq!(count.json()["connections"], 4, "{}", count.body);
    let rooms = tokio::task::block_in_place(|| {
        roomcast_tests::http::call(two.addr, "GET", "/api/rooms", Some("k"), None)
    })
    .unwrap();
    assert_eq!(rooms.json()["rooms"], json!([{"name":"r","members":4}]), "{}", rooms.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_503_while_redis_is_down_and_200_again_once_it_is_back() {
    let mut redis = RedisServer::start();
    let server = spawn(&redis);
    let ready = |want: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let answer = roomcast_tests::http::get(server.addr, "/readyz");
            if answer.as_ref().is_some_and(|(status, _)| status.contains(want)) {
                return;
            }
            assert!(Instant::now() < deadline, "readyz never said {want}: {answer:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    tokio::task::block_in_place(|| {
        ready("200");
        redis.kill();
        ready("503");
        redis.restart();
        ready("200");
    });
}

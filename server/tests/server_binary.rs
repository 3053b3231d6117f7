//! The `roomcast` binary as people run it: HTTP endpoints, WebSocket on `/` and `/ws`, and a
//! graceful shutdown on SIGTERM.
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use roomcast_tests::client::{Client, PATIENCE};
use roomcast_tests::http::get as http_get;
use roomcast_tests::server::Server;
use serde_json::json;

fn spawn_server(extra: &[&str]) -> Server {
    let program = std::path::Path::new(env!("CARGO_BIN_EXE_roomcast"));
    Server::spawn(program, extra, &[])
}

#[tokio::test]
async fn binary_serves_health_metrics_the_chat_page_and_websockets_on_both_paths() {
    let server = spawn_server(&[]);
    let (status, body) = http_get(server.addr, "/healthz").unwrap();
    assert!(status.contains("200"), "{status}");
    assert_eq!(body, "ok\n");
    let (status, page) = http_get(server.addr, "/").unwrap();
    assert!(status.contains("200"));
    assert!(page.contains("from \"/roomcast-client.js\"") && page.contains("roomcast chat"));
    let (status, script) = http_get(server.addr, "/roomcast-client.js").unwrap();
    assert!(status.contains("200"), "{status}");
    assert!(script.contains("export function connect("), "the client the page imports");

    let mut a = Client::connect(server.addr).await; // on /ws
    assert_eq!(a.recv().await["event"], "connected");
    let mut b = Client::connect_to(server.addr, "/").await;
    assert_eq!(b.recv().await["event"], "connected");
    for c in [&mut a, &mut b] {
        c.send(json!({"event":"join","data":{"rooms":["lobby"]},"id":1})).await;
        c.recv().await;
    }
    a.send(json!({"event":"publish","data":{"room":"lobby","event":"chat","data":{"text":"hi"}}}))
        .await;
    assert_eq!(b.recv().await, json!({"event":"chat","room":"lobby","data":{"text":"hi"}}));

    // The transport limit holds on the axum path too.
    let mut big = Client::connect(server.addr).await;
    big.recv().await;
    big.send(json!({"event":"x","data":"y".repeat(70_000)})).await;
    assert_eq!(big.close_code().await, 1009);

    let (status, metrics) = http_get(server.addr, "/metrics").unwrap();
    assert!(status.contains("200"));
    assert!(metrics.contains("roomcast_connections 2\n"), "{metrics}");
    assert!(metrics.contains("roomcast_rooms 1\n"));
    assert!(metrics.contains("# TYPE roomcast_deliveries_total counter"));
}

#[tokio::test]
async fn sigterm_closes_every_client_with_1001_and_exits_cleanly() {
    let mut server = spawn_server(&[]);
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut client = Client::connect(server.addr).await;
        client.recv().await;
        clients.push(client);
    }
    let readers: Vec<_> = clients
        .into_iter()
        .map(|mut c| tokio::spawn(async move { c.close_code().await }))
        .collect();
    let killed = Command::new("kill").args(["-TERM", &server.pid().to_string()]).status().unwrap();
    assert!(killed.success());
    for reader in readers {
        assert_eq!(reader.await.unwrap(), 1001);
    }
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = server.try_wait() {
            break status;
        }
        assert!(Instant::now() < deadline, "the server did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status {status}");
}

#[tokio::test]
async fn jwt_secret_flag_requires_a_signed_token() {
    let server = spawn_server(&["--jwt-secret", "s3cret"]);
    let claims = json!({"sub": "carol"});
    let key = jsonwebtoken::EncodingKey::from_secret(b"s3cret");
    let token = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap();
    let mut client = Client::connect(server.addr).await;
    client.send(json!({"event":"join","data":{"rooms":["r"]},"id":1})).await;
    assert_eq!(client.recv().await["data"]["code"], "unauthenticated");
    client.send(json!({"event":"authenticate","data":{"token":token}})).await;
    assert_eq!(client.recv().await["data"]["userId"], "carol");
}

#[tokio::test]
async fn presence_flags_announce_members_and_answer_who_is_in_a_room() {
    let server = spawn_server(&["--presence-events", "connections", "--presence-rooms", "lobby"]);
    let mut alice = Client::connect(server.addr).await;
    let alice_id = alice.recv().await["data"]["id"].clone();
    alice.send(json!({"event":"join","data":{"rooms":["lobby","quiet"]}})).await;
    alice.recv().await;
    let mut bob = Client::connect(server.addr).await;
    let bob_id = bob.recv().await["data"]["id"].clone();
    bob.send(json!({"event":"join","data":{"rooms":["lobby","quiet"]}})).await;
    bob.recv().await;
    assert_eq!(
        alice.recv().await,
        json!({"event":"member_joined","room":"lobby","data":{"id":bob_id,"userId":null}})
    );
    bob.send(json!({"event":"presence","data":{"room":"lobby"},"id":"who"})).await;
    let answer = bob.recv().await;
    assert_eq!(answer["id"], "who");
    let mut ids: Vec<String> = answer["data"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    let mut expected =
        vec![alice_id.as_str().unwrap().to_owned(), bob_id.as_str().unwrap().to_owned()];
    expected.sort();
    assert_eq!(ids, expected);
    drop(bob);
    // Only "lobby" has notices: alice hears of bob leaving it, and of nothing else.
    assert_eq!(
        alice.recv().await,
        json!({"event":"member_left","room":"lobby","data":{"id":bob_id,"userId":null}})
    );
    alice.expect_nothing_pending().await;
}

/// The upgrade response's headers to a handshake offering permessage-deflate.
fn handshake_offering_deflate(addr: std::net::SocketAddr) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).unwrap(), 1, "the response ended early");
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap().to_ascii_lowercase()
}

#[test]
fn compression_flag_negotiates_permessage_deflate_with_clients_that_offer_it() {
    let server = spawn_server(&["--compression"]);
    let head = handshake_offering_deflate(server.addr);
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(
        head.contains(
            "sec-websocket-extensions: permessage-deflate; server_no_context_takeover\r\n"
        ),
        "{head}"
    );
    let plain = spawn_server(&[]);
    let head = handshake_offering_deflate(plain.addr);
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(!head.contains("sec-websocket-extensions"), "off by default: {head}");
}

#[test]
fn invalid_flags_are_refused_with_a_message() {
    let output = Command::new(env!("CARGO_BIN_EXE_roomcast"))
        .args(["serve", "--auth-timeout", "-1"])
        .output()
        .unwrap();
    assert!(!output.status.success());
}

#[tokio::test]
async fn readyz_turns_503_as_soon_as_a_shutdown_begins_while_sockets_still_drain() {
    let server = spawn_server(&[]);
    let (status, _) = http_get(server.addr, "/readyz").unwrap();
    assert!(status.contains("200"), "{status}");
    // A client that never answers the server's close: the shutdown waits for it (close_timeout),
    // and meanwhile the instance must say it is not ready.
    let mut silent = Client::connect(server.addr).await;
    silent.recv().await;
    let killed = Command::new("kill").args(["-TERM", &server.pid().to_string()]).status().unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + PATIENCE;
    loop {
        let answer = http_get(server.addr, "/readyz");
        if answer.as_ref().is_some_and(|(status, _)| status.contains("503")) {
            assert!(answer.unwrap().1.contains("shutting down"));
            break;
        }
        assert!(Instant::now() < deadline, "readyz never said 503: {answer:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(silent);
}

//! Hostile clients over real sockets: half-sent upgrade requests, abandoned connections,
//! oversized headers. Every other client keeps being served. (Running out of file descriptors is
//! the server's: server/tests/descriptors.rs.)
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Client, PATIENCE, start};
use roomcast_tokio::Options;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the server ends the connection; returns what it sent.
async fn until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match tokio::time::timeout(PATIENCE, stream.read(&mut chunk)).await {
            Ok(Ok(0) | Err(_)) => return got,
            Ok(Ok(n)) => got.extend_from_slice(&chunk[..n]),
            Err(_) => panic!("the server did not end the connection in time"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_half_sent_upgrades_are_dropped_by_the_header_timeout_and_others_are_served() {
    let options = Options { header_timeout: Duration::from_millis(500), ..Options::default() };
    let (_handle, _events, addr) = start(options).await;
    let mut half_open = Vec::new();
    for _ in 0..1000 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(b"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: web").await.unwrap();
        half_open.push(stream);
    }
    // Served while a thousand connections hang on their headers.
    let (mut client, _) = Client::connected(addr).await;
    client.send(json!({"event":"join","data":{"rooms":["r"]},"id":1})).await;
    assert_eq!(client.recv().await["id"], 1);
    // Each half-open one is dropped once its header time is up (hyper answers 408 first).
    for stream in &mut half_open {
        let answer = until_closed(stream).await;
        assert!(answer.is_empty() || answer.starts_with(b"HTTP/1.1 408"), "{answer:?}");
    }
    client.expect_nothing_pending().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_abandoning_connections_as_fast_as_it_can_costs_a_thousand_chatters_nothing() {
    let (_handle, _events, addr) = start(Options::default()).await;
    let mut chatters = Vec::new();
    for _ in 0..1000 {
        let (mut client, _) = Client::connected(addr).await;
        client.send(json!({"event":"join","data":{"rooms":["chat"]},"id":"j"})).await;
        assert_eq!(client.recv().await["id"], "j");
        chatters.push(client);
    }
    // Opens and drops connections in a loop, at every stage: before, during and after the upgrade.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let abandoning = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let upgrade = b"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
                Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
                Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
            let mut opened = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let Ok(mut stream) = TcpStream::connect(addr).await else { continue };
                let cut = [0, 20, upgrade.len()][(opened % 3) as usize];
                let _ = stream.write_all(&upgrade[..cut]).await;
                drop(stream);
                opened += 1;
            }
            opened
        })
    };
    let mut publisher = chatters.pop().unwrap();
    for n in 0..100 {
        let publish = json!({"event":"publish","data":{"room":"chat","event":"say","data":n}});
        publisher.send(publish).await;
    }
    for chatter in &mut chatters {
        for n in 0..100 {
            assert_eq!(chatter.recv().await, json!({"event":"say","room":"chat","data":n}));
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let opened = abandoning.await.unwrap();
    assert!(opened > 0, "the abandoning client ran");
    publisher.expect_nothing_pending().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_request_headers_get_431_whether_sent_at_once_or_in_pieces() {
    let (_handle, _events, addr) = start(Options::default()).await;
    let cookie = "a".repeat(20 * 1024);
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nCookie: {cookie}\r\n\r\n"
    );
    for pieces in [1, 40] {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        for chunk in request.as_bytes().chunks(request.len().div_ceil(pieces)) {
            if stream.write_all(chunk).await.is_err() {
                break; // answered and closed before the rest was sent
            }
        }
        let answer = until_closed(&mut stream).await;
        let status = String::from_utf8_lossy(&answer[..answer.len().min(40)]).into_owned();
        assert!(status.starts_with("HTTP/1.1 431"), "{pieces} pieces: {status:?}");
    }
    // Within the limit: served.
    let (mut client, _) = Client::connected(addr).await;
    client.expect_nothing_pending().await;
}

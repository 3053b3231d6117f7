//! Hostile clients over real sockets: half-sent upgrade requests. Every other client keeps being
//! served.
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

//! A round's writes split over threads (`Options::write_threads`): a big room gets every message,
//! in order, whole. (The parts' slow consumers and the budget: `driver/write_threads.rs`'s unit tests, and
//! `budget.rs` with `--write-threads 3`.)
#![allow(clippy::unwrap_used)]

mod common;

use common::{Client, PATIENCE, start};
use futures_util::future::join_all;
use roomcast_core::Exclude;
use roomcast_tokio::Options;
use serde_json::json;

/// Enough members for three parts of 256 sockets.
const MEMBERS: usize = 800;
const MESSAGES: u64 = 40;

async fn member(addr: std::net::SocketAddr) -> Client {
    let (mut client, _) = Client::connected(addr).await;
    client.send(json!({"event":"join","data":{"rooms":["big"]},"id":1})).await;
    assert_eq!(client.recv().await["event"], "joined");
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_of_hundreds_gets_every_message_whole_and_in_order_with_writes_split_over_threads() {
    let options = Options { write_threads: 3, ..common::options() };
    let (handle, _events, addr) = start(options).await;
    let members = join_all((0..MEMBERS).map(|_| member(addr))).await;
    let receiving = members.into_iter().map(|mut client| async move {
        for n in 0..MESSAGES {
            let frame = client.recv().await;
            assert_eq!(frame["event"], "m");
            assert_eq!(frame["data"]["n"], n, "a member lost or reordered a message");
            assert_eq!(frame["data"]["text"].as_str().map(str::len), Some(3000));
        }
        client.expect_nothing_pending().await;
    });
    let receiving = tokio::spawn(join_all(receiving));
    let text = "y".repeat(3000);
    for n in 0..MESSAGES {
        let data = json!({"n": n, "text": text});
        handle.broadcast_room("big", "m", &data, Exclude::default()).await.unwrap();
    }
    tokio::time::timeout(PATIENCE * 3, receiving).await.expect("every member in time").unwrap();
    let metrics = handle.metrics().await.unwrap();
    assert!(metrics.hub_split_rounds() > 0, "rounds of {MEMBERS} sockets were split");
}

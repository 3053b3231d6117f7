//! A client that stops reading is closed with 4005 once its queue overflows, while 100 others
//! keep receiving everything, in order: one slow socket never blocks the hub or its neighbours.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::{Client, PATIENCE, start};
use roomcast_tokio::Options;
use roomcast_tokio::roomcast_core::{Exclude, HubConfig};
use serde_json::json;
use tokio::net::TcpSocket;

const FAST: usize = 100;
/// Frames sent before waiting for the fast clients to have them all: half of what a socket may
/// queue (64 frames, 256 KiB), so that a fast client the machine's load keeps from reading for a
/// whole batch is still within its limits.
const BATCH: u64 = 16;
const MAX_BATCHES: u64 = 400;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_closed_with_4005_while_100_others_receive_everything() {
    let options = Options {
        hub: HubConfig { rate_limit: None, ..HubConfig::default() },
        queue_frames: 64,
        write_buffer_bytes: 4 * 1024,
        ..Options::default()
    };
    let (handle, _events, addr) = start(options).await;

    // The slow client: a small receive buffer, joins, then never reads again.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4 * 1024).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let mut slow = Client::handshake(addr, stream).await;
    slow.recv().await; // connected
    slow.send(json!({"event":"join","data":{"rooms":["r"]}})).await;

    let received = Arc::new(AtomicU64::new(0));
    let mut fast = Vec::new();
    for _ in 0..FAST {
        let (mut client, _) = Client::connected(addr).await;
        client.send(json!({"event":"join","data":{"rooms":["r"]}})).await;
        client.recv().await;
        let received = received.clone();
        fast.push(tokio::spawn(async move {
            let mut expected = 0u64;
            loop {
                let frame = client.recv().await;
                if frame["event"] == "done" {
                    return expected;
                }
                assert_eq!(frame["data"]["seq"], expected, "in order, none missing");
                expected += 1;
                received.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    // Everyone has joined once the slow client's join is processed: wait for 101 members.
    tokio::time::timeout(PATIENCE, async {
        while handle.room_members("r").await.unwrap().len() < FAST + 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("every client joined");

    let padding = "x".repeat(8 * 1024);
    let mut sent = 0u64;
    for _ in 0..MAX_BATCHES {
        for _ in 0..BATCH {
            handle
                .broadcast_room("r", "n", &json!({"seq": sent, "pad": padding}), Exclude::none())
                .await
                .unwrap();
            sent += 1;
        }
        // The fast clients keep up: wait until each has everything sent so far.
        tokio::time::timeout(PATIENCE, async {
            while received.load(Ordering::Relaxed) < sent * FAST as u64 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
        .await
        .expect("fast clients keep up");
        if handle.metrics().await.unwrap().queue_overflows() > 0 {
            break;
        }
    }
    let metrics = handle.metrics().await.unwrap();
    assert_eq!(
        metrics.queue_overflows(),
        1,
        "only the slow client overflowed (after {sent} frames)"
    );
    assert_eq!(metrics.closes().get(&4005), Some(&1));
    assert_eq!(
        handle.room_members("r").await.unwrap().len(),
        FAST,
        "the slow client left the room"
    );

    // Everyone else got every frame, in order, and is still connected.
    handle.broadcast_room("r", "done", &(), Exclude::none()).await.unwrap();
    for client in fast {
        assert_eq!(client.await.unwrap(), sent);
    }
    // The slow client, reading at last, finds its backlog and then the 4005 close.
    assert_eq!(slow.close_code().await, 4005);
}

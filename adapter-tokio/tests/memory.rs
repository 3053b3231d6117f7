//! Memory comes back: once the hub task has written nothing for a second, it gives back what a
//! burst made it keep (its batch buffer, pooled write buffers, spare lists), and it still serves
//! everyone afterwards.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Client, PATIENCE, start};
use roomcast_tokio::Options;
use roomcast_tokio::roomcast_core::{Exclude, HubConfig};
use serde_json::json;

const CLIENTS: usize = 200;
const MESSAGES: u64 = 40;

/// Every client reads until it has `count` frames of event `n`, in order from `from`.
async fn read_all(clients: &mut [Client], from: u64, count: u64) {
    for client in clients {
        for seq in from..from + count {
            let frame = client.recv().await;
            assert_eq!(frame["data"]["seq"], seq, "in order, none missing");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_task_gives_back_what_a_burst_made_it_keep_once_idle_and_still_serves_everyone() {
    let options = Options {
        hub: HubConfig { rate_limit: None, ..HubConfig::default() },
        ..Options::default()
    };
    let (handle, _events, addr) = start(options).await;
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (mut client, _) = Client::connected(addr).await;
        client.send(json!({"event":"join","data":{"rooms":["r"]}})).await;
        client.recv().await;
        clients.push(client);
    }
    let shrinks_before = handle.metrics().await.unwrap().idle_shrinks();

    let padding = "x".repeat(4 * 1024);
    for seq in 0..MESSAGES {
        let data = json!({"seq": seq, "pad": padding});
        handle.broadcast_room("r", "n", &data, Exclude::none()).await.unwrap();
    }
    let right_after = handle.metrics().await.unwrap();
    if right_after.idle_shrinks() == shrinks_before {
        // Not yet idle for a second (a busy machine may have taken that long already).
        assert!(right_after.kept_bytes() > 0, "a round of 200 sockets keeps its buffers");
    }
    read_all(&mut clients, 0, MESSAGES).await;

    // Metrics queries write nothing, so asking does not keep the hub task from being idle.
    let shrunk = tokio::time::timeout(PATIENCE, async {
        loop {
            let metrics = handle.metrics().await.unwrap();
            if metrics.idle_shrinks() > shrinks_before && metrics.kept_bytes() == 0 {
                return metrics;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the idle hub task gives back what it kept");
    assert!(shrunk.to_prometheus().contains("roomcast_kept_bytes 0\n"));

    // Everyone is still served, in order, after the shrink.
    for seq in MESSAGES..MESSAGES + 5 {
        let data = json!({"seq": seq, "pad": padding});
        handle.broadcast_room("r", "n", &data, Exclude::none()).await.unwrap();
    }
    read_all(&mut clients, MESSAGES, 5).await;
    assert_eq!(handle.room_members("r").await.unwrap().len(), CLIENTS);

    // Everyone leaves. Departures write nothing, yet what the hub task sized for them (its map
    // of sockets, the hub's deadlines) goes back too: they count as activity, and a shrink
    // follows a second after the last one.
    let settled = shrinks_after(&handle, shrunk.idle_shrinks()).await;
    drop(clients);
    let after_departures = tokio::time::timeout(PATIENCE, async {
        loop {
            let metrics = handle.metrics().await.unwrap();
            if metrics.connections == 0 && metrics.idle_shrinks() > settled {
                return metrics;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("a shrink follows the departures");
    assert_eq!(after_departures.kept_bytes(), 0);
}

/// Waits for the shrink that follows the last activity (after `seen` shrinks), and returns the
/// count then.
async fn shrinks_after(handle: &roomcast_tokio::Handle, seen: u64) -> u64 {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let shrinks = handle.metrics().await.unwrap().idle_shrinks();
            if shrinks > seen {
                return shrinks;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the idle hub task shrinks again after the last messages")
}

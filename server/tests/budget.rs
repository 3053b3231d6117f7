//! Thousands of clients that stop reading, in a busy room, against the global budget of queued
//! bytes (`--max-queued-bytes`): the server's memory stays within the budget plus a constant,
//! the connections holding the most are closed with 4005, and the readers lose nothing.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use futures_util::{SinkExt, StreamExt};
use roomcast_tests::client::{Client, PATIENCE};
use roomcast_tests::server::Server;
use serde_json::json;
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::Message;

const NON_READERS: usize = 2000;
const READERS: usize = 5;
const MESSAGES: u64 = 300;
const BUDGET: u64 = 16 * 1024 * 1024;

/// The server's resident memory, in bytes.
/// A field of `/proc/PID/status` in bytes (`VmRSS`: resident now; `VmHWM`: the peak).
fn status_bytes(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib = status.lines().find_map(|l| l.strip_prefix(field)).unwrap();
    kib.trim_start_matches(':').trim().trim_end_matches("kB").trim().parse::<u64>().unwrap() * 1024
}

/// Resets the kernel's record of the process's peak resident memory (`VmHWM`) to what it holds
/// now (`clear_refs` 5, Linux 4.0+): the peak read afterwards is exact, where sampling on a busy
/// machine can miss it.
fn reset_peak(pid: u32) {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_non_readers_stay_within_the_global_budget_and_the_readers_lose_nothing() {
    non_readers_against_the_budget(1).await;
}

/// The same with each round's writes split over three threads: the parts check the budget before
/// each socket and leave the rest to the hub once it is over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_budget_holds_with_writes_split_over_threads() {
    non_readers_against_the_budget(3).await;
}

/// The two tests of this file, one at a time: each loads the machine with 2,000 sockets and a
/// busy room, and run together (their default) they starve each other's readers. A reader that
/// falls several messages behind while the non-readers hold only a couple each is, by the
/// budget's rule (the connections furthest behind go first), the next to be shed. (nextest runs
/// each test in its own process: `.config/nextest.toml` puts them in one group of one.)
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn non_readers_against_the_budget(write_threads: usize) {
    let _alone = ONE_AT_A_TIME.lock().await;
    let program = Path::new(env!("CARGO_BIN_EXE_roomcast"));
    let (budget, threads) = (BUDGET.to_string(), write_threads.to_string());
    let args = [
        "--max-queued-bytes",
        &budget,
        "--rate-limit",
        "0",
        "--max-rooms-per-conn",
        "4",
        "--write-threads",
        &threads,
    ];
    let server = tokio::task::block_in_place(|| Server::spawn(program, &args, &[]));
    let addr = server.addr;

    // Clients that join the room and never read again, with small receive buffers so that
    // what they do not read piles up in the server rather than in the kernel.
    let mut non_readers = Vec::with_capacity(NON_READERS);
    for _ in 0..NON_READERS {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let stream = socket.connect(addr).await.unwrap();
        let (mut ws, _) =
            tokio_tungstenite::client_async(format!("ws://{addr}/ws"), stream).await.unwrap();
        ws.send(Message::text(r#"{"event":"join","data":{"rooms":["busy"]},"id":1}"#))
            .await
            .unwrap();
        // `connected`, then `joined`: after these, it reads nothing more.
        for _ in 0..2 {
            ws.next().await.unwrap().unwrap();
        }
        non_readers.push(ws);
    }
    let mut readers = Vec::new();
    for _ in 0..READERS {
        let mut reader = Client::connected(addr).await;
        reader.join(&["busy"]).await;
        readers.push(reader);
    }
    let pid = server.pid();
    let baseline = status_bytes(pid, "VmRSS");
    reset_peak(pid);

    let mut publisher = Client::connected(addr).await;
    publisher.join(&["busy"]).await;
    let text = "x".repeat(4000);
    let receiving: Vec<_> = readers
        .into_iter()
        .map(|mut reader| {
            tokio::spawn(async move {
                for n in 0..MESSAGES {
                    let frame = reader.recv().await;
                    assert_eq!(frame["data"]["n"], n, "a reader lost or reordered a message");
                }
            })
        })
        .collect();
    for n in 0..MESSAGES {
        let data = json!({"n": n, "text": text});
        publisher
            .send(json!({"event":"publish","data":{"room":"busy","event":"m","data":data}}))
            .await;
    }
    for reading in receiving {
        tokio::time::timeout(PATIENCE, reading).await.expect("the readers in time").unwrap();
    }

    let (_, metrics) =
        tokio::task::block_in_place(|| roomcast_tests::http::get(addr, "/metrics")).unwrap();
    let value = |name: &str| -> u64 {
        let line = metrics.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap();
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let shed = value("roomcast_budget_closes_total");
    if write_threads > 1 {
        assert!(value("roomcast_hub_split_rounds_total") > 0, "rounds of 2,000 sockets were split");
    }
    assert!(shed > 0, "the budget was reached (2000 × 300 KiB unread is far over 16 MiB)");
    assert_eq!(
        value("roomcast_queue_overflows_total"),
        value(r#"roomcast_closes_total{code="4005"}"#),
        "every socket closed with 4005 counted once"
    );
    let grew = status_bytes(pid, "VmHWM").saturating_sub(baseline);
    eprintln!(
        "server RSS: {} MiB with every client connected, +{} MiB at the peak; {shed} closed by the budget",
        baseline >> 20,
        grew >> 20
    );
    // The budget, plus what the closed sockets hold until they end, the hub's pool of
    // buffers and allocator slack. Without the budget it grows by about 600 MiB.
    // Each further writing thread has a pool of its own, of 16 MiB at most.
    let pools = (write_threads as u64 - 1) * 16 * 1024 * 1024;
    assert!(grew < BUDGET + 32 * 1024 * 1024 + pools, "grew by {} MiB", grew >> 20);
    drop(non_readers);
}

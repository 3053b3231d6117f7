//! `roomcast-load`: an end-to-end load generator over real WebSocket connections, for roomcast
//! and for any server speaking the protocol subset `join` → `joined`, `publish` (the rivals in
//! `benches/rivals/`). Every scenario is bounded in connections and time and stops by itself.
//!
//! ```sh
//! roomcast-load idle   --url ws://127.0.0.1:8080/ws --conns 15000 --pid <server pid>
//! roomcast-load fanout --url ws://127.0.0.1:8080/ws --subscribers 1000 --rate 1000 --seconds 10
//! ```
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use futures_util::StreamExt;
use roomcast_benches::client::{Frame, LoadClient};
use serde_json::{Value, json};

#[derive(Parser)]
#[command(name = "roomcast-load", about = "Bounded WebSocket load scenarios")]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// Many idle connections: the server's resident memory and CPU per connection.
    Idle {
        #[arg(long, default_value = "ws://127.0.0.1:8080/ws")]
        url: String,
        /// Connections to open (at most 19,000: the process limit is 20,000 descriptors).
        #[arg(long, default_value_t = 15_000)]
        conns: usize,
        /// The server's process id, to read its memory and CPU from /proc.
        #[arg(long)]
        pid: u32,
        /// Seconds to hold the connections idle while measuring CPU.
        #[arg(long, default_value_t = 10)]
        hold: u64,
    },
    /// One publisher, N subscribers in one room, a fixed publish rate.
    Fanout {
        #[arg(long, default_value = "ws://127.0.0.1:8080/ws")]
        url: String,
        #[arg(long, default_value_t = 1_000)]
        subscribers: usize,
        /// Messages per second from the publisher.
        #[arg(long, default_value_t = 100)]
        rate: u64,
        /// Seconds of publishing (at most 120).
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Bytes of padding in each message.
        #[arg(long, default_value_t = 64)]
        payload: usize,
    },
}

async fn connect(url: &str) -> Result<LoadClient, String> {
    LoadClient::connect(url).await
}

/// Joins `room` and waits for `joined` (skipping `connected` and anything else).
async fn join(ws: &mut LoadClient, room: &str) -> Result<(), String> {
    let frame = json!({"event":"join","data":{"rooms":[room]},"id":"j"}).to_string();
    ws.send_text(&frame).await?;
    loop {
        match tokio::time::timeout(Duration::from_secs(30), ws.next()).await {
            Ok(Ok(Frame::Text(text))) => {
                if serde_json::from_slice::<Value>(text).is_ok_and(|v| v["event"] == "joined") {
                    return Ok(());
                }
            }
            other => return Err(format!("no joined: {other:?}")),
        }
    }
}

/// The `"t":<micros>` of a fan-out message, found without parsing the frame.
fn timestamp(frame: &[u8]) -> Option<u64> {
    let at = frame.windows(4).position(|w| w == b"\"t\":")? + 4;
    let digits = frame[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&frame[at..at + digits]).ok()?.parse().ok()
}

/// (resident KiB, CPU ticks) of a process.
fn proc_stats(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = fields.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
        + fields.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
    (rss, ticks)
}

async fn idle(url: String, conns: usize, pid: u32, hold: u64) -> Result<(), String> {
    let conns = conns.min(19_000);
    let (rss_before, _) = proc_stats(pid);
    let started = Instant::now();
    let mut sockets = Vec::with_capacity(conns);
    let mut pending =
        futures_util::stream::iter((0..conns).map(|_| connect(&url))).buffer_unordered(256);
    while let Some(ws) = pending.next().await {
        sockets.push(ws?);
    }
    drop(pending);
    let opened = started.elapsed();
    // Keep every socket read (pongs answered), so the server sees live, idle clients.
    let readers: Vec<_> = sockets
        .into_iter()
        .map(|mut ws| {
            tokio::spawn(async move { while let Ok(Frame::Text(_)) = ws.next().await {} })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss_after, ticks_before) = proc_stats(pid);
    tokio::time::sleep(Duration::from_secs(hold)).await;
    let (_, ticks_after) = proc_stats(pid);
    let per_conn_kib = (rss_after.saturating_sub(rss_before)) as f64 / conns as f64;
    let cpu = (ticks_after - ticks_before) as f64 / 100.0 / hold as f64 * 100.0;
    println!(
        "{}",
        json!({"scenario":"idle","conns":conns,"rss_before_kib":rss_before,"rss_after_kib":rss_after,
               "rss_per_conn_kib":(per_conn_kib * 100.0).round() / 100.0,"idle_cpu_percent":(cpu * 100.0).round() / 100.0,
               "open_seconds":opened.as_secs_f64()})
    );
    for reader in readers {
        reader.abort();
    }
    Ok(())
}

async fn fanout(
    url: String,
    subscribers: usize,
    rate: u64,
    seconds: u64,
    payload: usize,
) -> Result<(), String> {
    let seconds = seconds.min(120);
    let start = Instant::now();
    let received = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::with_capacity(subscribers);
    let mut pending = futures_util::stream::iter((0..subscribers).map(|_| async {
        let mut ws = connect(&url).await?;
        join(&mut ws, "fanout").await?;
        Ok::<LoadClient, String>(ws)
    }))
    .buffer_unordered(128);
    while let Some(ws) = pending.next().await {
        let mut ws = ws?;
        let received = received.clone();
        readers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while let Ok(Ok(Frame::Text(text))) =
                tokio::time::timeout(Duration::from_secs(5), ws.next()).await
            {
                // The load generator must not be the bottleneck: find the timestamp, parse nothing else.
                if let Some(t) = timestamp(text) {
                    latencies.push((start.elapsed().as_micros() as u64).saturating_sub(t));
                    received.fetch_add(1, Ordering::Relaxed);
                }
            }
            latencies
        }));
    }
    drop(pending);
    let mut publisher = connect(&url).await?;
    join(&mut publisher, "fanout").await?;
    let pad = "x".repeat(payload);
    let total = rate * seconds;
    let sending = Instant::now();
    for seq in 0..total {
        let due = sending + Duration::from_secs_f64(seq as f64 / rate as f64);
        tokio::time::sleep_until(due.into()).await;
        let t = start.elapsed().as_micros() as u64;
        let frame = json!({"event":"publish","data":{"room":"fanout","event":"m","data":{"t":t,"seq":seq,"pad":pad}}});
        publisher.send_text(&frame.to_string()).await?;
    }
    let send_time = sending.elapsed();
    let mut latencies = Vec::new();
    for reader in readers {
        latencies.extend(reader.await.map_err(|e| e.to_string())?);
    }
    latencies.sort_unstable();
    let expected = total * subscribers as u64;
    let got = latencies.len() as u64;
    let pct = |p: f64| {
        latencies.get(((latencies.len().max(1) - 1) as f64 * p) as usize).copied().unwrap_or(0)
    };
    println!(
        "{}",
        json!({"scenario":"fanout","subscribers":subscribers,"rate":rate,"seconds":seconds,"sent":total,
               "delivered":got,"expected":expected,"loss":(expected - got.min(expected)) as f64 / expected.max(1) as f64,
               "deliveries_per_second":(got as f64 / send_time.as_secs_f64()).round(),
               "p50_ms":pct(0.5) as f64 / 1000.0,"p99_ms":pct(0.99) as f64 / 1000.0,"max_ms":latencies.last().copied().unwrap_or(0) as f64 / 1000.0})
    );
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let result = match Cli::parse().scenario {
        Scenario::Idle { url, conns, pid, hold } => idle(url, conns, pid, hold).await,
        Scenario::Fanout { url, subscribers, rate, seconds, payload } => {
            fanout(url, subscribers, rate, seconds, payload).await
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("roomcast-load: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

//! Cross-instance latency and throughput through a real Redis.
//!
//! Starts its own `redis-server` on a free loopback port and two roomcast instances on it
//! (in this process). One client on instance A publishes to a room whose subscribers are on
//! instance B; each message carries its send time, and every subscriber records the latency.
//! Bounded: a fixed number of messages, then it prints one line per run and exits.
//!
//! ```sh
//! cargo run --release -p roomcast-benches --bin redis_fanout -- [subscribers] [messages] [rate/s]
//! ```
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use roomcast_core::HubConfig;
use roomcast_redis::RedisConfig;
use roomcast_tests::client::Client;
use roomcast_tests::redis::RedisServer;
use roomcast_tokio::{Options, Roomcast};
use serde_json::json;

async fn instance(redis: &RedisServer) -> std::net::SocketAddr {
    let options = Options {
        hub: HubConfig { rate_limit: None, ..HubConfig::default() },
        queue_frames: 64 * 1024,
        ..Options::default()
    };
    let (handle, _events) = Roomcast::builder()
        .options(options)
        .bus(roomcast_tokio::redis_bus(RedisConfig::single(redis.url())))
        .start()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _keep = handle.clone();
        roomcast_tokio::serve(listener, handle).await
    });
    addr
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let args: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let subscribers = args.first().copied().unwrap_or(100) as usize;
    let messages = args.get(1).copied().unwrap_or(20_000);
    let rate = args.get(2).copied().unwrap_or(0); // 0: as fast as the publisher can send

    let redis = tokio::task::spawn_blocking(RedisServer::start).await.unwrap();
    let (a, b) = (instance(&redis).await, instance(&redis).await);
    let start = Instant::now();
    let received = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..subscribers {
        let mut client = Client::connected(b).await;
        client.join(&["bench"]).await;
        let received = received.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(messages as usize);
            loop {
                let frame = client.recv().await;
                if frame["event"] == "end" {
                    return latencies;
                }
                let sent = frame["data"]["t"].as_u64().unwrap_or(0);
                let now = start.elapsed().as_micros() as u64;
                latencies.push(now.saturating_sub(sent));
                received.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    tokio::task::block_in_place(|| redis.wait_numsub("ws:room:bench", 1));
    let mut publisher = Client::connected(a).await;
    publisher.join(&["bench"]).await;

    let sending = Instant::now();
    for seq in 0..messages {
        if rate > 0 {
            let due = sending + Duration::from_secs_f64(seq as f64 / rate as f64);
            tokio::time::sleep_until(due.into()).await;
        }
        let t = start.elapsed().as_micros() as u64;
        publisher.send(json!({"event":"publish","data":{"room":"bench","event":"m","data":{"t":t,"seq":seq}}})).await;
    }
    let expected = messages * subscribers as u64;
    let deadline = Instant::now() + Duration::from_secs(60);
    while received.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = sending.elapsed();
    publisher.send(json!({"event":"publish","data":{"room":"bench","event":"end"}})).await;
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all.sort_unstable();
    let got = all.len() as u64;
    println!(
        "subscribers={subscribers} messages={messages} rate={} delivered={got}/{expected} loss={:.3}% \
         deliveries/s={:.0} latency_us p50={} p99={} max={}",
        if rate == 0 { "max".to_owned() } else { rate.to_string() },
        100.0 * (expected - got.min(expected)) as f64 / expected as f64,
        got as f64 / elapsed.as_secs_f64(),
        percentile(&all, 0.50),
        percentile(&all, 0.99),
        all.last().copied().unwrap_or(0),
    );
}

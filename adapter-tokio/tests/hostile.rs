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

/// Connects and reads `connected`, or gives up after `wait` (the server did not accept).
async fn try_connect(
    addr: std::net::SocketAddr,
    wait: Duration,
) -> Option<roomcast_tests::client::Client> {
    tokio::time::timeout(wait, roomcast_tests::client::Client::connected(addr)).await.ok()
}

/// The lines a child process writes to a pipe, read on a thread of their own.
struct Log {
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
}

impl Log {
    fn read(pipe: impl std::io::Read + Send + 'static) -> Self {
        use std::io::BufRead;
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { lines, seen: Vec::new() }
    }

    /// Waits for a line holding `needle` (cancel-safe: lines read are kept in `seen`).
    async fn until(&mut self, needle: &str) {
        while let Some(line) = self.lines.recv().await {
            self.seen.push(line);
            if self.seen.last().is_some_and(|l| l.contains(needle)) {
                return;
            }
        }
        panic!("the log ended without {needle:?}:\n{}", self.seen.join("\n"));
    }

    /// Every line, once the process has exited.
    async fn all(mut self) -> Vec<String> {
        while let Some(line) = self.lines.recv().await {
            self.seen.push(line);
        }
        self.seen
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_file_descriptors_it_serves_whom_it_has_logs_at_a_bounded_rate_and_accepts_again() {
    use std::process::{Command, Stdio};
    let port = roomcast_tests::port::Reservation::new();
    let addr = port.addr();
    let script = format!(
        "ulimit -n 64 && exec '{}' serve --listen {addr} --rate-limit 0",
        env!("CARGO_BIN_EXE_roomcast")
    );
    let started = std::time::Instant::now();
    let mut server = Command::new("sh")
        .args(["-c", &script])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = Log::read(server.stderr.take().unwrap());
    let up = tokio::task::block_in_place(|| {
        let deadline = std::time::Instant::now() + PATIENCE;
        while roomcast_tests::http::get(addr, "/healthz").is_none() {
            if std::time::Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    });
    assert!(up, "the server came up");

    // Open connections until the server logs that it has no descriptor left for the next one
    // (which then waits in the kernel's backlog, unanswered).
    let mut open = Vec::new();
    loop {
        tokio::select! {
            client = roomcast_tests::client::Client::connected(addr) => {
                open.push(client);
                assert!(open.len() < 64, "the descriptor limit was not reached");
            }
            () = log.until("accept failed") => break,
        }
    }
    assert!(open.len() > 30, "only {} connections before the limit", open.len());
    // Still out of descriptors, it serves the connections it has.
    let mut b = open.pop().unwrap();
    let mut a = open.pop().unwrap();
    a.join(&["r"]).await;
    b.join(&["r"]).await;
    a.send(json!({"event":"publish","data":{"room":"r","event":"still","data":1}})).await;
    assert_eq!(b.recv().await, json!({"event":"still","room":"r","data":1}));

    // Descriptors free up: it accepts again, and says so.
    open.truncate(open.len() - 10);
    let again = try_connect(addr, PATIENCE).await;
    assert!(again.is_some(), "accepted once descriptors were free");
    log.until("accepting connections again").await;

    let _ = server.kill();
    let _ = server.wait();
    let elapsed = started.elapsed();
    let lines = log.all().await;
    // A line for the first failure of the run, then at most one per 10 s (it retries every
    // 100 ms): bounded by how long the whole test took, however slow the machine was.
    let logged = lines.iter().filter(|l| l.contains("accept failed")).count() as u64;
    let bound = 1 + elapsed.as_secs() / 10;
    assert!((1..=bound).contains(&logged), "{logged} lines in {elapsed:?}:\n{}", lines.join("\n"));
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

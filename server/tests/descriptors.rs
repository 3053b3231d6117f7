//! The `roomcast` binary out of file descriptors (`ulimit -n 64`): it serves the connections it
//! has, logs the failure at a bounded rate, and accepts again once descriptors free up.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use roomcast_tests::client::PATIENCE;
use serde_json::json;

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

//! `roomcast-load`: an end-to-end load generator over real WebSocket connections, for roomcast
//! and for any server speaking the protocol subset `join` → `joined`, `publish` (the rivals in
//! `benches/rivals/`). Every scenario is bounded in connections and time and stops by itself.
//!
//! ```sh
//! roomcast-load idle   --url ws://127.0.0.1:8080/ws --conns 15000 --pid <server pid> [--storm]
//! roomcast-load fanout --url ws://127.0.0.1:8080/ws --subscribers 1000 --rate 1000 --seconds 10
//! roomcast-load rooms  --url ws://127.0.0.1:8080/ws --rooms 10000 --members 10 --rate 10000
//! roomcast-load churn  --url ws://127.0.0.1:8080/ws --concurrency 64 --seconds 10
//! ```
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use futures_util::StreamExt;
use hdrhistogram::Histogram;
use roomcast_benches::client::{Frame, LoadClient, Protocol, event_name};
use roomcast_benches::small_rooms;
use serde_json::{Value, json};
use tokio::task::{JoinHandle, LocalSet};

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
        /// Seconds to hold the connections idle, sampling the server's memory every 2 s
        /// (longer than the server's ping interval, to see a ping round) and measuring its CPU.
        #[arg(long, default_value_t = 30)]
        hold: u64,
        /// Rooms every connection joins (the same ones for all), before the hold.
        #[arg(long, default_value_t = 0)]
        rooms: usize,
        /// Opens every connection at once, as clients do when a deploy drops them all (by
        /// default at most 256 handshakes are in flight).
        #[arg(long)]
        storm: bool,
        /// Seconds to sample the server's memory after every client has left (does it come
        /// back?).
        #[arg(long, default_value_t = 6)]
        linger: u64,
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
        #[command(flatten)]
        run: Publishing,
        /// Where the subscribers connect, round-robin (default: `--url`). With several
        /// instances behind one Redis, the publisher's messages cross the bus to reach them.
        #[arg(long)]
        sub_url: Vec<String>,
        /// More subscribers that join the room and never read (slow consumers: the server is
        /// to close them with 4005 when their queues overflow). Not counted in the deliveries.
        #[arg(long, default_value_t = 0)]
        stalled: usize,
    },
    /// Many small rooms: subscribers each in many rooms, one publisher in each room.
    Rooms {
        #[arg(long, default_value = "ws://127.0.0.1:8080/ws")]
        url: String,
        #[arg(long, default_value_t = 10_000)]
        rooms: usize,
        /// Members per room: one publisher and `members - 1` subscribers.
        #[arg(long, default_value_t = 10)]
        members: usize,
        /// Subscriber connections, shared by the rooms (each joins rooms × (members − 1) ÷
        /// subscribers rooms; servers cap rooms per connection, roomcast at 100 by default).
        #[arg(long, default_value_t = 2_000)]
        subscribers: usize,
        /// Publisher connections, each publishing to rooms ÷ publishers rooms in turn.
        #[arg(long, default_value_t = 100)]
        publishers: usize,
        /// Messages per second, over all rooms.
        #[arg(long, default_value_t = 10_000)]
        rate: u64,
        #[command(flatten)]
        run: Publishing,
    },
    /// Connection churn: workers that connect, join, and close, again and again.
    Churn {
        #[arg(long, default_value = "ws://127.0.0.1:8080/ws")]
        url: String,
        /// Workers cycling at once.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
}

/// What the delivery scenarios (fan-out, many rooms) share: how long to publish, what, and
/// whose CPU to report.
#[derive(clap::Args)]
struct Publishing {
    /// Seconds of publishing (at most 120).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Bytes of padding in each message.
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// The server's process id, to report its CPU while publishing.
    #[arg(long)]
    pid: Option<u32>,
    /// Pad with words (text that compresses as chat messages do) instead of one repeated byte.
    #[arg(long)]
    words: bool,
    /// Subscribers offer permessage-deflate and inflate what comes compressed (the run fails
    /// if the server does not agree to it).
    #[arg(long)]
    compression: bool,
    /// What the clients speak: roomcast's frames, or socket.io's (give the URLs as
    /// `ws://host:port/socket.io/?EIO=4&transport=websocket`).
    #[arg(long, value_enum, default_value_t = Protocol::Roomcast)]
    protocol: Protocol,
    /// Each publisher wakes every N ms and writes the messages that fell due meanwhile in one
    /// write, each stamped when written (0: one write per message, at its time). At tens of
    /// thousands of messages/s, one `send` per message is a third of the load generator's CPU
    /// (each one runs the server's TCP receive path on loopback): coalescing keeps the load
    /// generator from being what a run measures. The server gets the same messages, a few per
    /// read.
    #[arg(long, default_value_t = 0)]
    coalesce_ms: u64,
}

impl Publishing {
    /// The padding of each message: `payload` bytes.
    fn pad(&self) -> String {
        if !self.words {
            return "x".repeat(self.payload);
        }
        const WORDS: [&str; 16] = [
            "the", "room", "message", "hello", "user", "joined", "typing", "status", "online",
            "game", "score", "update", "cursor", "at", "line", "42",
        ];
        let (mut pad, mut seed) = (String::with_capacity(self.payload + 8), 0x2545_f491_u32);
        while pad.len() < self.payload {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            pad.push_str(WORDS[seed as usize % WORDS.len()]);
            pad.push(' ');
        }
        pad.truncate(self.payload);
        pad
    }
}

async fn connect(url: &str) -> Result<LoadClient, String> {
    LoadClient::connect(url).await
}

/// Joins `rooms` in one request and waits for `joined` (skipping `connected` and anything else).
async fn join(ws: &mut LoadClient, rooms: &[String]) -> Result<(), String> {
    ws.emit("join", &json!({"rooms":rooms}), Some("j")).await?;
    let protocol = ws.protocol();
    loop {
        match tokio::time::timeout(Duration::from_secs(30), ws.next()).await {
            Ok(Ok(Frame::Text(text))) => {
                if event_name(protocol, text).as_deref() == Some("joined") {
                    return Ok(());
                }
            }
            other => return Err(format!("no joined: {other:?}")),
        }
    }
}

/// The `"t":<micros>` of a fan-out message, found without parsing the frame. Searched from the
/// end: `t` sorts last among the message's keys, and every server here puts `data` last, so it is
/// a few bytes from the end (a search from the start costs the load generator a tenth of its CPU).
fn timestamp(frame: &[u8]) -> Option<u64> {
    let at = frame.windows(4).rposition(|w| w == b"\"t\":")? + 4;
    let mut digits = frame[at..].iter().take_while(|b| b.is_ascii_digit()).peekable();
    digits.peek()?;
    digits.try_fold(0u64, |t, d| t.checked_mul(10)?.checked_add(u64::from(d - b'0')))
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

/// How the idle scenario opens its connections, and how long it watches memory after.
#[derive(Clone, Copy)]
struct IdleShape {
    hold: u64,
    rooms: usize,
    storm: bool,
    linger: u64,
}

async fn idle(url: String, conns: usize, pid: u32, shape: IdleShape) -> Result<(), String> {
    let IdleShape { hold, rooms, storm, linger } = shape;
    let conns = conns.min(19_000);
    let (rss_before, _) = proc_stats(pid);
    let started = Instant::now();
    // Every connection joins the same rooms (none: it only connects).
    let names: Vec<String> = (0..rooms).map(|r| format!("idle-{r}")).collect();
    let urls = [url];
    let at_once = if storm { conns.max(1) } else { 256 };
    let sockets = if rooms == 0 {
        let mut pending = futures_util::stream::iter((0..conns).map(|_| connect(&urls[0])))
            .buffer_unordered(at_once);
        let mut sockets = Vec::with_capacity(conns);
        while let Some(ws) = pending.next().await {
            sockets.push(ws?);
        }
        sockets
    } else {
        let shape = (false, Protocol::Roomcast);
        clients_at_once(&urls, conns, shape, at_once, |_| names.clone()).await?
    };
    let opened = started.elapsed();
    // Keep every socket read (pongs answered), so the server sees live, idle clients.
    let readers: Vec<_> = sockets
        .into_iter()
        .map(|mut ws| {
            tokio::spawn(async move { while let Ok(Frame::Text(_)) = ws.next().await {} })
        })
        .collect();
    // Resident memory every 2 s while the connections sit idle (through the server's first
    // ping round, with a hold longer than its ping interval), and the CPU over the whole hold.
    let (_, ticks_before) = proc_stats(pid);
    let mut samples = Vec::new();
    let holding = Instant::now();
    for step in 1..=hold.div_ceil(2).max(1) {
        tokio::time::sleep_until((holding + Duration::from_secs(2 * step)).into()).await;
        samples.push(proc_stats(pid).0);
    }
    let (rss_after, ticks_after) = proc_stats(pid);
    let held = holding.elapsed().as_secs_f64();
    let per_conn = |rss: u64| {
        (rss.saturating_sub(rss_before) as f64 * 1024.0 / conns as f64 / 10.0).round() / 100.0
    };
    let max = samples.iter().copied().max().unwrap_or(rss_after);
    let cpu = (ticks_after - ticks_before) as f64 / held;
    // Everyone leaves (their sockets close); does the memory come back?
    for reader in readers {
        reader.abort();
    }
    let mut left = Vec::new();
    let leaving = Instant::now();
    for step in 1..=linger.div_ceil(2).max(1) {
        tokio::time::sleep_until((leaving + Duration::from_secs(2 * step)).into()).await;
        left.push(proc_stats(pid).0);
    }
    let rss_left = left.last().copied().unwrap_or(rss_after);
    let kept = |rss: u64| (rss as f64 / rss_before.max(1) as f64 * 100.0).round() / 100.0;
    println!(
        "{}",
        json!({"scenario":"idle","storm":storm,"conns":conns,"rooms":rooms,"rss_before_kib":rss_before,"rss_after_kib":rss_after,
               "rss_samples_kib":samples,
               "rss_per_conn_kb":per_conn(rss_after),"rss_per_conn_kb_max":per_conn(max),
               "rss_after_leaving_kib":rss_left,"rss_after_leaving_samples_kib":left,
               "rss_after_leaving_ratio":kept(rss_left),
               "idle_cpu_percent":(cpu * 100.0).round() / 100.0,
               "open_seconds":opened.as_secs_f64(),"hold_seconds":held.round()})
    );
    Ok(())
}

/// Connects `count` clients (to `urls`, round-robin), each joining the rooms `rooms(i)` gives,
/// at most 128 handshakes at a time; returned in the order of `i`.
async fn clients(
    urls: &[String],
    count: usize,
    shape: (bool, Protocol),
    rooms: impl Fn(usize) -> Vec<String>,
) -> Result<Vec<LoadClient>, String> {
    clients_at_once(urls, count, shape, 128, rooms).await
}

/// [`clients`], with at most `at_once` handshakes (and joins) in flight.
async fn clients_at_once(
    urls: &[String],
    count: usize,
    (compression, protocol): (bool, Protocol),
    at_once: usize,
    rooms: impl Fn(usize) -> Vec<String>,
) -> Result<Vec<LoadClient>, String> {
    let rooms = &rooms;
    let mut pending = futures_util::stream::iter((0..count).map(|i| async move {
        let url = &urls[i % urls.len()];
        let mut ws = LoadClient::connect_as(url, compression, protocol).await?;
        join(&mut ws, &rooms(i)).await?;
        Ok::<LoadClient, String>(ws)
    }))
    .buffered(at_once.max(1));
    let mut clients = Vec::with_capacity(count);
    while let Some(ws) = pending.next().await {
        clients.push(ws?);
    }
    Ok(clients)
}

/// Latencies in microseconds, 1 µs to 10 minutes, to 3 significant digits, shared by every
/// reader of a run: one histogram stays in the cache (one per reader would not), its size does
/// not grow with the frames, and nothing is left to sort at the end.
type Latencies = Rc<RefCell<Histogram<u64>>>;

/// A subscriber's reader (a task on this thread): records the latency of every timestamped
/// frame, until 5 s of silence; returns the bytes it read meanwhile.
fn receive(mut ws: LoadClient, start: Instant, latencies: Latencies) -> JoinHandle<u64> {
    tokio::task::spawn_local(async move {
        let before = ws.wire_bytes();
        ws.set_read_timeout(Some(Duration::from_secs(5)));
        // The load generator must not be the bottleneck: no timer and no clock reading per
        // frame, and of each frame only the timestamp is parsed.
        while let Ok(Frame::Text(text)) = ws.next().await {
            if let Some(t) = timestamp(text) {
                let now = ws.read_at().saturating_duration_since(start).as_micros() as u64;
                latencies.borrow_mut().saturating_record(now.saturating_sub(t));
            }
        }
        ws.wire_bytes() - before
    })
}

/// Publishes `total` messages at `rate` per second to `rooms` in turn over `ws`: each at its
/// time, or (with `coalesce` above zero) every `coalesce`, those that fell due, in one write.
async fn publish(
    ws: &mut LoadClient,
    rooms: &[String],
    (rate, total): (f64, u64),
    start: Instant,
    pad: &str,
    coalesce: Duration,
) -> Result<(), String> {
    let sending = Instant::now();
    let due = |seq: u64| sending + Duration::from_secs_f64(seq as f64 / rate);
    let mut seq = 0;
    while seq < total {
        tokio::time::sleep_until(wake_at(sending, due(seq), coalesce).into()).await;
        let now = Instant::now();
        let t = (now - start).as_micros() as u64;
        loop {
            let room = &rooms[seq as usize % rooms.len()];
            let data = json!({"room":room,"event":"m","data":{"t":t,"seq":seq,"pad":pad}});
            ws.queue("publish", &data, None);
            seq += 1;
            if coalesce.is_zero() || seq == total || due(seq) > now {
                break;
            }
        }
        ws.flush().await?;
    }
    Ok(())
}

/// When a publisher that began at `sending` writes a message due at `due`: then, or with
/// `coalesce`, at the first tick of `coalesce` (counted from `sending`) not before it.
fn wake_at(sending: Instant, due: Instant, coalesce: Duration) -> Instant {
    match coalesce.as_nanos() {
        0 => due,
        tick => {
            let ticks = (due - sending).as_nanos().div_ceil(tick);
            sending + coalesce * u32::try_from(ticks).unwrap_or(u32::MAX)
        }
    }
}

/// What a delivery scenario prints: rates, loss, latency percentiles, this process's CPU and,
/// given its pid, the server's.
struct Report {
    fields: Value,
    expected: u64,
    send_time: Duration,
    own_ticks_before: u64,
    /// The server's pid and CPU ticks at the start.
    server: Option<(u32, u64)>,
    latencies: Latencies,
}

impl Report {
    fn start(fields: Value, expected: u64, server_pid: Option<u32>, latencies: Latencies) -> Self {
        let (_, own_ticks_before) = proc_stats(std::process::id());
        let server = server_pid.map(|pid| (pid, proc_stats(pid).1));
        Self { fields, expected, send_time: Duration::ZERO, own_ticks_before, server, latencies }
    }

    /// An empty histogram for the readers of a run.
    fn latencies() -> Latencies {
        let histogram = Histogram::new_with_bounds(1, 600_000_000, 3);
        Rc::new(RefCell::new(histogram.expect("constant bounds are valid")))
    }

    /// Publishing is over: notes how long it took and the CPU this process used meanwhile
    /// (near 100% means the load generator, on one core, limited the run, not the server).
    fn sent(&mut self, sending: Instant) {
        self.send_time = sending.elapsed();
    }

    async fn finish(self, readers: Vec<JoinHandle<u64>>) -> Result<(), String> {
        let (_, own_ticks_after) = proc_stats(std::process::id());
        // Ticks are hundredths of a second: ticks per second is a percentage of one core.
        let cpu = |ticks: u64| (ticks as f64 / self.send_time.as_secs_f64()).round();
        let own_cpu = cpu(own_ticks_after.saturating_sub(self.own_ticks_before));
        let server_cpu =
            self.server.map(|(pid, before)| cpu(proc_stats(pid).1.saturating_sub(before)));
        let mut wire_bytes = 0;
        for reader in readers {
            wire_bytes += reader.await.map_err(|e| e.to_string())?;
        }
        let latencies = self.latencies.borrow();
        let got = latencies.len();
        let expected = self.expected;
        let pct = |q: f64| latencies.value_at_quantile(q) as f64 / 1000.0;
        let mut fields = self.fields;
        let extra = json!({"delivered":got,"expected":expected,"loss":(expected - got.min(expected)) as f64 / expected.max(1) as f64,
            "deliveries_per_second":(got as f64 / self.send_time.as_secs_f64()).round(),
            "p50_ms":pct(0.5),"p90_ms":pct(0.9),"p99_ms":pct(0.99),"p999_ms":pct(0.999),"max_ms":latencies.max() as f64 / 1000.0,
            "load_cpu_percent":own_cpu,"server_cpu_percent":server_cpu,
            "wire_bytes_per_delivery":(wire_bytes as f64 / got.max(1) as f64).round()});
        if let (Some(fields), Some(extra)) = (fields.as_object_mut(), extra.as_object()) {
            fields.extend(extra.clone());
        }
        println!("{fields}");
        Ok(())
    }
}

async fn fanout(
    url: String,
    sub_urls: Vec<String>,
    (subscribers, stalled): (usize, usize),
    rate: u64,
    run: Publishing,
) -> Result<(), String> {
    let (pad, Publishing { seconds, pid, compression, protocol, coalesce_ms, .. }) =
        (run.pad(), run);
    let seconds = seconds.min(120);
    let start = Instant::now();
    let sub_urls = if sub_urls.is_empty() { vec![url.clone()] } else { sub_urls };
    let room = vec!["fanout".to_owned()];
    let subs = clients(&sub_urls, subscribers, (compression, protocol), |_| room.clone()).await?;
    // Held, never read, until the report is done.
    let _stalled = clients(&sub_urls, stalled, (compression, protocol), |_| room.clone()).await?;
    let latencies = Report::latencies();
    let readers: Vec<_> =
        subs.into_iter().map(|ws| receive(ws, start, Rc::clone(&latencies))).collect();
    let mut publisher = LoadClient::connect_as(&url, false, protocol).await?;
    join(&mut publisher, &room).await?;
    // Subscribers on other instances: let their interest reach the bus first.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let total = rate * seconds;
    let mut report = Report::start(
        json!({"scenario":"fanout","subscribers":subscribers,"stalled":stalled,"payload":pad.len(),"compression":compression,"protocol":format!("{protocol:?}").to_lowercase(),"instances":sub_urls.len(),"rate":rate,"seconds":seconds,"coalesce_ms":coalesce_ms,"sent":total}),
        total * subscribers as u64,
        pid,
        latencies,
    );
    let sending = Instant::now();
    let coalesce = Duration::from_millis(coalesce_ms);
    publish(&mut publisher, &room, (rate as f64, total), start, &pad, coalesce).await?;
    report.sent(sending);
    report.finish(readers).await
}

async fn rooms(
    url: String,
    rooms: usize,
    members: usize,
    subscribers: usize,
    publishers: usize,
    rate: u64,
    run: Publishing,
) -> Result<(), String> {
    let (pad, Publishing { seconds, pid, compression, protocol, coalesce_ms, .. }) =
        (run.pad(), run);
    let (members, subscribers, publishers) =
        (members.max(2), subscribers.max(1), publishers.max(1));
    if subscribers < members - 1 || rooms < publishers {
        return Err("need subscribers >= members - 1 and rooms >= publishers".into());
    }
    let seconds = seconds.min(120);
    let start = Instant::now();
    let (sub_rooms, pub_rooms) = small_rooms(rooms, members, subscribers, publishers);
    let urls = [url];
    let subs =
        clients(&urls, subscribers, (compression, protocol), |i| sub_rooms[i].clone()).await?;
    let latencies = Report::latencies();
    let readers: Vec<_> =
        subs.into_iter().map(|ws| receive(ws, start, Rc::clone(&latencies))).collect();
    let pubs = clients(&urls, publishers, (false, protocol), |i| pub_rooms[i].clone()).await?;
    let total_per_publisher = rate * seconds / publishers as u64;
    let total = total_per_publisher * publishers as u64;
    let mut report = Report::start(
        json!({"scenario":"rooms","rooms":rooms,"members":members,"subscribers":subscribers,
               "publishers":publishers,"rate":rate,"seconds":seconds,"coalesce_ms":coalesce_ms,"sent":total}),
        total * (members as u64 - 1),
        pid,
        latencies,
    );
    let per_publisher = rate as f64 / publishers as f64;
    let sending = Instant::now();
    let tasks: Vec<_> = pubs
        .into_iter()
        .zip(pub_rooms)
        .map(|(mut ws, rooms)| {
            let pad = pad.clone();
            tokio::spawn(async move {
                let (rate, coalesce) = (per_publisher, Duration::from_millis(coalesce_ms));
                publish(&mut ws, &rooms, (rate, total_per_publisher), start, &pad, coalesce)
                    .await?;
                // Kept open until the deliveries are in: closing would not change them.
                tokio::time::sleep(Duration::from_secs(6)).await;
                Ok::<(), String>(())
            })
        })
        .collect();
    // Publishing ends when every publisher has sent its share; the readers end on silence.
    let deadline = sending + Duration::from_secs(seconds);
    tokio::time::sleep_until(deadline.into()).await;
    report.sent(sending);
    let result = report.finish(readers).await;
    for task in tasks {
        task.abort();
    }
    result
}

async fn churn(url: String, concurrency: usize, seconds: u64) -> Result<(), String> {
    let seconds = seconds.min(120);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency.max(1))
        .map(|w| {
            let url = url.clone();
            tokio::spawn(async move {
                let (mut cycles, mut failures) = (0u64, 0u64);
                let room = vec![format!("churn-{}", w % 16)];
                while Instant::now() < deadline {
                    let cycle = async {
                        let mut ws = connect(&url).await?;
                        join(&mut ws, &room).await?;
                        ws.close().await
                    };
                    match tokio::time::timeout(Duration::from_secs(10), cycle).await {
                        Ok(Ok(())) => cycles += 1,
                        _ => failures += 1,
                    }
                }
                (cycles, failures)
            })
        })
        .collect();
    let (mut cycles, mut failures) = (0, 0);
    for worker in workers {
        let (c, f) = worker.await.map_err(|e| e.to_string())?;
        cycles += c;
        failures += f;
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({"scenario":"churn","concurrency":concurrency,"seconds":seconds,"cycles":cycles,"failures":failures,
               "cycles_per_second":(cycles as f64 / elapsed).round()})
    );
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    // One thread: readers are local tasks that share one latency histogram.
    let result = LocalSet::new().run_until(run(Cli::parse().scenario)).await;
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("roomcast-load: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(scenario: Scenario) -> Result<(), String> {
    match scenario {
        Scenario::Idle { url, conns, pid, hold, rooms, storm, linger } => {
            idle(url, conns, pid, IdleShape { hold, rooms, storm, linger }).await
        }
        Scenario::Fanout { url, subscribers, rate, run, sub_url, stalled } => {
            fanout(url, sub_url, (subscribers, stalled), rate, run).await
        }
        Scenario::Rooms { url, rooms: r, members, subscribers, publishers, rate, run } => {
            rooms(url, r, members, subscribers, publishers, rate, run).await
        }
        Scenario::Churn { url, concurrency, seconds } => churn(url, concurrency, seconds).await,
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{timestamp, wake_at};

    #[test]
    fn the_timestamp_is_found_wherever_the_server_puts_data() {
        let ours = br#"{"event":"m","room":"r","data":{"pad":"xx","seq":3,"t":1234}}"#;
        let elsewhere = br#"{"data":{"pad":"xx","seq":3,"t":77},"event":"m","room":"r"}"#;
        assert_eq!(timestamp(ours), Some(1234));
        assert_eq!(timestamp(elsewhere), Some(77));
    }

    #[test]
    fn coalesced_publishers_write_at_the_first_tick_not_before_a_message_is_due() {
        let (at, ms) = (Instant::now(), Duration::from_millis);
        assert_eq!(wake_at(at, at + ms(7), Duration::ZERO), at + ms(7));
        assert_eq!(wake_at(at, at + ms(7), ms(5)), at + ms(10));
        assert_eq!(wake_at(at, at + ms(10), ms(5)), at + ms(10));
        assert_eq!(wake_at(at, at, ms(5)), at);
    }

    #[test]
    fn a_frame_without_a_timestamp_or_with_a_broken_one_gives_none() {
        assert_eq!(timestamp(br#"{"event":"joined"}"#), None);
        assert_eq!(timestamp(br#"{"t":"late"}"#), None);
        assert_eq!(timestamp(br#"{"t":99999999999999999999999}"#), None);
    }
}

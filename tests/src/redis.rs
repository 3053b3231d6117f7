//! Real `redis-server` processes on free loopback ports, started and stopped by the tests.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::port::Reservation;

/// How long a server may take to start or stop.
const PATIENCE: Duration = Duration::from_secs(20);

/// One `redis-server` on 127.0.0.1, killed when dropped.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    // Its port (and a cluster node's bus port), kept from other servers and outgoing
    // connections while this one may use them.
    _reservations: Vec<Reservation>,
    dir: PathBuf,
    extra: Vec<String>,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server on a free port, with persistence off.
    ///
    /// # Panics
    /// If `redis-server` is not installed (`scripts/test.sh` installs it) or does not start.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a server with extra `redis-server` arguments (e.g. `--cluster-enabled yes`).
    pub fn start_with(extra: &[&str]) -> Self {
        Self::start_reserving(extra, Vec::new())
    }

    /// A Redis Cluster node: its cluster bus gets a reserved port too (by default the bus listens
    /// on port + 10000, which nothing keeps free).
    fn start_cluster_node(extra: &[&str]) -> Self {
        let bus = Reservation::new();
        let mut args: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
        args.extend(["--cluster-port".to_owned(), bus.port().to_string()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Self::start_reserving(&args, vec![bus])
    }

    fn start_reserving(extra: &[&str], mut reservations: Vec<Reservation>) -> Self {
        let reservation = Reservation::new();
        let port = reservation.port();
        reservations.push(reservation);
        let dir =
            std::env::temp_dir().join(format!("roomcast-redis-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let extra = extra.iter().map(|s| (*s).to_owned()).collect();
        let mut server = Self { port, _reservations: reservations, dir, extra, child: None };
        server.restart();
        server
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let deadline = Instant::now() + PATIENCE;
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(Instant::now() < deadline, "redis-server did not stop");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts the server again on the same port (after [`kill`](Self::kill)).
    pub fn restart(&mut self) {
        self.kill();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run redis-server ({e}): run `bash scripts/test.sh`, which installs it"
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + PATIENCE;
        while self.cli(&["PING"]).trim() != "PONG" {
            assert!(Instant::now() < deadline, "redis-server did not start on port {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs `redis-cli -p {port} args...` and returns what it printed.
    pub fn cli(&self, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run redis-cli ({e}): run `bash scripts/test.sh`, which installs it")
            });
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// How many clients are subscribed to `channel` (`PUBSUB NUMSUB`).
    pub fn numsub(&self, channel: &str) -> usize {
        let out = self.cli(&["PUBSUB", "NUMSUB", channel]);
        out.lines().nth(1).and_then(|n| n.trim().parse().ok()).unwrap_or(0)
    }

    /// Waits until `PUBSUB NUMSUB channel` equals `n`.
    pub fn wait_numsub(&self, channel: &str, n: usize) {
        let deadline = Instant::now() + PATIENCE;
        while self.numsub(channel) != n {
            assert!(
                Instant::now() < deadline,
                "{channel} has {} subscribers, expected {n}",
                self.numsub(channel)
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Redis Cluster of three masters (no replicas) on free loopback ports.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts three `--cluster-enabled` servers and joins them with `redis-cli --cluster create`.
    pub fn start() -> Self {
        let nodes: Vec<RedisServer> = (0..3)
            .map(|_| {
                RedisServer::start_cluster_node(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-node-timeout",
                    "5000",
                ])
            })
            .collect();
        let addrs: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port())).collect();
        let output = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli runs");
        assert!(
            output.status.success(),
            "cluster create failed: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        let cluster = Self { nodes };
        let deadline = Instant::now() + PATIENCE;
        while !cluster
            .nodes
            .iter()
            .all(|n| n.cli(&["CLUSTER", "INFO"]).contains("cluster_state:ok"))
        {
            assert!(Instant::now() < deadline, "the cluster did not become ready");
            std::thread::sleep(Duration::from_millis(50));
        }
        cluster
    }

    /// The seed URLs of every node.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// Sharded subscribers of `channel` (`PUBSUB SHARDNUMSUB`), summed over the nodes: only the
    /// node owning the channel's slot counts any (the others answer with a redirection).
    pub fn shardnumsub(&self, channel: &str) -> usize {
        self.nodes
            .iter()
            .map(|n| {
                let out = n.cli(&["PUBSUB", "SHARDNUMSUB", channel]);
                out.lines().nth(1).and_then(|c| c.trim().parse::<usize>().ok()).unwrap_or(0)
            })
            .sum()
    }

    /// The port of the node whose shard serves `channel` (where it has sharded subscribers).
    pub fn serving_node(&self, channel: &str) -> Option<u16> {
        self.nodes
            .iter()
            .find(|n| {
                let out = n.cli(&["PUBSUB", "SHARDNUMSUB", channel]);
                out.lines().nth(1).and_then(|c| c.trim().parse::<usize>().ok()).unwrap_or(0) > 0
            })
            .map(RedisServer::port)
    }

    /// Waits until `channel` has `n` sharded subscribers.
    pub fn wait_shardnumsub(&self, channel: &str, n: usize) {
        let deadline = Instant::now() + PATIENCE;
        while self.shardnumsub(channel) != n {
            assert!(
                Instant::now() < deadline,
                "{channel} has {} shard subscribers, expected {n}",
                self.shardnumsub(channel)
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

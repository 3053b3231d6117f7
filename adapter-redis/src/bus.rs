//! The bus: the hub's `Publish` / `Subscribe` / `Unsubscribe` carried to Redis, and messages from
//! Redis carried back.
//!
//! One task owns the connection. It keeps the set of channels this instance is interested in,
//! whether Redis is up or not; after every reconnection it subscribes to all of them again.
//! Publishes made while Redis is down are dropped and counted: delivery is at most once.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use crate::config::RedisConfig;
use crate::connection::{Connection, Push, classify};

/// Operations handed to the bus task, in the hub's output order.
#[derive(Debug)]
enum Op {
    Publish(String, Bytes),
    Subscribe(String),
    Unsubscribe(String),
    /// Withdraw the lease and stop renewing it; answer when done.
    Withdraw(oneshot::Sender<()>),
}

/// Most operations the task takes from its queue at once (publishes among them go out in one
/// round trip).
const BATCH: usize = 256;

/// The bus of one instance. Calls never wait: they queue for the bus task.
#[derive(Debug)]
pub struct RedisBus {
    ops: mpsc::UnboundedSender<Op>,
    stats: Arc<Counters>,
    publish_queue: usize,
}

/// What arrives from Redis for this instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arrival {
    /// A message on a subscribed channel.
    Message {
        /// The channel.
        channel: String,
        /// The envelope.
        payload: Bytes,
    },
    /// The connection was lost and is back, with every subscription restored: messages
    /// published meanwhile are lost (feed this to `Hub::handle_bus_gap`).
    Resubscribed,
    /// Another instance holds a lease for `remaining` from now (feed this to
    /// `Hub::handle_peer_lease`).
    Lease {
        /// Its server id.
        server_id: String,
        /// How long its lease still runs.
        remaining: Duration,
    },
}

/// Arrivals from Redis for this instance.
#[derive(Debug)]
pub struct Inbound {
    arrivals: mpsc::Receiver<Arrival>,
}

impl Inbound {
    /// The next arrival; `None` once the bus has stopped.
    pub async fn recv(&mut self) -> Option<Arrival> {
        self.arrivals.recv().await
    }
}

#[derive(Debug, Default)]
struct Counters {
    pending: AtomicUsize,
    published: AtomicU64,
    publish_dropped: AtomicU64,
    received: AtomicU64,
    received_dropped: AtomicU64,
    reconnects: AtomicU64,
    subscriptions: AtomicUsize,
    connected: AtomicBool,
}

/// A snapshot of a bus's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BusStats {
    /// Whether the connection to Redis is up.
    pub connected: bool,
    /// Envelopes published.
    pub published: u64,
    /// Envelopes dropped: published while Redis was down, or over the publish queue.
    pub publish_dropped: u64,
    /// Messages received from Redis.
    pub received: u64,
    /// Messages dropped because the hub did not take them in time.
    pub received_dropped: u64,
    /// Times the connection was re-established after a loss.
    pub reconnects: u64,
    /// Channels this instance is subscribed to (or will be, once Redis is back).
    pub subscriptions: usize,
}

impl RedisBus {
    /// Starts the bus task (inside a tokio runtime). Arriving messages come out of the returned
    /// [`Inbound`]; the task ends when the `RedisBus` is dropped.
    pub fn start(config: RedisConfig) -> (Self, Inbound) {
        let (ops, ops_rx) = mpsc::unbounded_channel();
        let (arrivals_tx, arrivals) = mpsc::channel(config.inbound_queue.max(1));
        let stats = Arc::new(Counters::default());
        let publish_queue = config.publish_queue.max(1);
        tokio::spawn(run(config, ops_rx, arrivals_tx, stats.clone()));
        (Self { ops, stats, publish_queue }, Inbound { arrivals })
    }

    /// Publishes `payload` on `channel`; dropped (and counted) if too many publishes are waiting.
    pub fn publish(&self, channel: String, payload: Bytes) {
        if self.stats.pending.fetch_add(1, Ordering::Relaxed) >= self.publish_queue {
            self.stats.pending.fetch_sub(1, Ordering::Relaxed);
            self.stats.publish_dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if self.ops.send(Op::Publish(channel, payload)).is_err() {
            self.stats.pending.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Subscribes to `channel` (now, or as soon as Redis is reachable).
    pub fn subscribe(&self, channel: String) {
        let _ = self.ops.send(Op::Subscribe(channel));
    }

    /// Unsubscribes from `channel`.
    pub fn unsubscribe(&self, channel: String) {
        let _ = self.ops.send(Op::Unsubscribe(channel));
    }

    /// Withdraws this instance's lease (when it holds one) and stops renewing it, for a graceful
    /// shutdown: whoever reads the leases afterwards (an instance starting, an operator) does not
    /// count it. Running peers learn of the shutdown from the hub's goodbye (`Hub::retire`),
    /// published before this: publishes queued ahead of it go out first. Completes when Redis has
    /// answered, or at once if Redis is out of reach.
    pub fn withdraw(&self) -> impl Future<Output = ()> + Send + 'static {
        let (done, answered) = oneshot::channel();
        let _ = self.ops.send(Op::Withdraw(done));
        async move {
            let _ = answered.await;
        }
    }

    /// The bus's counters.
    pub fn stats(&self) -> BusStats {
        let s = &self.stats;
        BusStats {
            connected: s.connected.load(Ordering::Relaxed),
            published: s.published.load(Ordering::Relaxed),
            publish_dropped: s.publish_dropped.load(Ordering::Relaxed),
            received: s.received.load(Ordering::Relaxed),
            received_dropped: s.received_dropped.load(Ordering::Relaxed),
            reconnects: s.reconnects.load(Ordering::Relaxed),
            subscriptions: s.subscriptions.load(Ordering::Relaxed),
        }
    }
}

/// Why serving a connection ended.
enum Ended {
    /// The `RedisBus` was dropped.
    Stopped,
    /// The connection was lost.
    Lost,
}

struct Task {
    config: RedisConfig,
    ops: mpsc::UnboundedReceiver<Op>,
    inbound: mpsc::Sender<Arrival>,
    stats: Arc<Counters>,
    interest: BTreeSet<String>,
    /// The lease was withdrawn: it is not renewed any more.
    withdrawn: bool,
}

async fn run(
    config: RedisConfig,
    ops: mpsc::UnboundedReceiver<Op>,
    inbound: mpsc::Sender<Arrival>,
    stats: Arc<Counters>,
) {
    let mut task =
        Task { config, ops, inbound, stats, interest: BTreeSet::new(), withdrawn: false };
    let mut backoff = task.config.backoff_min;
    let mut ever_connected = false;
    loop {
        let (pushes_tx, mut pushes) = mpsc::unbounded_channel();
        match task.connect(pushes_tx).await {
            Ok(mut conn) => {
                if ever_connected {
                    task.stats.reconnects.fetch_add(1, Ordering::Relaxed);
                    // Whatever was published while we were away is lost: say so.
                    if task.inbound.send(Arrival::Resubscribed).await.is_err() {
                        return;
                    }
                }
                ever_connected = true;
                backoff = task.config.backoff_min;
                task.stats.connected.store(true, Ordering::Relaxed);
                tracing::info!(subscriptions = task.interest.len(), "connected to Redis");
                let ended = task.serve(&mut conn, &mut pushes).await;
                task.stats.connected.store(false, Ordering::Relaxed);
                match ended {
                    Ended::Stopped => return,
                    Ended::Lost => tracing::warn!("lost the connection to Redis; reconnecting"),
                }
            }
            Err(e) => tracing::warn!(error = %e, retry_in = ?backoff, "cannot reach Redis"),
        }
        // Wait before the next attempt, keeping track of interest meanwhile.
        if let Ended::Stopped = task.offline(backoff).await {
            return;
        }
        backoff = next_backoff(backoff, task.config.backoff_max);
    }
}

/// The wait before the next attempt: doubled after each failure, up to `max`.
fn next_backoff(backoff: Duration, max: Duration) -> Duration {
    backoff.saturating_mul(2).min(max)
}

/// The sorted set where instances hold their leases.
fn lease_key(prefix: &str) -> String {
    format!("{prefix}:leases")
}

impl Task {
    /// Connects and subscribes to every channel of current interest.
    async fn connect(
        &mut self,
        pushes: mpsc::UnboundedSender<redis::PushInfo>,
    ) -> redis::RedisResult<Connection> {
        let mut conn = Connection::open(&self.config, Some(pushes)).await?;
        for channel in &self.interest {
            conn.subscribe(channel).await?;
        }
        Ok(conn)
    }

    async fn serve(
        &mut self,
        conn: &mut Connection,
        pushes: &mut mpsc::UnboundedReceiver<redis::PushInfo>,
    ) -> Ended {
        let renew_every =
            self.config.lease.as_ref().map_or(Duration::from_secs(3600), |(_, ttl)| *ttl / 3);
        let mut renew = tokio::time::interval(renew_every);
        renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = renew.tick(), if self.config.lease.is_some() && !self.withdrawn => {
                    if self.renew_lease(conn).await.is_err() {
                        return Ended::Lost;
                    }
                }
                op = self.ops.recv() => {
                    let Some(op) = op else { return Ended::Stopped };
                    let mut batch = vec![op];
                    while batch.len() < BATCH {
                        match self.ops.try_recv() {
                            Ok(op) => batch.push(op),
                            Err(_) => break,
                        }
                    }
                    if self.execute(conn, batch).await.is_err() {
                        return Ended::Lost;
                    }
                }
                push = pushes.recv() => match push.map(classify) {
                    Some(Push::Message(channel, payload)) => {
                        self.stats.received.fetch_add(1, Ordering::Relaxed);
                        if self.inbound.try_send(Arrival::Message { channel, payload }).is_err() {
                            self.stats.received_dropped.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Some(Push::Other) => {}
                    Some(Push::Disconnected) | None => return Ended::Lost,
                },
            }
        }
    }

    /// Renews this instance's lease and reports the others'.
    async fn renew_lease(&mut self, conn: &mut Connection) -> redis::RedisResult<()> {
        let Some((server_id, ttl)) = self.config.lease.clone() else { return Ok(()) };
        let key = lease_key(&self.config.channel_prefix);
        for (peer, remaining) in conn.renew_lease(&key, &server_id, ttl).await? {
            if peer != server_id
                && self.inbound.try_send(Arrival::Lease { server_id: peer, remaining }).is_err()
            {
                self.stats.received_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    /// Runs a batch in order; consecutive publishes go out together.
    async fn execute(&mut self, conn: &mut Connection, batch: Vec<Op>) -> redis::RedisResult<()> {
        let mut publishes: Vec<(String, Bytes)> = Vec::new();
        let mut result = Ok(());
        for op in batch {
            if result.is_err() {
                // The connection failed mid-batch: keep the interest right, drop the publishes.
                self.track(op);
                continue;
            }
            match op {
                Op::Publish(channel, payload) => {
                    self.stats.pending.fetch_sub(1, Ordering::Relaxed);
                    publishes.push((channel, payload));
                    continue;
                }
                op => {
                    result = self.flush(conn, &mut publishes).await;
                    if result.is_ok() {
                        result = self.apply(conn, op).await;
                    } else {
                        self.track(op);
                    }
                }
            }
        }
        if result.is_ok() {
            result = self.flush(conn, &mut publishes).await;
        }
        self.count_dropped(publishes.len());
        result
    }

    async fn flush(
        &mut self,
        conn: &mut Connection,
        publishes: &mut Vec<(String, Bytes)>,
    ) -> redis::RedisResult<()> {
        if publishes.is_empty() {
            return Ok(());
        }
        conn.publish(publishes).await?;
        self.stats.published.fetch_add(publishes.len() as u64, Ordering::Relaxed);
        publishes.clear();
        Ok(())
    }

    /// Subscribes or unsubscribes on the live connection.
    async fn apply(&mut self, conn: &mut Connection, op: Op) -> redis::RedisResult<()> {
        match op {
            Op::Subscribe(channel) => {
                if self.interest.insert(channel.clone()) {
                    self.set_subscriptions();
                    conn.subscribe(&channel).await?;
                }
            }
            Op::Unsubscribe(channel) => {
                if self.interest.remove(&channel) {
                    self.set_subscriptions();
                    conn.unsubscribe(&channel).await?;
                }
            }
            Op::Publish(..) => {}
            Op::Withdraw(done) => {
                self.withdrawn = true;
                if let Some((server_id, _)) = &self.config.lease {
                    let key = lease_key(&self.config.channel_prefix);
                    conn.withdraw_lease(&key, server_id).await?;
                }
                let _ = done.send(());
            }
        }
        Ok(())
    }

    /// Updates interest without a connection (it is restored on reconnect); drops publishes.
    fn track(&mut self, op: Op) {
        match op {
            Op::Publish(..) => {
                self.stats.pending.fetch_sub(1, Ordering::Relaxed);
                self.count_dropped(1);
            }
            Op::Subscribe(channel) => {
                self.interest.insert(channel);
                self.set_subscriptions();
            }
            Op::Unsubscribe(channel) => {
                self.interest.remove(&channel);
                self.set_subscriptions();
            }
            // Redis is out of reach: the lease runs out by itself.
            Op::Withdraw(_) => self.withdrawn = true,
        }
    }

    /// While Redis is away: wait `delay`, tracking interest and dropping publishes.
    async fn offline(&mut self, delay: Duration) -> Ended {
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => return Ended::Lost,
                op = self.ops.recv() => match op {
                    Some(op) => self.track(op),
                    None => return Ended::Stopped,
                },
            }
        }
    }

    fn count_dropped(&self, n: usize) {
        if n > 0 {
            self.stats.publish_dropped.fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    fn set_subscriptions(&self) {
        self.stats.subscriptions.store(self.interest.len(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests;

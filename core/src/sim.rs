//! A deterministic cluster of hubs in one process: an in-memory bus that behaves like Redis
//! pub/sub (exact channels, delivery to every subscriber including the publisher, order kept per
//! publisher), a virtual clock, and a record of everything each hub asked its driver to do.
//!
//! It is how roomcast tests itself without sockets or Redis, and it works as well for
//! applications that want repeatable tests of their room logic.
//!
//! ```
//! use roomcast_core::sim::Cluster;
//! use roomcast_core::{ConnId, Exclude, HubConfig};
//!
//! let mut cluster = Cluster::new(2, |_| HubConfig::default());
//! let (a, b) = (ConnId::from_u128(1), ConnId::from_u128(2));
//! cluster.connect(0, a)?;
//! cluster.connect(1, b)?;
//! let now = cluster.now();
//! cluster.hub(1).join(b, "lobby", now)?;
//! cluster.drive()?;
//! cluster.hub(0).broadcast_room("lobby", "news", &42, &Exclude::none(), now)?;
//! cluster.drive()?;
//! assert_eq!(cluster.take_frames(1, b).last().map(|f| &f[..]),
//!            Some(&br#"{"event":"news","room":"lobby","data":42}"#[..]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::close::CloseCode;
use crate::config::HubConfig;
use crate::error::HubError;
use crate::hub::Hub;
use crate::id::ConnId;
use crate::output::{Event, Output};

/// How many steps [`Cluster::drive`] takes before it calls the cluster livelocked.
pub const DEFAULT_STEP_LIMIT: usize = 1_000_000;

/// The cluster kept producing work past the step limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the cluster did not settle within {0} steps (livelock?)")]
pub struct Livelock(pub usize);

/// What one hub asked its driver to do, as recorded by the simulation.
#[derive(Debug, Default)]
pub struct NodeRecord {
    /// Frames sent to each connection, in order.
    pub frames: BTreeMap<ConnId, Vec<Bytes>>,
    /// Pings sent.
    pub pings: Vec<ConnId>,
    /// Close commands, in order.
    pub closes: Vec<(ConnId, CloseCode)>,
    /// Application events, in order.
    pub events: Vec<Event>,
    /// The node's current bus subscriptions.
    pub subscriptions: BTreeSet<String>,
    /// Interest errors: a `Subscribe` to a channel already subscribed, or an `Unsubscribe` of one
    /// that was not. Always empty for a correct hub.
    pub interest_errors: Vec<String>,
    /// Envelopes this node published, as `(channel, payload)`.
    pub published: Vec<(String, Bytes)>,
}

/// Several hubs on one in-memory bus, with a virtual clock.
#[derive(Debug)]
pub struct Cluster {
    now: Instant,
    start: Instant,
    hubs: Vec<Hub>,
    records: Vec<NodeRecord>,
    bus: VecDeque<(String, Bytes)>,
    /// Nodes that crashed: they take no input, fire no deadline, and their outputs are lost.
    crashed: Vec<bool>,
}

impl Cluster {
    /// `n` hubs with ids `node-0` .. `node-{n-1}`; `config(i)` gives each one's configuration
    /// (its `server_id` is then set by the cluster).
    ///
    /// # Panics
    /// If `config` returns an invalid configuration: a bug in the test that builds the cluster.
    pub fn new(n: usize, mut config: impl FnMut(usize) -> HubConfig) -> Self {
        let start = Instant::now();
        let hubs = (0..n)
            .map(|i| {
                let config = HubConfig { server_id: format!("node-{i}"), ..config(i) };
                match Hub::new(config, start, 1_700_000_000_000) {
                    Ok(hub) => hub,
                    Err(e) => panic!("invalid configuration for node {i}: {e}"),
                }
            })
            .collect();
        Self {
            now: start,
            start,
            hubs,
            records: (0..n).map(|_| NodeRecord::default()).collect(),
            bus: VecDeque::new(),
            crashed: vec![false; n],
        }
    }

    /// The virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Virtual time elapsed since the cluster was made.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Node `i`'s hub, for inputs and application calls (use [`now`](Self::now) as the time).
    pub fn hub(&mut self, i: usize) -> &mut Hub {
        &mut self.hubs[i]
    }

    /// Node `i`'s record.
    pub fn record(&self, i: usize) -> &NodeRecord {
        &self.records[i]
    }

    /// How many nodes there are.
    pub fn len(&self) -> usize {
        self.hubs.len()
    }

    /// Whether the cluster has no nodes.
    pub fn is_empty(&self) -> bool {
        self.hubs.is_empty()
    }

    /// Connects `conn` to node `i` and settles.
    pub fn connect(&mut self, i: usize, conn: ConnId) -> Result<(), SimError> {
        let now = self.now;
        self.hubs[i].handle_connect(conn, now)?;
        self.drive()?;
        Ok(())
    }

    /// Feeds a client frame to node `i` and settles.
    pub fn frame(&mut self, i: usize, conn: ConnId, frame: &str) -> Result<(), Livelock> {
        let now = self.now;
        self.hubs[i].handle_frame(conn, frame.as_bytes(), now);
        self.drive().map(|_| ())
    }

    /// Node `i` dies without a goodbye (`kill -9`): from now on it takes no input, fires no
    /// deadline, and everything it would have sent is lost.
    pub fn crash(&mut self, i: usize) {
        self.crashed[i] = true;
        while self.hubs[i].poll_output().is_some() {}
        self.records[i].subscriptions.clear();
    }

    /// Publishes an envelope on the bus as an outside process would (an Emitter).
    pub fn emit(&mut self, channel: impl Into<String>, payload: impl Into<Bytes>) {
        self.bus.push_back((channel.into(), payload.into()));
    }

    /// Takes the frames node `i` has sent to `conn` so far.
    pub fn take_frames(&mut self, i: usize, conn: ConnId) -> Vec<Bytes> {
        self.records[i].frames.remove(&conn).unwrap_or_default()
    }

    /// Takes the closes node `i` has sent so far.
    pub fn take_closes(&mut self, i: usize) -> Vec<(ConnId, CloseCode)> {
        std::mem::take(&mut self.records[i].closes)
    }

    /// Takes node `i`'s application events so far.
    pub fn take_events(&mut self, i: usize) -> Vec<Event> {
        std::mem::take(&mut self.records[i].events)
    }

    /// One step: drains every hub's outputs, then hands the oldest bus message to its
    /// subscribers. `false` when there was nothing to do.
    pub fn step(&mut self) -> bool {
        let mut busy = false;
        for ((hub, record), crashed) in
            self.hubs.iter_mut().zip(&mut self.records).zip(&self.crashed)
        {
            while let Some(output) = hub.poll_output() {
                if !crashed {
                    busy = true;
                    carry_out(output, record, &mut self.bus);
                }
            }
        }
        if let Some((channel, payload)) = self.bus.pop_front() {
            busy = true;
            for (hub, record) in self.hubs.iter_mut().zip(&self.records) {
                if record.subscriptions.contains(&channel) {
                    hub.handle_bus(&channel, &payload, self.now);
                }
            }
        }
        busy
    }

    /// Steps until nothing is left to do; fails after [`DEFAULT_STEP_LIMIT`] steps.
    pub fn drive(&mut self) -> Result<usize, Livelock> {
        self.drive_bounded(DEFAULT_STEP_LIMIT)
    }

    /// Steps until nothing is left to do; fails after `limit` steps.
    pub fn drive_bounded(&mut self, limit: usize) -> Result<usize, Livelock> {
        for steps in 0..limit {
            if !self.step() {
                return Ok(steps);
            }
        }
        Err(Livelock(limit))
    }

    /// Moves the virtual clock forward by `by`, firing every deadline on the way in order (each
    /// hub's `poll_timeout` is honoured), and settles after each.
    pub fn advance(&mut self, by: Duration) -> Result<(), Livelock> {
        let until = self.now + by;
        loop {
            let next = self
                .hubs
                .iter()
                .zip(&self.crashed)
                .filter(|(_, crashed)| !**crashed)
                .filter_map(|(hub, _)| hub.poll_timeout())
                .min();
            match next {
                Some(at) if at <= until => {
                    self.now = self.now.max(at);
                    let now = self.now;
                    for (hub, crashed) in self.hubs.iter_mut().zip(&self.crashed) {
                        if !crashed {
                            hub.handle_timeout(now);
                        }
                    }
                    self.drive()?;
                }
                _ => break,
            }
        }
        self.now = until;
        Ok(())
    }
}

fn carry_out(output: Output, record: &mut NodeRecord, bus: &mut VecDeque<(String, Bytes)>) {
    match output {
        Output::Transmit(t) => {
            for conn in t.to {
                record.frames.entry(conn).or_default().push(t.frame.clone());
            }
        }
        Output::Ping(conn) => record.pings.push(conn),
        Output::Close { conn, code, .. } => record.closes.push((conn, code)),
        Output::BusPublish { channel, payload } => {
            record.published.push((channel.clone(), payload.clone()));
            bus.push_back((channel, payload));
        }
        Output::BusSubscribe(channel) => {
            if !record.subscriptions.insert(channel.clone()) {
                record.interest_errors.push(format!("subscribe twice: {channel}"));
            }
        }
        Output::BusUnsubscribe(channel) => {
            if !record.subscriptions.remove(&channel) {
                record.interest_errors.push(format!("unsubscribe without subscribe: {channel}"));
            }
        }
        Output::Event(event) => record.events.push(event),
    }
}

/// An error of a simulated operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The hub refused the call.
    #[error(transparent)]
    Hub(#[from] HubError),
    /// The cluster did not settle.
    #[error(transparent)]
    Livelock(#[from] Livelock),
}

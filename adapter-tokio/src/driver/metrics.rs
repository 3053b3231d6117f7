//! Counters for operators, and their Prometheus text form.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use roomcast_core::HubStats;

/// Counters the driver keeps beside the hub's.
#[derive(Debug, Clone, Default)]
pub(crate) struct Metrics {
    pub(crate) connections_opened: u64,
    pub(crate) queue_overflows: u64,
    pub(crate) events_dropped: u64,
    /// Connections closed because every socket together held more than the budget.
    pub(crate) budget_closes: u64,
    /// Bytes every fast-path socket held unwritten, when the snapshot was taken.
    pub(crate) queued_bytes: usize,
    /// Turns of the hub task's loop that did work (a round of commands, or timers).
    pub(crate) rounds: u64,
    /// Socket writes at the ends of rounds: one per socket that got frames in the round.
    pub(crate) socket_writes: u64,
    /// Rounds whose writes were split over threads ([`Options::write_threads`](crate::Options::write_threads)).
    pub(crate) split_rounds: u64,
    /// Time the hub task spent in rounds, the sockets' reads it yields to within a round
    /// included; and of it, the time spent writing the sockets.
    pub(crate) busy: Duration,
    pub(crate) writing: Duration,
    /// Bytes the hub task keeps for busy rounds (its batch buffer, pooled write buffers, spare
    /// lists), when the snapshot was taken.
    pub(crate) kept_bytes: usize,
    /// Times the hub task, idle, gave back what it kept for busy rounds.
    pub(crate) idle_shrinks: u64,
}

/// A point-in-time copy of every counter of one instance.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Open connections.
    pub connections: usize,
    /// Rooms with local members.
    pub rooms: usize,
    /// Users with local sessions.
    pub users: usize,
    /// The hub's counters.
    pub hub: HubStats,
    pub(crate) driver: Metrics,
    /// The bus's counters.
    pub bus: crate::BusMetrics,
}

impl Snapshot {
    /// Connections accepted since start.
    pub fn connections_opened(&self) -> u64 {
        self.driver.connections_opened
    }

    /// Sockets closed with 4005 because their queue overflowed.
    pub fn queue_overflows(&self) -> u64 {
        self.driver.queue_overflows
    }

    /// Connections closed by the server, by close code.
    pub fn closes(&self) -> &BTreeMap<u16, u64> {
        &self.hub.closes
    }

    /// Clients' messages refused because the application's event stream was full; each closed
    /// its sender with 4009 (nothing is dropped silently).
    pub fn events_dropped(&self) -> u64 {
        self.driver.events_dropped
    }

    /// Bytes every fast-path socket held unwritten, together, when the snapshot was taken.
    pub fn queued_bytes(&self) -> usize {
        self.driver.queued_bytes
    }

    /// Connections closed because every socket together held more than
    /// [`Options::max_queued_bytes`](crate::Options::max_queued_bytes).
    pub fn budget_closes(&self) -> u64 {
        self.driver.budget_closes
    }

    /// Turns of the hub task's loop that did work: a round of commands (or due timers) applied,
    /// then every socket that got frames written once.
    pub fn hub_rounds(&self) -> u64 {
        self.driver.rounds
    }

    /// Socket writes at the ends of the hub's rounds (one per socket that got frames in a
    /// round, however many frames): with [`Snapshot::hub_rounds`], how much each write carries.
    pub fn hub_socket_writes(&self) -> u64 {
        self.driver.socket_writes
    }

    /// Rounds whose socket writes were split over several threads
    /// ([`Options::write_threads`](crate::Options::write_threads)).
    pub fn hub_split_rounds(&self) -> u64 {
        self.driver.split_rounds
    }

    /// Time the hub task spent in rounds since start (the sockets' reads it yields to within a
    /// round included). Its rate is the instance's load: near one second per second, the hub
    /// is never idle, and each round grows with what arrives meanwhile.
    pub fn hub_busy(&self) -> Duration {
        self.driver.busy
    }

    /// Of [`Snapshot::hub_busy`], the time spent writing the sockets at the ends of rounds.
    pub fn hub_writing(&self) -> Duration {
        self.driver.writing
    }

    /// Bytes the hub task keeps for busy rounds (its batch buffer, emptied write buffers, spare
    /// lists of frames). Given back a second after the hub task was last busy: after a storm or a
    /// burst, the server's memory comes back.
    pub fn kept_bytes(&self) -> usize {
        self.driver.kept_bytes
    }

    /// Times the hub task, idle for a second, gave back what it kept for busy rounds.
    pub fn idle_shrinks(&self) -> u64 {
        self.driver.idle_shrinks
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn to_prometheus(&self) -> String {
        let (hub, driver, bus) = (&self.hub, &self.driver, &self.bus);
        let gauge = "gauge";
        let counter = "counter";
        let mut rows: Vec<(&str, &str, &str, u64)> = vec![
            ("connections", gauge, "Open WebSocket connections.", self.connections as u64),
            ("rooms", gauge, "Rooms with at least one local member.", self.rooms as u64),
            ("users", gauge, "Users with at least one local session.", self.users as u64),
            (
                "connections_opened_total",
                counter,
                "Connections accepted.",
                driver.connections_opened,
            ),
            ("frames_in_total", counter, "Text frames received from clients.", hub.frames_in),
            ("bad_frames_total", counter, "Client frames refused as bad_frame.", hub.bad_frames),
            ("frames_out_total", counter, "Frames serialized for sending.", hub.transmits),
            (
                "deliveries_total",
                counter,
                "Frames handed to connections, per recipient.",
                hub.deliveries,
            ),
            ("published_total", counter, "Envelopes published to the bus.", hub.published),
            ("bus_received_total", counter, "Envelopes received from the bus.", hub.bus_in),
            ("bus_invalid_total", counter, "Envelopes dropped as malformed.", hub.bus_invalid),
            ("queue_overflows_total", counter, "Sockets closed with 4005.", driver.queue_overflows),
            (
                "queued_bytes",
                gauge,
                "Bytes every socket holds unwritten, together (limit: max_queued_bytes).",
                driver.queued_bytes as u64,
            ),
            (
                "budget_closes_total",
                counter,
                "Sockets closed with 4005 because all together held more than max_queued_bytes.",
                driver.budget_closes,
            ),
            (
                "events_dropped_total",
                counter,
                "Client messages refused (sender closed with 4009): the event stream was full.",
                driver.events_dropped,
            ),
            (
                "bus_publish_dropped_total",
                counter,
                "Envelopes lost on the way out.",
                bus.publish_dropped,
            ),
            (
                "bus_received_dropped_total",
                counter,
                "Envelopes lost on the way in.",
                bus.received_dropped,
            ),
            ("bus_reconnects_total", counter, "Times the bus reconnected.", bus.reconnects),
        ];
        if let Some(connected) = bus.connected {
            rows.push((
                "bus_connected",
                gauge,
                "Whether the bus is connected.",
                u64::from(connected),
            ));
        }
        rows.extend([
            (
                "hub_rounds_total",
                counter,
                "Rounds of the hub task: commands applied, then each socket with frames written once.",
                driver.rounds,
            ),
            (
                "hub_socket_writes_total",
                counter,
                "Socket writes at the ends of rounds (one per socket that got frames in a round).",
                driver.socket_writes,
            ),
            (
                "hub_split_rounds_total",
                counter,
                "Rounds whose socket writes were split over several threads (--write-threads).",
                driver.split_rounds,
            ),
            (
                "kept_bytes",
                gauge,
                "Bytes the hub task keeps for busy rounds; given back once it is idle for a second.",
                driver.kept_bytes as u64,
            ),
            (
                "idle_shrinks_total",
                counter,
                "Times the idle hub task gave back what it kept for busy rounds.",
                driver.idle_shrinks,
            ),
        ]);
        let seconds = [
            (
                "hub_busy_seconds_total",
                "Time the hub task spent in rounds; a rate near 1 means the instance is saturated.",
                driver.busy,
            ),
            (
                "hub_write_seconds_total",
                "Of the hub's busy time, the time spent writing sockets.",
                driver.writing,
            ),
        ];
        let mut out = String::new();
        for (name, kind, help, value) in rows {
            metric(&mut out, name, kind, help, value);
        }
        for (name, help, value) in seconds {
            metric(&mut out, name, counter, help, format_args!("{:.6}", value.as_secs_f64()));
        }
        let _ = writeln!(
            out,
            "# HELP roomcast_closes_total Connections closed by the server, by code."
        );
        let _ = writeln!(out, "# TYPE roomcast_closes_total counter");
        for (code, count) in &hub.closes {
            let _ = writeln!(out, "roomcast_closes_total{{code=\"{code}\"}} {count}");
        }
        out
    }
}

/// One metric of the Prometheus text format: its help, its type, its value.
fn metric(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "# HELP roomcast_{name} {help}");
    let _ = writeln!(out, "# TYPE roomcast_{name} {kind}");
    let _ = writeln!(out, "roomcast_{name} {value}");
}

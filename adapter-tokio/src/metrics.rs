//! Counters for operators, and their Prometheus text form.

use std::collections::BTreeMap;
use std::fmt::Write;

use roomcast_core::HubStats;

/// Counters the driver keeps beside the hub's.
#[derive(Debug, Clone, Default)]
pub(crate) struct Metrics {
    pub(crate) connections_opened: u64,
    pub(crate) queue_overflows: u64,
    pub(crate) events_dropped: u64,
    pub(crate) closes: BTreeMap<u16, u64>,
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
        &self.driver.closes
    }

    /// Application events dropped because nobody consumed them in time.
    pub fn events_dropped(&self) -> u64 {
        self.driver.events_dropped
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn to_prometheus(&self) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP roomcast_{name} {help}\n# TYPE roomcast_{name} {kind}\nroomcast_{name} {value}"
            );
        };
        metric("connections", "gauge", "Open WebSocket connections.", self.connections as u64);
        metric("rooms", "gauge", "Rooms with at least one local member.", self.rooms as u64);
        metric("users", "gauge", "Users with at least one local session.", self.users as u64);
        metric(
            "connections_opened_total",
            "counter",
            "Connections accepted.",
            self.driver.connections_opened,
        );
        metric(
            "frames_in_total",
            "counter",
            "Text frames received from clients.",
            self.hub.frames_in,
        );
        metric(
            "bad_frames_total",
            "counter",
            "Client frames refused as bad_frame.",
            self.hub.bad_frames,
        );
        metric(
            "frames_out_total",
            "counter",
            "Frames serialized for sending (one per send, whatever the recipients).",
            self.hub.transmits,
        );
        metric(
            "deliveries_total",
            "counter",
            "Frames handed to connections (one per recipient).",
            self.hub.deliveries,
        );
        metric("published_total", "counter", "Envelopes published to the bus.", self.hub.published);
        metric(
            "bus_received_total",
            "counter",
            "Envelopes received from the bus.",
            self.hub.bus_in,
        );
        metric(
            "bus_invalid_total",
            "counter",
            "Envelopes dropped as malformed.",
            self.hub.bus_invalid,
        );
        metric(
            "queue_overflows_total",
            "counter",
            "Sockets closed with 4005 (slow consumer).",
            self.driver.queue_overflows,
        );
        metric(
            "events_dropped_total",
            "counter",
            "Application events dropped (not consumed in time).",
            self.driver.events_dropped,
        );
        let _ = writeln!(
            out,
            "# HELP roomcast_closes_total Connections closed by the server, by close code."
        );
        let _ = writeln!(out, "# TYPE roomcast_closes_total counter");
        for (code, count) in &self.driver.closes {
            let _ = writeln!(out, "roomcast_closes_total{{code=\"{code}\"}} {count}");
        }
        out
    }
}

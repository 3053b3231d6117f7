//! Envelopes from other instances and emitters.

use std::time::Instant;

use super::{Delivery, Hub};
use crate::ConnId;
use crate::envelope::Envelope;

impl Hub {
    /// An envelope arrived from the bus. It is delivered to this instance's connections with its
    /// exclusions honoured; envelopes this instance published itself, and malformed ones, are
    /// dropped (and counted in [`HubStats`](crate::HubStats)).
    ///
    /// `channel` is the one it arrived on; delivery follows the envelope's `type` and `target`,
    /// as ignis emitters expect, so the channel only shows up in statistics.
    pub fn handle_bus(&mut self, channel: &str, payload: &[u8], now: Instant) {
        self.advance(now);
        self.stats.bus_in += 1;
        self.stats.bus_bytes_in += (channel.len() + payload.len()) as u64;
        let envelope = match Envelope::parse(payload) {
            Ok(envelope) => envelope,
            Err(_) => {
                self.stats.bus_invalid += 1;
                return;
            }
        };
        if envelope.server_id == self.config.server_id {
            self.stats.bus_own += 1;
            return;
        }
        let exclude_conns: Vec<ConnId> = envelope.excluded_conns().collect();
        let exclude_users: Vec<&str> = envelope.exclude_users.iter().map(|u| &**u).collect();
        self.deliver_local(&Delivery {
            kind: envelope.kind,
            target: envelope.target.as_deref(),
            event: &envelope.event,
            data: envelope.data,
            exclude_conns: &exclude_conns,
            exclude_users: &exclude_users,
        });
    }
}

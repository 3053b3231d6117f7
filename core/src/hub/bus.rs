//! Envelopes from other instances and emitters.

use std::time::Instant;

use serde_json::value::RawValue;

use super::{Delivery, Hub};
use crate::envelope::Envelope;
use crate::id::ConnId;

impl Hub {
    /// An envelope arrived from the bus. It is delivered to this instance's connections with its
    /// exclusions honoured; envelopes this instance published itself, and malformed ones, are
    /// dropped (and counted in [`HubStats`](crate::HubStats)).
    ///
    /// `channel` is the one it arrived on; delivery follows the envelope's `type` and `target`,
    /// as ignis emitters expect, so the channel only shows up in statistics.
    pub fn handle_bus(&mut self, channel: &str, payload: &[u8], now: Instant) {
        let now = self.advance(now);
        self.stats.bus_in += 1;
        self.stats.bus_bytes_in += (channel.len() + payload.len()) as u64;
        if self.config.cluster_presence && self.channels.is_presence(channel) {
            return self.on_presence_message(payload, now);
        }
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
        let rooms: Vec<&str> = envelope.rooms.iter().map(|r| &**r).collect();
        let except_rooms: Vec<&str> = envelope.except_rooms.iter().map(|r| &**r).collect();
        let d = Delivery {
            kind: envelope.kind,
            target: envelope.target.as_deref(),
            event: &envelope.event,
            data: envelope.data,
            exclude_conns: &exclude_conns,
            exclude_users: &exclude_users,
            rooms: &rooms,
            except_rooms: &except_rooms,
            path: envelope.path.as_deref().filter(|p| crate::wire::valid_path(p)),
        };
        self.deliver_local(&d, false);
    }
}

impl Hub {
    /// The bus may have lost envelopes (it was disconnected, and is now subscribed again): with
    /// cluster presence, every room's members are asked for again; and every
    /// local member of every room is sent
    /// `{"event":"resync","room":<room>,"data":{"reason":"bus_reconnected"}}`, so that clients
    /// can fetch what they may have missed. One frame per room, shared by its members.
    pub fn handle_bus_gap(&mut self, now: Instant) {
        self.advance(now);
        if self.config.cluster_presence {
            // Presence deltas may have been lost too: ask for every room's members again.
            let rooms: Vec<String> = self.registry.rooms.names().map(str::to_owned).collect();
            for room in rooms {
                let channel = self.channels.presence(&room);
                self.publish_presence(channel, crate::peer::PeerOp::SyncRequest, &room, Vec::new());
            }
        }
        let data: Option<&RawValue> = serde_json::from_str(r#"{"reason":"bus_reconnected"}"#).ok();
        let (out, stats) = (&mut self.out, &mut self.stats);
        for (room, members) in self.registry.rooms.iter() {
            let frame = crate::wire::ServerFrame {
                path: None,
                event: "resync",
                room: Some(room),
                id: None,
                offset: None,
                data,
            }
            .encode();
            stats.transmits += 1;
            stats.deliveries += members.len() as u64;
            let to = members.iter().copied().collect();
            out.push_back(crate::output::Output::Transmit(crate::output::Transmit { to, frame }));
        }
    }
}

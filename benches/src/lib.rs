//! Fixtures shared by roomcast's benchmarks.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod client;

use std::time::Instant;

use roomcast_core::{ConnId, Hub, HubConfig};

/// A hub with `members` anonymous connections (ids 0..members), all in room `"room"`, with every
/// output drained. The rate limit is off: benchmarks send far faster than any client may.
pub fn hub_with_room(members: u128, now: Instant) -> Hub {
    let config = HubConfig { rate_limit: None, ..HubConfig::default() };
    let mut hub = match Hub::new(config, now, 0) {
        Ok(hub) => hub,
        Err(e) => unreachable!("the default configuration is valid: {e}"),
    };
    for i in 0..members {
        let conn = ConnId::from_u128(i);
        let joined = hub.handle_connect(conn, now).and_then(|()| hub.join(conn, "room", now));
        assert!(joined.is_ok(), "fixture setup failed");
    }
    drain(&mut hub);
    hub
}

/// Drains every output; returns how many recipients the transmits named in all.
pub fn drain(hub: &mut Hub) -> usize {
    let mut recipients = 0;
    while let Some(output) = hub.poll_output() {
        if let roomcast_core::Output::Transmit(t) = output {
            recipients += t.to.len();
        }
    }
    recipients
}

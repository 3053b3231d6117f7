//! Time as an input: the deadline of each connection (auth, heartbeat, next ping) in one heap
//! entry, and what happens when it comes.

use std::time::Instant;

use indexmap::IndexMap;

use super::{Conn, Hub, Stage};
use crate::close::CloseCode;
use crate::config::HubConfig;
use crate::id::ConnId;
use crate::members::Hasher;
use crate::output::Output;
use crate::wire;

impl Hub {
    /// Time has passed: closes connections whose auth or heartbeat deadline has come, and pings
    /// the silent ones. Early or repeated calls do nothing harmful.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.advance(now);
        while let Some((at, id)) = self.timers.peek_due(now) {
            if !is_live(&self.registry.conns, at, id) {
                self.timers.pop(); // stale: the connection left, or its deadline moved
                continue;
            }
            self.expire(id, now);
            match self.registry.conns.get_mut(&id) {
                Some(c) => {
                    let next = deadline(&self.config, c);
                    c.scheduled = Some(next);
                    self.timers.replace_top(next, id);
                }
                None => self.timers.pop(),
            }
        }
        let conns = &self.registry.conns;
        self.timers.prune(|at, id| is_live(conns, at, id));
        if self.config.cluster_presence {
            self.heartbeat(now);
            self.expire_peers(now);
        }
        self.expire_queries(now);
        let rooms = &self.registry.rooms;
        self.history.expire(now, |room| rooms.get(room).is_some());
    }

    /// Makes sure the connection's earliest deadline has a live timer entry.
    pub(super) fn arm(&mut self, id: ConnId) {
        let Some(c) = self.registry.conns.get(&id) else { return };
        let next = deadline(&self.config, c);
        if c.scheduled.is_none_or(|at| next < at) {
            if let Some(c) = self.registry.conns.get_mut(&id) {
                c.scheduled = Some(next);
            }
            self.timers.schedule(next, id);
        }
    }

    /// Acts on whatever deadline of `id` has come.
    fn expire(&mut self, id: ConnId, now: Instant) {
        let Some(c) = self.registry.conns.get_mut(&id) else {
            return;
        };
        match c.stage {
            Stage::AwaitingAuth { deadline } if now >= deadline => {
                return self.close_conn(id, CloseCode::AUTH_TIMEOUT, "authentication timeout");
            }
            Stage::Authenticating { deadline } if now >= deadline => {
                return self.close_conn(
                    id,
                    CloseCode::AUTH_TIMEOUT,
                    "authentication not decided in time",
                );
            }
            Stage::Authenticated { expires: Some(expires) } | Stage::Expiring { expires }
                if now >= expires =>
            {
                return self.close_conn(id, CloseCode::TOKEN_EXPIRED, "token expired");
            }
            Stage::Authenticated { expires: Some(expires) }
                if now >= notice(&self.config, expires) =>
            {
                c.stage = Stage::Expiring { expires };
                let frame = wire::expiry_frame("token_expiring", None, Some(expires - now));
                self.transmit(vec![id], frame);
                return;
            }
            _ => {}
        }
        if now >= c.last_activity + self.config.heartbeat_timeout {
            return self.close_conn(id, CloseCode::HEARTBEAT_TIMEOUT, "heartbeat timeout");
        }
        if now >= c.last_activity.max(c.last_ping) + self.config.ping_interval {
            c.last_ping = now;
            self.out.push_back(Output::Ping(id));
        }
    }
}

/// Whether a deadline entry `(at, id)` is its connection's live one: the connection is still
/// here and its deadline has not moved since the entry was scheduled.
pub(super) fn is_live(conns: &IndexMap<ConnId, Conn, Hasher>, at: Instant, id: ConnId) -> bool {
    conns.get(&id).is_some_and(|c| c.scheduled == Some(at))
}

/// The earliest of a connection's deadlines: its auth deadline, its heartbeat deadline, its next
/// ping.
fn deadline(config: &HubConfig, c: &Conn) -> Instant {
    let idle = c.last_activity + config.heartbeat_timeout;
    let ping = c.last_activity.max(c.last_ping) + config.ping_interval;
    let next = idle.min(ping);
    match c.stage {
        Stage::AwaitingAuth { deadline } | Stage::Authenticating { deadline } => next.min(deadline),
        Stage::Authenticated { expires: None } => next,
        Stage::Authenticated { expires: Some(expires) } => next.min(notice(config, expires)),
        Stage::Expiring { expires } => next.min(expires),
    }
}

/// When a connection whose credentials expire at `expires` is told so.
fn notice(config: &HubConfig, expires: Instant) -> Instant {
    expires.checked_sub(config.token_refresh_notice).unwrap_or(expires)
}

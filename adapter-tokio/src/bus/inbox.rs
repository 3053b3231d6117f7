//! Where a bus hands what arrives for this instance: envelopes, gaps and peer leases, as commands
//! to the hub task.

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::driver::ToHub;

/// Where a bus delivers envelopes for one instance.
///
/// It does not keep the instance alive: once every [`Handle`](crate::Handle) and socket is gone,
/// deliveries fail and the bus can let go.
#[derive(Clone, Debug)]
pub struct BusInbox {
    pub(crate) commands: mpsc::WeakSender<ToHub>,
}

impl BusInbox {
    /// Hands an envelope that arrived on `channel` to the instance, waiting while its queue is
    /// full. `false` once the instance has stopped.
    pub async fn deliver(&self, channel: String, payload: Bytes) -> bool {
        match self.commands.upgrade() {
            Some(commands) => commands.send(ToHub::Bus { channel, payload }).await.is_ok(),
            None => false,
        }
    }

    /// Reports that the bus may have lost envelopes (it reconnected): members of every room are
    /// told to resync. `false` once the instance has stopped.
    pub async fn gap(&self) -> bool {
        match self.commands.upgrade() {
            Some(commands) => commands.send(ToHub::BusGap).await.is_ok(),
            None => false,
        }
    }

    /// Reports that another instance holds a lease for `remaining` from now (cluster presence).
    pub async fn lease(&self, server_id: String, remaining: std::time::Duration) -> bool {
        match self.commands.upgrade() {
            Some(commands) => {
                commands.send(ToHub::PeerLease { server_id, remaining }).await.is_ok()
            }
            None => false,
        }
    }

    /// Hands an envelope over without waiting; `false` if the queue is full (the envelope is
    /// dropped: delivery is at most once) or the instance has stopped.
    pub fn try_deliver(&self, channel: String, payload: Bytes) -> bool {
        self.commands.upgrade().is_some_and(|c| c.try_send(ToHub::Bus { channel, payload }).is_ok())
    }
}

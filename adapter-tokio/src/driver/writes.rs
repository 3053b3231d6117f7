//! The write round: every socket a round queued frames for is flushed once, on this thread or
//! split over the write threads; past the budget, the sockets furthest behind are shed.

use super::*;

impl Driver {
    /// Writes every socket that has frames in this round, one write each. What a socket cannot
    /// take is copied into its buffer: the budget is checked after each. A socket that cannot
    /// hold them all within its limits is a slow consumer.
    pub(super) fn flush(&mut self) {
        if self.budget.held() <= self.budget.limit() {
            self.shed_above = self.budget.limit();
        }
        let mut dirty = std::mem::take(&mut self.dirty);
        self.metrics.socket_writes += dirty.len() as u64;
        let parts = write_threads::parts(dirty.len(), self.write_threads);
        if parts > 1 {
            self.metrics.split_rounds += 1;
            let left = self.write_split(&dirty, parts);
            self.write_alone(left);
        } else {
            self.write_alone(dirty.drain(..));
        }
        dirty.clear();
        self.dirty = dirty;
        self.round_queued = (0, 0);
        self.batch.clear();
        if self.batch.capacity() > MAX_BATCH_KEPT {
            self.batch = Vec::new();
        }
    }

    /// Writes the sockets `conns` on this thread, one after the other, checking the budget
    /// after each.
    pub(super) fn write_alone(&mut self, conns: impl IntoIterator<Item = ConnId>) {
        for conn in conns {
            // Gone meanwhile (closed, disconnected): its frames went with it.
            let Some(Outbox::Link { link, round }) = self.outboxes.get_mut(&conn) else {
                continue;
            };
            if !link.flush(&self.batch, round, self.limits, &mut self.buffers) {
                self.slow.push(conn);
            }
            round.clear(&mut self.spare_rounds);
            if self.budget.held() > self.shed_above {
                self.shed();
            }
        }
    }

    /// Writes the sockets `dirty` in `parts` parts on as many threads ([`write_threads`]); returns
    /// those left unwritten because the budget went over, for [`write_alone`](Self::write_alone).
    pub(super) fn write_split(&mut self, dirty: &[ConnId], parts: usize) -> Vec<ConnId> {
        let jobs: Vec<Job<'_>> = dirty
            .iter()
            .filter_map(|&conn| match self.outboxes.get(&conn) {
                Some(Outbox::Link { link, round }) => Some(Job { conn, link, round }),
                // Gone meanwhile (closed, disconnected): its frames went with it.
                _ => None,
            })
            .collect();
        if self.write_pools.len() < parts - 1 {
            self.write_pools.resize_with(parts - 1, BufferPool::default);
        }
        let shared = write_threads::Shared {
            batch: &self.batch,
            limits: self.limits,
            budget: &self.budget,
            shed_above: self.shed_above,
        };
        let pools = &mut self.write_pools[..parts - 1];
        let written = write_threads::write_split(&jobs, shared, &mut self.buffers, pools);
        drop(jobs);
        for conn in &written.done {
            if let Some(Outbox::Link { round, .. }) = self.outboxes.get_mut(conn) {
                round.clear(&mut self.spare_rounds);
            }
        }
        self.slow.extend(written.slow);
        // Over the budget with every socket written: shed now, as after the last socket of a
        // round written alone.
        if written.left.is_empty() && self.budget.held() > self.shed_above {
            self.shed();
        }
        written.left
    }

    /// Every socket together holds more than the budget: the connections furthest behind (the
    /// most bytes unwritten) are closed with 4005 (what they held dropped), until the total is
    /// under nine tenths of the budget. A scan of every socket, but only when over the budget,
    /// and then it frees a tenth of it at least.
    pub(super) fn shed(&mut self) {
        let mut holders: Vec<(usize, ConnId)> = self
            .outboxes
            .iter()
            .filter_map(|(conn, outbox)| match outbox {
                Outbox::Link { link, .. } => Some((link.sheddable()?, *conn)),
                Outbox::Queue { .. } => None,
            })
            .filter(|(held, _)| *held > 0)
            .collect();
        holders.sort_unstable_by(|a, b| b.cmp(a));
        let target = self.budget.target();
        for (_, conn) in holders {
            if self.budget.held() <= target {
                break;
            }
            if let Some(Outbox::Link { link, round }) = self.outboxes.get_mut(&conn) {
                link.shed();
                round.clear(&mut self.spare_rounds);
                self.metrics.budget_closes += 1;
                self.slow.push(conn);
            }
        }
        // What closing sockets still hold (a frame they had begun, their close frame) is freed
        // when they end: until the total grows by another tenth, the next scan could free
        // nothing more.
        self.shed_above = self.budget.limit().max(self.budget.held() + self.budget.limit() / 10);
    }
}

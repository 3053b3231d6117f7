//! Emptied write buffers, kept by the hub task for the next batch.

/// Empty write buffers kept by the hub task between batches, so that a busy socket does not
/// allocate (and fault in) a fresh buffer for every batch. Bounded in bytes; a buffer that grew
/// past [`BufferPool::MAX_KEPT`] is freed instead.
#[derive(Debug, Default)]
pub(crate) struct BufferPool {
    free: Vec<Vec<u8>>,
    bytes: usize,
}

impl BufferPool {
    /// Bytes of capacity the pool holds.
    pub(crate) fn held(&self) -> usize {
        self.bytes
    }
}

impl BufferPool {
    /// The largest buffer worth keeping.
    const MAX_KEPT: usize = 64 * 1024;
    /// The most the pool holds in all.
    const BUDGET: usize = 16 * 1024 * 1024;

    pub(crate) fn take(&mut self) -> Vec<u8> {
        let buf = self.free.pop().unwrap_or_default();
        self.bytes -= buf.capacity();
        buf
    }

    pub(crate) fn put(&mut self, mut buf: Vec<u8>) {
        let capacity = buf.capacity();
        if capacity == 0 || capacity > Self::MAX_KEPT || self.bytes + capacity > Self::BUDGET {
            return;
        }
        buf.clear();
        self.bytes += capacity;
        self.free.push(buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_keeps_neither_oversized_buffers_nor_more_than_its_budget() {
        let mut pool = BufferPool::default();
        pool.put(Vec::with_capacity(BufferPool::MAX_KEPT + 1));
        assert!(pool.free.is_empty());
        for _ in 0..BufferPool::BUDGET / BufferPool::MAX_KEPT + 10 {
            pool.put(Vec::with_capacity(BufferPool::MAX_KEPT));
        }
        assert!(pool.bytes <= BufferPool::BUDGET);
    }
}

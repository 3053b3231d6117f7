//! A round's writes split over threads ([`Options::write_threads`](crate::Options::write_threads)).
//!
//! At the end of a round the hub writes each socket that got frames once. Nearly all of that time
//! is the kernel's TCP send path, one `send` per socket, and it does not shrink with batching: a
//! message to a room of 10,000 is 10,000 sends. So a round of many sockets is split into
//! contiguous parts, each written on its own thread, the first on the hub's. Nothing is shared
//! that needs more than it has: the round's frames are read-only while they are written, each
//! socket has its own lock, and each thread its own pool of buffers. The global budget of queued
//! bytes is checked before each socket: once it is over, a thread stops and leaves the rest of
//! its part to the hub, which sheds and writes them one by one as in a round written alone.

use std::thread;

use roomcast_core::ConnId;

use crate::driver::round::Round;
use crate::transport::budget::Budget;
use crate::transport::buffer_pool::BufferPool;
use crate::transport::link::Link;
use crate::transport::write_buffer::Limits;

/// Sockets a thread of a split round gets at least. A socket's write takes ~5-10 µs and starting
/// a thread ~20-50 µs, so a part this large costs its thread a few percent at most.
pub(crate) const SOCKETS_PER_THREAD: usize = 256;

/// Into how many parts a round of `sockets` is split with `threads` allowed.
pub(crate) fn parts(sockets: usize, threads: usize) -> usize {
    threads.min(sockets / SOCKETS_PER_THREAD).max(1)
}

/// One socket's frames of a round.
pub(crate) struct Job<'a> {
    pub(crate) conn: ConnId,
    pub(crate) link: &'a Link,
    pub(crate) round: &'a Round,
}

/// What the writes of a split round leave to the hub.
#[derive(Debug, Default)]
pub(crate) struct Written {
    /// Sockets written.
    pub(crate) done: Vec<ConnId>,
    /// Sockets that could not take their frames within their limits: slow consumers.
    pub(crate) slow: Vec<ConnId>,
    /// Sockets not written because the budget went over: the hub writes them, shedding first.
    pub(crate) left: Vec<ConnId>,
}

/// The frames of a round and what bounds their writes, the same for every thread.
#[derive(Clone, Copy)]
pub(crate) struct Shared<'a> {
    pub(crate) batch: &'a [u8],
    pub(crate) limits: Limits,
    pub(crate) budget: &'a Budget,
    pub(crate) shed_above: usize,
}

/// Writes `jobs` in `pools.len() + 1` parts, the first on this thread with `own`, the others on
/// threads of their own with a pool each. A part whose thread cannot be started is written here
/// after the first.
pub(crate) fn write_split(
    jobs: &[Job<'_>],
    shared: Shared<'_>,
    own: &mut BufferPool,
    pools: &mut [BufferPool],
) -> Written {
    let mut written = Written::default();
    let per_part = jobs.len().div_ceil(pools.len() + 1).max(1);
    let mut parts = jobs.chunks(per_part);
    let first = parts.next().unwrap_or_default();
    thread::scope(|scope| {
        let spawned: Vec<_> = parts
            .zip(pools.iter_mut())
            .map(|(part, pool)| {
                let thread = thread::Builder::new()
                    .name("roomcast-write".into())
                    .spawn_scoped(scope, move || write_part(part, shared, pool));
                (part, thread)
            })
            .collect();
        let (slow, done) = write_part(first, shared, own);
        written.note(first, slow, done);
        for (part, thread) in spawned {
            let (slow, done) = match thread {
                Ok(thread) => match thread.join() {
                    Ok(result) => result,
                    // `Link::flush` does not panic on anything a peer sends; if it did, the hub
                    // task fails as it would have on its own thread.
                    Err(panic) => std::panic::resume_unwind(panic),
                },
                Err(_) => write_part(part, shared, own),
            };
            written.note(part, slow, done);
        }
    });
    written
}

impl Written {
    fn note(&mut self, part: &[Job<'_>], slow: Vec<ConnId>, done: usize) {
        self.slow.extend(slow);
        self.done.extend(part[..done].iter().map(|job| job.conn));
        self.left.extend(part[done..].iter().map(|job| job.conn));
    }
}

/// Writes `part` in order until the budget is over: the slow consumers among the sockets
/// written, and how many were.
fn write_part(part: &[Job<'_>], shared: Shared<'_>, pool: &mut BufferPool) -> (Vec<ConnId>, usize) {
    let mut slow = Vec::new();
    for (done, job) in part.iter().enumerate() {
        if shared.budget.held() > shared.shed_above {
            return (slow, done);
        }
        if !job.link.flush(shared.batch, job.round, shared.limits, pool) {
            slow.push(job.conn);
        }
    }
    (slow, part.len())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use roomcast_core::ConnId;
    use tokio::net::TcpStream;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

    use super::{Job, SOCKETS_PER_THREAD, Shared, parts, write_split};
    use crate::transport::budget::Budget;
    use crate::transport::buffer_pool::BufferPool;
    use crate::transport::codec::put_frame;
    use crate::transport::link::Link;
    use crate::transport::link::tests::{pair, read_exactly, round};
    use crate::transport::write_buffer::Limits;

    /// `n` links on loopback sockets, their clients' ends, and connection ids for them.
    async fn sockets(n: u128) -> (Vec<Link>, Vec<TcpStream>, Vec<ConnId>) {
        let (mut links, mut clients) = (Vec::new(), Vec::new());
        for _ in 0..n {
            let (link, client) = pair().await;
            links.push(link);
            clients.push(client);
        }
        (links, clients, (1..=n).map(ConnId::from_u128).collect())
    }

    #[test]
    fn a_round_is_split_only_into_parts_of_enough_sockets() {
        assert_eq!(parts(10_000, 1), 1, "one thread allowed: written alone");
        assert_eq!(parts(SOCKETS_PER_THREAD * 2 - 1, 4), 1);
        assert_eq!(parts(SOCKETS_PER_THREAD * 2, 4), 2);
        assert_eq!(parts(10_000, 4), 4);
        assert_eq!(parts(0, 0), 1, "zero threads means the hub's own");
    }

    #[tokio::test]
    async fn every_part_is_written_and_its_slow_consumers_are_reported() {
        let text = OpCode::Data(Data::Text);
        let mut batch = Vec::new();
        let frames: Vec<_> = (0..4).map(|i| put_frame(&mut batch, text, &[b'a' + i; 5])).collect();
        // Three sockets in two parts (two, then one): one frame, three (over the limit of two,
        // so a slow consumer), two.
        let rounds = [round(&frames[..1]), round(&frames[1..]), round(&frames[2..])];
        let (links, mut clients, conns) = sockets(3).await;
        let jobs: Vec<_> =
            (0..3).map(|i| Job { conn: conns[i], link: &links[i], round: &rounds[i] }).collect();
        let budget = Budget::new(usize::MAX);
        let limits = Limits { frames: 2, bytes: 1 << 20 };
        let shared = Shared { batch: &batch, limits, budget: &budget, shed_above: usize::MAX };
        let (mut own, mut pools) = (BufferPool::default(), vec![BufferPool::default()]);
        let written = write_split(&jobs, shared, &mut own, &mut pools);
        assert_eq!(written.done, conns, "every socket written, in the order of the parts");
        assert_eq!(written.slow, [conns[1]]);
        assert!(written.left.is_empty());
        let expected = |range: std::ops::Range<usize>| -> Vec<u8> {
            frames[range].iter().flat_map(|f| batch[f.clone()].to_vec()).collect()
        };
        for (client, range) in clients.iter_mut().zip([0..1, 1..3, 2..4]) {
            let expected = expected(range);
            assert_eq!(read_exactly(client, expected.len()).await, expected);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

        /// However a round is cut (more threads than sockets, uneven parts), every socket is
        /// written once, in order, with the frames that fit its limit; those that did not fit
        /// are its slow consumers.
        #[test]
        fn every_socket_is_written_once_with_what_fits_however_the_round_is_cut(
            frames_per_socket in proptest::collection::vec(1usize..=4, 1..=8),
            threads in 1usize..=4,
            limit in 1usize..=4,
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let n = frames_per_socket.len();
                let (links, mut clients, conns) = sockets(n as u128).await;
                let mut batch = Vec::new();
                let text = OpCode::Data(Data::Text);
                let frames: Vec<Vec<_>> = frames_per_socket
                    .iter()
                    .enumerate()
                    .map(|(i, &count)| {
                        (0..count).map(|j| put_frame(&mut batch, text, &[b'a' + (i * 4 + j) as u8; 3])).collect()
                    })
                    .collect();
                let rounds: Vec<_> = frames.iter().map(|f| round(f)).collect();
                let jobs: Vec<_> = (0..n)
                    .map(|i| Job { conn: conns[i], link: &links[i], round: &rounds[i] })
                    .collect();
                let budget = Budget::new(usize::MAX);
                let limits = Limits { frames: limit, bytes: 1 << 20 };
                let shared = Shared { batch: &batch, limits, budget: &budget, shed_above: usize::MAX };
                let mut pools: Vec<_> = (1..threads).map(|_| BufferPool::default()).collect();
                let mut own = BufferPool::default();
                let written = write_split(&jobs, shared, &mut own, &mut pools);
                assert_eq!(written.done, conns);
                assert!(written.left.is_empty());
                let slow: Vec<_> =
                    (0..n).filter(|&i| frames_per_socket[i] > limit).map(|i| conns[i]).collect();
                assert_eq!(written.slow, slow);
                for (i, client) in clients.iter_mut().enumerate() {
                    let fit = &frames[i][..frames_per_socket[i].min(limit)];
                    let expected: Vec<u8> = fit.iter().flat_map(|f| batch[f.clone()].to_vec()).collect();
                    assert_eq!(read_exactly(client, expected.len()).await, expected);
                }
            });
        }
    }

    #[tokio::test]
    async fn parts_stop_once_the_budget_is_over_and_leave_their_sockets_to_the_hub() {
        let mut batch = Vec::new();
        let frame = put_frame(&mut batch, OpCode::Data(Data::Text), b"held back");
        let frames = round(&[frame]);
        let (links, _clients, conns) = sockets(4).await;
        let jobs: Vec<_> =
            (0..4).map(|i| Job { conn: conns[i], link: &links[i], round: &frames }).collect();
        // Already over what sheds.
        let budget = Budget::new(1000);
        budget.change(0, 2000);
        let limits = Limits { frames: 64, bytes: 1 << 20 };
        let shared = Shared { batch: &batch, limits, budget: &budget, shed_above: 1000 };
        let (mut own, mut pools) = (BufferPool::default(), vec![BufferPool::default()]);
        let written = write_split(&jobs, shared, &mut own, &mut pools);
        assert!(written.done.is_empty() && written.slow.is_empty());
        assert_eq!(
            written.left, conns,
            "every socket left, in order, for the hub to shed and write"
        );
        assert!(links.iter().all(|link| link.status().idle), "nothing was written or kept");
    }
}

//! A socket's frames of the hub's current round: where they are in the hub's batch buffer. The
//! hub notes them as it applies the round's messages (no copy, no lock, nothing on the socket
//! touched) and hands them to the socket once, when it writes it at the end of the round.

use std::ops::Range;

/// A list of runs grown past this is freed after its round rather than kept for another socket.
const MAX_KEPT: usize = 64;

/// How many empty lists the hub keeps for the sockets of its next rounds (so at most 16 MiB).
const MAX_SPARE: usize = 16 * 1024;

/// Empty lists of runs, for the sockets of the next rounds: a socket holds one only while it
/// has frames in a round.
#[derive(Debug, Default)]
pub(crate) struct Spare(Vec<Vec<Range<usize>>>);

impl Spare {
    /// Bytes the spare lists hold room for.
    pub(crate) fn held(&self) -> usize {
        let lists: usize = self.0.iter().map(Vec::capacity).sum();
        lists * size_of::<Range<usize>>() + self.0.capacity() * size_of::<Vec<Range<usize>>>()
    }
}

/// A socket's frames of the current round, in order: runs of whole frames of the batch buffer
/// (frames that follow each other in the batch are one run, so a fan-out's round is one run),
/// and how many frames and bytes they hold.
#[derive(Debug, Default)]
pub(crate) struct Round {
    runs: Vec<Range<usize>>,
    frames: u32,
    bytes: u32,
}

impl Round {
    /// Notes the whole frame `batch[frame]`; `true` if it is the socket's first of the round.
    pub(crate) fn push(&mut self, frame: Range<usize>, spare: &mut Spare) -> bool {
        let first = self.runs.is_empty();
        let len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        match self.runs.last_mut() {
            Some(run) if run.end == frame.start => run.end = frame.end,
            _ => {
                if self.runs.capacity() == 0 {
                    self.runs = spare.0.pop().unwrap_or_default();
                }
                self.runs.push(frame);
            }
        }
        self.frames = self.frames.saturating_add(1);
        self.bytes = self.bytes.saturating_add(len);
        first
    }

    /// The frames and bytes it holds.
    pub(crate) fn size(&self) -> (u32, u32) {
        (self.frames, self.bytes)
    }

    /// Its runs of frames, in order.
    pub(crate) fn runs(&self) -> &[Range<usize>] {
        &self.runs
    }

    /// Empties it, its list back to `spare`.
    pub(crate) fn clear(&mut self, spare: &mut Spare) {
        let mut runs = std::mem::take(&mut self.runs);
        (self.frames, self.bytes) = (0, 0);
        if runs.capacity() > 0 && runs.capacity() <= MAX_KEPT && spare.0.len() < MAX_SPARE {
            runs.clear();
            spare.0.push(runs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_that_follow_each_other_in_the_batch_make_one_run() {
        let (mut round, mut spare) = (Round::default(), Spare::default());
        assert!(round.push(0..10, &mut spare), "the first frame of the round");
        assert!(!round.push(10..25, &mut spare));
        assert!(!round.push(40..50, &mut spare));
        assert!(!round.push(50..51, &mut spare));
        assert_eq!(round.runs(), [0..25, 40..51]);
        assert_eq!(round.size(), (4, 36));
        round.clear(&mut spare);
        assert_eq!((round.runs(), round.size()), (&[][..], (0, 0)));
        assert_eq!(spare.0.len(), 1, "its list is kept for the next socket");
        assert!(round.push(7..9, &mut spare), "the first frame of the next round");
        assert!(spare.0.is_empty(), "and it took the spare list");
    }
}

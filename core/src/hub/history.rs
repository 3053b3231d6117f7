//! Rooms' histories: a part of the hub that owns them. Every message into a room whose policy
//! keeps a history gets the room's next offset (+1 per message, from 1) and is kept, as sent, so
//! that a client that comes back can recover what it missed: the messages after the last offset
//! it saw, if the room's history still reaches back that far and its epoch has not changed.
//!
//! Bounded three ways: each room keeps its newest `size` messages, each message lives `ttl`, and
//! all rooms together hold at most `max_history_bytes` (the oldest message of any room goes
//! first). A room's stream (its epoch and offset) lives while it has messages or local members;
//! a stream made again gets a new epoch, so a client never mistakes a new numbering for the old.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use indexmap::IndexMap;

use crate::members::Hasher;
use crate::policy::HistoryPolicy;

/// What one kept message costs besides its frame: its entry and its places in the queues.
const ENTRY_BYTES: usize = 96;

/// Every room's history.
#[derive(Debug)]
pub(super) struct History {
    streams: IndexMap<Arc<str>, Stream, Hasher>,
    /// Every kept message in the order it was kept, for the byte cap (oldest first): its room,
    /// its stream's number and its offset. Holds stale items for messages already dropped by
    /// their room's size or ttl, or of a stream since forgotten: skipped, and compacted.
    order: VecDeque<(Arc<str>, u64, u64)>,
    /// One item per room with messages: when its oldest message expires.
    expiries: BinaryHeap<Reverse<(Instant, Arc<str>)>>,
    /// Bytes held: frames and [`ENTRY_BYTES`] per message.
    bytes: usize,
    /// Messages held.
    kept: usize,
    /// The epoch of this hub's streams: each stream's epoch is this and its number.
    base: String,
    /// Streams made so far.
    made: u64,
    /// Messages dropped before their ttl because all rooms together held too many bytes.
    pub(super) dropped: u64,
    /// Whether some room's policy keeps a history (else sends skip the policy lookup).
    pub(super) enabled: bool,
    /// The bytes all rooms together may hold (`max_history_bytes`).
    max_bytes: usize,
}

/// One room's numbering and its kept messages.
#[derive(Debug)]
pub(super) struct Stream {
    /// Changes whenever the room's numbering starts again: offsets of another epoch mean
    /// nothing in this one.
    pub(super) epoch: Arc<str>,
    /// The newest offset given (0: none yet).
    pub(super) top: u64,
    /// Which of this hub's streams it is (the number in its epoch).
    number: u64,
    entries: VecDeque<Entry>,
    /// When this stream's item in the expiry queue comes due, if it has one.
    scheduled: Option<Instant>,
}

#[derive(Debug)]
struct Entry {
    offset: u64,
    expires: Instant,
    /// The frame as its members were sent it, `offset` included.
    frame: Bytes,
    /// Users it was not for (none of their sessions gets it on recovery either).
    except_users: Box<[Box<str>]>,
}

impl Entry {
    fn bytes(&self) -> usize {
        ENTRY_BYTES + self.frame.len() + self.except_users.iter().map(|u| u.len()).sum::<usize>()
    }
}

/// What a join learns of a room's history.
#[derive(Debug)]
pub(super) struct Recovery {
    pub(super) epoch: Arc<str>,
    /// The room's newest offset.
    pub(super) top: u64,
    /// Whether every message after the client's offset is in `frames`.
    pub(super) recovered: bool,
    /// The messages to send, oldest first.
    pub(super) frames: Vec<Bytes>,
}

/// What a client asks of a room's history when it joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wanted<'a> {
    /// Nothing: a plain join.
    Nothing,
    /// Every message after `offset` of `epoch`.
    Since { offset: u64, epoch: &'a str },
    /// The room's newest message only.
    Latest,
}

impl History {
    /// `base`: what makes this hub's epochs its own (its start time).
    pub(super) fn new(hasher: &Hasher, base: String, enabled: bool, max_bytes: usize) -> Self {
        Self {
            streams: IndexMap::with_hasher(hasher.clone()),
            order: VecDeque::new(),
            expiries: BinaryHeap::new(),
            bytes: 0,
            kept: 0,
            base,
            made: 0,
            dropped: 0,
            enabled,
            max_bytes,
        }
    }

    /// The room's stream, made if it has none.
    fn stream(&mut self, room: &str) -> &mut Stream {
        if !self.streams.contains_key(room) {
            self.made += 1;
            let epoch: Arc<str> = Arc::from(format!("{}-{}", self.base, self.made));
            let number = self.made;
            let stream =
                Stream { epoch, top: 0, number, entries: VecDeque::new(), scheduled: None };
            self.streams.insert(Arc::from(room), stream);
        }
        let Some(stream) = self.streams.get_mut(room) else { unreachable!("inserted above") };
        stream
    }

    /// Gives the room's next offset (its stream made if need be), for the message about to be
    /// sent; [`keep`](Self::keep) then keeps it.
    pub(super) fn next_offset(&mut self, room: &str) -> u64 {
        let stream = self.stream(room);
        stream.top += 1;
        stream.top
    }

    /// Keeps the message of `offset` (just given by [`next_offset`](Self::next_offset)) in
    /// `room`'s history, dropping what the limits no longer allow.
    pub(super) fn keep(
        &mut self,
        room: &str,
        offset: u64,
        frame: Bytes,
        except_users: &[&str],
        policy: HistoryPolicy,
        now: Instant,
    ) {
        let except_users = except_users.iter().map(|u| Box::from(*u)).collect();
        let entry = Entry { offset, expires: now + policy.ttl, frame, except_users };
        let bytes = entry.bytes();
        let Some((_, name, stream)) = self.streams.get_full_mut(room) else { return };
        let (name, number) = (name.clone(), stream.number);
        stream.entries.push_back(entry);
        let mut freed = (0, 0);
        while stream.entries.len() > policy.size as usize {
            if let Some(old) = stream.entries.pop_front() {
                freed = (freed.0 + 1, freed.1 + old.bytes());
            }
        }
        if stream.scheduled.is_none()
            && let Some(front) = stream.entries.front()
        {
            stream.scheduled = Some(front.expires);
            self.expiries.push(Reverse((front.expires, name.clone())));
        }
        self.kept = self.kept + 1 - freed.0;
        self.bytes = self.bytes + bytes - freed.1;
        self.order.push_back((name, number, offset));
        while self.bytes > self.max_bytes {
            if !self.drop_oldest() {
                break;
            }
        }
        self.compact();
    }

    /// Drops the oldest message of any room; `false` when there is none.
    fn drop_oldest(&mut self) -> bool {
        while let Some((room, number, offset)) = self.order.pop_front() {
            let Some(stream) = self.streams.get_mut(&room) else { continue };
            if stream.number == number && stream.entries.front().is_some_and(|e| e.offset == offset)
            {
                if let Some(old) = stream.entries.pop_front() {
                    self.kept -= 1;
                    self.bytes -= old.bytes();
                    self.dropped += 1;
                }
                return true;
            }
        }
        false
    }

    /// Removes stale items from the byte cap's queue once they outnumber the messages kept.
    fn compact(&mut self) {
        if self.order.len() <= 2 * self.kept + 1024 {
            return;
        }
        let streams = &self.streams;
        self.order.retain(|(room, number, offset)| {
            streams.get(room).is_some_and(|s| {
                s.number == *number && s.entries.front().is_some_and(|f| f.offset <= *offset)
            })
        });
    }

    /// What a client joining `room` gets of its history. `None`: the room has no stream (a
    /// room with history always has one once joined: call [`open`](Self::open) first).
    pub(super) fn recover(
        &self,
        room: &str,
        wanted: Wanted<'_>,
        user: Option<&str>,
    ) -> Option<Recovery> {
        let stream = self.streams.get(room)?;
        let for_user = |e: &&Entry| !user.is_some_and(|u| e.except_users.iter().any(|x| **x == *u));
        let (recovered, frames) = match wanted {
            Wanted::Nothing => (false, Vec::new()),
            Wanted::Latest => {
                let latest = stream.entries.back().map(|e| e.frame.clone());
                (latest.is_some(), latest.into_iter().collect())
            }
            Wanted::Since { offset, epoch } => {
                // Every message after `offset` is still here: the oldest kept is at most the
                // one right after it (or nothing was sent since).
                let oldest = stream.entries.front().map_or(stream.top + 1, |e| e.offset);
                let reaches = offset <= stream.top && oldest <= offset + 1;
                if *stream.epoch == *epoch && reaches {
                    let frames = stream
                        .entries
                        .iter()
                        .filter(|e| e.offset > offset)
                        .filter(for_user)
                        .map(|e| e.frame.clone())
                        .collect();
                    (true, frames)
                } else {
                    (false, Vec::new())
                }
            }
        };
        Some(Recovery { epoch: stream.epoch.clone(), top: stream.top, recovered, frames })
    }

    /// Makes sure `room` has a stream (a member joined): its epoch is told at join, and the
    /// messages from now on are recoverable under it.
    pub(super) fn open(&mut self, room: &str) {
        self.stream(room);
    }

    /// Forgets `room`'s stream if it holds nothing (no message kept) and nobody here is in the
    /// room (`members`: whether somebody is).
    pub(super) fn forget_if_idle(&mut self, room: &str, members: bool) {
        if !members && self.streams.get(room).is_some_and(|s| s.entries.is_empty()) {
            self.streams.shift_remove(room);
        }
    }

    /// Drops the messages whose ttl ran out by `now`. `has_members` tells whether a room has
    /// local members (a stream left empty without any is forgotten).
    pub(super) fn expire(&mut self, now: Instant, has_members: impl Fn(&str) -> bool) {
        while let Some(Reverse((at, _))) = self.expiries.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((_, room))) = self.expiries.pop() else { break };
            let Some(stream) = self.streams.get_mut(&room) else { continue };
            stream.scheduled = None;
            while stream.entries.front().is_some_and(|e| e.expires <= now) {
                if let Some(old) = stream.entries.pop_front() {
                    self.kept -= 1;
                    self.bytes -= old.bytes();
                }
            }
            if let Some(front) = stream.entries.front() {
                stream.scheduled = Some(front.expires);
                self.expiries.push(Reverse((front.expires, room)));
            } else if !has_members(&room) {
                self.streams.shift_remove(&room);
            }
        }
    }

    /// The messages of `room` after `since`, at most `limit`, oldest first, with the stream's
    /// epoch and newest offset. `None`: the room has no stream.
    pub(super) fn page(
        &self,
        room: &str,
        since: u64,
        limit: usize,
    ) -> Option<(&str, u64, Vec<Bytes>)> {
        let stream = self.streams.get(room)?;
        let frames = stream
            .entries
            .iter()
            .filter(|e| e.offset > since)
            .take(limit)
            .map(|e| e.frame.clone())
            .collect();
        Some((&stream.epoch, stream.top, frames))
    }

    /// Forgets `room`'s history: its messages and its numbering (the next message starts a new
    /// epoch). `false` if it had none.
    pub(super) fn remove(&mut self, room: &str) -> bool {
        let Some(stream) = self.streams.shift_remove(room) else { return false };
        self.kept -= stream.entries.len();
        self.bytes -= stream.entries.iter().map(Entry::bytes).sum::<usize>();
        true
    }

    /// When the next message expires.
    pub(super) fn next_expiry(&self) -> Option<Instant> {
        self.expiries.peek().map(|Reverse((at, _))| *at)
    }

    /// Messages and bytes held, in every room.
    pub(super) fn usage(&self) -> (usize, usize) {
        (self.kept, self.bytes)
    }

    /// The newest offset and the epoch of `room`'s stream, if it has one.
    pub(super) fn position(&self, room: &str) -> Option<(u64, &str)> {
        self.streams.get(room).map(|s| (s.top, &*s.epoch))
    }
}

//! Carrying out the hub's outputs: frames queued per socket (compressed once per broadcast),
//! pings, closes, bus publishes and interest, and events routed to the application.

use super::*;

impl Driver {
    /// Drains the hub's outputs, in order, and reports the sockets that overflowed meanwhile
    /// (which gives more outputs: their closes).
    pub(super) fn carry_out(&mut self) {
        loop {
            while let Some(output) = self.hub.poll_output() {
                self.output(output);
            }
            if self.slow.is_empty() {
                return;
            }
            // Sockets that hold too much unwritten: the hub closes them, nobody waits for them.
            for conn in std::mem::take(&mut self.slow) {
                // A socket found slow twice before its close (in a round's writes, then by the
                // budget) is one socket closed.
                if self.hub.connection(conn).is_some() {
                    self.metrics.queue_overflows += 1;
                }
                self.hub.handle_slow_consumer(conn, Instant::now());
            }
        }
    }

    pub(super) fn output(&mut self, output: Output) {
        match output {
            Output::Transmit(t) => self.transmit(&t.to, &t.frame),
            Output::Ping(conn) => self.ping(conn),
            Output::Close { conn, code, reason } => self.close(conn, code.as_u16(), &reason),
            Output::BusPublish { channel, payload } => self.bus.publish(channel, payload),
            Output::BusSubscribe(channel) => self.bus.subscribe(channel),
            Output::BusUnsubscribe(channel) => self.bus.unsubscribe(channel),
            Output::Event(event) => self.event(event),
        }
    }

    /// Queues a text `frame` for each of `to`. On the fast path the frame is written into the
    /// batch once, and each socket's round only notes where it is (its limits are checked when
    /// the round is written); a queue that is full is noted as slow at once.
    pub(super) fn transmit(&mut self, to: &[ConnId], frame: &Bytes) {
        self.queue_frames(to, Data::Text, frame);
    }

    /// Sends a message back to its sender as it came (conformance testing only), through the
    /// same writes as every frame.
    pub(super) fn echo(&mut self, conn: ConnId, binary: bool, payload: Bytes) {
        self.queue_frames(&[conn], if binary { Data::Binary } else { Data::Text }, &payload);
    }

    pub(super) fn queue_frames(&mut self, to: &[ConnId], data: Data, payload: &Bytes) {
        let item = |payload: &Bytes| match data {
            Data::Binary => Item::Binary(payload.clone()),
            _ => Item::Frame(payload.clone()),
        };
        let mut framed = None;
        // Compressed once, for every recipient that negotiated compression.
        let mut compressed = None;
        let compress = self.deflate.is_some() && payload.len() >= self.compression_threshold;
        for conn in to {
            match self.outboxes.get_mut(conn) {
                Some(Outbox::Link { link, round }) => {
                    let frame = match (
                        &mut self.deflate,
                        compress && link.deflate.is_some_and(|a| a.fits(payload.len())),
                    ) {
                        (Some(deflate), true) => compressed
                            .get_or_insert_with(|| {
                                let bytes = deflate.message(payload);
                                put_compressed(&mut self.batch, OpCode::Data(data), &bytes)
                            })
                            .clone(),
                        _ => framed
                            .get_or_insert_with(|| {
                                put_frame(&mut self.batch, OpCode::Data(data), payload)
                            })
                            .clone(),
                    };
                    if round.push(frame, &mut self.spare_rounds) {
                        self.dirty.push(*conn);
                    }
                    let (frames, bytes) = round.size();
                    self.round_queued.0 = self.round_queued.0.max(frames);
                    self.round_queued.1 = self.round_queued.1.max(bytes);
                }
                Some(Outbox::Queue { frames, .. })
                    if frames.push(item(payload)) == Err(PushError::Full) =>
                {
                    self.slow.push(*conn);
                }
                Some(Outbox::Queue { .. }) => {}
                None => {}
            }
        }
    }

    /// Queues a ping. A socket that is full is busy anyway: its ping waits for the next round.
    pub(super) fn ping(&mut self, conn: ConnId) {
        match self.outboxes.get_mut(&conn) {
            Some(Outbox::Link { link, round }) => {
                if !link.has_room(self.limits, round.size()) {
                    return;
                }
                let ping = put_frame(&mut self.batch, OpCode::Control(Control::Ping), &[]);
                if round.push(ping, &mut self.spare_rounds) {
                    self.dirty.push(conn);
                }
            }
            Some(Outbox::Queue { frames, .. }) => {
                let _ = frames.push(Item::Ping);
            }
            None => {}
        }
    }

    /// Removes a socket's outbox; the map gives back half its room once it is less than a
    /// quarter full (amortized O(1) per removal), so that it follows the connections down after
    /// a storm.
    pub(super) fn forget(&mut self, conn: ConnId) -> Option<Outbox> {
        let outbox = self.outboxes.remove(&conn);
        if self.outboxes.capacity() > 64 && self.outboxes.len() < self.outboxes.capacity() / 4 {
            self.outboxes.shrink_to(self.outboxes.len() * 2);
        }
        outbox
    }

    /// Sends the close frame the hub decided, behind what the socket has queued, and forgets
    /// the socket. Written at once: closes are rare.
    pub(super) fn close(&mut self, conn: ConnId, code: u16, reason: &str) {
        self.awaiting_auth.remove(&conn);
        match self.forget(conn) {
            Some(Outbox::Link { link, mut round }) => {
                // Its frames of this round go first (those within its limits), then the close.
                link.flush(&self.batch, &round, self.limits, &mut self.buffers);
                round.clear(&mut self.spare_rounds);
                if link.push_close(code, reason) {
                    link.flush(&self.batch, &Round::default(), self.limits, &mut self.buffers);
                }
            }
            Some(Outbox::Queue { close, .. }) => {
                let _ = close.send((code, reason.to_owned()));
            }
            None => {}
        }
    }

    /// Hands an event to whoever waits for it: the authenticator, the caller of a cluster query,
    /// the application's handlers, or its event stream. A client's message that the event stream
    /// has no room for is refused: its sender is closed with 4009, never dropped silently.
    pub(super) fn event(&mut self, event: Event) {
        match event {
            Event::Authenticate { conn, token, credentials } if self.auth.is_some() => {
                let request = self.awaiting_auth.remove(&conn);
                self.authenticate(AuthRequest { conn, token, credentials, request });
            }
            Event::Refresh { conn, token, credentials, id } if self.auth.is_some() => {
                self.refresh(AuthRequest { conn, token, credentials, request: None }, id);
            }
            Event::QueryDone(result) if self.queries.contains_key(&result.id) => {
                if let Some(waiting) = self.queries.remove(&result.id) {
                    let _ = waiting.send(*result);
                }
            }
            event if self.to_app.is_some() => {
                if let Some(to_app) = &self.to_app {
                    let _ = to_app.send(ToApp::Event(event));
                }
            }
            Event::Message { conn, event, id: Some(id), .. } if self.events.is_closed() => {
                // Nobody listens (the application dropped its events, and no handler took
                // this one): answered now, so that the client does not wait for a reply that
                // cannot come.
                let message = format!("no handler for {event:?}");
                let now = Instant::now();
                let _ = self.hub.reply_error(
                    conn,
                    Some(&id),
                    ErrorCode::UnknownEvent.as_str(),
                    &message,
                    now,
                );
            }
            Event::Message { conn, .. } if self.events.is_full() => {
                self.metrics.events_dropped += 1;
                self.hub.handle_overload(conn, Instant::now());
            }
            event => self.events.send(event),
        }
    }
}

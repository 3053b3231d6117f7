//! What the server sends, as the connection task takes it: `connected` (and the rejoin and the
//! offline buffer it releases), the answers to joins and leaves, errors, and messages.

#[allow(clippy::wildcard_imports)]
use super::*;

impl Connection {
    pub(super) async fn frame(
        &mut self,
        ws: &mut Ws,
        text: &str,
        connected: &mut bool,
    ) -> Result<(), End> {
        let Ok(frame) = serde_json::from_str::<Incoming>(text) else { return Ok(()) };
        let id = frame.id.as_ref().map(|id| match id {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
        let waiter = id.as_ref().and_then(|id| self.pending.remove(id));
        let data = frame.data.unwrap_or_default();
        match frame.event.as_str() {
            "connected" => {
                *connected = true;
                return self.connected(ws, &data).await;
            }
            "joined" | "left" => self.rooms(frame.event == "joined", &data, waiter),
            "error" => {
                let error: ServerError = serde_json::from_str(data.get()).unwrap_or(ServerError {
                    code: "error".into(),
                    message: data.get().to_owned(),
                    room: None,
                });
                self.error(error, waiter, id);
            }
            "reply" | "presence" | "refreshed" if waiter.is_some() => {
                if let Some(Waiter::Value(reply) | Waiter::Refresh(Some(reply))) = waiter {
                    let _ = reply.send(Ok(data));
                }
            }
            "token_expiring" => {
                #[derive(Deserialize)]
                #[serde(rename_all = "camelCase")]
                struct Expiring {
                    expires_in: u64,
                }
                let expires_in =
                    serde_json::from_str::<Expiring>(data.get()).map_or(0, |e| e.expires_in);
                self.emit(Event::TokenExpiring { expires_in });
                self.fetch_fresh_token();
            }
            "resync" => {
                #[derive(Deserialize)]
                struct Why {
                    reason: String,
                }
                let reason = serde_json::from_str::<Why>(data.get())
                    .map_or_else(|_| "unknown".into(), |w| w.reason);
                self.emit(Event::Resync { room: frame.room.unwrap_or_default(), reason });
            }
            _ => self.emit(Event::Message(Message { event: frame.event, room: frame.room, data })),
        }
        Ok(())
    }

    /// Authenticated: rejoin, then send what was kept offline.
    async fn connected(&mut self, ws: &mut Ws, data: &RawValue) -> Result<(), End> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Connected {
            id: String,
            #[serde(default)]
            user_id: Option<String>,
        }
        let Ok(who) = serde_json::from_str::<Connected>(data.get()) else { return Ok(()) };
        let reconnected = self.ever_connected;
        self.ever_connected = true;
        self.attempt = 0;
        self.rejected = None;
        self.update(|s| {
            s.connected = true;
            s.id = Some(who.id.clone());
            s.user_id.clone_from(&who.user_id);
        });
        self.emit(Event::Connected { id: who.id, user_id: who.user_id, reconnected });
        let waiting = std::mem::take(&mut self.waiting);
        if self.wanted.is_empty() {
            for reply in waiting {
                let _ = reply.send(Ok(Vec::new()));
            }
        } else {
            let rooms = self.wanted.clone();
            let id = self.wait(Waiter::Rejoin { waiting, reconnected });
            self.send(ws, json!({"event": "join", "id": id, "data": {"rooms": rooms}})).await?;
        }
        // Behind the rejoin: publishes kept offline reach the rooms they were meant for.
        while let Some(frame) = self.buffer.pop_front() {
            self.send_text(ws, frame).await?;
        }
        Ok(())
    }

    fn rooms(&mut self, joined: bool, data: &RawValue, waiter: Option<Waiter>) {
        #[derive(Deserialize)]
        struct Rooms {
            rooms: Vec<String>,
        }
        let rooms =
            serde_json::from_str::<Rooms>(data.get()).map_or_else(|_| Vec::new(), |r| r.rooms);
        self.update(|s| s.rooms.clone_from(&rooms));
        match waiter {
            Some(Waiter::Rooms(reply, errors)) => {
                let answer = match errors.into_iter().next() {
                    Some(refused) => Err(Error::Server(refused)),
                    None => Ok(rooms),
                };
                let _ = reply.send(answer);
            }
            Some(Waiter::Rejoin { waiting, reconnected }) => {
                for reply in waiting {
                    let _ = reply.send(Ok(rooms.clone()));
                }
                if reconnected {
                    for room in &rooms {
                        self.emit(Event::Resync {
                            room: room.clone(),
                            reason: "reconnected".into(),
                        });
                    }
                }
            }
            // The server (or the application) moved the connection: follow it after reconnecting.
            _ if joined => {
                for room in &rooms {
                    if !self.wanted.contains(room) {
                        self.wanted.push(room.clone());
                    }
                }
            }
            _ => self.wanted.retain(|room| rooms.contains(room)),
        }
    }

    fn error(&mut self, error: ServerError, waiter: Option<Waiter>, id: Option<String>) {
        match (waiter, id) {
            // A refused room of a join or rejoin: the answer follows; it is not rejoined.
            (Some(Waiter::Rooms(reply, mut errors)), Some(id)) if error.room.is_some() => {
                self.wanted.retain(|room| Some(room) != error.room.as_ref());
                errors.push(error);
                self.pending.insert(id, Waiter::Rooms(reply, errors));
            }
            (Some(rejoin @ Waiter::Rejoin { .. }), Some(id)) if error.room.is_some() => {
                self.wanted.retain(|room| Some(room) != error.room.as_ref());
                self.pending.insert(id, rejoin);
                self.emit(Event::Error(error));
            }
            (Some(Waiter::Value(reply) | Waiter::Refresh(Some(reply))), _) => {
                let _ = reply.send(Err(Error::Server(error)));
            }
            (Some(Waiter::Rooms(reply, _)), _) => {
                let _ = reply.send(Err(Error::Server(error)));
            }
            _ => self.emit(Event::Error(error)),
        }
    }
}

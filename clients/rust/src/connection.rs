//! The connection task: one socket at a time, and what carries over between them (the rooms
//! wanted, the offline buffer, the token), with the reconnection policy in between.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::error::{Error, ServerError};
use crate::event::{Event, Message};
use crate::options::Options;
use crate::policy::{Retry, retry_policy};

mod incoming;

type Reply<T> = oneshot::Sender<Result<T, Error>>;

/// What a [`Client`](crate::Client) asks of the connection task.
pub(crate) enum ToConnection {
    /// A request: the application's event, or `presence`.
    Call { event: String, data: Option<Box<RawValue>>, reply: Reply<Box<RawValue>> },
    /// `join` or `leave`.
    Rooms { join: bool, rooms: Vec<String>, reply: Reply<Vec<String>> },
    /// A frame without an answer (publish, the application's events): buffered offline.
    Send { frame: String, reply: Reply<()> },
    /// Fresh credentials (from the application, or from the token source on `token_expiring`).
    Refresh { token: String, reply: Option<Reply<Box<RawValue>>> },
    /// For good.
    Close,
}

/// What the handles can read without asking the task.
#[derive(Debug, Default)]
pub(crate) struct Status {
    pub(crate) connected: bool,
    pub(crate) id: Option<String>,
    pub(crate) user_id: Option<String>,
    pub(crate) rooms: Vec<String>,
}

/// Who waits for the answer of a request id.
enum Waiter {
    Value(Reply<Box<RawValue>>),
    /// A join or leave: the refused rooms' errors come before the answer.
    Rooms(Reply<Vec<String>>, Vec<ServerError>),
    /// The rejoin after connecting: settles the joins asked while disconnected.
    Rejoin {
        waiting: Vec<Reply<Vec<String>>>,
        reconnected: bool,
    },
    Refresh(Option<Reply<Box<RawValue>>>),
}

impl Waiter {
    fn is_abandoned(&self) -> bool {
        match self {
            Self::Value(reply) | Self::Refresh(Some(reply)) => reply.is_closed(),
            Self::Rooms(reply, _) => reply.is_closed(),
            Self::Rejoin { .. } | Self::Refresh(None) => false,
        }
    }
}

/// How a session ended.
enum End {
    Lost { code: u16, reason: String },
    Closed,
}

/// A frame from the server.
#[derive(Deserialize)]
struct Incoming {
    event: String,
    #[serde(default)]
    room: Option<String>,
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    data: Option<Box<RawValue>>,
}

/// The connection task's state.
pub(crate) struct Connection {
    options: Options,
    events: mpsc::UnboundedSender<Event>,
    status: Arc<Mutex<Status>>,
    /// For token fetches to hand their token back; weak, so that it never keeps the task alive.
    commands: mpsc::WeakUnboundedSender<ToConnection>,
    token: Option<String>,
    /// The token a 4003 rejected, not to be tried again.
    rejected: Option<String>,
    /// The rooms the application wants, in the order it asked: rejoined after reconnecting.
    wanted: Vec<String>,
    buffer: VecDeque<String>,
    /// Joins and leaves asked while disconnected.
    waiting: Vec<Reply<Vec<String>>>,
    pending: HashMap<String, Waiter>,
    next_id: u64,
    attempt: u32,
    ever_connected: bool,
    last_sent: Instant,
}

type Ws = WebSocketStream<TcpStream>;

impl Connection {
    pub(crate) fn new(
        options: Options,
        events: mpsc::UnboundedSender<Event>,
        status: Arc<Mutex<Status>>,
        commands: mpsc::WeakUnboundedSender<ToConnection>,
    ) -> Self {
        let token = options.token.clone();
        Self {
            options,
            events,
            status,
            commands,
            token,
            rejected: None,
            wanted: Vec::new(),
            buffer: VecDeque::new(),
            waiting: Vec::new(),
            pending: HashMap::new(),
            next_id: 0,
            attempt: 0,
            ever_connected: false,
            last_sent: Instant::now(),
        }
    }

    /// Sessions, and the waits between them, until the client is closed or gives up.
    pub(crate) async fn run(mut self, mut inbox: mpsc::UnboundedReceiver<ToConnection>) {
        loop {
            let end = self.session(&mut inbox).await;
            self.update(|s| {
                s.connected = false;
                s.id = None;
            });
            self.fail_pending();
            let End::Lost { code, reason } = end else { return self.finish() };
            let Some(delay) = self.decide(code, reason).await else { return self.finish() };
            let wait = tokio::time::sleep(delay);
            tokio::pin!(wait);
            loop {
                tokio::select! {
                    () = &mut wait => break,
                    command = inbox.recv() => match command {
                        None | Some(ToConnection::Close) => return self.finish(),
                        Some(command) => self.offline(command),
                    },
                }
            }
        }
    }

    /// One socket, from connecting to its end.
    async fn session(&mut self, inbox: &mut mpsc::UnboundedReceiver<ToConnection>) -> End {
        let mut ws = match self.open().await {
            Ok(ws) => ws,
            Err(reason) => return End::Lost { code: 1006, reason },
        };
        if self.token.is_none()
            && let Some(source) = &self.options.token_source
        {
            self.token = source().await;
        }
        if let Some(token) = self.token.clone()
            && let Err(end) =
                self.send(&mut ws, json!({"event":"authenticate","data":{"token":token}})).await
        {
            return end;
        }
        let every = self.options.heartbeat;
        let mut heartbeat =
            tokio::time::interval(if every.is_zero() { Duration::MAX / 4 } else { every });
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut connected = false;
        loop {
            tokio::select! {
                message = ws.next() => match message {
                    Some(Ok(WsMessage::Text(text))) => {
                        if let Err(end) = self.frame(&mut ws, text.as_str(), &mut connected).await {
                            return end;
                        }
                    }
                    Some(Ok(WsMessage::Close(frame))) => {
                        let (code, reason) = frame.map_or((1005, String::new()), |f| (u16::from(f.code), f.reason.to_string()));
                        return End::Lost { code, reason };
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return End::Lost { code: 1006, reason: e.to_string() },
                    None => return End::Lost { code: 1006, reason: "connection lost".into() },
                },
                command = inbox.recv() => match command {
                    None | Some(ToConnection::Close) => {
                        let close = CloseFrame { code: CloseCode::Normal, reason: "client closed".into() };
                        let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(Some(close))).await;
                        return End::Closed;
                    }
                    Some(command) if connected => {
                        if let Err(end) = self.online(&mut ws, command).await {
                            return end;
                        }
                    }
                    Some(command) => self.offline(command),
                },
                _ = heartbeat.tick(), if connected => {
                    if self.last_sent.elapsed() >= every
                        && let Err(end) = self.send(&mut ws, json!({"event":"heartbeat"})).await
                    {
                        return end;
                    }
                }
            }
        }
    }

    async fn open(&self) -> Result<Ws, String> {
        let request = self.options.url.as_str().into_client_request().map_err(|e| e.to_string())?;
        let uri = request.uri();
        if uri.scheme_str() != Some("ws") {
            return Err(format!("{uri}: only ws:// URLs (put a TLS-terminating proxy in front)"));
        }
        let host = uri.host().ok_or("no host in the URL")?.trim_matches(['[', ']']).to_owned();
        let port = uri.port_u16().unwrap_or(80);
        let stream = TcpStream::connect((host.as_str(), port)).await.map_err(|e| e.to_string())?;
        let (ws, _) =
            tokio_tungstenite::client_async(request, stream).await.map_err(|e| e.to_string())?;
        Ok(ws)
    }

    async fn send(&mut self, ws: &mut Ws, frame: Value) -> Result<(), End> {
        self.send_text(ws, frame.to_string()).await
    }

    async fn send_text(&mut self, ws: &mut Ws, text: String) -> Result<(), End> {
        self.last_sent = Instant::now();
        ws.send(WsMessage::text(text))
            .await
            .map_err(|e| End::Lost { code: 1006, reason: e.to_string() })
    }

    fn id(&mut self) -> String {
        self.next_id += 1;
        format!("r{}", self.next_id)
    }

    /// Registers a waiter under a new id (and forgets those nobody waits for any more).
    fn wait(&mut self, waiter: Waiter) -> String {
        self.pending.retain(|_, w| !w.is_abandoned());
        let id = self.id();
        self.pending.insert(id.clone(), waiter);
        id
    }

    async fn online(&mut self, ws: &mut Ws, command: ToConnection) -> Result<(), End> {
        match command {
            ToConnection::Call { event, data, reply } => {
                let id = self.wait(Waiter::Value(reply));
                let frame = match data {
                    Some(data) => json!({"event": event, "id": id, "data": data}),
                    None => json!({"event": event, "id": id}),
                };
                self.send(ws, frame).await
            }
            ToConnection::Rooms { join, rooms, reply } => {
                self.want(join, &rooms);
                let id = self.wait(Waiter::Rooms(reply, Vec::new()));
                let event = if join { "join" } else { "leave" };
                self.send(ws, json!({"event": event, "id": id, "data": {"rooms": rooms}})).await
            }
            ToConnection::Send { frame, reply } => {
                let sent = self.send_text(ws, frame).await;
                let _ = reply.send(Ok(()));
                sent
            }
            ToConnection::Refresh { token, reply } => {
                self.token = Some(token.clone());
                let id = self.wait(Waiter::Refresh(reply));
                self.send(ws, json!({"event": "refresh", "id": id, "data": {"token": token}})).await
            }
            ToConnection::Close => Ok(()),
        }
    }

    fn offline(&mut self, command: ToConnection) {
        match command {
            ToConnection::Call { reply, .. } => {
                let _ = reply.send(Err(Error::Disconnected));
            }
            ToConnection::Rooms { join, rooms, reply } => {
                self.want(join, &rooms);
                self.waiting.push(reply);
            }
            ToConnection::Send { frame, reply } => {
                let kept = if self.buffer.len() >= self.options.buffer {
                    Err(Error::BufferFull)
                } else {
                    self.buffer.push_back(frame);
                    Ok(())
                };
                let _ = reply.send(kept);
            }
            ToConnection::Refresh { token, reply } => {
                // Kept for the next authentication.
                self.token = Some(token);
                if let Some(reply) = reply {
                    let _ = reply.send(Err(Error::Disconnected));
                }
            }
            ToConnection::Close => {}
        }
    }

    fn want(&mut self, join: bool, rooms: &[String]) {
        for room in rooms {
            let known = self.wanted.iter().position(|r| r == room);
            match (join, known) {
                (true, None) => self.wanted.push(room.clone()),
                (false, Some(i)) => {
                    self.wanted.remove(i);
                }
                _ => {}
            }
        }
    }

    /// On `token_expiring`, with a token source: a fresh token, fetched in a task of its own
    /// (the socket keeps being served meanwhile), comes back as a `refresh`.
    fn fetch_fresh_token(&self) {
        let (Some(source), Some(commands)) =
            (self.options.token_source.clone(), self.commands.upgrade())
        else {
            return;
        };
        tokio::spawn(async move {
            if let Some(token) = source().await {
                let _ = commands.send(ToConnection::Refresh { token, reply: None });
            }
        });
    }

    /// Whether and when to try again after a close: the delay, or `None` to give up.
    async fn decide(&mut self, code: u16, reason: String) -> Option<Duration> {
        let Some(backoff) = self.options.backoff else {
            self.emit(Event::Disconnected { code, reason, will_reconnect: false });
            return None;
        };
        let mut retry = retry_policy(code);
        if retry == Retry::NewToken {
            let previous = self.token.clone();
            let fresh = match &self.options.token_source {
                Some(source) => source().await,
                None => None,
            };
            let again =
                |t: &String| previous.as_ref() == Some(t) || self.rejected.as_ref() == Some(t);
            retry = match fresh {
                Some(fresh) if !(code == 4003 && again(&fresh)) => {
                    if code == 4003 {
                        self.rejected = previous;
                    }
                    self.token = Some(fresh);
                    Retry::Retry
                }
                _ => Retry::Stop,
            };
        }
        if self.attempt >= backoff.max_attempts {
            retry = Retry::Stop;
        }
        let will_reconnect = retry != Retry::Stop;
        self.emit(Event::Disconnected { code, reason, will_reconnect });
        if !will_reconnect {
            return None;
        }
        let delay = backoff.delay(self.attempt, retry == Retry::Pause);
        self.attempt += 1;
        self.emit(Event::Reconnecting { attempt: self.attempt, delay });
        Some(delay)
    }

    /// The socket is gone: requests in flight fail; joins waiting for a rejoin wait for the next.
    fn fail_pending(&mut self) {
        for (_, waiter) in self.pending.drain() {
            match waiter {
                Waiter::Value(reply) | Waiter::Refresh(Some(reply)) => {
                    let _ = reply.send(Err(Error::Disconnected));
                }
                Waiter::Rooms(reply, _) => {
                    let _ = reply.send(Err(Error::Disconnected));
                }
                Waiter::Rejoin { waiting, .. } => self.waiting.extend(waiting),
                Waiter::Refresh(None) => {}
            }
        }
    }

    /// Closed or given up: what waits fails, what was kept is dropped.
    fn finish(&mut self) {
        for reply in self.waiting.drain(..) {
            let _ = reply.send(Err(Error::Disconnected));
        }
        self.buffer.clear();
        self.update(|s| s.connected = false);
    }

    fn update(&self, change: impl FnOnce(&mut Status)) {
        let mut status = self.status.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        change(&mut status);
    }

    fn emit(&self, event: Event) {
        // Nobody reading: the application dropped its Events.
        let _ = self.events.send(event);
    }
}

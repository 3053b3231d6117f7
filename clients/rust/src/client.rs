//! The application's side: the [`Client`] handle, its [`Builder`], and the [`Events`] stream.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use tokio::sync::{mpsc, oneshot};

use crate::connection::{Connection, Status, ToConnection};
use crate::error::Error;
use crate::event::{Event, Member};
use crate::options::Backoff;
use crate::options::{Options, TokenSource};

/// Configures a client: `Client::builder(url)`, then [`connect`](Builder::connect).
#[must_use]
pub struct Builder {
    options: Options,
    request_timeout: Duration,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder").field("url", &self.options.url).finish_non_exhaustive()
    }
}

impl Builder {
    /// A token for `authenticate`, for servers that need one.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.options.token = Some(token.into());
        self
    }

    /// Where to get a token, now and whenever one must be renewed (expiry, 4001, 4003, 4004).
    /// `None`: no token to give.
    pub fn token_source<F, Fut>(mut self, source: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Option<String>> + Send + 'static,
    {
        let source: TokenSource = Arc::new(move || Box::pin(source()));
        self.options.token_source = Some(source);
        self
    }

    /// How reconnection waits (default [`Backoff::default`]).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.options.backoff = Some(backoff);
        self
    }

    /// Never reconnect.
    pub fn no_reconnect(mut self) -> Self {
        self.options.backoff = None;
        self
    }

    /// How long a request waits for its answer (default 10 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// A heartbeat is sent after this long without sending anything (default 20 s; zero:
    /// never).
    pub fn heartbeat(mut self, every: Duration) -> Self {
        self.options.heartbeat = every;
        self
    }

    /// Publishes and events kept while disconnected (default 256).
    pub fn buffer(mut self, frames: usize) -> Self {
        self.options.buffer = frames;
        self
    }

    /// Starts the connection task (inside a tokio runtime) and returns the handle and the
    /// stream of events. The connection stays up until [`Client::close`], or until every
    /// handle is dropped.
    pub fn connect(self) -> (Client, Events) {
        let (commands, inbox) = mpsc::unbounded_channel();
        let (events_tx, events) = mpsc::unbounded_channel();
        let status = Arc::new(Mutex::new(Status::default()));
        let connection =
            Connection::new(self.options, events_tx, status.clone(), commands.downgrade());
        tokio::spawn(connection.run(inbox));
        let client = Client { commands, status, request_timeout: self.request_timeout };
        (client, Events { events })
    }
}

/// The server's messages and the connection's lifecycle, in order. Read it, or drop it to
/// ignore them (an unread stream keeps every event).
#[derive(Debug)]
pub struct Events {
    events: mpsc::UnboundedReceiver<Event>,
}

impl Events {
    /// The next event; `None` once the client is closed (or gave up) and every event was read.
    pub async fn recv(&mut self) -> Option<Event> {
        self.events.recv().await
    }
}

/// How a publish leaves people out.
#[derive(Debug, Clone, Copy)]
pub struct PublishOptions {
    /// Leave out the sender (default `true`).
    pub exclude_self: bool,
    /// Leave out every session of the sender's user (default `false`).
    pub exclude_user: bool,
}

impl Default for PublishOptions {
    fn default() -> Self {
        Self { exclude_self: true, exclude_user: false }
    }
}

/// A handle to one logical connection, across reconnections. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    commands: mpsc::UnboundedSender<ToConnection>,
    status: Arc<Mutex<Status>>,
    request_timeout: Duration,
}

impl Client {
    /// A builder for a client of the server at `url` (`ws://host:port/ws`).
    pub fn builder(url: impl Into<String>) -> Builder {
        Builder {
            options: Options {
                url: url.into(),
                token: None,
                token_source: None,
                backoff: Some(Backoff::default()),
                heartbeat: Duration::from_secs(20),
                buffer: 256,
            },
            request_timeout: Duration::from_secs(10),
        }
    }

    fn status<R>(&self, read: impl FnOnce(&Status) -> R) -> R {
        let status = self.status.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        read(&status)
    }

    /// Whether the connection is up and authenticated.
    pub fn is_connected(&self) -> bool {
        self.status(|s| s.connected)
    }

    /// The connection id the server gave (a new one after each reconnection).
    pub fn id(&self) -> Option<String> {
        self.status(|s| s.id.clone())
    }

    /// The user the server authenticated.
    pub fn user_id(&self) -> Option<String> {
        self.status(|s| s.user_id.clone())
    }

    /// The rooms the server last said this connection is in.
    pub fn rooms(&self) -> Vec<String> {
        self.status(|s| s.rooms.clone())
    }

    fn command<R>(
        &self,
        make: impl FnOnce(oneshot::Sender<R>) -> ToConnection,
    ) -> oneshot::Receiver<R> {
        let (reply, answer) = oneshot::channel();
        // A closed client drops the command, and with it the sender: the caller sees Closed.
        let _ = self.commands.send(make(reply));
        answer
    }

    /// Joins rooms; the rooms the connection is in. A refused room fails it with the first
    /// refusal ([`Error::Server`], with the room), the others joined. While disconnected, it
    /// completes after the reconnection's rejoin. Joined rooms are rejoined after every
    /// reconnection.
    pub async fn join<I, S>(&self, rooms: I) -> Result<Vec<String>, Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let rooms = rooms.into_iter().map(Into::into).collect();
        let answer = self.command(|reply| ToConnection::Rooms { join: true, rooms, reply });
        answer.await.map_err(|_| Error::Closed)?
    }

    /// Leaves rooms (they are not rejoined); the rooms the connection is still in.
    pub async fn leave<I, S>(&self, rooms: I) -> Result<Vec<String>, Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let rooms = rooms.into_iter().map(Into::into).collect();
        let answer = self.command(|reply| ToConnection::Rooms { join: false, rooms, reply });
        answer.await.map_err(|_| Error::Closed)?
    }

    /// Publishes `event` with `data` to the members of `room` (this connection must be one),
    /// the sender left out. Kept while disconnected; [`Error::BufferFull`] when the buffer is.
    pub async fn publish<T: Serialize + ?Sized>(
        &self,
        room: &str,
        event: &str,
        data: &T,
    ) -> Result<(), Error> {
        self.publish_with(room, event, data, PublishOptions::default()).await
    }

    /// [`publish`](Self::publish) with [`PublishOptions`].
    pub async fn publish_with<T: Serialize + ?Sized>(
        &self,
        room: &str,
        event: &str,
        data: &T,
        options: PublishOptions,
    ) -> Result<(), Error> {
        let frame = serde_json::json!({"event": "publish", "data": {
            "room": room, "event": event, "data": data,
            "excludeSelf": options.exclude_self, "excludeUser": options.exclude_user,
        }});
        self.send(frame.to_string()).await
    }

    /// Sends the application's own event without waiting for an answer (kept while
    /// disconnected).
    pub async fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), Error> {
        self.send(serde_json::json!({"event": event, "data": data}).to_string()).await
    }

    async fn send(&self, frame: String) -> Result<(), Error> {
        let answer = self.command(|reply| ToConnection::Send { frame, reply });
        answer.await.map_err(|_| Error::Closed)?
    }

    /// Sends the application's own event and returns the server's `reply` data; its `error` is
    /// [`Error::Server`]. [`Error::Timeout`] after the request timeout; [`Error::Disconnected`]
    /// if made while disconnected or in flight when the connection went away.
    pub async fn request<R: DeserializeOwned, T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<R, Error> {
        self.request_timeout(event, data, self.request_timeout).await
    }

    /// [`request`](Self::request) with its own timeout.
    pub async fn request_timeout<R: DeserializeOwned, T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
        timeout: Duration,
    ) -> Result<R, Error> {
        let data = serde_json::value::to_raw_value(data)?;
        let raw = self.call(event, Some(data), timeout).await?;
        Ok(serde_json::from_str(raw.get())?)
    }

    async fn call(
        &self,
        event: &str,
        data: Option<Box<RawValue>>,
        timeout: Duration,
    ) -> Result<Box<RawValue>, Error> {
        let event = event.to_owned();
        let answer = self.command(|reply| ToConnection::Call { event, data, reply });
        match tokio::time::timeout(timeout, answer).await {
            Ok(answer) => answer.map_err(|_| Error::Closed)?,
            Err(_) => Err(Error::Timeout),
        }
    }

    /// Who is in `room` (this connection must be a member).
    pub async fn presence(&self, room: &str) -> Result<Vec<Member>, Error> {
        #[derive(serde::Deserialize)]
        struct Answer {
            members: Vec<Member>,
        }
        let data = serde_json::value::to_raw_value(&serde_json::json!({ "room": room }))?;
        let raw = self.call("presence", Some(data), self.request_timeout).await?;
        Ok(serde_json::from_str::<Answer>(raw.get())?.members)
    }

    /// Sends fresh credentials now (`refresh`); the seconds they last (`None`: no expiry).
    /// Done for you on `token_expiring` when the client has a token source.
    pub async fn refresh(&self, token: &str) -> Result<Option<u64>, Error> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Answer {
            expires_in: Option<u64>,
        }
        let answer = self
            .command(|reply| ToConnection::Refresh { token: token.to_owned(), reply: Some(reply) });
        let raw = match tokio::time::timeout(self.request_timeout, answer).await {
            Ok(answer) => answer.map_err(|_| Error::Closed)??,
            Err(_) => return Err(Error::Timeout),
        };
        Ok(serde_json::from_str::<Answer>(raw.get())?.expires_in)
    }

    /// Closes the connection for good (1000): no reconnection; pending requests fail.
    pub fn close(&self) {
        let _ = self.commands.send(ToConnection::Close);
    }
}

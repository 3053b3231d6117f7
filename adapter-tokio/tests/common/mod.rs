//! Real servers on loopback and real WebSocket clients, for the end-to-end tests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use roomcast_tokio::{Events, Handle, Options, Roomcast};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

/// Long enough for a loaded CI machine; only reached when a test is about to fail.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A server on a free loopback port, served by roomcast's own accept loop ([`roomcast_tokio::serve`]).
pub async fn start(options: Options) -> (Handle, Events, SocketAddr) {
    start_with(Roomcast::builder().options(options)).await
}

/// A server built by `builder` on a free loopback port.
pub async fn start_with(builder: roomcast_tokio::Builder) -> (Handle, Events, SocketAddr) {
    let (handle, events) = builder.start().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(roomcast_tokio::serve(listener, handle.clone()));
    (handle, events, addr)
}

pub struct Client {
    pub ws: WebSocketStream<TcpStream>,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.unwrap();
        Self::handshake(addr, stream).await
    }

    pub async fn handshake(addr: SocketAddr, stream: TcpStream) -> Self {
        let url = format!("ws://{addr}/ws");
        let (ws, _) = tokio_tungstenite::client_async(url, stream).await.unwrap();
        Self { ws }
    }

    /// Connects and reads the `connected` frame (anonymous mode).
    pub async fn connected(addr: SocketAddr) -> (Self, String) {
        let mut client = Self::connect(addr).await;
        let frame = client.recv().await;
        assert_eq!(frame["event"], "connected");
        let id = frame["data"]["id"].as_str().unwrap().to_owned();
        (client, id)
    }

    pub async fn send(&mut self, frame: Value) {
        self.ws.send(Message::text(frame.to_string())).await.unwrap();
    }

    pub async fn send_raw(&mut self, message: Message) {
        self.ws.send(message).await.unwrap();
    }

    /// The next text frame as JSON; pings are answered by tungstenite.
    pub async fn recv(&mut self) -> Value {
        loop {
            let message =
                tokio::time::timeout(PATIENCE, self.ws.next()).await.expect("a frame in time");
            match message.expect("the socket is open").unwrap() {
                Message::Text(text) => return serde_json::from_str(&text).unwrap(),
                Message::Close(frame) => panic!("closed: {frame:?}"),
                _ => {}
            }
        }
    }

    /// The next text frame as JSON, or the close code if the server closes first.
    pub async fn next_or_close(&mut self) -> Result<Value, u16> {
        loop {
            let message =
                tokio::time::timeout(PATIENCE, self.ws.next()).await.expect("a frame in time");
            match message.expect("the socket is open").unwrap() {
                Message::Text(text) => return Ok(serde_json::from_str(&text).unwrap()),
                Message::Close(frame) => return Err(frame.map_or(1005, |f| f.code.into())),
                _ => {}
            }
        }
    }

    /// Reads (and drops frames) until the server's close frame; returns its code.
    pub async fn close_code(&mut self) -> u16 {
        loop {
            let message =
                tokio::time::timeout(PATIENCE, self.ws.next()).await.expect("a close in time");
            match message {
                Some(Ok(Message::Close(Some(frame)))) => return frame.code.into(),
                Some(Ok(Message::Close(None))) => panic!("close without a code"),
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("no close frame: {e}"),
                None => panic!("stream ended without a close frame"),
            }
        }
    }

    /// Proves nothing else was queued for this client: a request's answer is the next frame.
    pub async fn expect_nothing_pending(&mut self) {
        // Joining no room is answered under every room policy, with nothing else.
        self.send(serde_json::json!({"event":"join","data":{"rooms":[]},"id":"probe"})).await;
        let next = self.recv().await;
        assert_eq!(
            (&next["event"], &next["id"]),
            (&"joined".into(), &"probe".into()),
            "unexpected frame: {next}"
        );
    }
}

/// Options with short timeouts for tests.
pub fn options() -> Options {
    Options::default()
}

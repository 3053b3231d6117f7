//! A real WebSocket client (tokio-tungstenite) for end-to-end tests.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

/// How long a test waits for something that should happen; only reached when it is failing.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// One client connection.
#[derive(Debug)]
pub struct Client {
    ws: WebSocketStream<TcpStream>,
    /// The connection id the server gave in `connected`, once known.
    pub id: Option<String>,
}

impl Client {
    /// Connects to `ws://{addr}/ws`.
    pub async fn connect(addr: SocketAddr) -> Self {
        Self::connect_to(addr, "/ws").await
    }

    /// Connects to `ws://{addr}{path}`.
    pub async fn connect_to(addr: SocketAddr, path: &str) -> Self {
        let stream = TcpStream::connect(addr).await.expect("the server accepts");
        let (ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}{path}"), stream)
            .await
            .expect("handshake");
        Self { ws, id: None }
    }

    /// Connects and reads `connected` (anonymous mode).
    pub async fn connected(addr: SocketAddr) -> Self {
        let mut client = Self::connect(addr).await;
        let frame = client.recv().await;
        assert_eq!(frame["event"], "connected", "{frame}");
        client.id = frame["data"]["id"].as_str().map(str::to_owned);
        client
    }

    /// Connects and authenticates with `token`, reading `connected`.
    pub async fn authenticated(addr: SocketAddr, token: &str) -> Self {
        let mut client = Self::connect(addr).await;
        client.send(serde_json::json!({"event":"authenticate","data":{"token":token}})).await;
        let frame = client.recv().await;
        assert_eq!(frame["event"], "connected", "{frame}");
        client.id = frame["data"]["id"].as_str().map(str::to_owned);
        client
    }

    /// Sends a frame.
    pub async fn send(&mut self, frame: Value) {
        self.ws.send(Message::text(frame.to_string())).await.expect("send");
    }

    /// Joins rooms and reads the answer.
    pub async fn join(&mut self, rooms: &[&str]) {
        self.send(serde_json::json!({"event":"join","data":{"rooms":rooms},"id":"join"})).await;
        let answer = self.recv().await;
        assert_eq!(answer["event"], "joined", "{answer}");
    }

    /// The next text frame, as JSON.
    pub async fn recv(&mut self) -> Value {
        loop {
            let next =
                tokio::time::timeout(PATIENCE, self.ws.next()).await.expect("a frame in time");
            match next.expect("the socket is open").expect("a frame") {
                Message::Text(text) => return serde_json::from_str(&text).expect("JSON"),
                Message::Close(frame) => panic!("closed: {frame:?}"),
                _ => {}
            }
        }
    }

    /// Proves nothing else is queued for this client: a request's answer is the next frame.
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

impl Client {
    /// Reads until the server closes the connection: its close code and reason (text frames
    /// before it are skipped). `None` if the socket ended without a close frame.
    pub async fn close_frame(&mut self) -> Option<(u16, String)> {
        loop {
            let next =
                tokio::time::timeout(PATIENCE, self.ws.next()).await.expect("a close in time");
            match next {
                Some(Ok(Message::Close(frame))) => {
                    return frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// [`close_frame`](Self::close_frame)'s code; panics without a close frame.
    pub async fn close_code(&mut self) -> u16 {
        self.close_frame().await.expect("a close frame").0
    }
}

//! roomcast-blocking: the reference driver of [`roomcast_core`], in one file you can read in a
//! sitting. `std::net` and tungstenite, one thread per socket, one thread for the hub, no async
//! runtime.
//!
//! It exists to show what a driver of the sans-IO core has to do, and nothing else; the tokio
//! adapter (roomcast-tokio) does the same with batching, a fast write path and a bus. Read it in
//! this order:
//!
//! 1. [`serve`] creates the [`Hub`] (anchoring its time: an `Instant` and the wall clock) and
//!    starts two threads: the acceptor and the hub's.
//! 2. The acceptor (`accept_loop`) gives each TCP connection its [`ConnId`] and its thread
//!    (`run_socket`), which completes the WebSocket handshake, sends the hub thread
//!    `Input::Connect` with the socket's bounded queue, then every frame it reads, and writes
//!    what the queue brings (`pump`).
//! 3. The hub thread (`run_hub`) is the only one that touches the hub: it feeds each input
//!    (`handle_connect`, `handle_frame`, `handle_binary`, `handle_pong`, `handle_disconnect`), calls
//!    `handle_timeout` when [`Hub::poll_timeout`] comes due, and after **every** input drains
//!    [`Hub::poll_output`] until `None` (`carry_out`): a `Transmit` goes into each recipient's
//!    bounded queue, a `Close` into the queue (the hub has already forgotten the connection),
//!    an `Event` is the application's (this driver accepts every `authenticate` with the token
//!    as the user id, a demonstration policy, and has no other application).
//! 4. A socket whose queue is full when a frame is due is closed with 4005 (slow consumer): the
//!    hub thread never blocks on a socket.
//!
//! Single node: the bus outputs (`BusPublish`, `BusSubscribe`, `BusUnsubscribe`) have nowhere to
//! go and are dropped (set [`HubConfig::standalone`] and the hub makes none).
//!
//! ```no_run
//! use std::net::TcpListener;
//!
//! use roomcast_core::HubConfig;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let listener = TcpListener::bind("127.0.0.1:8080")?;
//! let server = roomcast_blocking::serve(listener, HubConfig::default())?;
//! println!("listening on ws://{}", server.local_addr());
//! // ... until the application stops it:
//! server.shutdown(); // every client is closed with 1001
//! # Ok(()) }
//! ```
//!
//! `examples/blocking_server.rs` is the same as a program; `tests/blocking_driver.rs` proves it
//! with real WebSocket clients.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{
    self, Receiver, RecvTimeoutError, Sender, SyncSender, TryRecvError, TrySendError,
};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use roomcast_core::{CloseCode, ConnId, Event, Hub, HubConfig, HubError, Identity, Output};
use tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tungstenite::{Message, Utf8Bytes, WebSocket};

/// Frames queued for one socket before it counts as a slow consumer.
pub const QUEUE_FRAMES: usize = 256;

/// How long a socket thread waits for input before it looks at its queue: the latency bound of
/// an idle socket in this simple driver.
const POLL: Duration = Duration::from_millis(5);

/// A running blocking server.
#[derive(Debug)]
pub struct BlockingServer {
    addr: SocketAddr,
    inputs: Sender<Input>,
    stopping: Arc<AtomicBool>,
    hub: Option<JoinHandle<()>>,
    acceptor: Option<JoinHandle<()>>,
}

#[derive(Debug)]
enum Input {
    Connect(ConnId, SyncSender<Outbound>),
    Frame(ConnId, Bytes),
    Binary(ConnId),
    Oversized(ConnId),
    Pong(ConnId),
    Disconnect(ConnId),
    Shutdown,
}

#[derive(Debug)]
enum Outbound {
    Text(Utf8Bytes),
    Ping,
    Close(u16, String),
}

/// Serves WebSocket clients on `listener` with a hub built from `config`. With
/// [`AuthMode::Required`](roomcast_core::AuthMode::Required), `authenticate` is accepted with the
/// token as the user id (a demonstration policy: real servers check the token).
pub fn serve(listener: TcpListener, config: HubConfig) -> Result<BlockingServer, HubError> {
    let addr =
        listener.local_addr().map_err(|_| HubError::InvalidConfig("listener has no address"))?;
    let max_frame = config.max_frame_bytes;
    let hub = Hub::new(config, Instant::now(), unix_ms())?;
    let (inputs, rx) = mpsc::channel();
    let stopping = Arc::new(AtomicBool::new(false));
    let hub_thread = thread::spawn(move || run_hub(hub, rx));
    let acceptor = {
        let (inputs, stopping) = (inputs.clone(), stopping.clone());
        thread::spawn(move || accept_loop(listener, inputs, stopping, max_frame))
    };
    Ok(BlockingServer { addr, inputs, stopping, hub: Some(hub_thread), acceptor: Some(acceptor) })
}

impl BlockingServer {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes every client with 1001 and stops the server's threads.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        let _ = self.inputs.send(Input::Shutdown);
        // Wake the acceptor blocked in accept().
        let _ = TcpStream::connect(self.addr);
        for handle in [self.acceptor.take(), self.hub.take()].into_iter().flatten() {
            let _ = handle.join();
        }
    }
}

impl Drop for BlockingServer {
    fn drop(&mut self) {
        if self.hub.is_some() {
            self.stop();
        }
    }
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn accept_loop(
    listener: TcpListener,
    inputs: Sender<Input>,
    stopping: Arc<AtomicBool>,
    max_frame: usize,
) {
    // Unique within this process; a clustered driver would use UUID v4.
    static NEXT: AtomicU64 = AtomicU64::new(1);
    for stream in listener.incoming() {
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let conn = ConnId::from_u128(u128::from(NEXT.fetch_add(1, Ordering::Relaxed)));
        let inputs = inputs.clone();
        thread::spawn(move || run_socket(stream, conn, inputs, max_frame));
    }
}

fn run_hub(mut hub: Hub, inputs: Receiver<Input>) {
    let mut writers: HashMap<ConnId, SyncSender<Outbound>> = HashMap::new();
    loop {
        let wait = hub
            .poll_timeout()
            .map_or(Duration::from_secs(3600), |at| at.saturating_duration_since(Instant::now()));
        let now = Instant::now;
        match inputs.recv_timeout(wait) {
            Ok(Input::Connect(conn, writer)) => {
                writers.insert(conn, writer);
                if hub.handle_connect(conn, now()).is_err() {
                    writers.remove(&conn);
                }
            }
            Ok(Input::Frame(conn, frame)) => hub.handle_frame(conn, &frame, now()),
            Ok(Input::Binary(conn)) => hub.handle_binary(conn, now()),
            Ok(Input::Oversized(conn)) => hub.handle_oversized(conn, now()),
            Ok(Input::Pong(conn)) => hub.handle_pong(conn, now()),
            Ok(Input::Disconnect(conn)) => {
                writers.remove(&conn);
                hub.handle_disconnect(conn, now());
            }
            Ok(Input::Shutdown) | Err(RecvTimeoutError::Disconnected) => {
                hub.close_all(CloseCode::GOING_AWAY, "server shutting down", now());
                carry_out(&mut hub, &mut writers);
                return;
            }
            Err(RecvTimeoutError::Timeout) => hub.handle_timeout(now()),
        }
        carry_out(&mut hub, &mut writers);
    }
}

/// Drains the hub's outputs into the socket queues.
fn carry_out(hub: &mut Hub, writers: &mut HashMap<ConnId, SyncSender<Outbound>>) {
    let mut slow = Vec::new();
    loop {
        while let Some(output) = hub.poll_output() {
            match output {
                Output::Transmit(t) => {
                    // Validated once, shared by every recipient.
                    let Ok(text) = Utf8Bytes::try_from(t.frame) else { continue };
                    for conn in t.to {
                        let queued =
                            writers.get(&conn).map(|w| w.try_send(Outbound::Text(text.clone())));
                        if let Some(Err(TrySendError::Full(_))) = queued {
                            slow.push(conn);
                        }
                    }
                }
                Output::Ping(conn) => {
                    if let Some(w) = writers.get(&conn) {
                        let _ = w.try_send(Outbound::Ping);
                    }
                }
                Output::Close { conn, code, reason } => {
                    // If the queue is full the writer is dropped, and the socket thread closes.
                    if let Some(w) = writers.remove(&conn) {
                        let _ = w.try_send(Outbound::Close(code.as_u16(), reason.into_owned()));
                    }
                }
                Output::Event(Event::Authenticate { conn, token, .. }) => {
                    let _ = hub.accept_auth(conn, Identity::user(token), Instant::now());
                }
                Output::BusPublish { .. }
                | Output::BusSubscribe(_)
                | Output::BusUnsubscribe(_)
                | Output::Event(_) => {}
            }
        }
        if slow.is_empty() {
            return;
        }
        for conn in slow.drain(..) {
            let _ = hub.close(conn, CloseCode::SLOW_CONSUMER, "slow consumer", Instant::now());
        }
    }
}

fn run_socket(stream: TcpStream, conn: ConnId, inputs: Sender<Input>, max_frame: usize) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let config = WebSocketConfig::default()
        .max_message_size(Some(max_frame))
        .max_frame_size(Some(max_frame));
    let Ok(mut ws) = tungstenite::accept_with_config(stream, Some(config)) else { return };
    if ws.get_ref().set_read_timeout(Some(POLL)).is_err() {
        return;
    }
    let (writer, queue) = mpsc::sync_channel(QUEUE_FRAMES);
    if inputs.send(Input::Connect(conn, writer)).is_err() {
        return;
    }
    let _ = pump(&mut ws, conn, &inputs, &queue);
    let _ = inputs.send(Input::Disconnect(conn));
}

/// Moves frames both ways until the socket or the hub ends the connection.
fn pump(
    ws: &mut WebSocket<TcpStream>,
    conn: ConnId,
    inputs: &Sender<Input>,
    queue: &Receiver<Outbound>,
) -> Result<(), tungstenite::Error> {
    loop {
        let input = match ws.read() {
            Ok(Message::Text(text)) => Some(Input::Frame(conn, Bytes::from(text))),
            Ok(Message::Binary(_)) => Some(Input::Binary(conn)),
            Ok(Message::Pong(_) | Message::Ping(_)) => Some(Input::Pong(conn)),
            Ok(Message::Close(_)) => return ws.flush(),
            Ok(Message::Frame(_)) => None,
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) =>
            {
                None
            }
            Err(tungstenite::Error::Capacity(_)) => Some(Input::Oversized(conn)),
            Err(e) => return Err(e),
        };
        if let Some(input) = input
            && inputs.send(input).is_err()
        {
            return Ok(());
        }
        loop {
            match queue.try_recv() {
                Ok(Outbound::Text(text)) => ws.write(Message::Text(text))?,
                Ok(Outbound::Ping) => ws.write(Message::Ping(Bytes::new()))?,
                Ok(Outbound::Close(code, reason)) => return close(ws, code, &reason),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    return close(ws, CloseCode::SLOW_CONSUMER.as_u16(), "slow consumer");
                }
            }
        }
        match ws.flush() {
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
            other => other?,
        }
    }
}

/// Sends the close frame (after everything queued before it) and waits briefly for the reply.
fn close(ws: &mut WebSocket<TcpStream>, code: u16, reason: &str) -> Result<(), tungstenite::Error> {
    let frame = CloseFrame { code: WsCloseCode::from(code), reason: Utf8Bytes::from(reason) };
    ws.close(Some(frame))?;
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        match ws.read() {
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) =>
            {
                let _ = ws.flush();
            }
            Err(_) => return Ok(()),
            Ok(_) => {}
        }
    }
    Ok(())
}

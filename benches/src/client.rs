//! A lean WebSocket client for the load generator: one read buffer per socket and frames parsed
//! in place, so that a single core can receive millions of frames per second and the load
//! generator is not what a benchmark measures. Speaks just what the scenarios need: the upgrade,
//! masked text frames out, text frames in (permessage-deflate ones too, when asked for), pongs for
//! pings; and, for the socket.io rival, Engine.IO v4's open, connect and ping packets over the
//! WebSocket transport, with events as socket.io packets (`42["event",data]`).

use std::pin::Pin;
use std::time::{Duration, Instant};

use flate2::{Decompress, FlushDecompress};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Sleep;

/// The mask of every frame this client sends. RFC 6455 asks for unpredictable masks against
/// proxy-cache poisoning, which is not a concern on loopback; servers must accept any mask.
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// The application protocol over the WebSocket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Protocol {
    /// roomcast's JSON frames, `{"event":..,"data":..}` (Bun's and Node's rivals speak it too).
    #[default]
    Roomcast,
    /// socket.io 4 (Engine.IO v4, WebSocket transport): connect to
    /// `ws://host:port/socket.io/?EIO=4&transport=websocket`.
    Socketio,
}

/// What [`LoadClient::next`] found.
#[derive(Debug)]
pub enum Frame<'a> {
    /// A text frame's payload.
    Text(&'a [u8]),
    /// The server closed the connection (a close frame, or the end of the stream).
    Closed,
}

/// One WebSocket connection.
#[derive(Debug)]
pub struct LoadClient {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Where the unread bytes of `buf` start.
    at: usize,
    /// The length of the frame returned last, consumed by the next call.
    consumed: usize,
    /// When the last read returned: every frame it brought arrived then. One clock reading per
    /// read, not per frame, keeps the clock out of the load generator's profile.
    read_at: Instant,
    /// How long a read may wait before [`LoadClient::next`] gives up (none: forever).
    read_timeout: Option<Duration>,
    /// The timer behind `read_timeout`: armed once and moved on only when it fires, so a busy
    /// socket costs no timer work per read.
    idle: Option<Pin<Box<Sleep>>>,
    /// With permessage-deflate agreed: the inflater (reset for every message: the server keeps
    /// no context) and the last message it inflated.
    inflate: Option<Box<Decompress>>,
    inflated: Vec<u8>,
    /// Bytes read from the socket since the upgrade: what the server put on the wire.
    wire_bytes: u64,
    protocol: Protocol,
    /// Frames queued by [`LoadClient::queue`], written by the next [`LoadClient::flush`].
    out: Vec<u8>,
}

impl LoadClient {
    /// Connects to a `ws://host:port/path` URL and completes the upgrade.
    pub async fn connect(url: &str) -> Result<Self, String> {
        Self::connect_with(url, false).await
    }

    /// The same, offering permessage-deflate when `compression` (and failing if the server does
    /// not agree to it).
    pub async fn connect_with(url: &str, compression: bool) -> Result<Self, String> {
        Self::connect_as(url, compression, Protocol::Roomcast).await
    }

    /// The same, speaking `protocol`: for socket.io, the Engine.IO session is open and the
    /// client connected to the main namespace when this returns.
    pub async fn connect_as(
        url: &str,
        compression: bool,
        protocol: Protocol,
    ) -> Result<Self, String> {
        let mut client = Self::upgrade(url, compression, protocol).await?;
        if protocol == Protocol::Socketio {
            // Engine.IO's open packet ("0{sid,..}"), then socket.io's connect ("40") answered
            // with the namespace's ("40{sid}").
            client.expect_text(b"0").await?;
            client.send_text("40").await?;
            client.expect_text(b"40").await?;
        }
        Ok(client)
    }

    /// Skips text frames until one that starts with `prefix`.
    async fn expect_text(&mut self, prefix: &[u8]) -> Result<(), String> {
        loop {
            match self.next().await? {
                Frame::Text(text) if text.starts_with(prefix) => return Ok(()),
                Frame::Text(_) => {}
                Frame::Closed => return Err("closed during the socket.io handshake".into()),
            }
        }
    }

    /// Sends an event in this client's protocol (see [`event_text`]).
    pub async fn emit(
        &mut self,
        event: &str,
        data: &serde_json::Value,
        id: Option<&str>,
    ) -> Result<(), String> {
        self.queue(event, data, id);
        self.flush().await
    }

    /// Queues an event, to go out with others in one write at the next [`LoadClient::flush`].
    pub fn queue(&mut self, event: &str, data: &serde_json::Value, id: Option<&str>) {
        let text = event_text(self.protocol, event, data, id);
        put_client_frame(&mut self.out, 0x81, text.as_bytes());
    }

    /// Writes what [`LoadClient::queue`] queued.
    pub async fn flush(&mut self) -> Result<(), String> {
        let written = self.stream.write_all(&self.out).await.map_err(|e| e.to_string());
        self.out.clear();
        written
    }

    /// What this client speaks.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    async fn upgrade(url: &str, compression: bool, protocol: Protocol) -> Result<Self, String> {
        let rest = url.strip_prefix("ws://").ok_or("only ws:// URLs")?;
        let (host, path) =
            rest.split_once('/').map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
        let mut stream =
            TcpStream::connect(host).await.map_err(|e| format!("connect {host}: {e}"))?;
        let _ = stream.set_nodelay(true);
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{}\r\n",
            if compression { "Sec-WebSocket-Extensions: permessage-deflate\r\n" } else { "" }
        );
        stream.write_all(request.as_bytes()).await.map_err(|e| format!("upgrade: {e}"))?;
        let mut client = Self {
            stream,
            buf: Vec::with_capacity(4096),
            at: 0,
            consumed: 0,
            read_at: Instant::now(),
            read_timeout: None,
            idle: None,
            inflate: None,
            inflated: Vec::new(),
            wire_bytes: 0,
            protocol,
            out: Vec::new(),
        };
        loop {
            if let Some(end) = client.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                if !client.buf.starts_with(b"HTTP/1.1 101") {
                    let head = String::from_utf8_lossy(&client.buf[..end]).into_owned();
                    return Err(format!("upgrade refused: {head}"));
                }
                let head = String::from_utf8_lossy(&client.buf[..end]).to_ascii_lowercase();
                if compression {
                    if !head.contains("permessage-deflate") {
                        return Err("the server did not agree to permessage-deflate".into());
                    }
                    client.inflate = Some(Box::new(Decompress::new(false)));
                }
                client.at = end + 4;
                client.wire_bytes = (client.buf.len() - client.at) as u64;
                return Ok(client);
            }
            if client.fill().await? == 0 {
                return Err("closed during the upgrade".into());
            }
        }
    }

    /// Makes [`LoadClient::next`] fail when no bytes arrive for `timeout` (a timer is armed only
    /// when a read has to wait, not for every frame).
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) {
        self.read_timeout = timeout;
    }

    /// Bytes read from the socket since the upgrade.
    pub fn wire_bytes(&self) -> u64 {
        self.wire_bytes
    }

    /// When the bytes of the frame [`LoadClient::next`] returned last were read.
    pub fn read_at(&self) -> Instant {
        self.read_at
    }

    /// Sends a text frame.
    pub async fn send_text(&mut self, text: &str) -> Result<(), String> {
        let frame = client_frame(0x81, text.as_bytes());
        self.stream.write_all(&frame).await.map_err(|e| e.to_string())
    }

    /// Starts the close handshake (1000) and waits until the server ends the connection.
    pub async fn close(mut self) -> Result<(), String> {
        let frame = client_frame(0x88, &1000u16.to_be_bytes());
        self.stream.write_all(&frame).await.map_err(|e| e.to_string())?;
        while let Frame::Text(_) = self.next().await? {}
        Ok(())
    }

    /// Reads more bytes; compacts the buffer first.
    async fn fill(&mut self) -> Result<usize, String> {
        if self.at > 0 {
            self.buf.drain(..self.at);
            self.at = 0;
        }
        if self.buf.capacity() - self.buf.len() < 16 * 1024 {
            self.buf.reserve(64 * 1024);
        }
        let n = match self.read_timeout {
            None => self.stream.read_buf(&mut self.buf).await,
            Some(timeout) => loop {
                let idle = self.idle.get_or_insert_with(|| {
                    Box::pin(tokio::time::sleep_until((self.read_at + timeout).into()))
                });
                tokio::select! {
                    biased;
                    read = self.stream.read_buf(&mut self.buf) => break read,
                    () = idle.as_mut() => {
                        let quiet_until = self.read_at + timeout;
                        if Instant::now() >= quiet_until {
                            return Err("read timed out".into());
                        }
                        idle.as_mut().reset(quiet_until.into());
                    }
                }
            },
        }
        .map_err(|e| e.to_string())?;
        self.wire_bytes += n as u64;
        self.read_at = Instant::now();
        Ok(n)
    }

    /// The next text frame (pings are answered, Engine.IO's too, other frames skipped).
    pub async fn next(&mut self) -> Result<Frame<'_>, String> {
        self.at += std::mem::take(&mut self.consumed);
        loop {
            match parse(&self.buf[self.at..]) {
                Some((first, head, len)) => {
                    let start = self.at + head;
                    match first & 0x0f {
                        0x1 if first & 0x40 != 0 => {
                            self.consumed = head + len;
                            let inflate = self.inflate.as_mut().ok_or("RSV1 not negotiated")?;
                            let payload = &self.buf[start..start + len];
                            inflate_shared(inflate, payload, &mut self.inflated)?;
                            return Ok(Frame::Text(&self.inflated));
                        }
                        0x1 if self.protocol == Protocol::Socketio
                            && &self.buf[start..start + len] == b"2" =>
                        {
                            // Engine.IO's ping (the server's): answered with a pong packet.
                            self.at += head + len;
                            let pong = client_frame(0x81, b"3");
                            self.stream.write_all(&pong).await.map_err(|e| e.to_string())?;
                        }
                        0x1 => {
                            self.consumed = head + len;
                            return Ok(Frame::Text(&self.buf[start..start + len]));
                        }
                        0x8 => return Ok(Frame::Closed),
                        0x9 => {
                            let pong = client_frame(0x8a, &self.buf[start..start + len]);
                            self.at += head + len;
                            self.stream.write_all(&pong).await.map_err(|e| e.to_string())?;
                        }
                        _ => self.at += head + len,
                    }
                }
                None => {
                    if self.fill().await? == 0 {
                        return Ok(Frame::Closed);
                    }
                }
            }
        }
    }
}

/// An event as `protocol` frames it: `{"event":..,"data":..,"id":..}`, or socket.io's
/// `42["event",data]` (a socket.io event carries no request id: `id` is left out).
pub fn event_text(
    protocol: Protocol,
    event: &str,
    data: &serde_json::Value,
    id: Option<&str>,
) -> String {
    // Written straight out (a `json!` of `data` would copy its whole tree on every publish).
    let quoted = |text: &str| serde_json::Value::from(text).to_string();
    match (protocol, id) {
        (Protocol::Socketio, _) => format!("42[{},{data}]", quoted(event)),
        (Protocol::Roomcast, None) => format!(r#"{{"data":{data},"event":{}}}"#, quoted(event)),
        (Protocol::Roomcast, Some(id)) => {
            format!(r#"{{"data":{data},"event":{},"id":{}}}"#, quoted(event), quoted(id))
        }
    }
}

/// The event name of a text frame in `protocol`, if it is an event.
pub fn event_name(protocol: Protocol, text: &[u8]) -> Option<String> {
    let value: serde_json::Value = match protocol {
        Protocol::Roomcast => serde_json::from_slice(text).ok()?,
        Protocol::Socketio => serde_json::from_slice(text.strip_prefix(b"42")?).ok()?,
    };
    let name = match protocol {
        Protocol::Roomcast => value.get("event"),
        Protocol::Socketio => value.get(0),
    };
    name?.as_str().map(str::to_owned)
}

/// How many recent broadcasts a thread keeps inflated: subscribers that lag read older ones.
const RECENT_MESSAGES: usize = 16 * 1024;

/// The last compressed messages a thread inflated, and what they inflated to.
#[derive(Default)]
struct Recent {
    messages: std::collections::HashMap<Vec<u8>, Vec<u8>>,
    /// Their keys, oldest first.
    order: std::collections::VecDeque<Vec<u8>>,
}

thread_local! {
    /// A thousand subscribers on one core would otherwise inflate a broadcast a thousand times,
    /// work that real clients do each on their own machine: the load generator must not be what
    /// a compression benchmark measures.
    static RECENT: std::cell::RefCell<Recent> = std::cell::RefCell::default();
}

/// Inflates a compressed broadcast into `out`, once per thread: every subscriber gets the same
/// bytes of a broadcast (the server keeps no context), so the others copy the first one's result.
fn inflate_shared(
    inflate: &mut Decompress,
    payload: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), String> {
    RECENT.with_borrow_mut(|recent| {
        if !recent.messages.contains_key(payload) {
            let mut inflated = Vec::new();
            inflate_message(inflate, payload, &mut inflated)?;
            if recent.order.len() == RECENT_MESSAGES
                && let Some(oldest) = recent.order.pop_front()
            {
                recent.messages.remove(&oldest);
            }
            recent.order.push_back(payload.to_vec());
            recent.messages.insert(payload.to_vec(), inflated);
        }
        out.clear();
        out.extend_from_slice(&recent.messages[payload]);
        Ok(())
    })
}

/// Inflates one compressed message (the server's: no context kept) into `out`.
fn inflate_message(
    inflate: &mut Decompress,
    payload: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), String> {
    const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];
    inflate.reset(false);
    out.clear();
    for mut input in [payload, &TAIL[..]] {
        loop {
            if out.capacity() - out.len() < 4096 {
                out.reserve(out.capacity().max(16 * 1024));
            }
            let (before, wrote) = (inflate.total_in(), out.len());
            inflate
                .decompress_vec(input, out, FlushDecompress::Sync)
                .map_err(|e| format!("inflate: {e}"))?;
            input = &input[(inflate.total_in() - before) as usize..];
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
            if inflate.total_in() == before && out.len() == wrote {
                return Err("inflate: no progress".into());
            }
        }
    }
    Ok(())
}

/// (first byte, header length, payload length) of the server frame at the start of `buf`, if
/// it is whole.
fn parse(buf: &[u8]) -> Option<(u8, usize, usize)> {
    let (&first, &second) = (buf.first()?, buf.get(1)?);
    let (head, len) = match second & 0x7f {
        126 => (4, usize::from(u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?]))),
        127 => (10, usize::try_from(u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?)).ok()?),
        n => (2, usize::from(n)),
    };
    (buf.len() >= head + len).then_some((first, head, len))
}

/// A masked client frame.
fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(payload.len() + 14);
    put_client_frame(&mut frame, first, payload);
    frame
}

/// Appends a masked client frame to `frame`.
fn put_client_frame(frame: &mut Vec<u8>, first: u8, payload: &[u8]) {
    frame.push(first);
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n <= usize::from(u16::MAX) => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&MASK);
    frame.extend(payload.iter().zip(MASK.iter().cycle()).map(|(b, m)| b ^ m));
}

#[cfg(test)]
mod tests {
    use super::{Protocol, event_name, event_text};
    use serde_json::json;

    #[test]
    fn events_are_framed_as_roomcast_and_as_socket_io_frame_them() {
        let data = json!({"rooms":["a"]});
        assert_eq!(
            event_text(Protocol::Roomcast, "join", &data, Some("j")),
            r#"{"data":{"rooms":["a"]},"event":"join","id":"j"}"#
        );
        assert_eq!(
            event_text(Protocol::Socketio, "join", &data, Some("j")),
            r#"42["join",{"rooms":["a"]}]"#
        );
    }

    #[test]
    fn event_names_are_read_from_either_protocol_and_other_packets_have_none() {
        assert_eq!(
            event_name(Protocol::Roomcast, br#"{"event":"joined"}"#).as_deref(),
            Some("joined")
        );
        assert_eq!(
            event_name(Protocol::Socketio, br#"42["joined",{}]"#).as_deref(),
            Some("joined")
        );
        assert_eq!(event_name(Protocol::Socketio, br#"40{"sid":"x"}"#), None);
        assert_eq!(event_name(Protocol::Socketio, b"2"), None);
        assert_eq!(event_name(Protocol::Roomcast, b"not json"), None);
        assert_eq!(event_name(Protocol::Roomcast, b"[1]"), None);
        assert_eq!(event_name(Protocol::Socketio, br#"42{"event":"x"}"#), None);
    }
}

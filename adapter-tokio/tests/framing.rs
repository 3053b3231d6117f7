//! The fast path's own RFC 6455 framing, seen from a raw TCP client that writes exactly the bytes
//! each test needs: fragments, pings, masks, close codes, bytes behind the upgrade request, and
//! the tungstenite fallback for servers whose stream roomcast cannot see through.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{Client, PATIENCE, options, start};
use roomcast_tokio::roomcast_core::{CloseCode, DisconnectReason, Event};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const UPGRADE: &str = "GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

/// A WebSocket client that writes raw frames.
struct Raw {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// A client frame: masked, with `first` as its first byte (FIN and opcode).
fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0xa1, 0xb2, 0xc3, 0xd4];
    let mut out = vec![first];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
    out
}

fn text(value: &Value) -> Vec<u8> {
    frame(0x81, value.to_string().as_bytes())
}

impl Raw {
    /// Connects and upgrades, sending `behind` in the same write as the request.
    async fn connect(addr: SocketAddr, behind: &[u8]) -> Self {
        Self::connect_with(addr, "", behind).await.0
    }

    /// Connects and upgrades with `headers` (whole lines) added to the request; the client and
    /// the response's head.
    async fn connect_with(addr: SocketAddr, headers: &str, behind: &[u8]) -> (Self, String) {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let upgrade = UPGRADE.strip_suffix("\r\n").unwrap();
        let mut request = format!("{upgrade}{headers}\r\n").into_bytes();
        request.extend_from_slice(behind);
        stream.write_all(&request).await.unwrap();
        let mut raw = Self { stream, buf: Vec::new() };
        let head = raw.until(b"\r\n\r\n").await;
        let head = String::from_utf8(head).unwrap();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "RFC 6455's accept key: {head}");
        (raw, head)
    }

    async fn fill(&mut self) -> usize {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(PATIENCE, self.stream.read(&mut chunk))
            .await
            .expect("bytes in time")
            .unwrap();
        self.buf.extend_from_slice(&chunk[..n]);
        n
    }

    async fn until(&mut self, end: &[u8]) -> Vec<u8> {
        loop {
            if let Some(at) = self.buf.windows(end.len()).position(|w| w == end) {
                return self.buf.drain(..at + end.len()).collect();
            }
            assert!(self.fill().await > 0, "closed before {end:?}");
        }
    }

    /// The next server frame: (first byte, payload). Server frames are never masked.
    async fn next(&mut self) -> (u8, Vec<u8>) {
        loop {
            if self.buf.len() >= 2 {
                assert_eq!(self.buf[1] & 0x80, 0, "server frames are unmasked");
                let (head, len) = match self.buf[1] & 0x7f {
                    126 if self.buf.len() >= 4 => {
                        (4, usize::from(u16::from_be_bytes([self.buf[2], self.buf[3]])))
                    }
                    126 => (usize::MAX, 0),
                    n => (2, usize::from(n)),
                };
                if head != usize::MAX && self.buf.len() >= head + len {
                    let first = self.buf[0];
                    let payload = self.buf[head..head + len].to_vec();
                    self.buf.drain(..head + len);
                    return (first, payload);
                }
            }
            assert!(self.fill().await > 0, "closed before a whole frame");
        }
    }

    async fn json(&mut self) -> Value {
        loop {
            let (first, payload) = self.next().await;
            if first == 0x81 {
                return serde_json::from_slice(&payload).unwrap();
            }
            assert_ne!(first, 0x88, "closed: {payload:?}");
        }
    }

    async fn close_code(&mut self) -> u16 {
        loop {
            let (first, payload) = self.next().await;
            if first == 0x88 {
                return u16::from_be_bytes([payload[0], payload[1]]);
            }
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// After the close handshake the server ends the TCP connection.
    async fn expect_eof(&mut self) {
        let mut chunk = [0u8; 64];
        loop {
            let read = tokio::time::timeout(PATIENCE, self.stream.read(&mut chunk)).await;
            match read.expect("the server ends the connection") {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }
}

#[tokio::test]
async fn a_frame_sent_right_behind_the_upgrade_request_is_not_lost() {
    let (_handle, _events, addr) = start(options()).await;
    let join = text(&json!({"event":"join","data":{"rooms":["r"]},"id":1}));
    let mut client = Raw::connect(addr, &join).await;
    assert_eq!(client.json().await["event"], "connected");
    let joined = client.json().await;
    assert_eq!((joined["event"].as_str(), joined["id"].as_i64()), (Some("joined"), Some(1)));
}

#[tokio::test]
async fn a_fragmented_message_with_a_ping_between_its_fragments_is_one_request() {
    let (_handle, _events, addr) = start(options()).await;
    let mut client = Raw::connect(addr, &[]).await;
    assert_eq!(client.json().await["event"], "connected");
    let whole = json!({"event":"join","data":{"rooms":["fragmented"]},"id":2}).to_string();
    let (a, b) = whole.as_bytes().split_at(10);
    let mut bytes = frame(0x01, a);
    bytes.extend(frame(0x89, b"are you there"));
    bytes.extend(frame(0x80, b));
    // One byte at a time: frames and headers split anywhere.
    for byte in bytes {
        client.send(&[byte]).await;
    }
    assert_eq!(client.next().await, (0x8a, b"are you there".to_vec()), "the pong echoes the ping");
    assert_eq!(client.json().await["id"], 2);
}

#[tokio::test]
async fn protocol_violations_close_with_1002_and_bad_utf8_with_1007() {
    let (_handle, _events, addr) = start(options()).await;
    let mut unmasked = Raw::connect(addr, &[]).await;
    unmasked.send(&[0x81, 0x02, b'{', b'}']).await;
    assert_eq!(unmasked.close_code().await, 1002);
    unmasked.expect_eof().await;

    let mut reserved = Raw::connect(addr, &[]).await;
    reserved.send(&frame(0x83, b"x")).await;
    assert_eq!(reserved.close_code().await, 1002);

    let mut stray = Raw::connect(addr, &[]).await;
    stray.send(&frame(0x80, b"x")).await;
    assert_eq!(stray.close_code().await, 1002);

    let mut not_utf8 = Raw::connect(addr, &[]).await;
    not_utf8.send(&frame(0x81, &[0xc3, 0x28])).await;
    assert_eq!(not_utf8.close_code().await, 1007);

    // The server is unharmed.
    let (mut fine, _) = Client::connected(addr).await;
    fine.expect_nothing_pending().await;
}

#[tokio::test]
async fn a_client_close_is_answered_with_its_code_and_the_server_ends_the_connection() {
    let (_handle, _events, addr) = start(options()).await;
    let mut client = Raw::connect(addr, &[]).await;
    assert_eq!(client.json().await["event"], "connected");
    let mut payload = 1000u16.to_be_bytes().to_vec();
    payload.extend_from_slice(b"bye");
    client.send(&frame(0x88, &payload)).await;
    assert_eq!(client.close_code().await, 1000);
    client.expect_eof().await;
}

#[tokio::test]
async fn a_fragmented_message_over_the_limit_closes_with_1009() {
    let mut opts = options();
    opts.hub.max_frame_bytes = 1024;
    let (_handle, _events, addr) = start(opts).await;
    let mut client = Raw::connect(addr, &[]).await;
    assert_eq!(client.json().await["event"], "connected");
    client.send(&frame(0x01, &[b' '; 600])).await;
    client.send(&frame(0x80, &[b' '; 600])).await;
    assert_eq!(client.close_code().await, 1009);
}

#[tokio::test]
async fn a_plain_http_request_gets_426() {
    let (_handle, _events, addr) = start(options()).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    tokio::time::timeout(PATIENCE, stream.read_to_string(&mut response)).await.unwrap().unwrap();
    assert!(response.starts_with("HTTP/1.1 426"), "{response}");
}

#[tokio::test]
async fn sockets_upgraded_by_axum_serve_take_the_tungstenite_path_and_work_the_same() {
    use axum::Router;
    use axum::routing::get;
    let (handle, _events) = roomcast_tokio::Roomcast::builder().options(options()).start().unwrap();
    let app =
        Router::new().route("/ws", get(roomcast_tokio::axum::upgrade)).with_state(handle.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let (mut a, _) = Client::connected(addr).await;
    let (mut b, _) = Client::connected(addr).await;
    for client in [&mut a, &mut b] {
        client.send(json!({"event":"join","data":{"rooms":["lobby"]},"id":"j"})).await;
        assert_eq!(client.recv().await["event"], "joined");
    }
    a.send(json!({"event":"publish","data":{"room":"lobby","event":"chat","data":"hi"}})).await;
    let got = b.recv().await;
    assert_eq!((got["event"].as_str(), got["data"].as_str()), (Some("chat"), Some("hi")));
    a.expect_nothing_pending().await;
    tokio::time::timeout(Duration::from_secs(30), handle.shutdown()).await.unwrap();
    assert_eq!(a.close_code().await, 1001);
}

#[tokio::test]
async fn bytes_that_arrive_after_a_read_drained_the_socket_still_wake_it() {
    // One thread runs the server and the clients: tasks woken by the I/O driver run in the
    // order their bytes arrived. So once a second client's request is answered, the socket task
    // of the first has read the piece sent before it: every read is short, and each new piece
    // must raise new readiness. No sleep decides it.
    let (_handle, _events, addr) = start(options()).await;
    let mut client = Raw::connect(addr, &[]).await;
    let mut witness = Raw::connect(addr, &[]).await;
    assert_eq!(client.json().await["event"], "connected");
    assert_eq!(witness.json().await["event"], "connected");
    let mut n = 0;
    for id in 0..3 {
        let join = text(&json!({"event":"join","data":{"rooms":[format!("r{id}")]},"id":id}));
        for piece in join.chunks(7) {
            client.send(piece).await;
            n += 1;
            witness.send(&text(&json!({"event":"leave","data":{"rooms":["x"]},"id":n}))).await;
            assert_eq!(witness.json().await["id"], n);
        }
        assert_eq!(client.json().await["id"], id);
    }
}

#[tokio::test]
async fn a_message_larger_than_one_read_arrives_whole() {
    let (_handle, _events, addr) = start(options()).await;
    let mut sender = Raw::connect(addr, &[]).await;
    let mut receiver = Raw::connect(addr, &[]).await;
    for client in [&mut sender, &mut receiver] {
        assert_eq!(client.json().await["event"], "connected");
        client.send(&text(&json!({"event":"join","data":{"rooms":["big"]},"id":1}))).await;
        assert_eq!(client.json().await["event"], "joined");
    }
    let big = "b".repeat(40 * 1024); // more than the server's 16 KiB read buffer
    sender
        .send(&text(&json!({"event":"publish","data":{"room":"big","event":"m","data":big}})))
        .await;
    let got = receiver.json().await;
    assert_eq!((got["event"].as_str(), got["data"].as_str()), (Some("m"), Some(big.as_str())));
}

#[tokio::test]
async fn the_metrics_show_the_hubs_rounds_its_socket_writes_and_its_busy_time() {
    let (handle, _events, addr) = start(options()).await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut client = Raw::connect(addr, &[]).await;
        assert_eq!(client.json().await["event"], "connected");
        client.send(&text(&json!({"event":"join","data":{"rooms":["r"]},"id":1}))).await;
        assert_eq!(client.json().await["event"], "joined");
        clients.push(client);
    }
    let before = handle.metrics().await.unwrap();
    clients[0].send(&text(&json!({"event":"publish","data":{"room":"r","event":"m"}}))).await;
    for client in &mut clients[1..] {
        assert_eq!(client.json().await["event"], "m");
    }
    let after = handle.metrics().await.unwrap();
    assert!(after.hub_rounds() > before.hub_rounds(), "the publish took a round");
    assert!(
        after.hub_socket_writes() >= before.hub_socket_writes() + 2,
        "each of the two recipients written"
    );
    assert!(after.hub_busy() > before.hub_busy());
    assert!(after.hub_writing() > before.hub_writing() && after.hub_writing() <= after.hub_busy());
    let text = after.to_prometheus();
    for name in ["hub_rounds_total", "hub_socket_writes_total"] {
        let line = text.lines().find(|l| l.starts_with(&format!("roomcast_{name} "))).unwrap();
        assert!(line.rsplit(' ').next().unwrap().parse::<u64>().unwrap() > 0, "{line}");
    }
    let busy = text.lines().find(|l| l.starts_with("roomcast_hub_busy_seconds_total ")).unwrap();
    assert!(busy.rsplit(' ').next().unwrap().parse::<f64>().unwrap() > 0.0, "{busy}");
}

#[tokio::test]
async fn the_hub_decides_a_violation_close_so_the_application_and_the_metrics_see_its_code() {
    let (handle, mut events, addr) = start(options()).await;
    let mut client = Raw::connect(addr, &[]).await;
    assert_eq!(client.json().await["event"], "connected");
    client.send(&[0x81, 0x02, b'{', b'}']).await; // unmasked
    assert_eq!(client.close_code().await, 1002);
    let reason = loop {
        let event = tokio::time::timeout(PATIENCE, events.recv()).await.unwrap().unwrap();
        if let Event::Disconnected { reason, .. } = event {
            break reason;
        }
    };
    assert_eq!(reason, DisconnectReason::Closed(CloseCode::PROTOCOL_ERROR));
    let metrics = handle.metrics().await.unwrap();
    assert_eq!(metrics.closes().get(&1002), Some(&1), "{:?}", metrics.closes());
}

#[tokio::test]
async fn a_close_code_that_may_not_be_sent_fails_the_connection_with_1002() {
    let (_handle, _events, addr) = start(options()).await;
    for code in [0u16, 999, 1005, 1006, 1015, 2000, 5000] {
        let mut client = Raw::connect(addr, &[]).await;
        assert_eq!(client.json().await["event"], "connected");
        client.send(&frame(0x88, &code.to_be_bytes())).await;
        assert_eq!(client.close_code().await, 1002, "close code {code}");
    }
    let mut valid = Raw::connect(addr, &[]).await;
    assert_eq!(valid.json().await["event"], "connected");
    valid.send(&frame(0x88, &4000u16.to_be_bytes())).await;
    assert_eq!(valid.close_code().await, 4000, "a valid code is echoed");
}

#[tokio::test]
async fn frames_before_a_violation_in_the_same_read_are_handled_before_the_close() {
    let (_handle, _events, addr) = start(options()).await;
    let mut client = Raw::connect(addr, &[]).await;
    assert_eq!(client.json().await["event"], "connected");
    let mut bytes = text(&json!({"event":"join","data":{"rooms":["r"]},"id":1}));
    bytes.extend_from_slice(&[0x81, 0x02, b'{', b'}']); // unmasked: a violation
    client.send(&bytes).await;
    assert_eq!(client.json().await["id"], 1, "the join before the violation is answered");
    assert_eq!(client.close_code().await, 1002);
}

/// Compresses as a client does: raw deflate, sync flush, the tail left off.
fn deflate(compress: &mut flate2::Compress, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 64);
    compress.compress_vec(payload, &mut out, flate2::FlushCompress::Sync).unwrap();
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

fn inflate(payload: &[u8]) -> Vec<u8> {
    let mut decompress = flate2::Decompress::new(false);
    let mut input = payload.to_vec();
    input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut out = Vec::with_capacity(64 * 1024);
    decompress.decompress_vec(&input, &mut out, flate2::FlushDecompress::Sync).unwrap();
    out
}

fn compressing() -> roomcast_tokio::Options {
    roomcast_tokio::Options { compression: true, ..options() }
}

#[tokio::test]
async fn compression_is_negotiated_per_connection_and_a_broadcast_is_compressed_for_those_who_took_it()
 {
    let (_handle, _events, addr) = start(compressing()).await;
    let offer = "Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover\r\n";
    let (mut zipped, head) = Raw::connect_with(addr, offer, &[]).await;
    assert!(
        head.contains("permessage-deflate; server_no_context_takeover; client_no_context_takeover"),
        "{head}"
    );
    let (mut plain, head) = Raw::connect_with(addr, "", &[]).await;
    assert!(!head.to_ascii_lowercase().contains("sec-websocket-extensions"), "{head}");
    for client in [&mut zipped, &mut plain] {
        assert_eq!(client.json().await["event"], "connected");
        client.send(&text(&json!({"event":"join","data":{"rooms":["r"]},"id":1}))).await;
        assert_eq!(client.json().await["event"], "joined");
    }
    let long = "all work and no play ".repeat(50);
    let publish =
        json!({"event":"publish","data":{"room":"r","event":"m","data":long,"excludeSelf":false}});
    plain.send(&text(&publish)).await;
    let expected = json!({"event":"m","room":"r","data":long});
    assert_eq!(plain.json().await, expected, "uncompressed for a client that did not ask");
    let (first, payload) = zipped.next().await;
    assert_eq!(first, 0xc1, "FIN, RSV1 (compressed), text");
    assert!(payload.len() < long.len() / 4, "{} bytes on the wire", payload.len());
    assert_eq!(serde_json::from_slice::<Value>(&inflate(&payload)).unwrap(), expected);
    // A short message is not worth compressing.
    plain.send(&text(&json!({"event":"publish","data":{"room":"r","event":"s","data":1}}))).await;
    assert_eq!(zipped.next().await.0, 0x81);
}

#[tokio::test]
async fn compressed_client_messages_are_inflated_with_the_clients_context_and_bombs_refused() {
    let (_handle, _events, addr) = start(compressing()).await;
    let offer = "Sec-WebSocket-Extensions: permessage-deflate\r\n";
    let (mut client, head) = Raw::connect_with(addr, offer, &[]).await;
    assert!(head.contains("permessage-deflate; server_no_context_takeover\r\n"), "{head}");
    assert_eq!(client.json().await["event"], "connected");
    // The client keeps its context: the second message refers back to the first.
    let mut compress = flate2::Compress::new(flate2::Compression::default(), false);
    for id in 0..3 {
        let join = json!({"event":"join","data":{"rooms":["a room with a long name"]},"id":id});
        let bytes = deflate(&mut compress, join.to_string().as_bytes());
        client.send(&frame(0xc1, &bytes)).await;
        assert_eq!(client.json().await["id"], id);
    }
    // A message that inflates past the frame limit is refused as too large (1009), however
    // small it is on the wire.
    let mut fresh = flate2::Compress::new(flate2::Compression::best(), false);
    let bomb = deflate(&mut fresh, &vec![b' '; 1 << 20]);
    assert!(bomb.len() < 2048, "{} bytes", bomb.len());
    client.send(&frame(0xc1, &bomb)).await;
    assert_eq!(client.close_code().await, 1009);

    // RSV1 on a continuation frame is a protocol error.
    let (mut other, _) = Raw::connect_with(addr, offer, &[]).await;
    assert_eq!(other.json().await["event"], "connected");
    other.send(&frame(0x01, b"{")).await;
    other.send(&frame(0xc0, b"}")).await;
    assert_eq!(other.close_code().await, 1002);
}

#[tokio::test]
async fn without_compression_on_an_offer_is_ignored_and_rsv1_is_a_protocol_error() {
    let (_handle, _events, addr) = start(options()).await;
    let offer = "Sec-WebSocket-Extensions: permessage-deflate\r\n";
    let (mut client, head) = Raw::connect_with(addr, offer, &[]).await;
    assert!(!head.to_ascii_lowercase().contains("sec-websocket-extensions"), "{head}");
    assert_eq!(client.json().await["event"], "connected");
    client.send(&frame(0xc1, b"\x01")).await;
    assert_eq!(client.close_code().await, 1002);
}

#[tokio::test]
async fn a_client_asking_for_a_small_server_window_gets_compressed_only_the_messages_within_it() {
    let (_handle, _events, addr) = start(compressing()).await;
    let offer = "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=9\r\n";
    let (mut client, head) = Raw::connect_with(addr, offer, &[]).await;
    assert!(
        head.contains("permessage-deflate; server_no_context_takeover; server_max_window_bits=9"),
        "{head}"
    );
    assert_eq!(client.json().await["event"], "connected");
    client.send(&text(&json!({"event":"join","data":{"rooms":["r"]},"id":1}))).await;
    assert_eq!(client.json().await["event"], "joined");
    // 300 bytes fit a 512-byte window: no back-reference of a message compressed on its own
    // reaches further than the message. 2,000 bytes do not, and go out as they are.
    for (len, first) in [(300, 0xc1), (2000, 0x81)] {
        let data = "x".repeat(len);
        let publish = json!({"event":"publish","data":{"room":"r","event":"m","data":data,"excludeSelf":false}});
        client.send(&text(&publish)).await;
        let (head, payload) = client.next().await;
        assert_eq!(head, first, "a message of {len} bytes");
        let message = if head == 0xc1 { inflate(&payload) } else { payload };
        assert_eq!(serde_json::from_slice::<Value>(&message).unwrap()["data"], json!(data));
    }
}

//! The core driven by plain threads and blocking sockets (no async runtime), tested with real
//! WebSocket clients over loopback: the sans-IO core runs under any driver.
#![allow(clippy::unwrap_used)]

use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use roomcast_blocking::{self as blocking, BlockingServer};
use roomcast_core::HubConfig;
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

fn start(config: HubConfig) -> BlockingServer {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    blocking::serve(listener, config).unwrap()
}

fn client(server: &BlockingServer) -> WebSocket<TcpStream> {
    let stream = TcpStream::connect(server.local_addr()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let url = format!("ws://{}/", server.local_addr());
    let (ws, _) = tungstenite::client(url.as_str(), stream).unwrap();
    ws
}

/// The next text frame, as JSON (pings are answered by tungstenite and skipped).
fn recv(ws: &mut WebSocket<TcpStream>) -> Value {
    loop {
        match ws.read().unwrap() {
            Message::Text(t) => return serde_json::from_str(&t).unwrap(),
            Message::Close(frame) => panic!("closed: {frame:?}"),
            _ => {}
        }
    }
}

fn send(ws: &mut WebSocket<TcpStream>, frame: Value) {
    ws.send(Message::text(frame.to_string())).unwrap();
}

/// Reads until the server's close frame; returns its code.
fn close_code(ws: &mut WebSocket<TcpStream>) -> u16 {
    loop {
        match ws.read() {
            Ok(Message::Close(Some(frame))) => return frame.code.into(),
            Ok(Message::Close(None)) => panic!("close without a code"),
            Ok(_) => {}
            Err(e) => panic!("no close frame: {e}"),
        }
    }
}

#[test]
fn blocking_driver_serves_connected_join_and_publish_with_exclude_self() {
    let server = start(HubConfig::default());
    let (mut a, mut b, mut c) = (client(&server), client(&server), client(&server));
    for ws in [&mut a, &mut b, &mut c] {
        let connected = recv(ws);
        assert_eq!(connected["event"], "connected");
        assert!(connected["data"]["id"].is_string());
    }
    for ws in [&mut a, &mut b] {
        send(ws, json!({"event":"join","data":{"rooms":["r"]},"id":1}));
        assert_eq!(recv(ws), json!({"event":"joined","id":1,"data":{"rooms":["r"]}}));
    }
    send(&mut a, json!({"event":"publish","data":{"room":"r","event":"msg","data":{"text":"hi"}}}));
    assert_eq!(recv(&mut b), json!({"event":"msg","room":"r","data":{"text":"hi"}}));
    // Neither the sender nor the non-member got it: their next frame is the answer to a new request.
    for ws in [&mut a, &mut c] {
        send(ws, json!({"event":"leave","data":{"rooms":["r"]},"id":"next"}));
        assert_eq!(recv(ws)["id"], "next");
    }
    server.shutdown();
}

#[test]
fn blocking_driver_answers_garbage_with_an_error_and_closes_binary_with_1003() {
    let server = start(HubConfig::default());
    let mut ws = client(&server);
    recv(&mut ws);
    ws.send(Message::text("{not json")).unwrap();
    let error = recv(&mut ws);
    assert_eq!(error["event"], "error");
    assert_eq!(error["data"]["code"], "bad_frame");
    ws.send(Message::binary(vec![1, 2, 3])).unwrap();
    assert_eq!(close_code(&mut ws), 1003);
}

#[test]
fn blocking_driver_closes_oversized_frames_with_1009() {
    let server = start(HubConfig { max_frame_bytes: 1024, ..HubConfig::default() });
    let mut ws = client(&server);
    recv(&mut ws);
    let big = json!({"event":"chat","data":"x".repeat(4096)});
    send(&mut ws, big);
    assert_eq!(close_code(&mut ws), 1009);
}

#[test]
fn blocking_driver_shutdown_closes_every_client_with_1001() {
    let server = start(HubConfig::default());
    let mut clients: Vec<_> = (0..3).map(|_| client(&server)).collect();
    for ws in &mut clients {
        recv(ws);
    }
    server.shutdown();
    for ws in &mut clients {
        assert_eq!(close_code(ws), 1001);
    }
}

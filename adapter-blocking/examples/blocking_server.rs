//! A single-node roomcast server with no async runtime: the core driven by blocking threads.
//!
//! Run: `cargo run --release -p roomcast-blocking --example blocking_server -- 127.0.0.1:8080`
//! then connect any WebSocket client and send `{"event":"join","data":{"rooms":["lobby"]}}`.
#![allow(clippy::print_stdout)]

use std::net::TcpListener;

use roomcast_core::HubConfig;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8080".into());
    let listener = TcpListener::bind(&addr)?;
    let server = roomcast_blocking::serve(listener, HubConfig::default())?;
    println!("roomcast (blocking driver) listening on ws://{}", server.local_addr());
    // Serve until the process is stopped.
    loop {
        std::thread::park();
    }
}

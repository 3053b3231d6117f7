//! An echo endpoint for the Autobahn|Testsuite (`wstest -m fuzzingclient`): every text and binary
//! message comes back as it came, through exactly the code the `roomcast` server runs (no third
//! codec): `--transport fast` serves with `roomcast_tokio::serve` (roomcast's own framing on the
//! upgraded TCP stream), `--transport tungstenite` with `axum::serve` and
//! `roomcast_tokio::axum::upgrade` (tungstenite's framing, as for TLS or any stream roomcast
//! cannot see through). Violations close as the server closes them (the core decides).
//!
//! `cargo run --release -p roomcast-tokio --bin autobahn-echo -- --listen 127.0.0.1:9001 --transport fast`
#![allow(clippy::print_stdout)]

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use clap::{Parser, ValueEnum};
use roomcast_tokio::roomcast_core::{AuthMode, HubConfig};
use roomcast_tokio::{Options, Roomcast};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Transport {
    /// roomcast's own framing on the upgraded TCP stream.
    Fast,
    /// tungstenite's framing, under axum::serve.
    Tungstenite,
}

/// Echoes WebSocket messages for the Autobahn testsuite.
#[derive(Debug, Parser)]
#[command(name = "autobahn-echo")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9001")]
    listen: String,
    /// Which of the server's WebSocket implementations echoes.
    #[arg(long, value_enum, default_value = "fast")]
    transport: Transport,
    /// The largest message, bytes (the suite sends up to 16 MiB in section 9).
    #[arg(long, default_value_t = 16 * 1024 * 1024)]
    max_message_bytes: usize,
    /// Negotiate permessage-deflate with clients that offer it (the fast transport only).
    #[arg(long)]
    compression: bool,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let hour = Duration::from_secs(3600);
    // No `connected` frame, no pings or timeouts in the way of the suite's cases, no rate limit:
    // only the framing, the echo and the closes the core decides.
    let hub = HubConfig {
        auth: AuthMode::Required,
        auth_timeout: hour,
        heartbeat_timeout: hour,
        ping_interval: hour,
        rate_limit: None,
        max_frame_bytes: args.max_message_bytes,
        ..HubConfig::default()
    };
    let options = Options {
        hub,
        echo: true,
        queue_frames: 1 << 20,
        compression: args.compression,
        ..Options::default()
    };
    let (handle, _events) = Roomcast::builder().options(options).start()?;
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    println!("autobahn-echo ({:?}) on ws://{}", args.transport, listener.local_addr()?);
    match args.transport {
        Transport::Fast => roomcast_tokio::serve(listener, handle).await?,
        Transport::Tungstenite => {
            let app = Router::new().fallback(get(roomcast_tokio::axum::upgrade)).with_state(handle);
            axum::serve(listener, app).await?;
        }
    }
    Ok(())
}

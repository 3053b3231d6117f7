//! roomcast on a plain TCP listener with tokio-tungstenite (no HTTP framework): the smallest
//! embedding. `cargo run --release -p roomcast-tokio --example plain_server -- 127.0.0.1:8080`
#![allow(clippy::print_stdout)]

use roomcast_tokio::{Roomcast, serve};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8080".into());
    let (handle, _events) = Roomcast::builder().start()?;
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("roomcast (plain tokio-tungstenite) on ws://{}", listener.local_addr()?);
    serve(listener, handle).await?;
    Ok(())
}

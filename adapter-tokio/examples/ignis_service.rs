//! The ignis service on roomcast: clients authenticate with a token (the hook decides, within the
//! auth timeout), every client is in a room named by its own id, and instances share a Redis, so
//! that a process without sockets reaches any client through the Emitter
//! (`emitter.to_room(client_id, ..)`).
//!
//! `REDIS_URL=redis://127.0.0.1:6379 cargo run -p roomcast-tokio --example ignis_service --
//! 127.0.0.1:8080`, then send `{"event":"authenticate","data":{"token":"user:ann"}}`.

use std::time::Duration;

use roomcast_tokio::roomcast_core::{AuthMode, HubConfig, Identity};
use roomcast_tokio::roomcast_redis::RedisConfig;
use roomcast_tokio::{AuthRequest, Builder, Options, Roomcast, Socket, redis_bus};

/// The service on the Redis at `redis_url` (one node alone without it).
pub fn app(redis_url: Option<String>) -> Builder {
    let hub = HubConfig {
        auth: AuthMode::Required,
        auth_timeout: Duration::from_secs(5),
        own_room: true,
        ..HubConfig::default()
    };
    let builder = Roomcast::builder()
        .options(Options { hub, ..Options::default() })
        .on_authenticate(|request: AuthRequest| async move {
            // A real service asks its identity provider here, under the same timeout.
            match request.token.strip_prefix("user:") {
                Some(user) if !user.is_empty() => Ok(Identity::user(user)),
                _ => Err("invalid token".to_owned()),
            }
        })
        .on("whoami", |s: Socket| async move {
            Ok(serde_json::json!({ "id": s.id(), "user": s.user_id() }))
        });
    match redis_url {
        Some(url) => builder.bus(redis_bus(RedisConfig::single(url))),
        None => builder,
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8080".into());
    let (handle, _events) = app(std::env::var("REDIS_URL").ok()).start()?;
    roomcast_tokio::serve(tokio::net::TcpListener::bind(&addr).await?, handle).await?;
    Ok(())
}

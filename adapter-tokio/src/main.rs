//! The `roomcast` server: `roomcast serve --listen 127.0.0.1:8080`.
//!
//! WebSocket on `/` and `/ws`, a chat page on `/` for browsers, `/healthz`, and `/metrics` in the
//! Prometheus text format. SIGINT or SIGTERM closes every client with 1001 after its queued
//! frames, then exits.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use clap::{Args, Parser, Subcommand};
use roomcast_tokio::roomcast_core::{AuthMode, HubConfig, PresenceEvents, RateLimit, RoomAcl};
use roomcast_tokio::roomcast_redis::{RedisConfig, Topology};
use roomcast_tokio::{Handle, JwtAuth, Options, Roomcast};

#[derive(Parser, Debug)]
#[command(name = "roomcast", version, about = "Rooms & broadcasting for WebSocket applications")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a server.
    Serve(Serve),
}

#[derive(Args, Debug)]
struct Serve {
    /// Address to listen on.
    #[arg(long, env = "ROOMCAST_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Require `authenticate` with an HS256 JWT signed with this secret (user id from `sub`,
    /// allowed rooms from an optional `rooms` claim, `exp` enforced). Anonymous mode without it.
    #[arg(long, env = "ROOMCAST_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// Seconds a new connection has to authenticate.
    #[arg(long, default_value_t = 5.0)]
    auth_timeout: f64,
    /// Seconds without a frame or pong before close 4002.
    #[arg(long, default_value_t = 30.0)]
    heartbeat_timeout: f64,
    /// Seconds of silence before a connection is pinged.
    #[arg(long, default_value_t = 10.0)]
    ping_interval: f64,
    /// Largest frame accepted, in bytes (larger: close 1009).
    #[arg(long, default_value_t = 64 * 1024)]
    max_frame_bytes: usize,
    /// Rooms one connection may be in.
    #[arg(long, default_value_t = 100)]
    max_rooms_per_conn: usize,
    /// Longest room name, in bytes.
    #[arg(long, default_value_t = 256)]
    max_room_name_bytes: usize,
    /// Frames per second per connection (0: no limit).
    #[arg(long, default_value_t = 100)]
    rate_limit: u32,
    /// Frames a connection may send at once after a quiet period.
    #[arg(long, default_value_t = 200)]
    rate_burst: u32,
    /// Frames queued per connection before close 4005.
    #[arg(long, default_value_t = 1024)]
    queue_frames: usize,
    /// Join other instances through Redis at this URL (`redis://host:port`); in-process bus
    /// (a single node) without it.
    #[arg(long, env = "ROOMCAST_REDIS", conflicts_with = "redis_cluster")]
    redis: Option<String>,
    /// Join other instances through a Redis Cluster (sharded pub/sub), given seed node URLs
    /// separated by commas.
    #[arg(long, env = "ROOMCAST_REDIS_CLUSTER", value_delimiter = ',')]
    redis_cluster: Vec<String>,
    /// Tell the other members of a room who joins and leaves: `off`, `connections` (every
    /// connection) or `users` (a user's first session joins, last one leaves).
    #[arg(long, default_value = "off", value_parser = ["off", "connections", "users"])]
    presence_events: String,
    /// Rooms the presence notices apply to (exact names, or prefixes ending in `*`); all rooms
    /// when not given.
    #[arg(long, value_delimiter = ',')]
    presence_rooms: Vec<String>,
    /// Replicate presence across instances (needs --redis or --redis-cluster): presence answers
    /// and notices cover every instance, and a crashed instance's members leave everywhere
    /// within --peer-timeout.
    #[arg(long)]
    cluster_presence: bool,
    /// Seconds an instance's lease (and heartbeat) lasts with cluster presence.
    #[arg(long, default_value_t = 10.0)]
    peer_timeout: f64,
    /// Enable the HTTP API (`/api/...`: cluster-wide presence, sessions, disconnects), for
    /// requests that carry `Authorization: Bearer KEY`. Disabled without it.
    #[arg(long, env = "ROOMCAST_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Prefix of bus channels.
    #[arg(long, default_value = "ws")]
    channel_prefix: String,
}

impl Serve {
    fn options(&self) -> Result<Options, String> {
        let secs = |name: &str, value: f64| {
            Duration::try_from_secs_f64(value)
                .map_err(|_| format!("--{name} must be a non-negative number of seconds"))
        };
        let hub = HubConfig {
            channel_prefix: self.channel_prefix.clone(),
            auth: if self.jwt_secret.is_some() { AuthMode::Required } else { AuthMode::Anonymous },
            auth_timeout: secs("auth-timeout", self.auth_timeout)?,
            heartbeat_timeout: secs("heartbeat-timeout", self.heartbeat_timeout)?,
            ping_interval: secs("ping-interval", self.ping_interval)?,
            max_frame_bytes: self.max_frame_bytes,
            max_rooms_per_conn: self.max_rooms_per_conn,
            max_room_name_bytes: self.max_room_name_bytes,
            rate_limit: (self.rate_limit > 0).then_some(RateLimit {
                per_second: self.rate_limit,
                burst: self.rate_burst.max(1),
            }),
            cluster_presence: self.cluster_presence,
            peer_timeout: secs("peer-timeout", self.peer_timeout)?,
            presence_events: match self.presence_events.as_str() {
                "connections" => PresenceEvents::Connections,
                "users" => PresenceEvents::Users,
                _ => PresenceEvents::Off,
            },
            presence_rooms: if self.presence_rooms.is_empty() {
                RoomAcl::Any
            } else {
                RoomAcl::Only(self.presence_rooms.clone())
            },
            ..HubConfig::default()
        };
        // Chosen here, not by the builder, because the Redis lease names the instance too.
        let hub = HubConfig { server_id: uuid::Uuid::new_v4().to_string(), ..hub };
        Ok(Options { hub, queue_frames: self.queue_frames, ..Options::default() })
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let Command::Serve(serve) = Cli::parse().command;
    match run(serve).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(serve: Serve) -> Result<(), Box<dyn std::error::Error>> {
    let options = serve.options()?;
    let lease =
        serve.cluster_presence.then(|| (options.hub.server_id.clone(), options.hub.peer_timeout));
    let mut builder = Roomcast::builder().options(options);
    let redis = match (&serve.redis, serve.redis_cluster.is_empty()) {
        (Some(url), _) => Some(RedisConfig::single(url.clone())),
        (None, false) => Some(RedisConfig::cluster(serve.redis_cluster.clone())),
        (None, true) => None,
    };
    let bus = match &redis {
        Some(RedisConfig { topology: Topology::Single(url), .. }) => format!("redis {url}"),
        Some(RedisConfig { topology: Topology::Cluster(seeds), .. }) => {
            format!("redis cluster {}", seeds.join(","))
        }
        None => "in-process".to_owned(),
    };
    if serve.cluster_presence && redis.is_none() {
        return Err("--cluster-presence needs --redis or --redis-cluster".into());
    }
    if let Some(config) = redis {
        let config = RedisConfig { channel_prefix: serve.channel_prefix.clone(), lease, ..config };
        builder = builder.bus(roomcast_tokio::redis_bus(config));
    }
    if let Some(secret) = &serve.jwt_secret {
        builder = builder.authenticator(JwtAuth::hs256(secret.as_bytes()));
    }
    let (handle, events) = builder.start()?;
    // The standalone server has no application logic: client messages need no consumer.
    drop(events);
    let state = AppState { handle: handle.clone(), api_key: serve.api_key.clone().map(Arc::from) };
    let app = Router::new()
        .route("/", get(index))
        .route("/ws", get(roomcast_tokio::axum::upgrade))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .route("/api/info", get(api::info))
        .route("/api/{scope}/{key}/{action}", get(api::act).post(api::act))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(serve.listen).await?;
    tracing::info!(
        listen = %listener.local_addr()?,
        server_id = %handle.options().hub.server_id,
        auth = if serve.jwt_secret.is_some() { "jwt" } else { "anonymous" },
        %bus,
        "roomcast serving WebSocket on / and /ws, chat page on /, /healthz, /metrics"
    );
    tokio::select! {
        served = roomcast_tokio::serve_app(listener, app, handle.clone()) => served?,
        () = shutdown_signal() => {
            tracing::info!("shutting down: closing every client with 1001");
            handle.shutdown().await;
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// What the routes share: the instance, and the API key if the API is on.
#[derive(Clone)]
struct AppState {
    handle: Handle,
    api_key: Option<Arc<str>>,
}

impl FromRef<AppState> for Handle {
    fn from_ref(state: &AppState) -> Self {
        state.handle.clone()
    }
}

/// The HTTP API: cluster-wide queries and orders, answered within `timeout_ms` (default 1000)
/// with `{"members":[..],"affected":n,"missing":[server ids that did not answer]}`.
mod api {
    use std::time::Duration;

    use axum::extract::{Path, Query, State};
    use axum::http::{HeaderMap, Method, StatusCode, header};
    use axum::response::{IntoResponse, Response};
    use roomcast_tokio::roomcast_core::{self, ConnId, Target};
    use serde::Deserialize;

    use super::AppState;

    #[derive(Deserialize)]
    pub(super) struct Params {
        timeout_ms: Option<u64>,
        /// For join and leave: a user (every session)...
        user: Option<String>,
        /// ...or one connection.
        conn: Option<String>,
    }

    impl Params {
        fn target(&self) -> Option<Target> {
            match (&self.user, &self.conn) {
                (Some(user), None) => Some(Target::User(user.clone())),
                (None, Some(conn)) => conn.parse::<ConnId>().ok().map(Target::Conn),
                _ => None,
            }
        }
    }

    /// The response refusing the request, if it may not use the API.
    fn refusal(state: &AppState, headers: &HeaderMap) -> Option<Response> {
        let Some(key) = &state.api_key else {
            let off = (StatusCode::NOT_FOUND, "the API is off (start with --api-key)\n");
            return Some(off.into_response());
        };
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let wrong = (StatusCode::UNAUTHORIZED, "missing or wrong bearer token\n");
        (given != Some(&**key)).then(|| wrong.into_response())
    }

    fn json(status: StatusCode, body: &serde_json::Value) -> Response {
        (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
    }

    async fn run(
        state: &AppState,
        headers: &HeaderMap,
        query: roomcast_core::Query,
        params: &Params,
    ) -> Response {
        if let Some(refused) = refusal(state, headers) {
            return refused;
        }
        let timeout = Duration::from_millis(params.timeout_ms.unwrap_or(1000).clamp(1, 30_000));
        match state.handle.cluster_query(query, timeout).await {
            Ok(result) => json(
                StatusCode::OK,
                &serde_json::json!({"members": result.members, "affected": result.affected, "missing": result.missing}),
            ),
            Err(e) => {
                json(StatusCode::SERVICE_UNAVAILABLE, &serde_json::json!({"error": e.to_string()}))
            }
        }
    }

    pub(super) async fn info(State(state): State<AppState>, headers: HeaderMap) -> Response {
        if let Some(refused) = refusal(&state, &headers) {
            return refused;
        }
        json(StatusCode::OK, &serde_json::json!({"serverId": state.handle.options().hub.server_id}))
    }

    /// Every query and order: `GET /api/rooms/{room}/members`, `GET /api/users/{user}/sessions`,
    /// `POST /api/users/{user}/disconnect`, `POST /api/connections/{id}/disconnect`,
    /// `POST /api/rooms/{room}/join?user=|conn=`, `POST /api/rooms/{room}/leave?user=|conn=`.
    pub(super) async fn act(
        State(state): State<AppState>,
        method: Method,
        headers: HeaderMap,
        Path((scope, key, action)): Path<(String, String, String)>,
        Query(params): Query<Params>,
    ) -> Response {
        use roomcast_core::Query as Q;
        let query = match (method.as_str(), scope.as_str(), action.as_str()) {
            ("GET", "rooms", "members") => Ok(Q::Members { room: key }),
            ("GET", "users", "sessions") => Ok(Q::Sessions { user: key }),
            ("POST", "users", "disconnect") => Ok(Q::Disconnect { target: Target::User(key) }),
            ("POST", "connections", "disconnect") => key
                .parse::<ConnId>()
                .map(|conn| Q::Disconnect { target: Target::Conn(conn) })
                .map_err(|_| "not a connection id"),
            ("POST", "rooms", "join") => params
                .target()
                .map(|target| Q::Join { target, room: key })
                .ok_or("give ?user= or ?conn="),
            ("POST", "rooms", "leave") => params
                .target()
                .map(|target| Q::Leave { target, room: key })
                .ok_or("give ?user= or ?conn="),
            _ => return (StatusCode::NOT_FOUND, "no such API call\n").into_response(),
        };
        match query {
            Ok(query) => run(&state, &headers, query, &params).await,
            Err(message) => json(StatusCode::BAD_REQUEST, &serde_json::json!({ "error": message })),
        }
    }
}

/// `/`: the chat page for a browser, or a WebSocket for a client that asks to upgrade.
async fn index(State(handle): State<Handle>, request: axum::extract::Request) -> Response {
    if request.headers().contains_key(header::UPGRADE) {
        roomcast_tokio::axum::upgrade(State(handle), request).await
    } else {
        Html(include_str!("chat.html")).into_response()
    }
}

async fn metrics(State(handle): State<Handle>) -> Response {
    match handle.metrics().await {
        Ok(snapshot) => {
            ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], snapshot.to_prometheus())
                .into_response()
        }
        Err(e) => (axum::http::StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(e) => {
                    tracing::warn!("no SIGTERM handler: {e}");
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

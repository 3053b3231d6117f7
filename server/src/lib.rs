//! roomcast-server: the `roomcast` server as a library, and its binary.
//!
//! `roomcast serve --listen 127.0.0.1:8080` serves WebSocket on `/` and `/ws`, a chat page on `/`
//! for browsers, `/healthz`, `/readyz`, `/metrics` in the Prometheus text format, and with
//! `--api-key` the HTTP API under `/api`. Backends take part through the API and through the
//! proxies (`--proxy-authenticate`, `--proxy-rpc`, `--proxy-publish`). SIGINT or SIGTERM closes
//! every client with 1001 after its queued frames, then exits. docs/operations.md has every
//! setting.
//!
//! The binary (`src/bin/roomcast`) only picks the allocator and builds the runtime; everything
//! else is here, in modules named after what they hold:
//!
//! - [`config`]: the settings (flags, `ROOMCAST_*` variables, a TOML file, room policies);
//! - `api`: the server API under `/api` (publish, sends, queries, orders, the batch);
//! - `proxy`: the calls to the backend (authenticate, RPC, publish);
//! - `pages`: the chat page, the JavaScript client, health, readiness and metrics.
//!
//! [`start`] runs one in the caller's process (as the tests in `server/tests/in_process.rs` do);
//! [`run`] does the same and serves until SIGINT or SIGTERM, as the binary does.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let cli = roomcast_server::config::parse_from(["roomcast", "serve", "--listen", "127.0.0.1:0"])?;
//! let roomcast_server::config::CliCommand::Serve(serve) = cli.command;
//! let server = roomcast_server::start(*serve).await?;
//! println!("serving on {}", server.local_addr());
//! server.shutdown().await;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod api;
pub mod config;
mod pages;
mod proxy;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::routing::get;
use roomcast_tokio::roomcast_core::{AuthMode, HubConfig, PresenceEvents, RateLimit, RoomAcl};
use roomcast_tokio::roomcast_redis::{RedisConfig, Topology};
use roomcast_tokio::{Builder, Handle, JwtAuth, Options, Roomcast};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::config::{CliCommand, Serve};
use crate::pages::Site;
use crate::proxy::{AuthProxy, Proxy, Rpc};

impl Serve {
    fn options(&self) -> Options {
        let authenticates = self.jwt_secret.is_some()
            || self.jwt_public_key.is_some()
            || self.proxy_authenticate.is_some();
        let hub = HubConfig {
            channel_prefix: self.channel_prefix.clone(),
            auth: if authenticates { AuthMode::Required } else { AuthMode::Anonymous },
            auth_timeout: self.auth_timeout,
            heartbeat_timeout: self.heartbeat_timeout,
            ping_interval: self.ping_interval,
            max_frame_bytes: self.max_frame_bytes,
            max_rooms_per_conn: self.max_rooms_per_conn,
            max_room_name_bytes: self.max_room_name_bytes,
            rate_limit: (self.rate_limit > 0).then_some(RateLimit {
                per_second: self.rate_limit,
                burst: self.rate_burst.max(1),
            }),
            cluster_presence: self.cluster_presence,
            peer_timeout: self.peer_timeout,
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
            token_refresh_notice: self.token_refresh_notice,
            rooms: self.room_policies(),
            // Chosen here, not by the builder, because the Redis lease names the instance too.
            server_id: uuid::Uuid::new_v4().to_string(),
            ..HubConfig::default()
        };
        Options {
            hub,
            queue_frames: self.queue_frames,
            allowed_origins: (!self.allowed_origins.is_empty())
                .then(|| self.allowed_origins.clone()),
            max_connections: (self.max_connections > 0).then_some(self.max_connections),
            max_header_bytes: self.max_header_bytes,
            max_queued_bytes: self.max_queued_bytes,
            compression: self.compression,
            compression_threshold: self.compression_threshold,
            write_threads: self.write_threads,
            ..Options::default()
        }
    }

    /// The JWT authenticator the flags ask for, if any.
    fn jwt(&self) -> Result<Option<JwtAuth>, String> {
        let auth = match (&self.jwt_secret, &self.jwt_public_key) {
            (Some(secret), _) => JwtAuth::hs256(secret.as_bytes()),
            (None, Some(path)) => {
                let pem = std::fs::read(path)
                    .map_err(|e| format!("--jwt-public-key {}: {e}", path.display()))?;
                JwtAuth::public_key_pem(&pem)
                    .map_err(|e| format!("--jwt-public-key {}: {e}", path.display()))?
            }
            (None, None) => {
                if self.jwt_audience.is_some() || self.jwt_issuer.is_some() {
                    return Err(
                        "--jwt-audience and --jwt-issuer need --jwt-secret or --jwt-public-key"
                            .into(),
                    );
                }
                return Ok(None);
            }
        };
        let auth = match &self.jwt_audience {
            Some(audience) => auth.audience(audience),
            None => auth,
        };
        Ok(Some(match &self.jwt_issuer {
            Some(issuer) => auth.issuer(issuer),
            None => auth,
        }))
    }
}

/// The command line, as the binary runs it: parses the settings (printing them with
/// `--print-config`), serves until SIGINT or SIGTERM, and answers the process's exit status.
pub async fn cli() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colours for a terminal; plain text for a log file or a pipe.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = match config::parse() {
        Ok(cli) => cli,
        // Help, version and usage errors, as clap prints them (and with its exit status).
        Err(config::ConfigError::Args(e)) => e.exit(),
        Err(config::ConfigError::File(message)) => {
            tracing::error!("{message}");
            return std::process::ExitCode::from(2);
        }
    };
    let CliCommand::Serve(serve) = cli.command;
    if serve.print_config {
        return match serde_json::to_string_pretty(&serve) {
            Ok(json) => {
                #[allow(clippy::print_stdout)] // what the flag asks for
                {
                    println!("{json}");
                }
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                tracing::error!("{e}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    match run(*serve).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            std::process::ExitCode::FAILURE
        }
    }
}
/// Any error of starting a server.
type BoxError = Box<dyn std::error::Error>;

/// A `roomcast serve` running in this process: its address, its [`Handle`], and the task that
/// serves HTTP and WebSocket on its listener.
pub struct Server {
    addr: SocketAddr,
    handle: Handle,
    site: Site,
    served: JoinHandle<std::io::Result<()>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl Server {
    /// The address it listens on (with `--listen 127.0.0.1:0`, the port the system chose).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The instance's handle, for the embedding application or a test.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Shuts down as SIGTERM does: `/readyz` answers 503 from now on, and every client is
    /// closed with 1001 after its queued frames.
    pub async fn shutdown(self) {
        self.site.stopping.store(true, Ordering::SeqCst);
        tracing::info!("shutting down: closing every client with 1001");
        self.handle.shutdown().await;
        self.served.abort();
    }
}

/// Starts a server with these settings, listening on `serve.listen`: the instance, its bus,
/// its backends, and every route. It serves until [`Server::shutdown`].
pub async fn start(serve: Serve) -> Result<Server, Box<dyn std::error::Error>> {
    let options = serve.options();
    let lease =
        serve.cluster_presence.then(|| (options.hub.server_id.clone(), options.hub.peer_timeout));
    let mut builder = Roomcast::builder().options(options);
    let redis = serve.redis_config(lease);
    if serve.cluster_presence && redis.is_none() {
        return Err("--cluster-presence needs --redis or --redis-cluster".into());
    }
    let bus = describe_bus(redis.as_ref());
    if let Some(config) = redis {
        builder = builder.bus(roomcast_tokio::redis_bus(config));
    }
    if let Some(jwt) = serve.jwt()? {
        builder = builder.authenticator(jwt);
    }
    let (builder, proxies) = with_proxies(builder, &serve)?;
    // Nothing reads the events: without an RPC backend, the hub answers each client request
    // `unknown_event` itself, so that none waits forever.
    let (handle, events) = builder.start()?;
    drop(events);
    let site = Site::new(handle.clone(), proxies);
    let api = api::ApiState { handle: handle.clone(), key: serve.api_key.clone().map(Arc::from) };
    let app = Router::new()
        .route("/", get(pages::index))
        .route("/ws", get(pages::websocket))
        .route("/roomcast-client.js", get(pages::client_js))
        .route("/healthz", get(pages::healthz))
        .route("/readyz", get(pages::readyz))
        .route("/metrics", get(pages::metrics))
        .with_state(site.clone())
        .merge(api::routes(api, serve.api_max_body_bytes));
    let listener = tokio::net::TcpListener::bind(serve.listen).await?;
    let addr = listener.local_addr()?;
    tracing::info!(
        listen = %addr,
        server_id = %handle.options().hub.server_id,
        auth = serve.authentication(),
        api = serve.api_key.is_some(),
        rpc_proxy = serve.proxy_rpc.is_some(),
        %bus,
        "roomcast serving WebSocket on / and /ws, chat page on /, /healthz, /readyz, /metrics"
    );
    let served = tokio::spawn(roomcast_tokio::serve_app(listener, app, handle.clone()));
    Ok(Server { addr, handle, site, served })
}

/// Serves with these settings until SIGINT or SIGTERM.
pub async fn run(serve: Serve) -> Result<(), Box<dyn std::error::Error>> {
    let mut server = start(serve).await?;
    tokio::select! {
        served = &mut server.served => served??,
        () = shutdown_signal() => server.shutdown().await,
    }
    tracing::info!("stopped");
    Ok(())
}

impl Serve {
    /// The Redis bus's settings, if the server runs on Redis.
    fn redis_config(&self, lease: Option<(String, std::time::Duration)>) -> Option<RedisConfig> {
        let config = match (&self.redis, self.redis_cluster.is_empty()) {
            (Some(url), _) => RedisConfig::single(url.clone()),
            (None, false) => RedisConfig::cluster(self.redis_cluster.clone()),
            (None, true) => return None,
        };
        Some(RedisConfig { channel_prefix: self.channel_prefix.clone(), lease, ..config })
    }

    /// How clients authenticate, for the start-up line.
    fn authentication(&self) -> &'static str {
        match (&self.jwt_secret, &self.jwt_public_key, &self.proxy_authenticate) {
            (Some(_), _, _) => "jwt hs256",
            (None, Some(_), _) => "jwt public key",
            (None, None, Some(_)) => "authenticate proxy",
            (None, None, None) => "anonymous",
        }
    }
}

/// The bus, for the start-up line.
fn describe_bus(redis: Option<&RedisConfig>) -> String {
    match redis {
        Some(RedisConfig { topology: Topology::Single(url), .. }) => format!("redis {url}"),
        Some(RedisConfig { topology: Topology::Cluster(seeds), .. }) => {
            format!("redis cluster {}", seeds.join(","))
        }
        None => "in-process".to_owned(),
    }
}

/// The backend proxies the settings name, installed on the builder (sharing one limit of
/// concurrent calls), and the list of them for `/metrics`.
fn with_proxies(
    mut builder: Builder,
    serve: &Serve,
) -> Result<(Builder, Vec<Arc<Proxy>>), BoxError> {
    let slots = Arc::new(Semaphore::new(serve.proxy_concurrency.max(1)));
    let mut proxies = Vec::new();
    if let Some(url) = &serve.proxy_authenticate {
        let proxy = Arc::new(Proxy::new("authenticate", url, slots.clone(), serve.proxy_timeout)?);
        let headers = serve.proxy_headers.iter().map(|h| h.trim().to_ascii_lowercase()).collect();
        builder = builder.authenticator(AuthProxy { proxy: proxy.clone(), headers });
        proxies.push(proxy);
    }
    if let Some(url) = &serve.proxy_rpc {
        let proxy = Arc::new(Proxy::new("rpc", url, slots.clone(), serve.proxy_timeout)?);
        builder = builder.state(Rpc(proxy.clone())).fallback(proxy::rpc);
        proxies.push(proxy);
    }
    if let Some(url) = &serve.proxy_publish {
        let proxy = Arc::new(Proxy::new("publish", url, slots.clone(), serve.proxy_timeout)?);
        let check = proxy.clone();
        builder = builder
            .on_publish(move |socket, request| proxy::publish(check.clone(), socket, request));
        proxies.push(proxy);
    }
    Ok((builder, proxies))
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

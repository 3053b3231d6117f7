//! Accepting connections on a TCP listener: HTTP/1.1 by hyper, WebSocket upgrades handed to the
//! hub on roomcast's own socket loop.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::Service;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::{Handle, upgrade};

/// How long to wait after a failed accept (e.g. no file descriptor left) before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Accepts connections on `listener` and serves each as a WebSocket, until `handle` shuts down.
/// Every path is accepted; a request that is not a WebSocket upgrade gets 426.
pub async fn serve(listener: TcpListener, handle: Handle) -> std::io::Result<()> {
    let service_handle = handle.clone();
    accept_loop(listener, handle, move |peer| {
        let handle = service_handle.clone();
        hyper::service::service_fn(move |request: Request<Incoming>| {
            let (mut parts, _body) = request.into_parts();
            parts.extensions.insert(upgrade::FastPath);
            let answered = upgrade::answer(parts, Some(peer), handle.clone());
            async move { Ok::<_, Infallible>(answered.await) }
        })
    })
    .await
}

/// Serves an axum app on `listener` until `handle` shuts down. Routes to
/// [`axum::upgrade`](crate::axum::upgrade) take the fast path: roomcast writes to the
/// upgraded TCP stream itself. (`axum::serve` hides the stream's type; sockets upgraded there
/// are served through tungstenite instead.)
#[cfg(feature = "axum")]
pub async fn serve_app(
    listener: TcpListener,
    app: ::axum::Router,
    handle: Handle,
) -> std::io::Result<()> {
    use tower::ServiceExt as _;
    accept_loop(listener, handle, move |peer| {
        // The peer's address, for `axum::upgrade` (and for axum's `ConnectInfo` extractor).
        let app = app.clone().map_request(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(::axum::extract::ConnectInfo(peer));
            request.extensions_mut().insert(upgrade::FastPath);
            request
        });
        hyper_util::service::TowerToHyperService::new(app)
    })
    .await
}

/// Accepts until `handle` stops; serves each connection with a service from `make`.
async fn accept_loop<M, S, B>(listener: TcpListener, handle: Handle, make: M) -> std::io::Result<()>
where
    M: Fn(SocketAddr) -> S,
    S: Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut failures = AcceptFailures::default();
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => {
                failures.recovered();
                accepted
            }
            Err(e) => {
                // Out of file descriptors, or a connection reset before accept: the connections
                // already open keep being served; new ones wait in the kernel's backlog until a
                // descriptor frees up.
                failures.failed(&e);
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        if handle.is_stopped() {
            return Ok(());
        }
        let _ = stream.set_nodelay(true);
        let options = handle.options();
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(options.header_timeout)
            .max_header_size(options.max_header_bytes)
            .serve_connection(TokioIo::new(stream), make(peer))
            .with_upgrades();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "HTTP connection ended");
            }
        });
    }
}

/// How often a run of failing accepts is logged again.
const ACCEPT_LOG_EVERY: Duration = Duration::from_secs(10);

/// Logs failing accepts at a bounded rate: the first of a run, then a count every
/// [`ACCEPT_LOG_EVERY`], then the recovery.
#[derive(Debug, Default)]
struct AcceptFailures {
    /// Failures since the last line logged.
    unlogged: u64,
    /// Failures in this run.
    run: u64,
    last_logged: Option<std::time::Instant>,
}

impl AcceptFailures {
    fn failed(&mut self, error: &std::io::Error) {
        self.run += 1;
        self.unlogged += 1;
        let due = self.last_logged.is_none_or(|at| at.elapsed() >= ACCEPT_LOG_EVERY);
        if due {
            tracing::warn!(
                %error,
                failures = self.unlogged,
                "accept failed (out of file descriptors?): open connections are still served; retrying"
            );
            self.unlogged = 0;
            self.last_logged = Some(std::time::Instant::now());
        }
    }

    fn recovered(&mut self) {
        if self.run > 0 {
            tracing::info!(failures = self.run, "accepting connections again");
            *self = Self::default();
        }
    }
}

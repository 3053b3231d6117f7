//! Accepting connections on a TCP listener: HTTP/1.1 by hyper, WebSocket upgrades handed to the
//! hub on roomcast's own socket loop.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::service::Service;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::app::handle::Handle;
use crate::transport::upgrade;

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
    last_logged: Option<Instant>,
}

impl AcceptFailures {
    fn failed(&mut self, error: &std::io::Error) {
        if let Some(failures) = self.count_failure(Instant::now()) {
            tracing::warn!(
                %error,
                failures,
                "accept failed (out of file descriptors?): open connections are still served; retrying"
            );
        }
    }

    /// Counts one failure at `now`; the failures to log now, if a line is due.
    fn count_failure(&mut self, now: Instant) -> Option<u64> {
        self.run += 1;
        self.unlogged += 1;
        let due = self.last_logged.is_none_or(|at| now.duration_since(at) >= ACCEPT_LOG_EVERY);
        if !due {
            return None;
        }
        self.last_logged = Some(now);
        Some(std::mem::take(&mut self.unlogged))
    }

    fn recovered(&mut self) {
        if let Some(failures) = self.end_run() {
            tracing::info!(failures, "accepting connections again");
        }
    }

    /// Ends a run of failures; how many it had, if there was one.
    fn end_run(&mut self) -> Option<u64> {
        let run = std::mem::take(self).run;
        (run > 0).then_some(run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_of_failing_accepts_logs_its_first_then_one_count_per_interval_then_its_end() {
        let start = Instant::now();
        let mut failures = AcceptFailures::default();
        assert_eq!(failures.count_failure(start), Some(1), "the first failure is logged");
        // A retry every 100 ms for just under the interval: nothing more is logged.
        let retries = ACCEPT_LOG_EVERY.as_millis() as u64 / 100 - 1;
        for n in 1..=retries {
            let at = start + Duration::from_millis(100 * n);
            assert_eq!(failures.count_failure(at), None, "retry {n} is counted, not logged");
        }
        let next = start + ACCEPT_LOG_EVERY;
        assert_eq!(failures.count_failure(next), Some(retries + 1), "one line with the count");
        assert_eq!(failures.count_failure(next), None);
        assert_eq!(failures.end_run(), Some(retries + 3), "the run's every failure");
        assert_eq!(failures.end_run(), None, "a run ends once");
        assert_eq!(failures.count_failure(next), Some(1), "a new run logs its first at once");
    }
}

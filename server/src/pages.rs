//! The server's own pages: the chat page, liveness and readiness, and the metrics.

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use roomcast_tokio::Handle;
use roomcast_tokio::roomcast_core::AuthMode;

use crate::proxy::{self, Proxy};

/// What the pages share.
#[derive(Clone)]
pub(crate) struct Site {
    pub(crate) handle: Handle,
    /// Set when the server starts shutting down: `/readyz` answers 503 from then on.
    pub(crate) stopping: Arc<AtomicBool>,
    pub(crate) proxies: Vec<Arc<Proxy>>,
    /// When the process started, seconds since the Unix epoch.
    pub(crate) started: f64,
    /// The chat page, marked with the server's authentication mode.
    pub(crate) chat: Arc<str>,
}

impl Site {
    pub(crate) fn new(handle: Handle, proxies: Vec<Arc<Proxy>>) -> Self {
        let started = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        let page = include_str!("../assets/chat.html");
        let chat = match handle.options().hub.auth {
            AuthMode::Required => {
                page.replace(r#"data-auth="anonymous""#, r#"data-auth="required""#)
            }
            _ => page.to_owned(),
        };
        Self { handle, stopping: Arc::default(), proxies, started, chat: Arc::from(chat) }
    }
}

/// `/`: the chat page for a browser, or a WebSocket for a client that asks to upgrade.
pub(crate) async fn index(State(site): State<Site>, request: axum::extract::Request) -> Response {
    if request.headers().contains_key(header::UPGRADE) {
        roomcast_tokio::axum::upgrade(State(site.handle), request).await
    } else {
        Html(site.chat.to_string()).into_response()
    }
}

/// `/roomcast-client.js`: the JavaScript client (npm package `roomcast-client`, built from
/// `clients/js`), as the chat page imports it.
pub(crate) async fn client_js() -> Response {
    let script = include_str!("../assets/roomcast-client.js");
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], script).into_response()
}

/// `/ws`: the WebSocket endpoint.
pub(crate) async fn websocket(
    State(site): State<Site>,
    request: axum::extract::Request,
) -> Response {
    roomcast_tokio::axum::upgrade(State(site.handle), request).await
}

/// `/healthz`: liveness, 200 while the process serves.
pub(crate) async fn healthz() -> &'static str {
    "ok\n"
}

/// `/readyz`: 200 when the instance should get traffic; 503 while its bus (Redis) is down or
/// while it shuts down.
pub(crate) async fn readyz(State(site): State<Site>) -> Response {
    if site.stopping.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    match site.handle.metrics().await {
        Ok(snapshot) if snapshot.bus.connected == Some(false) => {
            (StatusCode::SERVICE_UNAVAILABLE, "bus disconnected\n").into_response()
        }
        Ok(_) => "ready\n".into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response(),
    }
}

/// `/metrics`: the instance's counters, the proxies', the build and the process, in the
/// Prometheus text format.
pub(crate) async fn metrics(State(site): State<Site>) -> Response {
    let snapshot = match site.handle.metrics().await {
        Ok(snapshot) => snapshot,
        Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    };
    let mut out = snapshot.to_prometheus();
    let _ = write!(
        out,
        "# HELP roomcast_build_info The running build.\n# TYPE roomcast_build_info gauge\n\
         roomcast_build_info{{version=\"{}\"}} 1\n",
        env!("CARGO_PKG_VERSION")
    );
    if !site.proxies.is_empty() {
        proxy::prometheus_header(&mut out);
        for proxy in &site.proxies {
            proxy.prometheus(&mut out);
        }
    }
    process_metrics(&mut out, site.started);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

/// The standard `process_*` metrics, from `/proc/self` (Linux; only the start time elsewhere).
fn process_metrics(out: &mut String, started: f64) {
    let mut gauge = |name: &str, kind: &str, help: &str, value: f64| {
        let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n");
    };
    gauge(
        "process_start_time_seconds",
        "gauge",
        "Start time of the process since the Unix epoch in seconds.",
        started,
    );
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = |field: &str| {
        status.lines().find_map(|line| {
            let rest = line.strip_prefix(field)?.trim_start_matches(':').trim();
            rest.strip_suffix("kB")?.trim().parse::<f64>().ok()
        })
    };
    if let Some(rss) = kib("VmRSS") {
        gauge(
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            rss * 1024.0,
        );
    }
    if let Some(virt) = kib("VmSize") {
        gauge(
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            virt * 1024.0,
        );
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        gauge("process_open_fds", "gauge", "Number of open file descriptors.", fds.count() as f64);
    }
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let max_fds = limits.lines().find_map(|line| {
        line.strip_prefix("Max open files")?.split_whitespace().next()?.parse::<f64>().ok()
    });
    if let Some(max) = max_fds {
        gauge("process_max_fds", "gauge", "Maximum number of open file descriptors.", max);
    }
    // utime and stime, fields 14 and 15, in clock ticks (USER_HZ, 100 on Linux); the command
    // name (field 2) may hold spaces, so count after its closing parenthesis.
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let ticks = stat.rsplit_once(')').map(|(_, rest)| {
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        field(14) + field(15)
    });
    if let Some(ticks) = ticks {
        gauge(
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            ticks / 100.0,
        );
    }
}

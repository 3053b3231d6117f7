//! The proxies to the application's backend: `authenticate` frames and clients' own events are
//! POSTed as JSON, and the backend's answers decide (like Centrifugo's connect and RPC proxies).
//!
//! Every call is bounded: at most `--proxy-concurrency` in flight per instance (more wait for a
//! slot, within the timeout) and `--proxy-timeout` in all. Calls run in the tasks of the
//! authenticator and of the handlers, never in the hub's, so a slow backend slows only the
//! connections waiting for it. Each proxy kind is measured: calls, errors by kind, latency.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Request;
use hyper::header::{self, HeaderValue};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use roomcast_tokio::roomcast_core::{Identity, PublishRequest, RoomAcl};
use roomcast_tokio::{
    Admit, AuthDenied, AuthFuture, AuthRequest, Authenticator, EventName, HandlerError, Id,
    RawData, Socket,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

/// The most a backend's answer may hold.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// How a proxy call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// No answer within the timeout (a free slot included).
    Timeout,
    /// The backend could not be reached.
    Unreachable,
    /// The backend answered with a status other than 2xx.
    Status,
    /// The answer is not the JSON the contract says.
    Invalid,
}

impl Failure {
    const ALL: [Self; 4] = [Self::Timeout, Self::Unreachable, Self::Status, Self::Invalid];

    fn name(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Unreachable => "unreachable",
            Self::Status => "status",
            Self::Invalid => "invalid",
        }
    }

    /// The error code a client sees for it (RPC).
    fn code(self) -> &'static str {
        match self {
            Self::Timeout => "backend_timeout",
            Self::Unreachable => "backend_unavailable",
            Self::Status | Self::Invalid => "backend_error",
        }
    }
}

/// What a client is told when its request or publish could not be put to the backend.
impl From<Failure> for HandlerError {
    fn from(failure: Failure) -> Self {
        let message = format!("the application's backend failed ({})", failure.name());
        HandlerError::new(failure.code(), message)
    }
}

/// Upper bounds of the latency histogram's buckets, in seconds.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// One proxy kind's counters.
#[derive(Debug, Default)]
struct Stats {
    calls: AtomicU64,
    failures: [AtomicU64; 4],
    /// Calls per latency bucket (the last: above every bound).
    buckets: [AtomicU64; BUCKETS.len() + 1],
    micros: AtomicU64,
}

/// One backend URL, and how calls to it are bounded and measured.
#[derive(Debug)]
pub(crate) struct Proxy {
    kind: &'static str,
    url: hyper::Uri,
    client: Client<HttpConnector, Full<Bytes>>,
    slots: Arc<Semaphore>,
    timeout: Duration,
    stats: Stats,
}

impl Proxy {
    /// A proxy of `kind` (`authenticate`, `rpc`) to `url`, sharing `slots` with the others.
    pub(crate) fn new(
        kind: &'static str,
        url: &str,
        slots: Arc<Semaphore>,
        timeout: Duration,
    ) -> Result<Self, String> {
        let url: hyper::Uri =
            url.parse().map_err(|e| format!("--proxy-{kind}: {url:?} is not a URL: {e}"))?;
        if url.scheme_str() != Some("http") || url.host().is_none() {
            return Err(format!(
                "--proxy-{kind}: {url} must be an http:// URL (put a TLS-terminating proxy in front of an https backend)"
            ));
        }
        let client = Client::builder(TokioExecutor::new()).build_http();
        Ok(Self { kind, url, client, slots, timeout, stats: Stats::default() })
    }

    /// POSTs `body` and parses the 2xx answer as `T`.
    pub(crate) async fn call<T: DeserializeOwned>(&self, body: &Value) -> Result<T, Failure> {
        let started = Instant::now();
        self.stats.calls.fetch_add(1, Ordering::Relaxed);
        let outcome = match tokio::time::timeout(self.timeout, self.post(body)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(Failure::Timeout),
        };
        let elapsed = started.elapsed();
        let bucket =
            BUCKETS.iter().position(|b| elapsed.as_secs_f64() <= *b).unwrap_or(BUCKETS.len());
        self.stats.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.stats.micros.fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
        if let Err(failure) = &outcome {
            let index = Failure::ALL.iter().position(|f| f == failure).unwrap_or(0);
            self.stats.failures[index].fetch_add(1, Ordering::Relaxed);
            tracing::warn!(proxy = self.kind, url = %self.url, failure = failure.name(), "proxy call failed");
        }
        outcome
    }

    async fn post<T: DeserializeOwned>(&self, body: &Value) -> Result<T, Failure> {
        let _slot = self.slots.acquire().await.map_err(|_| Failure::Unreachable)?;
        let request = Request::post(self.url.clone())
            .header(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|_| Failure::Unreachable)?;
        let response = self.client.request(request).await.map_err(|_| Failure::Unreachable)?;
        if !response.status().is_success() {
            return Err(Failure::Status);
        }
        let bytes = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|_| Failure::Invalid)?
            .to_bytes();
        serde_json::from_slice(&bytes).map_err(|_| Failure::Invalid)
    }

    /// This proxy's metrics, in the Prometheus text format.
    pub(crate) fn prometheus(&self, out: &mut String) {
        use std::fmt::Write;
        let kind = self.kind;
        let s = &self.stats;
        let _ = writeln!(
            out,
            "roomcast_proxy_calls_total{{proxy=\"{kind}\"}} {}",
            s.calls.load(Ordering::Relaxed)
        );
        for (failure, count) in Failure::ALL.iter().zip(&s.failures) {
            let _ = writeln!(
                out,
                "roomcast_proxy_errors_total{{proxy=\"{kind}\",reason=\"{}\"}} {}",
                failure.name(),
                count.load(Ordering::Relaxed)
            );
        }
        let mut cumulative = 0;
        for (i, count) in s.buckets.iter().enumerate() {
            cumulative += count.load(Ordering::Relaxed);
            let le = BUCKETS.get(i).map_or("+Inf".to_owned(), f64::to_string);
            let _ = writeln!(
                out,
                "roomcast_proxy_duration_seconds_bucket{{proxy=\"{kind}\",le=\"{le}\"}} {cumulative}"
            );
        }
        let sum = s.micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "roomcast_proxy_duration_seconds_sum{{proxy=\"{kind}\"}} {sum}");
        let _ =
            writeln!(out, "roomcast_proxy_duration_seconds_count{{proxy=\"{kind}\"}} {cumulative}");
    }
}

/// Writes the metadata lines of the proxy metrics, once before every proxy's samples.
pub(crate) fn prometheus_header(out: &mut String) {
    out.push_str(
        "# HELP roomcast_proxy_calls_total Calls to the application's backend, by proxy.\n\
         # TYPE roomcast_proxy_calls_total counter\n\
         # HELP roomcast_proxy_errors_total Failed calls to the backend, by proxy and reason.\n\
         # TYPE roomcast_proxy_errors_total counter\n\
         # HELP roomcast_proxy_duration_seconds Time of calls to the backend, by proxy.\n\
         # TYPE roomcast_proxy_duration_seconds histogram\n",
    );
}

/// The backend's error, as both proxies' answers may carry it.
#[derive(Deserialize, Debug)]
struct BackendError {
    #[serde(default)]
    code: Option<Value>,
    #[serde(default)]
    message: Option<String>,
}

impl BackendError {
    fn code(&self) -> String {
        match &self.code {
            Some(Value::String(code)) if !code.is_empty() => code.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => "backend_refused".to_owned(),
        }
    }

    fn message(&self) -> String {
        self.message.clone().unwrap_or_default()
    }
}

/// The authenticate proxy's answer: `{"userId","info"?,"rooms"?}` or `{"error":{..}}`.
#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
struct AuthAnswer {
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    info: Option<Box<RawValue>>,
    #[serde(default)]
    rooms: Vec<String>,
    #[serde(default)]
    error: Option<BackendError>,
}

/// Decides `authenticate` frames by asking the backend.
#[derive(Debug)]
pub(crate) struct AuthProxy {
    pub(crate) proxy: Arc<Proxy>,
    /// The headers of the upgrade request passed on (lower case).
    pub(crate) headers: Vec<String>,
}

impl AuthProxy {
    async fn decide(&self, request: AuthRequest) -> Result<Admit, AuthDenied> {
        let upgrade = request.request.as_deref();
        let mut headers = serde_json::Map::new();
        if let Some(upgrade) = upgrade {
            for name in &self.headers {
                if let Some(value) = upgrade.header(name) {
                    headers.insert(name.clone(), Value::String(value.to_owned()));
                }
            }
        }
        let peer = upgrade
            .and_then(roomcast_tokio::UpgradeRequest::peer)
            .map(|p: SocketAddr| p.to_string());
        let body = json!({
            "conn": request.conn,
            "credentials": request.credentials,
            "headers": headers,
            "peer": peer,
        });
        let answer: AuthAnswer = self.proxy.call(&body).await.map_err(|failure| match failure {
            Failure::Timeout | Failure::Unreachable => {
                AuthDenied::Unavailable("authentication backend unavailable".to_owned())
            }
            Failure::Status | Failure::Invalid => {
                AuthDenied::Failed("authentication backend failed".to_owned())
            }
        })?;
        if let Some(error) = answer.error {
            let message = error.message();
            return Err(AuthDenied::Rejected(if message.is_empty() {
                error.code()
            } else {
                message
            }));
        }
        let Some(user) = answer.user_id else {
            return Err(AuthDenied::Failed("authentication backend gave no userId".to_owned()));
        };
        // The rooms it answers are joined at once, and are the connection's rooms list (as a
        // JWT's `rooms` claim): the rooms it may join and leave by itself.
        let rooms = if answer.rooms.is_empty() {
            RoomAcl::Any
        } else {
            RoomAcl::Only(answer.rooms.clone())
        };
        let identity = Identity { metadata: answer.info, rooms, ..Identity::user(user) };
        if identity.check().is_err() {
            return Err(AuthDenied::Failed(
                "authentication backend gave an invalid userId".to_owned(),
            ));
        }
        let mut admit = Admit::new().identity(identity);
        for room in answer.rooms {
            admit = admit.join(room);
        }
        Ok(admit)
    }
}

impl Authenticator for AuthProxy {
    fn authenticate(&self, request: AuthRequest) -> AuthFuture<'_> {
        Box::pin(self.decide(request))
    }

    fn wants_request(&self) -> bool {
        true
    }
}

/// The RPC proxy's answer: `{"result": any}` or `{"error":{"code","message"}}`.
#[derive(Deserialize, Debug)]
struct RpcAnswer {
    #[serde(default)]
    result: Option<Box<RawValue>>,
    #[serde(default)]
    error: Option<BackendError>,
}

/// The handler of every client event no route claims: POSTed to the backend as
/// `{"conn","userId","event","data","info"}`. A request's answer is the backend's `result`
/// (the `reply`), or its `error` (an `error` frame with the request's `id`). An event without
/// an `id` is forwarded and nothing is sent back, even if the backend fails (the failure is
/// logged and counted).
pub(crate) async fn rpc(
    socket: Socket,
    EventName(event): EventName,
    RawData(data): RawData,
    Id(id): Id,
    roomcast_tokio::State(proxy): roomcast_tokio::State<Rpc>,
) -> Result<Option<Box<RawValue>>, HandlerError> {
    let info = socket.info().await.ok().and_then(|c| c.metadata);
    let body = json!({
        "conn": socket.id(),
        "userId": socket.user_id(),
        "event": event,
        "data": data,
        "info": info,
    });
    let outcome = proxy.0.call::<RpcAnswer>(&body).await;
    if id.is_none() {
        return Ok(None);
    }
    let answer = outcome?;
    match answer {
        RpcAnswer { error: Some(error), .. } => {
            Err(HandlerError::new(error.code(), error.message()))
        }
        RpcAnswer { result, .. } => Ok(result),
    }
}

/// The publish proxy's answer: anything with no `error` allows the publish.
#[derive(Deserialize, Debug)]
struct PublishAnswer {
    #[serde(default)]
    error: Option<BackendError>,
}

/// Asks the backend whether a client's publish may be fanned out: POSTs
/// `{"conn","userId","room","event","data","info"}`; an answer with `error` refuses it (the
/// client gets that error with its request's id), any other JSON object allows it. A backend
/// that fails refuses it, with `backend_timeout`, `backend_unavailable` or `backend_error`.
pub(crate) async fn publish(
    proxy: Arc<Proxy>,
    socket: Socket,
    request: PublishRequest,
) -> Result<(), HandlerError> {
    let info = socket.info().await.ok().and_then(|c| c.metadata);
    let body = json!({
        "conn": request.conn,
        "userId": socket.user_id(),
        "room": request.room,
        "event": request.event,
        "data": request.data,
        "info": info,
    });
    let answer = proxy.call::<PublishAnswer>(&body).await?;
    match answer.error {
        Some(error) => Err(HandlerError::new(error.code(), error.message())),
        None => Ok(()),
    }
}

/// The RPC proxy, as the handlers' state.
#[derive(Debug, Clone)]
pub(crate) struct Rpc(pub(crate) Arc<Proxy>);

//! The server API (`--api-key`): backends publish, send and query over HTTP with JSON.
//!
//! Every route answers JSON: 200 with an object on success, `{"error":{"code","message"}}` with
//! the matching status otherwise. Publishing goes through the same hub calls as an embedded
//! application's (serialized once; exclusions hold on every instance); queries are cluster
//! queries, answered within `?timeout_ms=` with the instances that did not answer named in
//! `missing`. The contract is docs/http-api.md and docs/openapi.yaml.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use roomcast_tokio::roomcast_core::Query as Q;
use roomcast_tokio::roomcast_core::{
    self, ConnId, Exclude, HubError, MetadataFilter, QueryResult, Target,
};
use roomcast_tokio::{Error as HandleError, Handle};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

mod batch;

/// What the API's routes share.
#[derive(Clone)]
pub(crate) struct ApiState {
    pub(crate) handle: Handle,
    /// `None`: the API is off, every route answers 404 `api_disabled`.
    pub(crate) key: Option<Arc<str>>,
}

/// The API's routes, under `/api`.
pub(crate) fn routes(state: ApiState, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/api/info", get(info))
        .route("/api/count", get(count))
        .route("/api/rooms", get(rooms))
        .route("/api/rooms/{room}/members", get(members))
        .route("/api/rooms/{room}/publish", post(publish_room))
        .route("/api/rooms/{room}/history", get(history).delete(remove_history))
        .route("/api/rooms/{room}/join", post(join))
        .route("/api/rooms/{room}/leave", post(leave))
        .route("/api/users/{user}/sessions", get(sessions))
        .route("/api/users/{user}/send", post(send_user))
        .route("/api/users/{user}/disconnect", post(disconnect_user))
        .route("/api/connections", get(connections))
        .route("/api/connections/{id}", get(connection))
        .route("/api/connections/{id}/send", post(send_conn))
        .route("/api/connections/{id}/disconnect", post(disconnect_conn))
        .route("/api/publish", post(publish_rooms))
        .route("/api/broadcast", post(broadcast))
        .route("/api/batch", post(batch::batch))
        .fallback(unknown_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(state)
}

/// An error answer: `{"error":{"code","message"}}` with its status.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }

    fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_argument", message)
    }

    fn body(&self) -> Value {
        json!({"error": {"code": self.code, "message": self.message}})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        reply(self.status, &self.body())
    }
}

impl From<HandleError> for ApiError {
    fn from(e: HandleError) -> Self {
        match e {
            HandleError::Hub(
                HubError::InvalidEvent
                | HubError::InvalidRoom { .. }
                | HubError::InvalidUser
                | HubError::Serialize(_),
            ) => Self::bad(e.to_string()),
            HandleError::Stopped => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e.to_string())
            }
            other => Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", other.to_string()),
        }
    }
}

fn reply(status: StatusCode, body: &Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

type Answer = Result<Response, ApiError>;

fn ok(body: Value) -> Answer {
    Ok(reply(StatusCode::OK, &body))
}

/// A request that carried the API key (compared in constant time).
struct Authorized;

impl FromRequestParts<ApiState> for Authorized {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let Some(key) = &state.key else {
            let message = "the HTTP API is off: start the server with --api-key";
            return Err(ApiError::new(StatusCode::NOT_FOUND, "api_disabled", message));
        };
        let given = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if bool::from(given.as_bytes().ct_eq(key.as_bytes())) {
            Ok(Authorized)
        } else {
            let message = "missing or wrong key: send Authorization: Bearer <api key>";
            Err(ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message))
        }
    }
}

/// Parses a request body, with the errors the API documents.
fn parse<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> Result<T, ApiError> {
    let bytes = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                "the request body is too large",
            )
        } else {
            ApiError::bad(rejection.body_text())
        }
    })?;
    let bytes = if bytes.iter().all(u8::is_ascii_whitespace) { &b"{}"[..] } else { &bytes[..] };
    serde_json::from_slice(bytes).map_err(|e| {
        let code = if e.is_syntax() || e.is_eof() { "invalid_json" } else { "invalid_argument" };
        ApiError::new(StatusCode::BAD_REQUEST, code, e.to_string())
    })
}

fn conn_id(text: &str) -> Result<ConnId, ApiError> {
    text.parse().map_err(|_| ApiError::bad(format!("{text:?} is not a connection id (a UUID)")))
}

/// `?timeout_ms=` and, for join and leave, `?user=` or `?conn=`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Params {
    timeout_ms: Option<u64>,
    user: Option<String>,
    conn: Option<String>,
    /// `GET /api/connections`: a JSON object the metadata must hold.
    filter: Option<String>,
    /// `GET /api/rooms/{room}/history`: the offset after which messages are wanted (0).
    since: Option<u64>,
    /// `GET /api/rooms/{room}/history`: at most this many messages (100, at most 1,000).
    limit: Option<usize>,
}

impl Params {
    fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.unwrap_or(1000).clamp(1, 30_000))
    }
}

async fn query(
    state: &ApiState,
    query: roomcast_core::Query,
    timeout: Duration,
) -> Result<QueryResult, ApiError> {
    state.handle.cluster_query(query, timeout).await.map_err(ApiError::from)
}

/// A query or an order of the API: the key checked, and the query string read.
struct Ask {
    state: ApiState,
    params: Params,
}

impl FromRequestParts<ApiState> for Ask {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        Authorized::from_request_parts(parts, state).await?;
        let Query(params) = Query::<Params>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad(e.body_text()))?;
        Ok(Self { state: state.clone(), params })
    }
}

impl Ask {
    async fn run(&self, q: roomcast_core::Query) -> Result<QueryResult, ApiError> {
        query(&self.state, q, self.params.timeout()).await
    }

    /// A query for connections: `{"members","missing"}`.
    async fn members(&self, q: roomcast_core::Query) -> Answer {
        let result = self.run(q).await?;
        ok(json!({"members": result.members, "missing": result.missing}))
    }

    /// An order: `{"affected","missing"}`.
    async fn order(&self, q: roomcast_core::Query) -> Answer {
        ok(affected(self.run(q).await?))
    }

    /// The target of join and leave: `?user=` or `?conn=`.
    fn target(&self) -> Result<Target, ApiError> {
        target(self.params.user.clone(), self.params.conn.as_deref())
    }
}

fn affected(result: QueryResult) -> Value {
    json!({"affected": result.affected, "missing": result.missing})
}

/// Exactly one of a user and a connection.
fn target(user: Option<String>, conn: Option<&str>) -> Result<Target, ApiError> {
    match (user, conn) {
        (Some(user), None) => Ok(Target::User(user)),
        (None, Some(conn)) => Ok(Target::Conn(conn_id(conn)?)),
        _ => Err(ApiError::bad("give exactly one of user and conn")),
    }
}

async fn info(_: Authorized, State(state): State<ApiState>) -> Answer {
    ok(json!({"serverId": state.handle.options().hub.server_id}))
}

async fn count(ask: Ask) -> Answer {
    let result = ask.run(Q::Count).await?;
    ok(json!({"connections": result.affected, "missing": result.missing}))
}

async fn rooms(ask: Ask) -> Answer {
    let result = ask.run(Q::Rooms).await?;
    ok(json!({"rooms": result.rooms, "missing": result.missing}))
}

async fn members(ask: Ask, Path(room): Path<String>) -> Answer {
    ask.members(Q::Members { room }).await
}

async fn sessions(ask: Ask, Path(user): Path<String>) -> Answer {
    ask.members(Q::Sessions { user }).await
}

async fn connections(ask: Ask) -> Answer {
    let filter = match &ask.params.filter {
        None => MetadataFilter::new(),
        Some(text) => serde_json::from_str::<serde_json::Map<String, Value>>(text)
            .map(MetadataFilter::from)
            .map_err(|e| ApiError::bad(format!("filter must be a JSON object: {e}")))?,
    };
    ask.members(Q::Connections { filter }).await
}

async fn connection(ask: Ask, Path(id): Path<String>) -> Answer {
    let conn = conn_id(&id)?;
    let result = ask.run(Q::Connection { conn }).await?;
    match result.members.first() {
        Some(found) => ok(json!({"connection": found, "missing": result.missing})),
        None if result.missing.is_empty() => {
            Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no connection {conn}")))
        }
        // Perhaps on an instance that did not answer: not a 404.
        None => ok(json!({"connection": null, "missing": result.missing})),
    }
}

async fn join(ask: Ask, Path(room): Path<String>) -> Answer {
    let target = ask.target()?;
    ask.order(Q::Join { target, room }).await
}

async fn leave(ask: Ask, Path(room): Path<String>) -> Answer {
    let target = ask.target()?;
    ask.order(Q::Leave { target, room }).await
}

async fn disconnect_user(ask: Ask, Path(user): Path<String>) -> Answer {
    ask.order(Q::Disconnect { target: Target::User(user) }).await
}

async fn disconnect_conn(ask: Ask, Path(id): Path<String>) -> Answer {
    let target = Target::Conn(conn_id(&id)?);
    ask.order(Q::Disconnect { target }).await
}

/// A publish: to one room (`room`, or the route's), to several (`rooms`, each connection once),
/// or to everyone (neither), minus `exclude` and `excludeUsers`.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Publish {
    event: String,
    #[serde(default)]
    data: Option<Box<RawValue>>,
    #[serde(default)]
    exclude: Vec<ConnId>,
    #[serde(default)]
    exclude_users: Vec<String>,
    #[serde(default)]
    room: Option<String>,
    #[serde(default)]
    rooms: Option<Vec<String>>,
}

/// A send to one user's sessions or one connection.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct Send {
    event: String,
    #[serde(default)]
    data: Option<Box<RawValue>>,
}

/// The data to send: `null` when none was given.
fn data(data: Option<Box<RawValue>>) -> Box<RawValue> {
    data.unwrap_or_default()
}

async fn do_publish(state: &ApiState, publish: Publish) -> Result<Value, ApiError> {
    let exclude = Exclude { conns: publish.exclude, users: publish.exclude_users };
    let data = &*data(publish.data);
    let handle = &state.handle;
    match (publish.room, publish.rooms) {
        (Some(_), Some(_)) => return Err(ApiError::bad("give room or rooms, not both")),
        (Some(room), None) => {
            handle.broadcast_room(&room, &publish.event, data, exclude).await?;
        }
        (None, Some(rooms)) if rooms.is_empty() => {
            return Err(ApiError::bad("rooms is empty: use broadcast to reach everyone"));
        }
        (None, Some(rooms)) => {
            handle.broadcast_rooms(rooms, Vec::new(), &publish.event, data, exclude).await?;
        }
        (None, None) => return Err(ApiError::bad("publish needs a room (or rooms)")),
    }
    Ok(json!({}))
}

async fn do_broadcast(state: &ApiState, publish: Publish) -> Result<Value, ApiError> {
    if publish.room.is_some() || publish.rooms.is_some() {
        return Err(ApiError::bad("broadcast reaches everyone: use publish for rooms"));
    }
    let exclude = Exclude { conns: publish.exclude, users: publish.exclude_users };
    state.handle.broadcast_all(&publish.event, &*data(publish.data), exclude).await?;
    Ok(json!({}))
}

async fn publish_room(
    _: Authorized,
    State(state): State<ApiState>,
    Path(room): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let publish: Publish = parse(body)?;
    if publish.room.is_some() || publish.rooms.is_some() {
        return Err(ApiError::bad("the room is in the path"));
    }
    let exclude = Exclude { conns: publish.exclude, users: publish.exclude_users };
    let data = &*data(publish.data);
    let sent = state.handle.broadcast_room(&room, &publish.event, data, exclude).await?;
    // A room with history: where the message is in it. Its stream holds the message just
    // kept, so the epoch read right after is the one the message was numbered under.
    match (sent.offset, state.handle.history_position(&room).await?) {
        (Some(offset), Some((_, epoch))) => ok(json!({"offset": offset, "epoch": epoch})),
        _ => ok(json!({})),
    }
}

/// A room without history, for the history routes.
fn no_history(room: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("room {room:?} keeps no history"))
}

/// `GET /api/rooms/{room}/history?since=&limit=`: `{"messages":[{"offset","event","data"}],
/// "epoch","offset"}`.
async fn history(ask: Ask, Path(room): Path<String>) -> Answer {
    let handle = &ask.state.handle;
    if handle.options().hub.rooms.for_room(&room).history.is_none() {
        return Err(no_history(&room));
    }
    let since = ask.params.since.unwrap_or(0);
    let limit = ask.params.limit.unwrap_or(100).clamp(1, 1000);
    let Some(page) = handle.history(&room, since, limit).await? else {
        // Nothing kept and nobody in it: no numbering yet.
        return ok(json!({"messages": [], "epoch": null, "offset": 0}));
    };
    let messages: Vec<Value> = page
        .messages
        .iter()
        .filter_map(|frame| serde_json::from_slice::<Value>(frame).ok())
        .map(|f| json!({"offset": f["offset"], "event": f["event"], "data": f["data"]}))
        .collect();
    ok(json!({"messages": messages, "epoch": page.epoch, "offset": page.offset}))
}

/// `DELETE /api/rooms/{room}/history`: its messages and numbering are forgotten.
async fn remove_history(
    _: Authorized,
    State(state): State<ApiState>,
    Path(room): Path<String>,
) -> Answer {
    if state.handle.options().hub.rooms.for_room(&room).history.is_none() {
        return Err(no_history(&room));
    }
    state.handle.remove_history(&room).await?;
    ok(json!({}))
}

async fn publish_rooms(
    _: Authorized,
    State(state): State<ApiState>,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    ok(do_publish(&state, parse(body)?).await?)
}

async fn broadcast(
    _: Authorized,
    State(state): State<ApiState>,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    ok(do_broadcast(&state, parse(body)?).await?)
}

async fn send_user(
    _: Authorized,
    State(state): State<ApiState>,
    Path(user): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let send: Send = parse(body)?;
    state.handle.send_to_user(&user, &send.event, &*data(send.data)).await?;
    ok(json!({}))
}

async fn send_conn(
    _: Authorized,
    State(state): State<ApiState>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let conn = conn_id(&id)?;
    let send: Send = parse(body)?;
    state.handle.send(conn, &send.event, &*data(send.data)).await?;
    ok(json!({}))
}

async fn unknown_route(_: Authorized) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such API route")
}

async fn wrong_method(_: Authorized) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "wrong method for this route",
    )
}

//! `POST /api/batch`: several publishes, sends and orders in one request, each with its own
//! result.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use roomcast_tokio::roomcast_core::{Query as Q, Target};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::{
    Answer, ApiError, ApiState, Authorized, affected, data, do_broadcast, do_publish, ok, parse,
    query, target,
};

/// `POST /api/batch`: `{"commands":[{"method","params"}]}`, applied in order; each gets its own
/// result (`{}`-like, or `{"error":{..}}`), and one that fails does not stop the others.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Batch {
    commands: Vec<BatchCommand>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchCommand {
    method: String,
    #[serde(default)]
    params: Option<Box<RawValue>>,
}

/// The target of `send`, `disconnect`, `join` and `leave` in a batch.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Targeted {
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    conn: Option<String>,
    #[serde(default)]
    room: Option<String>,
    #[serde(default)]
    event: Option<String>,
    #[serde(default)]
    data: Option<Box<RawValue>>,
}

impl Targeted {
    fn target(&self) -> Result<Target, ApiError> {
        target(self.user.clone(), self.conn.as_deref())
    }

    fn room(&self) -> Result<String, ApiError> {
        self.room.clone().ok_or_else(|| ApiError::bad("room is missing"))
    }
}

/// The most commands one batch may hold.
const MAX_BATCH: usize = 1000;

pub(super) async fn batch(
    _: Authorized,
    State(state): State<ApiState>,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let batch: Batch = parse(body)?;
    if batch.commands.len() > MAX_BATCH {
        return Err(ApiError::bad(format!("at most {MAX_BATCH} commands per batch")));
    }
    let mut results = Vec::with_capacity(batch.commands.len());
    for command in batch.commands {
        let result = run_command(&state, command).await.unwrap_or_else(|e| e.body());
        results.push(result);
    }
    ok(json!({ "results": results }))
}

async fn run_command(state: &ApiState, command: BatchCommand) -> Result<Value, ApiError> {
    let params = command.params.as_deref().map_or("{}", RawValue::get);
    fn params_as<T: DeserializeOwned>(params: &str) -> Result<T, ApiError> {
        serde_json::from_str(params).map_err(|e| ApiError::bad(e.to_string()))
    }
    let timeout = Duration::from_secs(1);
    match command.method.as_str() {
        "publish" => do_publish(state, params_as(params)?).await,
        "broadcast" => do_broadcast(state, params_as(params)?).await,
        "send" => {
            let t: Targeted = params_as(params)?;
            let target = t.target()?;
            let event = t.event.ok_or_else(|| ApiError::bad("event is missing"))?;
            let data = &*data(t.data);
            let _sent = match target {
                Target::User(user) => state.handle.send_to_user(&user, &event, data).await?,
                Target::Conn(conn) => state.handle.send(conn, &event, data).await?,
            };
            Ok(json!({}))
        }
        "disconnect" => {
            let target = params_as::<Targeted>(params)?.target()?;
            Ok(affected(query(state, Q::Disconnect { target }, timeout).await?))
        }
        "join" => {
            let t: Targeted = params_as(params)?;
            let (target, room) = (t.target()?, t.room()?);
            Ok(affected(query(state, Q::Join { target, room }, timeout).await?))
        }
        "leave" => {
            let t: Targeted = params_as(params)?;
            let (target, room) = (t.target()?, t.room()?);
            Ok(affected(query(state, Q::Leave { target, room }, timeout).await?))
        }
        other => Err(ApiError::bad(format!(
            "unknown method {other:?} (publish, broadcast, send, disconnect, join, leave)"
        ))),
    }
}

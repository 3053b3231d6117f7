//! moost's `ChatController` on roomcast: rooms named by the message path (`/chat/general`),
//! broadcast to the room without the sender, the rooms of a connection, and a direct message.
//!
//! `cargo run -p roomcast-tokio --example moost_chat -- 127.0.0.1:8080`, then send
//! `{"event":"join","path":"/chat/general","data":{"name":"ann"},"id":1}`.

use roomcast_tokio::roomcast_core::ConnId;
use roomcast_tokio::{Builder, Data, HandlerError, MessagePath, Roomcast, Socket};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Deserialize)]
struct Join {
    name: String,
}

#[derive(Deserialize, Serialize)]
struct Text {
    text: String,
}

#[derive(Deserialize)]
struct Direct {
    to: ConnId,
    text: String,
}

type Reply = Result<serde_json::Value, HandlerError>;

/// The chat's handlers.
pub fn app() -> Builder {
    Roomcast::builder()
        .on_path(
            "join",
            "/chat/:room",
            |s: Socket, MessagePath(room): MessagePath, Data(who): Data<Join>| async move {
                let room = room.unwrap_or_default();
                s.join(&room).await?;
                s.to(&room)
                    .emit("system", &json!({ "text": format!("{} joined", who.name) }))
                    .await?;
                Ok(json!({ "joined": true, "room": room, "rooms": s.rooms().await? })) as Reply
            },
        )
        .on_path("leave", "/chat/:room", |s: Socket, MessagePath(room): MessagePath| async move {
            let room = room.unwrap_or_default();
            s.to(&room).emit("system", &json!({ "text": "Someone left" })).await?;
            s.leave(&room).await?;
            Ok(json!({ "left": true, "rooms": s.rooms().await? })) as Reply
        })
        .on_path(
            "message",
            "/chat/:room",
            |s: Socket, MessagePath(room): MessagePath, Data(text): Data<Text>| async move {
                s.to(room.unwrap_or_default())
                    .emit("message", &text)
                    .await
                    .map_err(HandlerError::from)
            },
        )
        .on("dm", |s: Socket, Data(dm): Data<Direct>| async move {
            let from = s.id().to_string();
            s.handle()
                .send(dm.to, "dm", &json!({ "from": from, "text": dm.text }))
                .await
                .map_err(HandlerError::from)
        })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8080".into());
    let (handle, _events) = app().start()?;
    roomcast_tokio::serve(tokio::net::TcpListener::bind(&addr).await?, handle).await?;
    Ok(())
}

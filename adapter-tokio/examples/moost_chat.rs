//! moost's `ChatController` on roomcast: rooms named by the message path (`/chat/general`),
//! broadcast to the room without the sender (each frame carrying the path, as moost's
//! `send(event, path, data)`), the rooms of a connection, and a direct message.
//!
//! `cargo run -p roomcast-tokio --example moost_chat -- 127.0.0.1:8080`, then send
//! `{"event":"join","path":"/chat/general","data":{"name":"ann"},"id":1}`.

use roomcast_tokio::roomcast_core::ConnId;
use roomcast_tokio::{Builder, Data, MessagePath, Roomcast, Socket};
use serde_json::{Value, json};

#[derive(serde::Deserialize)]
struct Direct {
    to: ConnId,
    text: String,
}

/// The chat's handlers.
pub fn app() -> Builder {
    Roomcast::builder()
        .on_path(
            "join",
            "/chat/:room",
            |s: Socket, MessagePath(p): MessagePath, Data(d): Data<Value>| async move {
                let (room, name) =
                    (p.unwrap_or_default(), d["name"].as_str().unwrap_or("?").to_owned());
                s.join(&room).await?;
                let text = format!("{name} joined");
                s.to(&room).path(&room).emit("system", &json!({ "text": text })).await?;
                Ok(json!({ "joined": true, "room": room, "rooms": s.rooms().await? }))
            },
        )
        .on_path("leave", "/chat/:room", |s: Socket, MessagePath(p): MessagePath| async move {
            let room = p.unwrap_or_default();
            s.to(&room).path(&room).emit("system", &json!({ "text": "Someone left" })).await?;
            s.leave(&room).await?;
            Ok(json!({ "left": true, "rooms": s.rooms().await? }))
        })
        .on_path(
            "message",
            "/chat/:room",
            |s: Socket, MessagePath(p): MessagePath, Data(d): Data<Value>| async move {
                let room = p.unwrap_or_default();
                Ok(s.to(&room).path(&room).emit("message", &d).await?)
            },
        )
        .on("dm", |s: Socket, Data(dm): Data<Direct>| async move {
            let data = json!({ "from": s.id().to_string(), "text": dm.text });
            s.handle().send(dm.to, "dm", &data).await?;
            Ok(())
        })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8080".into());
    let (handle, _events) = app().start()?;
    roomcast_tokio::serve(tokio::net::TcpListener::bind(&addr).await?, handle).await?;
    Ok(())
}

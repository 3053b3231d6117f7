//! The PXL game service on roomcast: events routed by `type/action`, a client's metadata updated
//! as the game goes (`updateClient`), clients found by their metadata (`getClients({userType})`),
//! and one message to several rooms that reaches each player once (`sendToRooms`).
//!
//! `cargo run -p roomcast-tokio --example pxl_game -- 127.0.0.1:8080`, then send
//! `{"event":"lobby/enter","data":{"userType":"player","rooms":["table:1","spectators"]},"id":1}`.

use roomcast_tokio::roomcast_core::MetadataFilter;
use roomcast_tokio::{Builder, Data, Params, Roomcast, Socket};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
struct Enter {
    #[serde(rename = "userType")]
    user_type: String,
    rooms: Vec<String>,
}

#[derive(Deserialize)]
struct Announce {
    rooms: Vec<String>,
    text: String,
}

/// The game's handlers.
pub fn app() -> Builder {
    Roomcast::builder()
        .on("lobby/enter", |s: Socket, Data(e): Data<Enter>| async move {
            s.set_metadata(&json!({ "userType": e.user_type })).await?;
            for room in &e.rooms {
                s.join(room).await?;
            }
            Ok(json!({ "rooms": s.rooms().await? }))
        })
        .on("lobby/clients", |s: Socket, Data(user_type): Data<String>| async move {
            let found = s
                .handle()
                .connections_matching(MetadataFilter::new().field("userType", user_type))
                .await?;
            Ok(json!(found.iter().map(|m| m.conn.to_string()).collect::<Vec<_>>()))
        })
        .on("game/:action", |s: Socket, p: Params, Data(move_): Data<Value>| async move {
            let action = p.get("action").unwrap_or_default().to_owned();
            s.set_metadata(&json!({ "userType": "player", "last": action })).await?;
            let rooms = s.rooms().await?; // every table this player sits at, each player once
            s.handle()
                .to_rooms(rooms)
                .except(s.id())
                .emit(&format!("game/{action}"), &move_)
                .await?;
            Ok(json!({ "ok": true }))
        })
        .on("admin/announce", |s: Socket, Data(a): Data<Announce>| async move {
            s.handle().to_rooms(a.rooms).emit("announcement", &a.text).await?;
            Ok(json!({ "sent": true }))
        })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8080".into());
    let (handle, _events) = app().start()?;
    roomcast_tokio::serve(tokio::net::TcpListener::bind(&addr).await?, handle).await?;
    Ok(())
}

//! The JustScale chat room on roomcast: the room comes from the URL (`/room/:roomId?name=ann`),
//! members are listed on request and announced as they come and go, and private messages go to
//! a person by name.
//!
//! `cargo run -p roomcast-tokio --example justscale_rooms -- 127.0.0.1:8080`, then connect to
//! `ws://127.0.0.1:8080/room/lobby?name=ann`.

use roomcast_tokio::roomcast_core::{HubConfig, PresenceEvents};
use roomcast_tokio::{
    Admit, Builder, Data, HandlerError, Options, Refuse, Roomcast, Socket, UpgradeRequest,
};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
struct Private {
    to: String,
    text: String,
}

/// The room a connection is in: the one from its URL.
fn room_of(s: &Socket) -> String {
    s.request().and_then(|r| r.path().strip_prefix("/room/")).unwrap_or_default().to_owned()
}

/// The chat room's hooks and handlers.
pub fn app() -> Builder {
    let hub = HubConfig { presence_events: PresenceEvents::Users, ..HubConfig::default() };
    Roomcast::builder()
        .options(Options { hub, ..Options::default() })
        .on_connect(|r: UpgradeRequest| async move {
            let room = r.path().strip_prefix("/room/").filter(|room| !room.is_empty());
            match (room, r.query_param("name").filter(|n| !n.is_empty())) {
                (Some(room), Some(name)) => Ok(Admit::new().user(name).join(room)),
                _ => Err(Refuse::status(400, "use /room/:roomId?name=you")),
            }
        })
        .on("members", |s: Socket| async move {
            let members = s.handle().presence(&room_of(&s)).await?;
            Ok(members
                .iter()
                .map(|m| json!({ "id": m.conn, "name": m.user_id }))
                .collect::<Vec<_>>())
        })
        .on("message", |s: Socket, Data(text): Data<String>| async move {
            let from = s.user_id().unwrap_or_default().to_owned();
            s.to(room_of(&s)).emit("message", &json!({ "from": from, "text": text })).await?;
            Ok(())
        })
        .on("private", |s: Socket, Data(p): Data<Private>| async move {
            if !s.handle().user_online(&p.to).await? {
                return Err(HandlerError::new("not_found", format!("{} is not here", p.to)));
            }
            let from = s.user_id().unwrap_or_default().to_owned();
            s.handle()
                .send_to_user(&p.to, "private", &json!({ "from": from, "text": p.text }))
                .await?;
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

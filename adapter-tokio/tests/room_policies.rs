//! Room policies over real sockets, in an embedded application: server-only rooms once it has
//! handlers, opened in one line, `Builder::room_policy` by pattern; a refused request is answered
//! `forbidden` with its id. (`roomcast serve` with the production configuration: server/tests.)
#![allow(clippy::unwrap_used)]

mod common;

use common::{Client, start_with};
use roomcast_tokio::roomcast_core::{PublishPolicy, RoomPolicy};
use roomcast_tokio::{Data, Roomcast, Socket};
use serde_json::{Value, json};

fn forbidden(frame: &Value, id: impl Into<Value>, room: &str) {
    assert_eq!(frame["event"], "error", "{frame}");
    assert_eq!(frame["id"], id.into(), "{frame}");
    assert_eq!(frame["data"]["code"], "forbidden", "{frame}");
    assert_eq!(frame["data"]["room"], room, "{frame}");
}

/// An application with one handler that puts its caller in `team:{n}`.
fn app() -> roomcast_tokio::Builder {
    Roomcast::builder().on("enter", |socket: Socket, Data(team): Data<u32>| async move {
        socket.join(&format!("team:{team}")).await?;
        Ok(())
    })
}

#[tokio::test]
async fn an_application_with_handlers_keeps_clients_out_of_rooms_until_it_opens_them() {
    let (_, _, addr) = start_with(app()).await;
    let (mut client, _) = Client::connected(addr).await;
    client.send(json!({"event":"join","data":{"rooms":["team:2"]},"id":1})).await;
    forbidden(&client.recv().await, 1, "team:2");
    assert_eq!(client.recv().await, json!({"event":"joined","id":1,"data":{"rooms":[]}}));
    // The application's handler joins it; the client can neither leave nor publish.
    client.send(json!({"event":"enter","data":1,"id":2})).await;
    assert_eq!(client.recv().await["data"]["rooms"], json!(["team:1"]));
    assert_eq!(client.recv().await["id"], 2);
    client.send(json!({"event":"leave","data":{"rooms":["team:1"]},"id":3})).await;
    forbidden(&client.recv().await, 3, "team:1");
    assert_eq!(client.recv().await, json!({"event":"left","id":3,"data":{"rooms":["team:1"]}}));
    let publish = json!({"event":"publish","data":{"room":"team:1","event":"system"},"id":4});
    client.send(publish).await;
    forbidden(&client.recv().await, 4, "team:1");
    client.expect_nothing_pending().await;
}

#[tokio::test]
async fn one_line_opens_every_room_and_a_pattern_opens_some() {
    let (_, _, addr) = start_with(app().default_room_policy(RoomPolicy::open())).await;
    let (mut client, _) = Client::connected(addr).await;
    client.send(json!({"event":"join","data":{"rooms":["anything"]},"id":1})).await;
    assert_eq!(client.recv().await, json!({"event":"joined","id":1,"data":{"rooms":["anything"]}}));

    let news = RoomPolicy { publish: PublishPolicy::Server, ..RoomPolicy::open() };
    let builder = app().room_policy("chat:*", RoomPolicy::open()).room_policy("news:*", news);
    let (_, _, addr) = start_with(builder).await;
    let (mut client, _) = Client::connected(addr).await;
    client.send(json!({"event":"join","data":{"rooms":["chat:1","news:1","other"]},"id":1})).await;
    forbidden(&client.recv().await, 1, "other");
    assert_eq!(client.recv().await["data"]["rooms"], json!(["chat:1", "news:1"]));
    let forge = json!({"event":"publish","data":{"room":"news:1","event":"announcement"},"id":2});
    client.send(forge).await;
    forbidden(&client.recv().await, 2, "news:1");
    let chat = json!({"event":"publish","data":{"room":"chat:1","event":"hi","excludeSelf":false}});
    client.send(chat).await;
    assert_eq!(client.recv().await, json!({"event":"hi","room":"chat:1"}));
}

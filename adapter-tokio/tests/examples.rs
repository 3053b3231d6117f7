//! Each example port runs its seed's scenario over real sockets: moost's chat, the JustScale chat
//! room, the ignis service with an Emitter over a real Redis, and the PXL game service.
#![allow(clippy::unwrap_used)]

mod common;

#[allow(dead_code, unreachable_pub)]
#[path = "../examples/ignis_service.rs"]
mod ignis_service;
#[allow(dead_code, unreachable_pub)]
#[path = "../examples/justscale_rooms.rs"]
mod justscale_rooms;
#[allow(dead_code, unreachable_pub)]
#[path = "../examples/moost_chat.rs"]
mod moost_chat;
#[allow(dead_code, unreachable_pub)]
#[path = "../examples/pxl_game.rs"]
mod pxl_game;

use common::{Client, start_with};
use roomcast_client::{Client as RustClient, Event, Events};
use roomcast_tests::redis::RedisServer;
use roomcast_tokio::roomcast_redis::{Emitter, RedisConfig};
use serde_json::{Value, json};
use tokio::net::TcpStream;

async fn connect_to(addr: std::net::SocketAddr, path: &str) -> Result<Client, u16> {
    let stream = TcpStream::connect(addr).await.unwrap();
    match tokio_tungstenite::client_async(format!("ws://{addr}{path}"), stream).await {
        Ok((ws, _)) => Ok(Client { ws }),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(response.status().as_u16())
        }
        Err(e) => panic!("{e}"),
    }
}

/// The next frame that is an answer to request `id` (frames before it are returned too).
async fn answer(client: &mut Client, id: &Value) -> (Value, Vec<Value>) {
    let mut before = Vec::new();
    loop {
        let frame = client.recv().await;
        if &frame["id"] == id {
            return (frame, before);
        }
        before.push(frame);
    }
}

#[tokio::test]
async fn moost_chat_joins_by_path_broadcasts_without_the_sender_lists_rooms_and_sends_directly() {
    let (_handle, _events, addr) = start_with(moost_chat::app()).await;
    let (mut ann, ann_id) = Client::connected(addr).await;
    let (mut bob, bob_id) = Client::connected(addr).await;
    let general = "/chat/general";

    ann.send(json!({"event":"join","path":general,"data":{"name":"ann"},"id":1})).await;
    let (reply, _) = answer(&mut ann, &json!(1)).await;
    assert_eq!(
        reply["data"],
        json!({"joined":true,"room":general,"rooms":[general]}),
        "the path is the room, as in moost"
    );
    bob.send(json!({"event":"join","path":general,"data":{"name":"bob"},"id":1})).await;
    answer(&mut bob, &json!(1)).await;
    assert_eq!(
        ann.recv().await,
        json!({"event":"system","room":general,"path":general,"data":{"text":"bob joined"}})
    );

    bob.send(json!({"event":"message","path":general,"data":{"text":"hi"}})).await;
    assert_eq!(
        ann.recv().await,
        json!({"event":"message","room":general,"path":general,"data":{"text":"hi"}}),
        "the path comes back, as moost's clients route on it"
    );
    bob.expect_nothing_pending().await; // the sender does not hear itself

    ann.send(json!({"event":"dm","data":{"to":bob_id,"text":"psst"}})).await;
    assert_eq!(bob.recv().await, json!({"event":"dm","data":{"from":ann_id,"text":"psst"}}));

    bob.send(json!({"event":"leave","path":general,"id":2})).await;
    let (reply, _) = answer(&mut bob, &json!(2)).await;
    assert_eq!(reply["data"], json!({"left":true,"rooms":[]}));
    assert_eq!(ann.recv().await["data"]["text"], "Someone left");
}

#[tokio::test]
async fn justscale_rooms_takes_the_room_from_the_url_lists_and_announces_members_and_whispers() {
    let (_handle, _events, addr) = start_with(justscale_rooms::app()).await;
    assert_eq!(connect_to(addr, "/room/lobby").await.err(), Some(400), "a name is needed");
    let mut ann = connect_to(addr, "/room/lobby?name=ann").await.unwrap();
    assert_eq!(ann.recv().await["data"]["userId"], "ann");
    assert_eq!(ann.recv().await, json!({"event":"joined","data":{"rooms":["lobby"]}}));
    let mut bob = connect_to(addr, "/room/lobby?name=bob").await.unwrap();
    let joined = ann.recv().await;
    assert_eq!(
        (joined["event"].as_str(), joined["data"]["userId"].as_str()),
        (Some("member_joined"), Some("bob"))
    );

    bob.send(json!({"event":"members","id":"m"})).await;
    let (members, _) = answer(&mut bob, &json!("m")).await;
    let mut names: Vec<&str> =
        members["data"].as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["ann", "bob"]);

    bob.send(json!({"event":"message","data":"hello lobby"})).await;
    assert_eq!(
        ann.recv().await,
        json!({"event":"message","room":"lobby","data":{"from":"bob","text":"hello lobby"}})
    );
    ann.send(json!({"event":"private","data":{"to":"bob","text":"psst"},"id":"p"})).await;
    answer(&mut ann, &json!("p")).await;
    assert_eq!(bob.recv().await, json!({"event":"private","data":{"from":"ann","text":"psst"}}));
    ann.send(json!({"event":"private","data":{"to":"carol","text":"?"},"id":"q"})).await;
    let (missing, _) = answer(&mut ann, &json!("q")).await;
    assert_eq!(missing["data"]["code"], "not_found");

    bob.ws.close(None).await.unwrap();
    let left = ann.recv().await;
    assert_eq!(
        (left["event"].as_str(), left["data"]["userId"].as_str()),
        (Some("member_left"), Some("bob"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignis_service_authenticates_by_hook_and_an_emitter_reaches_a_client_by_its_own_room() {
    let redis = tokio::task::block_in_place(RedisServer::start);
    let (_handle, _events, addr) = start_with(ignis_service::app(Some(redis.url()))).await;
    let url = format!("ws://{addr}/ws");

    // As an application writes it: with roomcast-client.
    let (_rejected, mut events) = RustClient::builder(&url).token("forged").connect();
    let gone = next(&mut events, |e| match e {
        Event::Disconnected { code, will_reconnect, .. } => Some((*code, *will_reconnect)),
        _ => None,
    });
    assert_eq!(gone.await, (4003, false), "a rejected token is not retried");

    let (ann, mut events) = RustClient::builder(&url).token("user:ann").connect();
    let connected = next(&mut events, |e| match e {
        Event::Connected { id, user_id, .. } => Some((id.clone(), user_id.clone())),
        _ => None,
    });
    let (id, user) = connected.await;
    assert_eq!(user.as_deref(), Some("ann"));
    let who: Value = ann.request("whoami", &()).await.unwrap();
    assert_eq!(who, json!({"id":id,"user":"ann"}));

    // A process without sockets: the Emitter publishes to the room named by the client's id.
    tokio::task::block_in_place(|| redis.wait_numsub(&format!("ws:room:{id}"), 1));
    let mut emitter = Emitter::connect(&RedisConfig::single(redis.url())).await.unwrap();
    emitter.to_room(&id, "notice", &json!({"from":"billing"}), &[]).await.unwrap();
    let notice = next(&mut events, |e| match e {
        Event::Message(m) if m.event == "notice" => {
            Some((m.room.clone(), m.data::<Value>().unwrap()))
        }
        _ => None,
    });
    assert_eq!(notice.await, (Some(id), json!({"from":"billing"})));
}

/// The next event of a roomcast-client that `want` accepts.
async fn next<T>(events: &mut Events, mut want: impl FnMut(&Event) -> Option<T>) -> T {
    let found = async {
        loop {
            if let Some(found) = want(&events.recv().await.expect("running")) {
                return found;
            }
        }
    };
    tokio::time::timeout(common::PATIENCE, found).await.expect("in time")
}

#[tokio::test]
async fn pxl_game_routes_type_and_action_updates_and_filters_metadata_and_sends_to_rooms_once() {
    let (_handle, _events, addr) = start_with(pxl_game::app()).await;
    let (mut p1, p1_id) = Client::connected(addr).await;
    let (mut p2, p2_id) = Client::connected(addr).await;
    let (mut viewer, _) = Client::connected(addr).await;
    for (client, user_type, rooms) in [
        (&mut p1, "player", json!(["table:1", "hall"])),
        (&mut p2, "player", json!(["table:1", "hall"])),
        (&mut viewer, "viewer", json!(["hall"])),
    ] {
        client
            .send(
                json!({"event":"lobby/enter","data":{"userType":user_type,"rooms":rooms},"id":"e"}),
            )
            .await;
        let (reply, _) = answer(client, &json!("e")).await;
        assert_eq!(reply["data"]["rooms"], rooms);
    }

    viewer.send(json!({"event":"lobby/clients","data":"player","id":"c"})).await;
    let (players, _) = answer(&mut viewer, &json!("c")).await;
    let mut found: Vec<&str> =
        players["data"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    found.sort();
    let mut expected = [p1_id.as_str(), p2_id.as_str()];
    expected.sort();
    assert_eq!(found, expected);

    p1.send(json!({"event":"game/move","data":{"x":3},"id":"m"})).await;
    answer(&mut p1, &json!("m")).await;
    assert_eq!(
        p2.recv().await,
        json!({"event":"game/move","data":{"x":3}}),
        "once, though in two rooms"
    );
    assert_eq!(viewer.recv().await, json!({"event":"game/move","data":{"x":3}}));
    p2.expect_nothing_pending().await;
    p1.expect_nothing_pending().await;

    viewer.send(json!({"event":"admin/announce","data":{"rooms":["table:1","hall"],"text":"final round"},"id":"a"})).await;
    let (_, before) = answer(&mut viewer, &json!("a")).await;
    assert_eq!(
        before,
        [json!({"event":"announcement","data":"final round"})],
        "the sender is in hall too"
    );
    for client in [&mut p1, &mut p2] {
        assert_eq!(client.recv().await, json!({"event":"announcement","data":"final round"}));
        client.expect_nothing_pending().await;
    }
}

//! The roomcast-tokio driver over real loopback sockets with real WebSocket clients.
#![allow(clippy::unwrap_used)]

mod common;

use std::future::Future;
use std::time::Duration;

use common::{Client, PATIENCE, start, start_with};
use futures_util::SinkExt;
use roomcast_tokio::roomcast_core::{
    AuthMode, CloseCode, ConnId, DisconnectReason, Event, Exclude, HubConfig, Identity, RateLimit,
};
use roomcast_tokio::{AuthFuture, AuthRequest, Authenticator, LocalBus, Options, Roomcast};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

/// Accepts any token starting with "user:" as that user; rejects the rest.
struct PrefixAuth;

impl Authenticator for PrefixAuth {
    fn authenticate(&self, request: AuthRequest) -> AuthFuture<'_> {
        Box::pin(async move {
            match request.token.strip_prefix("user:") {
                Some(user) => Ok(Identity::user(user).into()),
                None => Err("bad token".into()),
            }
        })
    }
}

fn auth_options(auth_timeout: Duration) -> Options {
    Options {
        hub: HubConfig { auth: AuthMode::Required, auth_timeout, ..HubConfig::default() },
        ..Options::default()
    }
}

async fn authenticated(addr: std::net::SocketAddr, user: &str) -> (Client, ConnId) {
    let mut client = Client::connect(addr).await;
    client.send(json!({"event":"authenticate","data":{"token":format!("user:{user}")}})).await;
    let connected = client.recv().await;
    assert_eq!(connected["event"], "connected");
    assert_eq!(connected["data"]["userId"], user);
    let id = connected["data"]["id"].as_str().unwrap().parse().unwrap();
    (client, id)
}

async fn with_timeout<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, f).await.expect("finished in time")
}

#[tokio::test]
async fn anonymous_clients_join_and_publish_with_the_sender_excluded() {
    let (handle, _events, addr) = start(Options::default()).await;
    let (mut a, _) = Client::connected(addr).await;
    let (mut b, _) = Client::connected(addr).await;
    let (mut outsider, _) = Client::connected(addr).await;
    for c in [&mut a, &mut b] {
        c.send(json!({"event":"join","data":{"rooms":["r"]},"id":1})).await;
        assert_eq!(c.recv().await, json!({"event":"joined","id":1,"data":{"rooms":["r"]}}));
    }
    a.send(json!({"event":"publish","data":{"room":"r","event":"chat","data":{"text":"hi"}}}))
        .await;
    assert_eq!(b.recv().await, json!({"event":"chat","room":"r","data":{"text":"hi"}}));
    a.expect_nothing_pending().await;
    outsider.expect_nothing_pending().await;
    a.send(json!({"event":"publish","data":{"room":"r","event":"echo","excludeSelf":false}})).await;
    assert_eq!(a.recv().await, json!({"event":"echo","room":"r"}));
    assert_eq!(b.recv().await, json!({"event":"echo","room":"r"}));
    assert_eq!(handle.room_members("r").await.unwrap().len(), 2);
}

#[tokio::test]
async fn application_sends_reach_a_connection_every_session_of_a_user_and_everyone() {
    let builder =
        Roomcast::builder().options(auth_options(Duration::from_secs(5))).authenticator(PrefixAuth);
    let (handle, _events, addr) = start_with(builder).await;
    let (mut ann1, ann1_id) = authenticated(addr, "ann").await;
    let (mut ann2, _) = authenticated(addr, "ann").await;
    let (mut bob, bob_id) = authenticated(addr, "bob").await;

    handle.send(bob_id, "direct", &json!({"n":1})).await.unwrap();
    assert_eq!(bob.recv().await, json!({"event":"direct","data":{"n":1}}));
    handle.send_to_user("ann", "to-ann", &()).await.unwrap();
    assert_eq!(ann1.recv().await, json!({"event":"to-ann"}));
    assert_eq!(ann2.recv().await, json!({"event":"to-ann"}));
    handle.broadcast_all("all", &"x", Exclude::conn(ann1_id)).await.unwrap();
    assert_eq!(ann2.recv().await, json!({"event":"all","data":"x"}));
    assert_eq!(bob.recv().await, json!({"event":"all","data":"x"}));
    ann1.expect_nothing_pending().await;
    assert_eq!(handle.user_connections("ann").await.unwrap().len(), 2);
}

#[tokio::test]
async fn messages_reach_the_application_which_replies_with_the_request_id() {
    let (handle, mut events, addr) = start(Options::default()).await;
    let (mut client, _) = Client::connected(addr).await;
    client.send(json!({"event":"getTime","data":{"tz":"UTC"},"id":"q1"})).await;
    let (conn, id) = with_timeout(async {
        loop {
            if let Some(Event::Message { conn, event, id: Some(id), .. }) = events.recv().await {
                assert_eq!(event, "getTime");
                return (conn, id);
            }
        }
    })
    .await;
    handle.reply(conn, id, &json!({"now": 1})).await.unwrap();
    assert_eq!(client.recv().await, json!({"event":"reply","id":"q1","data":{"now":1}}));
}

#[tokio::test]
async fn rejected_authentication_closes_with_4003_and_silence_closes_with_4001() {
    let builder = Roomcast::builder()
        .options(auth_options(Duration::from_millis(300)))
        .authenticator(PrefixAuth);
    let (_handle, _events, addr) = start_with(builder).await;
    let mut rejected = Client::connect(addr).await;
    rejected.send(json!({"event":"authenticate","data":{"token":"nope"}})).await;
    assert_eq!(rejected.close_code().await, 4003);
    let mut silent = Client::connect(addr).await;
    assert_eq!(silent.close_code().await, 4001);
}

#[tokio::test]
async fn binary_frames_close_with_1003_and_oversized_frames_with_1009() {
    let options = Options {
        hub: HubConfig { max_frame_bytes: 1024, ..HubConfig::default() },
        ..Options::default()
    };
    let (_handle, _events, addr) = start(options).await;
    let (mut binary, _) = Client::connected(addr).await;
    binary.send_raw(Message::binary(vec![0u8; 4])).await;
    assert_eq!(binary.close_code().await, 1003);
    let (mut big, _) = Client::connected(addr).await;
    big.send(json!({"event":"chat","data":"x".repeat(4096)})).await;
    assert_eq!(big.close_code().await, 1009);
}

#[tokio::test]
async fn garbage_gets_an_error_frame_and_the_connection_stays_open() {
    let (_handle, _events, addr) = start(Options::default()).await;
    let (mut client, _) = Client::connected(addr).await;
    client.send_raw(Message::text("{nope")).await;
    let error = client.recv().await;
    assert_eq!(
        (error["event"].as_str(), error["data"]["code"].as_str()),
        (Some("error"), Some("bad_frame"))
    );
    client.expect_nothing_pending().await;
}

#[tokio::test]
async fn a_client_that_never_answers_pings_is_closed_with_4002() {
    let options = Options {
        hub: HubConfig {
            heartbeat_timeout: Duration::from_millis(400),
            ping_interval: Duration::from_millis(100),
            ..HubConfig::default()
        },
        ..Options::default()
    };
    let (_handle, mut events, addr) = start(options).await;
    // Not reading means not answering pings: tungstenite answers them only while reading. So
    // read nothing until the hub has decided the close (its event), however long that takes.
    let mut client = Client::connect(addr).await;
    loop {
        let event = tokio::time::timeout(PATIENCE, events.recv()).await.unwrap().unwrap();
        if let Event::Disconnected { reason, .. } = event {
            assert_eq!(reason, DisconnectReason::Closed(CloseCode::HEARTBEAT_TIMEOUT));
            break;
        }
    }
    assert_eq!(client.close_code().await, 4002);
}

#[tokio::test]
async fn a_flooding_client_is_closed_with_4008_while_its_neighbour_keeps_receiving() {
    let options = Options {
        hub: HubConfig {
            rate_limit: Some(RateLimit { per_second: 5, burst: 10 }),
            ..HubConfig::default()
        },
        ..Options::default()
    };
    let (handle, _events, addr) = start(options).await;
    let (mut flooder, _) = Client::connected(addr).await;
    let (mut neighbour, _) = Client::connected(addr).await;
    neighbour.send(json!({"event":"join","data":{"rooms":["r"]}})).await;
    neighbour.recv().await;
    for _ in 0..50 {
        if flooder.ws.send(Message::text(r#"{"event":"heartbeat"}"#)).await.is_err() {
            break;
        }
    }
    assert_eq!(flooder.close_code().await, 4008);
    handle.broadcast_room("r", "still-here", &(), Exclude::none()).await.unwrap();
    assert_eq!(neighbour.recv().await, json!({"event":"still-here","room":"r"}));
}

#[tokio::test]
async fn shutdown_flushes_queued_frames_then_closes_everyone_with_1001() {
    let (handle, _events, addr) = start(Options::default()).await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        let (mut client, _) = Client::connected(addr).await;
        client.send(json!({"event":"join","data":{"rooms":["r"]}})).await;
        client.recv().await;
        clients.push(client);
    }
    for i in 0..20 {
        handle.broadcast_room("r", "n", &i, Exclude::none()).await.unwrap();
    }
    // Clients read while the server shuts down, and answer its close as clients do.
    let readers: Vec<_> = clients
        .into_iter()
        .map(|mut client| {
            tokio::spawn(async move {
                for i in 0..20 {
                    assert_eq!(client.recv().await, json!({"event":"n","room":"r","data":i}));
                }
                client.close_code().await
            })
        })
        .collect();
    with_timeout(handle.shutdown()).await;
    for reader in readers {
        assert_eq!(reader.await.unwrap(), 1001);
    }
    assert!(handle.is_stopped());
}

#[tokio::test]
async fn the_hub_task_ends_when_every_handle_is_dropped() {
    let bus = LocalBus::new();
    let port_bus = bus.clone();
    let (handle, events) =
        Roomcast::builder().bus(move |inbox| port_bus.port(inbox)).start().unwrap();
    assert_eq!(handle.connections().await.unwrap().len(), 0);
    assert_eq!(bus.instances(), 1);
    drop(events);
    drop(handle);
    // The hub task ends, drops its bus port, and the port leaves the bus: nothing leaked.
    with_timeout(async {
        while bus.instances() > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn with_its_events_dropped_an_instance_answers_requests_nobody_handles_with_unknown_event() {
    let (_handle, events, addr) = start(Options::default()).await;
    drop(events);
    let mut client = Client::connect(addr).await;
    assert_eq!(client.recv().await["event"], "connected");
    client.send(json!({"event":"whoami","data":{},"id":7})).await;
    let answer = with_timeout(client.recv()).await;
    assert_eq!(answer["id"], 7, "{answer}");
    assert_eq!(answer["data"]["code"], "unknown_event", "{answer}");
    // Joining and publishing go on as before.
    client.send(json!({"event":"join","data":{"rooms":["r"]},"id":8})).await;
    assert_eq!(with_timeout(client.recv()).await["event"], "joined");
}

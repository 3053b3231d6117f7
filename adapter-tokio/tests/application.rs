//! The application API over real sockets: handlers routed by pattern, extractors, answers and
//! errors, per-connection order, a slow and a panicking handler, the `on_connect` and
//! `on_disconnect` hooks, rooms and exceptions, metadata, and the lossless event paths.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Client, PATIENCE, start_with};
use futures_util::StreamExt;
use roomcast_tokio::roomcast_core::{
    CloseCode, DisconnectReason, Event, HubConfig, MetadataFilter,
};
use roomcast_tokio::{
    Admit, Data, EventName, Extension, HandlerError, Options, Params, Refuse, Roomcast, Socket,
    State, UpgradeRequest,
};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Connects to `path` with extra headers; `Err(status)` if the upgrade is refused.
async fn connect_to(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[(&'static str, &'static str)],
) -> Result<Client, u16> {
    let mut request = format!("ws://{addr}{path}").into_client_request().unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(*name, value.parse().unwrap());
    }
    let stream = TcpStream::connect(addr).await.unwrap();
    match tokio_tungstenite::client_async(request, stream).await {
        Ok((ws, _)) => Ok(Client { ws }),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(response.status().as_u16())
        }
        Err(e) => panic!("{e}"),
    }
}

async fn connected(addr: std::net::SocketAddr) -> (Client, String) {
    Client::connected(addr).await
}

#[derive(serde::Deserialize)]
struct Add {
    a: i64,
    b: i64,
}

#[tokio::test]
async fn a_handler_answers_a_request_and_bad_data_or_an_error_come_back_with_the_id() {
    let builder = Roomcast::builder()
        .on("math:add", |Data(add): Data<Add>| async move { Ok(add.a + add.b) })
        .on("math:div", |Data((a, b)): Data<(i64, i64)>| async move {
            if b == 0 {
                return Err(HandlerError::new("division_by_zero", "b is 0"));
            }
            Ok(a / b)
        })
        .on("ping", || async {});
    let (_handle, _events, addr) = start_with(builder).await;
    let (mut client, _) = connected(addr).await;

    client.send(json!({"event":"math:add","data":{"a":2,"b":3},"id":1})).await;
    assert_eq!(client.recv().await, json!({"event":"reply","id":1,"data":5}));
    client.send(json!({"event":"math:add","data":{"a":"two"},"id":"x"})).await;
    let bad = client.recv().await;
    assert_eq!((bad["event"].as_str(), bad["id"].as_str()), (Some("error"), Some("x")));
    assert_eq!(bad["data"]["code"], "invalid_data");
    client.send(json!({"event":"math:div","data":[1,0],"id":2})).await;
    assert_eq!(
        client.recv().await,
        json!({"event":"error","id":2,"data":{"code":"division_by_zero","message":"b is 0"}})
    );
    client.send(json!({"event":"ping","id":3})).await;
    assert_eq!(client.recv().await, json!({"event":"reply","id":3}), "a reply without data");
    client.send(json!({"event":"nobody:handles","id":4})).await;
    let unknown = client.recv().await;
    assert_eq!(
        (unknown["id"].as_i64(), unknown["data"]["code"].as_str()),
        (Some(4), Some("unknown_event"))
    );
    client.send(json!({"event":"ping"})).await; // no id: no answer
    client.expect_nothing_pending().await;
}

#[tokio::test]
async fn patterns_bind_parameters_the_most_specific_wins_and_the_fallback_takes_the_rest() {
    let builder = Roomcast::builder()
        .on("game/:type/:action", |params: Params| async move {
            Ok(format!("{}:{}", params.get("type").unwrap(), params.get("action").unwrap()))
        })
        .on("game/chess/resign", || async { Ok("resigned") })
        .fallback(|EventName(name): EventName| async move { Ok(format!("fallback {name}")) });
    let (_handle, _events, addr) = start_with(builder).await;
    let (mut client, _) = connected(addr).await;
    for (event, answer) in [
        ("game/go/move", "go:move"),
        ("game/chess/resign", "resigned"),
        ("game/chess", "fallback game/chess"),
        ("chat", "fallback chat"),
    ] {
        client.send(json!({"event":event,"id":event})).await;
        assert_eq!(client.recv().await["data"], answer, "{event}");
    }
}

#[tokio::test]
async fn one_connections_events_run_in_order_and_a_slow_handler_delays_nobody_else() {
    let gate = Arc::new(Notify::new());
    let builder = Roomcast::builder().state(gate.clone()).on(
        "work",
        |Data(n): Data<u32>, State(gate): State<Arc<Notify>>| async move {
            if n == 0 {
                gate.notified().await; // the first event waits until the test lets it go
            }
            Ok(n)
        },
    );
    let (_handle, _events, addr) = start_with(builder).await;
    let (mut slow, _) = connected(addr).await;
    let (mut other, _) = connected(addr).await;
    for n in 0..3 {
        slow.send(json!({"event":"work","data":n,"id":n})).await;
    }
    other.send(json!({"event":"work","data":7,"id":7})).await;
    assert_eq!(other.recv().await["data"], 7, "not held up by the other connection's handler");
    gate.notify_one();
    for n in 0..3 {
        assert_eq!(slow.recv().await["id"], n, "in the order they were sent");
    }
}

#[tokio::test]
async fn a_panicking_handler_gets_its_client_an_internal_error_and_the_server_lives() {
    let builder = Roomcast::builder()
        .on("boom", || async {
            if true {
                panic!("a bug in the application");
            }
        })
        .on("ok", || async { Ok(true) });
    let (_handle, _events, addr) = start_with(builder).await;
    let (mut client, _) = connected(addr).await;
    client.send(json!({"event":"boom","id":1})).await;
    let error = client.recv().await;
    assert_eq!((error["id"].as_i64(), error["data"]["code"].as_str()), (Some(1), Some("internal")));
    client.send(json!({"event":"ok","id":2})).await;
    assert_eq!(client.recv().await, json!({"event":"reply","id":2,"data":true}));
    let (mut fresh, _) = connected(addr).await;
    fresh.send(json!({"event":"ok","id":3})).await;
    assert_eq!(fresh.recv().await["data"], true);
}

#[tokio::test]
async fn on_connect_reads_the_request_refuses_with_a_status_and_admits_users_into_rooms() {
    let builder = Roomcast::builder()
        .on_connect(|request: UpgradeRequest| async move {
            if request.path() == "/banned" {
                return Err(Refuse::close(4003, "banned"));
            }
            let Some(room) = request.path().strip_prefix("/room/") else {
                return Err(Refuse::status(404, "no such room"));
            };
            let admit =
                Admit::new().join(room).metadata(&json!({"via": request.query_param("via")}));
            match request.cookie("session") {
                Some("ann-secret") => Ok(admit.user("ann")),
                Some(_) => Err(Refuse::unauthorized("bad session")),
                None => Ok(admit),
            }
        })
        .on("whoami", |socket: Socket| async move {
            let info = socket.info().await?;
            Ok(json!({
                "user": socket.user_id(),
                "rooms": info.rooms,
                "path": socket.request().map(|r| r.path().to_owned()),
                "peer": socket.request().and_then(|r| r.peer()).is_some(),
                "metadata": info.metadata.map(|m| serde_json::from_str::<Value>(m.get()).unwrap()),
            }))
        });
    let (_handle, _events, addr) = start_with(builder).await;

    assert_eq!(connect_to(addr, "/elsewhere", &[]).await.err(), Some(404));
    let mut banned = connect_to(addr, "/banned", &[]).await.unwrap();
    assert_eq!(banned.close_code().await, 4003, "closed after the upgrade, before any frame");
    assert_eq!(
        connect_to(addr, "/room/lobby", &[("cookie", "session=forged")]).await.err(),
        Some(401)
    );

    let mut ann =
        connect_to(addr, "/room/lobby?via=web", &[("cookie", "theme=dark; session=ann-secret")])
            .await
            .unwrap();
    let connected = ann.recv().await;
    assert_eq!(connected["data"]["userId"], "ann", "authenticated at the upgrade");
    assert_eq!(ann.recv().await, json!({"event":"joined","data":{"rooms":["lobby"]}}));
    ann.send(json!({"event":"whoami","id":1})).await;
    assert_eq!(
        ann.recv().await["data"],
        json!({"user":"ann","rooms":["lobby"],"path":"/room/lobby","peer":true,"metadata":{"via":"web"}})
    );
}

/// The next line `seen`, within [`PATIENCE`].
async fn next(seen: &mut mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(PATIENCE, seen.recv()).await.unwrap().unwrap()
}

#[tokio::test]
async fn on_disconnect_runs_after_the_connections_handlers_with_the_reason() {
    let (seen_tx, mut seen) = mpsc::unbounded_channel::<String>();
    let order = seen_tx.clone();
    // The handler is still running when the socket goes: it waits for the test's word, given
    // only once the hub has dropped the connection.
    let gate = Arc::new(Notify::new());
    let held = gate.clone();
    let builder = Roomcast::builder()
        .on("slow", move || {
            let (order, held) = (order.clone(), held.clone());
            async move {
                let _ = order.send("started".into());
                held.notified().await;
                let _ = order.send("handler".into());
            }
        })
        .on_disconnect(move |socket: Socket, reason: DisconnectReason| {
            let seen = seen_tx.clone();
            async move {
                let _ = seen.send(format!("gone {} {reason:?}", socket.id()));
            }
        });
    let (handle, _events, addr) = start_with(builder).await;
    let (mut client, id) = connected(addr).await;
    client.send(json!({"event":"slow"})).await;
    assert_eq!(next(&mut seen).await, "started");
    client.ws.close(None).await.unwrap();
    let conn = id.parse().unwrap();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while handle.connection(conn).await.unwrap().is_some() {
        assert!(tokio::time::Instant::now() < deadline, "the hub never dropped the connection");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    gate.notify_one();
    assert_eq!(next(&mut seen).await, "handler", "on_disconnect waited for the handler");
    assert_eq!(next(&mut seen).await, format!("gone {id} Gone"));
}

#[tokio::test]
async fn a_client_that_outruns_its_handlers_is_closed_with_4009_and_others_are_served() {
    let gate = Arc::new(Notify::new());
    // Without a rate limit (whose burst the queue would otherwise be raised to).
    let hub = HubConfig { rate_limit: None, ..HubConfig::default() };
    let options = Options { hub, max_pending_events: 2, ..Options::default() };
    let builder = Roomcast::builder()
        .options(options)
        .state(gate.clone())
        .on("stuck", |State(gate): State<Arc<Notify>>| async move { gate.notified().await })
        .on("ok", || async { Ok(1) });
    let (handle, _events, addr) = start_with(builder).await;
    let (mut flooder, _) = connected(addr).await;
    for _ in 0..6 {
        flooder.send(json!({"event":"stuck"})).await;
    }
    assert_eq!(flooder.close_code().await, 4009);
    let (mut other, _) = connected(addr).await;
    other.send(json!({"event":"ok","id":1})).await;
    assert_eq!(other.recv().await["data"], 1);
    assert_eq!(handle.metrics().await.unwrap().closes().get(&4009), Some(&1));
    gate.notify_waiters();
}

#[tokio::test]
async fn rooms_exceptions_and_metadata_from_handlers() {
    let builder = Roomcast::builder()
        .on("enter", |socket: Socket, Data(rooms): Data<Vec<String>>| async move {
            for room in &rooms {
                socket.join(room).await?;
            }
            Ok(())
        })
        .on("say", |socket: Socket, Data(text): Data<String>| async move {
            socket.to("a").to("b").emit("said", &text).await?; // the sender excepted
            Ok(())
        })
        .on("role", |socket: Socket, Data(role): Data<String>| async move {
            socket.set_metadata(&json!({"userType": role})).await?;
            Ok(())
        })
        .on("players", |socket: Socket| async move {
            let filter = MetadataFilter::new().field("userType", "player");
            let found = socket.handle().connections_matching(filter).await?;
            Ok(found.len())
        });
    let (handle, _events, addr) = start_with(builder).await;
    let (mut speaker, _) = connected(addr).await;
    let (mut both, both_id) = connected(addr).await;
    let (mut only_b, _) = connected(addr).await;
    for (client, rooms) in [
        (&mut speaker, json!(["a", "b"])),
        (&mut both, json!(["a", "b"])),
        (&mut only_b, json!(["b"])),
    ] {
        client.send(json!({"event":"enter","data":rooms,"id":"e"})).await;
        loop {
            if client.recv().await["id"] == "e" {
                break;
            }
        }
    }
    speaker.send(json!({"event":"say","data":"hello"})).await;
    assert_eq!(
        both.recv().await,
        json!({"event":"said","data":"hello"}),
        "once, though in both rooms"
    );
    assert_eq!(only_b.recv().await, json!({"event":"said","data":"hello"}));
    both.expect_nothing_pending().await;
    speaker.expect_nothing_pending().await;

    handle.to("b").except_room("a").emit("b-only", &1).await.unwrap();
    assert_eq!(only_b.recv().await["event"], "b-only");
    both.expect_nothing_pending().await;

    both.send(json!({"event":"role","data":"player","id":1})).await;
    assert_eq!(both.recv().await["id"], 1);
    only_b.send(json!({"event":"role","data":"viewer","id":1})).await;
    assert_eq!(only_b.recv().await["id"], 1);
    speaker.send(json!({"event":"players","id":2})).await;
    assert_eq!(speaker.recv().await["data"], 1);
    let info = handle.connection(both_id.parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(info.rooms, ["a", "b"]);

    let both_conn = both_id.parse().unwrap();
    handle.send_to_conns(vec![both_conn, both_conn], "listed", &2).await.unwrap();
    assert_eq!(both.recv().await, json!({"event":"listed","data":2}));
    both.expect_nothing_pending().await;
}

#[tokio::test]
async fn the_event_stream_refuses_messages_it_has_no_room_for_with_4009_and_keeps_every_disconnect()
{
    let options = Options { event_queue: 3, ..Options::default() };
    let (handle, mut events, addr) = start_with(Roomcast::builder().options(options)).await;
    let (mut client, id) = connected(addr).await; // Connected: 1 waiting
    for n in 0..5 {
        client.send(json!({"event":"note","data":n})).await;
    }
    assert_eq!(client.close_code().await, 4009);
    let snapshot = handle.metrics().await.unwrap();
    assert!(snapshot.events_dropped() >= 1);
    // Every event up to the disconnect, which is the connection's last: the stream keeps its
    // order, so nothing of this connection can come after it.
    let mut kinds: Vec<String> = Vec::new();
    while kinds.last().map(String::as_str) != Some("disconnected") {
        let event = tokio::time::timeout(PATIENCE, events.recv()).await.unwrap().unwrap();
        kinds.push(match event {
            Event::Connected { .. } => "connected".to_owned(),
            Event::Message { .. } => "message".to_owned(),
            Event::Disconnected { conn, reason } => {
                assert_eq!(conn.to_string(), id);
                assert_eq!(reason, DisconnectReason::Closed(CloseCode::OVERLOADED));
                "disconnected".to_owned()
            }
            other => format!("{other:?}"),
        });
    }
    let after = futures_util::FutureExt::now_or_never(events.recv());
    assert!(after.is_none(), "nothing after the disconnect: {kinds:?} then {after:?}");
    assert_eq!(kinds.first().map(String::as_str), Some("connected"));
    assert_eq!(kinds.iter().filter(|k| *k == "message").count(), 2, "the messages that fit");
    let _ = client.ws.next().await;
}

#[tokio::test]
async fn a_burst_the_rate_limit_allows_is_answered_in_full_and_never_closed_with_4009() {
    let gate = Arc::new(Notify::new());
    let builder = Roomcast::builder()
        .state(gate.clone())
        // The first request holds the lane until the whole burst is queued behind it.
        .on("first", |State(gate): State<Arc<Notify>>| async move {
            gate.notified().await;
            Ok(0)
        })
        .on("next", |Data(n): Data<u32>| async move { Ok(n) });
    let (_handle, _events, addr) = start_with(builder).await;
    let (mut client, _) = connected(addr).await;
    client.send(json!({"event":"first","id":0})).await;
    // 199 more: the default burst is 200 frames.
    for n in 1..200u32 {
        client.send(json!({"event":"next","data":n,"id":n})).await;
    }
    gate.notify_one();
    for n in 0..200u32 {
        let answer = client.recv().await;
        assert_eq!(
            (answer["event"].as_str(), answer["id"].as_u64()),
            (Some("reply"), Some(n.into()))
        );
    }
}

#[tokio::test]
async fn a_handler_join_over_the_room_limit_is_answered_too_many_rooms_without_ids() {
    let options = Options {
        hub: HubConfig { max_rooms_per_conn: 1, ..HubConfig::default() },
        ..Options::default()
    };
    let builder = Roomcast::builder().options(options).on(
        "enter",
        |s: Socket, Data(room): Data<String>| async move {
            s.join(&room).await?;
            Ok(())
        },
    );
    let (_handle, _events, addr) = start_with(builder).await;
    let (mut client, id) = connected(addr).await;
    client.send(json!({"event":"enter","data":"a","id":1})).await;
    assert_eq!(client.recv().await["event"], "joined");
    assert_eq!(client.recv().await["id"], 1);
    client.send(json!({"event":"enter","data":"b","id":2})).await;
    let refused = client.recv().await;
    assert_eq!(refused["event"], "error", "{refused}");
    assert_eq!(refused["id"], 2);
    assert_eq!(refused["data"]["code"], "too_many_rooms");
    assert!(!refused.to_string().contains(&id), "no connection id in the message: {refused}");
}

#[tokio::test]
async fn a_hook_that_admits_an_over_long_user_id_answers_400_naming_the_limit() {
    let builder = Roomcast::builder()
        .on_connect(|_: UpgradeRequest| async move { Ok(Admit::new().user("u".repeat(300))) });
    let (_handle, _events, addr) = start_with(builder).await;
    let stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("ws://{addr}/ws").into_client_request().unwrap();
    match tokio_tungstenite::client_async(request, stream).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 400);
            let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default())
                .into_owned();
            assert!(body.contains("256"), "{body}");
        }
        other => panic!("expected 400, got {other:?}"),
    }
}

#[tokio::test]
async fn handlers_infer_their_result_without_type_annotations() {
    let builder = Roomcast::builder()
        .default_room_policy(roomcast_core::RoomPolicy::open())
        .on("enter", |s: Socket| async move {
            s.join("hall").await?;
            Ok(())
        })
        .on("double", |Data(n): Data<u32>| async move { Ok(n * 2) })
        .on("refuse", || async move {
            if true {
                return Err(HandlerError::new("nope", "refused"));
            }
            Ok("never")
        });
    let (_handle, _events, addr) = start_with(builder).await;
    let (mut client, _) = connected(addr).await;
    client.send(json!({"event":"enter","id":1})).await;
    assert_eq!(client.recv().await["event"], "joined");
    assert_eq!(client.recv().await, json!({"event":"reply","id":1}));
    client.send(json!({"event":"double","data":21,"id":2})).await;
    assert_eq!(client.recv().await, json!({"event":"reply","id":2,"data":42}));
    client.send(json!({"event":"refuse","id":3})).await;
    assert_eq!(client.recv().await["data"]["code"], "nope");
}

#[tokio::test]
async fn sends_report_how_many_connections_of_this_instance_they_reached() {
    use roomcast_tokio::roomcast_core::{ConnId, Exclude, Sent};
    let (handle, _events, addr) = start_with(Roomcast::builder()).await;
    let (_a, a) = connected(addr).await;
    let (_b, b) = connected(addr).await;
    let (a, b): (ConnId, ConnId) = (a.parse().unwrap(), b.parse().unwrap());
    for conn in [a, b] {
        handle.join(conn, "room").await.unwrap();
    }
    let nobody = Sent { local: 0, published: false, offset: None };
    assert_eq!(
        handle.send(a, "x", &()).await.unwrap(),
        Sent { local: 1, published: false, offset: None }
    );
    let ghost = ConnId::from_u128(7);
    assert_eq!(handle.send(ghost, "x", &()).await.unwrap(), nobody, "an unknown connection");
    assert!(handle.send_to_user("ghost", "x", &()).await.unwrap().reached_nobody());
    let sent = handle.broadcast_room("room", "x", &(), Exclude::conn(a)).await.unwrap();
    assert_eq!(sent, Sent { local: 1, published: false, offset: None });
    assert_eq!(handle.broadcast_room("empty", "x", &(), Exclude::none()).await.unwrap(), nobody);
    assert_eq!(handle.broadcast_all("x", &(), Exclude::none()).await.unwrap().local, 2);
}

#[derive(Clone, Debug, PartialEq)]
struct Player {
    name: String,
    score: u32,
}

#[tokio::test]
async fn on_connected_hands_over_the_live_socket_after_its_rooms_and_state_stays_with_the_connection()
 {
    let builder = Roomcast::builder()
        .on_connect(|_: UpgradeRequest| async move { Ok(Admit::new().join("lobby")) })
        .on_connected(|socket: Socket| async move {
            // Admitted, told `connected`, and in the rooms on_connect named.
            let rooms = socket.rooms().await.unwrap();
            socket.extensions().insert(Player { name: "ann".into(), score: 0 });
            socket.emit("welcome", &json!({ "rooms": rooms })).await.unwrap();
        })
        .on("score", |s: Socket, Data(points): Data<u32>| async move {
            s.extensions().update(|p: &mut Player| p.score += points);
            Ok(())
        })
        .on("me", |Extension(player): Extension<Player>| async move {
            Ok(json!({ "name": player.name, "score": player.score }))
        })
        .on("nothing", |missing: Option<Extension<String>>| async move { Ok(missing.is_none()) });
    let (_handle, _events, addr) = start_with(builder).await;
    let (mut client, _) = connected(addr).await;
    assert_eq!(client.recv().await["event"], "joined");
    assert_eq!(client.recv().await, json!({"event":"welcome","data":{"rooms":["lobby"]}}));
    for n in [3, 4] {
        client.send(json!({"event":"score","data":n})).await;
    }
    client.send(json!({"event":"me","id":1})).await;
    assert_eq!(client.recv().await["data"], json!({"name":"ann","score":7}));
    client.send(json!({"event":"nothing","id":2})).await;
    assert_eq!(client.recv().await["data"], true);
    // Another connection has its own.
    let (mut other, _) = connected(addr).await;
    assert_eq!(other.recv().await["event"], "joined");
    assert_eq!(other.recv().await["event"], "welcome");
    other.send(json!({"event":"score","data":1})).await;
    other.send(json!({"event":"me","id":3})).await;
    assert_eq!(other.recv().await["data"]["score"], 1);
}

#[tokio::test]
async fn a_handler_asking_for_state_the_connection_does_not_hold_is_answered_missing_extension() {
    let builder = Roomcast::builder()
        .on("me", |Extension(player): Extension<Player>| async move { Ok(player.score) });
    let (_handle, _events, addr) = start_with(builder).await;
    let (mut client, _) = connected(addr).await;
    client.send(json!({"event":"me","id":1})).await;
    let refused = client.recv().await;
    assert_eq!(
        (refused["id"].as_u64(), refused["data"]["code"].as_str()),
        (Some(1), Some("missing_extension"))
    );
}

#[tokio::test]
async fn a_frame_to_a_client_may_carry_a_path_it_routes_on() {
    let builder = Roomcast::builder().default_room_policy(roomcast_core::RoomPolicy::open()).on(
        "ping",
        |s: Socket| async move {
            s.emit_path("pong", "/game/42", &1).await?;
            s.to("r").path("/game/42/moves").emit("move", &"e4").await?;
            Ok(())
        },
    );
    let (handle, _events, addr) = start_with(builder).await;
    let (mut a, a_id) = connected(addr).await;
    let (mut b, _) = connected(addr).await;
    b.send(json!({"event":"join","data":{"rooms":["r"]},"id":1})).await;
    assert_eq!(b.recv().await["event"], "joined");
    a.send(json!({"event":"ping"})).await;
    assert_eq!(a.recv().await, json!({"event":"pong","path":"/game/42","data":1}));
    assert_eq!(
        b.recv().await,
        json!({"event":"move","room":"r","path":"/game/42/moves","data":"e4"})
    );
    // A path outside 1..=256 bytes is the application's error, not a frame.
    let conn = a_id.parse().unwrap();
    assert!(handle.send_path(conn, "x", "", &()).await.is_err());
    assert!(handle.send_path(conn, "x", &"p".repeat(257), &()).await.is_err());
}

//! roomcast-client (the Rust client) against the real `roomcast` binary: rooms and publish,
//! requests through a real backend, reconnection after `kill -9` with rejoin, resync and the
//! offline buffer, token refresh, and the close-code policy.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use roomcast_client::{Backoff, Client, Error, Event, Events, PublishOptions};
use roomcast_tests::client::PATIENCE;
use roomcast_tests::server::Server;
use serde_json::{Value, json};
use tokio::sync::Notify;

fn server(args: &[&str]) -> Server {
    let program = Path::new(env!("CARGO_BIN_EXE_roomcast"));
    tokio::task::block_in_place(|| Server::spawn(program, args, &[]))
}

fn url(server: &Server) -> String {
    format!("ws://{}/ws", server.addr)
}

fn fast() -> Backoff {
    Backoff {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(200),
        ..Backoff::default()
    }
}

fn client(server: &Server) -> (Client, Events) {
    Client::builder(url(server)).backoff(fast()).connect()
}

/// The next event `want` accepts, skipping the others.
async fn until<T>(events: &mut Events, mut want: impl FnMut(&Event) -> Option<T>) -> T {
    let found = async {
        loop {
            let event = events.recv().await.expect("the client is running");
            if let Some(found) = want(&event) {
                return found;
            }
        }
    };
    tokio::time::timeout(PATIENCE, found).await.expect("the event in time")
}

async fn connected(events: &mut Events) -> (String, Option<String>, bool) {
    until(events, |e| match e {
        Event::Connected { id, user_id, reconnected } => {
            Some((id.clone(), user_id.clone(), *reconnected))
        }
        _ => None,
    })
    .await
}

async fn disconnected(events: &mut Events) -> (u16, bool) {
    until(events, |e| match e {
        Event::Disconnected { code, will_reconnect, .. } => Some((*code, *will_reconnect)),
        _ => None,
    })
    .await
}

async fn message(events: &mut Events, event: &str) -> (Option<String>, Value) {
    until(events, |e| match e {
        Event::Message(m) if m.event == event => Some((m.room.clone(), m.data().unwrap())),
        _ => None,
    })
    .await
}

fn token(claims: Value) -> String {
    let key = jsonwebtoken::EncodingKey::from_secret(b"client-secret");
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap()
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// An RPC backend: `getProfile` answers, `fail` errs, `slow` answers after 10 s (and notifies
/// the returned `Notify` when it arrives).
async fn backend() -> (String, Arc<Notify>) {
    async fn rpc(State(arrived): State<Arc<Notify>>, body: Bytes) -> Response {
        let call: Value = serde_json::from_slice(&body).unwrap();
        let answer = match call["event"].as_str().unwrap_or("") {
            "getProfile" => json!({"result": {"user": call["userId"], "asked": call["data"]}}),
            "fail" => json!({"error": {"code": "not_found", "message": "no such profile"}}),
            "slow" => {
                arrived.notify_one();
                tokio::time::sleep(Duration::from_secs(10)).await;
                json!({"result": "late"})
            }
            _ => json!({"result": null}),
        };
        answer.to_string().into_response()
    }
    let arrived = Arc::new(Notify::new());
    let app = Router::new().route("/rpc", post(rpc)).with_state(arrived.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/rpc"), arrived)
}

#[tokio::test(flavor = "multi_thread")]
async fn clients_join_publish_and_hear_each_other_and_a_refused_room_is_the_servers_error() {
    let server = server(&["--max-room-name-bytes", "8"]);
    let (a, mut a_events) = client(&server);
    let (b, mut b_events) = client(&server);
    connected(&mut a_events).await;
    connected(&mut b_events).await;
    assert_eq!(a.join(["lobby"]).await.unwrap(), ["lobby"]);
    assert_eq!(b.join(["lobby", "news"]).await.unwrap(), ["lobby", "news"]);
    a.publish("lobby", "chat", &json!({"text": "hi"})).await.unwrap();
    assert_eq!(message(&mut b_events, "chat").await, (Some("lobby".into()), json!({"text":"hi"})));
    assert_eq!(b.leave(["news"]).await.unwrap(), ["lobby"]);
    assert_eq!(b.rooms(), ["lobby"]);
    assert_eq!(a.presence("lobby").await.unwrap().len(), 2);

    let refused = a.join(["ok", "much-too-long"]).await.unwrap_err();
    let Error::Server(error) = refused else { panic!("{refused:?}") };
    assert_eq!(
        (error.code.as_str(), error.room.as_deref()),
        ("invalid_room", Some("much-too-long"))
    );
    assert_eq!(a.rooms(), ["lobby", "ok"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_get_the_backends_result_or_error_and_time_out() {
    let server = server(&["--proxy-rpc", &backend().await.0]);
    let (a, mut events) = client(&server);
    connected(&mut events).await;
    let profile: Value = a.request("getProfile", &json!({"id": 7})).await.unwrap();
    assert_eq!(profile, json!({"user": null, "asked": {"id": 7}}));
    let failed = a.request::<Value, _>("fail", &()).await.unwrap_err();
    assert!(matches!(&failed, Error::Server(e) if e.code == "not_found"), "{failed:?}");
    let slow = a.request_timeout::<Value, _>("slow", &(), Duration::from_millis(100)).await;
    assert!(matches!(slow, Err(Error::Timeout)), "{slow:?}");

    let plain = self::server(&[]);
    let (b, mut events) = client(&plain);
    connected(&mut events).await;
    let unknown = b.request::<Value, _>("anything", &()).await.unwrap_err();
    assert!(matches!(&unknown, Error::Server(e) if e.code == "unknown_event"), "{unknown:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn after_kill_and_restart_clients_reconnect_rejoin_resync_and_send_what_they_kept() {
    let (rpc, slow_arrived) = backend().await;
    let mut server = server(&["--proxy-rpc", &rpc]);
    let (a, mut a_events) = client(&server);
    let (b, mut b_events) = client(&server);
    connected(&mut a_events).await;
    connected(&mut b_events).await;
    a.join(["lobby"]).await.unwrap();
    b.join(["lobby"]).await.unwrap();
    let in_flight = {
        let a = a.clone();
        tokio::spawn(async move { a.request::<Value, _>("slow", &()).await })
    };
    slow_arrived.notified().await; // the request is out, and waits at the backend
    tokio::task::block_in_place(|| server.kill());
    assert!(matches!(in_flight.await.unwrap(), Err(Error::Disconnected)));
    assert_eq!(disconnected(&mut a_events).await, (1006, true));
    assert_eq!(disconnected(&mut b_events).await, (1006, true));
    assert!(!a.is_connected());
    assert!(matches!(a.request::<Value, _>("getProfile", &()).await, Err(Error::Disconnected)));
    // Kept offline; sent after the rejoin, so the sender hears its own message.
    let own = PublishOptions { exclude_self: false, ..PublishOptions::default() };
    a.publish_with("lobby", "while-down", &1, own).await.unwrap();

    tokio::task::block_in_place(|| server.restart());
    let (_, _, reconnected) = connected(&mut a_events).await;
    assert!(reconnected);
    let resync = |e: &Event| match e {
        Event::Resync { room, reason } => Some((room.clone(), reason.clone())),
        _ => None,
    };
    assert_eq!(until(&mut a_events, resync).await, ("lobby".into(), "reconnected".into()));
    assert_eq!(until(&mut b_events, resync).await, ("lobby".into(), "reconnected".into()));
    assert_eq!(message(&mut a_events, "while-down").await.1, json!(1));
    a.publish("lobby", "chat", &"after the restart").await.unwrap();
    assert_eq!(message(&mut b_events, "chat").await.1, json!("after the restart"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expiring_token_is_refreshed_from_the_token_source_and_the_connection_stays() {
    // Notice 2 s before the end: the refresh has 2 s to arrive, however busy the machine.
    let server = server(&["--jwt-secret", "client-secret", "--token-refresh-notice", "2s"]);
    // Two tokens that live 4 s, then a long one: the connection outlives two expiries.
    let expiries = Arc::new(std::sync::Mutex::new(Vec::new()));
    let issued = expiries.clone();
    let (a, mut events) = Client::builder(url(&server))
        .backoff(fast())
        .token_source(move || {
            let mut issued = issued.lock().unwrap();
            let exp = now() + if issued.len() < 2 { 4 } else { 3600 };
            issued.push(exp);
            async move { Some(token(json!({"sub": "ann", "exp": exp}))) }
        })
        .connect();
    let (id, user, _) = connected(&mut events).await;
    assert_eq!(user.as_deref(), Some("ann"));
    // Every event until both short tokens were noticed: no disconnection among them.
    let mut seen = Vec::new();
    while seen.iter().filter(|e| matches!(e, Event::TokenExpiring { .. })).count() < 2 {
        let event = tokio::time::timeout(PATIENCE, events.recv()).await.unwrap().unwrap();
        seen.push(event);
    }
    // Past the second token's end by the server's clock (whole seconds)...
    let second_end = expiries.lock().unwrap()[1];
    while now() <= second_end {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // ...a request answered: the hub expires what is due before it handles an input, so an
    // unrefreshed connection would have been closed (4004) instead.
    assert_eq!(a.join(["still-here"]).await.unwrap(), ["still-here"]);
    assert_eq!(expiries.lock().unwrap().len(), 3, "one token per expiry, and the first");
    assert_eq!(a.id().as_deref(), Some(id.as_str()), "the same connection throughout");
    while let Some(Some(event)) = futures_util::FutureExt::now_or_never(events.recv()) {
        seen.push(event);
    }
    assert!(
        !seen.iter().any(|e| matches!(e, Event::Disconnected { .. } | Event::Connected { .. })),
        "never disconnected: {seen:?}"
    );
    let fresh = token(json!({"sub": "ann", "exp": now() + 60}));
    let lasts = a.refresh(&fresh).await.unwrap().unwrap();
    assert!((50..=60).contains(&lasts), "{lasts}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_token_or_an_expired_static_one_stops_and_a_new_token_retries() {
    let server = server(&["--jwt-secret", "client-secret"]);
    let (_refused, mut events) =
        Client::builder(url(&server)).backoff(fast()).token("nope").connect();
    assert_eq!(disconnected(&mut events).await, (4003, false));

    let calls = Arc::new(AtomicUsize::new(0));
    let count = calls.clone();
    let (_second, mut events) = Client::builder(url(&server))
        .backoff(fast())
        .token_source(move || {
            let n = count.fetch_add(1, Ordering::SeqCst);
            async move { Some(if n == 0 { "bad".to_owned() } else { token(json!({"sub": "bob"})) }) }
        })
        .connect();
    assert_eq!(disconnected(&mut events).await, (4003, true));
    assert_eq!(connected(&mut events).await.1.as_deref(), Some("bob"));

    // Valid for 2-3 s (whole seconds): long enough to be accepted on a busy machine, then 4004.
    let short = token(json!({"sub": "cy", "exp": now() + 3}));
    let (_expiring, mut events) =
        Client::builder(url(&server)).backoff(fast()).token(short).connect();
    assert_eq!(disconnected(&mut events).await, (4004, false));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_servers_own_disconnect_is_final_and_the_offline_buffer_is_bounded() {
    let mut server = server(&["--api-key", "k"]);
    let (_a, mut events) = client(&server);
    let (id, _, _) = connected(&mut events).await;
    let path = format!("/api/connections/{id}/disconnect");
    let answer = tokio::task::block_in_place(|| {
        roomcast_tests::http::call(server.addr, "POST", &path, Some("k"), None)
    })
    .unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(disconnected(&mut events).await, (1000, false));
    assert!(events.recv().await.is_none(), "the client stopped");

    let slow = Backoff {
        initial: Duration::from_secs(60),
        max: Duration::from_secs(60),
        ..Backoff::default()
    };
    let (b, mut events) = Client::builder(url(&server)).backoff(slow).buffer(2).connect();
    connected(&mut events).await;
    tokio::task::block_in_place(|| server.kill());
    disconnected(&mut events).await;
    b.publish("r", "e", &1).await.unwrap();
    b.emit("e", &2).await.unwrap();
    assert!(matches!(b.publish("r", "e", &3).await, Err(Error::BufferFull)));
    b.close();
    assert!(matches!(b.emit("e", &4).await, Err(Error::Closed)));
}

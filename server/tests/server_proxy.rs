//! `roomcast serve --proxy-authenticate URL --proxy-rpc URL`: a real backend (an axum server in
//! this test) decides authentication and answers clients' own events; a backend that times out,
//! fails, answers garbage or is down gives the documented close or error, and the other
//! connections do not notice.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use roomcast_tests::client::Client;
use roomcast_tests::http::get;
use roomcast_tests::server::Server;
use serde_json::{Value, json};

/// What the backend was sent.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Value>>>);

impl Seen {
    fn all(&self) -> Vec<Value> {
        self.0.lock().unwrap().clone()
    }
}

async fn authenticate(State(seen): State<Seen>, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap();
    seen.0.lock().unwrap().push(body.clone());
    match body["credentials"]["token"].as_str().unwrap_or("") {
        "bad" => json(json!({"error":{"code":"denied","message":"no such user"}})),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            json(json!({"userId":"late"}))
        }
        "boom" => (StatusCode::INTERNAL_SERVER_ERROR, "oops").into_response(),
        "garbage" => "<html>not json</html>".into_response(),
        user => json(json!({"userId": user, "info": {"plan": "pro"}, "rooms": ["welcome"]})),
    }
}

async fn rpc(State(seen): State<Seen>, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap();
    seen.0.lock().unwrap().push(body.clone());
    match body["event"].as_str().unwrap_or("") {
        "getProfile" => json(json!({"result": {"user": body["userId"], "asked": body["data"]}})),
        "forbidden" => json(json!({"error": {"code": "not_allowed", "message": "nope"}})),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            json(json!({"result": "late"}))
        }
        "boom" => (StatusCode::INTERNAL_SERVER_ERROR, "oops").into_response(),
        "garbage" => "{{{".into_response(),
        _ => json(json!({"result": null})),
    }
}

async fn publish(State(seen): State<Seen>, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap();
    seen.0.lock().unwrap().push(body.clone());
    match body["room"].as_str().unwrap_or("") {
        "closed" => json(json!({"error":{"code":"read_only","message":"this room is read only"}})),
        _ => json(json!({})),
    }
}

fn json(value: Value) -> Response {
    ([("content-type", "application/json")], value.to_string()).into_response()
}

/// The backend on a free loopback port.
async fn backend() -> (SocketAddr, Seen) {
    let seen = Seen::default();
    let app = Router::new()
        .route("/auth", post(authenticate))
        .route("/rpc", post(rpc))
        .route("/publish", post(publish))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, seen)
}

fn server(backend: SocketAddr) -> Server {
    let auth = format!("http://{backend}/auth");
    let rpc = format!("http://{backend}/rpc");
    let args = ["--proxy-authenticate", &auth, "--proxy-rpc", &rpc, "--proxy-timeout", "500ms"];
    let program = Path::new(env!("CARGO_BIN_EXE_roomcast"));
    tokio::task::block_in_place(|| Server::spawn(program, &args, &[]))
}

async fn login(addr: SocketAddr, token: &str) -> Client {
    let mut client = Client::connect(addr).await;
    client.send(json!({"event":"authenticate","data":{"token":token}})).await;
    client
}

#[tokio::test(flavor = "multi_thread")]
async fn the_backend_admits_a_user_with_metadata_and_rooms_and_sees_headers_and_peer() {
    let (backend, seen) = backend().await;
    let server = server(backend);
    let mut ann = login(server.addr, "ann").await;
    let connected = ann.recv().await;
    assert_eq!(connected["event"], "connected", "{connected}");
    assert_eq!(connected["data"]["userId"], "ann");
    assert_eq!(ann.recv().await["event"], "joined", "the backend's rooms are joined");

    let asked = &seen.all()[0];
    assert_eq!(asked["conn"], connected["data"]["id"]);
    assert_eq!(asked["credentials"], json!({"token":"ann"}));
    assert!(asked["peer"].as_str().unwrap().starts_with("127.0.0.1:"), "{asked}");
    assert!(asked["headers"].is_object(), "{asked}");

    ann.send(json!({"event":"getProfile","data":{"fields":["name"]},"id":"p1"})).await;
    let reply = ann.recv().await;
    assert_eq!(
        reply,
        json!({"event":"reply","id":"p1","data":{"user":"ann","asked":{"fields":["name"]}}})
    );
    let rpc = seen.all().last().unwrap().clone();
    assert_eq!(rpc["info"], json!({"plan":"pro"}), "the connection's metadata goes along");
    assert_eq!(rpc["conn"], connected["data"]["id"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn authentication_refused_down_slow_failing_or_garbled_closes_with_its_documented_code() {
    let (backend, _) = backend().await;
    let server = server(backend);
    let mut bystander = login(server.addr, "bob").await;
    assert_eq!(bystander.recv().await["event"], "connected");
    assert_eq!(bystander.recv().await["event"], "joined");
    for (token, code) in [("bad", 4003), ("slow", 1013), ("boom", 1011), ("garbage", 1011)] {
        let mut client = login(server.addr, token).await;
        let (got, reason) = client.close_frame().await.expect("a close frame");
        assert_eq!(got, code, "{token}: {reason}");
        if token == "bad" {
            assert_eq!(reason, "no such user");
        }
    }
    bystander.expect_nothing_pending().await;

    // The backend gone: unreachable is "try again later".
    let down = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let server = self::server(down);
    let mut client = login(server.addr, "ann").await;
    assert_eq!(client.close_frame().await.map(|c| c.0), Some(1013));
}

#[tokio::test(flavor = "multi_thread")]
async fn rpc_failures_answer_the_request_with_an_error_and_slow_calls_do_not_hold_up_others() {
    let (backend, seen) = backend().await;
    let server = server(backend);
    let mut ann = login(server.addr, "ann").await;
    let mut bob = login(server.addr, "bob").await;
    for client in [&mut ann, &mut bob] {
        assert_eq!(client.recv().await["event"], "connected");
        assert_eq!(client.recv().await["event"], "joined");
    }
    // ann waits on a slow backend; bob is answered meanwhile.
    ann.send(json!({"event":"slow","id":1})).await;
    bob.send(json!({"event":"getProfile","id":2})).await;
    assert_eq!(bob.recv().await["event"], "reply");
    let timeout = ann.recv().await;
    assert_eq!((timeout["event"].as_str(), timeout["id"].as_i64()), (Some("error"), Some(1)));
    assert_eq!(timeout["data"]["code"], "backend_timeout");

    for (event, code) in
        [("forbidden", "not_allowed"), ("boom", "backend_error"), ("garbage", "backend_error")]
    {
        ann.send(json!({"event": event, "id": event})).await;
        let answer = ann.recv().await;
        assert_eq!(answer["event"], "error", "{event}: {answer}");
        assert_eq!(answer["id"], event);
        assert_eq!(answer["data"]["code"], code, "{event}: {answer}");
    }
    let forbidden = seen.all().iter().filter(|b| b["event"] == "forbidden").count();
    assert_eq!(forbidden, 1);

    // Without an id: forwarded, nothing comes back, even when the backend fails.
    ann.send(json!({"event":"notify","data":{"x":1}})).await;
    ann.send(json!({"event":"boom"})).await;
    ann.expect_nothing_pending().await;
    assert!(seen.all().iter().any(|b| b["event"] == "notify" && b["data"] == json!({"x":1})));

    let (_, metrics) = tokio::task::block_in_place(|| get(server.addr, "/metrics")).unwrap();
    assert!(metrics.contains("roomcast_proxy_calls_total{proxy=\"rpc\"}"), "{metrics}");
    assert!(metrics.contains("roomcast_proxy_errors_total{proxy=\"rpc\",reason=\"timeout\"} 1"));
    assert!(
        metrics.contains(
            "roomcast_proxy_duration_seconds_bucket{proxy=\"authenticate\",le=\"+Inf\"} 2"
        )
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rpc_to_a_backend_that_is_down_answers_backend_unavailable() {
    let (backend, _) = backend().await;
    let down = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let auth = format!("http://{backend}/auth");
    let rpc = format!("http://{down}/rpc");
    let program = Path::new(env!("CARGO_BIN_EXE_roomcast"));
    let server = tokio::task::block_in_place(|| {
        Server::spawn(program, &["--proxy-authenticate", &auth, "--proxy-rpc", &rpc], &[])
    });
    let mut ann = login(server.addr, "ann").await;
    assert_eq!(ann.recv().await["event"], "connected");
    assert_eq!(ann.recv().await["event"], "joined");
    ann.send(json!({"event":"getProfile","id":1})).await;
    let answer = ann.recv().await;
    assert_eq!(answer["data"]["code"], "backend_unavailable", "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_publish_proxy_lets_a_publish_through_or_refuses_it_with_the_backends_error() {
    let (backend, seen) = backend().await;
    let auth = format!("http://{backend}/auth");
    let check = format!("http://{backend}/publish");
    let program = Path::new(env!("CARGO_BIN_EXE_roomcast"));
    let server = tokio::task::block_in_place(|| {
        Server::spawn(program, &["--proxy-authenticate", &auth, "--proxy-publish", &check], &[])
    });
    let mut ann = login(server.addr, "ann").await;
    let mut bob = login(server.addr, "bob").await;
    for client in [&mut ann, &mut bob] {
        assert_eq!(client.recv().await["event"], "connected");
        assert_eq!(client.recv().await["event"], "joined");
        client.join(&["open", "closed"]).await;
    }
    let publish = |room: &str| json!({"event":"publish","data":{"room":room,"event":"chat","data":room},"id":room});
    ann.send(publish("open")).await;
    assert_eq!(bob.recv().await, json!({"event":"chat","room":"open","data":"open"}));
    ann.send(publish("closed")).await;
    let refused = ann.recv().await;
    assert_eq!(refused["event"], "error", "{refused}");
    assert_eq!(
        (refused["id"].as_str(), refused["data"]["code"].as_str()),
        (Some("closed"), Some("read_only"))
    );
    bob.expect_nothing_pending().await;
    let asked = seen.all().into_iter().filter(|b| b.get("room").is_some()).count();
    assert_eq!(asked, 2, "each publish asked once");
    let sent = seen.all().into_iter().find(|b| b["room"] == "open").unwrap();
    assert_eq!((sent["userId"].as_str(), sent["event"].as_str()), (Some("ann"), Some("chat")));
    assert_eq!(sent["info"], json!({"plan":"pro"}));
}

//! `roomcast serve --api-key`: a backend publishes, sends and queries over HTTP, against the real
//! binary with real WebSocket clients; bad requests get the documented JSON errors and change
//! nothing.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{EncodingKey, Header, encode};
use roomcast_tests::client::Client;
use roomcast_tests::http::{Answer, call};
use roomcast_tests::server::Server;
use serde_json::{Value, json};

const KEY: &str = "test-api-key";
const SECRET: &str = "test-jwt-secret";

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_roomcast"))
}

fn server(extra: &[&str]) -> Server {
    let mut args = vec!["--api-key", KEY, "--jwt-secret", SECRET, "--rate-limit", "0"];
    args.extend_from_slice(extra);
    Server::spawn(binary(), &args, &[])
}

fn token(user: &str, info: Value) -> String {
    let exp = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() + 3600;
    let claims = json!({"sub": user, "exp": exp, "info": info});
    encode(&Header::default(), &claims, &EncodingKey::from_secret(SECRET.as_bytes())).unwrap()
}

async fn user(server: &Server, name: &str, rooms: &[&str]) -> Client {
    let mut client = Client::authenticated(server.addr, &token(name, json!({"name": name}))).await;
    if !rooms.is_empty() {
        client.join(rooms).await;
    }
    client
}

/// One API call with the right key (blocking I/O, off the runtime's worker).
fn api(server: &Server, method: &str, path: &str, body: Option<Value>) -> Answer {
    let body = body.map(|b| b.to_string());
    raw(server, method, path, Some(KEY), body.as_deref())
}

fn raw(server: &Server, method: &str, path: &str, key: Option<&str>, body: Option<&str>) -> Answer {
    tokio::task::block_in_place(|| call(server.addr, method, path, key, body)).expect("an answer")
}

fn id(client: &Client) -> String {
    client.id.clone().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_http_publish_reaches_exactly_the_room_minus_excluded_connections_and_users() {
    let server = server(&[]);
    let mut ann1 = user(&server, "ann", &["r"]).await;
    let mut ann2 = user(&server, "ann", &["r"]).await;
    let mut bob = user(&server, "bob", &["r"]).await;
    let mut cy = user(&server, "cy", &["r"]).await;
    let mut dan = user(&server, "dan", &[]).await;

    let body = json!({"event":"news","data":{"n":1},"exclude":[id(&bob)],"excludeUsers":["cy"]});
    let answer = api(&server, "POST", "/api/rooms/r/publish", Some(body));
    assert_eq!((answer.status, answer.json()), (200, json!({})), "{}", answer.body);

    let expected = json!({"event":"news","room":"r","data":{"n":1}});
    assert_eq!(ann1.recv().await, expected);
    assert_eq!(ann2.recv().await, expected);
    for client in [&mut ann1, &mut ann2, &mut bob, &mut cy, &mut dan] {
        client.expect_nothing_pending().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sends_reach_a_users_sessions_one_connection_everyone_and_several_rooms_once_each() {
    let server = server(&[]);
    let mut ann1 = user(&server, "ann", &["r"]).await;
    let mut ann2 = user(&server, "ann", &[]).await;
    let mut bob = user(&server, "bob", &["r", "s"]).await;
    let mut cy = user(&server, "cy", &["s"]).await;

    let answer = api(&server, "POST", "/api/users/ann/send", Some(json!({"event":"dm","data":1})));
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(ann1.recv().await, json!({"event":"dm","data":1}));
    assert_eq!(ann2.recv().await, json!({"event":"dm","data":1}));

    let path = format!("/api/connections/{}/send", id(&bob));
    let answer = api(&server, "POST", &path, Some(json!({"event":"ping"})));
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(bob.recv().await, json!({"event":"ping"}));

    let answer = api(
        &server,
        "POST",
        "/api/broadcast",
        Some(json!({"event":"all","data":"x","excludeUsers":["ann"]})),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(bob.recv().await, json!({"event":"all","data":"x"}));
    assert_eq!(cy.recv().await, json!({"event":"all","data":"x"}));

    // bob is in both rooms: once.
    let answer = api(
        &server,
        "POST",
        "/api/publish",
        Some(json!({"rooms":["r","s"],"event":"multi","data":2})),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(ann1.recv().await["event"], "multi");
    assert_eq!(bob.recv().await["event"], "multi");
    assert_eq!(cy.recv().await["event"], "multi");
    for client in [&mut ann1, &mut ann2, &mut bob, &mut cy] {
        client.expect_nothing_pending().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_applies_its_commands_in_order_each_with_its_own_result() {
    let server = server(&[]);
    let mut ann = user(&server, "ann", &["r"]).await;
    let mut bob = user(&server, "bob", &[]).await;
    let commands = json!({"commands": [
        {"method":"publish","params":{"room":"r","event":"first","data":1}},
        {"method":"join","params":{"room":"r","conn":id(&bob)}},
        {"method":"publish","params":{"room":"r","event":"second","data":2}},
        {"method":"send","params":{"user":"ann"}},
        {"method":"teleport","params":{}},
        {"method":"send","params":{"user":"bob","event":"third"}},
    ]});
    let answer = api(&server, "POST", "/api/batch", Some(commands));
    assert_eq!(answer.status, 200, "{}", answer.body);
    let results = answer.json()["results"].as_array().unwrap().clone();
    assert_eq!(results.len(), 6);
    assert_eq!(results[0], json!({}));
    assert_eq!(results[1]["affected"], 1);
    assert_eq!(results[2], json!({}));
    assert_eq!(results[3]["error"]["code"], "invalid_argument", "no event: {}", results[3]);
    assert_eq!(results[4]["error"]["code"], "invalid_argument", "{}", results[4]);
    assert_eq!(results[5], json!({}));

    assert_eq!(ann.recv().await["event"], "first");
    assert_eq!(ann.recv().await["event"], "second");
    // bob joined between the two publishes: only the second, then the send.
    assert_eq!(bob.recv().await["event"], "joined");
    assert_eq!(bob.recv().await, json!({"event":"second","room":"r","data":2}));
    assert_eq!(bob.recv().await, json!({"event":"third"}));
    ann.expect_nothing_pending().await;
    bob.expect_nothing_pending().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn queries_count_connections_list_rooms_and_find_a_connection_or_a_metadata_match() {
    let server = server(&[]);
    let ann = user(&server, "ann", &["r", "s"]).await;
    let _bob = user(&server, "bob", &["r"]).await;

    let answer = api(&server, "GET", "/api/count", None);
    assert_eq!(answer.json(), json!({"connections": 2, "missing": []}), "{}", answer.body);

    let answer = api(&server, "GET", "/api/rooms", None);
    let expected =
        json!({"rooms":[{"name":"r","members":2},{"name":"s","members":1}],"missing":[]});
    assert_eq!(answer.json(), expected);

    let answer = api(&server, "GET", &format!("/api/connections/{}", id(&ann)), None);
    assert_eq!(answer.status, 200, "{}", answer.body);
    let found = &answer.json()["connection"];
    assert_eq!(found["conn"], id(&ann));
    assert_eq!(found["userId"], "ann");
    assert_eq!(found["rooms"], json!(["r", "s"]));
    assert_eq!(found["metadata"], json!({"name":"ann"}));

    let filter = "%7B%22name%22%3A%22bob%22%7D"; // {"name":"bob"}
    let answer = api(&server, "GET", &format!("/api/connections?filter={filter}"), None);
    let members = answer.json()["members"].as_array().unwrap().clone();
    assert_eq!(members.len(), 1, "{}", answer.body);
    assert_eq!(members[0]["userId"], "bob");

    let answer = api(&server, "GET", "/api/rooms/r/members", None);
    assert_eq!(answer.json()["members"].as_array().unwrap().len(), 2);
    let answer = api(&server, "GET", "/api/users/ann/sessions", None);
    assert_eq!(answer.json()["members"][0]["conn"], id(&ann));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_get_the_documented_json_errors_and_change_nothing() {
    let server = server(&["--api-max-body-bytes", "65536"]);
    let mut ann = user(&server, "ann", &["r"]).await;
    let publish = r#"{"event":"news"}"#;
    let unknown = "00000000-0000-4000-8000-000000000000";
    let long = "x".repeat(300);
    let long_event = format!(r#"{{"event":"{long}"}}"#);
    let huge = format!(r#"{{"event":"news","data":"{}"}}"#, "x".repeat(100_000));
    // (method, path, key, body, status, error code)
    type Case<'a> = (&'a str, String, Option<&'a str>, Option<&'a str>, u16, &'a str);
    let cases: Vec<Case<'_>> = vec![
        ("POST", "/api/rooms/r/publish".into(), None, Some(publish), 401, "unauthorized"),
        ("POST", "/api/rooms/r/publish".into(), Some("wrong"), Some(publish), 401, "unauthorized"),
        (
            "POST",
            "/api/rooms/r/publish".into(),
            Some(KEY),
            Some("{\"event\":"),
            400,
            "invalid_json",
        ),
        (
            "POST",
            "/api/rooms/r/publish".into(),
            Some(KEY),
            Some(r#"{"event":5}"#),
            400,
            "invalid_argument",
        ),
        (
            "POST",
            "/api/rooms/r/publish".into(),
            Some(KEY),
            Some(r#"{"event":"a","exclude":"x"}"#),
            400,
            "invalid_argument",
        ),
        (
            "POST",
            "/api/rooms/r/publish".into(),
            Some(KEY),
            Some(r#"{"event":"a","excludeUser":[]}"#),
            400,
            "invalid_argument",
        ),
        ("POST", "/api/rooms/r/publish".into(), Some(KEY), Some("{}"), 400, "invalid_argument"),
        ("POST", "/api/rooms/r/publish".into(), Some(KEY), Some(&huge), 413, "too_large"),
        (
            "POST",
            format!("/api/rooms/{long}/publish"),
            Some(KEY),
            Some(publish),
            400,
            "invalid_argument",
        ),
        ("POST", "/api/broadcast".into(), Some(KEY), Some(&long_event), 400, "invalid_argument"),
        (
            "POST",
            "/api/connections/not-an-id/send".into(),
            Some(KEY),
            Some(publish),
            400,
            "invalid_argument",
        ),
        ("GET", format!("/api/connections/{unknown}"), Some(KEY), None, 404, "not_found"),
        ("GET", "/api/connections?filter=%5B1%5D".into(), Some(KEY), None, 400, "invalid_argument"),
        ("POST", "/api/rooms/r/join".into(), Some(KEY), None, 400, "invalid_argument"),
        ("GET", "/api/nothing/here".into(), Some(KEY), None, 404, "not_found"),
        ("GET", "/api/broadcast".into(), Some(KEY), None, 405, "method_not_allowed"),
        (
            "POST",
            "/api/batch".into(),
            Some(KEY),
            Some(r#"{"commands":{}}"#),
            400,
            "invalid_argument",
        ),
    ];
    for (method, path, key, body, status, code) in cases {
        let answer = raw(&server, method, &path, key, body);
        let what = format!(
            "{method} {} {:?}",
            &path[..path.len().min(60)],
            body.map(|b| &b[..b.len().min(60)])
        );
        assert_eq!(answer.status, status, "{what}: {}", answer.body);
        assert_eq!(answer.json()["error"]["code"], code, "{what}: {}", answer.body);
        assert!(answer.json()["error"]["message"].is_string(), "{what}: {}", answer.body);
    }
    ann.expect_nothing_pending().await;
    let answer = api(&server, "GET", "/api/rooms", None);
    assert_eq!(answer.json()["rooms"], json!([{"name":"r","members":1}]), "no room was made");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_key_the_api_is_off_and_says_so() {
    let server = Server::spawn(binary(), &[], &[]);
    let answer = raw(&server, "GET", "/api/count", Some("anything"), None);
    assert_eq!(answer.status, 404);
    assert_eq!(answer.json()["error"]["code"], "api_disabled");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_without_a_backend_is_answered_unknown_event_instead_of_waiting_forever() {
    let server = Server::spawn(binary(), &[], &[]);
    let mut client = Client::connected(server.addr).await;
    client.send(json!({"event":"getProfile","data":{},"id":7})).await;
    let answer = client.recv().await;
    assert_eq!(answer["event"], "error", "{answer}");
    assert_eq!(answer["id"], 7);
    assert_eq!(answer["data"]["code"], "unknown_event");
}

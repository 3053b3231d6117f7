//! `roomcast serve` started in this process with `roomcast_server::start`, not as a child
//! process: the same settings, routes and API, reachable from a test's own runtime.
#![allow(clippy::unwrap_used)]

use roomcast_server::config::{CliCommand, parse_from};
use roomcast_tests::client::Client;
use roomcast_tests::http;
use serde_json::json;

async fn start(extra: &[&str]) -> roomcast_server::Server {
    let mut args = vec!["roomcast", "serve", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let CliCommand::Serve(serve) = parse_from(args).unwrap().command;
    roomcast_server::start(*serve).await.unwrap()
}

/// The blocking HTTP client, off the runtime's threads.
async fn call(
    addr: std::net::SocketAddr,
    method: &'static str,
    path: &'static str,
    key: Option<&'static str>,
    body: Option<&'static str>,
) -> http::Answer {
    tokio::task::spawn_blocking(move || http::call(addr, method, path, key, body).unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_process_server_publishes_through_its_api_to_a_websocket_client() {
    let server = start(&["--api-key", "k"]).await;
    let addr = server.local_addr();
    let mut client = Client::connected(addr).await;
    client.join(&["lobby"]).await;
    let body = r#"{"event":"news","data":{"n":1}}"#;
    let answer = call(addr, "POST", "/api/rooms/lobby/publish", Some("k"), Some(body)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let frame = client.recv().await;
    assert_eq!((frame["event"].clone(), frame["data"].clone()), (json!("news"), json!({"n": 1})));
    // The embedding code sees the same instance through its handle.
    let members = server.handle().room_members("lobby").await.unwrap();
    assert_eq!(members.len(), 1);
    // The client reads the close and hangs up while the server waits for it.
    let closed = async move { client.close_code().await };
    let ((), code) = tokio::join!(server.shutdown(), closed);
    assert_eq!(code, 1001);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_process_server_refuses_the_api_without_its_key_and_answers_health() {
    let server = start(&["--api-key", "k"]).await;
    let addr = server.local_addr();
    let refused = call(addr, "GET", "/api/rooms", Some("wrong"), None).await;
    assert_eq!(
        (refused.status, refused.json()["error"]["code"].clone()),
        (401, json!("unauthorized"))
    );
    assert_eq!(call(addr, "GET", "/healthz", None, None).await.status, 200);
    assert_eq!(call(addr, "GET", "/readyz", None, None).await.status, 200);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starting_with_cluster_presence_and_no_redis_is_refused_with_a_reason() {
    let CliCommand::Serve(serve) =
        parse_from(["roomcast", "serve", "--listen", "127.0.0.1:0", "--cluster-presence"])
            .unwrap()
            .command;
    let error = roomcast_server::start(*serve).await.unwrap_err();
    assert!(error.to_string().contains("--cluster-presence needs --redis"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_back_after_a_cut_recovers_the_messages_published_meanwhile_in_a_room_with_history()
 {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("in_process");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("history.toml");
    let rules = "[[rooms]]\npattern = \"feed:*\"\nhistory_size = 100\nhistory_ttl = \"10m\"\n";
    std::fs::write(&file, rules).unwrap();
    let server = start(&["--api-key", "k", "--config", file.to_str().unwrap()]).await;
    let addr = server.local_addr();
    let mut client = Client::connected(addr).await;
    client.send(json!({"event":"join","data":{"rooms":["feed:1"]},"id":1})).await;
    let joined = client.recv().await;
    let stream = joined["data"]["streams"]["feed:1"].clone();
    assert_eq!((stream["offset"].clone(), stream["recovered"].clone()), (json!(0), json!(false)));
    let body = r#"{"event":"news","data":1}"#;
    call(addr, "POST", "/api/rooms/feed:1/publish", Some("k"), Some(body)).await;
    let first = client.recv().await;
    assert_eq!(first, json!({"event":"news","room":"feed:1","offset":1,"data":1}));
    drop(client); // the connection is cut
    for (n, body) in [(2, r#"{"event":"news","data":2}"#), (3, r#"{"event":"news","data":3}"#)] {
        let answer = call(addr, "POST", "/api/rooms/feed:1/publish", Some("k"), Some(body)).await;
        assert_eq!(
            answer.json(),
            json!({"offset": n, "epoch": stream["epoch"]}),
            "{}",
            answer.body
        );
    }
    let page = call(addr, "GET", "/api/rooms/feed:1/history?since=1", Some("k"), None).await;
    let expected = json!({"messages":[{"offset":2,"event":"news","data":2},{"offset":3,"event":"news","data":3}],
        "epoch": stream["epoch"], "offset": 3});
    assert_eq!(page.json(), expected, "{}", page.body);
    let mut back = Client::connected(addr).await;
    let recover = json!({"feed:1":{"offset":1,"epoch":stream["epoch"]}});
    back.send(json!({"event":"join","data":{"rooms":["feed:1"],"recover":recover},"id":2})).await;
    let joined = back.recv().await;
    assert_eq!(joined["data"]["streams"]["feed:1"]["recovered"], true, "{joined}");
    assert_eq!(joined["data"]["streams"]["feed:1"]["offset"], 2 + 1);
    for n in [2, 3] {
        assert_eq!(back.recv().await, json!({"event":"news","room":"feed:1","offset":n,"data":n}));
    }
    back.expect_nothing_pending().await;
    // Removed: the next message starts a new numbering under a new epoch.
    assert_eq!(
        call(addr, "DELETE", "/api/rooms/feed:1/history", Some("k"), None).await.status,
        200
    );
    let answer =
        call(addr, "POST", "/api/rooms/feed:1/publish", Some("k"), Some(r#"{"event":"e"}"#)).await;
    assert_eq!(answer.json()["offset"], 1);
    assert_ne!(answer.json()["epoch"], stream["epoch"]);
    let closed = async move { back.close_code().await };
    let ((), code) = tokio::join!(server.shutdown(), closed);
    assert_eq!(code, 1001);
}

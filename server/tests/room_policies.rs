//! `roomcast serve` with the production configuration of docs/operations.md, alone and as two
//! processes on a real Redis: the forgery of a server notice (join someone else's room, publish
//! `announcement` into a room the server writes) is refused with `forbidden`, keeping the
//! request's id, and nobody hears it.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{EncodingKey, Header, encode};
use roomcast_tests::http::call;
use roomcast_tests::redis::RedisServer;
use roomcast_tests::server::Server;
use serde_json::{Value, json};

const SECRET: &str = "policy-secret";
const KEY: &str = "policy-key";

fn forbidden(frame: &Value, id: impl Into<Value>, room: &str) {
    assert_eq!(frame["event"], "error", "{frame}");
    assert_eq!(frame["id"], id.into(), "{frame}");
    assert_eq!(frame["data"]["code"], "forbidden", "{frame}");
    assert_eq!(frame["data"]["room"], room, "{frame}");
}

/// The TOML block of docs/operations.md's production section, in a file.
fn production_config() -> PathBuf {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/operations.md");
    let text = std::fs::read_to_string(docs).unwrap();
    let (_, after) = text.split_once("<!-- production-config").expect("the marked block");
    let block = after.split_once("```toml\n").unwrap().1.split_once("```").unwrap().0;
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("room_policies");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("production.toml");
    std::fs::write(&path, block).unwrap();
    path
}

fn serve(extra: &[&str]) -> Server {
    let config = production_config();
    let mut args = vec!["--config", config.to_str().unwrap(), "--jwt-secret", SECRET];
    args.extend_from_slice(&["--api-key", KEY]);
    args.extend_from_slice(extra);
    Server::spawn(Path::new(env!("CARGO_BIN_EXE_roomcast")), &args, &[])
}

fn token(user: &str, rooms: &[&str]) -> String {
    let exp = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() + 3600;
    let claims = json!({"sub": user, "exp": exp, "rooms": rooms});
    encode(&Header::default(), &claims, &EncodingKey::from_secret(SECRET.as_bytes())).unwrap()
}

async fn user(server: &Server, name: &str, rooms: &[&str]) -> roomcast_tests::client::Client {
    roomcast_tests::client::Client::authenticated(server.addr, &token(name, rooms)).await
}

/// The forgery against `mallory_on` and `bob_on` (the same server, or two on one Redis): bob is
/// in team 2's chat and the news; mallory, with a token for team 1, tries to read team 2 and to
/// publish an announcement.
async fn the_forgery_is_refused(mallory_on: &Server, bob_on: &Server, redis: Option<&RedisServer>) {
    let mut bob = user(bob_on, "bob", &["chat:team2:*"]).await;
    bob.join(&["chat:team2:general", "news:global"]).await;
    let mut mallory = user(mallory_on, "mallory", &["chat:team1:*"]).await;
    if let Some(redis) = redis {
        tokio::task::block_in_place(|| redis.wait_numsub("ws:room:news:global", 1));
    }
    let join =
        json!({"event":"join","data":{"rooms":["chat:team2:general","news:global","ops"]},"id":1});
    mallory.send(join).await;
    forbidden(&mallory.recv().await, 1, "chat:team2:general");
    forbidden(&mallory.recv().await, 1, "ops");
    assert_eq!(
        mallory.recv().await,
        json!({"event":"joined","id":1,"data":{"rooms":["news:global"]}})
    );
    for (room, event) in [("news:global", "announcement"), ("chat:team2:general", "system")] {
        let forge =
            json!({"event":"publish","data":{"room":room,"event":event,"data":"forged"},"id":2});
        mallory.send(forge).await;
        forbidden(&mallory.recv().await, 2, room);
    }
    // The presence of rooms outside the rules is the server's to ask.
    mallory.send(json!({"event":"presence","data":{"room":"ops"},"id":3})).await;
    forbidden(&mallory.recv().await, 3, "ops");
    if let Some(redis) = redis {
        tokio::task::block_in_place(|| redis.wait_numsub("ws:room:news:global", 2));
    }
    // The real announcement, from the backend, reaches both; bob heard nothing forged.
    let body = json!({"event":"announcement","data":"real"}).to_string();
    let path = "/api/rooms/news:global/publish";
    let answer =
        tokio::task::block_in_place(|| call(mallory_on.addr, "POST", path, Some(KEY), Some(&body)))
            .unwrap();
    assert_eq!(answer.status, 200, "{}", answer.body);
    let real = json!({"event":"announcement","room":"news:global","data":"real"});
    assert_eq!(bob.recv().await, real);
    assert_eq!(mallory.recv().await, real);
    bob.expect_nothing_pending().await;
    mallory.expect_nothing_pending().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_production_configuration_refuses_the_forgery_with_forbidden() {
    let server = serve(&[]);
    the_forgery_is_refused(&server, &server, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_production_configuration_refuses_the_forgery_across_two_instances_on_redis() {
    let redis = RedisServer::start();
    let url = redis.url();
    let (one, two) = (serve(&["--redis", &url]), serve(&["--redis", &url]));
    the_forgery_is_refused(&one, &two, Some(&redis)).await;
}

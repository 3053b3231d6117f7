//! `--jwt-secret` authentication over real sockets: `sub` is the user, `rooms` limits joins,
//! expired, forged and malformed tokens are rejected with 4003.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::{Client, start_with};
use jsonwebtoken::{EncodingKey, Header, encode};
use roomcast_tokio::roomcast_core::{AuthMode, HubConfig};
use roomcast_tokio::{JwtAuth, Options, Roomcast};
use serde_json::{Value, json};

const SECRET: &[u8] = b"test-secret";

fn token(claims: Value, secret: &[u8]) -> String {
    encode(&Header::default(), &claims, &EncodingKey::from_secret(secret)).unwrap()
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

async fn server() -> std::net::SocketAddr {
    let options = Options {
        hub: HubConfig { auth: AuthMode::Required, ..HubConfig::default() },
        ..Options::default()
    };
    let builder = Roomcast::builder().options(options).authenticator(JwtAuth::hs256(SECRET));
    start_with(builder).await.2
}

#[tokio::test]
async fn a_valid_token_connects_as_its_subject_and_its_rooms_claim_limits_joins() {
    let addr = server().await;
    let mut client = Client::connect(addr).await;
    let jwt = token(json!({"sub":"ann","exp":now() + 3600,"rooms":["team:1:*"]}), SECRET);
    client.send(json!({"event":"authenticate","data":{"token":jwt}})).await;
    let connected = client.recv().await;
    assert_eq!(connected["event"], "connected");
    assert_eq!(connected["data"]["userId"], "ann");
    client
        .send(json!({"event":"join","data":{"rooms":["team:1:chat","team:2:chat"]},"id":1}))
        .await;
    let refused = client.recv().await;
    assert_eq!(
        (refused["data"]["code"].as_str(), refused["data"]["room"].as_str()),
        (Some("forbidden"), Some("team:2:chat"))
    );
    assert_eq!(
        client.recv().await,
        json!({"event":"joined","id":1,"data":{"rooms":["team:1:chat"]}})
    );
}

#[tokio::test]
async fn a_token_without_exp_or_rooms_may_join_anything() {
    let addr = server().await;
    let mut client = Client::connect(addr).await;
    client
        .send(json!({"event":"authenticate","data":{"token":token(json!({"sub":"bob"}), SECRET)}}))
        .await;
    assert_eq!(client.recv().await["data"]["userId"], "bob");
    client.send(json!({"event":"join","data":{"rooms":["anywhere"]}})).await;
    assert_eq!(client.recv().await["event"], "joined");
}

#[tokio::test]
async fn expired_forged_and_malformed_tokens_are_rejected_with_4003() {
    let addr = server().await;
    for bad in [
        token(json!({"sub":"ann","exp":now() - 10}), SECRET),
        token(json!({"sub":"ann","exp":now() + 3600}), b"another-secret"),
        token(json!({"exp":now() + 3600}), SECRET),
        "not.a.jwt".to_owned(),
    ] {
        let mut client = Client::connect(addr).await;
        client.send(json!({"event":"authenticate","data":{"token":bad}})).await;
        assert_eq!(client.close_code().await, 4003);
    }
}

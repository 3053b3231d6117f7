//! `--jwt-secret` authentication over real sockets: `sub` is the user, `rooms` names the rooms
//! of a `join = token` policy it may join,
//! expired, forged and malformed tokens are rejected with 4003.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::{Client, start_with};
use jsonwebtoken::{EncodingKey, Header, encode};
use roomcast_tokio::roomcast_core::{AuthMode, HubConfig, JoinPolicy, RoomPolicy};
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
    // `team:*` rooms are joined by the tokens that list them; others by anyone.
    let token_rooms = RoomPolicy { join: JoinPolicy::Token, ..RoomPolicy::open() };
    let builder = Roomcast::builder()
        .options(options)
        .room_policy("team:*", token_rooms)
        .authenticator(JwtAuth::hs256(SECRET));
    start_with(builder).await.2
}

#[tokio::test]
async fn a_valid_token_connects_as_its_subject_and_its_rooms_claim_names_its_token_rooms() {
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
async fn a_token_without_exp_or_rooms_joins_open_rooms_and_no_token_room() {
    let addr = server().await;
    let mut client = Client::connect(addr).await;
    client
        .send(json!({"event":"authenticate","data":{"token":token(json!({"sub":"bob"}), SECRET)}}))
        .await;
    assert_eq!(client.recv().await["data"]["userId"], "bob");
    client.send(json!({"event":"join","data":{"rooms":["anywhere","team:1:chat"]},"id":2})).await;
    let refused = client.recv().await;
    assert_eq!(
        (refused["data"]["code"].as_str(), refused["id"].as_u64()),
        (Some("forbidden"), Some(2))
    );
    assert_eq!(client.recv().await, json!({"event":"joined","id":2,"data":{"rooms":["anywhere"]}}));
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

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/").to_owned() + name)
        .unwrap()
}

/// A token signed with `algorithm` and the private key in fixture `key`.
fn signed(claims: Value, algorithm: jsonwebtoken::Algorithm, key: &str) -> String {
    let pem = fixture(key);
    let key = match algorithm {
        jsonwebtoken::Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem).unwrap(),
        _ => EncodingKey::from_ec_pem(&pem).unwrap(),
    };
    encode(&Header::new(algorithm), &claims, &key).unwrap()
}

/// Whether `auth` lets `token` in: the user id, or the close code.
async fn outcome(auth: JwtAuth, token: String) -> Result<String, u16> {
    let options = Options {
        hub: HubConfig { auth: AuthMode::Required, ..HubConfig::default() },
        ..Options::default()
    };
    let addr = start_with(Roomcast::builder().options(options).authenticator(auth)).await.2;
    let mut client = Client::connect(addr).await;
    client.send(json!({"event":"authenticate","data":{"token":token}})).await;
    match client.next_or_close().await {
        Ok(frame) => Ok(frame["data"]["userId"].as_str().unwrap().to_owned()),
        Err(code) => Err(code),
    }
}

#[tokio::test]
async fn rs256_and_es256_tokens_verify_with_their_public_keys_and_not_with_each_others() {
    use jsonwebtoken::Algorithm::{ES256, RS256};
    let claims = json!({"sub":"ann","exp":now() + 3600});
    let rsa = || JwtAuth::public_key_pem(&fixture("rsa_public.pem")).unwrap();
    let ec = || JwtAuth::public_key_pem(&fixture("ec_public.pem")).unwrap();
    let by_rsa = signed(claims.clone(), RS256, "rsa_private.pem");
    let by_ec = signed(claims.clone(), ES256, "ec_private.pem");
    assert_eq!(outcome(rsa(), by_rsa.clone()).await, Ok("ann".to_owned()));
    assert_eq!(outcome(ec(), by_ec.clone()).await, Ok("ann".to_owned()));
    assert_eq!(outcome(rsa(), by_ec).await, Err(4003));
    assert_eq!(outcome(ec(), by_rsa).await, Err(4003));
    // An HS256 token made with the public key as its secret (the classic confusion): refused.
    let confused = token(claims, &fixture("rsa_public.pem"));
    assert_eq!(outcome(rsa(), confused).await, Err(4003));
    assert!(JwtAuth::public_key_pem(b"not a key").is_err());
}

#[tokio::test]
async fn audience_and_issuer_are_checked_when_set_and_ignored_otherwise() {
    let strict = || JwtAuth::hs256(SECRET).audience("chat").issuer("https://id.example");
    let exp = now() + 3600;
    let good =
        token(json!({"sub":"ann","exp":exp,"aud":"chat","iss":"https://id.example"}), SECRET);
    let other_aud =
        token(json!({"sub":"ann","exp":exp,"aud":"admin","iss":"https://id.example"}), SECRET);
    let other_iss = token(json!({"sub":"ann","exp":exp,"aud":"chat","iss":"https://evil"}), SECRET);
    let neither = token(json!({"sub":"ann","exp":exp}), SECRET);
    assert_eq!(outcome(strict(), good.clone()).await, Ok("ann".to_owned()));
    assert_eq!(outcome(strict(), other_aud.clone()).await, Err(4003));
    assert_eq!(outcome(strict(), other_iss).await, Err(4003));
    assert_eq!(outcome(strict(), neither).await, Err(4003));
    // Without the checks, a token's aud and iss are whatever they are.
    assert_eq!(outcome(JwtAuth::hs256(SECRET), other_aud).await, Ok("ann".to_owned()));
}

#[tokio::test]
async fn a_token_expiring_while_connected_is_refreshed_with_a_new_one_or_the_connection_closes_4004()
 {
    let options = Options {
        hub: HubConfig {
            auth: AuthMode::Required,
            // 3 s before the end: the keeper's two refreshes have 3 s, however busy the machine.
            token_refresh_notice: std::time::Duration::from_secs(3),
            ..HubConfig::default()
        },
        ..Options::default()
    };
    // `team:*` rooms are joined by the tokens that list them; others by anyone.
    let token_rooms = RoomPolicy { join: JoinPolicy::Token, ..RoomPolicy::open() };
    let builder = Roomcast::builder()
        .options(options)
        .room_policy("team:*", token_rooms)
        .authenticator(JwtAuth::hs256(SECRET));
    let addr = start_with(builder).await.2;
    // Valid for 4-5 s (whole seconds): accepted however busy the machine, noticed 3 s before.
    let short = token(json!({"sub":"ann","exp":now() + 5}), SECRET);
    let mut keeper = Client::connect(addr).await;
    let mut lapser = Client::connect(addr).await;
    for client in [&mut keeper, &mut lapser] {
        client.send(json!({"event":"authenticate","data":{"token":short}})).await;
        assert_eq!(client.recv().await["event"], "connected");
    }
    let notice = keeper.recv().await;
    assert_eq!(notice["event"], "token_expiring", "{notice}");
    // A forged refresh is refused; the connection stays.
    let forged = token(json!({"sub":"ann","exp":now() + 3600}), b"wrong-secret");
    keeper.send(json!({"event":"refresh","data":{"token":forged},"id":"f"})).await;
    let refused = keeper.recv().await;
    assert_eq!(
        (refused["id"].as_str(), refused["data"]["code"].as_str()),
        (Some("f"), Some("refresh_rejected"))
    );
    let fresh = token(json!({"sub":"ann","exp":now() + 3600}), SECRET);
    keeper.send(json!({"event":"refresh","data":{"token":fresh},"id":"r"})).await;
    let refreshed = keeper.recv().await;
    assert_eq!(refreshed["event"], "refreshed", "{refreshed}");
    assert_eq!(refreshed["id"], "r");
    assert!(refreshed["data"]["expiresIn"].as_u64().unwrap() > 3000);

    assert_eq!(lapser.recv().await["event"], "token_expiring");
    assert_eq!(lapser.close_code().await, 4004);
    keeper.expect_nothing_pending().await;
}

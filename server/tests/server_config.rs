//! `roomcast serve` settings and operation: a config file, `ROOMCAST_*` variables and flags in
//! combination (flag > env > file > default), refused files and durations, browser origins, the
//! connection limit, readiness and the build and process metrics.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use roomcast_tests::client::Client;
use roomcast_tests::http::get;
use roomcast_tests::server::Server;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_roomcast"))
}

/// A config file with `text`, in a fresh directory under the target dir.
fn config_file(name: &str, text: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("server_config");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// `roomcast serve --print-config args...` with `envs`: the settings in effect, or the error.
fn settings(args: &[&str], envs: &[(&str, &str)]) -> Result<Value, String> {
    let output = Command::new(binary())
        .args(["serve", "--print-config"])
        .args(args)
        .env_clear()
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    if output.status.success() {
        Ok(serde_json::from_slice(&output.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

#[test]
fn flags_beat_environment_variables_which_beat_the_file_which_beats_the_defaults() {
    let file = config_file(
        "precedence.toml",
        r#"
heartbeat_timeout = "45s"
ping_interval = 3
rate_limit = 7
channel_prefix = "file"
presence_rooms = ["a", "b*"]
cluster_presence = false
api_key = "from-file"
"#,
    );
    let file = file.to_str().unwrap();
    let envs = [("ROOMCAST_RATE_LIMIT", "8"), ("ROOMCAST_CHANNEL_PREFIX", "env")];
    let got = settings(&["--config", file, "--channel-prefix", "flag"], &envs).unwrap();
    assert_eq!(got["heartbeat_timeout"], "45s", "file over default");
    assert_eq!(got["ping_interval"], "3s", "plain seconds in the file");
    assert_eq!(got["rate_limit"], 8, "env over file");
    assert_eq!(got["channel_prefix"], "flag", "flag over env and file");
    assert_eq!(got["presence_rooms"], serde_json::json!(["a", "b*"]), "a list");
    assert_eq!(got["auth_timeout"], "5s", "default");
    assert_eq!(got["api_key"], "<hidden>", "a secret is never printed");

    // Every flag has its variable, durations included.
    let got =
        settings(&[], &[("ROOMCAST_PING_INTERVAL", "250ms"), ("ROOMCAST_LISTEN", "127.0.0.1:9")])
            .unwrap();
    assert_eq!(
        (got["ping_interval"].as_str(), got["listen"].as_str()),
        (Some("250ms"), Some("127.0.0.1:9"))
    );
    let got = settings(&[], &[("ROOMCAST_CONFIG", file)]).unwrap();
    assert_eq!(got["channel_prefix"], "file", "the file named by the environment");
}

#[test]
fn room_policies_come_from_rooms_tables_and_print_in_full_over_the_defaults_flags() {
    let file = config_file(
        "rooms.toml",
        r#"
default_join = "server"

[[rooms]]
pattern = "chat:*"
join = "anyone"
publish = "members"

[[rooms]]
pattern = "news:*"
publish = "server"
"#,
    );
    let got = settings(&["--config", file.to_str().unwrap(), "--default-presence", "server"], &[])
        .unwrap();
    assert_eq!(
        (&got["default_join"], &got["default_publish"], &got["default_presence"]),
        (&json!("server"), &json!("members"), &json!("server"))
    );
    // A key left out of a rule takes the default's value, written out.
    assert_eq!(
        got["rooms"],
        json!([
            {"pattern":"chat:*","join":"anyone","publish":"members","presence":"server"},
            {"pattern":"news:*","join":"server","publish":"server","presence":"server"},
        ])
    );
    // Without a file: every room open, as the chat page needs.
    let got = settings(&[], &[]).unwrap();
    assert_eq!(
        (&got["default_join"], &got["default_publish"], &got["rooms"]),
        (&json!("anyone"), &json!("members"), &json!([]))
    );
    // The publish proxy makes publishes asked by default.
    let got = settings(&["--proxy-publish", "http://127.0.0.1:9/p"], &[]).unwrap();
    assert_eq!(got["default_publish"], "proxy");
}

#[test]
fn bad_room_rules_are_refused_naming_the_rule_and_the_key() {
    let typo = config_file("typo.toml", "[[rooms]]\npattern = \"a\"\njoin = \"everyone\"\n");
    let e = settings(&["--config", typo.to_str().unwrap()], &[]).unwrap_err();
    assert!(
        e.contains("typo.toml") && e.contains("[[rooms]] number 1") && e.contains("everyone"),
        "{e}"
    );
    let unknown = config_file("rule_key.toml", "[[rooms]]\npattern = \"a\"\nhistroy = 3\n");
    let e = settings(&["--config", unknown.to_str().unwrap()], &[]).unwrap_err();
    assert!(e.contains("histroy"), "{e}");
    let no_pattern = config_file("no_pattern.toml", "[[rooms]]\njoin = \"token\"\n");
    let e = settings(&["--config", no_pattern.to_str().unwrap()], &[]).unwrap_err();
    assert!(e.contains("pattern"), "{e}");
    let proxy = config_file("proxy.toml", "[[rooms]]\npattern = \"a:*\"\npublish = \"proxy\"\n");
    let e = settings(&["--config", proxy.to_str().unwrap()], &[]).unwrap_err();
    assert!(e.contains("a:*") && e.contains("--proxy-publish"), "{e}");
    let e = settings(&["--default-join", "nobody"], &[]).unwrap_err();
    assert!(e.contains("nobody") && e.contains("anyone"), "{e}");
    let no_ttl = config_file("no_ttl.toml", "[[rooms]]\npattern = \"h:*\"\nhistory_size = 10\n");
    let e = settings(&["--config", no_ttl.to_str().unwrap()], &[]).unwrap_err();
    assert!(e.contains("h:*") && e.contains("history_ttl"), "{e}");
    let bad_ttl = "[[rooms]]\npattern = \"h:*\"\nhistory_size = 10\nhistory_ttl = \"soon\"\n";
    let bad_ttl = config_file("bad_ttl.toml", bad_ttl);
    let e = settings(&["--config", bad_ttl.to_str().unwrap()], &[]).unwrap_err();
    assert!(e.contains("history_ttl") && e.contains("soon"), "{e}");
    let kept = "[[rooms]]\npattern = \"h:*\"\nhistory_size = 10\nhistory_ttl = \"10m\"\n";
    let kept = config_file("kept.toml", kept);
    let args = ["--config", kept.to_str().unwrap(), "--redis", "redis://127.0.0.1:1"];
    let e = settings(&args, &[]).unwrap_err();
    assert!(e.contains("h:*") && e.contains("--redis"), "history on one instance only: {e}");
    let got = settings(&["--config", kept.to_str().unwrap()], &[]).unwrap();
    assert_eq!(got["rooms"][0]["history_size"], 10);
    assert_eq!(got["rooms"][0]["history_ttl"], "10m");
}

#[test]
fn unknown_keys_bad_values_and_bad_durations_are_refused_naming_them() {
    let unknown = config_file("unknown.toml", "heartbeat_timout = \"5s\"\n");
    let e = settings(&["--config", unknown.to_str().unwrap()], &[]).unwrap_err();
    assert!(e.contains("unknown key `heartbeat_timout`") && e.contains("unknown.toml"), "{e}");

    let bad = config_file("bad_duration.toml", "auth_timeout = \"soon\"\n");
    let e = settings(&["--config", bad.to_str().unwrap()], &[]).unwrap_err();
    assert!(
        e.contains("bad_duration.toml") && e.contains("soon") && e.contains("auth-timeout"),
        "{e}"
    );

    let table = config_file("table.toml", "[listen]\nport = 1\n");
    let e = settings(&["--config", table.to_str().unwrap()], &[]).unwrap_err();
    assert!(e.contains("`listen`"), "{e}");

    let broken = config_file("broken.toml", "listen = \n");
    let e = settings(&["--config", broken.to_str().unwrap()], &[]).unwrap_err();
    assert!(e.contains("not valid TOML"), "{e}");

    let e = settings(&["--config", "/nonexistent/roomcast.toml"], &[]).unwrap_err();
    assert!(e.contains("cannot read config file"), "{e}");

    let e = settings(&["--ping-interval=-3"], &[]).unwrap_err();
    assert!(e.contains("--ping-interval"), "{e}");
    let e = settings(&[], &[("ROOMCAST_HEARTBEAT_TIMEOUT", "5 parsecs")]).unwrap_err();
    assert!(e.contains("parsecs"), "{e}");
}

/// Opens a WebSocket with `origin`: the HTTP status of the answer (101 when upgraded).
async fn upgrade_status(server: &Server, origin: Option<&str>) -> u16 {
    let mut request = format!("ws://{}/ws", server.addr).into_client_request().unwrap();
    if let Some(origin) = origin {
        request.headers_mut().insert("Origin", HeaderValue::from_str(origin).unwrap());
    }
    let stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    match tokio_tungstenite::client_async(request, stream).await {
        Ok((_, response)) => response.status().as_u16(),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn browsers_from_origins_not_allowed_get_403_and_others_are_let_in() {
    let server = Server::spawn(
        binary(),
        &["--allowed-origins", "https://app.example.com,https://*.example.org"],
        &[],
    );
    assert_eq!(upgrade_status(&server, Some("https://evil.example.net")).await, 403);
    assert_eq!(upgrade_status(&server, Some("https://app.example.com")).await, 101);
    assert_eq!(upgrade_status(&server, Some("https://x.example.org")).await, 101);
    assert_eq!(upgrade_status(&server, None).await, 101, "not a browser");
}

#[tokio::test(flavor = "multi_thread")]
async fn past_max_connections_an_upgrade_gets_503_until_a_connection_closes() {
    let server = Server::spawn(binary(), &["--max-connections", "2"], &[]);
    let a = Client::connected(server.addr).await;
    let _b = Client::connected(server.addr).await;
    assert_eq!(upgrade_status(&server, None).await, 503);
    drop(a);
    let deadline = std::time::Instant::now() + roomcast_tests::client::PATIENCE;
    loop {
        // Each refused attempt changes nothing; the closed socket frees its place.
        if upgrade_status(&server, None).await == 101 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the place was not freed");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_is_ready_and_metrics_carry_the_build_and_the_process() {
    let server = Server::spawn(binary(), &[], &[]);
    let (status, body) = tokio::task::block_in_place(|| get(server.addr, "/readyz")).unwrap();
    assert!(status.contains("200"), "{status} {body}");
    let (_, metrics) = tokio::task::block_in_place(|| get(server.addr, "/metrics")).unwrap();
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        metrics.contains(&format!("roomcast_build_info{{version=\"{version}\"}} 1")),
        "{metrics}"
    );
    for name in [
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_cpu_seconds_total",
        "process_start_time_seconds",
    ] {
        assert!(metrics.contains(&format!("\n{name} ")), "{name} missing");
    }
}

//! A person's view: the chat page served at `/`, opened in two tabs of a real headless Chromium
//! (Debian's `chromium`; `scripts/test.sh` installs it), joins a room in both, sends from one and
//! sees the message in the other; the server restarts under them and the page (built on the
//! roomcast-client package) reconnects, rejoins and chats on; on a server that needs a token,
//! the page signs in with one.
//! Chromium is driven over the DevTools protocol, which is itself a
//! WebSocket: the test speaks it with tokio-tungstenite.
#![allow(clippy::unwrap_used)]

use roomcast_tests::client::PATIENCE;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use roomcast_tests::server::Server;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

/// Kills a child process when dropped, so a failing test leaves nothing running.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn chromium() -> PathBuf {
    if let Ok(path) = std::env::var("CHROMIUM") {
        return path.into();
    }
    for candidate in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if std::path::Path::new(candidate).exists() {
            return candidate.into();
        }
    }
    panic!(
        "chromium is not installed: run `bash scripts/test.sh` (it installs Debian's chromium), or set CHROMIUM"
    );
}

fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A DevTools protocol session over one WebSocket.
struct Cdp {
    ws: WebSocketStream<TcpStream>,
    next_id: u64,
}

impl Cdp {
    async fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut request = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            request["sessionId"] = json!(session);
        }
        self.ws.send(Message::text(request.to_string())).await.unwrap();
        loop {
            let message =
                tokio::time::timeout(PATIENCE, self.ws.next()).await.unwrap().unwrap().unwrap();
            let Message::Text(text) = message else { continue };
            let reply: Value = serde_json::from_str(&text).unwrap();
            if reply["id"] == id {
                assert!(reply.get("error").is_none(), "{method} failed: {reply}");
                return reply["result"].clone();
            }
        }
    }

    /// Evaluates `expression` in a page and returns its value.
    async fn eval(&mut self, session: &str, expression: &str) -> Value {
        let result = self
            .call(
                Some(session),
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true}),
            )
            .await;
        result["result"]["value"].clone()
    }

    /// Types `text` into the page's chat box and sends it.
    async fn say(&mut self, session: &str, text: &str) {
        let send = format!(
            "document.getElementById('text').value = '{text}'; \
             document.getElementById('send').click(); true"
        );
        self.eval(session, &send).await;
    }

    /// Polls `expression` until it is true.
    async fn until(&mut self, session: &str, what: &str, expression: &str) {
        let deadline = Instant::now() + PATIENCE;
        while self.eval(session, expression).await != json!(true) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn open(&mut self, url: &str) -> String {
        let target = self.call(None, "Target.createTarget", json!({"url": url})).await;
        let attached = self
            .call(
                None,
                "Target.attachToTarget",
                json!({"targetId": target["targetId"], "flatten": true}),
            )
            .await;
        attached["sessionId"].as_str().unwrap().to_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_browser_tabs_chat_through_the_served_page() {
    let chromium = chromium();
    let program = std::path::Path::new(env!("CARGO_BIN_EXE_roomcast"));
    let mut server = tokio::task::block_in_place(|| Server::spawn(program, &[], &[]));
    let addr = server.addr;

    let profile = std::env::temp_dir().join(format!("roomcast-chromium-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&profile);
    std::fs::create_dir_all(&profile).unwrap();
    let _browser = Reaped(
        Command::new(&chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Chromium writes its DevTools port and browser path here once it listens.
    let port_file = profile.join("DevToolsActivePort");
    wait_for("chromium's DevTools port", || {
        std::fs::read_to_string(&port_file).is_ok_and(|s| s.lines().count() >= 2)
    });
    let contents = std::fs::read_to_string(&port_file).unwrap();
    let mut lines = contents.lines();
    let (port, path) =
        (lines.next().unwrap().trim().to_owned(), lines.next().unwrap().trim().to_owned());
    let stream = TcpStream::connect(format!("127.0.0.1:{port}")).await.unwrap();
    let (ws, _) = tokio_tungstenite::client_async(format!("ws://127.0.0.1:{port}{path}"), stream)
        .await
        .unwrap();
    let mut cdp = Cdp { ws, next_id: 0 };

    let page = format!("http://{addr}/");
    let alice = cdp.open(&page).await;
    let bob = cdp.open(&page).await;
    for (tab, name) in [(&alice, "alice"), (&bob, "bob")] {
        cdp.until(
            tab,
            "the page's WebSocket to connect",
            "document.getElementById('join') && !document.getElementById('join').disabled",
        )
        .await;
        let join = format!(
            "document.getElementById('name').value = '{name}'; \
             document.getElementById('room').value = 'browser-test'; \
             document.getElementById('join').click(); true"
        );
        cdp.eval(tab, &join).await;
        cdp.until(tab, "the room to be joined", "!document.getElementById('send').disabled").await;
    }
    cdp.say(&alice, "hello from a real browser").await;
    cdp.until(
        &bob,
        "the message in the other tab",
        "document.getElementById('log').innerText.includes('alice: hello from a real browser')",
    )
    .await;
    // The sender sees its own line once (local echo), not a second copy from the server. A copy
    // would have left the server before bob's answer, sent once bob saw the line: wait for that.
    cdp.say(&bob, "seen it").await;
    cdp.until(
        &alice,
        "the other tab's answer",
        "document.getElementById('log').innerText.includes('bob: seen it')",
    )
    .await;
    let own = cdp.eval(&alice, "document.getElementById('log').innerText.split('hello from a real browser').length - 1").await;
    assert_eq!(own, json!(1));

    // The server restarts under the open tabs (kill -9, then a new process on the same port):
    // the page's client reconnects, rejoins the room, and the chat goes on.
    tokio::task::block_in_place(|| server.restart());
    for tab in [&alice, &bob] {
        cdp.until(
            tab,
            "the page to reconnect and rejoin",
            "document.getElementById('log').innerText.includes('back in browser-test')",
        )
        .await;
    }
    cdp.say(&bob, "after the restart").await;
    cdp.until(
        &alice,
        "the message after the restart",
        "document.getElementById('log').innerText.includes('bob: after the restart')",
    )
    .await;

    // A server that needs a token: the page asks for one, and signs in with it.
    let secure_server = tokio::task::block_in_place(|| {
        Server::spawn(program, &["--jwt-secret", "browser-secret"], &[])
    });
    let secure = secure_server.addr;
    let tab = cdp.open(&format!("http://{secure}/")).await;
    cdp.until(&tab, "the token form", "!document.getElementById('auth-form').hidden").await;
    let claims = json!({"sub": "carol", "exp": 4_102_444_800u64}); // 2100-01-01
    let key = jsonwebtoken::EncodingKey::from_secret(b"browser-secret");
    let jwt = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap();
    let sign_in = format!(
        "document.getElementById('token').value = '{jwt}'; \
         document.getElementById('sign-in').click(); true"
    );
    cdp.eval(&tab, &sign_in).await;
    cdp.until(&tab, "signed in", "!document.getElementById('join').disabled").await;
    let line = cdp
        .eval(&tab, "document.getElementById('log').innerText.includes('connected as carol')")
        .await;
    assert_eq!(line, json!(true));
    let _ = std::fs::remove_dir_all(&profile);
}

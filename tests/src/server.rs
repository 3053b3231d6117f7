//! The `roomcast` binary as a child process on a free loopback port, for end-to-end tests.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::client::PATIENCE;

/// A running server process; killed when dropped.
#[derive(Debug)]
pub struct Server {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Server {
    /// Starts `program serve --listen <free port> args...` with `envs` set, and waits until it
    /// answers `/healthz`.
    pub fn spawn(program: &Path, args: &[&str], envs: &[(&str, &str)]) -> Self {
        // A free port: bound, then released for the server.
        let addr = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a port");
        let child = Command::new(program)
            .args(["serve", "--listen", &addr.to_string()])
            .args(args)
            .envs(envs.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the server starts");
        let mut server = Self { child, addr };
        let deadline = Instant::now() + PATIENCE;
        while crate::http::get(addr, "/healthz").is_none() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("the server exited: {status}");
            }
            assert!(Instant::now() < deadline, "the server did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    /// Kills the process and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

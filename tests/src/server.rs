//! The `roomcast` binary as a child process on a free loopback port, for end-to-end tests.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::client::PATIENCE;

/// A running server process; killed when dropped.
#[derive(Debug)]
pub struct Server {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    program: PathBuf,
    args: Vec<String>,
    envs: Vec<(String, String)>,
}

impl Server {
    /// Starts `program serve --listen <free port> args...` with `envs` set, and waits until it
    /// answers `/healthz`.
    pub fn spawn(program: &Path, args: &[&str], envs: &[(&str, &str)]) -> Self {
        // A free port: bound, then released for the server.
        let addr = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a port");
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        let envs: Vec<(String, String)> =
            envs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let child = start(program, addr, &args, &envs);
        let mut server = Self { child, addr, program: program.to_owned(), args, envs };
        server.wait_up();
        server
    }

    fn wait_up(&mut self) {
        let deadline = Instant::now() + PATIENCE;
        while crate::http::get(self.addr, "/healthz").is_none() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the server exited: {status}");
            }
            assert!(Instant::now() < deadline, "the server did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its exit status, if it has exited.
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits for the process to exit on its own; its exit status.
    pub fn wait(&mut self) -> std::process::ExitStatus {
        self.child.wait().expect("the server process can be waited for")
    }

    /// Kills the process (SIGKILL: no close frames, as a crash) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again, with the same arguments, on the same port.
    pub fn restart(&mut self) {
        self.kill();
        self.child = start(&self.program, self.addr, &self.args, &self.envs);
        self.wait_up();
    }
}

fn start(program: &Path, addr: SocketAddr, args: &[String], envs: &[(String, String)]) -> Child {
    Command::new(program)
        .args(["serve", "--listen", &addr.to_string()])
        .args(args)
        .envs(envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the server starts")
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

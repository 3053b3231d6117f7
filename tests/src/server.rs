//! The `roomcast` binary as a child process on a free loopback port, for end-to-end tests.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::client::PATIENCE;
use crate::port::Reservation;

/// A running server process; killed when dropped.
#[derive(Debug)]
pub struct Server {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its port, kept from other servers and outgoing connections for the server's lifetime.
    _port: Reservation,
    program: PathBuf,
    args: Vec<String>,
    envs: Vec<(String, String)>,
}

impl Server {
    /// Starts `program serve --listen <free port> args...` with `envs` set, and waits until it
    /// answers `/healthz`.
    pub fn spawn(program: &Path, args: &[&str], envs: &[(&str, &str)]) -> Self {
        let port = Reservation::new();
        let addr = port.addr();
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        let envs: Vec<(String, String)> =
            envs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let child = start(program, addr, &args, &envs);
        let mut server = Self { child, addr, _port: port, program: program.to_owned(), args, envs };
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

    /// Stops the process (SIGSTOP), as a machine that froze would, and returns once every one of
    /// its threads is stopped.
    ///
    /// `kill` returns when the signal is queued, not when it has taken effect: the kernel wakes
    /// one thread to begin the group stop, and until that thread runs, which on a loaded machine
    /// takes milliseconds, the others go on (answering queries, say). Every thread's state in
    /// `/proc/PID/task/*/stat` is `T` once the stop is complete.
    pub fn freeze(&mut self) {
        self.signal("STOP");
        let deadline = Instant::now() + PATIENCE;
        while !all_threads_stopped(self.child.id()) {
            assert!(Instant::now() < deadline, "the server did not stop on SIGSTOP");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Lets a [frozen](Self::freeze) process run again (SIGCONT).
    pub fn thaw(&mut self) {
        self.signal("CONT");
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Starts the server again, with the same arguments, on the same port.
    pub fn restart(&mut self) {
        self.kill();
        self.child = start(&self.program, self.addr, &self.args, &self.envs);
        self.wait_up();
    }
}

/// Whether every thread of process `pid` is stopped (state `T` in its `stat`).
fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return false };
    tasks.filter_map(Result::ok).all(|task| {
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // The state follows the command name, which is in parentheses and may hold spaces.
        let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next());
        state == Some("T")
    })
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

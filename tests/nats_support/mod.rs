//! What the scale-out tests share: a nats-server of their own on loopback (JetStream, a
//! temporary store), stopped when dropped, and `quantfold` processes beside it.

#![allow(dead_code)]

use std::{
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// A nats-server with JetStream on a free loopback port; killed (and reaped) when dropped.
pub struct Nats {
    child: Option<Child>,
    pub port: u16,
    pub store: PathBuf,
    log: PathBuf,
}

impl Nats {
    /// Starts one on a free port, its store and log under `dir`.
    pub fn start(dir: &Path) -> Nats {
        let port = free_port();
        let mut nats = Nats { child: None, port, store: dir.join("nats-store"), log: dir.join("nats-server.log") };
        nats.restart();
        nats
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts it again on the same port and store (after `kill`), and waits until it listens.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "nats-server is still running");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string(), "-sd"])
            .arg(&self.store)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start nats-server ({e}): these tests need it on PATH (Debian: apt-get install -y nats-server; .ci/run installs it)")
            });
        self.child = Some(child);
        let end = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < end,
                "nats-server did not listen on {} within 15 s:\n{}",
                self.port,
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL, and reap: the store stays for `restart`.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port nothing listens on (just now).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Waits until `done`, up to `timeout`; false if it never was.
pub fn wait_for(mut done: impl FnMut() -> bool, timeout: Duration) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Waits until `path` holds `needle`, up to `timeout`; false if it never did.
pub fn wait_for_text(path: &Path, needle: &str, timeout: Duration) -> bool {
    wait_for(|| std::fs::read_to_string(path).is_ok_and(|t| t.contains(needle)), timeout)
}

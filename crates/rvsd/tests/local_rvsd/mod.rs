//! Shared by the `control_ext` and `health_e2e` tests: an rvsd started
//! without a datapath (`--no-datapath`) on a private control socket in a
//! test directory, with its stderr kept in a file, killed by PID when the
//! guard drops (panics included); plus a plain HTTP GET and the metrics
//! address rvsd reports in its log.
//!
//! A subdirectory module, so it is compiled into each test that declares
//! `mod local_rvsd;` and is not a test binary of its own.

#![allow(clippy::unwrap_used)]

use rvs_api::protocol::SocketDirector;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const RVSD: &str = env!("CARGO_BIN_EXE_rvsd");

/// Generous bound for anything the daemon or its checker should do
/// within about a second (the machine is shared).
pub const MARGIN: Duration = Duration::from_secs(15);

/// A running rvsd; the tests add their own helpers in `impl Daemon`
/// blocks of their own.
pub struct Daemon {
    pub child: Child,
    pub socket: PathBuf,
    pub stderr: PathBuf,
}

impl Daemon {
    /// Starts rvsd with `--no-datapath --socket DIR/rvsd.sock` and
    /// `args`, and waits (bounded by `MARGIN`) until it answers a ping.
    pub fn start(dir: &Path, args: &[&str]) -> Daemon {
        let socket = dir.join("rvsd.sock");
        let stderr = dir.join("rvsd.stderr");
        let child = Command::new(RVSD)
            .arg("--no-datapath")
            .arg("--socket")
            .arg(&socket)
            .args(args)
            .env_remove("RVS_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let mut d = Daemon {
            child,
            socket,
            stderr,
        };
        let deadline = Instant::now() + MARGIN;
        loop {
            if let Ok(mut c) = SocketDirector::connect(&d.socket) {
                if c.ping().is_ok() {
                    return d;
                }
            }
            if let Ok(Some(status)) = d.child.try_wait() {
                panic!("rvsd exited ({status}): {}", d.log());
            }
            assert!(Instant::now() < deadline, "rvsd did not start: {}", d.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What rvsd wrote to stderr so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` over HTTP/1.0; the whole response, headers included.
pub fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// The metrics address rvsd bound (`--metrics-listen 127.0.0.1:0` lets
/// the kernel pick a free port, so parallel tests never race for one).
pub fn metrics_addr(log: impl Fn() -> String) -> SocketAddr {
    let deadline = Instant::now() + MARGIN;
    loop {
        let text = log();
        let found = text
            .lines()
            .filter_map(|l| l.split("metrics on http://").nth(1))
            .find_map(|rest| rest.split('/').next()?.parse().ok());
        if let Some(addr) = found {
            return addr;
        }
        assert!(
            Instant::now() < deadline,
            "no metrics address in the log:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

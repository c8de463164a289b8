//! End to end: rvsd with `--config` health-checks real HTTP servers on
//! loopback (tiny servers run by the test on random ports). A stopped
//! server leaves the table within a generous margin and comes back with
//! its weight; SIGHUP reloads; an invalid file changes nothing; the
//! metrics endpoint reports health; a keepalived.conf is read directly.
//! The daemon is killed by PID when a test ends, whatever happens.

#![allow(clippy::unwrap_used)]

use rvs_api::protocol::SocketDirector;
use rvs_api::Director;
use rvs_core::snapshot::TableSnapshot;
use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod local_rvsd;

use local_rvsd::{http_get, metrics_addr, Daemon, MARGIN};

/// A tiny HTTP server answering 200 "ok" until stopped.
struct Web {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Web {
    fn start(port: u16) -> Web {
        // Restarting on a port the test used before: the health checker's
        // own connections may hold it for a moment (bounded retry).
        let deadline = Instant::now() + MARGIN;
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", port)) {
                Ok(l) => break l,
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && port != 0 => {
                    assert!(Instant::now() < deadline, "port {port} stays in use");
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("bind 127.0.0.1:{port}: {e}"),
            }
        };
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((mut s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                        let mut buf = [0u8; 2048];
                        let _ = s.read(&mut buf);
                        let _ = s.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok");
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Web {
            port,
            stop,
            thread: Some(thread),
        }
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Web {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Daemon {
    fn table(&self) -> TableSnapshot {
        SocketDirector::connect(&self.socket)
            .unwrap()
            .table()
            .unwrap()
    }

    fn hup(&self) {
        let pid = rustix::process::Pid::from_child(&self.child);
        rustix::process::kill_process(pid, rustix::process::Signal::HUP).unwrap();
    }

    /// Wait until `f(table)` holds.
    fn wait_for(&self, what: &str, f: impl Fn(&TableSnapshot) -> bool) {
        let deadline = Instant::now() + MARGIN;
        loop {
            let t = self.table();
            if f(&t) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; table {t:?}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_log(&self, needle: &str) {
        let deadline = Instant::now() + MARGIN;
        while !self.log().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "no {needle:?} in log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// (port, weight) of every real server of the service on `vport`.
fn reals(t: &TableSnapshot, vport: u16) -> Vec<(u16, i32)> {
    let mut v: Vec<(u16, i32)> = t
        .services
        .iter()
        .filter(|s| s.config.key.port() == vport)
        .flat_map(|s| s.dests.iter().map(|d| (d.config.port, d.config.weight)))
        .collect();
    v.sort_unstable();
    v
}

fn toml(p1: u16, p2: u16, w2: i32, extra: &str) -> String {
    format!(
        r#"
[[service]]
vip = "192.0.2.1:80"
scheduler = "wrr"
delay_loop = 0.2
connect_timeout = 0.5
retry = 0
sorry_server = "127.0.0.1:9"

[[service.real]]
addr = "127.0.0.1:{p1}"
weight = 3
[[service.real.check]]
type = "http"
path = "/"

[[service.real]]
addr = "127.0.0.1:{p2}"
weight = {w2}
[[service.real.check]]
type = "http"
path = "/"
{extra}
"#
    )
}

#[test]
fn stop_leaves_restart_returns_reload_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let mut web1 = Web::start(0);
    let _web2 = Web::start(0);
    let (p1, p2) = (web1.port, _web2.port);
    let cfg = dir.path().join("rvs.toml");
    fs::write(&cfg, toml(p1, p2, 1, "")).unwrap();
    let d = Daemon::start(
        dir.path(),
        &[
            "--config",
            cfg.to_str().unwrap(),
            "--metrics-listen",
            "127.0.0.1:0",
        ],
    );
    let metrics = metrics_addr(|| d.log());
    d.wait_for("both servers", |t| {
        reals(t, 80)
            == vec![
                (p1.min(p2), if p1 < p2 { 3 } else { 1 }),
                (p1.max(p2), if p1 < p2 { 1 } else { 3 }),
            ]
    });

    // Stop web1: it leaves the pool, the log says so.
    web1.stop();
    d.wait_for("web1 removed", |t| reals(t, 80) == vec![(p2, 1)]);
    d.wait_log(&format!("TCP 192.0.2.1:80, 127.0.0.1:{p1} is gone."));

    // Metrics show it down.
    let m = http_get(metrics, "/metrics");
    assert!(
        m.contains(&format!("rvs_real_server_up{{service=\"TCP:192.0.2.1:80\",server=\"127.0.0.1:{p1}\",overridden=\"false\"}} 0")),
        "{m}"
    );
    assert!(
        m.contains(&format!(
            "rvs_real_server_weight{{service=\"TCP:192.0.2.1:80\",server=\"127.0.0.1:{p2}\"}} 1"
        )),
        "{m}"
    );
    let status = http_get(metrics, "/status");
    assert!(status.contains(&format!("127.0.0.1:{p1} DOWN")), "{status}");

    // Restart on the same port: back with weight 3.
    let _web1b = Web::start(p1);
    d.wait_for("web1 back", |t| reals(t, 80).contains(&(p1, 3)));
    d.wait_log(&format!("TCP 192.0.2.1:80, 127.0.0.1:{p1} is back."));

    // Reload: web2 weight 4 and a new service; web1 untouched.
    fs::write(
        &cfg,
        toml(
            p1,
            p2,
            4,
            "\n[[service]]\nvip = \"192.0.2.1:443\"\nscheduler = \"rr\"\n",
        ),
    )
    .unwrap();
    d.hup();
    d.wait_for("reload", |t| {
        reals(t, 80) == {
            let mut v = vec![(p1, 3), (p2, 4)];
            v.sort_unstable();
            v
        } && t.services.iter().any(|s| s.config.key.port() == 443)
    });

    // An invalid file: logged with its line, nothing changes.
    fs::write(&cfg, "[[service]]\nvip = \"192.0.2.1:80\"\nbogus = 1\n").unwrap();
    let before = d.table();
    d.hup();
    d.wait_log("line 3:");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(d.table(), before);
}

#[test]
fn all_down_gives_the_sorry_server_and_keepalived_conf_works() {
    let dir = tempfile::tempdir().unwrap();
    let mut web1 = Web::start(0);
    let p1 = web1.port;
    let sorry = Web::start(0);
    let cfg = dir.path().join("keepalived.conf");
    fs::write(
        &cfg,
        format!(
            "vrrp_instance VI_1 {{\n state MASTER\n}}\nvirtual_server 192.0.2.2 80 {{\n  delay_loop 0.2\n  lb_algo rr\n  lb_kind NAT\n  sorry_server 127.0.0.1 {}\n  real_server 127.0.0.1 {p1} {{\n    weight 2\n    HTTP_GET {{\n      url {{\n        path /\n        status_code 200\n      }}\n      connect_timeout 0.5\n      retry 0\n    }}\n  }}\n}}\n",
            sorry.port
        ),
    )
    .unwrap();
    let d = Daemon::start(
        dir.path(),
        &[
            "--config",
            cfg.to_str().unwrap(),
            "--config-format",
            "keepalived",
            "--metrics-listen",
            "127.0.0.1:0",
        ],
    );
    d.wait_log("VRRP is not supported");
    d.wait_for("real server", |t| reals(t, 80) == vec![(p1, 2)]);
    web1.stop();
    d.wait_for("sorry server", |t| reals(t, 80) == vec![(sorry.port, 1)]);
    d.wait_log("quorum lost");
    let _back = Web::start(p1);
    d.wait_for("real server back", |t| reals(t, 80) == vec![(p1, 2)]);
}

#[test]
fn config_and_state_file_are_refused_together() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("rvs.toml");
    fs::write(&cfg, "").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rvsd"))
        .args(["--no-datapath", "--socket"])
        .arg(dir.path().join("s.sock"))
        .arg("--config")
        .arg(&cfg)
        .arg("--state-file")
        .arg(dir.path().join("state"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--config and --state-file cannot be used together"),
        "{err}"
    );
}

#[test]
fn an_invalid_file_at_start_is_refused_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("rvs.toml");
    fs::write(
        &cfg,
        "[[service]]\nvip = \"192.0.2.1:80\"\nscheduler = \"nope\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rvsd"))
        .args(["--no-datapath", "--socket"])
        .arg(dir.path().join("s.sock"))
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("rvs.toml: line 1: unknown scheduler `nope'"),
        "{err}"
    );
}

//! The rvs control extensions against a real rvsd on a private socket
//! (`--no-datapath`): `--reload`, `--health`, `--drain`,
//! `--clear-override` through `SocketDirector` and the `rvsadm` binary,
//! the override rules of reload, and check latency in the metrics.
//! Real servers are TCP listeners of the test on loopback.

#![allow(clippy::unwrap_used)]

use rvs_api::protocol::SocketDirector;
use rvs_api::{Director, DirectorError, DrainReason, ServerHealthState};
use rvs_core::snapshot::TableSnapshot;
use rvs_core::{Command, DestConfig, FwdMethod, Protocol, ServiceConfig, ServiceKey};
use std::fs;
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::process::{Command as Process, Output, Stdio};
use std::time::{Duration, Instant};

mod local_rvsd;

use local_rvsd::{http_get, metrics_addr, Daemon, MARGIN, RVSD};

/// The rvsadm binary beside rvsd (built on demand).
fn rvsadm_bin() -> PathBuf {
    let path = PathBuf::from(RVSD).with_file_name("rvsadm");
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Process::new(cargo)
            .args(["build", "-p", "rvsadm", "--bin", "rvsadm"])
            .status()
            .unwrap();
        assert!(status.success());
    }
    path
}

impl Daemon {
    fn dir(&self) -> SocketDirector {
        SocketDirector::connect(&self.socket).unwrap()
    }

    fn rvsadm(&self, args: &[&str]) -> Output {
        Process::new(rvsadm_bin())
            .args(args)
            .env("RVS_SOCKET", &self.socket)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn rvsadm_ok(&self, args: &[&str]) -> String {
        let out = self.rvsadm(args);
        assert!(
            out.status.success(),
            "rvsadm {args:?}: {}\nlog:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn wait_for(&self, what: &str, f: impl Fn(&mut SocketDirector) -> bool) {
        let deadline = Instant::now() + MARGIN;
        loop {
            if f(&mut self.dir()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; table {:?}; health {:?}; log:\n{}",
                self.dir().table(),
                self.dir().health(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn vip() -> ServiceKey {
    ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        port: 80,
    }
}

fn lo() -> IpAddr {
    IpAddr::V4(Ipv4Addr::LOCALHOST)
}

/// (port, weight) of the real servers of 192.0.2.1:80.
fn reals(t: &TableSnapshot) -> Vec<(u16, i32)> {
    let mut v: Vec<(u16, i32)> = t
        .services
        .iter()
        .filter(|s| s.config.key == vip())
        .flat_map(|s| s.dests.iter().map(|d| (d.config.port, d.config.weight)))
        .collect();
    v.sort_unstable();
    v
}

fn toml(p1: u16, w1: i32, p2: Option<u16>) -> String {
    let mut t = format!(
        "[[service]]\nvip = \"192.0.2.1:80\"\nscheduler = \"wrr\"\ndelay_loop = 0.2\nconnect_timeout = 0.5\nretry = 0\ndrain_timeout = 30\n\n[[service.real]]\naddr = \"127.0.0.1:{p1}\"\nweight = {w1}\n[[service.real.check]]\ntype = \"tcp\"\n"
    );
    if let Some(p2) = p2 {
        t.push_str(&format!(
            "\n[[service.real]]\naddr = \"127.0.0.1:{p2}\"\nweight = 1\n[[service.real.check]]\ntype = \"tcp\"\n"
        ));
    }
    t
}

#[test]
fn health_drain_clear_override_and_reload_through_the_control_socket() {
    let dir = tempfile::tempdir().unwrap();
    // Listening sockets are enough for TCP checks (the kernel completes
    // the handshake without accept).
    let l1 = TcpListener::bind("127.0.0.1:0").unwrap();
    let l2 = TcpListener::bind("127.0.0.1:0").unwrap();
    let (p1, p2) = (
        l1.local_addr().unwrap().port(),
        l2.local_addr().unwrap().port(),
    );
    let cfg = dir.path().join("rvs.toml");
    fs::write(&cfg, toml(p1, 3, Some(p2))).unwrap();
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
    d.wait_for("both checked up", |c| {
        let h = c.health().unwrap();
        h.checking
            && h.services.len() == 1
            && h.services[0]
                .servers
                .iter()
                .all(|s| s.last_passed == Some(true) && s.last_latency_us.is_some())
    });
    let h = d.dir().health().unwrap();
    let s = &h.services[0];
    assert_eq!(s.service, vip());
    assert!(s.quorum_up);
    assert_eq!(s.live_weight, 4);
    let ports: Vec<u16> = s.servers.iter().map(|r| r.port).collect();
    assert_eq!(ports, vec![p1, p2], "declaration order");
    for r in &s.servers {
        assert_eq!(r.state, ServerHealthState::Up);
        assert!(!r.overridden);
        assert_eq!(r.last_result.as_deref(), Some("TCP connect ok"));
        assert_eq!(r.last_transition_ago_ms, None, "no transition since start");
    }
    let text = d.rvsadm_ok(&["--health"]);
    assert!(
        text.starts_with("TCP  192.0.2.1:80  quorum up  live weight 4\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "  -> 127.0.0.1:{p1}  UP  weight 3  last: TCP connect ok ("
        )),
        "{text}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&d.rvsadm_ok(&["--health", "--json"])).unwrap();
    assert_eq!(json["checking"], serde_json::Value::Bool(true));
    assert_eq!(json["services"][0]["servers"][1]["port"], p2);

    // Check latency is in the metrics.
    let m = http_get(metrics, "/metrics");
    assert!(
        m.contains(&format!(
            "rvs_check_duration_seconds_bucket{{service=\"TCP:192.0.2.1:80\",server=\"127.0.0.1:{p1}\",le=\"+Inf\"}} "
        )),
        "{m}"
    );
    assert!(m.contains("rvs_check_last_duration_seconds{"), "{m}");

    // Operator drain of p1 through rvsadm: weight 0 at once; with no
    // connection it is deleted on the next tick.
    let out = d.rvsadm_ok(&[
        "--drain",
        "-t",
        "192.0.2.1:80",
        "-r",
        &format!("127.0.0.1:{p1}"),
        "--timeout",
        "30",
    ]);
    assert!(
        out.starts_with(&format!(
            "draining TCP  192.0.2.1:80 -> 127.0.0.1:{p1}  operator  active 0  inactive 0  for "
        )),
        "{out}"
    );
    d.wait_for("p1 drained away", |c| {
        reals(&c.table().unwrap()) == vec![(p2, 1)]
    });
    d.wait_for("p1 is an operator override", |c| {
        c.health().unwrap().services[0]
            .servers
            .iter()
            .any(|r| r.port == p1 && r.overridden)
    });
    assert!(
        d.log().contains("drained: no connection left, removed"),
        "{}",
        d.log()
    );
    // The checks pass, but the operator took it out: it stays out.
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(reals(&d.dir().table().unwrap()), vec![(p2, 1)]);

    // Clear the override: the checker puts it back with its weight.
    d.dir().clear_override(vip(), lo(), p1).unwrap();
    d.wait_for("p1 back", |c| {
        reals(&c.table().unwrap()) == {
            let mut v = vec![(p1, 3), (p2, 1)];
            v.sort_unstable();
            v
        }
    });
    // Clearing again: not overridden.
    let again = d.dir().clear_override(vip(), lo(), p1).unwrap_err();
    assert!(again.to_string().contains("is not overridden"), "{again}");

    // A hand edit is an override; a reload that changes that server's
    // declaration hands it back (the file is the newer intent).
    let mut dest = DestConfig::new(lo(), p1);
    dest.fwd = FwdMethod::Masq;
    dest.weight = 7;
    d.dir()
        .apply(vec![Command::EditDest {
            service: vip(),
            dest,
        }])
        .unwrap();
    d.wait_for("hand edit seen", |c| {
        c.health().unwrap().services[0]
            .servers
            .iter()
            .any(|r| r.port == p1 && r.overridden)
    });
    // Reload with p2 gone and p1 at weight 5: p2 drains (weight 0, then
    // removed: no connections), p1's override is cleared.
    fs::write(&cfg, toml(p1, 5, None)).unwrap();
    let out = d.rvsadm_ok(&["--reload"]);
    assert!(
        out.starts_with(&format!("reloaded {}: ", cfg.display())),
        "{out}"
    );
    assert!(out.ends_with(", 1 override(s) cleared\n"), "{out}");
    d.wait_for("reloaded table", |c| {
        reals(&c.table().unwrap()) == vec![(p1, 5)]
    });
    assert!(
        d.log().contains(&format!(
            "127.0.0.1:{p2} draining (removed from the configuration)"
        )),
        "{}",
        d.log()
    );

    // An invalid file: refused with its line, nothing changes.
    fs::write(&cfg, "[[service]]\nvip = \"192.0.2.1:80\"\nbogus = 1\n").unwrap();
    let before = d.dir().table().unwrap();
    let out = d.rvsadm(&["--reload"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3:"), "{err}");
    assert!(err.contains("reload refused, nothing changed"), "{err}");
    assert_eq!(d.dir().table().unwrap(), before);

    // --reload --clear-overrides hands every override back.
    fs::write(&cfg, toml(p1, 5, None)).unwrap();
    let mut dest = DestConfig::new(lo(), p1);
    dest.fwd = FwdMethod::Masq;
    dest.weight = 9;
    d.dir()
        .apply(vec![Command::EditDest {
            service: vip(),
            dest,
        }])
        .unwrap();
    d.wait_for("second hand edit seen", |c| {
        c.health().unwrap().services[0].servers[0].overridden
    });
    let s = d.dir().reload(false).unwrap();
    assert_eq!(s.overrides_cleared, 0, "unchanged declaration keeps it");
    assert_eq!(reals(&d.dir().table().unwrap()), vec![(p1, 9)]);
    let s = d.dir().reload(true).unwrap();
    assert_eq!(s.overrides_cleared, 1);
    d.wait_for("weight from the file", |c| {
        reals(&c.table().unwrap()) == vec![(p1, 5)]
    });
    drop((l1, l2));
}

#[test]
fn drain_without_config_removes_an_idle_server_and_clear_override_restores() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    let mut svc = ServiceConfig::new(vip());
    svc.scheduler = "rr".into();
    let mut a = DestConfig::new(IpAddr::V4(Ipv4Addr::new(192, 168, 1, 2)), 80);
    a.fwd = FwdMethod::Masq;
    a.weight = 4;
    d.dir()
        .apply(vec![
            Command::AddService(svc),
            Command::AddDest {
                service: vip(),
                dest: a.clone(),
            },
        ])
        .unwrap();

    // No health checking: listed as such, no services.
    let h = d.dir().health().unwrap();
    assert!(!h.checking && h.services.is_empty() && h.drains.is_empty());
    let e = d.dir().reload(false).unwrap_err();
    assert_eq!(
        e,
        DirectorError::Transport("rvsd runs without --config: nothing to reload".into())
    );

    // Unknown server: refused with ipvsadm's words.
    let out = d.rvsadm(&["--drain", "-t", "192.0.2.1:80", "-r", "192.168.1.9:80"]);
    assert_eq!(out.status.code(), Some(255));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "No such destination\n"
    );

    // Drain, then cancel it: the weight comes back.
    let st = d.dir().drain(vip(), a.addr, 80, Some(600)).unwrap();
    assert_eq!(st.reason, DrainReason::Operator);
    assert_eq!(st.timeout_ms, Some(600_000));
    let t = d.dir().table().unwrap();
    assert_eq!(t.services[0].dests[0].config.weight, 0);
    // It has no connection, so the next tick removes it... unless
    // cancelled first; race-free check: cancel is refused once it is gone.
    match d.dir().clear_override(vip(), a.addr, 80) {
        Ok(()) => {
            let t = d.dir().table().unwrap();
            assert_eq!(t.services[0].dests[0].config.weight, 4);
        }
        Err(e) => assert!(e.to_string().contains("not overridden or draining"), "{e}"),
    }
    // A drain with no connection ends within a tick or two.
    let _ = d.dir().apply(vec![Command::EditDest {
        service: vip(),
        dest: a.clone(),
    }]);
    let _ = d.dir().apply(vec![Command::AddDest {
        service: vip(),
        dest: a.clone(),
    }]);
    d.dir().drain(vip(), a.addr, 80, None).unwrap();
    d.wait_for("drained server removed", |c| {
        c.table().unwrap().services[0].dests.is_empty() && c.health().unwrap().drains.is_empty()
    });
    assert!(d.log().contains("drained: no connection left, removed"));
}

//! Draining end to end with real packets: the seed's NAT topology, rvsd
//! with a `--config` whose service drains, and a client holding one TCP
//! connection open through the VIP. A reload that removes the server
//! carrying that connection leaves it listed with weight 0 and ActiveConn
//! 1 (new requests go elsewhere) until the client closes; then it is
//! deleted.
//!
//! Needs root; skipped otherwise. Namespaces and processes are removed by
//! their guards on every exit path.

use rvs_testnet::{is_root, NatTopology, Netns, NAT_VIP};
use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

const RVSD: &str = env!("CARGO_BIN_EXE_rvsd");

fn rvsadm_bin() -> PathBuf {
    let path = PathBuf::from(RVSD).with_file_name("rvsadm");
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = std::process::Command::new(cargo)
            .args(["build", "-p", "rvsadm", "--bin", "rvsadm"])
            .status()
            .expect("run cargo build -p rvsadm");
        assert!(status.success(), "cargo build -p rvsadm failed");
    }
    path
}

fn config(reals: &[&str]) -> String {
    let mut t = String::from(
        "[[service]]\nvip = \"198.51.100.10:80\"\nscheduler = \"rr\"\nmethod = \"nat\"\ndelay_loop = 0.5\nconnect_timeout = 1\nretry = 0\ndrain_timeout = 120\n",
    );
    for r in reals {
        t.push_str(&format!(
            "\n[[service.real]]\naddr = \"{r}:80\"\n[[service.real.check]]\ntype = \"tcp\"\n"
        ));
    }
    t
}

/// Holds one TCP connection to VIP:80 until `release` exists, then
/// closes it with a reset (SO_LINGER 0), so the director sees it end at
/// once instead of lingering in TIME_WAIT.
const HOLDER: &str = r#"
import os, socket, struct, sys, time
s = socket.create_connection((sys.argv[1], 80), timeout=10)
open(sys.argv[2], "w").write("up")
while not os.path.exists(sys.argv[3]):
    time.sleep(0.05)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
"#;

struct Ctx<'a> {
    ns: &'a Netns,
    socket: String,
    log: PathBuf,
    rvsadm: PathBuf,
}

impl Ctx<'_> {
    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn rvsadm(&self, args: &[&str]) -> Output {
        let exe = self.rvsadm.to_string_lossy().to_string();
        let mut argv = vec![exe.as_str()];
        argv.extend_from_slice(args);
        self.ns
            .output(&argv, &[("RVS_SOCKET", &self.socket)])
            .expect("run rvsadm")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.rvsadm(args);
        assert!(
            out.status.success(),
            "rvsadm {args:?}: {}\nrvsd log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log_text()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `-> RIP:80  Masq  W  Active  Inactive` rows of `-L -n`, as words.
    fn rows(&self) -> Vec<Vec<String>> {
        parse_rows(&self.ok(&["-L", "-n"]))
    }

    /// Wait until `f(rows)` holds. A failing `rvsadm` inside the wait is
    /// one more try, not a failure (rvsd may be starting, or slow on a
    /// loaded machine); the last error is in the message at the end.
    fn wait(&self, what: &str, secs: u64, f: impl Fn(&Vec<Vec<String>>) -> bool) {
        let mut last = Err(String::new());
        let ok = Netns::wait_for(what, Duration::from_secs(secs), || {
            let out = self.rvsadm(&["-L", "-n"]);
            last = if out.status.success() {
                Ok(parse_rows(&String::from_utf8_lossy(&out.stdout)))
            } else {
                Err(String::from_utf8_lossy(&out.stderr).into_owned())
            };
            last.as_ref().is_ok_and(&f)
        });
        assert!(
            ok.is_ok(),
            "{what}: rows {last:?}\nrvsd log:\n{}",
            self.log_text()
        );
    }
}

fn parse_rows(listing: &str) -> Vec<Vec<String>> {
    listing
        .lines()
        .filter(|l| l.trim_start().starts_with("-> 203."))
        .map(|l| l.split_whitespace().skip(1).map(str::to_string).collect())
        .collect()
}

#[test]
fn reload_drains_a_server_until_its_held_connection_closes() {
    if !is_root() {
        eprintln!("skipped: needs root for network namespaces");
        return;
    }
    let topo = NatTopology::create("rvdrain").expect("build the NAT topology");
    let cfg = topo.log_path("rvs.toml");
    std::fs::write(&cfg, config(&["203.0.113.11", "203.0.113.12"])).expect("config");
    let socket = topo.log_path("rvsd.sock").to_string_lossy().to_string();
    let log = topo.log_path("rvsd.log");
    let cfg_s = cfg.to_string_lossy().to_string();
    let _rvsd = topo
        .director
        .spawn(
            &[
                RVSD,
                "--socket",
                &socket,
                "--config",
                &cfg_s,
                "--metrics-listen",
                "127.0.0.1:0",
            ],
            &[],
            Some(&log),
        )
        .expect("start rvsd");
    let d = Ctx {
        ns: &topo.director,
        socket,
        log,
        rvsadm: rvsadm_bin(),
    };
    // rvsd may take a while to serve its socket on a loaded machine; the
    // wait tolerates rvsadm failing until then.
    d.wait("both real servers", 30, |r| r.len() == 2);
    Netns::wait_for("steering", Duration::from_secs(20), || {
        d.log_text()
            .contains("steering 1 service(s), 2 NAT source(s)")
    })
    .unwrap_or_else(|e| panic!("{e}; rvsd log:\n{}", d.log_text()));

    // The client holds one connection open.
    let up = topo.log_path("holder.up");
    let release = topo.log_path("holder.release");
    let vip = NAT_VIP.to_string();
    let (up_s, rel_s) = (
        up.to_string_lossy().to_string(),
        release.to_string_lossy().to_string(),
    );
    topo.client
        .spawn(
            &["/usr/bin/python3", "-c", HOLDER, &vip, &up_s, &rel_s],
            &[],
            Some(&topo.log_path("holder.log")),
        )
        .expect("start the holder");
    Netns::wait_for("held connection", Duration::from_secs(20), || up.exists())
        .unwrap_or_else(|e| panic!("{e}; rvsd log:\n{}", d.log_text()));
    d.wait("ActiveConn 1", 20, |r| {
        r.iter().any(|w| w.get(3).map(String::as_str) == Some("1"))
    });
    let busy = d
        .rows()
        .into_iter()
        .find(|w| w.get(3).map(String::as_str) == Some("1"))
        .and_then(|w| w.first().cloned())
        .expect("the server holding the connection");
    let busy_ip = busy.trim_end_matches(":80").to_string();
    let other_ip = if busy_ip == "203.0.113.11" {
        "203.0.113.12"
    } else {
        "203.0.113.11"
    };

    // Reload without the busy server: it drains.
    std::fs::write(&cfg, config(&[other_ip])).expect("config");
    let out = d.ok(&["--reload"]);
    assert!(out.starts_with("reloaded "), "{out}");
    d.wait("busy server at weight 0", 20, |r| {
        r.iter()
            .any(|w| w.first() == Some(&busy) && w.get(2).map(String::as_str) == Some("0"))
    });
    // It stays listed while the connection is open, and reports it.
    std::thread::sleep(Duration::from_secs(2));
    let rows = d.rows();
    let row = rows
        .iter()
        .find(|w| w.first() == Some(&busy))
        .unwrap_or_else(|| panic!("drained server gone too early: {rows:?}\n{}", d.log_text()));
    assert_eq!(
        row.get(1..4),
        Some(&["Masq".to_string(), "0".into(), "1".into()][..])
    );
    let health = d.ok(&["--health"]);
    assert!(
        health.contains(&format!(
            "Draining:\n  TCP  198.51.100.10:80 -> {busy}  reload  active 1  inactive 0  for "
        )),
        "{health}"
    );
    // New connections go to the remaining server.
    assert_eq!(
        topo.curl_from_client(NAT_VIP, 80).as_deref(),
        Ok(if other_ip == "203.0.113.11" {
            "RS1-web1"
        } else {
            "RS2-web2"
        })
    );

    // The client closes: once the entry expires (CLOSE after a reset, 10
    // s), the server is deleted.
    std::fs::write(&release, "go").expect("release");
    d.wait("drained server removed", 60, |r| {
        r.len() == 1 && r[0].first().map(String::as_str) == Some(&format!("{other_ip}:80"))
    });
    assert!(
        d.log_text()
            .contains("drained: no connection left, removed"),
        "{}",
        d.log_text()
    );
}

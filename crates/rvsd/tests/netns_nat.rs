//! End-to-end: the seed's NAT walkthrough with real packets. Four network
//! namespaces (client, director, two real servers running HTTP servers),
//! rvsd in the director namespace on a private control socket, the
//! `rvsadm` binary driving it through `RVS_SOCKET`, curl from the client.
//! Expected outputs are the real kernel's (`shared/refvm/captures/seed-nat`).
//!
//! Needs root; skipped otherwise. Every namespace and process is owned by
//! a guard that removes it on any exit path, panics included.

use rvs_testnet::{is_root, NatTopology, Netns, Spawned, NAT_VIP};
use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

const RVSD: &str = env!("CARGO_BIN_EXE_rvsd");

/// The rvsadm binary: beside rvsd in the target directory (built on
/// demand when only rvsd's tests were built).
fn rvsadm() -> PathBuf {
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

struct Director<'a> {
    ns: &'a Netns,
    socket: String,
    log: PathBuf,
    rvsd: Spawned,
    rvsadm: PathBuf,
}

impl<'a> Director<'a> {
    fn start(topo: &'a NatTopology) -> Director<'a> {
        let socket = topo.log_path("rvsd.sock").to_string_lossy().to_string();
        let log = topo.log_path("rvsd.log");
        let rvsd = topo
            .director
            .spawn(&[RVSD, "--socket", &socket], &[], Some(&log))
            .expect("start rvsd");
        let d = Director {
            ns: &topo.director,
            socket,
            log,
            rvsd,
            rvsadm: rvsadm(),
        };
        Netns::wait_for("rvsd control socket", Duration::from_secs(20), || {
            d.try_ipvsadm(&["-L", "-n"]).status.success()
        })
        .unwrap_or_else(|e| panic!("{e}; rvsd log:\n{}", d.log_text()));
        d
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn try_ipvsadm(&self, args: &[&str]) -> Output {
        let exe = self.rvsadm.to_string_lossy().to_string();
        let mut argv = vec![exe.as_str()];
        argv.extend_from_slice(args);
        self.ns
            .output(&argv, &[("RVS_SOCKET", &self.socket)])
            .expect("run rvsadm")
    }

    fn ipvsadm(&self, line: &str) -> String {
        let args: Vec<&str> = line.split_whitespace().collect();
        let out = self.try_ipvsadm(&args);
        assert!(
            out.status.success(),
            "ipvsadm {line} failed: {}\nrvsd log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log_text()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Wait until rvsd has installed rules steering `services` services
    /// and `nat` NAT sources.
    fn wait_steering(&self, services: usize, nat: usize) {
        let want = format!("steering {services} service(s), {nat} NAT source(s)");
        Netns::wait_for(&want, Duration::from_secs(10), || {
            self.log_text().lines().last_steering() == Some(want.clone())
        })
        .unwrap_or_else(|e| panic!("{e}; rvsd log:\n{}", self.log_text()));
    }

    /// Wait until `ipvsadm -L -n` prints exactly `expected`.
    fn wait_listing(&self, expected: &str) {
        let mut last = String::new();
        let ok = Netns::wait_for("ipvsadm -L -n", Duration::from_secs(10), || {
            last = self.ipvsadm("-L -n");
            last == expected
        });
        assert!(
            ok.is_ok(),
            "ipvsadm -L -n:\n{last}\nexpected:\n{expected}\nrvsd log:\n{}",
            self.log_text()
        );
    }
}

trait LastSteering {
    fn last_steering(self) -> Option<String>;
}

impl<'a, I: Iterator<Item = &'a str>> LastSteering for I {
    fn last_steering(self) -> Option<String> {
        self.filter_map(|l| l.split("datapath: ").nth(1))
            .filter(|l| l.starts_with("steering "))
            .map(|l| l.split(", 0 mark").next().unwrap_or(l).to_string())
            .last()
    }
}

fn curls(topo: &NatTopology, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            topo.curl_from_client(NAT_VIP, 80)
                .unwrap_or_else(|e| format!("curl failed: {e}"))
        })
        .collect()
}

const HEADER: &str = "IP Virtual Server version 1.2.1 (size=4096)\n\
Prot LocalAddress:Port Scheduler Flags\n  \
-> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n";

#[test]
fn seed_nat_walkthrough_with_real_packets() {
    if !is_root() {
        eprintln!("skipped: needs root for network namespaces");
        return;
    }
    let topo = NatTopology::create("rvnat").expect("build the NAT topology");
    let d = Director::start(&topo);

    d.ipvsadm("-A -t 198.51.100.10:80 -s rr");
    d.ipvsadm("-a -t 198.51.100.10:80 -r 203.0.113.11 -m");
    d.ipvsadm("-a -t 198.51.100.10:80 -r 203.0.113.12 -m");
    d.wait_steering(1, 2);

    let got = curls(&topo, 4);
    assert_eq!(
        got,
        ["RS2-web2", "RS1-web1", "RS2-web2", "RS1-web1"],
        "rvsd log:\n{}",
        d.log_text()
    );
    d.wait_listing(&format!(
        "{HEADER}TCP  198.51.100.10:80 rr\n  \
-> 203.0.113.11:80              Masq    1      0          2         \n  \
-> 203.0.113.12:80              Masq    1      0          2         \n"
    ));

    d.ipvsadm("-E -t 198.51.100.10:80 -s wrr");
    d.ipvsadm("-e -t 198.51.100.10:80 -r 203.0.113.11 -m -w 3");
    d.ipvsadm("-e -t 198.51.100.10:80 -r 203.0.113.12 -m -w 1");
    let got = curls(&topo, 8);
    assert_eq!(
        got,
        [
            "RS2-web2", "RS1-web1", "RS1-web1", "RS1-web1", "RS2-web2", "RS1-web1", "RS1-web1",
            "RS1-web1"
        ],
        "rvsd log:\n{}",
        d.log_text()
    );
    d.wait_listing(&format!(
        "{HEADER}TCP  198.51.100.10:80 wrr\n  \
-> 203.0.113.11:80              Masq    3      0          8         \n  \
-> 203.0.113.12:80              Masq    1      0          4         \n"
    ));

    // Not LVS traffic reaches the director's own stack while port 80 is
    // balanced: a server of the director on VIP:8080 (like ssh on 22).
    rvs_testnet::start_http_on(
        &topo.director,
        &topo.dir,
        "director",
        (NAT_VIP, 8080),
        "director-own",
    )
    .expect("the director's own server");
    assert_eq!(
        topo.curl_from_client(NAT_VIP, 8080).as_deref(),
        Ok("director-own")
    );
    // ... and the wrr sequence goes on where it was.
    assert_eq!(curls(&topo, 1), ["RS2-web2"]);

    assert!(
        topo.director.is_running(d.rvsd),
        "rvsd died:\n{}",
        d.log_text()
    );
    let status = topo.director.stop(d.rvsd, Duration::from_secs(5));
    assert!(
        status
            .as_deref()
            .is_some_and(|s| s.contains("exit status: 0")),
        "rvsd stop: {status:?}\n{}",
        d.log_text()
    );
    // A clean stop takes rvsd's rules away.
    let rules = topo
        .director
        .run(&["iptables-save"])
        .expect("iptables-save");
    assert!(!String::from_utf8_lossy(&rules.stdout).contains("RVS-"));

    // Fail open: with rvsd killed (-9) its rules stay but bypass the dead
    // queue, so the kernel handles everything: the director's own server
    // answers, and VIP:80 is refused by the director's stack at once
    // instead of hanging.
    let d = Director::start(&topo);
    d.ipvsadm("-A -t 198.51.100.10:80 -s rr");
    d.ipvsadm("-a -t 198.51.100.10:80 -r 203.0.113.11 -m");
    d.wait_steering(1, 1);
    assert_eq!(curls(&topo, 1), ["RS1-web1"]);
    topo.director.kill(d.rvsd);
    assert_eq!(
        topo.curl_from_client(NAT_VIP, 8080).as_deref(),
        Ok("director-own")
    );
    let refused = topo.curl_from_client(NAT_VIP, 80);
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.contains("refused") || e.contains("Couldn't connect")),
        "{refused:?}"
    );
}

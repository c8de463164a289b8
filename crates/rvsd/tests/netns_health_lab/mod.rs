//! Shared by the `netns_health*` end-to-end tests: the seed's NAT
//! topology (client, director, two real servers with HTTP servers) with
//! rvsd started from a `--config` file inside the director namespace,
//! plus what those tests look at: the pool as `ipvsadm -L -n` lists it
//! (service lines and `-> RIP:PORT FWD WEIGHT`, connection columns left
//! out), rvsd's log, the health listing, bounded curl loops from the
//! client, and extra real-server hosts on the director's bridge.
//!
//! Every namespace is owned by a guard (`NatTopology`, `Netns`) that
//! kills the processes it started, by PID, and deletes itself on every
//! exit path, panics included.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use rvs_testnet::{
    is_root, tx_checksum_off, unique_prefix, veth, workspace_bin, NatTopology, Netns, Rvsd,
    Spawned, NAT_VIP,
};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

pub const RVSD: &str = env!("CARGO_BIN_EXE_rvsd");

/// Generous bound for anything the checker does within a second or two
/// (the machine is shared; intervals in these tests are 0.3-0.5 s).
pub const MARGIN: Duration = Duration::from_secs(15);

/// The rvsadm binary beside rvsd (built on demand).
pub fn rvsadm() -> PathBuf {
    workspace_bin(Path::new(RVSD), "rvsadm", "rvsadm").expect("the rvsadm binary")
}

/// One test's network: the NAT topology plus extra hosts on its bridge.
pub struct Lab {
    pub topo: NatTopology,
    /// Hosts added with [`Lab::add_host`] (dropped after the topology).
    pub hosts: Vec<Netns>,
    pub rvsadm: PathBuf,
}

impl Lab {
    /// Build the topology, or `None` (with a message) when not root.
    pub fn new(tag: &str) -> Option<Lab> {
        if !is_root() {
            eprintln!("skipped: needs root for network namespaces");
            return None;
        }
        let topo = NatTopology::create(tag).expect("build the NAT topology");
        Some(Lab {
            topo,
            hosts: Vec::new(),
            rvsadm: rvsadm(),
        })
    }

    /// A file of this test's directory (removed with the topology).
    pub fn path(&self, name: &str) -> PathBuf {
        self.topo.log_path(name)
    }

    pub fn path_str(&self, name: &str) -> String {
        self.path(name).to_string_lossy().into_owned()
    }

    /// Write `text` to `name` in the test directory; its path.
    pub fn write(&self, name: &str, text: &str) -> String {
        let p = self.path(name);
        std::fs::write(&p, text).expect("write a test file");
        p.to_string_lossy().into_owned()
    }

    /// A notify command that appends its arguments, one line per call,
    /// to `notify.log`; its path.
    pub fn notify_script(&self) -> String {
        let log = self.path_str("notify.log");
        let script = self.write("notify.sh", &format!("#!/bin/sh\necho \"$@\" >> {log}\n"));
        let mut perm = std::fs::metadata(&script).expect("notify.sh").permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
        std::fs::set_permissions(&script, perm).expect("chmod notify.sh");
        script
    }

    pub fn notify_log(&self) -> String {
        std::fs::read_to_string(self.path("notify.log")).unwrap_or_default()
    }

    /// Start rvsd in the director namespace with `args` (its socket is
    /// added) and wait until it serves its control socket.
    pub fn rvsd(&self, args: &[&str]) -> Rvsd<'_> {
        Rvsd::start(
            &self.topo.director,
            Path::new(RVSD),
            &self.rvsadm,
            &self.topo.dir,
            args,
        )
        .unwrap_or_else(|e| panic!("start rvsd: {e}"))
    }

    /// Plug another host into the director's bridge as `ip`/24 (gateway
    /// the DIP), named `name` (also the director's port name, so at most
    /// 15 characters).
    pub fn add_host(&mut self, name: &str, ip: Ipv4Addr) -> &Netns {
        let ns = Netns::create(&format!("{}-{name}", unique_prefix("rvh"))).expect("namespace");
        let d = &self.topo.director;
        veth(d, name, &ns, "eth0").expect("veth");
        d.ip(&["link", "set", name, "master", "br0"])
            .expect("bridge port");
        ns.ip(&["addr", "add", &format!("{ip}/24"), "dev", "eth0"])
            .expect("address");
        ns.ip(&["route", "add", "default", "via", "203.0.113.1"])
            .expect("route");
        tx_checksum_off(&ns, "eth0");
        self.hosts.push(ns);
        self.hosts.last().expect("just pushed")
    }

    /// `curl http://addr:port/` from the client: the trimmed body, or
    /// the error.
    pub fn curl(&self, addr: Ipv4Addr, port: u16) -> Result<String, String> {
        self.topo.curl_from_client(addr, port)
    }

    /// `n` requests to VIP:port one after the other (bounded: each is
    /// bounded by curl's own 5 s limit).
    pub fn curls(&self, port: u16, n: usize) -> Vec<Result<String, String>> {
        (0..n).map(|_| self.curl(NAT_VIP, port)).collect()
    }
}

/// Run `rvsadm args` against `d`; panics if it cannot be started.
pub fn rvsadm_out(d: &Rvsd<'_>, args: &[&str]) -> Output {
    d.try_ipvsadm(args).expect("run rvsadm")
}

/// `-L -n` reduced to what health checking decides: `TCP VIP:PORT SCHED`
/// service lines and `-> RIP:PORT FWD WEIGHT` server lines, in order.
pub fn pool_of(listing: &str) -> Vec<String> {
    listing
        .lines()
        .skip(3)
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            match w.first() {
                Some(&"->") => Some(format!("-> {} {} {}", w.get(1)?, w.get(2)?, w.get(3)?)),
                Some(_) => Some(w.get(..3)?.join(" ")),
                None => None,
            }
        })
        .collect()
}

pub fn pool(d: &Rvsd<'_>) -> Vec<String> {
    pool_of(&d.ipvsadm("-L -n").unwrap_or_else(|e| e.to_string()))
}

/// Wait until the pool is exactly `expected`.
pub fn wait_pool(d: &Rvsd<'_>, expected: &[&str], timeout: Duration) {
    let mut last = Vec::new();
    let ok = Netns::wait_for("pool", timeout, || {
        last = pool(d);
        last == expected
    });
    assert!(
        ok.is_ok(),
        "pool after {timeout:?}:\n{last:#?}\nexpected:\n{expected:#?}\nrvsd log:\n{}",
        d.log_text()
    );
}

/// Wait until rvsd's log contains `needle`.
pub fn wait_log(d: &Rvsd<'_>, needle: &str, timeout: Duration) {
    let ok = Netns::wait_for(needle, timeout, || d.log_text().contains(needle));
    assert!(
        ok.is_ok(),
        "no `{needle}' in rvsd's log after {timeout:?}:\n{}",
        d.log_text()
    );
}

/// Wait until the datapath steers `services` services and `nat` NAT
/// sources (so replies of every listed real server are translated).
pub fn wait_steering(d: &Rvsd<'_>, services: usize, nat: usize) {
    d.wait_steering(services, nat)
        .unwrap_or_else(|e| panic!("{e}; rvsd log:\n{}", d.log_text()));
}

/// `rvsadm --health` text.
pub fn health(d: &Rvsd<'_>) -> String {
    d.ipvsadm("--health").unwrap_or_else(|e| e.to_string())
}

/// The `--health` line of one server (`  -> 203.0.113.11:80  UP ...`).
pub fn health_line(text: &str, server: &str) -> Option<String> {
    let needle = format!("-> {server}  ");
    text.lines()
        .find(|l| l.trim_start().starts_with(&needle))
        .map(|l| l.trim().to_string())
}

/// Wait until the health line of `server` satisfies `f`; the line.
pub fn wait_health(d: &Rvsd<'_>, server: &str, what: &str, f: impl Fn(&str) -> bool) -> String {
    let mut last = String::new();
    let ok = Netns::wait_for(what, MARGIN, || {
        last = health(d);
        health_line(&last, server).is_some_and(|l| f(&l))
    });
    assert!(
        ok.is_ok(),
        "{what}: health listing:\n{last}\nrvsd log:\n{}",
        d.log_text()
    );
    health_line(&last, server).unwrap_or_default()
}

/// Send SIGHUP to rvsd (a process this test started).
pub fn sighup(d: &Rvsd<'_>) {
    let status = std::process::Command::new("kill")
        .args(["-HUP", &d.pid.pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -HUP {}", d.pid.pid);
}

/// Lowercase hex MD5 of `data` computed by coreutils' `md5sum` (not by
/// the code under test).
pub fn md5sum(data: &[u8]) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("md5sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run md5sum");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(data)
        .expect("feed md5sum");
    let out = child.wait_with_output().expect("md5sum output");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Stop a process a namespace started; panics if it was not ours.
pub fn stop(ns: &Netns, p: Spawned) {
    ns.stop(p, Duration::from_secs(3))
        .unwrap_or_else(|| panic!("process {} was not started by this test", p.pid));
}

/// Wait until `f()` holds, polling every 50 ms, at most `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if f() {
            return true;
        }
        if start.elapsed() >= timeout {
            eprintln!("{what}: not after {timeout:?}");
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

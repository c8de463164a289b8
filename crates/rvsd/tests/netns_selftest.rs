//! End-to-end equivalent of the Linux kernel's IPVS selftest
//! (`tools/testing/selftests/net/netfilter/ipvs.sh`), written here: one
//! virtual service on VIP:8080 with one real server, in NAT, DR and TUN
//! mode; random payloads (32 bytes, as the selftest sends, and 256 KiB)
//! go from the client through the VIP to a one-shot `socat` listener on
//! the real server, and what it wrote must equal what was sent.
//!
//! The DR and TUN cases also check that the real server's replies never
//! cross the director: the client receives every packet from VIP:8080
//! with the real server's (DR) or the router's (TUN) source MAC and none
//! with the director's, the director's own netfilter never sees one, its
//! `--stats` OutPkts stay 0, and the real server's route to the client
//! does not go through the director.
//!
//! Needs root; skipped otherwise. Namespaces and processes are removed on
//! every exit path, panics included.

use rvs_testnet::{
    count_rule, is_root, mac_of, random_bytes, rule_counters, socat_receiver, socat_send,
    workspace_bin, DrTopology, NatTopology, Netns, Rvsd, TunTopology,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

const RVSD: &str = env!("CARGO_BIN_EXE_rvsd");
const VIP: &str = "198.51.100.10";
const CIP: &str = "198.51.100.2";
const PORT: u16 = 8080;
/// The selftest's payload size, then a bigger one spanning many segments.
const SIZES: [usize; 2] = [32, 256 * 1024];

fn bin(package: &str, name: &str) -> PathBuf {
    workspace_bin(Path::new(RVSD), package, name).expect("build a workspace binary")
}

fn start_rvsd<'a>(ns: &'a Netns, dir: &Path) -> Rvsd<'a> {
    Rvsd::start(ns, Path::new(RVSD), &bin("rvsadm", "rvsadm"), dir, &[]).expect("start rvsd")
}

/// `rvs-realserver start --mode <mode>` for the VIP on `rs`.
fn realserver_start(rs: &Netns, dir: &Path, mode: &str) {
    let exe = bin("rvs-realserver", "rvs-realserver");
    let out = rs
        .output(
            &[
                &exe.to_string_lossy(),
                "start",
                "--vip",
                VIP,
                "--mode",
                mode,
                "--run-dir",
                &dir.to_string_lossy(),
            ],
            &[],
        )
        .expect("run rvs-realserver");
    assert!(
        out.status.success(),
        "rvs-realserver start: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Send each payload of [`SIZES`] from the client to VIP:8080 and check
/// that the real server received exactly it.
fn payloads_arrive_intact(client: &Netns, rs: &Netns, dir: &Path, d: &Rvsd<'_>) {
    for (i, size) in SIZES.into_iter().enumerate() {
        let payload = random_bytes(size).expect("random payload");
        let out = dir.join(format!("received-{i}"));
        let rx = socat_receiver(rs, PORT, &out).expect("socat listener on the real server");
        socat_send(client, VIP, PORT, &payload, 20).unwrap_or_else(|e| {
            panic!(
                "send {size} bytes through the VIP: {e}\nrvsd log:\n{}",
                d.log_text()
            )
        });
        Netns::wait_for("the receiver to finish", Duration::from_secs(10), || {
            !rs.is_running(rx)
        })
        .unwrap_or_else(|e| panic!("{e}\nrvsd log:\n{}", d.log_text()));
        let got = std::fs::read(&out).expect("received file");
        assert_eq!(
            got.len(),
            payload.len(),
            "{size}-byte payload: size differs\n{}",
            director_diagnostics(d)
        );
        assert!(got == payload, "{size}-byte payload: content differs");
    }
}

/// The director's NFQUEUE state and TCP resets sent by its own stack, for
/// failure messages (a reset from the director means a segment for the
/// VIP reached its own stack instead of rvsd).
fn director_diagnostics(d: &Rvsd<'_>) -> String {
    let text = |argv: &[&str]| {
        d.ns.output(argv, &[])
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_default()
    };
    format!(
        "director nfnetlink_queue:\n{}director nstat:\n{}rvsd log:\n{}",
        text(&["cat", "/proc/net/netfilter/nfnetlink_queue"]),
        text(&["nstat", "-az", "TcpOutRsts"]),
        d.log_text()
    )
}

/// The service's InPkts and OutPkts from `ipvsadm -L -n --stats`.
fn service_packets(d: &Rvsd<'_>) -> (u64, u64) {
    let stats = d.ipvsadm("-L -n --stats").expect("--stats");
    let w: Vec<u64> = stats
        .lines()
        .nth(3)
        .unwrap_or_default()
        .split_whitespace()
        .skip(2)
        .map(|n| n.parse().unwrap_or(u64::MAX))
        .collect();
    assert_eq!(w.len(), 5, "{stats}");
    (w[1], w[2])
}

fn listing(fwd: &str, rip: &str, inact: u32) -> String {
    format!(
        "IP Virtual Server version 1.2.1 (size=4096)\n\
Prot LocalAddress:Port Scheduler Flags\n  \
-> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
TCP  198.51.100.10:8080 rr\n  \
-> {:<28} {fwd:<7} 1      0          {inact:<10}\n",
        format!("{rip}:8080")
    )
}

/// Counting rules on the client (replies from VIP:8080 by source MAC)
/// and on the director (any packet from VIP:8080 reaching its
/// netfilter), installed before traffic starts.
fn count_replies(client: &Netns, director: &Netns, direct_mac: &str) {
    let director_mac = mac_of(director, "eth0").expect("mac");
    let from_vip = ["-s", VIP, "-p", "tcp", "--sport", "8080"];
    for (mac, tag) in [
        (direct_mac, "direct"),
        (director_mac.as_str(), "via-director"),
    ] {
        let mut m = from_vip.to_vec();
        m.extend_from_slice(&["-m", "mac", "--mac-source", mac]);
        count_rule(client, "raw", "PREROUTING", &m, tag).expect("rule");
    }
    count_rule(director, "raw", "PREROUTING", &from_vip, "seen").expect("rule");
    count_rule(director, "mangle", "POSTROUTING", &from_vip, "sent").expect("rule");
}

/// The replies went straight to the client: see [`count_replies`].
fn assert_replies_bypassed_director(client: &Netns, director: &Netns, d: &Rvsd<'_>) {
    let direct = rule_counters(client, "raw", "PREROUTING", "direct").expect("counter");
    let via = rule_counters(client, "raw", "PREROUTING", "via-director").expect("counter");
    assert!(direct.0 > 0, "no reply reached the client directly");
    assert_eq!(via.0, 0, "replies came from the director's MAC");
    for (table, chain, tag) in [
        ("raw", "PREROUTING", "seen"),
        ("mangle", "POSTROUTING", "sent"),
    ] {
        let n = rule_counters(director, table, chain, tag).expect("counter");
        assert_eq!(n.0, 0, "the director's {table}/{chain} saw replies");
    }
    let (inpkts, outpkts) = service_packets(d);
    assert!(inpkts > 0);
    assert_eq!(
        outpkts, 0,
        "OutPkts must stay 0 when replies bypass the director"
    );
}

/// The real server's route back to the client, for replies sent from the
/// VIP: must not name any director address.
fn route_to_client(rs: &Netns) -> String {
    let out = rs
        .run(&["ip", "-4", "route", "get", CIP, "from", VIP])
        .expect("ip route get");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn selftest_nat_payload_integrity() {
    if !is_root() {
        eprintln!("skipped: needs root for network namespaces");
        return;
    }
    let topo = NatTopology::create("rvstn").expect("topology");
    let d = start_rvsd(&topo.director, &topo.dir);
    d.ipvsadm("-A -t 198.51.100.10:8080 -s rr")
        .expect("ipvsadm");
    d.ipvsadm("-a -t 198.51.100.10:8080 -r 203.0.113.11:8080 -m")
        .expect("ipvsadm");
    d.wait_steering(1, 1).expect("steering");
    payloads_arrive_intact(&topo.client, &topo.rs1, &topo.dir, &d);
    d.wait_output("-L -n", &listing("Masq", "203.0.113.11", 2))
        .unwrap_or_else(|e| panic!("{e}"));
    // NAT: the replies do cross the director, rewritten.
    let (inpkts, outpkts) = service_packets(&d);
    assert!(inpkts > 0 && outpkts > 0, "in {inpkts} out {outpkts}");
}

#[test]
fn selftest_dr_payload_integrity_and_direct_replies() {
    if !is_root() {
        eprintln!("skipped: needs root for network namespaces");
        return;
    }
    let topo = DrTopology::create("rvstd").expect("topology");
    realserver_start(&topo.rs1, &topo.dir, "dr");
    let rs_mac = mac_of(&topo.rs1, "eth0").expect("mac");
    count_replies(&topo.client, &topo.director, &rs_mac);
    let d = start_rvsd(&topo.director, &topo.dir);
    d.ipvsadm("-A -t 198.51.100.10:8080 -s rr")
        .expect("ipvsadm");
    d.ipvsadm("-a -t 198.51.100.10:8080 -r 198.51.100.11:8080 -g")
        .expect("ipvsadm");
    d.wait_steering(1, 0).expect("steering");
    payloads_arrive_intact(&topo.client, &topo.rs1, &topo.dir, &d);
    // The director sees only client -> server packets: both connections
    // end in FIN_WAIT, counted as InActConn.
    d.wait_output("-L -n", &listing("Route", "198.51.100.11", 2))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_replies_bypassed_director(&topo.client, &topo.director, &d);
    // On the same L2 segment: the client is on-link for the real server.
    let route = route_to_client(&topo.rs1);
    assert!(route.contains("dev eth0"), "{route}");
    assert!(!route.contains(" via "), "{route}");
}

#[test]
fn selftest_tun_payload_integrity_and_direct_replies() {
    if !is_root() {
        eprintln!("skipped: needs root for network namespaces");
        return;
    }
    let topo = TunTopology::create("rvstt").expect("topology");
    realserver_start(&topo.rs1, &topo.dir, "tun");
    let router_mac = mac_of(&topo.router, "eth0").expect("mac");
    count_replies(&topo.client, &topo.director, &router_mac);
    let d = start_rvsd(&topo.director, &topo.dir);
    d.ipvsadm("-A -t 198.51.100.10:8080 -s rr")
        .expect("ipvsadm");
    d.ipvsadm("-a -t 198.51.100.10:8080 -r 203.0.113.11:8080 -i")
        .expect("ipvsadm");
    d.wait_steering(1, 0).expect("steering");
    payloads_arrive_intact(&topo.client, &topo.rs1, &topo.dir, &d);
    d.wait_output("-L -n", &listing("Tunnel", "203.0.113.11", 2))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_replies_bypassed_director(&topo.client, &topo.director, &d);
    // The real server's way back is its own gateway (the router), never
    // the director (198.51.100.1 / .10).
    let route = route_to_client(&topo.rs1);
    assert!(route.contains("via 203.0.113.1 "), "{route}");
    assert!(!route.contains("198.51.100.1 "), "{route}");
}

//! End-to-end: the seed's LVS-TUN walkthrough with real packets. The real
//! servers sit in another network (203.0.113.0/24) that the director
//! reaches only through a router; rvsd encapsulates client packets in
//! IPIP (DIP -> RIP), `rvs-realserver start --mode tun` decapsulates them
//! on each real server (this kernel has no ipip module) and the real
//! servers answer the client directly from the VIP, through the router.
//! Expected results are the real kernel's
//! (`shared/refvm/captures/seed-tun`): rr alternates RS2, RS1, ...; wrr
//! 3:1; only client -> server packets are counted; save prints
//! `--tun-type ipip`.
//!
//! Needs root; skipped otherwise. Namespaces and processes are removed on
//! every exit path, panics included.

use rvs_testnet::{curl, is_root, mac_of, workspace_bin, Netns, Rvsd, TunTopology, TUN_VIP};
use std::path::{Path, PathBuf};

const RVSD: &str = env!("CARGO_BIN_EXE_rvsd");

fn bin(package: &str, name: &str) -> PathBuf {
    workspace_bin(Path::new(RVSD), package, name).expect("build a workspace binary")
}

const HEADER: &str = "IP Virtual Server version 1.2.1 (size=4096)\n\
Prot LocalAddress:Port Scheduler Flags\n  \
-> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n";

fn listing(sched: &str, w1: u32, rs1: (u32, u32), rs2: (u32, u32)) -> String {
    format!(
        "{HEADER}TCP  198.51.100.10:80 {sched}\n  \
-> 203.0.113.11:80              Tunnel  {w1:<6} {:<10} {:<10}\n  \
-> 203.0.113.12:80              Tunnel  1      {:<10} {:<10}\n",
        rs1.0, rs1.1, rs2.0, rs2.1
    )
}

fn curls(ns: &Netns, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| curl(ns, TUN_VIP, 80).unwrap_or_else(|e| format!("curl failed: {e}")))
        .collect()
}

fn count_replies_from(client: &Netns, mac: &str) {
    client
        .run(&[
            "iptables",
            "-w",
            "-t",
            "raw",
            "-A",
            "PREROUTING",
            "-s",
            "198.51.100.10",
            "-p",
            "tcp",
            "--sport",
            "80",
            "-m",
            "mac",
            "--mac-source",
            mac,
        ])
        .expect("counting rule");
}

fn replies_from(client: &Netns, mac: &str) -> u64 {
    let out = client
        .run(&[
            "iptables",
            "-w",
            "-t",
            "raw",
            "-L",
            "PREROUTING",
            "-v",
            "-n",
            "-x",
        ])
        .expect("iptables -L");
    let text = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
    text.lines()
        .find(|l| l.contains(&mac.to_ascii_lowercase()))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no counter for {mac} in:\n{text}"))
}

#[test]
fn seed_tun_walkthrough_rr_then_wrr() {
    if !is_root() {
        eprintln!("skipped: needs root for network namespaces");
        return;
    }
    let topo = TunTopology::create("rvtun").expect("build the TUN topology");
    let rs_exe = bin("rvs-realserver", "rvs-realserver")
        .to_string_lossy()
        .to_string();
    let run_dir = topo.dir.to_string_lossy().to_string();
    let rs_cmd = |rs: &Netns, cmd: &str| {
        rs.output(
            &[
                &rs_exe,
                cmd,
                "--vip",
                "198.51.100.10",
                "--mode",
                "tun",
                "--run-dir",
                &run_dir,
            ],
            &[],
        )
        .expect("run rvs-realserver")
    };
    for rs in [&topo.rs1, &topo.rs2] {
        let out = rs_cmd(rs, "start");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let st = rs_cmd(rs, "status");
        let text = String::from_utf8_lossy(&st.stdout).to_string();
        assert!(st.status.success(), "{text}");
        assert!(text.contains("IPIP decapsulator: running"), "{text}");
    }

    let router_mac = mac_of(&topo.router, "eth0").expect("mac");
    let director_mac = mac_of(&topo.director, "eth0").expect("mac");
    count_replies_from(&topo.client, &router_mac);
    count_replies_from(&topo.client, &director_mac);

    let d = Rvsd::start(
        &topo.director,
        Path::new(RVSD),
        &bin("rvsadm", "rvsadm"),
        &topo.dir,
        &[],
    )
    .expect("start rvsd");
    d.ipvsadm("-A -t 198.51.100.10:80 -s rr").expect("ipvsadm");
    d.ipvsadm("-a -t 198.51.100.10:80 -r 203.0.113.11 -i")
        .expect("ipvsadm");
    d.ipvsadm("-a -t 198.51.100.10:80 -r 203.0.113.12 -i")
        .expect("ipvsadm");
    assert_eq!(
        d.ipvsadm("-L -n").expect("list"),
        listing("rr", 1, (0, 0), (0, 0))
    );
    d.wait_steering(1, 0).expect("steering");

    assert_eq!(
        curls(&topo.client, 6),
        ["RS2-web2", "RS1-web1", "RS2-web2", "RS1-web1", "RS2-web2", "RS1-web1"],
        "rvsd log:\n{}",
        d.log_text()
    );
    d.wait_output("-L -n", &listing("rr", 1, (0, 3), (0, 3)))
        .unwrap_or_else(|e| panic!("{e}"));
    let stats = d.ipvsadm("-L -n --stats").expect("--stats");
    let svc: Vec<String> = stats
        .lines()
        .nth(3)
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect();
    // Conns 6, OutPkts 0, OutBytes 0: replies never cross the director.
    assert_eq!(
        (svc[2].as_str(), svc[4].as_str(), svc[6].as_str()),
        ("6", "0", "0"),
        "{stats}"
    );
    assert!(replies_from(&topo.client, &router_mac) > 0);
    assert_eq!(replies_from(&topo.client, &director_mac), 0);
    assert_eq!(
        d.ipvsadm("-S -n").expect("save"),
        "-A -t 198.51.100.10:80 -s rr\n\
-a -t 198.51.100.10:80 -r 203.0.113.11:80 -i -w 1 --tun-type ipip\n\
-a -t 198.51.100.10:80 -r 203.0.113.12:80 -i -w 1 --tun-type ipip\n"
    );

    d.ipvsadm("-E -t 198.51.100.10:80 -s wrr").expect("ipvsadm");
    d.ipvsadm("-e -t 198.51.100.10:80 -r 203.0.113.11 -i -w 3")
        .expect("ipvsadm");
    assert_eq!(
        curls(&topo.client, 8),
        [
            "RS2-web2", "RS1-web1", "RS1-web1", "RS1-web1", "RS2-web2", "RS1-web1", "RS1-web1",
            "RS1-web1"
        ],
        "rvsd log:\n{}",
        d.log_text()
    );

    // Without its decapsulator a TUN real server gets nothing it can use.
    let out = rs_cmd(&topo.rs1, "stop");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let st = rs_cmd(&topo.rs1, "status");
    assert_eq!(st.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&st.stdout).contains("IPIP decapsulator: not running"));
}

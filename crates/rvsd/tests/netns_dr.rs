//! End-to-end: the seed's LVS-DR walkthrough with real packets. A client,
//! a director and two real servers on one bridge; VIP on the director's
//! eth0 and on each real server's `lo` (set up by `rvs-realserver start
//! --mode dr`); `-s wlc` with weights 2 and 1. Expected results are the
//! real kernel's (`shared/refvm/captures/seed-dr`): the curl sequence,
//! the listing (a DR director sees only client -> server packets, so
//! finished connections sit in FIN_WAIT and count as InActConn), and the
//! wlc choices while three connections are held open.
//!
//! Needs root; skipped otherwise. Namespaces and processes are removed on
//! every exit path, panics included.

use rvs_testnet::{
    curl, hold_tcp, is_root, mac_of, workspace_bin, DrTopology, Netns, Rvsd, DR_VIP,
};
use std::path::{Path, PathBuf};

const RVSD: &str = env!("CARGO_BIN_EXE_rvsd");

fn bin(package: &str, name: &str) -> PathBuf {
    workspace_bin(Path::new(RVSD), package, name).expect("build a workspace binary")
}

const HEADER: &str = "IP Virtual Server version 1.2.1 (size=4096)\n\
Prot LocalAddress:Port Scheduler Flags\n  \
-> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n";

fn listing(rs1: (u32, u32), rs2: (u32, u32)) -> String {
    format!(
        "{HEADER}TCP  198.51.100.10:80 wlc\n  \
-> 198.51.100.11:80             Route   2      {:<10} {:<10}\n  \
-> 198.51.100.12:80             Route   1      {:<10} {:<10}\n",
        rs1.0, rs1.1, rs2.0, rs2.1
    )
}

fn curls(ns: &Netns, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| curl(ns, DR_VIP, 80).unwrap_or_else(|e| format!("curl failed: {e}")))
        .collect()
}

/// Packets the client received from VIP:80 with source MAC `mac`
/// (counted by a rule installed by [`count_replies_from`]).
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

#[test]
fn seed_dr_walkthrough_wlc_2_1() {
    if !is_root() {
        eprintln!("skipped: needs root for network namespaces");
        return;
    }
    let topo = DrTopology::create("rvdr").expect("build the DR topology");
    let realserver = bin("rvs-realserver", "rvs-realserver");
    let rs_exe = realserver.to_string_lossy().to_string();
    let run_dir = topo.dir.to_string_lossy().to_string();
    for rs in [&topo.rs1, &topo.rs2] {
        let out = rs
            .run(&[
                &rs_exe,
                "start",
                "--vip",
                "198.51.100.10",
                "--mode",
                "dr",
                "--run-dir",
                &run_dir,
            ])
            .expect("rvs-realserver start");
        assert!(out.status.success());
    }
    // The seed checks the real server's addresses and ARP sysctls.
    let addrs = topo
        .rs1
        .run(&["ip", "-br", "addr", "show", "lo"])
        .expect("ip addr");
    assert!(String::from_utf8_lossy(&addrs.stdout).contains("198.51.100.10/32"));
    let st = topo
        .rs1
        .output(&[&rs_exe, "status", "--run-dir", &run_dir], &[])
        .expect("status");
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stdout)
    );

    let macs = [
        mac_of(&topo.rs1, "eth0").expect("mac"),
        mac_of(&topo.rs2, "eth0").expect("mac"),
        mac_of(&topo.director, "eth0").expect("mac"),
    ];
    for m in &macs {
        count_replies_from(&topo.client, m);
    }

    let d = Rvsd::start(
        &topo.director,
        Path::new(RVSD),
        &bin("rvsadm", "rvsadm"),
        &topo.dir,
        &[],
    )
    .expect("start rvsd");
    d.ipvsadm("-A -t 198.51.100.10:80 -s wlc").expect("ipvsadm");
    d.ipvsadm("-a -t 198.51.100.10:80 -r 198.51.100.11 -g -w 2")
        .expect("ipvsadm");
    d.ipvsadm("-a -t 198.51.100.10:80 -r 198.51.100.12 -g -w 1")
        .expect("ipvsadm");
    assert_eq!(d.ipvsadm("-L -n").expect("list"), listing((0, 0), (0, 0)));
    d.wait_steering(1, 0).expect("steering");

    // Nine sequential curls: the real kernel's wlc order.
    assert_eq!(
        curls(&topo.client, 9),
        [
            "RS2-web2", "RS1-web1", "RS1-web1", "RS2-web2", "RS1-web1", "RS1-web1", "RS2-web2",
            "RS1-web1", "RS1-web1"
        ],
        "rvsd log:\n{}",
        d.log_text()
    );
    d.wait_output("-L -n", &listing((0, 6), (0, 3)))
        .unwrap_or_else(|e| panic!("{e}"));
    // Every connection sits in FIN_WAIT (the director never sees replies).
    let conns = d.ipvsadm("-L -c -n").expect("-L -c");
    let mut lines = conns.lines();
    assert_eq!(lines.next(), Some("IPVS connection entries"));
    assert_eq!(
        lines.next(),
        Some("pro expire state       source             virtual            destination")
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 9, "{conns}");
    for r in &rows {
        let w: Vec<&str> = r.split_whitespace().collect();
        assert_eq!(
            (w[0], w[2], w[4]),
            ("TCP", "FIN_WAIT", "198.51.100.10:80"),
            "{conns}"
        );
        assert!(w[3].starts_with("198.51.100.2:"), "{conns}");
    }
    assert_eq!(
        rows.iter()
            .filter(|r| r.ends_with("198.51.100.11:80"))
            .count(),
        6
    );
    assert_eq!(
        rows.iter()
            .filter(|r| r.ends_with("198.51.100.12:80"))
            .count(),
        3
    );
    // In bytes and packets only (OutPkts 0): replies never crossed the
    // director; the client got them from the real servers' MACs.
    let stats = d.ipvsadm("-L -n --stats").expect("--stats");
    let svc = stats.lines().nth(3).unwrap_or_default().to_string();
    let w: Vec<&str> = svc.split_whitespace().collect();
    assert_eq!((w[2], w[4], w[6]), ("9", "0", "0"), "{stats}");
    assert!(replies_from(&topo.client, &macs[0]) > 0);
    assert!(replies_from(&topo.client, &macs[1]) > 0);
    assert_eq!(replies_from(&topo.client, &macs[2]), 0);
    assert_eq!(
        d.ipvsadm("-S -n").expect("save"),
        "-A -t 198.51.100.10:80 -s wlc\n\
-a -t 198.51.100.10:80 -r 198.51.100.11:80 -g -w 2\n\
-a -t 198.51.100.10:80 -r 198.51.100.12:80 -g -w 1\n"
    );

    // Three connections held open: wlc now weighs ActiveConn (x256).
    let mut held = Vec::new();
    for (i, want) in [((0, 6), (1, 3)), ((1, 6), (1, 3)), ((2, 6), (1, 3))]
        .into_iter()
        .enumerate()
    {
        held.push(hold_tcp(&topo.client, &topo.dir, (DR_VIP, 80), 30).expect("hold"));
        d.wait_output("-L -n", &listing(want.0, want.1))
            .unwrap_or_else(|e| panic!("held connection {}: {e}", i + 1));
    }
    assert_eq!(
        curls(&topo.client, 3),
        ["RS2-web2", "RS1-web1", "RS1-web1"],
        "rvsd log:\n{}",
        d.log_text()
    );
    for p in held {
        topo.client.kill(p);
    }
    d.wait_output("-L -n", &listing((0, 10), (0, 5)))
        .unwrap_or_else(|e| panic!("{e}"));

    for rs in [&topo.rs1, &topo.rs2] {
        let out = rs
            .run(&[
                &rs_exe,
                "stop",
                "--vip",
                "198.51.100.10",
                "--mode",
                "dr",
                "--run-dir",
                &run_dir,
            ])
            .expect("rvs-realserver stop");
        assert!(out.status.success());
    }
    let addrs = topo
        .rs1
        .run(&["ip", "-br", "addr", "show", "lo"])
        .expect("ip addr");
    assert!(!String::from_utf8_lossy(&addrs.stdout).contains("198.51.100.10"));
}

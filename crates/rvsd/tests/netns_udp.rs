//! End-to-end UDP service, DNS-like: each real server runs a `socat` UDP
//! server on port 53 that answers every datagram with the query's id and
//! its own name; the client sends several queries, each from a new source
//! port, and must get each answer back (to the socket that asked, from
//! VIP:53). Run through NAT (replies rewritten by the director) and DR
//! (replies straight from the real server, whose server is bound to the
//! VIP on its `lo`).
//!
//! rr alternates RS2, RS1, ... as the kernel does; `ipvsadm -L -n` shows
//! each UDP connection entry as InActConn and never as ActiveConn (the
//! kernel counts only TCP ESTABLISHED and SCTP as active); `-L -c -n`
//! lists the entries in state `UDP`.
//!
//! Needs root; skipped otherwise. Namespaces and processes are removed on
//! every exit path, panics included.

use rvs_testnet::{is_root, wait_listening, workspace_bin, DrTopology, NatTopology, Netns, Rvsd};
use std::path::{Path, PathBuf};
use std::time::Duration;

const RVSD: &str = env!("CARGO_BIN_EXE_rvsd");
const QUERIES: usize = 6;

fn bin(package: &str, name: &str) -> PathBuf {
    workspace_bin(Path::new(RVSD), package, name).expect("build a workspace binary")
}

fn start_rvsd<'a>(ns: &'a Netns, dir: &Path) -> Rvsd<'a> {
    Rvsd::start(ns, Path::new(RVSD), &bin("rvsadm", "rvsadm"), dir, &[]).expect("start rvsd")
}

/// A socat UDP server on `bind`:53 in `rs` answering `<query> <name>`.
fn start_udp_server(rs: &Netns, dir: &Path, bind: &str, name: &str) {
    rs.spawn(
        &[
            "socat",
            "-T",
            "1",
            &format!("UDP4-RECVFROM:53,bind={bind},reuseaddr,fork"),
            // Read the query before answering: socat's child may fail
            // when the answer is written before the query is consumed.
            &format!("SYSTEM:read q; echo \"$q {name}\""),
        ],
        &[],
        Some(&dir.join(format!("socat-{name}.log"))),
    )
    .expect("socat");
    wait_listening(rs, "udp", 53, Duration::from_secs(10)).expect("socat listening");
}

/// Send `QUERIES` queries `q<i>`, each from a new socket (a new source
/// port), to VIP:53; one line per query: `<source port> <answer>` or
/// `<source port> error: ...`.
fn run_queries(client: &Netns) -> Vec<(u16, String)> {
    let script = format!(
        "import socket\n\
         for i in range({QUERIES}):\n    \
             s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n    \
             s.settimeout(3)\n    \
             s.connect(('198.51.100.10',53))\n    \
             s.send(b'q%d\\n' % i)\n    \
             try:\n        a=s.recv(512).decode().strip()\n    \
             except Exception as e:\n        a='error: %s' % e\n    \
             print(s.getsockname()[1], a, flush=True)\n    \
             s.close()\n"
    );
    let out = client
        .output(&["/usr/bin/python3", "-c", &script], &[])
        .expect("python3");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (port, answer) = l.split_once(' ')?;
            Some((port.parse().ok()?, answer.to_string()))
        })
        .collect()
}

/// Check the answers: query `q<i>` answered by the rr sequence RS2, RS1,
/// ..., from distinct source ports.
fn assert_answers(got: &[(u16, String)], names: [&str; 2], d: &Rvsd<'_>) {
    let want: Vec<String> = (0..QUERIES)
        .map(|i| format!("q{i} {}", names[(i + 1) % 2]))
        .collect();
    let answers: Vec<String> = got.iter().map(|(_, a)| a.clone()).collect();
    assert_eq!(answers, want, "rvsd log:\n{}", d.log_text());
    let mut ports: Vec<u16> = got.iter().map(|(p, _)| *p).collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), QUERIES, "source ports were reused: {got:?}");
}

fn listing(fwd: &str, rip1: &str, rip2: &str, each: usize) -> String {
    format!(
        "Prot LocalAddress:Port Scheduler Flags\n  \
-> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
UDP  198.51.100.10:53 rr\n  \
-> {:<28} {fwd:<7} 1      0          {each:<10}\n  \
-> {:<28} {fwd:<7} 1      0          {each:<10}\n",
        format!("{rip1}:53"),
        format!("{rip2}:53")
    )
}

/// Every row of `-L -c -n` is a UDP entry in state `UDP` from the client
/// to VIP:53, with one distinct client port per query.
fn assert_conn_entries(d: &Rvsd<'_>, got: &[(u16, String)], rips: [&str; 2]) {
    let text = d.ipvsadm("-L -c -n").expect("-L -c");
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip(2)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), QUERIES, "{text}");
    for (i, (port, _)) in got.iter().enumerate() {
        let src = format!("198.51.100.2:{port}");
        let dst = format!("{}:53", rips[(i + 1) % 2]);
        assert!(
            rows.iter().any(|w| w[0] == "UDP"
                && w[2] == "UDP"
                && w[3] == src
                && w[4] == "198.51.100.10:53"
                && w[5] == dst),
            "no UDP entry {src} -> {dst} in:\n{text}"
        );
    }
}

#[test]
fn udp_dns_like_through_nat() {
    if !is_root() {
        eprintln!("skipped: needs root for network namespaces");
        return;
    }
    let topo = NatTopology::create("rvun").expect("topology");
    start_udp_server(&topo.rs1, &topo.dir, "203.0.113.11", "RS1-dns1");
    start_udp_server(&topo.rs2, &topo.dir, "203.0.113.12", "RS2-dns2");
    let d = start_rvsd(&topo.director, &topo.dir);
    for l in [
        "-A -u 198.51.100.10:53 -s rr",
        "-a -u 198.51.100.10:53 -r 203.0.113.11 -m",
        "-a -u 198.51.100.10:53 -r 203.0.113.12 -m",
    ] {
        d.ipvsadm(l).unwrap_or_else(|e| panic!("{e}"));
    }
    d.wait_steering(1, 2).expect("steering");
    let got = run_queries(&topo.client);
    assert_answers(&got, ["RS1-dns1", "RS2-dns2"], &d);
    d.wait_output(
        "-L -n -u 198.51.100.10:53",
        &listing("Masq", "203.0.113.11", "203.0.113.12", QUERIES / 2),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_conn_entries(&d, &got, ["203.0.113.11", "203.0.113.12"]);
    // NAT: the answers crossed the director (OutPkts counted).
    let stats = d.ipvsadm("-L -n --stats").expect("--stats");
    let w: Vec<&str> = stats
        .lines()
        .nth(3)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        (w[2], w[3], w[4]),
        ("6", "6", "6"),
        "Conns InPkts OutPkts:\n{stats}"
    );
}

#[test]
fn udp_dns_like_through_dr() {
    if !is_root() {
        eprintln!("skipped: needs root for network namespaces");
        return;
    }
    let topo = DrTopology::create("rvud").expect("topology");
    topo.configure_real_servers()
        .expect("VIP on the real servers' lo");
    // Bound to the VIP, so the answers leave from the VIP.
    start_udp_server(&topo.rs1, &topo.dir, "198.51.100.10", "RS1-dns1");
    start_udp_server(&topo.rs2, &topo.dir, "198.51.100.10", "RS2-dns2");
    let d = start_rvsd(&topo.director, &topo.dir);
    for l in [
        "-A -u 198.51.100.10:53 -s rr",
        "-a -u 198.51.100.10:53 -r 198.51.100.11 -g",
        "-a -u 198.51.100.10:53 -r 198.51.100.12 -g",
    ] {
        d.ipvsadm(l).unwrap_or_else(|e| panic!("{e}"));
    }
    d.wait_steering(1, 0).expect("steering");
    let got = run_queries(&topo.client);
    assert_answers(&got, ["RS1-dns1", "RS2-dns2"], &d);
    d.wait_output(
        "-L -n -u 198.51.100.10:53",
        &listing("Route", "198.51.100.11", "198.51.100.12", QUERIES / 2),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_conn_entries(&d, &got, ["198.51.100.11", "198.51.100.12"]);
    // DR: the answers went straight to the client (OutPkts 0).
    let stats = d.ipvsadm("-L -n --stats").expect("--stats");
    let w: Vec<&str> = stats
        .lines()
        .nth(3)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        (w[2], w[3], w[4]),
        ("6", "6", "0"),
        "Conns InPkts OutPkts:\n{stats}"
    );
}

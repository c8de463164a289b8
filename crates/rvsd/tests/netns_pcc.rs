//! End-to-end PCC (persistent client connection, the seed's port-0
//! recipe): `-A -t VIP:0 -s rr -p 600` with two NAT real servers that
//! listen on ports 80, 23 and 22. Every connection of one client, to any
//! of the three ports, lands on the one real server its first connection
//! was scheduled to; a second client address is scheduled afresh (rr's
//! next server) and sticks to that one. The persistence templates have
//! client port 0 and virtual port 0, as the kernel's do.
//!
//! Needs root; skipped otherwise. Namespaces and processes are removed on
//! every exit path, panics included.

use rvs_testnet::{
    is_root, start_http_on, workspace_bin, NatTopology, Netns, Rvsd, NAT_RIP1, NAT_RIP2,
};
use std::path::{Path, PathBuf};

const RVSD: &str = env!("CARGO_BIN_EXE_rvsd");
const CLIENT_A: &str = "198.51.100.2";
const CLIENT_B: &str = "198.51.100.3";

fn bin(package: &str, name: &str) -> PathBuf {
    workspace_bin(Path::new(RVSD), package, name).expect("build a workspace binary")
}

/// `curl http://VIP:port/` from `client` with source address `from`.
fn curl_from(client: &Netns, from: &str, port: u16) -> String {
    let url = format!("http://198.51.100.10:{port}/");
    let out = client
        .output(
            &[
                "curl",
                "-sS",
                "--noproxy",
                "*",
                "--max-time",
                "5",
                "--interface",
                from,
                &url,
            ],
            &[],
        )
        .expect("run curl");
    if out.status.success() {
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    } else {
        format!(
            "curl failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )
    }
}

/// Rows of `ipvsadm -L -c -n` without the expire column, client ports
/// other than 0 masked as `*`, sorted.
fn conn_rows(d: &Rvsd<'_>) -> Vec<String> {
    let text = d.ipvsadm("-L -c -n").unwrap_or_else(|e| panic!("{e}"));
    let mut rows: Vec<String> = text
        .lines()
        .skip(2)
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let mut kept = vec![w[0].to_string()];
            for word in &w[2..] {
                let masked = match word.rsplit_once(':') {
                    Some((a, p)) if (a == CLIENT_A || a == CLIENT_B) && p != "0" => {
                        format!("{a}:*")
                    }
                    _ => word.to_string(),
                };
                kept.push(masked);
            }
            kept.join(" ")
        })
        .collect();
    rows.sort();
    rows
}

#[test]
fn pcc_port_zero_keeps_ports_80_23_22_of_a_client_on_one_real_server() {
    if !is_root() {
        eprintln!("skipped: needs root for network namespaces");
        return;
    }
    let topo = NatTopology::create("rvpc3").expect("topology");
    topo.client
        .ip(&["addr", "add", "198.51.100.3/24", "dev", "eth0"])
        .expect("second client address");
    for (rs, rip, n) in [(&topo.rs1, NAT_RIP1, 1), (&topo.rs2, NAT_RIP2, 2)] {
        for (port, what) in [(23, "telnet"), (22, "ssh")] {
            start_http_on(
                rs,
                &topo.dir,
                &format!("rs{n}-{port}"),
                (rip, port),
                &format!("RS{n}-{what}{n}"),
            )
            .expect("extra server");
        }
    }
    let d = Rvsd::start(
        &topo.director,
        Path::new(RVSD),
        &bin("rvsadm", "rvsadm"),
        &topo.dir,
        &[],
    )
    .expect("start rvsd");
    for l in [
        "-A -t 198.51.100.10:0 -s rr -p 600",
        "-a -t 198.51.100.10:0 -r 203.0.113.11 -m",
        "-a -t 198.51.100.10:0 -r 203.0.113.12 -m",
    ] {
        d.ipvsadm(l).unwrap_or_else(|e| panic!("{e}"));
    }
    d.wait_steering(1, 2).expect("steering");

    // Client A's first connection is scheduled (rr: RS2 first, as the
    // kernel's seed capture shows); every later one follows the template.
    let a: Vec<String> = [80, 23, 22, 80, 22, 23]
        .into_iter()
        .map(|p| curl_from(&topo.client, CLIENT_A, p))
        .collect();
    assert_eq!(
        a,
        [
            "RS2-web2",
            "RS2-telnet2",
            "RS2-ssh2",
            "RS2-web2",
            "RS2-ssh2",
            "RS2-telnet2"
        ],
        "{}",
        d.log_text()
    );
    // Client B is a new client: rr's next server, for every port.
    let b: Vec<String> = [22, 80, 23]
        .into_iter()
        .map(|p| curl_from(&topo.client, CLIENT_B, p))
        .collect();
    assert_eq!(
        b,
        ["RS1-ssh1", "RS1-web1", "RS1-telnet1"],
        "{}",
        d.log_text()
    );

    let mut want = vec![
        "TCP ASSURED 198.51.100.2:0 198.51.100.10:0 203.0.113.12:0".to_string(),
        "TCP ASSURED 198.51.100.3:0 198.51.100.10:0 203.0.113.11:0".to_string(),
    ];
    for p in [80, 23, 22, 80, 22, 23] {
        want.push(format!(
            "TCP TIME_WAIT 198.51.100.2:* 198.51.100.10:{p} 203.0.113.12:{p}"
        ));
    }
    for p in [22, 80, 23] {
        want.push(format!(
            "TCP TIME_WAIT 198.51.100.3:* 198.51.100.10:{p} 203.0.113.11:{p}"
        ));
    }
    want.sort();
    assert_eq!(conn_rows(&d), want);
    d.wait_output(
        "-L -n --persistent-conn",
        "IP Virtual Server version 1.2.1 (size=4096)\n\
Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn \n  \
-> RemoteAddress:Port\n\
TCP  198.51.100.10:0 rr persistent 600\n  \
-> 203.0.113.11:0               1         1           0          3         \n  \
-> 203.0.113.12:0               1         1           0          6         \n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
}

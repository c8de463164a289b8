//! End-to-end in the NAT topology, with real packets: the seed's
//! persistence recipes (PPC `-p 600`, firewall mark 8 grouping ports 80
//! and 23 with the seed's own iptables command), a UDP service (socat
//! answering each datagram) and the ICMP port unreachable a service with
//! no real server sends. Expected listings follow the real kernel's
//! formats (`shared/refvm/captures/seed-nat`, `ipvs-reference.md`): the
//! persistence template is `ASSURED` with client port 0, and a fwmark
//! template shows protocol `IP` and virtual `0.0.0.8:0`.
//!
//! Needs root; skipped otherwise. Namespaces and processes are removed on
//! every exit path, panics included.

use rvs_testnet::{
    curl, is_root, start_http_on, workspace_bin, NatTopology, Netns, Rvsd, NAT_RIP1, NAT_RIP2,
    NAT_VIP,
};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const RVSD: &str = env!("CARGO_BIN_EXE_rvsd");

fn bin(package: &str, name: &str) -> PathBuf {
    workspace_bin(Path::new(RVSD), package, name).expect("build a workspace binary")
}

fn start(topo: &NatTopology) -> Rvsd<'_> {
    Rvsd::start(
        &topo.director,
        Path::new(RVSD),
        &bin("rvsadm", "rvsadm"),
        &topo.dir,
        &[],
    )
    .expect("start rvsd")
}

fn run(d: &Rvsd<'_>, lines: &[&str]) {
    for l in lines {
        d.ipvsadm(l).unwrap_or_else(|e| panic!("{e}"));
    }
}

fn curls(ns: &Netns, port: u16, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| curl(ns, NAT_VIP, port).unwrap_or_else(|e| format!("curl failed: {e}")))
        .collect()
}

/// The rows of `ipvsadm -L -c -n` without the expire column (it moves),
/// sorted.
fn conn_rows(d: &Rvsd<'_>) -> Vec<String> {
    let text = d.ipvsadm("-L -c -n").unwrap_or_else(|e| panic!("{e}"));
    let mut rows: Vec<String> = text
        .lines()
        .skip(2)
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let mut kept = vec![w[0]];
            kept.extend_from_slice(&w[2..]);
            kept.join(" ")
        })
        .collect();
    rows.sort();
    rows
}

/// `rows` with every client port but 0 masked as `*`, sorted.
fn client_ports_to_zero(rows: &[String]) -> Vec<String> {
    let mut out: Vec<String> = rows
        .iter()
        .map(|r| {
            r.split(' ')
                .map(|w| {
                    if w.starts_with("198.51.100.2:") && w != "198.51.100.2:0" {
                        "198.51.100.2:*".to_string()
                    } else {
                        w.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    out.sort();
    out
}

#[test]
fn ppc_persistent_600_keeps_one_client_on_one_real_server() {
    if !is_root() {
        eprintln!("skipped: needs root for network namespaces");
        return;
    }
    let topo = NatTopology::create("rvppc").expect("topology");
    let d = start(&topo);
    run(
        &d,
        &[
            "-A -t 198.51.100.10:80 -s rr -p 600",
            "-a -t 198.51.100.10:80 -r 203.0.113.11 -m",
            "-a -t 198.51.100.10:80 -r 203.0.113.12 -m",
        ],
    );
    d.wait_steering(1, 2).expect("steering");
    assert_eq!(
        curls(&topo.client, 80, 4),
        ["RS2-web2"; 4],
        "{}",
        d.log_text()
    );
    let rows = client_ports_to_zero(&conn_rows(&d));
    let mut want = vec!["TCP ASSURED 198.51.100.2:0 198.51.100.10:80 203.0.113.12:80".to_string()];
    want.extend(std::iter::repeat_n(
        "TCP TIME_WAIT 198.51.100.2:* 198.51.100.10:80 203.0.113.12:80".to_string(),
        4,
    ));
    want.sort();
    assert_eq!(rows, want);
    d.wait_output(
        "-L -n --persistent-conn",
        "IP Virtual Server version 1.2.1 (size=4096)\n\
Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn \n  \
-> RemoteAddress:Port\n\
TCP  198.51.100.10:80 rr persistent 600\n  \
-> 203.0.113.11:80              1         0           0          0         \n  \
-> 203.0.113.12:80              1         1           0          4         \n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn fwmark_8_groups_ports_80_and_23_on_one_real_server() {
    if !is_root() {
        eprintln!("skipped: needs root for network namespaces");
        return;
    }
    let topo = NatTopology::create("rvfwm").expect("topology");
    start_http_on(
        &topo.rs1,
        &topo.dir,
        "rs1-23",
        (NAT_RIP1, 23),
        "RS1-telnet1",
    )
    .expect("rs1:23");
    start_http_on(
        &topo.rs2,
        &topo.dir,
        "rs2-23",
        (NAT_RIP2, 23),
        "RS2-telnet2",
    )
    .expect("rs2:23");
    // The seed's recipe: flush mangle, mark web and telnet with 8.
    topo.director
        .run(&["iptables", "-t", "mangle", "-F"])
        .expect("iptables -F");
    topo.director
        .run(&[
            "iptables",
            "-t",
            "mangle",
            "-A",
            "PREROUTING",
            "-d",
            "198.51.100.10",
            "-p",
            "tcp",
            "-m",
            "multiport",
            "--dports",
            "80,23",
            "-j",
            "MARK",
            "--set-mark",
            "8",
        ])
        .expect("iptables MARK");
    let d = start(&topo);
    run(
        &d,
        &[
            "-A -f 8 -s rr -p 600",
            "-a -f 8 -r 203.0.113.11 -m",
            "-a -f 8 -r 203.0.113.12 -m",
        ],
    );
    d.wait_steering(0, 6).expect("steering");
    assert_eq!(
        d.ipvsadm("-L -n").expect("list"),
        "IP Virtual Server version 1.2.1 (size=4096)\n\
Prot LocalAddress:Port Scheduler Flags\n  \
-> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
FWM  8 rr persistent 600\n  \
-> 203.0.113.11:0               Masq    1      0          0         \n  \
-> 203.0.113.12:0               Masq    1      0          0         \n"
    );
    let got = [
        curl(&topo.client, NAT_VIP, 80),
        curl(&topo.client, NAT_VIP, 23),
        curl(&topo.client, NAT_VIP, 80),
        curl(&topo.client, NAT_VIP, 23),
    ];
    assert_eq!(
        got,
        [
            Ok("RS2-web2".to_string()),
            Ok("RS2-telnet2".to_string()),
            Ok("RS2-web2".to_string()),
            Ok("RS2-telnet2".to_string()),
        ],
        "{}",
        d.log_text()
    );
    let rows = client_ports_to_zero(&conn_rows(&d));
    let mut want = vec!["IP ASSURED 198.51.100.2:0 0.0.0.8:0 203.0.113.12:0".to_string()];
    for port in [80, 23, 80, 23] {
        want.push(format!(
            "TCP TIME_WAIT 198.51.100.2:* 198.51.100.10:{port} 203.0.113.12:{port}"
        ));
    }
    want.sort();
    assert_eq!(rows, want);
    // A flush of mangle (the seed's recipe starts with one) takes rvsd's
    // hook away; rvsd puts it back and the group keeps working.
    topo.director
        .run(&["iptables", "-t", "mangle", "-F", "INPUT"])
        .expect("flush");
    Netns::wait_for("re-installed jump", Duration::from_secs(5), || {
        d.log_text().contains("re-installed")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", d.log_text()));
    assert_eq!(curls(&topo.client, 23, 1), ["RS2-telnet2"]);
}

/// Send `query` to VIP:port over UDP from the client (a connected
/// socket, so an ICMP error is reported); the answer.
fn udp_query(client: &Netns, port: u16, query: &str) -> String {
    let script = format!(
        "import socket\n\
         s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
         s.settimeout(3)\n\
         s.connect(('198.51.100.10',{port}))\n\
         s.send(b'{query}\\n')\n\
         try:\n    print(s.recv(512).decode().strip())\n\
         except Exception as e:\n    print('error:',e)\n"
    );
    let out = client
        .output(&["/usr/bin/python3", "-c", &script], &[])
        .expect("python3");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn udp_service_through_nat_and_port_unreachable_without_real_servers() {
    if !is_root() {
        eprintln!("skipped: needs root for network namespaces");
        return;
    }
    let topo = NatTopology::create("rvudp").expect("topology");
    for (rs, rip, name) in [
        (&topo.rs1, NAT_RIP1, "RS1-dns1"),
        (&topo.rs2, NAT_RIP2, "RS2-dns2"),
    ] {
        rs.spawn(
            &[
                "socat",
                "-T",
                "1",
                &format!("UDP4-RECVFROM:53,bind={rip},fork"),
                // Read the query first: a reply written before the query
                // is consumed makes socat's child fail now and then.
                &format!("SYSTEM:read q; echo {name}"),
            ],
            &[],
            Some(&topo.log_path(&format!("socat-{name}.log"))),
        )
        .expect("socat");
    }
    let d = start(&topo);
    run(
        &d,
        &[
            "-A -u 198.51.100.10:53 -s rr",
            "-a -u 198.51.100.10:53 -r 203.0.113.11 -m",
            "-a -u 198.51.100.10:53 -r 203.0.113.12 -m",
            "-A -t 198.51.100.10:8081 -s rr",
            "-A -u 198.51.100.10:54 -s rr",
        ],
    );
    d.wait_steering(3, 2).expect("steering");
    // socat may take a moment to bind: the first query is retried.
    let mut first = String::new();
    Netns::wait_for("socat answering", Duration::from_secs(10), || {
        first = udp_query(&topo.client, 53, "q");
        !first.starts_with("error")
    })
    .unwrap_or_else(|e| panic!("{e}: {first}\n{}", d.log_text()));
    let mut got = vec![first];
    got.extend((0..3).map(|_| udp_query(&topo.client, 53, "q")));
    assert_eq!(got, ["RS2-dns2", "RS1-dns1", "RS2-dns2", "RS1-dns1"]);
    d.wait_output(
        "-L -n -u 198.51.100.10:53",
        "Prot LocalAddress:Port Scheduler Flags\n  \
-> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
UDP  198.51.100.10:53 rr\n  \
-> 203.0.113.11:53              Masq    1      0          2         \n  \
-> 203.0.113.12:53              Masq    1      0          2         \n",
    )
    .unwrap_or_else(|e| panic!("{e}"));

    // No real server: the director answers ICMP port unreachable (not a
    // TCP reset from its own stack), so the client fails at once instead
    // of timing out.
    let rules: [&[&str]; 2] = [
        &["-p", "icmp", "--icmp-type", "port-unreachable"],
        &["-p", "tcp", "--tcp-flags", "RST", "RST"],
    ];
    for rule in rules {
        let mut argv = vec![
            "iptables",
            "-w",
            "-t",
            "raw",
            "-A",
            "PREROUTING",
            "-s",
            "198.51.100.10",
        ];
        argv.extend_from_slice(rule);
        topo.client.run(&argv).expect("counting rule");
    }
    let t = Instant::now();
    let refused = curl(&topo.client, NAT_VIP, 8081);
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.contains("refused") || e.contains("Couldn't connect")),
        "{refused:?}"
    );
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    let t = Instant::now();
    let answer = udp_query(&topo.client, 54, "q");
    assert!(answer.contains("refused"), "{answer}");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    let counters = topo
        .client
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
    let text = String::from_utf8_lossy(&counters.stdout).to_string();
    let packets = |what: &str| -> u64 {
        text.lines()
            .find(|l| l.contains(what))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {what} rule in:\n{text}"))
    };
    assert_eq!(packets("icmptype 3 code 3"), 2, "{text}");
    assert_eq!(packets("flags:0x04/0x04"), 0, "{text}");
}

#[test]
fn pcc_port_zero_puts_every_port_of_one_client_on_one_real_server() {
    if !is_root() {
        eprintln!("skipped: needs root for network namespaces");
        return;
    }
    let topo = NatTopology::create("rvpcc").expect("topology");
    start_http_on(
        &topo.rs1,
        &topo.dir,
        "rs1-23",
        (NAT_RIP1, 23),
        "RS1-telnet1",
    )
    .expect("rs1:23");
    start_http_on(
        &topo.rs2,
        &topo.dir,
        "rs2-23",
        (NAT_RIP2, 23),
        "RS2-telnet2",
    )
    .expect("rs2:23");
    let d = start(&topo);
    run(
        &d,
        &[
            "-A -t 198.51.100.10:0 -s rr -p 600",
            "-a -t 198.51.100.10:0 -r 203.0.113.11 -m",
            "-a -t 198.51.100.10:0 -r 203.0.113.12 -m",
        ],
    );
    d.wait_steering(1, 2).expect("steering");
    let got = [
        curl(&topo.client, NAT_VIP, 80),
        curl(&topo.client, NAT_VIP, 23),
        curl(&topo.client, NAT_VIP, 80),
    ];
    assert_eq!(
        got,
        [
            Ok("RS2-web2".to_string()),
            Ok("RS2-telnet2".to_string()),
            Ok("RS2-web2".to_string()),
        ],
        "{}",
        d.log_text()
    );
    let rows = client_ports_to_zero(&conn_rows(&d));
    let mut want = vec!["TCP ASSURED 198.51.100.2:0 198.51.100.10:0 203.0.113.12:0".to_string()];
    for port in [80, 23, 80] {
        want.push(format!(
            "TCP TIME_WAIT 198.51.100.2:* 198.51.100.10:{port} 203.0.113.12:{port}"
        ));
    }
    want.sort();
    assert_eq!(rows, want);
}

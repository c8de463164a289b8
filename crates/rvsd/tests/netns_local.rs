//! End-to-end: clients on the director itself and real servers at an
//! address of the director.
//!
//! * The seed runs `curl http://VIP/` on the director: locally generated
//!   packets never pass PREROUTING, so rvsd queues them in the OUTPUT path.
//!   In NAT mode they are balanced exactly like a remote client's (rr:
//!   RS2, RS1, RS2, RS1, as the kernel answers the seed's four curls).
//! * The seed's fallback server (`ipvsadm -a -t VIP:80 -r 127.0.0.1:80`)
//!   is a real server the kernel marks `Local`: the packet goes to the
//!   director's own stack unchanged. Next to a NAT real server, rr must
//!   alternate between the two, for remote and for local clients, and a
//!   server restored from the state file before any address was known
//!   must become `Local` too.
//! * DR from the director works when the client's source is not the VIP
//!   (`curl --interface DIP`): the real server answers the DIP directly.
//!
//! Needs root; skipped otherwise. Every namespace and process is owned by
//! a guard that removes it on any exit path, panics included.

use rvs_testnet::{
    curl, is_root, start_http_bound, workspace_bin, DrTopology, NatTopology, Netns, Rvsd, DR_DIP,
    DR_VIP, NAT_VIP,
};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

const RVSD: &str = env!("CARGO_BIN_EXE_rvsd");

fn rvsadm() -> PathBuf {
    workspace_bin(Path::new(RVSD), "rvsadm", "rvsadm").expect("rvsadm binary")
}

fn start_rvsd<'a>(ns: &'a Netns, dir: &Path, extra: &[&str]) -> Rvsd<'a> {
    Rvsd::start(ns, Path::new(RVSD), &rvsadm(), dir, extra).expect("start rvsd")
}

/// `n` curls of `http://addr/` from `ns`; each body or the error text.
fn curls_in(ns: &Netns, addr: Ipv4Addr, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| curl(ns, addr, 80).unwrap_or_else(|e| format!("curl failed: {e}")))
        .collect()
}

const HEADER: &str = "IP Virtual Server version 1.2.1 (size=4096)\n\
Prot LocalAddress:Port Scheduler Flags\n  \
-> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n";

#[test]
fn curl_on_the_director_is_balanced_in_nat_mode() {
    if !is_root() {
        eprintln!("skipped: needs root for network namespaces");
        return;
    }
    let topo = NatTopology::create("rvlcn").expect("topology");
    let d = start_rvsd(&topo.director, &topo.dir, &[]);
    d.ipvsadm("-A -t 198.51.100.10:80 -s rr").expect("-A");
    d.ipvsadm("-a -t 198.51.100.10:80 -r 203.0.113.11 -m")
        .expect("-a");
    d.ipvsadm("-a -t 198.51.100.10:80 -r 203.0.113.12 -m")
        .expect("-a");
    d.wait_steering(1, 2).expect("steering");

    // The seed's four curls, run on the director.
    assert_eq!(
        curls_in(&topo.director, NAT_VIP, 4),
        ["RS2-web2", "RS1-web1", "RS2-web2", "RS1-web1"],
        "rvsd log:\n{}",
        d.log_text()
    );
    // Every connection went through the engine (closed: InActConn).
    d.wait_output(
        "-L -n",
        &format!(
            "{HEADER}TCP  198.51.100.10:80 rr\n  \
-> 203.0.113.11:80              Masq    1      0          2         \n  \
-> 203.0.113.12:80              Masq    1      0          2         \n"
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // A remote client continues the same rr sequence: one scheduler.
    assert_eq!(curls_in(&topo.client, NAT_VIP, 2), ["RS2-web2", "RS1-web1"]);
    // rvsd's own packets are never queued again, and the director's
    // traffic to a non-service port is untouched (refused by its stack).
    let other = curl(&topo.director, NAT_VIP, 8081);
    assert!(other.is_err(), "{other:?}");
}

#[test]
fn real_server_at_127_0_0_1_is_local() {
    if !is_root() {
        eprintln!("skipped: needs root for network namespaces");
        return;
    }
    let topo = NatTopology::create("rvlcl").expect("topology");
    // The director's own web server, on every address like the seed's
    // httpd fallback.
    let _own = start_http_bound(
        &topo.director,
        &topo.dir,
        "director",
        Ipv4Addr::UNSPECIFIED,
        (Ipv4Addr::LOCALHOST, 80),
        "DIR-local",
    )
    .expect("director's HTTP server");
    let state = topo.dir.join("rvsd.state");
    let state_s = state.to_string_lossy().to_string();
    let expected = format!(
        "{HEADER}TCP  198.51.100.10:80 rr\n  \
-> 127.0.0.1:80                 Local   1      0          0         \n  \
-> 203.0.113.11:80              Masq    1      0          0         \n"
    );
    {
        let d = start_rvsd(&topo.director, &topo.dir, &["--state-file", &state_s]);
        d.ipvsadm("-A -t 198.51.100.10:80 -s rr").expect("-A");
        d.ipvsadm("-a -t 198.51.100.10:80 -r 127.0.0.1:80 -m")
            .expect("-a local");
        d.ipvsadm("-a -t 198.51.100.10:80 -r 203.0.113.11 -m")
            .expect("-a rs1");
        d.wait_output("-L -n", &expected)
            .unwrap_or_else(|e| panic!("{e}"));
        d.wait_steering(1, 1).expect("steering");
        // rr over [local, RS1]: the kernel's rr starts after the list
        // head, so the second server first.
        assert_eq!(
            curls_in(&topo.client, NAT_VIP, 4),
            ["RS1-web1", "DIR-local", "RS1-web1", "DIR-local"],
            "rvsd log:\n{}",
            d.log_text()
        );
        // And for a client on the director.
        assert_eq!(
            curls_in(&topo.director, NAT_VIP, 2),
            ["RS1-web1", "DIR-local"],
            "rvsd log:\n{}",
            d.log_text()
        );
        assert!(d.stop(Duration::from_secs(5)).is_some());
    }
    // Restart from the state file: the rules come back before rvsd has
    // read the namespace's addresses; the 127.0.0.1 server must still end
    // up Local and serve.
    let d = start_rvsd(&topo.director, &topo.dir, &["--state-file", &state_s]);
    d.wait_output("-L -n", &expected)
        .unwrap_or_else(|e| panic!("{e}"));
    d.wait_steering(1, 1).expect("steering after restart");
    let got = curls_in(&topo.client, NAT_VIP, 2);
    let mut sorted = got.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        ["DIR-local", "RS1-web1"],
        "rvsd log:\n{}",
        d.log_text()
    );
}

#[test]
fn curl_from_the_dip_on_the_director_works_in_dr_mode() {
    if !is_root() {
        eprintln!("skipped: needs root for network namespaces");
        return;
    }
    let topo = DrTopology::create("rvlcd").expect("topology");
    topo.configure_real_servers().expect("real servers");
    // The real server answers from the VIP, an address of the director:
    // without accept_local the director's stack drops that reply as a
    // martian (the kernel's IPVS has the same limit).
    for key in [
        "net.ipv4.conf.all.accept_local",
        "net.ipv4.conf.eth0.accept_local",
    ] {
        topo.director.sysctl(key, "1").expect("accept_local");
    }
    let d = start_rvsd(&topo.director, &topo.dir, &[]);
    d.ipvsadm("-A -t 198.51.100.10:80 -s rr").expect("-A");
    d.ipvsadm("-a -t 198.51.100.10:80 -r 198.51.100.11 -g")
        .expect("-a");
    d.ipvsadm("-a -t 198.51.100.10:80 -r 198.51.100.12 -g")
        .expect("-a");
    d.wait_steering(1, 0).expect("steering");
    let url = format!("http://{DR_VIP}/");
    let dip = DR_DIP.to_string();
    let mut got = Vec::new();
    for _ in 0..4 {
        let out = topo
            .director
            .output(
                &[
                    "curl",
                    "-sS",
                    "--noproxy",
                    "*",
                    "--max-time",
                    "5",
                    "--interface",
                    &dip,
                    &url,
                ],
                &[],
            )
            .expect("run curl");
        got.push(if out.status.success() {
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        } else {
            format!(
                "curl failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )
        });
    }
    assert_eq!(
        got,
        ["RS2-web2", "RS1-web1", "RS2-web2", "RS1-web1"],
        "rvsd log:\n{}",
        d.log_text()
    );
}

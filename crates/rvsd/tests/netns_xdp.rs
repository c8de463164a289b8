//! End-to-end: the seed's NAT walkthrough through the XDP datapath
//! (`rvsd --datapath xdp`), once with the program attached in native
//! mode and once in generic mode. Same expectations as `netns_nat.rs`
//! (the real kernel's: RS2 RS1 RS2 RS1, `0 2` per server, then the wrr
//! 3:1 sequence), plus what must stay in the kernel: the director's own
//! server on another port of the VIP, ping to the VIP, and the director
//! after `kill -9` of rvsd (fail open: the program's link and the
//! AF_XDP sockets die with the process).
//!
//! Needs root and a build with the BPF object (clang-14 + libbpf-dev,
//! `scripts/deps.sh`); skipped with a message otherwise. Namespaces and
//! processes are owned by guards that remove them on every exit path.

use rvs_testnet::{is_root, workspace_bin, NatTopology, Netns, Rvsd, NAT_VIP};
use std::path::Path;
use std::time::Duration;

const RVSD: &str = env!("CARGO_BIN_EXE_rvsd");

const HEADER: &str = "IP Virtual Server version 1.2.1 (size=4096)\n\
Prot LocalAddress:Port Scheduler Flags\n  \
-> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n";

fn skip_reason() -> Option<String> {
    if !is_root() {
        return Some("needs root for network namespaces".into());
    }
    if let Err(e) = rvs_datapath::xdp::availability() {
        return Some(format!("{e} (run scripts/deps.sh)"));
    }
    None
}

fn start<'a>(topo: &'a NatTopology, mode: &str) -> Rvsd<'a> {
    let rvsadm = workspace_bin(Path::new(RVSD), "rvsadm", "rvsadm").expect("rvsadm binary");
    let d = Rvsd::start(
        &topo.director,
        Path::new(RVSD),
        &rvsadm,
        &topo.dir,
        &["--datapath", "xdp", "--xdp-mode", mode],
    )
    .expect("start rvsd");
    let want = format!("({mode})");
    Netns::wait_for("rvsd xdp datapath", Duration::from_secs(10), || {
        d.log_text()
            .lines()
            .any(|l| l.contains("datapath: xdp on ") && l.contains(&want))
    })
    .unwrap_or_else(|e| panic!("{e}; rvsd log:\n{}", d.log_text()));
    d
}

fn ipvsadm(d: &Rvsd, line: &str) -> String {
    d.ipvsadm(line).unwrap_or_else(|e| panic!("{e}"))
}

fn wait_xdp_services(d: &Rvsd, n: usize) {
    let want = format!("xdp steering {n} service(s)");
    Netns::wait_for(&want, Duration::from_secs(10), || {
        d.log_text()
            .lines()
            .rev()
            .find(|l| l.contains("datapath: xdp steering "))
            .is_some_and(|l| l.contains(&want))
    })
    .unwrap_or_else(|e| panic!("{e}; rvsd log:\n{}", d.log_text()));
}

fn curls(topo: &NatTopology, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            topo.curl_from_client(NAT_VIP, 80)
                .unwrap_or_else(|e| format!("curl failed: {e}"))
        })
        .collect()
}

fn ping_vip(topo: &NatTopology) -> bool {
    topo.client
        .output(&["ping", "-c", "1", "-W", "2", &NAT_VIP.to_string()], &[])
        .is_ok_and(|o| o.status.success())
}

fn walkthrough(tag: &str, mode: &str) {
    if let Some(why) = skip_reason() {
        eprintln!("skipped: {why}");
        return;
    }
    let topo = NatTopology::create(tag).expect("build the NAT topology");
    let d = start(&topo, mode);

    ipvsadm(&d, "-A -t 198.51.100.10:80 -s rr");
    ipvsadm(&d, "-a -t 198.51.100.10:80 -r 203.0.113.11 -m");
    ipvsadm(&d, "-a -t 198.51.100.10:80 -r 203.0.113.12 -m");
    wait_xdp_services(&d, 1);

    let got = curls(&topo, 4);
    assert_eq!(
        got,
        ["RS2-web2", "RS1-web1", "RS2-web2", "RS1-web1"],
        "rvsd log:\n{}",
        d.log_text()
    );
    d.wait_output(
        "-L -n",
        &format!(
            "{HEADER}TCP  198.51.100.10:80 rr\n  \
-> 203.0.113.11:80              Masq    1      0          2         \n  \
-> 203.0.113.12:80              Masq    1      0          2         \n"
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));

    ipvsadm(&d, "-E -t 198.51.100.10:80 -s wrr");
    ipvsadm(&d, "-e -t 198.51.100.10:80 -r 203.0.113.11 -m -w 3");
    ipvsadm(&d, "-e -t 198.51.100.10:80 -r 203.0.113.12 -m -w 1");
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
    d.wait_output(
        "-L -n",
        &format!(
            "{HEADER}TCP  198.51.100.10:80 wrr\n  \
-> 203.0.113.11:80              Masq    3      0          8         \n  \
-> 203.0.113.12:80              Masq    1      0          4         \n"
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));

    // Not LVS traffic stays in the kernel: the director's own server on
    // VIP:8080 and ping to the VIP.
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
        Ok("director-own"),
        "rvsd log:\n{}",
        d.log_text()
    );
    assert!(ping_vip(&topo), "ping VIP; rvsd log:\n{}", d.log_text());
    // ... and the wrr sequence goes on where it was.
    assert_eq!(curls(&topo, 1), ["RS2-web2"]);

    // Fail open: rvsd killed with -9 takes the program and its sockets
    // with it; the director's stack answers everything, and VIP:80 is
    // refused at once instead of hanging.
    assert!(
        topo.director.is_running(d.pid),
        "rvsd died:\n{}",
        d.log_text()
    );
    let links_now = || {
        topo.director
            .output(&["ip", "-o", "link", "show"], &[])
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    let mut links = links_now();
    assert!(
        links.contains("prog/xdp"),
        "no XDP program attached:\n{links}"
    );
    topo.director.kill(d.pid);
    let gone = Netns::wait_for("XDP detached", Duration::from_secs(10), || {
        links = links_now();
        !links.contains("prog/xdp")
    });
    assert!(
        gone.is_ok(),
        "an XDP program is still attached after kill -9:\n{links}"
    );
    assert_eq!(
        topo.curl_from_client(NAT_VIP, 8080).as_deref(),
        Ok("director-own")
    );
    assert!(ping_vip(&topo), "ping VIP after kill -9");
    let refused = topo.curl_from_client(NAT_VIP, 80);
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.contains("refused") || e.contains("Couldn't connect")),
        "{refused:?}"
    );
}

#[test]
fn seed_nat_walkthrough_xdp_native() {
    walkthrough("rvxdpn", "native");
}

#[test]
fn seed_nat_walkthrough_xdp_generic() {
    walkthrough("rvxdpg", "generic");
}

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

use rvs_testnet::{workspace_bin, NatTopology, Netns, Rvsd, NAT_VIP};
use std::path::Path;
use std::time::Duration;

mod xdp_lab;

use xdp_lab::{big_file, cpu_ms, curls, download, ipvsadm, skip_reason, HEADER, RVSD};

/// Start rvsd with `--datapath xdp --xdp-mode <mode>` and wait until the
/// program is attached in that mode (`mode` "nfqueue": the NFQUEUE path,
/// for comparison).
fn start<'a>(topo: &'a NatTopology, mode: &str) -> Rvsd<'a> {
    let rvsadm = workspace_bin(Path::new(RVSD), "rvsadm", "rvsadm").expect("rvsadm binary");
    let args: &[&str] = if mode == "nfqueue" {
        &["--datapath", "nfqueue"]
    } else {
        &["--datapath", "xdp", "--xdp-mode", mode]
    };
    let d =
        Rvsd::start(&topo.director, Path::new(RVSD), &rvsadm, &topo.dir, args).expect("start rvsd");
    if mode == "nfqueue" {
        return d;
    }
    let want = format!("({mode})");
    Netns::wait_for("rvsd xdp datapath", Duration::from_secs(10), || {
        d.log_text()
            .lines()
            .any(|l| l.contains("datapath: xdp on ") && l.contains(&want))
    })
    .unwrap_or_else(|e| panic!("{e}; rvsd log:\n{}", d.log_text()));
    d
}

fn wait_xdp_services(d: &Rvsd, n: usize) {
    if d.log_text().contains("datapath: nfqueue") {
        d.wait_steering(n, n).unwrap_or_else(|e| panic!("{e}"));
        return;
    }
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

fn ping_vip(topo: &NatTopology) -> bool {
    topo.client
        .output(&["ping", "-c", "1", "-W", "2", &NAT_VIP.to_string()], &[])
        .is_ok_and(|o| o.status.success())
}

/// Sends a bare TCP ACK (no connection behind it) from the client to
/// VIP:80 through a raw socket and waits up to 3 s for the RST the
/// director's own stack answers with. Prints `RST` or `none`.
const STRAY_ACK: &str = r#"
import socket, struct, sys, time
src, dst, sport, dport = sys.argv[1], sys.argv[2], 40000, 80
def csum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff); s += s >> 16
    return (~s) & 0xffff
tcp = struct.pack('!HHIIBBHHH', sport, dport, 1000, 2000, 5 << 4, 0x10, 1024, 0, 0)
ph = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack('!BBH', 0, 6, len(tcp))
tcp = tcp[:16] + struct.pack('!H', csum(ph + tcp)) + tcp[18:]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
s.settimeout(0.5)
s.sendto(tcp, (dst, 0))
end = time.time() + 3
while time.time() < end:
    try:
        pkt = s.recv(2048)
    except socket.timeout:
        continue
    ihl = (pkt[0] & 15) * 4
    sp, dp = struct.unpack('!HH', pkt[ihl:ihl + 4])
    if socket.inet_ntoa(pkt[12:16]) == dst and sp == dport and dp == sport and pkt[ihl + 13] & 4:
        print('RST'); sys.exit(0)
print('none')
"#;

fn stray_ack_answer(topo: &NatTopology) -> String {
    let out = topo
        .client
        .output(
            &[
                "python3",
                "-c",
                STRAY_ACK,
                &rvs_testnet::NAT_CIP.to_string(),
                &NAT_VIP.to_string(),
            ],
            &[],
        )
        .expect("run python3");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout).trim(),
        String::from_utf8_lossy(&out.stderr).trim()
    )
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
    // A stray ACK to VIP:80 is not steered: the director's stack answers
    // it with a RST.
    assert_eq!(
        stray_ack_answer(&topo),
        "RST",
        "rvsd log:\n{}",
        d.log_text()
    );
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

/// 10 MB from a real server to the client through NAT (every reply
/// frame goes through the AF_XDP socket and the engine).
fn large_download(tag: &str, mode: &str) {
    if let Some(why) = skip_reason() {
        eprintln!("skipped: {why}");
        return;
    }
    let topo = NatTopology::create(tag).expect("build the NAT topology");
    let want = big_file(&topo);
    let d = start(&topo, mode);
    ipvsadm(&d, "-A -t 198.51.100.10:80 -s rr");
    ipvsadm(&d, "-a -t 198.51.100.10:80 -r 203.0.113.11 -m");
    wait_xdp_services(&d, 1);
    let cpu_before = cpu_ms(d.pid.pid);
    let got = download(&topo, &d);
    // Informational (no timing asserts in tests): rvsd's CPU for the
    // transfer (~7,300 data frames in, as many ACKs the other way).
    eprintln!(
        "{mode}: rvsd used {} ms of CPU for 10 MB through NAT",
        cpu_ms(d.pid.pid).saturating_sub(cpu_before)
    );
    assert!(got == want, "the download differs from the file");
}

/// The same transfer through the NFQUEUE path, for comparison. Ignored:
/// that path currently resets the connection partway (seen while
/// writing the XDP path; run with `--ignored` to reproduce).
#[test]
#[ignore = "the NFQUEUE path resets 10 MB NAT downloads (known, reported)"]
fn large_download_nfqueue_for_comparison() {
    large_download("rvxdpbq", "nfqueue");
}

#[test]
fn large_download_xdp_native() {
    large_download("rvxdpbn", "native");
}

#[test]
fn large_download_xdp_generic() {
    large_download("rvxdpbg", "generic");
}

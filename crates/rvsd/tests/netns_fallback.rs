//! End-to-end: how rvsd picks its packet path, in the seed's NAT
//! topology (client, director with the VIP on a veth and the DIP on a
//! bridge, two real servers answering `RS1-web1` / `RS2-web2`).
//!
//! * the default (`auto`, `RVSD_DATAPATH` removed from the environment)
//!   attaches XDP natively on the veth and generically on the bridge
//!   (bridges have no native XDP) and balances RS2 RS1 RS2 RS1;
//! * when the BPF program cannot load (rvsd started without `CAP_BPF`
//!   and `CAP_SYS_ADMIN` in its capability bounding set, through
//!   `setpriv`), the default logs why and falls back to NFQUEUE, which
//!   still balances with the real kernel's counters (`0 2` per server);
//! * `--datapath nfqueue` keeps the NFQUEUE path covered whatever the
//!   default: the seed's NAT walkthrough (rr, then wrr 3:1) through it,
//!   the flag winning over `RVSD_DATAPATH=xdp`, and the packets counted
//!   by its NFQUEUE rules.
//!
//! Expected sequences and listings are the real kernel's
//! (`shared/refvm/captures/seed-nat`, the same as `netns_nat.rs`).
//! Needs root; skipped otherwise. Namespaces and processes are owned by
//! guards that remove them on every exit path, panics included.

use rvs_testnet::{is_root, workspace_bin, NatTopology, Rvsd, NAT_VIP};
use std::path::Path;

const RVSD: &str = env!("CARGO_BIN_EXE_rvsd");

const HEADER: &str = "IP Virtual Server version 1.2.1 (size=4096)\n\
Prot LocalAddress:Port Scheduler Flags\n  \
-> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n";

/// Keep rvsd's default packet path whatever the test runner's
/// environment says.
const DEFAULT_ENV: &[&str] = &["env", "-u", "RVSD_DATAPATH"];

/// Capabilities loading a BPF program needs, dropped from the bounding
/// set (root's capabilities after exec are the bounding set).
const NO_BPF: &[&str] = &[
    "env",
    "-u",
    "RVSD_DATAPATH",
    "setpriv",
    "--bounding-set",
    "-bpf,-sys_admin,-perfmon",
    "--",
];

fn start<'a>(topo: &'a NatTopology, wrapper: &[&str], args: &[&str]) -> Rvsd<'a> {
    let rvsadm = workspace_bin(Path::new(RVSD), "rvsadm", "rvsadm").expect("rvsadm binary");
    Rvsd::start_wrapped(
        &topo.director,
        wrapper,
        Path::new(RVSD),
        &rvsadm,
        &topo.dir,
        args,
    )
    .expect("start rvsd")
}

fn ipvsadm(d: &Rvsd, line: &str) -> String {
    d.ipvsadm(line).unwrap_or_else(|e| panic!("{e}"))
}

fn curls(topo: &NatTopology, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            topo.curl_from_client(NAT_VIP, 80)
                .unwrap_or_else(|e| format!("curl failed: {e}"))
        })
        .collect()
}

/// The `datapath: ...` lines of rvsd's log.
fn datapath_lines(d: &Rvsd) -> Vec<String> {
    d.log_text()
        .lines()
        .filter(|l| l.contains("datapath"))
        .map(str::to_string)
        .collect()
}

/// rr over the two servers: the kernel's RS2 RS1 RS2 RS1 and `0 2` each.
fn rr_walkthrough(topo: &NatTopology, d: &Rvsd) {
    ipvsadm(d, "-A -t 198.51.100.10:80 -s rr");
    ipvsadm(d, "-a -t 198.51.100.10:80 -r 203.0.113.11 -m");
    ipvsadm(d, "-a -t 198.51.100.10:80 -r 203.0.113.12 -m");
    d.wait_steering(1, 2).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        curls(topo, 4),
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
}

fn stop_cleanly(topo: &NatTopology, d: &Rvsd) {
    let status = d.stop(std::time::Duration::from_secs(5));
    assert!(
        status
            .as_deref()
            .is_some_and(|s| s.contains("exit status: 0")),
        "rvsd stop: {status:?}\n{}",
        d.log_text()
    );
    let rules = topo
        .director
        .run(&["iptables-save"])
        .expect("iptables-save");
    assert!(!String::from_utf8_lossy(&rules.stdout).contains("RVS-"));
}

#[test]
fn default_is_xdp_native_where_it_works_generic_elsewhere() {
    if !is_root() {
        eprintln!("skipped: needs root for network namespaces");
        return;
    }
    if let Err(e) = rvs_datapath::xdp::availability() {
        eprintln!("skipped: {e} (run scripts/deps.sh)");
        return;
    }
    let topo = NatTopology::create("rvfbdef").expect("build the NAT topology");
    let d = start(&topo, DEFAULT_ENV, &[]);
    rr_walkthrough(&topo, &d);
    let lines = datapath_lines(&d);
    let on = lines
        .iter()
        .find_map(|l| l.split("datapath: xdp on ").nth(1))
        .unwrap_or_else(|| panic!("no XDP by default: {lines:#?}"));
    assert!(on.contains("eth0 (native)"), "{on}");
    assert!(on.contains("br0 (generic)"), "{on}");
    assert!(
        !lines.iter().any(|l| l.contains("falling back")),
        "{lines:#?}"
    );
    stop_cleanly(&topo, &d);
}

#[test]
fn default_falls_back_to_nfqueue_when_bpf_cannot_load() {
    if !is_root() {
        eprintln!("skipped: needs root for network namespaces");
        return;
    }
    if !Path::new("/usr/bin/setpriv").exists() && !Path::new("/bin/setpriv").exists() {
        eprintln!("skipped: needs setpriv (util-linux)");
        return;
    }
    let topo = NatTopology::create("rvfbnob").expect("build the NAT topology");
    let d = start(&topo, NO_BPF, &[]);
    rr_walkthrough(&topo, &d);
    let lines = datapath_lines(&d);
    let why = lines
        .iter()
        .find(|l| l.contains("datapath auto: XDP not usable ("))
        .unwrap_or_else(|| panic!("no fallback logged: {lines:#?}"));
    assert!(why.ends_with("; falling back to nfqueue"), "{why}");
    // The reason is the missing privilege (or, in a build without the
    // BPF object, that).
    assert!(
        why.contains("Operation not permitted") || why.contains("built without the BPF object"),
        "{why}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with("datapath: nfqueue 7276 on every interface")),
        "{lines:#?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains("datapath: xdp on")),
        "{lines:#?}"
    );
    stop_cleanly(&topo, &d);
}

#[test]
fn seed_nat_walkthrough_forced_through_nfqueue() {
    if !is_root() {
        eprintln!("skipped: needs root for network namespaces");
        return;
    }
    let topo = NatTopology::create("rvfbnfq").expect("build the NAT topology");
    let d = start(
        &topo,
        &["env", "RVSD_DATAPATH=xdp"],
        &["--datapath", "nfqueue"],
    );
    rr_walkthrough(&topo, &d);

    ipvsadm(&d, "-E -t 198.51.100.10:80 -s wrr");
    ipvsadm(&d, "-e -t 198.51.100.10:80 -r 203.0.113.11 -m -w 3");
    ipvsadm(&d, "-e -t 198.51.100.10:80 -r 203.0.113.12 -m -w 1");
    assert_eq!(
        curls(&topo, 8),
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

    let lines = datapath_lines(&d);
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with("datapath: nfqueue 7276 on every interface")),
        "{lines:#?}"
    );
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("xdp") || l.contains("auto")),
        "{lines:#?}"
    );
    // The twelve connections went through the queue: rvsd's NFQUEUE
    // rules counted at least their SYNs.
    let rules = topo
        .director
        .run(&["iptables-save", "-c"])
        .expect("iptables-save -c");
    let queued: u64 = String::from_utf8_lossy(&rules.stdout)
        .lines()
        .filter(|l| l.contains("NFQUEUE"))
        .filter_map(|l| l.strip_prefix('[')?.split(':').next()?.parse::<u64>().ok())
        .sum();
    assert!(
        queued >= 12,
        "NFQUEUE rules counted {queued} packets:\n{}",
        String::from_utf8_lossy(&rules.stdout)
    );
    stop_cleanly(&topo, &d);
}

//! End-to-end: rvsd follows addresses that appear and disappear after it
//! started, without a restart and without waiting for a polling period.
//!
//! rvsd is started on a director whose VIP is not configured yet; the
//! rules are loaded (the service is not steered: like the kernel, rvsd
//! serves only VIPs that are addresses of the host). Once the VIP is
//! added, netlink tells rvsd at once: a client's curl must be balanced
//! within 4 seconds. rvsd's fallback poll is 10 seconds and runs at its
//! start, and the VIP is added at least 2 seconds later, so the next poll
//! is at most 8 seconds away: a missed notification fails the test, while
//! a loaded machine (each curl is a process through `ip netns exec`)
//! still has room. Removing the address removes the steering rules just
//! as promptly.
//!
//! Needs root; skipped otherwise. Every namespace and process is owned by
//! a guard that removes it on any exit path, panics included.

use rvs_testnet::{is_root, workspace_bin, NatTopology, Netns, Rvsd, NAT_VIP};
use std::path::Path;
use std::time::{Duration, Instant};

const RVSD: &str = env!("CARGO_BIN_EXE_rvsd");

/// How long rvsd may take to act on an address change (well under the
/// time to its next fallback poll, see the module doc).
const PROMPT: Duration = Duration::from_secs(4);

fn rvs_rules(ns: &Netns) -> String {
    let out = ns
        .run(&["iptables-save", "-t", "raw"])
        .expect("iptables-save");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("-A RVS-PRE"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn vip_added_after_start_is_served_within_two_seconds() {
    if !is_root() {
        eprintln!("skipped: needs root for network namespaces");
        return;
    }
    let topo = NatTopology::create("rvlfw").expect("topology");
    let dir_ns = &topo.director;
    dir_ns
        .ip(&["addr", "del", "198.51.100.10/24", "dev", "eth0"])
        .expect("remove the VIP");
    let rvsadm = workspace_bin(Path::new(RVSD), "rvsadm", "rvsadm").expect("rvsadm");
    let d = Rvsd::start(dir_ns, Path::new(RVSD), &rvsadm, &topo.dir, &[]).expect("rvsd");
    d.ipvsadm("-A -t 198.51.100.10:80 -s rr").expect("-A");
    d.ipvsadm("-a -t 198.51.100.10:80 -r 203.0.113.11 -m")
        .expect("-a");
    d.ipvsadm("-a -t 198.51.100.10:80 -r 203.0.113.12 -m")
        .expect("-a");
    // Past rvsd's start-up refresh, so only a notification can help.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(rvs_rules(dir_ns), "", "VIP not local yet: nothing steered");

    dir_ns
        .ip(&["addr", "add", "198.51.100.10/24", "dev", "eth0"])
        .expect("add the VIP");
    let added = Instant::now();
    let mut last = String::new();
    let mut answered = None;
    // Bounded: one try every 100 ms until the deadline.
    while added.elapsed() < PROMPT {
        match topo.curl_from_client(NAT_VIP, 80) {
            Ok(body) if body.starts_with("RS") => {
                answered = Some(body);
                break;
            }
            Ok(body) => last = body,
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        answered.is_some(),
        "no balanced answer {PROMPT:?} after adding the VIP (last: {last})\nrvsd log:\n{}",
        d.log_text()
    );
    assert!(rvs_rules(dir_ns).contains("-d 198.51.100.10/32"));

    // The address goes away: so do the steering rules.
    dir_ns
        .ip(&["addr", "del", "198.51.100.10/24", "dev", "eth0"])
        .expect("remove the VIP");
    Netns::wait_for("steering rules removed", PROMPT, || {
        rvs_rules(dir_ns).is_empty()
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}\nrules:\n{}\nrvsd log:\n{}",
            rvs_rules(dir_ns),
            d.log_text()
        )
    });
}

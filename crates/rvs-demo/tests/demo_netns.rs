//! The demo itself, end to end: `rvs-demo` (the seed's NAT walkthrough in
//! network namespaces) and `rvs-demo --mode dr|tun` print the real
//! kernel's curl sequences (`shared/refvm/captures/seed-*`), and
//! `rvs-demo --engine` runs without root. Needs root for the namespace
//! runs (skipped otherwise); the demo removes its namespaces itself,
//! which is checked too.

use std::path::{Path, PathBuf};
use std::process::Command;

const DEMO: &str = env!("CARGO_BIN_EXE_rvs-demo");

fn bins() -> PathBuf {
    let dir = Path::new(DEMO).to_path_buf();
    for (package, name) in [
        ("rvsd", "rvsd"),
        ("rvsadm", "rvsadm"),
        ("rvs-realserver", "rvs-realserver"),
    ] {
        rvs_testnet::workspace_bin(&dir, package, name).expect("build a workspace binary");
    }
    dir.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Run the demo; its stdout, and the bodies curl printed, in order.
fn demo(args: &[&str]) -> (String, Vec<String>) {
    let dir = bins();
    let child = Command::new(DEMO)
        .args(args)
        .arg("--bin-dir")
        .arg(&dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run rvs-demo");
    let pid = child.id();
    let out = child.wait_with_output().expect("wait for rvs-demo");
    // Its namespaces (named after its PID) are gone.
    assert_eq!(leftover_namespaces(pid), 0);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut bodies = Vec::new();
    let mut lines = stdout.lines();
    while let Some(l) = lines.next() {
        if l.starts_with("[client]# curl") {
            bodies.push(lines.next().unwrap_or_default().to_string());
        }
    }
    (stdout, bodies)
}

fn leftover_namespaces(pid: u32) -> usize {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    let me = format!("rvsdemo{pid}x");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with(&me))
        .count()
}

#[test]
fn engine_walkthrough_needs_no_root() {
    let out = Command::new(DEMO)
        .arg("--engine")
        .output()
        .expect("run rvs-demo --engine");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("RS2-web2"), "{text}");
}

#[test]
fn nat_dr_and_tun_walkthroughs_print_the_kernel_sequences() {
    if !rvs_testnet::is_root() {
        eprintln!("skipped: needs root for network namespaces");
        return;
    }
    let (text, bodies) = demo(&[]);
    let (rs1, rs2) = ("RS1-web1", "RS2-web2");
    assert_eq!(
        bodies,
        [
            rs2, rs1, rs2, rs1, // rr
            rs2, rs1, rs1, rs1, rs2, rs1, rs1, rs1, // wrr 3:1
        ],
        "{text}"
    );
    assert!(
        text.contains("  -> 203.0.113.11:80              Masq    3      0          8         \n")
    );
    // Save, clear, restore: the restored table is listed with its
    // counters (the kernel's transcript does the same).
    assert!(
        text.ends_with(
            "[director]# ipvsadm -R < rules.save\n\
[director]# ipvsadm -L -n\n\
IP Virtual Server version 1.2.1 (size=4096)\n\
Prot LocalAddress:Port Scheduler Flags\n  \
-> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
TCP  198.51.100.10:80 wrr\n  \
-> 203.0.113.11:80              Masq    3      0          8         \n  \
-> 203.0.113.12:80              Masq    1      0          4         \n\n\
# rvsd stopped (exit status: 0); its netfilter rules are gone.\n\n\
# Cleaning up: rvsd stopped, namespaces and their processes removed.\n"
        ),
        "{text}"
    );

    let (text, bodies) = demo(&["--mode", "dr"]);
    assert_eq!(
        bodies,
        [rs2, rs1, rs1, rs2, rs1, rs1, rs2, rs1, rs1],
        "{text}"
    );
    assert!(
        text.contains("  -> 198.51.100.11:80             Route   2      0          6         \n")
    );

    let (text, bodies) = demo(&["--mode", "tun"]);
    assert_eq!(
        bodies,
        [
            rs2, rs1, rs2, rs1, rs2, rs1, // rr
            rs2, rs1, rs1, rs1, rs2, rs1, rs1, rs1 // wrr 3:1
        ],
        "{text}"
    );
    assert!(text.contains("--tun-type ipip"));
}

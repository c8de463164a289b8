//! Shared by the `netns_xdp` and `netns_xdp_fast` end-to-end tests (the
//! seed's NAT topology, rvsd with the XDP datapath): when to skip, the
//! `ipvsadm -L -n` header, rvsadm lines, bounded curl loops from the
//! client, the 10 MB file on both real servers and its download through
//! the VIP, and a process's CPU time.
//!
//! A subdirectory module, so it is compiled into each test that declares
//! `mod xdp_lab;` and is not a test binary of its own.

use rvs_testnet::{is_root, NatTopology, Rvsd, NAT_VIP};

pub const RVSD: &str = env!("CARGO_BIN_EXE_rvsd");

/// Size of the file the download tests fetch.
pub const SIZE: usize = 10 * 1024 * 1024;

/// The first lines of `ipvsadm -L -n` (the real tool's text).
pub const HEADER: &str = "IP Virtual Server version 1.2.1 (size=4096)\n\
Prot LocalAddress:Port Scheduler Flags\n  \
-> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n";

/// Why the test cannot run here (not root, or no BPF object), if so.
pub fn skip_reason() -> Option<String> {
    if !is_root() {
        return Some("needs root for network namespaces".into());
    }
    if let Err(e) = rvs_datapath::xdp::availability() {
        return Some(format!("{e} (run scripts/deps.sh)"));
    }
    None
}

/// One rvsadm line (ipvsadm syntax); panics with the error.
pub fn ipvsadm(d: &Rvsd, line: &str) -> String {
    d.ipvsadm(line).unwrap_or_else(|e| panic!("{e}"))
}

/// `n` curls of VIP:80 from the client, in order; a failure is kept as
/// `curl failed: ...` so the comparison shows it.
pub fn curls(topo: &NatTopology, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            topo.curl_from_client(NAT_VIP, 80)
                .unwrap_or_else(|e| format!("curl failed: {e}"))
        })
        .collect()
}

/// Writes `big` (`SIZE` bytes, byte i = i mod 251) into both real
/// servers' web roots; returns its contents.
pub fn big_file(topo: &NatTopology) -> Vec<u8> {
    let body: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
    for rs in ["www-rs1", "www-rs2"] {
        std::fs::write(topo.dir.join(rs).join("big"), &body).expect("write the big file");
    }
    body
}

/// Downloads /big from the VIP with curl in the client (60 s at most),
/// asserts curl got `SIZE` bytes, and returns what it wrote.
pub fn download(topo: &NatTopology, d: &Rvsd) -> Vec<u8> {
    let got_path = topo.dir.join("got-big");
    let got_s = got_path.to_string_lossy().to_string();
    let url = format!("http://{NAT_VIP}/big");
    let out = topo
        .client
        .output(
            &[
                "curl",
                "-sS",
                "--noproxy",
                "*",
                "--max-time",
                "60",
                "-o",
                &got_s,
                "-w",
                "%{size_download}",
                &url,
            ],
            &[],
        )
        .expect("run curl");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        SIZE.to_string(),
        "curl: {}\nrvsd log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        d.log_text()
    );
    std::fs::read(&got_path).expect("read the download")
}

/// User + system CPU of a process in ms (from /proc, 10 ms ticks).
pub fn cpu_ms(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_comm = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after comm.
    (ticks(11) + ticks(12)) * 10
}

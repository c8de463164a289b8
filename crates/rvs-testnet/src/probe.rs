//! Small probes for end-to-end tests: waiting for a listening socket,
//! packet counters of tagged iptables rules and of interfaces, random
//! payloads, and one-shot `socat` receivers whose output is compared with
//! what was sent (the kernel IPVS selftest's payload-integrity check).

use crate::netns::{Netns, Spawned};
use crate::TestnetError;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

/// Wait until something in `ns` listens on `proto` (`tcp` or `udp`)
/// port `port` (any address), at most `timeout`.
pub fn wait_listening(
    ns: &Netns,
    proto: &str,
    port: u16,
    timeout: Duration,
) -> Result<(), TestnetError> {
    let flag = if proto == "udp" { "-Hlnu" } else { "-Hlnt" };
    let filter = format!("sport = :{port}");
    Netns::wait_for(
        &format!("{proto} listener on port {port} in {}", ns.name()),
        timeout,
        || {
            ns.output(&["ss", flag, &filter], &[])
                .is_ok_and(|o| !String::from_utf8_lossy(&o.stdout).trim().is_empty())
        },
    )
}

/// Append a counting rule (no target) tagged `tag` to `chain` of `table`
/// in `ns`: `iptables -w -t <table> -A <chain> <matches> -m comment
/// --comment <tag>`.
pub fn count_rule(
    ns: &Netns,
    table: &str,
    chain: &str,
    matches: &[&str],
    tag: &str,
) -> Result<(), TestnetError> {
    let mut argv = vec!["iptables", "-w", "-t", table, "-A", chain];
    argv.extend_from_slice(matches);
    argv.extend_from_slice(&["-m", "comment", "--comment", tag]);
    ns.run(&argv).map(|_| ())
}

/// Packets and bytes counted so far by the rule tagged `tag` (see
/// [`count_rule`]).
pub fn rule_counters(
    ns: &Netns,
    table: &str,
    chain: &str,
    tag: &str,
) -> Result<(u64, u64), TestnetError> {
    let out = ns.run(&["iptables", "-w", "-t", table, "-L", chain, "-v", "-n", "-x"])?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let needle = format!("/* {tag} */");
    let line = text
        .lines()
        .find(|l| l.contains(&needle))
        .ok_or_else(|| TestnetError::Failed {
            command: format!("iptables -t {table} -L {chain}"),
            status: "no such rule".into(),
            stderr: format!("no rule tagged {tag} in:\n{text}"),
        })?;
    let mut w = line
        .split_whitespace()
        .map(|n| n.parse::<u64>().unwrap_or(0));
    Ok((w.next().unwrap_or(0), w.next().unwrap_or(0)))
}

/// One statistics counter of an interface in `ns`
/// (`/sys/class/net/<iface>/statistics/<name>`, e.g. `tx_packets`).
pub fn link_counter(ns: &Netns, iface: &str, name: &str) -> Result<u64, TestnetError> {
    let out = ns.run(&["cat", &format!("/sys/class/net/{iface}/statistics/{name}")])?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0))
}

/// `len` bytes from `/dev/urandom`.
pub fn random_bytes(len: usize) -> Result<Vec<u8>, TestnetError> {
    let mut buf = vec![0u8; len];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf)
}

/// Start `socat -u TCP4-LISTEN:<port>,reuseaddr OPEN:<out>` in `ns`: it
/// accepts one connection, writes what it receives to `out` and exits.
/// Returns once the listener is up.
pub fn socat_receiver(ns: &Netns, port: u16, out: &Path) -> Result<Spawned, TestnetError> {
    let listen = format!("TCP4-LISTEN:{port},reuseaddr");
    let sink = format!("OPEN:{},creat,trunc", out.display());
    let p = ns.spawn(&["socat", "-u", &listen, &sink], &[], None)?;
    wait_listening(ns, "tcp", port, Duration::from_secs(10))?;
    Ok(p)
}

/// Send `payload` from `ns` to `addr:port` with `socat -u STDIN TCP4:..`
/// (connect timeout 5 s, whole run bounded by `timeout` seconds).
pub fn socat_send(
    ns: &Netns,
    addr: &str,
    port: u16,
    payload: &[u8],
    timeout: u32,
) -> Result<(), TestnetError> {
    let target = format!("TCP4:{addr}:{port},connect-timeout=5");
    let secs = timeout.to_string();
    let argv = ["timeout", secs.as_str(), "socat", "-u", "STDIN", &target];
    let out = ns.output_with_input(&argv, &[], payload)?;
    crate::check(format!("[{}] {}", ns.name(), argv.join(" ")), out).map(|_| ())
}

//! What the datapath asks the host: its addresses, interfaces, routes and
//! neighbours. Answers come from `ip -o` (iproute2) and `/proc`, parsed by
//! pure functions that the unit tests feed with captured text.

use crate::DatapathError;
use std::net::IpAddr;
use std::process::{Command, Stdio};

/// Run a command and return its stdout; an error if it did not exit 0.
pub fn command_output(program: &str, args: &[&str]) -> Result<String, DatapathError> {
    let display = format!("{program} {}", args.join(" "));
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| DatapathError::io(display.clone(), e))?;
    if !out.status.success() {
        return Err(DatapathError::Command {
            command: display,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Addresses in `ip -o addr show` output (`2: eth0    inet 198.51.100.10/24 ...`).
pub fn parse_addrs(text: &str) -> Vec<(String, IpAddr)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let (Some(_), Some(dev), Some(family), Some(cidr)) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            continue;
        };
        if family != "inet" && family != "inet6" {
            continue;
        }
        let addr = cidr.split('/').next().unwrap_or(cidr);
        if let Ok(a) = addr.parse() {
            out.push((dev.trim_end_matches(':').to_string(), a));
        }
    }
    out
}

/// Every address of this namespace, with its interface.
pub fn local_addrs() -> Result<Vec<(String, IpAddr)>, DatapathError> {
    Ok(parse_addrs(&command_output("ip", &["-o", "addr", "show"])?))
}

/// Interface names in `ip -o link show` output, `lo` left out
/// (`3: eth0@if2: <BROADCAST,...> ...`).
pub fn parse_links(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .filter(|n| n != "lo" && !n.is_empty())
        .collect()
}

/// Every interface of this namespace but loopback.
pub fn interfaces() -> Result<Vec<String>, DatapathError> {
    Ok(parse_links(&command_output("ip", &["-o", "link", "show"])?))
}

/// The route towards an address: outgoing interface and preferred source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteInfo {
    pub dev: String,
    pub src: Option<IpAddr>,
    /// The gateway, if the destination is not on a connected network.
    pub via: Option<IpAddr>,
}

/// Parse `ip -o route get ADDR` (`203.0.113.11 dev br0 src 203.0.113.1 uid 0 \ cache`).
pub fn parse_route_get(text: &str) -> Option<RouteInfo> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let after = |key: &str| {
        words
            .iter()
            .position(|w| *w == key)
            .and_then(|i| words.get(i + 1))
            .copied()
    };
    Some(RouteInfo {
        dev: after("dev")?.to_string(),
        src: after("src").and_then(|s| s.parse().ok()),
        via: after("via").and_then(|s| s.parse().ok()),
    })
}

/// Ask the kernel how it would route to `addr`.
pub fn route_get(addr: IpAddr) -> Result<RouteInfo, DatapathError> {
    let text = command_output("ip", &["-o", "route", "get", &addr.to_string()])?;
    parse_route_get(&text).ok_or(DatapathError::NoRoute(addr))
}

/// Parse a MAC address `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.trim().split(':');
    for b in &mut mac {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// Find `addr`'s MAC in `ip neigh show` output, ignoring entries that are
/// not usable (`FAILED`, `INCOMPLETE`).
/// (`203.0.113.11 dev br0 lladdr 02:..:01 REACHABLE`)
pub fn parse_neigh(text: &str, addr: IpAddr) -> Option<[u8; 6]> {
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.first().and_then(|w| w.parse::<IpAddr>().ok()) != Some(addr) {
            continue;
        }
        if words.iter().any(|w| *w == "FAILED" || *w == "INCOMPLETE") {
            continue;
        }
        let i = words.iter().position(|w| *w == "lladdr")?;
        return words.get(i + 1).and_then(|m| parse_mac(m));
    }
    None
}

/// The kernel's neighbour entry for `addr`, if resolved.
pub fn neighbour(addr: IpAddr) -> Result<Option<[u8; 6]>, DatapathError> {
    let text = command_output("ip", &["neigh", "show", "to", &addr.to_string()])?;
    Ok(parse_neigh(&text, addr))
}

/// Make the kernel resolve `addr`'s MAC: a datagram to the discard port
/// makes it send an ARP request / neighbour solicitation.
pub fn trigger_resolution(addr: IpAddr) {
    let bind: std::net::SocketAddr = match addr {
        IpAddr::V4(_) => ([0, 0, 0, 0], 0).into(),
        IpAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    if let Ok(s) = std::net::UdpSocket::bind(bind) {
        let _ = s.send_to(&[], (addr, 9));
    }
}

/// An interface's index and MAC from sysfs.
pub fn link_info(dev: &str) -> Result<(u32, [u8; 6]), DatapathError> {
    let base = format!("/sys/class/net/{dev}");
    let index = std::fs::read_to_string(format!("{base}/ifindex"))
        .map_err(|e| DatapathError::io(format!("{base}/ifindex"), e))?;
    let mac = std::fs::read_to_string(format!("{base}/address"))
        .map_err(|e| DatapathError::io(format!("{base}/address"), e))?;
    let index = index.trim().parse().map_err(|_| DatapathError::Command {
        command: format!("read {base}/ifindex"),
        stderr: index.clone(),
    })?;
    let mac = parse_mac(&mac).ok_or_else(|| DatapathError::Command {
        command: format!("read {base}/address"),
        stderr: mac.clone(),
    })?;
    Ok((index, mac))
}

//! Listings, byte for byte as ipvsadm 1.31 prints them: `-L [-n]` with
//! `--stats`, `--rate`, `--exact`, `--thresholds`, `--persistent-conn`,
//! `--tun-info`, `-L -t svc`, `-L -c [--persistent-conn]`, `-L --timeout`,
//! plus the rvs `--json` form of each.
//!
//! Sorting differs from ipvsadm on purpose: ipvsadm 1.31 compares
//! addresses with `int r = ntohl(a) - ntohl(b)`, which overflows for
//! addresses 2^31 apart (192.168.0.1 sorts before 10.0.0.1 in some inputs,
//! and the order is not even transitive). rvsadm compares addresses as
//! unsigned numbers, so services sort by (fwmark, family, protocol, address,
//! port) and real servers by (family, address, port), in true numeric
//! order. `--nosort` keeps the director's order. Fwmarks print as unsigned
//! numbers (ipvsadm 1.31 prints marks >= 2^31 as negative; upstream fixed
//! that after the release).

use crate::addr::inet_ntop6;
use crate::cli::{ListOptions, ListTarget, ListView};
use crate::resolve::Resolver;
use rvs_core::model::{
    Family, FwdMethod, Netmask, Protocol, ServiceConfig, ServiceKey, TunnelCsum, TunnelKind,
};
use rvs_core::snapshot::{
    ConnProtocol, ConnSnapshot, DestSnapshot, ServiceSnapshot, TableSnapshot, Timeouts,
};
use std::fmt::Write as _;
use std::net::IpAddr;

/// IPVS version the header reports.
pub const IPVS_VERSION: &str = "1.2.1";

/// How addresses and ports are printed: numerically or through a resolver.
#[derive(Clone, Copy)]
pub struct Names<'a> {
    pub numeric: bool,
    pub resolver: &'a dyn Resolver,
}

impl std::fmt::Debug for Names<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Names")
            .field("numeric", &self.numeric)
            .finish()
    }
}

/// An address as `inet_ntop` prints it.
pub fn addr_text(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => inet_ntop6(&a),
    }
}

/// ipvsadm's `addrport_to_anyname`: `addr:port`, `[v6]:port`, with names
/// unless numeric; at most 59 bytes (ipvsadm's 60-byte buffer).
pub fn addr_port(addr: IpAddr, port: u16, protocol: Option<Protocol>, names: Names<'_>) -> String {
    let (host, service) = if names.numeric {
        (addr_text(addr), port.to_string())
    } else {
        let host = names
            .resolver
            .addr_to_host(addr)
            .unwrap_or_else(|| addr_text(addr));
        let service = protocol
            .and_then(|p| names.resolver.port_to_service(port, p))
            .unwrap_or_else(|| port.to_string());
        (host, service)
    };
    let text = match addr {
        IpAddr::V4(_) => format!("{host}:{service}"),
        IpAddr::V6(_) => format!("[{host}]:{service}"),
    };
    truncate_bytes(text, 59)
}

fn truncate_bytes(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// `%-Ns` (byte-counted, never truncates).
fn ljust(s: &str, width: usize) -> String {
    let mut out = s.to_string();
    while out.len() < width {
        out.push(' ');
    }
    out
}

/// ipvsadm's `print_largenum`: `%9llu` below 1e8, then K/M/G/T with
/// `%8llu` and a suffix; with `--exact` width 9 or the length plus one.
pub fn largenum(n: u64, exact: bool) -> String {
    if exact {
        let digits = n.to_string();
        let width = if digits.len() <= 8 {
            9
        } else {
            digits.len() + 1
        };
        return format!("{digits:>width$}");
    }
    if n < 100_000_000 {
        format!("{n:>9}")
    } else if n < 1_000_000_000 {
        format!("{:>8}K", n / 1000)
    } else if n < 100_000_000_000 {
        format!("{:>8}M", n / 1_000_000)
    } else if n < 100_000_000_000_000 {
        format!("{:>8}G", n / 1_000_000_000)
    } else {
        format!("{:>8}T", n / 1_000_000_000_000)
    }
}

/// Scheduler flag names as ipvsadm prints them for scheduler `sched`
/// (`sh-fallback,sh-port`, `mh-port`, `flag-1,flag-3`, ...).
pub fn sched_flags_text(sched: &str, flags: u32) -> String {
    let names: [(u32, &str); 3] = match sched {
        "sh" => [(0x08, "sh-fallback"), (0x10, "sh-port"), (0, "")],
        "mh" => [(0x08, "mh-fallback"), (0x10, "mh-port"), (0, "")],
        _ => [(0x08, "flag-1"), (0x10, "flag-2"), (0x20, "flag-3")],
    };
    names
        .iter()
        .filter(|(bit, _)| *bit != 0 && flags & bit != 0)
        .map(|(_, n)| *n)
        .collect::<Vec<_>>()
        .join(",")
}

/// True when any SCHED1..3 bit is set (ipvsadm then prints the flags part,
/// even if no name applies to the scheduler).
pub fn has_sched_flags(flags: u32) -> bool {
    flags & 0x38 != 0
}

/// The protocol real-server port names are looked up with. The kernel
/// reports fwmark services with protocol 0, so their ports stay numeric
/// (refvm: `203.0.113.24:8080` under `FWM  1` even without `-n`).
pub fn service_protocol(key: &ServiceKey) -> Option<Protocol> {
    match key {
        ServiceKey::Addr { protocol, .. } => Some(*protocol),
        ServiceKey::Fwmark { .. } => None,
    }
}

fn addr_number(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn family_rank(f: Family) -> u8 {
    match f {
        Family::V4 => 0,
        Family::V6 => 1,
    }
}

fn service_sort_key(s: &ServiceSnapshot) -> (u32, u8, u8, u128, u16) {
    match s.config.key {
        ServiceKey::Addr {
            protocol,
            addr,
            port,
        } => (
            0,
            family_rank(Family::of(&addr)),
            protocol.number(),
            addr_number(addr),
            port,
        ),
        ServiceKey::Fwmark { mark, family } => (mark, family_rank(family), 0, 0, 0),
    }
}

fn dest_sort_key(d: &DestSnapshot) -> (u8, u128, u16) {
    (
        family_rank(Family::of(&d.config.addr)),
        addr_number(d.config.addr),
        d.config.port,
    )
}

/// Services (and each service's real servers) in listing order.
pub fn sorted_table(table: &TableSnapshot, nosort: bool) -> TableSnapshot {
    let mut t = table.clone();
    if !nosort {
        t.services.sort_by_key(service_sort_key);
        for s in &mut t.services {
            s.dests.sort_by_key(dest_sort_key);
        }
    }
    t
}

fn title(view: ListView) -> String {
    match view {
        ListView::Stats => format!(
            "{} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port\n",
            ljust("Prot LocalAddress:Port", 33),
            "Conns",
            "InPkts",
            "OutPkts",
            "InBytes",
            "OutBytes"
        ),
        ListView::Rate => format!(
            "{} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port\n",
            ljust("Prot LocalAddress:Port", 33),
            "CPS",
            "InPPS",
            "OutPPS",
            "InBPS",
            "OutBPS"
        ),
        ListView::Thresholds => format!(
            "{} {:<10} {:<10} {:<10} {:<10}\n  -> RemoteAddress:Port\n",
            ljust("Prot LocalAddress:Port", 33),
            "Uthreshold",
            "Lthreshold",
            "ActiveConn",
            "InActConn"
        ),
        ListView::PersistentConn => format!(
            "{} {:<9} {:<11} {:<10} {:<10}\n  -> RemoteAddress:Port\n",
            ljust("Prot LocalAddress:Port", 33),
            "Weight",
            "PersistConn",
            "ActiveConn",
            "InActConn"
        ),
        ListView::TunInfo => "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n".to_string(),
        ListView::Normal => "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n".to_string(),
    }
}

/// The service column of a listing (`TCP  1.2.3.4:80`, `FWM  5 IPv6`).
fn service_name(key: &ServiceKey, names: Names<'_>) -> String {
    match key {
        ServiceKey::Fwmark { mark, family } => match family {
            Family::V4 => format!("FWM  {mark}"),
            Family::V6 => format!("FWM  {mark} IPv6"),
        },
        ServiceKey::Addr {
            protocol,
            addr,
            port,
        } => {
            let text = format!(
                "{} {}",
                ljust(protocol.name(), 4),
                addr_port(*addr, *port, Some(*protocol), names)
            );
            if addr.is_ipv4() {
                truncate_bytes(text, 33)
            } else {
                text
            }
        }
    }
}

/// Persistence text shared by `-L` (`persistent 360 mask 255.255.255.0 pe sip`).
fn persistence_text(config: &ServiceConfig) -> String {
    let mut out = String::new();
    if let Some(timeout) = config.persistent {
        let _ = write!(out, " persistent {timeout}");
        match config.netmask {
            Netmask::V4(m) if config.key.family() == Family::V4 && !config.netmask.is_full() => {
                let _ = write!(out, " mask {m}");
            }
            Netmask::V6(p) if config.key.family() == Family::V6 && p != 128 => {
                let _ = write!(out, " mask {p}");
            }
            _ => {}
        }
        if let Some(pe) = config.pe.as_deref().filter(|p| !p.is_empty()) {
            let _ = write!(out, " pe {pe}");
        }
    }
    out
}

fn tunnel_info(fwd: &FwdMethod) -> String {
    let flag = |c: TunnelCsum| match c {
        TunnelCsum::NoCsum => "-c",
        TunnelCsum::Csum => "+c",
        TunnelCsum::RemCsum => "r+c",
    };
    match fwd {
        FwdMethod::Tunnel { kind, csum } => match kind {
            TunnelKind::Ipip => "ipip".to_string(),
            TunnelKind::Gue { port } => format!("gue:{port}:{}", flag(*csum)),
            TunnelKind::Gre => format!("gre:{}", flag(*csum)),
        },
        _ => "n/a".to_string(),
    }
}

fn service_entry(out: &mut String, svc: &ServiceSnapshot, opts: &ListOptions, names: Names<'_>) {
    let cfg = &svc.config;
    let name = service_name(&cfg.key, names);
    let exact = opts.exact;
    match opts.view {
        ListView::Stats => {
            let s = &svc.stats;
            out.push_str(&ljust(&name, 33));
            for n in [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes] {
                out.push_str(&largenum(n, exact));
            }
        }
        ListView::Rate => {
            let r = &svc.rates;
            out.push_str(&ljust(&name, 33));
            for n in [r.cps, r.inpps, r.outpps, r.inbps, r.outbps] {
                out.push_str(&largenum(n, exact));
            }
        }
        _ => {
            let _ = write!(out, "{name} {}", cfg.scheduler);
            if has_sched_flags(cfg.flags.0) {
                let _ = write!(out, " ({})", sched_flags_text(&cfg.scheduler, cfg.flags.0));
            }
            out.push_str(&persistence_text(cfg));
            if cfg.ops {
                out.push_str(" ops");
            }
        }
    }
    out.push('\n');

    let proto = service_protocol(&cfg.key);
    for d in &svc.dests {
        let mut dname = addr_port(d.config.addr, d.config.port, proto, names);
        if d.config.addr.is_ipv4() {
            dname = truncate_bytes(dname, 28);
        }
        let dname = ljust(&dname, 28);
        match opts.view {
            ListView::Stats => {
                let s = &d.stats;
                let _ = write!(out, "  -> {dname}");
                for n in [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes] {
                    out.push_str(&largenum(n, exact));
                }
                out.push('\n');
            }
            ListView::Rate => {
                let r = &d.rates;
                let _ = write!(
                    out,
                    "  -> {dname} {:>8} {:>8} {:>8}",
                    r.cps, r.inpps, r.outpps
                );
                out.push_str(&largenum(r.inbps, exact));
                out.push_str(&largenum(r.outbps, exact));
                out.push('\n');
            }
            ListView::Thresholds => {
                let _ = writeln!(
                    out,
                    "  -> {dname} {:<10} {:<10} {:<10} {:<10}",
                    d.config.u_threshold, d.config.l_threshold, d.active, d.inactive
                );
            }
            ListView::PersistentConn => {
                let _ = writeln!(
                    out,
                    "  -> {dname} {:<9} {:<11} {:<10} {:<10}",
                    d.config.weight.max(0),
                    d.persist,
                    d.active,
                    d.inactive
                );
            }
            ListView::TunInfo => {
                let _ = writeln!(
                    out,
                    "  -> {dname} {:<7} {:<13} {:<6} {:<10} {:<10}",
                    d.config.fwd.name(),
                    tunnel_info(&d.config.fwd),
                    d.config.weight,
                    d.active,
                    d.inactive
                );
            }
            ListView::Normal => {
                let _ = writeln!(
                    out,
                    "  -> {dname} {:<7} {:<6} {:<10} {:<10}",
                    d.config.fwd.name(),
                    d.config.weight,
                    d.active,
                    d.inactive
                );
            }
        }
    }
}

/// `-L` of the whole table: header, title, every service.
pub fn list_all(table: &TableSnapshot, opts: &ListOptions, resolver: &dyn Resolver) -> String {
    let names = Names {
        numeric: opts.numeric,
        resolver,
    };
    let table = sorted_table(table, opts.nosort);
    let mut out = format!(
        "IP Virtual Server version {IPVS_VERSION} (size={})\n",
        table.conn_table_size
    );
    out.push_str(&title(opts.view));
    for svc in &table.services {
        service_entry(&mut out, svc, opts, names);
    }
    out
}

/// `-L -t svc`: title and that service, no header; `None` when the
/// service does not exist (ipvsadm: "No such service", rc 1).
pub fn list_service(
    table: &TableSnapshot,
    key: &ServiceKey,
    opts: &ListOptions,
    resolver: &dyn Resolver,
) -> Option<String> {
    let names = Names {
        numeric: opts.numeric,
        resolver,
    };
    let table = sorted_table(table, opts.nosort);
    let svc = table.services.iter().find(|s| s.config.key == *key)?;
    let mut out = title(opts.view);
    service_entry(&mut out, svc, opts, names);
    Some(out)
}

fn conn_protocol(p: ConnProtocol) -> Option<Protocol> {
    match p {
        ConnProtocol::Tcp => Some(Protocol::Tcp),
        ConnProtocol::Udp => Some(Protocol::Udp),
        ConnProtocol::Sctp => Some(Protocol::Sctp),
        ConnProtocol::Ip => None,
    }
}

/// `-L -c [--persistent-conn]`, rows in the director's order.
pub fn list_connections(
    conns: &[ConnSnapshot],
    opts: &ListOptions,
    resolver: &dyn Resolver,
) -> String {
    let names = Names {
        numeric: opts.numeric,
        resolver,
    };
    let pe_columns = opts.view == ListView::PersistentConn;
    let mut out = String::from("IPVS connection entries\n");
    if pe_columns {
        let _ = writeln!(
            out,
            "pro expire {:<11} {:<18} {:<18} {:<18} {:<16} pe_data",
            "state", "source", "virtual", "destination", "pe name"
        );
    } else {
        let _ = writeln!(
            out,
            "pro expire {:<11} {:<18} {:<18} destination",
            "state", "source", "virtual"
        );
    }
    for c in conns {
        let proto = conn_protocol(c.protocol);
        let secs = c.expires_ms / 1000;
        let expire = format!("{:02}:{:02}", secs / 60, secs % 60);
        let cname = addr_port(c.caddr, c.cport, proto, names);
        let vname = addr_port(c.vaddr, c.vport, proto, names);
        let dname = addr_port(c.daddr, c.dport, proto, names);
        let pe = match (&c.pe_name, &c.pe_data) {
            (Some(n), Some(d)) if pe_columns && !n.is_empty() && !d.is_empty() => Some((n, d)),
            _ => None,
        };
        let _ = write!(
            out,
            "{} {} {} {} {} ",
            ljust(c.protocol.name(), 3),
            ljust(&expire, 6),
            ljust(&c.state, 11),
            ljust(&cname, 18),
            ljust(&vname, 18)
        );
        match pe {
            Some((n, d)) => {
                let _ = writeln!(out, "{} {} {}", ljust(&dname, 16), ljust(n, 18), d);
            }
            None => {
                let _ = writeln!(out, "{dname}");
            }
        }
    }
    out
}

/// `-L --timeout`.
pub fn list_timeouts(t: &Timeouts) -> String {
    format!(
        "Timeout (tcp tcpfin udp): {} {} {}\n",
        t.tcp, t.tcpfin, t.udp
    )
}

/// The `--json` forms (an rvs extension): the same information as the
/// text listing, as pretty JSON followed by a newline.
pub mod json {
    use super::*;

    fn pretty<T: serde::Serialize>(value: &T) -> String {
        let mut s = serde_json::to_string_pretty(value)
            .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
        s.push('\n');
        s
    }

    /// The whole table, in listing order unless `nosort`.
    pub fn list_all(table: &TableSnapshot, nosort: bool) -> String {
        pretty(&sorted_table(table, nosort))
    }

    /// One service, `None` if missing.
    pub fn list_service(table: &TableSnapshot, key: &ServiceKey, nosort: bool) -> Option<String> {
        let table = sorted_table(table, nosort);
        table
            .services
            .iter()
            .find(|s| s.config.key == *key)
            .map(pretty)
    }

    pub fn list_connections(conns: &[ConnSnapshot]) -> String {
        pretty(&conns)
    }

    pub fn list_timeouts(t: &Timeouts) -> String {
        pretty(t)
    }

    /// `-L --daemon --json`: rvs runs no sync daemon.
    pub fn list_daemons() -> String {
        "[]\n".to_string()
    }
}

/// Renders a listing that needs only the table (used by `run`).
pub fn render_table_listing(
    table: &TableSnapshot,
    opts: &ListOptions,
    resolver: &dyn Resolver,
) -> Option<String> {
    match (&opts.target, opts.json) {
        (ListTarget::Service(key), false) => list_service(table, key, opts, resolver),
        (ListTarget::Service(key), true) => json::list_service(table, key, opts.nosort),
        (_, false) => Some(list_all(table, opts, resolver)),
        (_, true) => Some(json::list_all(table, opts.nosort)),
    }
}

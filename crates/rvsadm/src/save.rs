//! `-S [-n]`: the table as ipvsadm restore lines.
//!
//! For tables ipvsadm can describe, the text is byte-identical to ipvsadm
//! 1.31's (sorted services each followed by its sorted real servers; Local
//! saved as `-g`; `--tun-type ...` only for tunnel servers). rvs adds what
//! ipvsadm loses, in forms ipvsadm itself can read back:
//! * `-x N` / `-y N` at the end of a real-server line, only when non-zero;
//! * a first line `--set tcp tcpfin udp` only when the timeouts differ from
//!   the defaults 900 120 300;
//! * before that, one `--sysctl name=value` line per IPVS knob whose value
//!   differs from the kernel's default (an rvs extension ipvsadm does not
//!   read; a table with default knobs saves as ipvsadm would).

use crate::format::{
    addr_port, has_sched_flags, sched_flags_text, service_protocol, sorted_table, Names,
};
use crate::resolve::Resolver;
use rvs_api::KnobValue;
use rvs_core::knobs::Knobs;
use rvs_core::model::{Family, FwdMethod, Netmask, ServiceKey, TunnelCsum, TunnelKind};
use rvs_core::snapshot::{TableSnapshot, Timeouts};
use std::fmt::Write as _;

/// The `--set` line for non-default timeouts, without newline.
pub fn timeouts_line(t: &Timeouts) -> Option<String> {
    (*t != Timeouts::default()).then(|| format!("--set {} {} {}", t.tcp, t.tcpfin, t.udp))
}

/// `--sysctl name=value` lines (without newlines) for the knobs whose value
/// is not the kernel default, in the order given. A name the engine does
/// not know has no default and is always written.
pub fn knob_lines(knobs: &[KnobValue]) -> Vec<String> {
    let defaults = Knobs::default();
    knobs
        .iter()
        .filter(|k| defaults.get(&k.name) != Some(k.value))
        .map(|k| format!("--sysctl {}={}", k.name, k.value))
        .collect()
}

/// The service part of a rule (`-t 1.2.3.4:80`, `-f 5 -6`).
fn service_rule(key: &ServiceKey, names: Names<'_>) -> String {
    match key {
        ServiceKey::Fwmark { mark, family } => match family {
            Family::V4 => format!("-f {mark}"),
            Family::V6 => format!("-f {mark} -6"),
        },
        ServiceKey::Addr {
            protocol,
            addr,
            port,
        } => {
            let flag = match protocol {
                rvs_core::Protocol::Tcp => "-t",
                rvs_core::Protocol::Udp => "-u",
                rvs_core::Protocol::Sctp => "--sctp-service",
            };
            format!("{flag} {}", addr_port(*addr, *port, Some(*protocol), names))
        }
    }
}

/// ipvsadm's save text (plus the rvs extensions described above).
pub fn save(
    table: &TableSnapshot,
    timeouts: Option<&Timeouts>,
    knobs: &[KnobValue],
    numeric: bool,
    resolver: &dyn Resolver,
) -> String {
    let names = Names { numeric, resolver };
    let mut out = String::new();
    for line in knob_lines(knobs) {
        out.push_str(&line);
        out.push('\n');
    }
    if let Some(line) = timeouts.and_then(timeouts_line) {
        out.push_str(&line);
        out.push('\n');
    }
    let table = sorted_table(table, false);
    for svc in &table.services {
        let cfg = &svc.config;
        let sname = service_rule(&cfg.key, names);
        let _ = write!(out, "-A {sname} -s {}", cfg.scheduler);
        if let Some(timeout) = cfg.persistent {
            let _ = write!(out, " -p {timeout}");
            match cfg.netmask {
                Netmask::V4(m) if cfg.key.family() == Family::V4 && !cfg.netmask.is_full() => {
                    let _ = write!(out, " -M {m}");
                }
                Netmask::V6(p) if cfg.key.family() == Family::V6 && p != 128 => {
                    let _ = write!(out, " -M {p}");
                }
                _ => {}
            }
        }
        if let Some(pe) = cfg.pe.as_deref().filter(|p| !p.is_empty()) {
            let _ = write!(out, " --pe {pe}");
        }
        if cfg.ops {
            out.push_str(" -o");
        }
        if has_sched_flags(cfg.flags.0) {
            let _ = write!(out, " -b {}", sched_flags_text(&cfg.scheduler, cfg.flags.0));
        }
        out.push('\n');

        let proto = service_protocol(&cfg.key);
        for d in &svc.dests {
            let dc = &d.config;
            let dname = addr_port(dc.addr, dc.port, proto, names);
            let switch = match dc.fwd {
                FwdMethod::Masq => "-m",
                FwdMethod::Tunnel { .. } => "-i",
                FwdMethod::Local | FwdMethod::Route => "-g",
            };
            let _ = write!(out, "-a {sname} -r {dname} {switch} -w {}", dc.weight);
            if let FwdMethod::Tunnel { kind, csum } = dc.fwd {
                let csum = match csum {
                    TunnelCsum::NoCsum => "--tun-nocsum",
                    TunnelCsum::Csum => "--tun-csum",
                    TunnelCsum::RemCsum => "--tun-remcsum",
                };
                match kind {
                    TunnelKind::Ipip => out.push_str(" --tun-type ipip"),
                    TunnelKind::Gue { port } => {
                        let _ = write!(out, " --tun-type gue --tun-port {port} {csum}");
                    }
                    TunnelKind::Gre => {
                        let _ = write!(out, " --tun-type gre {csum}");
                    }
                }
            }
            if dc.u_threshold != 0 {
                let _ = write!(out, " -x {}", dc.u_threshold);
            }
            if dc.l_threshold != 0 {
                let _ = write!(out, " -y {}", dc.l_threshold);
            }
            out.push('\n');
        }
    }
    out
}

//! Netfilter steering: which packets go to the engine's queue.
//!
//! [`SteeringSpec`] is what must be queued, computed from the engine's
//! table: packets to each virtual service, replies from each NAT real
//! server, and packets carrying a firewall-mark service's mark.
//! [`ruleset`] turns it into `iptables-restore` input (pure, unit tested);
//! [`NetfilterSteering`] installs it in rvsd's own chains and keeps the
//! jumps to them in place when an operator flushes tables.
//!
//! Rules live in table `raw` (before conntrack, so queued packets that
//! the datapath consumes never create conntrack entries), except the
//! firewall-mark rules, which must run after `mangle PREROUTING` sets the
//! mark and so sit in `mangle INPUT`. All of them use `--queue-bypass`:
//! without rvsd the kernel handles the packets itself.
//!
//! Clients on the director itself: a packet the director generates never
//! passes PREROUTING, so `raw OUTPUT` (chain `RVS-OUT`) queues locally
//! generated packets to each virtual service too (what the kernel's IPVS
//! does in its LOCAL_OUT hook). The replies of NAT real servers to such a
//! client arrive from the wire and take the PREROUTING rules. A packet
//! that looped back through `lo` was already seen in OUTPUT, so the
//! PREROUTING rules skip `lo` (each packet reaches the engine once), and
//! what the datapath sends itself (`tx_mark`) is never queued again.

use crate::sys::command_output;
use crate::DatapathError;
use rvs_core::snapshot::TableSnapshot;
use rvs_core::{Family, FwdMethod, Protocol, ServiceKey};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::process::{Command, Stdio};

/// rvsd's chains.
pub const CHAIN_PRE: &str = "RVS-PRE";
pub const CHAIN_OUT: &str = "RVS-OUT";
pub const CHAIN_MARK: &str = "RVS-MARK";

/// Packets to steer, in a canonical order (so two specs compare equal
/// when they steer the same packets).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SteeringSpec {
    /// Virtual services by address: (protocol, VIP, port; 0 = all ports).
    pub services: Vec<(Protocol, IpAddr, u16)>,
    /// NAT real servers: (protocol, RIP, port; 0 = any source port).
    pub nat_sources: Vec<(Protocol, IpAddr, u16)>,
    /// Firewall-mark services: (mark, family).
    pub marks: Vec<(u32, Family)>,
    /// Virtual services whose locally generated packets (clients on the
    /// director) are queued in the OUTPUT path; [`Self::from_snapshot`]
    /// makes it equal to `services`.
    pub local_clients: Vec<(Protocol, IpAddr, u16)>,
}

const ALL_PROTOCOLS: [Protocol; 3] = [Protocol::Tcp, Protocol::Udp, Protocol::Sctp];

impl SteeringSpec {
    /// What to steer for `table`. Like the kernel's IPVS, which sees
    /// packets at LOCAL_IN, only services whose VIP is an address of this
    /// host (`is_local`) are steered (with their NAT replies);
    /// firewall-mark services always are.
    pub fn from_snapshot(
        table: &TableSnapshot,
        is_local: impl Fn(&IpAddr) -> bool,
    ) -> SteeringSpec {
        let mut spec = SteeringSpec::default();
        for s in &table.services {
            if let ServiceKey::Addr { addr, .. } = s.config.key {
                if !is_local(&addr) {
                    continue;
                }
            }
            let protocols: Vec<Protocol> = match s.config.key {
                ServiceKey::Addr {
                    protocol,
                    addr,
                    port,
                } => {
                    spec.services.push((protocol, addr, port));
                    vec![protocol]
                }
                ServiceKey::Fwmark { mark, family } => {
                    spec.marks.push((mark, family));
                    ALL_PROTOCOLS.to_vec()
                }
            };
            for d in &s.dests {
                if d.config.fwd != FwdMethod::Masq {
                    continue;
                }
                // A port-0 real server answers from the client's
                // destination port, whatever it was.
                let port = if s.config.key.port() == 0 {
                    0
                } else {
                    d.config.port
                };
                for p in &protocols {
                    spec.nat_sources.push((*p, d.config.addr, port));
                }
            }
        }
        spec.services.sort_by_key(|k| key_order(*k));
        spec.services.dedup();
        spec.nat_sources.sort_by_key(|k| key_order(*k));
        spec.nat_sources.dedup();
        spec.marks.sort_by_key(|(m, f)| (*m, *f == Family::V6));
        spec.marks.dedup();
        spec.local_clients = spec.services.clone();
        spec
    }

    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
            && self.nat_sources.is_empty()
            && self.marks.is_empty()
            && self.local_clients.is_empty()
    }
}

fn key_order((p, a, port): (Protocol, IpAddr, u16)) -> (u8, IpAddr, u16) {
    (protocol_number(p), a, port)
}

fn protocol_number(p: Protocol) -> u8 {
    match p {
        Protocol::Tcp => 6,
        Protocol::Udp => 17,
        Protocol::Sctp => 132,
    }
}

fn protocol_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
        Protocol::Sctp => "sctp",
    }
}

/// How rules are built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SteeringConfig {
    /// NFQUEUE number.
    pub queue: u16,
    /// Mark of packets the datapath sends (exempted from conntrack).
    pub tx_mark: u32,
    /// Only steer packets arriving on these interfaces (empty = all).
    pub interfaces: Vec<String>,
}

fn family_of(a: &IpAddr) -> Family {
    match a {
        IpAddr::V4(_) => Family::V4,
        IpAddr::V6(_) => Family::V6,
    }
}

fn host(a: &IpAddr) -> String {
    match a {
        IpAddr::V4(v4) => format!("{v4}/32"),
        IpAddr::V6(v6) => format!("{v6}/128"),
    }
}

/// `iptables-restore --noflush` input for one family: rvsd's chains,
/// flushed and refilled. Jumps into them are installed separately.
pub fn ruleset(spec: &SteeringSpec, cfg: &SteeringConfig, family: Family) -> String {
    let target = format!("-j NFQUEUE --queue-num {} --queue-bypass", cfg.queue);
    // Every interface but loopback: what comes in on `lo` was generated
    // here and has been through the OUTPUT rules already.
    let ifaces: Vec<String> = if cfg.interfaces.is_empty() {
        vec![" ! -i lo".to_string()]
    } else {
        cfg.interfaces.iter().map(|i| format!(" -i {i}")).collect()
    };
    let mut s = String::new();
    s.push_str("*raw\n");
    let _ = writeln!(s, ":{CHAIN_PRE} - [0:0]");
    let _ = writeln!(s, ":{CHAIN_OUT} - [0:0]");
    for iface in &ifaces {
        for (p, addr, port) in spec.services.iter().filter(|k| family_of(&k.1) == family) {
            let dport = if *port == 0 {
                String::new()
            } else {
                format!(" --dport {port}")
            };
            let proto = protocol_name(*p);
            let _ = writeln!(
                s,
                "-A {CHAIN_PRE}{iface} -p {proto} -d {}{dport} {target}",
                host(addr)
            );
        }
        for (p, addr, port) in spec
            .nat_sources
            .iter()
            .filter(|k| family_of(&k.1) == family)
        {
            let sport = if *port == 0 {
                String::new()
            } else {
                format!(" --sport {port}")
            };
            let proto = protocol_name(*p);
            let _ = writeln!(
                s,
                "-A {CHAIN_PRE}{iface} -p {proto} -s {}{sport} {target}",
                host(addr)
            );
        }
    }
    let _ = writeln!(
        s,
        "-A {CHAIN_OUT} -m mark --mark {:#x} -j CT --notrack",
        cfg.tx_mark
    );
    let _ = writeln!(
        s,
        "-A {CHAIN_OUT} -m mark --mark {:#x} -j RETURN",
        cfg.tx_mark
    );
    for (p, addr, port) in spec
        .local_clients
        .iter()
        .filter(|k| family_of(&k.1) == family)
    {
        let dport = if *port == 0 {
            String::new()
        } else {
            format!(" --dport {port}")
        };
        let proto = protocol_name(*p);
        let _ = writeln!(
            s,
            "-A {CHAIN_OUT} -p {proto} -d {}{dport} {target}",
            host(addr)
        );
    }
    s.push_str("COMMIT\n*mangle\n");
    let _ = writeln!(s, ":{CHAIN_MARK} - [0:0]");
    for iface in &ifaces {
        for (mark, _) in spec.marks.iter().filter(|m| m.1 == family) {
            let _ = writeln!(
                s,
                "-A {CHAIN_MARK}{iface} -m mark --mark {mark:#x} {target}"
            );
        }
    }
    s.push_str("COMMIT\n");
    s
}

/// The jumps into rvsd's chains: (table, built-in chain, rvsd chain).
pub const JUMPS: [(&str, &str, &str); 3] = [
    ("raw", "PREROUTING", CHAIN_PRE),
    ("raw", "OUTPUT", CHAIN_OUT),
    ("mangle", "INPUT", CHAIN_MARK),
];

fn tool(family: Family) -> (&'static str, &'static str) {
    match family {
        Family::V4 => ("iptables", "iptables-restore"),
        Family::V6 => ("ip6tables", "ip6tables-restore"),
    }
}

fn restore(family: Family, input: &str) -> Result<(), DatapathError> {
    use std::io::Write;
    let (_, program) = tool(family);
    let mut child = Command::new(program)
        .args(["--noflush", "-w"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| DatapathError::io(program, e))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .map_err(|e| DatapathError::io(program, e))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| DatapathError::io(program, e))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(DatapathError::Command {
            command: format!("{program} --noflush"),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

fn jump_present(family: Family, table: &str, chain: &str, target: &str) -> bool {
    let (program, _) = tool(family);
    Command::new(program)
        .args(["-w", "-t", table, "-C", chain, "-j", target])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// rvsd's steering rules in the kernel, for IPv4 and (best effort) IPv6.
#[derive(Debug)]
pub struct NetfilterSteering {
    cfg: SteeringConfig,
    installed: Option<SteeringSpec>,
    /// Whether ip6tables worked the last time it was tried.
    v6_ok: bool,
}

impl NetfilterSteering {
    pub fn new(cfg: SteeringConfig) -> NetfilterSteering {
        NetfilterSteering {
            cfg,
            installed: None,
            v6_ok: true,
        }
    }

    /// Check that iptables works here at all (and fail early if not).
    pub fn probe() -> Result<(), DatapathError> {
        command_output("iptables", &["-w", "-t", "raw", "-S", "PREROUTING"]).map(|_| ())
    }

    /// Install `spec` unless it is what is installed already. Returns
    /// whether rules were written. An empty spec removes rvsd's rules
    /// (nothing is installed while there is nothing to steer).
    pub fn apply(&mut self, spec: &SteeringSpec) -> Result<bool, DatapathError> {
        if self.installed.as_ref() == Some(spec) {
            return Ok(false);
        }
        if spec.is_empty() {
            let had = self.installed.is_some();
            self.remove();
            return Ok(had);
        }
        restore(Family::V4, &ruleset(spec, &self.cfg, Family::V4))?;
        if self.v6_ok {
            if let Err(e) = restore(Family::V6, &ruleset(spec, &self.cfg, Family::V6)) {
                self.v6_ok = false;
                return Err(e);
            }
        }
        self.installed = Some(spec.clone());
        self.ensure_jumps()?;
        Ok(true)
    }

    /// Put back jumps into rvsd's chains that an operator flushed (and
    /// the chains themselves, if they were deleted). Returns how many
    /// jumps were re-installed.
    pub fn ensure_jumps(&mut self) -> Result<usize, DatapathError> {
        let mut fixed = 0;
        if self.installed.is_none() {
            return Ok(0);
        }
        let families: &[Family] = if self.v6_ok {
            &[Family::V4, Family::V6]
        } else {
            &[Family::V4]
        };
        for &family in families {
            for (table, chain, target) in JUMPS {
                if jump_present(family, table, chain, target) {
                    continue;
                }
                let (program, _) = tool(family);
                // The chain may be gone too (`iptables -X`): rewrite ours.
                if let Some(spec) = &self.installed {
                    restore(family, &ruleset(spec, &self.cfg, family))?;
                }
                command_output(
                    program,
                    &["-w", "-t", table, "-I", chain, "1", "-j", target],
                )?;
                fixed += 1;
            }
        }
        Ok(fixed)
    }

    /// Remove rvsd's jumps and chains (at a clean stop).
    pub fn remove(&mut self) {
        if self.installed.is_none() {
            return;
        }
        for family in [Family::V4, Family::V6] {
            let (program, _) = tool(family);
            for (table, chain, target) in JUMPS {
                while jump_present(family, table, chain, target) {
                    if command_output(program, &["-w", "-t", table, "-D", chain, "-j", target])
                        .is_err()
                    {
                        break;
                    }
                }
                let _ = command_output(program, &["-w", "-t", table, "-F", target]);
                let _ = command_output(program, &["-w", "-t", table, "-X", target]);
            }
        }
        self.installed = None;
    }
}

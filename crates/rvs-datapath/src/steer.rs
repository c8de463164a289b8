//! Netfilter steering: which packets go to the engine's queue.
//!
//! [`SteeringSpec`] is what must be queued, computed from the engine's
//! table: packets to each virtual service, replies from each NAT real
//! server, packets carrying a firewall-mark service's mark, and ICMP
//! errors the engine may have to relay ([`IcmpSteering`]).
//! [`ruleset`] turns it into the contents of rvsd's chains and
//! [`transaction`] into one `iptables-restore --noflush` transaction that
//! also puts the jumps into them in place (pure, unit tested);
//! [`NetfilterSteering`] installs it and keeps the jumps in place when an
//! operator flushes tables.
//!
//! Every change is one transaction per address family (`iptables-save`
//! to see what is there, then one `iptables-restore`): a ruleset change,
//! the removal of everything and the repair of flushed jumps are atomic,
//! so no packet to a service that stays ever meets a half-written chain.
//! Rules of services that left the table are kept for [`GRACE_PERIOD`]
//! ([`Grace`]): `ipvsadm -C` followed by `ipvsadm -R` (a reload) leaves
//! the rules as they were, and a client connecting in between is not
//! refused by the director's own stack. Keeping them is harmless: the
//! engine passes packets of services it does not have to the host, which
//! is where they would have gone without the rules. Services still in
//! the table whose VIP stopped being an address of this host lose their
//! rules at once (rvsd, like the kernel, only serves local VIPs).
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
use std::time::{Duration, Instant};

/// rvsd's chains.
pub const CHAIN_PRE: &str = "RVS-PRE";
pub const CHAIN_OUT: &str = "RVS-OUT";
pub const CHAIN_MARK: &str = "RVS-MARK";

/// How long rules of services that left the table stay installed.
pub const GRACE_PERIOD: Duration = Duration::from_secs(2);

/// A (protocol, address, port) steering key; port 0 = all ports.
pub type AddrKey = (Protocol, IpAddr, u16);

/// ICMP errors queued to the engine. The engine relays errors about
/// its connections (client-side errors quoting VIP -> CIP, real-server
/// side errors quoting CIP -> RIP of NAT connections, router errors
/// about its IPIP packets) and passes every other one to the host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum IcmpSteering {
    /// Nothing is steered.
    #[default]
    None,
    /// Errors addressed to this host: client-side errors (to a VIP) and
    /// errors about tunnel packets (to the tunnel source).
    ToHost,
    /// Every error, also those the director forwards: errors from the
    /// side of NAT real servers travel to the client's address.
    All,
}

/// Packets to steer, in a canonical order (so two specs compare equal
/// when they steer the same packets).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SteeringSpec {
    /// Virtual services by address: (protocol, VIP, port; 0 = all ports).
    pub services: Vec<AddrKey>,
    /// NAT real servers: (protocol, RIP, port; 0 = any source port).
    pub nat_sources: Vec<AddrKey>,
    /// Firewall-mark services: (mark, family).
    pub marks: Vec<(u32, Family)>,
    /// Virtual services whose locally generated packets (clients on the
    /// director) are queued in the OUTPUT path; [`Self::from_snapshot`]
    /// makes it equal to `services`.
    pub local_clients: Vec<AddrKey>,
    /// Services in the table whose VIP is not an address of this host
    /// (not steered), and their NAT sources: rules still held for them
    /// (see [`Grace`]) go at once. Never installed.
    pub off_host: Vec<AddrKey>,
    pub off_host_nat_sources: Vec<AddrKey>,
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
            let local = match s.config.key {
                ServiceKey::Addr { addr, .. } => is_local(&addr),
                ServiceKey::Fwmark { .. } => true,
            };
            let protocols: Vec<Protocol> = match s.config.key {
                ServiceKey::Addr {
                    protocol,
                    addr,
                    port,
                } => {
                    if local {
                        spec.services.push((protocol, addr, port));
                    } else {
                        spec.off_host.push((protocol, addr, port));
                    }
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
                    if local {
                        spec.nat_sources.push((*p, d.config.addr, port));
                    } else {
                        spec.off_host_nat_sources.push((*p, d.config.addr, port));
                    }
                }
            }
        }
        spec.local_clients = spec.services.clone();
        spec.canonical();
        spec
    }

    /// Sort and deduplicate every list.
    fn canonical(&mut self) {
        for v in [
            &mut self.services,
            &mut self.nat_sources,
            &mut self.local_clients,
            &mut self.off_host,
            &mut self.off_host_nat_sources,
        ] {
            v.sort_by_key(|k| key_order(*k));
            v.dedup();
        }
        self.marks.sort_by_key(|(m, f)| (*m, *f == Family::V6));
        self.marks.dedup();
    }

    /// Nothing to install (the `off_host` lists are never installed).
    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
            && self.nat_sources.is_empty()
            && self.marks.is_empty()
            && self.local_clients.is_empty()
    }

    /// Which ICMP errors the engine must see: every one while NAT real
    /// servers exist, those to this host while anything is steered.
    pub fn icmp(&self) -> IcmpSteering {
        if !self.nat_sources.is_empty() {
            IcmpSteering::All
        } else if self.is_empty() {
            IcmpSteering::None
        } else {
            IcmpSteering::ToHost
        }
    }
}

fn key_order((p, a, port): AddrKey) -> (u8, IpAddr, u16) {
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

/// One installed rule's reason, for the grace period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Item {
    Service(AddrKey),
    NatSource(AddrKey),
    Mark(u32, Family),
    LocalClient(AddrKey),
}

fn items(spec: &SteeringSpec) -> Vec<Item> {
    let mut v = Vec::new();
    v.extend(spec.services.iter().map(|k| Item::Service(*k)));
    v.extend(spec.nat_sources.iter().map(|k| Item::NatSource(*k)));
    v.extend(spec.marks.iter().map(|(m, f)| Item::Mark(*m, *f)));
    v.extend(spec.local_clients.iter().map(|k| Item::LocalClient(*k)));
    v
}

/// Keeps what services that left the table steered for a while (see the
/// module doc). Pure: the caller passes the time.
#[derive(Debug, Clone)]
pub struct Grace {
    period: Duration,
    /// What was wanted the last time.
    last: Vec<Item>,
    /// What is no longer wanted, and since when.
    held: Vec<(Item, Instant)>,
}

impl Grace {
    pub fn new(period: Duration) -> Grace {
        Grace {
            period,
            last: Vec::new(),
            held: Vec::new(),
        }
    }

    /// What to install at `now` when `wanted` is what the table needs:
    /// `wanted` plus what it needed within the grace period, except for
    /// services still in the table but not local any more. Call it again
    /// (rvsd does, every sync) so that held rules expire.
    pub fn effective(&mut self, wanted: &SteeringSpec, now: Instant) -> SteeringSpec {
        let now_wanted = items(wanted);
        for it in &self.last {
            if !now_wanted.contains(it) && !self.held.iter().any(|(h, _)| h == it) {
                self.held.push((*it, now));
            }
        }
        let period = self.period;
        self.held.retain(|(it, since)| {
            let off_host = match it {
                Item::Service(k) | Item::LocalClient(k) => wanted.off_host.contains(k),
                Item::NatSource(k) => wanted.off_host_nat_sources.contains(k),
                Item::Mark(..) => false,
            };
            !now_wanted.contains(it) && !off_host && now.saturating_duration_since(*since) < period
        });
        self.last = now_wanted;
        let mut out = SteeringSpec {
            services: wanted.services.clone(),
            nat_sources: wanted.nat_sources.clone(),
            marks: wanted.marks.clone(),
            local_clients: wanted.local_clients.clone(),
            off_host: Vec::new(),
            off_host_nat_sources: Vec::new(),
        };
        for (it, _) in &self.held {
            match *it {
                Item::Service(k) => out.services.push(k),
                Item::NatSource(k) => out.nat_sources.push(k),
                Item::Mark(m, f) => out.marks.push((m, f)),
                Item::LocalClient(k) => out.local_clients.push(k),
            }
        }
        out.canonical();
        out
    }

    /// Whether rules are held for services that left.
    pub fn holding(&self) -> bool {
        !self.held.is_empty()
    }

    /// Forget everything (rules removed at a clean stop).
    pub fn clear(&mut self) {
        self.last.clear();
        self.held.clear();
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

/// The ICMP error types the engine handles: destination unreachable,
/// source quench and time exceeded for ICMPv4 (parameter problem stays
/// with the host, as in the kernel); destination unreachable, packet
/// too big, time exceeded and parameter problem for ICMPv6.
fn icmp_error_matches(family: Family) -> Vec<String> {
    match family {
        Family::V4 => [3, 4, 11]
            .iter()
            .map(|t| format!("-p icmp -m icmp --icmp-type {t}"))
            .collect(),
        Family::V6 => [1, 2, 3, 4]
            .iter()
            .map(|t| format!("-p ipv6-icmp -m icmp6 --icmpv6-type {t}"))
            .collect(),
    }
}

/// The tables rvsd uses, in the order they are written.
const TABLES: [&str; 2] = ["raw", "mangle"];

/// rvsd's chains in `table`.
fn chains_of(table: &str) -> &'static [&'static str] {
    match table {
        "raw" => &[CHAIN_PRE, CHAIN_OUT],
        "mangle" => &[CHAIN_MARK],
        _ => &[],
    }
}

/// The rules of rvsd's chains in `table` (`-A` lines, no newline).
fn table_rules(
    spec: &SteeringSpec,
    cfg: &SteeringConfig,
    family: Family,
    table: &str,
) -> Vec<String> {
    let target = format!("-j NFQUEUE --queue-num {} --queue-bypass", cfg.queue);
    // Every interface but loopback: what comes in on `lo` was generated
    // here and has been through the OUTPUT rules already.
    let ifaces: Vec<String> = if cfg.interfaces.is_empty() {
        vec![" ! -i lo".to_string()]
    } else {
        cfg.interfaces.iter().map(|i| format!(" -i {i}")).collect()
    };
    let of_family = |k: &&AddrKey| family_of(&k.1) == family;
    let port_opt = |opt: &str, port: u16| {
        if port == 0 {
            String::new()
        } else {
            format!(" --{opt} {port}")
        }
    };
    let mut out = Vec::new();
    if table == "mangle" {
        for iface in &ifaces {
            for (mark, _) in spec.marks.iter().filter(|m| m.1 == family) {
                out.push(format!(
                    "-A {CHAIN_MARK}{iface} -m mark --mark {mark:#x} {target}"
                ));
            }
        }
        return out;
    }
    if table != "raw" {
        return out;
    }
    let icmp = spec.icmp();
    for iface in &ifaces {
        for (p, addr, port) in spec.services.iter().filter(of_family) {
            out.push(format!(
                "-A {CHAIN_PRE}{iface} -p {} -d {}{} {target}",
                protocol_name(*p),
                host(addr),
                port_opt("dport", *port)
            ));
        }
        for (p, addr, port) in spec.nat_sources.iter().filter(of_family) {
            out.push(format!(
                "-A {CHAIN_PRE}{iface} -p {} -s {}{} {target}",
                protocol_name(*p),
                host(addr),
                port_opt("sport", *port)
            ));
        }
        let to_host = match icmp {
            IcmpSteering::None => continue,
            IcmpSteering::ToHost => " -m addrtype --dst-type LOCAL",
            IcmpSteering::All => "",
        };
        for m in icmp_error_matches(family) {
            out.push(format!("-A {CHAIN_PRE}{iface} {m}{to_host} {target}"));
        }
    }
    out.push(format!(
        "-A {CHAIN_OUT} -m mark --mark {:#x} -j CT --notrack",
        cfg.tx_mark
    ));
    out.push(format!(
        "-A {CHAIN_OUT} -m mark --mark {:#x} -j RETURN",
        cfg.tx_mark
    ));
    for (p, addr, port) in spec.local_clients.iter().filter(of_family) {
        out.push(format!(
            "-A {CHAIN_OUT} -p {} -d {}{} {target}",
            protocol_name(*p),
            host(addr),
            port_opt("dport", *port)
        ));
    }
    out
}

/// `iptables-restore --noflush` input for one family: rvsd's chains,
/// created or flushed and refilled. Jumps into them are not included
/// (see [`transaction`]).
pub fn ruleset(spec: &SteeringSpec, cfg: &SteeringConfig, family: Family) -> String {
    let mut s = String::new();
    for table in TABLES {
        let _ = writeln!(s, "*{table}");
        for chain in chains_of(table) {
            let _ = writeln!(s, ":{chain} - [0:0]");
        }
        for r in table_rules(spec, cfg, family, table) {
            let _ = writeln!(s, "{r}");
        }
        s.push_str("COMMIT\n");
    }
    s
}

/// The jumps into rvsd's chains: (table, built-in chain, rvsd chain).
pub const JUMPS: [(&str, &str, &str); 3] = [
    ("raw", "PREROUTING", CHAIN_PRE),
    ("raw", "OUTPUT", CHAIN_OUT),
    ("mangle", "INPUT", CHAIN_MARK),
];

/// What of rvsd's is in one family's tables, from `iptables-save`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelState {
    /// rvsd's chains that exist: (table, chain, number of rules).
    pub chains: Vec<(String, String, usize)>,
    /// Plain jumps into rvsd's chains: (table, built-in chain, target,
    /// how many).
    pub jumps: Vec<(String, String, String, usize)>,
}

impl KernelState {
    /// How many rules `chain` of `table` has; `None` if it does not exist.
    pub fn rules(&self, table: &str, chain: &str) -> Option<usize> {
        self.chains
            .iter()
            .find(|(t, c, _)| t == table && c == chain)
            .map(|(_, _, n)| *n)
    }

    /// How many plain jumps `builtin` of `table` has into `target`.
    pub fn jumps(&self, table: &str, builtin: &str, target: &str) -> usize {
        self.jumps
            .iter()
            .find(|(t, b, g, _)| t == table && b == builtin && g == target)
            .map_or(0, |j| j.3)
    }
}

/// Parse `iptables-save` output: rvsd's chains with their rule counts,
/// and the jumps into them.
pub fn parse_save(text: &str) -> KernelState {
    let mut st = KernelState::default();
    let mut table = String::new();
    let ours = |c: &str| [CHAIN_PRE, CHAIN_OUT, CHAIN_MARK].contains(&c);
    for line in text.lines() {
        let line = line.trim_end();
        if let Some(t) = line.strip_prefix('*') {
            table = t.to_string();
        } else if let Some(decl) = line.strip_prefix(':') {
            let name = decl.split_whitespace().next().unwrap_or_default();
            if ours(name) {
                st.chains.push((table.clone(), name.to_string(), 0));
            }
        } else if let Some(rule) = line.strip_prefix("-A ") {
            let mut words = rule.split_whitespace();
            let chain = words.next().unwrap_or_default();
            if ours(chain) {
                if let Some(c) = st
                    .chains
                    .iter_mut()
                    .find(|(t, c, _)| *t == table && c == chain)
                {
                    c.2 += 1;
                }
                continue;
            }
            let rest: Vec<&str> = words.collect();
            if let ["-j", target] = rest.as_slice() {
                if ours(target) {
                    match st
                        .jumps
                        .iter_mut()
                        .find(|(t, b, g, _)| *t == table && b == chain && g == target)
                    {
                        Some(j) => j.3 += 1,
                        None => st.jumps.push((
                            table.clone(),
                            chain.to_string(),
                            (*target).to_string(),
                            1,
                        )),
                    }
                }
            }
        }
    }
    st
}

/// One `iptables-restore --noflush` transaction for one family, from
/// what `state` says is there: with `spec`, rvsd's chains created or
/// flushed and refilled and exactly one jump into each (missing ones
/// inserted first in their built-in chain, duplicates deleted); without,
/// rvsd's jumps and chains removed. Empty when there is nothing to do.
pub fn transaction(
    spec: Option<&SteeringSpec>,
    cfg: &SteeringConfig,
    family: Family,
    state: &KernelState,
) -> String {
    let mut s = String::new();
    for table in TABLES {
        let mut lines = Vec::new();
        let jumps = JUMPS.iter().filter(|j| j.0 == table);
        match spec {
            Some(spec) => {
                for chain in chains_of(table) {
                    lines.push(format!(":{chain} - [0:0]"));
                }
                lines.extend(table_rules(spec, cfg, family, table));
                for (_, builtin, target) in jumps {
                    let n = state.jumps(table, builtin, target);
                    if n == 0 {
                        lines.push(format!("-I {builtin} 1 -j {target}"));
                    }
                    for _ in 1..n {
                        lines.push(format!("-D {builtin} -j {target}"));
                    }
                }
            }
            None => {
                for (_, builtin, target) in jumps {
                    for _ in 0..state.jumps(table, builtin, target) {
                        lines.push(format!("-D {builtin} -j {target}"));
                    }
                }
                for chain in chains_of(table) {
                    if state.rules(table, chain).is_some() {
                        lines.push(format!("-F {chain}"));
                        lines.push(format!("-X {chain}"));
                    }
                }
            }
        }
        if lines.is_empty() {
            continue;
        }
        let _ = writeln!(s, "*{table}");
        for l in lines {
            let _ = writeln!(s, "{l}");
        }
        s.push_str("COMMIT\n");
    }
    s
}

/// Does `state` already hold exactly what `spec` needs (one jump into
/// each chain, each chain with the right number of rules)? Returns how
/// many jumps are missing and whether anything else is off.
fn needs_repair(
    spec: &SteeringSpec,
    cfg: &SteeringConfig,
    family: Family,
    state: &KernelState,
) -> (usize, bool) {
    let mut missing = 0;
    let mut other = false;
    for (table, builtin, target) in JUMPS {
        match state.jumps(table, builtin, target) {
            0 => missing += 1,
            1 => {}
            _ => other = true,
        }
    }
    for table in TABLES {
        let rules = table_rules(spec, cfg, family, table);
        for chain in chains_of(table) {
            let want = rules
                .iter()
                .filter(|r| r.split_whitespace().nth(1) == Some(*chain))
                .count();
            if state.rules(table, chain) != Some(want) {
                other = true;
            }
        }
    }
    (missing, other)
}

fn tools(family: Family) -> (&'static str, &'static str) {
    match family {
        Family::V4 => ("iptables-save", "iptables-restore"),
        Family::V6 => ("ip6tables-save", "ip6tables-restore"),
    }
}

fn kernel_state(family: Family) -> Result<KernelState, DatapathError> {
    let (save, _) = tools(family);
    Ok(parse_save(&command_output(save, &[])?))
}

fn restore(family: Family, input: &str) -> Result<(), DatapathError> {
    use std::io::Write;
    if input.is_empty() {
        return Ok(());
    }
    let (_, program) = tools(family);
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

/// rvsd's steering rules in the kernel, for IPv4 and (best effort) IPv6.
#[derive(Debug)]
pub struct NetfilterSteering {
    cfg: SteeringConfig,
    installed: Option<SteeringSpec>,
    grace: Grace,
    /// Whether ip6tables worked the last time it was tried.
    v6_ok: bool,
}

impl NetfilterSteering {
    pub fn new(cfg: SteeringConfig) -> NetfilterSteering {
        NetfilterSteering {
            cfg,
            installed: None,
            grace: Grace::new(GRACE_PERIOD),
            v6_ok: true,
        }
    }

    /// Check that iptables works here at all (and fail early if not).
    pub fn probe() -> Result<(), DatapathError> {
        command_output("iptables", &["-w", "-t", "raw", "-S", "PREROUTING"]).map(|_| ())
    }

    fn families(&self) -> &'static [Family] {
        if self.v6_ok {
            &[Family::V4, Family::V6]
        } else {
            &[Family::V4]
        }
    }

    /// Install what `wanted` needs plus the rules held for services that
    /// just left the table ([`Grace`]), unless that is installed already.
    /// Returns whether rules were written. Once nothing is wanted or
    /// held, rvsd's jumps and chains are removed (nothing is installed
    /// while there is nothing to steer). Call it periodically: held rules
    /// expire here.
    pub fn apply(&mut self, wanted: &SteeringSpec) -> Result<bool, DatapathError> {
        let spec = self.grace.effective(wanted, Instant::now());
        if self.installed.as_ref() == Some(&spec) {
            return Ok(false);
        }
        if spec.is_empty() {
            let had = self.installed.is_some();
            self.remove_rules();
            return Ok(had);
        }
        for &family in self.families() {
            let r = kernel_state(family)
                .and_then(|st| restore(family, &transaction(Some(&spec), &self.cfg, family, &st)));
            if let Err(e) = r {
                if family == Family::V6 {
                    // Best effort: IPv4 only from now on.
                    self.v6_ok = false;
                }
                return Err(e);
            }
        }
        self.installed = Some(spec);
        Ok(true)
    }

    /// Put back jumps into rvsd's chains that an operator flushed (and
    /// the chains and their rules, if they were deleted or flushed), in
    /// one transaction per family. Returns how many jumps were
    /// re-installed (a chain that had to be refilled counts as one).
    pub fn ensure_jumps(&mut self) -> Result<usize, DatapathError> {
        let Some(spec) = self.installed.clone() else {
            return Ok(0);
        };
        let mut fixed = 0;
        for &family in self.families() {
            let state = kernel_state(family)?;
            let (missing, other) = needs_repair(&spec, &self.cfg, family, &state);
            if missing == 0 && !other {
                continue;
            }
            restore(family, &transaction(Some(&spec), &self.cfg, family, &state))?;
            fixed += missing.max(1);
        }
        Ok(fixed)
    }

    /// Remove rvsd's jumps and chains (at a clean stop), at once: no
    /// grace period.
    pub fn remove(&mut self) {
        self.grace.clear();
        self.remove_rules();
    }

    fn remove_rules(&mut self) {
        if self.installed.is_none() {
            return;
        }
        for family in [Family::V4, Family::V6] {
            let Ok(state) = kernel_state(family) else {
                continue;
            };
            let all = transaction(None, &self.cfg, family, &state);
            if restore(family, &all).is_err() {
                // A chain still referenced from elsewhere cannot be
                // deleted: at least unhook and empty ours.
                let keep_chains: String = all
                    .lines()
                    .filter(|l| !l.starts_with("-X "))
                    .map(|l| format!("{l}\n"))
                    .collect();
                let _ = restore(family, &keep_chains);
            }
        }
        self.installed = None;
    }
}

//! The XDP fast path's userspace half (`rvsd --xdp-fastpath`): which
//! established flows the program `rvs_steer_fast` forwards by itself, and
//! how their packets find their way back into the engine's counters and
//! timers.
//!
//! The engine decides, the fast path remembers:
//! * after the engine processed a frame, [`FastPath::after_frame`] asks it
//!   ([`Engine::flow_actions`]) whether the frame's connection is now
//!   cacheable (TCP in ESTABLISHED; UDP once a NAT reply went through the
//!   engine, at once for DR) and installs one `rvs_fast` entry per
//!   direction; a frame of an installed flow that still reached the
//!   engine (FIN, RST, SYN, or a frame the program could not forward)
//!   makes it ask again, and the entries go when the answer changed;
//! * a removed connection (a `FlowEvent::Removed`) takes its entries
//!   along ([`FastPath::forget_conn`]);
//! * every second or so rvsd calls [`FastPath::harvest`]: per-flow
//!   counters (`rvs_fast_stats`, per CPU) are read, the packets and bytes
//!   forwarded since the last harvest are credited to the real server
//!   ([`Engine::credit_dest`]), flows with fresh activity re-arm their
//!   connection's timer ([`Engine::touch_flow`]), and entries the engine
//!   no longer vouches for (state changed, server removed) are dropped.
//!
//! What forwarding in XDP needs from the host (else frames of cached
//! flows fall back to the engine, counted in `ProgramStats::fast_*`):
//! * forwarding enabled (`net.ipv4.ip_forward`, IPv6 `forwarding`) and
//!   the next hop in the neighbour table (the engine's own transmit
//!   resolves it for the next frame);
//! * from a native attachment, an egress interface that runs the program
//!   natively too (its driver's XDP transmit; most NIC drivers set up XDP
//!   transmit queues only with a program loaded, which rvsd does on every
//!   interface). A veth egress also needs NAPI on its peer: an XDP
//!   program or `ethtool -K <peer> gro on` there. Bridges, bonds and VLAN
//!   devices have no XDP transmit: towards them only generic mode
//!   forwards, and generic XDP on a bridge does not see frames its ports
//!   pass up, nor can it attach to the ports (EEXIST): in the seed's NAT
//!   topology (real servers behind `br0`) native mode forwards the real
//!   servers' replies in XDP and the client's packets through AF_XDP,
//!   generic mode the opposite, with replies on the NFQUEUE safety net;
//! * complete checksums: production NICs deliver them; local senders on
//!   veth must turn `tx` checksumming off (partial ones go to the engine).
//!
//! Map layout: `struct fast_action` in `bpf/rvs_xdp.c` (kind, family,
//! port, addr[16], hop[16]; [`action_bytes`]) keyed by the flow key of
//! [`super::keys`]; `struct fast_stats` (packets, bytes, last_seen_ns) per
//! CPU. `rvs_ifmode` says how the program is attached on each interface
//! (a native redirect only goes to natively attached interfaces).

use super::keys::{flow_key, FlowKeyBytes};
use super::program::AttachedMode;
use aya::maps::{HashMap, MapData, PerCpuHashMap, PerCpuValues};
use rvs_core::engine::{FlowAction, FlowActions, FlowRewrite};
use rvs_core::{DestId, Engine, FlowTuple, Protocol};
use std::collections::HashMap as StdHashMap;
use std::net::IpAddr;

/// `struct fast_action`: kind, family, port (network order), addr[16],
/// hop[16].
pub type FastActionBytes = [u8; 36];
/// `struct fast_stats`: packets, bytes, last_seen_ns (one CPU's).
pub type FastStatsWords = [u64; 3];

/// `FAST_NAT_DST`, `FAST_NAT_SRC`, `FAST_DIRECT` in the C source.
const KIND_NAT_DST: u8 = 1;
const KIND_NAT_SRC: u8 = 2;
const KIND_DIRECT: u8 = 3;
/// `IFMODE_NATIVE`, `IFMODE_GENERIC` in the C source.
const IFMODE_NATIVE: u32 = 1;
const IFMODE_GENERIC: u32 = 2;

fn family_tag(a: &IpAddr) -> u8 {
    if a.is_ipv4() {
        4
    } else {
        6
    }
}

fn addr16(a: &IpAddr) -> [u8; 16] {
    let mut out = [0u8; 16];
    match a {
        IpAddr::V4(v4) => out[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => out = v6.octets(),
    }
    out
}

/// The map value of a cached decision. `None` when the addresses mix
/// families (the program could not apply it).
pub fn action_bytes(a: &FlowAction) -> Option<FastActionBytes> {
    let family = family_tag(&a.tuple.saddr);
    let (kind, addr, port) = match a.rewrite {
        FlowRewrite::Destination { addr, port } => (KIND_NAT_DST, Some(addr), port),
        FlowRewrite::Source { addr, port } => (KIND_NAT_SRC, Some(addr), port),
        FlowRewrite::Direct { .. } => (KIND_DIRECT, None, 0),
    };
    if family_tag(&a.next_hop) != family || addr.is_some_and(|x| family_tag(&x) != family) {
        return None;
    }
    let mut v = [0u8; 36];
    v[0] = kind;
    v[1] = family;
    v[2..4].copy_from_slice(&port.to_be_bytes());
    if let Some(x) = addr {
        v[4..20].copy_from_slice(&addr16(&x));
    }
    v[20..36].copy_from_slice(&addr16(&a.next_hop));
    Some(v)
}

/// The flow tuple (and TCP flags, 0 for UDP) of a TCP or UDP frame as the
/// program keys it: one VLAN tag at most, no IPv6 extension headers, no
/// later fragments. `None` for anything else.
pub fn frame_tuple(frame: &[u8]) -> Option<(FlowTuple, u8)> {
    let mut l3 = 14;
    let mut ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    if ethertype == 0x8100 || ethertype == 0x88a8 {
        ethertype = u16::from_be_bytes([*frame.get(16)?, *frame.get(17)?]);
        l3 = 18;
    }
    let ip = frame.get(l3..)?;
    let (proto, saddr, daddr, l4) = match ethertype {
        0x0800 => {
            let ihl = usize::from(ip.first()? & 0x0f) * 4;
            let frag = u16::from_be_bytes([*ip.get(6)?, *ip.get(7)?]) & 0x1fff;
            if ihl < 20 || frag != 0 {
                return None;
            }
            let s: [u8; 4] = ip.get(12..16)?.try_into().ok()?;
            let d: [u8; 4] = ip.get(16..20)?.try_into().ok()?;
            (*ip.get(9)?, IpAddr::from(s), IpAddr::from(d), ihl)
        }
        0x86dd => {
            let s: [u8; 16] = ip.get(8..24)?.try_into().ok()?;
            let d: [u8; 16] = ip.get(24..40)?.try_into().ok()?;
            (*ip.get(6)?, IpAddr::from(s), IpAddr::from(d), 40)
        }
        _ => return None,
    };
    let protocol = match proto {
        6 => Protocol::Tcp,
        17 => Protocol::Udp,
        _ => return None,
    };
    let l4 = ip.get(l4..)?;
    let sport = u16::from_be_bytes([*l4.first()?, *l4.get(1)?]);
    let dport = u16::from_be_bytes([*l4.get(2)?, *l4.get(3)?]);
    let flags = if protocol == Protocol::Tcp {
        *l4.get(13)?
    } else {
        0
    };
    Some((
        FlowTuple {
            protocol,
            saddr,
            sport,
            daddr,
            dport,
        },
        flags,
    ))
}

/// Whether the decision for `actions`, reached while the engine processed
/// a frame of `seen`, should be cached now. UDP through NAT waits for the
/// first reply to pass the engine (it assures a persistence template and
/// proves the way back works); everything else is cached at once.
pub fn install_now(actions: &FlowActions, seen: &FlowTuple) -> bool {
    match (actions.client.tuple.protocol, actions.reply) {
        (Protocol::Udp, Some(reply)) => reply.tuple == *seen,
        _ => true,
    }
}

/// Packets and bytes a fast path forwarded for one real server in one
/// direction, to be credited to the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credit {
    pub dest: DestId,
    pub outbound: bool,
    pub packets: u64,
    pub bytes: u64,
}

/// What [`FastPath::harvest`] read, for the engine.
#[derive(Debug, Default)]
pub struct Harvest {
    /// Counters to credit.
    pub credits: Vec<Credit>,
    /// Flows forwarded since the last harvest (their timers need a touch).
    pub active: Vec<FlowTuple>,
    /// Client tuples of every cached connection, with the decision cached
    /// (to revalidate against the engine).
    pub cached: Vec<FlowActions>,
}

impl Harvest {
    /// Credit the counters, re-arm the timers of active flows as of
    /// `now`, and return the client tuples whose cached decision the
    /// engine no longer gives (to pass to [`FastPath::forget_conn`]).
    pub fn apply(&self, engine: &mut Engine, now: rvs_core::conn::EngineTime) -> Vec<FlowTuple> {
        for c in &self.credits {
            engine.credit_dest(c.dest, c.outbound, c.packets, c.bytes);
        }
        for t in &self.active {
            engine.touch_flow(t, now);
        }
        self.cached
            .iter()
            .filter(|a| engine.flow_actions(&a.client.tuple).as_ref() != Some(*a))
            .map(|a| a.client.tuple)
            .collect()
    }
}

/// Totals of the fast path's bookkeeping.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FastPathStats {
    /// Flow directions in `rvs_fast` now.
    pub entries: usize,
    /// Connections cached since start.
    pub installed: u64,
    /// Connections whose cache was dropped since start.
    pub removed: u64,
    /// Inserts the kernel refused (map full).
    pub insert_errors: u64,
    /// Packets credited to the engine since start.
    pub credited_packets: u64,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// The connection's decision (both directions).
    actions: FlowActions,
    /// This direction's own action.
    action: FlowAction,
    /// Counters summed over CPUs at the last harvest.
    packets: u64,
    bytes: u64,
    last_seen: u64,
}

/// The fast-path maps of a loaded program and what userspace put in them.
pub struct FastPath {
    actions: HashMap<MapData, FlowKeyBytes, FastActionBytes>,
    stats: PerCpuHashMap<MapData, FlowKeyBytes, FastStatsWords>,
    ifmode: HashMap<MapData, u32, u32>,
    entries: StdHashMap<FlowTuple, Entry>,
    /// Final counters of entries removed since the last harvest.
    pending: Vec<Credit>,
    totals: FastPathStats,
}

impl std::fmt::Debug for FastPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastPath")
            .field("entries", &self.entries.len())
            .field("totals", &self.totals)
            .finish()
    }
}

/// Zero counters on every possible CPU.
fn zero_stats() -> Option<PerCpuValues<FastStatsWords>> {
    let n = aya::util::nr_cpus().ok()?;
    PerCpuValues::try_from(vec![[0u64; 3]; n]).ok()
}

impl FastPath {
    /// Wrap the program's maps.
    pub fn new(
        actions: HashMap<MapData, FlowKeyBytes, FastActionBytes>,
        stats: PerCpuHashMap<MapData, FlowKeyBytes, FastStatsWords>,
        ifmode: HashMap<MapData, u32, u32>,
    ) -> FastPath {
        FastPath {
            actions,
            stats,
            ifmode,
            entries: StdHashMap::new(),
            pending: Vec::new(),
            totals: FastPathStats::default(),
        }
    }

    /// Record how the program runs on interface `ifindex` (`None`: not
    /// there any more).
    pub fn set_interface_mode(&mut self, ifindex: u32, mode: Option<AttachedMode>) {
        match mode {
            Some(m) => {
                let v = match m {
                    AttachedMode::Native => IFMODE_NATIVE,
                    AttachedMode::Generic => IFMODE_GENERIC,
                };
                let _ = self.ifmode.insert(ifindex, v, 0);
            }
            None => {
                let _ = self.ifmode.remove(&ifindex);
            }
        }
    }

    /// The bookkeeping totals.
    pub fn stats(&self) -> FastPathStats {
        FastPathStats {
            entries: self.entries.len(),
            ..self.totals
        }
    }

    /// Whether `tuple` (either direction) is cached.
    pub fn is_cached(&self, tuple: &FlowTuple) -> bool {
        self.entries.contains_key(tuple)
    }

    /// Cache both directions of a connection. On any refused insert
    /// nothing of the connection stays cached.
    pub fn install(&mut self, actions: &FlowActions) -> bool {
        let dirs = [Some(actions.client), actions.reply];
        for a in dirs.iter().flatten() {
            let (Some(key), Some(value), Some(zero)) =
                (flow_key(&a.tuple), action_bytes(a), zero_stats())
            else {
                self.forget_conn(&actions.client.tuple);
                return false;
            };
            // Counters first: the program counts only into an existing
            // slot, and an entry must never forward uncounted.
            if self.stats.insert(key, zero, 0).is_err()
                || self.actions.insert(key, value, 0).is_err()
            {
                self.totals.insert_errors += 1;
                let _ = self.stats.remove(&key);
                self.forget_conn(&actions.client.tuple);
                return false;
            }
            self.entries.insert(
                a.tuple,
                Entry {
                    actions: *actions,
                    action: *a,
                    packets: 0,
                    bytes: 0,
                    last_seen: 0,
                },
            );
        }
        self.totals.installed += 1;
        true
    }

    /// Counters of one direction summed over CPUs.
    fn read(&self, key: &FlowKeyBytes) -> Option<(u64, u64, u64)> {
        let values = self.stats.get(key, 0).ok()?;
        Some(
            values
                .iter()
                .fold((0, 0, 0), |(p, b, l), v| (p + v[0], b + v[1], l.max(v[2]))),
        )
    }

    fn remove_one(&mut self, tuple: &FlowTuple) {
        let Some(e) = self.entries.remove(tuple) else {
            return;
        };
        let Some(key) = flow_key(tuple) else {
            return;
        };
        // Stop forwarding first, then read what was forwarded.
        let _ = self.actions.remove(&key);
        if let Some((p, b, _)) = self.read(&key) {
            if p > e.packets {
                self.pending.push(Credit {
                    dest: e.action.dest,
                    outbound: e.action.outbound,
                    packets: p - e.packets,
                    bytes: b.saturating_sub(e.bytes),
                });
            }
        }
        let _ = self.stats.remove(&key);
    }

    /// Drop the cache of the connection `tuple` (either direction)
    /// belongs to; its last counters are credited at the next harvest.
    pub fn forget_conn(&mut self, tuple: &FlowTuple) {
        let Some(e) = self.entries.get(tuple).copied() else {
            return;
        };
        self.remove_one(&e.actions.client.tuple);
        if let Some(r) = e.actions.reply {
            self.remove_one(&r.tuple);
        }
        self.totals.removed += 1;
    }

    /// After the engine processed a frame of `tuple` (the tuple as it
    /// arrived): cache the connection if it became cacheable, drop its
    /// cache if the engine's decision changed.
    pub fn after_frame(&mut self, engine: &Engine, tuple: &FlowTuple) {
        let now = engine.flow_actions(tuple);
        match (self.entries.get(tuple).map(|e| e.actions), now) {
            (Some(cached), Some(now)) if cached == now => {}
            (Some(_), _) => self.forget_conn(tuple),
            (None, Some(now)) if install_now(&now, tuple) => {
                self.install(&now);
            }
            (None, _) => {}
        }
    }

    /// Read every entry's counters: what was forwarded since the last
    /// harvest (plus the final counters of removed entries) and which
    /// flows were active. Not for the hot path: one map read per flow
    /// direction.
    pub fn harvest(&mut self) -> Harvest {
        let mut h = Harvest {
            credits: std::mem::take(&mut self.pending),
            ..Harvest::default()
        };
        let tuples: Vec<FlowTuple> = self.entries.keys().copied().collect();
        for t in tuples {
            let Some(key) = flow_key(&t) else { continue };
            let Some((p, b, l)) = self.read(&key) else {
                continue;
            };
            let Some(e) = self.entries.get_mut(&t) else {
                continue;
            };
            if p > e.packets {
                h.credits.push(Credit {
                    dest: e.action.dest,
                    outbound: e.action.outbound,
                    packets: p - e.packets,
                    bytes: b.saturating_sub(e.bytes),
                });
            }
            if l > e.last_seen {
                h.active.push(t);
            }
            e.packets = p;
            e.bytes = b;
            e.last_seen = l;
            if e.actions.client.tuple == t {
                h.cached.push(e.actions);
            }
        }
        self.totals.credited_packets += h.credits.iter().map(|c| c.packets).sum::<u64>();
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        Ipv4Addr::new(a, b, c, d).into()
    }

    fn tuple(s: IpAddr, sp: u16, d: IpAddr, dp: u16) -> FlowTuple {
        FlowTuple {
            protocol: Protocol::Tcp,
            saddr: s,
            sport: sp,
            daddr: d,
            dport: dp,
        }
    }

    #[test]
    fn nat_in_action_layout() {
        let a = FlowAction {
            tuple: tuple(v4(198, 51, 100, 2), 40000, v4(198, 51, 100, 10), 80),
            rewrite: FlowRewrite::Destination {
                addr: v4(203, 0, 113, 12),
                port: 8080,
            },
            next_hop: v4(203, 0, 113, 12),
            dest: DestId(1),
            outbound: false,
        };
        let v = action_bytes(&a).unwrap_or([0xff; 36]);
        let mut want = [0u8; 36];
        want[..8].copy_from_slice(&[1, 4, 0x1f, 0x90, 203, 0, 113, 12]);
        want[20..24].copy_from_slice(&[203, 0, 113, 12]);
        assert_eq!(v, want);
    }

    #[test]
    fn nat_out_and_direct_layout() {
        let out = FlowAction {
            tuple: tuple(v4(203, 0, 113, 12), 80, v4(198, 51, 100, 2), 40000),
            rewrite: FlowRewrite::Source {
                addr: v4(198, 51, 100, 10),
                port: 80,
            },
            next_hop: v4(198, 51, 100, 2),
            dest: DestId(1),
            outbound: true,
        };
        let v = action_bytes(&out).unwrap_or([0xff; 36]);
        assert_eq!(&v[..8], &[2, 4, 0, 80, 198, 51, 100, 10]);
        assert_eq!(&v[20..24], &[198, 51, 100, 2]);
        let rip: IpAddr = "2001:db8::11"
            .parse()
            .unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
        let dr = FlowAction {
            tuple: FlowTuple {
                protocol: Protocol::Udp,
                saddr: "2001:db8::2".parse().unwrap_or(rip),
                sport: 5000,
                daddr: "2001:db8::10".parse().unwrap_or(rip),
                dport: 53,
            },
            rewrite: FlowRewrite::Direct { mac: None },
            next_hop: rip,
            dest: DestId(2),
            outbound: false,
        };
        let v = action_bytes(&dr).unwrap_or([0xff; 36]);
        assert_eq!(
            &v[..20],
            &[3, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(&v[20..24], &[0x20, 0x01, 0x0d, 0xb8]);
        assert_eq!(v[35], 0x11);
    }

    #[test]
    fn mixed_families_have_no_action() {
        let a = FlowAction {
            tuple: tuple(v4(198, 51, 100, 2), 1, v4(198, 51, 100, 10), 80),
            rewrite: FlowRewrite::Destination {
                addr: "2001:db8::1".parse().unwrap_or(v4(0, 0, 0, 0)),
                port: 80,
            },
            next_hop: v4(203, 0, 113, 12),
            dest: DestId(1),
            outbound: false,
        };
        assert_eq!(action_bytes(&a), None);
    }

    #[test]
    fn frame_tuple_of_tcp_ack_and_vlan_udp() {
        // Ethernet + IPv4 (ihl 5) + TCP ACK|PSH, 198.51.100.2:40000 ->
        // 198.51.100.10:80, written out by hand.
        let mut f = vec![0u8; 14 + 20 + 20];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[14 + 9] = 6;
        f[14 + 12..14 + 16].copy_from_slice(&[198, 51, 100, 2]);
        f[14 + 16..14 + 20].copy_from_slice(&[198, 51, 100, 10]);
        f[34..36].copy_from_slice(&40000u16.to_be_bytes());
        f[36..38].copy_from_slice(&80u16.to_be_bytes());
        f[34 + 13] = 0x18;
        let (t, flags) =
            frame_tuple(&f).unwrap_or((tuple(v4(0, 0, 0, 0), 0, v4(0, 0, 0, 0), 0), 0));
        assert_eq!(
            t,
            tuple(v4(198, 51, 100, 2), 40000, v4(198, 51, 100, 10), 80)
        );
        assert_eq!(flags, 0x18);
        // A later fragment has no ports.
        f[14 + 6] = 0x00;
        f[14 + 7] = 0x10;
        assert_eq!(frame_tuple(&f), None);
        // VLAN-tagged UDP.
        let mut g = vec![0u8; 18 + 20 + 8];
        g[12..14].copy_from_slice(&[0x81, 0x00]);
        g[16..18].copy_from_slice(&[0x08, 0x00]);
        g[18] = 0x45;
        g[18 + 9] = 17;
        g[18 + 12..18 + 16].copy_from_slice(&[203, 0, 113, 11]);
        g[18 + 16..18 + 20].copy_from_slice(&[198, 51, 100, 2]);
        g[38..40].copy_from_slice(&53u16.to_be_bytes());
        g[40..42].copy_from_slice(&5353u16.to_be_bytes());
        let (t, flags) =
            frame_tuple(&g).unwrap_or((tuple(v4(0, 0, 0, 0), 0, v4(0, 0, 0, 0), 0), 9));
        assert_eq!(t.protocol, Protocol::Udp);
        assert_eq!((t.sport, t.dport, flags), (53, 5353, 0));
        // Truncated and non-IP frames.
        assert_eq!(frame_tuple(&g[..40]), None);
        g[16..18].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(frame_tuple(&g), None);
    }

    #[test]
    fn udp_nat_waits_for_the_reply() {
        let client = tuple(v4(198, 51, 100, 2), 5000, v4(198, 51, 100, 10), 53);
        let reply = tuple(v4(203, 0, 113, 11), 53, v4(198, 51, 100, 2), 5000);
        let mk = |t: FlowTuple, out: bool| FlowAction {
            tuple: FlowTuple {
                protocol: Protocol::Udp,
                ..t
            },
            rewrite: FlowRewrite::Direct { mac: None },
            next_hop: t.daddr,
            dest: DestId(1),
            outbound: out,
        };
        let nat = FlowActions {
            client: mk(client, false),
            reply: Some(mk(reply, true)),
        };
        let udp = |t: FlowTuple| FlowTuple {
            protocol: Protocol::Udp,
            ..t
        };
        assert!(!install_now(&nat, &udp(client)));
        assert!(install_now(&nat, &udp(reply)));
        let dr = FlowActions {
            client: mk(client, false),
            reply: None,
        };
        assert!(install_now(&dr, &udp(client)));
        let mut tcp = nat;
        tcp.client.tuple.protocol = Protocol::Tcp;
        assert!(install_now(&tcp, &client));
    }
}

//! The engine: the one object a director runs. Configuration comes in as
//! [`Command`]s through [`Engine::apply`]; packets come in as frames with
//! the current time through [`Engine::process`] (in `process.rs`); time
//! passes through [`Engine::tick`]. The engine never reads a clock or
//! touches a socket.

use crate::command::{ApplyError, Command};
use crate::conn::{ConnTable, ConnTableConfig, EngineTime, Removed, StateTimeouts};
use crate::estimator::ESTIMATOR_INTERVAL_SECS;
use crate::knobs::Knobs;
use crate::model::DestId;
use crate::sched::XorShiftRng;
use crate::snapshot::{ConnSnapshot, TableSnapshot, Timeouts};
use crate::table::ServiceTable;
use rvs_wire::MacAddr;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

/// Connection hash table size shown in `ipvsadm -L` (the kernel default, 2^12).
pub const CONN_TAB_SIZE: u32 = 4096;

/// How often lblc/lblcr garbage collection runs, seconds (the kernel's 60 s).
pub const SCHED_GC_INTERVAL_SECS: u64 = 60;

/// Settings fixed when the engine is built.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub conn_table: ConnTableConfig,
    /// Seed of the scheduler random source (`twos`).
    pub rng_seed: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            conn_table: ConnTableConfig::default(),
            rng_seed: 1,
        }
    }
}

/// Counters of the engine's packet path, by outcome. Every field moves in a test.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineStats {
    /// Frames handed to the host untouched.
    pub passed: u64,
    /// Frames forwarded to a real server or back to a client.
    pub forwarded: u64,
    /// Frames for a local real server, delivered to the host.
    pub local: u64,
    /// Connections created.
    pub conns_created: u64,
    /// Drops, by reason.
    pub drop_malformed: u64,
    pub drop_no_dest: u64,
    pub drop_dest_unavailable: u64,
    pub drop_table_full: u64,
    pub drop_ttl: u64,
    pub drop_too_big: u64,
    pub drop_no_tunnel_source: u64,
    /// ICMP errors the engine generated.
    pub icmp_sent: u64,
}

/// A flow the datapath must (or need no longer) steer to the engine.
///
/// `client` is the tuple of client packets (protocol, CIP, cport, VIP,
/// vport); `reply` is the tuple of real-server packets for NAT connections
/// (protocol, RIP, rport, CIP, cport) and `None` for methods whose replies
/// bypass the director. Templates are not flows and produce no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FlowEvent {
    Added {
        client: FlowTuple,
        reply: Option<FlowTuple>,
    },
    Removed {
        client: FlowTuple,
        reply: Option<FlowTuple>,
    },
}

/// One direction of a flow as it appears on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FlowTuple {
    pub protocol: crate::model::Protocol,
    pub saddr: IpAddr,
    pub sport: u16,
    pub daddr: IpAddr,
    pub dport: u16,
}

impl FlowTuple {
    /// The flows of a connection entry: (client side, NAT reply side).
    pub fn of_conn(c: &crate::conn::Conn) -> Option<(FlowTuple, Option<FlowTuple>)> {
        let protocol = match c.protocol() {
            crate::conn::ConnProtocol::Tcp => crate::model::Protocol::Tcp,
            crate::conn::ConnProtocol::Udp => crate::model::Protocol::Udp,
            crate::conn::ConnProtocol::Sctp => crate::model::Protocol::Sctp,
            crate::conn::ConnProtocol::Ip => return None,
        };
        if c.is_template() {
            return None;
        }
        let client = FlowTuple {
            protocol,
            saddr: c.caddr(),
            sport: c.cport(),
            daddr: c.vaddr(),
            dport: c.vport(),
        };
        let reply = (c.fwd() == crate::model::FwdMethod::Masq).then_some(FlowTuple {
            protocol,
            saddr: c.daddr(),
            sport: c.dport(),
            daddr: c.caddr(),
            dport: c.cport(),
        });
        Some((client, reply))
    }
}

/// How a datapath fast path may forward one direction of an established
/// connection without asking the engine (see [`Engine::flow_actions`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowRewrite {
    /// NAT, client -> real server: the destination becomes `addr:port`.
    Destination { addr: IpAddr, port: u16 },
    /// NAT, real server -> client: the source becomes `addr:port`.
    Source { addr: IpAddr, port: u16 },
    /// DR: addresses stay; the frame goes to the real server's MAC
    /// (`mac`, when the engine knows it; the datapath may resolve it).
    Direct { mac: Option<MacAddr> },
}

/// One cached decision: frames of `tuple` get `rewrite`, their TTL (hop
/// limit) decremented, and are sent towards `next_hop` (the RIP for NAT
/// in and DR, the CIP for NAT out). Their packets count for real server
/// `dest` in the `outbound` (reply) or inbound direction
/// ([`Engine::credit_dest`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowAction {
    pub tuple: FlowTuple,
    pub rewrite: FlowRewrite,
    pub next_hop: IpAddr,
    pub dest: DestId,
    pub outbound: bool,
}

/// The cacheable directions of one connection: the client side, and the
/// reply side for NAT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowActions {
    pub client: FlowAction,
    pub reply: Option<FlowAction>,
}

/// Most flow events kept before the oldest are dropped (a datapath that
/// never drains must not make the engine grow without bound).
pub const MAX_PENDING_FLOW_EVENTS: usize = 1 << 20;

/// The LVS engine.
#[derive(Debug)]
pub struct Engine {
    pub(crate) flow_events: std::collections::VecDeque<FlowEvent>,
    /// Whether flow events are recorded (a datapath asked for them).
    pub(crate) record_flows: bool,
    pub(crate) table: ServiceTable,
    pub(crate) conns: ConnTable,
    pub(crate) state_timeouts: StateTimeouts,
    pub(crate) rng: XorShiftRng,
    pub(crate) stats: EngineStats,
    /// Known neighbours (from the datapath): next hop -> MAC.
    pub(crate) neighbours: HashMap<IpAddr, MacAddr>,
    /// Outer source address for IPIP tunnels (the DIP).
    pub(crate) tunnel_source: Option<Ipv4Addr>,
    /// Path MTU towards real servers and clients.
    pub(crate) mtu: u16,
    /// IPIP identification counter.
    pub(crate) ident: u16,
    /// Reused buffer for the inner packet of IPIP encapsulation.
    pub(crate) scratch: Vec<u8>,
    last_estimate: Option<EngineTime>,
    /// Time of the last `tick`, the "now" of listings between ticks.
    last_tick: Option<EngineTime>,
    last_sched_gc: Option<EngineTime>,
}

impl Default for Engine {
    fn default() -> Self {
        Engine::with_config(EngineConfig::default())
    }
}

impl Engine {
    pub fn new() -> Engine {
        Engine::default()
    }

    pub fn with_config(config: EngineConfig) -> Engine {
        Engine {
            flow_events: std::collections::VecDeque::new(),
            record_flows: false,
            table: ServiceTable::new(),
            conns: ConnTable::new(config.conn_table),
            state_timeouts: StateTimeouts::default(),
            rng: XorShiftRng::new(config.rng_seed),
            stats: EngineStats::default(),
            neighbours: HashMap::new(),
            tunnel_source: None,
            mtu: 1500,
            ident: 0,
            scratch: Vec::new(),
            last_estimate: None,
            last_tick: None,
            last_sched_gc: None,
        }
    }

    /// Apply one command.
    pub fn apply(&mut self, command: Command) -> Result<(), ApplyError> {
        self.apply_all(vec![command]).map_err(|(_, e)| e)
    }

    /// Apply a batch atomically: either every command is applied or none
    /// is, and the error names the first failing command's index.
    pub fn apply_all(&mut self, commands: Vec<Command>) -> Result<(), (usize, ApplyError)> {
        self.table.apply_all(commands)?;
        self.state_timeouts.apply_set(&self.table.timeouts);
        Ok(())
    }

    /// Declare the director's own addresses (real servers there are `Local`).
    pub fn set_local_addrs(&mut self, addrs: impl IntoIterator<Item = IpAddr>) {
        self.table.local_addrs = addrs.into_iter().collect();
    }

    /// The outer source address of IPIP packets (the director's DIP).
    pub fn set_tunnel_source(&mut self, addr: Ipv4Addr) {
        self.tunnel_source = Some(addr);
    }

    /// Path MTU used for the `pmtu_disc` check.
    pub fn set_mtu(&mut self, mtu: u16) {
        self.mtu = mtu;
    }

    /// A neighbour the datapath resolved (or `None` to forget it).
    pub fn set_neighbour(&mut self, addr: IpAddr, mac: Option<MacAddr>) {
        match mac {
            Some(m) => {
                self.neighbours.insert(addr, m);
            }
            None => {
                self.neighbours.remove(&addr);
            }
        }
    }

    pub fn knobs(&self) -> &Knobs {
        &self.table.knobs
    }

    pub fn timeouts(&self) -> Timeouts {
        self.table.timeouts
    }

    pub fn stats(&self) -> EngineStats {
        self.stats
    }

    /// Entries (connections + templates) in the connection table.
    pub fn conn_count(&self) -> usize {
        self.conns.len()
    }

    /// Services and real servers with counters.
    pub fn snapshot(&self) -> TableSnapshot {
        TableSnapshot {
            conn_table_size: CONN_TAB_SIZE,
            services: self.table.services.iter().map(|s| s.snapshot()).collect(),
        }
    }

    /// Connection entries and persistence templates as of `now`.
    pub fn connections_at(&self, now: EngineTime) -> Vec<ConnSnapshot> {
        self.conns.snapshot(now)
    }

    /// Connection entries as of the last `tick`.
    pub fn connections(&self) -> Vec<ConnSnapshot> {
        self.conns.snapshot(self.last_tick.unwrap_or_default())
    }

    /// When the engine next needs `tick` (earliest connection timer).
    pub fn poll_timeout(&mut self) -> Option<EngineTime> {
        self.conns.poll_timeout()
    }

    /// Let time pass: expire connections, run the rate estimator every
    /// 2 s and scheduler garbage collection every 60 s.
    pub fn tick(&mut self, now: EngineTime) {
        self.last_tick = Some(now);
        let expired = self.conns.handle_timeout(now);
        for r in expired {
            self.account_removed(&r);
        }
        self.table.purge_trash();
        let due = |last: Option<EngineTime>, every: u64| match last {
            None => true,
            Some(t) => now.millis_since(t) >= every * 1000,
        };
        if due(self.last_estimate, ESTIMATOR_INTERVAL_SECS) {
            if self.last_estimate.is_some() {
                for s in &mut self.table.services {
                    s.estimator.sample(&s.stats);
                    for d in &mut s.dests {
                        d.estimator.sample(&d.stats);
                    }
                }
            }
            // Keep the 2 s grid, as the kernel's timer does, so a late
            // tick does not stretch the next sample; resynchronise after
            // a long gap.
            let step = ESTIMATOR_INTERVAL_SECS * 1000;
            self.last_estimate = Some(match self.last_estimate {
                Some(t) if now.millis_since(t) < 2 * step => t.add_millis(step),
                _ => now,
            });
        }
        if due(self.last_sched_gc, SCHED_GC_INTERVAL_SECS) {
            if self.last_sched_gc.is_some() {
                let secs = now.as_millis() / 1000;
                for s in &mut self.table.services {
                    s.scheduler.tick(secs);
                }
            }
            self.last_sched_gc = Some(now);
        }
    }

    /// Start recording [`FlowEvent`]s (a datapath that steers flows calls this).
    pub fn record_flow_events(&mut self, on: bool) {
        self.record_flows = on;
        if !on {
            self.flow_events.clear();
        }
    }

    /// Take the flow events recorded since the last call.
    pub fn drain_flow_events(&mut self) -> Vec<FlowEvent> {
        self.flow_events.drain(..).collect()
    }

    pub(crate) fn push_flow_event(&mut self, e: FlowEvent) {
        if !self.record_flows {
            return;
        }
        if self.flow_events.len() >= MAX_PENDING_FLOW_EVENTS {
            self.flow_events.pop_front();
        }
        self.flow_events.push_back(e);
    }

    /// Virtual services as the datapath must match new connections:
    /// (fwmark, protocol, VIP, port); fwmark services have `None` for the
    /// address part.
    pub fn service_keys(&self) -> Vec<crate::model::ServiceKey> {
        self.table.services.iter().map(|s| s.config.key).collect()
    }

    /// Make every persistence template pointing at real server
    /// `addr:port` of `service` unusable (as `expire_quiescent_template`
    /// does for one server): new connections of those clients are
    /// scheduled afresh. The templates stay listed until their own timers
    /// expire. Returns how many were invalidated (0 for an unknown
    /// service or server).
    pub fn invalidate_templates_of(
        &mut self,
        service: &crate::model::ServiceKey,
        addr: IpAddr,
        port: u16,
    ) -> usize {
        let Some(id) = self
            .table
            .find(service)
            .and_then(|si| self.table.services.get(si))
            .and_then(|s| s.dest_index(addr, port).and_then(|di| s.dests.get(di)))
            .map(|d| d.id)
        else {
            return 0;
        };
        let ids: Vec<crate::conn::ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.is_template() && !c.is_invalidated() && c.dest() == Some(id))
            .map(|(cid, _)| cid)
            .collect();
        ids.into_iter()
            .filter(|cid| self.conns.invalidate_template(*cid))
            .count()
    }

    /// The connection a wire tuple belongs to: the client side (in
    /// table) first, then a NAT reply (out table). Templates never match.
    fn conn_of_tuple(&self, t: &FlowTuple) -> Option<crate::conn::ConnId> {
        let protocol = crate::conn::conn_protocol(t.protocol);
        let in_key = crate::conn::InKey {
            protocol,
            caddr: t.saddr,
            cport: t.sport,
            vaddr: t.daddr,
            vport: t.dport,
        };
        let out_key = crate::conn::OutKey {
            protocol,
            daddr: t.saddr,
            dport: t.sport,
            caddr: t.daddr,
            cport: t.dport,
        };
        let id = self
            .conns
            .lookup_in(&in_key)
            .or_else(|| self.conns.lookup_out(&out_key))?;
        let c = self.conns.get(id)?;
        (!c.is_template()).then_some(id)
    }

    /// What a fast path may cache for the connection that `tuple` (either
    /// direction) belongs to, or `None` while every packet must still come
    /// to the engine. Cacheable: a TCP connection in ESTABLISHED or a UDP
    /// connection, forwarded by NAT or DR to a real server that is still
    /// in its service. TCP frames with SYN, FIN or RST must still come to
    /// the engine (they change the state); the caller must drop the cache
    /// once this returns `None` (state left ESTABLISHED, connection gone,
    /// real server removed). Tunnel, Local, SCTP, one-packet and bypass
    /// entries are never cacheable.
    pub fn flow_actions(&self, tuple: &FlowTuple) -> Option<FlowActions> {
        use crate::conn::{ConnState, TcpState};
        let c = self.conns.get(self.conn_of_tuple(tuple)?)?;
        let dest = c.dest()?;
        if c.is_one_packet() || !self.table.is_live(dest) {
            return None;
        }
        match c.state() {
            ConnState::Tcp(TcpState::Established) | ConnState::Udp => {}
            _ => return None,
        }
        let (client, reply) = FlowTuple::of_conn(c)?;
        match c.fwd() {
            crate::model::FwdMethod::Masq => Some(FlowActions {
                client: FlowAction {
                    tuple: client,
                    rewrite: FlowRewrite::Destination {
                        addr: c.daddr(),
                        port: c.dport(),
                    },
                    next_hop: c.daddr(),
                    dest,
                    outbound: false,
                },
                reply: reply.map(|r| FlowAction {
                    tuple: r,
                    rewrite: FlowRewrite::Source {
                        addr: c.vaddr(),
                        port: c.vport(),
                    },
                    next_hop: c.caddr(),
                    dest,
                    outbound: true,
                }),
            }),
            crate::model::FwdMethod::Route => Some(FlowActions {
                client: FlowAction {
                    tuple: client,
                    rewrite: FlowRewrite::Direct {
                        mac: self.neighbours.get(&c.daddr()).copied(),
                    },
                    next_hop: c.daddr(),
                    dest,
                    outbound: false,
                },
                reply: None,
            }),
            _ => None,
        }
    }

    /// A fast path forwarded packets of `tuple`'s connection up to `now`:
    /// re-arm its timer as the packets would have (the current state's
    /// timeout from `now`). Returns whether the connection exists.
    pub fn touch_flow(&mut self, tuple: &FlowTuple, now: EngineTime) -> bool {
        match self.conn_of_tuple(tuple) {
            Some(id) => self.conns.touch(id, now),
            None => false,
        }
    }

    /// Count `packets` / `bytes` (IP lengths, as the engine counts) that a
    /// fast path forwarded for real server `dest`, inbound or `outbound`,
    /// in the server's and its service's counters. A server that is gone
    /// is ignored.
    pub fn credit_dest(&mut self, dest: DestId, outbound: bool, packets: u64, bytes: u64) {
        let Some(loc) = self.table.locate(dest) else {
            return;
        };
        let Some(svc) = self.table.services.get_mut(loc.service) else {
            return;
        };
        let bump = |c: &mut crate::model::Counters| {
            if outbound {
                c.outpkts += packets;
                c.outbytes += bytes;
            } else {
                c.inpkts += packets;
                c.inbytes += bytes;
            }
        };
        bump(&mut svc.stats);
        if let Some(d) = svc.dests.get_mut(loc.dest) {
            bump(&mut d.stats);
        }
    }

    /// A connection or template left the table: take it off its real
    /// server's counters and re-check the overload threshold.
    pub(crate) fn account_removed(&mut self, r: &Removed) {
        if let Some((client, reply)) = FlowTuple::of_conn(&r.conn) {
            self.push_flow_event(FlowEvent::Removed { client, reply });
            // A client reusing its port may already have a newer connection
            // on the same tuples (conn_reuse_mode): the removal above must
            // not take that one out of the datapath's steering maps.
            let newer: Vec<_> = [
                self.conns.lookup_in(&r.conn.in_key()),
                self.conns.lookup_out(&r.conn.out_key()),
            ]
            .into_iter()
            .flatten()
            .filter(|id| *id != r.id)
            .collect();
            let mut seen = Vec::new();
            for id in newer {
                if seen.contains(&id) {
                    continue;
                }
                seen.push(id);
                if let Some((client, reply)) = self.conns.get(id).and_then(FlowTuple::of_conn) {
                    self.push_flow_event(FlowEvent::Added { client, reply });
                }
            }
        }
        let Some(id) = r.conn.dest() else {
            return;
        };
        let template = r.conn.is_template();
        let inactive = r.conn.is_inactive();
        if let Some(d) = self.table.dest_mut(id) {
            if template {
                d.persist = d.persist.saturating_sub(1);
            } else if inactive {
                d.inactive = d.inactive.saturating_sub(1);
            } else {
                d.active = d.active.saturating_sub(1);
            }
            d.check_overload_on_unbind();
        }
    }

    pub(crate) fn dest_weight(&self, id: DestId) -> Option<i32> {
        self.table.dest(id).map(|d| d.config.weight)
    }
}

//! The packet path: `Engine::process(frame, meta, now) -> Verdict`.
//!
//! Mirrors the kernel's `ip_vs_in` / `ip_vs_out`: find the connection of a
//! packet (client side, or real-server side for NAT replies), or schedule a
//! new one when the packet may open a connection to a virtual service
//! (persistence templates first), run the protocol state machine, count,
//! then rewrite for the forwarding method (NAT, DR, TUN, Local). Anything
//! that is not LVS traffic is passed to the host untouched. ICMP errors
//! about connections are handled in `icmp.rs`, `cache_bypass` (fwmark
//! services with no real server forward to the original destination) in
//! `bypass.rs`; `nat_icmp_send` (port unreachable for NAT replies with no
//! connection) is applied here, as in `ip_vs_out`.

use crate::conn::reuse::{opens_sctp, opens_tcp, reuse_decision, ReuseAction, ReuseKnobs};
use crate::conn::{
    conn_protocol, fwmark_vaddr, ConnId, ConnProtocol, Direction, EngineTime, InKey, NewConn,
    OutKey, SctpEvent, StateChange, TcpFlags,
};
use crate::engine::{Engine, FlowEvent, FlowTuple};
use crate::model::{DestId, Family, FwdMethod, Protocol, ServiceKey};
use crate::packet::{self, PacketInfo, Parsed, Side};
use crate::sched::{SchedContext, SchedPacket};
use rvs_wire::{Icmpv4Type, Icmpv6Type, IpProtocol, MacAddr};
use std::net::IpAddr;

/// Facts about a frame that are not in its bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PacketMeta {
    /// Firewall mark (from `iptables -j MARK`), 0 if none.
    pub fwmark: u32,
    /// Interface index the frame arrived on.
    pub ingress: u32,
}

/// How a forwarded frame leaves the director.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Route the IP packet towards `next_hop` with the host's tables
    /// (NAT in and out, TUN, ICMP errors).
    Routed { next_hop: IpAddr },
    /// DR: send the unchanged frame to `next_hop` on the same segment.
    Direct { next_hop: IpAddr },
}

/// Where a transmitted frame goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    pub route: Route,
    /// The next hop's MAC when the engine knows it (it has been written to
    /// the frame's destination MAC); otherwise the datapath resolves it.
    pub dst_mac: Option<MacAddr>,
}

/// Why a frame was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    Malformed,
    /// No real server available (an ICMP error may have been produced).
    NoDestination,
    /// The connection's real server is gone or quiesced for good.
    DestUnavailable,
    TableFull,
    TtlExceeded,
    TooBig,
    NoTunnelSource,
}

/// What to do with a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not LVS traffic: give the frame to the host unchanged.
    Pass,
    /// A connection to a real server on the director itself: deliver the
    /// (unchanged) frame to the host.
    Local,
    /// The frame was rewritten in place; send it.
    Forward(Transmit),
    /// Drop the frame. If `reply` is set, the frame buffer now holds an
    /// ICMP error to route back to its source instead.
    Drop {
        reason: DropReason,
        reply: Option<Transmit>,
    },
}

/// ICMP "destination unreachable: port unreachable".
const ICMP_PORT_UNREACH: u8 = 3;
/// ICMP "destination unreachable: fragmentation needed".
const ICMP_FRAG_NEEDED: u8 = 4;
/// ICMPv6 "destination unreachable: port unreachable".
const ICMPV6_PORT_UNREACH: u8 = 4;
/// Size of the outer IPv4 header of an IPIP packet.
const IPIP_OVERHEAD: usize = 20;
/// The FTP data port: connections from it are never scheduled.
const FTPDATA: u16 = 20;
/// SCTP chunk type ABORT.
const SCTP_ABORT: u8 = 6;

enum IcmpKind {
    PortUnreachable,
    TimeExceeded,
    TooBig(u16),
}

impl Engine {
    /// Decide what to do with one Ethernet frame arriving at the director.
    /// The frame may be rewritten (and grow, for TUN) in place.
    pub fn process(&mut self, frame: &mut Vec<u8>, meta: PacketMeta, now: EngineTime) -> Verdict {
        let verdict = self.process_inner(frame, meta, now);
        match &verdict {
            Verdict::Pass => self.stats.passed += 1,
            Verdict::Local => self.stats.local += 1,
            Verdict::Forward(_) => self.stats.forwarded += 1,
            Verdict::Drop { reason, reply } => {
                if reply.is_some() {
                    self.stats.icmp_sent += 1;
                }
                let c = match reason {
                    DropReason::Malformed => &mut self.stats.drop_malformed,
                    DropReason::NoDestination => &mut self.stats.drop_no_dest,
                    DropReason::DestUnavailable => &mut self.stats.drop_dest_unavailable,
                    DropReason::TableFull => &mut self.stats.drop_table_full,
                    DropReason::TtlExceeded => &mut self.stats.drop_ttl,
                    DropReason::TooBig => &mut self.stats.drop_too_big,
                    DropReason::NoTunnelSource => &mut self.stats.drop_no_tunnel_source,
                };
                *c += 1;
            }
        }
        verdict
    }

    fn process_inner(&mut self, frame: &mut Vec<u8>, meta: PacketMeta, now: EngineTime) -> Verdict {
        let mut info = match packet::parse(frame) {
            Ok(Parsed::Ip(info)) => info,
            Ok(Parsed::NotIp) => return Verdict::Pass,
            Err(_) => return drop_verdict(DropReason::Malformed),
        };
        if matches!(info.protocol, IpProtocol::Icmp | IpProtocol::Icmpv6) {
            return self
                .process_icmp(frame, &mut info, meta, now)
                .unwrap_or(Verdict::Pass);
        }
        let Some(protocol) = transport(info.protocol) else {
            return Verdict::Pass;
        };
        if info.later_fragment {
            return Verdict::Pass;
        }
        let cproto = conn_protocol(protocol);
        let in_key = InKey {
            protocol: cproto,
            caddr: info.saddr,
            cport: info.sport,
            vaddr: info.daddr,
            vport: info.dport,
        };
        let mut conn = self.conns.lookup_in(&in_key);

        // A packet that opens a connection on a port whose old connection
        // is still listed (conn_reuse_mode, expire_nodest_conn). Only a
        // TCP SYN or an SCTP INIT counts here (`is_new_conn`), never UDP
        // and whatever `sloppy_*` says.
        if let Some(id) = conn {
            if is_new_conn(protocol, &info) {
                if let Some(c) = self.conns.get(id) {
                    let weight = c.dest().and_then(|d| self.dest_weight(d));
                    let knobs = ReuseKnobs {
                        conn_reuse_mode: u32::from(self.table.knobs.conn_reuse_mode),
                        expire_nodest_conn: self.table.knobs.expire_nodest_conn,
                    };
                    match reuse_decision(c, weight, &knobs, false) {
                        ReuseAction::Keep => {}
                        ReuseAction::Reschedule { expire_old } => {
                            if expire_old {
                                self.conns.expire_now(id, now);
                            }
                            conn = None;
                        }
                        ReuseAction::DropPacket => {
                            return drop_verdict(DropReason::DestUnavailable)
                        }
                    }
                }
            }
        }

        // The connection's real server went away.
        if let Some(id) = conn {
            let dest = self.conns.get(id).and_then(|c| c.dest());
            if let Some(d) = dest {
                if !self.table.is_live(d) {
                    if self.table.knobs.expire_nodest_conn {
                        self.conns.expire_now(id, now);
                        conn = None;
                    } else {
                        return drop_verdict(DropReason::DestUnavailable);
                    }
                }
            }
        }

        if let Some(id) = conn {
            return self.forward_in(frame, &mut info, protocol, id, now);
        }

        // A NAT reply from a real server.
        let out_key = OutKey {
            protocol: cproto,
            daddr: info.saddr,
            dport: info.sport,
            caddr: info.daddr,
            cport: info.dport,
        };
        if let Some(id) = self.conns.lookup_out(&out_key) {
            if self.conns.get(id).map(|c| c.fwd()) == Some(FwdMethod::Masq) {
                return self.forward_out(frame, &mut info, protocol, id, now);
            }
            // `handle_response` for DR/TUN/Local: count, run the OUTPUT
            // state table, and let the host forward it unchanged.
            let dest = self.conns.get(id).and_then(|c| c.dest());
            self.run_state(id, protocol, &info, Direction::Output, now);
            self.count_packet(dest, info.ip_len, true);
            return Verdict::Pass;
        }

        // `nat_icmp_send`: a reply from a NAT real server with no
        // connection is answered with port unreachable (not for RST/ABORT).
        if self.table.knobs.nat_icmp_send {
            if let Some(vip) = self.nat_real_service(protocol, info.saddr, info.sport) {
                let ends = match protocol {
                    Protocol::Tcp => TcpFlags(info.tcp_flags).rst(),
                    Protocol::Sctp => info.sctp_chunk == Some(SCTP_ABORT),
                    Protocol::Udp => false,
                };
                if !ends {
                    let src = self.director_source(info.family, vip.unwrap_or(info.daddr));
                    let reply = self.icmp_reply_from(frame, &info, IcmpKind::PortUnreachable, src);
                    return Verdict::Drop {
                        reason: DropReason::NoDestination,
                        reply,
                    };
                }
            }
        }

        // A new connection to a virtual service?
        let Some(si) = self.find_service(meta.fwmark, protocol, &info) else {
            return Verdict::Pass;
        };
        if !self.opens_connection(protocol, &info) {
            return Verdict::Pass;
        }
        match self.schedule(si, protocol, &info, meta, now) {
            Scheduled::Conn(id) => self.forward_in(frame, &mut info, protocol, id, now),
            Scheduled::OnePacket(dest) => self.forward_one_packet(frame, &mut info, si, dest),
            Scheduled::NoDest => {
                if let Some(v) = self.cache_bypass(frame, &mut info, si, protocol, meta, now) {
                    return v;
                }
                let reply = self.icmp_reply(frame, &info, IcmpKind::PortUnreachable);
                Verdict::Drop {
                    reason: DropReason::NoDestination,
                    reply,
                }
            }
            Scheduled::Failed(reason) => drop_verdict(reason),
            Scheduled::Ignored => Verdict::Pass,
        }
    }

    /// The director's own source for ICMP errors about forwarded packets:
    /// the DIP when known (IPv4), else `fallback` (a VIP or the packet's
    /// destination).
    pub(crate) fn director_source(&self, family: Family, fallback: IpAddr) -> IpAddr {
        match (family, self.tunnel_source) {
            (Family::V4, Some(dip)) => IpAddr::V4(dip),
            _ => fallback,
        }
    }

    fn opens_connection(&self, protocol: Protocol, info: &PacketInfo) -> bool {
        match protocol {
            Protocol::Tcp => {
                let f = TcpFlags(info.tcp_flags);
                if self.table.knobs.sloppy_tcp {
                    !f.rst()
                } else {
                    opens_tcp(f)
                }
            }
            Protocol::Udp => true,
            Protocol::Sctp => match info.sctp_chunk {
                // ABORT never opens.
                Some(6) => false,
                Some(c) => self.table.knobs.sloppy_sctp || opens_sctp(c),
                None => false,
            },
        }
    }

    /// The kernel's `ip_vs_service_find`: fwmark first, then
    /// (protocol, VIP, port), then the port-0 service of the VIP.
    pub(crate) fn find_service(
        &self,
        fwmark: u32,
        protocol: Protocol,
        info: &PacketInfo,
    ) -> Option<usize> {
        if fwmark != 0 {
            let key = ServiceKey::Fwmark {
                mark: fwmark,
                family: info.family,
            };
            if let Some(i) = self.table.find(&key) {
                return Some(i);
            }
        }
        let exact = ServiceKey::Addr {
            protocol,
            addr: info.daddr,
            port: info.dport,
        };
        self.table.find(&exact).or_else(|| {
            self.table.find(&ServiceKey::Addr {
                protocol,
                addr: info.daddr,
                port: 0,
            })
        })
    }

    /// Run the service's scheduler.
    fn pick(&mut self, si: usize, info: &PacketInfo, now: EngineTime) -> Option<DestId> {
        let lblc = self.table.knobs.lblc_expiration;
        let lblcr = self.table.knobs.lblcr_expiration;
        let mut rng = self.rng.clone();
        let svc = self.table.services.get_mut(si)?;
        let views = svc.sched_views();
        let mut ctx = SchedContext {
            packet: SchedPacket {
                saddr: info.saddr,
                sport: info.sport,
                daddr: info.daddr,
                dport: info.dport,
            },
            flags: svc.config.flags,
            now_secs: now.as_millis() / 1000,
            rng: &mut rng,
            lblc_expiration_secs: lblc,
            lblcr_expiration_secs: lblcr,
        };
        let picked = svc.scheduler.schedule(&views, &mut ctx);
        self.rng = rng;
        picked.and_then(|i| views.get(i)).map(|v| v.id)
    }

    /// The kernel's `ip_vs_schedule` / `ip_vs_sched_persist`.
    pub(crate) fn schedule(
        &mut self,
        si: usize,
        protocol: Protocol,
        info: &PacketInfo,
        meta: PacketMeta,
        now: EngineTime,
    ) -> Scheduled {
        let Some(svc) = self.table.services.get(si) else {
            return Scheduled::NoDest;
        };
        let config = svc.config.clone();
        let cproto = conn_protocol(protocol);
        let svc_port = config.key.port();
        // One-packet scheduling applies to UDP packets only, whatever the
        // service (`IP_VS_CONN_F_ONE_PACKET` needs IPPROTO_UDP).
        let ops = config.ops && protocol == Protocol::Udp;
        // Active FTP data connections are never scheduled.
        if info.sport == FTPDATA {
            return Scheduled::Ignored;
        }
        // A non-persistent service only schedules its own port (a port-0
        // service needs persistence): no destination, ICMP.
        if config.persistent.is_none() && !config.key.is_fwmark() && info.dport != svc_port {
            return Scheduled::NoDest;
        }

        let mut template: Option<ConnId> = None;
        let dest_id = if let Some(timeout) = config.persistent {
            // Template key: (proto, masked client, 0, VIP, vport) for a
            // normal service; vport 0 for port-0 services and FTP; proto IP
            // and VIP = fwmark for fwmark services.
            let snet = config.netmask.apply(info.saddr);
            let (tproto, tvaddr, tvport) = if info.dport == svc_port && !config.key.is_fwmark() {
                (
                    cproto,
                    info.daddr,
                    if svc_port == 21 { 0 } else { info.dport },
                )
            } else if let ServiceKey::Fwmark { mark, .. } = config.key {
                (ConnProtocol::Ip, fwmark_vaddr(mark), 0)
            } else {
                (cproto, info.daddr, 0)
            };
            let tkey = InKey {
                protocol: tproto,
                caddr: snet,
                cport: 0,
                vaddr: tvaddr,
                vport: tvport,
            };
            let existing = self
                .conns
                .lookup_template(&tkey)
                .filter(|&ct| self.check_template(ct));
            match existing {
                Some(ct) => {
                    // `ip_vs_conn_put(ct)`: every connection scheduled
                    // through a template restarts its timer with its
                    // timeout (the persistence timeout, or 60 s once it
                    // has been re-armed for the connections it controls).
                    self.conns.touch(ct, now);
                    template = Some(ct);
                    match self.conns.get(ct).and_then(|c| c.dest()) {
                        Some(d) => d,
                        None => return Scheduled::NoDest,
                    }
                }
                None => {
                    let Some(d) = self.pick(si, info, now) else {
                        return Scheduled::NoDest;
                    };
                    let Some(dest) = self.table.dest(d) else {
                        return Scheduled::NoDest;
                    };
                    let tdport =
                        if info.dport == svc_port && svc_port != 21 && !config.key.is_fwmark() {
                            dest.config.port
                        } else {
                            0
                        };
                    let new = NewConn::template(
                        tkey,
                        dest.config.addr,
                        tdport,
                        Some(d),
                        dest.config.fwd,
                        timeout,
                    )
                    .with_fwmark(meta.fwmark);
                    match self.conns.insert(new, now) {
                        Ok(ct) => {
                            template = Some(ct);
                            self.bind_dest(d, true);
                        }
                        Err(_) => return Scheduled::Failed(DropReason::TableFull),
                    }
                    d
                }
            }
        } else {
            match self.pick(si, info, now) {
                Some(d) => d,
                None => return Scheduled::NoDest,
            }
        };

        let Some(dest) = self.table.dest(dest_id) else {
            return Scheduled::NoDest;
        };
        let daddr = dest.config.addr;
        let fwd = dest.config.fwd;
        // The real port. Persistent: the server's when the packet came to
        // the service port and the server has one, else the packet's.
        // Otherwise: the server's, or the packet's when the server has none.
        let dport = if config.persistent.is_some() {
            if info.dport == svc_port && dest.config.port != 0 {
                dest.config.port
            } else {
                info.dport
            }
        } else if dest.config.port != 0 {
            dest.config.port
        } else {
            info.dport
        };
        if ops {
            // The kernel creates an unhashed entry that is bound to the
            // server (threshold check) and released right after the
            // packet is sent.
            self.bind_dest(dest_id, false);
            self.unbind_one_packet(dest_id);
            self.count_conn(si, dest_id);
            return Scheduled::OnePacket(OnePacket {
                dest: dest_id,
                daddr,
                dport,
                fwd,
            });
        }
        let key = InKey {
            protocol: cproto,
            caddr: info.saddr,
            cport: info.sport,
            vaddr: info.daddr,
            vport: info.dport,
        };
        let mut new =
            NewConn::connection(key, daddr, dport, Some(dest_id), fwd).with_fwmark(meta.fwmark);
        if let Some(ct) = template {
            new = new.with_control(ct);
        }
        match self.conns.insert(new, now) {
            Ok(id) => {
                self.bind_dest(dest_id, false);
                self.count_conn(si, dest_id);
                self.stats.conns_created += 1;
                if let Some((client, reply)) = self.conns.get(id).and_then(FlowTuple::of_conn) {
                    self.push_flow_event(FlowEvent::Added { client, reply });
                }
                Scheduled::Conn(id)
            }
            Err(_) => Scheduled::Failed(DropReason::TableFull),
        }
    }

    /// `ip_vs_check_template`: the template's server must still be in its
    /// service with a usable weight; otherwise the template is invalidated.
    fn check_template(&mut self, ct: ConnId) -> bool {
        let Some(d) = self.conns.get(ct).and_then(|c| c.dest()) else {
            return false;
        };
        let ok = match self.table.dest(d) {
            Some(dest) => {
                // AVAILABLE = still in its service; OVERLOAD does not matter here.
                self.table.is_live(d)
                    && !(self.table.knobs.expire_quiescent_template && dest.config.weight == 0)
            }
            None => false,
        };
        if !ok {
            self.conns.invalidate_template(ct);
        }
        ok
    }

    /// `ip_vs_bind_dest`: count the new entry and apply the upper threshold.
    fn bind_dest(&mut self, id: DestId, template: bool) {
        if let Some(d) = self.table.dest_mut(id) {
            if template {
                d.persist += 1;
            } else {
                d.inactive += 1;
            }
            d.check_overload_on_bind();
        }
    }

    /// Release a one-packet entry: what `ip_vs_unbind_dest` does when it
    /// expires right after its packet.
    fn unbind_one_packet(&mut self, id: DestId) {
        if let Some(d) = self.table.dest_mut(id) {
            d.inactive = d.inactive.saturating_sub(1);
            d.check_overload_on_unbind();
        }
    }

    /// `ip_vs_conn_stats`: one more connection for the server and service.
    fn count_conn(&mut self, si: usize, id: DestId) {
        if let Some(svc) = self.table.services.get_mut(si) {
            svc.stats.conns += 1;
            if let Some(d) = svc.dests.iter_mut().find(|d| d.id == id) {
                d.stats.conns += 1;
            }
        }
    }

    pub(crate) fn count_packet(&mut self, dest: Option<DestId>, bytes: usize, outbound: bool) {
        let Some(id) = dest else {
            return;
        };
        let Some(loc) = self.table.locate(id) else {
            return;
        };
        let Some(svc) = self.table.services.get_mut(loc.service) else {
            return;
        };
        let b = bytes as u64;
        let bump = |c: &mut crate::model::Counters| {
            if outbound {
                c.outpkts += 1;
                c.outbytes += b;
            } else {
                c.inpkts += 1;
                c.inbytes += b;
            }
        };
        bump(&mut svc.stats);
        if let Some(d) = svc.dests.get_mut(loc.dest) {
            bump(&mut d.stats);
        }
    }

    /// Move a server between ActiveConn and InActConn after a state change.
    fn account_change(&mut self, dest: Option<DestId>, change: StateChange) {
        let Some(id) = dest else {
            return;
        };
        if change.was_active == change.now_active {
            return;
        }
        if let Some(d) = self.table.dest_mut(id) {
            if change.now_active {
                d.inactive = d.inactive.saturating_sub(1);
                d.active += 1;
            } else {
                d.active = d.active.saturating_sub(1);
                d.inactive += 1;
            }
        }
    }

    pub(crate) fn run_state(
        &mut self,
        id: ConnId,
        protocol: Protocol,
        info: &PacketInfo,
        direction: Direction,
        now: EngineTime,
    ) {
        let change = match protocol {
            Protocol::Tcp => self.conns.process_tcp(
                id,
                direction,
                TcpFlags(info.tcp_flags),
                now,
                &self.state_timeouts,
            ),
            Protocol::Udp => self
                .conns
                .process_udp(id, direction, now, &self.state_timeouts),
            Protocol::Sctp => {
                let event = SctpEvent::from_chunk_type(info.sctp_chunk.unwrap_or(0));
                self.conns
                    .process_sctp(id, direction, event, now, &self.state_timeouts)
            }
        };
        let dest = self.conns.get(id).and_then(|c| c.dest());
        if let Some(change) = change {
            self.account_change(dest, change);
        }
    }

    /// Client -> real server on an existing (or just created) connection.
    fn forward_in(
        &mut self,
        frame: &mut Vec<u8>,
        info: &mut PacketInfo,
        protocol: Protocol,
        id: ConnId,
        now: EngineTime,
    ) -> Verdict {
        let Some(c) = self.conns.get(id) else {
            return drop_verdict(DropReason::DestUnavailable);
        };
        let (dest, daddr, dport, fwd) = (c.dest(), c.daddr(), c.dport(), c.fwd());
        let bypass = dest.is_none() && daddr.is_unspecified() && !c.is_template();
        self.run_state(id, protocol, info, Direction::Input, now);
        self.count_packet(dest, info.ip_len, false);
        if bypass {
            return self.bypass_transmit(frame, info);
        }
        self.transmit(frame, info, daddr, dport, fwd, false)
    }

    fn forward_one_packet(
        &mut self,
        frame: &mut Vec<u8>,
        info: &mut PacketInfo,
        _si: usize,
        one: OnePacket,
    ) -> Verdict {
        self.count_packet(Some(one.dest), info.ip_len, false);
        self.transmit(frame, info, one.daddr, one.dport, one.fwd, false)
    }

    /// The kernel's `decrement_ttl` then `ensure_mtu_is_adequate` (in that
    /// order, as `__ip_vs_get_out_rt` does them): TTL/hop limit 1 is
    /// answered with time exceeded, then the TTL is decremented; a packet
    /// above the path MTU (minus `overhead` for tunnels) is answered with
    /// fragmentation needed (IPv4 with DF) or packet too big (IPv6). With
    /// `pmtu_disc` off only tunnelled IPv4 skips the check. ICMP packets
    /// (`icmp`) never get an ICMP answer. `Some` is the drop verdict.
    pub(crate) fn ttl_and_mtu(
        &mut self,
        frame: &mut Vec<u8>,
        info: &mut PacketInfo,
        overhead: usize,
        tunnel: bool,
        icmp: bool,
    ) -> Option<Verdict> {
        if info.ttl <= 1 {
            let reply = if icmp {
                None
            } else {
                self.icmp_reply(frame, info, IcmpKind::TimeExceeded)
            };
            return Some(Verdict::Drop {
                reason: DropReason::TtlExceeded,
                reply,
            });
        }
        packet::decrement_ttl(frame, info);
        let mtu = usize::from(self.mtu).saturating_sub(overhead);
        let too_big = match info.family {
            Family::V4 => {
                (!tunnel || self.table.knobs.pmtu_disc)
                    && info.dont_frag
                    && info.ip_len > mtu
                    && !icmp
            }
            Family::V6 => info.ip_len > mtu,
        };
        if too_big {
            let reply = if icmp {
                None
            } else {
                let mtu = u16::try_from(mtu).unwrap_or(u16::MAX);
                self.icmp_reply(frame, info, IcmpKind::TooBig(mtu))
            };
            return Some(Verdict::Drop {
                reason: DropReason::TooBig,
                reply,
            });
        }
        None
    }

    /// Rewrite and route a client packet (or an ICMP error about a
    /// connection, `icmp`) for the forwarding method.
    pub(crate) fn transmit(
        &mut self,
        frame: &mut Vec<u8>,
        info: &mut PacketInfo,
        daddr: IpAddr,
        dport: u16,
        fwd: FwdMethod,
        icmp: bool,
    ) -> Verdict {
        if fwd == FwdMethod::Local {
            return Verdict::Local;
        }
        let tunnel = matches!(fwd, FwdMethod::Tunnel { .. });
        if tunnel && (!daddr.is_ipv4() || self.tunnel_source.is_none()) {
            return drop_verdict(DropReason::NoTunnelSource);
        }
        let overhead = if tunnel { IPIP_OVERHEAD } else { 0 };
        if let Some(v) = self.ttl_and_mtu(frame, info, overhead, tunnel, icmp) {
            return v;
        }
        match fwd {
            FwdMethod::Masq => {
                packet::set_addr(frame, info, Side::Dst, daddr);
                packet::set_port(frame, info, Side::Dst, dport);
                Verdict::Forward(self.route_to(frame, Route::Routed { next_hop: daddr }))
            }
            FwdMethod::Route => {
                Verdict::Forward(self.route_to(frame, Route::Direct { next_hop: daddr }))
            }
            FwdMethod::Tunnel { .. } => {
                let (IpAddr::V4(rip), Some(src)) = (daddr, self.tunnel_source) else {
                    return drop_verdict(DropReason::NoTunnelSource);
                };
                // The outer DF copies the inner one only with pmtu_disc
                // (and never for an IPv6 inner packet).
                let df = info.family == Family::V4 && info.dont_frag && self.table.knobs.pmtu_disc;
                // The inner packet goes through a scratch buffer the engine
                // keeps, so a TUN packet costs no allocation once warm.
                let mut inner = std::mem::take(&mut self.scratch);
                inner.clear();
                inner.extend_from_slice(packet::ip_packet(frame, info));
                let l3 = info.l3;
                frame.truncate(l3);
                frame.resize(l3 + IPIP_OVERHEAD + inner.len(), 0);
                // Linux gives a DF packet sent without a socket the id 0
                // (ip_select_ident; seen in the refvm TUN capture); only a
                // fragmentable outer header needs a changing id.
                let ident = if df {
                    0
                } else {
                    self.ident = self.ident.wrapping_add(1);
                    self.ident
                };
                let built = match frame.get_mut(l3..) {
                    Some(out) => rvs_wire::build::build_ipip_with_ident(
                        src, rip, info.ttl, df, ident, &inner, out,
                    ),
                    None => Err(rvs_wire::WireError::Truncated {
                        layer: rvs_wire::Layer::Output,
                        need: l3,
                        have: 0,
                    }),
                };
                self.scratch = inner;
                if built.is_err() {
                    return drop_verdict(DropReason::Malformed);
                }
                set_ethertype_ipv4(frame, l3);
                Verdict::Forward(self.route_to(frame, Route::Routed { next_hop: daddr }))
            }
            FwdMethod::Local => Verdict::Local,
        }
    }

    /// Real server -> client on a NAT connection: source back to VIP:vport.
    fn forward_out(
        &mut self,
        frame: &mut Vec<u8>,
        info: &mut PacketInfo,
        protocol: Protocol,
        id: ConnId,
        now: EngineTime,
    ) -> Verdict {
        let Some(c) = self.conns.get(id) else {
            return Verdict::Pass;
        };
        let (dest, vaddr, vport, caddr) = (c.dest(), c.vaddr(), c.vport(), c.caddr());
        if info.ttl <= 1 {
            // Forwarded by the director's IP layer: the error comes from
            // the director's own address.
            let src = self.director_source(info.family, vaddr);
            let reply = self.icmp_reply_from(frame, info, IcmpKind::TimeExceeded, src);
            return Verdict::Drop {
                reason: DropReason::TtlExceeded,
                reply,
            };
        }
        self.run_state(id, protocol, info, Direction::Output, now);
        self.count_packet(dest, info.ip_len, true);
        packet::decrement_ttl(frame, info);
        packet::set_addr(frame, info, Side::Src, vaddr);
        packet::set_port(frame, info, Side::Src, vport);
        Verdict::Forward(self.route_to(frame, Route::Routed { next_hop: caddr }))
    }

    pub(crate) fn route_to(&self, frame: &mut [u8], route: Route) -> Transmit {
        let hop = match route {
            Route::Routed { next_hop } | Route::Direct { next_hop } => next_hop,
        };
        let dst_mac = self.neighbours.get(&hop).copied();
        if let (Some(mac), Some(dst)) = (dst_mac, frame.get_mut(0..6)) {
            dst.copy_from_slice(&mac.0);
        }
        Transmit { route, dst_mac }
    }

    /// Replace the frame with an ICMP error about it, addressed to its
    /// source, from the address it was sent to. Returns how to send it.
    fn icmp_reply(
        &mut self,
        frame: &mut Vec<u8>,
        info: &PacketInfo,
        kind: IcmpKind,
    ) -> Option<Transmit> {
        self.icmp_reply_from(frame, info, kind, info.daddr)
    }

    /// [`Self::icmp_reply`] from a given source address. Nothing is sent
    /// (`None`, frame unchanged) where RFC 1122 / RFC 4443 forbid an error.
    fn icmp_reply_from(
        &mut self,
        frame: &mut Vec<u8>,
        info: &PacketInfo,
        kind: IcmpKind,
        from: IpAddr,
    ) -> Option<Transmit> {
        let original = packet::ip_packet(frame, info).to_vec();
        let allowed = match info.family {
            Family::V4 => crate::icmp::icmpv4_error_allowed(&original),
            Family::V6 => crate::icmp::icmpv6_error_allowed(info, &original),
        };
        if !allowed {
            return None;
        }
        let l3 = info.l3;
        let mut out = vec![0u8; 1280];
        let len = match (info.saddr, from) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                let (t, code, rest) = match kind {
                    IcmpKind::PortUnreachable => {
                        (Icmpv4Type::DestUnreachable, ICMP_PORT_UNREACH, 0)
                    }
                    IcmpKind::TimeExceeded => (Icmpv4Type::TimeExceeded, 0, 0),
                    IcmpKind::TooBig(mtu) => (
                        Icmpv4Type::DestUnreachable,
                        ICMP_FRAG_NEEDED,
                        u32::from(mtu),
                    ),
                };
                rvs_wire::build::build_icmpv4_error(t, code, rest, dst, src, &original, &mut out)
                    .ok()?
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                let (t, code, rest) = match kind {
                    IcmpKind::PortUnreachable => {
                        (Icmpv6Type::DestUnreachable, ICMPV6_PORT_UNREACH, 0)
                    }
                    IcmpKind::TimeExceeded => (Icmpv6Type::TimeExceeded, 0, 0),
                    IcmpKind::TooBig(mtu) => (Icmpv6Type::PacketTooBig, 0, u32::from(mtu)),
                };
                rvs_wire::build::build_icmpv6_error(t, code, rest, dst, src, &original, &mut out)
                    .ok()?
            }
            _ => return None,
        };
        // Swap the MAC addresses: the reply goes back where it came from.
        let (dmac, smac) = match (frame.get(0..6), frame.get(6..12)) {
            (Some(d), Some(s)) => (d.to_vec(), s.to_vec()),
            _ => return None,
        };
        frame.truncate(l3);
        if let Some(d) = frame.get_mut(0..6) {
            d.copy_from_slice(&smac);
        }
        if let Some(s) = frame.get_mut(6..12) {
            s.copy_from_slice(&dmac);
        }
        frame.extend_from_slice(out.get(..len)?);
        Some(Transmit {
            route: Route::Routed {
                next_hop: info.saddr,
            },
            dst_mac: <[u8; 6]>::try_from(smac.as_slice()).ok().map(MacAddr),
        })
    }
}

fn set_ethertype_ipv4(frame: &mut [u8], l3: usize) {
    if l3 >= 2 {
        if let Some(t) = frame.get_mut(l3 - 2..l3) {
            t.copy_from_slice(&0x0800u16.to_be_bytes());
        }
    }
}

pub(crate) fn drop_verdict(reason: DropReason) -> Verdict {
    Verdict::Drop {
        reason,
        reply: None,
    }
}

/// The kernel's `is_new_conn`: a TCP segment with SYN or an SCTP packet
/// whose first chunk is INIT; never UDP.
fn is_new_conn(protocol: Protocol, info: &PacketInfo) -> bool {
    match protocol {
        Protocol::Tcp => opens_tcp(TcpFlags(info.tcp_flags)),
        Protocol::Sctp => info.sctp_chunk.is_some_and(opens_sctp),
        Protocol::Udp => false,
    }
}

fn transport(p: IpProtocol) -> Option<Protocol> {
    match p {
        IpProtocol::Tcp => Some(Protocol::Tcp),
        IpProtocol::Udp => Some(Protocol::Udp),
        IpProtocol::Sctp => Some(Protocol::Sctp),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct OnePacket {
    pub dest: DestId,
    pub daddr: IpAddr,
    pub dport: u16,
    pub fwd: FwdMethod,
}

/// What scheduling a packet gave.
pub(crate) enum Scheduled {
    Conn(ConnId),
    OnePacket(OnePacket),
    /// No real server (`ignored == 0` in the kernel): ICMP, or bypass.
    NoDest,
    Failed(DropReason),
    /// Not to be scheduled (`ignored == 1`): pass it on.
    Ignored,
}

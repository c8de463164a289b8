//! ICMP errors about LVS connections, as the kernel's `ip_vs_in_icmp`,
//! `ip_vs_out_icmp` / `handle_response_icmp` and `ip_vs_icmp_xmit` treat
//! them.
//!
//! - From the client side, an error quoting a packet VIP:vport -> CIP:cport
//!   of a tracked connection goes to the connection's real server: NAT
//!   rewrites the outer destination to the RIP and the quoted source to
//!   RIP:rport (quoted IPv4 header checksum and ICMP checksum recomputed,
//!   the quoted transport checksum left alone, as the kernel does); DR,
//!   TUN and Local send the error on like a data packet of the connection.
//! - From the real-server side, an error quoting CIP:cport -> RIP:rport of
//!   a NAT connection gets the VIP as outer source and VIP:vport as quoted
//!   destination, and goes to the client.
//! - An error from a router between director and real server about one of
//!   our IPIP packets is turned into an error from the VIP to the client
//!   about the original request (fragmentation needed carries the MTU
//!   minus the 20-byte tunnel header).
//! - With `schedule_icmp`, an error quoting a packet from a virtual
//!   service that has no connection schedules one, like a new connection.
//!
//! ICMPv4 types handled are the kernel's: destination unreachable, source
//! quench and time exceeded (parameter problem is left to the host, as in
//! the kernel); every ICMPv6 error type (< 128) is handled. Anything else
//! returns `None`: the caller passes it to the host.

use crate::conn::{conn_protocol, ConnId, EngineTime, InKey, OutKey};
use crate::engine::Engine;
use crate::model::{DestId, Family, FwdMethod, Protocol};
use crate::packet::{self, PacketInfo, Side};
use crate::process::{drop_verdict, DropReason, PacketMeta, Route, Scheduled, Verdict};
use rvs_wire::checksum;
use rvs_wire::IpProtocol;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// ICMPv4 destination unreachable.
const ICMP_DEST_UNREACH: u8 = 3;
/// ICMPv4 source quench.
const ICMP_SOURCE_QUENCH: u8 = 4;
/// ICMPv4 time exceeded.
const ICMP_TIME_EXCEEDED: u8 = 11;
/// ICMPv4 destination unreachable code: fragmentation needed.
const ICMP_FRAG_NEEDED: u8 = 4;
/// IP protocol number of IP-in-IP.
const IPPROTO_IPIP: u8 = 4;
/// Size of the ICMP header before the quoted packet.
const ICMP_HEADER: usize = 8;
/// Smallest MTU the kernel lowers by the tunnel header (68 + 20).
const TUNNEL_MTU_FLOOR: u32 = 88;

/// The IP packet quoted in an ICMP error (offsets are into the frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Quoted {
    /// Offset of the quoted IP header.
    pub ip: usize,
    /// Offset of the quoted transport header.
    pub l4: usize,
    pub family: Family,
    pub protocol: u8,
    pub saddr: IpAddr,
    pub daddr: IpAddr,
    pub sport: u16,
    pub dport: u16,
    /// At least the four port bytes of the transport header are quoted.
    pub has_ports: bool,
    pub later_fragment: bool,
    pub dont_frag: bool,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at + 2)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

fn v4_at(b: &[u8], at: usize) -> Option<Ipv4Addr> {
    let s: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(Ipv4Addr::from(s))
}

fn v6_at(b: &[u8], at: usize) -> Option<Ipv6Addr> {
    let s: [u8; 16] = b.get(at..at + 16)?.try_into().ok()?;
    Some(Ipv6Addr::from(s))
}

/// Parse the (possibly truncated) IP packet quoted at `frame[at..end]`.
/// `None` when not even its IP header is there.
pub(crate) fn parse_quoted(frame: &[u8], at: usize, end: usize, family: Family) -> Option<Quoted> {
    let b = frame.get(..end)?;
    let first = *b.get(at)?;
    let (l4, protocol, saddr, daddr, later, df) = match family {
        Family::V4 => {
            if first >> 4 != 4 {
                return None;
            }
            let hl = usize::from(first & 0x0f) * 4;
            if hl < 20 || b.len() < at + hl {
                return None;
            }
            let frag = be16(b, at + 6)?;
            let protocol = *b.get(at + 9)?;
            let s = v4_at(b, at + 12)?;
            let d = v4_at(b, at + 16)?;
            (
                at + hl,
                protocol,
                IpAddr::V4(s),
                IpAddr::V4(d),
                frag & 0x1fff != 0,
                frag & 0x4000 != 0,
            )
        }
        Family::V6 => {
            if first >> 4 != 6 {
                return None;
            }
            let s = v6_at(b, at + 8)?;
            let d = v6_at(b, at + 24)?;
            let mut next = *b.get(at + 6)?;
            let mut off = at + 40;
            let mut later = false;
            // Hop-by-hop, routing, fragment and destination options.
            for _ in 0..8 {
                match next {
                    0 | 43 | 60 => {
                        let n = *b.get(off)?;
                        let len = (usize::from(*b.get(off + 1)?) + 1) * 8;
                        next = n;
                        off += len;
                    }
                    44 => {
                        let n = *b.get(off)?;
                        let fo = be16(b, off + 2)?;
                        later = fo >> 3 != 0;
                        next = n;
                        off += 8;
                    }
                    _ => break,
                }
            }
            (off, next, IpAddr::V6(s), IpAddr::V6(d), later, true)
        }
    };
    let ports = if later {
        None
    } else {
        be16(b, l4).zip(be16(b, l4 + 2))
    };
    Some(Quoted {
        ip: at,
        l4,
        family,
        protocol,
        saddr,
        daddr,
        sport: ports.map_or(0, |p| p.0),
        dport: ports.map_or(0, |p| p.1),
        has_ports: ports.is_some(),
        later_fragment: later,
        dont_frag: df,
    })
}

fn quoted_transport(p: u8) -> Option<Protocol> {
    match IpProtocol::from(p) {
        IpProtocol::Tcp => Some(Protocol::Tcp),
        IpProtocol::Udp => Some(Protocol::Udp),
        IpProtocol::Sctp => Some(Protocol::Sctp),
        _ => None,
    }
}

/// Is this ICMP type an error the kernel's IPVS looks at?
fn is_handled_error(family: Family, icmp_type: u8) -> bool {
    match family {
        Family::V4 => matches!(
            icmp_type,
            ICMP_DEST_UNREACH | ICMP_SOURCE_QUENCH | ICMP_TIME_EXCEEDED
        ),
        Family::V6 => icmp_type < 128,
    }
}

/// Does the ICMP message (`frame[l4..end]`) carry a correct checksum?
fn icmp_checksum_ok(frame: &[u8], info: &PacketInfo, end: usize) -> bool {
    let Some(seg) = frame.get(info.l4..end) else {
        return false;
    };
    match (info.saddr, info.daddr) {
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            checksum::verify_transport_v6(s, d, IpProtocol::Icmpv6, seg)
        }
        _ => checksum::checksum(seg) == 0,
    }
}

/// Recompute the ICMP (v4) or ICMPv6 (with the pseudo-header) checksum.
fn fill_icmp_checksum(frame: &mut [u8], info: &PacketInfo, end: usize) {
    let at = info.l4 + 2;
    if let Some(c) = frame.get_mut(at..at + 2) {
        c.copy_from_slice(&[0, 0]);
    }
    let Some(seg) = frame.get(info.l4..end) else {
        return;
    };
    let c = match (info.saddr, info.daddr) {
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            checksum::transport_checksum_v6(s, d, IpProtocol::Icmpv6, seg)
        }
        _ => checksum::checksum(seg),
    };
    if let Some(f) = frame.get_mut(at..at + 2) {
        f.copy_from_slice(&c.to_be_bytes());
    }
}

/// Rewrite the quoted packet's source or destination address and port.
/// The quoted IPv4 header checksum is recomputed (`ip_send_check`); the
/// quoted transport checksum is left as it was, as in the kernel.
fn rewrite_quoted(frame: &mut [u8], q: &Quoted, side: Side, addr: IpAddr, port: u16) {
    let (off, bytes): (usize, Vec<u8>) = match (q.family, side, addr) {
        (Family::V4, Side::Src, IpAddr::V4(a)) => (12, a.octets().to_vec()),
        (Family::V4, Side::Dst, IpAddr::V4(a)) => (16, a.octets().to_vec()),
        (Family::V6, Side::Src, IpAddr::V6(a)) => (8, a.octets().to_vec()),
        (Family::V6, Side::Dst, IpAddr::V6(a)) => (24, a.octets().to_vec()),
        _ => return,
    };
    let at = q.ip + off;
    if let Some(f) = frame.get_mut(at..at + bytes.len()) {
        f.copy_from_slice(&bytes);
    }
    if q.family == Family::V4 {
        let csum = q.ip + 10;
        if let Some(c) = frame.get_mut(csum..csum + 2) {
            c.copy_from_slice(&[0, 0]);
        }
        if let Some(h) = frame.get(q.ip..q.l4) {
            let c = checksum::checksum(h);
            if let Some(f) = frame.get_mut(csum..csum + 2) {
                f.copy_from_slice(&c.to_be_bytes());
            }
        }
    }
    if q.has_ports {
        let at = q.l4 + if side == Side::Src { 0 } else { 2 };
        if let Some(f) = frame.get_mut(at..at + 2) {
            f.copy_from_slice(&port.to_be_bytes());
        }
    }
}

/// RFC 1122 / RFC 1812 rules for sending an ICMPv4 error about a
/// (possibly truncated) IPv4 packet: not about ICMP errors, non-initial
/// fragments, or packets from/to broadcast, multicast and the like.
pub(crate) fn icmpv4_error_allowed(original: &[u8]) -> bool {
    let Some(&first) = original.first() else {
        return false;
    };
    let hl = usize::from(first & 0x0f) * 4;
    let (Some(frag), Some(&proto), Some(src), Some(dst)) = (
        be16(original, 6),
        original.get(9),
        v4_at(original, 12),
        v4_at(original, 16),
    ) else {
        return false;
    };
    if first >> 4 != 4 || hl < 20 || frag & 0x1fff != 0 {
        return false;
    }
    if proto == 1 {
        match original.get(hl) {
            Some(&t) if rvs_wire::Icmpv4Type::from(t).is_error() => return false,
            None => return false,
            _ => {}
        }
    }
    let bad_src = src.is_unspecified()
        || src.is_loopback()
        || src.is_broadcast()
        || src.is_multicast()
        || src.octets()[0] >= 240;
    !(bad_src || dst.is_broadcast() || dst.is_multicast())
}

/// RFC 4443 §2.4 (e): no ICMPv6 error about an ICMPv6 error, nor about a
/// packet from an unspecified or multicast source.
pub(crate) fn icmpv6_error_allowed(info: &PacketInfo, original: &[u8]) -> bool {
    let IpAddr::V6(src) = info.saddr else {
        return false;
    };
    if src.is_unspecified() || src.is_multicast() {
        return false;
    }
    if info.protocol == IpProtocol::Icmpv6 {
        let at = info.l4.saturating_sub(info.l3);
        return matches!(original.get(at), Some(&t) if t >= 128);
    }
    true
}

impl Engine {
    /// An ICMP/ICMPv6 frame: handle it if it is an error about LVS
    /// traffic. `None`: not ours, pass it to the host.
    pub(crate) fn process_icmp(
        &mut self,
        frame: &mut Vec<u8>,
        info: &mut PacketInfo,
        meta: PacketMeta,
        now: EngineTime,
    ) -> Option<Verdict> {
        let (icmp_type, code) = info.icmp?;
        // A fragmented ICMP error cannot be looked into without
        // reassembly (the kernel reassembles IPv4 first and drops IPv6
        // ones); the host gets it.
        if !is_handled_error(info.family, icmp_type) || info.fragment {
            return None;
        }
        let end = (info.l3 + info.ip_len).min(frame.len());
        let q = parse_quoted(frame, info.l4 + ICMP_HEADER, end, info.family)?;
        if info.family == Family::V4 && q.protocol == IPPROTO_IPIP {
            return self.icmp_about_tunnel(frame, info, &q, (icmp_type, code), end);
        }
        let protocol = quoted_transport(q.protocol)?;
        if q.later_fragment || !q.has_ports {
            return None;
        }
        let cproto = conn_protocol(protocol);
        // An error about a packet we sent to a client (VIP:vport -> CIP:cport).
        let in_key = InKey {
            protocol: cproto,
            caddr: q.daddr,
            cport: q.dport,
            vaddr: q.saddr,
            vport: q.sport,
        };
        if let Some(id) = self.conns.lookup_in(&in_key) {
            let target = self.conn_target(id)?;
            return Some(self.icmp_to_real_server(frame, info, &q, target, end));
        }
        // An error from the real-server side about CIP:cport -> RIP:rport.
        let out_key = OutKey {
            protocol: cproto,
            daddr: q.daddr,
            dport: q.dport,
            caddr: q.saddr,
            cport: q.sport,
        };
        if let Some(id) = self.conns.lookup_out(&out_key) {
            return Some(self.icmp_to_client(frame, info, &q, id, end));
        }
        if !self.table.knobs.schedule_icmp {
            return None;
        }
        self.schedule_for_icmp(frame, info, &q, protocol, meta, now, end)
    }

    fn conn_target(&self, id: ConnId) -> Option<IcmpTarget> {
        let c = self.conns.get(id)?;
        Some(IcmpTarget {
            dest: c.dest(),
            daddr: c.daddr(),
            dport: c.dport(),
            fwd: c.fwd(),
        })
    }

    /// `schedule_icmp`: schedule a connection for the client the quoted
    /// packet was sent to, then forward the error to its real server.
    #[allow(clippy::too_many_arguments)]
    fn schedule_for_icmp(
        &mut self,
        frame: &mut Vec<u8>,
        info: &mut PacketInfo,
        q: &Quoted,
        protocol: Protocol,
        meta: PacketMeta,
        now: EngineTime,
        end: usize,
    ) -> Option<Verdict> {
        // The quoted packet seen from the client: CIP:cport -> VIP:vport.
        let client = PacketInfo {
            saddr: q.daddr,
            sport: q.dport,
            daddr: q.saddr,
            dport: q.sport,
            protocol: IpProtocol::from(q.protocol),
            tcp_flags: 0,
            sctp_chunk: None,
            icmp: None,
            ..*info
        };
        let si = self.find_service(meta.fwmark, protocol, &client)?;
        match self.schedule(si, protocol, &client, meta, now) {
            Scheduled::Conn(id) => {
                let target = self.conn_target(id)?;
                Some(self.icmp_to_real_server(frame, info, q, target, end))
            }
            Scheduled::OnePacket(one) => {
                let target = IcmpTarget {
                    dest: Some(one.dest),
                    daddr: one.daddr,
                    dport: one.dport,
                    fwd: one.fwd,
                };
                Some(self.icmp_to_real_server(frame, info, q, target, end))
            }
            // `ip_vs_leave` sends no ICMP about ICMP.
            Scheduled::NoDest => Some(drop_verdict(DropReason::NoDestination)),
            Scheduled::Failed(reason) => Some(drop_verdict(reason)),
            Scheduled::Ignored => None,
        }
    }

    /// `ip_vs_in_icmp` + `ip_vs_icmp_xmit`: an error from the client side
    /// goes to the connection's real server.
    fn icmp_to_real_server(
        &mut self,
        frame: &mut Vec<u8>,
        info: &mut PacketInfo,
        q: &Quoted,
        target: IcmpTarget,
        end: usize,
    ) -> Verdict {
        // The kernel verifies the ICMPv4 checksum here (not the ICMPv6 one).
        if info.family == Family::V4 && !icmp_checksum_ok(frame, info, end) {
            return drop_verdict(DropReason::Malformed);
        }
        self.count_packet(target.dest, info.ip_len, false);
        if target.fwd != FwdMethod::Masq {
            return self.transmit(frame, info, target.daddr, target.dport, target.fwd, true);
        }
        if info.ttl <= 1 {
            // No ICMP error about an ICMP error.
            return drop_verdict(DropReason::TtlExceeded);
        }
        if info.family == Family::V6 && info.ip_len > usize::from(self.mtu) {
            return drop_verdict(DropReason::TooBig);
        }
        packet::decrement_ttl(frame, info);
        packet::set_addr(frame, info, Side::Dst, target.daddr);
        rewrite_quoted(frame, q, Side::Src, target.daddr, target.dport);
        fill_icmp_checksum(frame, info, end);
        Verdict::Forward(self.route_to(
            frame,
            Route::Routed {
                next_hop: target.daddr,
            },
        ))
    }

    /// `handle_response_icmp`: an error from the real-server side of a NAT
    /// connection goes to the client, from the VIP.
    fn icmp_to_client(
        &mut self,
        frame: &mut [u8],
        info: &mut PacketInfo,
        q: &Quoted,
        id: ConnId,
        end: usize,
    ) -> Verdict {
        let Some(c) = self.conns.get(id) else {
            return Verdict::Pass;
        };
        let (dest, vaddr, vport, fwd) = (c.dest(), c.vaddr(), c.vport(), c.fwd());
        if fwd != FwdMethod::Masq {
            // Counted, then left to normal forwarding.
            self.count_packet(dest, info.ip_len, true);
            return Verdict::Pass;
        }
        if !icmp_checksum_ok(frame, info, end) {
            return drop_verdict(DropReason::Malformed);
        }
        if info.ttl <= 1 {
            return drop_verdict(DropReason::TtlExceeded);
        }
        packet::decrement_ttl(frame, info);
        packet::set_addr(frame, info, Side::Src, vaddr);
        rewrite_quoted(frame, q, Side::Dst, vaddr, vport);
        fill_icmp_checksum(frame, info, end);
        self.count_packet(dest, info.ip_len, true);
        let client = info.daddr;
        Verdict::Forward(self.route_to(frame, Route::Routed { next_hop: client }))
    }

    /// Is `addr` the address of an IPIP real server?
    fn is_ipip_dest(&self, addr: IpAddr) -> bool {
        self.table.services.iter().any(|s| {
            s.dests.iter().any(|d| {
                d.config.addr == addr
                    && matches!(
                        d.config.fwd,
                        FwdMethod::Tunnel {
                            kind: crate::model::TunnelKind::Ipip,
                            ..
                        }
                    )
            })
        })
    }

    /// An error about one of our IPIP packets, sent to the director by a
    /// router on the way to the real server: tell the client, from the
    /// VIP, about its original request.
    fn icmp_about_tunnel(
        &mut self,
        frame: &mut Vec<u8>,
        info: &PacketInfo,
        outer: &Quoted,
        (icmp_type, code): (u8, u8),
        end: usize,
    ) -> Option<Verdict> {
        let to_us = self.tunnel_source.map(IpAddr::V4) == Some(info.daddr)
            || self.table.local_addrs.contains(&info.daddr);
        if !to_us || outer.later_fragment || !self.is_ipip_dest(outer.daddr) {
            return None;
        }
        let inner = parse_quoted(frame, outer.l4, end, Family::V4)?;
        let protocol = quoted_transport(inner.protocol)?;
        if inner.later_fragment || !inner.has_ports {
            return None;
        }
        let key = InKey {
            protocol: conn_protocol(protocol),
            caddr: inner.saddr,
            cport: inner.sport,
            vaddr: inner.daddr,
            vport: inner.dport,
        };
        let id = self.conns.lookup_in(&key)?;
        let dest = self.conns.get(id).and_then(|c| c.dest());
        if !icmp_checksum_ok(frame, info, end) {
            return Some(drop_verdict(DropReason::Malformed));
        }
        let rest_at = info.l4 + 4;
        let mut rest = frame
            .get(rest_at..rest_at + 4)
            .and_then(|s| <[u8; 4]>::try_from(s).ok())
            .map_or(0, u32::from_be_bytes);
        if icmp_type == ICMP_DEST_UNREACH && code == ICMP_FRAG_NEEDED {
            // The client does not do PMTU discovery: nothing to tell it.
            if !inner.dont_frag {
                return Some(drop_verdict(DropReason::TooBig));
            }
            let reported = rest & 0xffff;
            let link = u32::from(self.mtu);
            let mut mtu = if reported == 0 {
                link
            } else {
                reported.min(link)
            };
            if mtu > TUNNEL_MTU_FLOOR {
                mtu -= 20;
            }
            rest = mtu;
        }
        let original = frame.get(inner.ip..end)?.to_vec();
        if !icmpv4_error_allowed(&original) {
            return Some(drop_verdict(DropReason::Malformed));
        }
        let (IpAddr::V4(vip), IpAddr::V4(cip)) = (inner.daddr, inner.saddr) else {
            return None;
        };
        let mut out = vec![0u8; rvs_wire::build::icmpv4_error_len(&original)];
        let len = rvs_wire::build::build_icmpv4_error(
            rvs_wire::Icmpv4Type::from(icmp_type),
            code,
            rest,
            vip,
            cip,
            &original,
            &mut out,
        )
        .ok()?;
        frame.truncate(info.l3);
        frame.extend_from_slice(out.get(..len)?);
        self.count_packet(dest, original.len(), true);
        Some(Verdict::Forward(self.route_to(
            frame,
            Route::Routed {
                next_hop: inner.saddr,
            },
        )))
    }

    /// `nat_icmp_send`: is `(protocol, addr, port)` a NAT real server of
    /// some service? Returns the address to answer from (a VIP of that
    /// service, or `None` for a fwmark service).
    pub(crate) fn nat_real_service(
        &self,
        protocol: Protocol,
        addr: IpAddr,
        port: u16,
    ) -> Option<Option<IpAddr>> {
        self.table.services.iter().find_map(|s| {
            let proto_ok = s.config.key.is_fwmark()
                || matches!(s.config.key, crate::model::ServiceKey::Addr { protocol: p, .. } if p == protocol);
            let hit = proto_ok
                && s.dests.iter().any(|d| {
                    d.config.fwd == FwdMethod::Masq && d.config.addr == addr && d.config.port == port
                });
            hit.then_some(match s.config.key {
                crate::model::ServiceKey::Addr { addr, .. } => Some(addr),
                _ => None,
            })
        })
    }
}

/// Where an error forwarded towards a real server goes.
#[derive(Debug, Clone, Copy)]
struct IcmpTarget {
    dest: Option<DestId>,
    daddr: IpAddr,
    dport: u16,
    fwd: FwdMethod,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_truncated_quote_without_ports() {
        // IPv4 header only (protocol TCP), no transport bytes.
        let mut h = vec![0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0];
        h.extend_from_slice(&[198, 51, 100, 10, 198, 51, 100, 2]);
        let q = parse_quoted(&h, 0, h.len(), Family::V4).expect("header");
        assert!(!q.has_ports);
        assert!(q.dont_frag);
        assert_eq!(q.protocol, 6);
        assert!(parse_quoted(&h[..19], 0, 19, Family::V4).is_none());
        assert!(parse_quoted(&h, 0, h.len(), Family::V6).is_none());
    }

    #[test]
    fn error_rules_refuse_errors_about_errors_and_broadcasts() {
        let mut h = vec![0x45, 0, 0, 28, 0, 0, 0, 0, 64, 1, 0, 0];
        h.extend_from_slice(&[192, 0, 2, 1, 192, 0, 2, 2]);
        h.extend_from_slice(&[3, 3, 0, 0, 0, 0, 0, 0]);
        assert!(!icmpv4_error_allowed(&h), "error about an error");
        h[20] = 8;
        assert!(icmpv4_error_allowed(&h), "echo request may get one");
        h[19] = 255;
        h[16..20].copy_from_slice(&[255, 255, 255, 255]);
        assert!(!icmpv4_error_allowed(&h), "to broadcast");
    }
}

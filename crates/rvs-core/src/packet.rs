//! Frame classification and in-place rewriting for the engine.
//!
//! [`parse`] turns an Ethernet frame into a [`PacketInfo`]: where the IP
//! and transport headers are, the addresses, ports, TCP flags or first SCTP
//! chunk. The rewrite helpers change addresses, ports and TTL in place and
//! keep every checksum right with RFC 1624 incremental updates (CRC32c is
//! recomputed for SCTP). Views and checksum arithmetic come from rvs-wire;
//! nothing here panics on packet-derived data.

use crate::model::Family;
use rvs_wire::checksum::{update_bytes, update_u16};
use rvs_wire::{
    EtherType, EthernetFrame, IpProtocol, Ipv4Packet, Ipv6Packet, SctpPacket, WireError,
};
use std::net::IpAddr;

/// What the engine knows about a frame after parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketInfo {
    /// Offset of the IP header in the frame.
    pub l3: usize,
    /// Offset of the transport header in the frame.
    pub l4: usize,
    /// Length of the IP packet (header + payload, without Ethernet padding).
    pub ip_len: usize,
    pub family: Family,
    pub protocol: IpProtocol,
    pub saddr: IpAddr,
    pub daddr: IpAddr,
    /// 0 for protocols without ports.
    pub sport: u16,
    pub dport: u16,
    /// TCP flags byte (FIN 0x01, SYN 0x02, RST 0x04, ACK 0x10).
    pub tcp_flags: u8,
    /// Type of the first SCTP chunk, if any.
    pub sctp_chunk: Option<u8>,
    /// ICMP type and code.
    pub icmp: Option<(u8, u8)>,
    pub ttl: u8,
    pub dont_frag: bool,
    /// A fragment other than the first: no transport header here.
    pub later_fragment: bool,
    /// Any fragment (first or later).
    pub fragment: bool,
}

/// How a frame was classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// IP with a header we understood.
    Ip(PacketInfo),
    /// Not IP (ARP, LLDP, ...): belongs to the host.
    NotIp,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at + 2)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

/// Classify a frame. Errors are malformed frames, to be counted and dropped.
pub fn parse(frame: &[u8]) -> Result<Parsed, WireError> {
    let eth = EthernetFrame::new_checked(frame)?;
    let l3 = eth.header_len();
    let ip = frame.get(l3..).unwrap_or(&[]);
    match eth.payload_ethertype() {
        EtherType::Ipv4 => parse_v4(ip, l3).map(Parsed::Ip),
        EtherType::Ipv6 => parse_v6(ip, l3).map(Parsed::Ip),
        _ => Ok(Parsed::NotIp),
    }
}

fn parse_v4(ip: &[u8], l3: usize) -> Result<PacketInfo, WireError> {
    let p = Ipv4Packet::new_checked(ip)?;
    let hl = p.header_len();
    let ip_len = usize::from(p.total_len());
    let mut info = PacketInfo {
        l3,
        l4: l3 + hl,
        ip_len,
        family: Family::V4,
        protocol: p.protocol(),
        saddr: IpAddr::V4(p.src_addr()),
        daddr: IpAddr::V4(p.dst_addr()),
        sport: 0,
        dport: 0,
        tcp_flags: 0,
        sctp_chunk: None,
        icmp: None,
        ttl: p.ttl(),
        dont_frag: p.dont_frag(),
        later_fragment: p.frag_offset() != 0,
        fragment: p.is_fragment(),
    };
    if !info.later_fragment {
        parse_l4(p.payload(), &mut info)?;
    }
    Ok(info)
}

fn parse_v6(ip: &[u8], l3: usize) -> Result<PacketInfo, WireError> {
    let p = Ipv6Packet::new_checked(ip)?;
    let upper = p.walk_extensions()?;
    let ip_len = p.packet().len();
    let (later, frag) = match upper.fragment {
        Some(f) => (f.offset != 0, true),
        None => (false, false),
    };
    let mut info = PacketInfo {
        l3,
        l4: l3 + upper.offset,
        ip_len,
        family: Family::V6,
        protocol: upper.protocol,
        saddr: IpAddr::V6(p.src_addr()),
        daddr: IpAddr::V6(p.dst_addr()),
        sport: 0,
        dport: 0,
        tcp_flags: 0,
        sctp_chunk: None,
        icmp: None,
        ttl: p.hop_limit(),
        dont_frag: true,
        later_fragment: later,
        fragment: frag,
    };
    if !later {
        let l4 = p.packet().get(upper.offset..).unwrap_or(&[]);
        parse_l4(l4, &mut info)?;
    }
    Ok(info)
}

fn truncated(layer: rvs_wire::Layer, need: usize, have: usize) -> WireError {
    WireError::Truncated { layer, need, have }
}

fn parse_l4(l4: &[u8], info: &mut PacketInfo) -> Result<(), WireError> {
    use rvs_wire::Layer;
    match info.protocol {
        IpProtocol::Tcp => {
            let t = rvs_wire::tcp::TcpPacket::new_checked(l4)?;
            info.sport = t.src_port();
            info.dport = t.dst_port();
            info.tcp_flags = (t.flags().bits() & 0xff) as u8;
        }
        IpProtocol::Udp => {
            let u = rvs_wire::udp::UdpPacket::new_checked(l4)?;
            info.sport = u.src_port();
            info.dport = u.dst_port();
        }
        IpProtocol::Sctp => {
            let s = SctpPacket::new_checked(l4)?;
            info.sport = s.src_port();
            info.dport = s.dst_port();
            info.sctp_chunk = l4.get(12).copied();
        }
        IpProtocol::Icmp | IpProtocol::Icmpv6 => {
            if l4.len() < 8 {
                return Err(truncated(Layer::Icmpv4, 8, l4.len()));
            }
            info.icmp = Some((l4[0], l4[1]));
        }
        _ => {}
    }
    Ok(())
}

/// Which address of the IP header to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Src,
    Dst,
}

/// Offset of the transport checksum that covers the pseudo-header, and
/// whether a zero value means "no checksum" (UDP over IPv4).
fn l4_checksum_field(info: &PacketInfo) -> Option<(usize, bool)> {
    if info.later_fragment {
        return None;
    }
    match info.protocol {
        IpProtocol::Tcp => Some((info.l4 + 16, false)),
        IpProtocol::Udp => Some((info.l4 + 6, info.family == Family::V4)),
        IpProtocol::Icmpv6 => Some((info.l4 + 2, false)),
        _ => None,
    }
}

fn update_field(frame: &mut [u8], at: usize, zero_means_none: bool, old: &[u8], new: &[u8]) {
    let Some(c) = be16(frame, at) else {
        return;
    };
    if zero_means_none && c == 0 {
        return;
    }
    let mut n = update_bytes(c, old, new);
    if zero_means_none && n == 0 {
        n = 0xffff;
    }
    if let Some(s) = frame.get_mut(at..at + 2) {
        s.copy_from_slice(&n.to_be_bytes());
    }
}

/// Change the source or destination address, fixing the IPv4 header
/// checksum and the transport checksum.
pub fn set_addr(frame: &mut [u8], info: &mut PacketInfo, side: Side, new: IpAddr) {
    let off = match (info.family, side, new) {
        (Family::V4, Side::Src, IpAddr::V4(_)) => 12,
        (Family::V4, Side::Dst, IpAddr::V4(_)) => 16,
        (Family::V6, Side::Src, IpAddr::V6(_)) => 8,
        (Family::V6, Side::Dst, IpAddr::V6(_)) => 24,
        _ => return,
    };
    let old = match side {
        Side::Src => info.saddr,
        Side::Dst => info.daddr,
    };
    // Addresses as bytes on the stack: this runs for every NAT packet.
    let (old_buf, len) = octets(old);
    let (new_buf, _) = octets(new);
    let (old_bytes, new_bytes) = (&old_buf[..len], &new_buf[..len]);
    let at = info.l3 + off;
    let Some(field) = frame.get_mut(at..at + new_bytes.len()) else {
        return;
    };
    field.copy_from_slice(new_bytes);
    if info.family == Family::V4 {
        update_field(frame, info.l3 + 10, false, old_bytes, new_bytes);
    }
    if let Some((csum, zero_none)) = l4_checksum_field(info) {
        update_field(frame, csum, zero_none, old_bytes, new_bytes);
    }
    match side {
        Side::Src => info.saddr = new,
        Side::Dst => info.daddr = new,
    }
}

/// An address's bytes in a fixed buffer, and how many are used.
fn octets(a: IpAddr) -> ([u8; 16], usize) {
    let mut buf = [0u8; 16];
    match a {
        IpAddr::V4(v) => {
            buf[..4].copy_from_slice(&v.octets());
            (buf, 4)
        }
        IpAddr::V6(v) => (v.octets(), 16),
    }
}

/// Change the source or destination port (TCP, UDP, SCTP).
pub fn set_port(frame: &mut [u8], info: &mut PacketInfo, side: Side, new: u16) {
    if info.later_fragment {
        return;
    }
    let old = match side {
        Side::Src => info.sport,
        Side::Dst => info.dport,
    };
    if old == new {
        return;
    }
    let at = info.l4 + if side == Side::Src { 0 } else { 2 };
    match info.protocol {
        IpProtocol::Tcp | IpProtocol::Udp => {
            let Some(field) = frame.get_mut(at..at + 2) else {
                return;
            };
            field.copy_from_slice(&new.to_be_bytes());
            if let Some((csum, zero_none)) = l4_checksum_field(info) {
                let Some(c) = be16(frame, csum) else {
                    return;
                };
                if !(zero_none && c == 0) {
                    let mut n = update_u16(c, old, new);
                    if zero_none && n == 0 {
                        n = 0xffff;
                    }
                    if let Some(s) = frame.get_mut(csum..csum + 2) {
                        s.copy_from_slice(&n.to_be_bytes());
                    }
                }
            }
        }
        IpProtocol::Sctp => {
            let Some(field) = frame.get_mut(at..at + 2) else {
                return;
            };
            field.copy_from_slice(&new.to_be_bytes());
            let end = (info.l3 + info.ip_len).min(frame.len());
            if let Some(seg) = frame.get_mut(info.l4..end) {
                if let Ok(mut s) = SctpPacket::new_checked(seg) {
                    s.fill_checksum();
                }
            }
        }
        _ => return,
    }
    match side {
        Side::Src => info.sport = new,
        Side::Dst => info.dport = new,
    }
}

/// Decrement TTL / hop limit. Returns false (and changes nothing) when the
/// packet must not be forwarded (TTL <= 1).
pub fn decrement_ttl(frame: &mut [u8], info: &mut PacketInfo) -> bool {
    if info.ttl <= 1 {
        return false;
    }
    let new = info.ttl - 1;
    match info.family {
        Family::V4 => {
            let at = info.l3 + 8;
            let Some(b) = frame.get_mut(at) else {
                return false;
            };
            *b = new;
            // TTL shares a 16-bit word with the protocol number.
            let proto = frame.get(at + 1).copied().unwrap_or(0);
            let old_word = u16::from_be_bytes([info.ttl, proto]);
            let new_word = u16::from_be_bytes([new, proto]);
            if let Some(c) = be16(frame, info.l3 + 10) {
                let n = update_u16(c, old_word, new_word);
                if let Some(s) = frame.get_mut(info.l3 + 10..info.l3 + 12) {
                    s.copy_from_slice(&n.to_be_bytes());
                }
            }
        }
        Family::V6 => {
            let Some(b) = frame.get_mut(info.l3 + 7) else {
                return false;
            };
            *b = new;
        }
    }
    info.ttl = new;
    true
}

/// The IP packet of a frame (without Ethernet padding).
pub fn ip_packet<'a>(frame: &'a [u8], info: &PacketInfo) -> &'a [u8] {
    let end = (info.l3 + info.ip_len).min(frame.len());
    frame.get(info.l3..end).unwrap_or(&[])
}

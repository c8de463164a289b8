//! A builder for well-formed test frames (Ethernet + IPv4/IPv6 + TCP, UDP,
//! SCTP or ICMP echo, all checksums correct), for this crate's tests and for
//! other crates' tests and the demo.
//!
//! This allocates (it returns `Vec<u8>`) and is meant for tests, not the
//! datapath. Payloads larger than an IP packet can carry produce saturated
//! length fields rather than an error.
//!
//! ```
//! use rvs_wire::testframe::FrameBuilder;
//! use rvs_wire::tcp::TcpFlags;
//! let frame = FrameBuilder::tcp("192.0.2.1:40000".parse().unwrap(), "192.0.2.10:80".parse().unwrap())
//!     .flags(TcpFlags::SYN)
//!     .seq(1000)
//!     .build();
//! assert_eq!(frame.len(), 14 + 20 + 20);
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::ethernet::{EtherType, MacAddr};
use crate::icmp::{Icmpv4Packet, Icmpv4Type, Icmpv6Packet, Icmpv6Type};
use crate::ipv4::{self, Ipv4Packet};
use crate::ipv6::{self, Ipv6Packet};
use crate::sctp::{SctpChunkType, SctpPacket};
use crate::tcp::{TcpFlags, TcpPacket};
use crate::udp::UdpPacket;
use crate::IpProtocol;

/// Default source MAC: 02:00:00:00:00:01 (locally administered).
pub const DEFAULT_SRC_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
/// Default destination MAC: 02:00:00:00:00:02.
pub const DEFAULT_DST_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x02]);

/// The transport layer of a test frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestL4 {
    /// TCP with the given flags and numbers.
    Tcp {
        /// Control bits.
        flags: TcpFlags,
        /// Sequence number.
        seq: u32,
        /// Acknowledgment number.
        ack: u32,
        /// Window.
        window: u16,
    },
    /// UDP; `checksum: false` sends 0 (IPv4 only; IPv6 always has one).
    Udp {
        /// Fill the checksum.
        checksum: bool,
    },
    /// SCTP; the payload is the chunk bytes (see [`sctp_chunk`]).
    Sctp {
        /// Verification tag.
        vtag: u32,
    },
    /// ICMP / ICMPv6 echo request; ports are ignored.
    IcmpEcho {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq: u16,
    },
}

/// Builder for one test frame. Set fields with the chained methods, then
/// call [`FrameBuilder::build`] (Ethernet frame) or
/// [`FrameBuilder::build_ip`] (IP packet only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameBuilder {
    src_mac: MacAddr,
    dst_mac: MacAddr,
    vlan: Option<u16>,
    src: SocketAddr,
    dst: SocketAddr,
    l4: TestL4,
    payload: Vec<u8>,
    ttl: u8,
    df: bool,
    ident: u16,
    dscp_ecn: u8,
}

impl FrameBuilder {
    /// A frame from `src` to `dst` with the given transport. If the two
    /// addresses are of different families, both are sent as IPv6 (IPv4
    /// ones as `::ffff:a.b.c.d`).
    pub fn new(src: SocketAddr, dst: SocketAddr, l4: TestL4) -> Self {
        let (src, dst) = match (src, dst) {
            (SocketAddr::V4(_), SocketAddr::V4(_)) | (SocketAddr::V6(_), SocketAddr::V6(_)) => {
                (src, dst)
            }
            _ => (to_v6(src), to_v6(dst)),
        };
        FrameBuilder {
            src_mac: DEFAULT_SRC_MAC,
            dst_mac: DEFAULT_DST_MAC,
            vlan: None,
            src,
            dst,
            l4,
            payload: Vec::new(),
            ttl: 64,
            df: true,
            ident: 0,
            dscp_ecn: 0,
        }
    }

    /// A TCP SYN (seq 1, window 65535) from `src` to `dst`.
    pub fn tcp(src: SocketAddr, dst: SocketAddr) -> Self {
        Self::new(
            src,
            dst,
            TestL4::Tcp {
                flags: TcpFlags::SYN,
                seq: 1,
                ack: 0,
                window: 65535,
            },
        )
    }

    /// A UDP datagram with a checksum.
    pub fn udp(src: SocketAddr, dst: SocketAddr) -> Self {
        Self::new(src, dst, TestL4::Udp { checksum: true })
    }

    /// An SCTP packet with verification tag 0 and no chunks.
    pub fn sctp(src: SocketAddr, dst: SocketAddr) -> Self {
        Self::new(src, dst, TestL4::Sctp { vtag: 0 })
    }

    /// An ICMP (IPv4) or ICMPv6 echo request.
    pub fn icmp_echo(src: IpAddr, dst: IpAddr, ident: u16, seq: u16) -> Self {
        Self::new(
            SocketAddr::new(src, 0),
            SocketAddr::new(dst, 0),
            TestL4::IcmpEcho { ident, seq },
        )
    }

    /// Source MAC.
    pub fn src_mac(mut self, mac: MacAddr) -> Self {
        self.src_mac = mac;
        self
    }

    /// Destination MAC.
    pub fn dst_mac(mut self, mac: MacAddr) -> Self {
        self.dst_mac = mac;
        self
    }

    /// Add one 802.1Q tag with this VLAN id.
    pub fn vlan(mut self, vid: u16) -> Self {
        self.vlan = Some(vid & 0x0fff);
        self
    }

    /// TCP flags (no effect for other transports).
    pub fn flags(mut self, f: TcpFlags) -> Self {
        if let TestL4::Tcp { flags, .. } = &mut self.l4 {
            *flags = f;
        }
        self
    }

    /// TCP sequence number.
    pub fn seq(mut self, v: u32) -> Self {
        if let TestL4::Tcp { seq, .. } = &mut self.l4 {
            *seq = v;
        }
        self
    }

    /// TCP acknowledgment number (set the ACK flag separately).
    pub fn ack(mut self, v: u32) -> Self {
        if let TestL4::Tcp { ack, .. } = &mut self.l4 {
            *ack = v;
        }
        self
    }

    /// TCP window.
    pub fn window(mut self, v: u16) -> Self {
        if let TestL4::Tcp { window, .. } = &mut self.l4 {
            *window = v;
        }
        self
    }

    /// SCTP verification tag.
    pub fn vtag(mut self, v: u32) -> Self {
        if let TestL4::Sctp { vtag } = &mut self.l4 {
            *vtag = v;
        }
        self
    }

    /// UDP over IPv4: send checksum 0 ("none") when `false`.
    pub fn udp_checksum(mut self, on: bool) -> Self {
        if let TestL4::Udp { checksum } = &mut self.l4 {
            *checksum = on;
        }
        self
    }

    /// Transport payload (for SCTP: the chunks).
    pub fn payload(mut self, data: impl AsRef<[u8]>) -> Self {
        self.payload = data.as_ref().to_vec();
        self
    }

    /// IPv4 TTL / IPv6 hop limit (default 64).
    pub fn ttl(mut self, ttl: u8) -> Self {
        self.ttl = ttl;
        self
    }

    /// IPv4 Don't Fragment (default true; ignored for IPv6).
    pub fn df(mut self, df: bool) -> Self {
        self.df = df;
        self
    }

    /// IPv4 identification (default 0).
    pub fn ident(mut self, ident: u16) -> Self {
        self.ident = ident;
        self
    }

    /// IPv4 DSCP/ECN byte or IPv6 traffic class (default 0).
    pub fn dscp_ecn(mut self, v: u8) -> Self {
        self.dscp_ecn = v;
        self
    }

    fn protocol(&self) -> IpProtocol {
        match (self.l4, self.src) {
            (TestL4::Tcp { .. }, _) => IpProtocol::Tcp,
            (TestL4::Udp { .. }, _) => IpProtocol::Udp,
            (TestL4::Sctp { .. }, _) => IpProtocol::Sctp,
            (TestL4::IcmpEcho { .. }, SocketAddr::V4(_)) => IpProtocol::Icmp,
            (TestL4::IcmpEcho { .. }, SocketAddr::V6(_)) => IpProtocol::Icmpv6,
        }
    }

    /// The transport segment without checksums.
    fn segment(&self) -> Vec<u8> {
        let header_len = match self.l4 {
            TestL4::Tcp { .. } => 20,
            TestL4::Udp { .. } | TestL4::IcmpEcho { .. } => 8,
            TestL4::Sctp { .. } => 12,
        };
        let mut seg = vec![0u8; header_len];
        seg.extend_from_slice(&self.payload);
        let (sp, dp) = (self.src.port(), self.dst.port());
        match self.l4 {
            TestL4::Tcp {
                flags,
                seq,
                ack,
                window,
            } => {
                let mut t = TcpPacket::new_unchecked(&mut seg[..]);
                t.set_src_port(sp);
                t.set_dst_port(dp);
                t.set_seq_number(seq);
                t.set_ack_number(ack);
                t.set_header_len_and_flags(20, flags);
                t.set_window(window);
            }
            TestL4::Udp { .. } => {
                let len = u16::try_from(seg.len()).unwrap_or(u16::MAX);
                let mut u = UdpPacket::new_unchecked(&mut seg[..]);
                u.set_src_port(sp);
                u.set_dst_port(dp);
                u.set_len(len);
            }
            TestL4::Sctp { vtag } => {
                let mut s = SctpPacket::new_unchecked(&mut seg[..]);
                s.set_src_port(sp);
                s.set_dst_port(dp);
                s.set_verification_tag(vtag);
                s.fill_checksum();
            }
            TestL4::IcmpEcho { ident, seq } => {
                let v6 = self.src.is_ipv6();
                if v6 {
                    let mut m = Icmpv6Packet::new_unchecked(&mut seg[..]);
                    m.set_msg_type(Icmpv6Type::EchoRequest);
                    m.set_rest_of_header((u32::from(ident) << 16) | u32::from(seq));
                } else {
                    let mut m = Icmpv4Packet::new_unchecked(&mut seg[..]);
                    m.set_msg_type(Icmpv4Type::EchoRequest);
                    m.set_echo_ident(ident);
                    m.set_echo_seq(seq);
                    m.fill_checksum();
                }
            }
        }
        seg
    }

    fn fill_v4(&self, seg: &mut [u8], s: Ipv4Addr, d: Ipv4Addr) {
        match self.l4 {
            TestL4::Tcp { .. } => TcpPacket::new_unchecked(seg).fill_checksum_v4(s, d),
            TestL4::Udp { checksum: true } => UdpPacket::new_unchecked(seg).fill_checksum_v4(s, d),
            _ => {}
        }
    }

    fn fill_v6(&self, seg: &mut [u8], s: Ipv6Addr, d: Ipv6Addr) {
        match self.l4 {
            TestL4::Tcp { .. } => TcpPacket::new_unchecked(seg).fill_checksum_v6(s, d),
            TestL4::Udp { .. } => UdpPacket::new_unchecked(seg).fill_checksum_v6(s, d),
            TestL4::IcmpEcho { .. } => Icmpv6Packet::new_unchecked(seg).fill_checksum(s, d),
            TestL4::Sctp { .. } => {}
        }
    }

    /// The IP packet (no Ethernet header).
    pub fn build_ip(&self) -> Vec<u8> {
        let mut seg = self.segment();
        match (self.src.ip(), self.dst.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                self.fill_v4(&mut seg, s, d);
                let mut out = vec![0u8; ipv4::HEADER_LEN];
                let total = u16::try_from(ipv4::HEADER_LEN + seg.len()).unwrap_or(u16::MAX);
                let mut p = Ipv4Packet::new_unchecked(&mut out[..]);
                p.set_version_and_header_len(ipv4::HEADER_LEN);
                p.set_dscp_ecn(self.dscp_ecn);
                p.set_total_len(total);
                p.set_ident(self.ident);
                p.set_frag(self.df, false, 0);
                p.set_ttl(self.ttl);
                p.set_protocol(self.protocol());
                p.set_src_addr(s);
                p.set_dst_addr(d);
                p.fill_checksum();
                out.extend_from_slice(&seg);
                out
            }
            (s, d) => {
                let (s, d) = (v6_of(s), v6_of(d));
                self.fill_v6(&mut seg, s, d);
                let mut out = vec![0u8; ipv6::HEADER_LEN];
                let len = u16::try_from(seg.len()).unwrap_or(u16::MAX);
                let mut p = Ipv6Packet::new_unchecked(&mut out[..]);
                p.set_version_tc_flow(self.dscp_ecn, 0);
                p.set_payload_len(len);
                p.set_next_header(self.protocol());
                p.set_hop_limit(self.ttl);
                p.set_src_addr(s);
                p.set_dst_addr(d);
                out.extend_from_slice(&seg);
                out
            }
        }
    }

    /// The Ethernet frame (no FCS, no minimum-size padding).
    pub fn build(&self) -> Vec<u8> {
        let ip = self.build_ip();
        let ethertype = if self.src.is_ipv4() {
            EtherType::Ipv4
        } else {
            EtherType::Ipv6
        };
        let mut out = Vec::with_capacity(ip.len() + 18);
        out.extend_from_slice(&self.dst_mac.0);
        out.extend_from_slice(&self.src_mac.0);
        if let Some(vid) = self.vlan {
            out.extend_from_slice(&u16::from(EtherType::Vlan).to_be_bytes());
            out.extend_from_slice(&vid.to_be_bytes());
        }
        out.extend_from_slice(&u16::from(ethertype).to_be_bytes());
        out.extend_from_slice(&ip);
        out
    }
}

fn to_v6(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(IpAddr::V6(v6_of(a.ip())), a.port())
}

fn v6_of(a: IpAddr) -> Ipv6Addr {
    match a {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// One SCTP chunk (type, flags, length, value), padded to 4 bytes, for
/// [`FrameBuilder::payload`].
pub fn sctp_chunk(chunk_type: SctpChunkType, flags: u8, value: &[u8]) -> Vec<u8> {
    let len = u16::try_from(4 + value.len()).unwrap_or(u16::MAX);
    let mut c = vec![u8::from(chunk_type), flags];
    c.extend_from_slice(&len.to_be_bytes());
    c.extend_from_slice(value);
    while c.len() % 4 != 0 {
        c.push(0);
    }
    c
}

/// An SCTP INIT chunk with the given initiate tag (a_rwnd 65536, 10/10
/// streams, initial TSN = the tag, no parameters).
pub fn sctp_init_chunk(initiate_tag: u32) -> Vec<u8> {
    let mut v = Vec::with_capacity(16);
    v.extend_from_slice(&initiate_tag.to_be_bytes());
    v.extend_from_slice(&65536u32.to_be_bytes());
    v.extend_from_slice(&10u16.to_be_bytes());
    v.extend_from_slice(&10u16.to_be_bytes());
    v.extend_from_slice(&initiate_tag.to_be_bytes());
    sctp_chunk(SctpChunkType::Init, 0, &v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ethernet::EthernetFrame;
    use crate::fixtures::{hex, UDP_V4};

    #[test]
    fn rebuilds_captured_udp() {
        let want = hex(UDP_V4);
        let got = FrameBuilder::udp(
            "192.0.2.1:51275".parse().expect("addr"),
            "192.0.2.2:5353".parse().expect("addr"),
        )
        .src_mac(MacAddr([0x8a, 0x32, 0x2d, 0xbd, 0xc4, 0x5d]))
        .dst_mac(MacAddr([0x82, 0x63, 0xfe, 0x85, 0xc8, 0x62]))
        .ident(0x6b02)
        .payload(b"hello rvs")
        .build();
        assert_eq!(got, want);
    }

    #[test]
    fn tcp_v6_with_vlan() {
        let f = FrameBuilder::tcp(
            "[2001:db8::1]:1234".parse().expect("addr"),
            "[2001:db8::2]:80".parse().expect("addr"),
        )
        .flags(TcpFlags::SYN | TcpFlags::ACK)
        .seq(7)
        .ack(9)
        .vlan(100)
        .payload(b"x")
        .build();
        let e = EthernetFrame::new_checked(&f[..]).expect("eth");
        assert_eq!(e.vlan_id(), Some(100));
        assert_eq!(e.payload_ethertype(), EtherType::Ipv6);
        let ip = Ipv6Packet::new_checked(e.payload()).expect("ip6");
        assert_eq!(ip.payload_len(), 21);
        let t = TcpPacket::new_checked(ip.payload()).expect("tcp");
        assert_eq!((t.seq_number(), t.ack_number()), (7, 9));
        assert!(t.verify_checksum_v6(ip.src_addr(), ip.dst_addr()));
    }

    #[test]
    fn mixed_families_become_v6() {
        let f = FrameBuilder::udp(
            "192.0.2.1:1".parse().expect("addr"),
            "[2001:db8::2]:2".parse().expect("addr"),
        )
        .build_ip();
        let ip = Ipv6Packet::new_checked(&f[..]).expect("ip6");
        assert_eq!(ip.src_addr().to_string(), "::ffff:192.0.2.1");
    }

    #[test]
    fn sctp_and_echo() {
        let f = FrameBuilder::sctp(
            "192.0.2.1:5000".parse().expect("addr"),
            "192.0.2.2:80".parse().expect("addr"),
        )
        .payload(sctp_init_chunk(0x01020304))
        .build_ip();
        let ip = Ipv4Packet::new_checked(&f[..]).expect("ip");
        let s = SctpPacket::new_checked(ip.payload()).expect("sctp");
        assert!(s.verify_checksum());
        assert_eq!(s.first_chunk_type(), Some(SctpChunkType::Init));
        let e = FrameBuilder::icmp_echo(
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)),
            5,
            6,
        )
        .build_ip();
        let ip = Ipv4Packet::new_checked(&e[..]).expect("ip");
        let m = Icmpv4Packet::new_checked(ip.payload()).expect("icmp");
        assert!(m.verify_checksum());
        assert_eq!((m.echo_ident(), m.echo_seq()), (5, 6));
    }
}

//! Cross-checks against an independent implementation (etherparse): frames
//! it builds must parse and verify with our views, and frames our
//! `testframe` builder makes must parse and carry the checksums etherparse
//! computes.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use proptest::prelude::*;
use rvs_wire::testframe::FrameBuilder;
use rvs_wire::{
    EtherType, EthernetFrame, IpProtocol, Ipv4Packet, Ipv6Packet, MacAddr, TcpFlags, TcpPacket,
    UdpPacket,
};

proptest! {
    #[test]
    fn etherparse_tcp_v4_parses(
        src in any::<[u8; 4]>(), dst in any::<[u8; 4]>(), ttl in any::<u8>(),
        sp in any::<u16>(), dp in any::<u16>(), seq in any::<u32>(), win in any::<u16>(),
        payload in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4(src, dst, ttl)
            .tcp(sp, dp, seq, win)
            .syn();
        let mut frame = Vec::new();
        b.write(&mut frame, &payload).map_err(|e| TestCaseError::fail(e.to_string()))?;

        let eth = EthernetFrame::new_checked(&frame[..]).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(eth.ethertype(), EtherType::Ipv4);
        prop_assert_eq!(eth.src_addr(), MacAddr([2, 0, 0, 0, 0, 1]));
        let ip = Ipv4Packet::new_checked(eth.payload()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(ip.verify_checksum());
        prop_assert_eq!(ip.ttl(), ttl);
        prop_assert_eq!(ip.protocol(), IpProtocol::Tcp);
        prop_assert_eq!(ip.src_addr(), Ipv4Addr::from(src));
        let tcp = TcpPacket::new_checked(ip.payload()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(tcp.verify_checksum_v4(ip.src_addr(), ip.dst_addr()));
        prop_assert_eq!((tcp.src_port(), tcp.dst_port(), tcp.seq_number(), tcp.window()), (sp, dp, seq, win));
        prop_assert_eq!(tcp.flags(), TcpFlags::SYN);
        prop_assert_eq!(tcp.payload(), &payload[..]);
    }

    #[test]
    fn etherparse_udp_v6_parses(
        src in any::<[u8; 16]>(), dst in any::<[u8; 16]>(), hop in any::<u8>(),
        sp in any::<u16>(), dp in any::<u16>(),
        payload in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv6(src, dst, hop)
            .udp(sp, dp);
        let mut frame = Vec::new();
        b.write(&mut frame, &payload).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let eth = EthernetFrame::new_checked(&frame[..]).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let ip = Ipv6Packet::new_checked(eth.payload()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(ip.hop_limit(), hop);
        prop_assert_eq!(ip.upper_layer(), Ok((IpProtocol::Udp, 40)));
        let udp = UdpPacket::new_checked(ip.payload()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(udp.verify_checksum_v6(Ipv6Addr::from(src), Ipv6Addr::from(dst)));
        prop_assert_eq!(udp.payload(), &payload[..]);
    }

    #[test]
    fn testframe_matches_etherparse_checksums(
        v6 in any::<bool>(), udp in any::<bool>(),
        a in any::<[u8; 16]>(), b in any::<[u8; 16]>(),
        sp in any::<u16>(), dp in any::<u16>(), seq in any::<u32>(), ack in any::<u32>(),
        ttl in any::<u8>(), df in any::<bool>(),
        payload in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let (s, d): (SocketAddr, SocketAddr) = if v6 {
            ((Ipv6Addr::from(a), sp).into(), (Ipv6Addr::from(b), dp).into())
        } else {
            let a4 = Ipv4Addr::new(a[0], a[1], a[2], a[3]);
            let b4 = Ipv4Addr::new(b[0], b[1], b[2], b[3]);
            ((a4, sp).into(), (b4, dp).into())
        };
        let fb = if udp { FrameBuilder::udp(s, d) } else { FrameBuilder::tcp(s, d) };
        let frame = fb
            .flags(TcpFlags::PSH | TcpFlags::ACK)
            .seq(seq)
            .ack(ack)
            .ttl(ttl)
            .df(df)
            .payload(&payload)
            .build();
        let parsed = SlicedPacket::from_ethernet(&frame).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let transport = parsed.transport.clone().ok_or_else(|| TestCaseError::fail("no transport"))?;
        match parsed.net {
            Some(NetSlice::Ipv4(ip)) => {
                let h = ip.header().to_header();
                prop_assert_eq!(h.header_checksum, h.calc_header_checksum());
                prop_assert_eq!(h.time_to_live, ttl);
                prop_assert_eq!(h.dont_fragment, df);
                match transport {
                    TransportSlice::Tcp(t) => {
                        let want = t.to_header().calc_checksum_ipv4(&h, t.payload()).map_err(|e| TestCaseError::fail(e.to_string()))?;
                        prop_assert_eq!(t.checksum(), want);
                        prop_assert_eq!((t.sequence_number(), t.acknowledgment_number()), (seq, ack));
                        prop_assert!(t.psh() && t.ack() && !t.syn());
                        prop_assert_eq!(t.payload(), &payload[..]);
                    }
                    TransportSlice::Udp(u) => {
                        let want = u.to_header().calc_checksum_ipv4(&h, u.payload()).map_err(|e| TestCaseError::fail(e.to_string()))?;
                        prop_assert_eq!(u.checksum(), want);
                        prop_assert_eq!(u.payload(), &payload[..]);
                    }
                    _ => prop_assert!(false, "unexpected transport"),
                }
            }
            Some(NetSlice::Ipv6(ip)) => {
                let h = ip.header().to_header();
                prop_assert_eq!(h.hop_limit, ttl);
                match transport {
                    TransportSlice::Tcp(t) => {
                        let want = t.to_header().calc_checksum_ipv6(&h, t.payload()).map_err(|e| TestCaseError::fail(e.to_string()))?;
                        prop_assert_eq!(t.checksum(), want);
                    }
                    TransportSlice::Udp(u) => {
                        let want = u.to_header().calc_checksum_ipv6(&h, u.payload()).map_err(|e| TestCaseError::fail(e.to_string()))?;
                        prop_assert_eq!(u.checksum(), want);
                    }
                    _ => prop_assert!(false, "unexpected transport"),
                }
            }
            _ => prop_assert!(false, "no ip layer"),
        }
    }
}

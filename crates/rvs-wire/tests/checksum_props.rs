//! Property tests: RFC 1624 incremental checksum updates give exactly the
//! checksum a full recomputation gives, for random packets and rewrites of
//! the fields a NAT director changes (addresses, ports, TTL, sequence
//! numbers).

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use proptest::prelude::*;
use rvs_wire::checksum::{
    self, udp_v4_incremental, update_addr_v4, update_addr_v6, update_bytes, update_u16, update_u32,
};
use rvs_wire::testframe::FrameBuilder;
use rvs_wire::{IpProtocol, Ipv4Packet, Ipv4Repr, Ipv6Packet, TcpPacket, UdpPacket};

fn v4(a: [u8; 4]) -> Ipv4Addr {
    Ipv4Addr::from(a)
}

proptest! {
    #[test]
    fn ipv4_header_rewrites(
        src in any::<[u8; 4]>(), dst in any::<[u8; 4]>(), ttl in 1u8.., proto in any::<u8>(),
        ident in any::<u16>(), tos in any::<u8>(), df in any::<bool>(), plen in 0usize..1400,
        new_src in any::<[u8; 4]>(), new_dst in any::<[u8; 4]>(), new_ident in any::<u16>(),
    ) {
        let mut h = [0u8; 20];
        Ipv4Repr {
            src_addr: v4(src), dst_addr: v4(dst), protocol: IpProtocol::from(proto), ttl,
            dscp_ecn: tos, ident, dont_frag: df, payload_len: plen,
        }.emit(&mut h).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut p = Ipv4Packet::new_unchecked(&mut h[..]);
        prop_assert!(p.verify_checksum());

        let mut c = p.checksum();
        c = update_addr_v4(c, v4(src), v4(new_src));
        c = update_addr_v4(c, v4(dst), v4(new_dst));
        c = update_u16(c, ident, new_ident);
        c = update_u16(c, u16::from_be_bytes([ttl, proto]), u16::from_be_bytes([ttl - 1, proto]));
        p.set_src_addr(v4(new_src));
        p.set_dst_addr(v4(new_dst));
        p.set_ident(new_ident);
        p.set_ttl(ttl - 1);
        p.fill_checksum();
        prop_assert_eq!(c, p.checksum());
    }

    #[test]
    fn tcp_v4_dnat(
        src in any::<[u8; 4]>(), dst in any::<[u8; 4]>(), sp in any::<u16>(), dp in any::<u16>(),
        seq in any::<u32>(), payload in proptest::collection::vec(any::<u8>(), 0..200),
        rip in any::<[u8; 4]>(), rport in any::<u16>(), new_seq in any::<u32>(),
    ) {
        let mut pkt = FrameBuilder::tcp(SocketAddr::from((v4(src), sp)), SocketAddr::from((v4(dst), dp)))
            .seq(seq).payload(&payload).build_ip();
        let mut ip = Ipv4Packet::new_checked(&mut pkt[..]).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let ip_c = update_addr_v4(ip.checksum(), v4(dst), v4(rip));
        ip.set_dst_addr(v4(rip));
        let mut tcp = TcpPacket::new_checked(ip.payload_mut()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut c = tcp.checksum();
        c = update_addr_v4(c, v4(dst), v4(rip));
        c = update_u16(c, dp, rport);
        c = update_u32(c, seq, new_seq);
        tcp.set_dst_port(rport);
        tcp.set_seq_number(new_seq);
        tcp.fill_checksum_v4(v4(src), v4(rip));
        prop_assert_eq!(c, tcp.checksum());
        ip.fill_checksum();
        prop_assert_eq!(ip_c, ip.checksum());
    }

    #[test]
    fn udp_v4_snat_keeps_zero_rule(
        src in any::<[u8; 4]>(), dst in any::<[u8; 4]>(), sp in any::<u16>(), dp in any::<u16>(),
        payload in proptest::collection::vec(any::<u8>(), 0..200),
        vip in any::<[u8; 4]>(), vport in any::<u16>(), with_csum in any::<bool>(),
    ) {
        let mut pkt = FrameBuilder::udp(SocketAddr::from((v4(src), sp)), SocketAddr::from((v4(dst), dp)))
            .udp_checksum(with_csum).payload(&payload).build_ip();
        let mut ip = Ipv4Packet::new_checked(&mut pkt[..]).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut udp = UdpPacket::new_checked(ip.payload_mut()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let old = udp.checksum();
        prop_assert_eq!(old == 0, !with_csum);
        let c = udp_v4_incremental(old, |c| update_u16(update_addr_v4(c, v4(src), v4(vip)), sp, vport));
        udp.set_src_port(vport);
        if with_csum {
            udp.fill_checksum_v4(v4(vip), v4(dst));
            prop_assert_eq!(c, udp.checksum());
            prop_assert!(udp.verify_checksum_v4(v4(vip), v4(dst)));
        } else {
            prop_assert_eq!(c, 0);
        }
    }

    #[test]
    fn tcp_v6_address_rewrite(
        src in any::<[u8; 16]>(), dst in any::<[u8; 16]>(), sp in any::<u16>(), dp in any::<u16>(),
        payload in proptest::collection::vec(any::<u8>(), 0..200), rip in any::<[u8; 16]>(),
    ) {
        let (s, d, r) = (Ipv6Addr::from(src), Ipv6Addr::from(dst), Ipv6Addr::from(rip));
        let mut pkt = FrameBuilder::tcp(SocketAddr::from((s, sp)), SocketAddr::from((d, dp))).payload(&payload).build_ip();
        let mut ip = Ipv6Packet::new_checked(&mut pkt[..]).map_err(|e| TestCaseError::fail(e.to_string()))?;
        ip.set_dst_addr(r);
        let mut tcp = TcpPacket::new_checked(ip.payload_mut()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let c = update_addr_v6(tcp.checksum(), d, r);
        tcp.fill_checksum_v6(s, r);
        prop_assert_eq!(c, tcp.checksum());
    }

    #[test]
    fn any_aligned_window(
        data in proptest::collection::vec(any::<u8>(), 2..300),
        start in any::<prop::sample::Index>(), len in 0usize..40,
        fresh in proptest::collection::vec(any::<u8>(), 40),
    ) {
        let mut data = data;
        let start = start.index(data.len()) & !1;
        let end = (start + len).min(data.len());
        let before = checksum::checksum(&data);
        let old = data[start..end].to_vec();
        data[start..end].copy_from_slice(&fresh[..end - start]);
        prop_assume!(data.iter().any(|&b| b != 0));
        prop_assert_eq!(update_bytes(before, &old, &data[start..end]), checksum::checksum(&data));
    }
}

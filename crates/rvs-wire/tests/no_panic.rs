//! Every parser, getter and builder is fed arbitrary bytes (and mutated
//! valid frames); the only acceptable outcomes are values and `WireError`s,
//! never a panic.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use proptest::prelude::*;
use rvs_wire::arp::ArpPacket;
use rvs_wire::build;
use rvs_wire::testframe::{sctp_init_chunk, FrameBuilder};
use rvs_wire::{
    EtherType, EthernetFrame, Icmpv4Packet, Icmpv4Type, Icmpv6Packet, Icmpv6Type, IpProtocol,
    Ipv4Packet, Ipv4Repr, Ipv6Packet, SctpPacket, TcpPacket, UdpPacket,
};

fn l4_v4(proto: IpProtocol, data: &[u8], s: Ipv4Addr, d: Ipv4Addr) {
    match proto {
        IpProtocol::Tcp => {
            if let Ok(t) = TcpPacket::new_checked(data) {
                let _ = (
                    t.src_port(),
                    t.dst_port(),
                    t.seq_number(),
                    t.ack_number(),
                    t.flags().to_string(),
                );
                let _ = (
                    t.window(),
                    t.urgent(),
                    t.options().len(),
                    t.payload().len(),
                    t.verify_checksum_v4(s, d),
                );
            }
        }
        IpProtocol::Udp => {
            if let Ok(u) = UdpPacket::new_checked(data) {
                let _ = (
                    u.src_port(),
                    u.dst_port(),
                    u.len(),
                    u.payload().len(),
                    u.verify_checksum_v4(s, d),
                );
            }
        }
        IpProtocol::Icmp => {
            if let Ok(m) = Icmpv4Packet::new_checked(data) {
                let _ = (
                    m.msg_type(),
                    m.code(),
                    m.mtu(),
                    m.echo_ident(),
                    m.verify_checksum(),
                );
                if let Some(q) = m.quoted_packet() {
                    ip_any(q);
                }
            }
        }
        _ => sctp(data),
    }
}

fn sctp(data: &[u8]) {
    if let Ok(p) = SctpPacket::new_checked(data) {
        let _ = (
            p.src_port(),
            p.verification_tag(),
            p.verify_checksum(),
            p.first_chunk_type(),
        );
        for c in p.chunks().take(100) {
            let _ = c.map(|c| (c.chunk_type, c.flags, c.value.len()));
        }
        let _ = p.check_chunks();
    }
}

fn ip_any(data: &[u8]) {
    if let Ok(ip) = Ipv4Packet::new_checked(data) {
        let _ = (
            ip.version(),
            ip.ihl(),
            ip.dscp(),
            ip.ecn(),
            ip.ident(),
            ip.dont_frag(),
            ip.more_frags(),
        );
        let _ = (
            ip.frag_offset(),
            ip.ttl(),
            ip.options().len(),
            ip.verify_checksum(),
            Ipv4Repr::parse(&ip),
        );
        l4_v4(ip.protocol(), ip.payload(), ip.src_addr(), ip.dst_addr());
        let _ = build::decap_ipip(data);
        let _ = build::icmpv4_error_allowed(data);
    }
    if let Ok(ip) = Ipv6Packet::new_checked(data) {
        let _ = (
            ip.traffic_class(),
            ip.flow_label(),
            ip.hop_limit(),
            ip.next_header(),
            ip.src_addr(),
        );
        let _ = ip.walk_extensions();
        if let Ok((proto, upper)) = ip.upper_layer_payload() {
            match proto {
                IpProtocol::Tcp => {
                    let _ = TcpPacket::new_checked(upper)
                        .map(|t| t.verify_checksum_v6(ip.src_addr(), ip.dst_addr()));
                }
                IpProtocol::Udp => {
                    let _ = UdpPacket::new_checked(upper)
                        .map(|u| u.verify_checksum_v6(ip.src_addr(), ip.dst_addr()));
                }
                IpProtocol::Icmpv6 => {
                    if let Ok(m) = Icmpv6Packet::new_checked(upper) {
                        let _ = (
                            m.msg_type(),
                            m.mtu(),
                            m.target_addr(),
                            m.verify_checksum(ip.src_addr(), ip.dst_addr()),
                        );
                    }
                }
                _ => sctp(upper),
            }
        }
    }
}

fn frame(data: &[u8]) {
    if let Ok(f) = EthernetFrame::new_checked(data) {
        let _ = (
            f.dst_addr().to_string(),
            f.src_addr(),
            f.vlan_id(),
            f.inner_vlan_id(),
            f.header_len(),
        );
        match f.payload_ethertype() {
            EtherType::Arp => {
                let _ = ArpPacket::new_checked(f.payload())
                    .map(|a| (a.operation(), a.sender_ip(), a.target_mac()));
            }
            _ => ip_any(f.payload()),
        }
    }
}

fn builders(data: &[u8]) {
    let mut out = vec![0u8; 1600];
    let a = Ipv4Addr::new(192, 0, 2, 1);
    let b = Ipv6Addr::LOCALHOST;
    let _ = build::build_ipip(a, a, 64, true, data, &mut out);
    let _ = build::build_ipv6_tunnel(b, b, 64, data, &mut out);
    let _ = build::build_icmpv4_error(Icmpv4Type::DestUnreachable, 4, 1400, a, a, data, &mut out);
    let _ = build::build_icmpv6_error(Icmpv6Type::PacketTooBig, 0, 1280, b, b, data, &mut out);
    let _ = build::build_icmpv4_error(Icmpv4Type::TimeExceeded, 0, 0, a, a, data, &mut out[..30]);
    // Unchecked views over short buffers: zeros, never a panic.
    let _ = Ipv4Packet::new_unchecked(data).payload().len();
    let _ = Ipv6Packet::new_unchecked(data).upper_layer();
    let _ = TcpPacket::new_unchecked(data).payload().len();
    let _ = UdpPacket::new_unchecked(data).payload().len();
    let mut copy = data.to_vec();
    let mut ip = Ipv4Packet::new_unchecked(&mut copy[..]);
    ip.set_total_len(u16::MAX);
    ip.fill_checksum();
    let _ = ip.decrement_ttl();
    let _ = ip.payload_mut().len();
}

fn valid_frames() -> Vec<Vec<u8>> {
    let v4 = |p| SocketAddr::from((Ipv4Addr::new(192, 0, 2, 1), p));
    let v6 = |p| SocketAddr::from((Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), p));
    vec![
        FrameBuilder::tcp(v4(1), v4(2)).payload(b"abc").build(),
        FrameBuilder::udp(v6(1), v6(2))
            .payload(b"abc")
            .vlan(7)
            .build(),
        FrameBuilder::sctp(v4(1), v4(2))
            .payload(sctp_init_chunk(9))
            .build(),
        FrameBuilder::icmp_echo(v6(0).ip(), v6(0).ip(), 1, 2).build(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        frame(&data);
        ip_any(&data);
        builders(&data);
        for proto in [IpProtocol::Tcp, IpProtocol::Udp, IpProtocol::Icmp, IpProtocol::Sctp] {
            l4_v4(proto, &data, Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST);
        }
    }

    #[test]
    fn mutated_valid_frames(
        which in 0usize..4,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut f = valid_frames().swap_remove(which);
        for (i, v) in edits {
            let i = i.index(f.len());
            f[i] = v;
        }
        let keep = cut.index(f.len() + 1);
        f.truncate(keep);
        frame(&f);
        if f.len() > 14 {
            builders(&f[14..]);
        }
    }
}

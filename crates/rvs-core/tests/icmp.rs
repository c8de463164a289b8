//! ICMP errors about connections and the knobs of the no-connection paths
//! (`schedule_icmp`, `cache_bypass`, `nat_icmp_send`, one-packet
//! scheduling), checked against the kernel's ip_vs_core.c / ip_vs_xmit.c
//! behaviour. Frame bytes are checked by full recomputation here; exact
//! bytes are in the golden fixtures.

use rvs_core::conn::EngineTime;
use rvs_core::{
    Command, DestConfig, DropReason, Engine, Family, FwdMethod, PacketMeta, Protocol, Route,
    ServiceConfig, ServiceKey, Verdict,
};
use rvs_wire::checksum::{checksum, verify_transport_v6};
use rvs_wire::testframe::FrameBuilder;
use rvs_wire::{EthernetFrame, IpProtocol, Ipv4Packet, Ipv6Packet, TcpFlags};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

const VIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
const CIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
const RS1: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 11);
const DIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
const ROUTER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 254);

fn t() -> EngineTime {
    EngineTime::from_secs(1)
}

fn sa(ip: Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(ip), port)
}

fn key(protocol: Protocol, port: u16) -> ServiceKey {
    ServiceKey::Addr {
        protocol,
        addr: IpAddr::V4(VIP),
        port,
    }
}

fn engine(svc: ServiceKey, fwd: FwdMethod, rport: u16, persistent: Option<u32>) -> Engine {
    let mut e = Engine::new();
    let mut c = ServiceConfig::new(svc);
    c.scheduler = "rr".into();
    c.persistent = persistent;
    e.apply(Command::AddService(c)).expect("service");
    let mut d = DestConfig::new(IpAddr::V4(RS1), rport);
    d.fwd = fwd;
    e.apply(Command::AddDest {
        service: svc,
        dest: d,
    })
    .expect("dest");
    e
}

fn knob(e: &mut Engine, name: &str, value: i64) {
    e.apply(Command::SetKnob {
        name: name.into(),
        value,
    })
    .expect("knob");
}

fn csum_ok(m: &[u8]) -> bool {
    checksum(m) == 0
}

/// An ICMPv4 error from `src` to `dst` quoting `quoted` (an IP packet).
fn icmp4(src: Ipv4Addr, dst: Ipv4Addr, t: u8, code: u8, quoted: &[u8]) -> Vec<u8> {
    let mut m = vec![t, code, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(quoted);
    let c = checksum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    let mut f = FrameBuilder::icmp_echo(IpAddr::V4(src), IpAddr::V4(dst), 0, 0).build();
    f.truncate(14 + 20);
    let total = (20 + m.len()) as u16;
    f[16..18].copy_from_slice(&total.to_be_bytes());
    f[24..26].copy_from_slice(&[0, 0]);
    let c = checksum(&f[14..34]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&m);
    f
}

fn ip4(f: &[u8]) -> Ipv4Packet<&[u8]> {
    let e = EthernetFrame::new_checked(f).expect("eth");
    Ipv4Packet::new_checked(&f[e.header_len()..]).expect("ip")
}

fn syn(cport: u16) -> Vec<u8> {
    FrameBuilder::tcp(sa(CIP, cport), sa(VIP, 80))
        .flags(TcpFlags::SYN)
        .build()
}

fn counters(e: &Engine) -> (u64, u64) {
    let s = &e.snapshot().services[0].dests[0].stats;
    (s.inpkts, s.outpkts)
}

#[test]
fn nat_error_from_the_client_side_reaches_the_real_server_and_counts_in() {
    let mut e = engine(key(Protocol::Tcp, 80), FwdMethod::Masq, 8080, None);
    e.process(&mut syn(1000), PacketMeta::default(), t());
    assert_eq!(counters(&e), (1, 0));
    let quoted = FrameBuilder::tcp(sa(VIP, 80), sa(CIP, 1000))
        .flags(TcpFlags::SYN | TcpFlags::ACK)
        .build_ip();
    let mut f = icmp4(ROUTER, VIP, 3, 1, &quoted);
    let v = e.process(&mut f, PacketMeta::default(), t());
    assert!(
        matches!(v, Verdict::Forward(tx) if tx.route == Route::Routed { next_hop: IpAddr::V4(RS1) })
    );
    let ip = ip4(&f);
    assert!(ip.verify_checksum());
    assert_eq!((ip.src_addr(), ip.dst_addr(), ip.ttl()), (ROUTER, RS1, 63));
    assert!(csum_ok(ip.payload()), "ICMP checksum");
    let q = Ipv4Packet::new_checked(&ip.payload()[8..]).expect("quoted");
    assert!(q.verify_checksum(), "quoted header checksum");
    assert_eq!((q.src_addr(), q.dst_addr()), (RS1, CIP));
    assert_eq!(
        &q.payload()[0..4],
        &[0x1f, 0x90, 0x03, 0xe8],
        "8080 -> 1000"
    );
    assert_eq!(counters(&e), (2, 0), "ip_vs_in_stats");
}

#[test]
fn nat_error_from_the_real_server_goes_to_the_client_from_the_vip_and_counts_out() {
    let mut e = engine(key(Protocol::Tcp, 80), FwdMethod::Masq, 8080, None);
    e.process(&mut syn(1001), PacketMeta::default(), t());
    let quoted = FrameBuilder::tcp(sa(CIP, 1001), sa(RS1, 8080)).build_ip();
    let mut f = icmp4(RS1, CIP, 3, 3, &quoted);
    let v = e.process(&mut f, PacketMeta::default(), t());
    assert!(
        matches!(v, Verdict::Forward(tx) if tx.route == Route::Routed { next_hop: IpAddr::V4(CIP) })
    );
    let ip = ip4(&f);
    assert_eq!((ip.src_addr(), ip.dst_addr()), (VIP, CIP));
    assert!(csum_ok(ip.payload()));
    let q = Ipv4Packet::new_checked(&ip.payload()[8..]).expect("quoted");
    assert_eq!((q.src_addr(), q.dst_addr()), (CIP, VIP));
    assert_eq!(&q.payload()[2..4], &80u16.to_be_bytes());
    assert_eq!(counters(&e), (1, 1), "ip_vs_out_stats");
}

#[test]
fn bad_icmp_checksum_about_a_connection_is_dropped() {
    let mut e = engine(key(Protocol::Tcp, 80), FwdMethod::Masq, 80, None);
    e.process(&mut syn(1002), PacketMeta::default(), t());
    let quoted = FrameBuilder::tcp(sa(VIP, 80), sa(CIP, 1002)).build_ip();
    let mut f = icmp4(ROUTER, VIP, 11, 0, &quoted);
    f[14 + 20 + 2] ^= 0xff;
    let v = e.process(&mut f, PacketMeta::default(), t());
    assert_eq!(
        v,
        Verdict::Drop {
            reason: DropReason::Malformed,
            reply: None
        }
    );
}

#[test]
fn errors_about_unknown_flows_and_parameter_problems_pass() {
    let mut e = engine(key(Protocol::Tcp, 80), FwdMethod::Masq, 80, None);
    e.process(&mut syn(1003), PacketMeta::default(), t());
    let quoted = FrameBuilder::tcp(sa(VIP, 80), sa(CIP, 1003)).build_ip();
    // IPv4 parameter problem is not one of the kernel's handled types.
    let mut f = icmp4(ROUTER, VIP, 12, 0, &quoted);
    assert_eq!(e.process(&mut f, PacketMeta::default(), t()), Verdict::Pass);
    // An error about a flow nobody tracks.
    let other = FrameBuilder::tcp(sa(VIP, 80), sa(CIP, 9)).build_ip();
    let mut f = icmp4(ROUTER, VIP, 3, 1, &other);
    assert_eq!(e.process(&mut f, PacketMeta::default(), t()), Verdict::Pass);
    // Quote too short for the ports.
    let mut f = icmp4(ROUTER, VIP, 3, 1, &quoted[..22]);
    assert_eq!(e.process(&mut f, PacketMeta::default(), t()), Verdict::Pass);
}

#[test]
fn schedule_icmp_creates_a_connection_for_an_unknown_flow() {
    let mut e = engine(key(Protocol::Tcp, 80), FwdMethod::Route, 80, None);
    let quoted = FrameBuilder::tcp(sa(VIP, 80), sa(CIP, 1004)).build_ip();
    let mut f = icmp4(ROUTER, VIP, 3, 4, &quoted);
    assert_eq!(e.process(&mut f, PacketMeta::default(), t()), Verdict::Pass);
    assert_eq!(e.conn_count(), 0, "off by default");
    knob(&mut e, "schedule_icmp", 1);
    let mut f = icmp4(ROUTER, VIP, 3, 4, &quoted);
    let v = e.process(&mut f, PacketMeta::default(), t());
    assert!(
        matches!(v, Verdict::Forward(tx) if tx.route == Route::Direct { next_hop: IpAddr::V4(RS1) })
    );
    assert_eq!(e.conn_count(), 1);
    let c = &e.connections_at(t())[0];
    assert_eq!((c.caddr, c.cport), (IpAddr::V4(CIP), 1004));
    let s = &e.snapshot().services[0].dests[0].stats;
    assert_eq!((s.conns, s.inpkts), (1, 1));
    // A service without servers: dropped, and no ICMP about ICMP.
    let mut e2 = Engine::new();
    e2.apply(Command::AddService(ServiceConfig::new(key(
        Protocol::Tcp,
        80,
    ))))
    .expect("svc");
    knob(&mut e2, "schedule_icmp", 1);
    let mut f = icmp4(ROUTER, VIP, 3, 4, &quoted);
    assert_eq!(
        e2.process(&mut f, PacketMeta::default(), t()),
        Verdict::Drop {
            reason: DropReason::NoDestination,
            reply: None
        }
    );
}

#[test]
fn tunnel_frag_needed_without_df_is_consumed_silently() {
    let tun = FwdMethod::Tunnel {
        kind: rvs_core::TunnelKind::Ipip,
        csum: rvs_core::TunnelCsum::NoCsum,
    };
    let mut e = engine(key(Protocol::Tcp, 80), tun, 80, None);
    e.set_tunnel_source(DIP);
    let mut f = FrameBuilder::tcp(sa(CIP, 1005), sa(VIP, 80))
        .df(false)
        .build();
    e.process(&mut f, PacketMeta::default(), t());
    let ipip = ip4(&f).packet().to_vec();
    let mut err = icmp4(ROUTER, DIP, 3, 4, &ipip);
    assert_eq!(
        e.process(&mut err, PacketMeta::default(), t()),
        Verdict::Drop {
            reason: DropReason::TooBig,
            reply: None
        }
    );
    // Time exceeded is relayed whatever DF says.
    let mut err = icmp4(ROUTER, DIP, 11, 0, &ipip);
    let v = e.process(&mut err, PacketMeta::default(), t());
    assert!(matches!(v, Verdict::Forward(_)), "{v:?}");
    let ip = ip4(&err);
    assert_eq!((ip.src_addr(), ip.dst_addr()), (VIP, CIP));
    assert_eq!(ip.payload()[0], 11);
    // Not addressed to the director: not ours.
    let mut err = icmp4(ROUTER, Ipv4Addr::new(192, 0, 2, 9), 11, 0, &ipip);
    assert_eq!(
        e.process(&mut err, PacketMeta::default(), t()),
        Verdict::Pass
    );
}

#[test]
fn ipv6_error_translation_recomputes_the_icmpv6_checksum() {
    let vip: Ipv6Addr = "2001:db8::10".parse().expect("v6");
    let cip: Ipv6Addr = "2001:db8::2".parse().expect("v6");
    let rip: Ipv6Addr = "2001:db8:1::11".parse().expect("v6");
    let svc = ServiceKey::Addr {
        protocol: Protocol::Udp,
        addr: IpAddr::V6(vip),
        port: 53,
    };
    let mut e = Engine::new();
    e.apply(Command::AddService(ServiceConfig::new(svc)))
        .expect("svc");
    let mut d = DestConfig::new(IpAddr::V6(rip), 5353);
    d.fwd = FwdMethod::Masq;
    e.apply(Command::AddDest {
        service: svc,
        dest: d,
    })
    .expect("dest");
    let s6 = |a: Ipv6Addr, p| SocketAddr::new(IpAddr::V6(a), p);
    let mut q = FrameBuilder::udp(s6(cip, 1006), s6(vip, 53)).build();
    e.process(&mut q, PacketMeta::default(), t());
    // The client says: port unreachable about VIP:53 -> CIP:1006.
    let quoted = FrameBuilder::udp(s6(vip, 53), s6(cip, 1006)).build_ip();
    let mut m = vec![1u8, 4, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&quoted);
    let c = rvs_wire::checksum::transport_checksum_v6(cip, vip, IpProtocol::Icmpv6, &m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    let mut f = FrameBuilder::icmp_echo(IpAddr::V6(cip), IpAddr::V6(vip), 0, 0).build();
    f.truncate(14 + 40);
    f[18..20].copy_from_slice(&(m.len() as u16).to_be_bytes());
    f.extend_from_slice(&m);
    let v = e.process(&mut f, PacketMeta::default(), t());
    assert!(matches!(v, Verdict::Forward(_)), "{v:?}");
    let ip = Ipv6Packet::new_checked(&f[14..]).expect("v6");
    assert_eq!(
        (ip.src_addr(), ip.dst_addr(), ip.hop_limit()),
        (cip, rip, 63)
    );
    assert!(verify_transport_v6(
        cip,
        rip,
        IpProtocol::Icmpv6,
        ip.payload()
    ));
    let inner = Ipv6Packet::new_checked(&ip.payload()[8..]).expect("quoted");
    assert_eq!(inner.src_addr(), rip);
    assert_eq!(&inner.payload()[0..2], &5353u16.to_be_bytes());
}

#[test]
fn cache_bypass_forwards_to_the_original_destination_for_fwmark_services() {
    let fw = ServiceKey::Fwmark {
        mark: 7,
        family: Family::V4,
    };
    let mut e = Engine::new();
    e.apply(Command::AddService(ServiceConfig::new(fw)))
        .expect("svc");
    let meta = PacketMeta {
        fwmark: 7,
        ingress: 0,
    };
    let origin = Ipv4Addr::new(192, 0, 2, 80);
    let build = |cport| {
        FrameBuilder::tcp(sa(CIP, cport), sa(origin, 80))
            .flags(TcpFlags::SYN)
            .build()
    };
    // Off: port unreachable.
    let mut f = build(1007);
    assert!(matches!(
        e.process(&mut f, meta, t()),
        Verdict::Drop {
            reason: DropReason::NoDestination,
            reply: Some(_)
        }
    ));
    knob(&mut e, "cache_bypass", 1);
    let mut f = build(1008);
    let v = e.process(&mut f, meta, t());
    assert!(
        matches!(v, Verdict::Forward(tx) if tx.route == Route::Routed { next_hop: IpAddr::V4(origin) })
    );
    let ip = ip4(&f);
    assert_eq!((ip.dst_addr(), ip.ttl()), (origin, 63));
    assert!(ip.verify_checksum());
    assert_eq!(e.conn_count(), 1, "a bypass entry");
    // The next packet of the flow uses the entry.
    let mut f = FrameBuilder::tcp(sa(CIP, 1008), sa(origin, 80))
        .flags(TcpFlags::ACK)
        .build();
    assert!(matches!(e.process(&mut f, meta, t()), Verdict::Forward(_)));
    // A destination that is the director's own: no bypass.
    e.set_local_addrs([IpAddr::V4(origin)]);
    let mut f = build(1009);
    assert!(matches!(
        e.process(&mut f, meta, t()),
        Verdict::Drop {
            reason: DropReason::NoDestination,
            ..
        }
    ));
    // Not for address services.
    let mut e2 = Engine::new();
    e2.apply(Command::AddService(ServiceConfig::new(key(
        Protocol::Tcp,
        80,
    ))))
    .expect("svc");
    knob(&mut e2, "cache_bypass", 1);
    assert!(matches!(
        e2.process(&mut syn(1010), PacketMeta::default(), t()),
        Verdict::Drop { .. }
    ));
}

#[test]
fn nat_icmp_send_answers_orphan_replies_from_nat_servers() {
    let mut e = engine(key(Protocol::Tcp, 80), FwdMethod::Masq, 8080, None);
    e.set_tunnel_source(DIP);
    let orphan = || {
        FrameBuilder::tcp(sa(RS1, 8080), sa(CIP, 1011))
            .flags(TcpFlags::ACK)
            .build()
    };
    let mut f = orphan();
    assert_eq!(e.process(&mut f, PacketMeta::default(), t()), Verdict::Pass);
    knob(&mut e, "nat_icmp_send", 1);
    let mut f = orphan();
    let v = e.process(&mut f, PacketMeta::default(), t());
    assert!(matches!(
        v,
        Verdict::Drop {
            reason: DropReason::NoDestination,
            reply: Some(tx)
        } if tx.route == Route::Routed { next_hop: IpAddr::V4(RS1) }
    ));
    let ip = ip4(&f);
    assert_eq!((ip.src_addr(), ip.dst_addr()), (DIP, RS1));
    assert_eq!((ip.payload()[0], ip.payload()[1]), (3, 3));
    // RST is never answered; another port of the RS is not a real service.
    let mut f = FrameBuilder::tcp(sa(RS1, 8080), sa(CIP, 1011))
        .flags(TcpFlags::RST)
        .build();
    assert_eq!(e.process(&mut f, PacketMeta::default(), t()), Verdict::Pass);
    let mut f = FrameBuilder::tcp(sa(RS1, 22), sa(CIP, 1011))
        .flags(TcpFlags::ACK)
        .build();
    assert_eq!(e.process(&mut f, PacketMeta::default(), t()), Verdict::Pass);
}

#[test]
fn one_packet_scheduling_is_for_udp_only() {
    let fw = ServiceKey::Fwmark {
        mark: 9,
        family: Family::V4,
    };
    let mut e = Engine::new();
    let mut c = ServiceConfig::new(fw);
    c.ops = true;
    c.scheduler = "rr".into();
    e.apply(Command::AddService(c)).expect("svc");
    let mut d = DestConfig::new(IpAddr::V4(RS1), 0);
    d.fwd = FwdMethod::Route;
    e.apply(Command::AddDest {
        service: fw,
        dest: d,
    })
    .expect("dest");
    let meta = PacketMeta {
        fwmark: 9,
        ingress: 0,
    };
    let mut u = FrameBuilder::udp(sa(CIP, 1012), sa(VIP, 53)).build();
    assert!(matches!(e.process(&mut u, meta, t()), Verdict::Forward(_)));
    assert_eq!(e.conn_count(), 0, "UDP one-packet: no entry");
    let mut s = FrameBuilder::tcp(sa(CIP, 1013), sa(VIP, 80))
        .flags(TcpFlags::SYN)
        .build();
    assert!(matches!(e.process(&mut s, meta, t()), Verdict::Forward(_)));
    assert_eq!(
        e.conn_count(),
        1,
        "TCP on an -o service is a normal connection"
    );
    let d = &e.snapshot().services[0].dests[0];
    assert_eq!((d.stats.conns, d.active + d.inactive), (2, 1));
}

#[test]
fn ftp_data_source_port_is_never_scheduled() {
    let mut e = engine(key(Protocol::Tcp, 80), FwdMethod::Masq, 80, None);
    let mut f = FrameBuilder::tcp(sa(CIP, 20), sa(VIP, 80))
        .flags(TcpFlags::SYN)
        .build();
    assert_eq!(e.process(&mut f, PacketMeta::default(), t()), Verdict::Pass);
    assert_eq!(e.conn_count(), 0);
}

#[test]
fn pmtu_disc_off_lets_tunnelled_df_packets_through_but_not_nat_ones() {
    let tun = FwdMethod::Tunnel {
        kind: rvs_core::TunnelKind::Ipip,
        csum: rvs_core::TunnelCsum::NoCsum,
    };
    let big = |cport| {
        FrameBuilder::tcp(sa(CIP, cport), sa(VIP, 80))
            .flags(TcpFlags::SYN)
            .payload(vec![0u8; 1460])
            .build()
    };
    let mut e = engine(key(Protocol::Tcp, 80), tun, 80, None);
    e.set_tunnel_source(DIP);
    knob(&mut e, "pmtu_disc", 0);
    let mut f = big(1014);
    assert!(matches!(
        e.process(&mut f, PacketMeta::default(), t()),
        Verdict::Forward(_)
    ));
    assert!(!ip4(&f).dont_frag(), "outer DF cleared without pmtu_disc");
    let mut e = engine(key(Protocol::Tcp, 80), FwdMethod::Masq, 80, None);
    e.set_mtu(1400);
    knob(&mut e, "pmtu_disc", 0);
    let mut f = big(1015);
    assert!(matches!(
        e.process(&mut f, PacketMeta::default(), t()),
        Verdict::Drop {
            reason: DropReason::TooBig,
            reply: Some(_)
        }
    ));
}

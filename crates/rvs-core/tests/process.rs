//! The packet path end to end inside the engine: frames in, verdicts and
//! rewritten frames out. Expected values come from the seed walkthrough as
//! run on the real kernel (`shared/refvm/captures/seed-nat`) and from the
//! packet formats; checksums are verified by full recomputation.

use rvs_core::conn::EngineTime;
use rvs_core::{
    Command, DestConfig, DropReason, Engine, FwdMethod, Netmask, PacketMeta, Protocol, Route,
    ServiceConfig, ServiceKey, TunnelCsum, TunnelKind, Verdict,
};
use rvs_wire::testframe::FrameBuilder;
use rvs_wire::{EthernetFrame, IpProtocol, Ipv4Packet, Ipv6Packet, TcpFlags, TcpPacket};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

const VIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
const CIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
const RS1: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 11);
const RS2: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 12);
const DIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);

fn t(secs: u64) -> EngineTime {
    EngineTime::from_secs(secs)
}

fn key(port: u16) -> ServiceKey {
    ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: IpAddr::V4(VIP),
        port,
    }
}

fn service(e: &mut Engine, port: u16, sched: &str, persistent: Option<u32>) {
    let mut c = ServiceConfig::new(key(port));
    c.scheduler = sched.into();
    c.persistent = persistent;
    e.apply(Command::AddService(c)).expect("add service");
}

fn real(e: &mut Engine, svc: ServiceKey, rip: Ipv4Addr, port: u16, fwd: FwdMethod, weight: i32) {
    let mut d = DestConfig::new(IpAddr::V4(rip), port);
    d.fwd = fwd;
    d.weight = weight;
    e.apply(Command::AddDest {
        service: svc,
        dest: d,
    })
    .expect("add dest");
}

/// The seed's NAT director: rr over RS1 then RS2.
fn seed_nat() -> Engine {
    let mut e = Engine::new();
    service(&mut e, 80, "rr", None);
    real(&mut e, key(80), RS1, 80, FwdMethod::Masq, 1);
    real(&mut e, key(80), RS2, 80, FwdMethod::Masq, 1);
    e
}

fn sa(ip: Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(ip), port)
}

fn tcp(src: SocketAddr, dst: SocketAddr, flags: TcpFlags) -> Vec<u8> {
    FrameBuilder::tcp(src, dst).flags(flags).build()
}

fn syn(cport: u16, vport: u16) -> Vec<u8> {
    tcp(sa(CIP, cport), sa(VIP, vport), TcpFlags::SYN)
}

fn ipv4(frame: &[u8]) -> Ipv4Packet<&[u8]> {
    let eth = EthernetFrame::new_checked(frame).expect("ethernet");
    Ipv4Packet::new_checked(&frame[eth.header_len()..]).expect("ipv4")
}

/// (dst addr, dst port, src addr, src port) of a TCP/IPv4 frame, after
/// checking both checksums by full recomputation.
fn tcp4_tuple(frame: &[u8]) -> (Ipv4Addr, u16, Ipv4Addr, u16) {
    let ip = ipv4(frame);
    assert!(ip.verify_checksum(), "IPv4 header checksum");
    let seg = TcpPacket::new_checked(ip.payload()).expect("tcp");
    assert!(
        seg.verify_checksum_v4(ip.src_addr(), ip.dst_addr()),
        "TCP checksum"
    );
    (ip.dst_addr(), seg.dst_port(), ip.src_addr(), seg.src_port())
}

fn forward_hop(v: &Verdict) -> IpAddr {
    match v {
        Verdict::Forward(tx) => match tx.route {
            Route::Routed { next_hop } | Route::Direct { next_hop } => next_hop,
        },
        other => panic!("expected Forward, got {other:?}"),
    }
}

fn dest_counts(e: &Engine, svc: usize) -> Vec<(IpAddr, u32, u32, u32)> {
    let mut v: Vec<_> = e.snapshot().services[svc]
        .dests
        .iter()
        .map(|d| (d.config.addr, d.active, d.inactive, d.persist))
        .collect();
    v.sort();
    v
}

/// One complete short TCP connection through NAT, as curl does it.
fn nat_connection(e: &mut Engine, cport: u16, now: u64) -> Ipv4Addr {
    let mut f = syn(cport, 80);
    let v = e.process(&mut f, PacketMeta::default(), t(now));
    let IpAddr::V4(rip) = forward_hop(&v) else {
        panic!("v4")
    };
    let c = sa(CIP, cport);
    let vip = sa(VIP, 80);
    let rs = sa(rip, 80);
    let steps: [(SocketAddr, SocketAddr, TcpFlags); 6] = [
        (rs, c, TcpFlags::SYN | TcpFlags::ACK),
        (c, vip, TcpFlags::ACK),
        (c, vip, TcpFlags::ACK | TcpFlags::PSH),
        (rs, c, TcpFlags::ACK | TcpFlags::FIN),
        (c, vip, TcpFlags::ACK | TcpFlags::FIN),
        (rs, c, TcpFlags::ACK),
    ];
    for (src, dst, flags) in steps {
        let mut f = tcp(src, dst, flags);
        let v = e.process(&mut f, PacketMeta::default(), t(now));
        assert!(matches!(v, Verdict::Forward(_)), "{flags} -> {v:?}");
    }
    rip
}

#[test]
fn seed_rr_alternates_starting_with_rs2_and_rewrites_destination() {
    let mut e = seed_nat();
    let mut seen = Vec::new();
    for i in 0..4u16 {
        let mut f = syn(40000 + i, 80);
        let v = e.process(&mut f, PacketMeta::default(), t(1));
        let hop = forward_hop(&v);
        let (daddr, dport, saddr, sport) = tcp4_tuple(&f);
        assert_eq!(IpAddr::V4(daddr), hop);
        assert_eq!((dport, saddr, sport), (80, CIP, 40000 + i));
        assert_eq!(ipv4(&f).ttl(), 63, "TTL decremented");
        seen.push(daddr);
    }
    assert_eq!(seen, vec![RS2, RS1, RS2, RS1]);
}

#[test]
fn nat_reply_is_rewritten_to_the_vip() {
    let mut e = seed_nat();
    let mut f = syn(41000, 80);
    e.process(&mut f, PacketMeta::default(), t(1));
    let mut reply = tcp(sa(RS2, 80), sa(CIP, 41000), TcpFlags::SYN | TcpFlags::ACK);
    let v = e.process(&mut reply, PacketMeta::default(), t(1));
    assert_eq!(forward_hop(&v), IpAddr::V4(CIP));
    let (daddr, dport, saddr, sport) = tcp4_tuple(&reply);
    assert_eq!((daddr, dport, saddr, sport), (CIP, 41000, VIP, 80));
}

#[test]
fn four_short_connections_leave_two_inactive_per_server_like_the_kernel() {
    let mut e = seed_nat();
    let mut picks = Vec::new();
    for i in 0..4u16 {
        picks.push(nat_connection(&mut e, 42000 + i, 1));
    }
    assert_eq!(picks, vec![RS2, RS1, RS2, RS1]);
    assert_eq!(
        dest_counts(&e, 0),
        vec![(IpAddr::V4(RS1), 0, 2, 0), (IpAddr::V4(RS2), 0, 2, 0)]
    );
    let snap = e.snapshot();
    let s = &snap.services[0];
    // The real kernel counts 6 packets each way per short request; our
    // synthetic connection has 4 in and 3 out.
    assert_eq!(s.stats.conns, 4);
    assert_eq!(s.stats.inpkts, 16);
    assert_eq!(s.stats.outpkts, 12);
    let conns = e.connections_at(t(1));
    assert_eq!(conns.len(), 4);
    assert!(conns.iter().all(|c| c.state == "TIME_WAIT"));
    // TIME_WAIT lasts 120 s: still there at 120, gone after.
    e.tick(t(120));
    assert_eq!(e.conn_count(), 4);
    e.tick(t(122));
    assert_eq!(e.conn_count(), 0);
    assert_eq!(
        dest_counts(&e, 0),
        vec![(IpAddr::V4(RS1), 0, 0, 0), (IpAddr::V4(RS2), 0, 0, 0)]
    );
}

#[test]
fn established_connections_count_as_active() {
    let mut e = seed_nat();
    let mut f = syn(43000, 80);
    e.process(&mut f, PacketMeta::default(), t(1));
    // Bound inactive, then the SYN moves it to SYN_RECV, an active state
    // since kernel 4.7.
    assert_eq!(
        dest_counts(&e, 0)[1],
        (IpAddr::V4(RS2), 1, 0, 0),
        "SYN_RECV is active"
    );
    let mut f = tcp(sa(RS2, 80), sa(CIP, 43000), TcpFlags::SYN | TcpFlags::ACK);
    e.process(&mut f, PacketMeta::default(), t(1));
    assert_eq!(
        dest_counts(&e, 0)[1],
        (IpAddr::V4(RS2), 1, 0, 0),
        "still active"
    );
    let mut f = tcp(sa(CIP, 43000), sa(VIP, 80), TcpFlags::ACK);
    e.process(&mut f, PacketMeta::default(), t(1));
    let conns = e.connections_at(t(1));
    assert_eq!(conns[0].state, "ESTABLISHED");
    assert_eq!(conns[0].expires_ms, 900_000);
}

#[test]
fn wrr_after_edit_follows_the_real_kernel_sequence() {
    let mut e = seed_nat();
    let mut c = ServiceConfig::new(key(80));
    c.scheduler = "wrr".into();
    e.apply(Command::EditService(c)).expect("edit");
    real_edit(&mut e, RS1, 3);
    real_edit(&mut e, RS2, 1);
    let mut seen = Vec::new();
    for i in 0..8u16 {
        let mut f = syn(44000 + i, 80);
        let v = e.process(&mut f, PacketMeta::default(), t(1));
        seen.push(forward_hop(&v));
    }
    let (a, b) = (IpAddr::V4(RS1), IpAddr::V4(RS2));
    assert_eq!(seen, vec![b, a, a, a, b, a, a, a]);
}

fn real_edit(e: &mut Engine, rip: Ipv4Addr, weight: i32) {
    let mut d = DestConfig::new(IpAddr::V4(rip), 80);
    d.fwd = FwdMethod::Masq;
    d.weight = weight;
    e.apply(Command::EditDest {
        service: key(80),
        dest: d,
    })
    .expect("edit dest");
}

#[test]
fn dr_changes_only_ttl_and_is_sent_on_link() {
    let mut e = Engine::new();
    service(&mut e, 80, "wlc", None);
    real(&mut e, key(80), RS1, 80, FwdMethod::Route, 2);
    let mut f = syn(45000, 80);
    let before = f.clone();
    let v = e.process(&mut f, PacketMeta::default(), t(1));
    match v {
        Verdict::Forward(tx) => assert_eq!(
            tx.route,
            Route::Direct {
                next_hop: IpAddr::V4(RS1)
            }
        ),
        other => panic!("{other:?}"),
    }
    let (daddr, dport, saddr, sport) = tcp4_tuple(&f);
    assert_eq!((daddr, dport, saddr, sport), (VIP, 80, CIP, 45000));
    // Only TTL and the IP checksum differ.
    let diff: Vec<usize> = (0..f.len()).filter(|&i| f[i] != before[i]).collect();
    assert!(
        diff.iter()
            .all(|&i| i == 14 + 8 || i == 14 + 10 || i == 14 + 11),
        "{diff:?}"
    );
}

#[test]
fn dr_connection_stays_in_fin_wait_because_replies_bypass_the_director() {
    let mut e = Engine::new();
    service(&mut e, 80, "rr", None);
    real(&mut e, key(80), RS1, 80, FwdMethod::Route, 1);
    for flags in [
        TcpFlags::SYN,
        TcpFlags::ACK,
        TcpFlags::ACK | TcpFlags::PSH,
        TcpFlags::ACK | TcpFlags::FIN,
        TcpFlags::ACK,
    ] {
        let mut f = tcp(sa(CIP, 46000), sa(VIP, 80), flags);
        e.process(&mut f, PacketMeta::default(), t(1));
    }
    let conns = e.connections_at(t(1));
    assert_eq!(conns[0].state, "FIN_WAIT");
    assert_eq!(conns[0].expires_ms, 120_000);
}

#[test]
fn tun_wraps_the_packet_in_ipip_from_the_dip() {
    let mut e = Engine::new();
    e.set_tunnel_source(DIP);
    service(&mut e, 80, "rr", None);
    let tun = FwdMethod::Tunnel {
        kind: TunnelKind::Ipip,
        csum: TunnelCsum::NoCsum,
    };
    real(&mut e, key(80), RS1, 80, tun, 1);
    let mut f = syn(47000, 80);
    let inner_before = ipv4(&f).packet().to_vec();
    let v = e.process(&mut f, PacketMeta::default(), t(1));
    assert_eq!(forward_hop(&v), IpAddr::V4(RS1));
    let outer = ipv4(&f);
    assert!(outer.verify_checksum());
    assert_eq!(outer.protocol(), IpProtocol::IpIp);
    assert_eq!((outer.src_addr(), outer.dst_addr()), (DIP, RS1));
    assert!(outer.dont_frag(), "DF copied from the inner packet");
    assert_eq!(outer.ttl(), 63);
    let inner = Ipv4Packet::new_checked(outer.payload()).expect("inner");
    assert!(inner.verify_checksum());
    assert_eq!(
        (inner.src_addr(), inner.dst_addr(), inner.ttl()),
        (CIP, VIP, 63)
    );
    assert_eq!(inner.payload(), &inner_before[20..], "transport untouched");
}

#[test]
fn tun_without_a_source_address_is_dropped_and_counted() {
    let mut e = Engine::new();
    service(&mut e, 80, "rr", None);
    let tun = FwdMethod::Tunnel {
        kind: TunnelKind::Ipip,
        csum: TunnelCsum::NoCsum,
    };
    real(&mut e, key(80), RS1, 80, tun, 1);
    let mut f = syn(47100, 80);
    let v = e.process(&mut f, PacketMeta::default(), t(1));
    assert_eq!(
        v,
        Verdict::Drop {
            reason: DropReason::NoTunnelSource,
            reply: None
        }
    );
    assert_eq!(e.stats().drop_no_tunnel_source, 1);
}

#[test]
fn no_real_server_answers_icmp_port_unreachable() {
    let mut e = Engine::new();
    service(&mut e, 80, "rr", None);
    let mut f = syn(48000, 80);
    let original = ipv4(&f).packet().to_vec();
    let v = e.process(&mut f, PacketMeta::default(), t(1));
    let Verdict::Drop {
        reason: DropReason::NoDestination,
        reply: Some(tx),
    } = v
    else {
        panic!("{v:?}")
    };
    assert_eq!(
        tx.route,
        Route::Routed {
            next_hop: IpAddr::V4(CIP)
        }
    );
    let ip = ipv4(&f);
    assert!(ip.verify_checksum());
    assert_eq!((ip.src_addr(), ip.dst_addr()), (VIP, CIP));
    assert_eq!(ip.protocol(), IpProtocol::Icmp);
    let icmp = ip.payload();
    assert_eq!((icmp[0], icmp[1]), (3, 3), "destination unreachable / port");
    assert_eq!(rvs_wire::checksum::checksum(icmp), 0, "ICMP checksum");
    assert_eq!(
        &icmp[8..8 + original.len()],
        &original[..],
        "quotes the SYN"
    );
    assert_eq!(e.stats().drop_no_dest, 1);
    assert_eq!(e.stats().icmp_sent, 1);
}

#[test]
fn non_lvs_traffic_passes_untouched() {
    let mut e = seed_nat();
    // Another port of the VIP (ssh to the director).
    let mut f = syn(49000, 22);
    let before = f.clone();
    assert_eq!(
        e.process(&mut f, PacketMeta::default(), t(1)),
        Verdict::Pass
    );
    assert_eq!(f, before);
    // A stray ACK to the VIP: the host's stack answers it with RST.
    let mut f = tcp(sa(CIP, 49001), sa(VIP, 80), TcpFlags::ACK);
    assert_eq!(
        e.process(&mut f, PacketMeta::default(), t(1)),
        Verdict::Pass
    );
    // ARP.
    let mut arp = vec![0xffu8; 6];
    arp.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x08, 0x06]);
    arp.extend_from_slice(&[0u8; 28]);
    assert_eq!(
        e.process(&mut arp, PacketMeta::default(), t(1)),
        Verdict::Pass
    );
    // ICMP echo to the VIP.
    let mut ping = FrameBuilder::icmp_echo(IpAddr::V4(CIP), IpAddr::V4(VIP), 1, 1).build();
    assert_eq!(
        e.process(&mut ping, PacketMeta::default(), t(1)),
        Verdict::Pass
    );
    assert_eq!(e.stats().passed, 4);
    assert_eq!(e.conn_count(), 0);
}

#[test]
fn malformed_frames_are_counted_and_dropped() {
    let mut e = seed_nat();
    let good = syn(50000, 80);
    for cut in [15usize, 20, 33, 34 + 10] {
        let mut f = good[..cut].to_vec();
        let v = e.process(&mut f, PacketMeta::default(), t(1));
        assert!(
            matches!(
                v,
                Verdict::Drop {
                    reason: DropReason::Malformed,
                    ..
                }
            ),
            "cut {cut}: {v:?}"
        );
    }
    let mut f = good.clone();
    f[14] = 0x46; // IHL 6 words with no room: header longer than claimed total? still parses
    f[14 + 2] = 0;
    f[14 + 3] = 10; // total length 10 < header
    assert!(matches!(
        e.process(&mut f, PacketMeta::default(), t(1)),
        Verdict::Drop {
            reason: DropReason::Malformed,
            ..
        }
    ));
    assert_eq!(e.stats().drop_malformed, 5);
    assert_eq!(e.conn_count(), 0);
}

#[test]
fn ttl_one_gets_time_exceeded() {
    let mut e = seed_nat();
    let mut f = FrameBuilder::tcp(sa(CIP, 51000), sa(VIP, 80))
        .ttl(1)
        .build();
    let v = e.process(&mut f, PacketMeta::default(), t(1));
    assert!(matches!(
        v,
        Verdict::Drop {
            reason: DropReason::TtlExceeded,
            reply: Some(_)
        }
    ));
    let ip = ipv4(&f);
    assert_eq!((ip.payload()[0], ip.payload()[1]), (11, 0));
}

#[test]
fn oversized_df_packet_gets_fragmentation_needed_with_the_tunnel_mtu() {
    let mut e = Engine::new();
    e.set_tunnel_source(DIP);
    service(&mut e, 80, "rr", None);
    let tun = FwdMethod::Tunnel {
        kind: TunnelKind::Ipip,
        csum: TunnelCsum::NoCsum,
    };
    real(&mut e, key(80), RS1, 80, tun, 1);
    // 1500-byte IP packet: fits the link, not the tunnel.
    let payload = vec![0u8; 1500 - 40];
    let mut f = FrameBuilder::tcp(sa(CIP, 52000), sa(VIP, 80))
        .payload(&payload)
        .build();
    let v = e.process(&mut f, PacketMeta::default(), t(1));
    assert!(
        matches!(
            v,
            Verdict::Drop {
                reason: DropReason::TooBig,
                reply: Some(_)
            }
        ),
        "{v:?}"
    );
    let ip = ipv4(&f);
    let icmp = ip.payload();
    assert_eq!((icmp[0], icmp[1]), (3, 4));
    assert_eq!(u16::from_be_bytes([icmp[6], icmp[7]]), 1480);
}

#[test]
fn persistence_keeps_a_client_on_one_server_and_lists_a_template() {
    let mut e = Engine::new();
    service(&mut e, 80, "rr", Some(600));
    real(&mut e, key(80), RS1, 80, FwdMethod::Masq, 1);
    real(&mut e, key(80), RS2, 80, FwdMethod::Masq, 1);
    let mut hops = Vec::new();
    for i in 0..4u16 {
        let mut f = syn(53000 + i, 80);
        hops.push(forward_hop(&e.process(&mut f, PacketMeta::default(), t(1))));
    }
    assert!(hops.iter().all(|h| *h == hops[0]), "{hops:?}");
    // Another client is scheduled normally (rr moves on).
    let mut f = tcp(
        sa(Ipv4Addr::new(198, 51, 100, 3), 1000),
        sa(VIP, 80),
        TcpFlags::SYN,
    );
    let other = forward_hop(&e.process(&mut f, PacketMeta::default(), t(1)));
    assert_ne!(other, hops[0]);
    let conns = e.connections_at(t(1));
    let templates: Vec<_> = conns.iter().filter(|c| c.is_template).collect();
    assert_eq!(templates.len(), 2);
    let tpl = templates
        .iter()
        .find(|c| c.caddr == IpAddr::V4(CIP))
        .expect("template of CIP");
    assert_eq!((tpl.cport, tpl.vport, tpl.dport), (0, 80, 80));
    assert_eq!(tpl.expires_ms, 600_000);
    let persist: u32 = e.snapshot().services[0]
        .dests
        .iter()
        .map(|d| d.persist)
        .sum();
    assert_eq!(persist, 2);
}

#[test]
fn port_zero_service_sticks_all_ports_of_a_client_together() {
    let mut e = Engine::new();
    service(&mut e, 0, "rr", Some(600));
    real(&mut e, key(0), RS1, 0, FwdMethod::Route, 1);
    real(&mut e, key(0), RS2, 0, FwdMethod::Route, 1);
    let mut hops = Vec::new();
    for (i, vport) in [80u16, 23, 22, 443].into_iter().enumerate() {
        let mut f = syn(54000 + i as u16, vport);
        hops.push(forward_hop(&e.process(&mut f, PacketMeta::default(), t(1))));
        let (daddr, dport, ..) = tcp4_tuple(&f);
        assert_eq!((daddr, dport), (VIP, vport), "DR keeps the port");
    }
    assert!(hops.iter().all(|h| *h == hops[0]), "{hops:?}");
    let tpl = e
        .connections_at(t(1))
        .into_iter()
        .find(|c| c.is_template)
        .expect("template");
    assert_eq!((tpl.vport, tpl.dport), (0, 0));
}

#[test]
fn fwmark_service_groups_ports_and_lists_an_ip_template() {
    let mut e = Engine::new();
    let fwm = ServiceKey::Fwmark {
        mark: 8,
        family: rvs_core::Family::V4,
    };
    let mut c = ServiceConfig::new(fwm);
    c.scheduler = "rr".into();
    c.persistent = Some(600);
    e.apply(Command::AddService(c)).expect("add");
    real(&mut e, fwm, RS1, 0, FwdMethod::Route, 1);
    real(&mut e, fwm, RS2, 0, FwdMethod::Route, 1);
    let marked = PacketMeta {
        fwmark: 8,
        ingress: 0,
    };
    let mut hops = Vec::new();
    for (i, vport) in [80u16, 23].into_iter().enumerate() {
        let mut f = syn(55000 + i as u16, vport);
        hops.push(forward_hop(&e.process(&mut f, marked, t(1))));
    }
    assert_eq!(hops[0], hops[1]);
    // Without the mark the packet is not LVS traffic.
    let mut f = syn(55100, 80);
    assert_eq!(
        e.process(&mut f, PacketMeta::default(), t(1)),
        Verdict::Pass
    );
    let tpl = e
        .connections_at(t(1))
        .into_iter()
        .find(|c| c.is_template)
        .expect("template");
    assert_eq!(tpl.protocol.name(), "IP");
    assert_eq!(tpl.vaddr, IpAddr::V4(Ipv4Addr::new(0, 0, 0, 8)));
}

#[test]
fn removed_server_drops_its_connections_and_comes_back_from_the_trash() {
    let mut e = seed_nat();
    let rs2 = nat_connection(&mut e, 56000, 1);
    assert_eq!(rs2, RS2);
    e.apply(Command::DeleteDest {
        service: key(80),
        addr: IpAddr::V4(RS2),
        port: 80,
    })
    .expect("delete");
    // A late packet of the old connection is dropped.
    let mut f = tcp(sa(CIP, 56000), sa(VIP, 80), TcpFlags::ACK);
    assert!(matches!(
        e.process(&mut f, PacketMeta::default(), t(2)),
        Verdict::Drop {
            reason: DropReason::DestUnavailable,
            ..
        }
    ));
    // Re-added, it comes back with its connection count (the seed's -C / -R).
    real(&mut e, key(80), RS2, 80, FwdMethod::Masq, 1);
    assert_eq!(dest_counts(&e, 0)[1], (IpAddr::V4(RS2), 0, 1, 0));
}

#[test]
fn ipv6_nat_rewrites_with_valid_checksums() {
    let vip6: Ipv6Addr = "2001:db8::10".parse().expect("addr");
    let cip6: Ipv6Addr = "2001:db8:1::2".parse().expect("addr");
    let rip6: Ipv6Addr = "2001:db8:2::11".parse().expect("addr");
    let k = ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: IpAddr::V6(vip6),
        port: 80,
    };
    let mut e = Engine::new();
    e.apply(Command::AddService(ServiceConfig::new(k)))
        .expect("add");
    let mut d = DestConfig::new(IpAddr::V6(rip6), 8080);
    d.fwd = FwdMethod::Masq;
    e.apply(Command::AddDest {
        service: k,
        dest: d,
    })
    .expect("add");
    let mut f = FrameBuilder::tcp(
        SocketAddr::new(IpAddr::V6(cip6), 40000),
        SocketAddr::new(IpAddr::V6(vip6), 80),
    )
    .build();
    let v = e.process(&mut f, PacketMeta::default(), t(1));
    assert_eq!(forward_hop(&v), IpAddr::V6(rip6));
    let ip = Ipv6Packet::new_checked(&f[14..]).expect("v6");
    assert_eq!(ip.dst_addr(), rip6);
    assert_eq!(ip.hop_limit(), 63);
    let seg = TcpPacket::new_checked(ip.payload()).expect("tcp");
    assert_eq!(seg.dst_port(), 8080);
    assert!(seg.verify_checksum_v6(ip.src_addr(), ip.dst_addr()));
}

#[test]
fn udp_connections_never_become_active() {
    let k = ServiceKey::Addr {
        protocol: Protocol::Udp,
        addr: IpAddr::V4(VIP),
        port: 53,
    };
    let mut e = Engine::new();
    e.apply(Command::AddService(ServiceConfig::new(k)))
        .expect("add");
    real(&mut e, k, RS1, 53, FwdMethod::Masq, 1);
    let mut f = FrameBuilder::udp(sa(CIP, 5353), sa(VIP, 53))
        .payload(b"q")
        .build();
    assert_eq!(
        forward_hop(&e.process(&mut f, PacketMeta::default(), t(1))),
        IpAddr::V4(RS1)
    );
    let mut r = FrameBuilder::udp(sa(RS1, 53), sa(CIP, 5353))
        .payload(b"a")
        .build();
    assert_eq!(
        forward_hop(&e.process(&mut r, PacketMeta::default(), t(1))),
        IpAddr::V4(CIP)
    );
    assert_eq!(dest_counts(&e, 0), vec![(IpAddr::V4(RS1), 0, 1, 0)]);
    let c = &e.connections_at(t(1))[0];
    assert_eq!((c.state.as_str(), c.expires_ms), ("UDP", 300_000));
}

#[test]
fn persistence_netmask_groups_clients() {
    let mut e = Engine::new();
    let mut c = ServiceConfig::new(key(80));
    c.scheduler = "rr".into();
    c.persistent = Some(360);
    c.netmask = Netmask::V4(Ipv4Addr::new(255, 255, 255, 0));
    e.apply(Command::AddService(c)).expect("add");
    real(&mut e, key(80), RS1, 80, FwdMethod::Masq, 1);
    real(&mut e, key(80), RS2, 80, FwdMethod::Masq, 1);
    let mut hops = Vec::new();
    for last in [2u8, 3, 4, 200] {
        let mut f = tcp(
            sa(Ipv4Addr::new(198, 51, 100, last), 1234),
            sa(VIP, 80),
            TcpFlags::SYN,
        );
        hops.push(forward_hop(&e.process(&mut f, PacketMeta::default(), t(1))));
    }
    assert!(hops.iter().all(|h| *h == hops[0]));
    let tpl = e
        .connections_at(t(1))
        .into_iter()
        .find(|c| c.is_template)
        .expect("tpl");
    assert_eq!(tpl.caddr, IpAddr::V4(Ipv4Addr::new(198, 51, 100, 0)));
}

#[test]
fn flow_events_tell_the_datapath_what_to_steer() {
    let mut e = seed_nat();
    let mut f = syn(57000, 80);
    e.process(&mut f, PacketMeta::default(), t(1));
    assert!(
        e.drain_flow_events().is_empty(),
        "off until a datapath asks"
    );
    e.record_flow_events(true);
    nat_connection(&mut e, 57001, 1);
    let ev = e.drain_flow_events();
    let client = rvs_core::FlowTuple {
        protocol: Protocol::Tcp,
        saddr: IpAddr::V4(CIP),
        sport: 57001,
        daddr: IpAddr::V4(VIP),
        dport: 80,
    };
    let reply = rvs_core::FlowTuple {
        protocol: Protocol::Tcp,
        saddr: IpAddr::V4(RS1),
        sport: 80,
        daddr: IpAddr::V4(CIP),
        dport: 57001,
    };
    assert_eq!(
        ev,
        vec![rvs_core::FlowEvent::Added {
            client,
            reply: Some(reply)
        }]
    );
    e.tick(t(200));
    let ev = e.drain_flow_events();
    assert_eq!(ev.len(), 2, "both connections expired: {ev:?}");
    assert!(ev.contains(&rvs_core::FlowEvent::Removed {
        client,
        reply: Some(reply)
    }));
}

#[test]
fn listings_between_ticks_use_the_last_tick_time() {
    let mut e = seed_nat();
    let mut f = syn(58000, 80);
    e.process(&mut f, PacketMeta::default(), t(0));
    e.tick(t(1));
    e.tick(t(2));
    // SYN_RECV lasts 60 s; at the last tick (2 s) 58 s are left.
    let c = &e.connections()[0];
    assert_eq!((c.state.as_str(), c.expires_ms), ("SYN_RECV", 58_000));
}

#[test]
fn a_reused_client_port_keeps_its_new_flow_steered() {
    // Replaying the flow events into a set must leave the new
    // connection's tuples in place after the old connection expires.
    let mut e = seed_nat();
    e.record_flow_events(true);
    let first = nat_connection(&mut e, 59000, 1); // ends in TIME_WAIT
    let mut f = syn(59000, 80); // same client port: rescheduled
    let second = forward_hop(&e.process(&mut f, PacketMeta::default(), t(2)));
    assert_ne!(IpAddr::V4(first), second, "rr moved on");
    e.tick(t(3)); // the old entry is freed now
    let mut steered = std::collections::HashSet::new();
    for ev in e.drain_flow_events() {
        match ev {
            rvs_core::FlowEvent::Added { client, reply } => {
                steered.insert(client);
                steered.extend(reply);
            }
            rvs_core::FlowEvent::Removed { client, reply } => {
                steered.remove(&client);
                if let Some(r) = reply {
                    steered.remove(&r);
                }
            }
        }
    }
    let client = rvs_core::FlowTuple {
        protocol: Protocol::Tcp,
        saddr: IpAddr::V4(CIP),
        sport: 59000,
        daddr: IpAddr::V4(VIP),
        dport: 80,
    };
    let reply = rvs_core::FlowTuple {
        protocol: Protocol::Tcp,
        saddr: second,
        sport: 80,
        daddr: IpAddr::V4(CIP),
        dport: 59000,
    };
    assert!(steered.contains(&client), "{steered:?}");
    assert!(steered.contains(&reply), "{steered:?}");
    assert_eq!(steered.len(), 2, "the old reply tuple is gone: {steered:?}");
}

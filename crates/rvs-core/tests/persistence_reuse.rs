//! Persistence template re-arming and port-reuse decisions through
//! `Engine::process`, against the kernel's rules:
//! * `ip_vs_sched_persist` ends with `ip_vs_conn_put(ct)`, which restarts
//!   the template's timer with its timeout each time a connection is
//!   scheduled through it;
//! * `ip_vs_in` only looks at port reuse for `is_new_conn` packets (TCP SYN,
//!   SCTP INIT; never UDP, whatever `sloppy_tcp` says), and
//!   `expire_nodest_conn` with a weight-0 server reschedules controlled
//!   connections too (kernel commit c95c07836fa4).

use rvs_core::conn::EngineTime;
use rvs_core::{
    Command, DestConfig, Engine, FwdMethod, PacketMeta, Protocol, Route, ServiceConfig, ServiceKey,
    Verdict,
};
use rvs_wire::testframe::FrameBuilder;
use rvs_wire::TcpFlags;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

const VIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
const CIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
const RS1: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 11);
const RS2: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 12);

fn t(secs: u64) -> EngineTime {
    EngineTime::from_secs(secs)
}

fn key(protocol: Protocol) -> ServiceKey {
    ServiceKey::Addr {
        protocol,
        addr: IpAddr::V4(VIP),
        port: 80,
    }
}

fn rr_service(protocol: Protocol, persistent: Option<u32>) -> Engine {
    let mut e = Engine::new();
    let mut c = ServiceConfig::new(key(protocol));
    c.scheduler = "rr".into();
    c.persistent = persistent;
    e.apply(Command::AddService(c)).expect("add service");
    for rip in [RS1, RS2] {
        e.apply(Command::AddDest {
            service: key(protocol),
            dest: dest(rip, 1),
        })
        .expect("add dest");
    }
    e
}

fn dest(rip: Ipv4Addr, weight: i32) -> DestConfig {
    let mut d = DestConfig::new(IpAddr::V4(rip), 80);
    d.fwd = FwdMethod::Masq;
    d.weight = weight;
    d
}

fn knob(e: &mut Engine, name: &str, value: i64) {
    e.apply(Command::SetKnob {
        name: name.into(),
        value,
    })
    .expect("knob");
}

fn hop(v: &Verdict) -> IpAddr {
    match v {
        Verdict::Forward(tx) => match tx.route {
            Route::Routed { next_hop } | Route::Direct { next_hop } => next_hop,
        },
        other => panic!("expected Forward, got {other:?}"),
    }
}

fn tcp(cport: u16, flags: TcpFlags, now: u64, e: &mut Engine) -> Verdict {
    let mut f = FrameBuilder::tcp(
        SocketAddr::new(IpAddr::V4(CIP), cport),
        SocketAddr::new(IpAddr::V4(VIP), 80),
    )
    .flags(flags)
    .build();
    e.process(&mut f, PacketMeta::default(), t(now))
}

fn udp(cport: u16, now: u64, e: &mut Engine) -> Verdict {
    let mut f = FrameBuilder::udp(
        SocketAddr::new(IpAddr::V4(CIP), cport),
        SocketAddr::new(IpAddr::V4(VIP), 80),
    )
    .build();
    e.process(&mut f, PacketMeta::default(), t(now))
}

fn template_expiry_ms(e: &Engine, now: u64) -> u64 {
    e.connections_at(t(now))
        .into_iter()
        .find(|c| c.is_template)
        .expect("template")
        .expires_ms
}

#[test]
fn a_connection_through_a_template_restarts_its_timer() {
    let mut e = rr_service(Protocol::Tcp, Some(300));
    let first = hop(&tcp(50000, TcpFlags::SYN, 1, &mut e));
    assert_eq!(template_expiry_ms(&e, 1), 300_000);
    // 199 s later a new connection of the same client uses the template:
    // its timer starts again from now (kernel: ip_vs_conn_put(ct)).
    assert_eq!(hop(&tcp(50001, TcpFlags::SYN, 200, &mut e)), first);
    assert_eq!(template_expiry_ms(&e, 200), 300_000);
    // Both SYN_RECV connections (60 s) are gone long before 450 s; the
    // template (due at 500 s) still sends the client to the same server.
    e.tick(t(450));
    assert_eq!(e.conn_count(), 1, "only the template is left");
    assert_eq!(hop(&tcp(50002, TcpFlags::SYN, 450, &mut e)), first);
    // Without further connections it expires 300 s after the last one.
    e.tick(t(749));
    assert_eq!(template_expiry_ms(&e, 749), 1_000);
    e.tick(t(811));
    assert_eq!(e.conn_count(), 0);
}

#[test]
fn a_template_rearmed_for_its_connections_keeps_the_60_s_timeout() {
    let mut e = rr_service(Protocol::Udp, Some(10));
    let first = hop(&udp(40000, 0, &mut e));
    // The UDP connection (300 s) outlives the 10 s template: at 10 s the
    // template is re-armed for 60 s because it still controls it.
    e.tick(t(10));
    assert_eq!(template_expiry_ms(&e, 10), 60_000);
    // A new connection restarts the template's timer with that 60 s.
    assert_eq!(hop(&udp(40001, 30, &mut e)), first);
    assert_eq!(template_expiry_ms(&e, 30), 60_000);
}

#[test]
fn udp_packets_to_a_weight_0_server_stay_on_their_connection_with_expire_nodest_conn() {
    let mut e = rr_service(Protocol::Udp, None);
    knob(&mut e, "expire_nodest_conn", 1);
    let first = hop(&udp(41000, 1, &mut e));
    let IpAddr::V4(first_v4) = first else {
        panic!("v4")
    };
    // Drain the server: weight 0 (keepalived's inhibit_on_failure).
    e.apply(Command::EditDest {
        service: key(Protocol::Udp),
        dest: dest(first_v4, 0),
    })
    .expect("edit");
    // UDP is never `is_new_conn`: the flow keeps its connection.
    for now in 2..5 {
        assert_eq!(hop(&udp(41000, now, &mut e)), first);
    }
    assert_eq!(e.stats().conns_created, 1);
    assert_eq!(e.conn_count(), 1);
}

#[test]
fn sloppy_tcp_does_not_make_an_ack_reuse_a_time_wait_port() {
    let mut e = rr_service(Protocol::Tcp, None);
    knob(&mut e, "sloppy_tcp", 1);
    let first = hop(&tcp(42000, TcpFlags::SYN, 1, &mut e));
    // Client FIN, then a server FIN seen by the NAT director: TIME_WAIT.
    tcp(42000, TcpFlags::ACK | TcpFlags::FIN, 1, &mut e);
    let IpAddr::V4(rip) = first else { panic!("v4") };
    let mut reply = FrameBuilder::tcp(
        SocketAddr::new(IpAddr::V4(rip), 80),
        SocketAddr::new(IpAddr::V4(CIP), 42000),
    )
    .flags(TcpFlags::ACK | TcpFlags::FIN)
    .build();
    e.process(&mut reply, PacketMeta::default(), t(1));
    assert_eq!(e.connections_at(t(1))[0].state, "TIME_WAIT");
    // A late ACK is not a new connection: it stays on the old entry.
    assert_eq!(hop(&tcp(42000, TcpFlags::ACK, 2, &mut e)), first);
    assert_eq!(e.stats().conns_created, 1);
    // A SYN is: conn_reuse_mode 1 reschedules it (rr moves on).
    assert_ne!(hop(&tcp(42000, TcpFlags::SYN, 3, &mut e)), first);
    assert_eq!(e.stats().conns_created, 2);
}

#[test]
fn expire_nodest_conn_reschedules_a_persistent_connection_to_a_weight_0_server() {
    let mut e = rr_service(Protocol::Tcp, Some(300));
    knob(&mut e, "expire_nodest_conn", 1);
    knob(&mut e, "expire_quiescent_template", 1);
    let first = hop(&tcp(43000, TcpFlags::SYN, 1, &mut e));
    tcp(43000, TcpFlags::ACK, 1, &mut e);
    let IpAddr::V4(first_v4) = first else {
        panic!("v4")
    };
    e.apply(Command::EditDest {
        service: key(Protocol::Tcp),
        dest: dest(first_v4, 0),
    })
    .expect("edit");
    // The same client port opens again: the controlled connection is
    // rescheduled, the quiescent template is invalidated, and the other
    // server gets it.
    let again = hop(&tcp(43000, TcpFlags::SYN, 2, &mut e));
    assert_ne!(again, first);
    assert_eq!(e.stats().conns_created, 2);
}

#[test]
fn an_invalidated_template_lists_virtual_and_destination_port_65535() {
    let mut e = rr_service(Protocol::Tcp, Some(300));
    knob(&mut e, "expire_quiescent_template", 1);
    let first = hop(&tcp(44000, TcpFlags::SYN, 1, &mut e));
    let IpAddr::V4(first_v4) = first else {
        panic!("v4")
    };
    e.apply(Command::EditDest {
        service: key(Protocol::Tcp),
        dest: dest(first_v4, 0),
    })
    .expect("edit");
    // A new connection finds the template quiescent: invalidated (kernel
    // 6.1 ip_vs_check_template: cport 0, vport and dport 0xffff), and a
    // new template sends the client to the other server.
    let second = hop(&tcp(44001, TcpFlags::SYN, 2, &mut e));
    assert_ne!(second, first);
    let mut templates: Vec<_> = e
        .connections_at(t(2))
        .into_iter()
        .filter(|c| c.is_template)
        .map(|c| (c.cport, c.vport, c.daddr, c.dport))
        .collect();
    templates.sort();
    assert_eq!(
        templates,
        vec![(0, 80, second, 80), (0, 65535, first, 65535)]
    );
}

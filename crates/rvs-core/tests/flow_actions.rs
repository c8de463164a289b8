//! The engine's fast-path API (`Engine::flow_actions`, `touch_flow`,
//! `credit_dest`): when a connection may be cached by a datapath, what
//! the cached decision is, and how forwarded packets and activity come
//! back. Expected values are worked out from the LVS rules by hand.

use rvs_core::conn::EngineTime;
use rvs_core::engine::{FlowAction, FlowActions, FlowRewrite};
use rvs_core::{
    Command, DestConfig, Engine, FlowTuple, FwdMethod, PacketMeta, Protocol, ServiceConfig,
    ServiceKey,
};
use rvs_wire::testframe::FrameBuilder;
use rvs_wire::TcpFlags;
use std::net::{IpAddr, SocketAddr};

fn sa(s: &str) -> SocketAddr {
    s.parse().expect("socket address")
}

fn t(ms: u64) -> EngineTime {
    EngineTime::from_millis(ms)
}

fn engine(fwd: FwdMethod, rport: u16) -> Engine {
    let key = ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: "198.51.100.10".parse().expect("vip"),
        port: 80,
    };
    let mut e = Engine::new();
    let mut svc = ServiceConfig::new(key);
    svc.scheduler = "rr".into();
    let mut dest = DestConfig::new("203.0.113.12".parse().expect("rip"), rport);
    dest.fwd = fwd;
    e.apply_all(vec![
        Command::AddService(svc),
        Command::AddDest { service: key, dest },
    ])
    .expect("setup");
    e
}

fn send(e: &mut Engine, src: &str, dst: &str, flags: TcpFlags, ms: u64) {
    let mut f = FrameBuilder::tcp(sa(src), sa(dst)).flags(flags).build();
    e.process(&mut f, PacketMeta::default(), t(ms));
}

fn tuple(src: &str, dst: &str) -> FlowTuple {
    let (s, d) = (sa(src), sa(dst));
    FlowTuple {
        protocol: Protocol::Tcp,
        saddr: s.ip(),
        sport: s.port(),
        daddr: d.ip(),
        dport: d.port(),
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

const CIP: &str = "198.51.100.2:40000";
const VIP: &str = "198.51.100.10:80";
const RS: &str = "203.0.113.12:8080";

#[test]
fn nat_connection_is_cacheable_only_while_established() {
    let mut e = engine(FwdMethod::Masq, 8080);
    let client = tuple(CIP, VIP);
    let reply = tuple(RS, CIP);
    send(&mut e, CIP, VIP, TcpFlags::SYN, 1000);
    assert_eq!(e.flow_actions(&client), None, "SYN_RECV");
    send(&mut e, RS, CIP, TcpFlags::SYN | TcpFlags::ACK, 1001);
    assert_eq!(e.flow_actions(&client), None, "still SYN_RECV");
    send(&mut e, CIP, VIP, TcpFlags::ACK, 1002);
    // The server's id is the engine's own; both directions carry it.
    let dest = e.flow_actions(&client).expect("established").client.dest;
    let want = FlowActions {
        client: FlowAction {
            tuple: client,
            rewrite: FlowRewrite::Destination {
                addr: ip("203.0.113.12"),
                port: 8080,
            },
            next_hop: ip("203.0.113.12"),
            dest,
            outbound: false,
        },
        reply: Some(FlowAction {
            tuple: reply,
            rewrite: FlowRewrite::Source {
                addr: ip("198.51.100.10"),
                port: 80,
            },
            next_hop: ip("198.51.100.2"),
            dest,
            outbound: true,
        }),
    };
    assert_eq!(e.flow_actions(&client), Some(want));
    // Either direction finds the connection.
    assert_eq!(e.flow_actions(&reply), Some(want));
    // An unrelated tuple does not.
    assert_eq!(e.flow_actions(&tuple("198.51.100.2:40001", VIP)), None);
    // The client's FIN: FIN_WAIT, no longer cacheable.
    send(&mut e, CIP, VIP, TcpFlags::FIN | TcpFlags::ACK, 1003);
    assert_eq!(e.flow_actions(&client), None);
}

#[test]
fn dr_connection_caches_the_client_side_only_and_removed_servers_drop_it() {
    let mut e = engine(FwdMethod::Route, 80);
    let vip80 = "198.51.100.10:80";
    send(&mut e, CIP, vip80, TcpFlags::SYN, 1000);
    send(&mut e, CIP, vip80, TcpFlags::ACK, 1001);
    let client = tuple(CIP, vip80);
    let a = e.flow_actions(&client).expect("DR established");
    assert_eq!(a.reply, None);
    assert_eq!(a.client.rewrite, FlowRewrite::Direct { mac: None });
    assert_eq!(a.client.next_hop, ip("203.0.113.12"));
    let key = e.snapshot().services[0].config.key;
    e.apply(Command::DeleteDest {
        service: key,
        addr: ip("203.0.113.12"),
        port: 80,
    })
    .expect("remove the server");
    assert_eq!(e.flow_actions(&client), None, "server gone");
}

#[test]
fn touch_re_arms_the_timer_and_credit_counts() {
    let mut e = engine(FwdMethod::Masq, 8080);
    send(&mut e, CIP, VIP, TcpFlags::SYN, 1000);
    send(&mut e, RS, CIP, TcpFlags::SYN | TcpFlags::ACK, 1001);
    send(&mut e, CIP, VIP, TcpFlags::ACK, 1002);
    // ESTABLISHED: 900 s from the last packet at 1.002 s.
    let conns = e.connections_at(t(1002));
    assert_eq!(conns[0].expires_ms, 900_000);
    assert!(e.touch_flow(&tuple(RS, CIP), t(61_002)));
    assert_eq!(e.connections_at(t(61_002))[0].expires_ms, 900_000);
    assert!(!e.touch_flow(&tuple("198.51.100.3:1", VIP), t(61_002)));

    let before = e.snapshot().services[0].stats;
    let dest = e
        .flow_actions(&tuple(CIP, VIP))
        .expect("cached")
        .client
        .dest;
    e.credit_dest(dest, false, 10, 5200);
    e.credit_dest(dest, true, 7, 10_000);
    let s = e.snapshot();
    let after = s.services[0].stats;
    assert_eq!(after.inpkts - before.inpkts, 10);
    assert_eq!(after.inbytes - before.inbytes, 5200);
    assert_eq!(after.outpkts - before.outpkts, 7);
    assert_eq!(after.outbytes - before.outbytes, 10_000);
    assert_eq!(s.services[0].dests[0].stats.inpkts, after.inpkts);
    assert_eq!(after.conns, 1, "credits are packets, not connections");
}

//! `Engine::invalidate_templates_of`: a drained real server's persistence
//! templates stop pointing at it, so its clients are scheduled afresh,
//! while the templates of other servers keep working.

use rvs_core::conn::EngineTime;
use rvs_core::{
    Command, DestConfig, Engine, FwdMethod, PacketMeta, Protocol, Route, ServiceConfig, ServiceKey,
    Verdict,
};
use rvs_wire::testframe::FrameBuilder;
use rvs_wire::TcpFlags;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

const VIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
const RS1: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 11);
const RS2: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 12);

fn key() -> ServiceKey {
    ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: IpAddr::V4(VIP),
        port: 80,
    }
}

fn dest(rip: Ipv4Addr, weight: i32) -> DestConfig {
    let mut d = DestConfig::new(IpAddr::V4(rip), 80);
    d.fwd = FwdMethod::Masq;
    d.weight = weight;
    d
}

fn syn_from(client: u8, cport: u16, e: &mut Engine, now: u64) -> IpAddr {
    let src = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, client)), cport);
    let dst = SocketAddr::new(IpAddr::V4(VIP), 80);
    let mut f = FrameBuilder::tcp(src, dst).flags(TcpFlags::SYN).build();
    match e.process(&mut f, PacketMeta::default(), EngineTime::from_secs(now)) {
        Verdict::Forward(tx) => match tx.route {
            Route::Routed { next_hop } | Route::Direct { next_hop } => next_hop,
        },
        other => panic!("expected Forward, got {other:?}"),
    }
}

#[test]
fn drained_server_loses_its_templates_and_others_keep_theirs() {
    let mut e = Engine::new();
    let mut svc = ServiceConfig::new(key());
    svc.scheduler = "rr".into();
    svc.persistent = Some(600);
    e.apply_all(vec![
        Command::AddService(svc),
        Command::AddDest {
            service: key(),
            dest: dest(RS1, 1),
        },
        Command::AddDest {
            service: key(),
            dest: dest(RS2, 1),
        },
    ])
    .expect("rules");
    // rr over the newest-first list: client .2 goes to RS2, client .3 to RS1.
    assert_eq!(syn_from(2, 1000, &mut e, 1), IpAddr::V4(RS2));
    assert_eq!(syn_from(3, 1000, &mut e, 1), IpAddr::V4(RS1));

    // Drain RS2: weight 0, then its templates are invalidated.
    e.apply(Command::EditDest {
        service: key(),
        dest: dest(RS2, 0),
    })
    .expect("weight 0");
    // Without invalidation the template would still send client .2 to RS2
    // (expire_quiescent_template is 0 by default).
    assert_eq!(
        e.invalidate_templates_of(&key(), IpAddr::V4(RS2), 80),
        1,
        "one template pointed at RS2"
    );
    // Again: nothing left to invalidate.
    assert_eq!(e.invalidate_templates_of(&key(), IpAddr::V4(RS2), 80), 0);
    // Unknown server or service: nothing.
    assert_eq!(e.invalidate_templates_of(&key(), IpAddr::V4(VIP), 80), 0);

    // Client .2's new connection is scheduled afresh: RS1 (the only
    // server with weight); client .3 keeps RS1 through its template.
    assert_eq!(syn_from(2, 1001, &mut e, 2), IpAddr::V4(RS1));
    assert_eq!(syn_from(3, 1001, &mut e, 2), IpAddr::V4(RS1));
    // The invalidated template is still listed (dport 65535) until it
    // expires; a new template of client .2 points at RS1.
    let conns = e.connections_at(EngineTime::from_secs(2));
    let tpl2: Vec<_> = conns
        .iter()
        .filter(|c| c.is_template && c.caddr == IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2)))
        .map(|c| (c.daddr, c.dport))
        .collect();
    assert!(tpl2.contains(&(IpAddr::V4(RS2), 65535)), "{tpl2:?}");
    assert!(tpl2.contains(&(IpAddr::V4(RS1), 80)), "{tpl2:?}");
}

//! Configuration semantics of the engine: the kernel's errors for each
//! command, list order, atomic batches, trash resurrection, knobs.

use rvs_core::{
    ApplyError, Command, DestConfig, Engine, FwdMethod, Protocol, ServiceConfig, ServiceKey,
    TunnelCsum, TunnelKind,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn vip() -> ServiceKey {
    ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: v4(198, 51, 100, 10),
        port: 80,
    }
}

fn svc(sched: &str) -> ServiceConfig {
    let mut c = ServiceConfig::new(vip());
    c.scheduler = sched.to_string();
    c
}

fn rs(last: u8, fwd: FwdMethod, weight: i32) -> DestConfig {
    let mut d = DestConfig::new(v4(203, 0, 113, last), 80);
    d.fwd = fwd;
    d.weight = weight;
    d
}

fn add_rs(e: &mut Engine, last: u8, weight: i32) {
    e.apply(Command::AddDest {
        service: vip(),
        dest: rs(last, FwdMethod::Masq, weight),
    })
    .expect("add dest");
}

fn dest_addrs(e: &Engine) -> Vec<IpAddr> {
    e.snapshot().services[0]
        .dests
        .iter()
        .map(|d| d.config.addr)
        .collect()
}

#[test]
fn new_real_servers_go_to_the_head_of_the_list() {
    let mut e = Engine::new();
    e.apply(Command::AddService(svc("rr"))).expect("add");
    add_rs(&mut e, 11, 1);
    add_rs(&mut e, 12, 1);
    add_rs(&mut e, 13, 1);
    assert_eq!(
        dest_addrs(&e),
        vec![
            v4(203, 0, 113, 13),
            v4(203, 0, 113, 12),
            v4(203, 0, 113, 11)
        ]
    );
}

#[test]
fn kernel_errors_for_each_command() {
    let mut e = Engine::new();
    assert_eq!(
        e.apply(Command::EditService(svc("rr"))),
        Err(ApplyError::NoSuchService)
    );
    assert_eq!(
        e.apply(Command::DeleteService(vip())),
        Err(ApplyError::NoSuchService)
    );
    assert_eq!(
        e.apply(Command::Zero(Some(vip()))),
        Err(ApplyError::NoSuchService)
    );
    assert_eq!(
        e.apply(Command::AddDest {
            service: vip(),
            dest: rs(11, FwdMethod::Masq, 1)
        }),
        Err(ApplyError::ServiceNotDefined)
    );
    assert_eq!(
        e.apply(Command::AddService(svc("nosuch"))),
        Err(ApplyError::SchedulerNotFound)
    );
    e.apply(Command::AddService(svc("rr"))).expect("add");
    assert_eq!(
        e.apply(Command::AddService(svc("wlc"))),
        Err(ApplyError::ServiceExists)
    );
    add_rs(&mut e, 11, 1);
    assert_eq!(
        e.apply(Command::AddDest {
            service: vip(),
            dest: rs(11, FwdMethod::Masq, 3)
        }),
        Err(ApplyError::DestExists)
    );
    assert_eq!(
        e.apply(Command::EditDest {
            service: vip(),
            dest: rs(99, FwdMethod::Masq, 3)
        }),
        Err(ApplyError::NoSuchDest)
    );
    assert_eq!(
        e.apply(Command::DeleteDest {
            service: vip(),
            addr: v4(203, 0, 113, 99),
            port: 80
        }),
        Err(ApplyError::NoSuchDest)
    );
    let mut bad = rs(12, FwdMethod::Masq, 1);
    bad.u_threshold = 10;
    bad.l_threshold = 100;
    assert_eq!(
        e.apply(Command::AddDest {
            service: vip(),
            dest: bad.clone()
        }),
        Err(ApplyError::OutOfRange)
    );
    bad.u_threshold = 0;
    bad.l_threshold = 5;
    assert_eq!(
        e.apply(Command::AddDest {
            service: vip(),
            dest: bad
        }),
        Err(ApplyError::OutOfRange),
        "-y without -x is out of range too"
    );
    assert_eq!(
        e.apply(Command::AddDest {
            service: vip(),
            dest: rs(12, FwdMethod::Masq, -1)
        }),
        Err(ApplyError::OutOfRange)
    );
    let v6 = DestConfig::new(
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
        80,
    );
    assert_eq!(
        e.apply(Command::AddDest {
            service: vip(),
            dest: DestConfig {
                fwd: FwdMethod::Masq,
                ..v6.clone()
            }
        }),
        Err(ApplyError::AddressFamily)
    );
    e.apply(Command::AddDest {
        service: vip(),
        dest: DestConfig {
            fwd: FwdMethod::Tunnel {
                kind: TunnelKind::Ipip,
                csum: TunnelCsum::NoCsum,
            },
            ..v6
        },
    })
    .expect("a tunnel may cross families");
    assert_eq!(
        e.apply(Command::AddDest {
            service: vip(),
            dest: rs(
                14,
                FwdMethod::Tunnel {
                    kind: TunnelKind::Gue { port: 0 },
                    csum: TunnelCsum::NoCsum
                },
                1
            )
        }),
        Err(ApplyError::Invalid)
    );
}

#[test]
fn failed_batch_changes_nothing_and_names_the_command() {
    let mut e = Engine::new();
    e.apply(Command::AddService(svc("rr"))).expect("add");
    add_rs(&mut e, 11, 1);
    let before = e.snapshot();
    let batch = vec![
        Command::AddDest {
            service: vip(),
            dest: rs(12, FwdMethod::Masq, 1),
        },
        Command::SetTimeouts {
            tcp: 100,
            tcpfin: 0,
            udp: 0,
        },
        Command::AddDest {
            service: vip(),
            dest: rs(11, FwdMethod::Masq, 1),
        },
    ];
    assert_eq!(e.apply_all(batch), Err((2, ApplyError::DestExists)));
    assert_eq!(e.snapshot(), before);
    assert_eq!(e.timeouts().tcp, 900);
}

#[test]
fn batch_sees_its_own_earlier_commands() {
    let mut e = Engine::new();
    let batch = vec![
        Command::AddService(svc("wrr")),
        Command::AddDest {
            service: vip(),
            dest: rs(11, FwdMethod::Masq, 3),
        },
        Command::DeleteDest {
            service: vip(),
            addr: v4(203, 0, 113, 11),
            port: 80,
        },
        Command::Clear,
        Command::AddService(svc("rr")),
    ];
    e.apply_all(batch).expect("valid batch");
    let snap = e.snapshot();
    assert_eq!(snap.services.len(), 1);
    assert_eq!(snap.services[0].config.scheduler, "rr");
    assert!(snap.services[0].dests.is_empty());
}

#[test]
fn dr_and_tunnel_ports_follow_the_service_port() {
    let mut e = Engine::new();
    e.apply(Command::AddService(svc("rr"))).expect("add");
    let mut d = rs(11, FwdMethod::Route, 1);
    d.port = 8080;
    e.apply(Command::AddDest {
        service: vip(),
        dest: d,
    })
    .expect("add");
    assert_eq!(e.snapshot().services[0].dests[0].config.port, 80);
}

#[test]
fn a_real_server_on_the_director_is_local() {
    let mut e = Engine::new();
    e.set_local_addrs([v4(127, 0, 0, 1)]);
    e.apply(Command::AddService(svc("rr"))).expect("add");
    e.apply(Command::AddDest {
        service: vip(),
        dest: DestConfig::new(v4(127, 0, 0, 1), 80),
    })
    .expect("add");
    assert_eq!(
        e.snapshot().services[0].dests[0].config.fwd,
        FwdMethod::Local
    );
}

#[test]
fn edit_service_keeps_dests_and_changes_scheduler() {
    let mut e = Engine::new();
    e.apply(Command::AddService(svc("rr"))).expect("add");
    add_rs(&mut e, 11, 1);
    let mut c = svc("wrr");
    c.persistent = Some(600);
    e.apply(Command::EditService(c)).expect("edit");
    let s = &e.snapshot().services[0];
    assert_eq!(s.config.scheduler, "wrr");
    assert_eq!(s.config.persistent, Some(600));
    assert_eq!(s.dests.len(), 1);
}

#[test]
fn knobs_and_timeouts() {
    let mut e = Engine::new();
    e.apply(Command::SetTimeouts {
        tcp: 100,
        tcpfin: 0,
        udp: 30,
    })
    .expect("set");
    let t = e.timeouts();
    assert_eq!((t.tcp, t.tcpfin, t.udp), (100, 120, 30));
    assert_eq!(
        e.apply(Command::SetKnob {
            name: "pmtu_disc".into(),
            value: 7
        }),
        Err(ApplyError::Invalid)
    );
    e.apply(Command::SetKnob {
        name: "expire_nodest_conn".into(),
        value: 1,
    })
    .expect("set");
    assert!(e.knobs().expire_nodest_conn);
}

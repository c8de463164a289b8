//! Pool behaviour: table commands on failure and recovery, inhibit, quorum
//! with hysteresis, the sorry server, operator overrides and reload. The
//! expected commands are written out by hand from keepalived's rules.

#![allow(clippy::unwrap_used)]

use rvs_core::{Command, DestConfig, FwdMethod, Protocol, ServiceKey};
use rvs_health::{
    CheckTiming, HealthEvent, Pool, PoolConfig, ProbeId, ProbeOutcome, ServerKey, ServerSpec,
    ServerState,
};
use std::net::IpAddr;
use std::time::Duration;

fn s(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn svc() -> ServiceKey {
    ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: "10.0.0.1".parse().unwrap(),
        port: 80,
    }
}

fn ip(last: u8) -> IpAddr {
    IpAddr::from([192, 168, 1, last])
}

fn dest(last: u8, weight: i32) -> DestConfig {
    let mut d = DestConfig::new(ip(last), 80);
    d.fwd = FwdMethod::Masq;
    d.weight = weight;
    d
}

fn key(last: u8) -> ServerKey {
    ServerKey {
        addr: ip(last),
        port: 80,
    }
}

/// delay_loop 10, no retries, rise = fall = 1.
fn quick() -> CheckTiming {
    CheckTiming {
        delay_loop: s(10),
        connect_timeout: s(1),
        retry: 0,
        delay_before_retry: s(1),
        rise: 1,
        fall: 1,
    }
}

fn spec(last: u8, weight: i32) -> ServerSpec<&'static str> {
    ServerSpec {
        dest: dest(last, weight),
        inhibit_on_failure: false,
        checks: vec![(quick(), "http")],
    }
}

fn id(last: u8) -> ProbeId {
    ProbeId {
        server: key(last),
        checker: 0,
    }
}

fn fail() -> ProbeOutcome {
    ProbeOutcome::fail("connection refused")
}

fn pass() -> ProbeOutcome {
    ProbeOutcome::pass("HTTP 200")
}

/// Start everything due at `now` and report `outcome` for `which` and a
/// pass for the others.
fn round(pool: &mut Pool<&'static str>, now: Duration, fails: &[u8]) -> Vec<HealthEvent> {
    let started = pool.start_due(now);
    let mut events = Vec::new();
    for (pid, _) in started {
        let failed = fails.iter().any(|l| key(*l) == pid.server);
        events.extend(pool.on_result(now, pid, if failed { fail() } else { pass() }));
    }
    events
}

fn del(last: u8) -> Command {
    Command::DeleteDest {
        service: svc(),
        addr: ip(last),
        port: 80,
    }
}

fn add(last: u8, weight: i32) -> Command {
    Command::AddDest {
        service: svc(),
        dest: dest(last, weight),
    }
}

fn edit(last: u8, weight: i32) -> Command {
    Command::EditDest {
        service: svc(),
        dest: dest(last, weight),
    }
}

#[test]
fn first_sync_adds_all_then_nothing() {
    let mut pool = Pool::new(PoolConfig::new(svc()), vec![spec(2, 3), spec(3, 1)], s(0));
    assert_eq!(pool.sync(), vec![add(2, 3), add(3, 1)]);
    assert_eq!(pool.sync(), vec![]);
}

#[test]
fn failure_removes_and_recovery_restores_weight() {
    let mut pool = Pool::new(PoolConfig::new(svc()), vec![spec(2, 3), spec(3, 1)], s(0));
    pool.sync();
    let ev = round(&mut pool, s(0), &[2]);
    assert_eq!(
        ev,
        vec![HealthEvent::ServerDown {
            service: svc(),
            server: key(2),
            reason: "connection refused".into()
        }]
    );
    assert_eq!(pool.sync(), vec![del(2)]);
    let ev = round(&mut pool, s(10), &[]);
    assert_eq!(
        ev,
        vec![HealthEvent::ServerUp {
            service: svc(),
            server: key(2),
            reason: "HTTP 200".into()
        }]
    );
    assert_eq!(pool.sync(), vec![add(2, 3)]);
    let st = pool.status();
    assert_eq!(st.servers[0].state, ServerState::Up);
    assert_eq!(st.servers[0].last_transition, Some(s(10)));
    assert_eq!(
        st.servers[0].last_result,
        Some(("HTTP 200".to_string(), s(10)))
    );
}

#[test]
fn inhibit_on_failure_sets_weight_zero() {
    let mut sp = spec(2, 3);
    sp.inhibit_on_failure = true;
    let mut pool = Pool::new(PoolConfig::new(svc()), vec![sp, spec(3, 1)], s(0));
    pool.sync();
    round(&mut pool, s(0), &[2]);
    assert_eq!(pool.sync(), vec![edit(2, 0)]);
    round(&mut pool, s(10), &[]);
    assert_eq!(pool.sync(), vec![edit(2, 3)]);
}

#[test]
fn all_checkers_must_pass() {
    let mut sp = spec(2, 1);
    sp.checks.push((quick(), "tcp"));
    let mut pool = Pool::new(PoolConfig::new(svc()), vec![sp], s(0));
    pool.sync();
    let started = pool.start_due(s(0));
    assert_eq!(started.len(), 2);
    assert_eq!(
        pool.on_result(
            s(0),
            ProbeId {
                server: key(2),
                checker: 0
            },
            pass()
        ),
        vec![]
    );
    let ev = pool.on_result(
        s(0),
        ProbeId {
            server: key(2),
            checker: 1,
        },
        fail(),
    );
    assert!(matches!(ev[0], HealthEvent::ServerDown { .. }));
    // The failing checker passes again: up.
    pool.start_due(s(10));
    assert_eq!(
        pool.on_result(
            s(10),
            ProbeId {
                server: key(2),
                checker: 0
            },
            pass()
        ),
        vec![]
    );
    let ev = pool.on_result(
        s(10),
        ProbeId {
            server: key(2),
            checker: 1,
        },
        pass(),
    );
    assert!(matches!(ev[0], HealthEvent::ServerUp { .. }));
}

fn sorry_dest() -> DestConfig {
    let mut d = DestConfig::new("127.0.0.1".parse().unwrap(), 80);
    d.fwd = FwdMethod::Masq;
    d
}

#[test]
fn sorry_server_when_all_down_and_back() {
    let mut cfg = PoolConfig::new(svc());
    cfg.sorry = Some(sorry_dest());
    let mut pool = Pool::new(cfg, vec![spec(2, 1), spec(3, 1)], s(0));
    assert_eq!(pool.sync(), vec![add(2, 1), add(3, 1)]);
    round(&mut pool, s(0), &[2]);
    assert_eq!(pool.sync(), vec![del(2)]);
    let ev = round(&mut pool, s(10), &[2, 3]);
    assert!(ev.contains(&HealthEvent::QuorumLost {
        service: svc(),
        weight_sum: 0
    }));
    assert_eq!(
        pool.sync(),
        vec![
            del(3),
            Command::AddDest {
                service: svc(),
                dest: sorry_dest()
            }
        ]
    );
    let ev = round(&mut pool, s(20), &[2]);
    assert!(ev.contains(&HealthEvent::QuorumGained {
        service: svc(),
        weight_sum: 1
    }));
    assert_eq!(
        pool.sync(),
        vec![
            Command::DeleteDest {
                service: svc(),
                addr: "127.0.0.1".parse().unwrap(),
                port: 80
            },
            add(3, 1)
        ]
    );
}

#[test]
fn quorum_with_hysteresis() {
    // Weights 1, 2, 4 (sum 7); quorum 4, hysteresis 1: lost when sum < 3
    // or 0, regained when sum >= 5.
    let mut cfg = PoolConfig::new(svc());
    cfg.quorum = 4;
    cfg.hysteresis = 1;
    cfg.sorry = Some(sorry_dest());
    let mut pool = Pool::new(cfg, vec![spec(1, 1), spec(2, 2), spec(4, 4)], s(0));
    assert!(pool.quorum_up());
    pool.sync();
    // 4 down: sum 3, not < 3: quorum holds.
    let ev = round(&mut pool, s(0), &[4]);
    assert!(!ev
        .iter()
        .any(|e| matches!(e, HealthEvent::QuorumLost { .. })));
    assert!(pool.quorum_up());
    assert_eq!(pool.sync(), vec![del(4)]);
    // 1 down too: sum 2 < 3: lost; 2 leaves, sorry comes.
    let ev = round(&mut pool, s(10), &[1, 4]);
    assert!(ev.contains(&HealthEvent::QuorumLost {
        service: svc(),
        weight_sum: 2
    }));
    assert_eq!(
        pool.sync(),
        vec![
            del(1),
            del(2),
            Command::AddDest {
                service: svc(),
                dest: sorry_dest()
            }
        ]
    );
    // 4 back, 2 down: sum 4, below 5: still lost.
    let ev = round(&mut pool, s(20), &[1, 2]);
    assert!(!ev
        .iter()
        .any(|e| matches!(e, HealthEvent::QuorumGained { .. })));
    assert!(!pool.quorum_up());
    assert_eq!(pool.sync(), vec![]);
    // 1 back as well: sum 5 >= 5: regained.
    let ev = round(&mut pool, s(30), &[2]);
    assert!(ev.contains(&HealthEvent::QuorumGained {
        service: svc(),
        weight_sum: 5
    }));
    assert_eq!(
        pool.sync(),
        vec![
            Command::DeleteDest {
                service: svc(),
                addr: "127.0.0.1".parse().unwrap(),
                port: 80
            },
            add(1, 1),
            add(4, 4)
        ]
    );
}

#[test]
fn quorum_lost_without_sorry_keeps_live_servers() {
    let mut cfg = PoolConfig::new(svc());
    cfg.quorum = 3;
    let mut pool = Pool::new(cfg, vec![spec(1, 1), spec(2, 2)], s(0));
    pool.sync();
    let ev = round(&mut pool, s(0), &[2]);
    assert!(ev.contains(&HealthEvent::QuorumLost {
        service: svc(),
        weight_sum: 1
    }));
    assert_eq!(pool.sync(), vec![del(2)]);
}

#[test]
fn sorry_inhibit_keeps_sorry_at_weight_zero() {
    let mut cfg = PoolConfig::new(svc());
    cfg.sorry = Some(sorry_dest());
    cfg.sorry_inhibit = true;
    let mut pool = Pool::new(cfg, vec![spec(2, 1)], s(0));
    let mut zero = sorry_dest();
    zero.weight = 0;
    assert_eq!(
        pool.sync(),
        vec![
            Command::AddDest {
                service: svc(),
                dest: zero
            },
            add(2, 1)
        ]
    );
    round(&mut pool, s(0), &[2]);
    assert_eq!(
        pool.sync(),
        vec![
            del(2),
            Command::EditDest {
                service: svc(),
                dest: sorry_dest()
            }
        ]
    );
}

#[test]
fn alpha_starts_down_with_sorry() {
    let mut cfg = PoolConfig::new(svc());
    cfg.alpha = true;
    cfg.sorry = Some(sorry_dest());
    let mut pool = Pool::new(cfg, vec![spec(2, 1)], s(0));
    assert!(!pool.quorum_up());
    assert_eq!(
        pool.sync(),
        vec![Command::AddDest {
            service: svc(),
            dest: sorry_dest()
        }]
    );
    round(&mut pool, s(0), &[]);
    assert_eq!(
        pool.sync(),
        vec![
            Command::DeleteDest {
                service: svc(),
                addr: "127.0.0.1".parse().unwrap(),
                port: 80
            },
            add(2, 1)
        ]
    );
}

#[test]
fn dynamic_weight_changes_the_entry() {
    let mut pool = Pool::new(PoolConfig::new(svc()), vec![spec(2, 3)], s(0));
    pool.sync();
    pool.start_due(s(0));
    pool.on_result(
        s(0),
        id(2),
        ProbeOutcome::Pass {
            weight: Some(7),
            detail: "exit status 9".into(),
        },
    );
    assert_eq!(pool.sync(), vec![edit(2, 7)]);
}

#[test]
fn operator_override_is_not_fought() {
    let mut pool = Pool::new(PoolConfig::new(svc()), vec![spec(2, 1), spec(3, 1)], s(0));
    pool.sync();
    // The operator deletes 2 by hand (ipvsadm -d); checks keep passing.
    let live = vec![dest(3, 1)];
    let ev = pool.observe(Some(&live));
    assert_eq!(
        ev,
        vec![HealthEvent::OverrideDetected {
            service: svc(),
            server: key(2)
        }]
    );
    round(&mut pool, s(0), &[]);
    assert_eq!(pool.sync(), vec![]);
    assert!(pool.status().servers[0].overridden);
    // 3 fails: the checker still manages it.
    round(&mut pool, s(10), &[3]);
    assert_eq!(pool.sync(), vec![del(3)]);
    // The operator hands 2 back: it is re-added.
    assert!(pool.clear_override(&key(2), None, s(20)));
    assert_eq!(pool.sync(), vec![add(2, 1)]);
    // An operator weight edit is also an override.
    let live = vec![dest(2, 5)];
    assert_eq!(pool.observe(Some(&live)).len(), 1);
    assert_eq!(pool.sync(), vec![]);
}

#[test]
fn reconfigure_touches_only_changes() {
    let mut pool = Pool::new(
        PoolConfig::new(svc()),
        vec![spec(2, 1), spec(3, 1), spec(4, 1)],
        s(0),
    );
    pool.sync();
    round(&mut pool, s(0), &[4]);
    pool.sync();
    // New file: 2 unchanged, 3 weight 5, 4 (down) kept, 5 new, 2.. no 6.
    pool.reconfigure(
        PoolConfig::new(svc()),
        vec![spec(2, 1), spec(3, 5), spec(4, 1), spec(5, 1)],
        s(5),
    );
    assert_eq!(pool.sync(), vec![edit(3, 5), add(5, 1)]);
    // 4 is still down: not re-added by the reload.
    assert_eq!(pool.status().servers[2].state, ServerState::Down);
    // Remove 3.
    pool.reconfigure(
        PoolConfig::new(svc()),
        vec![spec(2, 1), spec(4, 1), spec(5, 1)],
        s(6),
    );
    assert_eq!(pool.sync(), vec![del(3)]);
}

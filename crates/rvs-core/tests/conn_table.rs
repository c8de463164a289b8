//! Connection table: lookups from both sides, stale ids, templates and
//! control links (re-arm while controlling, assured, drop chain,
//! invalidation), timer order, table-full, port reuse and listing rows.

use rvs_core::conn::{
    fwmark_vaddr, reuse_decision, Conn, ConnId, ConnState, ConnTable, ConnTableConfig, Direction,
    EngineTime, InKey, InsertError, NewConn, OutKey, ReuseAction, ReuseKnobs, StateTimeouts,
    TcpFlags, TcpState,
};
use rvs_core::snapshot::ConnProtocol;
use rvs_core::{DestId, FwdMethod};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn ip(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

const CIP: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2));
const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 10));
const RIP1: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 11));
const RIP2: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 12));

fn key(protocol: ConnProtocol, cport: u16) -> InKey {
    InKey {
        protocol,
        caddr: CIP,
        cport,
        vaddr: VIP,
        vport: 80,
    }
}

fn tcp_conn(cport: u16, rip: IpAddr, dest: u64, fwd: FwdMethod) -> NewConn {
    NewConn::connection(
        key(ConnProtocol::Tcp, cport),
        rip,
        80,
        Some(DestId(dest)),
        fwd,
    )
}

fn template_key() -> InKey {
    key(ConnProtocol::Tcp, 0)
}

fn secs(s: u64) -> EngineTime {
    EngineTime::from_secs(s)
}

#[test]
fn lookups_from_both_sides() {
    let mut t = ConnTable::default();
    let id = t
        .insert(tcp_conn(41000, RIP1, 1, FwdMethod::Masq), secs(0))
        .expect("insert");
    assert_eq!(t.len(), 1);
    assert_eq!(t.lookup_in(&key(ConnProtocol::Tcp, 41000)), Some(id));
    assert_eq!(t.lookup_in(&key(ConnProtocol::Tcp, 41001)), None);
    assert_eq!(t.lookup_in(&key(ConnProtocol::Udp, 41000)), None);
    let out = OutKey {
        protocol: ConnProtocol::Tcp,
        daddr: RIP1,
        dport: 80,
        caddr: CIP,
        cport: 41000,
    };
    assert_eq!(t.lookup_out(&out), Some(id));
    assert_eq!(t.lookup_out(&OutKey { daddr: RIP2, ..out }), None);
    // A connection is not a template and vice versa.
    assert_eq!(t.lookup_template(&key(ConnProtocol::Tcp, 41000)), None);
    let c = t.get(id).expect("conn");
    assert_eq!(
        (
            c.caddr(),
            c.cport(),
            c.vaddr(),
            c.vport(),
            c.daddr(),
            c.dport()
        ),
        (CIP, 41000, VIP, 80, RIP1, 80)
    );
    assert_eq!(c.dest(), Some(DestId(1)));
    assert_eq!(c.fwd(), FwdMethod::Masq);
}

#[test]
fn ipv6_keys() {
    let mut t = ConnTable::default();
    let c6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2));
    let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 10));
    let r6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 11));
    let k = InKey {
        protocol: ConnProtocol::Tcp,
        caddr: c6,
        cport: 5555,
        vaddr: v6,
        vport: 443,
    };
    let id = t
        .insert(
            NewConn::connection(k, r6, 8443, Some(DestId(9)), FwdMethod::Masq),
            secs(0),
        )
        .expect("insert");
    assert_eq!(t.lookup_in(&k), Some(id));
    let out = OutKey {
        protocol: ConnProtocol::Tcp,
        daddr: r6,
        dport: 8443,
        caddr: c6,
        cport: 5555,
    };
    assert_eq!(t.lookup_out(&out), Some(id));
}

#[test]
fn stale_ids_never_resolve() {
    let mut t = ConnTable::default();
    let a = t
        .insert(tcp_conn(1, RIP1, 1, FwdMethod::Masq), secs(0))
        .expect("insert");
    let removed = t.remove(a).expect("removed");
    assert_eq!(removed.id, a);
    assert_eq!(removed.conn.cport(), 1);
    assert!(t.get(a).is_none());
    assert!(t.remove(a).is_none());
    // The slot is reused with a new generation.
    let b = t
        .insert(tcp_conn(2, RIP1, 1, FwdMethod::Masq), secs(0))
        .expect("insert");
    assert_eq!(b.slot(), a.slot());
    assert_ne!(b, a);
    assert!(t.get(a).is_none());
    assert_eq!(t.get(b).map(Conn::cport), Some(2));
    assert_eq!(t.lookup_in(&key(ConnProtocol::Tcp, 1)), None);
    assert_eq!(t.stats().removed, 1);
    assert_eq!(t.stats().inserted, 2);
}

#[test]
fn table_full_is_an_error_and_counted() {
    let mut t = ConnTable::new(ConnTableConfig {
        max_entries: 2,
        hash_seed: 7,
    });
    let a = t
        .insert(tcp_conn(1, RIP1, 1, FwdMethod::Masq), secs(0))
        .expect("1");
    t.insert(tcp_conn(2, RIP1, 1, FwdMethod::Masq), secs(0))
        .expect("2");
    let err = t.insert(tcp_conn(3, RIP1, 1, FwdMethod::Masq), secs(0));
    assert_eq!(err, Err(InsertError::TableFull { limit: 2 }));
    assert_eq!(
        t.insert(tcp_conn(4, RIP1, 1, FwdMethod::Masq), secs(0)),
        Err(InsertError::TableFull { limit: 2 })
    );
    assert_eq!(t.stats().table_full, 2);
    assert_eq!(t.len(), 2);
    assert_eq!(
        err.map_err(|e| e.to_string()),
        Err("connection table full (2 entries)".to_string())
    );
    t.remove(a);
    assert!(t
        .insert(tcp_conn(3, RIP1, 1, FwdMethod::Masq), secs(0))
        .is_ok());
}

#[test]
fn expiry_order_with_refresh_and_shortening() {
    let mut t = ConnTable::default();
    let to = StateTimeouts::default();
    let mk = |cport, timeout| {
        let mut n = tcp_conn(cport, RIP1, 1, FwdMethod::Masq);
        n.timeout_secs = timeout;
        n
    };
    let a = t.insert(mk(1, 10), secs(0)).expect("a"); // due 10
    let b = t.insert(mk(2, 20), secs(0)).expect("b"); // due 20
    let c = t.insert(mk(3, 30), secs(0)).expect("c"); // due 30
    assert_eq!(t.poll_timeout(), Some(secs(10)));
    // Refresh a at 5 s: due 15.
    t.touch(a, secs(5));
    assert_eq!(t.poll_timeout(), Some(secs(15)));
    // c: SYN then ACK at 6 s -> ESTABLISHED, due 906; then FIN at 7 s from
    // the client (NAT) -> CLOSE_WAIT (60 s), due 67.
    t.process_tcp(c, Direction::Input, TcpFlags(TcpFlags::SYN), secs(6), &to);
    t.process_tcp(c, Direction::Input, TcpFlags(TcpFlags::ACK), secs(6), &to);
    assert_eq!(t.get(c).map(Conn::expires), Some(secs(906)));
    // Then a client RST at 7 s -> CLOSE (10 s), due 17: shorter than b.
    t.process_tcp(c, Direction::Input, TcpFlags(TcpFlags::RST), secs(7), &to);
    assert_eq!(t.get(c).map(Conn::expires), Some(secs(17)));

    let mut order = Vec::new();
    while let Some(at) = t.poll_timeout() {
        for r in t.handle_timeout(at) {
            order.push((r.id, at));
        }
    }
    assert_eq!(order, [(a, secs(15)), (c, secs(17)), (b, secs(20))]);
    assert!(t.is_empty());
    assert_eq!(t.stats().expired, 3);
    // Nothing fires early.
    let d = t.insert(mk(4, 10), secs(100)).expect("d");
    assert!(t
        .handle_timeout(EngineTime::from_millis(109_999))
        .is_empty());
    assert_eq!(
        t.handle_timeout(secs(110))
            .iter()
            .map(|r| r.id)
            .collect::<Vec<_>>(),
        [d]
    );
}

#[test]
fn frequent_refresh_keeps_timer_queue_small() {
    let mut t = ConnTable::default();
    let id = t
        .insert(tcp_conn(1, RIP1, 1, FwdMethod::Masq), secs(0))
        .expect("insert");
    for ms in 0..10_000u64 {
        t.touch(id, EngineTime::from_millis(ms));
    }
    // Later deadlines never push: still the one original item.
    assert_eq!(t.timer_queue_len(), 1);
    assert_eq!(
        t.poll_timeout(),
        Some(EngineTime::from_millis(9_999 + 3_000))
    );
    assert_eq!(t.timer_queue_len(), 1);
}

/// A persistent TCP service: template (360 s) + one connection that
/// reaches ESTABLISHED (900 s). The template is re-armed for 60 s every
/// time it comes due while it still controls the connection, and freed at
/// the first firing after the connection is gone.
#[test]
fn template_rearmed_while_controlling() {
    let mut t = ConnTable::default();
    let to = StateTimeouts::default();
    let tpl = t
        .insert(
            NewConn::template(
                template_key(),
                RIP2,
                80,
                Some(DestId(2)),
                FwdMethod::Masq,
                360,
            ),
            secs(0),
        )
        .expect("template");
    assert_eq!(t.lookup_template(&template_key()), Some(tpl));
    assert_eq!(t.get(tpl).map(|c| c.state().name()), Some("NONE"));
    let conn = t
        .insert(
            tcp_conn(40000, RIP2, 2, FwdMethod::Masq).with_control(tpl),
            secs(1),
        )
        .expect("conn");
    assert_eq!(t.get(tpl).map(Conn::n_control), Some(1));
    assert_eq!(t.get(conn).and_then(Conn::control), Some(tpl));
    t.process_tcp(
        conn,
        Direction::Input,
        TcpFlags(TcpFlags::SYN),
        secs(1),
        &to,
    );
    assert_eq!(t.get(tpl).map(|c| c.state().name()), Some("NONE"));
    t.process_tcp(
        conn,
        Direction::Input,
        TcpFlags(TcpFlags::ACK),
        secs(1),
        &to,
    );
    assert_eq!(
        t.get(tpl).map(Conn::state),
        Some(ConnState::Template { assured: true })
    );
    assert_eq!(t.get(tpl).map(|c| c.state().name()), Some("ASSURED"));

    let mut events = Vec::new();
    while let Some(at) = t.poll_timeout() {
        for r in t.handle_timeout(at) {
            events.push((r.id, at.as_millis() / 1000));
        }
    }
    assert_eq!(events, [(conn, 901), (tpl, 960)]);
    // Re-armed at 360, 420, ..., 900.
    assert_eq!(t.stats().control_rearms, 10);
}

/// One listing row: protocol, client, virtual, real server, state,
/// expires (ms), template.
type Row<'a> = (
    &'a str,
    String,
    u16,
    String,
    u16,
    String,
    u16,
    &'a str,
    u64,
    bool,
);

#[test]
fn snapshot_rows_for_templates_and_conns() {
    let mut t = ConnTable::default();
    let to = StateTimeouts::default();
    let now = secs(1000);
    let tpl = t
        .insert(
            NewConn::template(
                template_key(),
                RIP2,
                80,
                Some(DestId(2)),
                FwdMethod::Masq,
                600,
            ),
            now,
        )
        .expect("template");
    let c = t
        .insert(
            tcp_conn(47606, RIP2, 2, FwdMethod::Masq).with_control(tpl),
            now,
        )
        .expect("conn");
    t.process_tcp(c, Direction::Input, TcpFlags(TcpFlags::SYN), now, &to);
    t.process_tcp(c, Direction::Input, TcpFlags(TcpFlags::ACK), now, &to);
    let fw = InKey {
        protocol: ConnProtocol::Ip,
        caddr: CIP,
        cport: 0,
        vaddr: fwmark_vaddr(1),
        vport: 0,
    };
    t.insert(
        NewConn::template(fw, RIP1, 0, Some(DestId(1)), FwdMethod::Route, 300).with_fwmark(1),
        now,
    )
    .expect("fwmark template");
    let rows = t.snapshot(now.add_millis(1500));
    let view: Vec<Row> = rows
        .iter()
        .map(|r| {
            (
                r.protocol.name(),
                r.caddr.to_string(),
                r.cport,
                r.vaddr.to_string(),
                r.vport,
                r.daddr.to_string(),
                r.dport,
                r.state.as_str(),
                r.expires_ms,
                r.is_template,
            )
        })
        .collect();
    assert_eq!(
        view,
        [
            (
                "TCP",
                "198.51.100.2".into(),
                0,
                "198.51.100.10".into(),
                80,
                "203.0.113.12".into(),
                80,
                "ASSURED",
                598_500,
                true
            ),
            (
                "TCP",
                "198.51.100.2".into(),
                47606,
                "198.51.100.10".into(),
                80,
                "203.0.113.12".into(),
                80,
                "ESTABLISHED",
                898_500,
                false
            ),
            (
                "IP",
                "198.51.100.2".into(),
                0,
                "0.0.0.1".into(),
                0,
                "203.0.113.11".into(),
                0,
                "NONE",
                298_500,
                true
            ),
        ]
    );
}

#[test]
fn drop_chain_frees_unassured_template_but_keeps_assured() {
    let mut t = ConnTable::default();
    let to = StateTimeouts::default();
    let now = secs(0);
    // Unassured: the conn never got past SYN.
    let tpl = t
        .insert(
            NewConn::template(
                template_key(),
                RIP1,
                80,
                Some(DestId(1)),
                FwdMethod::Masq,
                360,
            ),
            now,
        )
        .expect("t");
    let c = t
        .insert(tcp_conn(1, RIP1, 1, FwdMethod::Masq).with_control(tpl), now)
        .expect("c");
    t.process_tcp(c, Direction::Input, TcpFlags(TcpFlags::SYN), now, &to);
    // Dropping the template itself while it controls c only makes it due.
    assert!(t.drop_chain(tpl, now).is_empty());
    let freed: Vec<ConnId> = t.drop_chain(c, now).iter().map(|r| r.id).collect();
    assert_eq!(freed, [c, tpl]);
    assert!(t.is_empty());

    // Assured: the template stays.
    let tpl = t
        .insert(
            NewConn::template(
                template_key(),
                RIP1,
                80,
                Some(DestId(1)),
                FwdMethod::Masq,
                360,
            ),
            now,
        )
        .expect("t");
    let c = t
        .insert(tcp_conn(2, RIP1, 1, FwdMethod::Masq).with_control(tpl), now)
        .expect("c");
    t.process_tcp(c, Direction::Input, TcpFlags(TcpFlags::SYN), now, &to);
    t.process_tcp(c, Direction::Input, TcpFlags(TcpFlags::ACK), now, &to);
    let freed: Vec<ConnId> = t.drop_chain(c, now).iter().map(|r| r.id).collect();
    assert_eq!(freed, [c]);
    assert_eq!(t.get(tpl).map(Conn::n_control), Some(0));
}

#[test]
fn invalidated_template_is_not_found_and_shows_port_65535() {
    let mut t = ConnTable::default();
    let now = secs(0);
    let old = t
        .insert(
            NewConn::template(
                template_key(),
                RIP1,
                80,
                Some(DestId(1)),
                FwdMethod::Masq,
                360,
            ),
            now,
        )
        .expect("t");
    assert!(t.invalidate_template(old));
    assert_eq!(t.lookup_template(&template_key()), None);
    assert_eq!(t.get(old).map(Conn::dport), Some(65535));
    let new = t
        .insert(
            NewConn::template(
                template_key(),
                RIP2,
                80,
                Some(DestId(2)),
                FwdMethod::Masq,
                360,
            ),
            now,
        )
        .expect("t2");
    assert_eq!(t.lookup_template(&template_key()), Some(new));
    // The old one still lists until its timer fires.
    assert_eq!(t.len(), 2);
    let gone: Vec<ConnId> = t.handle_timeout(secs(360)).iter().map(|r| r.id).collect();
    assert_eq!(gone, [old, new]);
    // Non-templates cannot be invalidated.
    let c = t
        .insert(tcp_conn(1, RIP1, 1, FwdMethod::Masq), now)
        .expect("c");
    assert!(!t.invalidate_template(c));
}

#[test]
fn removing_a_template_unlinks_its_connections() {
    let mut t = ConnTable::default();
    let now = secs(0);
    let tpl = t
        .insert(
            NewConn::template(
                template_key(),
                RIP1,
                80,
                Some(DestId(1)),
                FwdMethod::Masq,
                360,
            ),
            now,
        )
        .expect("t");
    let c = t
        .insert(tcp_conn(1, RIP1, 1, FwdMethod::Masq).with_control(tpl), now)
        .expect("c");
    t.remove(tpl).expect("removed");
    assert_eq!(t.get(c).and_then(Conn::control), None);
    assert_eq!(
        t.insert(tcp_conn(2, RIP1, 1, FwdMethod::Masq).with_control(tpl), now),
        Err(InsertError::NoSuchControl(tpl))
    );
}

#[test]
fn port_reuse_on_time_wait_reschedules_and_shadows() {
    let mut t = ConnTable::default();
    let to = StateTimeouts::default();
    let knobs = ReuseKnobs::default();
    let now = secs(10);
    let old = t
        .insert(tcp_conn(40000, RIP1, 1, FwdMethod::Masq), now)
        .expect("old");
    let syn = TcpFlags(TcpFlags::SYN);
    // Live connection: a SYN keeps it.
    t.process_tcp(old, Direction::Input, syn, now, &to);
    t.process_tcp(old, Direction::Input, TcpFlags(TcpFlags::ACK), now, &to);
    let c = t.get(old).expect("old");
    assert_eq!(reuse_decision(c, Some(1), &knobs, false), ReuseAction::Keep);
    // expire_nodest_conn with weight 0 reschedules even an established one.
    let nodest = ReuseKnobs {
        expire_nodest_conn: true,
        ..knobs
    };
    assert_eq!(
        reuse_decision(c, Some(0), &nodest, false),
        ReuseAction::Reschedule { expire_old: true }
    );
    assert_eq!(
        reuse_decision(c, Some(0), &nodest, true),
        ReuseAction::DropPacket
    );
    // Close it: client FIN, server FIN -> TIME_WAIT.
    t.process_tcp(
        old,
        Direction::Input,
        TcpFlags(TcpFlags::FIN | TcpFlags::ACK),
        now,
        &to,
    );
    t.process_tcp(
        old,
        Direction::Output,
        TcpFlags(TcpFlags::FIN | TcpFlags::ACK),
        now,
        &to,
    );
    let c = t.get(old).expect("old");
    assert_eq!(c.state(), ConnState::Tcp(TcpState::TimeWait));
    assert_eq!(
        reuse_decision(c, Some(1), &knobs, false),
        ReuseAction::Reschedule { expire_old: true }
    );
    let off = ReuseKnobs {
        conn_reuse_mode: 0,
        ..knobs
    };
    assert_eq!(reuse_decision(c, Some(1), &off, false), ReuseAction::Keep);

    // The engine expires the old one and inserts the new one.
    assert!(t.expire_now(old, now));
    let new = t
        .insert(tcp_conn(40000, RIP2, 2, FwdMethod::Masq), now)
        .expect("new");
    assert_eq!(t.lookup_in(&key(ConnProtocol::Tcp, 40000)), Some(new));
    assert_eq!(t.stats().shadowed, 1);
    let gone: Vec<ConnId> = t.handle_timeout(now).iter().map(|r| r.id).collect();
    assert_eq!(gone, [old]);
    assert_eq!(t.lookup_in(&key(ConnProtocol::Tcp, 40000)), Some(new));
    assert_eq!(t.len(), 1);
}

#[test]
fn port_reuse_fin_wait_needs_mode_bit_2_and_input_only() {
    let mut t = ConnTable::default();
    let to = StateTimeouts::default();
    let now = secs(0);
    let dr = t
        .insert(tcp_conn(1, RIP1, 1, FwdMethod::Route), now)
        .expect("dr");
    for f in [TcpFlags::SYN, TcpFlags::ACK, TcpFlags::FIN | TcpFlags::ACK] {
        t.process_tcp(dr, Direction::Input, TcpFlags(f), now, &to);
    }
    let c = t.get(dr).expect("dr");
    assert_eq!(c.state().name(), "FIN_WAIT");
    let mode1 = ReuseKnobs::default();
    let mode3 = ReuseKnobs {
        conn_reuse_mode: 3,
        ..mode1
    };
    assert_eq!(reuse_decision(c, Some(1), &mode1, false), ReuseAction::Keep);
    assert_eq!(
        reuse_decision(c, Some(1), &mode3, false),
        ReuseAction::Reschedule { expire_old: true }
    );

    // A NAT conn in FIN_WAIT has seen output: never reused.
    let nat = t
        .insert(tcp_conn(2, RIP1, 1, FwdMethod::Masq), now)
        .expect("nat");
    t.process_tcp(nat, Direction::Input, TcpFlags(TcpFlags::SYN), now, &to);
    t.process_tcp(nat, Direction::Input, TcpFlags(TcpFlags::ACK), now, &to);
    t.process_tcp(
        nat,
        Direction::Output,
        TcpFlags(TcpFlags::FIN | TcpFlags::ACK),
        now,
        &to,
    );
    let c = t.get(nat).expect("nat");
    assert_eq!(c.state().name(), "FIN_WAIT");
    assert_eq!(reuse_decision(c, Some(1), &mode3, false), ReuseAction::Keep);

    // A persistent (controlled) conn in TIME_WAIT is kept.
    let tpl = t
        .insert(
            NewConn::template(
                template_key(),
                RIP1,
                80,
                Some(DestId(1)),
                FwdMethod::Masq,
                360,
            ),
            now,
        )
        .expect("t");
    let pc = t
        .insert(tcp_conn(3, RIP1, 1, FwdMethod::Masq).with_control(tpl), now)
        .expect("pc");
    t.set_state(pc, ConnState::Tcp(TcpState::TimeWait), now, &to);
    let c = t.get(pc).expect("pc");
    assert_eq!(reuse_decision(c, Some(1), &mode1, false), ReuseAction::Keep);
}

#[test]
fn udp_one_state_never_active_and_assures_on_reply() {
    let mut t = ConnTable::default();
    let mut to = StateTimeouts::default();
    let now = secs(0);
    let tpl = t
        .insert(
            NewConn::template(
                key(ConnProtocol::Udp, 0),
                RIP1,
                53,
                Some(DestId(1)),
                FwdMethod::Masq,
                360,
            ),
            now,
        )
        .expect("t");
    let id = t
        .insert(
            NewConn::connection(
                key(ConnProtocol::Udp, 5353),
                RIP1,
                53,
                Some(DestId(1)),
                FwdMethod::Masq,
            )
            .with_control(tpl),
            now,
        )
        .expect("udp");
    assert_eq!(t.get(id).map(|c| c.state().name()), Some("UDP"));
    let ch = t
        .process_udp(id, Direction::Input, secs(1), &to)
        .expect("live");
    assert!(!ch.was_active && !ch.now_active);
    assert_eq!(t.get(id).map(|c| c.expires_in(secs(1))), Some(300_000));
    assert_eq!(t.get(tpl).map(|c| c.state().name()), Some("NONE"));
    to.udp = 60;
    let ch = t
        .process_udp(id, Direction::Output, secs(2), &to)
        .expect("live");
    assert!(!ch.now_active);
    assert!(t.get(id).is_some_and(Conn::is_inactive));
    assert_eq!(t.get(id).map(|c| c.expires_in(secs(2))), Some(60_000));
    assert_eq!(t.get(tpl).map(|c| c.state().name()), Some("ASSURED"));
    assert_eq!(t.count_for_dest(DestId(1)), (0, 1, 1));
}

#[test]
fn random_ops_match_a_model() {
    // Deterministic LCG; the table must agree with a HashMap model.
    let mut t = ConnTable::new(ConnTableConfig {
        max_entries: 10_000,
        hash_seed: 42,
    });
    let mut model: HashMap<u16, ConnId> = HashMap::new();
    let mut x: u64 = 0x1234_5678;
    for _ in 0..20_000 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let port = ((x >> 33) % 600) as u16;
        let k = key(ConnProtocol::Tcp, port);
        if (x >> 20).is_multiple_of(3) {
            if let Some(id) = model.remove(&port) {
                assert!(t.remove(id).is_some());
            }
        } else if let std::collections::hash_map::Entry::Vacant(e) = model.entry(port) {
            let id = t
                .insert(tcp_conn(port, RIP1, 1, FwdMethod::Masq), secs(0))
                .expect("insert");
            e.insert(id);
        }
        assert_eq!(t.lookup_in(&k), model.get(&port).copied(), "port {port}");
    }
    assert_eq!(t.len(), model.len());
    assert_eq!(t.indexed(), (model.len(), model.len()));
    for (port, id) in &model {
        assert_eq!(t.lookup_in(&key(ConnProtocol::Tcp, *port)), Some(*id));
        let out = OutKey {
            protocol: ConnProtocol::Tcp,
            daddr: RIP1,
            dport: 80,
            caddr: CIP,
            cport: *port,
        };
        assert_eq!(t.lookup_out(&out), Some(*id));
    }
}

#[test]
fn entry_size_bound() {
    let size = std::mem::size_of::<Conn>();
    println!("size_of::<Conn>() = {size}");
    assert!(size < 256, "Conn is {size} bytes");
    assert!(size <= 160, "Conn grew to {size} bytes");
}

#[test]
fn hash_seed_does_not_change_results() {
    for seed in [0, 1, u64::MAX] {
        let mut t = ConnTable::new(ConnTableConfig {
            max_entries: 100,
            hash_seed: seed,
        });
        let id = t
            .insert(tcp_conn(9, ip(10, 1, 1, 1), 1, FwdMethod::Masq), secs(0))
            .expect("insert");
        assert_eq!(t.lookup_in(&key(ConnProtocol::Tcp, 9)), Some(id));
    }
}

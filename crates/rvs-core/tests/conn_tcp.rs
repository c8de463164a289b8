//! TCP state machine: table cells, whole close sequences (NAT, DR, RST),
//! timeouts and ActiveConn/InActConn after every packet. Expected values
//! were worked out by hand from the kernel's `tcp_states` table and checked
//! against the real 6.1 kernel captures (NAT ends in TIME_WAIT, DR in
//! FIN_WAIT; 4 short NAT requests over rr leave each server 0 active /
//! 2 inactive).

use rvs_core::conn::{
    tcp_transition, tcp_transition_with, ConnState, ConnTable, Direction, EngineTime, InKey,
    NewConn, StateTimeouts, TcpFlags, TcpState, TcpTable,
};
use rvs_core::snapshot::{ConnProtocol, Timeouts};
use rvs_core::{DestId, FwdMethod};
use std::net::{IpAddr, Ipv4Addr};

const SYN: u8 = TcpFlags::SYN;
const ACK: u8 = TcpFlags::ACK;
const FIN: u8 = TcpFlags::FIN;
const RST: u8 = TcpFlags::RST;
const PSH: u8 = TcpFlags::PSH;

fn ip(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn client_key(cport: u16) -> InKey {
    InKey {
        protocol: ConnProtocol::Tcp,
        caddr: ip(198, 51, 100, 2),
        cport,
        vaddr: ip(198, 51, 100, 10),
        vport: 80,
    }
}

/// Parse a row written with the kernel's abbreviations.
fn row(s: &str) -> Vec<TcpState> {
    s.split(',')
        .map(|t| match t.trim() {
            "sNO" => TcpState::None,
            "sES" => TcpState::Established,
            "sSS" => TcpState::SynSent,
            "sSR" => TcpState::SynRecv,
            "sFW" => TcpState::FinWait,
            "sTW" => TcpState::TimeWait,
            "sCL" => TcpState::Close,
            "sCW" => TcpState::CloseWait,
            "sLA" => TcpState::LastAck,
            "sLI" => TcpState::Listen,
            "sSA" => TcpState::Synack,
            other => panic!("bad token {other}"),
        })
        .collect()
}

fn check_block(table: TcpTable, dir: Direction, rows: [&str; 4]) {
    let flags = [SYN, FIN, ACK, RST];
    for (r, f) in rows.iter().zip(flags) {
        let want = row(r);
        for (from, to) in TcpState::ALL.iter().zip(want) {
            assert_eq!(
                tcp_transition_with(table, *from, dir, TcpFlags(f)),
                to,
                "{table:?} {dir:?} flags {f:#x} from {}",
                from.name()
            );
        }
    }
}

#[test]
fn normal_table_all_cells() {
    check_block(
        TcpTable::Normal,
        Direction::Input,
        [
            "sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR",
            "sCL, sCW, sSS, sTW, sTW, sTW, sCL, sCW, sLA, sLI, sTW",
            "sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES",
            "sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sSR",
        ],
    );
    check_block(
        TcpTable::Normal,
        Direction::Output,
        [
            "sSS, sES, sSS, sSR, sSS, sSS, sSS, sSS, sSS, sLI, sSR",
            "sTW, sFW, sSS, sTW, sFW, sTW, sCL, sTW, sLA, sLI, sTW",
            "sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sLA, sES, sES",
            "sCL, sCL, sSS, sCL, sCL, sTW, sCL, sCL, sCL, sCL, sCL",
        ],
    );
    check_block(
        TcpTable::Normal,
        Direction::InputOnly,
        [
            "sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR",
            "sCL, sFW, sSS, sTW, sFW, sTW, sCL, sCW, sLA, sLI, sTW",
            "sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES",
            "sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sCL",
        ],
    );
}

#[test]
fn secure_table_all_cells() {
    check_block(
        TcpTable::Secure,
        Direction::Input,
        [
            "sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSA",
            "sCL, sCW, sSS, sTW, sTW, sTW, sCL, sCW, sLA, sLI, sSA",
            "sES, sES, sSS, sSR, sFW, sTW, sCL, sCW, sCL, sLI, sSA",
            "sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sCL",
        ],
    );
    check_block(
        TcpTable::Secure,
        Direction::Output,
        [
            "sSS, sES, sSS, sSA, sSS, sSS, sSS, sSS, sSS, sLI, sSA",
            "sTW, sFW, sSS, sTW, sFW, sTW, sCL, sTW, sLA, sLI, sTW",
            "sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sLA, sES, sES",
            "sCL, sCL, sSS, sCL, sCL, sTW, sCL, sCL, sCL, sCL, sCL",
        ],
    );
    check_block(
        TcpTable::Secure,
        Direction::InputOnly,
        [
            "sSA, sES, sES, sSR, sSA, sSA, sSA, sSA, sSA, sSA, sSA",
            "sCL, sFW, sSS, sTW, sFW, sTW, sCL, sCW, sLA, sLI, sTW",
            "sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES",
            "sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sCL",
        ],
    );
}

#[test]
fn flag_precedence_rst_syn_fin_ack() {
    let es = TcpState::Established;
    // RST wins over everything.
    assert_eq!(
        tcp_transition(es, Direction::Input, TcpFlags(SYN | FIN | ACK | RST)),
        TcpState::Close
    );
    // SYN over FIN: the syn row keeps ESTABLISHED.
    assert_eq!(
        tcp_transition(es, Direction::Input, TcpFlags(SYN | FIN)),
        TcpState::Established
    );
    // FIN over ACK: client FIN on ESTABLISHED (NAT input) -> CLOSE_WAIT.
    assert_eq!(
        tcp_transition(es, Direction::Input, TcpFlags(FIN | ACK)),
        TcpState::CloseWait
    );
    // No SYN/FIN/ACK/RST at all: CLOSE, as the kernel.
    assert_eq!(
        tcp_transition(es, Direction::Input, TcpFlags(PSH)),
        TcpState::Close
    );
    // Current kernels: a bare ACK on NONE establishes (3.x gave CLOSE).
    assert_eq!(
        tcp_transition(TcpState::None, Direction::Input, TcpFlags(ACK)),
        TcpState::Established
    );
}

#[test]
fn names_timeouts_activity() {
    let names: Vec<&str> = TcpState::ALL.iter().map(|s| s.name()).collect();
    assert_eq!(
        names,
        [
            "NONE",
            "ESTABLISHED",
            "SYN_SENT",
            "SYN_RECV",
            "FIN_WAIT",
            "TIME_WAIT",
            "CLOSE",
            "CLOSE_WAIT",
            "LAST_ACK",
            "LISTEN",
            "SYNACK"
        ]
    );
    let secs: Vec<u32> = TcpState::ALL
        .iter()
        .map(|s| s.default_timeout_secs())
        .collect();
    assert_eq!(secs, [2, 900, 120, 60, 120, 120, 10, 60, 30, 120, 120]);
    let active: Vec<&str> = TcpState::ALL
        .iter()
        .filter(|s| s.is_active())
        .map(|s| s.name())
        .collect();
    assert_eq!(active, ["ESTABLISHED", "SYN_SENT", "SYN_RECV", "SYNACK"]);
}

/// Drive one connection through `steps` and check state name, timeout
/// (s) and activity after each.
fn walk(fwd: FwdMethod, steps: &[(Direction, u8, &str, u64, bool)]) -> (ConnTable, EngineTime) {
    let mut t = ConnTable::default();
    let to = StateTimeouts::default();
    let mut now = EngineTime::from_secs(100);
    let id = t
        .insert(
            NewConn::connection(
                client_key(40000),
                ip(203, 0, 113, 11),
                80,
                Some(DestId(1)),
                fwd,
            ),
            now,
        )
        .expect("insert");
    let c = t.get(id).expect("conn");
    assert_eq!(c.state(), ConnState::Tcp(TcpState::None));
    assert!(c.is_inactive());
    assert_eq!(c.expires_in(now), 3_000);
    let mut active = false;
    for (i, &(dir, flags, name, secs, want_active)) in steps.iter().enumerate() {
        now = now.add_millis(10);
        let ch = t
            .process_tcp(id, dir, TcpFlags(flags), now, &to)
            .expect("live conn");
        assert_eq!(ch.was_active, active, "step {i}");
        assert_eq!(ch.now_active, want_active, "step {i}");
        active = want_active;
        let c = t.get(id).expect("conn");
        assert_eq!(c.state().name(), name, "step {i}");
        assert_eq!(c.timeout_ms(), secs * 1000, "step {i}");
        assert_eq!(c.expires_in(now), secs * 1000, "step {i}");
        assert_eq!(c.is_inactive(), !want_active, "step {i}");
    }
    (t, now)
}

#[test]
fn nat_short_http_client_closes_first() {
    use Direction::{Input as I, Output as O};
    walk(
        FwdMethod::Masq,
        &[
            (I, SYN, "SYN_RECV", 60, true),
            (O, SYN | ACK, "SYN_RECV", 60, true),
            (I, ACK, "ESTABLISHED", 900, true),
            (I, PSH | ACK, "ESTABLISHED", 900, true),
            (O, ACK, "ESTABLISHED", 900, true),
            (O, PSH | ACK, "ESTABLISHED", 900, true),
            (I, FIN | ACK, "CLOSE_WAIT", 60, false),
            (O, FIN | ACK, "TIME_WAIT", 120, false),
            (I, ACK, "TIME_WAIT", 120, false),
        ],
    );
}

#[test]
fn nat_short_http_server_closes_first() {
    use Direction::{Input as I, Output as O};
    walk(
        FwdMethod::Masq,
        &[
            (I, SYN, "SYN_RECV", 60, true),
            (O, SYN | ACK, "SYN_RECV", 60, true),
            (I, ACK, "ESTABLISHED", 900, true),
            (O, FIN | ACK, "FIN_WAIT", 120, false),
            (I, ACK, "FIN_WAIT", 120, false),
            (I, FIN | ACK, "TIME_WAIT", 120, false),
            (O, ACK, "TIME_WAIT", 120, false),
        ],
    );
}

#[test]
fn dr_close_seen_input_only_ends_in_fin_wait() {
    use Direction::Input as I;
    let (t, _) = walk(
        FwdMethod::Route,
        &[
            (I, SYN, "SYN_RECV", 60, true),
            (I, ACK, "ESTABLISHED", 900, true),
            (I, PSH | ACK, "ESTABLISHED", 900, true),
            // The INPUT block would give CLOSE_WAIT here; INPUT-ONLY gives FIN_WAIT.
            (I, FIN | ACK, "FIN_WAIT", 120, false),
            (I, ACK, "FIN_WAIT", 120, false),
        ],
    );
    let (_, c) = t.iter().next().expect("one conn");
    assert!(c.is_nooutput());
}

#[test]
fn tunnel_and_local_also_start_input_only() {
    for fwd in [
        FwdMethod::Tunnel {
            kind: Default::default(),
            csum: Default::default(),
        },
        FwdMethod::Local,
    ] {
        walk(
            fwd,
            &[
                (Direction::Input, SYN, "SYN_RECV", 60, true),
                (Direction::Input, ACK, "ESTABLISHED", 900, true),
                (Direction::Input, FIN | ACK, "FIN_WAIT", 120, false),
            ],
        );
    }
}

#[test]
fn output_packet_clears_nooutput_and_switches_tables() {
    use Direction::{Input as I, Output as O};
    // A Local conn that does see its replies: after the first output
    // packet the INPUT block applies, so client FIN gives CLOSE_WAIT.
    let (t, _) = walk(
        FwdMethod::Local,
        &[
            (I, SYN, "SYN_RECV", 60, true),
            (O, SYN | ACK, "SYN_RECV", 60, true),
            (I, ACK, "ESTABLISHED", 900, true),
            (I, FIN | ACK, "CLOSE_WAIT", 60, false),
        ],
    );
    let (_, c) = t.iter().next().expect("one conn");
    assert!(!c.is_nooutput());
}

#[test]
fn rst_sequences() {
    use Direction::{Input as I, Output as O};
    // Client resets an established NAT conn.
    walk(
        FwdMethod::Masq,
        &[
            (I, SYN, "SYN_RECV", 60, true),
            (I, ACK, "ESTABLISHED", 900, true),
            (I, RST | ACK, "CLOSE", 10, false),
        ],
    );
    // Server refuses: RST in reply to SYN; SYN_RECV -> CLOSE on output RST.
    walk(
        FwdMethod::Masq,
        &[
            (I, SYN, "SYN_RECV", 60, true),
            (O, RST | ACK, "CLOSE", 10, false),
        ],
    );
    // Input RST on SYN_RECV keeps SYN_RECV (the kernel ignores it).
    walk(
        FwdMethod::Masq,
        &[
            (I, SYN, "SYN_RECV", 60, true),
            (I, RST, "SYN_RECV", 60, true),
        ],
    );
}

#[test]
fn set_timeouts_like_ipvsadm_set() {
    let mut to = StateTimeouts::default();
    assert_eq!(
        to.to_set(),
        Timeouts {
            tcp: 900,
            tcpfin: 120,
            udp: 300
        }
    );
    to.apply_set(&Timeouts {
        tcp: 3600,
        tcpfin: 0,
        udp: 60,
    });
    assert_eq!(to.tcp_state(TcpState::Established), 3600);
    assert_eq!(to.tcp_state(TcpState::FinWait), 120);
    assert_eq!(to.udp, 60);
    // Other states are untouched.
    assert_eq!(to.tcp_state(TcpState::TimeWait), 120);
    assert_eq!(to.tcp_state(TcpState::SynRecv), 60);

    // An established conn takes the new value at its next packet.
    let mut t = ConnTable::default();
    let now = EngineTime::ZERO;
    let id = t
        .insert(
            NewConn::connection(
                client_key(1),
                ip(10, 0, 0, 1),
                80,
                Some(DestId(1)),
                FwdMethod::Masq,
            ),
            now,
        )
        .expect("insert");
    let def = StateTimeouts::default();
    t.process_tcp(id, Direction::Input, TcpFlags(SYN), now, &def);
    t.process_tcp(id, Direction::Input, TcpFlags(ACK), now, &def);
    assert_eq!(t.get(id).map(|c| c.timeout_ms()), Some(900_000));
    t.process_tcp(id, Direction::Input, TcpFlags(ACK), now, &to);
    assert_eq!(t.get(id).map(|c| c.timeout_ms()), Some(3_600_000));
}

/// The seed's NAT walkthrough: four short requests, rr over two servers
/// (RS2 first). The engine's counters, driven only by what the table
/// reports, end at ActiveConn 0 / InActConn 2 for each server, like the
/// real kernel.
#[test]
fn four_short_nat_requests_leave_two_inactive_per_server() {
    use Direction::{Input as I, Output as O};
    let mut t = ConnTable::default();
    let to = StateTimeouts::default();
    let mut now = EngineTime::from_secs(5);
    let dests = [DestId(2), DestId(1)];
    // Counters the engine would keep: (active, inactive) per dest.
    let mut counters = [(0i64, 0i64); 2];
    for n in 0..4u16 {
        let d = usize::from(n % 2);
        let id = t
            .insert(
                NewConn::connection(
                    client_key(50000 + n),
                    ip(203, 0, 113, 11 + d as u8),
                    80,
                    Some(dests[d]),
                    FwdMethod::Masq,
                ),
                now,
            )
            .expect("insert");
        counters[d].1 += 1; // new conns start inactive
        for (dir, f) in [
            (I, SYN),
            (O, SYN | ACK),
            (I, ACK),
            (I, PSH | ACK),
            (O, PSH | ACK),
            (I, FIN | ACK),
            (O, FIN | ACK),
            (I, ACK),
        ] {
            now = now.add_millis(1);
            let ch = t.process_tcp(id, dir, TcpFlags(f), now, &to).expect("live");
            if ch.became_active() {
                counters[d].0 += 1;
                counters[d].1 -= 1;
            }
            if ch.became_inactive() {
                counters[d].0 -= 1;
                counters[d].1 += 1;
            }
        }
    }
    assert_eq!(counters, [(0, 2), (0, 2)]);
    assert_eq!(t.count_for_dest(DestId(1)), (0, 2, 0));
    assert_eq!(t.count_for_dest(DestId(2)), (0, 2, 0));
    // Each conn's last packet came 8 ms after the previous conn's.
    let rows = t.snapshot(now);
    let states: Vec<&str> = rows.iter().map(|r| r.state.as_str()).collect();
    assert_eq!(states, ["TIME_WAIT"; 4]);
    let left: Vec<u64> = rows.iter().map(|r| r.expires_ms).collect();
    assert_eq!(left, [119_976, 119_984, 119_992, 120_000]);
}

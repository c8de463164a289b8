//! SCTP state machine: chunk-type mapping, names, timeouts, the INIT
//! setup and SHUTDOWN teardown for NAT (both directions seen) and DR
//! (input only), ABORT, and activity (only ESTABLISHED is active).
//! Expected states were read by hand off the kernel's `sctp_states`.

use rvs_core::conn::{
    sctp_transition, ConnTable, Direction, EngineTime, InKey, NewConn, SctpEvent, SctpState,
    StateTimeouts,
};
use rvs_core::snapshot::ConnProtocol;
use rvs_core::{DestId, FwdMethod};
use std::net::{IpAddr, Ipv4Addr};

#[test]
fn chunk_types_map_to_events() {
    let got: Vec<SctpEvent> = [
        0u8, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 64, 255,
    ]
    .iter()
    .map(|&c| SctpEvent::from_chunk_type(c))
    .collect();
    use SctpEvent::*;
    assert_eq!(
        got,
        [
            Data,
            Init,
            InitAck,
            Data,
            Data,
            Data,
            Abort,
            Shutdown,
            ShutdownAck,
            Error,
            CookieEcho,
            CookieAck,
            Data,
            Data,
            ShutdownComplete,
            Data,
            Data,
            Data
        ]
    );
}

#[test]
fn names_and_timeouts() {
    let names: Vec<&str> = SctpState::ALL.iter().map(|s| s.name()).collect();
    assert_eq!(
        names,
        [
            "NONE",
            "INIT1",
            "INIT",
            "C-SENT",
            "C-REPLIED",
            "C-WAIT",
            "COOKIE",
            "C-ECHOED",
            "ESTABLISHED",
            "S-SENT",
            "S-RECEIVED",
            "S-ACK-SENT",
            "REJECTED",
            "CLOSED"
        ]
    );
    let secs: Vec<u32> = SctpState::ALL
        .iter()
        .map(|s| s.default_timeout_secs())
        .collect();
    assert_eq!(secs, [2, 4, 61, 61, 61, 61, 61, 61, 900, 61, 61, 61, 4, 61]);
    let active: Vec<SctpState> = SctpState::ALL
        .iter()
        .copied()
        .filter(|s| s.is_active())
        .collect();
    assert_eq!(active, [SctpState::Established]);
}

fn walk(fwd: FwdMethod, steps: &[(Direction, u8, &str, u64, bool)]) {
    let mut t = ConnTable::default();
    let to = StateTimeouts::default();
    let k = InKey {
        protocol: ConnProtocol::Sctp,
        caddr: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2)),
        cport: 5000,
        vaddr: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 10)),
        vport: 3868,
    };
    let now = EngineTime::from_secs(1);
    let id = t
        .insert(
            NewConn::connection(
                k,
                IpAddr::V4(Ipv4Addr::new(203, 0, 113, 11)),
                3868,
                Some(DestId(1)),
                fwd,
            ),
            now,
        )
        .expect("insert");
    assert_eq!(t.get(id).map(|c| c.state().name()), Some("NONE"));
    for (i, &(dir, chunk, name, secs, active)) in steps.iter().enumerate() {
        let ch = t
            .process_sctp(id, dir, SctpEvent::from_chunk_type(chunk), now, &to)
            .expect("live");
        assert_eq!(ch.now_active, active, "step {i}");
        let c = t.get(id).expect("conn");
        assert_eq!(c.state().name(), name, "step {i}");
        assert_eq!(c.expires_in(now), secs * 1000, "step {i}");
    }
}

// Chunk type numbers.
const DATA: u8 = 0;
const INIT: u8 = 1;
const INIT_ACK: u8 = 2;
const SACK: u8 = 3;
const ABORT: u8 = 6;
const SHUTDOWN: u8 = 7;
const SHUTDOWN_ACK: u8 = 8;
const COOKIE_ECHO: u8 = 10;
const COOKIE_ACK: u8 = 11;
const SHUTDOWN_COMPLETE: u8 = 14;

#[test]
fn nat_init_path_and_shutdown() {
    use Direction::{Input as I, Output as O};
    walk(
        FwdMethod::Masq,
        &[
            (I, INIT, "INIT1", 4, false),
            (I, INIT, "INIT", 61, false),
            (O, INIT_ACK, "C-SENT", 61, false),
            (I, COOKIE_ECHO, "C-REPLIED", 61, false),
            (O, COOKIE_ACK, "ESTABLISHED", 900, true),
            (I, DATA, "ESTABLISHED", 900, true),
            (O, SACK, "ESTABLISHED", 900, true),
            (I, SHUTDOWN, "S-RECEIVED", 61, false),
            (O, SHUTDOWN_ACK, "S-ACK-SENT", 61, false),
            (I, SHUTDOWN_COMPLETE, "CLOSED", 61, false),
        ],
    );
}

#[test]
fn dr_init_path_seen_input_only() {
    use Direction::Input as I;
    walk(
        FwdMethod::Route,
        &[
            (I, INIT, "INIT1", 4, false),
            (I, COOKIE_ECHO, "ESTABLISHED", 900, true),
            (I, DATA, "ESTABLISHED", 900, true),
            (I, SHUTDOWN, "S-RECEIVED", 61, false),
            (I, SHUTDOWN_COMPLETE, "CLOSED", 61, false),
        ],
    );
}

#[test]
fn init_rejected_with_abort() {
    use Direction::{Input as I, Output as O};
    walk(
        FwdMethod::Masq,
        &[
            (I, INIT, "INIT1", 4, false),
            (O, ABORT, "REJECTED", 4, false),
        ],
    );
}

#[test]
fn single_cells() {
    use Direction::*;
    use SctpEvent as E;
    use SctpState as S;
    // Sloppy start: DATA on NONE establishes.
    assert_eq!(sctp_transition(S::None, Input, E::Data), S::Established);
    // Server-initiated setup (NAT): server INIT -> C-WAIT, client INIT ACK
    // -> COOKIE, server COOKIE ECHO -> C-ECHOED, client COOKIE ACK -> ES.
    assert_eq!(sctp_transition(S::None, Output, E::Init), S::CookieWait);
    assert_eq!(sctp_transition(S::CookieWait, Input, E::InitAck), S::Cookie);
    assert_eq!(
        sctp_transition(S::Cookie, Output, E::CookieEcho),
        S::CookieEchoed
    );
    assert_eq!(
        sctp_transition(S::CookieEchoed, Input, E::CookieAck),
        S::Established
    );
    // INIT on a CLOSED association restarts it.
    assert_eq!(sctp_transition(S::Closed, Input, E::Init), S::Init);
    // ABORT from the client while waiting for the server's cookie.
    assert_eq!(sctp_transition(S::CookieWait, Input, E::Abort), S::Rejected);
    // Input-only: INIT ACK from the client goes straight to C-ECHOED.
    assert_eq!(
        sctp_transition(S::None, InputOnly, E::InitAck),
        S::CookieEchoed
    );
    assert_eq!(
        sctp_transition(S::Established, InputOnly, E::ShutdownAck),
        S::Closed
    );
}

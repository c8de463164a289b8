//! Port reuse: what to do when a packet that opens a connection (TCP SYN,
//! SCTP INIT) matches an existing entry, following the kernel's
//! `ip_vs_in` with `conn_reuse_mode` and `expire_nodest_conn`
//! (`is_new_conn`, `is_new_conn_expected`).
//!
//! What the engine does with the answer:
//! 1. Only ask for packets that open a connection ([`opens_tcp`],
//!    [`opens_sctp`]; never UDP, and `sloppy_tcp`/`sloppy_sctp` do not
//!    widen this), that are not non-first fragments, and that matched an
//!    entry with [`super::ConnTable::lookup_in`].
//! 2. [`ReuseAction::Keep`]: process the packet on the existing entry.
//! 3. [`ReuseAction::Reschedule`]: if `expire_old`, call
//!    [`super::ConnTable::expire_now`] on the old entry (it is freed by the
//!    next `handle_timeout`, and the engine accounts it then); then
//!    schedule the packet as a new connection and `insert` it. The new
//!    entry shadows the old one for lookups. With `expire_old == false`
//!    the old entry controls others and stays until they are gone.
//! 4. [`ReuseAction::DropPacket`]: drop the packet and leave the entry; the
//!    client retransmits its SYN once the old entry is gone (only with
//!    netfilter-conntrack emulation, which rvs does not do by default).

use super::tcp::{TcpFlags, TcpState};
use super::{Conn, ConnProtocol, ConnState, SctpState};

/// The kernel knobs that matter here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReuseKnobs {
    /// `conn_reuse_mode` (default 1): bit 0 (value 1) reschedules reused
    /// ports when safe; bit 1 (value 2) also treats FIN_WAIT of input-only
    /// (DR/TUN) connections as reusable.
    pub conn_reuse_mode: u32,
    /// `expire_nodest_conn` (default 0): reschedule when the old real
    /// server's weight is 0.
    pub expire_nodest_conn: bool,
}

impl Default for ReuseKnobs {
    fn default() -> Self {
        ReuseKnobs {
            conn_reuse_mode: 1,
            expire_nodest_conn: false,
        }
    }
}

/// What to do with a connection-opening packet that matched `conn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReuseAction {
    /// Use the existing connection.
    Keep,
    /// Schedule a new connection; expire the old one now if `expire_old`.
    Reschedule { expire_old: bool },
    /// Drop this packet (old conntrack entry still in the way).
    DropPacket,
}

/// A TCP packet opens a connection if it has SYN (the kernel's
/// `is_new_conn`; RST is not looked at here).
pub fn opens_tcp(flags: TcpFlags) -> bool {
    flags.syn()
}

/// An SCTP packet opens an association if its first chunk is INIT (1).
pub fn opens_sctp(first_chunk_type: u8) -> bool {
    first_chunk_type == 1
}

/// Whether the old connection is finished enough that a new connection on
/// the same ports is expected (`is_new_conn_expected`): TCP in TIME_WAIT
/// or CLOSE, or (with bit 2 of `conn_reuse_mode`) in FIN_WAIT without
/// output seen (DR/TUN); SCTP in CLOSED. Never for UDP or templates.
pub fn is_new_conn_expected(
    protocol: ConnProtocol,
    state: ConnState,
    nooutput: bool,
    conn_reuse_mode: u32,
) -> bool {
    match (protocol, state) {
        (ConnProtocol::Tcp, ConnState::Tcp(s)) => {
            s == TcpState::TimeWait
                || s == TcpState::Close
                || (conn_reuse_mode & 2 != 0 && s == TcpState::FinWait && nooutput)
        }
        (ConnProtocol::Sctp, ConnState::Sctp(s)) => s == SctpState::Closed,
        _ => false,
    }
}

/// The kernel's decision for a connection-opening packet that matched
/// `conn`.
///
/// * `dest_weight`: current weight of the old connection's real server
///   (`None` if it has none);
/// * `uses_old_conntrack`: whether an old netfilter conntrack entry would
///   keep the packet on the old path (`ip_vs_conn_uses_old_conntrack`);
///   `false` unless the engine emulates conntrack.
///
/// `expire_nodest_conn` with a weight-0 server reschedules whatever
/// `conn_reuse_mode` is, controlled (persistent) connections included: the
/// new connection then goes through the template check (kernel commit
/// c95c07836fa4, "Fix reuse connection if RS weight is 0"). Otherwise a
/// connection linked to a template (or FTP control connection) is kept.
pub fn reuse_decision(
    conn: &Conn,
    dest_weight: Option<i32>,
    knobs: &ReuseKnobs,
    uses_old_conntrack: bool,
) -> ReuseAction {
    let resched = if knobs.expire_nodest_conn && dest_weight == Some(0) {
        true
    } else if knobs.conn_reuse_mode != 0
        && conn.control().is_none()
        && is_new_conn_expected(
            conn.protocol(),
            conn.state(),
            conn.is_nooutput(),
            knobs.conn_reuse_mode,
        )
    {
        // A connection still referenced by controlled connections is only
        // rescheduled when no old conntrack pins it.
        conn.n_control() == 0 || !uses_old_conntrack
    } else {
        false
    };
    if !resched {
        return ReuseAction::Keep;
    }
    if uses_old_conntrack {
        return ReuseAction::DropPacket;
    }
    ReuseAction::Reschedule {
        expire_old: conn.n_control() == 0,
    }
}

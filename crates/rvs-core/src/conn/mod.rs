//! Connection tracking: the connection table, persistence templates, the
//! per-protocol state machines (TCP, UDP, SCTP), per-state timeouts and
//! expiry timers, and the helpers for port reuse (`conn_reuse_mode`).
//!
//! Everything here is pure: time comes in as an [`EngineTime`] argument,
//! nothing reads a clock, and expiry is driven by the caller through
//! [`ConnTable::poll_timeout`] / [`ConnTable::handle_timeout`].
//!
//! What the table does *not* do: it does not own real-server counters.
//! Every operation that moves a connection between "active" and "inactive",
//! creates one or frees one reports it ([`StateChange`], [`Removed`]) so the
//! engine can keep `ActiveConn`/`InActConn`/`PersistConn` and thresholds in
//! step, exactly where the kernel touches `dest->activeconns` & co.
//!
//! Layout:
//! * [`tcp`], [`udp`], [`sctp`]: states, names, default timeouts, tables;
//! * `entry`: one connection ([`Conn`]) and its per-packet processing;
//! * `table`: [`ConnTable`] (slab + two hash indexes + timers);
//! * `index`, `timer`: the hash index and the timer queue behind it;
//! * [`reuse`]: `is_new_conn_expected` and the rescheduling decision.

pub mod reuse;
pub mod sctp;
pub mod tcp;
pub mod udp;

mod entry;
mod index;
mod table;
mod timer;

pub use crate::snapshot::ConnProtocol;
pub use entry::{Conn, NewConn, StateChange};
pub use reuse::{is_new_conn_expected, reuse_decision, ReuseAction, ReuseKnobs};
pub use sctp::{sctp_transition, SctpEvent, SctpState};
pub use table::{ConnTable, ConnTableConfig, ConnTableStats, InsertError, Removed};
pub use tcp::{tcp_transition, tcp_transition_with, TcpFlags, TcpState, TcpTable};

use crate::model::Protocol;
use crate::snapshot::Timeouts;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;

/// Engine time: milliseconds since an arbitrary origin chosen by the
/// caller (the daemon uses a monotonic clock; tests start at 0).
///
/// Only differences matter. Millisecond resolution is finer than the
/// kernel's jiffies at HZ=250 and enough for `ipvsadm -L -c`, which prints
/// whole seconds. Arithmetic saturates instead of overflowing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct EngineTime(pub u64);

impl EngineTime {
    pub const ZERO: EngineTime = EngineTime(0);

    pub const fn from_millis(ms: u64) -> EngineTime {
        EngineTime(ms)
    }

    pub const fn from_secs(secs: u64) -> EngineTime {
        EngineTime(secs.saturating_mul(1000))
    }

    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// `self + ms`, saturating.
    pub const fn add_millis(self, ms: u64) -> EngineTime {
        EngineTime(self.0.saturating_add(ms))
    }

    /// `self + secs` seconds, saturating.
    pub const fn add_secs(self, secs: u64) -> EngineTime {
        self.add_millis(secs.saturating_mul(1000))
    }

    /// Milliseconds from `earlier` to `self`, 0 if `earlier` is later.
    pub const fn millis_since(self, earlier: EngineTime) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl fmt::Display for EngineTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}s", self.0 / 1000, self.0 % 1000)
    }
}

/// Direction of a packet relative to a connection, and the name of the
/// state-table block it selects.
///
/// The engine passes `Input` (client -> director) or `Output` (real server
/// -> director, NAT replies). A connection whose real server has never been
/// seen answering (`NOOUTPUT`, set for every method but NAT) turns `Input`
/// into `InputOnly` by itself; an `Output` packet clears `NOOUTPUT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Input,
    Output,
    InputOnly,
}

/// Protocol column of a connection from a service protocol.
pub fn conn_protocol(p: Protocol) -> ConnProtocol {
    match p {
        Protocol::Tcp => ConnProtocol::Tcp,
        Protocol::Udp => ConnProtocol::Udp,
        Protocol::Sctp => ConnProtocol::Sctp,
    }
}

/// The virtual address a firewall-mark template carries: the mark as an
/// IPv4 address (`0.0.0.N`), as the kernel stores and lists it.
pub fn fwmark_vaddr(mark: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(mark))
}

/// Stable handle of a table entry: slab slot + generation. A handle of a
/// freed entry never resolves again (the slot's generation moves on), so a
/// stale id is harmless.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    pub(crate) index: u32,
    pub(crate) generation: NonZeroU32,
}

impl ConnId {
    /// Slab slot (for logs and debugging).
    pub fn slot(self) -> u32 {
        self.index
    }
    pub fn generation(self) -> u32 {
        self.generation.get()
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}.{}", self.index, self.generation)
    }
}

/// Connection flags (a subset of the kernel's `IP_VS_CONN_F_*`, own bit
/// values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ConnFlags(pub u16);

impl ConnFlags {
    /// Counted in the real server's InActConn (else ActiveConn).
    pub const INACTIVE: u16 = 0x0001;
    /// A persistence template, counted in PersistConn.
    pub const TEMPLATE: u16 = 0x0002;
    /// One-packet scheduling (`-o`): the engine forwards and forgets.
    pub const ONE_PACKET: u16 = 0x0004;
    /// No packet from the real server seen yet (all methods but NAT start
    /// with it); selects the INPUT-ONLY tables.
    pub const NOOUTPUT: u16 = 0x0008;
    /// Created from a sync message.
    pub const SYNC: u16 = 0x0010;
    /// Template whose destination was found unusable
    /// (`ip_vs_check_template` failed): no longer found by lookups.
    pub const INVALID: u16 = 0x0020;

    pub fn has(self, bit: u16) -> bool {
        self.0 & bit != 0
    }
    pub fn set(&mut self, bit: u16, on: bool) {
        if on {
            self.0 |= bit;
        } else {
            self.0 &= !bit;
        }
    }
}

/// State of an entry. Templates have their own two states, as in the
/// kernel (`IP_VS_CTPL_S_NONE` / `IP_VS_CTPL_S_ASSURED`), whatever their
/// protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnState {
    Tcp(TcpState),
    Udp,
    Sctp(SctpState),
    /// `assured` is set once a controlled connection reached ESTABLISHED
    /// (TCP, SCTP) or got a reply (UDP).
    Template {
        assured: bool,
    },
    /// A non-template entry of protocol `IP` (not created by the engine
    /// today; kept so every protocol has a state).
    Other,
}

impl ConnState {
    /// Name as the kernel prints it (`ESTABLISHED`, `UDP`, `ASSURED`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ConnState::Tcp(s) => s.name(),
            ConnState::Udp => udp::UDP_STATE_NAME,
            ConnState::Sctp(s) => s.name(),
            ConnState::Template { assured: false } => "NONE",
            ConnState::Template { assured: true } => "ASSURED",
            ConnState::Other => "NONE",
        }
    }

    /// Whether the state counts in ActiveConn.
    pub fn is_active(self) -> bool {
        match self {
            ConnState::Tcp(s) => s.is_active(),
            ConnState::Sctp(s) => s.is_active(),
            ConnState::Udp | ConnState::Template { .. } | ConnState::Other => false,
        }
    }

    /// The state a fresh connection of `protocol` starts in.
    pub fn initial(protocol: ConnProtocol) -> ConnState {
        match protocol {
            ConnProtocol::Tcp => ConnState::Tcp(TcpState::None),
            ConnProtocol::Udp => ConnState::Udp,
            ConnProtocol::Sctp => ConnState::Sctp(SctpState::None),
            ConnProtocol::Ip => ConnState::Other,
        }
    }
}

/// Per-state timeouts of all protocols, seconds (the kernel's per-netns
/// `timeout_table`s). Defaults are the kernel's.
///
/// `ipvsadm --set tcp tcpfin udp` changes ESTABLISHED, FIN_WAIT and UDP
/// only ([`StateTimeouts::apply_set`]); a value of 0 leaves that timeout
/// unchanged. Existing connections pick up a changed value at their next
/// state transition (TCP/SCTP) or packet (UDP), as in the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateTimeouts {
    pub tcp: [u32; tcp::TCP_STATE_COUNT],
    pub udp: u32,
    pub sctp: [u32; sctp::SCTP_STATE_COUNT],
}

impl Default for StateTimeouts {
    fn default() -> Self {
        StateTimeouts {
            tcp: tcp::DEFAULT_TCP_TIMEOUTS,
            udp: udp::DEFAULT_UDP_TIMEOUT,
            sctp: sctp::DEFAULT_SCTP_TIMEOUTS,
        }
    }
}

impl StateTimeouts {
    /// Apply `ipvsadm --set`: non-zero values replace ESTABLISHED
    /// (`tcp`), FIN_WAIT (`tcpfin`) and UDP (`udp`).
    pub fn apply_set(&mut self, set: &Timeouts) {
        if set.tcp != 0 {
            self.tcp[TcpState::Established.index()] = set.tcp;
        }
        if set.tcpfin != 0 {
            self.tcp[TcpState::FinWait.index()] = set.tcpfin;
        }
        if set.udp != 0 {
            self.udp = set.udp;
        }
    }

    /// The three values `ipvsadm -L --timeout` shows.
    pub fn to_set(&self) -> Timeouts {
        Timeouts {
            tcp: self.tcp[TcpState::Established.index()],
            tcpfin: self.tcp[TcpState::FinWait.index()],
            udp: self.udp,
        }
    }

    /// Timeout of a TCP state, seconds.
    pub fn tcp_state(&self, s: TcpState) -> u32 {
        self.tcp[s.index()]
    }

    /// Timeout of an SCTP state, seconds.
    pub fn sctp_state(&self, s: SctpState) -> u32 {
        self.sctp[s.index()]
    }

    /// Timeout of any non-template state, seconds (`None` for templates,
    /// whose timeout is the service's persistence timeout).
    pub fn for_state(&self, s: ConnState) -> Option<u32> {
        match s {
            ConnState::Tcp(t) => Some(self.tcp_state(t)),
            ConnState::Udp => Some(self.udp),
            ConnState::Sctp(t) => Some(self.sctp_state(t)),
            ConnState::Template { .. } => None,
            // The kernel's fallback timeout for protocols without a table.
            ConnState::Other => Some(2),
        }
    }
}

/// Client-side key: what a packet from the client carries
/// (protocol, CIP, client port, VIP, virtual port). Templates use the same
/// shape with `cport` 0 (and `caddr` masked by the persistence netmask).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InKey {
    pub protocol: ConnProtocol,
    pub caddr: IpAddr,
    pub cport: u16,
    pub vaddr: IpAddr,
    pub vport: u16,
}

/// Real-server-side key: what a NAT reply carries
/// (protocol, RIP, real port, CIP, client port).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutKey {
    pub protocol: ConnProtocol,
    pub daddr: IpAddr,
    pub dport: u16,
    pub caddr: IpAddr,
    pub cport: u16,
}

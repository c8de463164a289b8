//! One entry of the connection table ([`Conn`]): a connection or a
//! persistence template, with its addresses, real server, forwarding
//! method, flags, protocol state and timeout, and the per-packet state
//! processing that the kernel does in `set_tcp_state` / `set_sctp_state` /
//! `udp_state_transition`.
//!
//! Processing here changes state, timeout and the INACTIVE flag and says
//! what changed ([`StateChange`]); it does not know the time. Re-arming the
//! expiry timer and marking the controlling template assured are done by
//! the table ([`super::ConnTable::process_tcp`] & co.), which is what the
//! engine calls.

use super::sctp::{sctp_transition, SctpEvent};
use super::tcp::{tcp_transition_with, TcpFlags, TcpState, TcpTable};
use super::{
    ConnFlags, ConnId, ConnProtocol, ConnState, Direction, EngineTime, InKey, OutKey, StateTimeouts,
};
use crate::model::{DestId, FwdMethod};
use std::net::IpAddr;

/// Timeout of a fresh connection before its first state transition
/// (the kernel's `cp->timeout = 3*HZ` in `ip_vs_conn_new`), seconds.
pub const INITIAL_TIMEOUT_SECS: u32 = 3;

/// What the engine asks the table to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewConn {
    pub protocol: ConnProtocol,
    pub caddr: IpAddr,
    pub cport: u16,
    pub vaddr: IpAddr,
    pub vport: u16,
    pub daddr: IpAddr,
    pub dport: u16,
    pub dest: Option<DestId>,
    pub fwd: FwdMethod,
    pub flags: ConnFlags,
    pub state: ConnState,
    /// Timeout until the first refresh, seconds.
    pub timeout_secs: u32,
    /// Firewall mark of the service (0 if none).
    pub fwmark: u32,
    /// Template (or controlling connection) this entry is linked to.
    pub control: Option<ConnId>,
}

impl NewConn {
    /// A connection as the kernel creates it when scheduling: state NONE,
    /// 3 s timeout, counted INACTIVE, and `NOOUTPUT` for every method but
    /// NAT (the kernel sets it from the destination's method, Local
    /// included).
    pub fn connection(
        key: InKey,
        daddr: IpAddr,
        dport: u16,
        dest: Option<DestId>,
        fwd: FwdMethod,
    ) -> NewConn {
        let mut flags = ConnFlags(ConnFlags::INACTIVE);
        flags.set(ConnFlags::NOOUTPUT, fwd != FwdMethod::Masq);
        NewConn {
            protocol: key.protocol,
            caddr: key.caddr,
            cport: key.cport,
            vaddr: key.vaddr,
            vport: key.vport,
            daddr,
            dport,
            dest,
            fwd,
            flags,
            state: ConnState::initial(key.protocol),
            timeout_secs: INITIAL_TIMEOUT_SECS,
            fwmark: 0,
            control: None,
        }
    }

    /// A persistence template: `key` has the masked client address and
    /// client port 0 (virtual port 0 for port-0/FTP services; protocol
    /// `Ip` and [`super::fwmark_vaddr`] for fwmark services). Its timeout
    /// is the service's persistence timeout.
    pub fn template(
        key: InKey,
        daddr: IpAddr,
        dport: u16,
        dest: Option<DestId>,
        fwd: FwdMethod,
        timeout_secs: u32,
    ) -> NewConn {
        let mut new = NewConn::connection(key, daddr, dport, dest, fwd);
        new.flags.set(ConnFlags::TEMPLATE, true);
        new.state = ConnState::Template { assured: false };
        new.timeout_secs = timeout_secs;
        new
    }

    pub fn with_control(mut self, control: ConnId) -> NewConn {
        self.control = Some(control);
        self
    }

    pub fn with_fwmark(mut self, fwmark: u32) -> NewConn {
        self.fwmark = fwmark;
        self
    }
}

/// What a state update did, for the engine's real-server counters.
///
/// If `was_active != now_active` the connection moved between ActiveConn
/// and InActConn of its real server (only ever for connections with a
/// destination, as in the kernel).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateChange {
    pub old: ConnState,
    pub new: ConnState,
    pub was_active: bool,
    pub now_active: bool,
    /// The controlling template (if any) becomes ASSURED.
    pub assures_template: bool,
}

impl StateChange {
    /// Inactive -> active: `active += 1; inactive -= 1`.
    pub fn became_active(&self) -> bool {
        !self.was_active && self.now_active
    }
    /// Active -> inactive: `active -= 1; inactive += 1`.
    pub fn became_inactive(&self) -> bool {
        self.was_active && !self.now_active
    }
}

/// One entry of the table.
///
/// Key fields (addresses, ports, protocol, template flag) cannot change
/// once inserted, so the table's indexes stay right; the accessors give
/// read access and the few mutators touch only non-key data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conn {
    pub(crate) caddr: IpAddr,
    pub(crate) vaddr: IpAddr,
    pub(crate) daddr: IpAddr,
    pub(crate) cport: u16,
    pub(crate) vport: u16,
    pub(crate) dport: u16,
    pub(crate) protocol: ConnProtocol,
    pub(crate) flags: ConnFlags,
    pub(crate) state: ConnState,
    pub(crate) fwd: FwdMethod,
    /// Current timeout, milliseconds (31 days fit).
    pub(crate) timeout_ms: u32,
    pub(crate) in_pkts: u32,
    pub(crate) n_control: u32,
    pub(crate) fwmark: u32,
    pub(crate) dest: Option<DestId>,
    pub(crate) control: Option<ConnId>,
    /// When the entry expires.
    pub(crate) expires: EngineTime,
    /// Deadline of this entry's live timer-queue item (may be earlier than
    /// `expires`: the queue re-arms lazily).
    pub(crate) timer_at: EngineTime,
}

fn secs_to_ms(secs: u32) -> u32 {
    secs.saturating_mul(1000)
}

impl Conn {
    pub(crate) fn from_new(new: &NewConn, now: EngineTime) -> Conn {
        let timeout_ms = secs_to_ms(new.timeout_secs);
        let expires = now.add_millis(u64::from(timeout_ms));
        Conn {
            caddr: new.caddr,
            vaddr: new.vaddr,
            daddr: new.daddr,
            cport: new.cport,
            vport: new.vport,
            dport: new.dport,
            protocol: new.protocol,
            flags: new.flags,
            state: new.state,
            fwd: new.fwd,
            timeout_ms,
            in_pkts: 0,
            n_control: 0,
            fwmark: new.fwmark,
            dest: new.dest,
            control: new.control,
            expires,
            timer_at: expires,
        }
    }

    pub fn protocol(&self) -> ConnProtocol {
        self.protocol
    }
    pub fn caddr(&self) -> IpAddr {
        self.caddr
    }
    pub fn cport(&self) -> u16 {
        self.cport
    }
    pub fn vaddr(&self) -> IpAddr {
        self.vaddr
    }
    pub fn vport(&self) -> u16 {
        self.vport
    }
    pub fn daddr(&self) -> IpAddr {
        self.daddr
    }
    /// Real-server port (65535 on an invalidated template, as the kernel).
    pub fn dport(&self) -> u16 {
        self.dport
    }
    pub fn dest(&self) -> Option<DestId> {
        self.dest
    }
    pub fn fwd(&self) -> FwdMethod {
        self.fwd
    }
    pub fn flags(&self) -> ConnFlags {
        self.flags
    }
    pub fn state(&self) -> ConnState {
        self.state
    }
    pub fn fwmark(&self) -> u32 {
        self.fwmark
    }
    /// The template (or controlling connection) this entry belongs to.
    pub fn control(&self) -> Option<ConnId> {
        self.control
    }
    /// How many entries this one controls.
    pub fn n_control(&self) -> u32 {
        self.n_control
    }
    /// Packets counted with [`Conn::count_in_packet`].
    pub fn in_pkts(&self) -> u32 {
        self.in_pkts
    }
    /// Current timeout, milliseconds.
    pub fn timeout_ms(&self) -> u64 {
        u64::from(self.timeout_ms)
    }
    /// Expiry time.
    pub fn expires(&self) -> EngineTime {
        self.expires
    }
    /// Milliseconds left at `now` (0 once due).
    pub fn expires_in(&self, now: EngineTime) -> u64 {
        self.expires.millis_since(now)
    }
    pub fn is_template(&self) -> bool {
        self.flags.has(ConnFlags::TEMPLATE)
    }
    /// Counted in InActConn (`IP_VS_CONN_F_INACTIVE`).
    pub fn is_inactive(&self) -> bool {
        self.flags.has(ConnFlags::INACTIVE)
    }
    /// No reply from the real server seen yet.
    pub fn is_nooutput(&self) -> bool {
        self.flags.has(ConnFlags::NOOUTPUT)
    }
    pub fn is_one_packet(&self) -> bool {
        self.flags.has(ConnFlags::ONE_PACKET)
    }
    /// A template whose destination was found unusable.
    pub fn is_invalidated(&self) -> bool {
        self.flags.has(ConnFlags::INVALID)
    }
    /// The client-side key of this entry.
    pub fn in_key(&self) -> InKey {
        InKey {
            protocol: self.protocol,
            caddr: self.caddr,
            cport: self.cport,
            vaddr: self.vaddr,
            vport: self.vport,
        }
    }
    /// The real-server-side key of this entry.
    pub fn out_key(&self) -> OutKey {
        OutKey {
            protocol: self.protocol,
            daddr: self.daddr,
            dport: self.dport,
            caddr: self.caddr,
            cport: self.cport,
        }
    }

    /// Count one incoming packet (the kernel's `in_pkts`, used for sync
    /// thresholds and drop_entry); returns the new count (wrapping).
    pub fn count_in_packet(&mut self) -> u32 {
        self.in_pkts = self.in_pkts.wrapping_add(1);
        self.in_pkts
    }

    /// The table direction for a packet: `Output` clears `NOOUTPUT`,
    /// `Input` on a `NOOUTPUT` connection reads the INPUT-ONLY block.
    fn table_direction(&mut self, direction: Direction) -> Direction {
        if self.flags.has(ConnFlags::NOOUTPUT) {
            match direction {
                Direction::Output => {
                    self.flags.set(ConnFlags::NOOUTPUT, false);
                    Direction::Output
                }
                _ => Direction::InputOnly,
            }
        } else {
            direction
        }
    }

    /// Move to `new`, keep the INACTIVE flag in step (only with a
    /// destination, as the kernel), and take the new state's timeout.
    /// Templates are not touched (their "state" is the assured bit).
    pub fn set_state(&mut self, new: ConnState, timeouts: &StateTimeouts) -> StateChange {
        let old = self.state;
        let was_active = !self.is_inactive();
        if self.is_template() {
            return StateChange {
                old,
                new: old,
                was_active,
                now_active: was_active,
                assures_template: false,
            };
        }
        let changed = new != old;
        if changed && self.dest.is_some() {
            self.flags.set(ConnFlags::INACTIVE, !new.is_active());
        }
        self.state = new;
        if let Some(secs) = timeouts.for_state(new) {
            self.timeout_ms = secs_to_ms(secs);
        }
        let assures_template = changed
            && matches!(
                new,
                ConnState::Tcp(TcpState::Established)
                    | ConnState::Sctp(super::SctpState::Established)
            );
        StateChange {
            old,
            new,
            was_active,
            now_active: !self.is_inactive(),
            assures_template,
        }
    }

    /// TCP packet with `flags` in `direction` (normal table). Updates
    /// state, timeout and INACTIVE. A non-TCP entry is left unchanged.
    pub fn process_tcp(
        &mut self,
        direction: Direction,
        flags: TcpFlags,
        timeouts: &StateTimeouts,
    ) -> StateChange {
        self.process_tcp_with(TcpTable::Normal, direction, flags, timeouts)
    }

    /// [`Conn::process_tcp`] with an explicit table (`secure_tcp`).
    pub fn process_tcp_with(
        &mut self,
        table: TcpTable,
        direction: Direction,
        flags: TcpFlags,
        timeouts: &StateTimeouts,
    ) -> StateChange {
        let ConnState::Tcp(cur) = self.state else {
            return self.unchanged();
        };
        let dir = self.table_direction(direction);
        let next = tcp_transition_with(table, cur, dir, flags);
        self.set_state(ConnState::Tcp(next), timeouts)
    }

    /// SCTP packet whose (first) chunk maps to `event`.
    pub fn process_sctp(
        &mut self,
        direction: Direction,
        event: SctpEvent,
        timeouts: &StateTimeouts,
    ) -> StateChange {
        let ConnState::Sctp(cur) = self.state else {
            return self.unchanged();
        };
        let dir = self.table_direction(direction);
        let next = sctp_transition(cur, dir, event);
        self.set_state(ConnState::Sctp(next), timeouts)
    }

    /// UDP packet: timeout back to the UDP timeout; a reply (output)
    /// assures the template. Never changes activity.
    pub fn process_udp(&mut self, direction: Direction, timeouts: &StateTimeouts) -> StateChange {
        if self.state != ConnState::Udp || self.is_template() {
            return self.unchanged();
        }
        self.timeout_ms = secs_to_ms(timeouts.udp);
        let mut change = self.unchanged();
        change.assures_template = direction == Direction::Output;
        change
    }

    fn unchanged(&self) -> StateChange {
        let active = !self.is_inactive();
        StateChange {
            old: self.state,
            new: self.state,
            was_active: active,
            now_active: active,
            assures_template: false,
        }
    }
}

//! The IPVS TCP state machine: states, their kernel names and default
//! timeouts, which states count as "active", and the transition tables.
//!
//! IPVS does not track TCP like a full stack. It sees a packet, picks a row
//! from its flags (RST before SYN before FIN before ACK) and a block from
//! the direction (client->director "input", real server->director "output",
//! or "input-only" for DR/TUN where replies bypass the director), and reads
//! the next state from a table indexed by the current state. The table
//! values below are transcribed from the kernel's `ip_vs_proto_tcp.c`
//! (`tcp_states` and, for `secure_tcp`, `tcp_states_dos`).
//!
//! Pure functions and data only; the connection table applies them.

use super::Direction;

/// TCP connection state as IPVS tracks it (`IP_VS_TCP_S_*`), in the
/// kernel's numeric order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum TcpState {
    None = 0,
    Established = 1,
    SynSent = 2,
    SynRecv = 3,
    FinWait = 4,
    TimeWait = 5,
    Close = 6,
    CloseWait = 7,
    LastAck = 8,
    Listen = 9,
    Synack = 10,
}

/// Number of TCP states (`IP_VS_TCP_S_LAST`).
pub const TCP_STATE_COUNT: usize = 11;

impl TcpState {
    /// All states in kernel order.
    pub const ALL: [TcpState; TCP_STATE_COUNT] = [
        TcpState::None,
        TcpState::Established,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::FinWait,
        TcpState::TimeWait,
        TcpState::Close,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::Listen,
        TcpState::Synack,
    ];

    /// Kernel index of the state.
    pub fn index(self) -> usize {
        self as usize
    }

    /// State from its kernel index.
    pub fn from_index(i: usize) -> Option<TcpState> {
        TcpState::ALL.get(i).copied()
    }

    /// Name as printed by `ipvsadm -L -c` and `/proc/net/ip_vs_conn`.
    pub fn name(self) -> &'static str {
        match self {
            TcpState::None => "NONE",
            TcpState::Established => "ESTABLISHED",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::FinWait => "FIN_WAIT",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::Listen => "LISTEN",
            TcpState::Synack => "SYNACK",
        }
    }

    /// Kernel default timeout of the state, seconds.
    pub fn default_timeout_secs(self) -> u32 {
        DEFAULT_TCP_TIMEOUTS[self.index()]
    }

    /// Whether a connection in this state counts in the real server's
    /// ActiveConn (kernel `tcp_state_active_table`, since ~4.7:
    /// ESTABLISHED, SYN_SENT, SYN_RECV, SYNACK). Every other state counts
    /// in InActConn.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            TcpState::Established | TcpState::SynSent | TcpState::SynRecv | TcpState::Synack
        )
    }
}

/// Default timeouts per state, seconds, in kernel order
/// (NONE 2, ESTABLISHED 900, SYN_SENT 120, SYN_RECV 60, FIN_WAIT 120,
/// TIME_WAIT 120, CLOSE 10, CLOSE_WAIT 60, LAST_ACK 30, LISTEN 120,
/// SYNACK 120).
pub const DEFAULT_TCP_TIMEOUTS: [u32; TCP_STATE_COUNT] =
    [2, 900, 120, 60, 120, 120, 10, 60, 30, 120, 120];

/// The TCP header flag bits IPVS looks at. The constants are the bit
/// positions of the TCP header's flags byte, so the engine can pass that
/// byte straight through: `TcpFlags(header[13])`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;

    pub const fn new(bits: u8) -> TcpFlags {
        TcpFlags(bits)
    }
    pub fn syn(self) -> bool {
        self.0 & Self::SYN != 0
    }
    pub fn fin(self) -> bool {
        self.0 & Self::FIN != 0
    }
    pub fn ack(self) -> bool {
        self.0 & Self::ACK != 0
    }
    pub fn rst(self) -> bool {
        self.0 & Self::RST != 0
    }
}

/// Which kernel table drives transitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TcpTable {
    /// `tcp_states`, the normal table.
    #[default]
    Normal,
    /// `tcp_states_dos`, used while `secure_tcp` defense is on.
    Secure,
}

/// Row of a direction block, chosen by flag precedence rst > syn > fin > ack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Row {
    Syn = 0,
    Fin = 1,
    Ack = 2,
    Rst = 3,
}

fn row_of(flags: TcpFlags) -> Option<Row> {
    if flags.rst() {
        Some(Row::Rst)
    } else if flags.syn() {
        Some(Row::Syn)
    } else if flags.fin() {
        Some(Row::Fin)
    } else if flags.ack() {
        Some(Row::Ack)
    } else {
        None
    }
}

use TcpState::{
    Close as CL, CloseWait as CW, Established as ES, FinWait as FW, LastAck as LA, Listen as LI,
    SynRecv as SR, SynSent as SS, Synack as SA, TimeWait as TW,
};

type Block = [[TcpState; TCP_STATE_COUNT]; 4];

// Columns (current state): NO ES SS SR FW TW CL CW LA LI SA.
// Rows: syn, fin, ack, rst.
const NORMAL_INPUT: Block = [
    [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
    [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, TW],
    [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
    [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, SR],
];
const NORMAL_OUTPUT: Block = [
    [SS, ES, SS, SR, SS, SS, SS, SS, SS, LI, SR],
    [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
    [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
    [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL],
];
const NORMAL_INPUT_ONLY: Block = [
    [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
    [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
    [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
    [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
];

const SECURE_INPUT: Block = [
    [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SA],
    [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, SA],
    [ES, ES, SS, SR, FW, TW, CL, CW, CL, LI, SA],
    [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
];
const SECURE_OUTPUT: Block = [
    [SS, ES, SS, SA, SS, SS, SS, SS, SS, LI, SA],
    [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
    [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
    [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL],
];
const SECURE_INPUT_ONLY: Block = [
    [SA, ES, ES, SR, SA, SA, SA, SA, SA, SA, SA],
    [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
    [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
    [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
];

fn block(table: TcpTable, direction: Direction) -> &'static Block {
    match (table, direction) {
        (TcpTable::Normal, Direction::Input) => &NORMAL_INPUT,
        (TcpTable::Normal, Direction::Output) => &NORMAL_OUTPUT,
        (TcpTable::Normal, Direction::InputOnly) => &NORMAL_INPUT_ONLY,
        (TcpTable::Secure, Direction::Input) => &SECURE_INPUT,
        (TcpTable::Secure, Direction::Output) => &SECURE_OUTPUT,
        (TcpTable::Secure, Direction::InputOnly) => &SECURE_INPUT_ONLY,
    }
}

/// Next state for a packet with `flags` seen in the table block of
/// `direction`, using the normal table.
///
/// `direction` is the *table* direction: the caller has already turned
/// `Input` into `InputOnly` for connections that have not seen output
/// (see [`super::Conn`], which does this with the `NOOUTPUT` flag).
/// A packet with none of RST/SYN/FIN/ACK moves the connection to CLOSE,
/// as the kernel does.
pub fn tcp_transition(state: TcpState, direction: Direction, flags: TcpFlags) -> TcpState {
    tcp_transition_with(TcpTable::Normal, state, direction, flags)
}

/// [`tcp_transition`] with an explicit table (normal or `secure_tcp`).
pub fn tcp_transition_with(
    table: TcpTable,
    state: TcpState,
    direction: Direction,
    flags: TcpFlags,
) -> TcpState {
    match row_of(flags) {
        Some(row) => block(table, direction)[row as usize][state.index()],
        None => TcpState::Close,
    }
}

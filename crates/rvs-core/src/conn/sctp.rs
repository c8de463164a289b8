//! The IPVS SCTP state machine: the kernel's association states (as seen
//! from the real server's side), their names and timeouts, the mapping of
//! chunk types to events, and the transition table
//! (`sctp_states[direction][event][state]` in `ip_vs_proto_sctp.c`,
//! transcribed as data).
//!
//! Only ESTABLISHED counts as an active connection for SCTP.

use super::Direction;

/// SCTP association state (`IP_VS_SCTP_S_*`), in kernel order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum SctpState {
    None = 0,
    /// First INIT from the client, waiting for INIT ACK.
    Init1 = 1,
    /// A retransmitted INIT from the client.
    Init = 2,
    /// Server sent INIT ACK, waiting for COOKIE ECHO.
    CookieSent = 3,
    /// Client sent COOKIE ECHO, waiting for COOKIE ACK.
    CookieReplied = 4,
    /// Server sent INIT (server-initiated setup), waiting for INIT ACK.
    CookieWait = 5,
    /// Client sent INIT ACK, waiting for COOKIE ECHO from the server.
    Cookie = 6,
    /// Server sent COOKIE ECHO, waiting for COOKIE ACK.
    CookieEchoed = 7,
    Established = 8,
    ShutdownSent = 9,
    ShutdownReceived = 10,
    ShutdownAckSent = 11,
    /// INIT answered with ABORT.
    Rejected = 12,
    Closed = 13,
}

/// Number of SCTP states (`IP_VS_SCTP_S_LAST`).
pub const SCTP_STATE_COUNT: usize = 14;

/// Seconds: the kernel's `IP_VS_SCTP_MAX_RTO`, `(60 + 1)` s.
const MAX_RTO: u32 = 61;

/// Default timeouts per state, seconds, in kernel order.
pub const DEFAULT_SCTP_TIMEOUTS: [u32; SCTP_STATE_COUNT] = [
    2,       // NONE
    4,       // INIT1: (0 + 3 + 1)
    MAX_RTO, // INIT
    MAX_RTO, // C-SENT
    MAX_RTO, // C-REPLIED
    MAX_RTO, // C-WAIT
    MAX_RTO, // COOKIE
    MAX_RTO, // C-ECHOED
    900,     // ESTABLISHED
    MAX_RTO, // S-SENT
    MAX_RTO, // S-RECEIVED
    MAX_RTO, // S-ACK-SENT
    4,       // REJECTED: (0 + 3 + 1)
    MAX_RTO, // CLOSED
];

impl SctpState {
    pub const ALL: [SctpState; SCTP_STATE_COUNT] = [
        SctpState::None,
        SctpState::Init1,
        SctpState::Init,
        SctpState::CookieSent,
        SctpState::CookieReplied,
        SctpState::CookieWait,
        SctpState::Cookie,
        SctpState::CookieEchoed,
        SctpState::Established,
        SctpState::ShutdownSent,
        SctpState::ShutdownReceived,
        SctpState::ShutdownAckSent,
        SctpState::Rejected,
        SctpState::Closed,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn from_index(i: usize) -> Option<SctpState> {
        SctpState::ALL.get(i).copied()
    }

    /// Name as the kernel prints it (`sctp_state_name_table`).
    pub fn name(self) -> &'static str {
        match self {
            SctpState::None => "NONE",
            SctpState::Init1 => "INIT1",
            SctpState::Init => "INIT",
            SctpState::CookieSent => "C-SENT",
            SctpState::CookieReplied => "C-REPLIED",
            SctpState::CookieWait => "C-WAIT",
            SctpState::Cookie => "COOKIE",
            SctpState::CookieEchoed => "C-ECHOED",
            SctpState::Established => "ESTABLISHED",
            SctpState::ShutdownSent => "S-SENT",
            SctpState::ShutdownReceived => "S-RECEIVED",
            SctpState::ShutdownAckSent => "S-ACK-SENT",
            SctpState::Rejected => "REJECTED",
            SctpState::Closed => "CLOSED",
        }
    }

    pub fn default_timeout_secs(self) -> u32 {
        DEFAULT_SCTP_TIMEOUTS[self.index()]
    }

    /// Only ESTABLISHED counts in ActiveConn.
    pub fn is_active(self) -> bool {
        self == SctpState::Established
    }
}

/// What a packet means to the state machine, from its first chunk type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum SctpEvent {
    /// DATA, SACK, HEARTBEAT(-ACK), ECNE, CWR and every unknown chunk.
    Data = 0,
    Init = 1,
    InitAck = 2,
    CookieEcho = 3,
    CookieAck = 4,
    Shutdown = 5,
    ShutdownAck = 6,
    ShutdownComplete = 7,
    Error = 8,
    Abort = 9,
}

const SCTP_EVENT_COUNT: usize = 10;

impl SctpEvent {
    /// Event of a chunk type (RFC 9260 chunk ids). Unknown types are DATA,
    /// as in the kernel.
    ///
    /// The kernel also looks one chunk further when the first chunk is
    /// COOKIE ECHO or COOKIE ACK: if the next chunk is ABORT, the packet
    /// counts as ABORT. The packet parser does that look-ahead and passes
    /// [`SctpEvent::Abort`].
    pub fn from_chunk_type(chunk_type: u8) -> SctpEvent {
        match chunk_type {
            1 => SctpEvent::Init,
            2 => SctpEvent::InitAck,
            6 => SctpEvent::Abort,
            7 => SctpEvent::Shutdown,
            8 => SctpEvent::ShutdownAck,
            9 => SctpEvent::Error,
            10 => SctpEvent::CookieEcho,
            11 => SctpEvent::CookieAck,
            14 => SctpEvent::ShutdownComplete,
            _ => SctpEvent::Data,
        }
    }
}

use SctpState::{
    Closed as CL, Cookie as CO, CookieEchoed as CE, CookieReplied as CR, CookieSent as CS,
    CookieWait as CW, Established as ES, Init as IN, Init1 as I1, Rejected as RJ,
    ShutdownAckSent as SA, ShutdownReceived as SR, ShutdownSent as SS,
};

type Block = [[SctpState; SCTP_STATE_COUNT]; SCTP_EVENT_COUNT];

// Columns (current state): NO I1 IN CS CR CW CO CE ES SS SR SA RJ CL.
// Rows: data, init, init_ack, cookie_echo, cookie_ack, shutdown,
// shutdown_ack, shutdown_complete, error, abort.
const INPUT: Block = [
    [ES, I1, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
    [I1, IN, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, IN, IN],
    [CW, CW, CW, CS, CR, CO, CO, CE, ES, SS, SR, SA, RJ, CL],
    [CR, IN, IN, CR, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
    [ES, I1, IN, CS, CR, CW, CO, ES, ES, SS, SR, SA, RJ, CL],
    [SR, I1, IN, CS, CR, CW, CO, CE, SR, SS, SR, SA, RJ, CL],
    [CL, IN, IN, CS, CR, CW, CO, CE, ES, CL, SR, CL, RJ, CL],
    [CL, CL, CL, CS, CR, CW, CO, CE, ES, SS, SR, CL, RJ, CL],
    [CL, I1, IN, CS, CR, CW, CO, CL, ES, SS, SR, SA, RJ, CL],
    [CL, CL, CL, CL, CL, RJ, CL, CL, CL, CL, CL, CL, CL, CL],
];
const OUTPUT: Block = [
    [ES, I1, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
    [CW, CW, CW, CW, CW, CW, CW, CW, ES, CW, CW, CW, CW, CW],
    [CS, CS, CS, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
    [CE, CE, CE, CE, CE, CE, CE, CE, ES, SS, SR, SA, RJ, CL],
    [ES, ES, ES, ES, ES, ES, ES, ES, ES, SS, SR, SA, RJ, CL],
    [SS, SS, SS, SS, SS, SS, SS, SS, SS, SS, SR, SA, RJ, CL],
    [SA, SA, SA, SA, SA, CW, CO, CE, ES, SA, SA, SA, RJ, CL],
    [CL, I1, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
    [CL, CL, CL, CL, CL, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
    [CL, RJ, CL, CL, CL, CL, CL, CL, CL, CL, CL, CL, CL, CL],
];
const INPUT_ONLY: Block = [
    [ES, I1, IN, CS, CR, ES, CO, CE, ES, SS, SR, SA, RJ, CL],
    [I1, IN, IN, IN, IN, IN, CO, CE, ES, SS, SR, SA, IN, IN],
    [CE, CE, CE, CE, CE, CE, CO, CE, ES, SS, SR, SA, RJ, CL],
    [ES, ES, ES, ES, ES, ES, CO, CE, ES, SS, SR, SA, RJ, CL],
    [ES, I1, IN, ES, ES, CW, ES, ES, ES, SS, SR, SA, RJ, CL],
    [SR, I1, IN, CS, CR, CW, CO, CE, SR, SS, SR, SA, RJ, CL],
    [CL, IN, IN, CS, CR, CW, CO, CE, CL, CL, SR, CL, RJ, CL],
    [CL, CL, CL, CL, CL, CW, CO, CE, ES, SS, CL, CL, RJ, CL],
    [CL, I1, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
    [CL, CL, CL, CL, CL, RJ, CL, CL, CL, CL, CL, CL, CL, CL],
];

/// Next SCTP state for `event` seen in the table block of `direction`
/// (already adjusted to `InputOnly` for connections without output).
pub fn sctp_transition(state: SctpState, direction: Direction, event: SctpEvent) -> SctpState {
    let block = match direction {
        Direction::Input => &INPUT,
        Direction::Output => &OUTPUT,
        Direction::InputOnly => &INPUT_ONLY,
    };
    block[event as usize][state.index()]
}

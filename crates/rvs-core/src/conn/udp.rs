//! UDP in IPVS has a single state, printed `UDP`, with one timeout
//! (300 s by default, `ipvsadm --set`'s third value). A UDP connection never
//! counts as active: it stays in the real server's InActConn for its whole
//! life. A packet from the real server (output direction) marks the
//! controlling persistence template as assured.

/// Name of the only UDP state (`udp_state_name_table`).
pub const UDP_STATE_NAME: &str = "UDP";

/// Default UDP timeout, seconds.
pub const DEFAULT_UDP_TIMEOUT: u32 = 300;

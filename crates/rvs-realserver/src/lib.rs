//! rvs-realserver: the real-server side of LVS-DR and LVS-TUN.
//!
//! * [`service`]: `start` / `stop` / `status`, the seed's real-server
//!   service script (VIP /32 on `lo`, `arp_ignore=1`, `arp_announce=2`,
//!   and for TUN `rp_filter=0` plus the decapsulator), with the values it
//!   found kept in a per-namespace state file so `stop` puts them back.
//! * [`tunnel`]: an IPIP decapsulator for hosts without the kernel's
//!   `ipip` module (raw `IPPROTO_IPIP` socket in, TUN device out), so a
//!   TUN real server answers the client directly from the VIP.
//! * [`decap`] and the planning parts of [`setup`] are pure and unit
//!   tested; the rest talks to `/proc/sys`, `ip` and sockets.
//!
//! It does nothing on the director and knows nothing of the engine.

pub mod decap;
pub mod service;
pub mod setup;
pub mod tunnel;

/// What went wrong while setting up or running the real server side.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{command} failed: {stderr}")]
    Command { command: String, stderr: String },
    #[error("{0}")]
    Invalid(String),
}

impl SetupError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> SetupError {
        SetupError::Io {
            what: what.into(),
            source,
        }
    }
}

//! Network-namespace topologies for rvs's end-to-end tests and demo.
//!
//! [`Netns`] is one namespace owned by the caller: created with a unique
//! name, it runs commands and long-lived processes inside itself, and on
//! drop (panics included) kills the processes it started, by PID, then
//! deletes itself. [`NatTopology`] builds the seed's NAT walkthrough out
//! of four of them: a client, a director (VIP on the client side, DIP on
//! a bridge towards the real servers, forwarding on) and two real servers
//! whose gateway is the DIP, each running an HTTP server that answers
//! `RS1-web1` / `RS2-web2`. [`DrTopology`] puts a client, a director and
//! two real servers on one bridge (the DR walkthrough); [`TunTopology`]
//! puts the real servers in another network behind a router (the TUN
//! walkthrough).
//!
//! Everything is done with the `ip` command (iproute2) and `/proc/sys`
//! writes through `ip netns exec`; nothing here touches the host's own
//! namespace except creating and deleting the namespaces it names.
//! Addresses are documentation ranges only (198.51.100.0/24,
//! 203.0.113.0/24).

#![forbid(unsafe_code)]

mod director;
mod download;
mod dr;
mod nat;
mod netns;
mod probe;
mod tun;

pub use director::{workspace_bin, Rvsd};
pub use download::{start_gated_download, GatedDownload};
pub use dr::{DrTopology, DR_CIP, DR_DIP, DR_RIP1, DR_RIP2, DR_VIP};
pub use nat::{
    curl, hold_tcp, start_http, start_http_bound, start_http_on, NatTopology, NAT_CIP, NAT_DIP,
    NAT_RIP1, NAT_RIP2, NAT_VIP,
};
pub use netns::{bridge, mac_of, plug, tx_checksum_off, unique_prefix, veth, Netns, Spawned};
pub use probe::{
    count_rule, link_counter, random_bytes, rule_counters, socat_receiver, socat_send,
    wait_listening,
};
pub use tun::{TunTopology, TUN_CIP, TUN_DIP, TUN_RIP1, TUN_RIP2, TUN_ROUTER, TUN_VIP};

use std::process::Output;

/// What went wrong while building or driving a topology.
#[derive(Debug, thiserror::Error)]
pub enum TestnetError {
    #[error("cannot run {command}: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("{command} failed ({status}): {stderr}")]
    Failed {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("{what} not ready after {waited_ms} ms")]
    Timeout { what: String, waited_ms: u128 },
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// Turn a finished command into an error unless it succeeded.
pub(crate) fn check(command: String, out: Output) -> Result<Output, TestnetError> {
    if out.status.success() {
        Ok(out)
    } else {
        Err(TestnetError::Failed {
            command,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Is this process root (namespaces need it)? Reads `/proc/self/status`.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

//! Read-only views of the engine's state, as listings need them
//! (`ipvsadm -L`, `-S`, `-L -c`, JSON, metrics).

use crate::model::{Counters, DestConfig, Rates, ServiceConfig};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// The whole table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSnapshot {
    /// Connection hash table size shown in the `-L` header (`size=4096`).
    pub conn_table_size: u32,
    /// Services in the engine's order (insertion order).
    pub services: Vec<ServiceSnapshot>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSnapshot {
    pub config: ServiceConfig,
    pub stats: Counters,
    pub rates: Rates,
    /// Real servers in the kernel's list order (newest first).
    pub dests: Vec<DestSnapshot>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestSnapshot {
    pub config: DestConfig,
    pub active: u32,
    pub inactive: u32,
    /// Persistence templates pointing at this server (`PersistConn`).
    pub persist: u32,
    pub overloaded: bool,
    pub stats: Counters,
    pub rates: Rates,
}

/// Protocol column of `ipvsadm -L -c`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConnProtocol {
    Tcp,
    Udp,
    Sctp,
    /// Firewall-mark persistence template (`IP`).
    Ip,
}

impl ConnProtocol {
    pub fn name(self) -> &'static str {
        match self {
            ConnProtocol::Tcp => "TCP",
            ConnProtocol::Udp => "UDP",
            ConnProtocol::Sctp => "SCTP",
            ConnProtocol::Ip => "IP",
        }
    }
}

/// One row of `ipvsadm -L -c` (a connection or a persistence template).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnSnapshot {
    pub protocol: ConnProtocol,
    pub caddr: IpAddr,
    pub cport: u16,
    /// VIP, or the fwmark as `0.0.0.N` for fwmark templates.
    pub vaddr: IpAddr,
    pub vport: u16,
    pub daddr: IpAddr,
    pub dport: u16,
    /// State name as the kernel prints it (`ESTABLISHED`, `ASSURED`, `UDP`, ...).
    pub state: String,
    /// Time left until expiry, milliseconds.
    pub expires_ms: u64,
    pub is_template: bool,
    pub pe_name: Option<String>,
    pub pe_data: Option<String>,
}

/// `--set` / `-L --timeout` values, seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeouts {
    pub tcp: u32,
    pub tcpfin: u32,
    pub udp: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            tcp: 900,
            tcpfin: 120,
            udp: 300,
        }
    }
}

//! Health checking and draining as the control protocol carries them: the
//! status listing (`rvsadm --health`), drain requests and their answers.
//!
//! These are plain data, filled in by rvsd from its health checker and
//! drain table; this crate decides nothing about them.

use rvs_core::ServiceKey;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// Health state of one declared real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerHealthState {
    Up,
    Down,
}

/// One real server in the status listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerHealth {
    pub addr: IpAddr,
    pub port: u16,
    pub state: ServerHealthState,
    /// Changed by an operator (ipvsadm, `--drain`); the checker leaves it
    /// alone until `--clear-override`.
    pub overridden: bool,
    /// Weight in the configuration file.
    pub configured_weight: i32,
    /// Weight the checker wants (dynamic weight, else configured).
    pub effective_weight: i32,
    /// Text of the newest finished check attempt (`HTTP 200`,
    /// `connect to ...: connection refused`).
    pub last_result: Option<String>,
    /// Whether that attempt passed.
    pub last_passed: Option<bool>,
    /// Milliseconds since that attempt finished.
    pub last_check_ago_ms: Option<u64>,
    /// Milliseconds since the state last changed; `None`: not since rvsd
    /// started.
    pub last_transition_ago_ms: Option<u64>,
    /// Wall-clock time of the last transition (Unix milliseconds).
    pub last_transition_unix_ms: Option<u64>,
    /// Duration of the newest check attempt, microseconds.
    pub last_latency_us: Option<u64>,
    /// Checkers configured for this server.
    pub checkers: usize,
}

/// One virtual service in the status listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceHealth {
    pub service: ServiceKey,
    pub quorum_up: bool,
    /// Total weight of live servers.
    pub live_weight: u64,
    /// The sorry server is serving.
    pub sorry_active: bool,
    pub servers: Vec<ServerHealth>,
}

/// Why a real server is draining.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DrainReason {
    /// `rvsadm --drain`.
    Operator,
    /// The configuration no longer declares it (reload).
    Reload,
    /// Its health checks failed.
    Health,
}

/// A real server listed with weight 0 until its connections end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainStatus {
    pub service: ServiceKey,
    pub addr: IpAddr,
    pub port: u16,
    pub reason: DrainReason,
    /// ActiveConn now.
    pub active: u32,
    /// InActConn now.
    pub inactive: u32,
    /// Milliseconds since the drain started.
    pub elapsed_ms: u64,
    /// Milliseconds after which it is removed anyway; `None`: no bound.
    pub timeout_ms: Option<u64>,
}

/// The answer to [`crate::protocol::Request::HealthStatus`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthReport {
    /// rvsd runs with `--config` (health checking on).
    pub checking: bool,
    pub services: Vec<ServiceHealth>,
    /// Servers draining now.
    pub drains: Vec<DrainStatus>,
}

/// The answer to [`crate::protocol::Request::Reload`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadSummary {
    /// The file reloaded.
    pub file: String,
    /// Engine commands applied.
    pub commands: usize,
    /// Operator overrides cleared by this reload.
    pub overrides_cleared: usize,
    /// Notices about the file (unsupported keywords), with their lines.
    pub notices: Vec<String>,
}

//! The parsed configuration, independent of the file format it came from:
//! services with their real servers, health settings and checks. Both the
//! TOML reader and the keepalived.conf reader produce a [`Config`].

use rvs_core::{DestConfig, ServiceConfig, ServiceKey};
use rvs_health::{CheckTiming, PoolConfig, ProbeSpec, ServerSpec};
use std::net::SocketAddr;
use std::time::Duration;

/// Where the metrics endpoint listens unless configured: loopback only, so
/// a fresh install exposes nothing to the network.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9617";

/// A whole configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Config {
    pub global: Global,
    pub services: Vec<ServiceDef>,
}

/// Daemon-wide settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Global {
    /// Prometheus endpoint address; `None` = the default
    /// ([`DEFAULT_METRICS_LISTEN`]) unless `metrics = false`.
    pub metrics_listen: Option<SocketAddr>,
    /// Serve metrics at all (default true).
    pub metrics_disabled: bool,
    /// Command run on every transition, with arguments
    /// `up|down SERVICE SERVER REASON` (default none).
    pub notify: Option<String>,
}

/// One virtual service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceDef {
    /// `-A`/`-E` settings (key, scheduler, persistence, flags).
    pub service: ServiceConfig,
    /// keepalived `quorum` (default 1).
    pub quorum: u32,
    /// keepalived `hysteresis` (default 0).
    pub hysteresis: u32,
    /// Sorry server entry, served when quorum is lost.
    pub sorry: Option<DestConfig>,
    /// Keep the sorry server at weight 0 when it does not serve.
    pub sorry_inhibit: bool,
    /// Start with checked servers down (keepalived `alpha`).
    pub alpha: bool,
    pub reals: Vec<RealDef>,
    /// Line of the service's declaration in its file (1-based).
    pub line: usize,
    /// Draining of real servers that a reload or a failed check removes
    /// (rvs extension; `None`: removed at once, as keepalived does).
    pub drain: Option<DrainPolicy>,
}

/// How removed real servers of a service drain: listed with weight 0
/// until their connections reach zero or `timeout` passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainPolicy {
    /// `None`: wait for the connections however long they last.
    pub timeout: Option<Duration>,
}

/// Drain timeout when `drain = true` names none: five minutes, long
/// enough for ordinary requests and downloads to finish, short enough that
/// a stuck client cannot keep a removed server listed forever.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(300);

/// One real server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealDef {
    /// Its table entry with the configured weight.
    pub dest: DestConfig,
    /// Weight 0 instead of removal on failure.
    pub inhibit_on_failure: bool,
    /// Per-server transition commands (keepalived `notify_up`/`notify_down`).
    pub notify_up: Option<String>,
    pub notify_down: Option<String>,
    /// All must pass for the server to be up.
    pub checks: Vec<CheckDef>,
}

/// One checker: its timing and what it probes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckDef {
    pub timing: CheckTiming,
    pub probe: ProbeSpec,
}

impl ServiceDef {
    pub fn key(&self) -> ServiceKey {
        self.service.key
    }

    /// The health pool's view of this service.
    pub fn pool_config(&self) -> PoolConfig {
        PoolConfig {
            service: self.service.key,
            quorum: self.quorum,
            hysteresis: self.hysteresis,
            sorry: self.sorry.clone(),
            sorry_inhibit: self.sorry_inhibit,
            alpha: self.alpha,
        }
    }

    /// The declared servers with their checks, for the health pool.
    pub fn server_specs(&self) -> Vec<ServerSpec<ProbeSpec>> {
        self.reals
            .iter()
            .map(|r| ServerSpec {
                dest: r.dest.clone(),
                inhibit_on_failure: r.inhibit_on_failure,
                checks: r
                    .checks
                    .iter()
                    .map(|c| (c.timing, c.probe.clone()))
                    .collect(),
            })
            .collect()
    }
}

impl Config {
    /// The service with this key.
    pub fn service(&self, key: &ServiceKey) -> Option<&ServiceDef> {
        self.services.iter().find(|s| s.service.key == *key)
    }
}

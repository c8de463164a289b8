//! rvs-api: how front ends talk to a director.
//!
//! [`Director`] is the one seam between a front end (rvsadm, the config
//! loader, the health checker, an HTTP API) and the engine that owns the
//! table: an in-process engine ([`LocalDirector`]) or a daemon over the
//! control socket (the protocol lives in [`protocol`]). This crate does not
//! own sockets' lifetimes or any business rule; it moves `Command`s and
//! snapshots.

#![forbid(unsafe_code)]

pub mod health;
pub mod protocol;

pub use health::{
    DrainReason, DrainStatus, HealthReport, ReloadSummary, ServerHealth, ServerHealthState,
    ServiceHealth,
};
pub use protocol::KnobValue;

use rvs_core::snapshot::{ConnSnapshot, TableSnapshot, Timeouts};
use rvs_core::{ApplyError, Command, ServiceKey};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// Why a director request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum DirectorError {
    /// Command number `index` (0-based) of the batch was refused; nothing
    /// of the batch was applied.
    #[error("{error}")]
    Apply { index: usize, error: ApplyError },
    /// The director could not be reached or answered nonsense.
    #[error("{0}")]
    Transport(String),
    /// The caller may not change the director.
    #[error("Permission denied (you must be root)")]
    PermissionDenied,
}

/// A director: something that owns an LVS table.
pub trait Director {
    /// Apply a batch of commands atomically: all or nothing.
    fn apply(&mut self, commands: Vec<Command>) -> Result<(), DirectorError>;
    /// The services and real servers with counters.
    fn table(&mut self) -> Result<TableSnapshot, DirectorError>;
    /// Connection entries and persistence templates (`-L -c`).
    fn connections(&mut self) -> Result<Vec<ConnSnapshot>, DirectorError>;
    /// `--set` timeouts (`-L --timeout`).
    fn timeouts(&mut self) -> Result<Timeouts, DirectorError>;
    /// Every IPVS knob (`/proc/sys/net/ipv4/vs/` names) with its current
    /// value, in [`rvs_core::knobs::KNOB_NAMES`] order (`rvsadm --sysctl`,
    /// lossless save).
    ///
    /// The default answers with a transport error, for directors that
    /// cannot report their settings.
    fn knobs(&mut self) -> Result<Vec<KnobValue>, DirectorError> {
        Err(DirectorError::Transport(
            "this director does not report its IPVS settings".to_string(),
        ))
    }

    /// rvs extension: re-read the configuration file and apply the
    /// difference. The default: no configuration to reload.
    fn reload(&mut self, clear_overrides: bool) -> Result<ReloadSummary, DirectorError> {
        let _ = clear_overrides;
        Err(no_health("reload a configuration"))
    }

    /// rvs extension: the health status listing and the drains.
    fn health(&mut self) -> Result<HealthReport, DirectorError> {
        Err(no_health("report health"))
    }

    /// rvs extension: drain one real server.
    fn drain(
        &mut self,
        service: ServiceKey,
        addr: IpAddr,
        port: u16,
        timeout_secs: Option<u64>,
    ) -> Result<DrainStatus, DirectorError> {
        let _ = (service, addr, port, timeout_secs);
        Err(no_health("drain"))
    }

    /// rvs extension: hand an overridden real server back to its checks.
    fn clear_override(
        &mut self,
        service: ServiceKey,
        addr: IpAddr,
        port: u16,
    ) -> Result<(), DirectorError> {
        let _ = (service, addr, port);
        Err(no_health("clear an override"))
    }
}

fn no_health(what: &str) -> DirectorError {
    DirectorError::Transport(format!("this director cannot {what}"))
}

/// A director running in this process around an [`rvs_core::Engine`].
#[derive(Debug, Default)]
pub struct LocalDirector {
    pub engine: rvs_core::Engine,
}

impl LocalDirector {
    pub fn new() -> LocalDirector {
        LocalDirector::default()
    }
}

impl Director for LocalDirector {
    fn apply(&mut self, commands: Vec<Command>) -> Result<(), DirectorError> {
        self.engine
            .apply_all(commands)
            .map_err(|(index, error)| DirectorError::Apply { index, error })
    }

    fn table(&mut self) -> Result<TableSnapshot, DirectorError> {
        Ok(self.engine.snapshot())
    }

    fn connections(&mut self) -> Result<Vec<ConnSnapshot>, DirectorError> {
        Ok(self.engine.connections())
    }

    fn timeouts(&mut self) -> Result<Timeouts, DirectorError> {
        Ok(self.engine.timeouts())
    }

    fn knobs(&mut self) -> Result<Vec<KnobValue>, DirectorError> {
        Ok(protocol::knob_values(self.engine.knobs()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_director_reports_knobs_and_their_changes() {
        let mut d = LocalDirector::new();
        let before = d.knobs().expect("knobs");
        let names: Vec<&str> = before.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(names, rvs_core::knobs::KNOB_NAMES.to_vec());
        let get = |ks: &[KnobValue], n: &str| ks.iter().find(|k| k.name == n).map(|k| k.value);
        assert_eq!(get(&before, "conn_reuse_mode"), Some(1));
        assert_eq!(get(&before, "lblc_expiration"), Some(86_400));
        d.apply(vec![Command::SetKnob {
            name: "expire_nodest_conn".into(),
            value: 1,
        }])
        .expect("set");
        let after = d.knobs().expect("knobs");
        assert_eq!(get(&after, "expire_nodest_conn"), Some(1));
        assert_eq!(get(&after, "sloppy_tcp"), Some(0));
    }
}

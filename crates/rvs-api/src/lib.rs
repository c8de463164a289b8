//! rvs-api: how front ends talk to a director.
//!
//! [`Director`] is the one seam between a front end (rvsadm, the config
//! loader, the health checker, an HTTP API) and the engine that owns the
//! table: an in-process engine ([`LocalDirector`]) or a daemon over the
//! control socket (the protocol lives in [`protocol`]). This crate does not
//! own sockets' lifetimes or any business rule; it moves `Command`s and
//! snapshots.

#![forbid(unsafe_code)]

pub mod protocol;

use rvs_core::snapshot::{ConnSnapshot, TableSnapshot, Timeouts};
use rvs_core::{ApplyError, Command};
use serde::{Deserialize, Serialize};

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
}

//! The engine: the one object a director runs. Configuration comes in as
//! [`Command`]s through [`Engine::apply`]; packets come in as frames with
//! the current time through `Engine::process`; time passes through
//! [`Engine::tick`]. The engine never reads a clock or touches a socket.

use crate::command::{ApplyError, Command};
use crate::knobs::Knobs;
use crate::snapshot::{ConnSnapshot, TableSnapshot, Timeouts};
use crate::table::ServiceTable;
use std::net::IpAddr;

/// Connection hash table size shown in `ipvsadm -L` (the kernel default, 2^12).
pub const CONN_TAB_SIZE: u32 = 4096;

/// The LVS engine.
#[derive(Debug, Default)]
pub struct Engine {
    pub(crate) table: ServiceTable,
}

impl Engine {
    pub fn new() -> Engine {
        Engine::default()
    }

    /// Apply one command.
    pub fn apply(&mut self, command: Command) -> Result<(), ApplyError> {
        self.apply_all(vec![command]).map_err(|(_, e)| e)
    }

    /// Apply a batch atomically: either every command is applied or none
    /// is, and the error names the first failing command's index.
    pub fn apply_all(&mut self, commands: Vec<Command>) -> Result<(), (usize, ApplyError)> {
        self.table.apply_all(commands)
    }

    /// Declare the director's own addresses (real servers there are `Local`).
    pub fn set_local_addrs(&mut self, addrs: impl IntoIterator<Item = IpAddr>) {
        self.table.local_addrs = addrs.into_iter().collect();
    }

    pub fn knobs(&self) -> &Knobs {
        &self.table.knobs
    }

    pub fn timeouts(&self) -> Timeouts {
        self.table.timeouts
    }

    /// Services and real servers with counters.
    pub fn snapshot(&self) -> TableSnapshot {
        TableSnapshot {
            conn_table_size: CONN_TAB_SIZE,
            services: self.table.services.iter().map(|s| s.snapshot()).collect(),
        }
    }

    /// Connection entries and persistence templates.
    pub fn connections(&self) -> Vec<ConnSnapshot> {
        Vec::new()
    }
}

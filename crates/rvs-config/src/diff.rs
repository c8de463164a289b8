//! `diff(old, new)`: the engine commands that take a table built from the
//! old file to one built from the new file, touching only what changed.
//!
//! Services are matched by key, real servers by address and port. An
//! unchanged service gets no command and an unchanged real server gets no
//! command, so its connections and counters survive. Order: removed
//! services, edited services, added services (each followed by its real
//! servers), then, per kept service, real-server deletes, edits and adds.
//! Health settings (checks, quorum, sorry server) produce no command: they
//! are the health checker's business.

use crate::model::{Config, ServiceDef};
use rvs_core::{Command, ServiceKey};

/// The commands from `old`'s table to `new`'s table.
pub fn diff(old: &Config, new: &Config) -> Vec<Command> {
    let mut out = Vec::new();
    for o in &old.services {
        if new.service(&o.key()).is_none() {
            out.push(Command::DeleteService(o.key()));
        }
    }
    for n in &new.services {
        match old.service(&n.key()) {
            Some(o) if o.service != n.service => out.push(Command::EditService(n.service.clone())),
            Some(_) => {}
            None => {
                out.push(Command::AddService(n.service.clone()));
                for r in &n.reals {
                    out.push(Command::AddDest {
                        service: n.key(),
                        dest: r.dest.clone(),
                    });
                }
            }
        }
    }
    for n in &new.services {
        if let Some(o) = old.service(&n.key()) {
            out.extend(diff_reals(n.key(), o, n));
        }
    }
    out
}

/// Real-server commands for one service present in both files.
pub fn diff_reals(key: ServiceKey, old: &ServiceDef, new: &ServiceDef) -> Vec<Command> {
    let mut deletes = Vec::new();
    let mut edits = Vec::new();
    let mut adds = Vec::new();
    for o in &old.reals {
        let kept = new
            .reals
            .iter()
            .any(|n| n.dest.addr == o.dest.addr && n.dest.port == o.dest.port);
        if !kept {
            deletes.push(Command::DeleteDest {
                service: key,
                addr: o.dest.addr,
                port: o.dest.port,
            });
        }
    }
    for n in &new.reals {
        let old_entry = old
            .reals
            .iter()
            .find(|o| o.dest.addr == n.dest.addr && o.dest.port == n.dest.port);
        match old_entry {
            Some(o) if o.dest != n.dest => edits.push(Command::EditDest {
                service: key,
                dest: n.dest.clone(),
            }),
            Some(_) => {}
            None => adds.push(Command::AddDest {
                service: key,
                dest: n.dest.clone(),
            }),
        }
    }
    deletes.extend(edits);
    deletes.extend(adds);
    deletes
}

/// Only the service-level commands of [`diff`] (no real-server command);
/// what a daemon applies when a health checker owns the real servers.
pub fn diff_services(old: &Config, new: &Config) -> Vec<Command> {
    diff(old, new)
        .into_iter()
        .filter(|c| {
            matches!(
                c,
                Command::AddService(_) | Command::EditService(_) | Command::DeleteService(_)
            )
        })
        .collect()
}

//! The service table: virtual services with their real servers, and the
//! configuration half of the engine's `apply(Command)`.
//!
//! Invariants:
//! - a service key appears at most once; a (address, port) at most once per service;
//! - real servers are kept newest first, as the kernel's list;
//! - a removed real server that connections still point to is parked in the
//!   trash and resurrected (with its connection counts, but zeroed
//!   statistics) if the same server is added back to the same service, as
//!   the kernel does; this is why the seed's listing after `-C` / `-R`
//!   still shows the old InActConn numbers;
//! - a batch of commands is validated completely on a shadow model before
//!   the first one is applied, so a failing batch changes nothing.

use crate::command::{ApplyError, Command};
use crate::estimator::Estimator;
use crate::knobs::Knobs;
use crate::model::{
    Counters, DestConfig, DestId, Family, FwdMethod, ServiceConfig, ServiceKey, TunnelKind,
};
use crate::sched::{new_scheduler, DestChange, SCHEDULER_NAMES};
use crate::service::{Dest, Service};
use crate::snapshot::Timeouts;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

/// Maglev table size; the kernel refuses more real servers than slots.
pub const MH_TABLE_SIZE: usize = 4093;

/// Where a real server lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DestLocation {
    pub service: usize,
    pub dest: usize,
}

/// A parked real server, removed from its service while connections still
/// reference it.
#[derive(Debug)]
pub struct TrashedDest {
    pub service: ServiceKey,
    pub dest: Dest,
}

#[derive(Debug, Default)]
pub struct ServiceTable {
    /// Services in creation order.
    pub services: Vec<Service>,
    pub trash: Vec<TrashedDest>,
    next_dest_id: u64,
    /// Addresses of the director itself; real servers there become `Local`.
    pub local_addrs: HashSet<IpAddr>,
    pub timeouts: Timeouts,
    pub knobs: Knobs,
}

fn sched_known(name: &str) -> bool {
    SCHEDULER_NAMES.contains(&name)
}

fn check_service(config: &ServiceConfig) -> Result<(), ApplyError> {
    if !sched_known(&config.scheduler) {
        return Err(ApplyError::SchedulerNotFound);
    }
    if let Some(pe) = &config.pe {
        if pe != "sip" {
            return Err(ApplyError::SchedulerNotFound);
        }
    }
    if let ServiceKey::Fwmark { mark: 0, .. } = config.key {
        return Err(ApplyError::Invalid);
    }
    Ok(())
}

/// The kernel's and ipvsadm's checks on a real server's configuration.
fn check_dest(service: &ServiceKey, dest: &DestConfig) -> Result<(), ApplyError> {
    if dest.weight < 0 {
        return Err(ApplyError::OutOfRange);
    }
    if dest.l_threshold > dest.u_threshold {
        return Err(ApplyError::OutOfRange);
    }
    if Family::of(&dest.addr) != service.family() && !matches!(dest.fwd, FwdMethod::Tunnel { .. }) {
        return Err(ApplyError::AddressFamily);
    }
    if let FwdMethod::Tunnel {
        kind: TunnelKind::Gue { port: 0 },
        ..
    } = dest.fwd
    {
        return Err(ApplyError::Invalid);
    }
    Ok(())
}

/// What validation needs to know of a service.
#[derive(Debug, Clone)]
struct ShadowService {
    scheduler: String,
    dests: HashSet<(IpAddr, u16)>,
}

impl ServiceTable {
    pub fn new() -> ServiceTable {
        ServiceTable::default()
    }

    pub fn find(&self, key: &ServiceKey) -> Option<usize> {
        self.services.iter().position(|s| s.config.key == *key)
    }

    fn alloc_dest_id(&mut self) -> DestId {
        self.next_dest_id += 1;
        DestId(self.next_dest_id)
    }

    /// Locate a real server (live, not trashed) by id.
    pub fn locate(&self, id: DestId) -> Option<DestLocation> {
        self.services.iter().enumerate().find_map(|(si, s)| {
            s.dest_index_by_id(id).map(|di| DestLocation {
                service: si,
                dest: di,
            })
        })
    }

    /// A real server by id, live or in the trash.
    pub fn dest_mut(&mut self, id: DestId) -> Option<&mut Dest> {
        if let Some(loc) = self.locate(id) {
            return self
                .services
                .get_mut(loc.service)
                .and_then(|s| s.dests.get_mut(loc.dest));
        }
        self.trash
            .iter_mut()
            .find(|t| t.dest.id == id)
            .map(|t| &mut t.dest)
    }

    /// A real server by id, live or in the trash.
    pub fn dest(&self, id: DestId) -> Option<&Dest> {
        if let Some(loc) = self.locate(id) {
            return self
                .services
                .get(loc.service)
                .and_then(|s| s.dests.get(loc.dest));
        }
        self.trash.iter().find(|t| t.dest.id == id).map(|t| &t.dest)
    }

    /// Is this real server in a service's list (not trashed)?
    pub fn is_live(&self, id: DestId) -> bool {
        self.locate(id).is_some()
    }

    /// Validate a whole batch against a shadow of the table.
    pub fn validate(&self, commands: &[Command]) -> Result<(), (usize, ApplyError)> {
        let mut shadow: HashMap<ServiceKey, ShadowService> = self
            .services
            .iter()
            .map(|s| {
                (
                    s.config.key,
                    ShadowService {
                        scheduler: s.config.scheduler.clone(),
                        dests: s
                            .dests
                            .iter()
                            .map(|d| (d.config.addr, d.config.port))
                            .collect(),
                    },
                )
            })
            .collect();
        let mut knobs = self.knobs;
        for (i, cmd) in commands.iter().enumerate() {
            let r = validate_one(&mut shadow, &mut knobs, cmd);
            r.map_err(|e| (i, e))?;
        }
        Ok(())
    }

    /// Apply a batch atomically.
    pub fn apply_all(&mut self, commands: Vec<Command>) -> Result<(), (usize, ApplyError)> {
        self.validate(&commands)?;
        for (i, cmd) in commands.into_iter().enumerate() {
            // Validation above guarantees success; report the index anyway
            // rather than panic if the two ever disagree.
            self.apply(cmd).map_err(|e| (i, e))?;
        }
        Ok(())
    }

    /// Apply one command.
    pub fn apply(&mut self, cmd: Command) -> Result<(), ApplyError> {
        match cmd {
            Command::AddService(config) => self.add_service(config),
            Command::EditService(config) => self.edit_service(config),
            Command::DeleteService(key) => self.delete_service(&key),
            Command::Clear => {
                while let Some(s) = self.services.first() {
                    let key = s.config.key;
                    self.delete_service(&key)?;
                }
                Ok(())
            }
            Command::AddDest { service, dest } => self.add_dest(&service, dest),
            Command::EditDest { service, dest } => self.edit_dest(&service, dest),
            Command::DeleteDest {
                service,
                addr,
                port,
            } => self.delete_dest(&service, addr, port),
            Command::Zero(key) => self.zero(key.as_ref()),
            Command::SetTimeouts { tcp, tcpfin, udp } => {
                if tcp != 0 {
                    self.timeouts.tcp = tcp;
                }
                if tcpfin != 0 {
                    self.timeouts.tcpfin = tcpfin;
                }
                if udp != 0 {
                    self.timeouts.udp = udp;
                }
                Ok(())
            }
            Command::SetKnob { name, value } => self.knobs.set(&name, value),
        }
    }

    fn add_service(&mut self, config: ServiceConfig) -> Result<(), ApplyError> {
        check_service(&config)?;
        if self.find(&config.key).is_some() {
            return Err(ApplyError::ServiceExists);
        }
        let scheduler =
            new_scheduler(&config.scheduler, &[]).ok_or(ApplyError::SchedulerNotFound)?;
        self.services.push(Service {
            config,
            dests: Vec::new(),
            scheduler,
            stats: Counters::default(),
            estimator: Estimator::default(),
        });
        Ok(())
    }

    fn edit_service(&mut self, mut config: ServiceConfig) -> Result<(), ApplyError> {
        check_service(&config)?;
        let si = self.find(&config.key).ok_or(ApplyError::NoSuchService)?;
        let svc = self.services.get_mut(si).ok_or(ApplyError::NoSuchService)?;
        if svc.config.scheduler != config.scheduler {
            let views = svc.sched_views();
            svc.scheduler =
                new_scheduler(&config.scheduler, &views).ok_or(ApplyError::SchedulerNotFound)?;
        }
        config.key = svc.config.key;
        svc.config = config;
        Ok(())
    }

    fn delete_service(&mut self, key: &ServiceKey) -> Result<(), ApplyError> {
        let si = self.find(key).ok_or(ApplyError::NoSuchService)?;
        let svc = self.services.remove(si);
        for dest in svc.dests {
            self.park(svc.config.key, dest);
        }
        Ok(())
    }

    /// Keep a removed real server while anything still points at it.
    fn park(&mut self, service: ServiceKey, mut dest: Dest) {
        if dest.active + dest.inactive + dest.persist > 0 {
            dest.stats = Counters::default();
            dest.estimator = Estimator::default();
            self.trash.push(TrashedDest { service, dest });
        }
    }

    /// Drop trashed servers nothing points at any more.
    pub fn purge_trash(&mut self) {
        self.trash
            .retain(|t| t.dest.active + t.dest.inactive + t.dest.persist > 0);
    }

    fn normalise_dest(&self, service: &ServiceKey, mut dest: DestConfig) -> DestConfig {
        if !service.is_fwmark() && dest.fwd.is_input_only() {
            dest.port = service.port();
        }
        if self.local_addrs.contains(&dest.addr) {
            dest.fwd = FwdMethod::Local;
        } else if dest.fwd == FwdMethod::Local {
            dest.fwd = FwdMethod::Route;
        }
        dest
    }

    fn add_dest(&mut self, key: &ServiceKey, dest: DestConfig) -> Result<(), ApplyError> {
        check_dest(key, &dest)?;
        let dest = self.normalise_dest(key, dest);
        let si = self.find(key).ok_or(ApplyError::ServiceNotDefined)?;
        let svc = self.services.get(si).ok_or(ApplyError::ServiceNotDefined)?;
        if svc.dest_index(dest.addr, dest.port).is_some() {
            return Err(ApplyError::DestExists);
        }
        if svc.config.scheduler == "mh" && svc.dests.len() >= MH_TABLE_SIZE {
            return Err(ApplyError::Invalid);
        }
        let trashed = self.trash.iter().position(|t| {
            t.service == *key && t.dest.config.addr == dest.addr && t.dest.config.port == dest.port
        });
        let mut d = match trashed {
            Some(ti) => {
                let mut d = self.trash.remove(ti).dest;
                d.update(dest);
                d
            }
            None => {
                let id = self.alloc_dest_id();
                Dest::new(id, dest)
            }
        };
        d.estimator = Estimator::new(d.stats);
        let id = d.id;
        let svc = self
            .services
            .get_mut(si)
            .ok_or(ApplyError::ServiceNotDefined)?;
        svc.dests.insert(0, d);
        let views = svc.sched_views();
        svc.scheduler.dests_changed(DestChange::Added(id), &views);
        Ok(())
    }

    fn edit_dest(&mut self, key: &ServiceKey, dest: DestConfig) -> Result<(), ApplyError> {
        check_dest(key, &dest)?;
        let dest = self.normalise_dest(key, dest);
        let si = self.find(key).ok_or(ApplyError::ServiceNotDefined)?;
        let svc = self
            .services
            .get_mut(si)
            .ok_or(ApplyError::ServiceNotDefined)?;
        let di = svc
            .dest_index(dest.addr, dest.port)
            .ok_or(ApplyError::NoSuchDest)?;
        let d = svc.dests.get_mut(di).ok_or(ApplyError::NoSuchDest)?;
        d.update(dest);
        let id = d.id;
        let views = svc.sched_views();
        svc.scheduler.dests_changed(DestChange::Updated(id), &views);
        Ok(())
    }

    fn delete_dest(&mut self, key: &ServiceKey, addr: IpAddr, port: u16) -> Result<(), ApplyError> {
        let si = self.find(key).ok_or(ApplyError::ServiceNotDefined)?;
        let svc = self
            .services
            .get_mut(si)
            .ok_or(ApplyError::ServiceNotDefined)?;
        let di = svc.dest_index(addr, port).ok_or(ApplyError::NoSuchDest)?;
        let views = svc.sched_views();
        let id = views.get(di).map(|v| v.id).ok_or(ApplyError::NoSuchDest)?;
        svc.scheduler
            .dests_changed(DestChange::Removing { id, index: di }, &views);
        let dest = svc.dests.remove(di);
        let views = svc.sched_views();
        svc.scheduler.dests_changed(DestChange::Removed(id), &views);
        let service_key = svc.config.key;
        self.park(service_key, dest);
        Ok(())
    }

    fn zero(&mut self, key: Option<&ServiceKey>) -> Result<(), ApplyError> {
        let targets: Vec<usize> = match key {
            Some(k) => vec![self.find(k).ok_or(ApplyError::NoSuchService)?],
            None => (0..self.services.len()).collect(),
        };
        for si in targets {
            if let Some(svc) = self.services.get_mut(si) {
                svc.stats = Counters::default();
                svc.estimator = Estimator::default();
                for d in &mut svc.dests {
                    d.stats = Counters::default();
                    d.estimator = Estimator::default();
                }
            }
        }
        Ok(())
    }
}

fn validate_one(
    shadow: &mut HashMap<ServiceKey, ShadowService>,
    knobs: &mut Knobs,
    cmd: &Command,
) -> Result<(), ApplyError> {
    match cmd {
        Command::AddService(c) => {
            check_service(c)?;
            if shadow.contains_key(&c.key) {
                return Err(ApplyError::ServiceExists);
            }
            shadow.insert(
                c.key,
                ShadowService {
                    scheduler: c.scheduler.clone(),
                    dests: HashSet::new(),
                },
            );
        }
        Command::EditService(c) => {
            check_service(c)?;
            let s = shadow.get_mut(&c.key).ok_or(ApplyError::NoSuchService)?;
            s.scheduler = c.scheduler.clone();
        }
        Command::DeleteService(k) => {
            shadow.remove(k).ok_or(ApplyError::NoSuchService)?;
        }
        Command::Clear => shadow.clear(),
        Command::AddDest { service, dest } => {
            check_dest(service, dest)?;
            let port = if !service.is_fwmark() && dest.fwd.is_input_only() {
                service.port()
            } else {
                dest.port
            };
            let s = shadow
                .get_mut(service)
                .ok_or(ApplyError::ServiceNotDefined)?;
            if s.scheduler == "mh" && s.dests.len() >= MH_TABLE_SIZE {
                return Err(ApplyError::Invalid);
            }
            if !s.dests.insert((dest.addr, port)) {
                return Err(ApplyError::DestExists);
            }
        }
        Command::EditDest { service, dest } => {
            check_dest(service, dest)?;
            let port = if !service.is_fwmark() && dest.fwd.is_input_only() {
                service.port()
            } else {
                dest.port
            };
            let s = shadow.get(service).ok_or(ApplyError::ServiceNotDefined)?;
            if !s.dests.contains(&(dest.addr, port)) {
                return Err(ApplyError::NoSuchDest);
            }
        }
        Command::DeleteDest {
            service,
            addr,
            port,
        } => {
            let s = shadow
                .get_mut(service)
                .ok_or(ApplyError::ServiceNotDefined)?;
            if !s.dests.remove(&(*addr, *port)) {
                return Err(ApplyError::NoSuchDest);
            }
        }
        Command::Zero(Some(k)) => {
            if !shadow.contains_key(k) {
                return Err(ApplyError::NoSuchService);
            }
        }
        Command::Zero(None) | Command::SetTimeouts { .. } => {}
        Command::SetKnob { name, value } => knobs.set(name, *value)?,
    }
    Ok(())
}

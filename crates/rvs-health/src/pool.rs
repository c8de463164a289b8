//! One virtual service's real servers under health checking: per-server
//! checkers (up only if all are up), keepalived's quorum with hysteresis,
//! the sorry server, `inhibit_on_failure`, and operator overrides.
//!
//! The pool keeps what it last asked the engine to hold for each declared
//! server ("applied"). [`Pool::sync`] computes what the table should hold
//! now and returns only the commands that change it; servers whose entry
//! does not change get no command, so their connections are untouched.
//! [`Pool::observe`] compares the live table with "applied": a declared
//! server that differs was changed by an operator (ipvsadm) and becomes an
//! override the pool no longer touches, until [`Pool::clear_override`].
//!
//! Quorum (keepalived's definition): with `sum` the total weight of live
//! servers, quorum is gained when `sum >= quorum + hysteresis` and lost when
//! `sum < quorum - hysteresis` or `sum == 0`. While it is lost and a sorry
//! server is configured, the real servers leave the table and the sorry
//! server serves alone; when it is regained they come back and the sorry
//! server leaves. At start, quorum is up when `sum >= quorum` and `sum > 0`.

use crate::checker::{Checker, ProbeOutcome};
use crate::timing::CheckTiming;
use rvs_core::{Command, DestConfig, ServiceKey};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

/// A real server's identity inside its service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ServerKey {
    pub addr: IpAddr,
    pub port: u16,
}

impl ServerKey {
    pub fn of(dest: &DestConfig) -> ServerKey {
        ServerKey {
            addr: dest.addr,
            port: dest.port,
        }
    }
}

impl fmt::Display for ServerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addr {
            IpAddr::V4(a) => write!(f, "{a}:{}", self.port),
            IpAddr::V6(a) => write!(f, "[{a}]:{}", self.port),
        }
    }
}

/// A declared real server: its table entry when healthy and its checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpec<P> {
    /// The entry with the configured weight.
    pub dest: DestConfig,
    /// Weight 0 instead of removal when the server fails.
    pub inhibit_on_failure: bool,
    /// Checkers; none means the server is always considered up.
    pub checks: Vec<(CheckTiming, P)>,
}

/// Service-level health settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    pub service: ServiceKey,
    /// keepalived `quorum` (default 1).
    pub quorum: u32,
    /// keepalived `hysteresis` (default 0).
    pub hysteresis: u32,
    /// The sorry server's entry (weight as configured, normally 1).
    pub sorry: Option<DestConfig>,
    /// Keep the sorry server in the table with weight 0 while it does not
    /// serve (keepalived `sorry_server_inhibit`).
    pub sorry_inhibit: bool,
    /// Start with every checked server down (keepalived `alpha`).
    pub alpha: bool,
}

impl PoolConfig {
    pub fn new(service: ServiceKey) -> PoolConfig {
        PoolConfig {
            service,
            quorum: 1,
            hysteresis: 0,
            sorry: None,
            sorry_inhibit: false,
            alpha: false,
        }
    }
}

/// Which probe of which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ProbeId {
    pub server: ServerKey,
    pub checker: usize,
}

/// Something an operator should hear about; each becomes one log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HealthEvent {
    ServerUp {
        service: ServiceKey,
        server: ServerKey,
        reason: String,
    },
    ServerDown {
        service: ServiceKey,
        server: ServerKey,
        reason: String,
    },
    QuorumLost {
        service: ServiceKey,
        weight_sum: u64,
    },
    QuorumGained {
        service: ServiceKey,
        weight_sum: u64,
    },
    /// The live table differs from what the pool set: an operator changed
    /// this server by hand; the pool leaves it alone from now on.
    OverrideDetected {
        service: ServiceKey,
        server: ServerKey,
    },
}

/// Health of one server as the status listing shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerState {
    Up,
    Down,
}

/// One row of the status listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerStatus {
    pub server: ServerKey,
    pub state: ServerState,
    /// Changed by an operator; the checker does not touch it.
    pub overridden: bool,
    pub configured_weight: i32,
    /// Weight the checker wants in the table (dynamic weight or
    /// configured), whatever the state.
    pub effective_weight: i32,
    /// The newest finished attempt of any checker: text and time.
    pub last_result: Option<(String, Duration)>,
    pub last_result_passed: Option<bool>,
    /// When the state last changed (`None`: never since start).
    pub last_transition: Option<Duration>,
    /// Number of checkers.
    pub checkers: usize,
}

/// Status of a whole service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub service: ServiceKey,
    pub quorum_up: bool,
    pub weight_sum: u64,
    pub sorry_active: bool,
    pub servers: Vec<ServerStatus>,
}

#[derive(Debug, Clone)]
struct Server<P> {
    spec: ServerSpec<P>,
    checkers: Vec<Checker>,
    up: bool,
    overridden: bool,
    last_transition: Option<Duration>,
}

impl<P> Server<P> {
    fn effective_weight(&self) -> i32 {
        self.checkers
            .iter()
            .find_map(Checker::dynamic_weight)
            .map(|w| i32::try_from(w).unwrap_or(i32::MAX))
            .unwrap_or(self.spec.dest.weight)
    }

    fn last_result(&self) -> Option<(&ProbeOutcome, Duration)> {
        self.checkers
            .iter()
            .filter_map(Checker::last)
            .max_by_key(|(_, t)| *t)
    }
}

/// One service's health-checked real servers.
#[derive(Debug, Clone)]
pub struct Pool<P> {
    config: PoolConfig,
    servers: BTreeMap<ServerKey, Server<P>>,
    /// Declaration order, for stable command order.
    order: Vec<ServerKey>,
    quorum_up: bool,
    /// What the pool last put in the table, per server (sorry included).
    applied: BTreeMap<ServerKey, DestConfig>,
}

fn new_server<P>(spec: ServerSpec<P>, alpha: bool, now: Duration) -> Server<P> {
    let start_up = !alpha || spec.checks.is_empty();
    server_in_state(spec, start_up, now)
}

fn server_in_state<P>(spec: ServerSpec<P>, start_up: bool, now: Duration) -> Server<P> {
    let start_up = start_up || spec.checks.is_empty();
    let checkers = spec
        .checks
        .iter()
        .map(|(timing, _)| Checker::new(*timing, start_up, now))
        .collect();
    Server {
        spec,
        checkers,
        up: start_up,
        overridden: false,
        last_transition: None,
    }
}

impl<P: Clone + PartialEq> Pool<P> {
    /// A pool whose servers are all up (or all checked ones down with
    /// `alpha`), first probes due at `now`, and an empty "applied" table:
    /// the first [`Pool::sync`] adds the servers.
    pub fn new(config: PoolConfig, servers: Vec<ServerSpec<P>>, now: Duration) -> Pool<P> {
        let mut pool = Pool {
            config,
            servers: BTreeMap::new(),
            order: Vec::new(),
            quorum_up: false,
            applied: BTreeMap::new(),
        };
        for spec in servers {
            let key = ServerKey::of(&spec.dest);
            if pool.servers.contains_key(&key) {
                continue;
            }
            pool.order.push(key);
            let alpha = pool.config.alpha;
            pool.servers.insert(key, new_server(spec, alpha, now));
        }
        let sum = pool.weight_sum();
        pool.quorum_up = sum > 0 && sum >= u64::from(pool.config.quorum);
        pool
    }

    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    pub fn service(&self) -> ServiceKey {
        self.config.service
    }

    pub fn quorum_up(&self) -> bool {
        self.quorum_up
    }

    /// Whether this server is declared here.
    pub fn has_server(&self, key: &ServerKey) -> bool {
        self.servers.contains_key(key)
    }

    /// Tell the pool the table already holds these entries for it (used
    /// after a reload, when the old pool's table carries over).
    pub fn assume_applied(&mut self, applied: BTreeMap<ServerKey, DestConfig>) {
        self.applied = applied;
    }

    /// What the pool last put in the table.
    pub fn applied(&self) -> &BTreeMap<ServerKey, DestConfig> {
        &self.applied
    }

    /// Total weight of live servers (negative weights count as 0).
    pub fn weight_sum(&self) -> u64 {
        self.servers
            .values()
            .filter(|s| s.up)
            .map(|s| u64::try_from(s.effective_weight()).unwrap_or(0))
            .sum()
    }

    /// The earliest time a probe should start; `None` if nothing is
    /// waiting (no checkers, or all in flight).
    pub fn next_deadline(&self) -> Option<Duration> {
        self.servers
            .values()
            .filter(|s| !s.overridden)
            .flat_map(|s| s.checkers.iter())
            .filter_map(Checker::next_probe_at)
            .min()
    }

    /// Start every probe due at `now`; the caller runs them and reports
    /// each with [`Pool::on_result`]. Overridden servers are not probed.
    pub fn start_due(&mut self, now: Duration) -> Vec<(ProbeId, P)> {
        let mut out = Vec::new();
        for key in &self.order {
            let Some(server) = self.servers.get_mut(key) else {
                continue;
            };
            if server.overridden {
                continue;
            }
            for (i, checker) in server.checkers.iter_mut().enumerate() {
                if checker.start(now) {
                    if let Some((_, spec)) = server.spec.checks.get(i) {
                        out.push((
                            ProbeId {
                                server: *key,
                                checker: i,
                            },
                            spec.clone(),
                        ));
                    }
                }
            }
        }
        out
    }

    /// Report a probe's outcome (arrived at `now`). Returns the events it
    /// caused; call [`Pool::sync`] afterwards for the table changes.
    pub fn on_result(
        &mut self,
        now: Duration,
        id: ProbeId,
        outcome: ProbeOutcome,
    ) -> Vec<HealthEvent> {
        let mut events = Vec::new();
        let service = self.config.service;
        let Some(server) = self.servers.get_mut(&id.server) else {
            return events;
        };
        let Some(checker) = server.checkers.get_mut(id.checker) else {
            return events;
        };
        let reason = outcome.text().to_string();
        checker.finish(now, outcome);
        let all_up = server.checkers.iter().all(Checker::is_up);
        if all_up != server.up {
            server.up = all_up;
            server.last_transition = Some(now);
            events.push(if all_up {
                HealthEvent::ServerUp {
                    service,
                    server: id.server,
                    reason,
                }
            } else {
                HealthEvent::ServerDown {
                    service,
                    server: id.server,
                    reason,
                }
            });
        }
        self.update_quorum(&mut events);
        events
    }

    fn update_quorum(&mut self, events: &mut Vec<HealthEvent>) {
        let sum = self.weight_sum();
        let quorum = u64::from(self.config.quorum);
        let hysteresis = u64::from(self.config.hysteresis);
        let service = self.config.service;
        if self.quorum_up {
            let below = quorum.checked_sub(hysteresis).is_some_and(|low| sum < low);
            if below || sum == 0 {
                self.quorum_up = false;
                events.push(HealthEvent::QuorumLost {
                    service,
                    weight_sum: sum,
                });
            }
        } else if sum > 0 && sum >= quorum.saturating_add(hysteresis) {
            self.quorum_up = true;
            events.push(HealthEvent::QuorumGained {
                service,
                weight_sum: sum,
            });
        }
    }

    /// Whether the sorry server is serving now.
    pub fn sorry_active(&self) -> bool {
        !self.quorum_up && self.config.sorry.is_some()
    }

    /// What the table should hold for this service now, per server,
    /// ignoring overrides (sorry server included).
    pub fn desired(&self) -> BTreeMap<ServerKey, DestConfig> {
        let mut out = BTreeMap::new();
        let sorry_active = self.sorry_active();
        for server in self.servers.values() {
            let key = ServerKey::of(&server.spec.dest);
            let mut dest = server.spec.dest.clone();
            if server.up && !sorry_active {
                dest.weight = server.effective_weight();
                out.insert(key, dest);
            } else if server.spec.inhibit_on_failure {
                dest.weight = 0;
                out.insert(key, dest);
            }
        }
        if let Some(sorry) = &self.config.sorry {
            let key = ServerKey::of(sorry);
            // A sorry server that is also a declared real server is
            // governed by the real server's entry.
            if !self.servers.contains_key(&key) {
                if sorry_active {
                    out.insert(key, sorry.clone());
                } else if self.config.sorry_inhibit {
                    let mut d = sorry.clone();
                    d.weight = 0;
                    out.insert(key, d);
                }
            }
        }
        out
    }

    fn is_overridden(&self, key: &ServerKey) -> bool {
        self.servers.get(key).is_some_and(|s| s.overridden)
    }

    /// The commands that take the table from "applied" to "desired",
    /// skipping overridden servers; "applied" becomes "desired". Deletes
    /// come first, then edits, then adds, each in address order.
    pub fn sync(&mut self) -> Vec<Command> {
        let desired = self.desired();
        let service = self.config.service;
        let mut deletes = Vec::new();
        let mut edits = Vec::new();
        let mut adds = Vec::new();
        let keys: Vec<ServerKey> = self.applied.keys().chain(desired.keys()).copied().collect();
        let mut seen = std::collections::BTreeSet::new();
        for key in keys {
            if !seen.insert(key) || self.is_overridden(&key) {
                continue;
            }
            match (self.applied.get(&key), desired.get(&key)) {
                (Some(_), None) => deletes.push(Command::DeleteDest {
                    service,
                    addr: key.addr,
                    port: key.port,
                }),
                (None, Some(d)) => adds.push(Command::AddDest {
                    service,
                    dest: d.clone(),
                }),
                (Some(a), Some(d)) if a != d => edits.push(Command::EditDest {
                    service,
                    dest: d.clone(),
                }),
                _ => {}
            }
        }
        for key in seen {
            if self.is_overridden(&key) {
                continue;
            }
            match desired.get(&key) {
                Some(d) => {
                    self.applied.insert(key, d.clone());
                }
                None => {
                    self.applied.remove(&key);
                }
            }
        }
        deletes.extend(edits);
        deletes.extend(adds);
        deletes
    }

    /// Compare the live table's entries for this service with "applied".
    /// Declared servers that differ become overrides (one event each).
    /// `None` means the service is not in the table at all; nothing is
    /// concluded then.
    pub fn observe(&mut self, live: Option<&[DestConfig]>) -> Vec<HealthEvent> {
        let mut events = Vec::new();
        let Some(live) = live else {
            return events;
        };
        let service = self.config.service;
        for key in &self.order {
            let Some(server) = self.servers.get_mut(key) else {
                continue;
            };
            if server.overridden {
                continue;
            }
            let live_entry = live.iter().find(|d| ServerKey::of(d) == *key);
            if live_entry != self.applied.get(key) {
                server.overridden = true;
                self.applied.remove(key);
                events.push(HealthEvent::OverrideDetected {
                    service,
                    server: *key,
                });
            }
        }
        events
    }

    /// Hand a server back to the checker. `live` is its current table
    /// entry; the next [`Pool::sync`] moves it to what health says.
    pub fn clear_override(
        &mut self,
        key: &ServerKey,
        live: Option<&DestConfig>,
        now: Duration,
    ) -> bool {
        let Some(server) = self.servers.get_mut(key) else {
            return false;
        };
        if !server.overridden {
            return false;
        }
        server.overridden = false;
        for c in &mut server.checkers {
            if c.next_probe_at().is_some_and(|t| t > now) {
                *c = Checker::new(*c.timing(), c.is_up(), now);
            }
        }
        match live {
            Some(d) => {
                self.applied.insert(*key, d.clone());
            }
            None => {
                self.applied.remove(key);
            }
        }
        true
    }

    /// Replace the declared servers and settings (a reload). Servers whose
    /// specification is unchanged keep their health state and override
    /// flag; a server whose checks changed starts over (up unless
    /// `alpha`); one whose entry changed only (weight, method) keeps its
    /// health. "applied" carries over, so [`Pool::sync`] emits only the
    /// differences.
    pub fn reconfigure(&mut self, config: PoolConfig, servers: Vec<ServerSpec<P>>, now: Duration) {
        let mut old = std::mem::take(&mut self.servers);
        self.order.clear();
        self.config = config;
        for spec in servers {
            let key = ServerKey::of(&spec.dest);
            if self.servers.contains_key(&key) {
                continue;
            }
            self.order.push(key);
            let server = match old.remove(&key) {
                Some(mut s) if s.spec.checks == spec.checks => {
                    s.spec = spec;
                    s
                }
                Some(s) => {
                    // New checks, same server: a server that was down stays
                    // down until the new checks pass (keepalived does not
                    // re-add a failed server on reload either).
                    let mut n = server_in_state(spec, s.up, now);
                    n.overridden = s.overridden;
                    n.last_transition = s.last_transition;
                    n
                }
                None => new_server(spec, self.config.alpha, now),
            };
            self.servers.insert(key, server);
        }
        let mut events = Vec::new();
        self.update_quorum(&mut events);
    }

    /// The status listing of this service.
    pub fn status(&self) -> ServiceStatus {
        let servers = self
            .order
            .iter()
            .filter_map(|k| self.servers.get(k))
            .map(|s| {
                let last = s.last_result();
                ServerStatus {
                    server: ServerKey::of(&s.spec.dest),
                    state: if s.up {
                        ServerState::Up
                    } else {
                        ServerState::Down
                    },
                    overridden: s.overridden,
                    configured_weight: s.spec.dest.weight,
                    effective_weight: s.effective_weight(),
                    last_result: last.map(|(o, t)| (o.text().to_string(), t)),
                    last_result_passed: last.map(|(o, _)| o.is_pass()),
                    last_transition: s.last_transition,
                    checkers: s.checkers.len(),
                }
            })
            .collect();
        ServiceStatus {
            service: self.config.service,
            quorum_up: self.quorum_up,
            weight_sum: self.weight_sum(),
            sorry_active: self.sorry_active(),
            servers,
        }
    }
}

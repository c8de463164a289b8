//! The health checker inside rvsd: one thread owns the configuration and
//! one `rvs_health::Pool` per service, starts due probes on short-lived
//! threads, turns their outcomes into transitions (one log line each, plus
//! the notify commands) and applies the pools' table changes to the engine.
//! Reload (SIGHUP) re-reads the file, diffs it against the previous file
//! and applies the service changes and the pools' changes in one atomic
//! batch; an invalid file is logged with its line and changes nothing.
//!
//! Draining: for services with `drain` enabled, a real server the pools
//! remove (failed checks, or no longer in the file) is set to weight 0
//! and handed to the drain table instead (`drain.rs`); the pools'
//! override detection does not see those entries. A reload clears the
//! operator override of every server whose declaration the new file
//! changes (the edited file is the newer intent), and of every server
//! when asked (`rvsadm --reload --clear-overrides`); other overrides
//! survive reloads.

use crate::config::{load, ConfigSource};
use crate::server::Shared;
use rvs_api::{DrainReason, ReloadSummary, ServerHealth, ServerHealthState, ServiceHealth};
use rvs_config::{diff_services, Config, ServiceDef};
use rvs_core::snapshot::TableSnapshot;
use rvs_core::{Command, DestConfig, ServiceKey};
use rvs_health::{
    HealthEvent, LatencyHistogram, Pool, ProbeId, ProbeOutcome, ProbeSpec, ServerKey, ServerSpec,
    ServerState, ServiceStatus,
};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a pool probes: the spec and its per-attempt timeout.
pub type Probe = (ProbeSpec, Duration);

/// Where an answer to a control request goes.
pub type Reply<T> = Sender<Result<T, String>>;

/// Messages to the health thread.
#[derive(Debug)]
pub enum Msg {
    Result {
        generation: u64,
        service: ServiceKey,
        id: ProbeId,
        outcome: ProbeOutcome,
        /// How long the attempt took.
        latency: Duration,
    },
    /// Re-read the file (SIGHUP: no reply; `rvsadm --reload`: a reply).
    Reload {
        clear_overrides: bool,
        reply: Option<Reply<ReloadSummary>>,
    },
    /// `rvsadm --clear-override`.
    ClearOverride {
        service: ServiceKey,
        addr: IpAddr,
        port: u16,
        reply: Reply<()>,
    },
}

/// Check latency per (service, server).
pub type LatencyMap = HashMap<(ServiceKey, ServerKey), LatencyHistogram>;

/// The running checker: send [`Msg`]s through `tx`; `status` and
/// `latency` are refreshed after every change.
#[derive(Debug, Clone)]
pub struct HealthHandle {
    pub tx: Sender<Msg>,
    pub status: Arc<Mutex<Vec<ServiceStatus>>>,
    pub latency: Arc<Mutex<LatencyMap>>,
    pub origin: Instant,
}

/// How long a control request waits for the health thread (a reload
/// runs no probe, so this is generous).
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

impl HealthHandle {
    /// Send a request built around a reply channel and wait for the answer.
    pub fn request<T>(&self, build: impl FnOnce(Reply<T>) -> Msg) -> Result<T, String> {
        let (tx, rx) = mpsc::channel();
        self.tx
            .send(build(tx))
            .map_err(|_| "the health checker has stopped".to_string())?;
        rx.recv_timeout(REPLY_TIMEOUT)
            .map_err(|_| "the health checker did not answer".to_string())?
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The status listing in the control protocol's terms.
pub fn report(h: &HealthHandle) -> Vec<ServiceHealth> {
    let now = h.origin.elapsed();
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let status = h.status.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let latency = h.latency.lock().unwrap_or_else(|p| p.into_inner()).clone();
    status
        .iter()
        .map(|s| ServiceHealth {
            service: s.service,
            quorum_up: s.quorum_up,
            live_weight: s.weight_sum,
            sorry_active: s.sorry_active,
            servers: s
                .servers
                .iter()
                .map(|r| ServerHealth {
                    addr: r.server.addr,
                    port: r.server.port,
                    state: match r.state {
                        ServerState::Up => ServerHealthState::Up,
                        ServerState::Down => ServerHealthState::Down,
                    },
                    overridden: r.overridden,
                    configured_weight: r.configured_weight,
                    effective_weight: r.effective_weight,
                    last_result: r.last_result.as_ref().map(|(t, _)| t.clone()),
                    last_passed: r.last_result_passed,
                    last_check_ago_ms: r
                        .last_result
                        .as_ref()
                        .map(|(_, at)| millis(now.saturating_sub(*at))),
                    last_transition_ago_ms: r
                        .last_transition
                        .map(|t| millis(now.saturating_sub(t))),
                    last_transition_unix_ms: r
                        .last_transition
                        .map(|t| millis(wall.saturating_sub(now.saturating_sub(t)))),
                    last_latency_us: latency
                        .get(&(s.service, r.server))
                        .and_then(|l| l.last)
                        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX)),
                    checkers: r.checkers,
                })
                .collect(),
        })
        .collect()
}

fn server_specs(def: &ServiceDef) -> Vec<ServerSpec<Probe>> {
    def.server_specs()
        .into_iter()
        .map(|s| ServerSpec {
            dest: s.dest,
            inhibit_on_failure: s.inhibit_on_failure,
            checks: s
                .checks
                .into_iter()
                .map(|(t, p)| (t, (p, t.connect_timeout)))
                .collect(),
        })
        .collect()
}

struct Checker {
    shared: Arc<Shared>,
    source: ConfigSource,
    config: Config,
    pools: BTreeMap<ServiceKeyOrd, Pool<Probe>>,
    generation: u64,
    tx: Sender<Msg>,
    status: Arc<Mutex<Vec<ServiceStatus>>>,
    latency: Arc<Mutex<LatencyMap>>,
    origin: Instant,
}

/// `ServiceKey` is not `Ord`; pools are kept in file order by index key.
type ServiceKeyOrd = usize;

/// Apply the file's services and start checking. The first batch (services
/// and healthy servers) is applied before this returns.
pub fn start(
    shared: Arc<Shared>,
    source: ConfigSource,
    config: Config,
) -> anyhow::Result<HealthHandle> {
    let (tx, rx) = mpsc::channel();
    let origin = Instant::now();
    let status = Arc::new(Mutex::new(Vec::new()));
    let latency = Arc::new(Mutex::new(HashMap::new()));
    let mut checker = Checker {
        shared,
        source,
        config: Config::default(),
        pools: BTreeMap::new(),
        generation: 0,
        tx: tx.clone(),
        status: Arc::clone(&status),
        latency: Arc::clone(&latency),
        origin,
    };
    checker.install(config, false)?;
    std::thread::Builder::new()
        .name("rvsd-health".into())
        .spawn(move || checker.run(&rx))?;
    Ok(HealthHandle {
        tx,
        status,
        latency,
        origin,
    })
}

/// The live entries of `key` as the pool's override detection should see
/// them: servers the checker itself sent draining are hidden (they are
/// gone as far as the pool is concerned).
fn live_for_pool(
    snapshot: &TableSnapshot,
    key: &ServiceKey,
    drains: &crate::drain::DrainTable,
) -> Option<Vec<DestConfig>> {
    let hidden: Vec<(IpAddr, u16)> = drains
        .of_service(key, &[DrainReason::Health, DrainReason::Reload])
        .map(|e| (e.addr, e.port))
        .collect();
    snapshot
        .services
        .iter()
        .find(|s| s.config.key == *key)
        .map(|s| {
            s.dests
                .iter()
                .filter(|d| !hidden.contains(&(d.config.addr, d.config.port)))
                .map(|d| d.config.clone())
                .collect()
        })
}

fn live_entry(
    snapshot: &TableSnapshot,
    key: &ServiceKey,
    server: &ServerKey,
) -> Option<DestConfig> {
    snapshot
        .services
        .iter()
        .find(|s| s.config.key == *key)
        .and_then(|s| {
            s.dests
                .iter()
                .find(|d| d.config.addr == server.addr && d.config.port == server.port)
        })
        .map(|d| d.config.clone())
}

pub fn service_name(key: &ServiceKey) -> String {
    match key {
        ServiceKey::Addr {
            protocol,
            addr,
            port,
        } => match addr {
            std::net::IpAddr::V4(a) => format!("{} {a}:{port}", protocol.name()),
            std::net::IpAddr::V6(a) => format!("{} [{a}]:{port}", protocol.name()),
        },
        ServiceKey::Fwmark { mark, .. } => format!("FWM {mark}"),
    }
}

/// One log line per event, in the seed script's words ("is gone." / "is
/// back."), with the service, the server and the reason.
pub fn event_line(event: &HealthEvent) -> String {
    match event {
        HealthEvent::ServerDown {
            service,
            server,
            reason,
        } => format!("{}, {server} is gone. ({reason})", service_name(service)),
        HealthEvent::ServerUp {
            service,
            server,
            reason,
        } => format!("{}, {server} is back. ({reason})", service_name(service)),
        HealthEvent::QuorumLost {
            service,
            weight_sum,
        } => format!(
            "{}, quorum lost (live weight {weight_sum})",
            service_name(service)
        ),
        HealthEvent::QuorumGained {
            service,
            weight_sum,
        } => format!(
            "{}, quorum regained (live weight {weight_sum})",
            service_name(service)
        ),
        HealthEvent::OverrideDetected { service, server } => format!(
            "{}, {server} was changed by hand; health checks leave it alone (operator override)",
            service_name(service)
        ),
    }
}

/// Run a notify command without waiting for it (reaped on its own thread).
fn spawn_notify(program: &str, args: &[String], via_shell: bool) {
    let mut cmd = if via_shell {
        let mut c = std::process::Command::new("/bin/sh");
        c.arg("-c").arg(program);
        c
    } else {
        let mut c = std::process::Command::new(program);
        c.args(args);
        c
    };
    cmd.stdin(std::process::Stdio::null());
    match cmd.spawn() {
        Ok(mut child) => {
            let _ = std::thread::Builder::new()
                .name("rvsd-notify".into())
                .spawn(move || child.wait());
        }
        Err(e) => crate::log(&format!(
            "health: cannot run notify command {program:?}: {e}"
        )),
    }
}

impl Checker {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    fn find_pool(&self, key: &ServiceKey) -> Option<usize> {
        self.pools
            .iter()
            .find(|(_, p)| p.service() == *key)
            .map(|(i, _)| *i)
    }

    /// How `key` drains (`None`: it does not).
    fn drain_policy(config: &Config, key: &ServiceKey) -> Option<Option<Duration>> {
        config.service(key).and_then(|s| s.drain).map(|d| d.timeout)
    }

    /// Take `new` as the configuration: service commands from the file diff
    /// plus every pool's table changes, applied as one batch. On refusal
    /// nothing changes (pools and drains are restored). Returns the number
    /// of commands applied and of overrides cleared.
    fn install(&mut self, new: Config, clear_all: bool) -> anyhow::Result<(usize, usize)> {
        let now = self.now();
        let mut commands: Vec<Command> = diff_services(&self.config, &new);
        let saved = self.pools.clone();
        let shared = Arc::clone(&self.shared);
        let mut director = shared.lock();
        let snapshot = director.engine.snapshot();
        let saved_drains = director.drains.clone();
        let mut cleared = 0;
        let mut pools: BTreeMap<usize, Pool<Probe>> = BTreeMap::new();
        for (i, def) in new.services.iter().enumerate() {
            let pool = match self
                .find_pool(&def.key())
                .and_then(|j| self.pools.remove(&j))
            {
                Some(mut p) => {
                    p.reconfigure(def.pool_config(), server_specs(def), now);
                    p
                }
                None => Pool::new(def.pool_config(), server_specs(def), now),
            };
            pools.insert(i, pool);
        }
        // The override rule: a server whose declaration changed, or every
        // server when asked, goes back to the checker.
        for (i, def) in new.services.iter().enumerate() {
            let old = self.config.service(&def.key());
            let Some(pool) = pools.get_mut(&i) else {
                continue;
            };
            for real in &def.reals {
                let server = ServerKey::of(&real.dest);
                let changed = old.is_some_and(|o| {
                    o.reals
                        .iter()
                        .find(|r| ServerKey::of(&r.dest) == server)
                        .is_some_and(|r| r != real)
                });
                if !(clear_all || changed) {
                    continue;
                }
                let live = live_entry(&snapshot, &def.key(), &server);
                if pool.clear_override(&server, live.as_ref(), now) {
                    director.drains.cancel(&def.key(), server.addr, server.port);
                    cleared += 1;
                    crate::log(&format!(
                        "health: {}, {server} override cleared by reload",
                        service_name(&def.key())
                    ));
                }
            }
        }
        let removed = !self.pools.is_empty();
        for pool in pools.values_mut() {
            commands.extend(pool.sync());
        }
        let (commands, started) = director.drains.rewrite(
            &snapshot,
            commands,
            |k| Self::drain_policy(&new, k),
            DrainReason::Reload,
            self.shared.now(),
        );
        let n = commands.len();
        let result = director.engine.apply_all(commands);
        match result {
            Ok(()) => {
                for (service, addr, port) in started {
                    let invalidated = director
                        .engine
                        .invalidate_templates_of(&service, addr, port);
                    crate::log(&format!(
                        "health: {}, {} draining (removed from the configuration): weight 0, {invalidated} template(s) invalidated",
                        service_name(&service),
                        crate::server::server_text(addr, port)
                    ));
                }
                let after = director.engine.snapshot();
                director.drains.retain_services(&after);
                drop(director);
                self.pools = pools;
                self.config = new;
                self.generation += 1;
                if n > 0 || removed {
                    crate::log(&format!("health: configuration applied ({n} command(s))"));
                }
                self.publish();
                Ok((n, cleared))
            }
            Err((index, error)) => {
                director.drains = saved_drains;
                drop(director);
                self.pools = saved;
                anyhow::bail!("command {index} of {n} refused ({error}); nothing changed")
            }
        }
    }

    fn clear_override(
        &mut self,
        service: ServiceKey,
        addr: IpAddr,
        port: u16,
    ) -> Result<(), String> {
        let now = self.now();
        let server = ServerKey { addr, port };
        let Some(i) = self.find_pool(&service) else {
            return Err(format!(
                "{} is not a service of the configuration file",
                service_name(&service)
            ));
        };
        let shared = Arc::clone(&self.shared);
        let mut director = shared.lock();
        let snapshot = director.engine.snapshot();
        let Some(pool) = self.pools.get_mut(&i) else {
            return Err("no such pool".to_string());
        };
        if !pool.has_server(&server) {
            return Err(format!(
                "{server} is not declared for {} in the configuration file",
                service_name(&service)
            ));
        }
        let drain = director.drains.cancel(&service, addr, port);
        let live = live_entry(&snapshot, &service, &server);
        let was = pool.clear_override(&server, live.as_ref(), now);
        if !was && drain.is_none() {
            return Err(format!(
                "{server} is not overridden: the health checker already manages it"
            ));
        }
        drop(director);
        crate::log(&format!(
            "health: {}, {server} override cleared: back under health checking",
            service_name(&service)
        ));
        self.sync_pool(i);
        self.publish();
        Ok(())
    }

    fn reload(&mut self, clear_overrides: bool) -> Result<ReloadSummary, String> {
        let file = self.source.path.display().to_string();
        match load(&self.source) {
            Ok((config, notices)) => {
                for n in &notices {
                    crate::log(&format!("{file}: {n}"));
                }
                match self.install(config, clear_overrides) {
                    Ok((commands, overrides_cleared)) => {
                        crate::log(&format!("reloaded {file}"));
                        Ok(ReloadSummary {
                            file,
                            commands,
                            overrides_cleared,
                            notices: notices.iter().map(ToString::to_string).collect(),
                        })
                    }
                    Err(e) => {
                        let msg = format!("reload of {file} refused: {e:#}");
                        crate::log(&msg);
                        Err(msg)
                    }
                }
            }
            Err(e) => {
                let msg = format!("reload refused, nothing changed: {e:#}");
                crate::log(&msg);
                Err(msg)
            }
        }
    }

    fn publish(&self) {
        let status: Vec<ServiceStatus> = self.pools.values().map(Pool::status).collect();
        *self.status.lock().unwrap_or_else(|p| p.into_inner()) = status;
        // Forget latency of servers no longer declared.
        let declared: Vec<(ServiceKey, ServerKey)> = self
            .pools
            .values()
            .flat_map(|p| {
                let k = p.service();
                p.status().servers.into_iter().map(move |r| (k, r.server))
            })
            .collect();
        self.latency
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|k, _| declared.contains(k));
    }

    fn start_probes(&mut self) {
        let now = self.now();
        for pool in self.pools.values_mut() {
            let service = pool.service();
            for (id, (spec, timeout)) in pool.start_due(now) {
                let tx = self.tx.clone();
                let generation = self.generation;
                let spawned =
                    std::thread::Builder::new()
                        .name("rvsd-probe".into())
                        .spawn(move || {
                            let begun = Instant::now();
                            // A probe that panics (a bug, logged by the
                            // panic hook) is a failed check, so the pool
                            // still gets its answer and checks again.
                            let outcome =
                                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                    spec.run(timeout)
                                }))
                                .unwrap_or_else(|_| {
                                    ProbeOutcome::Fail {
                                        reason: "the probe panicked (bug)".to_string(),
                                    }
                                });
                            let _ = tx.send(Msg::Result {
                                generation,
                                service,
                                id,
                                outcome,
                                latency: begun.elapsed(),
                            });
                        });
                if let Err(e) = spawned {
                    crate::log(&format!("health: cannot start a probe thread: {e}"));
                }
            }
        }
    }

    fn notify(&self, event: &HealthEvent) {
        let (up, service, server, reason) = match event {
            HealthEvent::ServerUp {
                service,
                server,
                reason,
            } => (true, service, server, reason),
            HealthEvent::ServerDown {
                service,
                server,
                reason,
            } => (false, service, server, reason),
            _ => return,
        };
        if let Some(cmd) = &self.config.global.notify {
            let args = vec![
                if up { "up" } else { "down" }.to_string(),
                service_name(service),
                server.to_string(),
                reason.clone(),
            ];
            spawn_notify(cmd, &args, false);
        }
        let real = self.config.service(service).and_then(|s| {
            s.reals
                .iter()
                .find(|r| r.dest.addr == server.addr && r.dest.port == server.port)
        });
        if let Some(real) = real {
            let script = if up {
                &real.notify_up
            } else {
                &real.notify_down
            };
            if let Some(script) = script {
                spawn_notify(script, &[], true);
            }
        }
    }

    fn on_result(
        &mut self,
        service: ServiceKey,
        id: ProbeId,
        outcome: ProbeOutcome,
        latency: Duration,
    ) {
        let now = self.now();
        self.latency
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((service, id.server))
            .or_default()
            .record(latency);
        let Some(i) = self.find_pool(&service) else {
            return;
        };
        let events = match self.pools.get_mut(&i) {
            Some(pool) => pool.on_result(now, id, outcome),
            None => return,
        };
        for e in &events {
            crate::log(&format!("health: {}", event_line(e)));
            self.notify(e);
        }
        self.sync_pool(i);
        self.publish();
    }

    /// Look at the live table (operator overrides), then apply the pool's
    /// changes.
    fn sync_pool(&mut self, i: usize) {
        let shared = Arc::clone(&self.shared);
        let mut director = shared.lock();
        let Some(pool) = self.pools.get_mut(&i) else {
            return;
        };
        let key = pool.service();
        let snapshot = director.engine.snapshot();
        let live = live_for_pool(&snapshot, &key, &director.drains);
        for e in pool.observe(live.as_deref()) {
            crate::log(&format!("health: {}", event_line(&e)));
        }
        let commands = pool.sync();
        if commands.is_empty() {
            return;
        }
        let saved_drains = director.drains.clone();
        let config = &self.config;
        let (commands, started) = director.drains.rewrite(
            &snapshot,
            commands,
            |k| Self::drain_policy(config, k),
            DrainReason::Health,
            self.shared.now(),
        );
        if let Err((index, error)) = director.engine.apply_all(commands) {
            director.drains = saved_drains;
            crate::log(&format!(
                "health: {}: table change refused at command {index} ({error})",
                service_name(&key)
            ));
            return;
        }
        for (service, addr, port) in started {
            let invalidated = director
                .engine
                .invalidate_templates_of(&service, addr, port);
            crate::log(&format!(
                "health: {}, {} draining (health check failed): weight 0, {invalidated} template(s) invalidated",
                service_name(&service),
                crate::server::server_text(addr, port)
            ));
        }
    }

    fn run(mut self, rx: &Receiver<Msg>) {
        loop {
            self.start_probes();
            let now = self.now();
            let wait = self
                .pools
                .values()
                .filter_map(Pool::next_deadline)
                .min()
                .map_or(Duration::from_secs(1), |d| d.saturating_sub(now))
                .clamp(Duration::from_millis(5), Duration::from_secs(1));
            match rx.recv_timeout(wait) {
                Ok(Msg::Result {
                    generation,
                    service,
                    id,
                    outcome,
                    latency,
                }) => {
                    // Results from before a reload may name checks that no
                    // longer exist; the pool ignores unknown ids, and a
                    // still-known one is reported as it is.
                    let _ = generation;
                    self.on_result(service, id, outcome, latency);
                }
                Ok(Msg::Reload {
                    clear_overrides,
                    reply,
                }) => {
                    let result = self.reload(clear_overrides);
                    if let Some(reply) = reply {
                        let _ = reply.send(result);
                    }
                }
                Ok(Msg::ClearOverride {
                    service,
                    addr,
                    port,
                    reply,
                }) => {
                    let result = self.clear_override(service, addr, port);
                    let _ = reply.send(result);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }
}

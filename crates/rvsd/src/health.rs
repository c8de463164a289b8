//! The health checker inside rvsd: one thread owns the configuration and
//! one `rvs_health::Pool` per service, starts due probes on short-lived
//! threads, turns their outcomes into transitions (one log line each, plus
//! the notify commands) and applies the pools' table changes to the engine.
//! Reload (SIGHUP) re-reads the file, diffs it against the previous file
//! and applies the service changes and the pools' changes in one atomic
//! batch; an invalid file is logged with its line and changes nothing.

use crate::config::{load, ConfigSource};
use crate::server::Shared;
use rvs_config::{diff_services, Config, ServiceDef};
use rvs_core::{Command, DestConfig, ServiceKey};
use rvs_health::{HealthEvent, Pool, ProbeId, ProbeOutcome, ProbeSpec, ServerSpec, ServiceStatus};
use std::collections::BTreeMap;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a pool probes: the spec and its per-attempt timeout.
pub type Probe = (ProbeSpec, Duration);

/// Messages to the health thread.
#[derive(Debug)]
pub enum Msg {
    Result {
        generation: u64,
        service: ServiceKey,
        id: ProbeId,
        outcome: ProbeOutcome,
    },
    Reload,
}

/// The running checker: send [`Msg::Reload`] through `tx`; `status` is
/// refreshed after every change.
#[derive(Debug, Clone)]
pub struct HealthHandle {
    pub tx: Sender<Msg>,
    pub status: Arc<Mutex<Vec<ServiceStatus>>>,
    pub origin: Instant,
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
    let mut checker = Checker {
        shared,
        source,
        config: Config::default(),
        pools: BTreeMap::new(),
        generation: 0,
        tx: tx.clone(),
        status: Arc::clone(&status),
        origin,
    };
    checker.install(config)?;
    std::thread::Builder::new()
        .name("rvsd-health".into())
        .spawn(move || checker.run(&rx))?;
    Ok(HealthHandle { tx, status, origin })
}

fn service_name(key: &ServiceKey) -> String {
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

    /// Take `new` as the configuration: service commands from the file diff
    /// plus every pool's table changes, applied as one batch. On refusal
    /// nothing changes (pools are restored).
    fn install(&mut self, new: Config) -> anyhow::Result<()> {
        let now = self.now();
        let mut commands: Vec<Command> = diff_services(&self.config, &new);
        let saved = self.pools.clone();
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
        let removed = !self.pools.is_empty();
        for pool in pools.values_mut() {
            commands.extend(pool.sync());
        }
        let n = commands.len();
        let result = self.shared.lock().engine.apply_all(commands);
        match result {
            Ok(()) => {
                self.pools = pools;
                self.config = new;
                self.generation += 1;
                if n > 0 || removed {
                    crate::log(&format!("health: configuration applied ({n} command(s))"));
                }
                self.publish();
                Ok(())
            }
            Err((index, error)) => {
                self.pools = saved;
                anyhow::bail!("command {index} of {n} refused ({error}); nothing changed")
            }
        }
    }

    fn reload(&mut self) {
        match load(&self.source) {
            Ok((config, notices)) => {
                for n in notices {
                    crate::log(&format!("{}: {n}", self.source.path.display()));
                }
                match self.install(config) {
                    Ok(()) => crate::log(&format!("reloaded {}", self.source.path.display())),
                    Err(e) => crate::log(&format!(
                        "reload of {} refused: {e:#}",
                        self.source.path.display()
                    )),
                }
            }
            Err(e) => crate::log(&format!("reload refused, nothing changed: {e:#}")),
        }
    }

    fn publish(&self) {
        let status: Vec<ServiceStatus> = self.pools.values().map(Pool::status).collect();
        *self.status.lock().unwrap_or_else(|p| p.into_inner()) = status;
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
                            let outcome = spec.run(timeout);
                            let _ = tx.send(Msg::Result {
                                generation,
                                service,
                                id,
                                outcome,
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

    fn on_result(&mut self, service: ServiceKey, id: ProbeId, outcome: ProbeOutcome) {
        let now = self.now();
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
        let live: Option<Vec<DestConfig>> = snapshot
            .services
            .iter()
            .find(|s| s.config.key == key)
            .map(|s| s.dests.iter().map(|d| d.config.clone()).collect());
        for e in pool.observe(live.as_deref()) {
            crate::log(&format!("health: {}", event_line(&e)));
        }
        let commands = pool.sync();
        if commands.is_empty() {
            return;
        }
        if let Err((index, error)) = director.engine.apply_all(commands) {
            crate::log(&format!(
                "health: {}: table change refused at command {index} ({error})",
                service_name(&key)
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
                }) => {
                    // Results from before a reload may name checks that no
                    // longer exist; the pool ignores unknown ids, and a
                    // still-known one is reported as it is.
                    let _ = generation;
                    self.on_result(service, id, outcome);
                }
                Ok(Msg::Reload) => self.reload(),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }
}

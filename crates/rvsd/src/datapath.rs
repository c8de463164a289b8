//! rvsd's datapath wiring: binds the packet device of `rvs-datapath`,
//! runs the receive loop that hands every steered packet to the engine
//! (under the engine lock, on the daemon's monotonic time base), and keeps
//! the kernel side in step with the engine's table.
//!
//! Two threads:
//! * `rvsd-rx`: blocks on the NFQUEUE device, calls `Engine::process`,
//!   transmits what the engine forwarded, releases the original.
//! * `rvsd-sync`: every [`SYNC_EVERY`] recomputes the steering rules from
//!   the table and rewrites them when they changed (so new services are
//!   steered within that delay of `ipvsadm -A`); every second refreshes the
//!   engine's local addresses and tunnel source, re-installs the jumps an
//!   operator flushed and pre-resolves DR real servers' MACs.
//!
//! If anything here cannot be set up, rvsd logs why and goes on serving
//! its control socket without a datapath.

use crate::server::Shared;
use rvs_core::conn::EngineTime;
use rvs_core::FwdMethod;
use rvs_datapath::nfqueue::NfqueueDevice;
use rvs_datapath::steer::{NetfilterSteering, SteeringConfig, SteeringSpec};
use rvs_datapath::tx::{Transmitter, TX_MARK};
use rvs_datapath::{run_once, sys, LoopStats};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How often the steering rules are compared with the table.
const SYNC_EVERY: Duration = Duration::from_millis(50);
/// How often addresses, jumps and neighbours are refreshed.
const REFRESH_EVERY: Duration = Duration::from_secs(1);

/// Datapath settings from the command line.
#[derive(Debug, Clone, Default)]
pub struct DatapathOptions {
    /// `--interface`: steer only packets arriving here (empty: all).
    pub interfaces: Vec<String>,
    /// `--tunnel-source`: outer source of IPIP packets (default: the
    /// source address of the route towards the first tunnel real server,
    /// else the first IPv4 address of the namespace).
    pub tunnel_source: Option<Ipv4Addr>,
    /// `--queue`: NFQUEUE number.
    pub queue: u16,
    /// `--no-datapath`: control socket only.
    pub disabled: bool,
}

/// Default NFQUEUE number (queues are per network namespace).
pub const DEFAULT_QUEUE: u16 = 7276;

/// Engine time: milliseconds on the monotonic clock since `origin`.
pub fn engine_now(origin: Instant) -> EngineTime {
    EngineTime::from_millis(u64::try_from(origin.elapsed().as_millis()).unwrap_or(u64::MAX))
}

/// The running datapath; [`Datapath::stop`] removes its rules.
#[derive(Debug)]
pub struct Datapath {
    steering: Arc<Mutex<NetfilterSteering>>,
}

impl Datapath {
    /// Remove the steering rules (clean stop). Packets go back to the
    /// kernel's own handling.
    pub fn stop(&self) {
        self.steering
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove();
    }
}

/// Start the datapath threads, or log why there is none.
pub fn start(shared: &Arc<Shared>, origin: Instant, opts: &DatapathOptions) -> Option<Datapath> {
    if opts.disabled {
        crate::log("datapath disabled (--no-datapath): control socket only");
        return None;
    }
    match try_start(shared, origin, opts) {
        Ok(d) => Some(d),
        Err(e) => {
            crate::log(&format!(
                "no datapath ({e:#}); serving the control socket only"
            ));
            None
        }
    }
}

fn try_start(
    shared: &Arc<Shared>,
    origin: Instant,
    opts: &DatapathOptions,
) -> anyhow::Result<Datapath> {
    NetfilterSteering::probe()?;
    for i in &opts.interfaces {
        sys::link_info(i)?;
    }
    let mut tx = Transmitter::open()?;
    let mut device = NfqueueDevice::bind(opts.queue)?;
    let steering = Arc::new(Mutex::new(NetfilterSteering::new(SteeringConfig {
        queue: opts.queue,
        tx_mark: TX_MARK,
        interfaces: opts.interfaces.clone(),
    })));
    let local = refresh(shared, opts, &steering, None);
    sync_rules(shared, &steering, &local);

    {
        let shared = Arc::clone(shared);
        std::thread::Builder::new()
            .name("rvsd-rx".into())
            .spawn(move || {
                let mut stats = LoopStats::default();
                let mut last_error: Option<Instant> = None;
                loop {
                    let r = run_once(&mut device, &mut tx, &mut stats, |frame, meta| {
                        shared
                            .lock()
                            .engine
                            .process(frame, meta, engine_now(origin))
                    });
                    if let Err(e) = r {
                        // Log at most once a second; keep going.
                        if last_error.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                            crate::log(&format!("datapath: {e}"));
                            last_error = Some(Instant::now());
                        }
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            })?;
    }
    {
        let shared = Arc::clone(shared);
        let steering = Arc::clone(&steering);
        let opts = opts.clone();
        std::thread::Builder::new()
            .name("rvsd-sync".into())
            .spawn(move || {
                let mut last_refresh = Instant::now();
                let mut tx_probe = Transmitter::open().ok();
                let mut local = local;
                loop {
                    std::thread::sleep(SYNC_EVERY);
                    sync_rules(&shared, &steering, &local);
                    if last_refresh.elapsed() >= REFRESH_EVERY {
                        local = refresh(&shared, &opts, &steering, tx_probe.as_mut());
                        last_refresh = Instant::now();
                    }
                }
            })?;
    }
    crate::log(&format!(
        "datapath: nfqueue {} on {}",
        opts.queue,
        if opts.interfaces.is_empty() {
            "every interface".to_string()
        } else {
            opts.interfaces.join(", ")
        }
    ));
    Ok(Datapath { steering })
}

/// Rewrite the steering rules if the table now needs others.
fn sync_rules(shared: &Shared, steering: &Mutex<NetfilterSteering>, local: &[IpAddr]) {
    let snapshot = shared.lock().engine.snapshot();
    let spec = SteeringSpec::from_snapshot(&snapshot, |a| local.contains(a));
    let mut steering = steering.lock().unwrap_or_else(PoisonError::into_inner);
    match steering.apply(&spec) {
        Ok(true) => crate::log(&format!(
            "datapath: steering {} service(s), {} NAT source(s), {} mark(s)",
            spec.services.len(),
            spec.nat_sources.len(),
            spec.marks.len()
        )),
        Ok(false) => {}
        Err(e) => crate::log(&format!("datapath: cannot install steering rules: {e}")),
    }
}

/// Tell the engine the namespace's addresses and tunnel source; put back
/// flushed jumps; start resolving DR real servers. Returns the local
/// addresses.
fn refresh(
    shared: &Shared,
    opts: &DatapathOptions,
    steering: &Mutex<NetfilterSteering>,
    tx: Option<&mut Transmitter>,
) -> Vec<IpAddr> {
    let addrs: Vec<IpAddr> = sys::local_addrs()
        .map(|v| v.into_iter().map(|(_, a)| a).collect())
        .unwrap_or_default();
    let (tunnel_dests, direct_dests): (Vec<IpAddr>, Vec<IpAddr>) = {
        let snap = shared.lock().engine.snapshot();
        let mut tun = Vec::new();
        let mut dr = Vec::new();
        for d in snap.services.iter().flat_map(|s| s.dests.iter()) {
            match d.config.fwd {
                FwdMethod::Tunnel { .. } => tun.push(d.config.addr),
                FwdMethod::Route => dr.push(d.config.addr),
                _ => {}
            }
        }
        (tun, dr)
    };
    let tunnel_source = opts.tunnel_source.or_else(|| {
        tunnel_dests
            .iter()
            .find_map(|d| sys::route_get(*d).ok().and_then(|r| r.src))
            .or_else(|| {
                addrs
                    .iter()
                    .find(|a| a.is_ipv4() && !a.is_loopback())
                    .copied()
            })
            .and_then(|a| match a {
                IpAddr::V4(v4) => Some(v4),
                IpAddr::V6(_) => None,
            })
    });
    {
        let mut director = shared.lock();
        director.engine.set_local_addrs(addrs.iter().copied());
        if let Some(src) = tunnel_source {
            director.engine.set_tunnel_source(src);
        }
    }
    match steering
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .ensure_jumps()
    {
        Ok(0) => {}
        Ok(n) => crate::log(&format!("datapath: re-installed {n} flushed jump(s)")),
        Err(e) => crate::log(&format!("datapath: cannot check steering jumps: {e}")),
    }
    if let Some(tx) = tx {
        tx.prepare_neighbours(direct_dests);
    }
    addrs
}

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
//!   steered within that delay of `ipvsadm -A`); refreshes the engine's
//!   local addresses and tunnel source, re-installs the jumps an operator
//!   flushed and pre-resolves DR real servers' MACs as soon as netlink
//!   reports a link, address or nf_tables change (`SyncPace`), and every
//!   [`IDLE_REFRESH_EVERY`] anyway (every [`REFRESH_EVERY`] where netlink
//!   notifications are not available).
//!
//! With `--datapath xdp` (`try_start_xdp`)
//! an XDP program on every interface (including interfaces that appear
//! later) steers openers to virtual services and the engine's registered
//! flows into AF_XDP sockets instead; the NFQUEUE rules stay as a safety
//! net that only sees what XDP passed (firewall marks, which XDP never
//! sees, clients on the director, GSO super-frames, strays).
//! `--datapath auto`, the default, tries XDP (native where the driver has
//! it, generic elsewhere) and falls back to NFQUEUE, logging why (no BPF
//! object in the build, no privilege to load BPF, attach refused).
//!
//! With `--xdp-fastpath` the XDP program is `rvs_steer_fast`: connections
//! the engine established (TCP ESTABLISHED, UDP after a NAT reply; NAT and
//! DR) are cached in the program after the frame that established them,
//! and their frames are forwarded in XDP without crossing user space
//! (`rvs_datapath::xdp::fastpath`). The sync thread credits the packets
//! forwarded there to the engine's counters and re-arms the connections'
//! timers every [`FAST_SYNC_EVERY`], and drops cached flows the engine no
//! longer gives the same decision for.
//!
//! If anything here cannot be set up, rvsd logs why and goes on serving
//! its control socket without a datapath.

use crate::server::Shared;
use rvs_core::conn::EngineTime;
use rvs_core::FwdMethod;
use rvs_datapath::netwatch::SyncPace;
use rvs_datapath::nfqueue::NfqueueDevice;
use rvs_datapath::steer::{NetfilterSteering, SteeringConfig, SteeringSpec};
use rvs_datapath::tx::{Transmitter, TX_MARK};
use rvs_datapath::xdp::{self, ProgramKind, XdpAttachMode, XdpDevice, XdpProgram};
use rvs_datapath::{run_once, sys, LoopStats};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How often the steering rules are compared with the table.
const SYNC_EVERY: Duration = Duration::from_millis(50);
/// How often addresses, jumps and neighbours are refreshed when netlink
/// does not report their changes...
const REFRESH_EVERY: Duration = Duration::from_secs(1);
/// ...and when it does (links, addresses and nf_tables rule changes then
/// trigger a refresh at once).
const IDLE_REFRESH_EVERY: Duration = Duration::from_secs(10);

/// How often fast-path counters are credited to the engine and active
/// flows re-arm their connection timers (`ipvsadm --stats` lags the
/// wire by at most this).
const FAST_SYNC_EVERY: Duration = Duration::from_secs(1);
/// Fast-path totals are logged at most this often, when they changed.
const FAST_LOG_EVERY: Duration = Duration::from_secs(5);

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
    /// `--datapath`: which packet path (default auto: XDP, else NFQUEUE).
    pub kind: DatapathKind,
    /// `--xdp-mode`: native, generic or auto (native, else generic).
    pub xdp_mode: XdpAttachMode,
    /// `--xdp-fastpath`: established flows forwarded in XDP (default
    /// off: every steered frame goes through the engine).
    pub xdp_fastpath: bool,
}

/// The packet path (`--datapath nfqueue|xdp|auto`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DatapathKind {
    /// iptables NFQUEUE steering (works everywhere iptables does).
    Nfqueue,
    /// XDP steering into AF_XDP sockets; NFQUEUE only for fwmark services.
    Xdp,
    /// XDP if it can be set up, else NFQUEUE (logged with the reason).
    /// The default.
    #[default]
    Auto,
}

impl std::str::FromStr for DatapathKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "nfqueue" => Ok(DatapathKind::Nfqueue),
            "xdp" => Ok(DatapathKind::Xdp),
            "auto" => Ok(DatapathKind::Auto),
            _ => Err(format!("unknown datapath {s:?} (nfqueue, xdp, auto)")),
        }
    }
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
    match opts.kind {
        DatapathKind::Nfqueue => try_start_nfqueue(shared, origin, opts),
        DatapathKind::Xdp => try_start_xdp(shared, origin, opts),
        DatapathKind::Auto => match try_start_xdp(shared, origin, opts) {
            Ok(d) => Ok(d),
            Err(e) => {
                crate::log(&format!(
                    "datapath auto: XDP not usable ({e:#}); falling back to nfqueue"
                ));
                // A failure late in the XDP set-up may have turned flow
                // events on; nothing would drain them on the NFQUEUE path.
                shared.lock().engine.record_flow_events(false);
                try_start_nfqueue(shared, origin, opts)
            }
        },
    }
}

fn try_start_nfqueue(
    shared: &Arc<Shared>,
    origin: Instant,
    opts: &DatapathOptions,
) -> anyhow::Result<Datapath> {
    NetfilterSteering::probe()?;
    for i in &opts.interfaces {
        sys::link_info(i)?;
    }
    if opts.xdp_fastpath {
        crate::log("datapath: --xdp-fastpath needs the XDP datapath; not used with nfqueue");
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
                let mut pace = SyncPace::new(SYNC_EVERY, REFRESH_EVERY, IDLE_REFRESH_EVERY);
                let mut tx_probe = Transmitter::open().ok();
                let mut local = local;
                loop {
                    if pace.wait() {
                        local = refresh(&shared, &opts, &steering, tx_probe.as_mut());
                    }
                    sync_rules(&shared, &steering, &local);
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
        localize_dests(&mut director.engine, &addrs);
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

/// Real servers at an address of this host forward `Local` (the kernel
/// decides that when a server is added). A server added before its
/// address existed here (rules restored from the state file before the
/// first address scan, or the address added later) is switched to `Local`
/// once the address shows up, by re-editing it with its own settings.
fn localize_dests(engine: &mut rvs_core::Engine, addrs: &[IpAddr]) {
    let stale: Vec<rvs_core::Command> = engine
        .snapshot()
        .services
        .iter()
        .flat_map(|s| {
            s.dests
                .iter()
                .filter(|d| addrs.contains(&d.config.addr) && d.config.fwd != FwdMethod::Local)
                .map(|d| rvs_core::Command::EditDest {
                    service: s.config.key,
                    dest: d.config.clone(),
                })
        })
        .collect();
    for cmd in stale {
        if let Err(e) = engine.apply(cmd) {
            crate::log(&format!("datapath: cannot mark a local real server: {e}"));
        }
    }
}

/// Apply the engine's pending flow events to the XDP flow map. Called
/// with the engine locked, so events reach the map in the engine's order
/// and before the frame that caused them is transmitted.
fn apply_flow_events(director: &mut crate::server::Director, program: &Mutex<XdpProgram>) {
    let events = director.engine.drain_flow_events();
    if events.is_empty() {
        return;
    }
    let mut program = program.lock().unwrap_or_else(PoisonError::into_inner);
    for e in &events {
        program.apply_flow_event(e);
    }
}

/// Run `device` through the engine forever, applying flow events to
/// `program` before each transmit (and, with the fast path, caching the
/// frame's connection once the engine established it).
fn spawn_rx<D: rvs_datapath::PacketDevice + Send + 'static>(
    name: &str,
    shared: &Arc<Shared>,
    origin: Instant,
    program: &Arc<Mutex<XdpProgram>>,
    mut device: D,
    mut tx: Transmitter,
) -> anyhow::Result<()> {
    let shared = Arc::clone(shared);
    let program = Arc::clone(program);
    let fast = program
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .kind()
        == ProgramKind::SteerFast;
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let mut stats = LoopStats::default();
            let mut last_error: Option<Instant> = None;
            loop {
                let r = run_once(&mut device, &mut tx, &mut stats, |frame, meta| {
                    // The tuple as it arrived (the engine rewrites the frame).
                    let tuple = if fast {
                        xdp::fastpath::frame_tuple(frame).map(|(t, _)| t)
                    } else {
                        None
                    };
                    let mut director = shared.lock();
                    let verdict = director.engine.process(frame, meta, engine_now(origin));
                    apply_flow_events(&mut director, &program);
                    if let Some(t) = tuple {
                        if let Some(f) = program
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .fast_path()
                        {
                            f.after_frame(&director.engine, &t);
                        }
                    }
                    verdict
                });
                if let Err(e) = r {
                    if last_error.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                        crate::log(&format!("datapath: {e}"));
                        last_error = Some(Instant::now());
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        })?;
    Ok(())
}

/// The XDP datapath: program on every interface (or `--interface`), one
/// AF_XDP socket per receive queue, attached to interfaces that appear
/// later too (`Attachments`, on netlink link changes). The NFQUEUE rules
/// stay installed beside it as a safety net for what XDP passes: marked
/// packets, clients on the director, oversized (GSO) frames, strays.
fn try_start_xdp(
    shared: &Arc<Shared>,
    origin: Instant,
    opts: &DatapathOptions,
) -> anyhow::Result<Datapath> {
    xdp::availability()?;
    let tx = Transmitter::open()?;
    let mut program = XdpProgram::load_kind(if opts.xdp_fastpath {
        ProgramKind::SteerFast
    } else {
        ProgramKind::Steer
    })?;
    let mut attachments = xdp::Attachments::new(opts.xdp_mode, opts.interfaces.clone());
    let report = attachments.sync(&mut program, &xdp::current_links()?);
    for e in &report.errors {
        crate::log(&format!("datapath: {e}; not steering there"));
    }
    // An interface named on the command line that exists must work.
    if !opts.interfaces.is_empty() && !report.errors.is_empty() {
        anyhow::bail!("XDP attach failed on a named interface");
    }
    if report.sockets.is_empty() && !report.errors.is_empty() {
        anyhow::bail!("XDP attached to no interface");
    }

    let steering = Arc::new(Mutex::new(NetfilterSteering::new(SteeringConfig {
        queue: opts.queue,
        tx_mark: TX_MARK,
        interfaces: opts.interfaces.clone(),
    })));
    let queue = NetfilterSteering::probe()
        .and_then(|()| NfqueueDevice::bind(opts.queue))
        .map_err(|e| {
            crate::log(&format!(
                "datapath: no NFQUEUE beside XDP ({e}); firewall-mark services, clients on \
                 the director and oversized frames are not forwarded"
            ))
        })
        .ok();
    let queue_ok = queue.is_some();

    shared.lock().engine.record_flow_events(true);
    let program = Arc::new(Mutex::new(program));
    let local = refresh(shared, opts, &steering, None);
    sync_xdp(shared, &program, &steering, &local, queue_ok);

    let n_sockets = report.sockets.len();
    let mut device = XdpDevice::new(report.sockets, Transmitter::open()?)?;
    device.set_notify(Box::new(|s| crate::log(&format!("datapath: {s}"))));
    let adder = device.adder();
    spawn_rx("rvsd-xdp-rx", shared, origin, &program, device, tx)?;
    if let Some(device) = queue {
        spawn_rx(
            "rvsd-nfq-rx",
            shared,
            origin,
            &program,
            device,
            Transmitter::open()?,
        )?;
    }
    {
        let shared = Arc::clone(shared);
        let steering = Arc::clone(&steering);
        let program = Arc::clone(&program);
        let opts = opts.clone();
        std::thread::Builder::new()
            .name("rvsd-sync".into())
            .spawn(move || {
                let mut pace = SyncPace::new(SYNC_EVERY, REFRESH_EVERY, IDLE_REFRESH_EVERY);
                let mut tx_probe = Transmitter::open().ok();
                let mut local = local;
                let mut too_big_seen = false;
                let mut fast = FastSync::new(opts.xdp_fastpath);
                loop {
                    if pace.wait() {
                        local = refresh(&shared, &opts, &steering, tx_probe.as_mut());
                        follow_links(&program, &mut attachments, &adder);
                    }
                    sync_xdp(&shared, &program, &steering, &local, queue_ok);
                    fast.run(&shared, &program, origin);
                    if !too_big_seen {
                        let stats = program
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .stats();
                        if stats.too_big > 0 {
                            too_big_seen = true;
                            crate::log(
                                "datapath: xdp: passed a frame longer than an AF_XDP chunk \
                                 (GSO super-frame) to the NFQUEUE path (further ones counted)",
                            );
                        }
                    }
                }
            })?;
    }
    crate::log(&format!(
        "datapath: xdp on {} ({n_sockets} AF_XDP socket(s)){}{}",
        if report.attached.is_empty() {
            "no interface yet".to_string()
        } else {
            report.attached.join(", ")
        },
        if queue_ok {
            format!("; nfqueue {} beside it", opts.queue)
        } else {
            String::new()
        },
        if opts.xdp_fastpath {
            "; fast path for established flows"
        } else {
            ""
        }
    ));
    Ok(Datapath { steering })
}

/// The sync thread's share of the fast path: every [`FAST_SYNC_EVERY`]
/// credit what XDP forwarded, re-arm timers of active flows, drop cached
/// flows the engine no longer vouches for; log the totals when they
/// changed, at most every [`FAST_LOG_EVERY`].
struct FastSync {
    on: bool,
    last: Instant,
    last_log: Option<Instant>,
    logged: (u64, u64, usize),
}

impl FastSync {
    fn new(on: bool) -> FastSync {
        FastSync {
            on,
            last: Instant::now(),
            last_log: None,
            logged: (0, 0, 0),
        }
    }

    fn run(&mut self, shared: &Shared, program: &Mutex<XdpProgram>, origin: Instant) {
        if !self.on || self.last.elapsed() < FAST_SYNC_EVERY {
            return;
        }
        self.last = Instant::now();
        let lock = || program.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(harvest) = lock().fast_path().map(|f| f.harvest()) else {
            return;
        };
        // The engine lock is never held together with the program's here
        // (the receive threads take the engine's first).
        let stale = harvest.apply(&mut shared.lock().engine, engine_now(origin));
        let (stats, fast) = {
            let mut p = lock();
            if let Some(f) = p.fast_path() {
                for t in &stale {
                    f.forget_conn(t);
                }
            }
            let fast = p.fast_path().map(|f| f.stats()).unwrap_or_default();
            (p.stats(), fast)
        };
        let now = (
            stats.fast_forwarded,
            stats.steered_new + stats.steered_flow,
            fast.entries,
        );
        if now != self.logged && self.last_log.is_none_or(|t| t.elapsed() >= FAST_LOG_EVERY) {
            self.logged = now;
            self.last_log = Some(Instant::now());
            crate::log(&format!(
                "datapath: xdp fastpath: {} flow(s) cached, {} frame(s) forwarded in XDP, \
                 {} frame(s) steered to AF_XDP ({} without a neighbour or route, {} partial \
                 checksum, {} egress not native), {} passed ({} too big), {} packet(s) credited",
                fast.entries,
                stats.fast_forwarded,
                now.1,
                stats.fast_no_route,
                stats.fast_partial,
                stats.fast_egress,
                stats.passed,
                stats.too_big,
                fast.credited_packets
            ));
        }
    }
}

/// Attach the XDP program to interfaces that appeared, hand their
/// sockets to the receive thread, forget those that went away.
fn follow_links(
    program: &Mutex<XdpProgram>,
    attachments: &mut xdp::Attachments,
    adder: &xdp::SocketAdder,
) {
    let Ok(links) = xdp::current_links() else {
        return;
    };
    let report = attachments.sync(
        &mut program.lock().unwrap_or_else(PoisonError::into_inner),
        &links,
    );
    for e in &report.errors {
        crate::log(&format!("datapath: {e}; not steering there"));
    }
    for name in &report.forgotten {
        crate::log(&format!("datapath: xdp: {name} is gone"));
    }
    if !report.attached.is_empty() {
        crate::log(&format!(
            "datapath: xdp on {} ({} new AF_XDP socket(s))",
            report.attached.join(", "),
            report.sockets.len()
        ));
    }
    for socket in report.sockets {
        adder.add(socket);
    }
}

/// Bring the XDP service map (and the NFQUEUE mark rules) in step with
/// the table, and apply flow events the engine recorded outside packet
/// processing (expiry).
fn sync_xdp(
    shared: &Shared,
    program: &Mutex<XdpProgram>,
    steering: &Mutex<NetfilterSteering>,
    local: &[IpAddr],
    queue_ok: bool,
) {
    let snapshot = shared.lock().engine.snapshot();
    let spec = SteeringSpec::from_snapshot(&snapshot, |a| local.contains(a));
    let changed = program
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .set_services(&spec.services);
    match changed {
        Ok(true) => crate::log(&format!(
            "datapath: xdp steering {} service(s), {} mark(s)",
            spec.services.len(),
            spec.marks.len()
        )),
        Ok(false) => {}
        Err(e) => crate::log(&format!("datapath: cannot update the XDP service map: {e}")),
    }
    // The NFQUEUE safety net: same rules as the nfqueue datapath; they
    // only see what XDP passed.
    if queue_ok {
        match steering
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .apply(&spec)
        {
            // Same wording as the nfqueue datapath: both paths are now
            // in step with the table.
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
    let mut director = shared.lock();
    apply_flow_events(&mut director, program);
}

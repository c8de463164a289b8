//! Loading and feeding the XDP steering program (`bpf/rvs_xdp.c`).
//!
//! [`XdpProgram::load`] loads the object embedded at build time with
//! aya; [`XdpProgram::attach`] attaches it to an interface, native mode
//! first and generic (SKB) mode as the fallback, through a bpf_link that
//! the kernel removes when rvsd's process ends (fail open, even after
//! `kill -9`). The maps are fed from userspace:
//! * `rvs_services`: the virtual services whose connection openers are
//!   steered ([`XdpProgram::set_services`], a diff against what is in);
//! * `rvs_flows`: client and NAT reply tuples of the engine's
//!   connections ([`XdpProgram::apply_flow_event`]);
//! * `rvs_ifslots` + `rvs_xsks`: which AF_XDP socket takes the frames of
//!   an (interface, queue) ([`XdpProgram::register_socket`]).
//!
//! [`XdpProgram::load_kind`] with [`ProgramKind::SteerFast`] loads
//! `rvs_steer_fast` instead: the same steering behind the fast path for
//! established flows, whose maps [`XdpProgram::fast_path`] hands out
//! (`super::fastpath`).

use super::fastpath::FastPath;
use super::keys::{flow_key, service_key, FlowKeyBytes, ServiceKeyBytes};
use super::xsk::XskSocket;
use aya::maps::{HashMap, MapData, PerCpuArray, PerCpuHashMap, XskMap};
use aya::programs::xdp::XdpLinkId;
use aya::programs::{Xdp, XdpMode};
use rvs_core::{FlowEvent, FlowTuple, Protocol};
use std::collections::{BTreeSet, HashMap as StdHashMap};
use std::net::IpAddr;
use std::os::fd::AsRawFd;

/// The compiled program (empty when clang was missing at build time).
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/rvs_xdp.o"));
/// "ok", or why the object could not be built.
const BUILD_STATUS: &str = env!("RVS_XDP_BUILD");

/// Slots of the XSKMAP per interface (`MAX_QUEUES` in the C source).
pub const MAX_QUEUES: u32 = 64;
/// Interfaces the program can steer from (`MAX_IFACES` in the C source).
pub const MAX_IFACES: u32 = 32;

/// Errors of the XDP datapath.
#[derive(Debug, thiserror::Error)]
pub enum XdpError {
    #[error("XDP unavailable: {0}")]
    Unavailable(String),
    #[error("loading the XDP program: {0}")]
    Load(#[from] aya::EbpfError),
    #[error("XDP program: {0}")]
    Program(#[from] aya::programs::ProgramError),
    #[error("XDP map {map}: {source}")]
    Map {
        map: &'static str,
        source: aya::maps::MapError,
    },
    #[error("attaching XDP to {iface}: {reason}")]
    Attach { iface: String, reason: String },
    #[error("AF_XDP socket on {iface} queue {queue}: {source}")]
    Socket {
        iface: String,
        queue: u32,
        source: std::io::Error,
    },
    #[error("too many interfaces or queues for the XDP program ({0})")]
    TooMany(String),
}

fn map_err(map: &'static str) -> impl FnOnce(aya::maps::MapError) -> XdpError {
    move |source| XdpError::Map { map, source }
}

/// How to attach.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum XdpAttachMode {
    /// Native where the driver supports it, else generic.
    #[default]
    Auto,
    /// Native (driver) mode only.
    Native,
    /// Generic (SKB) mode only.
    Generic,
}

impl std::str::FromStr for XdpAttachMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(XdpAttachMode::Auto),
            "native" | "drv" => Ok(XdpAttachMode::Native),
            "generic" | "skb" => Ok(XdpAttachMode::Generic),
            _ => Err(format!("unknown XDP mode {s:?} (auto, native, generic)")),
        }
    }
}

/// The mode an interface ended up in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachedMode {
    Native,
    Generic,
}

impl std::fmt::Display for AttachedMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AttachedMode::Native => "native",
            AttachedMode::Generic => "generic",
        })
    }
}

/// Which program of the object runs on the interfaces.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ProgramKind {
    /// `rvs_steer`: steering only (the default datapath).
    #[default]
    Steer,
    /// `rvs_steer_fast`: established flows forwarded in XDP, the rest
    /// steered as by `rvs_steer` (`rvsd --xdp-fastpath`).
    SteerFast,
}

impl ProgramKind {
    /// The program's name in the object.
    pub fn name(self) -> &'static str {
        match self {
            ProgramKind::Steer => "rvs_steer",
            ProgramKind::SteerFast => "rvs_steer_fast",
        }
    }
}

/// Counters of the program (summed over CPUs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProgramStats {
    /// Frames the program looked at.
    pub seen: u64,
    /// Connection openers steered to a socket.
    pub steered_new: u64,
    /// Frames of registered flows steered to a socket.
    pub steered_flow: u64,
    /// Frames passed to the kernel.
    pub passed: u64,
    /// Frames of steered traffic passed because they are longer than a
    /// socket's chunk takes (GSO super-frames of generic XDP); also in
    /// `passed`.
    pub too_big: u64,
    /// Fast path: frames forwarded in XDP (never seen by the engine).
    pub fast_forwarded: u64,
    /// Fast path: frames of a cached flow left to the engine because the
    /// FIB gave no complete answer (no neighbour yet, MTU, local).
    pub fast_no_route: u64,
    /// Fast path: frames of a cached flow with a partial checksum.
    pub fast_partial: u64,
    /// Fast path: frames of a cached flow whose egress interface cannot
    /// take a native redirect.
    pub fast_egress: u64,
}

/// The loaded program and its maps.
pub struct XdpProgram {
    ebpf: aya::Ebpf,
    kind: ProgramKind,
    fast: Option<FastPath>,
    services: HashMap<MapData, ServiceKeyBytes, u8>,
    flows: HashMap<MapData, FlowKeyBytes, u8>,
    ifslots: HashMap<MapData, u32, u32>,
    xsks: XskMap<MapData>,
    stats: PerCpuArray<MapData, u64>,
    installed_services: BTreeSet<ServiceKeyBytes>,
    /// Interface index of each group of `MAX_QUEUES` XSKMAP slots (0:
    /// free).
    slots: Vec<u32>,
    /// The program's link on each attached interface (by index).
    links: StdHashMap<u32, XdpLinkId>,
    /// Flow inserts refused (map full).
    pub flow_insert_errors: u64,
}

impl std::fmt::Debug for XdpProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XdpProgram")
            .field("services", &self.installed_services.len())
            .field("ifaces", &self.slots)
            .finish()
    }
}

/// Whether this build carries the XDP program; the reason if not.
pub fn availability() -> Result<(), XdpError> {
    if BUILD_STATUS != "ok" || OBJECT.is_empty() {
        return Err(XdpError::Unavailable(format!(
            "built without the BPF object ({BUILD_STATUS})"
        )));
    }
    Ok(())
}

impl XdpProgram {
    /// Load the steering program and take its maps (needs `CAP_BPF`/root).
    pub fn load() -> Result<XdpProgram, XdpError> {
        XdpProgram::load_kind(ProgramKind::Steer)
    }

    /// Load program `kind` and take its maps (needs `CAP_BPF`/root).
    pub fn load_kind(kind: ProgramKind) -> Result<XdpProgram, XdpError> {
        availability()?;
        let mut ebpf = aya::Ebpf::load(OBJECT)?;
        let name = kind.name();
        let prog: &mut Xdp = ebpf
            .program_mut(name)
            .ok_or_else(|| XdpError::Unavailable(format!("no program {name} in the object")))?
            .try_into()?;
        prog.load()?;
        let mut take = |name: &'static str| {
            ebpf.take_map(name)
                .ok_or_else(|| XdpError::Unavailable(format!("no map {name} in the object")))
        };
        let services = HashMap::try_from(take("rvs_services")?).map_err(map_err("rvs_services"))?;
        let flows = HashMap::try_from(take("rvs_flows")?).map_err(map_err("rvs_flows"))?;
        let ifslots = HashMap::try_from(take("rvs_ifslots")?).map_err(map_err("rvs_ifslots"))?;
        let xsks = XskMap::try_from(take("rvs_xsks")?).map_err(map_err("rvs_xsks"))?;
        let stats = PerCpuArray::try_from(take("rvs_stats")?).map_err(map_err("rvs_stats"))?;
        let fast = match kind {
            ProgramKind::Steer => None,
            ProgramKind::SteerFast => Some(FastPath::new(
                HashMap::try_from(take("rvs_fast")?).map_err(map_err("rvs_fast"))?,
                PerCpuHashMap::try_from(take("rvs_fast_stats")?)
                    .map_err(map_err("rvs_fast_stats"))?,
                HashMap::try_from(take("rvs_ifmode")?).map_err(map_err("rvs_ifmode"))?,
            )),
        };
        Ok(XdpProgram {
            ebpf,
            kind,
            fast,
            services,
            flows,
            ifslots,
            xsks,
            stats,
            installed_services: BTreeSet::new(),
            slots: Vec::new(),
            links: StdHashMap::new(),
            flow_insert_errors: 0,
        })
    }

    /// Attach to `iface` (index `ifindex`) in `mode`; returns the mode
    /// it runs in. Attaching where it is attached already is a no-op
    /// that reports the mode asked for.
    pub fn attach(
        &mut self,
        iface: &str,
        ifindex: u32,
        mode: XdpAttachMode,
    ) -> Result<AttachedMode, XdpError> {
        let name = self.kind.name();
        let prog: &mut Xdp = self
            .ebpf
            .program_mut(name)
            .ok_or_else(|| XdpError::Unavailable(format!("no program {name}")))?
            .try_into()?;
        let attempts: &[(XdpMode, AttachedMode)] = match mode {
            XdpAttachMode::Auto => &[
                (XdpMode::Driver, AttachedMode::Native),
                (XdpMode::Skb, AttachedMode::Generic),
            ],
            XdpAttachMode::Native => &[(XdpMode::Driver, AttachedMode::Native)],
            XdpAttachMode::Generic => &[(XdpMode::Skb, AttachedMode::Generic)],
        };
        let mut reasons = Vec::new();
        for (m, got) in attempts {
            match prog.attach_to_if_index(ifindex, *m) {
                Ok(link) => {
                    self.links.insert(ifindex, link);
                    if let Some(f) = self.fast.as_mut() {
                        f.set_interface_mode(ifindex, Some(*got));
                    }
                    return Ok(*got);
                }
                Err(e) => reasons.push(format!("{got}: {}", error_chain(&e))),
            }
        }
        Err(XdpError::Attach {
            iface: iface.to_string(),
            reason: reasons.join("; "),
        })
    }

    /// Forget an interface that went away (or that rvsd stops steering
    /// from): detach the program's link (already gone with a deleted
    /// interface; errors are ignored) and free its socket slots.
    pub fn detach(&mut self, ifindex: u32) {
        if let Some(f) = self.fast.as_mut() {
            f.set_interface_mode(ifindex, None);
        }
        if let Some(link) = self.links.remove(&ifindex) {
            if let Ok(prog) = self
                .ebpf
                .program_mut(self.kind.name())
                .ok_or(())
                .and_then(|p| <&mut Xdp>::try_from(p).map_err(|_| ()))
            {
                let _ = prog.detach(link);
            }
        }
        let _ = self.ifslots.remove(&ifindex);
        for s in self.slots.iter_mut().filter(|s| **s == ifindex) {
            *s = 0;
        }
    }

    /// Whether the program is attached to interface `ifindex`.
    pub fn is_attached(&self, ifindex: u32) -> bool {
        self.links.contains_key(&ifindex)
    }

    /// Route frames of (`socket`'s interface, queue) into `socket`.
    pub fn register_socket(&mut self, socket: &XskSocket) -> Result<(), XdpError> {
        let ifindex = socket.ifindex();
        if socket.queue() >= MAX_QUEUES {
            return Err(XdpError::TooMany(format!("queue {}", socket.queue())));
        }
        let known = self.slots.iter().position(|i| *i == ifindex);
        let free = self.slots.iter().position(|i| *i == 0);
        let slot = match (known, free) {
            (Some(s), _) => s,
            (None, Some(s)) => {
                if let Some(entry) = self.slots.get_mut(s) {
                    *entry = ifindex;
                }
                s
            }
            (None, None) => {
                if self.slots.len() >= MAX_IFACES as usize {
                    return Err(XdpError::TooMany(format!(
                        "{} interfaces",
                        self.slots.len()
                    )));
                }
                self.slots.push(ifindex);
                self.slots.len() - 1
            }
        };
        let base = u32::try_from(slot).unwrap_or(0) * MAX_QUEUES;
        self.xsks
            .set(base + socket.queue(), socket.as_raw_fd(), 0)
            .map_err(map_err("rvs_xsks"))?;
        self.ifslots
            .insert(ifindex, base, 0)
            .map_err(map_err("rvs_ifslots"))?;
        Ok(())
    }

    /// Make the steered services exactly `services` (protocol, VIP,
    /// port). Returns whether anything changed.
    pub fn set_services(&mut self, services: &[(Protocol, IpAddr, u16)]) -> Result<bool, XdpError> {
        let want: BTreeSet<ServiceKeyBytes> = services
            .iter()
            .map(|(p, a, port)| service_key(*p, *a, *port))
            .collect();
        if want == self.installed_services {
            return Ok(false);
        }
        for k in want.difference(&self.installed_services) {
            self.services
                .insert(*k, 1, 0)
                .map_err(map_err("rvs_services"))?;
        }
        for k in self.installed_services.difference(&want) {
            // Already gone is fine.
            let _ = self.services.remove(k);
        }
        self.installed_services = want;
        Ok(true)
    }

    fn insert_flow(&mut self, t: &FlowTuple) {
        if let Some(k) = flow_key(t) {
            if self.flows.insert(k, 1, 0).is_err() {
                self.flow_insert_errors += 1;
            }
        }
    }

    fn remove_flow(&mut self, t: &FlowTuple) {
        if let Some(k) = flow_key(t) {
            let _ = self.flows.remove(&k);
        }
    }

    /// Steer (Added) or stop steering (Removed) a connection's tuples.
    pub fn apply_flow_event(&mut self, e: &FlowEvent) {
        match e {
            FlowEvent::Added { client, reply } => {
                self.insert_flow(client);
                if let Some(r) = reply {
                    self.insert_flow(r);
                }
            }
            FlowEvent::Removed { client, reply } => {
                if let Some(f) = self.fast.as_mut() {
                    f.forget_conn(client);
                }
                self.remove_flow(client);
                if let Some(r) = reply {
                    self.remove_flow(r);
                }
            }
        }
    }

    /// How many flow tuples the map holds (walks the map: not for the
    /// hot path).
    pub fn flow_count(&self) -> usize {
        self.flows.keys().filter(|k| k.is_ok()).count()
    }

    /// The program's counters, summed over CPUs.
    pub fn stats(&self) -> ProgramStats {
        let slot = |i: u32| -> u64 {
            self.stats
                .get(&i, 0)
                .map(|v| v.iter().copied().sum())
                .unwrap_or(0)
        };
        ProgramStats {
            seen: slot(0),
            steered_new: slot(1),
            steered_flow: slot(2),
            passed: slot(3),
            too_big: slot(4),
            fast_forwarded: slot(5),
            fast_no_route: slot(6),
            fast_partial: slot(7),
            fast_egress: slot(8),
        }
    }

    /// Which program this is.
    pub fn kind(&self) -> ProgramKind {
        self.kind
    }

    /// The fast path's maps and bookkeeping (`ProgramKind::SteerFast`
    /// only).
    pub fn fast_path(&mut self) -> Option<&mut FastPath> {
        self.fast.as_mut()
    }

    /// Run the loaded program once over `frame` with `BPF_PROG_TEST_RUN`
    /// as if it arrived on interface `ingress` (0: the loopback device of
    /// the caller's namespace; a non-zero index is looked up in the
    /// calling thread's namespace). Returns the XDP action and the frame
    /// as the program left it. For tests and diagnostics: the program
    /// runs against the live maps.
    pub fn test_run(&self, frame: &[u8], ingress: u32) -> Result<(u32, Vec<u8>), XdpError> {
        use aya::programs::{TestRun, TestRunOptions};
        let name = self.kind.name();
        let prog: &Xdp = self
            .ebpf
            .program(name)
            .ok_or_else(|| XdpError::Unavailable(format!("no program {name}")))?
            .try_into()?;
        // struct xdp_md: data, data_end, data_meta, ingress_ifindex,
        // rx_queue_index, egress_ifindex (u32 each); the kernel wants
        // `data_end` equal to the frame's length, zeros but for the
        // interface.
        let mut ctx = [0u8; 24];
        let len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        ctx[4..8].copy_from_slice(&len.to_ne_bytes());
        ctx[12..16].copy_from_slice(&ingress.to_ne_bytes());
        let mut out = vec![0u8; frame.len() + 256];
        let r = prog.test_run(TestRunOptions {
            data_in: Some(frame),
            data_out: Some(&mut out),
            ctx_in: Some(&ctx),
            ..TestRunOptions::default()
        })?;
        out.truncate(usize::try_from(r.data_size_out).unwrap_or(0));
        Ok((r.return_value, out))
    }
}

/// An error with its sources, on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

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

use super::keys::{flow_key, service_key, FlowKeyBytes, ServiceKeyBytes};
use super::xsk::XskSocket;
use aya::maps::{HashMap, MapData, PerCpuArray, XskMap};
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
}

/// The loaded program and its maps.
pub struct XdpProgram {
    ebpf: aya::Ebpf,
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
    /// Load the program and take its maps (needs `CAP_BPF`/root).
    pub fn load() -> Result<XdpProgram, XdpError> {
        availability()?;
        let mut ebpf = aya::Ebpf::load(OBJECT)?;
        let prog: &mut Xdp = ebpf
            .program_mut("rvs_steer")
            .ok_or_else(|| XdpError::Unavailable("no program rvs_steer in the object".into()))?
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
        Ok(XdpProgram {
            ebpf,
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
        let prog: &mut Xdp = self
            .ebpf
            .program_mut("rvs_steer")
            .ok_or_else(|| XdpError::Unavailable("no program rvs_steer".into()))?
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
        if let Some(link) = self.links.remove(&ifindex) {
            if let Ok(prog) = self
                .ebpf
                .program_mut("rvs_steer")
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
        }
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

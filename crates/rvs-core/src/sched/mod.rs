//! Schedulers: given the real servers of one service and a packet's
//! addresses, pick one real server, exactly as the kernel's `ip_vs_<name>.c`
//! does. One file per scheduler, all behind [`Scheduler`].
//!
//! The destination list is passed in the kernel's list order, which is
//! **newest first** (a new real server is inserted at the head). Schedulers
//! keep their own state (cursors, hash tables) and are told about list
//! changes through [`Scheduler::dests_changed`].

pub mod dh;
pub mod fo;
pub mod hash;
pub mod lblc;
pub mod lblcr;
pub mod lc;
pub mod mh;
pub mod nq;
pub mod ovf;
pub mod rr;
pub mod sed;
pub mod sh;
pub mod twos;
pub mod wlc;
pub mod wrr;

use crate::model::{DestId, SchedFlags};
use std::net::IpAddr;

/// What a scheduler sees of a real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedDest {
    pub id: DestId,
    pub addr: IpAddr,
    pub port: u16,
    /// Current weight (0 = quiesced).
    pub weight: i32,
    /// Weight before the last change to 0 (the kernel's `last_weight`,
    /// used by `mh` so that quiescing does not rebuild its table).
    pub last_weight: i32,
    /// `IP_VS_DEST_F_OVERLOAD` (upper threshold reached).
    pub overloaded: bool,
    pub active: u32,
    pub inactive: u32,
}

impl SchedDest {
    /// `ip_vs_dest_conn_overhead`: `(active << 8) + inactive`.
    pub fn overhead(&self) -> u64 {
        (u64::from(self.active) << 8) + u64::from(self.inactive)
    }

    /// Not overloaded and weight > 0.
    pub fn available(&self) -> bool {
        !self.overloaded && self.weight > 0
    }
}

/// Source of random numbers for schedulers that need them (`twos`).
/// Injected so tests can seed it; the engine never reads an OS RNG.
pub trait RandomSource {
    fn next_u32(&mut self) -> u32;
}

/// A small, seedable xorshift64* generator (not cryptographic).
#[derive(Debug, Clone)]
pub struct XorShiftRng(u64);

impl XorShiftRng {
    pub fn new(seed: u64) -> XorShiftRng {
        XorShiftRng(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }
}

impl RandomSource for XorShiftRng {
    fn next_u32(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u32
    }
}

/// The packet facts a scheduler may key on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedPacket {
    /// Client address.
    pub saddr: IpAddr,
    pub sport: u16,
    /// Destination address of the packet (the VIP; `lblc`/`lblcr`/`dh` key on it).
    pub daddr: IpAddr,
    pub dport: u16,
}

/// Everything a scheduling decision may use besides the list.
pub struct SchedContext<'a> {
    pub packet: SchedPacket,
    pub flags: SchedFlags,
    /// Engine time in seconds (monotonic, injected).
    pub now_secs: u64,
    pub rng: &'a mut dyn RandomSource,
    /// `lblc_expiration` / `lblcr_expiration` sysctl, seconds.
    pub lblc_expiration_secs: u64,
    pub lblcr_expiration_secs: u64,
}

impl std::fmt::Debug for SchedContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchedContext")
            .field("packet", &self.packet)
            .field("flags", &self.flags)
            .field("now_secs", &self.now_secs)
            .finish_non_exhaustive()
    }
}

/// A change to a service's real-server list, reported after the list has
/// been updated (except `Removing`, reported before removal, while the
/// server is still in the list at `index`, as the kernel's `del_dest` hook).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DestChange {
    Added(DestId),
    Removing { id: DestId, index: usize },
    Removed(DestId),
    Updated(DestId),
}

/// One kernel scheduler.
pub trait Scheduler: Send + std::fmt::Debug {
    /// The name ipvsadm shows (`rr`, `wlc`, ...).
    fn name(&self) -> &'static str;

    /// The real-server list changed. `dests` is the list after the change
    /// (before it, for `DestChange::Removing`).
    fn dests_changed(&mut self, change: DestChange, dests: &[SchedDest]);

    /// Pick a real server; `None` means "no destination available".
    /// Returns the index into `dests`.
    fn schedule(&mut self, dests: &[SchedDest], ctx: &mut SchedContext<'_>) -> Option<usize>;

    /// Periodic housekeeping (lblc/lblcr garbage collection). Default: none.
    fn tick(&mut self, _now_secs: u64) {}
}

/// Every scheduler name the engine knows, in the kernel's naming.
pub const SCHEDULER_NAMES: &[&str] = &[
    "rr", "wrr", "lc", "wlc", "sed", "nq", "lblc", "lblcr", "dh", "sh", "mh", "fo", "ovf", "twos",
];

/// Create a scheduler by name, for a service whose list is `dests`
/// (the kernel's `init_service`). `None` for an unknown name
/// ("Scheduler or persistence engine not found").
pub fn new_scheduler(name: &str, dests: &[SchedDest]) -> Option<Box<dyn Scheduler>> {
    Some(match name {
        "rr" => Box::new(rr::RrScheduler::new(dests)),
        "wrr" => Box::new(wrr::WrrScheduler::new(dests)),
        "lc" => Box::new(lc::LcScheduler::new(dests)),
        "wlc" => Box::new(wlc::WlcScheduler::new(dests)),
        "sed" => Box::new(sed::SedScheduler::new(dests)),
        "nq" => Box::new(nq::NqScheduler::new(dests)),
        "lblc" => Box::new(lblc::LblcScheduler::new(dests)),
        "lblcr" => Box::new(lblcr::LblcrScheduler::new(dests)),
        "dh" => Box::new(dh::DhScheduler::new(dests)),
        "sh" => Box::new(sh::ShScheduler::new(dests)),
        "mh" => Box::new(mh::MhScheduler::new(dests)),
        "fo" => Box::new(fo::FoScheduler::new(dests)),
        "ovf" => Box::new(ovf::OvfScheduler::new(dests)),
        "twos" => Box::new(twos::TwosScheduler::new(dests)),
        _ => return None,
    })
}

/// Helpers shared by the schedulers' unit tests.
#[cfg(test)]
pub(crate) mod test_support {
    use super::SchedDest;
    use crate::model::DestId;
    use std::net::{IpAddr, Ipv4Addr};

    /// A real server with the given weight and connection counts.
    pub(crate) fn dest(id: u64, weight: i32, active: u32, inactive: u32) -> SchedDest {
        SchedDest {
            id: DestId(id),
            addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, id as u8)),
            port: 80,
            weight,
            last_weight: weight,
            overloaded: false,
            active,
            inactive,
        }
    }
}

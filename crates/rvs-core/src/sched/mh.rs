//! `mh`: Maglev hashing, as `ip_vs_mh.c` (Linux 6.x, 64-bit) computes it.
//!
//! Table: [`MH_TAB_SIZE`] = 4093 slots (the default prime,
//! `CONFIG_IP_VS_MH_TAB_INDEX = 12`). Per real server, with
//! `v = port + fold(addr)` (host-order u32, wrapping):
//! `offset = hsiphash(v, key1) % 4093`, `skip = hsiphash(v, key2) % 4092 + 1`,
//! where `key1 = {2654435761, 2654435761}`, `key2 = {2654446892, 2654446892}`
//! and `hsiphash` is SipHash-1-3 over the 4 little-endian bytes of `v`
//! (see [`super::hash::hsiphash_u32`]).
//!
//! Weights come from **`last_weight`** (the weight before a change to 0),
//! so quiescing a server does not move any slot. `g` is the gcd of the
//! positive last weights; `rshift = max(0, fls(max_last_weight / g) - 6)`;
//! each server's `turns = (last_weight / g) >> rshift`, or 1 if that is 0
//! and the last weight is not. Servers with 0 turns get no slots.
//!
//! Populate: repeat passes over the list in order; in a pass each server
//! with turns claims `turns` slots, one at a time, each being the next free
//! slot along its permutation `offset, offset+skip, ...` (mod 4093). Stops
//! as soon as all slots are claimed. No server with last weight > 0 (or an
//! empty list) leaves the table empty.
//!
//! Lookup: `hsiphash(port + fold(saddr), key1) % 4093` with port = source
//! port under `mh-port` (engine passes 0 for port-less protocols), else 0.
//! A server is unavailable when weight <= 0 or overloaded (or it left the
//! list). Without `mh-fallback` that is "no destination". With it, offsets
//! `roffset = (k + first) % 4093` for `k = 0..4092` are tried, re-hashing
//! `roffset + port + fold(saddr)`, until an available server turns up; an
//! empty slot ends the search.
//!
//! More servers than slots: the kernel's rebuild fails with `EINVAL`
//! ([`check_dest_count`]). Creating the service then fails in the kernel;
//! the engine should refuse such a list. If a change makes the list too
//! long anyway, this scheduler keeps its previous table, as the kernel does
//! (its add/del hooks' errors are ignored).

use super::hash::{addr_fold, hsiphash_u32, list_without, SipKey, Slot, SlotTable};
use super::{DestChange, SchedContext, SchedDest, Scheduler};
use crate::model::DestId;
use std::net::IpAddr;

/// The table primes, indexed by `CONFIG_IP_VS_MH_TAB_INDEX - 8`.
pub const MH_PRIMES: [usize; 10] = [
    251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071,
];
/// `CONFIG_IP_VS_MH_TAB_INDEX` default.
pub const MH_TAB_INDEX: usize = 12;
/// Table size M (4093).
pub const MH_TAB_SIZE: usize = MH_PRIMES[MH_TAB_INDEX - 8];
/// `IP_VS_MH_TAB_BITS`: how many bits of `max_weight / gcd` are kept (6).
pub const MH_TAB_BITS: u32 = (MH_TAB_INDEX / 2) as u32;
/// Key for offsets and lookups.
pub const MH_KEY1: SipKey = [2_654_435_761, 2_654_435_761];
/// Key for skips.
pub const MH_KEY2: SipKey = [2_654_446_892, 2_654_446_892];

/// Whether the kernel accepts `n` real servers in an `mh` service
/// (`n <= 4093`; more gives `EINVAL`).
pub fn check_dest_count(n: usize) -> bool {
    n <= MH_TAB_SIZE
}

/// `hsiphash(offset + port + fold(addr), key)`, the kernel's
/// `ip_vs_mh_hashkey`.
pub fn mh_hashkey(addr: IpAddr, port: u16, key: SipKey, offset: u32) -> u32 {
    let v = offset
        .wrapping_add(u32::from(port))
        .wrapping_add(addr_fold(addr));
    hsiphash_u32(v, key)
}

/// A server's permutation start and step in the table.
pub fn mh_offset_skip(addr: IpAddr, port: u16) -> (usize, usize) {
    let offset = mh_hashkey(addr, port, MH_KEY1, 0) as usize % MH_TAB_SIZE;
    let skip = mh_hashkey(addr, port, MH_KEY2, 0) as usize % (MH_TAB_SIZE - 1) + 1;
    (offset, skip)
}

fn gcd(a: i64, b: i64) -> i64 {
    let (mut a, mut b) = (a, b);
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Number of the highest set bit, 1-based (`fls`); 0 for 0.
fn fls(x: i64) -> i64 {
    if x <= 0 {
        0
    } else {
        i64::from(64 - (x as u64).leading_zeros())
    }
}

/// Per-server slot claims per pass (`turns`), from `last_weight`.
pub fn mh_turns(dests: &[SchedDest]) -> Vec<i64> {
    let g = dests
        .iter()
        .map(|d| i64::from(d.last_weight))
        .filter(|w| *w > 0)
        .fold(0, |g, w| if g > 0 { gcd(w, g) } else { w });
    if g < 1 {
        return vec![0; dests.len()];
    }
    let max = dests
        .iter()
        .map(|d| i64::from(d.last_weight))
        .fold(0, i64::max);
    let rshift = (fls(max / g) - i64::from(MH_TAB_BITS)).max(0);
    dests
        .iter()
        .map(|d| {
            let lw = i64::from(d.last_weight);
            match (lw / g) >> rshift {
                0 => i64::from(lw != 0),
                t => t,
            }
        })
        .collect()
}

/// Maglev scheduler state: the lookup table.
#[derive(Debug, Clone)]
pub struct MhScheduler {
    table: SlotTable,
}

impl MhScheduler {
    /// Build the table for `dests` (`init_service`). With more than
    /// [`MH_TAB_SIZE`] servers the table stays empty (the kernel refuses
    /// the service).
    pub fn new(dests: &[SchedDest]) -> Self {
        let mut s = MhScheduler {
            table: SlotTable::new(MH_TAB_SIZE),
        };
        s.rebuild(dests);
        s
    }

    fn rebuild(&mut self, dests: &[SchedDest]) {
        if !check_dest_count(dests.len()) {
            return;
        }
        self.table.reset(dests);
        let turns = mh_turns(dests);
        if turns.iter().all(|t| *t < 1) {
            return;
        }
        let mut perm: Vec<usize> = Vec::with_capacity(dests.len());
        let mut skips: Vec<usize> = Vec::with_capacity(dests.len());
        for d in dests {
            let (o, s) = mh_offset_skip(d.addr, d.port);
            perm.push(o);
            skips.push(s);
        }
        let mut taken = vec![false; MH_TAB_SIZE];
        let mut filled = 0usize;
        while filled < MH_TAB_SIZE {
            for (i, t) in turns.iter().enumerate() {
                for _ in 0..*t {
                    let mut c = perm[i];
                    while taken[c] {
                        c += skips[i];
                        if c >= MH_TAB_SIZE {
                            c -= MH_TAB_SIZE;
                        }
                    }
                    perm[i] = c;
                    taken[c] = true;
                    self.table.set(c, i);
                    filled += 1;
                    if filled == MH_TAB_SIZE {
                        return;
                    }
                }
            }
        }
    }

    /// The server id in each slot (for inspection and tests).
    pub fn slots(&self) -> Vec<Option<DestId>> {
        (0..MH_TAB_SIZE).map(|b| self.table.id(b)).collect()
    }
}

fn unavailable(d: &SchedDest) -> bool {
    d.weight <= 0 || d.overloaded
}

impl Scheduler for MhScheduler {
    fn name(&self) -> &'static str {
        "mh"
    }

    fn dests_changed(&mut self, change: DestChange, dests: &[SchedDest]) {
        match change {
            DestChange::Removing { id, index } => self.rebuild(&list_without(dests, id, index)),
            DestChange::Added(_) | DestChange::Removed(_) | DestChange::Updated(_) => {
                self.rebuild(dests)
            }
        }
    }

    fn schedule(&mut self, dests: &[SchedDest], ctx: &mut SchedContext<'_>) -> Option<usize> {
        let saddr = ctx.packet.saddr;
        let port = if ctx.flags.port() {
            ctx.packet.sport
        } else {
            0
        };
        let first = mh_hashkey(saddr, port, MH_KEY1, 0) as usize % MH_TAB_SIZE;
        let usable = |slot: Slot| match slot {
            Slot::Dest(i) => dests.get(i).filter(|d| !unavailable(d)).map(|_| i),
            Slot::Empty | Slot::Gone => None,
        };
        let slot = self.table.resolve(first, dests);
        if !ctx.flags.fallback() || slot == Slot::Empty {
            return usable(slot);
        }
        if let Some(i) = usable(slot) {
            return Some(i);
        }
        for k in 0..MH_TAB_SIZE {
            let roffset = ((k + first) % MH_TAB_SIZE) as u32;
            let h = mh_hashkey(saddr, port, MH_KEY1, roffset) as usize % MH_TAB_SIZE;
            let slot = self.table.resolve(h, dests);
            if slot == Slot::Empty {
                break;
            }
            if let Some(i) = usable(slot) {
                return Some(i);
            }
        }
        None
    }
}

//! `sh`: source hashing, as `ip_vs_sh.c` (Linux 6.x) computes it.
//!
//! A 256-bucket table is filled in list order, each real server taking
//! `weight` consecutive buckets before the fill moves to the next one, and
//! wrapping to the list head until all 256 buckets are assigned. A server
//! with weight <= 0 still takes one bucket; a weight of 256 or more lets the
//! first server take the whole table. The table uses the *current* weight,
//! so quiescing a server (weight 0) rebuilds it and shifts later servers.
//!
//! Key: the client (source) address folded to 32 bits, plus the source
//! port with `sh-port` (`SchedFlags::port`), hashed as
//! `(offset + hash_32(port + fold, 8)) & 255` with offset 0 (`hash_32` is
//! the kernel's golden-ratio multiply keeping the top 8 bits).
//! A server is unavailable when its weight is <= 0 or it is overloaded.
//! Without `sh-fallback` an unavailable pick means "no destination"; with
//! it, offsets `roffset = (k + first) % 256` for `k = 0..255` are tried in
//! turn (re-hashing with `roffset`, which walks consecutive buckets) until
//! an available server turns up. An empty bucket ends the search.
//!
//! Port hashing: the engine passes the client's source port in
//! `SchedPacket::sport`; it must pass 0 for protocols without ports, as the
//! kernel only reads ports for TCP, UDP and SCTP.

use super::hash::{addr_fold, list_without, sh_hash, Slot, SlotTable};
use super::{DestChange, SchedContext, SchedDest, Scheduler};
use crate::model::DestId;
use std::net::IpAddr;

/// `CONFIG_IP_VS_SH_TAB_BITS`.
pub const SH_TAB_BITS: u32 = 8;
/// Number of buckets (256).
pub const SH_TAB_SIZE: usize = 1 << SH_TAB_BITS;

/// Source-hashing scheduler state: the bucket table.
#[derive(Debug, Clone)]
pub struct ShScheduler {
    table: SlotTable,
}

/// Bucket for a client address and port (0 unless `sh-port`) at probe
/// offset `offset` (0 for the first try).
pub fn sh_bucket(saddr: IpAddr, port: u16, offset: u32) -> usize {
    sh_hash(addr_fold(saddr), port, offset, SH_TAB_BITS) as usize
}

fn unavailable(d: &SchedDest) -> bool {
    d.weight <= 0 || d.overloaded
}

impl ShScheduler {
    /// Build the table for `dests` (`init_service`).
    pub fn new(dests: &[SchedDest]) -> Self {
        let mut s = ShScheduler {
            table: SlotTable::new(SH_TAB_SIZE),
        };
        s.rebuild(dests);
        s
    }

    fn rebuild(&mut self, dests: &[SchedDest]) {
        self.table.reset(dests);
        if dests.is_empty() {
            return;
        }
        let mut cur = 0usize;
        let mut taken = 0i64;
        for bucket in 0..SH_TAB_SIZE {
            self.table.set(bucket, cur);
            taken += 1;
            if taken >= i64::from(dests[cur].weight) {
                cur = (cur + 1) % dests.len();
                taken = 0;
            }
        }
    }

    /// The server id in each bucket (for inspection and tests).
    pub fn buckets(&self) -> Vec<Option<DestId>> {
        (0..SH_TAB_SIZE).map(|b| self.table.id(b)).collect()
    }

    fn lookup(&self, bucket: usize, dests: &[SchedDest]) -> Slot {
        self.table.resolve(bucket, dests)
    }
}

impl Scheduler for ShScheduler {
    fn name(&self) -> &'static str {
        "sh"
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
        let first = sh_bucket(saddr, port, 0);
        let usable = |slot: Slot| match slot {
            Slot::Dest(i) => dests.get(i).filter(|d| !unavailable(d)).map(|_| i),
            Slot::Empty | Slot::Gone => None,
        };
        let slot = self.lookup(first, dests);
        if !ctx.flags.fallback() || slot == Slot::Empty {
            return usable(slot);
        }
        if let Some(i) = usable(slot) {
            return Some(i);
        }
        for k in 0..SH_TAB_SIZE as u32 {
            let roffset = (k + first as u32) % SH_TAB_SIZE as u32;
            let slot = self.lookup(sh_bucket(saddr, port, roffset), dests);
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

//! `dh`: destination hashing, as `ip_vs_dh.c` (Linux 6.x) computes it.
//!
//! A 256-bucket table is filled round-robin over the real-server list in
//! list order (bucket `i` gets server `i mod n`); weights play no part, and
//! a weight-0 server still gets its buckets. A packet's **destination**
//! address is folded ([`addr_fold`]) and hashed with
//! `hash_32(fold, 8)` (golden-ratio multiply, top 8 bits). If the bucket's
//! server is unavailable (weight <= 0, overloaded, or no longer in the
//! list), the answer is "no destination": `dh` has no fallback.
//!
//! The table is rebuilt whenever a server is added or removed (and, harmlessly,
//! on edits; the kernel's `dh` has no edit hook because weights do not
//! matter to it).

use super::hash::{addr_fold, hash_32, list_without, Slot, SlotTable};
use super::{DestChange, SchedContext, SchedDest, Scheduler};
use std::net::IpAddr;

/// `CONFIG_IP_VS_DH_TAB_BITS`.
pub const DH_TAB_BITS: u32 = 8;
/// Number of buckets (256).
pub const DH_TAB_SIZE: usize = 1 << DH_TAB_BITS;

/// Destination-hashing scheduler state: the bucket table.
#[derive(Debug, Clone)]
pub struct DhScheduler {
    table: SlotTable,
}

/// Bucket of a destination address: `hash_32(fold(addr), 8)`.
pub fn dh_bucket(daddr: IpAddr) -> usize {
    hash_32(addr_fold(daddr), DH_TAB_BITS) as usize
}

impl DhScheduler {
    /// Build the table for `dests` (`init_service`).
    pub fn new(dests: &[SchedDest]) -> Self {
        let mut s = DhScheduler {
            table: SlotTable::new(DH_TAB_SIZE),
        };
        s.rebuild(dests);
        s
    }

    fn rebuild(&mut self, dests: &[SchedDest]) {
        self.table.reset(dests);
        if dests.is_empty() {
            return;
        }
        for bucket in 0..DH_TAB_SIZE {
            self.table.set(bucket, bucket % dests.len());
        }
    }

    /// The server id in each bucket (for inspection and tests).
    pub fn buckets(&self) -> Vec<Option<crate::model::DestId>> {
        (0..DH_TAB_SIZE).map(|b| self.table.id(b)).collect()
    }
}

impl Scheduler for DhScheduler {
    fn name(&self) -> &'static str {
        "dh"
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
        match self.table.resolve(dh_bucket(ctx.packet.daddr), dests) {
            Slot::Dest(i) => dests.get(i).filter(|d| d.available()).map(|_| i),
            Slot::Empty | Slot::Gone => None,
        }
    }
}

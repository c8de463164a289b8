//! `lblc`: locality-based least-connection, as `ip_vs_lblc.c` (Linux 6.x)
//! computes it.
//!
//! A [`LocalityTable`] (1024 buckets, `hash_32(fold(daddr), 10)`) maps a
//! packet's **destination** address to the real server last chosen for it.
//! On each decision the entry's `lastuse` is refreshed; its server is kept
//! if it is still in the list, has weight > 0, and is not *overloaded* in
//! `lblc`'s own sense: more active connections than its weight while some
//! server in the list has fewer than half its weight in active connections
//! ([`locality_overloaded`]). Note that the kernel does **not** look at the
//! threshold flag (`OVERLOAD`) for the cached server. Otherwise a weighted
//! least-connection pick over the whole list ([`wlc_pick`], which does skip
//! `OVERLOAD` servers) is made and replaces the entry.
//!
//! Replacing an entry unlinks the old one without decrementing the
//! kernel's entry counter; that counter (not the true count) is what the
//! 16384-entry limit and the collection use. This module keeps that quirk.
//!
//! Garbage collection: the kernel runs it from a 60 s timer; here the
//! engine calls [`Scheduler::tick`] once every 60 s and each call is one
//! run (see [`LocalityTable::collect`]). The full sweep uses the
//! `lblc_expiration` value of the last [`SchedContext`] seen (default 24 h
//! until a decision has been made).
//!
//! The list-change hooks do nothing, as in the kernel; an entry whose
//! server left the list simply counts as unusable.

use super::hash::{
    index_of, locality_overloaded, wlc_pick, LocalityTable, LOCALITY_DEFAULT_EXPIRATION_SECS,
};
use super::{DestChange, SchedContext, SchedDest, Scheduler};
use crate::model::DestId;
use std::net::IpAddr;

/// Locality-based least-connection scheduler state.
#[derive(Debug, Clone)]
pub struct LblcScheduler {
    table: LocalityTable<DestId>,
    expiration_secs: u64,
}

impl LblcScheduler {
    /// An empty table (`init_service`).
    pub fn new(_dests: &[SchedDest]) -> Self {
        LblcScheduler {
            table: LocalityTable::new(),
            expiration_secs: LOCALITY_DEFAULT_EXPIRATION_SECS,
        }
    }

    /// The cached server for destination address `daddr`, if any.
    pub fn cached(&self, daddr: IpAddr) -> Option<DestId> {
        self.table.get(daddr).map(|e| e.value)
    }

    /// The cache table (for inspection and tests).
    pub fn table(&self) -> &LocalityTable<DestId> {
        &self.table
    }

    fn cached_usable(&self, daddr: IpAddr, dests: &[SchedDest]) -> Option<usize> {
        let id = self.table.get(daddr)?.value;
        let i = index_of(dests, id)?;
        let d = dests.get(i)?;
        (d.weight > 0 && !locality_overloaded(d, dests)).then_some(i)
    }
}

impl Scheduler for LblcScheduler {
    fn name(&self) -> &'static str {
        "lblc"
    }

    fn dests_changed(&mut self, _change: DestChange, _dests: &[SchedDest]) {}

    fn schedule(&mut self, dests: &[SchedDest], ctx: &mut SchedContext<'_>) -> Option<usize> {
        let now = ctx.now_secs;
        let daddr = ctx.packet.daddr;
        self.expiration_secs = ctx.lblc_expiration_secs;
        if let Some(e) = self.table.get_mut(daddr) {
            e.lastuse = now;
        }
        if let Some(i) = self.cached_usable(daddr, dests) {
            return Some(i);
        }
        let pick = wlc_pick(dests)?;
        let id = dests.get(pick)?.id;
        match self.table.get(daddr).map(|e| e.value) {
            Some(old) if old == id => {}
            Some(_) => {
                self.table.unlink_uncounted(daddr);
                self.table.insert(daddr, now, id);
            }
            None => {
                self.table.insert(daddr, now, id);
            }
        }
        Some(pick)
    }

    /// One run of the periodic collection; call every 60 s.
    fn tick(&mut self, now_secs: u64) {
        self.table.collect(now_secs, self.expiration_secs);
    }
}

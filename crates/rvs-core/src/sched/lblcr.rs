//! `lblcr`: locality-based least-connection with replication, as
//! `ip_vs_lblcr.c` (Linux 6.x) computes it.
//!
//! A [`LocalityTable`] (1024 buckets, `hash_32(fold(daddr), 10)`) maps a
//! packet's **destination** address to a *set* of real servers, newest
//! member first, with the time the set last changed (`lastmod`).
//!
//! For a known address (its `lastuse` refreshed):
//! 1. pick the set's weighted least-connection member: the first member
//!    that is not `OVERLOAD`, has weight > 0 and is in the list starts;
//!    a later member that is not `OVERLOAD`, is in the list and has a
//!    strictly smaller `overhead/weight` replaces it;
//! 2. if the set has more than one member and `now > lastmod +
//!    lblcr_expiration`, remove its weighted *most*-connection member
//!    (among members with weight > 0; `lastmod = now`) — even if that is
//!    the member just picked, which is still returned;
//! 3. if step 1 found a member that is not overloaded in the locality sense
//!    ([`locality_overloaded`]), use it;
//! 4. otherwise make a weighted least-connection pick over the whole list
//!    ([`wlc_pick`]); add it to the set if it is not a member (`lastmod =
//!    now`), and use it.
//!
//! For a new address, the whole-list pick is used and a one-member set is
//! created (unless the table's counter is above 16384).
//!
//! A member that has left the list counts as unavailable in step 1 and, as
//! its weight and load are no longer known, is passed over in step 2 (the
//! kernel still sees a removed server's weight there; this is the one place
//! we cannot follow it exactly). Members are never dropped when a server
//! leaves the list, as in the kernel.
//!
//! Garbage collection: [`Scheduler::tick`] once every 60 s, one run of
//! [`LocalityTable::collect`] each, using the `lblcr_expiration` of the
//! last [`SchedContext`] seen (default 24 h).

use super::hash::{
    index_of, locality_overloaded, overhead, wlc_pick, LocalityTable,
    LOCALITY_DEFAULT_EXPIRATION_SECS,
};
use super::{DestChange, SchedContext, SchedDest, Scheduler};
use crate::model::DestId;
use std::net::IpAddr;

/// A replicated set: members newest first, and when it last changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestSet {
    /// Members, most recently added first.
    pub members: Vec<DestId>,
    /// Engine time (seconds) of the last insertion or removal.
    pub lastmod: u64,
}

impl DestSet {
    fn insert(&mut self, id: DestId, now: u64) {
        if !self.members.contains(&id) {
            self.members.insert(0, id);
            self.lastmod = now;
        }
    }

    fn erase(&mut self, id: DestId, now: u64) {
        if let Some(p) = self.members.iter().position(|m| *m == id) {
            self.members.remove(p);
            self.lastmod = now;
        }
    }

    /// Weighted least-connection member (`ip_vs_dest_set_min`), as a list
    /// index.
    fn min(&self, dests: &[SchedDest]) -> Option<usize> {
        let resolved: Vec<Option<usize>> =
            self.members.iter().map(|m| index_of(dests, *m)).collect();
        let mut it = resolved.iter().enumerate();
        let mut least = None;
        for (_, r) in it.by_ref() {
            if let Some(i) = *r {
                let d = &dests[i];
                if !d.overloaded && d.weight > 0 {
                    least = Some(i);
                    break;
                }
            }
        }
        let mut least = least?;
        let mut loh = overhead(&dests[least]);
        for (_, r) in it {
            let Some(i) = *r else { continue };
            let d = &dests[i];
            if d.overloaded {
                continue;
            }
            let doh = overhead(d);
            if loh * i128::from(d.weight) > doh * i128::from(dests[least].weight) {
                least = i;
                loh = doh;
            }
        }
        Some(least)
    }

    /// Weighted most-connection member with weight > 0
    /// (`ip_vs_dest_set_max`); members no longer in the list are skipped.
    fn max(&self, dests: &[SchedDest]) -> Option<DestId> {
        let mut most: Option<(DestId, i128, i32)> = None;
        for m in &self.members {
            let Some(d) = index_of(dests, *m).and_then(|i| dests.get(i)) else {
                continue;
            };
            match most {
                None => {
                    if d.weight > 0 {
                        most = Some((*m, overhead(d), d.weight));
                    }
                }
                Some((_, moh, mw)) => {
                    let doh = overhead(d);
                    if moh * i128::from(d.weight) < doh * i128::from(mw) && d.weight > 0 {
                        most = Some((*m, doh, d.weight));
                    }
                }
            }
        }
        most.map(|(id, _, _)| id)
    }
}

/// Locality-based least-connection with replication: scheduler state.
#[derive(Debug, Clone)]
pub struct LblcrScheduler {
    table: LocalityTable<DestSet>,
    expiration_secs: u64,
}

impl LblcrScheduler {
    /// An empty table (`init_service`).
    pub fn new(_dests: &[SchedDest]) -> Self {
        LblcrScheduler {
            table: LocalityTable::new(),
            expiration_secs: LOCALITY_DEFAULT_EXPIRATION_SECS,
        }
    }

    /// The set for destination address `daddr`, if any.
    pub fn set(&self, daddr: IpAddr) -> Option<&DestSet> {
        self.table.get(daddr).map(|e| &e.value)
    }

    /// The table (for inspection and tests).
    pub fn table(&self) -> &LocalityTable<DestSet> {
        &self.table
    }
}

impl Scheduler for LblcrScheduler {
    fn name(&self) -> &'static str {
        "lblcr"
    }

    fn dests_changed(&mut self, _change: DestChange, _dests: &[SchedDest]) {}

    fn schedule(&mut self, dests: &[SchedDest], ctx: &mut SchedContext<'_>) -> Option<usize> {
        let now = ctx.now_secs;
        let daddr = ctx.packet.daddr;
        let expiration = ctx.lblcr_expiration_secs;
        self.expiration_secs = expiration;
        let Some(entry) = self.table.get_mut(daddr) else {
            let pick = wlc_pick(dests)?;
            let id = dests.get(pick)?.id;
            self.table.insert(
                daddr,
                now,
                DestSet {
                    members: vec![id],
                    lastmod: now,
                },
            );
            return Some(pick);
        };
        entry.lastuse = now;
        let set = &mut entry.value;
        let member = set.min(dests);
        if set.members.len() > 1 && now > set.lastmod.saturating_add(expiration) {
            if let Some(m) = set.max(dests) {
                set.erase(m, now);
            }
        }
        if let Some(i) = member {
            if let Some(d) = dests.get(i) {
                if !locality_overloaded(d, dests) {
                    return Some(i);
                }
            }
        }
        let pick = wlc_pick(dests)?;
        let id = dests.get(pick)?.id;
        set.insert(id, now);
        Some(pick)
    }

    /// One run of the periodic collection; call every 60 s.
    fn tick(&mut self, now_secs: u64) {
        self.table.collect(now_secs, self.expiration_secs);
    }
}
